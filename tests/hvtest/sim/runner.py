"""Starting the simulator as a separate process, and running ansible-playbook against it."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from .. import paths
from ..collection import ROOT

USER = "ansible"
PASSWORD = "Sim-Passw0rd!"


class SimServer:
    """The simulator in its own process on a free loopback port; always stopped on exit."""

    def __init__(self, scenario: pathlib.Path, workdir: pathlib.Path | None = None) -> None:
        self.scenario = scenario
        self.workdir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="hvsim-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = self.workdir / "host"  # the host's folders: ProgramData, Temp, exports
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.scenario_knobs: dict[str, Any] = {}

    def __enter__(self) -> SimServer:
        self.start()
        try:
            self.wait_started()
        except BaseException:
            self.terminate()
            self.wait_stopped()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.log_module_runs()
        self.terminate()
        self.wait_stopped()

    def start(self) -> None:
        """Starts the simulator's process; wait_started() waits for its port."""
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "hvtest.sim", str(self.scenario), "--port-file", str(self.workdir / "port"), "--user", USER,
             "--password", PASSWORD, "--root", str(self.root)],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.workdir / "sim.log", "wb"))  # pylint: disable=consider-using-with

    def wait_started(self) -> None:
        """Waits until the simulator listens (its port file is written); fails with its log when it does not start."""
        port_file = self.workdir / "port"
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start: {(self.workdir / 'sim.log').read_text()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def terminate(self) -> None:
        """Asks the simulator's process to stop; wait_stopped() waits for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait_stopped(self) -> None:
        """Waits for the process to end, killing it after 10 s."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def catalog(self) -> pathlib.Path:
        """The default catalog file (%ProgramData%\\hyperv.backup\\catalog.json) of the host."""
        return self.root / "ProgramData" / "hyperv.backup" / "catalog.json"

    def path(self, *parts: str) -> str:
        """A path on the host, under its root (what a test gives where a user gives a host path)."""
        return str(self.root.joinpath(*parts))

    def log_module_runs(self) -> None:
        """Appends this host's module runs to $HVTEST_RUNS_LOG (one JSON line each), for the suite's summary."""
        target = os.environ.get("HVTEST_RUNS_LOG")
        if not target or self.process is None or self.process.poll() is not None:
            return
        try:
            runs = self.calls()["module_runs"]
        except OSError:
            return
        with open(target, "a", encoding="utf-8") as log:
            for run in runs:
                log.write(json.dumps({"module": run["module"], "seconds": run["seconds"], "exit_code": run["exit_code"]}) + "\n")

    # ------------------------------------------------------------------ control API

    def _call(self, path: str, data: dict | None = None) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                         data=json.dumps(data).encode() if data is not None else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def state(self) -> dict:
        return self._call("/sim/state")

    def calls(self) -> dict:
        return self._call("/sim/calls")

    def cim_instances(self, class_name: str) -> list[dict[str, Any]]:
        """The instances of a class as the CIM shim receives them, as {property: value}."""
        reply = self._call("/sim/cim", {"op": "enumerate", "class": class_name})
        return [{name: value for name, _type, _array, value in instance["properties"]} for instance in reply["instances"]]

    def timeline(self) -> dict:
        """Wall-clock times of the host's WinRM shells and Hyper-V jobs (module runs carry theirs in calls())."""
        return self._call("/sim/timeline")

    def clear_calls(self) -> None:
        self._call("/sim/calls/clear", {})

    def add_fault(self, **fault: Any) -> None:
        self._call("/sim/faults", fault)

    def remove_behind_catalog(self, instance_id: str) -> None:
        """Destroys a reference point the way another tool would, without the catalog knowing."""
        self._call("/sim/remove", {"instance_id": instance_id})

    def write(self, vm: str, length: int, disk: int = 0, offset: int = 0) -> None:
        """The guest writes length bytes at offset of a disk (RCT records it)."""
        self._call("/sim/write", {"vm": vm, "disk": disk, "offset": offset, "length": length})

    def disk_hashes(self, vm: str) -> list[str]:
        """The hash of the bytes each of the VM's virtual hard disks holds now (sim/vhd.py content_hash)."""
        return self._call("/sim/disk_hashes", {"vm": vm})

    def remove_switch(self, name: str) -> None:
        """The host loses a virtual switch (deleted or renamed since the backup)."""
        self._call("/sim/remove_switch", {"name": name})

    def power(self, vm: str, state: str) -> None:
        """The admin turns the VM off or on (Stop-VM, Start-VM), outside the collection."""
        self._call("/sim/power", {"vm": vm, "state": state})

    def invalidate_rct(self, vm: str) -> None:
        self._call("/sim/invalidate_rct", {"vm": vm})

    def add_disk(self, vm: str, path: str, size_gb: float) -> None:
        self._call("/sim/add_disk", {"vm": vm, "path": path, "size_gb": size_gb})

    def endpoint_faults(self, **settings: Any) -> None:
        self._call("/sim/endpoint", settings)

    # ------------------------------------------------------------------ ansible

    def inventory(self, password: str = PASSWORD) -> pathlib.Path:
        path = self.workdir / f"inventory-{abs(hash(password))}.yml"
        path.write_text(
            "all:\n  children:\n    hyperv:\n      hosts:\n        hv01:\n"
            "          ansible_host: 127.0.0.1\n"
            f"          ansible_port: {self.port}\n"
            "          ansible_connection: winrm\n"
            "          ansible_winrm_transport: basic\n"
            "          ansible_winrm_scheme: http\n"
            f"          ansible_user: {USER}\n"
            f"          ansible_password: {json.dumps(password)}\n",
            encoding="utf-8")
        return path

    def playbook(self, playbook: pathlib.Path, *args: str, password: str = PASSWORD, env: dict | None = None,
                 command: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [command or paths.tool("ansible-playbook"), "-i", str(self.inventory(password)), str(playbook), *args],
            env=paths.ansible_env(**(env or {})), capture_output=True, text=True, check=False, cwd=str(ROOT))

    def playbook_started(self, playbook: pathlib.Path, *args: str, env: dict | None = None) -> subprocess.Popen:
        """ansible-playbook started in its own process group (so a test can kill the whole controller)."""
        return subprocess.Popen(  # pylint: disable=consider-using-with
            [paths.tool("ansible-playbook"), "-i", str(self.inventory()), str(playbook), *args], env=paths.ansible_env(**(env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=str(ROOT))

    def wait_for_dropped_run(self, timeout: float = 120) -> None:
        """Waits until the host has ended a module run whose reply the endpoint dropped."""
        deadline = time.monotonic() + timeout
        while not any(run["dropped"] for run in self.calls()["module_runs"]):
            if time.monotonic() > deadline:
                raise RuntimeError("no module run whose reply was dropped has ended")
            time.sleep(0.1)

    def wait_for_call(self, method: str, process: subprocess.Popen, timeout: float = 120) -> None:
        """Waits until the host has received Hyper-V method `method` (any class); fails when the process ends first."""
        deadline = time.monotonic() + timeout
        while not any(c["op"] == "invoke" and c["method"] == method for c in self.calls()["calls"]):
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"{method} was never called; the play ended with {process.returncode}:\n{output[-3000:]}")
            time.sleep(0.1)
