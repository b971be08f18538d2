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
        $BaseReferencePoint,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule
    )

    $output = Start-HvExport -VirtualMachine $VirtualMachine -Checkpoint $Checkpoint -Destination $Result.destination -BaseReferencePoint $BaseReferencePoint
    $Result.changed = $true
    if ($null -eq $output.Job) {
        # ExportSystemDefinition may answer 0: the export is done.
        return Complete-ExportFile -Params $Params -Result $Result -AnsibleModule $AnsibleModule
    }
    $Result.pending = $true
    $job = Get-HvCimJob -InstanceId $output.Job.InstanceID
    $Result.job = if ($null -ne $job) { ConvertTo-HvJobResult -Job $job } else { @{ id = $output.Job.InstanceID; state = 'gone' } }
    # The job's own kind and base go with it: a run that follows it may have been given others.
    $Result._resume = @{ changed = $true; full_reason = $Result.full_reason; differential = $null -ne $BaseReferencePoint; base = $Result.base }
    $record = @{
        vm_id = $Result.vm.id
        vm_name = $Result.vm.name
        name = Get-HvDestinationKey -Destination $Result.destination
        job_id = $output.Job.InstanceID
        checkpoint = $Params.checkpoint
        resume = $Result._resume
        started = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
    }
    Save-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -Record $record
    $Result
}

Function Get-PendingExportPath {
    <#
    .SYNOPSIS
    Returns the file beside the catalog that records the export jobs started and not yet seen to end.

    .DESCRIPTION
    A run whose controller died while Hyper-V still exports leaves its record; the next run into
    that destination follows the job (Resume-RecordedExport) instead of taking its files for a
    failed export or exporting into them a second time.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $CatalogPath
    )

    Get-HvPendingRecordPath -CatalogPath $CatalogPath -Kind exports
}

Function Save-PendingExportRecord {
    <#
    .SYNOPSIS
    Records the export job just started into a result's destination; a failure to do so is a warning.

    .DESCRIPTION
    Hyper-V has started the export: failing the task now would leave an export nobody follows.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory)]
        [hashtable]
        $Record
    )

    $path = Get-PendingExportPath -CatalogPath $Params.catalog_path
    try {
        Set-HvPendingRecord -Path $path -VmId $Result.vm.id -Name $Record.name -Record $Record
    }
    catch {
        $AnsibleModule.Warn("Export job $($Record.job_id) of VM '$($Result.vm.name)' ($($Result.vm.id)) into '$($Result.destination)' could not be " +
            "recorded in '$path' ($($_.Exception.Message)); a run started again while that job runs may not find it.")
    }
}

Function Clear-PendingExportRecord {
    <#
    .SYNOPSIS
    Forgets the records of a result's destination that name the given jobs, or (Own) that are of its VM and label; a failure to do so is a warning.

    .DESCRIPTION
    Called once the export is recorded or has failed: failing the task then would call a complete
    export failed, or hide the export's own failure.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule,

        [Parameter(Mandatory, ParameterSetName = 'Job')]
        [string[]]
        $JobId,

        [Parameter(Mandatory, ParameterSetName = 'Own')]
        [switch]
        $Own
    )

    $id = $Result.vm.id
    $label = $Params.checkpoint
    # Closures: run from inside the catalog's update, they must not depend on who calls them.
    $which = if ($Own) {
        { param($entry) $entry.vm_id -eq $id -and [string]::Equals($entry.checkpoint, $label, [StringComparison]::Ordinal) }.GetNewClosure()
    }
    else {
        { param($entry) $entry.job_id -in $JobId }.GetNewClosure()
    }
    try {
        Remove-DestinationRecord -Params $Params -Key (Get-HvDestinationKey -Destination $Result.destination) -Which $which
    }
    catch {
        $path = Get-PendingExportPath -CatalogPath $Params.catalog_path
        $AnsibleModule.Warn("The record of the export job of VM '$($Result.vm.name)' ($id) into '$($Result.destination)' could not be removed from " +
            "'$path' ($($_.Exception.Message)); it is dropped by a later export once Hyper-V has forgotten the job.")
    }
}

