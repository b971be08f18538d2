"""make demo, as a new user runs it: the example playbook, then the role's full and incremental backup."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_demo_runs_the_example_then_a_full_and_an_incremental_backup_with_their_summaries() -> None:
    done = subprocess.run([sys.executable, "-m", "hvtest.demo"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "tests")})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "== The rct_backup role: a full backup of web01 and db01" in out
    full, incremental = out.split("== 3 MiB written to web01's first disk")
    # The summary table each role run prints (the debug task's lines), one line per VM.
    assert re.search(r'"web01 +ok +full .* demo-full"', full) and re.search(r'"db01 +ok +full .* demo-full"', full), full
    assert re.search(r'"web01 +ok +incremental +3\.\d MiB .* demo-incremental"', incremental), incremental
    assert re.search(r'"db01 +ok +incremental .* demo-incremental"', incremental), incremental
    assert "[WARNING]" not in out and "[DEPRECATION WARNING]" not in out + done.stderr, "the demo shows no warning"
    assert re.search(r"\d+ x Msvm_VirtualSystemManagementService\.ExportSystemDefinition", out)
