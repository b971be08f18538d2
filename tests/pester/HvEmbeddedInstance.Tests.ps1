# Embedded instances (HvEmbeddedInstance.psm1): the CIM-XML text Hyper-V's methods take.

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeAll sets what the It blocks read')]
param ()

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvEmbeddedInstance
    $testHost = Start-HvTestHost -Scenario @{ host = 'HV09'; vms = @() }
}

AfterAll {
    Stop-HvTestHost -TestHost $testHost
}

Describe 'New-HvEmbeddedInstance' {
    It 'writes each property with the type the class declares, whatever .NET type it was given' {
        $text = New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemSnapshotSettingData -Property @{
            ConsistencyLevel = 1
            IgnoreNonSnapshottableDisks = $true
        }
        $text | Should -Be ('<INSTANCE CLASSNAME="Msvm_VirtualSystemSnapshotSettingData">' +
            '<PROPERTY NAME="ConsistencyLevel" TYPE="uint8"><VALUE>1</VALUE></PROPERTY>' +
            '<PROPERTY NAME="IgnoreNonSnapshottableDisks" TYPE="boolean"><VALUE>true</VALUE></PROPERTY></INSTANCE>')
    }

    It 'escapes what XML needs escaped' {
        $text = New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemExportSettingData -Property @{
            SnapshotVirtualSystem = '\\HV09\root\virtualization\v2:Msvm_VirtualSystemSettingData.InstanceID="Microsoft:A&B<C>"'
        }
        ([xml]$text).INSTANCE.PROPERTY.VALUE | Should -Be '\\HV09\root\virtualization\v2:Msvm_VirtualSystemSettingData.InstanceID="Microsoft:A&B<C>"'
        $text | Should -Match 'A&amp;B&lt;C&gt;'
    }

    It 'writes numbers and booleans the same under <Culture>' -ForEach @(
        @{ Culture = 'de-DE' }, @{ Culture = 'fi-FI' }, @{ Culture = 'tr-TR' }, @{ Culture = 'ar-SA' }
    ) {
        $saved = [System.Globalization.CultureInfo]::CurrentCulture
        try {
            [System.Globalization.CultureInfo]::CurrentCulture = $Culture
            $property = @{ MaxInternalSize = [uint64]1234567890123; Path = 'I:\disk.vhdx' }
            $text = New-HvEmbeddedInstance -ClassName Msvm_VirtualHardDiskSettingData -Property $property
        }
        finally {
            [System.Globalization.CultureInfo]::CurrentCulture = $saved
        }
        $text | Should -Match '<PROPERTY NAME="MaxInternalSize" TYPE="uint64"><VALUE>1234567890123</VALUE></PROPERTY>'
        $text | Should -Match '<VALUE>I:\\disk.vhdx</VALUE>'
    }

    It 'refuses a property the class does not have, naming it' {
        { New-HvEmbeddedInstance -ClassName Msvm_VirtualSystemSnapshotSettingData -Property @{ Colour = 'red' } } |
            Should -Throw "Hyper-V's class Msvm_VirtualSystemSnapshotSettingData has no property 'Colour'."
    }
}

Describe 'ConvertFrom-HvEmbeddedInstance' {
    It 'reads properties and arrays, and gives nothing for text that is not CIM-XML' {
        $message = '<PROPERTY NAME="Message" TYPE="string"><VALUE>Disk &amp; more</VALUE></PROPERTY>'
        $arguments = '<PROPERTY.ARRAY NAME="MessageArguments" TYPE="string"><VALUE.ARRAY><VALUE>a</VALUE><VALUE>b</VALUE></VALUE.ARRAY></PROPERTY.ARRAY>'
        $text = "<INSTANCE CLASSNAME=`"Msvm_Error`">$message$arguments</INSTANCE>"
        $read = ConvertFrom-HvEmbeddedInstance -Text $text
        $read.Message | Should -Be 'Disk & more'
        $read.MessageArguments | Should -Be @('a', 'b')
        (ConvertFrom-HvEmbeddedInstance -Text 'not xml').Count | Should -Be 0
    }
}
