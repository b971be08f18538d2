# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The action plugins replaying module runs recorded from the real modules (test_data/*.jsonl, hvtest.record)."""

from __future__ import annotations

import json
import pathlib
from typing import Any
from unittest.mock import MagicMock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.hyperv.backup.plugins.action import job_info as job_info_action
from ansible_collections.hyperv.backup.plugins.action import reference_point as reference_point_action
from ansible_collections.hyperv.backup.plugins.plugin_utils import _job_action, _job_wait

DATA = pathlib.Path(__file__).parent / "test_data"


class Replay:
    """Stands in for _execute_module: checks each call against the recording, answers from it, and
    moves the clock by as long as the call took when it was recorded."""

    def __init__(self, name: str, clock: FakeClock) -> None:
        with open(DATA / f"{name}.jsonl", encoding="utf-8") as handle:
            self.lines = [json.loads(line) for line in handle]
        self.clock = clock
        self.calls: list[dict[str, Any]] = []

    def __call__(self, module_name: str, module_args: dict[str, Any], task_vars: dict[str, Any], wrap_async: bool = False) -> dict[str, Any]:
        assert self.lines, f"unexpected extra call of {module_name} {module_args}"
        line = self.lines.pop(0)
        call = {"module": module_name, "args": json.loads(json.dumps(module_args)), "wrap_async": wrap_async}
        self.calls.append(call)
        assert module_name == line["module"]
        assert module_args == line["args"]
        self.clock.now += line["elapsed"]
        if "raise" in line:
            raise ConnectionError(line["message"])
        call["result"] = line["result"]
        return json.loads(json.dumps(line["result"]))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make_action(cls, args: dict[str, Any], recording: str, check_mode: bool = False, async_val: int = 0):
    task = MagicMock()
    task.args = args
    task.async_val = async_val
    task.check_mode = check_mode
    connection = MagicMock()
    connection._shell.tmpdir = None
    action = cls.ActionModule(task, connection, MagicMock(), loader=None, templar=None, shared_loader_obj=None)
    clock = FakeClock()
    action.clock = clock
    action.sleep = clock.sleep
    replay = Replay(recording, clock) if recording else None
    action._execute_module = replay
    return action, replay, clock


@pytest.fixture
def shown(monkeypatch) -> dict[str, list[tuple[str, str | None]]]:
    """What the plugin printed through Display, by verbosity, with the host each line named."""
    lines: dict[str, list[tuple[str, str | None]]] = {"display": [], "v": [], "vvv": []}
    monkeypatch.setattr(_job_action.display, "display", lambda msg, *a, **k: lines["display"].append((msg, k.get("host"))))
    monkeypatch.setattr(_job_action.display, "v", lambda msg, host=None: lines["v"].append((msg, host)))
    monkeypatch.setattr(_job_action.display, "vvv", lambda msg, host=None: lines["vvv"].append((msg, host)))
    return lines


def polls(replay: Replay) -> list[dict[str, Any]]:
    return [c for c in replay.calls if c["module"] == _job_wait.JOB_INFO]


def test_slow_job_is_followed_to_the_end_and_recorded(shown) -> None:
    action, replay, clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "wait_timeout": 0}, "slow_create")
    result = action.run(task_vars={"inventory_hostname": "hv01"})
    assert replay.lines == [], "every recorded call was made"
    assert result["changed"] is True and not result.get("failed")
    assert result["reference_point"]["name"] == "nightly" and result["job"]["state"] == "completed"
    # back-off: host waits of 1, 2 (1.5 rounded up), 3, 4, 6, 8, 12, 15 ...
    assert [c["args"]["wait_timeout"] for c in polls(replay)][:8] == [1, 2, 3, 4, 6, 8, 12, 15]
    finish = replay.calls[-1]
    assert finish["module"] == "hyperv.backup.reference_point", "the module finishes the work"
    assert finish["args"]["_resume"] == [{"job_id": result["job"]["id"], "state": {"changed": True}}]
    # Progress only at -v, a few lines, each for this host; nothing at default verbosity.
    assert shown["display"] == []
    assert 3 <= len(shown["v"]) <= 7, shown["v"]
    assert all(host == "hv01" and line.startswith("Reference point 'nightly' of VM 'web01': Hyper-V job ") for line, host in shown["v"])
    assert result["ansible_facts"]["hyperv_backup"]["reference_points"][result["vm"]["id"].lower()]["nightly"] == result["reference_point"]
    assert clock.slept == []


def test_what_only_the_collection_passes_is_hidden_from_the_result(shown) -> None:
    action, replay, _clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "wait_timeout": 0}, "slow_create")
    result = action.run(task_vars={})
    assert "_resume" not in result
    assert not [name for name in (result.get("invocation") or {}).get("module_args", {}) if name.startswith("_")]


