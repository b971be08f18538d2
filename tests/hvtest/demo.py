"""make demo: the example playbook against a simulated Hyper-V host, as a user would see it.

Starts the simulator on a free loopback port with tests/e2e/scenarios/demo.yml, runs
playbooks/demo.yml (create a reference point, ask again for changed=false, list, remove) with
ansible-playbook over WinRM, then the rct_backup role twice through playbooks/demo-backup.yml (a
full backup of two VMs, a write to one VM's disk, an incremental), prints the output and the
Hyper-V calls the host received, and stops the simulator.
"""

from __future__ import annotations

import collections
import sys

from .collection import ROOT
from .sim.runner import SimServer

MIB = 2**20


def run(server: SimServer, playbook: str, *args: str) -> int:
    """Runs one of playbooks/ against the simulator and prints what ansible printed."""
    done = server.playbook(ROOT / "playbooks" / playbook, *args)
    print(done.stdout)
    if done.stderr.strip():
        print(done.stderr, file=sys.stderr)
    return done.returncode


def main() -> int:
    with SimServer(ROOT / "tests" / "e2e" / "scenarios" / "demo.yml") as server:
        print(f"== Hyper-V simulator HV01 on http://127.0.0.1:{server.port}/wsman (WinRM, basic auth over HTTP)\n", flush=True)
        if run(server, "demo.yml", "--diff") != 0:
            return 1
        destination = server.path("Backup")
        print(f"== The rct_backup role: a full backup of web01 and db01 into {destination}\n", flush=True)
        if run(server, "demo-backup.yml", "-e", f"rct_backup_destination={destination}", "-e", "rct_backup_label=demo-full") != 0:
            return 1
        server.write("web01", 3 * MIB, disk=0)
        print("== 3 MiB written to web01's first disk; the next run copies only that (and the VM's configuration)\n", flush=True)
        if run(server, "demo-backup.yml", "-e", f"rct_backup_destination={destination}", "-e", "rct_backup_label=demo-incremental") != 0:
            return 1
        calls = server.calls()["calls"]
        counted = collections.Counter(
            f"{c['class_name']}.{c['method']}" for c in calls if c["op"] == "invoke")
        print("== Hyper-V methods the host received:")
        for name, count in sorted(counted.items()):
            print(f"   {count} x {name}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
