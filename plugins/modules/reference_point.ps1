#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint
#AnsibleRequires -PowerShell ..module_utils._HvBatch

$spec = @{
    options = @{
        name = @{ type = 'str' }
        instance_id = @{ type = 'str' }
        state = @{ type = 'str'; choices = @('absent', 'present'); default = 'present' }
        type = @{ type = 'str'; choices = @('log', 'rct'); default = 'rct' }
        consistency = @{ type = 'str'; choices = @('application', 'crash'); default = 'application' }
        allow_foreign = @{ type = 'bool'; default = $false }
        run_id = @{ type = 'str'; default = '' }
        wait_timeout = @{ type = 'int'; default = 30 }
        vms = Get-HvVmsSpec -Option @{
            name = @{ type = 'str' }
            instance_id = @{ type = 'str' }
        } -MutuallyExclusive @(, @('name', 'instance_id'))
    }
    mutually_exclusive = @(, @('name', 'instance_id'))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec), (Get-HvJobWaitSpec)))

Function Get-EntryView {
    <#
    .SYNOPSIS
    Returns a catalog entry as the diff shows it (an empty hashtable for none).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [AllowNull()]
        [hashtable]
        $Entry
    )

    if ($null -eq $Entry) {
        return @{}
    }
    $Entry.Clone()
}

Function Get-CreatedReferencePoint {
    <#
    .SYNOPSIS
    Returns the reference point the creation job of a pending entry made, or nothing if it made none.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [AllowNull()]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [hashtable]
        $Entry,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Catalog
    )

    $recorded = @($Catalog.entries | ForEach-Object { $_['instance_id'] } | Where-Object { $_ })
    Get-HvCreatedReferencePoint -Job $Job -JobId $Entry.job_id -VirtualMachine $VirtualMachine -KnownBefore @($Entry['known_before']) -Recorded $recorded
}

Function Complete-Entry {
    <#
    .SYNOPSIS
    Records in the catalog how a creation job ended; returns the reference point it made.

    .DESCRIPTION
    A job that made a reference point turns the pending entry into a ready one. A job that
    failed, or vanished without a product, drops the pending entry, so the next run creates
    again rather than waiting for something that will never come.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [hashtable]
        $Entry,

        [AllowNull()]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $Catalog
    )

    $made = Get-CreatedReferencePoint -Job $Job -Entry $Entry -VirtualMachine $VirtualMachine -Catalog $Catalog
    $null = Update-HvCatalog -Path $Path -Change {
        param ($catalog)
        if ($null -eq $made) {
            Remove-HvCatalogEntry -Catalog $catalog -VmId $Entry.vm_id -Name $Entry.name
        }
        else {
            $Entry.status = 'ready'
            $Entry.instance_id = $made.InstanceID
            Set-HvCatalogEntry -Catalog $catalog -Entry $Entry
        }
    }
    $made
}

Function Set-PendingJob {
    <#
    .SYNOPSIS
    Makes a result wait on a running job: pending, with the job, and changed remembered for the next run.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $Job
    )

    $Result.changed = $true
    $Result.pending = $true
    $Result.job = ConvertTo-HvJobResult -Job $Job
    $Result._resume = @{ changed = $true }
}

