# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Many VMs in one recovery_checkpoint task, replaying recorded module outputs (batch_checkpoints.jsonl)."""

from __future__ import annotations

import pytest

from ansible_collections.hyperv.backup.plugins.action import recovery_checkpoint as recovery_checkpoint_action
from ansible_collections.hyperv.backup.plugins.plugin_utils import job_wait

from ansible_collections.hyperv.backup.tests.unit.plugins.action.test_reference_point import make_action

TASK = {"vms": [{"vm": "web01"}, {"vm": "web02"}, {"vm": "db01"}, {"vm": "nope"}], "name": "nightly", "crash_fallback": True, "wait_timeout": 0}


@pytest.fixture
def batch():
    action, replay, clock = make_action(recovery_checkpoint_action, dict(TASK), "batch_checkpoints")
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


def test_one_unknown_vm_fails_the_task_naming_it_without_stopping_the_others(batch) -> None:
    result, _replay = batch
    assert result["failed"] is True
    assert result["msg"].startswith("1 of 4 VMs failed: No virtual machine named 'nope' on host HV01.")


def test_jobs_are_followed_once_each_and_finished_in_one_module_run(batch) -> None:
    _result, replay = batch
    modules = [c["module"].rsplit(".", 1)[-1] for c in replay.calls]
    # one start for all four VMs, the three jobs followed, one run finishing all three, then db01's fallback job
    assert modules.count("recovery_checkpoint") == 3
    second = [c for c in replay.calls if c["module"].endswith("recovery_checkpoint")][1]["args"]
    assert [v["vm_id"] for v in second["vms"]] == list(second["job_ids"]), "each VM finished by id with its own job"
    assert len([c for c in replay.calls if c["module"] == job_wait.JOB_INFO]) == 10


def test_application_job_failing_after_the_wait_falls_back_to_crash(batch) -> None:
    result, replay = batch
    db01 = result["results"][2]
    assert db01["consistency"] == "crash" and db01["failed"] is False
    assert [r["consistency"] for r in result["results"][:2]] == ["application", "application"]
    last = [c for c in replay.calls if c["module"].endswith("recovery_checkpoint")][-1]["args"]
    assert last["consistency"] == "crash" and [v["vm_id"] for v in last["vms"]] == [db01["vm"]["id"]], "the crash job is finished as crash"
    assert any("Falling back to a crash-consistent checkpoint" in w for w in result["warnings"])


def test_job_timeout_zero_returns_the_pending_jobs_without_following() -> None:
    action, replay, _clock = make_action(recovery_checkpoint_action, dict(TASK, job_timeout=0), "batch_checkpoints")
    result = action.run(task_vars={})
    assert len(replay.calls) == 1
    assert result["pending"] is True and [r.get("pending") for r in result["results"]] == [True, True, True, None]
    assert "ansible_facts" not in result
