# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Restoring a backup as a new VM. A restore point is a full export and the differentials after
# it (backup_info's chain). Its disks are copied into the target folder, each differential is
# re-parented onto the copy and merged into it (Msvm_ImageManagementService), and the VM's
# configuration is imported as a planned system with a new id, given the target name, its disk
# paths and switches, validated and realized (Msvm_VirtualSystemManagementService). The backup
# files are only read: every write goes to the target folder, whose marker says what was made.

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvExport
#AnsibleRequires -PowerShell ..module_utils._HvBackupSet
#AnsibleRequires -PowerShell ..module_utils._HvDiskChanges
#AnsibleRequires -PowerShell ..module_utils._HvCheckpoint
#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint
#AnsibleRequires -PowerShell ..module_utils._HvVirtualMachine

Set-StrictMode -Version 2.0

$script:HvNamespace = 'root/virtualization/v2'
$script:HvRestoreMarkerName = 'hyperv.backup-restore.json'
# The folders a restore writes into its target folder.
$script:HvRestoreFolderNames = @('Virtual Hard Disks', 'Virtual Machines', 'Snapshots')
$script:HvDiskExtension = @('.vhdx', '.vhd', '.avhdx', '.avhd')
$script:HvHardDiskSubType = 'Microsoft:Hyper-V:Virtual Hard Disk'
# Msvm_VirtualHardDiskSettingData.Type: 4 is a differencing disk (2 fixed, 3 dynamic).
$script:HvDifferencingType = 4
# Msvm_HeartbeatComponent.OperationalStatus[0] (Microsoft's heartbeat page).
# 3 Degraded: the guest answers, with older integration services; it counts as up.
$script:HvHeartbeatStatus = @{ 2 = 'ok'; 3 = 'degraded'; 12 = 'no_contact'; 13 = 'lost_communication' }

Function Get-HvRestoreMarkerPath {
    <#
    .SYNOPSIS
    Returns the path of the marker a restore writes into its target folder.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    Join-Path -Path $Folder -ChildPath $script:HvRestoreMarkerName
}

Function Read-HvRestoreMarker {
    <#
    .SYNOPSIS
    Returns the marker of the restore in a folder, or nothing when there is none.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    $path = Get-HvRestoreMarkerPath -Folder $Folder
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        ConvertTo-HvHashtable -Dictionary ([Ansible.Basic.AnsibleModule]::FromJson([System.IO.File]::ReadAllText($path)))
    }
}

Function Save-HvRestoreMarker {
    <#
    .SYNOPSIS
    Writes the marker that says which VM a folder's files were restored for, and which files they are.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    [System.IO.File]::WriteAllText((Get-HvRestoreMarkerPath -Folder $Folder), [Ansible.Basic.AnsibleModule]::ToJson($Marker))
}

Function Get-HvRestoreFolderPath {
    <#
    .SYNOPSIS
    Returns the folders a restore writes into its target folder (Virtual Hard Disks, Virtual Machines, Snapshots), as full paths.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    foreach ($name in $script:HvRestoreFolderNames) {
        Join-Path -Path $Folder -ChildPath $name
    }
}

Function Test-HvInsideFolder {
    <#
    .SYNOPSIS
    Returns whether a path is inside a folder (compared without case, as Windows compares paths).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $Path
    )

    if ($Path -eq '') {
        return $false
    }
    $root = (@(Get-HvPathPart -Path $Folder) -join '/') + '/'
    $inside = @(Get-HvPathPart -Path $Path)
    if ($inside -contains '..') {
        return $false
    }
    ($inside -join '/').StartsWith($root, [StringComparison]::OrdinalIgnoreCase)
}

Function ConvertTo-HvRelativePath {
    <#
    .SYNOPSIS
    Returns a path inside a folder as the marker records it: relative to the folder, so a marker never names a file elsewhere.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [string]
        $Path
    )

    @(Get-HvPathPart -Path $Path)[@(Get-HvPathPart -Path $Folder).Count..(@(Get-HvPathPart -Path $Path).Count - 1)] -join '\'
}

Function Get-HvRestoreFile {
    <#
    .SYNOPSIS
    Returns the files a restore recorded in a folder wrote, as full paths inside the folder.

    .DESCRIPTION
    The marker's entries are relative to the folder; one that is rooted or climbs out (..) is
    refused, so removing a restore never touches a file outside its folder. A restore that did not
    finish (status restoring) also owns every file under the folder's Hyper-V folders, since it
    started in an empty folder and may have died before recording its last file.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    foreach ($entry in @($Marker.files)) {
        $relative = [string]$entry
        if ($relative -match '^([\\/]|[A-Za-z]:)' -or @(Get-HvPathPart -Path $relative) -contains '..') {
            throw "the restore marker in '$Folder' names '$relative', which is not inside the folder"
        }
        Join-Path -Path $Folder -ChildPath (@(Get-HvPathPart -Path $relative) -join [System.IO.Path]::DirectorySeparatorChar)
    }
    if ($Marker.status -ne 'done') {
        foreach ($inner in @(Get-HvRestoreFolderPath -Folder $Folder)) {
            if (Test-Path -LiteralPath $inner -PathType Container) {
                Get-ChildItem -LiteralPath $inner -File -Recurse -Force | ForEach-Object { $_.FullName }
            }
        }
    }
}

