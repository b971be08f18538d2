#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvCimJob

$spec = @{
    options = @{
        job_id = @{ type = 'str' }
        job_ids = @{ type = 'list'; elements = 'str' }
        wait_timeout = @{ type = 'int'; default = 0 }
        # Taken by the action plugin, which follows the job (see Get-HvJobWaitSpec).
        wait = @{ type = 'bool'; default = $false }
    }
    mutually_exclusive = @(, @('job_id', 'job_ids'))
    required_one_of = @(, @('job_id', 'job_ids'))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @(, (Get-HvJobWaitSpec)))

Function Get-JobView {
    <#
    .SYNOPSIS
    Returns a job as this module reports it; a job the host no longer has ($null) is state gone.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $InstanceId,

        [AllowNull()]
        [object]
        $Job
    )

    if ($null -eq $Job) {
        # Hyper-V removes finished jobs after a while; gone is an answer, not an error.
        return @{ id = $InstanceId; state = 'gone' }
    }
    ConvertTo-HvJobResult -Job $Job
}

$module.Result.changed = $false
if ($module.Params.wait_timeout -lt 0) {
    $module.FailJson("wait_timeout must be 0 or more seconds, got $($module.Params.wait_timeout).")
}
$ids = if ($module.Params.job_ids) { @($module.Params.job_ids) } else { @($module.Params.job_id) }
try {
    # Waits until one of the jobs has ended (or disappeared), or the time is up; with no time to
    # wait, the jobs are read once, below.
    if ($module.Params.wait_timeout -gt 0) {
        $null = Wait-HvAnyCimJob -InstanceId $ids -TimeoutSeconds $module.Params.wait_timeout
    }
    $found = Get-HvCimJobSet -InstanceId $ids
    $jobs = @(foreach ($id in $ids) { Get-JobView -InstanceId $id -Job $found[$id] })
}
catch {
    $module.FailJson("Reading Hyper-V job $($ids -join ', ') failed: $($_.Exception.Message)", $_)
}
if ($module.Params.job_ids) {
    $module.Result.jobs = $jobs
}
else {
    $module.Result.job = $jobs[0]
    $module.Result.exists = $jobs[0].state -ne 'gone'
}
$module.ExitJson()
