"""The Windows PowerShell 5.1 check (tests/hvtest/ps51check.ps1) passes on plugins/ and catches what it should.

On Windows, Ansible runs the modules in Windows PowerShell 5.1 on .NET Framework 4.8; here only
pwsh 7 exists, which accepts newer syntax and has a newer .NET. The check holds the code against
the 4.8 and PowerShell Standard 5.1 reference assemblies. Each rule is proven by a small file that
breaks it: all of them go through one pwsh run (a run costs seconds, most of it start-up), and each
test then looks for its own finding, at its own line and column.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECK = ROOT / "tests" / "hvtest" / "ps51check.ps1"
PWSH_TOOLS = "/work/shared/tools"


def require_pwsh() -> str:
    """Returns pwsh's path; without it, fails when CI=true (CI must run this check), else skips."""
    found = shutil.which("pwsh")
    if found:
        return found
    reason = f"pwsh is not on PATH: put {PWSH_TOOLS} on PATH (export PATH={PWSH_TOOLS}:$PATH)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def csharp_util_path() -> list[str]:
    """ansible-core's C# module utils (Ansible.Basic.cs), from the ansible package running these tests."""
    try:
        import ansible
    except ImportError:  # the check then looks in .venv itself, and reports it when it finds nothing
        return []
    return ["-CSharpUtilPath", str(pathlib.Path(ansible.__file__).parent / "module_utils" / "csharp")]


@dataclasses.dataclass(frozen=True)
class CheckRun:
    returncode: int
    findings: list[str]
    summary: str
    output: str

    def findings_for(self, path: pathlib.Path) -> list[str]:
        """The findings of one file, without its path: "line:column: [rule] message"."""
        prefix = f"{path}:"
        return [line[len(prefix):] for line in self.findings if line.startswith(prefix)]


