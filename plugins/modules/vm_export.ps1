#!powershell

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine
#AnsibleRequires -PowerShell ..module_utils._HvBatch
#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvCheckpoint
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint
#AnsibleRequires -PowerShell ..module_utils._HvExport
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance
#AnsibleRequires -PowerShell ..module_utils._HvDiskChanges
#AnsibleRequires -PowerShell ..module_utils._HvDestination

$spec = @{
    options = @{
        checkpoint = @{ type = 'str'; required = $true }
        destination = @{ type = 'path' }
        base = @{ type = 'str' }
        overwrite_partial = @{ type = 'bool'; default = $false }
        fallback_to_full = @{ type = 'bool'; default = $false }
        free_space_margin = @{ type = 'int'; default = 10 }
        wait_timeout = @{ type = 'int'; default = 30 }
        vms = Get-HvVmsSpec -Option @{
            destination = @{ type = 'path' }
            base = @{ type = 'str' }
        }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec, @((Get-HvBatchSpec), (Get-HvCatalogSpec), (Get-HvJobWaitSpec)))

Function Get-ExpectedByte {
    <#
    .SYNOPSIS
    Returns the bytes a full export copies (its disks' files), or 0 for an incremental, whose size is known only once Hyper-V has written it.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        # The checkpoint's settings (or the VM's, when planning in check mode).
        [Parameter(Mandatory)]
        [object]
        $Settings
    )

    $bytes = [long]0
    if ($Result.mode -eq 'full') {
        foreach ($disk in @(Get-HvCheckpointDiskFile -Checkpoint $Settings)) {
            $bytes += Get-HvVirtualDiskFileSize -Path $disk.path
        }
    }
    $bytes
}

Function Set-ExportResult {
    <#
    .SYNOPSIS
    Puts a complete export's marker in a result.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    # Markers written before 0.3.0 call an incremental export 'differential'.
    $Result.mode = if ($Marker.mode -eq 'differential') { 'incremental' } else { $Marker.mode }
    $Result.base = $Marker.base
    $Result.full_reason = $Marker.full_reason
    $Result.files = @($Marker.files)
    $Result.bytes = [long]$Marker.bytes
}

Function Get-ExportBase {
    <#
    .SYNOPSIS
    Returns the base reference point of a differential export, or why the export must be full.
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
        $Identity,

        [Parameter(Mandatory)]
        [object]
        $Checkpoint
    )

    $baseName = $Params.base
    $catalog = Read-HvCatalog -Path (Resolve-HvCatalogPath -Path $Params.catalog_path)
    $entry = Find-HvCatalogEntry -Catalog $catalog -VmId $Identity.id -Name $baseName | Select-Object -First 1
    $point = $null
    if ($null -ne $entry) {
        $point = Select-HvReferencePoint -ReferencePoint @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) -InstanceId $entry.instance_id
    }
    if ($null -eq $point) {
        return @{ point = $null; why_full = "the base reference point '$baseName' no longer exists" }
    }
    $before = @($point.VirtualDiskIdentifiers | ForEach-Object { Get-HvDiskDevicePart -DiskId $_ } | Sort-Object)
    $now = @(Get-HvCheckpointDisk -Checkpoint $Checkpoint)
    $added = @($now | Where-Object { $before -notcontains $_ })
    $removed = @($before | Where-Object { $now -notcontains $_ })
    if ($added.Count -gt 0 -or $removed.Count -gt 0) {
        return @{ point = $null; why_full = "the VM's disk set changed since '$baseName' ($($added.Count) added, $($removed.Count) removed)" }
    }
    @{ point = $point; why_full = $null }
}

