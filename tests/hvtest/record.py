"""Records module outputs for the action plugins' unit tests (tests/unit/plugins/action/test_data).

The outputs come from the simulator's renderings of the modules, on a host whose clock the
recorder moves, so a job's progress is the same at every recording. Each line of a .jsonl file
is one module call the action plugin makes: the module, the arguments it must pass, and what the
module answered (or the connection error it raised).

Run: PYTHONPATH=tests .venv/bin/python -m hvtest.record
"""

from __future__ import annotations

import json

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


class Recorder:
    def __init__(self, faults: list[dict] | None = None) -> None:
        self.clock = Clock()
        scenario = dict(SCENARIO, faults=faults or [])
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


def slow_create(name: str, drops: int = 0) -> None:
    """A 100 s creation followed by polls at 1, 1.5, 2.25 ... s of host wait, done by the last."""
    recorder = Recorder()
    first = recorder.call("hyperv.backup.reference_point", vm="web01", name="nightly", wait_timeout=0)
    job_id = first["job"]["id"]
    elapsed = 0.0
    # the controller's back-off (plugin_utils.job_wait.Backoff): 1 s growing by 1.5 to 15 s;
    # every poll, answered or dropped, takes the next interval
    intervals = [min(15.0, 1.5 ** n) for n in range(200)]
    while True:
        host_wait = max(1, int(-(-intervals.pop(0) // 1)))
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


def main() -> None:
    slow_create("slow_create")
    slow_create("slow_create_two_drops", drops=2)
    failed_create()
    hung_create()
    for path in sorted(OUT.glob("*.jsonl")):
        print(f"{path.relative_to(ROOT)}: {len(path.read_text(encoding='utf-8').splitlines())} module calls")


if __name__ == "__main__":
    main()
