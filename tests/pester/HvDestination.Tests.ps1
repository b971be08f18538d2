# Backup destinations (HvDestination.psm1): full paths only, judged from the host before anything
# is made, with a message that says what to do (the second hop for shares).

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvDestination
}

Describe 'Test-HvFullPath' {
    It 'takes <Path> as full: <Full>' -TestCases @(
        @{ Path = 'D:\Backups'; Full = $true }
        @{ Path = 'd:/Backups/Hyper-V'; Full = $true }
        @{ Path = 'E:\'; Full = $true }
        @{ Path = '\\backup01\hyperv'; Full = $true }
        @{ Path = '\\backup01\hyperv\web'; Full = $true }
        @{ Path = 'Backups'; Full = $false }
        @{ Path = 'D:Backups'; Full = $false }
        @{ Path = '.\Backups'; Full = $false }
        @{ Path = '..\Backups'; Full = $false }
        @{ Path = '\\backup01'; Full = $false }
        @{ Path = ''; Full = $false }
        @{ Path = ' D:\Backups'; Full = $false }
        # Windows trims a trailing space or dot from the last part only: the folder checked would not be the one written.
        @{ Path = 'D:\Backups '; Full = $false }
        @{ Path = 'D:\Backups \web01'; Full = $false }
        @{ Path = 'D:\Backups.'; Full = $false }
        @{ Path = '\\backup01\hyperv.\x'; Full = $false }
        # Device paths are neither a drive nor a share.
        @{ Path = '\\?\C:\Backups'; Full = $false }
        @{ Path = '\\.\pipe\x'; Full = $false }
    ) {
        Test-HvFullPath -Path $Path | Should -Be $Full
    }
}

Describe 'Get-HvDestinationState' {
    It 'refuses a relative path before looking at the disk, and says what a full one looks like' {
        $state = Get-HvDestinationState -Path 'Backups\Hyper-V'
        $state.usable | Should -BeFalse
        $state.kind | Should -BeNullOrEmpty
        $state.problem | Should -Be ("'Backups\Hyper-V' is not a full path: give a local path with its drive (D:\Backups\Hyper-V) " +
            'or a share (\\server\share\Hyper-V).')
    }

    It 'judges a folder that does not exist yet by the parent it would be created in, and creates nothing' {
        $target = Join-Path $TestDrive 'new\deeper'
        $state = Get-HvDestinationState -Path $target -RequiredBytes 1024
        $state.usable | Should -BeTrue
        $state.exists | Should -BeFalse
        $state.writable | Should -BeTrue
        $state.free_bytes | Should -BeGreaterThan 1024
        Test-Path -LiteralPath (Join-Path $TestDrive 'new') | Should -BeFalse
        @(Get-ChildItem -LiteralPath $TestDrive -Force -Filter '.hyperv.backup-probe-*') | Should -HaveCount 0
    }

    It 'does not answer for the free space under a mount point, a junction or a link (another volume than the drive letter''s)' {
        $real = New-Item -Path (Join-Path $TestDrive 'volume') -ItemType Directory
        $mounted = Join-Path $TestDrive 'ClusterStorage'
        $null = New-Item -Path $mounted -ItemType SymbolicLink -Value $real.FullName
        $state = Get-HvDestinationState -Path (Join-Path $mounted 'Backups') -RequiredBytes ([long]1PB)
        $state.usable | Should -BeTrue
        $state.free_bytes | Should -BeNullOrEmpty
    }

    It 'says how much is free and how much is needed when the volume is too small' {
        $state = Get-HvDestinationState -Path $TestDrive -RequiredBytes ([long]1PB)
        $state.usable | Should -BeFalse
        $state.exists | Should -BeTrue
        $state.problem | Should -Match "^'.+' has \d+\.\d GiB free, and this needs 1048576\.0 GiB \(the disks to copy and the free space margin\): "
    }

    It 'names the folder, the account and the error when a file cannot be written there' {
        # /proc takes no files, not even from root (who may write anywhere a mode bit forbids).
        $state = Get-HvDestinationState -Path '/proc/hyperv-backup'
        $state.usable | Should -BeFalse
        $state.writable | Should -BeFalse
        $user = [Environment]::UserName
        $state.problem | Should -BeLike "'/proc' (where '/proc/hyperv-backup' would be created) is not writable by $user, the account the module runs as: *"
        $state.problem | Should -BeLike '* Give that account modify rights there, or choose another destination.'
    }

    It 'says the second hop and its ways out for a share it cannot reach or write' {
        InModuleScope _HvDestination {
            $unreachable = Get-HvUnreachableText -Path '\\backup01\hyperv' -Kind share
            $unreachable | Should -BeLike "'\\backup01\hyperv' cannot be reached: *(the second hop): use CredSSP or Kerberos delegation*"
            $denied = Get-HvUnwritableText -Path '\\backup01\hyperv' -Folder '\\backup01\hyperv' -Kind share -Failure 'Access is denied.'
            $denied | Should -BeLike "'\\backup01\hyperv' is not writable by *: Access is denied. Over WinRM with NTLM or Basic*local path."
            Get-HvUnreachableText -Path 'Q:\Backups' -Kind local | Should -BeLike "'Q:\Backups' cannot be created: its drive '*' does not exist on the host."
        }
    }
}