Function Get-HvSystemDiskPath {
    <#
    .SYNOPSIS
    Returns the virtual hard disk paths of a VM or planned system (its storage's HostResource).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $System
    )

    $setting = Get-HvVirtualMachineSetting -VirtualMachine $System
    if ($null -eq $setting) {
        return
    }
    $association = @{ InputObject = $setting; Association = 'Msvm_VirtualSystemSettingDataComponent' }
    foreach ($disk in @(Get-CimAssociatedInstance @association -ResultClassName Msvm_StorageAllocationSettingData)) {
        if ($disk.ResourceSubType -eq $script:HvHardDiskSubType) {
            @($disk.HostResource)[0]
        }
    }
}

Function Find-HvRestoredSystem {
    <#
    .SYNOPSIS
    Returns what a restore marker says the restore registered and is still on the host: its planned system and its VM (a realized planned system keeps its id).
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    $ids = @(@([string]$Marker.vm.id, [string]$Marker.planned) | Where-Object { $_ } | ForEach-Object { ([guid]$_).ToString() })
    if ($ids.Count -eq 0) {
        return
    }
    $guid = [guid]::Empty
    foreach ($class in @('Msvm_PlannedComputerSystem', 'Msvm_ComputerSystem')) {
        Get-CimInstance -Namespace $script:HvNamespace -ClassName $class | Where-Object {
            [guid]::TryParse($_.Name, [ref]$guid) -and $ids -contains $guid.ToString()
        }
    }
}

Function Select-HvRestorePoint {
    <#
    .SYNOPSIS
    Returns the restore point asked for (a label, or latest: the newest complete one) of one VM, or throws saying why it cannot be restored.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [hashtable[]]
        $RestorePoint,

        [Parameter(Mandatory)]
        [string]
        $Vm,

        [Parameter(Mandatory)]
        [string]
        $Point
    )

    $ids = @($RestorePoint | ForEach-Object { $_.vm.id } | Sort-Object -Unique)
    if ($ids.Count -eq 0) {
        throw "no backup of VM '$Vm' is there"
    }
    if ($ids.Count -gt 1) {
        throw "backups of $($ids.Count) VMs named '$Vm' are there ($($ids -join ', ')): give the one to restore by its id"
    }
    if ($Point -eq 'latest') {
        $complete = @($RestorePoint | Where-Object { $_.complete })
        if ($complete.Count -eq 0) {
            $problems = @($RestorePoint | ForEach-Object { "'$($_.label)': $($_.problems -join '; ')" })
            throw "no backup of VM '$Vm' there can be restored ($($problems -join ' | '))"
        }
        return $complete[-1]
    }
    # Labels are exact, as backup_info links them.
    $found = @($RestorePoint | Where-Object { [string]::Equals($_.label, $Point, [StringComparison]::Ordinal) })
    if ($found.Count -eq 0) {
        throw "VM '$Vm' has no backup labelled '$Point' there (labels: $((@($RestorePoint | ForEach-Object { $_.label })) -join ', '))"
    }
    if (-not $found[0].complete) {
        throw "backup '$Point' of VM '$Vm' cannot be restored: $($found[0].problems -join '; ')"
    }
    $found[0]
}

Function Get-HvChainLink {
    <#
    .SYNOPSIS
    Returns each export of a restore point's chain, oldest first: label, folder and its files as found from this host.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $RestorePoint,

        # The same VM's restore points, among which the chain's labels are looked up.
        [Parameter(Mandatory)]
        [hashtable[]]
        $VmPoint
    )

    foreach ($label in $RestorePoint.chain) {
        $point = @($VmPoint | Where-Object { [string]::Equals($_.label, $label, [StringComparison]::Ordinal) })[0]
        $marker = Read-HvExportMarker -Destination $point.path
        @{
            label = $label
            mode = $point.mode
            folder = $point.path
            files = @(Resolve-HvMarkerFilePath -Folder $point.path -File @($marker.files))
        }
    }
}

