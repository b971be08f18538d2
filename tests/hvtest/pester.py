"""make pester: the Pester tests of the module_utils (tests/pester), in one pwsh process.

The tests load the module_utils as ansible-core's exec wrapper does and compile Ansible.Basic
from the installed ansible-core; those needing Hyper-V start a simulated host of their own.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import ansible

from .collection import ROOT
from .sim.pwsh import SHIM_MODULES, find_pwsh


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    env.update({
        "HVTEST_ROOT": str(ROOT),
        "HVTEST_PYTHON": sys.executable,
        "HVTEST_ANSIBLE": str(pathlib.Path(ansible.__file__).parent),
        # The CIM cmdlets come from the test shim, found by auto-loading as the module runs find them.
        "PSModulePath": os.pathsep.join(p for p in (str(SHIM_MODULES), os.environ.get("PSModulePath", "")) if p),
        "POWERSHELL_TELEMETRY_OPTOUT": "1",
        "POWERSHELL_UPDATECHECK": "Off",
    })
    paths = argv or [str(ROOT / "tests" / "pester")]
    command = [find_pwsh(), "-NoProfile", "-NonInteractive", "-File", str(ROOT / "tests" / "pester" / "run.ps1"), *paths]
    return subprocess.run(command, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