Function Start-Export {
    <#
    .SYNOPSIS
    Returns the result of starting the export into the destination: waiting on its job, or finished when Hyper-V did it at once.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [object]
        $Checkpoint,

        [AllowNull()]
        [object]
        $BaseReferencePoint
    )

    $output = Start-HvExport -VirtualMachine $VirtualMachine -Checkpoint $Checkpoint -Destination $Result.destination -BaseReferencePoint $BaseReferencePoint
    $Result.changed = $true
    if ($null -eq $output.Job) {
        # ExportSystemDefinition may answer 0: the export is done.
        return Complete-ExportFile -Params $Params -Result $Result
    }
    $Result.pending = $true
    $job = Get-HvCimJob -InstanceId $output.Job.InstanceID
    $Result.job = if ($null -ne $job) { ConvertTo-HvJobResult -Job $job } else { @{ id = $output.Job.InstanceID; state = 'gone' } }
    $Result._resume = @{ changed = $true; full_reason = $Result.full_reason; differential = $null -ne $BaseReferencePoint }
    $record = @{
        vm_id = $Result.vm.id
        name = Get-HvDestinationKey -Destination $Result.destination
        job_id = $output.Job.InstanceID
        checkpoint = $Params.checkpoint
        base = if ($null -ne $BaseReferencePoint) { $Params.base } else { $null }
        resume = $Result._resume
        started = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
    }
    Set-PendingExportRecord -Params $Params -Result $Result -Record $record
    $Result
}

Function Set-PendingExportRecord {
    <#
    .SYNOPSIS
    Records the export job started into a result's destination (Record given), or forgets it (no Record).

    .DESCRIPTION
    A run whose controller died while Hyper-V still exports leaves the record; the next run into
    that destination follows the job (Resume-RecordedExport) instead of taking its files for a
    failed export or exporting into them a second time.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [AllowNull()]
        [hashtable]
        $Record
    )

    $path = Get-HvPendingRecordPath -CatalogPath $Params.catalog_path -Kind exports
    Set-HvPendingRecord -Path $path -VmId $Result.vm.id -Name (Get-HvDestinationKey -Destination $Result.destination) -Record $Record
}

Function Resume-RecordedExport {
    <#
    .SYNOPSIS
    Returns the result of following an export an earlier run started into this destination and did not see end, or nothing when there is no such job left.

    .DESCRIPTION
    Still running or ended: the result is that job's, as if this run had started it (waiting on
    it, its files recorded, or its failure). Forgotten by Hyper-V (it keeps a finished job five
    minutes): the record goes and its files are a partial export like any other.
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
        $Record,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $job = Get-HvCimJob -InstanceId $Record.job_id
    if ($null -eq $job) {
        if (-not $AnsibleModule.CheckMode) {
            Set-PendingExportRecord -Params $Params -Result $Result -Record $null
        }
        return
    }
    if ($Record.checkpoint -cne $Params.checkpoint) {
        if (-not (Test-HvCimJobFinished -Job $job)) {
            throw (New-HvStepFailure -Message ("$Action refused: export job $($Record.job_id) of checkpoint '$($Record.checkpoint)', started by a run " +
                    'that did not see it end, is still writing into it. Nothing was changed: wait for it to end, then run again.'))
        }
        if (-not $AnsibleModule.CheckMode) {
            Set-PendingExportRecord -Params $Params -Result $Result -Record $null
        }
        return
    }
    $resume = $Record.resume
    $Result.changed = $true
    $Result.mode = if ($resume.differential) { 'incremental' } else { 'full' }
    $Result.base = $Record.base
    $Result.full_reason = $resume.full_reason
    if ($AnsibleModule.CheckMode) {
        # The run would follow that job, not export.
        $Result.job = ConvertTo-HvJobResult -Job $job
        return $Result
    }
    $AnsibleModule.Warn("$Action was started by job $($Record.job_id) of a run that did not see it end; this run follows that job instead of exporting again.")
    $followed = $Params.Clone()
    $followed._job_id = $Record.job_id
    $followed._resume = $resume
    $followed.base = $Record.base
    Complete-Export -Params $followed -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result -Action $Action
}

