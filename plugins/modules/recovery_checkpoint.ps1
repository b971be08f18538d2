#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvCheckpoint
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint
#AnsibleRequires -PowerShell ..module_utils._HvBatch
#AnsibleRequires -PowerShell ..module_utils._HvDestination

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        state = @{ type = 'str'; choices = @('absent', 'converted', 'present'); default = 'present' }
        consistency = @{ type = 'str'; choices = @('application', 'crash'); default = 'application' }
        crash_fallback = @{ type = 'bool'; default = $false }
        cleanup_leftovers = @{ type = 'bool'; default = $true }
        leftover_min_age = @{ type = 'int'; default = 720 }
        reference_point_name = @{ type = 'str' }
        mode = @{ type = 'str'; choices = @('full', 'incremental') }
        base = @{ type = 'str' }
        run_id = @{ type = 'str'; default = '' }
        list_reference_points = @{ type = 'bool'; default = $false }
        destination = @{ type = 'str' }
        wait_timeout = @{ type = 'int'; default = 30 }
        vms = Get-HvVmsSpec -Option @{
            consistency = @{ type = 'str'; choices = @('application', 'crash') }
            mode = @{ type = 'str'; choices = @('full', 'incremental') }
            base = @{ type = 'str' }
        }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec), (Get-HvJobWaitSpec)))

Function Set-PendingJob {
    <#
    .SYNOPSIS
    Makes a result wait on a job, with what the next run needs: the stage the job belongs to and what was done so far.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [string]
        $JobId,

        [Parameter(Mandatory)]
        [ValidateSet('leftover', 'create', 'remove', 'convert')]
        [string]
        $Stage,

        # The VM's recovery checkpoints before a creation, to find what it made if the job cannot say.
        [AllowEmptyCollection()]
        [string[]]
        $KnownBefore = @()
    )

    $job = Get-HvCimJob -InstanceId $JobId
    $Result.pending = $true
    $Result.job = if ($null -ne $job) { ConvertTo-HvJobResult -Job $job } else { @{ id = $JobId; state = 'gone' } }
    $Result._resume = @{
        stage = $Stage
        changed = [bool]$Result.changed
        consistency = $Result.consistency
        removed_leftovers = @($Result.removed_leftovers)
        known_before = @($KnownBefore)
    }
}

Function Set-PendingCheckpointRecord {
    <#
    .SYNOPSIS
    Records a started checkpoint creation (Record given) or forgets it (no Record) for a VM and label.

    .DESCRIPTION
    A creation is recorded (VM id, label, job, the VM's recovery checkpoints before it) as soon as
    Hyper-V has started it, and forgotten once the checkpoint is tagged or the job failed. A run
    whose controller died mid-job leaves the record, so the next run follows that job or tags what
    it made instead of making a second checkpoint.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity,

        [AllowNull()]
        [hashtable]
        $Record
    )

    $path = Get-HvPendingRecordPath -CatalogPath $Params.catalog_path -Kind checkpoints
    Set-HvPendingRecord -Path $path -VmId $Identity.id -Name $Params.name -Record $Record
}

Function Get-PendingCheckpointRecord {
    <#
    .SYNOPSIS
    Returns the record of a creation of this label an earlier run started, or nothing.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity
    )

    Get-HvPendingRecord -Path (Get-HvPendingRecordPath -CatalogPath $Params.catalog_path -Kind checkpoints) -VmId $Identity.id -Name $Params.name
}

Function Get-MadeCheckpoint {
    <#
    .SYNOPSIS
    Returns the recovery checkpoint a creation job made; throws when that cannot be told.

    .DESCRIPTION
    The job names it in CIM_AffectedJobElement; when the host has forgotten the job or it names
    nothing, it is the one untagged recovery checkpoint of the VM that was not there before.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        [AllowNull()]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [string]
        $JobId,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $KnownBefore,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity
    )

    if ($null -ne $Job) {
        $named = Get-HvJobProduct -Job $Job -ResultClassName Msvm_VirtualSystemSettingData | Select-Object -First 1
        if ($null -ne $named) {
            return $named
        }
    }
    $new = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine |
            Where-Object { $_.InstanceID -notin $KnownBefore -and -not (Test-HvCheckpointOwned -Checkpoint $_) })
    if ($new.Count -gt 1) {
        throw (New-HvStepFailure -Message ("Job $JobId ended without naming the checkpoint it made, and VM '$($Identity.name)' ($($Identity.id)) " +
                "has $($new.Count) new recovery checkpoints made by no run of this collection ($(($new | ForEach-Object { $_.InstanceID }) -join ', ')); " +
                "which one the job made cannot be told, and none was removed. Check them in Hyper-V Manager, then run the task again."))
    }
    $new | Select-Object -First 1
}

