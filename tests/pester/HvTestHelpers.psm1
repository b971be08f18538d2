# Test helpers for the Pester tests of the collection's module_utils (test tooling, never shipped).
#
# The module_utils are loaded as ansible-core's exec wrapper loads them on a host: each .psm1 text
# turned into a dynamic module imported globally, with Ansible.Basic compiled from ansible-core's
# own C# source. Tests that talk to Hyper-V get a simulated host of their own (python -m hvtest.sim)
# and the CIM shim (tests/hvtest/pwsh/HvSimCim), exactly as the end-to-end tests' module runs do.
# tests/hvtest/pester.py starts this run and sets HVTEST_PYTHON, HVTEST_ROOT and HVTEST_ANSIBLE.

Set-StrictMode -Version Latest

$script:Root = $env:HVTEST_ROOT
$script:Hosts = [System.Collections.Generic.List[object]]::new()

Function Get-HvTestRoot {
    <#
    .SYNOPSIS
    Returns the repository's root folder.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param ()

    if (-not $script:Root) {
        throw 'HVTEST_ROOT is not set: run the Pester tests with make pester (tests/hvtest/pester.py).'
    }
    $script:Root
}

Function Initialize-HvTestAnsibleBasic {
    <#
    .SYNOPSIS
    Compiles Ansible.Basic from ansible-core's source as the exec wrapper does (once per process).
    #>
    [CmdletBinding()]
    param ()

    if ('Ansible.Basic.AnsibleModule' -as [type]) {
        return
    }
    $ansible = $env:HVTEST_ANSIBLE
    if (-not $ansible) {
        throw 'HVTEST_ANSIBLE (the ansible package folder) is not set: run the Pester tests with make pester.'
    }
    Import-Module -Name (Join-Path $ansible 'module_utils/powershell/Ansible.ModuleUtils.AddType.psm1') -Global
    $source = Get-Content -LiteralPath (Join-Path $ansible 'module_utils/csharp/Ansible.Basic.cs') -Raw
    Add-CSharpType -References $source
}

Function Import-HvTestModuleUtil {
    <#
    .SYNOPSIS
    Imports the collection's module_utils the way the exec wrapper does (dynamic modules, global scope).

    .DESCRIPTION
    Name lists the utils a test needs; the ones they require (#AnsibleRequires -PowerShell) are
    imported first, in the order the wrapper would.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [string[]]
        $Name
    )

    Initialize-HvTestAnsibleBasic
    $folder = Join-Path (Get-HvTestRoot) 'plugins/module_utils'
    $ordered = [System.Collections.Generic.List[string]]::new()
    $visit = {
        param ($util)
        if ($ordered.Contains($util)) {
            return
        }
        $text = Get-Content -LiteralPath (Join-Path $folder "$util.psm1") -Raw
        foreach ($match in [regex]::Matches($text, '(?m)^#AnsibleRequires -PowerShell \S*?(\w+)\s*$')) {
            & $visit $match.Groups[1].Value
        }
        $ordered.Add($util)
    }
    foreach ($util in $Name) {
        & $visit $util
    }
    foreach ($util in $ordered) {
        # Strict mode does not reach into a module's scopes from outside, so it is set inside each
        # util here (the only difference from what a host runs): reading a property an object does
        # not have, or a variable never set, fails these tests instead of giving $null.
        $text = "Set-StrictMode -Version Latest`n" + (Get-Content -LiteralPath (Join-Path $folder "$util.psm1") -Raw)
        $block = [System.Management.Automation.Language.Parser]::ParseInput($text, "$util.psm1", [ref]$null, [ref]$null).GetScriptBlock()
        New-Module -Name $util -ScriptBlock $block | Import-Module -Global -Force -WarningAction SilentlyContinue
    }
}

