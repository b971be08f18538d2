# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Internal to hyperv.backup: the driver that runs a module's work for one VM (vm, vm_id) or for
# each VM of a list (vms), and the only code that ends a module.
#
# A module's work for one VM is a step: a function that takes the VM's parameters, the VM, the
# module (for check mode and warnings) and the VM's result to fill (it holds changed and vm when
# the step starts), and returns that result. A step never waits on a Hyper-V job: it starts the
# job and returns with pending = $true and the job, and is run again with the job's id
# (_job_id) once the job has ended. Whatever a step needs back on that run (what it decided,
# what it did so far) it puts in the result's _resume hashtable; the driver here and the action
# plugin on the controller hand _resume back as they got it and never look inside. A step that
# fails throws the error New-HvStepFailure makes; any other error fails the VM all the same,
# with what the result held so far.
#
# The driver runs every VM's step, waits on all the pending jobs together up to wait_timeout,
# runs a VM's step again as soon as its job ends, and ends the module: with the one VM's result,
# or with results (one per VM, in the order of vms), failing when a VM failed.

#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvCimJob

$script:HvStepFailureId = 'HvStepFailure'

Function New-HvStepFailure {
    <#
    .SYNOPSIS
    Returns the error a step throws when it fails: its message, and the error behind it if any.

    .EXAMPLE
    throw (New-HvStepFailure -Message "$action failed: $($_.Exception.Message)" -ErrorRecord $_)
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.ErrorRecord])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Message,

        [AllowNull()]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    $exception = if ($null -ne $ErrorRecord) {
        [System.Exception]::new($Message, $ErrorRecord.Exception)
    }
    else {
        [System.Exception]::new($Message)
    }
    [System.Management.Automation.ErrorRecord]::new($exception, $script:HvStepFailureId, 'NotSpecified', @{ cause = $ErrorRecord })
}

Function Format-HvErrorDetail {
    <#
    .SYNOPSIS
    Returns an error's text with where it happened, as a failed result's exception shows it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    $lines = @("$($ErrorRecord.Exception.GetType().FullName): $($ErrorRecord.Exception.Message)")
    if ($ErrorRecord.InvocationInfo -and $ErrorRecord.InvocationInfo.PositionMessage) {
        $lines += $ErrorRecord.InvocationInfo.PositionMessage
    }
    if ($ErrorRecord.ScriptStackTrace) {
        $lines += $ErrorRecord.ScriptStackTrace
    }
    $lines -join "`n"
}

Function Invoke-HvStep {
    <#
    .SYNOPSIS
    Returns the result of one run of a step for one VM; it always holds failed, and msg when it failed.

    .DESCRIPTION
    A failure keeps what the step put in its result so far. A failure the step words
    (New-HvStepFailure) has its message; any other error is the VM's failure with what the step
    was about. A step that returns anything but its result (after an empty catch swallowed an
    error, say) fails the VM, naming the step. The error behind a failure is kept under _cause
    for the driver, and its text and position under exception.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.CommandInfo]
        $Step,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [string]
        $Subject
    )

    $identity = Get-HvVirtualMachineIdentity -VirtualMachine $VirtualMachine
    $about = "$Subject of VM '$($identity.name)' ($($identity.id))"
    # What an earlier run of the step changed stays changed.
    $result = @{ changed = [bool]($null -ne $Params._resume -and $Params._resume.changed); vm = $identity }
    try {
        $output = @(& $Step -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $result)
    }
    catch {
        $result.failed = $true
        if ($_.FullyQualifiedErrorId -eq $script:HvStepFailureId) {
            $result.msg = $_.Exception.Message
            $cause = $_.TargetObject.cause
        }
        else {
            $result.msg = "${about}: $($_.Exception.Message)"
            $cause = $_
        }
        if ($null -ne $cause) {
            $result._cause = $cause
            $result.exception = Format-HvErrorDetail -ErrorRecord $cause
        }
        $result.Remove('_resume')
        return $result
    }
    if ($output.Count -ne 1 -or -not [object]::ReferenceEquals($output[0], $result)) {
        $result.failed = $true
        $result.msg = ("${about}: the step $($Step.Name) returned $($output.Count) values instead of its result, so what it did is not known; " +
            "this is a bug in hyperv.backup, please report it with this message.")
        $result.Remove('_resume')
        return $result
    }
    $result.failed = $false
    $result
}

Function Test-HvHoldingResult {
    <#
    .SYNOPSIS
    Returns whether a VM's result waits on a job of its own (which holds the VM until it ends).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [AllowNull()]
        [hashtable]
        $Result
    )

    # Indexers: a result holds only the keys its step set.
    [bool]($null -ne $Result -and -not $Result['failed'] -and $Result['pending'] -and $Result['job'] -and -not (Test-HvDeferredResult -Result $Result))
}