Function Get-EndedJob {
    <#
    .SYNOPSIS
    Returns the job this run was started for (_job_id): ended, or $null after setting the result pending again when it still runs.

    .DESCRIPTION
    A job the host no longer has is a failure of the step: what it made cannot be told from it.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $job = Get-HvCimJob -InstanceId $Params._job_id
    if ($null -eq $job) {
        $Result.job = @{ id = $Params._job_id; state = 'gone' }
        throw (New-HvStepFailure -Message ("$Action lost track of job $($Params._job_id): Hyper-V no longer has it. Check the VM in Hyper-V Manager, " +
                "then run the task again."))
    }
    if (-not (Test-HvCimJobFinished -Job $job)) {
        $knownBefore = @($Params._resume['known_before'] | Where-Object { $null -ne $_ })
        Set-PendingJob -Result $Result -JobId $Params._job_id -Stage $Params._resume.stage -KnownBefore $knownBefore
        return
    }
    $Result.job = ConvertTo-HvJobResult -Job $job
    $job
}

Function Set-CheckpointList {
    <#
    .SYNOPSIS
    Puts the VM's recovery checkpoints, as they are now, in a result.

    .DESCRIPTION
    Listed from the host unless the caller passes the list it read since its last change (each
    listing is one more Hyper-V call per VM).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [AllowEmptyCollection()]
        [object[]]
        $Listed
    )

    if (-not $PSBoundParameters.ContainsKey('Listed')) {
        $Listed = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
    }
    $Result.checkpoints = @($Listed | ForEach-Object { ConvertTo-HvCheckpointResult -Checkpoint $_ })
}

Function Complete-Checkpoint {
    <#
    .SYNOPSIS
    Names a checkpoint a creation made with this collection's tag and puts it in the result.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $Checkpoint,

        [Parameter(Mandatory)]
        [string]
        $Label
    )

    $null = Set-HvCheckpointTag -Checkpoint $Checkpoint -Label $Label
    $listed = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
    $tagged = Select-HvRecoveryCheckpoint -Checkpoint $listed -Label $Label
    $Result.checkpoint = ConvertTo-HvCheckpointResult -Checkpoint $tagged
    Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine -Listed $listed
    $Result
}

Function Get-Leftover {
    <#
    .SYNOPSIS
    Returns a recovery checkpoint of this collection, of another label, older than MinAgeMinutes, or nothing.

    .DESCRIPTION
    A younger one may belong to a run still going on this VM (two plays at once, a schedule that
    overlaps a manual run): removing it would break that run's export. One of a run that died is
    removed by the first run after it is old enough.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        # The VM's recovery checkpoints, as listed.
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Listed,

        [Parameter(Mandatory)]
        [int]
        $MinAgeMinutes
    )

    $Listed | Where-Object {
        (Test-HvCheckpointOwned -Checkpoint $_) -and (Test-OldEnough -Checkpoint $_ -MinAgeMinutes $MinAgeMinutes)
    } | Select-Object -First 1
}

Function Test-OldEnough {
    <#
    .SYNOPSIS
    Returns whether a checkpoint was made at least MinAgeMinutes ago; one without a creation time is never old enough.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Checkpoint,

        [Parameter(Mandatory)]
        [int]
        $MinAgeMinutes
    )

    $Checkpoint.CreationTime -is [datetime] -and $Checkpoint.CreationTime.ToUniversalTime() -le [datetime]::UtcNow.AddMinutes(-$MinAgeMinutes)
}

