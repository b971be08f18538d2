<#
.SYNOPSIS
Proves statically that PowerShell files run in Windows PowerShell 5.1 on .NET Framework 4.8.

.DESCRIPTION
On Windows, Ansible runs this collection's modules in Windows PowerShell 5.1 on .NET Framework
4.8. The only PowerShell here is 7, which accepts newer syntax and has a newer .NET, so code that
works in every local test can still fail on a host. This check parses each file with PowerShell's
own parser and holds it against the reference assemblies of .NET Framework 4.8 and of PowerShell
Standard 5.1 (loaded into a MetadataLoadContext, so nothing of them runs). It reports:

  [syntax]  syntax newer than 5.1: every AST node type, AST property and operator token kind that
            PowerShell 7 has and the 5.1 reference assembly lacks (ternary, && and ||, ?? and ??=,
            ?. and ?[], clean blocks, trailing &, .Method[T]()), plus what the AST does not show:
            number suffixes and 0b literals, `e and `u{} escapes, a line starting with |, enum
            base types, -replace with a script block, #requires for 6+, and the automatic
            variables of 6+ ($IsWindows and others) that read as $null in 5.1.
  [type]    every .NET type named (type literals, casts and constraints, catch types, attributes,
            generic arguments, New-Object -TypeName) resolves as 5.1 resolves it: its type
            accelerators, the implicit System. prefix, `using namespace`, and only in assemblies
            that 5.1 has loaded (or that the file loads with Add-Type -AssemblyName).
  [static]  [Type]::Member, [Type]::Method(args) and [Type]::new(args) exist on that type
            (inherited static members included) with an overload for that many arguments.
  [method]  instance method calls whose receiver type is known without running the code exist with
            an overload for that many arguments. Known: a literal, a cast, [Type]::new(...), a
            static property or method of known type, a variable all of whose assignments in the
            function are such (or [Type]$x), a typed parameter; see Initialize-Ps51VariableTable.
            A missing method is reported only when the value cannot be of a subclass with more
            methods (Test-Ps51ExactType, Test-Ps51ConstructedValue); other calls count as skipped.
  [static] and [method] also report a call whose argument types are known (literals, casts) when
  PowerShell 7 binds it to an overload that .NET Framework 4.8 lacks, e.g. 'ab'.Contains([char]'a'):
  5.1 then converts the arguments to another overload and may do something else.
  [parse]   the file does not parse at all.

Types of the C# module utils a file requires (#AnsibleRequires -CSharpUtil Ansible.Basic) are
compiled here from their source against the same references, so [Ansible.Basic.AnsibleModule] and
its members are checked too. Roslyn takes about a second for that, so the compiled metadata is kept
in .build/ps51check of the repository (or in $env:PS51CHECK_CACHE) under a hash of its inputs.
Run with -Verbose to see the time each rule takes.

