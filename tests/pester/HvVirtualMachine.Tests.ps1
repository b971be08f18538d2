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
            # Names that a culture-aware comparison takes for 'web01' and 'file': a soft hyphen
            # and a zero-width space count for nothing, a ligature equals its letters.
            @{ name = "web`u{00AD}01"; id = '3c3c3c3c-0000-4000-8000-000000000005' }
            @{ name = "web01`u{200B}"; id = '3c3c3c3c-0000-4000-8000-000000000006' }
            @{ name = "`u{FB01}le"; id = '3c3c3c3c-0000-4000-8000-000000000007' }
        )
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'Get-HvVirtualMachineList' {
    It 'lists the VMs and never the host itself' {
        $vms = @(Get-HvVirtualMachineList)
        @($vms | ForEach-Object { $_.ElementName }) | Should -Be @("O'Brien \ 100%_vm", 'twin', 'Twin', 'web01', "web`u{00AD}01", "web01`u{200B}", "`u{FB01}le")
        $vms[0].PSTypeNames[0] | Should -Be 'Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_ComputerSystem'
    }
}

Describe 'Get-HvVirtualMachineSetting' {
    It 'reads the settings of one VM in one call, however many VMs the host has' {
        $vm = @(Get-HvVirtualMachineList | Where-Object { $_.ElementName -ceq 'web01' })[0]
        $before = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls).Count
        $setting = Get-HvVirtualMachineSetting -VirtualMachine $vm
        $made = @((Invoke-HvTestControl -TestHost $testHost -Path '/sim/calls').calls | Select-Object -Skip $before)
        $setting.VirtualSystemIdentifier | Should -Be '3c3c3c3c-0000-4000-8000-000000000004'
        $setting.VirtualSystemType | Should -Be 'Microsoft:Hyper-V:System:Realized'
        @($made | ForEach-Object { "$($_.op) $($_.association)" }) | Should -Be @('associators Msvm_SettingsDefineState')
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

    It 'selects by the exact characters, never by what a culture takes them for: <Given>' -ForEach @(
        @{ Given = 'web01'; Id = '3C3C3C3C-0000-4000-8000-000000000004' }
        @{ Given = "web`u{00AD}01"; Id = '3C3C3C3C-0000-4000-8000-000000000005' }
        @{ Given = "web01`u{200B}"; Id = '3C3C3C3C-0000-4000-8000-000000000006' }
        @{ Given = "`u{FB01}le"; Id = '3C3C3C3C-0000-4000-8000-000000000007' }
    ) {
        (Select-HvVirtualMachine -VirtualMachine $all -Name $Given).Name | Should -Be $Id
        { Select-HvVirtualMachine -VirtualMachine $all -Name 'file' } | Should -Throw "No virtual machine named 'file' on host HV07.*"
    }

    It 'takes a name as given, refusing what no VM is called exactly: <Case>' -ForEach @(
        @{ Case = 'leading space'; Given = ' web01' }
        @{ Case = 'trailing space'; Given = 'web01 ' }
        @{ Case = 'wildcard'; Given = 'web*' }
        @{ Case = 'WQL wildcard'; Given = 'web%' }
        @{ Case = 'single character wildcard'; Given = 'web0?' }
        @{ Case = 'a quote'; Given = "web01'" }
        @{ Case = '300 characters'; Given = 'w' * 300 }
    ) {
        { Select-HvVirtualMachine -VirtualMachine $all -Name $Given } |
            Should -Throw "No virtual machine named '$([WildcardPattern]::Escape($Given))' on host HV07. Virtual machines found: *"
    }

    It 'refuses an empty name or id naming the option, not the parameter' {
        { Select-HvVirtualMachine -VirtualMachine $all -Name '' } | Should -Throw "vm is empty: give the VM's display name, or its GUID as vm_id."
        { Select-HvVirtualMachine -VirtualMachine $all -Id '' } | Should -Throw "vm_id '' is not a GUID.*"
    }

    It 'takes the id in any form .NET parses: <Form>' -ForEach @(
        @{ Form = 'lower case'; Id = '3c3c3c3c-0000-4000-8000-000000000004' }
        @{ Form = 'upper case'; Id = '3C3C3C3C-0000-4000-8000-000000000004' }
        @{ Form = 'braces'; Id = '{3c3c3c3c-0000-4000-8000-000000000004}' }
        @{ Form = 'digits only'; Id = '3c3c3c3c000040008000000000000004' }
        @{ Form = 'surrounding spaces'; Id = ' 3c3c3c3c-0000-4000-8000-000000000004 ' }
        @{ Form = 'parentheses'; Id = '(3c3c3c3c-0000-4000-8000-000000000004)' }
        @{ Form = 'hexadecimal fields'; Id = '{0x3c3c3c3c,0x0000,0x4000,{0x80,0x00,0x00,0x00,0x00,0x00,0x00,0x04}}' }
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

Describe 'What a VM is and holds' {
    BeforeAll {
        $kinds = Start-HvTestHost -Scenario @{
            host = 'HV14'
            windows = 2019
            vms = @(
                @{ name = 'media'; id = '3d3d3d3d-0000-4000-8000-000000000001'; disks = @(
                        @{ path = 'D:\VMs\media\os.vhdx' }, @{ path = 'D:\VMs\media\old.VHD' }, @{ path = 'C:\ClusterStorage\q.vhds' }
                        @{ path = 'D:\ISO\setup.iso' }, @{ path = ''; kind = 'dvd_empty' }, @{ path = 'Disk 2'; kind = 'passthrough' })
                }
                @{ name = 'old'; id = '3d3d3d3d-0000-4000-8000-000000000002'; version = '5.0' }
                @{ name = 'v62'; id = '3d3d3d3d-0000-4000-8000-000000000003'; version = '6.2' }
                @{ name = 'off'; id = '3d3d3d3d-0000-4000-8000-000000000004'; state = 'off' }
                @{ name = 'saved'; id = '3d3d3d3d-0000-4000-8000-000000000005'; state = 'saved' }
                @{ name = 'paused'; id = '3d3d3d3d-0000-4000-8000-000000000006'; state = 'paused' }
                @{ name = 'starting'; id = '3d3d3d3d-0000-4000-8000-000000000007'; state = 'starting' }
                @{ name = 'migrating'; id = '3d3d3d3d-0000-4000-8000-000000000008'; state = 'migrating' }
            )
        }
        $byName = @{}
        Get-HvVirtualMachineList | ForEach-Object { $byName[$_.ElementName] = $_ }
    }

    AfterAll {
        Stop-HvTestHost -TestHost $kinds
        $env:HVSIM_CIM_URL = "$($testHost.Url)/sim/cim"
    }

    It 'names the drives by what they are, leaving out empty DVD drives' {
        $drives = @(Get-HvVirtualMachineDrive -Setting (Get-HvVirtualMachineSetting -VirtualMachine $byName.media))
        @($drives | ForEach-Object { "$($_.kind) $($_.path)" }) | Should -Be @(
            'vhdx D:\VMs\media\os.vhdx', 'vhd D:\VMs\media\old.VHD', 'vhds C:\ClusterStorage\q.vhds', 'iso D:\ISO\setup.iso', 'passthrough Disk 2')
    }

    It 'gives every reason a VM cannot have RCT reference points, and none for one that can' {
        $setting = Get-HvVirtualMachineSetting -VirtualMachine $byName.media
        @(Get-HvRctBlocker -Setting $setting -Drive @(Get-HvVirtualMachineDrive -Setting $setting)) | Should -Be @(
            "disk 'D:\VMs\media\old.VHD' is a VHD and RCT needs VHDX (convert it with Convert-VHD)"
            "disk 'C:\ClusterStorage\q.vhds' is a VHD Set (.vhds), which this collection does not back up")
        $old = Get-HvVirtualMachineSetting -VirtualMachine $byName.old
        @(Get-HvRctBlocker -Setting $old -Drive @()) | Should -Be @(
            'its configuration version is 5.0 and RCT needs 6.2 or later (upgrade it with Update-VMVersion while it is off)')
        @(Get-HvRctBlocker -Setting (Get-HvVirtualMachineSetting -VirtualMachine $byName.v62) -Drive @()) | Should -BeNullOrEmpty
    }

    It 'reads the state of <Name>' -ForEach @(
        @{ Name = 'v62'; State = 'running' }, @{ Name = 'off'; State = 'off' }, @{ Name = 'saved'; State = 'saved' }
        @{ Name = 'paused'; State = 'paused' }, @{ Name = 'starting'; State = 'starting' }, @{ Name = 'migrating'; State = 'migrating' }
    ) {
        Get-HvVirtualMachineState -VirtualMachine $byName[$Name] | Should -Be $State
    }

    It 'asks for <Asked> on a VM that is <State> (crash_fallback <Fallback>): <Expected>' -ForEach @(
        @{ Asked = 'application'; State = 'running'; Fallback = $false; Expected = 'application' }
        @{ Asked = 'crash'; State = 'saved'; Fallback = $false; Expected = 'crash' }
        @{ Asked = 'application'; State = 'off'; Fallback = $false; Expected = 'crash' }
        @{ Asked = 'application'; State = 'saved'; Fallback = $true; Expected = 'crash' }
        @{ Asked = 'application'; State = 'paused'; Fallback = $false; Expected = 'refused' }
        @{ Asked = 'application'; State = 'migrating'; Fallback = $false; Expected = 'application' }
    ) {
        if ($Expected -eq 'refused') {
            { Get-HvCheckpointConsistency -Asked $Asked -State $State -CrashFallback $Fallback } |
                Should -Throw "it is $State and an application-consistent checkpoint needs it running*"
        }
        else {
            (Get-HvCheckpointConsistency -Asked $Asked -State $State -CrashFallback $Fallback).consistency | Should -Be $Expected
        }
    }
}
