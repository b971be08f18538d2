# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvVirtualMachine
#AnsibleRequires -PowerShell ansible_collections.hyperv.backup.plugins.module_utils.HvCimJob

# Many VMs in one module run. A module's work for one VM is a step: a script block that takes
# a module object and ends with ExitJson or FailJson, exactly as the single-VM module does.
# For a list (vms) each VM's step runs against a stand-in module object whose ExitJson and
# FailJson end only that step, so one VM's failure or pending job never stops the others.
# Every step first starts its job without waiting; the jobs then run side by side on the
# host and are waited on together, and a VM's step runs again (with its job id) once its job
# has ended, to finish the work. A job still running at the deadline is returned pending
# for the controller to follow.

$script:HvStepSignal = 'hyperv.backup.step'

Function Test-HvStepExit {
    <#
    .SYNOPSIS
    Returns whether an error is a stand-in module's ExitJson or FailJson ending a VM's step.

    .DESCRIPTION
    A step's own catch blocks must let this signal through (rethrow it) instead of reporting
    it as an unexpected error. PowerShell may wrap it, so the inner exceptions are searched.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    $exception = $ErrorRecord.Exception
    while ($null -ne $exception) {
        if ($exception.Data.Contains($script:HvStepSignal)) {
            return $true
        }
        $exception = $exception.InnerException
    }
    $false
}

Function New-HvStepModule {
    <#
    .SYNOPSIS
    Returns a stand-in for the module object that runs one VM's step of a list.

    .DESCRIPTION
    It has the members a step uses: Params, Result, CheckMode, Diff, Warn, ExitJson and FailJson,
    and the VM that vms selected (Get-HvStepVirtualMachine). Warnings go to the real module; ExitJson and FailJson throw a signal that
    Invoke-HvVmStep catches, so only this VM's step ends.
    #>
    [CmdletBinding()]
    [OutputType([PSCustomObject])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    $stand = [PSCustomObject]@{
        Params = $Params
        Result = @{ changed = $false }
        CheckMode = $Module.CheckMode
        Diff = @{}
        Parent = $Module
        VirtualMachine = $VirtualMachine
    }
    $stand | Add-Member -MemberType ScriptMethod -Name Warn -Value {
        param ([string]$Message)
        $this.Parent.Warn($Message)
    }
    $stand | Add-Member -MemberType ScriptMethod -Name ExitJson -Value {
        $signal = [System.Exception]::new('hyperv.backup: step ended')
        $signal.Data['hyperv.backup.step'] = $true
        throw $signal
    }
    $stand | Add-Member -MemberType ScriptMethod -Name FailJson -Value {
        param ([string]$Message, [object]$ErrorRecord)
        $this.Result.failed = $true
        $this.Result.msg = $Message
        $signal = [System.Exception]::new('hyperv.backup: step failed')
        $signal.Data['hyperv.backup.step'] = $true
        throw $signal
    }
    $stand
}

Function Invoke-HvVmStep {
    <#
    .SYNOPSIS
    Returns the result of one VM's step, run against a stand-in module.

    .DESCRIPTION
    The result always has failed (and msg when it failed); an error the step did not report
    itself becomes a failure naming the VM, like the single-VM module's unhandled errors.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [scriptblock]
        $Step,

        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    $stand = New-HvStepModule -Module $Module -Params $Params -VirtualMachine $VirtualMachine
    try {
        $null = & $Step $stand
    }
    catch {
        if (-not (Test-HvStepExit -ErrorRecord $_)) {
            $stand.Result.failed = $true
            $stand.Result.msg = "VM '$($Params.vm)$($Params.vm_id)': $($_.Exception.Message)"
        }
    }
    if (-not $stand.Result.ContainsKey('failed')) {
        $stand.Result.failed = $false
    }
    $stand.Result
}

Function Get-HvStepVirtualMachine {
    <#
    .SYNOPSIS
    Returns the VM of a step: the one vms selected for a stand-in module, else the one vm or vm_id selects.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module
    )

    if ($null -ne $Module.PSObject.Properties['VirtualMachine']) {
        return $Module.VirtualMachine
    }
    Get-HvSelectedVirtualMachine -Name $Module.Params.vm -Id $Module.Params.vm_id
}

Function Get-HvBatchParams {
    <#
    .SYNOPSIS
    Returns the parameters of each VM of vms: the task's, with the VM's own values over them.

    .DESCRIPTION
    Each VM is looked up once, by GUID or name, in one list of the host's VMs; its steps get it
    from their stand-in module (Get-HvStepVirtualMachine) rather than querying the host again. A VM
    that cannot be found, or is listed twice, gets an entry with the error instead; DistinctBy
    names the options that let one VM be listed more than once (one entry per reference point).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [AllowEmptyCollection()]
        [string[]]
        $DistinctBy = @()
    )

    $all = @(Get-HvVirtualMachineList)
    $seen = @{}
    foreach ($item in $Module.Params.vms) {
        $params = @{}
        foreach ($key in $Module.Params.Keys) {
            if ($key -notin @('vms', 'job_ids')) {
                $params[$key] = $Module.Params[$key]
            }
        }
        foreach ($key in $item.Keys) {
            if ($null -ne $item[$key]) {
                $params[$key] = $item[$key]
            }
        }
        try {
            $vm = if ($item.vm_id) {
                Select-HvVirtualMachine -VirtualMachine $all -Id $item.vm_id
            }
            else {
                Select-HvVirtualMachine -VirtualMachine $all -Name $item.vm
            }
        }
        catch {
            @{ params = $params; error = $_.Exception.Message }
            continue
        }
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $vm
        $key = (@($identity.id) + @($DistinctBy | ForEach-Object { [string]$params[$_] })) -join '|'
        if ($seen.ContainsKey($key)) {
            @{ params = $params; error = "VM '$($identity.name)' ($($identity.id)) is listed more than once in vms." }
            continue
        }
        $seen[$key] = $true
        $params.vm = $null
        $params.vm_id = $identity.id
        $params.job_id = $null
        if ($null -ne $Module.Params.job_ids -and $Module.Params.job_ids.ContainsKey($identity.id)) {
            $params.job_id = [string]$Module.Params.job_ids[$identity.id]
        }
        @{ params = $params; identity = $identity; vm = $vm; error = $null }
    }
}