.NOTES
What this check cannot see, and why:
- Commands and their parameters (ConvertFrom-Json -AsHashtable, ForEach-Object -Parallel,
  Get-Content -AsByteStream, Join-String ...): there is no inventory of 5.1's cmdlets here
  (PSScriptAnalyzer's compatibility profiles are not installed), only .NET and the language.
- Same API, other behaviour: default encodings (UTF-8 in 7, ANSI/UTF-16 in 5.1 for Set-Content,
  Out-File, Get-Content), ConvertTo-Json output, culture and ICU details, path handling.
- Instance calls on values of unknown type (most cmdlet output, CIM instances, dictionary
  entries, untyped parameters) and property reads (PowerShell gives $null for a missing one).
- Version-guarded code (if ($PSVersionTable.PSVersion.Major -ge 7) { ... }) is judged like any
  other code: a 7-only call inside such a guard is still reported.
- Type names built at run time ([type]$name, -as 'Name', New-Object -TypeName $variable) and the
  C# inside Add-Type -TypeDefinition (its type names are accepted, its code is not compiled).
- The engine API is PowerShell Standard 5.1, the part of 5.1's System.Management.Automation that
  6+ kept; types only 5.1 had (SystemPolicy, TransactionParameters) and the cmdlet assemblies
  (Microsoft.PowerShell.Commands.*) are reported as unknown: a false alarm, never a miss.
- Microsoft.Management.Infrastructure is checked against pwsh 7's copy (see $MmiAllowList).

.PARAMETER Path
Files to check. Default: every plugins/**/*.ps1 and *.psm1 of the repository this script is in.

.PARAMETER CSharpUtilPath
Folders holding the C# module utils by file name (Ansible.Basic.cs); several folders are separated
by the platform's path separator. Default: ansible-core's module_utils/csharp in the repository's
.venv. The repository's plugins/module_utils is searched in either case.

.PARAMETER ReferencePath
Folder with net48/*.dll, ps51/System.Management.Automation.dll and
System.Reflection.MetadataLoadContext.dll. Default: $env:PWSH_VENDOR_DIR/refs.

.EXAMPLE
pwsh -NoProfile -File tests/hvtest/ps51check.ps1

.EXAMPLE
pwsh -NoProfile -File tests/hvtest/ps51check.ps1 plugins/modules/job_info.ps1

.OUTPUTS
One line per finding, "path:line:column: [rule] message", then one summary line. The exit code is
0 when nothing was found, 1 when something was, 2 when the check itself could not run.
#>
using namespace System.Collections.Generic
using namespace System.Management.Automation.Language
using namespace System.Reflection

[CmdletBinding()]
param (
    [Parameter(Position = 0, ValueFromRemainingArguments)]
    [string[]]
    $Path,

    [string]
    $CSharpUtilPath,

    [string]
    $ReferencePath
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

# ------------------------------------------------------------------ what Windows PowerShell 5.1 knows

# The type accelerators of Windows PowerShell 5.1, as its TypeAccelerators table lists them (the
# PowerShell repository at its July 2016 import of the Windows code, SD/725290, which is 5.1 RTM).
# pwsh 7 has more ([semver], [ordered], [short], [uint], [ulong], [ushort], [IPEndpoint],
# [WildcardPattern], [X509Certificate] ...), so its live table cannot stand in for this one.
$script:Ps51Accelerators = @{
    'Alias' = 'System.Management.Automation.AliasAttribute'
    'AllowEmptyCollection' = 'System.Management.Automation.AllowEmptyCollectionAttribute'
    'AllowEmptyString' = 'System.Management.Automation.AllowEmptyStringAttribute'
    'AllowNull' = 'System.Management.Automation.AllowNullAttribute'
    'ArgumentCompleter' = 'System.Management.Automation.ArgumentCompleterAttribute'
    'array' = 'System.Array'
    'bool' = 'System.Boolean'
    'byte' = 'System.Byte'
    'char' = 'System.Char'
    'CmdletBinding' = 'System.Management.Automation.CmdletBindingAttribute'
    'datetime' = 'System.DateTime'
    'decimal' = 'System.Decimal'
    'double' = 'System.Double'
    'DscResource' = 'System.Management.Automation.DscResourceAttribute'
    'float' = 'System.Single'
    'single' = 'System.Single'
    'guid' = 'System.Guid'
    'hashtable' = 'System.Collections.Hashtable'
    'int' = 'System.Int32'
    'int32' = 'System.Int32'
    'int16' = 'System.Int16'
    'long' = 'System.Int64'
    'int64' = 'System.Int64'
    'ciminstance' = 'Microsoft.Management.Infrastructure.CimInstance'
    'cimclass' = 'Microsoft.Management.Infrastructure.CimClass'
    'cimtype' = 'Microsoft.Management.Infrastructure.CimType'
    'cimconverter' = 'Microsoft.Management.Infrastructure.CimConverter'
    'NullString' = 'System.Management.Automation.Language.NullString'
    'OutputType' = 'System.Management.Automation.OutputTypeAttribute'
    'Parameter' = 'System.Management.Automation.ParameterAttribute'
    'pscredential' = 'System.Management.Automation.PSCredential'
    'PSDefaultValue' = 'System.Management.Automation.PSDefaultValueAttribute'
    'pslistmodifier' = 'System.Management.Automation.PSListModifier'
    'psobject' = 'System.Management.Automation.PSObject'
    'pscustomobject' = 'System.Management.Automation.PSObject'
    'psprimitivedictionary' = 'System.Management.Automation.PSPrimitiveDictionary'
    'ref' = 'System.Management.Automation.PSReference'
    'PSTypeNameAttribute' = 'System.Management.Automation.PSTypeNameAttribute'
    'regex' = 'System.Text.RegularExpressions.Regex'
    'DscProperty' = 'System.Management.Automation.DscPropertyAttribute'
    'sbyte' = 'System.SByte'
    'string' = 'System.String'
    'SupportsWildcards' = 'System.Management.Automation.SupportsWildcardsAttribute'
    'switch' = 'System.Management.Automation.SwitchParameter'
    'cultureinfo' = 'System.Globalization.CultureInfo'
    'bigint' = 'System.Numerics.BigInteger'
    'securestring' = 'System.Security.SecureString'
    'timespan' = 'System.TimeSpan'
    'uint16' = 'System.UInt16'
    'uint32' = 'System.UInt32'
    'uint64' = 'System.UInt64'
    'uri' = 'System.Uri'
    'ValidateCount' = 'System.Management.Automation.ValidateCountAttribute'
    'ValidateDrive' = 'System.Management.Automation.ValidateDriveAttribute'
    'ValidateLength' = 'System.Management.Automation.ValidateLengthAttribute'
    'ValidateNotNull' = 'System.Management.Automation.ValidateNotNullAttribute'
    'ValidateNotNullOrEmpty' = 'System.Management.Automation.ValidateNotNullOrEmptyAttribute'
    'ValidatePattern' = 'System.Management.Automation.ValidatePatternAttribute'
    'ValidateRange' = 'System.Management.Automation.ValidateRangeAttribute'
    'ValidateScript' = 'System.Management.Automation.ValidateScriptAttribute'
    'ValidateSet' = 'System.Management.Automation.ValidateSetAttribute'
    'ValidateUserDrive' = 'System.Management.Automation.ValidateUserDriveAttribute'
    'version' = 'System.Version'
    'void' = 'System.Void'
    'ipaddress' = 'System.Net.IPAddress'
    'DscLocalConfigurationManager' = 'System.Management.Automation.DscLocalConfigurationManagerAttribute'
    'xml' = 'System.Xml.XmlDocument'
    'adsi' = 'System.DirectoryServices.DirectoryEntry'
    'adsisearcher' = 'System.DirectoryServices.DirectorySearcher'
    'wmiclass' = 'System.Management.ManagementClass'
    'wmi' = 'System.Management.ManagementObject'
    'wmisearcher' = 'System.Management.ManagementObjectSearcher'
    'mailaddress' = 'System.Net.Mail.MailAddress'
    'scriptblock' = 'System.Management.Automation.ScriptBlock'
    'psvariable' = 'System.Management.Automation.PSVariable'
    'type' = 'System.Type'
    'psmoduleinfo' = 'System.Management.Automation.PSModuleInfo'
    'powershell' = 'System.Management.Automation.PowerShell'
    'runspacefactory' = 'System.Management.Automation.Runspaces.RunspaceFactory'
    'runspace' = 'System.Management.Automation.Runspaces.Runspace'
    'initialsessionstate' = 'System.Management.Automation.Runspaces.InitialSessionState'
    'psscriptmethod' = 'System.Management.Automation.PSScriptMethod'
    'psscriptproperty' = 'System.Management.Automation.PSScriptProperty'
    'psnoteproperty' = 'System.Management.Automation.PSNoteProperty'
    'psaliasproperty' = 'System.Management.Automation.PSAliasProperty'
    'psvariableproperty' = 'System.Management.Automation.PSVariableProperty'
}

# PowerShell resolves a type name only in assemblies already loaded into the session. These are the
# ones Windows PowerShell 5.1 certainly has before a script's first type literal: resolving any type
# name builds the accelerator table above, whose typeof() entries load System, System.Xml,
# System.Numerics, System.Management, System.DirectoryServices and Microsoft.Management.Infrastructure;
# the engine itself needs mscorlib, System.Core and System.Management.Automation. A type elsewhere
# (System.Web, System.IO.Compression.FileSystem, System.Net.Http, System.Drawing ...) needs
# Add-Type -AssemblyName first; pwsh 7 finds many of those by itself, so only this rule catches it.
$script:Ps51LoadedAssemblies = @(
    'mscorlib', 'System', 'System.Core', 'System.Xml', 'System.Numerics', 'System.Management',
    'System.DirectoryServices', 'System.Management.Automation', 'Microsoft.Management.Infrastructure'
)

# Microsoft.Management.Infrastructure.dll (CIM) is not among the reference assemblies. Its names are
# accepted only from this list: public types of MMI 1.0 as documented for Windows 8 / Server 2012 and
# later, which is what 5.1 loads. New-Ps51MmiIndex proves each one exists in the MMI assembly that ships
# with pwsh 7 ([Microsoft.Management.Infrastructure.CimInstance].Assembly) and takes the members from
# there; the Native namespace of that copy is Linux plumbing and deliberately left out.
$script:MmiAllowList = @(
    'CimClass', 'CimConverter', 'CimException', 'CimFlags', 'CimInstance', 'CimMethodDeclaration',
    'CimMethodParameter', 'CimMethodParameterDeclaration', 'CimMethodParametersCollection',
    'CimMethodResult', 'CimMethodResultBase', 'CimMethodStreamedResult', 'CimProperty',
    'CimPropertyDeclaration', 'CimQualifier', 'CimSession', 'CimSubscriptionDeliveryType',
    'CimSubscriptionResult', 'CimSystemProperties', 'CimType', 'NativeErrorCode',
    'Generic.CimAsyncMultipleResults`1', 'Generic.CimAsyncResult`1', 'Generic.CimAsyncStatus',
    'Generic.CimKeyedCollection`1', 'Generic.CimReadOnlyKeyedCollection`1',
    'Options.CimCredential', 'Options.CimOperationFlags', 'Options.CimOperationOptions',
    'Options.CimSessionOptions', 'Options.DComSessionOptions', 'Options.ImpersonationType',
    'Options.PasswordAuthenticationMechanism', 'Options.ProxyType', 'Options.WSManSessionOptions',
    'Serialization.CimDeserializer', 'Serialization.CimSerializer',
    'Serialization.ClassSerializationOptions', 'Serialization.InstanceSerializationOptions'
) | ForEach-Object { "Microsoft.Management.Infrastructure.$_" }

# Automatic variables that PowerShell 6+ defines and 5.1 does not: there they read as $null, so
# "if ($IsWindows)" is false on every Windows host.
$script:Ps6AutomaticVariables = @(
    'IsWindows', 'IsLinux', 'IsMacOS', 'IsCoreCLR', 'PSStyle', 'EnabledExperimentalFeatures',
    'PSNativeCommandArgumentPassing', 'PSNativeCommandUseErrorActionPreference'
)

# Messages for the syntax that the generic AST comparison finds; the comparison itself decides what
# is new, these only say it in words. Keys: AST type, AST type.property, or TokenKind name.
$script:SyntaxMessages = @{
    'TernaryExpressionAst' = 'ternary operator "a ? b : c" is PowerShell 7.0+; use if/else'
    'PipelineChainAst' = 'pipeline chain operator && / || is PowerShell 7.0+; use if ($?) or try/catch'
    'NullConditional' = 'null-conditional access ?. / ?[] is PowerShell 7.0+; test for $null first'
    'ScriptBlockAst.CleanBlock' = 'clean block is PowerShell 7.3+; use end with try/finally'
    'Clean' = 'clean block is PowerShell 7.3+; use end with try/finally'
    'PipelineAst.Background' = 'background operator & at the end of a pipeline is PowerShell 6.0+; use Start-Job'
    'GenericTypeArguments' = 'generic method type arguments .Method[T]() are PowerShell 7.3+'
    'QuestionQuestion' = 'null-coalescing operator ?? is PowerShell 7.0+; use if ($null -eq $x)'
    'QuestionQuestionEquals' = 'null-coalescing assignment ??= is PowerShell 7.0+; use if ($null -eq $x)'
}

# Instance methods PowerShell itself adds to every object (4.0+); they are on no .NET type.
$script:IntrinsicMethods = @('ForEach', 'Where')

# Answers of Test-Ps51AdaptedType by type: asked for every member access.
$script:AdaptedCache = [System.Collections.Generic.Dictionary[string, bool]]::new()

# ------------------------------------------------------------------ reference assemblies

Function Open-Ps51ReferenceSet {
    <#
    .SYNOPSIS
    Loads the .NET Framework 4.8 and PowerShell Standard 5.1 reference assemblies for inspection.

    .DESCRIPTION
    A MetadataLoadContext reads assemblies without running them, so reference assemblies of another
    runtime can be inspected here. Files among the references that are not assemblies (the native
    EnterpriseServices thunk, a bare module) are skipped: they hold no types a script can name.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ReferencePath
    )

    $loader = Join-Path $ReferencePath 'System.Reflection.MetadataLoadContext.dll'
    $sma = Join-Path $ReferencePath 'ps51/System.Management.Automation.dll'
    foreach ($needed in $loader, $sma, (Join-Path $ReferencePath 'net48/mscorlib.dll')) {
        if (-not (Test-Path -LiteralPath $needed)) {
            throw "reference file $needed is missing (is PWSH_VENDOR_DIR set? run pwsh from /work/shared/tools)"
        }
    }
    Add-Type -LiteralPath $loader
    $paths = @(Get-ChildItem -LiteralPath (Join-Path $ReferencePath 'net48') -Filter '*.dll').FullName + $sma
    $resolver = [PathAssemblyResolver]::new([string[]]$paths)
    $mlc = [MetadataLoadContext]::new($resolver, 'mscorlib')
    $assemblies = [List[Assembly]]::new()
    foreach ($file in $paths) {
        try {
            $assemblies.Add($mlc.LoadFromAssemblyPath($file))
        }
        catch [System.Management.Automation.MethodInvocationException] {
            # A native image (BadImageFormat) or a bare module without an assembly manifest.
            $inner = $_.Exception.InnerException
            if ($inner -isnot [System.BadImageFormatException] -and $inner -isnot [System.InvalidOperationException]) {
                throw
            }
            Write-Verbose "skipped $file ($($inner.Message))"
        }
    }
    @{ Mlc = $mlc; Assemblies = $assemblies; Sma = $mlc.LoadFromAssemblyPath($sma) }
}

Function New-Ps51TypeIndex {
    <#
    .SYNOPSIS
    Returns every public type of the given assemblies by full name, ignoring case as PowerShell does.

    .DESCRIPTION
    MetadataLoadContext cannot look types up ignoring case, so the index is built once. When two
    assemblies define the same name, the one 5.1 loads at start wins (that is the one it would use).
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.Generic.Dictionary[string, type]])]
    param (
        [Parameter(Mandatory)]
        [Assembly[]]
        $Assembly
    )

    $index = [Dictionary[string, type]]::new([StringComparer]::OrdinalIgnoreCase)
    $first = @($Assembly | Where-Object { $_.GetName().Name -in $script:Ps51LoadedAssemblies })
    $ordered = $first + @($Assembly | Where-Object { $_.GetName().Name -notin $script:Ps51LoadedAssemblies })
    foreach ($item in $ordered) {
        # Exported types are the public ones a script can name, nested public ones included.
        foreach ($type in $item.GetExportedTypes()) {
            if (-not $index.ContainsKey($type.FullName)) {
                $index[$type.FullName] = $type
            }
        }
    }
    , $index
}

Function New-Ps51MmiIndex {
    <#
    .SYNOPSIS
    Returns the allow-listed Microsoft.Management.Infrastructure types, taken from pwsh 7's copy.

    .DESCRIPTION
    Throws when an allow-listed name is missing from that assembly: the list would then accept a
    name that exists nowhere.
    #>
    [CmdletBinding()]
    [OutputType([System.Collections.Generic.Dictionary[string, type]])]
    param ()

    $mmi = [Microsoft.Management.Infrastructure.CimInstance].Assembly
    $index = [Dictionary[string, type]]::new([StringComparer]::OrdinalIgnoreCase)
    foreach ($name in $script:MmiAllowList) {
        $type = $mmi.GetType($name, $false, $true)
        if ($null -eq $type) {
            throw "allow-listed type $name is not in $($mmi.FullName)"
        }
        $index[$name] = $type
    }
    , $index
}

Function Get-Ps7OnlySyntaxShape {
    <#
    .SYNOPSIS
    Returns the AST types, AST properties and token kinds that pwsh 7 has and PowerShell 5.1 lacks.

    .DESCRIPTION
    Computed, not listed: the parser of this pwsh is compared with the PowerShell Standard 5.1
    reference assembly, so syntax added by a later pwsh is caught without editing this file.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [Assembly]
        $Sma
    )

    $languageNamespace = 'System.Management.Automation.Language'
    $reference = @{}
    foreach ($type in $Sma.GetTypes()) {
        if ($type.IsPublic -and $type.Namespace -eq $languageNamespace) {
            $reference[$type.Name] = $type
        }
    }
    $newTypes = [HashSet[string]]::new()
    $newProperties = @{}
    $tokenKindProperties = @{}
    foreach ($type in [Ast].Assembly.GetTypes()) {
        if (-not ($type.IsPublic -and [Ast].IsAssignableFrom($type))) {
            continue
        }
        if (-not $reference.ContainsKey($type.Name)) {
            $null = $newTypes.Add($type.Name)
            continue
        }
        $known = @($reference[$type.Name].GetProperties().Name)
        # .Where() rather than Where-Object: this runs for every AST type and the pipeline is slow.
        $newProperties[$type.Name] = @($type.GetProperties().Where({ $_.Name -notin $known }))
        $tokenKindProperties[$type.Name] = @($type.GetProperties().Where({ $_.PropertyType -eq [TokenKind] }))
    }
    $knownKinds = @($reference['TokenKind'].GetFields().Where({ $_.IsStatic }).ForEach({ $_.Name }))
    $newKinds = [HashSet[string]]::new([string[]]@([enum]::GetNames([TokenKind]).Where({ $_ -notin $knownKinds })))
    @{ Types = $newTypes; Properties = $newProperties; TokenKindProperties = $tokenKindProperties; TokenKinds = $newKinds }
}

Function New-Ps51Context {
    <#
    .SYNOPSIS
    Returns everything the rules consult: the references, indexes, caches and counters.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $ReferencePath
    )

    $refs = Open-Ps51ReferenceSet -ReferencePath $ReferencePath
    $accelerators = [Dictionary[string, string]]::new([StringComparer]::OrdinalIgnoreCase)
    foreach ($entry in $script:Ps51Accelerators.GetEnumerator()) {
        $accelerators[$entry.Key] = $entry.Value
    }
    @{
        Mlc = $refs.Mlc
        Core = $refs.Mlc.CoreAssembly
        Types = New-Ps51TypeIndex -Assembly $refs.Assemblies
        Mmi = New-Ps51MmiIndex
        Accelerators = $accelerators
        # pwsh 7's own table, only to explain why a name that works there fails in 5.1
        Ps7Accelerators = [psobject].Assembly.GetType('System.Management.Automation.TypeAccelerators')::Get
        Syntax = Get-Ps7OnlySyntaxShape -Sma $refs.Sma
        UtilTypes = [Dictionary[string, object]]::new([StringComparer]::OrdinalIgnoreCase)
        UtilAccelerators = [Dictionary[string, object]]::new([StringComparer]::OrdinalIgnoreCase)
        UtilProblems = @{}
        UtilUses = @{}
        TypeCache = @{}
        AttributeCache = @{}
        MemberTypes = @{}
        Overloads = [Dictionary[string, object]]::new()
        VariableTables = [Dictionary[Ast, object]]::new()
        TypedSources = [HashSet[string]]::new()
        VariablesInProgress = [HashSet[string]]::new()
        Subclassed = $null
        Stats = @{
            TypeReferences = 0
            DistinctTypes = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
            StaticMembers = 0
            InstanceCalls = 0
            InstanceSkipped = 0
            Attributes = 0
        }
    }
}

# ------------------------------------------------------------------ sources and their requirements

Function Get-Ps51Requirement {
    <#
    .SYNOPSIS
    Returns the C# utils a file needs, following its #AnsibleRequires -PowerShell utils in this repo.

    .DESCRIPTION
    Ansible compiles a util's C# requirements before importing it, so a type of Ansible.Basic is
    loaded for a file when the file or any collection util it requires (transitively) asks for it.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Text,

        [string]
        $RepoRoot
    )

    $utils = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
    $seen = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
    $pending = [Queue[string]]::new()
    $pending.Enqueue($Text)
    while ($pending.Count -gt 0) {
        $current = $pending.Dequeue()
        foreach ($match in [regex]::Matches($current, '(?im)^#AnsibleRequires\s+-CSharpUtil\s+(\S+)')) {
            $null = $utils.Add($match.Groups[1].Value)
        }
        foreach ($match in [regex]::Matches($current, '(?im)^#AnsibleRequires\s+-PowerShell\s+ansible_collections\.\w+\.\w+\.plugins\.module_utils\.(\w+)')) {
            $name = $match.Groups[1].Value
            $file = if ($RepoRoot) { Join-Path $RepoRoot "plugins/module_utils/$name.psm1" }
            if ($file -and $seen.Add($name) -and (Test-Path -LiteralPath $file)) {
                $pending.Enqueue((Get-Content -LiteralPath $file -Raw))
            }
        }
    }
    [string[]]@($utils)
}

Function Get-Ps51LoadedAssemblyName {
    <#
    .SYNOPSIS
    Returns the assemblies a file loads itself: Add-Type -AssemblyName, using assembly, Assembly.Load*.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        # The file's nodes by AST type name.
        [Parameter(Mandatory)]
        [System.Collections.Generic.Dictionary[string, System.Collections.Generic.List[System.Management.Automation.Language.Ast]]]
        $Nodes
    )

    $candidates = foreach ($name in 'UsingStatementAst', 'CommandAst', 'InvokeMemberExpressionAst') {
        if ($Nodes.ContainsKey($name)) { $Nodes[$name] }
    }
    $names = foreach ($node in $candidates) {
        if ($node -is [UsingStatementAst] -and $node.UsingStatementKind -eq 'Assembly') {
            [System.IO.Path]::GetFileNameWithoutExtension($node.Name.Value)
        }
        elseif ($node -is [CommandAst] -and $node.GetCommandName() -eq 'Add-Type') {
            $take = $false
            foreach ($element in $node.CommandElements) {
                if ($element -is [CommandParameterAst]) {
                    $take = 'AssemblyName'.StartsWith($element.ParameterName, 'OrdinalIgnoreCase') -and $element.ParameterName.Length -ge 2
                    if ($take -and $element.Argument) {
                        $element.Argument.FindAll({ $args[0] -is [StringConstantExpressionAst] }, $false) | ForEach-Object { $_.Value }
                    }
                }
                elseif ($take) {
                    $element.FindAll({ $args[0] -is [StringConstantExpressionAst] }, $false) | ForEach-Object { $_.Value }
                    $take = $false
                }
            }
        }
        elseif ($node -is [InvokeMemberExpressionAst] -and $node.Static -and $node.Member.Extent.Text -match '^Load(WithPartialName)?$' -and
            $node.Expression.TypeName.FullName -match '^(System\.)?Reflection\.Assembly$' -and $node.Arguments -and $node.Arguments.Count -eq 1 -and
            $node.Arguments[0] -is [StringConstantExpressionAst]) {
            $node.Arguments[0].Value
        }
    }
    [string[]]@($names | ForEach-Object { ($_ -split ',')[0].Trim() -replace '\.dll$', '' })
}

Function Get-Ps51InlineTypeName {
    <#
    .SYNOPSIS
    Returns the full names of the types a file makes with Add-Type from C# text it holds.

    .DESCRIPTION
    Add-Type -TypeDefinition (or Ansible's Add-CSharpType) compiles C# at run time, so its types
    exist for the script although no reference assembly has them. Every string of the file that
    looks like C# declarations is parsed (not compiled) with Roslyn, and Add-Type -MemberDefinition
    -Name X -Namespace Y adds Y.X. These names are then accepted like classes of the script; their
    members are not checked, nor is the C# itself held against .NET Framework 4.8.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [Parameter(Mandatory)]
        [System.Collections.Generic.Dictionary[string, System.Collections.Generic.List[System.Management.Automation.Language.Ast]]]
        $Nodes
    )

    $commands = @(if ($Nodes.ContainsKey('CommandAst')) { $Nodes['CommandAst'] | Where-Object { $_.GetCommandName() -in 'Add-Type', 'Add-CSharpType' } })
    if (-not $commands) {
        return
    }
    foreach ($command in $commands) {
        # Add-Type -MemberDefinition '...' -Name X [-Namespace Y]
        $bound = @{}
        $elements = @($command.CommandElements)
        for ($i = 1; $i -lt $elements.Count - 1; $i++) {
            if ($elements[$i] -is [CommandParameterAst] -and $elements[$i + 1] -is [StringConstantExpressionAst]) {
                $bound[$elements[$i].ParameterName] = $elements[$i + 1].Value
            }
        }
        if ($bound.ContainsKey('Name') -and $bound.ContainsKey('MemberDefinition')) {
            $namespace = if ($bound.ContainsKey('Namespace')) { $bound['Namespace'] } else { 'Microsoft.PowerShell.Commands.AddType.AutoGeneratedTypes' }
            "$namespace.$($bound['Name'])"
        }
    }
    $texts = foreach ($name in 'StringConstantExpressionAst', 'ExpandableStringExpressionAst') {
        if ($Nodes.ContainsKey($name)) {
            $Nodes[$name] | Where-Object { $_.Value -match '\b(class|struct|enum|interface)\s+\w+[^{;]*\{' } | ForEach-Object { $_.Value }
        }
    }
    foreach ($text in $texts) {
        $root = [Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree]::ParseText($text).GetRoot()
        foreach ($declaration in $root.DescendantNodes()) {
            if ($declaration -isnot [Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeDeclarationSyntax] -and
                $declaration -isnot [Microsoft.CodeAnalysis.CSharp.Syntax.DelegateDeclarationSyntax]) {
                continue
            }
            # Nested types join with +, namespaces with . (as reflection names them).
            $name = $declaration.Identifier.ValueText
            for ($parent = $declaration.Parent; $parent; $parent = $parent.Parent) {
                if ($parent -is [Microsoft.CodeAnalysis.CSharp.Syntax.BaseTypeDeclarationSyntax]) {
                    $name = "$($parent.Identifier.ValueText)+$name"
                }
                elseif ($parent -is [Microsoft.CodeAnalysis.CSharp.Syntax.BaseNamespaceDeclarationSyntax]) {
                    $name = "$($parent.Name).$name"
                }
            }
            $name
        }
    }
}

Function Read-Ps51Source {
    <#
    .SYNOPSIS
    Parses a file and gathers what the rules need to know about it.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [Parameter(Mandatory)]
        [string]
        $FullName,

        # The path as findings show it.
        [Parameter(Mandatory)]
        [string]
        $Display,

        [string]
        $RepoRoot
    )

    $tokens = $null
    $errors = $null
    $ast = [Parser]::ParseFile($FullName, [ref]$tokens, [ref]$errors)
    $byType = [Dictionary[string, List[Ast]]]::new()
    foreach ($node in $ast.FindAll({ $true }, $true)) {
        $name = $node.GetType().Name
        if (-not $byType.ContainsKey($name)) { $byType[$name] = [List[Ast]]::new() }
        $byType[$name].Add($node)
    }
    $namespaces = foreach ($using in Get-Ps51Node -Nodes $byType -Type UsingStatementAst) {
        if ($using.UsingStatementKind -eq 'Namespace') { $using.Name.Value }
    }
    # Classes and enums of the script, and types it compiles from C# with Add-Type.
    $defined = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
    foreach ($type in Get-Ps51Node -Nodes $byType -Type TypeDefinitionAst) {
        $null = $defined.Add($type.Name)
    }
    foreach ($name in Get-Ps51InlineTypeName -Nodes $byType) {
        $null = $defined.Add($name)
    }
    $loaded = [HashSet[string]]::new([string[]]$script:Ps51LoadedAssemblies, [StringComparer]::OrdinalIgnoreCase)
    foreach ($name in Get-Ps51LoadedAssemblyName -Nodes $byType) {
        $null = $loaded.Add($name)
    }
    [pscustomobject]@{
        FullName = $FullName
        Display = $Display
        Ast = $ast
        # Every node once, by AST type name: each rule visits only the kinds it judges.
        Nodes = $byType
        Tokens = $tokens
        Errors = $errors
        Namespaces = [string[]](@($namespaces) + 'System')
        DefinedTypes = $defined
        LoadedAssemblies = $loaded
        CSharpUtils = Get-Ps51Requirement -Text $ast.Extent.Text -RepoRoot $RepoRoot
    }
}

Function Get-Ps51Node {
    <#
    .SYNOPSIS
    Returns the nodes of a file that are of the given AST types (exact type names).
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.Language.Ast])]
    param (
        # A file's nodes by AST type name (Read-Ps51Source).
        [Parameter(Mandatory)]
        [System.Collections.Generic.Dictionary[string, System.Collections.Generic.List[System.Management.Automation.Language.Ast]]]
        $Nodes,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [string[]]
        $Type
    )

    foreach ($name in $Type) {
        if ($Nodes.ContainsKey($name)) {
            $Nodes[$name]
        }
    }
}

# ------------------------------------------------------------------ C# module utils

Function Find-Ps51CSharpUtilSource {
    <#
    .SYNOPSIS
    Returns, by util name, the source file (or $null) and the utils it uses, for the named C# utils
    and every util they use.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string[]]
        $Name,

        [string[]]
        $SearchPath
    )

    $found = @{}
    $pending = [Queue[string]]::new([string[]]$Name)
    while ($pending.Count -gt 0) {
        $util = $pending.Dequeue()
        if ($found.ContainsKey($util)) {
            continue
        }
        # ansible_collections.ns.coll.plugins.module_utils.X is X.cs; Ansible.Basic is Ansible.Basic.cs
        $fileName = ($util -replace '^ansible_collections\.\w+\.\w+\.plugins\.module_utils\.', '') + '.cs'
        $file = $SearchPath | ForEach-Object { Join-Path $_ $fileName } | Where-Object { Test-Path -LiteralPath $_ } | Select-Object -First 1
        $uses = @()
        if ($file) {
            # A util that uses another (using Ansible.Process;) is compiled together with it, as Ansible does.
            $pattern = '(?m)^using\s+((?:Ansible\.\w+)|(?:ansible_collections\.[\w.]+));'
            $uses = foreach ($match in [regex]::Matches((Get-Content -LiteralPath $file -Raw), $pattern)) { $match.Groups[1].Value }
            foreach ($used in $uses) {
                $pending.Enqueue($used)
            }
        }
        $found[$util] = @{ File = $file; Uses = $uses }
    }
    $found
}

Function Get-Ps51CSharpCompileInput {
    <#
    .SYNOPSIS
    Returns what compiling the C# utils takes: their texts, the references and whether unsafe code is allowed.

    .DESCRIPTION
    Mirrors Ansible's Add-CSharpType on Windows PowerShell: references mscorlib, System, System.Core,
    System.Management.Automation and each //AssemblyReference -Name/-Type of the Framework CLR;
    //AllowUnsafe allows unsafe code.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string[]]
        $File,

        [Parameter(Mandatory)]
        [string]
        $ReferencePath,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $references = [List[string]]::new()
    foreach ($assembly in 'mscorlib', 'System', 'System.Core') {
        $references.Add((Join-Path $ReferencePath "net48/$assembly.dll"))
    }
    $references.Add((Join-Path $ReferencePath 'ps51/System.Management.Automation.dll'))
    $texts = [ordered]@{}
    $unsafe = $false
    foreach ($item in $File) {
        $text = Get-Content -LiteralPath $item -Raw
        $texts[$item] = $text
        foreach ($match in [regex]::Matches($text, '(?m)^//AssemblyReference\s+-(?<kind>Name|Type)\s+(?<name>\S+)(?:\s+-CLR\s+(?<clr>\w+))?')) {
            if ($match.Groups['clr'].Success -and $match.Groups['clr'].Value -ne 'Framework') {
                continue
            }
            $assembly = if ($match.Groups['kind'].Value -eq 'Type') {
                $type = $null
                if ($Context.Types.TryGetValue($match.Groups['name'].Value, [ref]$type)) { $type.Assembly.GetName().Name }
            }
            else {
                $match.Groups['name'].Value -replace '\.dll$', ''
            }
            $path = if ($assembly) { Join-Path $ReferencePath "net48/$assembly.dll" }
            if ($path -and $path -notin $references -and (Test-Path -LiteralPath $path)) {
                $references.Add($path)
            }
        }
        if ($text -match '(?m)^//AllowUnsafe\b') {
            $unsafe = $true
        }
    }
    @{ Texts = $texts; References = $references; Unsafe = $unsafe }
}

Function Invoke-Ps51CSharpCompile {
    <#
    .SYNOPSIS
    Compiles C# utils against the 4.8 references to the metadata of one assembly; returns its bytes
    or, when it does not compile, the first error.

    .DESCRIPTION
    Symbol WINDOWS and not CORECLR, as Ansible compiles for Windows PowerShell. Only metadata is
    emitted: types and signatures are what a script can touch. Roslyn takes about a second here, so
    the result is kept in CacheFolder under a hash of everything that goes into it.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $CompileInput,

        [string]
        $CacheFolder
    )

    $key = [System.Text.StringBuilder]::new('ps51check C# utils v1|WINDOWS')
    $null = $key.Append("|unsafe=$($CompileInput.Unsafe)")
    foreach ($reference in $CompileInput.References) {
        $null = $key.Append("|$([System.IO.Path]::GetFileName($reference))=$((Get-Item -LiteralPath $reference).Length)")
    }
    foreach ($entry in $CompileInput.Texts.GetEnumerator()) {
        $null = $key.Append("|$($entry.Key)|$($entry.Value)")
    }
    $hash = [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData([System.Text.Encoding]::UTF8.GetBytes($key.ToString())))
    $cached = if ($CacheFolder) { Join-Path $CacheFolder "csharp-utils-$hash.dll" }
    if ($cached -and (Test-Path -LiteralPath $cached)) {
        return , [System.IO.File]::ReadAllBytes($cached)
    }
    $parseOptions = [Microsoft.CodeAnalysis.CSharp.CSharpParseOptions]::Default.WithPreprocessorSymbols([string[]]@('WINDOWS'))
    $trees = foreach ($entry in $CompileInput.Texts.GetEnumerator()) {
        [Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree]::ParseText($entry.Value, $parseOptions, $entry.Key)
    }
    $metadata = foreach ($reference in $CompileInput.References) { [Microsoft.CodeAnalysis.MetadataReference]::CreateFromFile($reference) }
    $options = [Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions]::new([Microsoft.CodeAnalysis.OutputKind]::DynamicallyLinkedLibrary)
    $options = $options.WithAllowUnsafe($CompileInput.Unsafe)
    $compilation = [Microsoft.CodeAnalysis.CSharp.CSharpCompilation]::Create(
        'Ps51CheckCSharpUtils', [Microsoft.CodeAnalysis.SyntaxTree[]]@($trees), [Microsoft.CodeAnalysis.MetadataReference[]]@($metadata), $options)
    $stream = [System.IO.MemoryStream]::new()
    $emit = [Microsoft.CodeAnalysis.Emit.EmitOptions]::new().WithEmitMetadataOnly($true)
    $result = $compilation.Emit($stream, $null, $null, $null, $null, $emit)
    if (-not $result.Success) {
        return [string]($result.Diagnostics | Where-Object { $_.Severity -eq 'Error' } | Select-Object -First 1)
    }
    $bytes = $stream.ToArray()
    if ($cached) {
        try {
            $null = New-Item -ItemType Directory -Path $CacheFolder -Force
            # Written aside and moved, so that a run in parallel never reads half a file.
            $partial = "$cached.$PID.tmp"
            [System.IO.File]::WriteAllBytes($partial, $bytes)
            Move-Item -LiteralPath $partial -Destination $cached -Force
        }
        catch {
            Write-Verbose "C# utils not cached in ${CacheFolder}: $($_.Exception.Message)"
        }
    }
    , $bytes
}

Function Import-Ps51CSharpUtil {
    <#
    .SYNOPSIS
    Compiles the named C# module utils against the 4.8 references and adds their public types to the context.

    .DESCRIPTION
    A util that cannot be found or compiled is noted in UtilProblems: every name of it is then a
    finding, so the check never passes code it could not see. //TypeAccelerator lines add accelerators
    as Ansible does.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Context,

        [Parameter(Mandatory)]
        [string[]]
        $Name,

        [string[]]
        $SearchPath,

        [Parameter(Mandatory)]
        [string]
        $ReferencePath,

        [string]
        $CacheFolder
    )

    $sources = Find-Ps51CSharpUtilSource -Name $Name -SearchPath $SearchPath
    foreach ($util in $sources.Keys) {
        $Context.UtilUses[$util] = $sources[$util].Uses
        if (-not $sources[$util].File) {
            $Context.UtilProblems[$util] = "source $util.cs not found in $($SearchPath -join ', ') (pass -CSharpUtilPath)"
        }
    }
    $files = @($sources.Values | Where-Object { $_.File } | ForEach-Object { $_.File })
    if (-not $files) {
        return
    }
    $compileInput = Get-Ps51CSharpCompileInput -File $files -ReferencePath $ReferencePath -Context $Context
    foreach ($entry in $compileInput.Texts.GetEnumerator()) {
        foreach ($match in [regex]::Matches($entry.Value, '(?m)^//TypeAccelerator\s+-Name\s+(\S+)\s+-TypeName\s+(\S+)')) {
            $Context.UtilAccelerators[$match.Groups[1].Value] = @{ TypeName = $match.Groups[2].Value; File = $entry.Key }
        }
    }
    $compiled = Invoke-Ps51CSharpCompile -CompileInput $compileInput -CacheFolder $CacheFolder
    if ($compiled -is [string]) {
        foreach ($util in $sources.Keys) {
            $Context.UtilProblems[$util] = "C# util $util does not compile against .NET Framework 4.8: $compiled"
        }
        return
    }
    $assembly = $Context.Mlc.LoadFromByteArray([byte[]]$compiled)
    foreach ($type in $assembly.GetExportedTypes()) {
        # The util a type belongs to: the one named like its namespace, else the one declaring it.
        $util = $sources.Keys | Where-Object { $sources[$_].File -and $type.FullName.StartsWith("$_.", 'OrdinalIgnoreCase') } | Select-Object -First 1
        if (-not $util) {
            $util = $sources.Keys | Where-Object {
                $sources[$_].File -and $compileInput.Texts[$sources[$_].File] -match "\bnamespace\s+$([regex]::Escape($type.Namespace))\b"
            } | Select-Object -First 1
        }
        $Context.UtilTypes[$type.FullName] = @{ Type = $type; Util = $util }
    }
}

# ------------------------------------------------------------------ findings

Function New-Ps51Finding {
    <#
    .SYNOPSIS
    Returns one finding at the start of the given extent.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [IScriptExtent]
        $Extent,

        [Parameter(Mandatory)]
        [ValidateSet('parse', 'syntax', 'type', 'static', 'method')]
        [string]
        $Rule,

        [Parameter(Mandatory)]
        [string]
        $Message
    )

    [pscustomobject]@{
        Path = $Source.Display
        Line = $Extent.StartLineNumber
        Column = $Extent.StartColumnNumber
        Rule = $Rule
        Message = $Message
    }
}

Function Format-Ps51Snippet {
    <#
    .SYNOPSIS
    Returns the first line of an extent's text, shortened, for a message.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [IScriptExtent]
        $Extent
    )

    $text = ($Extent.Text -split "`r?`n")[0].Trim()
    if ($text.Length -gt 60) {
        $text = $text.Substring(0, 57) + '...'
    }
    $text
}

# ------------------------------------------------------------------ rule: syntax

Function Find-Ps51ParseError {
    <#
    .SYNOPSIS
    Reports what pwsh 7 itself cannot parse; 5.1 accepts less, so it cannot parse it either.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source
    )

    foreach ($parseError in $Source.Errors) {
        New-Ps51Finding -Source $Source -Extent $parseError.Extent -Rule parse -Message $parseError.Message
    }
}

Function Find-Ps51NewAstSyntax {
    <#
    .SYNOPSIS
    Reports AST nodes, properties and operators that exist only in PowerShell 6+.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $shape = $Context.Syntax
    $interesting = $Source.Nodes.Keys | Where-Object {
        $shape.Types.Contains($_) -or $shape.Properties[$_] -or $shape.TokenKindProperties[$_]
    }
    foreach ($node in Get-Ps51Node -Nodes $Source.Nodes -Type $interesting) {
        $typeName = $node.GetType().Name
        $newProperties = $shape.Properties[$typeName]
        $kindProperties = $shape.TokenKindProperties[$typeName]
        if ($shape.Types.Contains($typeName)) {
            $message = $script:SyntaxMessages[$typeName]
            if (-not $message) { $message = "$typeName is syntax of PowerShell 6+; Windows PowerShell 5.1 has no such node" }
            New-Ps51Finding -Source $Source -Extent $node.Extent -Rule syntax -Message "$message ($(Format-Ps51Snippet -Extent $node.Extent))"
            continue
        }
        foreach ($property in $newProperties) {
            $value = $property.GetValue($node)
            # A property 5.1 lacks matters only when this node uses it (true, set, non-empty).
            if ($value -and -not ($value -is [System.Collections.ICollection] -and $value.Count -eq 0)) {
                $message = $script:SyntaxMessages["$typeName.$($property.Name)"]
                if (-not $message) { $message = $script:SyntaxMessages[$property.Name] }
                if (-not $message) { $message = "$typeName.$($property.Name) is syntax of PowerShell 6+, not of Windows PowerShell 5.1" }
                # A new part of the tree (the clean block) is shown where it is, not where its parent starts.
                $at = if ($value -is [Ast]) { $value.Extent } else { $node.Extent }
                New-Ps51Finding -Source $Source -Extent $at -Rule syntax -Message "$message ($(Format-Ps51Snippet -Extent $at))"
            }
        }
        foreach ($property in $kindProperties) {
            $kind = [string]$property.GetValue($node)
            if ($shape.TokenKinds.Contains($kind)) {
                $message = $script:SyntaxMessages[$kind]
                if (-not $message) { $message = "operator $kind is PowerShell 6+, not Windows PowerShell 5.1" }
                # ErrorPosition is the operator itself for binary expressions and assignments.
                $at = if ($node -is [BinaryExpressionAst] -or $node -is [AssignmentStatementAst]) { $node.ErrorPosition } else { $node.Extent }
                New-Ps51Finding -Source $Source -Extent $at -Rule syntax -Message "$message ($(Format-Ps51Snippet -Extent $node.Extent))"
            }
        }
    }
}

Function Find-Ps51NewTokenSyntax {
    <#
    .SYNOPSIS
    Reports new syntax that the AST hides: number literal forms, string escapes, a leading pipe.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source
    )

    $previous = $null
    foreach ($token in $Source.Tokens) {
        if ($token -is [NumberToken]) {
            # 5.1 knows decimal and 0x literals with the suffixes l and d and a kb..pb multiplier;
            # 6.2+ added u, ul, us, uy, y, s, n and 7.0 added 0b binary literals.
            $body = $token.Text -replace '(?i)(kb|mb|gb|tb|pb)$', '' -replace '^[+-]', ''
            $hex = $body -match '(?i)^0x[0-9a-f]+(?<s>[a-z]*)$'
            $decimal = -not $hex -and $body -match '(?i)^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?(?<s>[a-z]*)$'
            if (-not ($hex -or $decimal) -or $Matches['s'] -notin '', 'l', 'd') {
                $message = "number literal $($token.Text) uses a form of PowerShell 6.2+/7 (suffix u/y/s/n or 0b); 5.1 knows only l, d and 0x"
                New-Ps51Finding -Source $Source -Extent $token.Extent -Rule syntax -Message $message
            }
        }
        elseif ($token.Kind -in 'StringExpandable', 'HereStringExpandable') {
            $text = $token.Text
            for ($i = 0; $i -lt $text.Length - 1; $i++) {
                if ($text[$i] -ne '`') {
                    continue
                }
                $next = $text[$i + 1]
                if ($next -ceq 'e' -or ($next -ceq 'u' -and $i + 2 -lt $text.Length -and $text[$i + 2] -eq '{')) {
                    $message = "escape ``$next in a string is PowerShell 6.0+; 5.1 reads it as the letter $next (use [char]0x1b or [char]0x...)"
                    New-Ps51Finding -Source $Source -Extent $token.Extent -Rule syntax -Message $message
                }
                $i++
            }
        }
        elseif ($token.Kind -eq 'Pipe' -and $previous -and $previous.Kind -eq 'NewLine') {
            $message = 'a line starting with | (continuing the pipeline of the line before) is PowerShell 7.0+; end the previous line with | instead'
            New-Ps51Finding -Source $Source -Extent $token.Extent -Rule syntax -Message $message
        }
        if ($token.Kind -ne 'Comment') {
            $previous = $token
        }
    }
}

Function Find-Ps51SemanticChange {
    <#
    .SYNOPSIS
    Reports code that parses in 5.1 but means something else there, and #requires for 6+.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source
    )

    $ast = $Source.Ast
    $requirements = $ast.ScriptRequirements
    if ($requirements) {
        $line = $Source.Tokens | Where-Object { $_.Kind -eq 'Comment' -and $_.Text -match '^#requires\b' } | Select-Object -First 1
        $extent = if ($line) { $line.Extent } else { $ast.Extent }
        if ($requirements.RequiredPSVersion -and $requirements.RequiredPSVersion -gt [version]'5.1') {
            $message = "#requires -Version $($requirements.RequiredPSVersion) refuses Windows PowerShell 5.1"
            New-Ps51Finding -Source $Source -Extent $extent -Rule syntax -Message $message
        }
        if ($requirements.RequiredPSEditions -and 'Desktop' -notin $requirements.RequiredPSEditions) {
            $message = "#requires -PSEdition $($requirements.RequiredPSEditions -join ',') refuses Windows PowerShell 5.1 (edition Desktop)"
            New-Ps51Finding -Source $Source -Extent $extent -Rule syntax -Message $message
        }
    }
    $newVariables = '^(?:(?:global|script|local):)?(?:{0})$' -f ($script:Ps6AutomaticVariables -join '|')
    $assigned = $null
    foreach ($node in Get-Ps51Node -Nodes $Source.Nodes -Type VariableExpressionAst, BinaryExpressionAst, TypeDefinitionAst) {
        if ($node -is [VariableExpressionAst] -and $node.VariablePath.UserPath -match $newVariables -and $null -eq $assigned) {
            # A script may set such a variable itself (a polyfill); then reading it is fine.
            $assigned = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
            foreach ($assignment in Get-Ps51Node -Nodes $Source.Nodes -Type AssignmentStatementAst) {
                foreach ($variable in $assignment.Left.FindAll({ $args[0] -is [VariableExpressionAst] }, $true)) {
                    $null = $assigned.Add((Get-Ps51VariableName $variable.VariablePath))
                }
            }
        }
        if ($node -is [VariableExpressionAst] -and $node.VariablePath.UserPath -match $newVariables -and
            -not $assigned.Contains((Get-Ps51VariableName $node.VariablePath))) {
            $message = @(
                "`$$(Get-Ps51VariableName $node.VariablePath) is an automatic variable of PowerShell 6+; "
                'Windows PowerShell 5.1 does not set it (it reads as $null)'
            ) -join ''
            New-Ps51Finding -Source $Source -Extent $node.Extent -Rule syntax -Message $message
        }
        elseif ($node -is [BinaryExpressionAst] -and $node.Operator -in 'Ireplace', 'Creplace' -and $node.Right -is [ArrayLiteralAst] -and
            @($node.Right.Elements).Count -eq 2 -and $node.Right.Elements[1] -is [ScriptBlockExpressionAst]) {
            $message = @(
                '-replace with a script block substitution is PowerShell 6.1+; '
                '5.1 inserts the script block''s text (use [regex]::Replace with a MatchEvaluator)'
            ) -join ''
            New-Ps51Finding -Source $Source -Extent $node.ErrorPosition -Rule syntax -Message $message
        }
        elseif ($node -is [TypeDefinitionAst] -and $node.IsEnum -and @($node.BaseTypes).Count -gt 0) {
            $message = "enum $($node.Name) with an underlying type (enum X : T) is PowerShell 6.2+"
            New-Ps51Finding -Source $Source -Extent $node.Extent -Rule syntax -Message $message
        }
    }
}

# ------------------------------------------------------------------ rule: types

Function Find-Ps51IndexedType {
    <#
    .SYNOPSIS
    Looks one full type name up in the references, the MMI allow-list and the compiled C# utils.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $FullName,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $type = $null
    if ($Context.Types.TryGetValue($FullName, [ref]$type)) {
        return @{ Type = $type; Origin = 'ref' }
    }
    if ($Context.Mmi.TryGetValue($FullName, [ref]$type)) {
        return @{ Type = $type; Origin = 'mmi' }
    }
    $util = $null
    if ($Context.UtilTypes.TryGetValue($FullName, [ref]$util)) {
        return @{ Type = $util.Type; Origin = 'csharp'; Util = $util.Util }
    }
    $null
}

Function Resolve-Ps51NamedType {
    <#
    .SYNOPSIS
    Resolves a plain type name as Windows PowerShell 5.1 does, and says why it does not when it fails.

    .DESCRIPTION
    Order as in PowerShell's TypeResolver: a class or enum of the script, a type accelerator, the
    name itself, then the name under each `using namespace` and under System. An attribute may omit
    "Attribute"; a generic definition is found by its arity (List`1). Returns @{ Type; Origin;
    Problem }, Problem being $null when the type is usable in this file.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Name,

        [int]
        $Arity,

        [switch]
        $Attribute,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $candidates = @($Name)
    if ($Arity -gt 0 -and $Name -notmatch '`') {
        $candidates = @("$Name``$Arity")
    }
    if ($Attribute -and $Name -notmatch 'Attribute$') {
        $candidates += "${Name}Attribute"
    }
    $hit = $null
    $prefixes = @('') + @($Source.Namespaces.ForEach({ "$_." }))
    foreach ($candidate in $candidates) {
        foreach ($prefix in $prefixes) {
            if ($Source.DefinedTypes.Contains("$prefix$candidate")) {
                return @{ Type = $null; Origin = 'script'; Problem = $null }
            }
        }
        $accelerated = $null
        if ($Arity -eq 0 -and $Context.Accelerators.TryGetValue($candidate, [ref]$accelerated)) {
            $hit = Find-Ps51IndexedType -FullName $accelerated -Context $Context
        }
        elseif ($Arity -eq 0 -and $Context.UtilAccelerators.ContainsKey($candidate)) {
            $hit = Find-Ps51IndexedType -FullName $Context.UtilAccelerators[$candidate].TypeName -Context $Context
        }
        if (-not $hit) {
            foreach ($prefix in $prefixes) {
                $hit = Find-Ps51IndexedType -FullName "$prefix$candidate" -Context $Context
                if ($hit) { break }
            }
        }
        if ($hit) { break }
    }
    if (-not $hit) {
        return @{ Type = $null; Origin = $null; Problem = Get-Ps51UnresolvedReason -Name $Name -Attribute:$Attribute -Context $Context }
    }
    $hit.Problem = $null
    if ($hit.Origin -eq 'ref') {
        $assembly = $hit.Type.Assembly.GetName().Name
        if (-not $Source.LoadedAssemblies.Contains($assembly)) {
            $hit.Problem = @(
                "[$Name] is $($hit.Type.FullName) in $assembly.dll, which Windows PowerShell 5.1 does not load by itself; "
                "add Add-Type -AssemblyName $assembly to this file"
            ) -join ''
        }
    }
    elseif ($hit.Origin -eq 'csharp' -and -not (Test-Ps51UtilLoaded -Util $hit.Util -Source $Source -Context $Context)) {
        $hit.Problem = "[$Name] comes from the C# util $($hit.Util), which this file does not require (#AnsibleRequires -CSharpUtil $($hit.Util))"
    }
    $hit
}

Function Test-Ps51UtilLoaded {
    <#
    .SYNOPSIS
    Returns whether a C# util is loaded for a file: required by it, or used by a util it requires.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [AllowNull()]
        [string]
        $Util,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $seen = [HashSet[string]]::new([StringComparer]::OrdinalIgnoreCase)
    $pending = [Queue[string]]::new([string[]]@($Source.CSharpUtils))
    while ($pending.Count -gt 0) {
        $current = $pending.Dequeue()
        if ($current -eq $Util) {
            return $true
        }
        if ($seen.Add($current) -and $Context.UtilUses.ContainsKey($current)) {
            foreach ($used in $Context.UtilUses[$current]) { $pending.Enqueue($used) }
        }
    }
    $false
}

Function Get-Ps51UnresolvedReason {
    <#
    .SYNOPSIS
    Returns the message for a type name that 5.1 cannot resolve, with what pwsh 7 makes of it.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Name,

        [switch]
        $Attribute,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    foreach ($util in $Context.UtilProblems.Keys) {
        if ($Name.StartsWith("$util.", 'OrdinalIgnoreCase')) {
            return "[$Name] cannot be checked: $($Context.UtilProblems[$util])"
        }
    }
    if ($Name -match '^(Ansible\.\w+)\.' -or $Name -match '^(ansible_collections\.[\w.]+)\.\w+$') {
        return "[$Name] is not a type of any C# util this file requires; Ansible compiles a util only when asked (#AnsibleRequires -CSharpUtil $($Matches[1]))"
    }
    if ($Name -match '^Microsoft\.Management\.Infrastructure\.') {
        return @(
            "[$Name] is not in this check's allow-list of Microsoft.Management.Infrastructure types (the 5.1 copy of that "
            'assembly is not among the references); confirm it exists on Windows, then add it to $MmiAllowList in ps51check.ps1'
        ) -join ''
    }
    $accelerated = $null
    if ($Context.Ps7Accelerators.TryGetValue($Name, [ref]$accelerated)) {
        $target = $accelerated.FullName
        if ($Context.Types.ContainsKey($target)) {
            return "[$Name] is a type accelerator of PowerShell 6+ only; in Windows PowerShell 5.1 write [$target]"
        }
        return "[$Name] is a type accelerator of PowerShell 6+ only, for $target, which Windows PowerShell 5.1 does not have"
    }
    $live = if ($Attribute) { "${Name}Attribute" -as [type] } else { $null }
    if (-not $live) { $live = $Name -as [type] }
    $assembly = if ($live) { $live.Assembly.GetName().Name }
    $hint = if (-not $live) { '' }
    elseif ($assembly -match '^(Microsoft\.PowerShell\.|System\.Management\.Automation$)') {
        # Only the engine's API common to 5.1 and 6+ (PowerShell Standard) is among the references.
        " (pwsh 7 has it in its own $assembly; the references hold only PowerShell Standard 5.1, so this check cannot confirm it for 5.1)"
    }
    else { " (pwsh 7 finds $($live.FullName) in $assembly, which is newer than .NET Framework 4.8)" }
    "type [$Name] does not exist in .NET Framework 4.8 or Windows PowerShell 5.1$hint"
}

Function Resolve-Ps51Type {
    <#
    .SYNOPSIS
    Resolves a type name of the AST (plain, array or generic) against 5.1; results are cached per file.

    .DESCRIPTION
    Returns @{ Type; Origin; Problem }. Type is a reflection type from the references (or from the
    MMI / C# util sources), or $null when the name is fine but has no inspectable type (a class of
    the script) or when it does not resolve (Problem says why).
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [ITypeName]
        $TypeName,

        [switch]
        $Attribute,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $key = "$($Source.FullName)|$Attribute|$($TypeName.FullName)"
    if ($Context.TypeCache.ContainsKey($key)) {
        return $Context.TypeCache[$key]
    }
    $result = if ($TypeName -is [ArrayTypeName]) {
        $element = Resolve-Ps51Type -TypeName $TypeName.ElementType -Source $Source -Context $Context
        $arrayType = $null
        if ($element.Type -and $element.Origin -in 'ref', 'csharp') {
            $arrayType = if ($TypeName.Rank -eq 1) { $element.Type.MakeArrayType() } else { $element.Type.MakeArrayType($TypeName.Rank) }
        }
        @{ Type = $arrayType; Origin = $element.Origin; Problem = $element.Problem }
    }
    elseif ($TypeName -is [GenericTypeName]) {
        $arguments = @($TypeName.GenericArguments | ForEach-Object { Resolve-Ps51Type -TypeName $_ -Source $Source -Context $Context })
        $definition = Resolve-Ps51NamedType -Name $TypeName.TypeName.Name -Arity $arguments.Count -Source $Source -Context $Context
        $problem = @($definition) + $arguments | Where-Object { $_.Problem } | ForEach-Object { $_.Problem } | Select-Object -First 1
        $constructed = $null
        # Only types of one world can be combined: MetadataLoadContext types with each other.
        if (-not $problem -and $definition.Type -and $definition.Origin -in 'ref', 'csharp' -and
            -not @($arguments | Where-Object { -not $_.Type -or $_.Origin -notin 'ref', 'csharp' })) {
            $constructed = $definition.Type.MakeGenericType([type[]]@($arguments.Type))
        }
        @{ Type = $constructed; Origin = $definition.Origin; Problem = $problem }
    }
    else {
        Resolve-Ps51NamedType -Name $TypeName.Name -Attribute:$Attribute -Source $Source -Context $Context
    }
    $Context.TypeCache[$key] = $result
    $result
}

Function Test-Ps51OrderedHashtable {
    <#
    .SYNOPSIS
    Returns whether a type constraint is [ordered] written directly before a hashtable literal.

    .DESCRIPTION
    5.1 has no [ordered] type; its parser turns [ordered]@{...} into an OrderedDictionary and
    refuses [ordered] anywhere else. pwsh 7 also has it as an accelerator, so it accepts more.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [Ast]
        $Node
    )

    $Node -is [TypeConstraintAst] -and $Node.Parent -is [ConvertExpressionAst] -and $Node.Parent.Child -is [HashtableAst]
}

Function Get-Ps51NewObjectCall {
    <#
    .SYNOPSIS
    Returns the type name and argument count of a New-Object command with a literal type name.

    .DESCRIPTION
    ArgumentCount is $null when the arguments are not countable without running the code (a
    variable may hold an array). Returns nothing for -ComObject or a non-literal type name.
    #>
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [CommandAst]
        $Command
    )

    $named = @{}
    $positional = [List[Ast]]::new()
    $elements = @($Command.CommandElements | Select-Object -Skip 1)
    for ($i = 0; $i -lt $elements.Count; $i++) {
        $element = $elements[$i]
        if ($element -is [CommandParameterAst]) {
            $parameter = @('TypeName', 'ArgumentList', 'Property', 'ComObject', 'Strict') |
                Where-Object { $_.StartsWith($element.ParameterName, 'OrdinalIgnoreCase') } | Select-Object -First 1
            if ($parameter -eq 'Strict') {
                continue
            }
            $value = $element.Argument
            if (-not $value -and $i + 1 -lt $elements.Count) {
                $i++
                $value = $elements[$i]
            }
            $named[[string]$parameter] = $value
        }
        else {
            $positional.Add($element)
        }
    }
    if ($named.ContainsKey('ComObject')) {
        return
    }
    $typeName = if ($named.ContainsKey('TypeName')) { $named['TypeName'] } elseif ($positional.Count -gt 0) { $positional[0] }
    $arguments = if ($named.ContainsKey('ArgumentList')) { $named['ArgumentList'] } elseif ($positional.Count -gt 1) { $positional[1] }
    if ($typeName -isnot [StringConstantExpressionAst]) {
        return
    }
    $count = if ($null -eq $arguments) { 0 }
    elseif ($arguments -is [ArrayLiteralAst]) { @($arguments.Elements).Count }
    elseif ($arguments -is [ConstantExpressionAst] -or $arguments -is [ExpandableStringExpressionAst]) { 1 }
    @{ Name = $typeName.Value; NameAst = $typeName; ArgumentCount = $count }
}

Function ConvertTo-Ps51TypeName {
    <#
    .SYNOPSIS
    Parses a type name written as a string (New-Object -TypeName) into the AST's type name form.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.Language.ITypeName])]
    param (
        [Parameter(Mandatory)]
        [string]
        $Name
    )

    $tokens = $null
    $errors = $null
    $ast = [Parser]::ParseInput("[$Name]", [ref]$tokens, [ref]$errors)
    $expression = $ast.Find({ $args[0] -is [TypeExpressionAst] }, $true)
    if ($errors -or -not $expression) {
        return
    }
    $expression.TypeName
}

Function Find-Ps51TypeProblem {
    <#
    .SYNOPSIS
    Reports every type name of a file that Windows PowerShell 5.1 cannot resolve there.

    .DESCRIPTION
    Also checks each attribute's arguments: a constructor for that many positional arguments and a
    settable property or field for each named one ([ValidateRange('Positive')] is 6.1+).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    foreach ($node in Get-Ps51Node -Nodes $Source.Nodes -Type TypeExpressionAst, TypeConstraintAst, AttributeAst, CommandAst) {
        $typeName = $null
        $extent = $node.Extent
        if ($node -is [TypeExpressionAst] -or $node -is [TypeConstraintAst] -or $node -is [AttributeAst]) {
            $typeName = $node.TypeName
        }
        elseif ($node -is [CommandAst] -and $node.GetCommandName() -eq 'New-Object') {
            $call = Get-Ps51NewObjectCall -Command $node
            if (-not $call) { continue }
            $typeName = ConvertTo-Ps51TypeName -Name $call.Name
            $extent = $call.NameAst.Extent
            if (-not $typeName) {
                New-Ps51Finding -Source $Source -Extent $extent -Rule type -Message "New-Object -TypeName '$($call.Name)' is not a type name"
                continue
            }
        }
        else {
            continue
        }
        $Context.Stats.TypeReferences++
        $null = $Context.Stats.DistinctTypes.Add($typeName.FullName)
        if ($typeName.FullName -eq 'ordered') {
            if (-not (Test-Ps51OrderedHashtable -Node $node)) {
                $message = @(
                    '[ordered] is valid in Windows PowerShell 5.1 only directly before a hashtable literal ([ordered]@{...}); '
                    'it is a type accelerator only since PowerShell 7'
                ) -join ''
                New-Ps51Finding -Source $Source -Extent $extent -Rule type -Message $message
            }
            continue
        }
        $resolved = Resolve-Ps51Type -TypeName $typeName -Attribute:($node -is [AttributeAst]) -Source $Source -Context $Context
        if ($resolved.Problem) {
            New-Ps51Finding -Source $Source -Extent $extent -Rule type -Message $resolved.Problem
        }
        elseif ($node -is [AttributeAst] -and $resolved.Type -and $resolved.Origin -eq 'ref') {
            Find-Ps51AttributeProblem -Attribute $node -Type $resolved.Type -Source $Source -Context $Context
        }
        elseif ($node -is [CommandAst] -and $resolved.Type -and $null -ne $call.ArgumentCount) {
            $Context.Stats.StaticMembers++
            $problem = Test-Ps51Call -Type $resolved.Type -Name 'new' -Static -ArgumentCount $call.ArgumentCount -Context $Context
            if ($problem) {
                New-Ps51Finding -Source $Source -Extent $node.Extent -Rule static -Message "New-Object: $problem"
            }
        }
    }
}

Function Find-Ps51AttributeProblem {
    <#
    .SYNOPSIS
    Reports attribute arguments that the attribute type of 5.1 does not take.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [AttributeAst]
        $Attribute,

        [Parameter(Mandatory)]
        [type]
        $Type,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $Context.Stats.Attributes++
    $positional = @($Attribute.PositionalArguments).Count
    $key = "$($Type.AssemblyQualifiedName)|$positional"
    if (-not $Context.AttributeCache.ContainsKey($key)) {
        # Most attributes are the same few ([Parameter(Mandatory)]): judge each shape once.
        $Context.AttributeCache[$key] = Test-Ps51Call -Type $Type -Name 'new' -Static -ArgumentCount $positional -Context $Context
    }
    $problem = $Context.AttributeCache[$key]
    if ($problem) {
        New-Ps51Finding -Source $Source -Extent $Attribute.Extent -Rule type -Message "[$($Attribute.TypeName.FullName)(...)]: $problem"
    }
    foreach ($named in $Attribute.NamedArguments) {
        $key = "$($Type.AssemblyQualifiedName)|$($named.ArgumentName)"
        if (-not $Context.AttributeCache.ContainsKey($key)) {
            $Context.AttributeCache[$key] = [bool](@($Type.GetProperties() | Where-Object { $_.Name -eq $named.ArgumentName -and $_.CanWrite }) +
                @($Type.GetFields() | Where-Object { $_.Name -eq $named.ArgumentName -and -not $_.IsInitOnly }))
        }
        $settable = $Context.AttributeCache[$key]
        if (-not $settable) {
            $message = "[$($Attribute.TypeName.FullName)] has no settable property $($named.ArgumentName) in Windows PowerShell 5.1"
            New-Ps51Finding -Source $Source -Extent $named.Extent -Rule type -Message $message
        }
    }
}

Function Format-Ps51TypeName {
    <#
    .SYNOPSIS
    Returns a type's name as a script writes it: System.Collections.Generic.List[System.Object], or
    with -Short as a signature shows it: List[object], string[].
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        # Without namespace (for signatures).
        [switch]
        $Short
    )

    $keywords = @{ 'System.String' = 'string'; 'System.Char' = 'char'; 'System.Int32' = 'int'; 'System.Int64' = 'long'
        'System.Boolean' = 'bool'; 'System.Object' = 'object'; 'System.Double' = 'double'; 'System.Byte' = 'byte'
    }
    if ($Type.IsArray) {
        return "$(Format-Ps51TypeName -Type $Type.GetElementType() -Short:$Short)[]"
    }
    if ($Type.IsByRef) {
        return "ref $(Format-Ps51TypeName -Type $Type.GetElementType() -Short:$Short)"
    }
    if ($Short -and $Type.FullName -and $keywords.ContainsKey($Type.FullName)) {
        return $keywords[$Type.FullName]
    }
    $name = if ($Short -or -not $Type.Namespace) { $Type.Name } else { "$($Type.Namespace).$($Type.Name)" }
    if ($Type.IsGenericType) {
        $arguments = foreach ($argument in $Type.GetGenericArguments()) { Format-Ps51TypeName -Type $argument -Short:$Short }
        $name = "$($name -replace '`\d+$', '')[$($arguments -join ', ')]"
    }
    $name
}

# ------------------------------------------------------------------ overloads

Function New-Ps51OverloadInfo {
    <#
    .SYNOPSIS
    Describes one method or constructor as PowerShell calls it: how many arguments, which types.

    .DESCRIPTION
    PowerShell may leave out optional parameters and pass a params array as separate values, so
    an overload accepts from Minimum to Maximum arguments.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [Parameter(Mandatory)]
        [System.Reflection.MethodBase]
        $Method
    )

    $parameters = $Method.GetParameters()
    $count = $parameters.Count
    $hasParams = $false
    if ($count -gt 0) {
        foreach ($attribute in $parameters[$count - 1].CustomAttributes) {
            $hasParams = $hasParams -or $attribute.AttributeType.FullName -eq 'System.ParamArrayAttribute'
        }
    }
    $minimum = 0
    for ($i = 0; $i -lt $count; $i++) {
        if (-not $parameters[$i].IsOptional -and -not ($hasParams -and $i -eq $count - 1)) {
            $minimum = $i + 1
        }
    }
    $names = foreach ($parameter in $parameters) { Format-Ps51TypeName -Type $parameter.ParameterType -Short }
    $name = if ($Method.IsConstructor) { 'new' } else { $Method.Name }
    [pscustomobject]@{
        Method = $Method
        ParameterTypes = [string[]]@($parameters.ForEach({ [string]$_.ParameterType.FullName }))
        ParamsElementType = if ($hasParams) { [string]$parameters[$count - 1].ParameterType.GetElementType().FullName } else { '' }
        ReturnType = if ($Method.IsConstructor) { $null } else { $Method.ReturnType }
        Minimum = $minimum
        Maximum = if ($hasParams) { [int]::MaxValue } else { $count }
        Signature = "$name($($names -join ', '))"
    }
}

Function Get-Ps51Overload {
    <#
    .SYNOPSIS
    Returns the methods (or constructors, for "new") PowerShell may call by this name on a type.

    .DESCRIPTION
    Static: public static methods including inherited ones. Instance: public instance methods of
    the type, of every interface it implements (PowerShell calls explicit implementations too) and
    of System.Object (an interface type has none of its own). Cached per type, name and kind.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [switch]
        $Static,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $key = "$($Type.AssemblyQualifiedName)|$Name|$Static"
    $cached = $null
    if ($Context.Overloads.TryGetValue($key, [ref]$cached)) {
        return $cached
    }
    $methods = if ($Static -and $Name -eq 'new') {
        $Type.GetConstructors()
    }
    elseif ($Static) {
        $Type.GetMethods([BindingFlags]'Public, Static, FlattenHierarchy').Where({ $_.Name -eq $Name })
    }
    else {
        $types = @($Type) + @($Type.GetInterfaces())
        if ($Type.IsInterface) {
            $types += $Type.Assembly.GetType('System.Object')
            if (-not $types[-1]) { $types[-1] = $Context.Core.GetType('System.Object') }
        }
        foreach ($item in $types) {
            $item.GetMethods([BindingFlags]'Public, Instance').Where({ $_.Name -eq $Name })
        }
    }
    $result = [object[]]@(foreach ($method in $methods) { New-Ps51OverloadInfo -Method $method })
    $Context.Overloads[$key] = $result
    $result
}

Function Get-Ps51LiveType {
    <#
    .SYNOPSIS
    Returns pwsh 7's own type of the same full name as a reference type, or $null.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type
    )

    if (-not $Type.FullName -or $Type.IsGenericType) {
        return $null
    }
    $Type.FullName -as [type]
}

Function Select-Ps51ExactOverload {
    <#
    .SYNOPSIS
    Returns the overloads whose parameter types equal the known argument types (unknown: any).
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [AllowEmptyCollection()]
        [object[]]
        $Overload,

        [Parameter(Mandatory)]
        [AllowEmptyCollection()]
        [AllowEmptyString()]
        [string[]]
        $ArgumentType,

        # Also accept the equivalent type an argument names after "|".
        [switch]
        $AcceptEquivalent
    )

    $count = $ArgumentType.Count
    foreach ($info in $Overload) {
        if ($count -lt $info.Minimum -or $count -gt $info.Maximum) {
            continue
        }
        $fixed = $info.ParameterTypes.Count
        $exact = $true
        for ($i = 0; $i -lt $count -and $exact; $i++) {
            if (-not $ArgumentType[$i]) {
                continue
            }
            # "A|B|C": the argument is exactly A; B and C mean the same (Get-Ps51ArgumentType), if asked.
            $accepted = $ArgumentType[$i] -split '\|'
            if (-not $AcceptEquivalent) {
                $accepted = $accepted[0]
            }
            $parameter = if ($i -lt $fixed) { $info.ParameterTypes[$i] } else { '' }
            # A value for the params array (beyond the fixed parameters, or the one in its place).
            $spread = $info.ParamsElementType -and $i -ge $fixed - 1 -and $info.ParamsElementType -in $accepted
            $exact = $parameter -in $accepted -or $spread
        }
        if ($exact) {
            $info
        }
    }
}

Function Test-Ps51Call {
    <#
    .SYNOPSIS
    Returns what is wrong with calling a method on a reference type in 5.1, or nothing.

    .DESCRIPTION
    Three answers: the method does not exist there; no overload takes that many arguments; or the
    argument types are known and pwsh 7 binds them to an overload with exactly those parameter types
    that .NET Framework 4.8 lacks ('ab'.Contains([char]'a') is Contains(char) in pwsh 7; 5.1 has
    only Contains(string) and converts). The last is asked only when pwsh 7 has the same type.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [switch]
        $Static,

        [Parameter(Mandatory)]
        [int]
        $ArgumentCount,

        # Full type name per argument, '' when unknown (see Get-Ps51ArgumentType).
        [AllowEmptyCollection()]
        [AllowEmptyString()]
        [string[]]
        $ArgumentType = @(),

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if ($Static -and $Name -eq 'new' -and $Type.IsValueType -and $ArgumentCount -eq 0) {
        # A struct can always be made without arguments.
        return
    }
    if (-not $Static -and $Name -in $script:IntrinsicMethods) {
        return
    }
    $typeLabel = Format-Ps51TypeName -Type $Type
    $overloads = @(Get-Ps51Overload -Type $Type -Name $Name -Static:$Static -Context $Context)
    if (-not $overloads) {
        if ($Name -eq 'new') {
            return "$typeLabel has no public constructor in .NET Framework 4.8"
        }
        $kind = if ($Static) { 'static' } else { 'instance' }
        return "$typeLabel has no $kind method $Name in .NET Framework 4.8"
    }
    $fitting = @($overloads.Where({ $ArgumentCount -ge $_.Minimum -and $ArgumentCount -le $_.Maximum }))
    if (-not $fitting) {
        $label = if ($Name -eq 'new') { "$typeLabel::new" } else { "$typeLabel.$Name" }
        $known = ($overloads.Signature | Select-Object -Unique) -join '; '
        return "no overload of $label takes $ArgumentCount argument(s) in .NET Framework 4.8 (it has: $known)"
    }
    if (-not $ArgumentType.Where({ $_ })) {
        return
    }
    $live = Get-Ps51LiveType -Type $Type
    if (-not $live -or $Type.Assembly -eq $live.Assembly) {
        return
    }
    $exact7 = @(Select-Ps51ExactOverload -Overload (Get-Ps51Overload -Type $live -Name $Name -Static:$Static -Context $Context) -ArgumentType $ArgumentType)
    $exact48 = @(Select-Ps51ExactOverload -Overload $fitting -ArgumentType $ArgumentType -AcceptEquivalent)
    if ($exact7 -and -not $exact48) {
        $have = ($fitting.Signature | Select-Object -Unique) -join '; '
        return @(
            "$typeLabel.$($exact7[0].Signature) does not exist in .NET Framework 4.8: pwsh 7 calls it, "
            "Windows PowerShell 5.1 converts the arguments for $have or fails"
        ) -join ''
    }
}

# ------------------------------------------------------------------ static types of expressions

Function Get-Ps51Unit {
    <#
    .SYNOPSIS
    Returns the function (or class method, or file) whose variables a node sees.
    #>
    [CmdletBinding()]
    [OutputType([System.Management.Automation.Language.Ast])]
    param (
        [Parameter(Mandatory)]
        [Ast]
        $Node
    )

    $current = $Node.Parent
    while ($current) {
        if ($current -is [FunctionDefinitionAst] -or $current -is [FunctionMemberAst] -or $null -eq $current.Parent) {
            return $current
        }
        $current = $current.Parent
    }
    $Node
}

Function Get-Ps51VariableName {
    <#
    .SYNOPSIS
    Returns a variable's name without its scope ($local:x and $x are both x).
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory)]
        [System.Management.Automation.VariablePath]
        $VariablePath
    )

    $VariablePath.UserPath -replace '^(global|local|script|private|using):', ''
}

Function Test-Ps51LocalVariable {
    <#
    .SYNOPSIS
    Returns whether a variable is a plain local one ($x, $local:x), the only kind this check types.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [VariableExpressionAst]
        $Variable
    )

    $path = $Variable.VariablePath
    ($path.IsUnscopedVariable -or $path.IsLocal) -and -not $path.IsDriveQualified
}

Function Initialize-Ps51VariableTable {
    <#
    .SYNOPSIS
    Finds, for every function of a file, the variables whose type is known without running it.

    .DESCRIPTION
    Kept simple so that it is reliable. A variable is typed when
      - it is a parameter of the function with a type constraint ([Type]$x), or is constrained by an
        assignment [Type]$x = ...: PowerShell converts every later value to that type; or
      - every assignment to it in the function (nested script blocks included) has a known type, and
        they agree: [Type]::new(...), New-Object -TypeName Type, a cast, a literal, a static member.
    Any other way of setting it makes it unknown: another assignment (+=, from a variable or a
    command), a foreach variable, [ref]$x, -OutVariable and friends, Set-Variable/New-Variable, a
    parameter of a nested script block. Dot-sourcing or Invoke-Expression in the function makes all
    of its variables unknown. A use before the first assignment sees the caller's variable, so it
    stays unknown too (Get-Ps51VariableType checks the position).

    One pass over the file fills $Context.VariableTables: per function (Get-Ps51Unit), the
    assignments of each variable name and whether the function is beyond judging (Poisoned).
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $tables = $Context.VariableTables
    $add = {
        param ([string] $Name, [object] $Type, [int] $Offset, [bool] $Constrained, [object] $Pending)
        $entries = $tables[$unit].Entries
        if (-not $entries.ContainsKey($Name)) { $entries[$Name] = [List[object]]::new() }
        $entries[$Name].Add(@{ Type = $Type; Offset = $Offset; Constrained = $Constrained; Pending = $Pending; Statement = $Pending })
    }
    $kinds = 'ParameterAst', 'AssignmentStatementAst', 'ForEachStatementAst', 'ConvertExpressionAst', 'UnaryExpressionAst', 'CommandAst'
    $setters = Get-Ps51Node -Nodes $Source.Nodes -Type $kinds
    $variableParameter = '^(OutVariable|ov|ErrorVariable|ev|WarningVariable|wv|InformationVariable|iv|PipelineVariable|pv)$'
    $variableCommands = 'Set-Variable', 'New-Variable', 'sv', 'Remove-Variable', 'Clear-Variable', 'Invoke-Expression', 'iex'
    foreach ($node in $setters) {
        if ($node -is [CommandAst] -and $node.InvocationOperator -ne 'Dot' -and $node.GetCommandName() -notin $variableCommands) {
            # Most commands set no variable; finding their function is the costly part, so skip them first.
            $setsVariable = $false
            foreach ($element in $node.CommandElements) {
                if ($element -is [CommandParameterAst] -and $element.ParameterName -match $variableParameter) { $setsVariable = $true }
            }
            if (-not $setsVariable) { continue }
        }
        if ($node -is [ConvertExpressionAst] -and -not ($node.Type.TypeName.FullName -eq 'ref' -and $node.Child -is [VariableExpressionAst])) {
            continue
        }
        $unit = Get-Ps51Unit -Node $node
        if (-not $tables.ContainsKey($unit)) {
            $tables[$unit] = @{ Entries = @{}; Poisoned = $false }
        }
        if ($node -is [ParameterAst]) {
            $own = $node.Parent -eq $unit -or ($node.Parent -is [ParamBlockAst] -and ($node.Parent.Parent -eq $unit -or $node.Parent.Parent.Parent -eq $unit))
            $constraint = $node.Attributes | Where-Object { $_ -is [TypeConstraintAst] } | Select-Object -Last 1
            $type = if ($own -and $constraint) { (Resolve-Ps51Type -TypeName $constraint.TypeName -Source $Source -Context $Context).Type }
            & $add (Get-Ps51VariableName $node.Name.VariablePath) $type $node.Extent.StartOffset ([bool]$type)
        }
        elseif ($node -is [AssignmentStatementAst]) {
            $left = $node.Left
            if ($left -is [ConvertExpressionAst] -and $left.Child -is [VariableExpressionAst] -and (Test-Ps51LocalVariable -Variable $left.Child)) {
                $type = (Resolve-Ps51Type -TypeName $left.Type.TypeName -Source $Source -Context $Context).Type
                & $add (Get-Ps51VariableName $left.Child.VariablePath) $type $node.Extent.StartOffset ([bool]$type)
            }
            elseif ($left -is [VariableExpressionAst] -and (Test-Ps51LocalVariable -Variable $left)) {
                # The stored value's type is worked out only if the variable is ever asked for.
                $pending = if ($node.Operator -eq 'Equals') { $node.Right }
                & $add (Get-Ps51VariableName $left.VariablePath) $null $node.Extent.StartOffset $false $pending
            }
            elseif ($left -is [ArrayLiteralAst]) {
                foreach ($variable in $left.Elements | Where-Object { $_ -is [VariableExpressionAst] }) {
                    & $add (Get-Ps51VariableName $variable.VariablePath) $null $node.Extent.StartOffset $false
                }
            }
        }
        elseif ($node -is [ForEachStatementAst]) {
            & $add (Get-Ps51VariableName $node.Variable.VariablePath) $null $node.Extent.StartOffset $false
        }
        elseif ($node -is [ConvertExpressionAst] -and $node.Type.TypeName.FullName -eq 'ref' -and $node.Child -is [VariableExpressionAst]) {
            & $add (Get-Ps51VariableName $node.Child.VariablePath) $null $node.Extent.StartOffset $false
        }
        elseif ($node -is [UnaryExpressionAst] -and $node.Child -is [VariableExpressionAst]) {
            & $add (Get-Ps51VariableName $node.Child.VariablePath) $null $node.Extent.StartOffset $false
        }
        elseif ($node -is [CommandAst]) {
            if ($node.InvocationOperator -eq 'Dot' -or $node.GetCommandName() -in 'Invoke-Expression', 'iex') {
                $tables[$unit].Poisoned = $true
            }
            $setter = $node.GetCommandName() -in 'Set-Variable', 'New-Variable', 'sv', 'Remove-Variable', 'Clear-Variable'
            $elements = @($node.CommandElements)
            for ($i = 1; $i -lt $elements.Count; $i++) {
                $element = $elements[$i]
                $isVariableParameter = $element -is [CommandParameterAst] -and $element.ParameterName -match $variableParameter
                if ($isVariableParameter -or ($setter -and $i -eq 1 -and $element -isnot [CommandParameterAst])) {
                    $value = if (-not $isVariableParameter) { $element }
                    elseif ($element.Argument) { $element.Argument }
                    elseif ($i + 1 -lt $elements.Count) { $elements[$i + 1] }
                    if ($value -is [StringConstantExpressionAst]) {
                        & $add ($value.Value -replace '^\+', '') $null $node.Extent.StartOffset $false
                    }
                    else {
                        $tables[$unit].Poisoned = $true
                    }
                }
                elseif ($setter -and $element -is [CommandParameterAst] -and 'Name'.StartsWith($element.ParameterName, 'OrdinalIgnoreCase')) {
                    $value = if ($element.Argument) { $element.Argument } elseif ($i + 1 -lt $elements.Count) { $elements[$i + 1] }
                    if ($value -is [StringConstantExpressionAst]) {
                        & $add $value.Value $null $node.Extent.StartOffset $false
                    }
                    else {
                        $tables[$unit].Poisoned = $true
                    }
                }
            }
        }
    }
    $null = $Context.TypedSources.Add($Source.FullName)
}

Function Get-Ps51VariableType {
    <#
    .SYNOPSIS
    Returns the known type of a variable at one place in a function, or $null.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [VariableExpressionAst]
        $Variable,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $path = $Variable.VariablePath
    if ($path.IsDriveQualified -and $path.DriveName -eq 'env') {
        return $Context.Core.GetType('System.String')
    }
    if ($path.UserPath -in 'true', 'false') {
        return $Context.Core.GetType('System.Boolean')
    }
    if (-not (Test-Ps51LocalVariable -Variable $Variable)) {
        return $null
    }
    if (-not $Context.TypedSources.Contains($Source.FullName)) {
        Initialize-Ps51VariableTable -Source $Source -Context $Context
    }
    $table = $null
    if (-not $Context.VariableTables.TryGetValue((Get-Ps51Unit -Node $Variable), [ref]$table) -or $table.Poisoned) {
        return $null
    }
    $name = Get-Ps51VariableName $path
    $entries = $table.Entries[$name]
    if (-not $entries) {
        return $null
    }
    # Type the stored values now; a variable met again while doing so ($a = $a.Next()) stays unknown.
    $guard = "$($table.GetHashCode())|$name"
    if (-not $Context.VariablesInProgress.Add($guard)) {
        return $null
    }
    try {
        foreach ($entry in $entries) {
            if ($entry.Pending) {
                $entry.Type = Get-Ps51StatementType -Statement $entry.Pending -Source $Source -Context $Context
                $entry.Pending = $null
            }
        }
    }
    finally {
        $null = $Context.VariablesInProgress.Remove($guard)
    }
    # Loops, not pipelines: this runs for every variable a method is called on.
    $constrained = $null
    $assigned = $null
    $first = [int]::MaxValue
    foreach ($entry in $entries) {
        if ($entry.Constrained) {
            if ($constrained -and $constrained.FullName -ne $entry.Type.FullName) { return $null }
            $constrained = $entry.Type
        }
        elseif (-not $entry.Type -or ($assigned -and $assigned.FullName -ne $entry.Type.FullName)) {
            $assigned = $false
        }
        elseif ($null -eq $assigned) {
            $assigned = $entry.Type
        }
        $first = [Math]::Min($first, $entry.Offset)
    }
    if ($constrained) {
        return $constrained
    }
    if (-not $assigned -or $Variable.Extent.StartOffset -le $first) {
        return $null
    }
    $assigned
}

Function Get-Ps51StatementType {
    <#
    .SYNOPSIS
    Returns the known type of what an assignment stores: an expression, or New-Object -TypeName.

    .DESCRIPTION
    A bare variable on the right ($x = $y) is not followed; its type stays unknown. Variables
    inside an expression ($x = $y.Clone()) are typed as anywhere else.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [StatementAst]
        $Statement,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if ($Statement -is [PipelineAst] -and @($Statement.PipelineElements).Count -eq 1) {
        $Statement = $Statement.PipelineElements[0]
    }
    if ($Statement -is [CommandExpressionAst] -and -not $Statement.Redirections -and $Statement.Expression -isnot [VariableExpressionAst]) {
        return Get-Ps51ExpressionType -Expression $Statement.Expression -Source $Source -Context $Context
    }
    if ($Statement -is [CommandAst] -and $Statement.GetCommandName() -eq 'New-Object') {
        $call = Get-Ps51NewObjectCall -Command $Statement
        $typeName = if ($call) { ConvertTo-Ps51TypeName -Name $call.Name }
        if ($typeName) {
            $resolved = Resolve-Ps51Type -TypeName $typeName -Source $Source -Context $Context
            if (-not $resolved.Problem) { return $resolved.Type }
        }
    }
    $null
}

Function Test-Ps51AdaptedType {
    <#
    .SYNOPSIS
    Returns whether PowerShell puts its own members on objects of this type, hiding the .NET ones.

    .DESCRIPTION
    Object and PSObject say nothing about the value; WMI and ADSI objects get their methods from
    the remote class; a dictionary's keys win over its properties. Members of these are not checked
    and their properties are not typed.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        [switch]
        $ForProperty
    )

    $key = "$($Type.AssemblyQualifiedName)|$ForProperty"
    $cached = $null
    if ($script:AdaptedCache.TryGetValue($key, [ref]$cached)) {
        return $cached
    }
    $adapted = $Type.FullName -in 'System.Object', 'System.Management.Automation.PSObject'
    $chain = @()
    for ($current = $Type; $current; $current = $current.BaseType) {
        $chain += $current.FullName
    }
    if ($chain -contains 'System.__ComObject' -or $chain -contains 'System.Management.ManagementBaseObject' -or
        $chain -contains 'System.DirectoryServices.DirectoryEntry') {
        $adapted = $true
    }
    if ($ForProperty -and -not $adapted) {
        # Keys of a dictionary, child elements of XML and columns of a DataRow win over properties.
        $interfaces = @($Type.GetInterfaces().ForEach({ $_.FullName }))
        $adapted = $chain -contains 'System.Xml.XmlNode' -or $chain -contains 'System.Data.DataRow' -or $interfaces -contains 'System.Collections.IDictionary'
    }
    $script:AdaptedCache[$key] = $adapted
    $adapted
}

Function Get-Ps51ExpressionType {
    <#
    .SYNOPSIS
    Returns the type an expression has for sure, or $null when that needs running the code.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [ExpressionAst]
        $Expression,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $core = $Context.Core
    $e = $Expression
    if ($e -is [StringConstantExpressionAst] -or $e -is [ExpandableStringExpressionAst]) {
        return $core.GetType('System.String')
    }
    if ($e -is [ConstantExpressionAst]) {
        if ($null -eq $e.Value) { return $null }
        return $core.GetType($e.StaticType.FullName)
    }
    if ($e -is [VariableExpressionAst]) {
        return Get-Ps51VariableType -Variable $e -Source $Source -Context $Context
    }
    if ($e -is [ConvertExpressionAst]) {
        if ($e.Type.TypeName.FullName -eq 'ordered') {
            return $Context.Types['System.Collections.Specialized.OrderedDictionary']
        }
        $resolved = Resolve-Ps51Type -TypeName $e.Type.TypeName -Source $Source -Context $Context
        if ($resolved.Problem) { return $null }
        return $resolved.Type
    }
    if ($e -is [ArrayExpressionAst]) {
        return $core.GetType('System.Object').MakeArrayType()
    }
    if ($e -is [HashtableAst]) {
        return $core.GetType('System.Collections.Hashtable')
    }
    if ($e -is [ScriptBlockExpressionAst]) {
        return $Context.Types['System.Management.Automation.ScriptBlock']
    }
    if ($e -is [ParenExpressionAst]) {
        $elements = @(if ($e.Pipeline -is [PipelineAst]) { $e.Pipeline.PipelineElements })
        if ($elements.Count -eq 1 -and $elements[0] -is [CommandExpressionAst] -and -not $elements[0].Redirections) {
            return Get-Ps51ExpressionType -Expression $elements[0].Expression -Source $Source -Context $Context
        }
        return $null
    }
    if ($e -is [MemberExpressionAst]) {
        return Get-Ps51MemberResultType -Member $e -Source $Source -Context $Context
    }
    $null
}

Function Get-Ps51ReceiverType {
    <#
    .SYNOPSIS
    Returns the type whose members a member expression reaches ([Type]:: or a typed value), or $null.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [MemberExpressionAst]
        $Member,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if ($Member.Static) {
        if ($Member.Expression -isnot [TypeExpressionAst]) { return $null }
        $resolved = Resolve-Ps51Type -TypeName $Member.Expression.TypeName -Source $Source -Context $Context
        if ($resolved.Problem) { return $null }
        return $resolved.Type
    }
    Get-Ps51ExpressionType -Expression $Member.Expression -Source $Source -Context $Context
}

Function Get-Ps51MemberResultType {
    <#
    .SYNOPSIS
    Returns the type of a property read or method call on a known type, when that is unambiguous.
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [MemberExpressionAst]
        $Member,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if ($Member.Member -isnot [StringConstantExpressionAst]) {
        return $null
    }
    $type = Get-Ps51ReceiverType -Member $Member -Source $Source -Context $Context
    if (-not $type -or (-not $Member.Static -and (Test-Ps51AdaptedType -Type $type -ForProperty))) {
        return $null
    }
    $name = $Member.Member.Value
    $invoke = $Member -is [InvokeMemberExpressionAst]
    $count = if ($invoke) { Get-Ps51ArgumentCount -Call $Member } else { -1 }
    $key = "$($type.AssemblyQualifiedName)|$name|$($Member.Static)|$count"
    if (-not $Context.MemberTypes.ContainsKey($key)) {
        $Context.MemberTypes[$key] = Get-Ps51MemberType -Type $type -Name $name -Static:$Member.Static -ArgumentCount $count -Context $Context
    }
    $Context.MemberTypes[$key]
}

Function Get-Ps51MemberType {
    <#
    .SYNOPSIS
    Returns the type a member gives: a property's or field's, or the return type shared by every
    overload of a method that takes that many arguments (ArgumentCount -1: not a call).
    #>
    [CmdletBinding()]
    [OutputType([type])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        [Parameter(Mandatory)]
        [string]
        $Name,

        [switch]
        $Static,

        [Parameter(Mandatory)]
        [int]
        $ArgumentCount,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $type = $Type
    $name = $Name
    if ($ArgumentCount -ge 0) {
        if ($Static -and $name -eq 'new') {
            return $type
        }
        $count = $ArgumentCount
        $returns = foreach ($overload in Get-Ps51Overload -Type $type -Name $name -Static:$Static -Context $Context) {
            if ($count -ge $overload.Minimum -and $count -le $overload.Maximum) { $overload.ReturnType }
        }
        $returns = @($returns)
        if ($returns.Count -ge 1 -and @($returns.FullName | Select-Object -Unique).Count -eq 1 -and $returns[0].FullName -ne 'System.Void') {
            return $returns[0]
        }
        return $null
    }
    $flags = if ($Static) { [BindingFlags]'Public, Static, FlattenHierarchy' } else { [BindingFlags]'Public, Instance' }
    $property = @($type.GetProperties($flags).Where({ $_.Name -eq $name -and $_.GetIndexParameters().Count -eq 0 }))
    if ($property.Count -eq 1) {
        return $property[0].PropertyType
    }
    $field = @($type.GetFields($flags).Where({ $_.Name -eq $name }))
    if ($field.Count -eq 1) {
        return $field[0].FieldType
    }
    $null
}

# ------------------------------------------------------------------ rules: static members, instance methods

Function Get-Ps51ArgumentCount {
    <#
    .SYNOPSIS
    Returns how many arguments a method call passes (Arguments is $null for "()").
    #>
    [CmdletBinding()]
    [OutputType([int])]
    param (
        [Parameter(Mandatory)]
        [InvokeMemberExpressionAst]
        $Call
    )

    if ($Call.Arguments) { $Call.Arguments.Count } else { 0 }
}

Function Get-Ps51ArgumentType {
    <#
    .SYNOPSIS
    Returns the full type name of each argument of a call, '' where it is not known.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [AllowNull()]
        [AllowEmptyCollection()]
        [ExpressionAst[]]
        $Argument,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    [string[]]@(foreach ($item in $Argument) {
            $type = Get-Ps51ExpressionType -Expression $item -Source $Source -Context $Context
            # [ref] binds to by-ref parameters, which the comparison of exact types cannot express.
            if ($item -is [StringConstantExpressionAst] -and $item.Value.Length -eq 1) {
                # 5.1 turns a one-letter string into a char, char[] or string[] of the same meaning.
                'System.String|System.Char|System.Char[]|System.String[]'
            }
            elseif ($type -and $type.FullName -ne 'System.Management.Automation.PSReference') { [string]$type.FullName } else { '' }
        })
}

Function Find-Ps51MemberProblem {
    <#
    .SYNOPSIS
    Reports static members and instance method calls that .NET Framework 4.8 does not have.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    foreach ($node in Get-Ps51Node -Nodes $Source.Nodes -Type MemberExpressionAst, InvokeMemberExpressionAst) {
        if ($node.Member -isnot [StringConstantExpressionAst]) {
            continue
        }
        $invoke = $node -is [InvokeMemberExpressionAst]
        if ($node.Static) {
            Find-Ps51StaticMemberProblem -Member $node -Source $Source -Context $Context
        }
        elseif ($invoke) {
            Find-Ps51InstanceCallProblem -Call $node -Source $Source -Context $Context
        }
    }
}

Function Find-Ps51StaticMemberProblem {
    <#
    .SYNOPSIS
    Reports one [Type]::Member / [Type]::Method(args) / [Type]::new(args) missing in 5.1.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [MemberExpressionAst]
        $Member,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $type = Get-Ps51ReceiverType -Member $Member -Source $Source -Context $Context
    if (-not $type) {
        # Unresolved types are reported by the type rule; classes of the script are not inspectable.
        return
    }
    $Context.Stats.StaticMembers++
    $name = $Member.Member.Value
    $text = Format-Ps51Snippet -Extent $Member.Extent
    if ($Member -is [InvokeMemberExpressionAst]) {
        $argumentType = Get-Ps51ArgumentType -Argument $Member.Arguments -Source $Source -Context $Context
        $count = Get-Ps51ArgumentCount -Call $Member
        $problem = Test-Ps51Call -Type $type -Name $name -Static -ArgumentCount $count -ArgumentType $argumentType -Context $Context
        if ($problem) {
            New-Ps51Finding -Source $Source -Extent $Member.Extent -Rule static -Message "$problem ($text)"
        }
        return
    }
    $flags = [BindingFlags]'Public, Static, FlattenHierarchy'
    $exists = if ($name -eq 'new') { $type.IsValueType -or $type.GetConstructors().Count -gt 0 }
    else { [bool]$type.GetMembers($flags).Where({ $_.Name -eq $name }) }
    if (-not $exists) {
        $message = "$(Format-Ps51TypeName -Type $type) has no static member $name in .NET Framework 4.8 ($text)"
        New-Ps51Finding -Source $Source -Extent $Member.Extent -Rule static -Message $message
    }
}

Function Find-Ps51InstanceCallProblem {
    <#
    .SYNOPSIS
    Reports one $value.Method(args) missing in 5.1, when the type of $value is known statically.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [InvokeMemberExpressionAst]
        $Call,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    $type = Get-Ps51ReceiverType -Member $Call -Source $Source -Context $Context
    if (-not $type -or (Test-Ps51AdaptedType -Type $type)) {
        $Context.Stats.InstanceSkipped++
        return
    }
    $Context.Stats.InstanceCalls++
    $argumentType = Get-Ps51ArgumentType -Argument $Call.Arguments -Source $Source -Context $Context
    $count = Get-Ps51ArgumentCount -Call $Call
    $problem = Test-Ps51Call -Type $type -Name $Call.Member.Value -ArgumentCount $count -ArgumentType $argumentType -Context $Context
    $exact = (Test-Ps51ExactType -Type $type -Context $Context) -or (Test-Ps51ConstructedValue -Expression $Call.Expression -Source $Source -Context $Context)
    if ($problem -and -not $exact) {
        # PowerShell calls methods of the object's own type; a subclass may have this one.
        $Context.Stats.InstanceCalls--
        $Context.Stats.InstanceSkipped++
        return
    }
    if ($problem) {
        New-Ps51Finding -Source $Source -Extent $Call.Extent -Rule method -Message "$problem ($(Format-Ps51Snippet -Extent $Call.Extent))"
    }
}

Function Test-Ps51Construction {
    <#
    .SYNOPSIS
    Returns whether a statement makes a new object of a named type: [Type]::new(...) or New-Object.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [AllowNull()]
        [Ast]
        $Statement
    )

    if ($Statement -is [PipelineAst] -and @($Statement.PipelineElements).Count -eq 1) {
        $Statement = $Statement.PipelineElements[0]
    }
    if ($Statement -is [CommandExpressionAst]) {
        $Statement = $Statement.Expression
    }
    while ($Statement -is [ParenExpressionAst]) {
        $Statement = $Statement.Pipeline
        if ($Statement -is [PipelineAst] -and @($Statement.PipelineElements).Count -eq 1 -and $Statement.PipelineElements[0] -is [CommandExpressionAst]) {
            $Statement = $Statement.PipelineElements[0].Expression
        }
    }
    ($Statement -is [InvokeMemberExpressionAst] -and $Statement.Static -and $Statement.Member.Extent.Text -eq 'new') -or
    ($Statement -is [CommandAst] -and $Statement.GetCommandName() -eq 'New-Object')
}

Function Test-Ps51ConstructedValue {
    <#
    .SYNOPSIS
    Returns whether an expression is a new object of its type: made right there, or held by a
    variable whose every assignment in the function makes one. Its methods are then exactly its type's.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [ExpressionAst]
        $Expression,

        [Parameter(Mandatory)]
        [pscustomobject]
        $Source,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if (Test-Ps51Construction -Statement $Expression) {
        return $true
    }
    if ($Expression -isnot [VariableExpressionAst] -or -not (Test-Ps51LocalVariable -Variable $Expression)) {
        return $false
    }
    $table = $null
    if (-not $Context.VariableTables.TryGetValue((Get-Ps51Unit -Node $Expression), [ref]$table) -or $table.Poisoned) {
        return $false
    }
    $entries = $table.Entries[(Get-Ps51VariableName $Expression.VariablePath)]
    if (-not $entries) {
        return $false
    }
    foreach ($entry in $entries) {
        if ($entry.Constrained -or -not (Test-Ps51Construction -Statement $entry.Statement)) {
            return $false
        }
    }
    $true
}

Function Test-Ps51ExactType {
    <#
    .SYNOPSIS
    Returns whether a value known to be of this type has no other methods than the type's own.

    .DESCRIPTION
    PowerShell finds methods on the object's own type, not on the type a variable or a parameter
    was declared with: a [System.Collections.IDictionary] parameter may hold a hashtable, which has
    ContainsKey. So a missing method is only reported for a type no other public type derives from
    in the references and the C# utils: a value type, an array, a sealed class, or a class without
    public subclasses (List[T], Ansible.Basic.AnsibleModule). Interfaces, abstract classes and types
    of pwsh 7's own assemblies (the Microsoft.Management.Infrastructure allow-list) never are.
    #>
    [CmdletBinding()]
    [OutputType([bool])]
    param (
        [Parameter(Mandatory)]
        [type]
        $Type,

        [Parameter(Mandatory)]
        [hashtable]
        $Context
    )

    if ($Type.IsValueType -or $Type.IsArray -or $Type.IsSealed) {
        return $true
    }
    if ($Type.IsInterface -or $Type.IsAbstract -or $Type.GetType().FullName -eq 'System.RuntimeType') {
        return $false
    }
    if (-not $Context.Subclassed) {
        # Every class that some public type derives from (generic ones by their definition); built once, when needed.
        $Context.Subclassed = [HashSet[string]]::new()
        foreach ($candidate in @($Context.Types.Values) + @($Context.UtilTypes.Values | ForEach-Object { $_.Type })) {
            $base = $candidate.BaseType
            if ($base -and $base.IsGenericType) { $base = $base.GetGenericTypeDefinition() }
            if ($base) { $null = $Context.Subclassed.Add($base.FullName) }
        }
    }
    $definition = if ($Type.IsGenericType) { $Type.GetGenericTypeDefinition() } else { $Type }
    -not $Context.Subclassed.Contains($definition.FullName)
}

# ------------------------------------------------------------------ driver

Function Get-Ps51Target {
    <#
    .SYNOPSIS
    Returns the files to check with the path each finding shows.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [string[]]
        $Path,

        [Parameter(Mandatory)]
        [string]
        $RepoRoot
    )

    if ($Path) {
        foreach ($item in $Path) {
            $resolved = Resolve-Path -LiteralPath $item -ErrorAction Stop
            [pscustomobject]@{ FullName = $resolved.ProviderPath; Display = $item }
        }
        return
    }
    $plugins = Join-Path $RepoRoot 'plugins'
    [string[]]$files = [System.IO.Directory]::GetFiles($plugins, '*', [System.IO.SearchOption]::AllDirectories) -match '\.psm?1$'
    [array]::Sort($files, [StringComparer]::Ordinal)
    foreach ($file in $files) {
        [pscustomobject]@{ FullName = $file; Display = [System.IO.Path]::GetRelativePath($RepoRoot, $file) -replace '\\', '/' }
    }
}

Function Get-Ps51CSharpSearchPath {
    <#
    .SYNOPSIS
    Returns the folders to look for C# utils in: those given, else ansible-core's in .venv; and
    always the collection's own plugins/module_utils.
    #>
    [CmdletBinding()]
    [OutputType([string[]])]
    param (
        [string]
        $CSharpUtilPath,

        [Parameter(Mandatory)]
        [string]
        $RepoRoot
    )

    $found = [List[string]]::new()
    $lib = Join-Path $RepoRoot '.venv/lib'
    if ($CSharpUtilPath) {
        foreach ($folder in $CSharpUtilPath -split [regex]::Escape([System.IO.Path]::PathSeparator)) {
            if ($folder) { $found.Add($folder) }
        }
    }
    elseif (Test-Path -LiteralPath $lib) {
        foreach ($python in [System.IO.Directory]::GetDirectories($lib, 'python*')) {
            $csharp = Join-Path $python 'site-packages/ansible/module_utils/csharp'
            if (Test-Path -LiteralPath $csharp) { $found.Add($csharp) }
        }
    }
    $found.Add((Join-Path $RepoRoot 'plugins/module_utils'))
    [string[]]$found
}

Function Invoke-Ps51Check {
    <#
    .SYNOPSIS
    Runs every rule on the files; returns the lines to print (findings, then a summary) and the exit code.
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [string[]]
        $Path,

        [string]
        $CSharpUtilPath,

        [string]
        $ReferencePath
    )

    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $repoRoot = (Resolve-Path -LiteralPath (Join-Path $PSScriptRoot '../..')).ProviderPath
    if (-not $ReferencePath) {
        if (-not $env:PWSH_VENDOR_DIR) {
            throw 'PWSH_VENDOR_DIR is not set: run this with the pwsh of /work/shared/tools, or pass -ReferencePath'
        }
        $ReferencePath = Join-Path $env:PWSH_VENDOR_DIR 'refs'
    }
    $context = New-Ps51Context -ReferencePath $ReferencePath
    $sources = @(Get-Ps51Target -Path $Path -RepoRoot $repoRoot | ForEach-Object {
            Read-Ps51Source -FullName $_.FullName -Display $_.Display -RepoRoot $repoRoot
        })
    $utils = @($sources | ForEach-Object { $_.CSharpUtils } | Select-Object -Unique)
    if ($utils) {
        $searchPath = Get-Ps51CSharpSearchPath -CSharpUtilPath $CSharpUtilPath -RepoRoot $repoRoot
        $cache = if ($env:PS51CHECK_CACHE) { $env:PS51CHECK_CACHE } else { Join-Path $repoRoot '.build/ps51check' }
        Import-Ps51CSharpUtil -Context $context -Name $utils -SearchPath $searchPath -ReferencePath $ReferencePath -CacheFolder $cache
    }
    Write-Verbose ('setup done: {0:0.00} s' -f $clock.Elapsed.TotalSeconds)
    $phases = [ordered]@{
        parse = { Find-Ps51ParseError -Source $source }
        syntax = { Find-Ps51NewAstSyntax -Source $source -Context $context }
        tokens = { Find-Ps51NewTokenSyntax -Source $source }
        semantics = { Find-Ps51SemanticChange -Source $source }
        types = { Find-Ps51TypeProblem -Source $source -Context $context }
        members = { Find-Ps51MemberProblem -Source $source -Context $context }
    }
    $spent = @{}
    $findings = foreach ($source in $sources) {
        foreach ($phase in $phases.GetEnumerator()) {
            $started = $clock.Elapsed
            & $phase.Value
            $spent[$phase.Key] += ($clock.Elapsed - $started).TotalSeconds
        }
    }
    Write-Verbose (($spent.GetEnumerator() | ForEach-Object { '{0} {1:0.00} s' -f $_.Key, $_.Value }) -join ', ')
    $findings = @($findings | Sort-Object Path, Line, Column, Rule, Message -Unique)
    $lines = [List[string]]::new()
    foreach ($finding in $findings) {
        $lines.Add(('{0}:{1}:{2}: [{3}] {4}' -f $finding.Path, $finding.Line, $finding.Column, $finding.Rule, $finding.Message))
    }
    $stats = $context.Stats
    $summary = @(
        'ps51check: {0} files, {1} findings; types checked: {2} references ({3} distinct names); '
        'members checked: {4} static, {5} instance calls ({6} skipped: receiver type not known exactly), {7} attributes; {8:0.0} s'
    ) -join ''
    $lines.Add(($summary -f $sources.Count, $findings.Count, $stats.TypeReferences, $stats.DistinctTypes.Count, $stats.StaticMembers,
            $stats.InstanceCalls, $stats.InstanceSkipped, $stats.Attributes, $clock.Elapsed.TotalSeconds))
    [pscustomobject]@{ Lines = $lines; ExitCode = if ($findings.Count -gt 0) { 1 } else { 0 } }
}

try {
    $result = Invoke-Ps51Check -Path $Path -CSharpUtilPath $CSharpUtilPath -ReferencePath $ReferencePath
    $result.Lines | Write-Output
    $code = $result.ExitCode
}
catch {
    Write-Output "ps51check: cannot run: $($_.Exception.Message) ($($_.InvocationInfo.PositionMessage -replace '\s+', ' '))"
    $code = 2
}
exit $code