Function Get-HvExportedPart {
    <#
    .SYNOPSIS
    Returns the files of an export that are in one of Hyper-V's export folders (Virtual Hard Disks, Virtual Machines) with one of the extensions given.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $File,

        [Parameter(Mandatory)]
        [string]
        $FolderName,

        [Parameter(Mandatory)]
        [string[]]
        $Extension
    )

    foreach ($entry in $File) {
        $parts = @(Get-HvPathPart -Path $entry.path)
        $leaf = $parts[-1]
        $dot = $leaf.LastIndexOf('.')
        $extension = if ($dot -ge 0) { $leaf.Substring($dot).ToLowerInvariant() } else { '' }
        if ($parts.Count -ge 2 -and $parts[-2] -eq $FolderName -and $Extension -contains $extension) {
            $entry
        }
    }
}

Function Get-HvRestoreDrive {
    <#
    .SYNOPSIS
    Returns each virtual hard disk of a chain with the files that rebuild it, oldest first: the newest whole copy, then the differences after it.

    .DESCRIPTION
    A disk is known by its file name in the exports' Virtual Hard Disks folders; each file is read
    with GetVirtualHardDiskSettingData (read-only) to know whether it is a whole disk or a
    differencing one, and a difference must name a parent of the same file name. Nobody documents
    which name a differential export gives each disk, so a chain that does not fit is refused,
    naming the file, before anything is written.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable[]]
        $Link
    )

    $drives = [System.Collections.Generic.Dictionary[string, hashtable]]::new([System.StringComparer]::OrdinalIgnoreCase)
    $order = [System.Collections.Generic.List[string]]::new()
    foreach ($export in $Link) {
        foreach ($file in @(Get-HvExportedPart -File $export.files -FolderName 'Virtual Hard Disks' -Extension $script:HvDiskExtension)) {
            $name = @(Get-HvPathPart -Path $file.path)[-1]
            $setting = Get-HvVirtualDiskSetting -Path $file.path
            $type = 0
            if ($setting.ContainsKey('Type') -and $null -ne $setting.Type) {
                $type = [int]$setting.Type
            }
            if ($type -notin @(2, 3, 4)) {
                # Read as a whole disk, a difference would be restored without its chain.
                throw "Hyper-V gives '$($file.path)' of backup '$($export.label)' the disk type $type, not fixed, dynamic or differencing (2, 3, 4)"
            }
            $differencing = $type -eq $script:HvDifferencingType
            if (-not $drives.ContainsKey($name)) {
                $order.Add($name)
                $drives[$name] = @{ name = $name; size = [long]$setting.MaxInternalSize; files = [System.Collections.Generic.List[hashtable]]::new() }
            }
            $drive = $drives[$name]
            if ($differencing) {
                $parent = @(Get-HvPathPart -Path ([string]$setting.ParentPath))
                if ($drive.files.Count -eq 0) {
                    throw ("'$($file.path)' of backup '$($export.label)' is a difference of disk '$name', and no earlier backup of the chain " +
                        'holds that disk whole')
                }
                if ($parent.Count -eq 0 -or -not [string]::Equals($parent[-1], $name, [StringComparison]::OrdinalIgnoreCase)) {
                    throw "'$($file.path)' of backup '$($export.label)' names the parent '$($setting.ParentPath)', not a disk named '$name'"
                }
            }
            else {
                # A whole copy starts the disk again (a disk added to the VM since the full export).
                $drive.files.Clear()
            }
            $drive.files.Add(@{ path = $file.path; label = $export.label; differencing = $differencing; bytes = [long]$file.size })
        }
    }
    foreach ($name in $order) {
        $drive = $drives[$name]
        @{ name = $drive.name; size = $drive.size; files = @($drive.files) }
    }
}

Function Get-HvVirtualDiskSetting {
    <#
    .SYNOPSIS
    Returns a virtual hard disk file's setting data (Type, ParentPath, MaxInternalSize) as a hashtable.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    $output = Invoke-HvImageRead -MethodName GetVirtualHardDiskSettingData -Action "Reading virtual hard disk '$Path'" -Arguments @{ Path = $Path }
    ConvertFrom-HvEmbeddedInstance -Text $output.SettingData
}

Function Get-HvRestoreConfiguration {
    <#
    .SYNOPSIS
    Returns the VM configuration file (Virtual Machines\<GUID>.vmcx) of the export being restored, with the files of the same name beside it (.vmgs, .vmrs).

    .DESCRIPTION
    Throws when there is not exactly one configuration. The guest state (.vmgs: UEFI variables, the
    virtual TPM) and runtime state files are copied with it, as the import reads them from its folder.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Export
    )

    $found = @(Get-HvExportedPart -File $Export.files -FolderName 'Virtual Machines' -Extension @('.vmcx'))
    if ($found.Count -ne 1) {
        throw "backup '$($Export.label)' ($($Export.folder)) holds $($found.Count) VM configuration files (Virtual Machines\*.vmcx), not one"
    }
    $stem = [System.IO.Path]::GetFileNameWithoutExtension(@(Get-HvPathPart -Path $found[0].path)[-1])
    $beside = @(Get-HvExportedPart -File $Export.files -FolderName 'Virtual Machines' -Extension @('.vmgs', '.vmrs') | Where-Object {
            [string]::Equals([System.IO.Path]::GetFileNameWithoutExtension(@(Get-HvPathPart -Path $_.path)[-1]), $stem, [StringComparison]::OrdinalIgnoreCase)
        })
    @{ path = $found[0].path; files = @($found[0].path) + @($beside | ForEach-Object { $_.path }) }
}

