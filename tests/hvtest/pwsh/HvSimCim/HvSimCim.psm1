# The CIM cmdlets the collection calls, for the tests on Linux (test tooling: never shipped, never
# required by the collection). Linux has no CimCmdlets and no libmi, so no real CimInstance can
# exist here; these functions forward each call to the simulated Hyper-V host (POST
# $env:HVSIM_CIM_URL, see tests/hvtest/sim/cim.py) and hand back what Windows hands back:
# objects whose PSTypeNames are those of CimInstance objects of the class and its parents,
# properties typed as the schema types them, method results with ReturnValue and the out
# parameters, and errors as CimException objects with the native error code, category and
# error id a Windows host gives, written as non-terminating errors so -ErrorAction and
# $ErrorActionPreference decide as they do for the real cmdlets.
#
# Where what Windows does is not known the simulator refuses, and the call throws a terminating
# error starting with 'HvSim:' so that the test fails loudly instead of passing on a guess.
#
# PowerShell finds these functions by module auto-loading (the endpoint puts this folder on
# PSModulePath), as Windows finds CimCmdlets: nothing in the collection imports this module.

Set-StrictMode -Version Latest

$script:CimInstanceType = 'Microsoft.Management.Infrastructure.CimInstance'
$script:Client = $null
$script:ClassCache = @{}
# CIM type names (as CIM-XML spells them) to the names of the CimType enumeration.
$script:CimTypeName = @{
    boolean = 'Boolean'; string = 'String'; char16 = 'Char16'; datetime = 'DateTime'; interval = 'DateTime'
    uint8 = 'UInt8'; uint16 = 'UInt16'; uint32 = 'UInt32'; uint64 = 'UInt64'
    sint8 = 'SInt8'; sint16 = 'SInt16'; sint32 = 'SInt32'; sint64 = 'SInt64'
    real32 = 'Real32'; real64 = 'Real64'; reference = 'Reference'; unknown = 'Unknown'
}

# The CIM types whose wire value converts to its .NET value by a cast (ConvertFrom-HvSimValue
# gives the same values; datetime, interval, char16 and references take its longer way).
$script:ScalarCast = @{
    string = [string]; boolean = [bool]; uint8 = [byte]; uint16 = [uint16]; uint32 = [uint32]; uint64 = [uint64]
    sint8 = [sbyte]; sint16 = [int16]; sint32 = [int32]; sint64 = [int64]; real32 = [single]; real64 = [double]
}

Function Get-HvSimClient {
    <#
    .SYNOPSIS
    Returns the process's HTTP client for the simulated host (one per pwsh process).
    #>
    [CmdletBinding()]
    [OutputType([System.Net.Http.HttpClient])]
    param ()

    if ($null -eq $script:Client) {
        $script:Client = [System.Net.Http.HttpClient]::new()
        $script:Client.Timeout = [TimeSpan]::FromSeconds(120)
    }
    $script:Client
}

Function Send-HvSimRequest {
    <#
    .SYNOPSIS
    Returns the simulated host's reply to one CIM request, as a hashtable.

    .DESCRIPTION
    A refusal (the simulator does not know what Windows would answer) throws at once: it is a
    gap in the test tooling, never something the collection should handle.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Request,

        # The simulator's path under /sim/: cim for CIM requests, sleep for Invoke-HvSimSleep.
        [string]
        $Path = 'cim'
    )

    if (-not $env:HVSIM_CIM_URL) {
        throw 'HvSim: HVSIM_CIM_URL is not set; this CIM shim only works under the Hyper-V simulator (tests/hvtest/sim).'
    }
    $body = ConvertTo-Json -InputObject $Request -Depth 32 -Compress
    $url = $env:HVSIM_CIM_URL -replace '/cim$', "/$Path"
    $message = [System.Net.Http.HttpRequestMessage]::new([System.Net.Http.HttpMethod]::Post, $url)
    $message.Content = [System.Net.Http.StringContent]::new($body, [System.Text.Encoding]::UTF8, 'application/json')
    if ($env:HVSIM_RUN) {
        $null = $message.Headers.TryAddWithoutValidation('X-HvSim-Run', $env:HVSIM_RUN)
    }
    $response = (Get-HvSimClient).SendAsync($message).GetAwaiter().GetResult()
    $text = $response.Content.ReadAsStringAsync().GetAwaiter().GetResult()
    if (-not $response.IsSuccessStatusCode) {
        throw "HvSim: the simulated host answered HTTP $([int]$response.StatusCode) to a $($Request.op) request: $text"
    }
    $reply = ConvertFrom-Json -InputObject $text -AsHashtable -DateKind String
    if ($reply.ContainsKey('refused')) {
        throw "HvSim: the simulator refuses to guess what Windows does here: $($reply.refused)"
    }
    $reply
}