Function Get-YoungLeftoverWarning {
    <#
    .SYNOPSIS
    Returns a warning for each recovery checkpoint of this collection, of another label, that is too young to remove.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        # The VM's recovery checkpoints, as listed.
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Listed,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity,

        [Parameter(Mandatory)]
        [string]
        $Label,

        [Parameter(Mandatory)]
        [int]
        $MinAgeMinutes
    )

    foreach ($checkpoint in @($Listed | Where-Object { Test-HvCheckpointOwned -Checkpoint $_ })) {
        $found = ConvertTo-HvCheckpointResult -Checkpoint $checkpoint
        if ((Test-OldEnough -Checkpoint $checkpoint -MinAgeMinutes $MinAgeMinutes) -or [string]::Equals($found.label, $Label, [StringComparison]::Ordinal)) {
            continue
        }
        "VM '$($Identity.name)' ($($Identity.id)) has recovery checkpoint '$($found.label)' of this collection, made $($found.created), younger " +
        "than leftover_min_age ($MinAgeMinutes minutes): it may belong to a run still going, so it is left alone. If that run died, " +
        "the first run after it is old enough removes it; to remove it now, run recovery_checkpoint with name '$($found.label)' and state=absent."
    }
}

Function Test-LeftoverRemoved {
    <#
    .SYNOPSIS
    Returns whether this task removed leftover checkpoints: the only change of a creation that made nothing.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    @($Result.removed_leftovers | Where-Object { $null -ne $_ }).Count -gt 0
}

Function Start-Creation {
    <#
    .SYNOPSIS
    Removes the next leftover of an earlier failed run, or, when none is left, starts the creation; returns the result.

    .DESCRIPTION
    Leftovers are removed one at a time, each job followed before the next, so a VM never has a
    merge and a new checkpoint in flight together.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [string]
        $Consistency,

        # The VM's recovery checkpoints, when the caller listed them since its last change.
        [AllowEmptyCollection()]
        [object[]]
        $Listed
    )

    $label = $Params.name
    if (-not $PSBoundParameters.ContainsKey('Listed')) {
        $Listed = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
    }
    if ($Params.cleanup_leftovers) {
        $leftover = Get-Leftover -Listed $Listed -MinAgeMinutes $Params.leftover_min_age
        while ($null -ne $leftover) {
            # Left by an earlier run that failed half-way: it blocks merges and grows.
            $output = Remove-HvRecoveryCheckpoint -Checkpoint $leftover
            $Result.removed_leftovers = @($Result.removed_leftovers) + @(ConvertTo-HvCheckpointResult -Checkpoint $leftover)
            if ($null -ne $output.Job) {
                Set-PendingJob -Result $Result -JobId $output.Job.InstanceID -Stage leftover
                return $Result
            }
            $Listed = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
            $leftover = Get-Leftover -Listed $Listed -MinAgeMinutes $Params.leftover_min_age
        }
    }
    $Result.consistency = $Consistency
    $knownBefore = @($Listed | ForEach-Object { [string]$_.InstanceID })
    try {
        $output = New-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine -Consistency $Consistency
    }
    catch {
        # An invalid state (5, 32775) means little without the state the VM was in.
        $state = Get-HvVirtualMachineState -VirtualMachine $VirtualMachine
        $Result.changed = Test-LeftoverRemoved -Result $Result
        $reason = Get-HvFailureReason -ErrorRecord $_
        throw (New-HvStepFailure -Message ("Creating recovery checkpoint '$label' of VM '$($Result.vm.name)' ($($Result.vm.id)), which is $state, " +
                "failed: $reason") -ErrorRecord $_)
    }
    if ($null -ne $output.Job) {
        $recorded = @{
            VmIdentity = $Result.vm
            Name = $label
            Type = 'checkpoint'
            Consistency = $Consistency
            RunId = $Params.run_id
            KnownBefore = $knownBefore
        }
        $record = New-HvCatalogEntry @recorded
        $record.job_id = $output.Job.InstanceID
        Set-PendingCheckpointRecord -Params $Params -Identity $Result.vm -Record $record
        Set-PendingJob -Result $Result -JobId $output.Job.InstanceID -Stage create -KnownBefore $knownBefore
        return $Result
    }
    $made = Get-CimInstance -InputObject $output.ResultingSnapshot -ErrorAction Stop
    Complete-Checkpoint -Result $Result -VirtualMachine $VirtualMachine -Checkpoint $made -Label $label
}