Function Get-ReferencePointPresent {
    <#
    .SYNOPSIS
    Returns the result of making sure a named reference point of a VM exists.

    .DESCRIPTION
    The catalog names the reference point. A creation that an earlier run (or this task's
    previous run) started is followed through the job the catalog holds, never started twice.
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
        $Catalog,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Existing
    )

    $identity = $Result.vm
    $label = $Params.name
    $catalogPath = Resolve-HvCatalogPath -Path $Params.catalog_path
    $action = "Reference point '$label' of VM '$($identity.name)'"
    $entry = Find-HvCatalogEntry -Catalog $Catalog -VmId $identity.id -Name $label | Select-Object -First 1
    $Result.diff.before = Get-EntryView -Entry $entry

    if ($null -ne $entry -and $entry.status -eq 'ready') {
        $found = Select-HvReferencePoint -ReferencePoint $Existing -InstanceId $entry.instance_id
        if ($null -ne $found) {
            $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $found -VmIdentity $identity -CatalogEntry $entry
            $Result.diff.after = Get-EntryView -Entry $entry
            return $Result
        }
        $AnsibleModule.Warn("$action was recorded as $($entry.instance_id), which no longer exists on the host (removed outside this collection); " +
            "a new one is made.")
    }
    elseif ($null -ne $entry -and $entry.job_id) {
        # A creation started by this task's previous run or by a run that stopped before recording
        # its end: follow that job instead of starting a second reference point.
        $job = Get-HvCimJob -InstanceId $entry.job_id
        $Result.diff.after = Get-EntryView -Entry $entry
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            Set-PendingJob -Result $Result -Job $job
            return $Result
        }
        $made = Get-CreatedReferencePoint -Job $job -Entry $entry -VirtualMachine $VirtualMachine -Catalog $Catalog
        if ($null -ne $made) {
            $Result.changed = $true
            if (-not $AnsibleModule.CheckMode) {
                $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job -VirtualMachine $VirtualMachine -Catalog $Catalog
            }
            # The host may have forgotten the job (five minutes after its end): the product was found without it.
            $Result.job = if ($null -ne $job) { ConvertTo-HvJobResult -Job $job } else { @{ id = $entry.job_id; state = 'gone' } }
            $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $made -VmIdentity $identity -CatalogEntry $entry
            $Result.diff.after = Get-EntryView -Entry $entry
            return $Result
        }
        if ($Params._job_id -and $Params._job_id -eq $entry.job_id -and -not $AnsibleModule.CheckMode) {
            # This task's own creation job failed: the pending entry goes, and the failure is
            # reported once rather than a second creation started.
            $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job -VirtualMachine $VirtualMachine -Catalog $Catalog
            $Result.changed = $false
            if ($null -eq $job) {
                throw (New-HvStepFailure -Message ("Creating $action failed: job $($entry.job_id) ended and Hyper-V no longer has it, " +
                        "and no reference point it made can be found; run the task again to make one."))
            }
            $Result.job = ConvertTo-HvJobResult -Job $job
            throw (New-HvStepFailure -Message (Format-HvJobFailure -JobResult $Result.job -Action "Creating $action"))
        }
        $AnsibleModule.Warn("$action was being created by job $($entry.job_id), which ended without a reference point; a new one is made.")
    }

    $consistency = Get-CreatableConsistency -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Action $action
    $Result.changed = $true
    $knownBefore = @($Existing | ForEach-Object { [string]$_.InstanceID })
    $recorded = @{ VmIdentity = $identity; Name = $label; Type = $Params.type; Consistency = $consistency; RunId = $Params.run_id; KnownBefore = $knownBefore }
    $newEntry = New-HvCatalogEntry @recorded
    $Result.diff.after = Get-EntryView -Entry $newEntry
    if ($AnsibleModule.CheckMode) {
        return $Result
    }
    try {
        # The lock is held from the catalog check to the pending record, so two plays asking for
        # the same name on one host cannot both start a creation.
        $started = Update-HvCatalog -Path $catalogPath -Change {
            param ($current)
            $now = Find-HvCatalogEntry -Catalog $current -VmId $identity.id -Name $label | Select-Object -First 1
            $seenStamp = if ($null -ne $entry) { $entry.created } else { $null }
            $nowStamp = if ($null -ne $now) { $now.created } else { $null }
            if ($nowStamp -ne $seenStamp) {
                throw "another run recorded '$label' for this VM while this one was deciding; rerun the task."
            }
            $output = New-HvReferencePoint -VirtualMachine $VirtualMachine -Type $Params.type -Consistency $consistency
            if ($null -ne $output.Job) {
                $newEntry.job_id = $output.Job.InstanceID
            }
            else {
                $newEntry.status = 'ready'
                $newEntry.instance_id = $output.ResultingReferencePoint.InstanceID
            }
            Set-HvCatalogEntry -Catalog $current -Entry $newEntry
            $output
        }
    }
    catch {
        $Result.changed = $false
        # An invalid state (5, 32775) means little without the state the VM was in.
        $state = Get-HvVirtualMachineState -VirtualMachine $VirtualMachine
        $reason = Get-HvFailureReason -ErrorRecord $_
        throw (New-HvStepFailure -Message ("Creating reference point '$label' of VM '$($identity.name)' ($($identity.id)), which is $state, " +
                "failed: $reason") -ErrorRecord $_)
    }
    if ($newEntry.status -ne 'ready') {
        Set-PendingJob -Result $Result -Job (Get-HvCimJob -InstanceId $newEntry.job_id)
        return $Result
    }
    $made = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $newEntry.instance_id
    if ($null -eq $made) {
        throw (New-HvStepFailure -Message ("Creating $action returned $($started.ReturnValue) but the new reference point cannot be found on the host; " +
                "run reference_point_info to check."))
    }
    $Result.reference_point = ConvertTo-HvReferencePointResult -ReferencePoint $made -VmIdentity $identity -CatalogEntry $newEntry
    $Result
}

