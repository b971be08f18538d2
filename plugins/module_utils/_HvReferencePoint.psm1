# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Reference points of a VM and the calls that make and remove them.
#
# Two tables of numbers on purpose: the CreateReferencePoint parameter counts 0 = log based,
# 1 = RCT based, while the ReferencePointType property of the result counts 1 = log based,
# 2 = RCT based (Microsoft's pages). Each side is mapped with its own table.

#AnsibleRequires -PowerShell ..module_utils._HvCimJob
#AnsibleRequires -PowerShell ..module_utils._HvEmbeddedInstance

$script:HvNamespace = 'root/virtualization/v2'
$script:HvTypeParameter = @{ log = 0; rct = 1 }
$script:HvTypeProperty = @{ 1 = 'log'; 2 = 'rct' }
$script:HvConsistencyValue = @{ application = 1; crash = 2 }
$script:HvConsistencyName = @{ 1 = 'application'; 2 = 'crash' }

Function Get-HvReferencePoint {
    <#
    .SYNOPSIS
    Returns the reference points of a VM (Msvm_ReferencePointOfVirtualSystem).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    Get-CimAssociatedInstance -InputObject $VirtualMachine -Association Msvm_ReferencePointOfVirtualSystem -ResultClassName Msvm_VirtualSystemReferencePoint
}

Function New-HvReferencePoint {
    <#
    .SYNOPSIS
    Starts CreateReferencePoint on a VM; returns the method output (0 done, 4096 job).

    .OUTPUTS
    The CimMethodResult of Msvm_VirtualSystemReferencePointService.CreateReferencePoint; the
    output type names the method so the static check knows its out parameters.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemReferencePointService.CreateReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [ValidateSet('log', 'rct')]
        [string]
        $Type,

        [Parameter(Mandatory)]
        [ValidateSet('application', 'crash')]
        [string]
        $Consistency
    )

    $settings = New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemReferencePointSettingData -Property @{
        ConsistencyLevel = [byte]$script:HvConsistencyValue[$Consistency]
    }
    $service = Get-HvService -ClassName Msvm_VirtualSystemReferencePointService
    Invoke-HvCimMethod -InputObject $service -MethodName CreateReferencePoint -Action ("Creating a reference point of VM " +
        "'$($VirtualMachine.ElementName)'") -Arguments @{
        AffectedSystem = $VirtualMachine
        ReferencePointSettings = $settings
        ReferencePointType = [uint16]$script:HvTypeParameter[$Type]
    }
}

Function Remove-HvReferencePoint {
    <#
    .SYNOPSIS
    Starts DestroyReferencePoint; returns the method output (0 done, 4096 job).
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimMethodResult#Msvm_VirtualSystemReferencePointService.DestroyReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
        [object]
        $ReferencePoint
    )

    $service = Get-HvService -ClassName Msvm_VirtualSystemReferencePointService
    Invoke-HvCimMethod -InputObject $service -MethodName DestroyReferencePoint -Action "Removing reference point $($ReferencePoint.InstanceID)" -Arguments @{
        AffectedReferencePoint = $ReferencePoint
    }
}

Function ConvertTo-HvReferencePointResult {
    <#
    .SYNOPSIS
    Returns a reference point as the modules report it, joined with its catalog entry.

    .DESCRIPTION
    Disk ids and RCT ids are returned as pairs because they are only meaningful together;
    a length mismatch between the two arrays is reported rather than silently truncated.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
        [object]
        $ReferencePoint,

        [Parameter(Mandatory)]
        [hashtable]
        $VmIdentity,

        [AllowNull()]
        [hashtable]
        $CatalogEntry
    )

    $diskIds = @($ReferencePoint.VirtualDiskIdentifiers | Where-Object { $null -ne $_ })
    $rctIds = @($ReferencePoint.ResilientChangeTrackingIdentifiers | Where-Object { $null -ne $_ })
    $disks = for ($index = 0; $index -lt [Math]::Max($diskIds.Count, $rctIds.Count); $index++) {
        @{
            disk_id = if ($index -lt $diskIds.Count) { $diskIds[$index] } else { $null }
            rct_id = if ($index -lt $rctIds.Count) { $rctIds[$index] } else { $null }
        }
    }
    $type = $script:HvTypeProperty[[int]$ReferencePoint.ReferencePointType]
    $consistency = $script:HvConsistencyName[[int]$ReferencePoint.ConsistencyLevel]
    @{
        instance_id = $ReferencePoint.InstanceID
        type = if ($type) { $type } else { 'unknown' }
        consistency = if ($consistency) { $consistency } else { 'unknown' }
        vm_name = $VmIdentity.name
        vm_id = $VmIdentity.id
        disks = @($disks)
        disks_aligned = $diskIds.Count -eq $rctIds.Count
        name = if ($CatalogEntry) { $CatalogEntry.name } else { $null }
        created = if ($CatalogEntry) { $CatalogEntry.created } else { $null }
        run_id = if ($CatalogEntry) { $CatalogEntry.run_id } else { $null }
        mode = if ($CatalogEntry -and $CatalogEntry.ContainsKey('mode')) { $CatalogEntry.mode } else { $null }
        base = if ($CatalogEntry -and $CatalogEntry.ContainsKey('base')) { $CatalogEntry.base } else { $null }
        foreign = $null -eq $CatalogEntry
    }
}