@pytest.mark.parametrize("resume", [[], [{"job_id": "x"}], None])
def test_a_task_that_sets_the_internal_resume_is_refused_before_anything_runs(shown, resume) -> None:
    action, replay, _clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "_resume": resume}, "slow_create")
    with pytest.raises(AnsibleActionFail, match="_resume is internal to hyperv.backup.*nothing was run"):
        action.run(task_vars={})
    assert replay.calls == []


@pytest.mark.parametrize("vms", [["web01", "db01"], [{"vm": "web01"}, "db01"], "web01"])
def test_vms_given_as_names_not_dicts_are_refused_naming_the_element_before_anything_runs(shown, vms) -> None:
    # The module's own argument check fails on them as an unhandled exception naming no option;
    # the action plugin used to fail first, with a bare Python error about a dict update.
    action, replay, _clock = make_action(reference_point_action, {"vms": vms, "name": "nightly"}, "slow_create")
    with pytest.raises(AnsibleActionFail, match=r"vms: element \d \('(web01|db01)'\) is not a dict\. .*vm_id.*nothing was run"):
        action.run(task_vars={})
    assert replay.calls == []


def test_vms_given_as_one_dict_is_refused_as_not_a_list_before_anything_runs(shown) -> None:
    action, replay, _clock = make_action(reference_point_action, {"vms": {"vm": "web01"}, "name": "nightly"}, "slow_create")
    with pytest.raises(AnsibleActionFail, match=r"vms is one dict; it is a list of them.*nothing was run"):
        action.run(task_vars={})
    assert replay.calls == []


def test_two_dropped_connections_mid_poll_end_in_success_with_warnings(shown) -> None:
    action, replay, clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "wait_timeout": 0}, "slow_create_two_drops")
    result = action.run(task_vars={})
    assert replay.lines == [] and result["changed"] is True and not result.get("failed")
    job_id = result["job"]["id"]
    assert result["warnings"] == [
        f"Connection to the host lost while waiting on Hyper-V job {job_id} (('Connection aborted.', RemoteDisconnected('Remote end closed "
        f"connection without response'))); the job goes on on the host. Retry {n} of 5 in {delay} s." for n, delay in ((1, "1.5"), (2, "2.25"))]
    assert clock.slept == [1.5, 2.25]
    assert action._connection.reset.call_count == 2


def test_connection_lost_beyond_retries_is_unreachable_with_the_job_id(shown) -> None:
    args = {"vm": "web01", "name": "nightly", "wait_timeout": 0, "connection_retries": 1}
    action, replay, clock = make_action(reference_point_action, args, "slow_create_two_drops")
    result = action.run(task_vars={})
    job_id = result["job"]["id"]
    assert result["unreachable"] is True
    assert result["msg"].startswith(f"Reference point 'nightly' of VM 'web01': the host stayed unreachable for 1 retries while waiting on "
                                    f"Hyper-V job {job_id}")
    assert "ansible_facts" not in result
    assert clock.slept == [1.5]


def test_a_failed_job_goes_back_to_the_module_which_words_the_failure(shown) -> None:
    action, replay, clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "wait_timeout": 0}, "failed_create")
    result = action.run(task_vars={})
    job_id = result["job"]["id"]
    assert replay.lines == []
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        f"Creating Reference point 'nightly' of VM 'web01' failed: job {job_id} ended in state exception with error code 32768: "
        "Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162) "
        "Could not create backup checkpoint for virtual machine 'web01': The system cannot find the file specified. (0x80070002).")
    assert replay.calls[-1]["module"] == "hyperv.backup.reference_point" and replay.calls[-1]["args"]["_resume"][0]["job_id"] == job_id


def test_timeout_fails_with_job_state_and_percent_without_cancelling(shown) -> None:
    args = {"vm": "web01", "name": "nightly", "wait_timeout": 0, "job_timeout": 10}
    action, replay, clock = make_action(reference_point_action, args, "hung_create")
    result = action.run(task_vars={})
    job_id = result["job"]["id"]
    assert result["failed"] is True
    assert result["msg"].startswith(f"Reference point 'nightly' of VM 'web01': Hyper-V job {job_id} is still running at ")
    assert "after 10 s (job_timeout)" in result["msg"]
    assert [line["module"] for line in replay.lines] == [_job_wait.JOB, "hyperv.backup.reference_point"], "only the recorded cancellation is left"
    assert result["pending"] is True, "the job goes on on the host"


