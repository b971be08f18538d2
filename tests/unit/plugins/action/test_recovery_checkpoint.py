# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Many VMs in one recovery_checkpoint task, replaying module runs recorded from the real modules (batch_checkpoints.jsonl)."""

from __future__ import annotations

import pytest

from ansible_collections.hyperv.backup.plugins.action import recovery_checkpoint as recovery_checkpoint_action
from ansible_collections.hyperv.backup.plugins.plugin_utils import _job_wait

from ansible_collections.hyperv.backup.tests.unit.plugins.action.test_reference_point import make_action

TASK = {"vms": [{"vm": "web01"}, {"vm": "web02"}, {"vm": "db01"}, {"vm": "nope"}], "name": "nightly", "crash_fallback": True, "wait_timeout": 0}


@pytest.fixture
def batch():
    action, replay, _clock = make_action(recovery_checkpoint_action, dict(TASK), "batch_checkpoints")
    result = action.run(task_vars={})
    return result, replay


def test_every_vm_gets_its_own_result_in_the_order_given(batch) -> None:
    result, replay = batch
    assert replay.lines == [], "every recorded call was made, in order, with the recorded arguments"
    assert [r["vm"]["name"] for r in result["results"]] == ["web01", "web02", "db01", "nope"]
    assert [r["failed"] for r in result["results"]] == [False, False, False, True]
    assert [r["changed"] for r in result["results"]] == [True, True, True, False], "changed survives the finishing run"
    assert all(r["checkpoint"]["label"] == "nightly" for r in result["results"][:3])
    assert result["changed"] is True and result["pending"] is False
    assert all("_resume" not in r for r in result["results"])


def test_one_unknown_vm_fails_the_task_naming_it_without_stopping_the_others(batch) -> None:
    result, _replay = batch
    assert result["failed"] is True
    assert result["msg"].startswith("1 of 4 VMs failed: Recovery checkpoint 'nightly' of VM 'nope': No virtual machine named 'nope' on host HV01.")


def test_every_job_of_the_task_is_followed_in_one_loop(batch) -> None:
    _result, replay = batch
    polls = [c for c in replay.calls if c["module"] == _job_wait.JOB_INFO]
    assert polls and len(polls[0]["args"]["job_ids"]) == 3, "one job_info run reads the three jobs"
    waits = [p["args"]["wait_timeout"] for p in polls]
    assert waits == sorted(waits), "one back-off for the task"
    runs = [c for c in replay.calls if c["module"].endswith("recovery_checkpoint")]
    finishing = runs[1]["args"]
    assert [v["vm"] for v in finishing["vms"]] == ["web01", "web02", "db01"]
    started = {r["vm"]["name"]: r["job"]["id"] for r in runs[0]["result"]["results"] if r.get("job")}
    assert [e["job_id"] for e in finishing["_resume"]] == [started[v["vm"]] for v in finishing["vms"]], "each VM finished with its own job"
    assert len(set(started.values())) == 3 and all(e["state"]["stage"] == "create" for e in finishing["_resume"])


def test_application_job_failing_after_the_wait_falls_back_to_crash(batch) -> None:
    result, replay = batch
    db01 = result["results"][2]
    assert db01["consistency"] == "crash" and db01["failed"] is False
    assert [r["consistency"] for r in result["results"][:2]] == ["application", "application"]
    last = [c for c in replay.calls if c["module"].endswith("recovery_checkpoint")][-1]["args"]
    assert [v["vm"] for v in last["vms"]] == ["db01"] and last["_resume"][0]["state"]["consistency"] == "crash", "the crash job is finished as crash"
    assert any("Falling back to a crash-consistent checkpoint" in w for w in result["warnings"])


def test_job_timeout_zero_returns_the_pending_jobs_without_following() -> None:
    action, replay, _clock = make_action(recovery_checkpoint_action, dict(TASK, job_timeout=0), "batch_checkpoints")
    result = action.run(task_vars={})
    assert len(replay.calls) == 1
    assert result["pending"] is True and [r.get("pending") for r in result["results"]] == [True, True, True, None]
    assert "ansible_facts" not in result
