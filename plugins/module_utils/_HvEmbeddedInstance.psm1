# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Hyper-V takes settings as embedded instances: the DMTF CIM-XML text of an <INSTANCE> in a
# string parameter. The text is written here with an XML writer, so that names and values are
# escaped as XML wants them, and each property carries the CIM type the host's class declares
# (Get-CimClass), so a property the host does not know fails here, before any change. Values
# are written with the invariant culture: the host's culture must not change a number or a date.

$script:HvNamespace = 'root/virtualization/v2'

Function Get-HvCimXmlType {
    <#
    .SYNOPSIS
    Returns the CIM-XML TYPE of a property declaration (uint16, boolean, string, datetime...) and whether it is an array.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $Declaration
    )

    $name = ([string]$Declaration.CimType).ToLowerInvariant()
    $array = $name.EndsWith('array', [System.StringComparison]::Ordinal)
    if ($array) {
        $name = $name.Substring(0, $name.Length - 'array'.Length)
    }
    if ($name -in @('reference', 'instance', 'unknown')) {
        throw "property $($Declaration.Name) is of CIM type $($Declaration.CimType), which an embedded instance cannot carry as text."
    }
    @{ type = $name; array = $array }
}

Function ConvertTo-HvCimXmlValue {
    <#
    .SYNOPSIS
    Returns a value as CIM-XML text for its CIM type, the same whatever the host's culture.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [object]
        $Value,

        [Parameter(Mandatory)]
        [string]
        $Type
    )

    $invariant = [System.Globalization.CultureInfo]::InvariantCulture
    switch ($Type) {
        'boolean' {
            if ([bool]$Value) { return 'true' }
            return 'false'
        }
        'datetime' {
            if ($Value -is [TimeSpan]) {
                # A CIM interval: ddddddddHHMMSS.mmmmmm:000
                return '{0:D8}{1:D2}{2:D2}{3:D2}.{4:D6}:000' -f $Value.Days, $Value.Hours, $Value.Minutes, $Value.Seconds, ([int]($Value.Ticks % 10000000 / 10))
            }
            # A CIM datetime in UTC: yyyymmddHHMMSS.mmmmmm+000
            return ([datetime]$Value).ToUniversalTime().ToString('yyyyMMddHHmmss.ffffff', $invariant) + '+000'
        }
        'string' { return [string]$Value }
        'char16' { return [string]$Value }
    }
    if ($Value -isnot [System.IFormattable]) {
        throw "value '$Value' is not a number, as CIM type $Type needs."
    }
    $Value.ToString($null, $invariant)
}

Function Write-HvCimXmlProperty {
    <#
    .SYNOPSIS
    Writes one PROPERTY (or PROPERTY.ARRAY) element of an instance.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [System.Xml.XmlWriter]
        $Writer,

        [Parameter(Mandatory)]
        [object]
        $Declaration,

        [AllowNull()]
        [object]
        $Value
    )

    $type = Get-HvCimXmlType -Declaration $Declaration
    if ($type.array) {
        $Writer.WriteStartElement('PROPERTY.ARRAY')
        $Writer.WriteAttributeString('NAME', $Declaration.Name)
        $Writer.WriteAttributeString('TYPE', $type.type)
        if ($null -ne $Value) {
            $Writer.WriteStartElement('VALUE.ARRAY')
            foreach ($item in @($Value)) {
                $Writer.WriteElementString('VALUE', (ConvertTo-HvCimXmlValue -Value $item -Type $type.type))
            }
            $Writer.WriteEndElement()
        }
    }
    else {
        $Writer.WriteStartElement('PROPERTY')
        $Writer.WriteAttributeString('NAME', $Declaration.Name)
        $Writer.WriteAttributeString('TYPE', $type.type)
        if ($null -ne $Value) {
            $Writer.WriteElementString('VALUE', (ConvertTo-HvCimXmlValue -Value $Value -Type $type.type))
        }
    }
    $Writer.WriteEndElement()
}