Function Complete-Export {
    <#
    .SYNOPSIS
    Returns the result once the export's job (_job_id) has ended: the marker written, or a full
    export started after a differential one lost its base, or the failure.
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
        [string]
        $Action
    )

    $job = Get-HvCimJob -InstanceId $Params._job_id
    if ($null -eq $job) {
        $Result.job = @{ id = $Params._job_id; state = 'gone' }
        Set-PendingExportRecord -Params $Params -Result $Result -Record $null
        throw (New-HvStepFailure -Message ("$Action lost track of job $($Params._job_id) (Hyper-V no longer has it) and the destination has no completion " +
                "marker; export again with overwrite_partial=true."))
    }
    $jobResult = ConvertTo-HvJobResult -Job $job
    $Result.job = $jobResult
    if (-not $jobResult.finished) {
        $Result.pending = $true
        $Result._resume = $Params._resume
        return $Result
    }
    if (-not $jobResult.succeeded -and $Params._resume.differential -and $Params.fallback_to_full -and (Test-HvRctFailure -JobResult $jobResult)) {
        # The base's change tracking is gone (the VM moved, a disk was recreated, the RCT log aged
        # out): only a full export can be taken now.
        $whyFull = "the change tracking data of base '$($Params.base)' is no longer valid ($($jobResult.error_description))"
        $AnsibleModule.Warn("$Action is full instead of incremental: $whyFull.")
        $Result.mode = 'full'
        $Result.full_reason = $whyFull
        $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $Params.checkpoint
        Clear-HvExportDestination -Destination $Result.destination
        return Start-Export -Params $Params -Result $Result -VirtualMachine $VirtualMachine -Checkpoint $checkpoint -BaseReferencePoint $null
    }
    if (-not $jobResult.succeeded) {
        $left = Remove-FailedExport -Destination $Result.destination -VmName $Result.vm.name
        Set-PendingExportRecord -Params $Params -Result $Result -Record $null
        throw (New-HvStepFailure -Message ((Format-HvJobFailure -JobResult $jobResult -Action $Action) + $left))
    }
    Complete-ExportFile -Params $Params -Result $Result
}

Function Remove-FailedExport {
    <#
    .SYNOPSIS
    Removes what a failed or cancelled export wrote; returns the sentence that says so, or what is left and what to do.

    .DESCRIPTION
    Hyper-V leaves the files of an export that failed (a full volume) or was cancelled; left, a
    half-written folder could be taken for a backup. Only the folder Hyper-V writes the export in
    (<destination>\<VM name>, CreateVmExportSubdirectory) goes, nothing else at the destination.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination,

        [Parameter(Mandatory)]
        [string]
        $VmName
    )

    $folder = [System.IO.Path]::Combine($Destination, $VmName)
    try {
        if (-not [System.IO.Directory]::Exists($folder)) {
            return ''
        }
        $count = @(Get-ChildItem -LiteralPath $folder -Recurse -File -Force).Count
        Remove-Item -LiteralPath $folder -Recurse -Force
        " The $count files it had written were removed."
    }
    catch {
        # A share gone offline, a file still locked: the export's own failure is the message; this is added.
        " What it had written in '$folder' could not be removed ($($_.Exception.Message)): remove that folder, or export again with overwrite_partial=true."
    }
}

Function Complete-ExportFile {
    <#
    .SYNOPSIS
    Returns the result of an export Hyper-V has finished, after writing its completion marker.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    $identity = $Result.vm
    $Result.pending = $false
    $files = @(Get-HvExportFile -Destination $Result.destination)
    $bytes = Get-HvExportFileByte -File $files
    $marker = @{
        vm_id = $identity.id
        vm_name = $identity.name
        checkpoint = $Params.checkpoint
        mode = $Result.mode
        base = if ($Result.mode -eq 'full') { $null } else { $Params.base }
        full_reason = $Result.full_reason
        files = $files
        bytes = $bytes
        completed = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
    }
    Save-HvExportMarker -Destination $Result.destination -Marker $marker
    Set-PendingExportRecord -Params $Params -Result $Result -Record $null
    Set-ExportResult -Result $Result -Marker $marker
    $Result
}