Function Get-CreatableConsistency {
    <#
    .SYNOPSIS
    Returns the consistency the VM's reference point can be made with; throws, before any change, what stops it.

    .DESCRIPTION
    What stops RCT on this VM (configuration version, VHD and VHD Set disks), a pass-through disk
    (what CreateReferencePoint does with one is not documented), and a state that does not allow
    the consistency asked for.
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
        [string]
        $Action
    )

    $about = "$Action ($(([guid]$VirtualMachine.Name).ToString()))"
    $setting = Get-HvVirtualMachineSetting -VirtualMachine $VirtualMachine
    $drives = @(Get-HvVirtualMachineDrive -Setting $setting)
    $blockers = @(Get-HvRctBlocker -Setting $setting -Drive $drives)
    $blockers += @($drives | Where-Object { $_.kind -eq 'passthrough' } | ForEach-Object {
            "disk '$($_.path)' is a pass-through disk, which a reference point cannot cover (back the VM up with the rct_backup role, " +
            "which leaves such disks out)"
        })
    if ($blockers.Count -gt 0) {
        throw (New-HvStepFailure -Message "$about was refused before any change: $($blockers -join '; ').")
    }
    try {
        $state = Get-HvVirtualMachineState -VirtualMachine $VirtualMachine
        $choice = Get-HvCheckpointConsistency -Asked $Params.consistency -State $state -CrashFallback $false
    }
    catch {
        throw (New-HvStepFailure -Message "$about was refused before any change: $($_.Exception.Message).")
    }
    if ($null -ne $choice.warning) {
        $AnsibleModule.Warn("${about}: $($choice.warning).")
    }
    $choice.consistency
}

