# Backup sets (HvBackupSet.psm1): what can be restored, read from the export folders and their
# markers alone, chains linked by label within a VM, each problem naming the file or link.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvBackupSet

    $script:VmId = '6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162'

    Function New-TestExport {
        # An export as vm_export leaves it: Hyper-V's files under <folder>\<VM name>, then the marker,
        # whose paths are as the exporting host saw them (RecordedRoot stands for its destination).
        param ($Root, $VmFolder, $Label, $Mode, $Base, $VmName = 'web01', $VmId = $script:VmId, $Size = 1000,
            $RecordedRoot = 'E:\Backup', [switch]$NoMarker)
        $folder = Join-Path (Join-Path $Root $VmFolder) $Label
        $disk = Join-Path $folder "$VmName/Virtual Hard Disks/os.vhdx"
        $config = Join-Path $folder "$VmName/Virtual Machines/$($VmId.ToUpperInvariant()).vmcx"
        foreach ($file in @(@{ path = $disk; size = $Size }, @{ path = $config; size = 100 })) {
            New-Item -ItemType Directory -Path (Split-Path -LiteralPath $file.path) -Force | Out-Null
            [System.IO.File]::WriteAllBytes($file.path, [byte[]]::new($file.size))
        }
        if (-not $NoMarker) {
            $recorded = "$RecordedRoot\$VmFolder\$Label\$VmName"
            $marker = @{
                vm_id = $VmId; vm_name = $VmName; checkpoint = $Label; mode = $Mode; base = $Base; full_reason = $null
                files = @(
                    @{ path = "$recorded\Virtual Hard Disks\os.vhdx"; size = $Size }
                    @{ path = "$recorded\Virtual Machines\$($VmId.ToUpperInvariant()).vmcx"; size = 100 }
                )
                bytes = $Size + 100; completed = "2026-11-2$($Label[-1])T01:00:00Z"
            }
            [System.IO.File]::WriteAllText((Join-Path $folder 'hyperv.backup-export.json'), [Ansible.Basic.AnsibleModule]::ToJson($marker))
        }
        $folder
    }
}