Function Get-HvRestorePlan {
    <#
    .SYNOPSIS
    Returns what restoring a VM's backup takes: the restore point, its chain, each disk's files, and the configuration to import; throws saying why not.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $Vm,

        [Parameter(Mandatory)]
        [string]
        $Point
    )

    $set = Get-HvBackupSet -Path $Path -Vm $Vm -CheckFiles $true
    $vmPoints = @($set.restore_points)
    $chosen = Select-HvRestorePoint -RestorePoint $vmPoints -Vm $Vm -Point $Point
    $links = @(Get-HvChainLink -RestorePoint $chosen -VmPoint $vmPoints)
    @{
        restore_point = $chosen
        links = $links
        drives = @(Get-HvRestoreDrive -Link $links)
        configuration = Get-HvRestoreConfiguration -Export $links[-1]
    }
}

Function Get-HvRestoreFolderProblem {
    <#
    .SYNOPSIS
    Returns why a target folder cannot take a restore (it holds files, and no restore marker of ours), or nothing.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    if (Test-Path -LiteralPath $Folder -PathType Leaf) {
        return "'$Folder' is a file, not a folder"
    }
    if (-not (Test-Path -LiteralPath $Folder -PathType Container)) {
        return
    }
    $inside = @(Get-ChildItem -LiteralPath $Folder -Force -ErrorAction SilentlyContinue)
    if ($inside.Count -gt 0) {
        "folder '$Folder' is not empty ($($inside.Count) items), and no restore of this collection is recorded there: give an empty or new folder"
    }
}