Function Invoke-HvSimSleep {
    <#
    .SYNOPSIS
    Start-Sleep for the modules when the simulator shares this machine's cores between hosts.

    .DESCRIPTION
    Set as the alias Start-Sleep only when HVSIM_PWSH_SLOTS is set (the benchmark's fleet, see
    tests/hvtest/sim/pwsh.py): a module run then holds one of a few core slots, and a module that
    sleeps between reads of its jobs uses no core on a real host. The simulator sleeps for it and
    lets the slot go meanwhile, so the other hosts' modules run. The time slept is the same.
    #>
    [CmdletBinding(DefaultParameterSetName = 'Seconds')]
    param (
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'Seconds')]
        [double]
        $Seconds,

        [Parameter(Mandatory, ParameterSetName = 'Milliseconds')]
        [int]
        $Milliseconds
    )

    if ($PSCmdlet.ParameterSetName -eq 'Milliseconds') {
        $Seconds = $Milliseconds / 1000
    }
    $null = Send-HvSimRequest -Request @{ op = 'sleep'; seconds = $Seconds } -Path 'sleep'
}

Function New-HvSimCimException {
    <#
    .SYNOPSIS
    Returns the ErrorRecord a CIM cmdlet writes for a host's error: a CimException with its native code.

    .DESCRIPTION
    CimException's public constructors leave NativeErrorCode at Ok; the code lives in a private
    backing field, set here by reflection so that code testing NativeErrorCode sees what Windows gives.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.ErrorRecord])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Fault,

        [AllowNull()]
        [object]
        $Target
    )

    $exception = [Microsoft.Management.Infrastructure.CimException]::new($Fault.message)
    $flags = [System.Reflection.BindingFlags]'NonPublic,Instance'
    $field = [Microsoft.Management.Infrastructure.CimException].GetField('<NativeErrorCode>k__BackingField', $flags)
    if ($null -eq $field) {
        throw ('HvSim: CimException has no NativeErrorCode backing field in this version of Microsoft.Management.Infrastructure; ' +
            'the shim cannot make faithful errors.')
    }
    $field.SetValue($exception, [Microsoft.Management.Infrastructure.NativeErrorCode]$Fault.native)
    $errorId = if ($Fault.hresult) { $Fault.hresult } else { 'HvSimCimError' }
    [System.Management.Automation.ErrorRecord]::new($exception, $errorId, [System.Management.Automation.ErrorCategory]$Fault.category, $Target)
}

Function ConvertFrom-HvSimValue {
    <#
    .SYNOPSIS
    Returns a wire value as the .NET value the CIM cmdlets give for its CIM type.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [string]
        $CimType,

        [Parameter(Mandatory)]
        [bool]
        $IsArray,

        [AllowNull()]
        [object]
        $Value
    )

    if ($null -eq $Value) {
        return $null
    }
    if ($IsArray) {
        $items = @(foreach ($item in $Value) { ConvertFrom-HvSimValue -CimType $CimType -IsArray $false -Value $item })
        $elementType = switch ($CimType) {
            'string' { [string] }
            'boolean' { [bool] }
            'uint8' { [byte] }
            'uint16' { [uint16] }
            'uint32' { [uint32] }
            'uint64' { [uint64] }
            'sint8' { [sbyte] }
            'sint16' { [int16] }
            'sint32' { [int32] }
            'sint64' { [int64] }
            'datetime' { [datetime] }
            'interval' { [timespan] }
            'reference' { [object] }
            default { throw "HvSim: arrays of $CimType are not modelled" }
        }
        $typed = [System.Array]::CreateInstance($elementType, $items.Count)
        for ($index = 0; $index -lt $items.Count; $index++) {
            $typed[$index] = $items[$index]
        }
        return , $typed
    }
    switch ($CimType) {
        'string' { return [string]$Value }
        'char16' { return [char][string]$Value }
        'boolean' { return [bool]$Value }
        'uint8' { return [byte]$Value }
        'uint16' { return [uint16]$Value }
        'uint32' { return [uint32]$Value }
        'uint64' { return [uint64]$Value }
        'sint8' { return [sbyte]$Value }
        'sint16' { return [int16]$Value }
        'sint32' { return [int32]$Value }
        'sint64' { return [int64]$Value }
        'real32' { return [single]$Value }
        'real64' { return [double]$Value }
        # The CIM cmdlets hand out CIM datetimes as local DateTime values.
        'datetime' {
            $invariant = [System.Globalization.CultureInfo]::InvariantCulture
            return [datetime]::Parse($Value, $invariant, [System.Globalization.DateTimeStyles]::RoundtripKind).ToLocalTime()
        }
        'interval' { return [TimeSpan]::FromSeconds([double]$Value) }
        'reference' { return New-HvSimInstance -Wire $Value }
    }
    throw "HvSim: values of CIM type $CimType are not modelled"
}