Describe 'Get-HvBackupSet' {
    BeforeEach {
        $script:Root = Join-Path $TestDrive ([guid]::NewGuid())
        $script:VmFolder = "web01_$($script:VmId)"
    }

    It 'links a full export and two incrementals into chains, read from another host than the one that wrote them' {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full | Out-Null
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode incremental -Base 'night1' -Size 10 | Out-Null
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night3' -Mode incremental -Base 'night2' -Size 20 | Out-Null

        $set = Get-HvBackupSet -Path $Root
        $set.restore_points.label | Should -Be @('night1', 'night2', 'night3')
        $set.restore_points[2].chain | Should -Be @('night1', 'night2', 'night3')
        $set.restore_points[2].chain_bytes | Should -Be (1100 + 110 + 120)
        $set.restore_points.complete | Should -Be @($true, $true, $true)
        $set.restore_points[0].vm.id | Should -Be $VmId
        $set.restore_points[0].vm.name | Should -Be 'web01'
        $set.vms | Should -HaveCount 1
        $set.vms[0].latest | Should -Be 'night3'
        $set.incomplete | Should -HaveCount 0
    }

    It 'names the missing file, and every later point of the chain says which link it needs' {
        $first = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full
        $second = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode incremental -Base 'night1' -Size 10
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night3' -Mode incremental -Base 'night2' -Size 20 | Out-Null
        Remove-Item -LiteralPath (Join-Path $second 'web01/Virtual Hard Disks/os.vhdx')

        $set = Get-HvBackupSet -Path $Root
        $set.restore_points.complete | Should -Be @($true, $false, $false)
        $missing = Join-Path $second 'web01/Virtual Hard Disks/os.vhdx'
        $set.restore_points[1].problems | Should -Be @("file '$missing' is missing")
        $set.restore_points[2].problems | Should -Be @("it needs 'night2' ($second), whose file '$missing' is missing")
        $set.vms[0].latest | Should -Be 'night1'
        Test-Path -LiteralPath $first | Should -BeTrue
    }

    It 'finds a file cut short, and says both sizes' {
        $folder = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full
        $disk = Join-Path $folder 'web01/Virtual Hard Disks/os.vhdx'
        [System.IO.File]::WriteAllBytes($disk, [byte[]]::new(400))

        (Get-HvBackupSet -Path $Root).restore_points[0].problems | Should -Be @("file '$disk' is 400 bytes, the export wrote 1000")
    }

    It 'says a chain is broken when the base is not in the folder' {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode incremental -Base 'night1' | Out-Null

        $point = (Get-HvBackupSet -Path $Root).restore_points[0]
        $point.complete | Should -BeFalse
        $point.problems | Should -Be @("it needs 'night1', the base of 'night2', which is not in this folder")
    }

    It 'does not skip the file check unless asked, and then only reads the markers' {
        $folder = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full
        Remove-Item -LiteralPath (Join-Path $folder 'web01/Virtual Hard Disks/os.vhdx')

        (Get-HvBackupSet -Path $Root).restore_points[0].complete | Should -BeFalse
        (Get-HvBackupSet -Path $Root -CheckFiles $false).restore_points[0].complete | Should -BeTrue
    }

    It 'reports an export with no marker as incomplete, not as a restore point' {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full | Out-Null
        $half = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode incremental -Base 'night1' -NoMarker

        $set = Get-HvBackupSet -Path $Root
        $set.restore_points.label | Should -Be @('night1')
        $set.incomplete | Should -HaveCount 1
        $set.incomplete[0].path | Should -Be $half
        $set.incomplete[0].files | Should -Be 2
        $set.incomplete[0].bytes | Should -Be 1100
    }

    It 'reads the layout before VM GUIDs (VM name, then label) and keeps two VMs of one name apart by GUID' {
        $otherId = 'aaaaaaaa-0000-4000-8000-000000000002'
        New-TestExport -Root $Root -VmFolder 'web01' -Label 'night1' -Mode full | Out-Null
        New-TestExport -Root $Root -VmFolder "web01_$otherId" -Label 'night1' -Mode full -VmId $otherId | Out-Null
        New-TestExport -Root $Root -VmFolder "web01_$otherId" -Label 'night2' -Mode incremental -Base 'night1' -VmId $otherId | Out-Null

        $set = Get-HvBackupSet -Path $Root
        $set.vms | Should -HaveCount 2
        @($set.restore_points | Where-Object { $_.vm.id -eq $otherId })[-1].chain | Should -Be @('night1', 'night2')
        $set.restore_points.complete | Should -Not -Contain $false
        (Get-HvBackupSet -Path $Root -Vm $otherId.ToUpperInvariant()).restore_points | Should -HaveCount 2
    }

    It 'takes labels and VM names exactly: <Vm> finds <Count>' -TestCases @(
        @{ Vm = 'web01'; Count = 1 }
        @{ Vm = 'WEB01'; Count = 0 }
        @{ Vm = '{6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162}'; Count = 1 }
    ) {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full | Out-Null
        @((Get-HvBackupSet -Path $Root -Vm $Vm).restore_points) | Should -HaveCount $Count
    }

    It 'does not take a base of another case for the one named' {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'Night1' -Mode full | Out-Null
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode incremental -Base 'night1' | Out-Null

        (Get-HvBackupSet -Path $Root).restore_points.complete | Should -Be @($true, $false)
    }

    It 'reads one export folder, or one VM folder, given directly' {
        $folder = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full

        (Get-HvBackupSet -Path $folder).restore_points[0].complete | Should -BeTrue
        (Get-HvBackupSet -Path (Join-Path $Root $VmFolder)).restore_points[0].label | Should -Be 'night1'
    }

    It 'refuses both copies of a backup found in two folders' {
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full | Out-Null
        New-TestExport -Root $Root -VmFolder 'web01' -Label 'night1' -Mode full | Out-Null

        $points = (Get-HvBackupSet -Path $Root).restore_points
        $points.complete | Should -Be @($false, $false)
        $points[0].problems[0] | Should -BeLike "the same backup ('night1' of this VM) is also in *"
    }

    It 'says what is wrong with a marker it cannot read, and goes on with the others' {
        $bad = New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night1' -Mode full
        New-TestExport -Root $Root -VmFolder $VmFolder -Label 'night2' -Mode full | Out-Null
        [System.IO.File]::WriteAllText((Join-Path $bad 'hyperv.backup-export.json'), '{"vm_id": ')

        $points = (Get-HvBackupSet -Path $Root).restore_points
        $points | Should -HaveCount 2
        $unread = $points | Where-Object { $_.path -eq $bad }
        $unread.problems[0] | Should -BeLike "its marker * cannot be read: *"
        $unread.complete | Should -BeFalse
        ($points | Where-Object { $_.label -eq 'night2' }).complete | Should -BeTrue
    }
}
