# The reference point catalog (HvCatalog.psm1): reading, saving, refusing damage, locking.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeEach sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvCatalog
    $identity = @{ name = 'web01'; id = '6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162' }

    Function New-TestEntry {
        param ([string]$Name)
        New-HvCatalogEntry -VmIdentity $identity -Name $Name -Type rct -Consistency application
    }
}

Describe 'Read-HvCatalog and Save-HvCatalog' {
    BeforeEach {
        $path = Join-Path $TestDrive "catalog-$([guid]::NewGuid().ToString('N')).json"
    }

    It 'reads a missing catalog as an empty one' {
        $catalog = Read-HvCatalog -Path $path
        $catalog.version | Should -Be 1
        $catalog.entries.Count | Should -Be 0
    }

    It 'reads back what it saved, again after saving over an existing file' {
        # The second save replaces the file (File.Replace) and the read after it takes the
        # Dictionary that FromJson returns: both failed on a host before.
        $catalog = Read-HvCatalog -Path $path
        Set-HvCatalogEntry -Catalog $catalog -Entry (New-TestEntry -Name 'a')
        Save-HvCatalog -Path $path -Catalog $catalog
        $catalog = Read-HvCatalog -Path $path
        Set-HvCatalogEntry -Catalog $catalog -Entry (New-TestEntry -Name 'b')
        Save-HvCatalog -Path $path -Catalog $catalog
        $again = Read-HvCatalog -Path $path
        @($again.entries | ForEach-Object { $_.name }) | Should -Be @('a', 'b')
        $again.entries[0] | Should -BeOfType [hashtable]
        Test-Path -LiteralPath "$path.tmp" | Should -BeFalse
    }

    It 'replaces an entry of the same VM and name instead of adding a second' {
        $catalog = Read-HvCatalog -Path $path
        Set-HvCatalogEntry -Catalog $catalog -Entry (New-TestEntry -Name 'a')
        $second = New-TestEntry -Name 'a'
        $second.status = 'ready'
        Set-HvCatalogEntry -Catalog $catalog -Entry $second
        $catalog.entries.Count | Should -Be 1
        $catalog.entries[0].status | Should -Be 'ready'
    }

    It 'finds entries by name case-sensitively and by instance id' {
        $catalog = Read-HvCatalog -Path $path
        $entry = New-TestEntry -Name 'Nightly'
        $entry.instance_id = 'Microsoft:ABC'
        Set-HvCatalogEntry -Catalog $catalog -Entry $entry
        @(Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name 'Nightly').Count | Should -Be 1
        @(Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name 'nightly').Count | Should -Be 0
        @(Find-HvCatalogEntry -Catalog $catalog -InstanceId 'Microsoft:ABC').Count | Should -Be 1
    }

    It 'tells names apart that a culture-aware comparison takes for one (a soft hyphen counts for nothing there)' {
        $catalog = Read-HvCatalog -Path $path
        Set-HvCatalogEntry -Catalog $catalog -Entry (New-TestEntry -Name "night`u{00AD}ly")
        Set-HvCatalogEntry -Catalog $catalog -Entry (New-TestEntry -Name 'nightly')
        $catalog.entries.Count | Should -Be 2 -Because 'the second name is another reference point, not a replacement'
        @(Find-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name 'nightly').Count | Should -Be 1
        Remove-HvCatalogEntry -Catalog $catalog -VmId $identity.id -Name 'nightly'
        @($catalog.entries | ForEach-Object { $_.name }) | Should -Be @("night`u{00AD}ly")
    }

    It 'reads a catalog written with a UTF-8 byte order mark' {
        [System.IO.File]::WriteAllText($path, '{"version": 1, "entries": []}', [System.Text.UTF8Encoding]::new($true))
        (Read-HvCatalog -Path $path).entries.Count | Should -Be 0
    }

    It 'waits out another process holding the catalog open (Windows sharing rules)' {
        # On Linux .NET enforces FileShare.None with an exclusive lock, so holding the file that way
        # makes a read fail as on Windows until it is let go. A replace is a rename here, which no
        # lock stops: the same retry around File.Replace is not exercised on Linux.
        Save-HvCatalog -Path $path -Catalog @{ version = 1; entries = [System.Collections.Generic.List[object]]@() }
        $held = [System.IO.File]::Open($path, 'Open', 'Read', 'None')
        $release = Start-ThreadJob -ScriptBlock { Start-Sleep -Milliseconds 700; ($using:held).Dispose() }
        try {
            { [System.IO.File]::ReadAllText($path) } | Should -Throw
            (Read-HvCatalog -Path $path).entries.Count | Should -Be 0
        }
        finally {
            $null = $release | Wait-Job | Remove-Job
            $held.Dispose()
        }
    }

    It 'refuses <Case> and leaves the file as it was' -ForEach @(
        @{ Case = 'text that is not JSON'; Text = '{not json'; Problem = 'it is not valid JSON' }
        @{ Case = 'JSON without version and entries'; Text = '{"names": []}'; Problem = 'it has no version and entries' }
        @{ Case = 'a newer version'; Text = '{"version": 2, "entries": []}'; Problem = 'its version 2 is not the supported version 1' }
        @{ Case = 'a version written as a string'; Text = '{"version": "1", "entries": []}'; Problem = 'its version "1" is not a number' }
        @{ Case = 'entries that are not a list'; Text = '{"version": 1, "entries": {}}'; Problem = 'its entries are not a list' }
        @{ Case = 'entries that are not objects'; Text = '{"version": 1, "entries": [1]}'; Problem = 'some entries are not objects' }
    ) {
        [System.IO.File]::WriteAllText($path, $Text)
        { Read-HvCatalog -Path $path } | Should -Throw "The reference point catalog '$path' is corrupt: $Problem*"
        [System.IO.File]::ReadAllText($path) | Should -Be $Text
    }
}

