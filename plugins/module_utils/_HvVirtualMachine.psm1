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

        [Parameter(Mandatory, ParameterSetName = 'Name')]
        [string]
        $Name,

        [Parameter(Mandatory, ParameterSetName = 'Id')]
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

    # -ceq would let 'Web01' and 'web01' both exist undetected; Hyper-V Manager compares
    # case-insensitively, so do the same and report every match.
    $found = @($VirtualMachine | Where-Object { $_.ElementName -eq $Name })
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
        [string]
        $Name,

        [Parameter(Mandatory, ParameterSetName = 'Id')]
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

Function Get-HvSelectedVirtualMachine {
    <#
    .SYNOPSIS
    Returns the VM a task selected with vm (display name) or vm_id (GUID), whichever is set.
    #>
    [CmdletBinding()]
    [OutputType('Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem')]
    param (
        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $Name,

        [AllowNull()]
        [AllowEmptyString()]
        [string]
        $Id
    )

    if ($Id) {
        Get-HvVirtualMachine -Id $Id
    }
    else {
        Get-HvVirtualMachine -Name $Name
    }
}

Export-ModuleMember -Function @(
    'Get-HvSelectedVirtualMachine'
    'Get-HvVirtualMachine'
    'Get-HvVirtualMachineIdentity'
    'Get-HvVirtualMachineList'
    'Select-HvVirtualMachine'
)
