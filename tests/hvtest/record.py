"""Records module outputs for the action plugins' unit tests (tests/unit/plugins/action/test_data).

The outputs come from the simulator's renderings of the modules, on a host whose clock the
recorder moves, so a job's progress is the same at every recording. Each line of a .jsonl file
is one module call the action plugin makes: the module, the arguments it must pass, and what the
module answered (or the connection error it raised).

Run: PYTHONPATH=tests .venv/bin/python -m hvtest.record
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator

from .collection import ROOT
from .sim import modules
from .sim.host import SimHost

OUT = ROOT / "tests" / "unit" / "plugins" / "action" / "test_data"
SCENARIO = {
    "host": "HV01",
    "jobs": {"CreateReferencePoint": {"duration": 100}, "DestroyReferencePoint": {"duration": 100}},
    "vms": [{"name": "web01", "id": "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"}],
}
JOB_ID_MARK = "{job_id}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _strip(result: dict) -> dict:
    result.pop("invocation", None)
    return result


BATCH_SCENARIO = {
    "host": "HV01",
    "jobs": {"CreateSnapshot": {"duration": 10}},
    "vms": [{"name": "web01", "id": "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"}, {"name": "web02", "id": "7c5b6d3f-1e9d-4a8b-8b68-2e3f40516273"},
            {"name": "db01", "id": "0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13"}],
}


class Recorder:
    def __init__(self, faults: list[dict] | None = None, scenario: dict | None = None) -> None:
        self.clock = Clock()
        scenario = dict(scenario or SCENARIO, faults=faults or [])
        self.host = SimHost(scenario, clock=self.clock)
        self.lines: list[dict] = []

    def call(self, module: str, recorded_args: dict | None = None, **args) -> dict:
        result = _strip(modules.run_module(module.rsplit(".", 1)[-1], args, self.host))
        self.lines.append({"module": module, "args": recorded_args or args, "result": result})
        return result

    def poll(self, job_id: str, host_wait: int, advance: float) -> dict:
        """What job_info answers after waiting host_wait seconds on the host (the clock moves instead)."""
        self.clock.now += advance
        return self.call("hyperv.backup.job_info", {"job_id": job_id, "wait_timeout": host_wait}, job_id=job_id, wait_timeout=0)

    def connection_error(self, job_id: str, host_wait: int, message: str) -> None:
        """A poll whose connection dropped: the action plugin sent it, the host never answered."""
        self.lines.append({"module": "hyperv.backup.job_info", "args": {"job_id": job_id, "wait_timeout": host_wait},
                           "raise": "ConnectionError", "message": message})

    def save(self, name: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        with open(OUT / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for line in self.lines:
                handle.write(json.dumps(line, sort_keys=True) + "\n")


def host_waits() -> Iterator[int]:
    """The host waits of the controller's polls (plugin_utils.job_wait.Backoff): 1 s growing by 1.5 to 15 s, rounded up."""
    for n in itertools.count():
        yield max(1, math.ceil(min(15.0, 1.5 ** n)))


def slow_create(name: str, drops: int = 0) -> None:
    """A 100 s creation followed by polls at 1, 1.5, 2.25 ... s of host wait, done by the last."""
    recorder = Recorder()
    first = recorder.call("hyperv.backup.reference_point", vm="web01", name="nightly", wait_timeout=0)
    job_id = first["job"]["id"]
    elapsed = 0.0
    # every poll, answered or dropped, takes the next interval
    waits = host_waits()
    while True:
        host_wait = next(waits)
        if drops and elapsed > 10:
            drops -= 1
            recorder.connection_error(job_id, host_wait, "('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))")
            continue
        answer = recorder.poll(job_id, host_wait, host_wait)
        elapsed += host_wait
        if answer["job"]["finished"]:
            break
    recorder.call("hyperv.backup.reference_point", vm="web01", name="nightly", wait_timeout=0)
    recorder.save(name)


def failed_create() -> None:
    recorder = Recorder([{"method": "CreateReferencePoint", "job": {"duration": 3, "fail": {
        "error_code": 32768, "description": "Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
        "errors": ["Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
                   "Could not create backup checkpoint for virtual machine 'web01': The system cannot find the file specified. (0x80070002)."]}}}])
    first = recorder.call("hyperv.backup.reference_point", vm="web01", name="nightly", wait_timeout=0)
    job_id = first["job"]["id"]
    recorder.poll(job_id, 1, 1)
    recorder.poll(job_id, 2, 2)
    recorder.save("failed_create")


def hung_create() -> None:
    recorder = Recorder([{"method": "CreateReferencePoint", "job": {"never_ends": True}}])
    first = recorder.call("hyperv.backup.reference_point", vm="web01", name="nightly", wait_timeout=0)
    job_id = first["job"]["id"]
    for host_wait in (1, 2, 3, 4):
        recorder.poll(job_id, host_wait, host_wait)
    recorder.call("hyperv.backup.job_info", job_id=job_id, cancel=True)
    recorder.save("hung_create")


def follow(recorder: Recorder, job_id: str) -> dict:
    """Polls as the controller's back-off does until the job has ended."""
    for host_wait in host_waits():
        job = recorder.host.get_job(job_id)
        ended = job is None or int(job["JobState"]) >= 7
        answer = recorder.poll(job_id, host_wait, 0 if ended else host_wait)
        if answer["job"]["finished"]:
            return answer["job"]


def batch_checkpoints() -> None:
    """Four VMs in one task: two 10 s checkpoints, one whose application-consistent job fails
    after 3 s (crash fallback, a second 10 s job), one unknown VM."""
    recorder = Recorder([{"method": "CreateSnapshot", "vm": "db01", "job": {"duration": 3, "fail": {
        "error_code": 32768, "description": "Could not create the checkpoint: the guest's VSS writers failed."}}}], BATCH_SCENARIO)
    task = {"vms": [{"vm": "web01"}, {"vm": "web02"}, {"vm": "db01"}, {"vm": "nope"}], "name": "nightly", "crash_fallback": True, "wait_timeout": 0}
    first = recorder.call("hyperv.backup.recovery_checkpoint", **task)
    ids = [r["vm"]["id"] for r in first["results"][:3]]
    jobs = {vm_id: follow(recorder, r["job"]["id"]) for vm_id, r in zip(ids, first["results"][:3])}
    finish = {**task, "consistency": "application", "vms": [{"vm_id": i} for i in ids], "job_ids": {i: jobs[i]["id"] for i in ids}}
    second = recorder.call("hyperv.backup.recovery_checkpoint", **finish)
    crash = follow(recorder, second["results"][2]["job"]["id"])
    fallback = {**task, "consistency": "crash", "vms": [{"vm_id": ids[2]}], "job_ids": {ids[2]: crash["id"]}}
    recorder.call("hyperv.backup.recovery_checkpoint", **fallback)
    recorder.save("batch_checkpoints")


def main() -> None:
    slow_create("slow_create")
    slow_create("slow_create_two_drops", drops=2)
    failed_create()
    hung_create()
    batch_checkpoints()
    for path in sorted(OUT.glob("*.jsonl")):
        print(f"{path.relative_to(ROOT)}: {len(path.read_text(encoding='utf-8').splitlines())} module calls")


if __name__ == "__main__":
    main()
