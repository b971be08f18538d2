# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# Hyper-V takes settings as embedded instances: a CIM-XML <INSTANCE> in a string parameter.
# They are built from the class definition the host serves, so a property the host does not
# know fails here, before any change.

$script:HvNamespace = 'root/virtualization/v2'

Function New-HvEmbeddedInstance {
    <#
    .SYNOPSIS
    Returns the CIM-XML text of a new instance of a Hyper-V class with the given properties.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ClassName,

        [Parameter(Mandatory)]
        [hashtable]
        $Property
    )

    $class = Get-CimClass -Namespace $script:HvNamespace -ClassName $ClassName
    $instance = New-CimInstance -CimClass $class -Property $Property -ClientOnly
    $serializer = [Microsoft.Management.Infrastructure.Serialization.CimSerializer]::Create()
    $bytes = $serializer.Serialize($instance, [Microsoft.Management.Infrastructure.Serialization.InstanceSerializationOptions]::None)
    [System.Text.Encoding]::Unicode.GetString($bytes)
}

Function ConvertTo-HvEmbeddedInstance {
    <#
    .SYNOPSIS
    Returns the CIM-XML text of an instance read from the host (for Modify* methods).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [Microsoft.Management.Infrastructure.CimInstance]
        $InputObject
    )

    $serializer = [Microsoft.Management.Infrastructure.Serialization.CimSerializer]::Create()
    $bytes = $serializer.Serialize($InputObject, [Microsoft.Management.Infrastructure.Serialization.InstanceSerializationOptions]::None)
    [System.Text.Encoding]::Unicode.GetString($bytes)
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

Export-ModuleMember -Function @(
    'ConvertFrom-HvEmbeddedInstance'
    'ConvertTo-HvEmbeddedInstance'
    'New-HvEmbeddedInstance'
)