Function Get-ConvertedEntry {
    <#
    .SYNOPSIS
    Returns the catalog entry of the reference point this label's checkpoint was converted to, or nothing.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity
    )

    $pointName = if ($Params.reference_point_name) { $Params.reference_point_name } else { $Params.name }
    $catalog = Read-HvCatalog -Path (Resolve-HvCatalogPath -Path $Params.catalog_path)
    Find-HvCatalogEntry -Catalog $catalog -VmId $Identity.id -Name $pointName | Select-Object -First 1
}

Function Test-RecentEntry {
    <#
    .SYNOPSIS
    Returns whether a catalog entry was made less than MinAgeMinutes ago (a run of the same label that died, not an older backup).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Entry,

        [Parameter(Mandatory)]
        [int]
        $MinAgeMinutes
    )

    $created = [datetime]::MinValue
    $styles = [System.Globalization.DateTimeStyles]::AssumeUniversal -bor [System.Globalization.DateTimeStyles]::AdjustToUniversal
    $parsed = [datetime]::TryParseExact([string]$Entry['created'], 'yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture,
        $styles, [ref]$created)
    $parsed -and $created -gt [datetime]::UtcNow.AddMinutes(-$MinAgeMinutes)
}

Function Get-ConvertedResult {
    <#
    .SYNOPSIS
    Returns the reference point of a catalog entry as the module reports it; name, status and job only while its conversion runs.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Entry,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity
    )

    $point = $null
    if ($Entry.instance_id) {
        $point = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $Entry.instance_id
    }
    if ($null -ne $point) {
        return ConvertTo-HvReferencePointResult -ReferencePoint $point -VmIdentity $Identity -CatalogEntry $Entry
    }
    @{ name = $Entry.name; status = $Entry.status; job_id = $Entry['job_id']; vm_id = $Identity.id; vm_name = $Identity.name }
}

