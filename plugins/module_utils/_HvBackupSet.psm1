# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# What can be restored from a backup folder, read from the files alone: each complete export has
# a marker (vm_export writes it last) naming its VM by GUID, its label, its mode, its base's label
# and every file with its size. Chains are linked by label within a VM, so the folders can be read
# from any host that reaches them, without the catalog of the host that wrote them.

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvCatalog
#AnsibleRequires -PowerShell ..module_utils._HvExport

Set-StrictMode -Version 2.0

# Hyper-V's own folders in an export (ExportSystemDefinition writes <directory>\<VM name>\these).
$script:HvExportFolderNames = @('Virtual Machines', 'Virtual Hard Disks', 'Snapshots')

Function Get-HvPathPart {
    <#
    .SYNOPSIS
    Returns the parts of a path split at either separator (a marker written on Windows is read on any host).
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    $Path -split '[\\/]' | Where-Object { $_ -ne '' }
}

Function Test-HvHyperVExportFolder {
    <#
    .SYNOPSIS
    Returns whether a folder holds what ExportSystemDefinition writes (<folder>\<VM name>\Virtual Machines and the like).
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    foreach ($child in @(Get-ChildItem -LiteralPath $Folder -Directory -Force -ErrorAction SilentlyContinue)) {
        foreach ($inner in @(Get-ChildItem -LiteralPath $child.FullName -Directory -Force -ErrorAction SilentlyContinue)) {
            if ($script:HvExportFolderNames -contains $inner.Name) {
                return $true
            }
        }
    }
    $false
}

Function Find-HvBackupFolder {
    <#
    .SYNOPSIS
    Returns the export folders under a path (itself, its subfolders and theirs): path, and whether a marker says the export is complete.

    .DESCRIPTION
    Three levels cover every layout the collection writes: the path is one export (vm_export's
    destination), a VM's folder (<VM name>_<GUID> or, before 1.0, <VM name>) or the role's
    destination. An export folder is not looked into further (Hyper-V's files are there).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path
    )

    $level = @($Path)
    for ($depth = 0; $depth -le 2 -and $level.Count -gt 0; $depth++) {
        $next = [System.Collections.Generic.List[string]]::new()
        foreach ($folder in $level) {
            if (Test-Path -LiteralPath (Get-HvExportMarkerPath -Destination $folder) -PathType Leaf) {
                @{ path = $folder; complete = $true }
                continue
            }
            if (Test-HvHyperVExportFolder -Folder $folder) {
                @{ path = $folder; complete = $false }
                continue
            }
            if ($depth -lt 2) {
                foreach ($child in @(Get-ChildItem -LiteralPath $folder -Directory -Force -ErrorAction SilentlyContinue | Sort-Object -Property Name)) {
                    $next.Add($child.FullName)
                }
            }
        }
        $level = @($next)
    }
}

Function Resolve-HvMarkerFilePath {
    <#
    .SYNOPSIS
    Returns where a marker's files are from this host: each recorded path with the exporting host's destination replaced by the folder the marker is in.

    .DESCRIPTION
    Markers record full paths as the exporting host saw them (E:\Backup\web01_...\label\...); read
    over a share or after the folder moved, those paths point elsewhere. The part after the
    export's own folder is kept: the recorded path is cut after the part named like the folder, at
    the occurrence that finds the most files (a VM named like the folder makes two candidates).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $File
    )

    $folderName = @(Get-HvPathPart -Path $Folder)[-1]
    $best = $null
    $bestFound = -1
    $candidates = @(0)
    if ($File.Count -gt 0) {
        $parts = @(Get-HvPathPart -Path ([string]$File[0].path))
        $candidates = @(for ($i = $parts.Count - 2; $i -ge 0; $i--) { if ($parts[$i] -eq $folderName) { $parts.Count - 1 - $i } })
        if ($candidates.Count -eq 0) {
            # Folder renamed since: the export's own folder is the part above <VM name>\<Hyper-V folder>\...
            $candidates = @(3, 2)
        }
    }
    foreach ($keep in $candidates) {
        $mapped = @(foreach ($entry in $File) {
                $parts = @(Get-HvPathPart -Path ([string]$entry.path))
                $relative = $parts[[Math]::Max(0, $parts.Count - $keep)..($parts.Count - 1)]
                $here = Join-Path -Path $Folder -ChildPath ($relative -join [System.IO.Path]::DirectorySeparatorChar)
                @{ recorded = [string]$entry.path; path = $here; size = [long]$entry.size }
            })
        $found = @($mapped | Where-Object { Test-Path -LiteralPath $_.path -PathType Leaf }).Count
        if ($found -gt $bestFound) {
            $best = $mapped
            $bestFound = $found
        }
    }
    $best
}