Function Wait-HvMethodJob {
    <#
    .SYNOPSIS
    Returns the finished job of a method output (nothing when the method answered at once), throwing when the job fails, vanishes or times out.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ConcreteJob')]
    param (
        [Parameter(Mandatory)]
        [object]
        $Output,

        [Parameter(Mandatory)]
        [string]
        $Action,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    if ([uint32]$Output.ReturnValue -ne 4096) {
        return
    }
    $jobId = [string]$Output.Job.InstanceID
    $job = Wait-HvCimJob -InstanceId $jobId -TimeoutSeconds $TimeoutSeconds
    if ($null -eq $job) {
        throw "$Action failed: Hyper-V no longer has job $jobId, so whether it succeeded is not known"
    }
    if (-not (Test-HvCimJobFinished -Job $job)) {
        # Cancelled before the caller cleans up: a merge still running holds its files.
        $cancelled = 'cancelled'
        try {
            Stop-HvCimJob -Job $job
        }
        catch {
            $cancelled = "could not be cancelled ($($_.Exception.Message))"
        }
        throw "$Action did not finish within $TimeoutSeconds seconds (job $jobId, $([int]$job.PercentComplete)% done, $cancelled); raise step_timeout"
    }
    if (-not (Test-HvCimJobSucceeded -Job $job)) {
        # Marked: the job ended and failed, so what it was doing did not happen (a timeout or a job
        # that vanished leaves that unknown).
        $failure = [System.InvalidOperationException]::new((Format-HvJobFailure -JobResult (ConvertTo-HvJobResult -Job $job) -Action $Action))
        $failure.Data['HvJobFailed'] = $true
        throw $failure
    }
    $job
}

Function Invoke-HvRestoreMethod {
    <#
    .SYNOPSIS
    Calls a method, waits for its job, and returns what it made (the out parameter, or the job's affected element of that class).
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [object]
        $InputObject,

        [Parameter(Mandatory)]
        [string]
        $MethodName,

        [Parameter(Mandatory)]
        [hashtable]
        $Arguments,

        [Parameter(Mandatory)]
        [string]
        $Action,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds,

        # The out parameter that names the product, and the product's class (for a job's CIM_AffectedJobElement).
        [string]
        $Product = '',

        [string]
        $ProductClass = ''
    )

    $output = Invoke-HvCimMethod -InputObject $InputObject -MethodName $MethodName -Arguments $Arguments -Action $Action
    $job = Wait-HvMethodJob -Output $output -Action $Action -TimeoutSeconds $TimeoutSeconds
    if (-not $Product) {
        return
    }
    $made = $null
    if ($null -ne $output.PSObject.Properties[$Product]) {
        $made = $output.$Product
    }
    if ($null -eq $made -and $null -ne $job) {
        $made = Get-HvJobProduct -Job $job -ResultClassName $ProductClass | Select-Object -First 1
    }
    if ($null -eq $made) {
        throw "$Action succeeded, but Hyper-V did not say what it made (no $Product, no $ProductClass of the job)"
    }
    # An out reference holds the keys only: the whole instance is read.
    Get-CimInstance -InputObject $made
}

Function Copy-HvRestoreDrive {
    <#
    .SYNOPSIS
    Returns the path of a disk rebuilt in the target folder: its whole copy, with each difference re-parented onto it and merged in order.

    .DESCRIPTION
    Each difference is copied next to the disk, re-parented with IgnoreIDMismatch (the parent it
    was exported against is the live disk, and after the first merge the copy has a new identity
    in any case: [MS-VHDX] links a child to its parent's DataWriteGuid, which each write changes),
    then merged into it. The copy of the difference is removed after the merge whether or not
    Hyper-V removed it: nobody documents which.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Drive,

        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds,

        # Every file written, so that a failure can remove them all.
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Written
    )

    $disks = Join-Path -Path $Folder -ChildPath 'Virtual Hard Disks'
    $null = New-Item -Path $disks -ItemType Directory -Force
    $target = Join-Path -Path $disks -ChildPath $Drive.name
    $Written.Add($target)
    Copy-HvWritableFile -Path $Drive.files[0].path -Destination $target
    $service = Get-HvService -ClassName Msvm_ImageManagementService
    $stem = [System.IO.Path]::GetFileNameWithoutExtension($Drive.name)
    # Hyper-V takes the format from the extension: a VHD's differencing disk is .avhd, a VHDX's .avhdx.
    $childExtension = if ($Drive.name -match '\.vhd$') { 'avhd' } else { 'avhdx' }
    for ($i = 1; $i -lt $Drive.files.Count; $i++) {
        $file = $Drive.files[$i]
        $child = Join-Path -Path $disks -ChildPath "$stem.$i.$childExtension"
        $Written.Add($child)
        Copy-HvWritableFile -Path $file.path -Destination $child
        $null = Invoke-HvRestoreMethod -InputObject $service -MethodName SetParentVirtualHardDisk -TimeoutSeconds $TimeoutSeconds -Action (
            "Linking the difference of '$($Drive.name)' from backup '$($file.label)' to its restored parent") -Arguments @{
            ChildPath = $child
            ParentPath = $target
            IgnoreIDMismatch = $true
        }
        $null = Invoke-HvRestoreMethod -InputObject $service -MethodName MergeVirtualHardDisk -TimeoutSeconds $TimeoutSeconds -Action (
            "Merging the difference of '$($Drive.name)' from backup '$($file.label)'") -Arguments @{
            SourcePath = $child
            DestinationPath = $target
        }
        if (Test-Path -LiteralPath $child -PathType Leaf) {
            Remove-Item -LiteralPath $child -Force
        }
    }
    $target
}

Function Copy-HvWritableFile {
    <#
    .SYNOPSIS
    Copies a file and clears the copy's read-only attribute (a backup share's files may carry it, and Hyper-V must write the copy).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    Copy-Item -LiteralPath $Path -Destination $Destination
    $copy = Get-Item -LiteralPath $Destination -Force
    if ($copy.IsReadOnly) {
        $copy.IsReadOnly = $false
    }
}

Function Import-HvPlannedSystem {
    <#
    .SYNOPSIS
    Imports a VM configuration file with a new id; returns the planned system (Msvm_PlannedComputerSystem).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_PlannedComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [string]
        $ConfigurationFile,

        [Parameter(Mandatory)]
        [string]
        $SnapshotFolder,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $call = @{
        InputObject = Get-HvService -ClassName Msvm_VirtualSystemManagementService
        MethodName = 'ImportSystemDefinition'
        Action = "Importing the VM configuration '$ConfigurationFile'"
        TimeoutSeconds = $TimeoutSeconds
        Product = 'ImportedSystem'
        ProductClass = 'Msvm_PlannedComputerSystem'
    }
    Invoke-HvRestoreMethod @call -Arguments @{
        SystemDefinitionFile = $ConfigurationFile
        SnapshotFolder = $SnapshotFolder
        GenerateNewSystemIdentifier = $true
    }
}

Function Set-HvPlannedSystemName {
    <#
    .SYNOPSIS
    Gives a planned system its display name, and its configuration, checkpoints, paging and guest state the target folder (ModifySystemSettings).

    .DESCRIPTION
    The imported configuration keeps the backed-up VM's folders; restored on the same host, the new
    VM's checkpoints and files would go into the original VM's folder.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $Setting,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $Setting.ElementName = $Name
    foreach ($root in @('ConfigurationDataRoot', 'SnapshotDataRoot', 'SwapFileDataRoot', 'GuestStateDataRoot')) {
        if ($null -ne $Setting.PSObject.Properties[$root]) {
            $Setting.$root = $Folder
        }
    }
    $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
    $call = @{ InputObject = $service; MethodName = 'ModifySystemSettings'; Action = "Naming the imported VM '$Name'" }
    $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{
        SystemSettings = ConvertTo-HvEmbeddedInstance -InputObject $Setting
    }
}