Describe 'Lock-HvCatalog' {
    It 'gives one run the lock and makes another wait, then fail naming the lock file' {
        $path = Join-Path $TestDrive 'locked/catalog.json'
        $held = Lock-HvCatalog -Path $path
        try {
            $started = [DateTime]::UtcNow
            { Lock-HvCatalog -Path $path -TimeoutSeconds 1 } | Should -Throw ("The reference point catalog is locked by another run ('$path.lock' held for " +
                "over 1 s)*")
            ([DateTime]::UtcNow - $started).TotalSeconds | Should -BeGreaterOrEqual 1
        }
        finally {
            $held.Dispose()
        }
        $again = Lock-HvCatalog -Path $path -TimeoutSeconds 1
        $again.Dispose()
    }

    It 'keeps every entry when two processes add entries at the same time' {
        # Two pwsh processes, each adding 15 entries under the lock: none may be lost. (On Linux
        # .NET implements FileShare.None with advisory locks between .NET processes; Windows
        # enforces sharing modes in the kernel. Both keep a second locker out, which is what the
        # catalog relies on; readers do not lock, on either.)
        $path = Join-Path $TestDrive 'shared/catalog.json'
        $writer = {
            param ($Root, $Ansible, $Path, $Prefix)
            $env:HVTEST_ROOT = $Root
            $env:HVTEST_ANSIBLE = $Ansible
            Import-Module (Join-Path $Root 'tests/pester/HvTestHelpers.psm1')
            Import-HvTestModuleUtil -Name _HvCatalog
            $identity = @{ name = 'web01'; id = '6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162' }
            foreach ($index in 1..15) {
                $lock = Lock-HvCatalog -Path $Path
                try {
                    $catalog = Read-HvCatalog -Path $Path
                    Set-HvCatalogEntry -Catalog $catalog -Entry (New-HvCatalogEntry -VmIdentity $identity -Name "$Prefix$index" -Type rct -Consistency crash)
                    Save-HvCatalog -Path $Path -Catalog $catalog
                }
                finally {
                    $lock.Dispose()
                }
            }
        }
        $jobs = foreach ($prefix in 'a', 'b') {
            Start-Job -ScriptBlock $writer -ArgumentList (Get-HvTestRoot), $env:HVTEST_ANSIBLE, $path, $prefix
        }
        $null = $jobs | Wait-Job -Timeout 120
        $jobs | Receive-Job -ErrorAction Stop
        $jobs | Remove-Job -Force
        $names = @((Read-HvCatalog -Path $path).entries | ForEach-Object { $_.name } | Sort-Object)
        $names.Count | Should -Be 30
    }
}

Describe 'Set-HvPendingRecord and Get-HvPendingRecord' {
    BeforeEach {
        $folder = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $path = Get-HvPendingRecordPath -CatalogPath (Join-Path $folder 'catalog.json') -Kind exports
    }

    It 'keeps its file beside the catalog, named for the kind of job' {
        $path | Should -Be (Join-Path $folder 'pending-exports.json')
    }

    It 'records a job per VM and name, and forgets only that one' {
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record @{ vm_id = $identity.id; name = 'd:\backups\a'; job_id = 'J1' }
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\b' -Record @{ vm_id = $identity.id; name = 'd:\backups\b'; job_id = 'J2' }
        (Get-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a').job_id | Should -Be 'J1'
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record $null
        Get-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' | Should -BeNullOrEmpty
        (Get-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\b').job_id | Should -Be 'J2'
    }

    It 'keeps the records of two VMs of one name apart, nested values included' {
        $other = 'e0b1c2d3-0000-4000-8000-000000000002'
        $resume = @{ differential = $true; base = 'n1'; full_reason = $null }
        $record = @{ vm_id = $identity.id; name = 'd:\backups\a'; job_id = 'J1'; resume = $resume }
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record $record
        Set-HvPendingRecord -Path $path -VmId $other -Name 'd:\backups\a' -Record @{ vm_id = $other; name = 'd:\backups\a'; job_id = 'J2' }
        $mine = Get-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a'
        $mine.job_id | Should -Be 'J1'
        $mine.resume['differential'] | Should -BeTrue
        $mine.resume['base'] | Should -Be 'n1'
        $mine.resume.ContainsKey('full_reason') | Should -BeTrue
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record $null
        (Get-HvPendingRecord -Path $path -VmId $other -Name 'd:\backups\a').job_id | Should -Be 'J2'
    }

    It 'makes no file and writes none when there is nothing to forget' {
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record $null
        Test-Path -LiteralPath $path | Should -BeFalse
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\a' -Record @{ vm_id = $identity.id; name = 'd:\backups\a'; job_id = 'J1' }
        $written = (Get-Item -LiteralPath $path).LastWriteTimeUtc
        Start-Sleep -Milliseconds 50
        Set-HvPendingRecord -Path $path -VmId $identity.id -Name 'd:\backups\other' -Record $null
        (Get-Item -LiteralPath $path).LastWriteTimeUtc | Should -Be $written
    }
}