Function Get-CheckpointPresent {
    <#
    .SYNOPSIS
    Returns the result of making sure the VM has the recovery checkpoint with this label.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $identity = $Result.vm
    $label = $Params.name
    $action = "Recovery checkpoint '$label' of VM '$($identity.name)'"
    if ($Params._job_id) {
        $job = Get-EndedJob -Params $Params -Result $Result -Action "Creating $action"
        if ($null -eq $job) {
            return $Result
        }
        $stage = $Params._resume.stage
        $jobResult = $Result.job
        if ($stage -eq 'leftover') {
            if (-not $jobResult.succeeded) {
                $removing = "Removing a leftover recovery checkpoint of VM '$($identity.name)' before creating $action"
                throw (New-HvStepFailure -Message (Format-HvJobFailure -JobResult $jobResult -Action $removing))
            }
            return Start-Creation -Params $Params -VirtualMachine $VirtualMachine -Result $Result -Consistency $Params.consistency
        }
        if ($jobResult.succeeded) {
            $found = @{
                Job = $job
                JobId = $Params._job_id
                VirtualMachine = $VirtualMachine
                KnownBefore = @($Params._resume['known_before'])
                Identity = $identity
            }
            $made = Get-MadeCheckpoint @found
            if ($null -eq $made) {
                Set-PendingCheckpointRecord -Params $Params -Identity $identity -Record $null
                $Result.changed = Test-LeftoverRemoved -Result $Result
                throw (New-HvStepFailure -Message ("Creating $action finished but Hyper-V reported no checkpoint and the VM has no new one; " +
                        "check the VM in Hyper-V Manager."))
            }
            $null = Complete-Checkpoint -Result $Result -VirtualMachine $VirtualMachine -Checkpoint $made -Label $label
            Set-PendingCheckpointRecord -Params $Params -Identity $identity -Record $null
            return $Result
        }
        Set-PendingCheckpointRecord -Params $Params -Identity $identity -Record $null
        $failure = Format-HvJobFailure -JobResult $jobResult -Action "Creating $action"
        if ($Result.consistency -ne 'application' -or -not $Params.crash_fallback) {
            # Hyper-V rolls a failed creation back: nothing was made.
            $Result.changed = Test-LeftoverRemoved -Result $Result
            throw (New-HvStepFailure -Message $failure)
        }
        # Application consistency needs the guest's integration services and VSS; when that fails
        # the caller may accept a crash-consistent checkpoint instead.
        $AnsibleModule.Warn("$failure Falling back to a crash-consistent checkpoint (crash_fallback=true).")
        return Start-Creation -Params $Params -VirtualMachine $VirtualMachine -Result $Result -Consistency crash
    }

    $existing = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
    $mine = Select-HvRecoveryCheckpoint -Checkpoint $existing -Label $label
    if ($null -ne $mine) {
        $Result.checkpoint = ConvertTo-HvCheckpointResult -Checkpoint $mine
        Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine -Listed $existing
        return $Result
    }
    $record = Get-PendingCheckpointRecord -Params $Params -Identity $identity
    if ($null -ne $record) {
        $resumed = Resume-RecordedCreation -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result -Record $record
        if ($null -ne $resumed) {
            return $resumed
        }
        $existing = @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine)
    }
    $converted = Get-ConvertedEntry -Params $Params -Identity $identity
    if ($null -ne $converted) {
        # An earlier run of this label converted its checkpoint already (a controller that died
        # after the conversion, a playbook run twice): a new checkpoint now would be exported and
        # converted by nobody, and grow on the VM's disks until someone removes it.
        if (-not (Test-RecentEntry -Entry $converted -MinAgeMinutes $Params.leftover_min_age)) {
            # Older than any run: the label is being used again (a fixed label, AWX job ids that
            # started over). Carrying on would report a backup made long ago as this run's.
            throw (New-HvStepFailure -Message ("Recovery checkpoint '$label' of VM '$($identity.name)' ($($identity.id)) was converted to a " +
                    "reference point at $($converted.created) already, longer ago than leftover_min_age ($($Params.leftover_min_age) minutes): " +
                    'this label belongs to an earlier backup. Give each run a label of its own. Nothing was changed.'))
        }
        $Result.consistency = $converted.consistency
        $Result.reference_point = Get-ConvertedResult -Entry $converted -VirtualMachine $VirtualMachine -Identity $identity
        Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine -Listed $existing
        return $Result
    }
    if ($Params.cleanup_leftovers) {
        $young = @{ Listed = $existing; Identity = $identity; Label = $label; MinAgeMinutes = $Params.leftover_min_age }
        foreach ($warning in @(Get-YoungLeftoverWarning @young)) {
            $AnsibleModule.Warn($warning)
        }
    }
    foreach ($other in @($existing | Where-Object { -not (Test-HvCheckpointOwned -Checkpoint $_) })) {
        $AnsibleModule.Warn("VM '$($identity.name)' has a recovery checkpoint '$($other.ElementName)' ($($other.InstanceID)) made by other software; " +
            "it is left alone.")
    }
    $consistency = Get-CreatableConsistency -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result
    $Result.changed = $true
    $Result.consistency = $consistency
    if ($AnsibleModule.CheckMode) {
        return $Result
    }
    Start-Creation -Params $Params -VirtualMachine $VirtualMachine -Result $Result -Consistency $consistency -Listed $existing
}

