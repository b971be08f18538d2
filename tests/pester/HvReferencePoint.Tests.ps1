# A VM's reference points as the modules list them (Get-HvReferencePointListing): the one listing behind
# reference_point_info and recovery_checkpoint's list_reference_points, so both name, flag and pair points alike.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvVirtualMachine, _HvCimJob, _HvCatalog, _HvReferencePoint
    $testHost = Start-HvTestHost -Scenario @{
        host = 'HV21'
        vms = @(
            @{ name = 'web01'; id = '21212121-0000-4000-8000-000000000001'; disks = @(@{ path = 'D:\Hyper-V\web01\os.vhdx'; size_gb = 1 }) }
            @{ name = 'web02'; id = '21212121-0000-4000-8000-000000000002'; disks = @(@{ path = 'D:\Hyper-V\web02\os.vhdx'; size_gb = 1 }) }
        )
    }

    Function New-TestPoint {
        param ([object]$VirtualMachine)
        $made = New-HvReferencePoint -VirtualMachine $VirtualMachine -Type rct -Consistency crash
        $null = Wait-HvCimJob -InstanceId $made.Job.InstanceID -TimeoutSeconds 20
        @(Get-HvReferencePoint -VirtualMachine $VirtualMachine) | Select-Object -Last 1
    }

    Function New-TestEntry {
        param ([hashtable]$Identity, [string]$Name, [object]$Point, [string]$Mode = '', [string]$Base = '')
        $entry = New-HvCatalogEntry -VmIdentity $Identity -Name $Name -Type rct -Consistency crash -Mode $Mode -Base $Base
        $entry.status = 'ready'
        $entry.instance_id = if ($null -ne $Point) { [string]$Point.InstanceID } else { 'Microsoft:GONE-0000' }
        $entry
    }

    $web01 = Get-HvVirtualMachine -Name 'web01'
    $web02 = Get-HvVirtualMachine -Name 'web02'
    $web01Id = Get-HvVirtualMachineIdentity -VirtualMachine $web01
    $web02Id = Get-HvVirtualMachineIdentity -VirtualMachine $web02
    $full = New-TestPoint -VirtualMachine $web01
    $incremental = New-TestPoint -VirtualMachine $web01
    $foreign = New-TestPoint -VirtualMachine $web01
    $other = New-TestPoint -VirtualMachine $web02
    $catalog = @{
        version = 1
        entries = @(
            (New-TestEntry -Identity $web01Id -Name 'night1' -Point $full -Mode full)
            (New-TestEntry -Identity $web01Id -Name 'night2' -Point $incremental -Mode incremental -Base 'night1')
            (New-TestEntry -Identity $web01Id -Name 'night0' -Point $null -Mode full)
            (New-TestEntry -Identity $web02Id -Name 'night1' -Point $other -Mode full)
        )
    }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'Get-HvReferencePointListing' {
    It "joins each of the VM's points with its own catalog entry, and flags the point no entry names as foreign" {
        $listing = Get-HvReferencePointListing -VirtualMachine $web01 -VmIdentity $web01Id -Catalog $catalog
        $byId = @{}
        foreach ($point in $listing.reference_points) {
            $byId[$point.instance_id] = $point
        }
        $byId.Count | Should -Be 3
        $byId[[string]$full.InstanceID].name | Should -BeExactly 'night1'
        $byId[[string]$full.InstanceID].mode | Should -BeExactly 'full'
        $byId[[string]$incremental.InstanceID].base | Should -BeExactly 'night1'
        $byId[[string]$foreign.InstanceID].foreign | Should -BeTrue
        $byId[[string]$foreign.InstanceID].name | Should -BeNullOrEmpty
        @($listing.reference_points | ForEach-Object { $_.vm_id } | Sort-Object -Unique) | Should -Be @($web01Id.id)
    }

    It "lists as stale the VM's entries whose point the host no longer has, never another VM's" {
        $listing = Get-HvReferencePointListing -VirtualMachine $web01 -VmIdentity $web01Id -Catalog $catalog
        @($listing.stale_entries | ForEach-Object { $_.name }) | Should -Be @('night0')
        $second = Get-HvReferencePointListing -VirtualMachine $web02 -VmIdentity $web02Id -Catalog $catalog
        @($second.reference_points).Count | Should -Be 1
        $second.reference_points[0].name | Should -BeExactly 'night1'
        $second.reference_points[0].instance_id | Should -BeExactly ([string]$other.InstanceID)
        @($second.stale_entries).Count | Should -Be 0
    }

    It 'returns empty lists for a VM without points or entries' {
        $empty = Get-HvReferencePointListing -VirtualMachine $web02 -VmIdentity $web02Id -Catalog @{ version = 1; entries = @() }
        @($empty.reference_points).Count | Should -Be 1
        $empty.reference_points[0].foreign | Should -BeTrue
        , $empty.stale_entries | Should -BeOfType [object[]]
        $empty.stale_entries.Count | Should -Be 0
    }
}