Function New-HvEmbeddedInstance {
    <#
    .SYNOPSIS
    Returns the CIM-XML text of an instance of a Hyper-V class with the given properties.

    .DESCRIPTION
    Property names are matched to the class's declarations (case-insensitively, as CIM names
    are); a name the class does not declare throws, naming it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ClassName,

        [Parameter(Mandatory)]
        [System.Collections.IDictionary]
        $Property
    )

    try {
        $class = Get-CimClass -Namespace $script:HvNamespace -ClassName $ClassName -ErrorAction Stop
    }
    catch {
        # Classes Windows added after Server 2016 (1703, 1709) are missing on a 2016 host.
        throw ("Hyper-V on host $env:COMPUTERNAME has no class $ClassName ($($_.Exception.Message)); classes Windows added after " +
            "Server 2016 (such as Msvm_VirtualSystemReferencePointSettingData) are missing on a 2016 host.")
    }
    $declarations = @{}
    foreach ($declaration in $class.CimClassProperties) {
        $declarations[$declaration.Name] = $declaration
    }
    foreach ($name in $Property.Keys) {
        if (-not $declarations.ContainsKey([string]$name)) {
            throw "Hyper-V's class $ClassName has no property '$name'."
        }
    }
    $settings = [System.Xml.XmlWriterSettings]::new()
    $settings.OmitXmlDeclaration = $true
    $text = [System.IO.StringWriter]::new([System.Globalization.CultureInfo]::InvariantCulture)
    $writer = [System.Xml.XmlWriter]::Create($text, $settings)
    try {
        $writer.WriteStartElement('INSTANCE')
        $writer.WriteAttributeString('CLASSNAME', $class.CimClassName)
        foreach ($name in ($Property.Keys | Sort-Object)) {
            Write-HvCimXmlProperty -Writer $writer -Declaration $declarations[[string]$name] -Value $Property[$name]
        }
        $writer.WriteEndElement()
        $writer.Flush()
    }
    finally {
        $writer.Dispose()
    }
    $text.ToString()
}

Function ConvertTo-HvEmbeddedInstance {
    <#
    .SYNOPSIS
    Returns the CIM-XML text of an instance read from the host (for Modify* methods), with every property it has a value for.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance')]
        [object]
        $InputObject
    )

    $className = $InputObject.CimSystemProperties.ClassName
    $class = Get-CimClass -Namespace $script:HvNamespace -ClassName $className -ErrorAction Stop
    $values = @{}
    foreach ($declaration in $class.CimClassProperties) {
        $value = $InputObject.($declaration.Name)
        if ($null -ne $value) {
            $values[$declaration.Name] = $value
        }
    }
    New-HvEmbeddedInstance -ClassName $className -Property $values
}

Function ConvertFrom-HvEmbeddedInstance {
    <#
    .SYNOPSIS
    Returns the properties of an embedded instance as a hashtable (arrays as arrays).

    .DESCRIPTION
    Reads both the serializer's form and the WMI form that carries __PATH-style system
    properties. Text that is not CIM-XML gives an empty hashtable, never an exception: the
    callers use this to explain failures and must not fail themselves.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [AllowEmptyString()]
        [string]
        $Text
    )

    $properties = @{}
    $document = New-Object -TypeName System.Xml.XmlDocument
    try {
        $document.LoadXml($Text)
    }
    catch {
        return $properties
    }
    foreach ($node in $document.SelectNodes('//INSTANCE/PROPERTY')) {
        $value = $node.SelectSingleNode('VALUE')
        if ($null -ne $value) {
            $properties[$node.GetAttribute('NAME')] = $value.InnerText
        }
    }
    foreach ($node in $document.SelectNodes('//INSTANCE/PROPERTY.ARRAY')) {
        $properties[$node.GetAttribute('NAME')] = @($node.SelectNodes('VALUE.ARRAY/VALUE') | ForEach-Object { $_.InnerText })
    }
    $properties
}

Function ConvertTo-HvTimestamp {
    <#
    .SYNOPSIS
    Returns a time as the collection writes every time it reports or records: UTC, 'yyyy-MM-ddTHH:mm:ssZ'.

    .DESCRIPTION
    With the invariant culture: in a format string ':' is the culture's time separator, so a
    Finnish host (fi-FI) would otherwise write 02.15.00 and no reader would parse it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [datetime]
        $Time
    )

    $Time.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
}

Export-ModuleMember -Function @(
    'ConvertFrom-HvEmbeddedInstance'
    'ConvertTo-HvEmbeddedInstance'
    'ConvertTo-HvTimestamp'
    'New-HvEmbeddedInstance'
)
