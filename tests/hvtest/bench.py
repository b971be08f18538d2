"""make bench: what backing up many VMs of one host costs, in time and round trips.

Starts the simulator with N VMs whose Hyper-V jobs take realistic fractions of a minute scaled
down (checkpoint 2 s, export 4 s, conversion 1 s), and backs them all up twice with the role
rct_backup: once as it runs (each step one module call for all VMs), once the way a playbook
without vms would (the role included once per VM). Prints wall time and module runs of each.

Run: PYTHONPATH=tests .venv/bin/python -m hvtest.bench [N ...]
"""

from __future__ import annotations

import collections
import pathlib
import sys
import tempfile
import time

import yaml

from .sim.runner import SimServer

JOBS = {"CreateSnapshot": {"duration": 2}, "ExportSystemDefinition": {"duration": 4}, "ConvertToReferencePoint": {"duration": 1},
        "DestroySnapshot": {"duration": 0.5}, "DestroyReferencePoint": {"duration": 0.5}}


def scenario(count: int, workdir: pathlib.Path) -> pathlib.Path:
    vms = [{"name": f"vm{i:03d}", "id": f"b0b0b0b0-0000-4000-8000-{i:012d}", "disks": [{"path": f"D:\\VMs\\vm{i:03d}\\os.vhdx", "size_gb": 40}]}
           for i in range(count)]
    path = workdir / f"bench-{count}.yml"
    path.write_text(yaml.safe_dump({"host": "HVBENCH", "jobs": JOBS, "vms": vms}), encoding="utf-8")
    return path


def playbook(workdir: pathlib.Path, names: list[str], together: bool, label: str) -> pathlib.Path:
    variables = {"rct_backup_destination": "E:\\Backup", "rct_backup_label": label}
    if together:
        tasks = [{"name": "Back up", "ansible.builtin.include_role": {"name": "hyperv.backup.rct_backup"},
                  "vars": {**variables, "rct_backup_vms": names}}]
    else:
        tasks = [{"name": "Back up one VM", "ansible.builtin.include_role": {"name": "hyperv.backup.rct_backup"},
                  "vars": {**variables, "rct_backup_vms": ["{{ item }}"]}, "loop": names}]
    path = workdir / f"bench-{label}.yml"
    path.write_text(yaml.safe_dump([{"name": "bench", "hosts": "hyperv", "gather_facts": False, "tasks": tasks}]), encoding="utf-8")
    return path


def measure(count: int, together: bool) -> tuple[float, collections.Counter, int]:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="hvbench-"))
    with SimServer(scenario(count, workdir), workdir) as server:
        names = [f"vm{i:03d}" for i in range(count)]
        started = time.monotonic()
        done = server.playbook(playbook(workdir, names, together, "together" if together else "one-by-one"))
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(done.stdout[-3000:])
        runs = collections.Counter(r["module"] for r in server.calls()["module_runs"])
        return seconds, runs, len(server.state()["reference_points"])


def main(argv: list[str]) -> int:
    counts = [int(a) for a in argv] or [5, 20]
    print(f"jobs per VM: checkpoint {JOBS['CreateSnapshot']['duration']} s, export {JOBS['ExportSystemDefinition']['duration']} s, "
          f"conversion {JOBS['ConvertToReferencePoint']['duration']} s")
    print(f"{'VMs':>4}  {'how':<22} {'seconds':>8} {'module runs':>12}  {'job polls':>9}  reference points")
    for count in counts:
        for together in (True, False):
            seconds, runs, points = measure(count, together)
            how = "each step for all VMs" if together else "role per VM"
            print(f"{count:>4}  {how:<22} {seconds:>8.1f} {sum(runs.values()) - runs['job_info']:>12}  {runs['job_info']:>9}  {points}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
