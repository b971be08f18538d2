# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Recovery checkpoints: the hidden checkpoints backups are made from. The collection tags the
# ones it makes by their ElementName ('hyperv.backup: <label>'), as backup products do, so a
# later run recognises what an earlier failed run left behind and never touches others' ones.

#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$script:HvNamespace = 'root/virtualization/v2'
$script:HvRecoveryType = 'Microsoft:Hyper-V:Snapshot:Recovery'
$script:HvTagPrefix = 'hyperv.backup: '
$script:HvConsistencyValue = @{ application = 1; crash = 2 }

Function Get-HvCheckpointList {
    <#
    .SYNOPSIS
    Returns every checkpoint of a VM - standard, production or recovery (Msvm_SnapshotOfVirtualSystem) - oldest first.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    Get-CimAssociatedInstance -InputObject $VirtualMachine -Association Msvm_SnapshotOfVirtualSystem -ResultClassName Msvm_VirtualSystemSettingData |
        Sort-Object -Property CreationTime
}

Function Get-HvRecoveryCheckpoint {
    <#
    .SYNOPSIS
    Returns the recovery checkpoints of a VM, oldest first.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    Get-HvCheckpointList -VirtualMachine $VirtualMachine | Where-Object { $_.VirtualSystemType -eq $script:HvRecoveryType }
}

Function Get-HvCheckpointTag {
    <#
    .SYNOPSIS
    Returns the ElementName that marks a recovery checkpoint as this collection's, for a label.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Label
    )

    "$script:HvTagPrefix$Label"
}

Function Select-HvRecoveryCheckpoint {
    <#
    .SYNOPSIS
    Returns the recovery checkpoint of the list tagged with a label, or nothing.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $Checkpoint,

        [Parameter(Mandatory)]
        [string]
        $Label
    )

    $tag = Get-HvCheckpointTag -Label $Label
    # Ordinal: -ceq compares by culture, where characters such as a soft hyphen count for nothing.
    $Checkpoint | Where-Object { [string]::Equals($_.ElementName, $tag, [StringComparison]::Ordinal) } | Select-Object -First 1
}

Function Test-HvCheckpointOwned {
    <#
    .SYNOPSIS
    Returns whether a checkpoint carries this collection's tag.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    # Ordinal: -like compares with the culture's case rules (under tr-TR 'FILE' -like 'fi*' is false).
    ([string]$Checkpoint.ElementName).StartsWith($script:HvTagPrefix, [System.StringComparison]::Ordinal)
}

Function New-HvRecoveryCheckpoint {
    <#
    .SYNOPSIS
    Starts CreateSnapshot of type 32768 (recovery checkpoint); returns the method output.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemSnapshotService.CreateSnapshot')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [ValidateSet('application', 'crash')]
        [string]
        $Consistency
    )

    $settings = New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemSnapshotSettingData -Property @{
        ConsistencyLevel = [uint16]$script:HvConsistencyValue[$Consistency]
        IgnoreNonSnapshottableDisks = $true
    }
    $service = Get-HvService -ClassName Msvm_VirtualSystemSnapshotService
    Invoke-HvCimMethod -InputObject $service -MethodName CreateSnapshot -Action ("Creating a recovery checkpoint of VM " +
        "'$($VirtualMachine.ElementName)'") -Arguments @{
        AffectedSystem = $VirtualMachine
        SnapshotSettings = $settings
        SnapshotType = [uint16]32768
    }
}

Function Set-HvCheckpointTag {
    <#
    .SYNOPSIS
    Sets a checkpoint's ElementName to this collection's tag (ModifySystemSettings).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemManagementService.ModifySystemSettings')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint,

        [Parameter(Mandatory)]
        [string]
        $Label
    )

    $Checkpoint.ElementName = Get-HvCheckpointTag -Label $Label
    $service = Get-HvService -ClassName Msvm_VirtualSystemManagementService
    $call = @{ InputObject = $service; MethodName = 'ModifySystemSettings'; Action = "Naming recovery checkpoint $($Checkpoint.InstanceID)" }
    Invoke-HvCimMethod @call -Arguments @{
        SystemSettings = ConvertTo-HvEmbeddedInstance -InputObject $Checkpoint
    }
}

