#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvCimJob

$spec = @{
    options = @{
        job_id = @{ type = 'str'; required = $true }
        state = @{ type = 'str'; choices = @(, 'cancelled'); default = 'cancelled' }
        wait_timeout = @{ type = 'int'; default = 5 }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$jobId = $module.Params.job_id
$module.Result.changed = $false
$module.Result.exists = $false
$module.Result.job = @{ id = $jobId; state = 'gone' }
if ($module.Params.wait_timeout -lt 0) {
    $module.FailJson("wait_timeout must be 0 or more seconds, got $($module.Params.wait_timeout).")
}
try {
    $job = Get-HvCimJob -InstanceId $jobId
}
catch {
    $module.FailJson("Reading Hyper-V job ${jobId} failed: $($_.Exception.Message)", $_)
}
if ($null -eq $job) {
    # Gone: it ended a while ago; there is nothing left to cancel.
    $module.ExitJson()
}
$module.Result.exists = $true
if (-not (Test-HvCimJobFinished -Job $job)) {
    $module.Result.changed = $true
    if (-not $module.CheckMode) {
        try {
            Stop-HvCimJob -Job $job
            # Hyper-V takes a moment to roll the work back; the job's state says when it is done.
            $job = Wait-HvCimJob -InstanceId $jobId -TimeoutSeconds $module.Params.wait_timeout
        }
        catch {
            $module.FailJson("Cancelling Hyper-V job ${jobId} failed: $($_.Exception.Message)", $_)
        }
    }
}
if ($null -ne $job) {
    $module.Result.job = ConvertTo-HvJobResult -Job $job
}
$module.ExitJson()