Function Get-HvBackupFileProblem {
    <#
    .SYNOPSIS
    Returns what is wrong with an export's files on disk: each missing file, and each whose size is not the recorded one.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $File
    )

    foreach ($entry in $File) {
        $item = Get-Item -LiteralPath $entry.path -Force -ErrorAction SilentlyContinue
        if ($null -eq $item -or $item.PSIsContainer) {
            "file '$($entry.path)' is missing"
        }
        elseif ([long]$item.Length -ne [long]$entry.size) {
            "file '$($entry.path)' is $($item.Length) bytes, the export wrote $($entry.size)"
        }
    }
}

Function Read-HvRestorePoint {
    <#
    .SYNOPSIS
    Returns one restore point read from an export folder's marker, with its own problems (unreadable marker, files missing or cut short).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [bool]
        $CheckFiles = $true
    )

    $point = @{
        path = $Folder; vm = @{ id = $null; name = $null }; label = $null; time = $null; mode = $null; base = $null
        bytes = [long]0; files = 0; problems = [System.Collections.Generic.List[string]]::new()
    }
    try {
        $marker = Read-HvExportMarker -Destination $Folder
    }
    catch {
        $point.problems.Add("its marker $(Get-HvExportMarkerPath -Destination $Folder) cannot be read: $($_.Exception.Message)")
        return $point
    }
    foreach ($key in @('vm_id', 'checkpoint', 'mode', 'files')) {
        if (-not $marker.ContainsKey($key) -or $null -eq $marker[$key]) {
            $point.problems.Add("its marker $(Get-HvExportMarkerPath -Destination $Folder) has no $key")
        }
    }
    if ($point.problems.Count -gt 0) {
        return $point
    }
    $point.vm = @{ id = ([string]$marker.vm_id).ToLowerInvariant(); name = [string]$marker.vm_name }
    $point.label = [string]$marker.checkpoint
    $point.time = if ($marker.ContainsKey('completed')) { $marker.completed } else { $null }
    $point.mode = [string]$marker.mode
    $point.base = if ($marker.ContainsKey('base') -and $marker.base) { [string]$marker.base } else { $null }
    $files = @(Resolve-HvMarkerFilePath -Folder $Folder -File @($marker.files))
    $point.files = $files.Count
    $point.bytes = Get-HvExportFileByte -File $files
    if ($CheckFiles) {
        foreach ($problem in @(Get-HvBackupFileProblem -File $files)) {
            $point.problems.Add($problem)
        }
    }
    $point
}

Function Get-HvIncompleteExport {
    <#
    .SYNOPSIS
    Returns an export folder that has Hyper-V's files and no marker (an export that never finished): path, files, bytes.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Folder
    )

    $files = @(Get-HvExportFile -Destination $Folder)
    @{ path = $Folder; files = $files.Count; bytes = (Get-HvExportFileByte -File $files) }
}

