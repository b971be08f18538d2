# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Exporting a recovery checkpoint, full or differential against a reference point, and the
# marker file that makes an export idempotent by its destination.

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance
#AnsibleRequires -PowerShell ..module_utils._HvCatalog

$script:HvNamespace = 'root/virtualization/v2'
$script:HvMarkerName = 'hyperv.backup-export.json'

Function Get-HvInstancePath {
    <#
    .SYNOPSIS
    Returns the WMI path of an instance by InstanceID, as export settings want it.

    .DESCRIPTION
    \\HOST\root\virtualization\v2:Class.InstanceID="...", host name upper case and
    backslashes in the key doubled (seen in recorded WMI calls).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ClassName,

        [Parameter(Mandatory)]
        [string]
        $InstanceId
    )

    $key = $InstanceId.Replace('\', '\\')
    "\\$($env:COMPUTERNAME.ToUpperInvariant())\root\virtualization\v2:$ClassName.InstanceID=`"$key`""
}

Function Start-HvExport {
    <#
    .SYNOPSIS
    Starts ExportSystemDefinition of a recovery checkpoint; returns the method output.

    .DESCRIPTION
    Without a base the export is full; with one, only what changed since that reference point
    (DifferentialBackupBase). BackupIntent 1 (merge) makes each exported disk self-contained.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemManagementService.ExportSystemDefinition')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint,

        [Parameter(Mandatory)]
        [string]
        $Destination,

        [AllowNull()]
        [object]
        $BaseReferencePoint
    )

    $base = ''
    if ($null -ne $BaseReferencePoint) {
        $base = Get-HvInstancePath -ClassName Msvm_VirtualSystemReferencePoint -InstanceId $BaseReferencePoint.InstanceID
    }
    $settings = New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemExportSettingData -Property @{
        SnapshotVirtualSystem = Get-HvInstancePath -ClassName Msvm_VirtualSystemSettingData -InstanceId $Checkpoint.InstanceID
        CopySnapshotConfiguration = [byte]2
        CopyVmStorage = $true
        CopyVmRuntimeInformation = $false
        CreateVmExportSubdirectory = $true
        BackupIntent = [byte]1
        DifferentialBackupBase = $base
    }
    $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
    Invoke-HvCimMethod -InputObject $service -MethodName ExportSystemDefinition -Action "Exporting VM '$($VirtualMachine.ElementName)'" -Arguments @{
        ComputerSystem = $VirtualMachine
        ExportDirectory = $Destination
        ExportSettingData = $settings
    }
}

Function Test-HvRctFailure {
    <#
    .SYNOPSIS
    Returns whether a failed job failed because change tracking data is not valid.

    .DESCRIPTION
    VHD change tracking errors: 0xC03A0029 the identifier is not valid, 0xC03A0030 no change
    tracking data for it (the log aged out), 0xC03A002A change tracking is disabled.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $JobResult
    )

    $texts = @($JobResult.error_description) + @($JobResult.errors)
    [bool]($texts | Where-Object { $_ -match '0xC03A00(29|30|2A)' })
}

Function Get-HvExportMarkerPath {
    <#
    .SYNOPSIS
    Returns the path of the file that marks a destination as a complete export.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    Join-Path -Path $Destination -ChildPath $script:HvMarkerName
}

Function Read-HvExportMarker {
    <#
    .SYNOPSIS
    Returns the marker of a complete export at a destination, or nothing.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    $path = Get-HvExportMarkerPath -Destination $Destination
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        ConvertTo-HvHashtable -Dictionary ([Ansible.Basic.AnsibleModule]::FromJson([System.IO.File]::ReadAllText($path)))
    }
}

Function Get-HvExportFile {
    <#
    .SYNOPSIS
    Returns the files under a destination (not the marker) as path and size in bytes.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    if (-not (Test-Path -LiteralPath $Destination)) {
        return
    }
    # -Force: hidden and system files are files of the destination too.
    Get-ChildItem -LiteralPath $Destination -Recurse -File -Force |
        Where-Object { $_.Name -ne $script:HvMarkerName } |
        Sort-Object -Property FullName |
        ForEach-Object { @{ path = $_.FullName; size = [long]$_.Length } }
}

Function Get-HvExportFileByte {
    <#
    .SYNOPSIS
    Returns the bytes of export files (Get-HvExportFile entries, or a marker's files): the sum of their sizes.
    #>
    [CmdletBinding()]
    [OutputType([long])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $File
    )

    $bytes = [long]0
    foreach ($entry in $File) {
        $bytes += [long]$entry.size
    }
    $bytes
}

Function Save-HvExportMarker {
    <#
    .SYNOPSIS
    Writes the marker that says the export at a destination is complete.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination,

        [Parameter(Mandatory)]
        [hashtable]
        $Marker
    )

    [System.IO.File]::WriteAllText((Get-HvExportMarkerPath -Destination $Destination), [Ansible.Basic.AnsibleModule]::ToJson($Marker))
}

Function Get-HvDestinationKey {
    <#
    .SYNOPSIS
    Returns one name for a destination folder however it is written (either separator, a trailing one, any case).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    $Destination.Replace('/', '\').TrimEnd('\').ToLowerInvariant()
}

Function Lock-HvExportDestination {
    <#
    .SYNOPSIS
    Returns an open, exclusive handle on a destination's lock file in a folder of the host, or nothing when no lock file can be made there.

    .DESCRIPTION
    A module exporting into a destination holds it until it exits. A run started again meanwhile
    (a controller killed while the module on the host still waits on its export's job, and the
    task run again at once) waits for that module's completion marker, instead of taking its
    files for a failed export or exporting into them a second time. The operating system closes
    the handle if the process dies; closing removes the file (DeleteOnClose; on Windows also when
    the process dies). The file is named by a hash of the destination, in the host's folder (next
    to the catalog), so that nothing is written into the backups. Where no lock file can be made,
    nothing is returned.
    #>
    [CmdletBinding()]
    [OutputType([System.IO.FileStream])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination,

        # The host's folder for lock files.
        [Parameter(Mandatory)]
        [string]
        $Folder,

        [Parameter(Mandatory)]
        [int]
        $TimeoutSeconds
    )

    try {
        if (-not (Test-Path -LiteralPath $Folder)) {
            $null = New-Item -Path $Folder -ItemType Directory -Force -ErrorAction Stop
        }
    }
    catch {
        return
    }
    # The provider class, not SHA256.Create(): on a host with the FIPS policy on, Windows PowerShell's
    # SHA256Managed throws.
    $key = [System.Text.Encoding]::UTF8.GetBytes((Get-HvDestinationKey -Destination $Destination))
    $sha = [System.Security.Cryptography.SHA256CryptoServiceProvider]::new()
    try {
        $hash = [System.BitConverter]::ToString($sha.ComputeHash($key)).Replace('-', '')
    }
    finally {
        $sha.Dispose()
    }
    $lockPath = Join-Path -Path $Folder -ChildPath "export-$($hash.Substring(0, 32).ToLowerInvariant()).lock"
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSeconds)
    while ($true) {
        try {
            # Typed: with strings, PowerShell picks the overload whose last parameter is bool useAsync.
            return [System.IO.FileStream]::new($lockPath, [System.IO.FileMode]::OpenOrCreate, [System.IO.FileAccess]::ReadWrite,
                [System.IO.FileShare]::None, 1, [System.IO.FileOptions]::DeleteOnClose)
        }
        catch {
            # Held by another module, or (Windows) being deleted as its holder closes it: the file
            # is there. Any other failure is for the destination checks that follow.
            if (-not (Test-Path -LiteralPath $lockPath)) {
                return
            }
            if ([DateTime]::UtcNow -gt $deadline) {
                throw "another run is exporting into '$Destination' now (its lock '$lockPath' is held for over $TimeoutSeconds s)."
            }
            Start-Sleep -Milliseconds 200
        }
    }
}

Function Clear-HvExportDestination {
    <#
    .SYNOPSIS
    Removes everything under a destination (a partial export about to be redone).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string]
        $Destination
    )

    Get-ChildItem -LiteralPath $Destination -Force | Remove-Item -Recurse -Force
}

Export-ModuleMember -Function @(
    'Clear-HvExportDestination'
    'Get-HvDestinationKey'
    'Get-HvExportFile'
    'Get-HvExportFileByte'
    'Get-HvExportMarkerPath'
    'Get-HvInstancePath'
    'Lock-HvExportDestination'
    'Read-HvExportMarker'
    'Save-HvExportMarker'
    'Start-HvExport'
    'Test-HvRctFailure'
)
