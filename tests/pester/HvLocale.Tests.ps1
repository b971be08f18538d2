# Hosts in other languages and cultures: what Windows translates (captions, descriptions) and
# formats (times, numbers, case rules) must not change what the collection finds or writes.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvVirtualMachine, _HvEmbeddedInstance, _HvCatalog, _HvCheckpoint
    $vms = @(
        @{ name = 'mail'; id = '7a7a7a7a-0000-4000-8000-000000000001' }
        @{ name = 'FILE01'; id = '7a7a7a7a-0000-4000-8000-000000000002' }
    )

    Function Invoke-InCulture {
        # Runs a script block with the thread's culture set, as a module runs on a host in that culture.
        param ([string]$Culture, [scriptblock]$ScriptBlock)
        $saved = [System.Globalization.CultureInfo]::CurrentCulture
        try {
            [System.Globalization.CultureInfo]::CurrentCulture = $Culture
            & $ScriptBlock
        }
        finally {
            [System.Globalization.CultureInfo]::CurrentCulture = $saved
        }
    }
}

Describe 'A host in <Language>' -ForEach @(
    @{ Language = 'sv-SE' }, @{ Language = 'fr-FR' }, @{ Language = 'de-DE' }, @{ Language = 'ja-JP' }
) {
    BeforeAll {
        $testHost = Start-HvTestHost -Scenario @{ host = 'HV11'; language = $Language; vms = $vms }
    }

    AfterAll {
        Stop-HvTestHost -TestHost $testHost
    }

    It 'translates what Windows translates (the knob is on)' {
        $all = @(Get-CimInstance -Namespace root/virtualization/v2 -ClassName Msvm_ComputerSystem)
        $all.Count | Should -Be 3
        @($all | Where-Object { $_.Caption -eq 'Virtual Machine' -or $_.Description -eq 'Microsoft Virtual Machine' }) | Should -BeNullOrEmpty
    }

    It 'lists every VM and never the host, whatever its captions say' {
        @(Get-HvVirtualMachineList | ForEach-Object { $_.ElementName }) | Should -Be @('mail', 'FILE01')
    }
}

Describe 'Formats under <Culture>' -ForEach @(
    @{ Culture = 'en-US' }, @{ Culture = 'fi-FI' }, @{ Culture = 'de-DE' }, @{ Culture = 'tr-TR' }
) {
    BeforeAll {
        $testHost = Start-HvTestHost -Scenario @{ host = 'HV12'; vms = $vms }
    }

    AfterAll {
        Stop-HvTestHost -TestHost $testHost
    }

    It 'writes times as on en-US' {
        $time = [datetime]::new(2026, 11, 29, 2, 15, 0, [System.DateTimeKind]::Utc)
        Invoke-InCulture -Culture $Culture { ConvertTo-HvTimestamp -Time $time } | Should -BeExactly '2026-11-29T02:15:00Z'
        $entry = Invoke-InCulture -Culture $Culture {
            New-HvCatalogEntry -VmIdentity @{ id = '7a7a7a7a-0000-4000-8000-000000000001'; name = 'mail' } -Name n -Type rct -Consistency crash
        }
        $entry.created | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
    }

    It 'finds names without case as on en-US (mail as MAIL, FILE01 as file01)' {
        $all = @(Get-HvVirtualMachineList)
        (Invoke-InCulture -Culture $Culture { Select-HvVirtualMachine -VirtualMachine $all -Name 'MAIL' }).ElementName | Should -Be 'mail'
        (Invoke-InCulture -Culture $Culture { Select-HvVirtualMachine -VirtualMachine $all -Name 'file01' }).ElementName | Should -Be 'FILE01'
    }

    It 'tells its own checkpoints from others as on en-US' {
        $checkpoint = [pscustomobject]@{ ElementName = 'hyperv.backup: nightly'; InstanceID = 'Microsoft:X'; CreationTime = [datetime]::UtcNow }
        $checkpoint.PSTypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimInstance#root/virtualization/v2/Msvm_VirtualSystemSettingData')
        $result = Invoke-InCulture -Culture $Culture { ConvertTo-HvCheckpointResult -Checkpoint $checkpoint }
        $result.owned | Should -BeTrue
        $result.label | Should -Be 'nightly'
        $result.created | Should -Match '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$'
    }
}

Describe 'The cultures above are real' {
    It 'formats differently from en-US where the tests above expect no difference' {
        # Without ICU data .NET runs every culture as the invariant one and the tests above prove nothing.
        $time = [datetime]::new(2026, 11, 29, 2, 15, 0)
        Invoke-InCulture -Culture 'fi-FI' { $time.ToString('HH:mm:ss') } | Should -Be '02.15.00'
        Invoke-InCulture -Culture 'de-DE' { (1.5).ToString() } | Should -Be '1,5'
        Invoke-InCulture -Culture 'tr-TR' { 'FILE' -like 'fi*' } | Should -BeFalse
    }
}