Function New-HvSimInstance {
    <#
    .SYNOPSIS
    Returns an object standing for a CimInstance the host sent: its properties, its type names.
    #>
    [CmdletBinding()]
    [OutputType([psobject])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Wire
    )

    $script:ClassCache[$Wire.class] = @{ keys = @($Wire.keys) }
    $properties = [ordered]@{}
    foreach ($property in $Wire.properties) {
        $value = $property[3]
        $cast = $script:ScalarCast[$property[1]]
        # Most values are scalars of a plain type: converted here, since calling a function per
        # property made a VM's settings cost 4 ms of CPU each, which real CIM cmdlets do not.
        $properties[$property[0]] = if ($null -eq $value) {
            $null
        }
        elseif ($null -ne $cast -and -not $property[2]) {
            [System.Management.Automation.LanguagePrimitives]::ConvertTo($value, $cast)
        }
        else {
            ConvertFrom-HvSimValue -CimType $property[1] -IsArray ([bool]$property[2]) -Value $value
        }
    }
    $properties['CimSystemProperties'] = [PSCustomObject]@{
        Namespace = $Wire.namespace
        ServerName = $Wire.server
        ClassName = $Wire.class
        Path = $null
    }
    $properties['PSComputerName'] = $null
    $instance = [PSCustomObject]$properties
    Set-HvSimTypeName -InputObject $instance -Namespace $Wire.namespace -Lineage @($Wire.lineage)
    $instance
}

Function Set-HvSimTypeName {
    <#
    .SYNOPSIS
    Gives an object the PSTypeNames of a CimInstance of a class (and its parents) in a namespace.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [psobject]
        $InputObject,

        [Parameter(Mandatory)]
        [string]
        $Namespace,

        [Parameter(Mandatory)]
        [string[]]
        $Lineage
    )

    # PowerShell's CimInstance adapter: the class and its parents with the namespace, then without it.
    $InputObject.PSTypeNames.Clear()
    foreach ($class in $Lineage) {
        $InputObject.PSTypeNames.Add("$script:CimInstanceType#$Namespace/$class")
    }
    foreach ($class in $Lineage) {
        $InputObject.PSTypeNames.Add("$script:CimInstanceType#$class")
    }
    $InputObject.PSTypeNames.Add($script:CimInstanceType)
    $InputObject.PSTypeNames.Add('System.Object')
}

Function Test-HvSimInstance {
    <#
    .SYNOPSIS
    Returns whether an object is one of this shim's CimInstance objects.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [AllowNull()]
        [object]
        $InputObject
    )

    $null -ne $InputObject -and $InputObject -is [psobject] -and $InputObject.PSTypeNames -contains $script:CimInstanceType
}

Function Get-HvSimKeyName {
    <#
    .SYNOPSIS
    Returns the key property names of a class (learned from the host's answers, else asked).
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ClassName,

        [Parameter(Mandatory)]
        [string]
        $Namespace
    )

    if (-not $script:ClassCache.ContainsKey($ClassName)) {
        $definition = (Send-HvSimRequest -Request @{ op = 'class'; namespace = $Namespace; class = $ClassName }).class
        if ($null -eq $definition) {
            throw "HvSim: the class $ClassName is not known to the simulated host"
        }
        $script:ClassCache[$ClassName] = @{ keys = @($definition.properties | Where-Object { $_.key } | ForEach-Object { $_.name }) }
    }
    , @($script:ClassCache[$ClassName].keys)
}

