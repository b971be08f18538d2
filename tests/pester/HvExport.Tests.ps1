# The lock a vm_export module holds on each destination it exports into (HvExport.psm1).

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvExport
}

Describe 'Lock-HvExportDestination' {
    It 'holds one destination however it is written, refuses a second holder, and leaves no file once closed' {
        $folder = Join-Path $TestDrive 'locks'
        $held = Lock-HvExportDestination -Destination 'D:\Backups\web01_1\night' -Folder $folder -TimeoutSeconds 0
        $held | Should -BeOfType ([System.IO.FileStream])
        @(Get-ChildItem -LiteralPath $folder).Count | Should -Be 1
        { Lock-HvExportDestination -Destination 'd:/backups/WEB01_1/night/' -Folder $folder -TimeoutSeconds 0 } |
            Should -Throw "another run is exporting into 'd:/backups/WEB01_1/night/' now (its lock '*' is held for over 0 s)."
        $other = Lock-HvExportDestination -Destination 'D:\Backups\web01_1\night2' -Folder $folder -TimeoutSeconds 0
        $other.Dispose()
        $held.Dispose()
        @(Get-ChildItem -LiteralPath $folder) | Should -BeNullOrEmpty
        $again = Lock-HvExportDestination -Destination 'D:\Backups\web01_1\night' -Folder $folder -TimeoutSeconds 0
        $again.Dispose()
    }

    It 'gives nothing, and waits for nothing, where no lock folder can be made' {
        $file = Join-Path $TestDrive 'a-file'
        Set-Content -LiteralPath $file -Value 'x'
        Lock-HvExportDestination -Destination 'D:\Backups\x' -Folder (Join-Path $file 'locks') -TimeoutSeconds 30 | Should -BeNullOrEmpty
    }
}