Function Get-DestinationRecord {
    <#
    .SYNOPSIS
    Returns the records of export jobs into a destination, of any VM and label.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [string]
        $Key,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $path = Get-PendingExportPath -CatalogPath $Params.catalog_path
    try {
        $pending = Read-HvCatalog -Path $path
    }
    catch {
        $problem = "the record of running exports '$path' cannot be read ($($_.Exception.Message))"
        throw (New-HvStepFailure -Message ("$Action refused: $problem, so whether an export job still writes into the destination cannot " +
                'be told. Nothing was changed: once no export runs on this host, move that file aside.') -ErrorRecord $_)
    }
    $pending.entries | Where-Object { [string]::Equals($_.name, $Key, [StringComparison]::Ordinal) }
}

Function Remove-DestinationRecord {
    <#
    .SYNOPSIS
    Forgets the records of export jobs into a destination that Which (given a record) is true for; writes nothing when there are none.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [string]
        $Key,

        [Parameter(Mandatory)]
        [scriptblock]
        $Which
    )

    $path = Get-PendingExportPath -CatalogPath $Params.catalog_path
    $match = { param($entry) [string]::Equals($entry.name, $Key, [StringComparison]::Ordinal) -and (& $Which $entry) }.GetNewClosure()
    if (@((Read-HvCatalog -Path $path).entries | Where-Object { & $match $_ }).Count -eq 0) {
        return
    }
    $null = Update-HvCatalog -Path $path -Change {
        param ($pending)
        $pending.entries.RemoveAll($match)
    }
}

Function Remove-ForgottenExportRecord {
    <#
    .SYNOPSIS
    Forgets the records of export jobs Hyper-V no longer has, into any destination; a failure to do so is a warning.

    .DESCRIPTION
    A destination is not always exported into again (the role's holds the run's label), and a
    record is no use once Hyper-V has forgotten its job. Only records older than the five minutes
    Hyper-V keeps a finished job are looked at: a younger one's job cannot be gone yet.
    #>
    [CmdletBinding()]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $CatalogPath,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule
    )

    $path = Get-PendingExportPath -CatalogPath $CatalogPath
    try {
        if (-not (Test-Path -LiteralPath $path -PathType Leaf)) {
            return
        }
        $old = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow.AddMinutes(-5))
        $gone = [System.Collections.Generic.List[string]]@()
        foreach ($entry in @((Read-HvCatalog -Path $path).entries | Where-Object { [string]::CompareOrdinal([string]$_.started, $old) -lt 0 })) {
            try {
                if (-not $entry.job_id -or $null -eq (Get-HvCimJob -InstanceId $entry.job_id)) {
                    $gone.Add([string]$entry.job_id)
                }
            }
            catch {
                # A record whose job cannot be read now is kept for a later run; the others still go.
                continue
            }
        }
        if ($gone.Count -gt 0) {
            $null = Update-HvCatalog -Path $path -Change {
                param ($pending)
                $pending.entries.RemoveAll({ param($entry) [string]$entry.job_id -in $gone })
            }
        }
    }
    catch {
        $AnsibleModule.Warn("The records of export jobs Hyper-V no longer has could not be removed from '$path' ($($_.Exception.Message)).")
    }
}

Function Set-ResumedKind {
    <#
    .SYNOPSIS
    Puts in a result the kind (full or incremental) and base of the export job it waits on, as kept in its _resume.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Result,

        [Parameter(Mandatory)]
        [System.Collections.IDictionary]
        $Resume
    )

    $Result.mode = if ($Resume['differential']) { 'incremental' } else { 'full' }
    $Result.full_reason = $Resume['full_reason']
    # Without it (a job this version did not start), the task's base stands.
    if ($Resume.ContainsKey('base')) {
        $Result.base = $Resume['base']
    }
}

Function Resume-RecordedExport {
    <#
    .SYNOPSIS
    Returns the result of following this VM and label's export an earlier run started into this destination, or nothing when Hyper-V no longer has its job.

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
        [System.Collections.IDictionary]
        $Record,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $job = Get-HvCimJob -InstanceId $Record.job_id
    if ($null -eq $job) {
        if (-not $AnsibleModule.CheckMode) {
            $jobId = $Record.job_id
            Remove-DestinationRecord -Params $Params -Key $Record.name -Which { param($entry) $entry.job_id -eq $jobId }.GetNewClosure()
        }
        return
    }
    $Result.changed = $true
    Set-ResumedKind -Result $Result -Resume $Record.resume
    $Result.job = ConvertTo-HvJobResult -Job $job
    $AnsibleModule.Warn("$Action was started by job $($Record.job_id) of a run that did not see it end; this run follows that job instead of exporting again.")
    if ($AnsibleModule.CheckMode) {
        return $Result
    }
    $followed = $Params.Clone()
    $followed._job_id = $Record.job_id
    $followed._resume = $Record.resume
    Complete-Export -Params $followed -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result -Action $Action
}

