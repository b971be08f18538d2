"""make bench: the collection against the usual playbook of win_powershell tasks, on the real PowerShell.

Run: PYTHONPATH=tests .venv/bin/python -m hvtest.bench WINDOWS_COLLECTIONS [--quick] [--json FILE]
(make bench and make bench-quick set it up: WINDOWS_COLLECTIONS holds ansible_collections/ansible/windows,
taken from the ansible package on PyPI by hvtest.bench.windows). BENCH_QUICK=1 is --quick.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

from . import measure, report, scenarios


def long_job_figures(records: list[measure.HostRecord]) -> dict[str, float | int]:
    """For the long export: how late its end was noticed (seconds after the job ended), and how many polls it took."""
    (host,) = records
    export = next(j for j in host.jobs if j["method"] == "ExportSystemDefinition")
    noticed = min(run["times"]["replied"] for run in host.module_runs
                  if run["times"].get("replied") and run["times"]["pwsh_end"] >= export["ended"])
    polls = sum(1 for run in host.module_runs if measure.module_name(run) == "job_info")
    return {"late": round(noticed - export["ended"], 1), "polls": polls}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hvtest.bench", description=__doc__)
    parser.add_argument("windows", type=pathlib.Path, help="a folder holding ansible_collections/ansible/windows")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--json", type=pathlib.Path, help="also write the rows here (the plot reads them)")
    parser.add_argument("--docs", type=pathlib.Path, help="put the tables in this page, between its bench markers (docs/performance.md)")
    options = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hvbench-"))
    started = time.monotonic()
    rows: list[measure.Measured] = []
    phases: dict[str, float] | None = None
    module_start = 0.0
    failures: list[str] = []
    catalogue = scenarios.catalogue(options.quick)
    largest_role = max(s.vms for s in catalogue if s.name == "nightly role")
    for scenario in catalogue:
        for engine in ("collection", "baseline"):
            if engine == "baseline" and scenario.baseline is None:
                continue
            print(f"... {scenario.name}, {scenario.vms} VM(s) x {scenario.hosts} host(s), {engine}", file=sys.stderr, flush=True)
            try:
                row, records = scenarios.run(scenario, engine, workdir, options.windows)
            except RuntimeError as failed:
                # One scenario failing must not lose the others' figures; the run still fails at the end.
                failures.append(f"{scenario.name}, {scenario.vms} VM(s) x {scenario.hosts} host(s), {engine}: {str(failed)[:2000]}")
                continue
            if scenario.name == "no-op" and engine == "collection":
                # One module start: the whole in-flight time of the one module run of the no-op.
                (run,) = records[0].module_runs
                module_start = run["times"]["replied"] - run["times"]["command"]
            row.floor = round(scenario.floor(module_start), 1)
            if engine == "collection" and scenario.baseline is None:
                row.notes.append(f"baseline {scenario.baseline_missing}")
            if scenario.name == "10-min export job":
                row.extra.update(long_job_figures(records), clock_scale=scenario.clock_scale,
                                 simulated=float(scenario.jobs["ExportSystemDefinition"]["duration"]))
            if scenario.name == "nightly role" and engine == "collection" and scenario.vms == largest_role:
                phases = measure.phases(records[0], row.wall, row.extra["started_wall"])
                row.phases = phases
            rows.append(row)
            if scenario.name == "fleet" and engine == "baseline":
                rows.append(report.derived_fleet(row, scenario.hosts))
    parts = (report.table(rows, module_start), report.targets(rows), report.phase_table(phases) if phases else "")
    tables = "\n\n".join(part for part in parts if part)
    print(tables)
    print(f"benchmark: {time.monotonic() - started:.0f} s")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if options.docs and not failures:
        report.update_page(options.docs, tables, time.monotonic() - started)
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps({"module_start": module_start, "rows": [report.as_dict(r) for r in rows]}, indent=1),
                                encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