Function ConvertTo-HvSimReference {
    <#
    .SYNOPSIS
    Returns how a CimInstance travels to the host: its class and key property values.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [object]
        $InputObject
    )

    if (-not (Test-HvSimInstance -InputObject $InputObject)) {
        throw "HvSim: a $($InputObject.GetType().FullName) was passed where the CIM cmdlets take a CimInstance"
    }
    $class = $InputObject.CimSystemProperties.ClassName
    $keys = @{}
    foreach ($name in (Get-HvSimKeyName -ClassName $class -Namespace $InputObject.CimSystemProperties.Namespace)) {
        $property = $InputObject.PSObject.Properties[$name]
        $keys[$name] = if ($null -ne $property) { $property.Value } else { $null }
    }
    @{ kind = 'instance'; class = $class; keys = $keys }
}

Function ConvertTo-HvSimArgument {
    <#
    .SYNOPSIS
    Returns a method argument as it travels: a reference, or a value with its .NET type named.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [AllowNull()]
        [object]
        $Value
    )

    if ($null -eq $Value) {
        return $null
    }
    if (Test-HvSimInstance -InputObject $Value) {
        return ConvertTo-HvSimReference -InputObject $Value
    }
    $base = if ($Value -is [psobject]) { $Value.PSObject.BaseObject } else { $Value }
    if ($base -is [System.Array]) {
        return , @(foreach ($item in $base) { ConvertTo-HvSimArgument -Value $item })
    }
    $type = switch ($base.GetType().FullName) {
        'System.String' { 'string' }
        'System.Char' { 'string' }
        'System.Boolean' { 'bool' }
        'System.Byte' { 'uint8' }
        'System.SByte' { 'sint8' }
        'System.UInt16' { 'uint16' }
        'System.Int16' { 'sint16' }
        'System.UInt32' { 'uint32' }
        'System.Int32' { 'sint32' }
        'System.UInt64' { 'uint64' }
        'System.Int64' { 'sint64' }
        default { throw "HvSim: a $($base.GetType().FullName) argument; how the CIM cmdlets convert it is not modelled" }
    }
    $wireValue = if ($type -eq 'string') { [string]$base } elseif ($type -eq 'bool') { [bool]$base } else { [decimal]$base }
    @{ type = $type; value = $wireValue }
}

Function Write-HvSimFault {
    <#
    .SYNOPSIS
    Writes a host error as the CIM cmdlets do: non-terminating, so -ErrorAction decides.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory)]
        [hashtable]
        $Fault,

        [AllowNull()]
        [object]
        $Target
    )

    $Cmdlet.WriteError((New-HvSimCimException -Fault $Fault -Target $Target))
}

Function Get-CimInstance {
    <#
    .SYNOPSIS
    Get-CimInstance by class (with an optional WQL filter) or by the keys of an instance.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidOverwritingBuiltInCmdlets', '',
        Justification = 'Linux has no CimCmdlets: these stand in for them in the tests')]
    [CmdletBinding(DefaultParameterSetName = 'ClassNameComputerSet')]
    [OutputType([psobject])]
    param (
        [Parameter(Mandatory, Position = 0, ParameterSetName = 'ClassNameComputerSet')]
        [string]
        $ClassName,

        [Parameter(ParameterSetName = 'ClassNameComputerSet')]
        [string]
        $Namespace = 'root/cimv2',

        [Parameter(ParameterSetName = 'ClassNameComputerSet')]
        [string]
        $Filter,

        [Parameter(Mandatory, ValueFromPipeline, ParameterSetName = 'CimInstanceComputerSet')]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance')]
        [object]
        $InputObject
    )

    process {
        $request = if ($PSCmdlet.ParameterSetName -eq 'CimInstanceComputerSet') {
            @{ op = 'get'; instance = (ConvertTo-HvSimReference -InputObject $InputObject) }
        }
        else {
            @{ op = 'enumerate'; namespace = $Namespace; class = $ClassName; filter = $Filter }
        }
        $reply = Send-HvSimRequest -Request $request
        if ($reply.ContainsKey('fault')) {
            $target = if ($PSCmdlet.ParameterSetName -eq 'CimInstanceComputerSet') { $InputObject } else { "${Namespace}:$ClassName" }
            Write-HvSimFault -Cmdlet $PSCmdlet -Fault $reply.fault -Target $target
            return
        }
        foreach ($wire in $reply.instances) {
            New-HvSimInstance -Wire $wire
        }
    }
}

