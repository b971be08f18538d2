"""The benchmark's table: each row's figures and their ratio to the baseline of the same scenario."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
from typing import Any

from .measure import Measured

# What the baseline playbook does not do that the collection does: said in the table, not left out.
BASELINE_LACKS = ("no resume after a lost controller", "no catalog: labels, differential base and retention by "
                  "guess ('keep the last one', another product's reference points removed too)",
                  "no leftover cleanup, no crash-consistent fallback, no free-space or destination check")

COLUMNS = ("scenario", "VMs", "hosts", "engine", "module runs", "WS-Man ops", "Hyper-V calls", "pwsh s", "wall s", "floor s",
           "wall/floor")
RATIOS = ("module_runs", "operations", "hyperv_calls", "pwsh_seconds", "wall")


def derived_fleet(one_host: Measured, hosts: int) -> Measured:
    """The baseline's fleet figures from its one-host run: counts times the hosts, wall the same (forks >= hosts)."""
    return dataclasses.replace(
        one_host, hosts=hosts, module_runs=one_host.module_runs * hosts, operations=one_host.operations * hosts,
        hyperv_calls=one_host.hyperv_calls * hosts, pwsh_seconds=round(one_host.pwsh_seconds * hosts, 1), derived=True,
        notes=[f"derived from its 1-host run: counts x {hosts}, wall as one host (hosts run side by side with forks >= hosts; "
               "this machine could not run the hosts' PowerShell side by side)"], phases=None, extra={})


def baseline_for(row: Measured, rows: list[Measured]) -> Measured | None:
    """The baseline row a collection row is compared with: same scenario and VMs, the derived fleet one for the fleet."""
    candidates = [r for r in rows if r.engine == "baseline" and r.scenario == row.scenario and r.vms == row.vms and r.hosts == row.hosts]
    return candidates[-1] if candidates else None


def ratios(row: Measured, base: Measured | None) -> dict[str, float | None]:
    """Each figure of row divided by the baseline's (None where there is no baseline or it is 0)."""
    if base is None:
        return {name: None for name in RATIOS}
    return {name: (round(getattr(row, name) / getattr(base, name), 2) if getattr(base, name) else None) for name in RATIOS}


def _cell(value: Any, ratio: float | None = None) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return f"{text} ({ratio:.2f}x)" if ratio is not None else text


def table(rows: list[Measured], module_start: float) -> str:
    """The table as Markdown: collection rows carry their ratio to the baseline in brackets."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        r = ratios(row, baseline_for(row, rows)) if row.engine == "collection" else {name: None for name in RATIOS}
        engine = row.engine + (" (derived)" if row.derived else "")
        over = f"{row.wall / row.floor:.2f}" if row.floor else ""
        lines.append("| " + " | ".join([
            row.scenario, str(row.vms), str(row.hosts), engine, _cell(row.module_runs, r["module_runs"]), _cell(row.operations, r["operations"]),
            _cell(row.hyperv_calls, r["hyperv_calls"]), _cell(row.pwsh_seconds, r["pwsh_seconds"]), _cell(row.wall, r["wall"]),
            _cell(row.floor if row.floor is not None else ""), over]) + " |")
    notes = [f"- One module start (the no-op's module run, WinRM included): {module_start:.2f} s; ratios in brackets are "
             "collection / baseline of the same scenario."]
    for row in rows:
        if row.extra.get("late") is not None:
            notes.append(f"- {row.scenario}, {row.engine}: an export of {row.extra['simulated']:.0f} simulated seconds on a clock "
                         f"{row.extra['clock_scale']:.0f} times faster ({row.extra['simulated'] / row.extra['clock_scale']:.0f} s); "
                         f"its end noticed {row.extra['late']} s after it ended, {row.extra['polls']} poll(s) (job_info runs).")
        notes.extend(f"- {row.scenario}, {row.engine}: {note}" for note in row.notes)
    notes.append("- The baseline lacks what the collection does besides: " + "; ".join(BASELINE_LACKS) + ".")
    return "\n".join(lines + [""] + notes)


def targets(rows: list[Measured]) -> str:
    """The issue's targets, each met or missed by how much, from the rows of one run."""
    role = sorted((r for r in rows if r.scenario == "nightly role" and r.engine == "collection"), key=lambda r: r.vms)
    lines = []
    if role:
        runs = {r.vms: r.module_runs for r in role}
        same = len(set(runs.values())) == 1
        lines.append(f"- module runs per night do not grow with VMs ({', '.join(f'{v} VMs: {n}' for v, n in runs.items())}): "
                     + ("met" if same else "missed"))
        for row in role:
            if row.floor:
                over = row.wall / row.floor
                lines.append(f"- wall within 1.2x of the floor at {row.vms} VMs: {over:.2f}x, " + ("met" if over <= 1.2 else f"missed by {over / 1.2:.2f}x"))
    at20 = next((r for r in role if r.vms == 20), None)
    base20 = baseline_for(at20, rows) if at20 else None
    if at20 and base20:
        wanted_factors = (("module_runs", "fewer module runs", 5), ("operations", "fewer WS-Man operations", 5), ("wall", "less wall time", 3))
        for name, label, wanted in wanted_factors:
            factor = getattr(base20, name) / getattr(at20, name)
            lines.append(f"- {wanted}x {label} than the baseline at 20 VMs: {factor:.1f}x, "
                         + ("met" if factor >= wanted else f"missed by {wanted / factor:.2f}x"))
    return "\n".join(["Targets:"] + lines) if lines else ""


def phase_table(phases: dict[str, float]) -> str:
    total = sum(phases.values()) or 1.0
    largest = max(phases, key=phases.get)
    lines = ["| phase | seconds | share |", "|---|---|---|"]
    lines += [f"| {name} | {seconds:.1f} | {100 * seconds / total:.0f}% |" for name, seconds in phases.items()]
    return "\n".join(lines + ["", f"Largest: {largest}."])


def as_dict(row: Measured) -> dict[str, Any]:
    return dataclasses.asdict(row)


BEGIN = "<!-- bench: begin (make bench writes what follows) -->"
END = "<!-- bench: end -->"


def update_page(page: pathlib.Path, tables: str, seconds: float) -> None:
    """Replaces what is between the page's bench markers with this run's tables."""
    text = page.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{page} has no bench markers ({BEGIN} ... {END})")
    head, rest = text.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    machine = f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}"
    body = f"\nMeasured by `make bench` ({machine}; {seconds / 60:.1f} minutes):\n\n{tables}\n\n"
    page.write_text(head + BEGIN + body + END + tail, encoding="utf-8")