Function Get-HvReferencePointListing {
    <#
    .SYNOPSIS
    Returns a VM's reference points as the modules report them (each joined with its catalog entry), and the VM's catalog entries
    whose reference point the host no longer has.

    .DESCRIPTION
    One listing for reference_point_info and for recovery_checkpoint's list_reference_points, so a playbook that takes the
    listing from either sees the same points, names and foreign flags.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [hashtable]
        $VmIdentity,

        # The catalog as Read-HvCatalog returns it.
        [Parameter(Mandatory)]
        [hashtable]
        $Catalog
    )

    $existing = @(Get-HvReferencePoint -VirtualMachine $VirtualMachine)
    $known = @{}
    $stale = [System.Collections.Generic.List[object]]@()
    foreach ($entry in $Catalog.entries) {
        if ($entry.vm_id -ne $VmIdentity.id) {
            continue
        }
        if ($entry.instance_id -and ($existing | Where-Object { $_.InstanceID -ceq $entry.instance_id })) {
            $known[$entry.instance_id] = $entry
        }
        else {
            $stale.Add($entry)
        }
    }
    $points = foreach ($point in $existing) {
        ConvertTo-HvReferencePointResult -ReferencePoint $point -VmIdentity $VmIdentity -CatalogEntry $known[$point.InstanceID]
    }
    @{
        reference_points = @($points)
        stale_entries = @($stale)
    }
}

Function Select-HvReferencePoint {
    <#
    .SYNOPSIS
    Returns the reference point of the list with the given InstanceID, or nothing.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $ReferencePoint,

        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $InstanceId
    )

    if ($InstanceId) {
        $ReferencePoint | Where-Object { [string]::Equals($_.InstanceID, $InstanceId, [StringComparison]::Ordinal) } | Select-Object -First 1
    }
}

Function Get-HvCreatedReferencePoint {
    <#
    .SYNOPSIS
    Returns the reference point a creation or conversion job made, nothing if it made none; throws when that cannot be told.

    .DESCRIPTION
    The job names its product in CIM_AffectedJobElement. A host forgets a finished job after five
    minutes (TimeBeforeRemoval), and a job may end well without naming its product; then the
    product is the one reference point of the VM that is neither among those it had before the
    job started (KnownBefore, kept in the catalog entry) nor recorded in the catalog. None means
    the job made none; more than one cannot be told apart, and throws naming them rather than
    letting a retry make yet another.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemReferencePoint')]
    param (
        [AllowNull()]
        [object]
        $Job,

        [Parameter(Mandatory)]
        [string]
        $JobId,

        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $KnownBefore,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $Recorded
    )

    if ($null -ne $Job) {
        if (-not (Test-HvCimJobSucceeded -Job $Job)) {
            return
        }
        $named = Get-HvJobProduct -Job $Job -ResultClassName Msvm_VirtualSystemReferencePoint | Select-Object -First 1
        if ($null -ne $named) {
            return $named
        }
    }
    $unnamed = @(Get-HvReferencePoint -VirtualMachine $VirtualMachine | Where-Object { $_.InstanceID -notin $KnownBefore -and $_.InstanceID -notin $Recorded })
    if ($unnamed.Count -gt 1) {
        $vmName = "'$($VirtualMachine.ElementName)' ($(([guid]$VirtualMachine.Name).ToString()))"
        throw ("job $JobId ended without naming what it made, and VM $vmName has $($unnamed.Count) reference points no catalog entry " +
            "names that it did not have before ($(($unnamed | ForEach-Object { $_.InstanceID }) -join ', ')); which one the job made cannot " +
            "be told. Nothing more was created. Remove the ones that are not needed (reference_point state=absent with instance_id and " +
            "allow_foreign=true) and run the task again.")
    }
    $unnamed | Select-Object -First 1
}

Export-ModuleMember -Function @(
    'ConvertTo-HvReferencePointResult'
    'Get-HvCreatedReferencePoint'
    'Get-HvReferencePoint'
    'Get-HvReferencePointListing'
    'New-HvReferencePoint'
    'Remove-HvReferencePoint'
    'Select-HvReferencePoint'
)