Function Get-CimAssociatedInstance {
    <#
    .SYNOPSIS
    The instances associated with one through an association class, of a result class.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidOverwritingBuiltInCmdlets', '',
        Justification = 'Linux has no CimCmdlets: these stand in for them in the tests')]
    [CmdletBinding()]
    [OutputType([psobject])]
    param (
        [Parameter(Mandatory, Position = 1, ValueFromPipeline)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance')]
        [object]
        $InputObject,

        [Parameter(Position = 0)]
        [string]
        $Association,

        [string]
        $ResultClassName
    )

    process {
        $reply = Send-HvSimRequest -Request @{
            op = 'associators'
            instance = (ConvertTo-HvSimReference -InputObject $InputObject)
            association = $Association
            result_class = $ResultClassName
        }
        if ($reply.ContainsKey('fault')) {
            Write-HvSimFault -Cmdlet $PSCmdlet -Fault $reply.fault -Target $InputObject
            return
        }
        foreach ($wire in $reply.instances) {
            New-HvSimInstance -Wire $wire
        }
    }
}

Function Invoke-CimMethod {
    <#
    .SYNOPSIS
    Invokes a method of an instance; returns a method result with ReturnValue and the out parameters.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidOverwritingBuiltInCmdlets', '',
        Justification = 'Linux has no CimCmdlets: these stand in for them in the tests')]
    [CmdletBinding()]
    [OutputType([psobject])]
    param (
        [Parameter(Mandatory, ValueFromPipeline)]
        [PSTypeName('Microsoft.Management.Infrastructure.CimInstance')]
        [object]
        $InputObject,

        [Parameter(Mandatory, Position = 2)]
        [string]
        $MethodName,

        [Parameter(Position = 1)]
        [System.Collections.IDictionary]
        $Arguments
    )

    process {
        $wireArguments = @{}
        if ($null -ne $Arguments) {
            foreach ($key in $Arguments.Keys) {
                $wireArguments[[string]$key] = ConvertTo-HvSimArgument -Value $Arguments[$key]
            }
        }
        $reply = Send-HvSimRequest -Request @{
            op = 'invoke'
            instance = (ConvertTo-HvSimReference -InputObject $InputObject)
            method = $MethodName
            arguments = $wireArguments
        }
        if ($reply.ContainsKey('argument_error')) {
            # CimCmdlets check parameter names against the method's declaration before calling:
            # a terminating ArgumentException.
            $PSCmdlet.ThrowTerminatingError([System.Management.Automation.ErrorRecord]::new(
                    [System.ArgumentException]::new($reply.argument_error), 'System.ArgumentException', 'NotSpecified', $null))
        }
        if ($reply.ContainsKey('fault')) {
            Write-HvSimFault -Cmdlet $PSCmdlet -Fault $reply.fault -Target $InputObject
            return
        }
        $result = $reply.result
        $properties = [ordered]@{ ReturnValue = [uint32]$result.return_value }
        foreach ($parameter in $result.out) {
            $properties[$parameter[0]] = ConvertFrom-HvSimValue -CimType $parameter[1] -IsArray ([bool]$parameter[2]) -Value $parameter[3]
        }
        $properties['PSComputerName'] = $null
        $output = [PSCustomObject]$properties
        $output.PSTypeNames.Clear()
        # CimCmdlets name the method as the caller typed it.
        $output.PSTypeNames.Add("Microsoft.Management.Infrastructure.CimMethodResult#$($result.class)#$MethodName")
        $output.PSTypeNames.Add('Microsoft.Management.Infrastructure.CimMethodResult')
        $output.PSTypeNames.Add('System.Management.Automation.PSCustomObject')
        $output.PSTypeNames.Add('System.Object')
        $output
    }
}

