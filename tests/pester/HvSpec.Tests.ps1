# Every module's argument spec has the shape Ansible.Basic reads: PowerShell builds arrays in ways
# that look right and are not (statements inside @() are unrolled into one flat list).

[Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSUseDeclaredVarsMoreThanAssignments', '',
    Justification = 'Pester: BeforeDiscovery sets what -ForEach reads')]
param ()

BeforeDiscovery {
    $modules = Get-ChildItem -LiteralPath (Join-Path $env:HVTEST_ROOT 'plugins/modules') -Filter '*.ps1' |
        ForEach-Object { @{ Name = $_.BaseName; Path = $_.FullName } }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'HvTestHelpers.psm1') -Force
    Import-HvTestModuleUtil -Name _HvBatch, _HvCatalog

    Function Get-ModuleSpec {
        # The module's $spec as PowerShell evaluates it (the assignment's right-hand side).
        param ([string]$Path)
        $ast = [System.Management.Automation.Language.Parser]::ParseFile($Path, [ref]$null, [ref]$null)
        $assignment = $ast.Find({
                param ($node)
                $node -is [System.Management.Automation.Language.AssignmentStatementAst] -and $node.Left.Extent.Text -eq '$spec'
            }, $false)
        & ([scriptblock]::Create($assignment.Right.Extent.Text))
    }

    Function Get-SpecProblem {
        # Names each list option that is not a list of lists of option names, at any depth.
        param ([System.Collections.IDictionary]$Spec, [string]$Where)
        foreach ($key in 'mutually_exclusive', 'required_one_of', 'required_together') {
            if (-not $Spec.Contains($key)) {
                continue
            }
            foreach ($group in @($Spec[$key])) {
                if ($group -isnot [System.Collections.IList] -or @($group | Where-Object { $_ -isnot [string] }).Count -gt 0) {
                    "$Where.$key holds $($group.GetType().Name) '$group', not a list of option names"
                }
            }
        }
        if ($Spec.Contains('options')) {
            foreach ($name in $Spec.options.Keys) {
                $option = $Spec.options[$name]
                if ($option -is [System.Collections.IDictionary] -and $option.Contains('options')) {
                    Get-SpecProblem -Spec $option -Where "$Where.$name"
                }
            }
        }
    }
}

Describe 'The argument spec of <Name>' -ForEach $modules {
    It 'has every list option as a list of lists of option names' {
        $spec = Get-ModuleSpec -Path $Path
        $problems = @(Get-SpecProblem -Spec $spec -Where $Name)
        foreach ($fragment in (Get-HvBatchSpec), (Get-HvCatalogSpec)) {
            $problems += @(Get-SpecProblem -Spec $fragment -Where "$Name (fragment)")
        }
        $problems | Should -BeNullOrEmpty
    }
}