def run_check(*paths: pathlib.Path, csharp: list[str] | None = None) -> CheckRun:
    """Runs the check once on the given files (none: every plugins/ PowerShell file)."""
    utils = csharp_util_path() if csharp is None else csharp
    command = [require_pwsh(), "-NoProfile", "-NonInteractive", "-File", str(CHECK), *utils, *map(str, paths)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    lines = result.stdout.splitlines()
    summary = lines[-1] if lines else ""
    assert summary.startswith("ps51check: ") and result.returncode in (0, 1), (
        f"the check did not run (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return CheckRun(result.returncode, lines[:-1], summary, result.stdout + result.stderr)


# ---------------------------------------------------------------- the collection

def test_plugins_are_windows_powershell_51_compatible() -> None:
    run = run_check()
    assert run.findings == [], run.output
    assert run.returncode == 0
    count = len([p for p in (ROOT / "plugins").rglob("*") if p.suffix in {".ps1", ".psm1"}])
    assert run.summary.startswith(f"ps51check: {count} files, 0 findings; types checked: "), run.summary
    assert "members checked: " in run.summary


# ---------------------------------------------------------------- one broken file per rule

@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    source: str
    expected: str  # the finding's start: "line:column: [rule] message"


MUTATIONS = [
    # syntax newer than 5.1
    Mutation("ternary", "$a = $true\n$b = $a ? 1 : 2\n", '2:6: [syntax] ternary operator "a ? b : c" is PowerShell 7.0+'),
    Mutation("chain_and", "Get-Thing && Get-Other\n", "1:1: [syntax] pipeline chain operator && / || is PowerShell 7.0+"),
    Mutation("chain_or", "Get-Thing || Get-Other\n", "1:1: [syntax] pipeline chain operator && / || is PowerShell 7.0+"),
    Mutation("coalesce", "$x = $null\n$y = $x ?? 1\n", "2:9: [syntax] null-coalescing operator ?? is PowerShell 7.0+"),
    Mutation("coalesce_assign", "$x = $null\n$x ??= 1\n", "2:4: [syntax] null-coalescing assignment ??= is PowerShell 7.0+"),
    Mutation("null_member", "$o = Get-Thing\n${o}?.Name\n", "2:1: [syntax] null-conditional access ?. / ?[] is PowerShell 7.0+"),
    Mutation("null_index", "$o = Get-Thing\n${o}?[0]\n", "2:1: [syntax] null-conditional access ?. / ?[] is PowerShell 7.0+"),
    Mutation("clean_block", "function Test-It {\n    process { 1 }\n    clean { 2 }\n}\n",
             "3:5: [syntax] clean block is PowerShell 7.3+"),
    Mutation("background", "Get-Thing &\n", "1:1: [syntax] background operator & at the end of a pipeline is PowerShell 6.0+"),
    Mutation("generic_method", "$e = [array]::Empty[int]()\n", "1:6: [syntax] generic method type arguments .Method[T]() are PowerShell 7.3+"),
    Mutation("number_suffix", "$n = 10u\n", "1:6: [syntax] number literal 10u uses a form of PowerShell 6.2+/7"),
    Mutation("escape_e", '$s = "`e[1m"\n', "1:6: [syntax] escape `e in a string is PowerShell 6.0+"),
    Mutation("leading_pipe", "Get-ChildItem\n    | Select-Object Name\n", "2:5: [syntax] a line starting with | "),
    Mutation("is_windows", "if ($IsWindows) { 1 }\n", "1:5: [syntax] $IsWindows is an automatic variable of PowerShell 6+"),
    Mutation("replace_scriptblock", "'ab' -replace 'a', { 'c' }\n", "1:6: [syntax] -replace with a script block substitution is PowerShell 6.1+"),
    Mutation("requires_7", "#requires -Version 7.0\n'x'\n", "1:1: [syntax] #requires -Version 7.0 refuses Windows PowerShell 5.1"),
    # types
    Mutation("no_such_type", "$t = [No.Such.Type]\n", "1:6: [type] type [No.Such.Type] does not exist in .NET Framework 4.8"),
    Mutation("accelerator_7", "$v = [semver]'1.0.0'\n", "1:6: [type] [semver] is a type accelerator of PowerShell 6+ only"),
    Mutation("ordered_type", "$t = [ordered]\n", "1:6: [type] [ordered] is valid in Windows PowerShell 5.1 only directly before a hashtable literal"),
    Mutation("not_loaded", "$z = [System.IO.Compression.ZipFile]\n",
             "1:6: [type] [System.IO.Compression.ZipFile] is System.IO.Compression.ZipFile in System.IO.Compression.FileSystem.dll, "
             "which Windows PowerShell 5.1 does not load by itself"),
    Mutation("generic_argument", "[System.Collections.Generic.List[No.Such.Item]]$l = $null\n",
             "1:1: [type] type [No.Such.Item] does not exist in .NET Framework 4.8"),
    Mutation("catch_type", "try { 1 } catch [System.NoSuchException] { 2 }\n",
             "1:17: [type] type [System.NoSuchException] does not exist in .NET Framework 4.8"),
    Mutation("new_object", "$x = New-Object -TypeName System.No.Such\n", "1:27: [type] type [System.No.Such] does not exist"),
    Mutation("cim_not_allowed", "$c = [Microsoft.Management.Infrastructure.CimNoSuch]\n",
             "1:6: [type] [Microsoft.Management.Infrastructure.CimNoSuch] is not in this check's allow-list"),
    Mutation("attribute_arguments", "function Test-It {\n    param ([ValidateRange('Positive')] [int] $Count)\n}\n",
             "2:12: [type] [ValidateRange(...)]: no overload of System.Management.Automation.ValidateRangeAttribute::new takes 1 argument(s)"),
    Mutation("csharp_util_not_required", "$j = [Ansible.Basic.AnsibleModule]::ToJson(@{})\n",
             "1:6: [type] [Ansible.Basic.AnsibleModule] comes from the C# util Ansible.Basic, which this file does not require"),
    # static members
    Mutation("file_move_3", "[System.IO.File]::Move('a', 'b', $true)\n",
             "1:1: [static] no overload of System.IO.File.Move takes 3 argument(s) in .NET Framework 4.8 (it has: Move(string, string))"),
    Mutation("relative_path", "$r = [System.IO.Path]::GetRelativePath('a', 'b')\n",
             "1:6: [static] System.IO.Path has no static method GetRelativePath in .NET Framework 4.8"),
    Mutation("static_property", "$m = [int]::MaxValueX\n", "1:6: [static] System.Int32 has no static member MaxValueX in .NET Framework 4.8"),
    Mutation("constructor", "$w = [System.IO.StringWriter]::new(1, 2, 3)\n",
             "1:6: [static] no overload of System.IO.StringWriter::new takes 3 argument(s) in .NET Framework 4.8"),
    Mutation("join_char", "$s = [string]::Join([char]',', 'a', 'b')\n",
             "1:6: [static] System.String.Join(char, string[]) does not exist in .NET Framework 4.8: pwsh 7 calls it"),
    # instance methods of statically known receivers
    Mutation("contains_char", "$found = 'ab'.Contains([char]'a')\n",
             "1:10: [method] System.String.Contains(char) does not exist in .NET Framework 4.8: pwsh 7 calls it"),
    Mutation("split_string", "$parts = 'a--b'.Split('--')\n",
             "1:10: [method] System.String.Split(string, StringSplitOptions) does not exist in .NET Framework 4.8"),
    Mutation("constructed_variable", "$list = [System.Collections.Generic.List[string]]::new()\n$list.Add('a', 'b')\n",
             "2:1: [method] no overload of System.Collections.Generic.List[System.String].Add takes 2 argument(s)"),
    Mutation("new_object_variable", "$list = New-Object -TypeName System.Collections.ArrayList\n$null = $list.AddX(1)\n",
             "2:9: [method] System.Collections.ArrayList has no instance method AddX in .NET Framework 4.8"),
    Mutation("typed_parameter", "function Test-It {\n    param ([System.Text.StringBuilder] $Builder)\n    $null = $Builder.AppendJoin(',', 'a')\n}\n",
             "3:13: [method] System.Text.StringBuilder has no instance method AppendJoin in .NET Framework 4.8"),
    Mutation("cast", "$id = ([guid]'d5b0c2a6-0000-0000-0000-000000000000').ToByteArray($true)\n",
             "1:7: [method] no overload of System.Guid.ToByteArray takes 1 argument(s) in .NET Framework 4.8"),
    Mutation("ansible_module", "#AnsibleRequires -CSharpUtil Ansible.Basic\n$module = [Ansible.Basic.AnsibleModule]::Create($args, @{})\n"
             "$module.FailJson('a', 'b', 'c')\n",
             "3:1: [method] no overload of Ansible.Basic.AnsibleModule.FailJson takes 3 argument(s)"),
]

# What 5.1 accepts, written the way the rules look at: none of it may be reported.
COMPATIBLE = """\
using namespace System.Text
$h = [ordered]@{ a = 1 }
$list = [System.Collections.Generic.List[string]]::new()
$list.Add('a')
$parts = 'a,b'.Split(',')
$has = 'abc'.Contains('b')
$id = [guid]::NewGuid().ToString()
$parsed = [guid]::Empty
$ok = [guid]::TryParse('x', [ref]$parsed)
$max = [Math]::Max(1, 2)
$doc = [xml]'<a/>'
$null = $doc.SelectNodes('//a')
$builder = New-Object -TypeName StringBuilder -ArgumentList 16
$null = $builder.Append('x').AppendLine()
$array = [object[]]::new(3)
$error1 = [System.Exception]::new('m')
$code = [Microsoft.Management.Infrastructure.NativeErrorCode]::NotFound
try { 1 } catch [System.IO.IOException] { 2 }
$doubled = @(1, 2).ForEach({ $_ * 2 })
$size = 5kb + 10L + 0xFFl + 1.5d
$text = "`$e `n"
Add-Type -AssemblyName System.Web
$encoded = [System.Web.HttpUtility]::UrlEncode('a b')
$joined = [string]::Join(',', 'a', 'b', 'c')
$noon = [datetime]::Today.AddHours(12)
class Box { [string] $Name }
$box = [Box]::new()
function Test-It {
    [CmdletBinding()]
    [OutputType([string])]
    param (
        [Parameter(Mandatory, DontShow)]
        [ValidateRange(1, 10)]
        [int]
        $Count,

        [Diagnostics.CodeAnalysis.SuppressMessageAttribute('PSAvoidUsingPlainTextForPassword', '')]
        [string]
        $Name,

        # A parameter holds what is passed, maybe a subclass with more methods: a hashtable here.
        [System.Collections.IDictionary]
        $Map
    )
    $Name.Trim().ToUpperInvariant()
    $Map.ContainsKey('a')
}
"""


@pytest.fixture(scope="module")
def mutated(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckRun, pathlib.Path]:
    """One check run over one file per mutation plus a compatible file; returns it and the folder."""
    folder = tmp_path_factory.mktemp("ps51")
    for mutation in MUTATIONS:
        (folder / f"{mutation.name}.ps1").write_text(mutation.source, encoding="utf-8")
    (folder / "compatible.ps1").write_text(COMPATIBLE, encoding="utf-8")
    return run_check(*sorted(folder.glob("*.ps1"))), folder


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_incompatibility_is_found(mutated: tuple[CheckRun, pathlib.Path], mutation: Mutation) -> None:
    run, folder = mutated
    found = run.findings_for(folder / f"{mutation.name}.ps1")
    assert [f for f in found if f.startswith(mutation.expected)], f"expected {mutation.expected!r}, got {found}"


def test_findings_fail_the_check(mutated: tuple[CheckRun, pathlib.Path]) -> None:
    run = mutated[0]
    assert run.returncode == 1
    assert f", {len(run.findings)} findings; " in run.summary


def test_compatible_code_is_not_reported(mutated: tuple[CheckRun, pathlib.Path]) -> None:
    run, folder = mutated
    assert run.findings_for(folder / "compatible.ps1") == []


def test_missing_csharp_util_source_is_a_finding(tmp_path: pathlib.Path) -> None:
    """Without Ansible.Basic.cs the check cannot vouch for Ansible.Basic types: it must not pass."""
    module = tmp_path / "module.ps1"
    module.write_text("#AnsibleRequires -CSharpUtil Ansible.Basic\n$m = [Ansible.Basic.AnsibleModule]::Create($args, @{})\n",
                      encoding="utf-8")
    run = run_check(module, csharp=["-CSharpUtilPath", str(tmp_path)])
    assert run.returncode == 1, run.output
    found = run.findings_for(module)
    assert [f for f in found if f.startswith("2:6: [type] [Ansible.Basic.AnsibleModule] cannot be checked: source Ansible.Basic.cs not found")], found
