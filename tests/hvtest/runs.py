"""How many module runs a test suite made, and their time: the summary line make prints.

Every simulated host appends its module runs to $HVTEST_RUNS_LOG when it stops
(sim/runner.py); this reads them back. All of them ran in pwsh: the collection's real
PowerShell through ansible-core's exec wrapper.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

from .sim.pwsh import find_pwsh


def pwsh_version() -> str:
    done = subprocess.run([find_pwsh(), "-NoProfile", "-NonInteractive", "-Command", "$PSVersionTable.PSVersion.ToString()"],
                          capture_output=True, text=True, check=False, env=dict(os.environ, POWERSHELL_TELEMETRY_OPTOUT="1"))
    return done.stdout.strip() or "unknown"


def summary(suite: str, log: pathlib.Path) -> str:
    runs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()] if log.exists() else []
    seconds = sum(r["seconds"] for r in runs)
    per_run = seconds / len(runs) if runs else 0.0
    by_module: dict[str, int] = {}
    for run in runs:
        by_module[str(run["module"])] = by_module.get(str(run["module"]), 0) + 1
    modules = ", ".join(f"{name} {count}" for name, count in sorted(by_module.items()))
    return (f"{suite}: {len(runs)} module runs, every one on the real PowerShell (pwsh {pwsh_version()}, the collection's .ps1/.psm1 "
            f"through ansible-core's exec wrapper); {seconds:.0f} s in pwsh, {per_run:.1f} s per run ({modules})")
