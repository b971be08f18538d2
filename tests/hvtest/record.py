"""Records module runs for the action plugins' unit tests (tests/unit/plugins/action/test_data).

Each recording is a real play against the simulator: ansible-playbook and the collection's action
plugin on the controller, the real modules in pwsh on the host. The endpoint logs every module
run in order with the arguments the action plugin sent and what the module answered; a run whose
answer the controller never got (a dropped connection) is recorded as the connection error it
raised. Each line of a .jsonl file is one such call: the unit tests replay them and check that
the plugin makes exactly these calls.

Run (with pwsh on PATH; a few minutes, the jobs take real time):
    PYTHONPATH=tests .venv/bin/python -m hvtest.record [name ...]
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
from collections.abc import Callable

import yaml

from .collection import ROOT
from .sim.runner import SimServer

OUT = ROOT / "tests" / "unit" / "plugins" / "action" / "test_data"
DROPPED = "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))"
WEB01 = {"name": "web01", "id": "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"}


def _scenario(work: pathlib.Path, jobs: dict, vms: list[dict] | None = None, faults: list[dict] | None = None) -> pathlib.Path:
    path = work / "scenario.yml"
    path.write_text(yaml.safe_dump({"host": "HV01", "jobs": jobs, "vms": vms or [WEB01], "faults": faults or []}), encoding="utf-8")
    return path


def _lines(server: SimServer) -> list[dict]:
    lines = []
    for run in server.calls()["module_runs"]:
        line = {"module": f"hyperv.backup.{run['module']}", "args": run["args"], "elapsed": run["elapsed"]}
        if run["dropped"]:
            line.update({"raise": True, "message": DROPPED})
        else:
            result = dict(run["result"] or {})
            result.pop("invocation", None)
            line["result"] = result
        lines.append(line)
    return lines


def record(name: str, scenario: Callable[[pathlib.Path], pathlib.Path], task: dict, endpoint: dict | None = None) -> None:
    """Plays one task against a fresh simulator and writes what the module runs were."""
    with tempfile.TemporaryDirectory(prefix=f"record-{name}-") as folder:
        work = pathlib.Path(folder)
        with SimServer(scenario(work), work) as server:
            if endpoint:
                server.endpoint_faults(**endpoint)
            playbook = work / "play.yml"
            playbook.write_text(yaml.safe_dump([{"name": name, "hosts": "hyperv", "gather_facts": False,
                                                 "tasks": [{**task, "ignore_errors": True}]}]), encoding="utf-8")
            done = server.playbook(playbook)
            lines = _lines(server)
    (OUT / f"{name}.jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines), encoding="utf-8")
    print(f"{name}: {len(lines)} module runs (play exit {done.returncode})")


FAIL = {"error_code": 32768,
        "description": "Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
        "errors": ["Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
                   "Could not create backup checkpoint for virtual machine 'web01': The system cannot find the file specified. (0x80070002)."]}
CREATE = {"hyperv.backup.reference_point": {"vm": "web01", "name": "nightly", "wait_timeout": 0}}

RECORDINGS: dict[str, Callable[[], None]] = {
    # Long enough for eight polls of the back-off (1, 2, 3, 4, 6, 8, 12, 15 s) plus a module start each.
    "slow_create": lambda: record("slow_create", lambda w: _scenario(w, {"CreateReferencePoint": {"duration": 110}}), CREATE),
    "slow_create_two_drops": lambda: record(
        "slow_create_two_drops", lambda w: _scenario(w, {"CreateReferencePoint": {"duration": 25}}), CREATE,
        endpoint={"drop_receives": 2, "drop_module": "job_info"}),
    "failed_create": lambda: record(
        "failed_create", lambda w: _scenario(w, {"CreateReferencePoint": {"duration": 8, "fail": FAIL}}), CREATE),
    "hung_create": lambda: record(
        "hung_create", lambda w: _scenario(w, {"CreateReferencePoint": {"never_ends": True}}),
        {"hyperv.backup.reference_point": {**CREATE["hyperv.backup.reference_point"], "job_timeout": 10, "cancel_on_job_timeout": True}}),
    # Four VMs: three made side by side, db01's application-consistent job fails (no integration
    # services) and falls back to crash consistency, one is unknown.
    "batch_checkpoints": lambda: record(
        "batch_checkpoints",
        lambda w: _scenario(w, {"CreateSnapshot": {"duration": 8}}, vms=[
            WEB01, {"name": "web02", "id": "7c5b6d3f-1e9d-4a8b-8b68-2e3f40516273"},
            {"name": "db01", "id": "0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13", "integration_services": False}]),
        {"hyperv.backup.recovery_checkpoint": {"vms": [{"vm": "web01"}, {"vm": "web02"}, {"vm": "db01"}, {"vm": "nope"}],
                                               "name": "nightly", "crash_fallback": True, "wait_timeout": 0}}),
}


def main(argv: list[str]) -> int:
    for name in argv or list(RECORDINGS):
        RECORDINGS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
