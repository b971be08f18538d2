"""make static: the Windows PowerShell 5.1 compatibility check (tests/hvtest/ps51check.ps1) on plugins/.

Syntax newer than 5.1, and every .NET type and member the PowerShell names, held against the
.NET Framework 4.8 reference assemblies and PowerShell Standard 5.1 ($PWSH_VENDOR_DIR/refs), with
Ansible.Basic compiled from the installed ansible-core's source.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import ansible

from .collection import ROOT
from .sim.pwsh import find_pwsh


def main(argv: list[str]) -> int:
    csharp = pathlib.Path(ansible.__file__).parent / "module_utils" / "csharp"
    command = [find_pwsh(), "-NoProfile", "-NonInteractive", "-File", str(ROOT / "tests" / "hvtest" / "ps51check.ps1"),
               *argv, "-CSharpUtilPath", str(csharp)]
    return subprocess.run(command, cwd=ROOT, check=False, env=dict(os.environ, POWERSHELL_TELEMETRY_OPTOUT="1")).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
