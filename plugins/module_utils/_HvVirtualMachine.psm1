# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Selecting a VM safely. Display names are not unique on a Hyper-V host and may hold
# characters that WQL treats specially (' \ % _), so the query below is fixed and every
# comparison with what the user typed happens in PowerShell.

$script:HvNamespace = 'root/virtualization/v2'

Function Get-HvVirtualMachineList {
    <#
    .SYNOPSIS
    Returns every virtual machine of the host, never the host itself.

    .DESCRIPTION
    A VM's Name is its GUID; the host's own Msvm_ComputerSystem has the computer name there.
    Caption and Description cannot tell them apart: Windows translates them ("Virtuell dator"
    on a Swedish host, "Ordinateur virtuel Microsoft" on a French one, as users of other
    Hyper-V clients reported), so a filter on either finds no VM outside English hosts.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param ()

    $guid = [guid]::Empty
    Get-CimInstance -Namespace $script:HvNamespace -ClassName Msvm_ComputerSystem |
        Where-Object { [guid]::TryParse($_.Name, [ref]$guid) }
}

Function Format-HvVirtualMachineList {
    <#
    .SYNOPSIS
    Returns 'name (GUID)' for each VM given, for error messages that list candidates.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $VirtualMachine
    )

    if ($VirtualMachine.Count -eq 0) {
        return 'none'
    }
    # The id spelled as every result spells it ([guid] formatting): Hyper-V gives Name in upper case.
    ($VirtualMachine | ForEach-Object { "'$($_.ElementName)' ($(([guid]$_.Name).ToString()))" }) -join ', '
}

Function Select-HvVirtualMachine {
    <#
    .SYNOPSIS
    Returns the one VM of a list that has the display name or GUID asked for.

    .DESCRIPTION
    Throws when the name matches no VM or several VMs, naming the candidates so the user can
    choose by GUID. A GUID is parsed before it is compared, so any GUID spelling works.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [object[]]
        $VirtualMachine,

        # Empty strings are refused below with the option's name, not by parameter binding.
        [Parameter(Mandatory, ParameterSetName = 'Name')]
        [AllowEmptyString()]
        [string]
        $Name,

        [Parameter(Mandatory, ParameterSetName = 'Id')]
        [AllowEmptyString()]
        [string]
        $Id
    )

    if ($PSCmdlet.ParameterSetName -eq 'Id') {
        $wanted = [guid]::Empty
        if (-not [guid]::TryParse($Id, [ref]$wanted)) {
            throw "vm_id '$Id' is not a GUID. Use the VM's Id as Get-VM shows it, or select the VM by name with vm."
        }
        $found = @($VirtualMachine | Where-Object { [guid]$_.Name -eq $wanted })
        if ($found.Count -eq 0) {
            throw "No virtual machine with id $wanted on host $env:COMPUTERNAME."
        }
        return $found[0]
    }

    if ($Name -eq '') {
        throw "vm is empty: give the VM's display name, or its GUID as vm_id."
    }
    # Case-insensitive, as Hyper-V Manager compares, so that 'Web01' and 'web01' are both reported.
    # Ordinal, not -eq: -eq compares by culture, where a soft hyphen or a zero-width space counts
    # for nothing and a ligature equals its letters, so 'web01' would select 'web<SHY>01'.
    $found = @($VirtualMachine | Where-Object { [string]::Equals($_.ElementName, $Name, [StringComparison]::OrdinalIgnoreCase) })
    if ($found.Count -eq 0) {
        $known = Format-HvVirtualMachineList -VirtualMachine $VirtualMachine
        throw "No virtual machine named '$Name' on host $env:COMPUTERNAME. Virtual machines found: $known."
    }
    if ($found.Count -gt 1) {
        $known = Format-HvVirtualMachineList -VirtualMachine $found
        throw "The name '$Name' matches $($found.Count) virtual machines on host ${env:COMPUTERNAME}: $known. Select one with vm_id."
    }
    $found[0]
}

Function Get-HvVirtualMachine {
    <#
    .SYNOPSIS
    Returns the one VM selected by display name or GUID, or throws saying why not.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [Parameter(Mandatory, ParameterSetName = 'Name')]
        [AllowEmptyString()]
        [string]
        $Name,

        [Parameter(Mandatory, ParameterSetName = 'Id')]
        [AllowEmptyString()]
        [string]
        $Id
    )

    $all = @(Get-HvVirtualMachineList)
    if ($PSCmdlet.ParameterSetName -eq 'Id') {
        Select-HvVirtualMachine -VirtualMachine $all -Id $Id
    }
    else {
        Select-HvVirtualMachine -VirtualMachine $all -Name $Name
    }
}

Function Get-HvVirtualMachineIdentity {
    <#
    .SYNOPSIS
    Returns the name and id of a VM as the modules report them.
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
        name = $VirtualMachine.ElementName
        id = ([guid]$VirtualMachine.Name).ToString()
    }
}

Function Get-HvVirtualMachineState {
    <#
    .SYNOPSIS
    Returns what a VM is doing, in one word: running, off, saved, paused, starting, migrating, or 'state <n>'.

    .DESCRIPTION
    From EnabledState (2 running, 3 off, 6 saved, 9 paused, 10 starting) and, for a running VM,
    OperationalStatus[1] 32774 (live migration), as Microsoft's Msvm_ComputerSystem page lists them.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    $status = @($VirtualMachine.OperationalStatus)
    if ($status.Count -gt 1 -and [int]$status[1] -eq 32774) {
        return 'migrating'
    }
    $names = @{ 2 = 'running'; 3 = 'off'; 6 = 'saved'; 9 = 'paused'; 10 = 'starting' }
    $name = $names[[int]$VirtualMachine.EnabledState]
    if ($null -eq $name) {
        return "state $([int]$VirtualMachine.EnabledState)"
    }
    $name
}