Function Invoke-ExportStep {
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

    $identity = $Result.vm
    $label = $Params.checkpoint
    $destination = $Params.destination
    $resume = if ($null -ne $Params._resume) { $Params._resume } else { @{} }
    $Result.pending = $false
    $Result.destination = $destination
    $Result.mode = if ($resume.full_reason -or -not $Params.base) { 'full' } else { 'incremental' }
    $Result.base = $Params.base
    $Result.full_reason = $resume.full_reason
    $Result.files = @()
    $Result.bytes = 0
    $Result.job = $null
    if (-not $destination) {
        throw (New-HvStepFailure -Message ("Export of VM '$($identity.name)' ($($identity.id)) needs a destination: " +
                "set destination for the task or for the VM in vms."))
    }
    $action = "Export of VM '$($identity.name)' to '$destination'"
    if (-not (Test-HvFullPath -Path $destination)) {
        # Read or written relative to whatever folder the module runs in: refused before anything is looked at.
        throw (New-HvStepFailure -Message ("$action refused: '$destination' is not a full path: give a local path with its drive " +
                '(D:\Backups\Hyper-V) or a share (\\server\share\Hyper-V). Nothing was changed.'))
    }
    $lockKey = Get-HvDestinationKey -Destination $destination
    if (-not $AnsibleModule.CheckMode -and -not $script:DestinationLocks.ContainsKey($lockKey)) {
        # Held until this module exits, so a run started again while this one waits on its job waits
        # for what this one writes. A run that already holds a destination does not wait for another:
        # two runs taking two destinations in opposite orders would each wait on the other.
        $holding = @($script:DestinationLocks.Values | Where-Object { $null -ne $_ }).Count -gt 0
        try {
            $lockFolder = Split-Path -Path (Resolve-HvCatalogPath -Path $Params.catalog_path) -Parent
            $lock = @{ Destination = $destination; Folder = $lockFolder; TimeoutSeconds = if ($holding) { 0 } else { $Params.wait_timeout + 60 } }
            $script:DestinationLocks[$lockKey] = Lock-HvExportDestination @lock
        }
        catch {
            $what = if ($Params._job_id) {
                "$action ran, but its completion cannot be recorded: $($_.Exception.Message) Run the task again to record it."
            }
            else {
                "$action refused: $($_.Exception.Message) Nothing was changed: wait for it to finish, then run again."
            }
            throw (New-HvStepFailure -Message $what -ErrorRecord $_)
        }
    }
    if ($Params._job_id) {
        return Complete-Export -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result -Action $action
    }

    $marker = Read-HvExportMarker -Destination $destination
    if ($null -ne $marker) {
        if ($marker.vm_id -ne $identity.id -or $marker.checkpoint -cne $label) {
            throw (New-HvStepFailure -Message ("$action refused: the destination holds a complete export of VM '$($marker.vm_name)' checkpoint " +
                    "'$($marker.checkpoint)'. Choose another destination."))
        }
        if (-not $AnsibleModule.CheckMode) {
            # A module that died between writing the marker and forgetting its job.
            Set-PendingExportRecord -Params $Params -Result $Result -Record $null
        }
        Set-ExportResult -Result $Result -Marker $marker
        return $Result
    }
    $record = Get-HvPendingRecord -Path (Get-HvPendingRecordPath -CatalogPath $Params.catalog_path -Kind exports) -VmId $identity.id -Name $lockKey
    if ($null -ne $record) {
        $follow = @{ Params = $Params; VirtualMachine = $VirtualMachine; AnsibleModule = $AnsibleModule; Result = $Result; Record = $record; Action = $action }
        $followed = Resume-RecordedExport @follow
        if ($null -ne $followed) {
            return $followed
        }
    }
    $partial = @(Get-HvExportFile -Destination $destination)
    if ($partial.Count -gt 0) {
        if (-not $Params.overwrite_partial) {
            throw (New-HvStepFailure -Message ("$action refused: the destination holds a partial export ($($partial.Count) files, no completion marker), " +
                    'probably from a run that failed. Set overwrite_partial=true to remove it and export again.'))
        }
        $AnsibleModule.Warn("$action removes a partial export ($($partial.Count) files) before exporting again.")
    }
    $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $label
    $settings = $checkpoint
    if ($null -eq $checkpoint) {
        if (-not $AnsibleModule.CheckMode) {
            throw (New-HvStepFailure -Message ("$action needs the recovery checkpoint '$label', which VM '$($identity.name)' does not have; " +
                    "create it with hyperv.backup.recovery_checkpoint first."))
        }
        # In check mode the checkpoint task before this one made nothing: the VM's own disks stand
        # in for the checkpoint's, which would be the same set.
        $settings = Get-HvVirtualMachineSetting -VirtualMachine $VirtualMachine
        if ($null -eq $settings) {
            throw (New-HvStepFailure -Message "$action cannot be planned: Hyper-V returned no settings of VM '$($identity.name)' ($($identity.id)).")
        }
    }
    $basePoint = $null
    if ($Params.base) {
        $base = Get-ExportBase -Params $Params -VirtualMachine $VirtualMachine -Identity $identity -Checkpoint $settings
        $basePoint = $base.point
        if ($base.why_full) {
            if (-not $Params.fallback_to_full) {
                throw (New-HvStepFailure -Message ("$action cannot be incremental: $($base.why_full). Take a full export (no base), " +
                        "or set fallback_to_full=true."))
            }
            $AnsibleModule.Warn("$action is full instead of incremental: $($base.why_full).")
            $Result.mode = 'full'
            $Result.full_reason = $base.why_full
        }
    }
    $expected = Get-ExpectedByte -Result $Result -Settings $settings
    # Room for the disks' files and free_space_margin percent more.
    $required = [long][Math]::Ceiling($expected * (100 + $Params.free_space_margin) / 100.0)
    $where = Get-HvDestinationState -Path $destination -RequiredBytes $required
    if (-not $where.usable) {
        throw (New-HvStepFailure -Message "$action refused: $($where.problem) Nothing was changed.")
    }
    $Result.changed = $true
    if ($AnsibleModule.CheckMode) {
        # What it would copy: known for a full export, not for an incremental.
        $Result.bytes = if ($Result.mode -eq 'full') { $expected } else { $null }
        return $Result
    }
    if ($partial.Count -gt 0) {
        Clear-HvExportDestination -Destination $destination
    }
    elseif (-not (Test-Path -LiteralPath $destination)) {
        $null = New-Item -Path $destination -ItemType Directory -Force
    }
    Start-Export -Params $Params -Result $Result -VirtualMachine $VirtualMachine -Checkpoint $checkpoint -BaseReferencePoint $basePoint
}