Function Test-HvDeferredResult {
    <#
    .SYNOPSIS
    Returns whether a result stands for an entry that waits for another entry's job on the same VM.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [AllowNull()]
        [hashtable]
        $Result
    )

    $resume = if ($null -ne $Result) { $Result['_resume'] } else { $null }
    [bool]($resume -is [System.Collections.IDictionary] -and $resume['deferred'])
}

Function Start-HvWaitingEntry {
    <#
    .SYNOPSIS
    Runs the step of each entry not run yet, in order, unless a job of another entry holds its VM.

    .DESCRIPTION
    Hyper-V refuses a second operation on a VM while one runs (32775), so an entry whose VM is
    held (two reference points of one VM in vms) gets a pending result that follows the holding
    job, with _resume.deferred; once that job has ended (in this run, or in a run the action
    plugin starts), the entry's step runs as a first run.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [AllowNull()]
        [object[]]
        $Results,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Entries,

        [Parameter(Mandatory)]
        [System.Management.Automation.CommandInfo]
        $Step,

        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [scriptblock]
        $Subject
    )

    for ($index = 0; $index -lt $Entries.Count; $index++) {
        if ($null -ne $Results[$index]) {
            continue
        }
        $entry = $Entries[$index]
        $holder = $null
        for ($other = 0; $other -lt $Entries.Count; $other++) {
            if ($other -ne $index -and $null -ne $Entries[$other].vm -and $Entries[$other].vm.Name -eq $entry.vm.Name -and
                (Test-HvHoldingResult -Result $Results[$other])) {
                $holder = $Results[$other]
                break
            }
        }
        if ($null -ne $holder) {
            $identity = Get-HvVirtualMachineIdentity -VirtualMachine $entry.vm
            $Results[$index] = @{ changed = $false; failed = $false; pending = $true; vm = $identity; job = $holder.job; _resume = @{ deferred = $true } }
            continue
        }
        $Results[$index] = Invoke-HvStep -Step $Step -AnsibleModule $Module -Params $entry.params -VirtualMachine $entry.vm -Subject (& $Subject $entry.params)
    }
}

Function Get-HvResumedJob {
    <#
    .SYNOPSIS
    Returns the _resume entries of a run the action plugin started again (one per VM, in order), or $null on a first run.

    .DESCRIPTION
    The collection alone sets _resume; an entry for each VM of the run keeps one VM's job and
    state from being handed to another. A count that does not match is refused before any VM is
    touched.
    #>
    [CmdletBinding()]
    [OutputType([object[]])]
    param (
        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [int]
        $Count
    )

    if ($null -eq $AnsibleModule.Params._resume) {
        return $null
    }
    $entries = @($AnsibleModule.Params._resume)
    if ($entries.Count -ne $Count) {
        throw "_resume holds $($entries.Count) entries for $Count VMs; it is set only by the collection's action plugins, do not set it in a task."
    }
    , $entries
}

Function Get-HvBatchEntry {
    <#
    .SYNOPSIS
    Returns each VM a task names with its parameters: the task's, with the VM's own values over them.

    .DESCRIPTION
    Without vms, the one VM of vm or vm_id. With vms, each entry in order; the host's VMs are
    listed once for all. A VM that cannot be found, or is listed twice (DistinctBy names the options
    that let one VM be listed once per value, as one reference point per name), gets the error
    instead of the VM.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [scriptblock]
        $Subject,

        [AllowEmptyCollection()]
        [string[]]
        $DistinctBy = @(),

        [AllowNull()]
        [object[]]
        $Resumed
    )

    $taskParams = @{}
    foreach ($key in $AnsibleModule.Params.Keys) {
        if ($key -notin @('vms', '_resume')) {
            $taskParams[$key] = $AnsibleModule.Params[$key]
        }
    }
    $elements = @(if ($null -eq $AnsibleModule.Params.vms) { @{} } else { $AnsibleModule.Params.vms })
    $all = $null
    # Ordinal: a hashtable compares keys ignoring case (by culture in Windows PowerShell), but
    # 'Nightly' and 'nightly' are two reference points of one VM. The id part is lower case.
    $seen = [System.Collections.Generic.HashSet[string]]::new([StringComparer]::Ordinal)
    for ($index = 0; $index -lt $elements.Count; $index++) {
        $element = $elements[$index]
        $params = $taskParams.Clone()
        foreach ($key in $element.Keys) {
            if ($null -ne $element[$key]) {
                $params[$key] = $element[$key]
            }
        }
        # A step sees the job it is run again for, and what it asked back, as _job_id and _resume
        # ($null on a first run).
        $params._job_id = if ($null -ne $Resumed) { $Resumed[$index].job_id } else { $null }
        $params._resume = if ($null -ne $Resumed) { $Resumed[$index].state } else { $null }
        # vm_id given as '' is still the option given: it is refused as no GUID, not read as vm.
        $byId = $null -ne $params.vm_id
        $given = if ($byId) { $params.vm_id } else { $params.vm }
        $entry = @{ params = $params; vm = $null; error = $null; given = @{ name = $params.vm; id = $params.vm_id } }
        try {
            if ($null -eq $all) {
                $all = @(Get-HvVirtualMachineList)
            }
            $entry.vm = if ($byId) {
                Select-HvVirtualMachine -VirtualMachine $all -Id $params.vm_id
            }
            else {
                Select-HvVirtualMachine -VirtualMachine $all -Name $params.vm
            }
        }
        catch {
            $entry.error = "$(& $Subject $params) of VM '$given': $($_.Exception.Message)"
            $entry
            continue
        }
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine $entry.vm
        $key = (@($identity.id.ToLowerInvariant()) + @($DistinctBy | ForEach-Object { [string]$params[$_] })) -join '|'
        if (-not $seen.Add($key)) {
            # Named as the VM it is, however it was spelled: the caller files it under that VM.
            $entry.given = $identity
            $entry.vm = $null
            $entry.error = "VM '$($identity.name)' ($($identity.id)) is listed more than once in vms."
            $entry
            continue
        }
        $params.vm = $identity.name
        $params.vm_id = $identity.id
        $entry
    }
}