Function Add-HvRestorePointChain {
    <#
    .SYNOPSIS
    Returns the restore points with their chains: the labels from the full export to each, its bytes, and whether every link is there and sound.

    .DESCRIPTION
    An incremental export holds the changes since its base (the VM's backup named by the base's
    label); restoring it needs every export down to a full one. A link that is missing, has its own
    problems, or loops makes the point incomplete, and the problem names the link.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [hashtable[]]
        $RestorePoint
    )

    # Labels are exact: 'Nightly' and 'nightly' are two backups (a hashtable would take them as one).
    $byKey = [System.Collections.Generic.Dictionary[string, hashtable]]::new([System.StringComparer]::Ordinal)
    foreach ($point in $RestorePoint) {
        if (-not $point.label) {
            continue
        }
        $key = "$($point.vm.id)`n$($point.label)"
        $other = $null
        if ($byKey.TryGetValue($key, [ref]$other)) {
            # Which of two copies a chain should use cannot be told from the files: both are refused.
            $other.problems.Add("the same backup ('$($point.label)' of this VM) is also in $($point.path)")
            $point.problems.Add("the same backup ('$($point.label)' of this VM) is also in $($other.path)")
            continue
        }
        $byKey[$key] = $point
    }
    foreach ($point in $RestorePoint) {
        $chain = [System.Collections.Generic.List[string]]::new()
        $missing = [System.Collections.Generic.List[string]]::new()
        $chainBytes = [long]0
        $link = $point
        while ($null -ne $link) {
            if ($chain.Contains([string]$link.label)) {
                $missing.Add("its chain loops at '$($link.label)'")
                break
            }
            $chain.Insert(0, [string]$link.label)
            $chainBytes += $link.bytes
            if (-not [object]::ReferenceEquals($link, $point) -and $link.problems.Count -gt 0) {
                $missing.Add("it needs '$($link.label)' ($($link.path)), whose $($link.problems[0])")
            }
            if ($link.mode -eq 'full' -or -not $link.mode) {
                break
            }
            if (-not $link.base) {
                $missing.Add("incremental export '$($link.label)' names no base")
                break
            }
            $next = $null
            if (-not $byKey.TryGetValue("$($point.vm.id)`n$($link.base)", [ref]$next)) {
                $missing.Add("it needs '$($link.base)', the base of '$($link.label)', which is not in this folder")
            }
            $link = $next
        }
        $point.chain = @($chain)
        $point.chain_bytes = $chainBytes
        foreach ($problem in $missing) {
            $point.problems.Add($problem)
        }
        $point.complete = $point.problems.Count -eq 0
        $point
    }
}

Function Get-HvBackupSetVm {
    <#
    .SYNOPSIS
    Returns one entry per VM of the restore points (sorted oldest first): id, name, how many points, how many complete, and the newest complete one.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [hashtable[]]
        $RestorePoint
    )

    $order = [System.Collections.Generic.List[string]]::new()
    $byId = @{}
    foreach ($point in $RestorePoint) {
        if (-not $point.vm.id) {
            continue
        }
        if (-not $byId.ContainsKey($point.vm.id)) {
            $order.Add($point.vm.id)
            $byId[$point.vm.id] = @{ id = $point.vm.id; name = $point.vm.name; restore_points = 0; complete = 0; latest = $null; latest_time = $null }
        }
        $vm = $byId[$point.vm.id]
        # The newest marker names the VM as it is called now (VMs can be renamed).
        $vm.name = $point.vm.name
        $vm.restore_points++
        if ($point.complete) {
            $vm.complete++
            $vm.latest = $point.label
            $vm.latest_time = $point.time
        }
    }
    foreach ($id in $order) {
        $byId[$id]
    }
}

Function Get-HvBackupSet {
    <#
    .SYNOPSIS
    Returns what a backup folder holds: restore_points (each with its chain and problems, oldest first per VM) and incomplete exports.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Path,

        # A VM's GUID (any case, braces or not), or its name as the markers record it (exact: Hyper-V
        # tells apart names that differ only in case).
        [AllowEmptyString()]
        [string]
        $Vm = '',

        [bool]
        $CheckFiles = $true
    )

    $points = [System.Collections.Generic.List[hashtable]]::new()
    $incomplete = [System.Collections.Generic.List[hashtable]]::new()
    foreach ($found in @(Find-HvBackupFolder -Path $Path)) {
        if ($found.complete) {
            $points.Add((Read-HvRestorePoint -Folder $found.path -CheckFiles $CheckFiles))
        }
        else {
            $incomplete.Add((Get-HvIncompleteExport -Folder $found.path))
        }
    }
    $linked = @(Add-HvRestorePointChain -RestorePoint @($points))
    if ($Vm) {
        $wanted = $Vm.Trim('{', '}')
        $linked = @($linked | Where-Object { $_.vm.id -eq $wanted -or $_.vm.name -ceq $Vm })
    }
    $sorted = @($linked | Sort-Object -Property { [string]$_.vm.name }, { [string]$_.vm.id }, { [string]$_.time }, { [string]$_.label })
    @{
        restore_points = $sorted
        vms = @(Get-HvBackupSetVm -RestorePoint $sorted)
        incomplete = @($incomplete)
    }
}

Export-ModuleMember -Function @(
    'Find-HvBackupFolder'
    'Get-HvBackupSet'
    'Get-HvPathPart'
    'Read-HvRestorePoint'
    'Resolve-HvMarkerFilePath'
)
