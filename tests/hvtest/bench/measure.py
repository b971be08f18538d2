"""Running one benchmark scenario against simulated hosts and measuring it from the hosts' side.

Every figure comes from the simulated hosts (module runs, WS-Man operations, Hyper-V calls, pwsh
time, the wall-clock timeline of WinRM shells, pwsh processes and Hyper-V jobs) or from the clock
around ansible-playbook; none from what the modules or the playbook report about themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import yaml

from .. import paths
from ..sim.pwsh import SLOTS_ENV
from ..sim.runner import PASSWORD, USER, SimServer

# The CIM requests a Windows host would answer through WMI (the simulator's call log also records
# what it did with them: jobs started, files written, faults).
HYPERV_CALLS = ("enumerate", "get", "associators", "invoke")


@dataclasses.dataclass
class Measured:
    """One row of the table: a scenario run by one engine (or derived from a run, said so)."""

    scenario: str
    engine: str
    vms: int
    hosts: int
    module_runs: int
    operations: int
    hyperv_calls: int
    pwsh_seconds: float
    wall: float
    floor: float | None = None
    derived: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    runs_by_module: dict[str, int] = dataclasses.field(default_factory=dict)
    phases: dict[str, float] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class HostRecord:
    """What one simulated host saw during a run."""

    module_runs: list[dict]
    operations: int
    calls: list[dict]
    shells: list[dict]
    jobs: list[dict]


def host_scenario(name: str, vms: int, jobs: dict, clock_scale: float, latency_ms: float) -> dict:
    """A simulated host with vms VMs (vm000...) of one 40 GB disk, jobs timed in simulated seconds."""
    return {
        "host": name, "jobs": jobs, "clock_scale": clock_scale, "latency_ms": latency_ms,
        "vms": [{"name": f"vm{i:03d}", "id": f"b0b0b0b0-0000-4000-8000-{i:012d}",
                 "disks": [{"path": f"D:\\VMs\\vm{i:03d}\\os.vhdx", "size_gb": 40}]} for i in range(vms)],
    }


@contextlib.contextmanager
def simulated_hosts(workdir: pathlib.Path, count: int, scenario: dict) -> Iterator[list[SimServer]]:
    """count simulator processes with the same scenario (host names HVB01...), started and stopped side by side.

    With more than one, their module runs share slots, one per core of this machine (sim/pwsh.py,
    core_slot): each real host has cores of its own, and more pwsh processes than cores here only
    slow each other down.
    """
    with contextlib.ExitStack() as stack:
        if count > 1:
            slots = workdir / "core-slots"
            slots.mkdir(parents=True, exist_ok=True)
            for index in range(os.cpu_count() or 1):
                (slots / f"slot-{index}").touch()
            stack.enter_context(_environment(**{SLOTS_ENV: str(slots)}))
        servers = []
        for index in range(count):
            folder = workdir / f"host{index + 1:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "scenario.yml"
            path.write_text(yaml.safe_dump({**scenario, "host": f"HVB{index + 1:02d}"}), encoding="utf-8")
            servers.append(SimServer(path, folder))
        stack.enter_context(_side_by_side(servers))
        yield servers


@contextlib.contextmanager
def _side_by_side(servers: list[SimServer]) -> Iterator[None]:
    """Starts every server before waiting for any, and stops them all the same way."""
    started: list[SimServer] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        for server in started:
            server.wait_started()
        yield
    finally:
        for server in started:
            server.log_module_runs()
        for server in started:
            server.terminate()
        for server in started:
            server.wait_stopped()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """os.environ with values set (the simulators started inside inherit them), restored on exit."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def inventory(servers: list[SimServer], path: pathlib.Path) -> pathlib.Path:
    """An inventory with one WinRM host per simulator (hvb01...), each with its own backup folder as backup_root."""
    hosts = {f"hvb{i + 1:02d}": {
        "ansible_host": "127.0.0.1", "ansible_port": server.port, "ansible_connection": "winrm",
        "ansible_winrm_transport": "basic", "ansible_winrm_scheme": "http", "ansible_user": USER, "ansible_password": PASSWORD,
        "backup_root": server.path("Backup"),
    } for i, server in enumerate(servers)}
    path.write_text(yaml.safe_dump({"all": {"children": {"hyperv": {"hosts": hosts}}}}), encoding="utf-8")
    return path