Function Remove-HvRecoveryCheckpoint {
    <#
    .SYNOPSIS
    Starts DestroySnapshot of a recovery checkpoint; returns the method output.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemSnapshotService.DestroySnapshot')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    $service = Get-HvService -ClassName Msvm_VirtualSystemSnapshotService
    $call = @{ InputObject = $service; MethodName = 'DestroySnapshot'; Action = "Removing recovery checkpoint $($Checkpoint.InstanceID)" }
    Invoke-HvCimMethod @call -Arguments @{
        AffectedSnapshot = $Checkpoint
    }
}

Function Convert-HvRecoveryCheckpoint {
    <#
    .SYNOPSIS
    Starts ConvertToReferencePoint of a recovery checkpoint; returns the method output.

    .DESCRIPTION
    Hyper-V removes the checkpoint as it makes the reference point.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemSnapshotService.ConvertToReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    $service = Get-HvService -ClassName Msvm_VirtualSystemSnapshotService
    Invoke-HvCimMethod -InputObject $service -MethodName ConvertToReferencePoint -Action ("Converting recovery checkpoint " +
        "$($Checkpoint.InstanceID) to a reference point") -Arguments @{
        AffectedSnapshot = $Checkpoint
        ReferencePointSettings = ''
    }
}

Function Get-HvCheckpointDisk {
    <#
    .SYNOPSIS
    Returns the device part of each virtual disk id of a checkpoint, sorted.

    .DESCRIPTION
    Disk ids are Msvm_StorageAllocationSettingData InstanceIDs, 'Microsoft:<owner>\<device>\...'.
    The owner differs between a VM, its checkpoints and its reference points; the device part
    names the same disk in all of them, so disk sets are compared on it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    Get-HvCheckpointDiskFile -Checkpoint $Checkpoint | ForEach-Object { $_.device } | Sort-Object
}

Function Get-HvCheckpointDiskFile {
    <#
    .SYNOPSIS
    Returns each virtual disk of a checkpoint as its device part and file path.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    # Only virtual hard disks: an ISO in a DVD drive is storage too, but no reference point covers it.
    Get-CimAssociatedInstance -InputObject $Checkpoint -Association Msvm_VirtualSystemSettingDataComponent -ResultClassName Msvm_StorageAllocationSettingData |
        Where-Object { $_.ResourceSubType -eq 'Microsoft:Hyper-V:Virtual Hard Disk' } |
        ForEach-Object { @{ device = Get-HvDiskDevicePart -DiskId $_.InstanceID; path = [string]@($_.HostResource)[0] } }
}

Function Get-HvDiskDevicePart {
    <#
    .SYNOPSIS
    Returns a disk id without its owner part (what names the same disk everywhere).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $DiskId
    )

    $at = $DiskId.IndexOf('\')
    if ($at -lt 0) {
        return $DiskId
    }
    $DiskId.Substring($at + 1)
}

Function ConvertTo-HvCheckpointResult {
    <#
    .SYNOPSIS
    Returns a recovery checkpoint as the modules report it.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Checkpoint
    )

    $owned = Test-HvCheckpointOwned -Checkpoint $Checkpoint
    $created = [string]$Checkpoint.CreationTime
    if ($Checkpoint.CreationTime -is [datetime]) {
        $created = ConvertTo-HvTimestamp -Time $Checkpoint.CreationTime
    }
    @{
        instance_id = $Checkpoint.InstanceID
        element_name = [string]$Checkpoint.ElementName
        label = if ($owned) { ([string]$Checkpoint.ElementName).Substring($script:HvTagPrefix.Length) } else { $null }
        created = $created
        owned = $owned
    }
}

Export-ModuleMember -Function @(
    'Convert-HvRecoveryCheckpoint'
    'ConvertTo-HvCheckpointResult'
    'Get-HvCheckpointDisk'
    'Get-HvCheckpointDiskFile'
    'Get-HvCheckpointList'
    'Get-HvCheckpointTag'
    'Get-HvDiskDevicePart'
    'Get-HvRecoveryCheckpoint'
    'New-HvRecoveryCheckpoint'
    'Remove-HvRecoveryCheckpoint'
    'Select-HvRecoveryCheckpoint'
    'Set-HvCheckpointTag'
    'Test-HvCheckpointOwned'
)