Function New-CimInstance {
    <#
    .SYNOPSIS
    New-CimInstance -ClientOnly: a local instance of a class with the given (key) properties.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidOverwritingBuiltInCmdlets', '',
        Justification = 'Linux has no CimCmdlets: these stand in for them in the tests')]
    [CmdletBinding()]
    [OutputType([psobject])]
    param (
        [Parameter(Mandatory, Position = 0)]
        [string]
        $ClassName,

        [string]
        $Namespace = 'root/cimv2',

        [string[]]
        $Key = @(),

        [Parameter(Position = 1)]
        [System.Collections.IDictionary]
        $Property = @{},

        [switch]
        $ClientOnly
    )

    if (-not $ClientOnly) {
        throw 'HvSim: New-CimInstance without -ClientOnly creates an instance on the host; the collection never does and the simulator does not model it.'
    }
    foreach ($name in $Key) {
        if (-not $Property.Contains($name)) {
            throw "HvSim: New-CimInstance -Key $name without a value for it in -Property"
        }
    }
    $properties = [ordered]@{}
    foreach ($name in $Property.Keys) {
        $properties[[string]$name] = $Property[$name]
    }
    $properties['CimSystemProperties'] = [PSCustomObject]@{ Namespace = $Namespace; ServerName = $null; ClassName = $ClassName; Path = $null }
    $properties['PSComputerName'] = $null
    $instance = [PSCustomObject]$properties
    # A client-only instance made from a class name knows no parent classes.
    Set-HvSimTypeName -InputObject $instance -Namespace $Namespace -Lineage @($ClassName)
    $instance
}

Function Get-CimClass {
    <#
    .SYNOPSIS
    The declaration of a class: its properties with their CIM types and flags, its methods.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidOverwritingBuiltInCmdlets', '',
        Justification = 'Linux has no CimCmdlets: these stand in for them in the tests')]
    [CmdletBinding()]
    [OutputType([psobject])]
    param (
        [Parameter(Position = 0)]
        [string]
        $ClassName,

        [Parameter(Position = 1)]
        [string]
        $Namespace = 'root/cimv2'
    )

    $reply = Send-HvSimRequest -Request @{ op = 'class'; namespace = $Namespace; class = $ClassName }
    if ($reply.ContainsKey('fault')) {
        Write-HvSimFault -Cmdlet $PSCmdlet -Fault $reply.fault -Target "${Namespace}:$ClassName"
        return
    }
    $definition = $reply.class
    $script:ClassCache[$definition.class] = @{ keys = @($definition.properties | Where-Object { $_.key } | ForEach-Object { $_.name }) }
    $properties = foreach ($property in $definition.properties) {
        $typeName = $script:CimTypeName[$property.type]
        if ($null -eq $typeName) {
            throw "HvSim: the CIM type $($property.type) of $($definition.class).$($property.name) has no CimType"
        }
        if ($property.array) {
            $typeName += 'Array'
        }
        $flags = [Microsoft.Management.Infrastructure.CimFlags]::Property
        if ($property.key) {
            $flags = $flags -bor [Microsoft.Management.Infrastructure.CimFlags]::Key
        }
        $declaration = [PSCustomObject]@{
            Name = $property.name
            CimType = [Microsoft.Management.Infrastructure.CimType]$typeName
            Flags = $flags
            Qualifiers = @()
            ReferenceClassName = $property.reference_class
        }
        $declaration.PSTypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimPropertyDeclaration')
        $declaration
    }
    $class = [PSCustomObject]@{
        CimClassName = $definition.class
        CimSuperClassName = $definition.superclass
        CimClassProperties = @($properties)
        CimClassMethods = @($definition.methods | ForEach-Object { [PSCustomObject]@{ Name = $_ } })
        CimSystemProperties = [PSCustomObject]@{ Namespace = $definition.namespace; ServerName = $null; ClassName = $definition.class; Path = $null }
    }
    $class.PSTypeNames.Insert(0, 'Microsoft.Management.Infrastructure.CimClass')
    $class
}

$aliases = @()
if ($env:HVSIM_PWSH_SLOTS) {
    # Resolved before the Start-Sleep cmdlet by the modules' calls (an alias comes first).
    Set-Alias -Name Start-Sleep -Value Invoke-HvSimSleep
    $aliases = @('Start-Sleep')
}
Export-ModuleMember -Alias $aliases -Function @(
    'Get-CimAssociatedInstance'
    'Get-CimClass'
    'Get-CimInstance'
    'Invoke-CimMethod'
    'Invoke-HvSimSleep'
    'New-CimInstance'
)