Function Set-HvPlannedDiskPath {
    <#
    .SYNOPSIS
    Points each virtual hard disk of a planned system at its restored file (by file name); returns the paths set.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Setting,

        # Restored file path by disk file name.
        [Parameter(Mandatory)]
        [System.Collections.IDictionary]
        $RestoredPath,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $changed = [System.Collections.Generic.List[string]]::new()
    $association = @{ InputObject = $Setting; Association = 'Msvm_VirtualSystemSettingDataComponent' }
    $storage = Get-CimAssociatedInstance @association -ResultClassName Msvm_StorageAllocationSettingData
    foreach ($disk in @($storage | Where-Object { $_.ResourceSubType -eq $script:HvHardDiskSubType })) {
        $name = @(Get-HvPathPart -Path ([string]@($disk.HostResource)[0]))[-1]
        $found = @($RestoredPath.Keys | Where-Object { [string]::Equals($_, $name, [StringComparison]::OrdinalIgnoreCase) })
        if ($found.Count -eq 0) {
            throw "the VM's configuration names the disk '$(@($disk.HostResource)[0])', which the backup does not hold"
        }
        $disk.HostResource = [string[]]@($RestoredPath[$found[0]])
        $changed.Add((ConvertTo-HvEmbeddedInstance -InputObject $disk))
    }
    if ($changed.Count -gt 0) {
        $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
        $call = @{ InputObject = $service; MethodName = 'ModifyResourceSettings'; Action = 'Pointing the imported VM at its restored disks' }
        $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{ ResourceSettings = [string[]]@($changed) }
    }
}

Function Get-HvSwitchPath {
    <#
    .SYNOPSIS
    Returns the WMI path of a virtual switch, as an adapter's connection (HostResource) names it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Switch
    )

    $class = 'Msvm_VirtualEthernetSwitch'
    "\\$($env:COMPUTERNAME.ToUpperInvariant())\root\virtualization\v2:$class.CreationClassName=`"$class`",Name=`"$($Switch.Name)`""
}

