# Runs every Pester test of the module_utils in one pwsh process (tests/hvtest/pester.py starts it).
param (
    [Parameter(ValueFromRemainingArguments)]
    [string[]]
    $Path
)

if (-not $Path) {
    $Path = @($PSScriptRoot)
}

$ErrorActionPreference = 'Stop'
Import-Module Pester -MinimumVersion 5.5
$configuration = New-PesterConfiguration
$configuration.Run.Path = $Path
$configuration.Run.Exit = $true
$configuration.Output.Verbosity = 'Normal'
$configuration.Should.ErrorAction = 'Continue'
$configuration.TestResult.Enabled = $false
Invoke-Pester -Configuration $configuration