Function Assert-DestinationFree {
    <#
    .SYNOPSIS
    Returns the record of this VM and label's export into the destination, if any; throws while Hyper-V has an export job of another VM or label into it.

    .DESCRIPTION
    An ended job of another VM or label is refused too while Hyper-V has it: its own run can still
    record that export (or see it failed). Once Hyper-V has forgotten it, its files are a partial
    export like any other.
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.IDictionary])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Identity,

        # The destination's records (Get-DestinationRecord).
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Record,

        [Parameter(Mandatory)]
        [string]
        $Action
    )

    $own = $null
    foreach ($entry in $Record) {
        if ($entry.vm_id -eq $Identity.id -and [string]::Equals($entry.checkpoint, $Params.checkpoint, [StringComparison]::Ordinal)) {
            $own = $entry
            continue
        }
        $job = Get-HvCimJob -InstanceId $entry.job_id
        if ($null -eq $job) {
            continue
        }
        $whose = ("export job $($entry.job_id) of VM '$($entry.vm_name)' ($($entry.vm_id)) checkpoint '$($entry.checkpoint)', " +
            'started by a run that did not see it end,')
        if (-not (Test-HvCimJobFinished -Job $job)) {
            throw (New-HvStepFailure -Message "$Action refused: $whose is still writing into it. Nothing was changed: wait for it to end, then run again.")
        }
        # Ended and not recorded yet: its own run can still record it (or say it failed) while Hyper-V has the job.
        throw (New-HvStepFailure -Message ("$Action refused: $whose has ended and is not recorded yet. Nothing was changed: run that VM's task again " +
                'with that checkpoint to record it, or choose another destination.'))
    }
    $own
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

    $recorded = Get-OwnRecord -Params $Params -Result $Result
    $sameLabel = $null -ne $recorded -and [string]::Equals($recorded.checkpoint, $Params.checkpoint, [StringComparison]::Ordinal)
    if ($sameLabel -and $recorded.job_id -ne $Params._job_id) {
        # Another run (a task started again while this one's controller still followed) has since
        # started a new export into this folder, a fallback to full: its job is the one to follow.
        $Params = $Params.Clone()
        $Params._job_id = $recorded.job_id
        $Params._resume = $recorded.resume
        Set-ResumedKind -Result $Result -Resume $recorded.resume
    }
    $job = Get-HvCimJob -InstanceId $Params._job_id
    if ($null -eq $job) {
        $Result.job = @{ id = $Params._job_id; state = 'gone' }
        Clear-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -JobId $Params._job_id
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
        $whyFull = "the change tracking data of base '$($Result.base)' is no longer valid ($($jobResult.error_description))"
        $AnsibleModule.Warn("$Action is full instead of incremental: $whyFull.")
        $Result.mode = 'full'
        $Result.full_reason = $whyFull
        $checkpoint = Select-HvRecoveryCheckpoint -Checkpoint @(Get-HvRecoveryCheckpoint -VirtualMachine $VirtualMachine) -Label $Params.checkpoint
        # Forgotten first: should the new export not start, no record names the failed job.
        Clear-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -JobId $Params._job_id
        Clear-HvExportDestination -Destination $Result.destination
        $full = @{ Params = $Params; Result = $Result; VirtualMachine = $VirtualMachine; Checkpoint = $checkpoint; BaseReferencePoint = $null }
        return Start-Export @full -AnsibleModule $AnsibleModule
    }
    if (-not $jobResult.succeeded) {
        $left = Remove-FailedExport -Destination $Result.destination -VmName $Result.vm.name
        Clear-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -JobId $Params._job_id
        throw (New-HvStepFailure -Message ((Format-HvJobFailure -JobResult $jobResult -Action $Action) + $left))
    }
    Complete-ExportFile -Params $Params -Result $Result -AnsibleModule $AnsibleModule
}

