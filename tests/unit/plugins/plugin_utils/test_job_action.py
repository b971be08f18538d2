# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How a task's first module run and the rerun that finishes its followed jobs make one result."""

from __future__ import annotations

from ansible_collections.hyperv.backup.plugins.plugin_utils import _job_action


def test_one_vm_keeps_the_destination_check_of_the_first_run_and_takes_the_rest_from_the_rerun() -> None:
    """Without vms, the rerun's result is the VM's; the destination was checked only by the first run (a review found it lost)."""
    checked = {"path": "E:\\Backups", "usable": True, "problem": None}
    first = {"changed": True, "pending": True, "job": {"id": "J1", "state": "running"}, "destination": checked, "vm": {"name": "web01"}}
    rerun = {"changed": True, "pending": False, "job": {"id": "J1", "state": "completed"}, "checkpoint": {"label": "n1"}, "vm": {"name": "web01"}}
    merged = _job_action._Single({"vm": "web01"}).merge(first, [0], rerun)
    assert merged == {**rerun, "destination": checked}
    assert merged["pending"] is False and merged["job"]["state"] == "completed", "nothing else of the first run survives"


def test_a_rerun_that_reports_its_own_destination_is_not_overwritten() -> None:
    merged = _job_action._Single({}).merge({"destination": {"usable": True}}, [0], {"destination": {"usable": False}})
    assert merged["destination"] == {"usable": False}


def test_one_vm_keeps_the_warnings_of_the_first_run_then_the_reruns_each_once() -> None:
    """ansible-core before 2.19 shows only the final result's warnings: the run that started the job
    (or followed another run's) warned, the rerun that finished it did not."""
    first = {"changed": True, "pending": True, "job": {"id": "J1"}, "warnings": ["follows job J1", "same"]}
    rerun = {"changed": True, "pending": False, "job": {"id": "J1"}, "warnings": ["same", "finished late"]}
    merged = _job_action._Single({"vm": "web01"}).merge(first, [0], rerun)
    assert merged["warnings"] == ["follows job J1", "same", "finished late"]
    assert "warnings" not in _job_action._Single({}).merge({"changed": True}, [0], {"changed": False}), "none made up"