def run_playbook(playbook: pathlib.Path, inventory_path: pathlib.Path, extra_vars: dict, forks: int,
                 collections: list[pathlib.Path], tags: str | None = None) -> tuple[float, float]:
    """Runs ansible-playbook once; returns (wall seconds, its start as wall-clock time). Fails loudly when the play fails."""
    argv = [paths.tool("ansible-playbook"), "-i", str(inventory_path), str(playbook), "-e", json.dumps(extra_vars), "-f", str(forks)]
    if tags:
        argv += ["--tags", tags]
    env = paths.ansible_env(ANSIBLE_COLLECTIONS_PATH=":".join(str(p) for p in collections), ANSIBLE_STDOUT_CALLBACK="minimal")
    started_wall, started = time.time(), time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=str(paths.ROOT))
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"{playbook.name} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")
    return wall, started_wall


def record(server: SimServer) -> HostRecord:
    calls = server.calls()
    timeline = server.timeline()
    return HostRecord(module_runs=calls["module_runs"], operations=calls["operations"], calls=calls["calls"],
                      shells=timeline["shells"], jobs=timeline["jobs"])


def module_name(run: dict) -> str:
    """A module run's module, short (job_info), whatever form the payload named it in."""
    name = run["module"]
    if name.endswith(".ps1"):
        name = name[:-len(".ps1")]
    return name.rsplit(".", 1)[-1]


def measured(scenario: str, engine: str, vms: int, records: list[HostRecord], wall: float) -> Measured:
    """A row from the hosts' records and the wall time of the play."""
    runs = [run for r in records for run in r.module_runs]
    by_module: dict[str, int] = {}
    for run in runs:
        by_module[module_name(run)] = by_module.get(module_name(run), 0) + 1
    return Measured(
        scenario=scenario, engine=engine, vms=vms, hosts=len(records), module_runs=len(runs),
        operations=sum(r.operations for r in records),
        hyperv_calls=sum(1 for r in records for call in r.calls if call["op"] in HYPERV_CALLS),
        pwsh_seconds=round(sum(run["seconds"] - run["times"].get("slot_wait", 0.0) for run in runs), 1), wall=round(wall, 1), runs_by_module=by_module)


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def _overlap(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(e, end) - max(s, start)) for s, e in intervals)


def phases(record_: HostRecord, wall: float, started_wall: float) -> dict[str, float]:
    """Where the time of one host's play went, in seconds, from the host's timeline (tasks run one after another).

    controller: no WinRM shell open (ansible-playbook's own work: templating, the role's filters,
    starting each task) - split into waiting on jobs between polls and the rest; WinRM: a shell is
    open but no pwsh runs (shell create, command, stdin, receive, delete, with the injected
    latency); pwsh start and exec wrapper: pwsh started until the module's first CIM call (the
    bootstrap, the exec wrapper, compiling Ansible.Basic, importing module_utils, checking
    arguments); waiting on jobs: the module runs while a Hyper-V job of the host is running;
    module code: the rest of the module's run.
    """
    jobs = _union([(j["started"], j["ended"]) for j in record_.jobs if j["ended"] is not None])
    shells = _union([(s["created"], s["deleted"] or s["created"]) for s in record_.shells])
    pwsh = pwsh_start = waiting = 0.0
    for run in record_.module_runs:
        times = run["times"]
        first_cim = times.get("first_cim") or times["pwsh_end"]
        pwsh += times["pwsh_end"] - times["pwsh_start"]
        pwsh_start += first_cim - times["pwsh_start"]
        waiting += _overlap(jobs, first_cim, times["pwsh_end"])
    open_shells = _length(shells)
    between = _overlap(jobs, started_wall, started_wall + wall) - sum(_overlap(jobs, s, e) for s, e in shells)
    controller = wall - open_shells
    return {
        "controller": round(controller - max(0.0, between), 2),
        "controller, waiting on jobs between polls": round(max(0.0, between), 2),
        "WinRM": round(open_shells - pwsh, 2),
        "pwsh start and exec wrapper": round(pwsh_start, 2),
        "module code": round(pwsh - pwsh_start - waiting, 2),
        "waiting on jobs (in a module)": round(waiting, 2),
    }