Function Set-HvPlannedNetwork {
    <#
    .SYNOPSIS
    Connects each network adapter of a planned system to its switch (by name, through the switch map) or leaves it disconnected; returns what each got.

    .DESCRIPTION
    A switch this host does not have would make the import fail to realize (hashicorp/vagrant#9922),
    so such an adapter is disconnected (EnabledState 3) and the result says so; with Connect false
    every adapter is (a restore test boots without network).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Setting,

        [Parameter(Mandatory)]
        [System.Collections.IDictionary]
        $SwitchMap,

        [Parameter(Mandatory)]
        [bool]
        $Connect,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $switches = @(Get-CimInstance -Namespace $script:HvNamespace -ClassName Msvm_VirtualEthernetSwitch)
    $changed = [System.Collections.Generic.List[string]]::new()
    $index = 0
    $association = @{ InputObject = $Setting; Association = 'Msvm_VirtualSystemSettingDataComponent' }
    foreach ($port in @(Get-CimAssociatedInstance @association -ResultClassName Msvm_EthernetPortAllocationSettingData)) {
        $was = [string]$port.LastKnownSwitchName
        $wanted = $was
        # Switch names are exact, as Hyper-V keeps them.
        # get_Keys(): a key named Keys or Count would hide the property.
        foreach ($key in @($SwitchMap.get_Keys() | Where-Object { [string]::Equals($_, $was, [StringComparison]::Ordinal) })) {
            $wanted = [string]$SwitchMap[$key]
        }
        $found = @($switches | Where-Object { [string]::Equals($_.ElementName, $wanted, [StringComparison]::Ordinal) })
        if ($found.Count -gt 1 -and $Connect) {
            throw "this host has $($found.Count) switches named '$wanted': map '$was' to one that is unique with switch_map"
        }
        $entry = @{ adapter = $index; backed_up_switch = $was; switch = $null; connected = $false; reason = $null }
        if (-not $Connect) {
            $entry.reason = 'network disconnected as asked'
        }
        elseif ($was -eq '' -or [int]$port.EnabledState -eq 3) {
            $entry.reason = 'it was not connected when backed up'
        }
        elseif ($found.Count -eq 0) {
            $entry.reason = "this host has no switch named '$wanted'"
        }
        else {
            $entry.switch = $wanted
            $entry.connected = $true
        }
        if ($entry.connected) {
            $port.HostResource = [string[]]@(Get-HvSwitchPath -Switch $found[0])
            $port.EnabledState = [uint16]2
        }
        else {
            $port.HostResource = [string[]]@()
            $port.EnabledState = [uint16]3
        }
        $changed.Add((ConvertTo-HvEmbeddedInstance -InputObject $port))
        $entry
        $index++
    }
    if ($changed.Count -gt 0) {
        $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
        $call = @{ InputObject = $service; MethodName = 'ModifyResourceSettings'; Action = "Connecting the imported VM's network adapters" }
        $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{ ResourceSettings = [string[]]@($changed) }
    }
}

Function Test-HvPlannedSystem {
    <#
    .SYNOPSIS
    Returns what ValidatePlannedSystem reports about a planned system (its job's errors, which it also gives on success).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Planned,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $action = 'Validating the imported VM'
    $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
    $output = Invoke-HvCimMethod -InputObject $service -MethodName ValidatePlannedSystem -Action $action -Arguments @{
        PlannedSystem = $Planned
    }
    $job = Wait-HvMethodJob -Output $output -Action $action -TimeoutSeconds $TimeoutSeconds
    if ($null -ne $job) {
        Get-HvCimJobError -Job $job
    }
}

Function Complete-HvPlannedSystem {
    <#
    .SYNOPSIS
    Realizes a planned system; returns the VM (Msvm_ComputerSystem) it became.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [object]
        $Planned,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $call = @{
        InputObject = Get-HvService -ClassName Msvm_VirtualSystemManagementService
        MethodName = 'RealizePlannedSystem'
        Action = 'Registering the imported VM'
        TimeoutSeconds = $TimeoutSeconds
        Product = 'ResultingSystem'
        ProductClass = 'Msvm_ComputerSystem'
    }
    Invoke-HvRestoreMethod @call -Arguments @{ PlannedSystem = $Planned }
}

Function Remove-HvSystem {
    <#
    .SYNOPSIS
    Removes a planned system or a VM that is off (DestroySystem); its files stay, for the caller to remove.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $System,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
    $call = @{ InputObject = $service; MethodName = 'DestroySystem'; Action = "Removing VM '$($System.ElementName)' ($($System.Name))" }
    $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{ AffectedSystem = $System }
}

Function Set-HvVirtualMachinePower {
    <#
    .SYNOPSIS
    Starts (2) or turns off (3) a VM and waits for it (RequestStateChange).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [ValidateSet(2, 3)]
        [int]
        $State,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $verb = if ($State -eq 2) { 'Starting' } else { 'Turning off' }
    $action = "$verb VM '$($VirtualMachine.ElementName)' ($($VirtualMachine.Name))"
    $call = @{ InputObject = $VirtualMachine; MethodName = 'RequestStateChange'; Action = $action }
    $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{ RequestedState = [uint16]$State }
}

Function Wait-HvHeartbeat {
    <#
    .SYNOPSIS
    Returns the VM's heartbeat once the guest answers (ok, degraded), or the last one seen when the timeout passes (no_contact, lost_communication, none).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        $beat = Get-CimAssociatedInstance -InputObject $VirtualMachine -Association Msvm_SystemDevice -ResultClassName Msvm_HeartbeatComponent |
            Select-Object -First 1
        $status = 'none'
        if ($null -ne $beat -and @($beat.OperationalStatus).Count -gt 0) {
            $code = [int]@($beat.OperationalStatus)[0]
            $status = $script:HvHeartbeatStatus[$code]
            if ($null -eq $status) {
                $status = "status $code"
            }
        }
        if ($status -in @('ok', 'degraded') -or [DateTime]::UtcNow -ge $deadline) {
            return $status
        }
        Start-Sleep -Milliseconds 500
    }
}

Function Remove-HvRestoreFile {
    <#
    .SYNOPSIS
    Removes the files a restore wrote and the folders it made that are left empty; returns what could not be removed.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $File,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $Folder
    )

    foreach ($path in $File) {
        if (Test-Path -LiteralPath $path -PathType Leaf) {
            try {
                Remove-Item -LiteralPath $path -Force -ErrorAction Stop
            }
            catch {
                "file '$path' ($($_.Exception.Message))"
            }
        }
    }
    # Deepest first, and only when empty: a folder that held something else before stays.
    foreach ($path in @($Folder | Sort-Object -Property Length -Descending)) {
        try {
            if ((Test-Path -LiteralPath $path -PathType Container) -and @(Get-ChildItem -LiteralPath $path -Force -ErrorAction Stop).Count -eq 0) {
                Remove-Item -LiteralPath $path -Force -ErrorAction Stop
            }
        }
        catch {
            "folder '$path' ($($_.Exception.Message))"
        }
    }
}