Function Get-HvVirtualMachineSetting {
    <#
    .SYNOPSIS
    Returns the settings that define a VM or a planned system now (its Msvm_VirtualSystemSettingData), not a checkpoint's.

    .DESCRIPTION
    Through Msvm_SettingsDefineState, which links a system to its current settings only: one
    call whatever the host holds. Listing every VM's settings and picking this one cost a step
    of 50 VMs 50 times 50 instances.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/CIM_ComputerSystem')]
        [object]
        $VirtualMachine
    )

    Get-CimAssociatedInstance -InputObject $VirtualMachine -Association Msvm_SettingsDefineState -ResultClassName Msvm_VirtualSystemSettingData |
        Select-Object -First 1
}

Function Get-HvVirtualMachineDrive {
    <#
    .SYNOPSIS
    Returns each storage drive of a VM as @{ kind; path }: kind vhdx, vhd, vhds, iso or passthrough.

    .DESCRIPTION
    Virtual hard disks (.vhd, .vhdx and .vhds share one ResourceSubType, so the file name tells
    them apart) and ISO images are Msvm_StorageAllocationSettingData; a pass-through disk is a
    Msvm_ResourceAllocationSettingData of subtype Physical Disk Drive. Empty DVD drives and
    controllers are neither and are left out.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Setting
    )

    $component = @{ InputObject = $Setting; Association = 'Msvm_VirtualSystemSettingDataComponent' }
    foreach ($storage in @(Get-CimAssociatedInstance @component -ResultClassName Msvm_StorageAllocationSettingData)) {
        $path = [string]@($storage.HostResource)[0]
        if ($storage.ResourceSubType -eq 'Microsoft:Hyper-V:Virtual CD/DVD Disk') {
            @{ kind = 'iso'; path = $path }
        }
        elseif ($storage.ResourceSubType -eq 'Microsoft:Hyper-V:Virtual Hard Disk') {
            $extension = [System.IO.Path]::GetExtension($path).ToLowerInvariant()
            $kind = @{ '.vhd' = 'vhd'; '.avhd' = 'vhd'; '.vhds' = 'vhds' }[$extension]
            @{ kind = if ($null -ne $kind) { $kind } else { 'vhdx' }; path = $path }
        }
    }
    foreach ($resource in @(Get-CimAssociatedInstance @component -ResultClassName Msvm_ResourceAllocationSettingData)) {
        if ($resource.ResourceSubType -eq 'Microsoft:Hyper-V:Physical Disk Drive') {
            @{ kind = 'passthrough'; path = [string]@($resource.HostResource)[0] }
        }
    }
}

Function Get-HvRctBlocker {
    <#
    .SYNOPSIS
    Returns why a VM cannot have RCT reference points, one sentence per reason; nothing when it can.

    .DESCRIPTION
    RCT needs configuration version 6.2 or later (backup vendors document 6.2; Microsoft documents
    production checkpoints from 6.2) and VHDX disks: a .vhd has no change tracking, and a VHD Set
    (.vhds) is tracked through VHD Set snapshots, which this collection does not use. What Hyper-V
    answers for these is not documented, so they are refused before any change.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')]
        [object]
        $Setting,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [hashtable[]]
        $Drive
    )

    $version = $null
    if ([version]::TryParse([string]$Setting.Version, [ref]$version) -and $version -lt [version]'6.2') {
        "its configuration version is $($Setting.Version) and RCT needs 6.2 or later (upgrade it with Update-VMVersion while it is off)"
    }
    foreach ($disk in @($Drive | Where-Object { $_.kind -eq 'vhd' })) {
        "disk '$($disk.path)' is a VHD and RCT needs VHDX (convert it with Convert-VHD)"
    }
    foreach ($disk in @($Drive | Where-Object { $_.kind -eq 'vhds' })) {
        "disk '$($disk.path)' is a VHD Set (.vhds), which this collection does not back up"
    }
}

Function Get-HvCheckpointConsistency {
    <#
    .SYNOPSIS
    Returns the consistency to ask Hyper-V for, @{ consistency; warning }, or throws why the one asked for cannot be had.

    .DESCRIPTION
    Application consistency is VSS inside the guest, so it needs a running guest. A VM that is off
    is checkpointed crash-consistent, which loses nothing since nothing runs in it. A saved or
    paused VM has state in memory that VSS never flushed: crash-consistent only if the task allows
    it (crash_fallback), refused otherwise.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Asked,

        [Parameter(Mandatory)]
        [string]
        $State,

        [Parameter(Mandatory)]
        [bool]
        $CrashFallback
    )

    if ($Asked -ne 'application' -or $State -notin @('off', 'saved', 'paused')) {
        return @{ consistency = $Asked; warning = $null }
    }
    if ($State -eq 'off') {
        return @{ consistency = 'crash'; warning = 'it is off, so the checkpoint is crash-consistent (nothing runs in it to be made consistent)' }
    }
    if ($CrashFallback) {
        return @{ consistency = 'crash'; warning = "it is $State, so the checkpoint is crash-consistent (crash_fallback=true)" }
    }
    throw "it is $State and an application-consistent checkpoint needs it running; start or resume it, or ask for a crash-consistent one"
}

Export-ModuleMember -Function @(
    'Format-HvVirtualMachineList'
    'Get-HvCheckpointConsistency'
    'Get-HvRctBlocker'
    'Get-HvVirtualMachine'
    'Get-HvVirtualMachineDrive'
    'Get-HvVirtualMachineIdentity'
    'Get-HvVirtualMachineList'
    'Get-HvVirtualMachineSetting'
    'Get-HvVirtualMachineState'
    'Select-HvVirtualMachine'
)
