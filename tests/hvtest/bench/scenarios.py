"""The benchmark's scenarios, each run by the collection and by the baseline (tests/bench/baseline.yml).

Hyper-V's jobs take what they take on a host in simulated seconds (JOBS); the simulator's clock
runs CLOCK_SCALE times faster, so a night's work fits in a benchmark run. Module starts, WinRM and
the controller are real time: what the benchmark is about.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import yaml

from .. import paths
from . import measure

BASELINE = paths.ROOT / "tests" / "bench" / "baseline.yml"
BASELINE_NOOP = paths.ROOT / "tests" / "bench" / "baseline-noop.yml"

# Simulated seconds: an application-consistent checkpoint (VSS in the guest), an export of a 40 GB
# disk, a conversion, removals. Microsoft gives no figures; these are typical of what users report
# (tens of seconds for VSS, minutes for tens of GB).
JOBS = {"CreateSnapshot": {"duration": 30}, "ExportSystemDefinition": {"duration": 180}, "ConvertToReferencePoint": {"duration": 5},
        "DestroySnapshot": {"duration": 5}, "DestroyReferencePoint": {"duration": 3}}
CLOCK_SCALE = 60.0
LATENCY_MS = 20.0
FLEET_LATENCY_MS = 200.0
LONG_EXPORT_SECONDS = 600.0
# The module waits this long on the host before it hands the export to the controller (the
# role's default), so the 10-minute export, 10 real seconds on the clock, is followed from there.
LONG_WAIT_TIMEOUT = 5
# The Hyper-V steps of a backup (one job each per VM) and the methods of their jobs.
BACKUP_STEPS = ("CreateSnapshot", "ExportSystemDefinition", "ConvertToReferencePoint")


@dataclasses.dataclass
class Scenario:
    """One scenario: its name, VMs per host, hosts, and how each engine runs it."""

    name: str
    vms: int
    hosts: int = 1
    latency_ms: float = LATENCY_MS
    forks: int = 5
    jobs: dict = dataclasses.field(default_factory=lambda: JOBS)
    clock_scale: float = CLOCK_SCALE
    steps: tuple[str, ...] = BACKUP_STEPS
    collection: Callable[[pathlib.Path], tuple[pathlib.Path, dict, str | None]] | None = None
    baseline: Callable[[pathlib.Path], tuple[pathlib.Path, dict, str | None]] | None = None
    baseline_missing: str = ""

    def floor(self, module_start: float) -> float:
        """Hyper-V's work if each step's jobs ran side by side, plus one module start per step (seconds, real)."""
        jobs = sum(float(self.jobs.get(method, {}).get("duration", 0)) / self.clock_scale for method in self.steps)
        return jobs + module_start * max(1, len(self.steps))


def _play(workdir: pathlib.Path, name: str, tasks: list[dict]) -> pathlib.Path:
    path = workdir / f"{name}.yml"
    path.write_text(yaml.safe_dump([{"name": name, "hosts": "hyperv", "gather_facts": False, "tasks": tasks}], sort_keys=False),
                    encoding="utf-8")
    return path


def _names(count: int) -> list[str]:
    return [f"vm{i:03d}" for i in range(count)]


def collection_noop(workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
    return _play(workdir, "noop", [{"name": "Remove the recovery checkpoint bench (there is none)",
                                    "hyperv.backup.recovery_checkpoint": {"vm": "vm000", "name": "bench", "state": "absent"}}]), {}, None


def collection_create(workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
    return _play(workdir, "create", [{"name": "Make the recovery checkpoint bench",
                                      "hyperv.backup.recovery_checkpoint": {"vm": "vm000", "name": "bench", "consistency": "crash"}}]), {}, None


def collection_role(count: int) -> Callable[[pathlib.Path], tuple[pathlib.Path, dict, str | None]]:
    def write(workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
        return _play(workdir, f"role-{count}", [{"name": "Nightly backup", "ansible.builtin.include_role": {"name": "hyperv.backup.rct_backup"},
                                                 "vars": {"rct_backup_vms": _names(count), "rct_backup_destination": "{{ backup_root }}",
                                                          "rct_backup_label": "night1", "rct_backup_consistency": "crash"}}]), {}, None
    return write


def collection_long(workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
    return _play(workdir, "long", [
        {"name": "Make the recovery checkpoint", "hyperv.backup.recovery_checkpoint": {"vm": "vm000", "name": "night1", "consistency": "crash"}},
        {"name": "Export it (the action plugin follows the job)", "hyperv.backup.vm_export": {
            "vm": "vm000", "checkpoint": "night1", "destination": "{{ backup_root }}", "wait_timeout": LONG_WAIT_TIMEOUT}},
    ]), {}, None


def baseline_noop(_workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
    return BASELINE_NOOP, {"vm": "vm000"}, None


def baseline_steps(count: int, tags: str | None = None) -> Callable[[pathlib.Path], tuple[pathlib.Path, dict, str | None]]:
    def write(_workdir: pathlib.Path) -> tuple[pathlib.Path, dict, str | None]:
        return BASELINE, {"vms": _names(count)}, tags
    return write


def catalogue(quick: bool) -> list[Scenario]:
    """The scenarios of a run: all of them, or (quick) one of each kind at its smallest."""
    long_jobs = {**JOBS, "ExportSystemDefinition": {"duration": LONG_EXPORT_SECONDS}}
    scenarios = [Scenario("no-op", 1, steps=(), collection=collection_noop, baseline=baseline_noop)]
    if not quick:
        scenarios.append(Scenario("create, job ends in the wait", 1, steps=("CreateSnapshot",), collection=collection_create,
                                  baseline=baseline_steps(1, "checkpoint")))
    for count in (1,) if quick else (1, 5, 20, 50):
        scenarios.append(Scenario("nightly role", count, collection=collection_role(count),
                                  baseline=baseline_steps(count) if count <= 20 else None,
                                  baseline_missing="" if count <= 20 else "not run beyond 20 VMs (it grows by 4 module runs per VM)"))
    scenarios.append(Scenario("10-min export job", 1, jobs=long_jobs,
                              steps=("CreateSnapshot", "ExportSystemDefinition"), collection=collection_long,
                              baseline=baseline_steps(1, "checkpoint,export")))
    if not quick:
        scenarios.append(Scenario("fleet", 10, hosts=20, latency_ms=FLEET_LATENCY_MS, forks=20, collection=collection_role(10),
                                  baseline=baseline_steps(10)))
    return scenarios


def run(scenario: Scenario, engine: str, workdir: pathlib.Path, windows: pathlib.Path) -> tuple[measure.Measured, list[measure.HostRecord]]:
    """Runs a scenario with one engine on fresh simulated hosts; the baseline of the fleet on one host (its fleet row is derived)."""
    writer = scenario.collection if engine == "collection" else scenario.baseline
    if writer is None:
        raise ValueError(f"{scenario.name}: no {engine} run")
    hosts = scenario.hosts if engine == "collection" else 1
    folder = workdir / f"{scenario.name.replace(' ', '-').replace(',', '')}-{scenario.vms}-{engine}"
    folder.mkdir(parents=True, exist_ok=True)
    data = measure.host_scenario("HVB", scenario.vms, scenario.jobs, scenario.clock_scale, scenario.latency_ms)
    with measure.simulated_hosts(folder, hosts, data) as servers:
        for server in servers:
            pathlib.Path(server.path("Backup")).mkdir(parents=True, exist_ok=True)
        playbook, extra_vars, tags = writer(folder)
        wall, started_wall = measure.run_playbook(playbook, measure.inventory(servers, folder / "inventory.yml"), extra_vars,
                                                  scenario.forks, [paths.collections_path(), windows], tags)
        records = [measure.record(server) for server in servers]
    row = measure.measured(scenario.name, engine, scenario.vms, records, wall)
    row.extra["started_wall"] = started_wall
    return row, records