Function Resume-RecordedCreation {
    <#
    .SYNOPSIS
    Returns the result of a creation an earlier run started and did not see end, or nothing when there is nothing left of it.

    .DESCRIPTION
    Still running: the result waits on that job. Ended with a checkpoint (named by the job, or
    found as the VM's one new untagged recovery checkpoint): it is tagged and returned. Ended
    without one: the record is dropped and the caller creates as usual.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [hashtable]
        $Record
    )

    $identity = $Result.vm
    $job = Get-HvCimJob -InstanceId $Record.job_id
    $Result.consistency = $Record.consistency
    if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
        $Result.changed = $true
        Set-PendingJob -Result $Result -JobId $Record.job_id -Stage create -KnownBefore @($Record['known_before'])
        return $Result
    }
    $made = $null
    if ($null -eq $job -or (Test-HvCimJobSucceeded -Job $job)) {
        $made = Get-MadeCheckpoint -Job $job -JobId $Record.job_id -VirtualMachine $VirtualMachine -KnownBefore @($Record['known_before']) -Identity $identity
    }
    if ($AnsibleModule.CheckMode) {
        $Result.changed = $null -ne $made
        return $(if ($null -ne $made) { $Result } else { $null })
    }
    if ($null -eq $made) {
        Set-PendingCheckpointRecord -Params $Params -Identity $identity -Record $null
        return $null
    }
    $AnsibleModule.Warn("Recovery checkpoint '$($Params.name)' of VM '$($identity.name)' ($($identity.id)) was made by job $($Record.job_id) of a run " +
        "that did not see it end; it is tagged now instead of making a second one.")
    $Result.changed = $true
    $null = Complete-Checkpoint -Result $Result -VirtualMachine $VirtualMachine -Checkpoint $made -Label $Params.name
    Set-PendingCheckpointRecord -Params $Params -Identity $identity -Record $null
    $Result
}

Function Get-CreatableConsistency {
    <#
    .SYNOPSIS
    Returns the consistency the VM's checkpoint can be made with, after warning about what it leaves out; throws what stops it.

    .DESCRIPTION
    Checked before any change (in check mode too): what stops RCT on this VM (configuration
    version, VHD and VHD Set disks), and whether its state allows the consistency asked for.
    Pass-through disks cannot be checkpointed (IgnoreNonSnapshottableDisks leaves them out), so
    they are named in a warning: they are not in this backup.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $about = "Recovery checkpoint '$($Params.name)' of VM '$($Result.vm.name)' ($($Result.vm.id))"
    $setting = Get-HvVirtualMachineSetting -VirtualMachine $VirtualMachine
    $drives = @(Get-HvVirtualMachineDrive -Setting $setting)
    $blockers = @(Get-HvRctBlocker -Setting $setting -Drive $drives)
    if ($blockers.Count -gt 0) {
        throw (New-HvStepFailure -Message "$about was refused before any change: $($blockers -join '; ').")
    }
    foreach ($disk in @($drives | Where-Object { $_.kind -eq 'passthrough' })) {
        $AnsibleModule.Warn("$about leaves out pass-through disk '$($disk.path)': Hyper-V cannot checkpoint a disk the guest owns, " +
            "so it is not in this backup; back it up from inside the guest.")
    }
    $state = Get-HvVirtualMachineState -VirtualMachine $VirtualMachine
    try {
        $choice = Get-HvCheckpointConsistency -Asked $Params.consistency -State $state -CrashFallback ([bool]$Params.crash_fallback)
    }
    catch {
        throw (New-HvStepFailure -Message "$about was refused before any change: $($_.Exception.Message).")
    }
    if ($null -ne $choice.warning) {
        $AnsibleModule.Warn("${about}: $($choice.warning).")
    }
    $choice.consistency
}

Function Get-CheckpointAbsent {
    <#
    .SYNOPSIS
    Returns the result of making sure the VM has no recovery checkpoint with this label.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $action = "Recovery checkpoint '$($Params.name)' of VM '$($Result.vm.name)'"
    if ($Params._job_id) {
        $job = Get-EndedJob -Params $Params -Result $Result -Action "Removing $action"
        if ($null -eq $job) {
            return $Result
        }
        if (-not $Result.job.succeeded) {
            throw (New-HvStepFailure -Message (Format-HvJobFailure -JobResult $Result.job -Action "Removing $action"))
        }
    }
    $mine = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $Params.name
    if ($null -ne $mine) {
        $Result.changed = $true
        if (-not $AnsibleModule.CheckMode) {
            $output = Remove-HvRecoveryCheckpoint -Checkpoint $mine
            if ($null -ne $output.Job) {
                Set-PendingJob -Result $Result -JobId $output.Job.InstanceID -Stage remove
                return $Result
            }
        }
    }
    Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine
    $Result
}