Function Get-OwnRecord {
    <#
    .SYNOPSIS
    Returns the record of the export job of a result's VM into its destination, or nothing (also when the records cannot be read).
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.IDictionary])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Params,

        [Parameter(Mandatory)]
        [hashtable]
        $Result
    )

    try {
        Get-HvPendingRecord -Path (Get-PendingExportPath -CatalogPath $Params.catalog_path) -VmId $Result.vm.id `
            -Name (Get-HvDestinationKey -Destination $Result.destination)
    }
    catch {
        # Unreadable: the job this run was given is the one to follow, as before records were kept.
        $null
    }
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
        $Result,

        [Parameter(Mandatory)]
        [object]
        $AnsibleModule
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
        base = if ($Result.mode -eq 'full') { $null } else { $Result.base }
        full_reason = $Result.full_reason
        files = $files
        bytes = $bytes
        completed = ConvertTo-HvTimestamp -Time ([DateTime]::UtcNow)
    }
    Save-HvExportMarker -Destination $Result.destination -Marker $marker
    if ($Params._job_id) {
        Clear-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -JobId $Params._job_id
    }
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
    if ($Params._job_id -and $resume.ContainsKey('differential')) {
        Set-ResumedKind -Result $Result -Resume $resume
    }
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
            $lock = @{
                Destination = $destination
                Folder = Get-HvCatalogFolder -CatalogPath $Params.catalog_path
                TimeoutSeconds = if ($holding) { 0 } else { $Params.wait_timeout + 60 }
            }
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
    # Read first also when this run follows a job: another run (a task started again while this
    # one's controller still followed) may have recorded that export, or the export after it.
    $marker = Read-HvExportMarker -Destination $destination
    if ($null -ne $marker) {
        if ($marker.vm_id -ne $identity.id -or -not [string]::Equals($marker.checkpoint, $label, [StringComparison]::Ordinal)) {
            throw (New-HvStepFailure -Message ("$action refused: the destination holds a complete export of VM '$($marker.vm_name)' checkpoint " +
                    "'$($marker.checkpoint)'. Choose another destination."))
        }
        if (-not $AnsibleModule.CheckMode) {
            # A module that died between writing the marker and forgetting its job.
            Clear-PendingExportRecord -Params $Params -Result $Result -AnsibleModule $AnsibleModule -Own
        }
        Set-ExportResult -Result $Result -Marker $marker
        return $Result
    }
    if ($Params._job_id) {
        return Complete-Export -Params $Params -VirtualMachine $VirtualMachine -AnsibleModule $AnsibleModule -Result $Result -Action $action
    }
    $records = @(Get-DestinationRecord -Params $Params -Key $lockKey -Action $action)
    $record = Assert-DestinationFree -Params $Params -Identity $identity -Record $records -Action $action
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
    if ($records.Count -gt 0) {
        # Of jobs Hyper-V no longer has: what they wrote is about to be removed.
        Remove-DestinationRecord -Params $Params -Key $lockKey -Which { $true }
    }
    if ($partial.Count -gt 0) {
        Clear-HvExportDestination -Destination $destination
    }
    elseif (-not (Test-Path -LiteralPath $destination)) {
        $null = New-Item -Path $destination -ItemType Directory -Force
    }
    $export = @{ Params = $Params; Result = $Result; VirtualMachine = $VirtualMachine; Checkpoint = $checkpoint; BaseReferencePoint = $basePoint }
    Start-Export @export -AnsibleModule $AnsibleModule
}

$destinations = @(@($module.Params.vms) | Where-Object { $null -ne $_ } | ForEach-Object {
        if ($_.destination) { $_.destination } else { $module.Params.destination }
    } | Where-Object { $_ })
# One folder however it is written: Windows reads / as \, a doubled separator as one, and paths without regard to case.
$twice = @($destinations | Group-Object -Property { ($_ -replace '[\\/]+', '\').TrimEnd('\').ToLowerInvariant() } | Where-Object { $_.Count -gt 1 })
if ($twice.Count -gt 0) {
    # One export's clean-up or partial check would take the other's files for its own.
    $module.FailJson(("vms: destination '$($twice[0].Group[0])' is given for $($twice[0].Count) VMs; each export needs a folder of its own. " +
            'Nothing was changed.'))
}
if ($module.Params.free_space_margin -lt 0) {
    $module.FailJson("free_space_margin must be 0 or more percent, got $($module.Params.free_space_margin).")
}
if (-not $module.CheckMode) {
    Remove-ForgottenExportRecord -CatalogPath $module.Params.catalog_path -AnsibleModule $module
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
