# Selecting a VM (HvVirtualMachine.psm1) against a simulated host, through the CIM shim.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvVirtualMachine
    $testHost = Start-HvTestHost -Scenario @{
        host = 'HV07'
        vms = @(
            @{ name = "O'Brien \ 100%_vm"; id = '3c3c3c3c-0000-4000-8000-000000000001' }
            @{ name = 'twin'; id = '3c3c3c3c-0000-4000-8000-000000000002' }
            @{ name = 'Twin'; id = '3c3c3c3c-0000-4000-8000-000000000003' }
            @{ name = 'web01'; id = '3c3c3c3c-0000-4000-8000-000000000004' }
        )
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'Get-HvVirtualMachineList' {
    It 'lists the VMs and never the host itself' {
        $vms = @(Get-HvVirtualMachineList)
        @($vms | ForEach-Object { $_.ElementName }) | Should -Be @("O'Brien \ 100%_vm", 'twin', 'Twin', 'web01')
        $vms[0].PSTypeNames[0] | Should -Be 'Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem'
    }
}

Describe 'Select-HvVirtualMachine' {
    BeforeAll {
        $all = @(Get-HvVirtualMachineList)
    }

    It 'matches a name holding WQL characters exactly' {
        (Select-HvVirtualMachine -VirtualMachine $all -Name "O'Brien \ 100%_vm").Name | Should -Be '3C3C3C3C-0000-4000-8000-000000000001'
        { Select-HvVirtualMachine -VirtualMachine $all -Name "O'Brien \ 100%" } | Should -Throw "No virtual machine named 'O'Brien \ 100%' on host HV07.*"
    }

    It 'matches names without case, as Hyper-V Manager does, and names every match' {
        { Select-HvVirtualMachine -VirtualMachine $all -Name 'TWIN' } |
            Should -Throw ("The name 'TWIN' matches 2 virtual machines on host HV07: 'twin' (3c3c3c3c-0000-4000-8000-000000000002), " +
                "'Twin' (3c3c3c3c-0000-4000-8000-000000000003). Select one with vm_id.")
        (Select-HvVirtualMachine -VirtualMachine $all -Name 'WEB01').ElementName | Should -Be 'web01'
    }

    It 'takes the id in any form .NET parses: <Form>' -ForEach @(
        @{ Form = 'lower case'; Id = '3c3c3c3c-0000-4000-8000-000000000004' }
        @{ Form = 'upper case'; Id = '3C3C3C3C-0000-4000-8000-000000000004' }
        @{ Form = 'braces'; Id = '{3c3c3c3c-0000-4000-8000-000000000004}' }
        @{ Form = 'digits only'; Id = '3c3c3c3c000040008000000000000004' }
        @{ Form = 'surrounding spaces'; Id = ' 3c3c3c3c-0000-4000-8000-000000000004 ' }
    ) {
        (Select-HvVirtualMachine -VirtualMachine $all -Id $Id).ElementName | Should -Be 'web01'
    }

    It 'refuses an id that is not a GUID, and one no VM has' {
        { Select-HvVirtualMachine -VirtualMachine $all -Id 'web01' } | Should -Throw "vm_id 'web01' is not a GUID*"
        { Select-HvVirtualMachine -VirtualMachine $all -Id '3c3c3c3c-0000-4000-8000-0000000000ff' } |
            Should -Throw 'No virtual machine with id 3c3c3c3c-0000-4000-8000-0000000000ff on host HV07.'
    }

    It 'reports the identity as every result does' {
        $identity = Get-HvVirtualMachineIdentity -VirtualMachine (Select-HvVirtualMachine -VirtualMachine $all -Name 'web01')
        $identity.id | Should -Be '3c3c3c3c-0000-4000-8000-000000000004'
        $identity.name | Should -Be 'web01'
    }
}