Function Get-CheckpointConverted {
    <#
    .SYNOPSIS
    Returns the result of turning the checkpoint into the reference point reference_point_name, recorded in the catalog.

    .DESCRIPTION
    The catalog entry is written pending, with the conversion's job, before the job is followed:
    a run that dies follows the same job when run again, never converting twice. A conversion
    that fails drops the pending entry; the checkpoint is still there to convert again.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $identity = $Result.vm
    $label = $Params.name
    $pointName = if ($Params.reference_point_name) { $Params.reference_point_name } else { $label }
    $catalogPath = Resolve-HvCatalogPath -Path $Params.catalog_path
    $action = "Recovery checkpoint '$label' of VM '$($identity.name)'"
    $catalog = Read-HvCatalog -Path $catalogPath
    $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name $pointName | Select-Object -First 1
    $point = $null
    if ($null -ne $entry -and $entry.status -eq 'ready') {
        $point = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $entry.instance_id
    }
    if ($null -eq $point -and $null -ne $entry -and $entry.status -eq 'pending' -and $entry.job_id) {
        # A conversion started by this task's previous run, or by a run that stopped: follow it.
        $job = Get-HvCimJob -InstanceId $entry.job_id
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            $Result.changed = $true
            Set-PendingJob -Result $Result -JobId $entry.job_id -Stage convert
            return $Result
        }
        $Result.job = if ($null -ne $job) { ConvertTo-HvJobResult -Job $job } else { @{ id = $entry.job_id; state = 'gone' } }
        $recordedIds = @($catalog.entries | ForEach-Object { $_['instance_id'] } | Where-Object { $_ })
        $lookup = @{ Job = $job; JobId = $entry.job_id; VirtualMachine = $VirtualMachine; KnownBefore = @($entry['known_before']); Recorded = $recordedIds }
        $made = Get-HvCreatedReferencePoint @lookup
        if ($AnsibleModule.CheckMode) {
            $Result.changed = $true
            return $Result
        }
        $null = Update-HvCatalog -Path $catalogPath -Change {
            param ($current)
            if ($null -eq $made) {
                Remove-HvCatalogEntry -Catalog $current -VmId $entry.vm_id -Name $entry.name
            }
            else {
                $entry.status = 'ready'
                $entry.instance_id = $made.InstanceID
                Set-HvCatalogEntry -Catalog $current -Entry $entry
            }
        }
        if ($null -eq $made) {
            $Result.changed = $false
            $message = if ($null -eq $job) {
                "Converting $action lost track of job $($entry.job_id): Hyper-V no longer has it and no reference point it made can be found. " +
                "Run reference_point_info and the task again."
            }
            elseif ($Result.job.succeeded) {
                "Converting $action finished but Hyper-V reported no reference point; run reference_point_info to check."
            }
            else {
                Format-HvJobFailure -JobResult $Result.job -Action "Converting $action"
            }
            throw (New-HvStepFailure -Message $message)
        }
        $Result.changed = $true
        $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $made -VmIdentity $identity -CatalogEntry $entry
        Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine
        return $Result
    }
    if ($null -ne $point) {
        $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $point -VmIdentity $identity -CatalogEntry $entry
        Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine
        return $Result
    }

    $mine = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $label
    if ($null -eq $mine -and -not $AnsibleModule.CheckMode) {
        throw (New-HvStepFailure -Message "$action does not exist, so it cannot be converted to reference point '$pointName'; create it first (state=present).")
    }
    # In check mode a missing checkpoint is the one the state=present task before this one, in
    # check mode too, would have made: the conversion is reported as it would happen.
    $Result.changed = $true
    if ($AnsibleModule.CheckMode) {
        return $Result
    }
    $recorded = @{
        VmIdentity = $identity
        Name = $pointName
        Type = 'rct'
        Consistency = $Params.consistency
        RunId = $Params.run_id
        Mode = $Params.mode
        Base = $Params.base
        KnownBefore = @(Get-HvReferencePoint -VirtualMachine $VirtualMachine | ForEach-Object { [string]$_.InstanceID })
    }
    $newEntry = New-HvCatalogEntry @recorded
    $output = Update-HvCatalog -Path $catalogPath -Change {
        param ($current)
        $started = Convert-HvRecoveryCheckpoint -Checkpoint $mine
        if ($null -ne $started.Job) {
            $newEntry.job_id = $started.Job.InstanceID
        }
        else {
            $newEntry.status = 'ready'
            $newEntry.instance_id = $started.ResultingReferencePoint.InstanceID
        }
        Set-HvCatalogEntry -Catalog $current -Entry $newEntry
        $started
    }
    if ($null -ne $output.Job) {
        Set-PendingJob -Result $Result -JobId $output.Job.InstanceID -Stage convert
        return $Result
    }
    $point = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $newEntry.instance_id
    $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $point -VmIdentity $identity -CatalogEntry $newEntry
    Set-CheckpointList -Result $Result -VirtualMachine $VirtualMachine
    $Result
}