Function Invoke-HvVmBatch {
    <#
    .SYNOPSIS
    Runs a module's step for the VM of the task, or for each VM of vms with a result per VM.

    .DESCRIPTION
    Without vms the step runs against the module itself and ends the module. With vms each
    step starts its job without waiting; the jobs are waited on together up to wait_timeout,
    and a VM's step runs again with its job id when its job ends. ResumeOption names result
    keys a pending step sets that the step needs back as parameters when it runs again (the
    action plugin passes the same keys back). CollectKey names list results that add up over
    a VM's runs (what each run removed). DistinctBy: see Get-HvBatchParams. The module ends with results, and fails when a VM
    failed, naming each.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [scriptblock]
        $Step,

        [AllowEmptyCollection()]
        [string[]]
        $ResumeOption = @(),

        [AllowEmptyCollection()]
        [string[]]
        $CollectKey = @(),

        [AllowEmptyCollection()]
        [string[]]
        $DistinctBy = @()
    )

    if ($null -eq $Module.Params.vms) {
        if ($Module.Params.job_ids) {
            $Module.FailJson('job_ids maps the VMs of vms to their jobs; for one VM use job_id.')
        }
        $null = & $Step $Module
        $Module.ExitJson()
    }

    if ($Module.Params.job_id) {
        $Module.FailJson('job_id is the job of one VM; with vms use job_ids (VM id to job id).')
    }
    $deadline = [DateTime]::UtcNow.AddSeconds($Module.Params.wait_timeout)
    $entries = @(Get-HvBatchParams -Module $Module -DistinctBy $DistinctBy)
    $results = [object[]]::new($entries.Count)
    for ($index = 0; $index -lt $entries.Count; $index++) {
        $entry = $entries[$index]
        if ($entry.error) {
            $results[$index] = @{ changed = $false; failed = $true; vm = @{ name = $entry.params.vm; id = $entry.params.vm_id }; msg = $entry.error }
            continue
        }
        $entry.params.wait_timeout = 0
        $results[$index] = Invoke-HvVmStep -Module $Module -Step $Step -Params $entry.params -VirtualMachine $entry.vm
    }

    while ($true) {
        $waiting = @{}
        for ($index = 0; $index -lt $results.Count; $index++) {
            if ($results[$index].pending -and $null -ne $results[$index].job) {
                $waiting[[string]$results[$index].job.id] = $index
            }
        }
        $left = [int][Math]::Floor(($deadline - [DateTime]::UtcNow).TotalSeconds)
        if ($waiting.Count -eq 0 -or $left -le 0) {
            break
        }
        $ended = @(Wait-HvAnyCimJob -InstanceId @($waiting.Keys) -TimeoutSeconds $left)
        if ($ended.Count -eq 0) {
            break
        }
        foreach ($jobId in $ended) {
            $index = $waiting[$jobId]
            $params = $entries[$index].params.Clone()
            $params.job_id = $jobId
            foreach ($key in $ResumeOption) {
                if ($null -ne $results[$index][$key]) {
                    $params[$key] = $results[$index][$key]
                }
            }
            $before = $results[$index]
            $results[$index] = Invoke-HvVmStep -Module $Module -Step $Step -Params $params -VirtualMachine $entries[$index].vm
            $results[$index].changed = [bool]$before.changed -or [bool]$results[$index].changed
            foreach ($key in $CollectKey) {
                # @() around the pipeline: one item must stay a list in the result.
                $results[$index][$key] = @(@($before[$key]) + @($results[$index][$key]) | Where-Object { $null -ne $_ })
            }
        }
    }

    $Module.Result.results = $results
    $Module.Result.changed = @($results | Where-Object { $_.changed }).Count -gt 0
    if (@($results | Where-Object { $_.ContainsKey('pending') }).Count -gt 0) {
        # Only modules whose steps wait on jobs report pending.
        $Module.Result.pending = @($results | Where-Object { $_.pending }).Count -gt 0
    }
    $failed = @($results | Where-Object { $_.failed })
    if ($failed.Count -gt 0) {
        $Module.FailJson("$($failed.Count) of $($results.Count) VMs failed: $(($failed | ForEach-Object { $_.msg }) -join ' | ')")
    }
    $Module.ExitJson()
}

Function Get-HvBatchSpec {
    <#
    .SYNOPSIS
    Returns the argument spec of the VM selection of the modules that also take a list (vms).

    .DESCRIPTION
    vm and vm_id are documented by the doc fragment hyperv.backup.vm; each module documents
    vms (and job_ids where it starts jobs) itself, since the per-VM options differ.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param ()

    @{
        options = @{
            vm = @{ type = 'str' }
            vm_id = @{ type = 'str' }
        }
        mutually_exclusive = @(
            , @('vm', 'vm_id', 'vms')
        )
        required_one_of = @(
            , @('vm', 'vm_id', 'vms')
        )
    }
}

Export-ModuleMember -Function @(
    'Get-HvBatchParams'
    'Get-HvBatchSpec'
    'Get-HvStepVirtualMachine'
    'Invoke-HvVmBatch'
    'Invoke-HvVmStep'
    'New-HvStepModule'
    'Test-HvStepExit'
)
