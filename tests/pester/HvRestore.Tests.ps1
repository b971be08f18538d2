# Restores (HvRestore.psm1): which restore point is taken, and that removing a restore never reaches
# outside its folder, whatever its marker says.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvRestore

    Function New-TestPoint {
        param ([string]$Label, [bool]$Complete = $true, [string]$Id = '6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162')
        $problems = if ($Complete) { @() } else { @("file 'E:\B\$Label\os.vhdx' is missing") }
        @{ label = $Label; complete = $Complete; problems = $problems; vm = @{ id = $Id; name = 'web01' } }
    }
}

Describe 'Select-HvRestorePoint' {
    It 'takes the newest complete point for latest, and a label exactly' {
        $points = @((New-TestPoint 'n1'), (New-TestPoint 'n2'), (New-TestPoint 'n3' -Complete $false))
        (Select-HvRestorePoint -RestorePoint $points -Vm web01 -Point latest).label | Should -Be 'n2'
        (Select-HvRestorePoint -RestorePoint $points -Vm web01 -Point 'n1').label | Should -Be 'n1'
        { Select-HvRestorePoint -RestorePoint $points -Vm web01 -Point 'N1' } |
            Should -Throw "VM 'web01' has no backup labelled 'N1' there (labels: n1, n2, n3)"
    }

    It 'refuses a point that cannot be restored, naming why, and backups of two VMs of one name' {
        $points = @((New-TestPoint 'n1'), (New-TestPoint 'n3' -Complete $false))
        { Select-HvRestorePoint -RestorePoint $points -Vm web01 -Point 'n3' } |
            Should -Throw "backup 'n3' of VM 'web01' cannot be restored: file 'E:\B\n3\os.vhdx' is missing"
        $twins = @((New-TestPoint 'n1'), (New-TestPoint 'n1' -Id '00000000-0000-4000-8000-000000000002'))
        { Select-HvRestorePoint -RestorePoint $twins -Vm web01 -Point latest } | Should -Throw 'backups of 2 VMs named*give the one to restore by its id'
    }
}

Describe 'Get-HvRestoreFile' {
    It 'gives the recorded files inside the folder, and refuses an entry that is rooted or climbs out' {
        $folder = Join-Path $TestDrive 'restore'
        $done = @{ status = 'done'; files = @('Virtual Hard Disks\os.vhdx') }
        Get-HvRestoreFile -Folder $folder -Marker $done | Should -Be (Join-Path $folder (Join-Path 'Virtual Hard Disks' 'os.vhdx'))
        foreach ($bad in @('..\other\os.vhdx', 'C:\VMs\web01\os.vhdx', '\\server\share\os.vhdx', '/etc/passwd')) {
            { Get-HvRestoreFile -Folder $folder -Marker @{ status = 'done'; files = @($bad) } } | Should -Throw "*names '$bad', which is not inside the folder"
        }
    }

    It 'also owns every file under the Hyper-V folders of a restore that did not finish' {
        $folder = Join-Path $TestDrive 'unfinished'
        $disk = Join-Path $folder (Join-Path 'Virtual Hard Disks' 'os.1.avhdx')
        New-Item -ItemType Directory -Path (Split-Path -LiteralPath $disk) -Force | Out-Null
        Set-Content -LiteralPath $disk -Value 'x'
        Set-Content -LiteralPath (Join-Path $folder 'notes.txt') -Value 'not ours'
        @(Get-HvRestoreFile -Folder $folder -Marker @{ status = 'restoring'; files = @() }) | Should -Be @($disk)
    }
}

Describe 'Test-HvInsideFolder' {
    It 'compares without case, and a sibling that starts alike or a climb out is outside' {
        Test-HvInsideFolder -Folder 'D:\Restore\web01' -Path 'd:\restore\WEB01\Virtual Hard Disks\os.vhdx' | Should -BeTrue
        Test-HvInsideFolder -Folder 'D:\Restore\web01' -Path 'D:\Restore\web01-old\os.vhdx' | Should -BeFalse
        Test-HvInsideFolder -Folder 'D:\Restore\web01' -Path 'D:\Restore\web01\..\web02\os.vhdx' | Should -BeFalse
        Test-HvInsideFolder -Folder 'D:\Restore\web01' -Path '' | Should -BeFalse
    }
}

Describe 'Get-HvReplaceProblem' {
    BeforeAll {
        $testHost = Start-HvTestHost -Scenario @{
            host = 'HV07'
            vms = @(
                @{ name = 'web01'; id = '5d5d5d5d-0000-4000-8000-000000000001'; state = 'off' }
                @{ name = 'web02'; id = '5d5d5d5d-0000-4000-8000-000000000002'; state = 'saved' }
            )
        }
        $web01, $web02 = @(Get-HvVirtualMachineList)
    }

    AfterAll {
        Stop-HvTestHost -TestHost $testHost
    }

    It 'replaces only the backed-up VM, told by its id, when it is off' {
        Get-HvReplaceProblem -VirtualMachine $web01 -BackedUpId '{5D5D5D5D-0000-4000-8000-000000000001}' | Should -BeNullOrEmpty
        Get-HvReplaceProblem -VirtualMachine $web01 -BackedUpId '5d5d5d5d-0000-4000-8000-000000000002' |
            Should -Be ("VM 'web01' (5d5d5d5d-0000-4000-8000-000000000001) is not the VM that was backed up (5d5d5d5d-0000-4000-8000-000000000002), " +
                'and replace only restores a VM over itself')
        Get-HvReplaceProblem -VirtualMachine $web01 -BackedUpId '' |
            Should -Be "the backup does not record the backed-up VM's id, so VM 'web01' (5d5d5d5d-0000-4000-8000-000000000001) cannot be told to be that VM"
    }

    It 'refuses a VM that is not off, saved included (its memory would go with it)' {
        Get-HvReplaceProblem -VirtualMachine $web02 -BackedUpId '5d5d5d5d-0000-4000-8000-000000000002' |
            Should -Be "VM 'web02' (5d5d5d5d-0000-4000-8000-000000000002) is saved: turn it off first (vm_restore does not stop a VM it is to replace)"
    }
}

Describe 'Get-HvMissingFolder' {
    It 'gives the target and each folder above it that creating it makes, deepest first, and nothing when it exists' {
        $existing = Join-Path $TestDrive 'made'
        $null = New-Item -ItemType Directory -Path $existing
        $target = Join-Path (Join-Path $existing 'a') 'b'
        @(Get-HvMissingFolder -Folder "$target$([System.IO.Path]::DirectorySeparatorChar)") | Should -Be @($target, (Join-Path $existing 'a'))
        @(Get-HvMissingFolder -Folder $existing) | Should -BeNullOrEmpty
    }
}