Function Get-ReferencePointAbsent {
    <#
    .SYNOPSIS
    Returns the result of making sure a reference point of a VM (by name or InstanceID) is gone.

    .DESCRIPTION
    A reference point another product made is only removed with allow_foreign. The catalog keeps
    the name until the removal is seen to end, so a rerun finds it again rather than forgetting it
    half-removed; a removal that an earlier run started is followed, never asked for twice.
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
        $Catalog,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Existing
    )

    $identity = $Result.vm
    $catalogPath = Resolve-HvCatalogPath -Path $Params.catalog_path
    $instanceId = $Params.instance_id
    if ($instanceId) {
        $entry = Find-HvCatalogEntry -Catalog $Catalog -InstanceId $instanceId | Select-Object -First 1
        $target = Select-HvReferencePoint -ReferencePoint $Existing -InstanceId $instanceId
        $action = "Reference point $instanceId of VM '$($identity.name)'"
        if ($null -ne $target -and $null -eq $entry -and -not $Params.allow_foreign) {
            throw (New-HvStepFailure -Message ("$action was not made by this collection (it is not in the catalog '$catalogPath'); " +
                    "another backup product may depend on it. Set allow_foreign=true to remove it anyway."))
        }
    }
    else {
        $entry = Find-HvCatalogEntry -Catalog $Catalog -VmId $identity.id -Name $Params.name | Select-Object -First 1
        $target = $null
        if ($null -ne $entry) {
            $target = Select-HvReferencePoint -ReferencePoint $Existing -InstanceId $entry.instance_id
        }
        $action = "Reference point '$($Params.name)' of VM '$($identity.name)'"
    }
    $Result.diff.before = Get-EntryView -Entry $entry

    if ($null -ne $entry -and $entry.status -eq 'removing' -and $entry.job_id) {
        # A removal started by this task's previous run or by a run that did not see its end.
        $job = Get-HvCimJob -InstanceId $entry.job_id
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            Set-PendingJob -Result $Result -Job $job
            return $Result
        }
        if ($null -ne $job) {
            $Result.job = ConvertTo-HvJobResult -Job $job
        }
        if ($null -ne $job -and $Params._job_id -eq $entry.job_id -and -not $Result.job.succeeded -and -not $AnsibleModule.CheckMode) {
            # This task's own removal job failed: report it once; the entry is ready again, so the
            # next run tries anew instead of reporting the same failure.
            $entry.status = 'ready'
            $entry.job_id = $null
            $null = Update-HvCatalog -Path $catalogPath -Change {
                param ($current)
                Set-HvCatalogEntry -Catalog $current -Entry $entry
            }
            throw (New-HvStepFailure -Message (Format-HvJobFailure -JobResult $Result.job -Action "Removing $action"))
        }
        $target = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $entry.instance_id
    }
    if ($null -eq $entry -and $Params._job_id) {
        # Removing a reference point the catalog does not know: only the job tells how it went.
        $job = Get-HvCimJob -InstanceId $Params._job_id
        if ($null -ne $job) {
            $Result.job = ConvertTo-HvJobResult -Job $job
            if ($Result.job.finished -and -not $Result.job.succeeded) {
                throw (New-HvStepFailure -Message (Format-HvJobFailure -JobResult $Result.job -Action "Removing $action"))
            }
        }
    }
    if ($null -ne $entry -and $entry.status -eq 'pending') {
        # Its creation was started by a run that did not see the end: finish that first.
        $job = Get-HvCimJob -InstanceId $entry.job_id
        if ($null -ne $job -and -not (Test-HvCimJobFinished -Job $job)) {
            throw (New-HvStepFailure -Message ("$action is still being created by job $($entry.job_id); " +
                    "wait for it (hyperv.backup.job_info with wait=true) before removing it."))
        }
        $target = Get-CreatedReferencePoint -Job $job -Entry $entry -VirtualMachine $VirtualMachine -Catalog $Catalog
        if (-not $AnsibleModule.CheckMode) {
            $null = Complete-Entry -Path $catalogPath -Entry $entry -Job $job -VirtualMachine $VirtualMachine -Catalog $Catalog
        }
    }
    if ($null -eq $target -and $null -eq $entry) {
        return $Result
    }

    $Result.changed = $true
    if ($AnsibleModule.CheckMode) {
        return $Result
    }
    try {
        if ($null -ne $target) {
            $output = Remove-HvReferencePoint -ReferencePoint $target
            if ($null -ne $output.Job) {
                if ($null -ne $entry) {
                    $entry.status = 'removing'
                    $entry.job_id = $output.Job.InstanceID
                    $null = Update-HvCatalog -Path $catalogPath -Change {
                        param ($current)
                        Set-HvCatalogEntry -Catalog $current -Entry $entry
                    }
                }
                Set-PendingJob -Result $Result -Job (Get-HvCimJob -InstanceId $output.Job.InstanceID)
                return $Result
            }
        }
        if ($null -ne $entry) {
            $null = Update-HvCatalog -Path $catalogPath -Change {
                param ($current)
                Remove-HvCatalogEntry -Catalog $current -VmId $entry.vm_id -Name $entry.name
            }
        }
    }
    catch {
        throw (New-HvStepFailure -Message "Removing $action failed: $($_.Exception.Message)" -ErrorRecord $_)
    }
    $Result
}

Function Invoke-ReferencePointStep {
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

    $Result.pending = $false
    $Result.reference_point = $null
    $Result.job = $null
    $Result.diff = @{ before = @{}; after = @{} }
    $identity = $Result.vm
    if (-not $Params.name -and -not $Params.instance_id) {
        throw (New-HvStepFailure -Message ("Reference point of VM '$($identity.name)' ($($identity.id)) needs name or instance_id, " +
                "for the task or for the VM in vms."))
    }
    if ($Params.name -and $Params.instance_id) {
        throw (New-HvStepFailure -Message 'name and instance_id are mutually exclusive: name selects by catalog name, instance_id by InstanceID.')
    }
    if ($Params.state -eq 'present' -and $Params.instance_id) {
        throw (New-HvStepFailure -Message 'instance_id selects a reference point to remove (state=absent); give name with state=present.')
    }
    $work = @{
        Params = $Params
        VirtualMachine = $VirtualMachine
        AnsibleModule = $AnsibleModule
        Result = $Result
        Catalog = Read-HvCatalog -Path (Resolve-HvCatalogPath -Path $Params.catalog_path)
        Existing = @(Get-HvReferencePoint -VirtualMachine $VirtualMachine)
    }
    if ($Params.state -eq 'present') {
        return Get-ReferencePointPresent @work
    }
    Get-ReferencePointAbsent @work
}

Invoke-HvVmBatch -Module $module -Step (Get-Command -Name Invoke-ReferencePointStep) -Subject { 'Reference point' } -DistinctBy @('name', 'instance_id')
