"""make demo: the example playbook against a simulated Hyper-V host, as a user would see it.

Starts the simulator on a free loopback port with tests/e2e/scenarios/demo.yml, runs
playbooks/demo.yml (create a reference point, ask again for changed=false, list, remove) with
ansible-playbook over WinRM, prints its output and the Hyper-V calls the host received, and
stops the simulator.
"""

from __future__ import annotations

import collections
import sys

from .collection import ROOT
from .sim.runner import SimServer


def main() -> int:
    with SimServer(ROOT / "tests" / "e2e" / "scenarios" / "demo.yml") as server:
        print(f"== Hyper-V simulator HV01 on http://127.0.0.1:{server.port}/wsman (WinRM, basic auth over HTTP)\n", flush=True)
        done = server.playbook(ROOT / "playbooks" / "demo.yml", "--diff")
        print(done.stdout)
        if done.stderr.strip():
            print(done.stderr, file=sys.stderr)
        calls = server.calls()["calls"]
        counted = collections.Counter(
            f"{c['class_name']}.{c['method']}" for c in calls if c["op"] == "invoke")
        print("== Hyper-V methods the host received:")
        for name, count in sorted(counted.items()):
            print(f"   {count} x {name}")
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
