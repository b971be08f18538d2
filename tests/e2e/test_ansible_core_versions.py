"""One flow per supported ansible-core release, on the real PowerShell: the payload each release sends
over WinRM runs in pwsh, the collection's modules load and answer, the action plugins follow the jobs.

ansible-core 2.16 to 2.20 compile Ansible.Basic on .NET Core (pwsh) with a FromJson that returns
Newtonsoft JObjects, where Windows PowerShell 5.1 on a host gets dictionaries (2.21 returns
dictionaries on both). Those releases only run modules on Windows hosts, so their venvs here are
patched to answer as a host does (hvtest.corevenv), and the flow reads the catalog and the pending
checkpoint records like any other; docs/simulator.md says so.
"""

from __future__ import annotations

import pytest

from hvtest import corevenv


@pytest.mark.parametrize("core", sorted(corevenv.OLDER))
@pytest.mark.scenario("backup")
def test_recovery_checkpoints_of_two_vms_made_followed_and_removed(play, server, core) -> None:
    venv = corevenv.venv(core)
    arguments = {"vms": [{"vm": "app01"}, {"vm": "legacy01"}], "name": "v", "consistency": "crash", "wait_timeout": 0}
    checkpoints = {"hyperv.backup.recovery_checkpoint": arguments}
    results = play(
        checkpoints, checkpoints, {"hyperv.backup.reference_point": {"vm": "app01", "name": "r", "consistency": "crash"}},
        {"hyperv.backup.reference_point_info": {"vm": ["app01"]}},
        {"hyperv.backup.recovery_checkpoint": {"vms": [{"vm": "app01"}, {"vm": "legacy01"}], "name": "v", "state": "absent"}},
        playbook_command=str(venv / "bin" / "ansible-playbook"))
    assert len(results) == 5, play.last_output
    made, again, point, listing, removed = results
    assert made["_status"] == "CHANGED", play.last_output
    assert [(r["vm"]["name"], r["checkpoint"]["label"], r["pending"]) for r in made["results"]] == [("app01", "v", False), ("legacy01", "v", False)]
    assert again["_status"] == "SUCCESS" and [r["changed"] for r in again["results"]] == [False, False]
    assert listing["vms"] == [{"name": "app01", "id": "7a7a7a7a-0000-4000-8000-000000000001"}]
    assert point["changed"] is True
    assert [(p["name"], p["foreign"]) for p in listing["reference_points"]] == [("r", False)], "read back from the catalog"
    assert removed["_status"] == "CHANGED" and server.state()["checkpoints"] == []
    runs = [r["module"] for r in server.calls()["module_runs"]]
    assert "job_info" in runs, "the jobs were followed from the controller"