Function Start-HvTestHost {
    <#
    .SYNOPSIS
    Starts a simulated Hyper-V host for a scenario (a hashtable) and points the CIM shim at it.

    .DESCRIPTION
    Returns an object with Url (the control API), Root (the host's folders) and the process.
    Stop it with Stop-HvTestHost (AfterAll).
    #>
    [CmdletBinding()]
    [OutputType([pscustomobject])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Scenario
    )

    $python = $env:HVTEST_PYTHON
    if (-not $python) {
        throw 'HVTEST_PYTHON is not set: run the Pester tests with make pester.'
    }
    $work = Join-Path ([System.IO.Path]::GetTempPath()) "hvpester-$([guid]::NewGuid().ToString('N'))"
    $null = New-Item -Path $work -ItemType Directory
    # YAML is a superset of JSON: the simulator reads the scenario as written here.
    $scenarioFile = Join-Path $work 'scenario.yml'
    Set-Content -LiteralPath $scenarioFile -Value (ConvertTo-Json -InputObject $Scenario -Depth 20) -Encoding utf8
    $portFile = Join-Path $work 'port'
    $hostRoot = Join-Path $work 'host'
    $info = [System.Diagnostics.ProcessStartInfo]::new($python)
    foreach ($argument in @('-m', 'hvtest.sim', $scenarioFile, '--port-file', $portFile, '--root', $hostRoot)) {
        $info.ArgumentList.Add($argument)
    }
    $info.Environment['PYTHONPATH'] = Join-Path (Get-HvTestRoot) 'tests'
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $process = [System.Diagnostics.Process]::Start($info)
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while (-not (Test-Path -LiteralPath $portFile) -or -not (Get-Content -LiteralPath $portFile -Raw)) {
        if ($process.HasExited -or [DateTime]::UtcNow -gt $deadline) {
            throw "The simulated host did not start: $($process.StandardError.ReadToEnd())"
        }
        Start-Sleep -Milliseconds 50
    }
    $port = [int](Get-Content -LiteralPath $portFile -Raw)
    $testHost = [pscustomobject]@{
        Url = "http://127.0.0.1:$port"
        Root = $hostRoot
        Work = $work
        Process = $process
    }
    $script:Hosts.Add($testHost)
    $env:HVSIM_CIM_URL = "$($testHost.Url)/sim/cim"
    # A module run keeps the host's services (Get-HvService) and the jobs it saw end; a test's new host has its own.
    foreach ($cimJob in @(Get-Module -Name _HvCimJob)) {
        & $cimJob { $script:HvServices.Clear(); $script:HvEndedJobs.Clear() }
    }
    $env:COMPUTERNAME = if ($Scenario.ContainsKey('host')) { $Scenario.host } else { 'HV01' }
    $testHost
}

Function Stop-HvTestHost {
    <#
    .SYNOPSIS
    Stops a simulated host started by Start-HvTestHost and removes its folders.
    #>
    [CmdletBinding()]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $TestHost
    )

    if (-not $TestHost.Process.HasExited) {
        $TestHost.Process.Kill()
        $TestHost.Process.WaitForExit()
    }
    Remove-Item -LiteralPath $TestHost.Work -Recurse -Force -ErrorAction SilentlyContinue
    $null = $script:Hosts.Remove($TestHost)
}

Function Invoke-HvTestControl {
    <#
    .SYNOPSIS
    Calls the simulated host's control API (/sim/...): state, calls, faults, writes.
    #>
    [CmdletBinding()]
    [OutputType([object])]
    param (
        [Parameter(Mandatory)]
        [pscustomobject]
        $TestHost,

        [Parameter(Mandatory)]
        [string]
        $Path,

        [hashtable]
        $Body
    )

    if ($PSBoundParameters.ContainsKey('Body')) {
        Invoke-RestMethod -Method Post -Uri "$($TestHost.Url)$Path" -Body (ConvertTo-Json -InputObject $Body -Depth 20) -ContentType 'application/json'
    }
    else {
        Invoke-RestMethod -Method Get -Uri "$($TestHost.Url)$Path"
    }
}

Function Invoke-HvTestModule {
    <#
    .SYNOPSIS
    Runs a script block against an Ansible.Basic module object; returns the module's result as a hashtable.

    .DESCRIPTION
    ExitJson and FailJson end a module by exiting the process; here Ansible.Basic's Exit hook is
    replaced for the call so that the result printed on stdout is read back instead.
    #>
    [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidGlobalVars', '',
        Justification = 'Ansible.Basic reads complex_args from the global scope')]
    [CmdletBinding()]
    [OutputType([hashtable])]
    param (
        [Parameter(Mandatory)]
        [hashtable]
        $Spec,

        [Parameter(Mandatory)]
        [hashtable]
        $Arguments,

        [Parameter(Mandatory)]
        [scriptblock]
        $Body,

        [AllowEmptyCollection()]
        [System.Collections.IDictionary[]]
        $Fragments = @()
    )

    # Ansible.Basic reads the module's arguments from the global variable complex_args.
    $global:complex_args = $Arguments.Clone()
    $originalExit = [Ansible.Basic.AnsibleModule]::Exit
    $originalOut = [Console]::Out
    $writer = [System.IO.StringWriter]::new()
    try {
        [Console]::SetOut($writer)
        [Ansible.Basic.AnsibleModule]::Exit = { param ([int]$rc) throw "hvtest-exit:$rc" }
        $module = [Ansible.Basic.AnsibleModule]::Create(@(), $Spec, $Fragments)
        try {
            $null = & $Body $module
        }
        catch {
            if ($_.Exception.Message -notlike '*hvtest-exit:*') {
                throw
            }
        }
    }
    finally {
        [Ansible.Basic.AnsibleModule]::Exit = $originalExit
        [Console]::SetOut($originalOut)
    }
    $text = $writer.ToString()
    if (-not $text) {
        throw 'The module body ended without ExitJson or FailJson.'
    }
    ConvertFrom-Json -InputObject $text -AsHashtable
}

Export-ModuleMember -Function @(
    'Get-HvTestRoot'
    'Import-HvTestModuleUtil'
    'Initialize-HvTestAnsibleBasic'
    'Invoke-HvTestControl'
    'Invoke-HvTestModule'
    'Start-HvTestHost'
    'Stop-HvTestHost'
)