Function Get-HvMissingFolder {
    <#
    .SYNOPSIS
    Returns a folder and each folder above it that does not exist yet, deepest first (what creating it makes).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    $path = $Folder.TrimEnd('\', '/')
    while ($path -and -not (Test-Path -LiteralPath $path -PathType Container)) {
        $path
        $path = [System.IO.Path]::GetDirectoryName($path)
    }
}

Function Get-HvReplaceProblem {
    <#
    .SYNOPSIS
    Returns why a restore of a backed-up VM cannot replace a VM (it is another VM, it is not off, it has checkpoints), or nothing.

    .DESCRIPTION
    Replacing removes the VM with DestroySystem, which Hyper-V documents for a VM that is off.
    What it does with a VM's checkpoints and their differencing disks is not documented (they may
    or may not be merged or deleted), so a VM with checkpoints is refused instead of guessed at.
    Its reference points are removed first, with DestroyReferencePoint (Remove-HvReplacedReferencePoint).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        # The id of the VM the backup is of.
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $BackedUpId
    )

    $which = Format-HvVirtualMachineList -VirtualMachine @($VirtualMachine)
    $guid = [guid]::Empty
    if (-not [guid]::TryParse($BackedUpId, [ref]$guid)) {
        return "the backup does not record the backed-up VM's id, so VM $which cannot be told to be that VM"
    }
    if (([guid]$VirtualMachine.Name).ToString() -ne $guid.ToString()) {
        return "VM $which is not the VM that was backed up ($BackedUpId), and replace only restores a VM over itself"
    }
    $state = Get-HvVirtualMachineState -VirtualMachine $VirtualMachine
    if ($state -ne 'off') {
        return "VM $which is ${state}: turn it off first (vm_restore does not stop a VM it is to replace)"
    }
    $checkpoints = @(Get-HvCheckpointList -VirtualMachine $VirtualMachine)
    if ($checkpoints.Count -gt 0) {
        $names = ($checkpoints | ForEach-Object { "'$($_.ElementName)'" }) -join ', '
        $why = 'what removing a VM does with its checkpoints is not documented, so vm_restore does not do it'
        return "VM $which has $($checkpoints.Count) checkpoint(s) ($names): delete them first (Hyper-V merges a deleted checkpoint into the disks); $why"
    }
}

Function Get-HvReplacedSystem {
    <#
    .SYNOPSIS
    Returns what replacing a VM removes and keeps, as the module reports it: the VM, its reference points, and its disk files (kept).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    @{
        vm = @{ id = ([guid]$VirtualMachine.Name).ToString(); name = $VirtualMachine.ElementName }
        reference_points = @(Get-HvReferencePoint -VirtualMachine $VirtualMachine | ForEach-Object { $_.InstanceID })
        files_kept = @(Get-HvSystemDiskPath -System $VirtualMachine)
    }
}

Function Remove-HvReplacedReferencePoint {
    <#
    .SYNOPSIS
    Removes every reference point of the VM a restore replaces (DestroyReferencePoint), this collection's and any other product's.

    .DESCRIPTION
    DestroySystem of a VM with reference points is not documented, so they go first. Each one
    removed is added to Removed as it goes, so that a failure half-way can say which ones the VM,
    left in place, no longer has.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [System.Collections.Generic.List[string]]
        $Removed,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    $which = Format-HvVirtualMachineList -VirtualMachine @($VirtualMachine)
    foreach ($point in @(Get-HvReferencePoint -VirtualMachine $VirtualMachine)) {
        $call = @{ InputObject = (Get-HvService -ClassName Msvm_VirtualSystemReferencePointService); MethodName = 'DestroyReferencePoint'
            Action = "Removing reference point $($point.InstanceID) of VM $which"
        }
        $null = Invoke-HvRestoreMethod @call -TimeoutSeconds $TimeoutSeconds -Arguments @{ AffectedReferencePoint = $point }
        $Removed.Add($point.InstanceID)
    }
}

Export-ModuleMember -Function @(
    'Complete-HvPlannedSystem'
    'ConvertTo-HvRelativePath'
    'Copy-HvRestoreDrive'
    'Copy-HvWritableFile'
    'Find-HvRestoredSystem'
    'Get-HvMissingFolder'
    'Get-HvRestoreConfiguration'
    'Get-HvRestoreFile'
    'Get-HvRestoreFolderPath'
    'Get-HvRestoreFolderProblem'
    'Get-HvRestoreMarkerPath'
    'Get-HvReplacedSystem'
    'Get-HvReplaceProblem'
    'Get-HvRestorePlan'
    'Get-HvSystemDiskPath'
    'Import-HvPlannedSystem'
    'Read-HvRestoreMarker'
    'Remove-HvReplacedReferencePoint'
    'Remove-HvRestoreFile'
    'Remove-HvSystem'
    'Save-HvRestoreMarker'
    'Select-HvRestorePoint'
    'Set-HvPlannedDiskPath'
    'Set-HvPlannedNetwork'
    'Set-HvPlannedSystemName'
    'Set-HvVirtualMachinePower'
    'Test-HvInsideFolder'
    'Test-HvPlannedSystem'
    'Wait-HvHeartbeat'
)