Function Invoke-CheckpointStep {
    <#
    .SYNOPSIS
    Returns the VM's result of the task's work for one VM (see _HvBatch for how steps run).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    # What an earlier run of this step decided and did (_resume) carries on into this one.
    $resume = if ($null -ne $Params._resume) { $Params._resume } else { @{} }
    $Result.pending = $false
    $Result.checkpoint = $null
    $Result.consistency = $resume.consistency
    $Result.reference_point = $null
    $Result.removed_leftovers = @($resume.removed_leftovers | Where-Object { $null -ne $_ })
    $Result.checkpoints = @()
    $Result.job = $null
    $work = @{ Params = $Params; VirtualMachine = $VirtualMachine; AnsibleModule = $AnsibleModule; Result = $Result }
    $done = switch ($Params.state) {
        'present' { Get-CheckpointPresent @work }
        'absent' { Get-CheckpointAbsent @work }
        'converted' { Get-CheckpointConverted @work }
    }
    if ($Params.list_reference_points -and [object]::ReferenceEquals($done, $Result) -and -not $Result.pending) {
        # Read after the step, so a playbook chooses bases or plans retention from this result without a listing of its own.
        try {
            $catalog = Read-HvCatalog -Path (Resolve-HvCatalogPath -Path $Params.catalog_path)
            $Result.reference_points = (Get-HvReferencePointListing -VirtualMachine $VirtualMachine -VmIdentity $Result.vm -Catalog $catalog).reference_points
        }
        catch {
            $about = "Recovery checkpoint '$($Params.name)' of VM '$($Result.vm.name)' ($($Result.vm.id))"
            $message = "$about is $($Params.state), but listing the VM's reference points afterwards failed (list_reference_points): " +
            "$($_.Exception.Message). Run the task again: what is done is not done twice."
            throw (New-HvStepFailure -ErrorRecord $_ -Message $message)
        }
    }
    $done
}

if ($module.Params.leftover_min_age -lt 0) {
    $module.FailJson("leftover_min_age must be 0 or more minutes, got $($module.Params.leftover_min_age).")
}
if ($null -ne $module.Params.destination) {
    if ($module.Params.state -ne 'present') {
        $module.FailJson("destination is checked before checkpoints are made: it goes with state=present, not state=$($module.Params.state).")
    }
    # Checked once, before any VM's checkpoint (a rerun that finishes followed jobs, _resume, made them already):
    # a folder backups cannot go to would fail every export after every checkpoint.
    if ($null -eq $module.Params._resume) {
        try {
            $module.Result.destination = Get-HvDestinationState -Path $module.Params.destination
        }
        catch {
            $module.FailJson("Checking backup destination '$($module.Params.destination)' failed: $($_.Exception.Message) Nothing was changed.", $_)
        }
        if (-not $module.Result.destination.usable) {
            $module.FailJson("Backup destination $($module.Result.destination.problem) Nothing was changed.")
        }
    }
}
Invoke-HvVmBatch -Module $module -Step (Get-Command -Name Invoke-CheckpointStep) -Subject { param ($params) "Recovery checkpoint '$($params.name)'" }
