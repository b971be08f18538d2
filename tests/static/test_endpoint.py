"""The endpoint's payload reading (both ansible-core formats) and its promise never to hang."""

from __future__ import annotations

import base64
import fcntl
import json

from hvtest.sim import payload
from hvtest.sim.endpoint import Command, Endpoint
from hvtest.sim.host import SimHost
from hvtest.sim.pwsh import SLOTS_ENV, core_slot

NUL = b"\n\0\0\0\0\n"


def test_reads_the_2_19_manifest() -> None:
    manifest = {"actions": [{"name": "module_wrapper.ps1", "params": {
        "Script": "ansible_collections.hyperv.backup.plugins.modules.reference_point.ps1",
        "Variables": [{"Name": "complex_args", "Value": {"vm": "web01", "_ansible_check_mode": True}, "Scope": "Global"}]}}]}
    stdin = json.dumps({"name": "exec_wrapper"}).encode() + NUL + json.dumps(manifest).encode()
    invocation = payload.decode("PowerShell -EncodedCommand AAAA", stdin)
    assert invocation.module == "reference_point" and invocation.args == {"vm": "web01", "_ansible_check_mode": True}


def test_reads_the_2_18_format() -> None:
    document = {"module_entry": "", "actions": ["exec"], "module_args": {"_ansible_module_name": "hyperv.backup.job_info", "job_id": "J"}}
    stdin = b"begin { $x = 1 }" + b"\0\0\0\0" + json.dumps(document).encode()
    invocation = payload.decode("PowerShell -EncodedCommand AAAA", stdin)
    assert invocation.module == "job_info" and invocation.args["job_id"] == "J"


def test_raw_command_is_decoded_from_its_encoded_command() -> None:
    encoded = base64.b64encode("Get-VM | Select Name".encode("utf-16-le")).decode()
    invocation = payload.decode(f"PowerShell -NoProfile -EncodedCommand {encoded}", b"")
    assert invocation.module is None and invocation.raw_script == "Get-VM | Select Name"


class _BrokenRunner:
    def run(self, command_line: str, stdin: bytes, run_id: str) -> None:
        raise RuntimeError("pwsh vanished")


def test_a_command_ends_even_when_powershell_cannot_run_it() -> None:
    endpoint = Endpoint(SimHost({"vms": []}), "u", "p")
    endpoint.runner = _BrokenRunner()  # type: ignore[assignment]
    command = Command("PowerShell -EncodedCommand AAAA")
    command.stdin.extend(b"{}" + NUL + b'{"actions": [{"name": "module_wrapper.ps1", "params": {"Script": 5, "Variables": 7}}]}')
    endpoint.run(command)
    assert command.done.is_set() and command.exit_code == 1
    assert b"The Hyper-V simulator could not run this command: pwsh vanished" in command.stderr


def test_a_run_that_ends_while_its_module_sleeps_takes_no_core_slot_back(tmp_path, monkeypatch) -> None:
    # The sleep lets the slot go; the run ends (pwsh killed) before the sleep returns. Taking the
    # slot back then would hold it for a run that no longer exists, and with two slots two such
    # runs would stall every other simulated host.
    (tmp_path / "slot-0").touch()
    monkeypatch.setenv(SLOTS_ENV, str(tmp_path))
    with core_slot() as slot:
        assert slot is not None
        slot.let_go()  # the module sleeps
    slot.take()  # the sleep returns after its run ended
    assert slot.handle is None
    with open(tmp_path / "slot-0", "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if the ended run holds it