Function Invoke-HvVmBatch {
    <#
    .SYNOPSIS
    Runs a module's step for the VM of the task, or for each VM of vms, and ends the module.

    .DESCRIPTION
    Step is the step function (see the top of this file); Subject returns, for a VM's parameters,
    what the step works on ('Reference point', "Recovery checkpoint 'nightly'"), for messages
    about a VM the step never ran for. Every VM's step starts its job; the jobs are then waited on
    together up to wait_timeout, and a VM's step runs again (with _job_id, and its _resume) as
    soon as its job has ended. Without vms the module ends with the VM's result; with vms with
    results, one per VM in the order given, and fails when a VM failed, naming each.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Module,

        [Parameter(Mandatory)]
        [System.Management.Automation.CommandInfo]
        $Step,

        [Parameter(Mandatory)]
        [scriptblock]
        $Subject,

        [AllowEmptyCollection()]
        [string[]]
        $DistinctBy = @()
    )

    $single = $null -eq $Module.Params.vms
    $waitTimeout = $Module.Params.wait_timeout
    if ($null -ne $waitTimeout -and $waitTimeout -lt 0) {
        $Module.FailJson("wait_timeout must be 0 or more seconds, got $waitTimeout.")
    }
    $count = if ($single) { 1 } else { @($Module.Params.vms).Count }
    try {
        $resumed = Get-HvResumedJob -AnsibleModule $Module -Count $count
    }
    catch {
        $Module.FailJson($_.Exception.Message)
    }
    try {
        $entries = @(Get-HvBatchEntry -AnsibleModule $Module -Subject $Subject -DistinctBy $DistinctBy -Resumed $resumed)
    }
    catch {
        $Module.FailJson("Listing the virtual machines of host $env:COMPUTERNAME failed: $($_.Exception.Message)", $_)
    }
    $results = [object[]]::new($entries.Count)
    for ($index = 0; $index -lt $entries.Count; $index++) {
        $entry = $entries[$index]
        if ($entry.error) {
            $results[$index] = @{ changed = $false; failed = $true; vm = $entry.given; msg = $entry.error }
        }
        elseif ($entry.params._job_id -and -not (Test-HvDeferredResult -Result @{ _resume = $entry.params._resume })) {
            $first = @{ Step = $Step; AnsibleModule = $Module; Params = $entry.params; VirtualMachine = $entry.vm; Subject = (& $Subject $entry.params) }
            $results[$index] = Invoke-HvStep @first
        }
        else {
            # A first run, or one deferred behind another entry of its VM: started below, in order.
            $entry.params._job_id = $null
            $entry.params._resume = $null
        }
    }
    $run = @{ Results = $results; Entries = $entries; Step = $Step; Module = $Module; Subject = $Subject }
    Start-HvWaitingEntry @run
    # From now, not from the module's start: starting the jobs of many VMs takes seconds each, and a
    # wait counted from the start would be spent before the last job had begun, handing every job,
    # however short, to the controller (a poll and a run more per step).
    $deadline = [DateTime]::UtcNow.AddSeconds([int]$waitTimeout)

    while ($true) {
        $waiting = @{}
        for ($index = 0; $index -lt $results.Count; $index++) {
            # Indexers: a result holds only the keys its step set.
            if ((Test-HvHoldingResult -Result $results[$index])) {
                $waiting[[string]$results[$index].job.id] = $index
            }
        }
        # wait_timeout 0 hands every job to the controller unread.
        if ($waiting.Count -eq 0 -or $Module.CheckMode -or [int]$waitTimeout -le 0) {
            break
        }
        # Past the deadline the jobs are read once more, not waited on: the time limits the wait,
        # and finishing a job that has ended here costs less than the controller's poll and a new
        # module run for it. On a busy host a step's own work on the jobs that ended (tagging,
        # recording) can outlast the wait; they were handed on, and cost a poll and a run more.
        # Rounded up: 0.4 s left is a wait of 1 s, not none (a wait_timeout of 1 would never wait).
        $left = [int][Math]::Max(0, [Math]::Ceiling(($deadline - [DateTime]::UtcNow).TotalSeconds))
        $ended = @(Wait-HvAnyCimJob -InstanceId @($waiting.Keys) -TimeoutSeconds $left)
        if ($ended.Count -eq 0) {
            break
        }
        $last = $left -eq 0
        foreach ($jobId in $ended) {
            $index = $waiting[$jobId]
            $params = $entries[$index].params.Clone()
            $params._job_id = $jobId
            $params._resume = $results[$index]['_resume']
            $rerun = @{ Step = $Step; AnsibleModule = $Module; Params = $params; VirtualMachine = $entries[$index].vm; Subject = (& $Subject $params) }
            $results[$index] = Invoke-HvStep @rerun
        }
        for ($index = 0; $index -lt $results.Count; $index++) {
            if (Test-HvDeferredResult -Result $results[$index]) {
                $results[$index] = $null
            }
        }
        # Entries deferred behind a job that ended start now, past the deadline too: their jobs go
        # to the controller with the others still running.
        Start-HvWaitingEntry @run
        if ($last) {
            break
        }
    }

    if ($single) {
        $result = $results[0]
        $cause = $result['_cause']
        foreach ($key in @($result.Keys)) {
            if ($key -notin @('failed', 'msg', 'exception', '_cause', 'diff')) {
                $Module.Result[$key] = $result[$key]
            }
        }
        if ($result.ContainsKey('diff')) {
            $Module.Diff.before = $result.diff.before
            $Module.Diff.after = $result.diff.after
        }
        if ($result.failed) {
            if ($null -ne $cause) {
                $Module.FailJson($result.msg, $cause)
            }
            $Module.FailJson($result.msg)
        }
        $Module.ExitJson()
    }

    foreach ($result in $results) {
        $result.Remove('_cause')
        $result.Remove('diff')
    }
    $Module.Result.results = $results
    $Module.Result.changed = @($results | Where-Object { $_.changed }).Count -gt 0
    if (@($results | Where-Object { $_.ContainsKey('pending') }).Count -gt 0) {
        # Only modules whose steps start jobs report pending.
        $Module.Result.pending = @($results | Where-Object { $_['pending'] }).Count -gt 0
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
    Returns the argument spec shared by the modules that take one VM (vm, vm_id) or a list (vms).

    .DESCRIPTION
    vm and vm_id are documented by the doc fragment hyperv.backup.vm; each module documents vms
    itself, since the per-VM options differ. _resume is set only by the collection's action plugins
    and documented as internal by the doc fragment hyperv.backup.internal.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param ()

    @{
        options = @{
            vm = @{ type = 'str' }
            vm_id = @{ type = 'str' }
            _resume = @{
                type = 'list'
                elements = 'dict'
                options = @{
                    job_id = @{ type = 'str'; required = $true }
                    state = @{ type = 'dict' }
                }
            }
        }
        mutually_exclusive = @(, @('vm', 'vm_id', 'vms'))
        required_one_of = @(, @('vm', 'vm_id', 'vms'))
    }
}

Function Get-HvVmsSpec {
    <#
    .SYNOPSIS
    Returns the argument spec of vms: a list of VMs, each with vm or vm_id and the module's per-VM options.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Option,

        [AllowEmptyCollection()]
        [object[]]
        $MutuallyExclusive = @()
    )

    $options = @{
        vm = @{ type = 'str' }
        vm_id = @{ type = 'str' }
    }
    foreach ($name in $Option.Keys) {
        $options[$name] = $Option[$name]
    }
    @{
        type = 'list'
        elements = 'dict'
        options = $options
        mutually_exclusive = @(, @('vm', 'vm_id')) + $MutuallyExclusive
        required_one_of = @(, @('vm', 'vm_id'))
    }
}

Export-ModuleMember -Function @(
    'Get-HvBatchSpec'
    'Get-HvVmsSpec'
    'Invoke-HvStep'
    'Invoke-HvVmBatch'
    'New-HvStepFailure'
)