def test_timeout_with_cancel_asks_hyperv_to_terminate(shown) -> None:
    args = {"vm": "web01", "name": "nightly", "wait_timeout": 0, "job_timeout": 10, "cancel_on_job_timeout": True}
    action, replay, clock = make_action(reference_point_action, args, "hung_create")
    result = action.run(task_vars={})
    assert replay.lines == []
    cancel, settle = replay.calls[-2:]
    assert (cancel["module"], cancel["args"], cancel["wrap_async"]) == (_job_wait.JOB, {"job_id": result["job"]["id"]}, False)
    # The module sees the cancelled job end, so the catalog keeps no pending entry for it.
    assert settle["module"] == "hyperv.backup.reference_point" and settle["args"]["_resume"][0]["job_id"] == result["job"]["id"]
    assert result["changed"] is False
    assert result["failed"] is True and result["pending"] is False
    assert "and was cancelled (cancel_on_job_timeout); it is terminated now and made nothing that was recorded." in result["msg"]
    assert "goes on on the host" not in result["msg"] and "still terminated" not in result["msg"]


def test_job_timeout_zero_returns_the_pending_job(shown) -> None:
    args = {"vm": "web01", "name": "nightly", "wait_timeout": 0, "job_timeout": 0}
    action, replay, clock = make_action(reference_point_action, args, "hung_create")
    result = action.run(task_vars={})
    assert result["pending"] is True and result["changed"] is True and not result.get("failed")
    assert len(replay.calls) == 1 and "ansible_facts" not in result


def test_resume_with_job_info_wait(shown) -> None:
    action, replay, clock = make_action(job_info_action, {}, "slow_create")
    # A later play, knowing only the job id: job_info once, then the recorded polls; no reference_point call.
    recorded = replay.lines[1:-1]
    job_id = recorded[0]["args"]["job_ids"][0]
    first = recorded[0]["result"]["jobs"][0]
    replay.lines = [{"module": _job_wait.JOB_INFO, "args": {"job_id": job_id}, "elapsed": 1.0,
                     "result": {"changed": False, "exists": True, "job": first}}] + recorded
    action._task.args = {"job_id": job_id, "wait": True}
    result = action.run(task_vars={})
    assert result["job"]["state"] == "completed" and result["exists"] is True
    assert replay.lines == []


def test_async_runs_the_module_under_the_async_wrapper_with_a_host_wait() -> None:
    action = make_action(reference_point_action, {"vm": "web01", "name": "nightly"}, "", async_val=600)[0]
    calls = []
    action._execute_module = lambda **kwargs: calls.append(kwargs) or {"started": 1, "ansible_job_id": "j1"}
    result = action.run(task_vars={})
    assert result["ansible_job_id"] == "j1"
    assert calls[0]["wrap_async"] is True and calls[0]["module_args"] == {"vm": "web01", "name": "nightly", "wait_timeout": 600}


@pytest.mark.parametrize("bad, message", [
    ({"job_timeout": -1}, "job_timeout must be 0 or more, got -1."),
    ({"connection_retries": "many"}, "connection_retries"),
    ({"cancel_on_job_timeout": "perhaps"}, "cancel_on_job_timeout"),
])
def test_bad_controller_options_fail_before_any_call(bad: dict, message: str) -> None:
    action = make_action(reference_point_action, {"vm": "web01", "name": "n", **bad}, "")[0]
    action._execute_module = MagicMock()
    with pytest.raises(AnsibleActionFail, match=message):
        action.run(task_vars={})
    action._execute_module.assert_not_called()


def test_job_info_wait_is_validated_from_its_documentation() -> None:
    assert job_info_action.ActionModule.CONTROLLER_SPEC["wait"] == {"type": "bool", "default": False}
    action = make_action(job_info_action, {"job_id": "J", "wait": "sometimes"}, "")[0]
    action._execute_module = MagicMock()
    with pytest.raises(AnsibleActionFail, match="wait"):
        action.run(task_vars={})


def test_fact_keeps_what_earlier_tasks_set() -> None:
    db01 = "3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6071"
    earlier = {"reference_points": {db01: {"weekly": {"instance_id": "X"}}}}
    action, replay, clock = make_action(reference_point_action, {"vm": "web01", "name": "nightly", "wait_timeout": 0}, "slow_create")
    result = action.run(task_vars={"hyperv_backup": earlier})
    fact = result["ansible_facts"]["hyperv_backup"]["reference_points"]
    assert fact[db01] == {"weekly": {"instance_id": "X"}} and "nightly" in fact[result["vm"]["id"].lower()]
    assert earlier == {"reference_points": {db01: {"weekly": {"instance_id": "X"}}}}, "task_vars are not modified"