$destinations = @(@($module.Params.vms) | Where-Object { $null -ne $_ } | ForEach-Object {
        if ($_.destination) { $_.destination } else { $module.Params.destination }
    } | Where-Object { $_ })
$twice = @($destinations | Group-Object -Property { $_.ToLowerInvariant().TrimEnd('\', '/') } | Where-Object { $_.Count -gt 1 })
if ($twice.Count -gt 0) {
    # One export's clean-up or partial check would take the other's files for its own.
    $module.FailJson(("vms: destination '$($twice[0].Group[0])' is given for $($twice[0].Count) VMs; each export needs a folder of its own. " +
            'Nothing was changed.'))
}
if ($module.Params.free_space_margin -lt 0) {
    $module.FailJson("free_space_margin must be 0 or more percent, got $($module.Params.free_space_margin).")
}
# The destinations this run holds (Lock-HvExportDestination), by path in lower case.
$script:DestinationLocks = @{}
try {
    Invoke-HvVmBatch -Module $module -Step (Get-Command -Name Invoke-ExportStep) -Subject { 'Export' }
}
finally {
    # Closing lets a run waiting on a destination go on, and removes the lock file.
    foreach ($lock in @($script:DestinationLocks.Values | Where-Object { $null -ne $_ })) {
        $lock.Dispose()
    }
}
