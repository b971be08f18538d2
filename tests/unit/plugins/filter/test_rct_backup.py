# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rct_backup role's per-VM bookkeeping: which VMs each step gets, and how results are filed."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hyperv.backup.plugins.plugin_utils._rct_state import rct_record, rct_summary, rct_vms

WEB = "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"
DB = "0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13"


def started() -> dict:
    """web01 by name and db01 by GUID, both checkpointed."""
    state = rct_record({}, "start", ["web01", DB.upper()])
    asked = rct_vms(state, "checkpoint")
    assert asked == [{"vm": "web01"}, {"vm_id": DB.upper()}], "a GUID selects by id, anything else by name"
    result = {"results": [{"vm": {"name": "web01", "id": WEB}, "consistency": "application", "failed": False},
                          {"vm": {"name": "db01", "id": DB}, "consistency": "crash", "failed": False}]}
    return rct_record(state, "checkpoint", result, asked)


@pytest.mark.parametrize(("given", "vms"), [
    ("web01\ndb01", ["web01", "db01"]),
    ("  web01 \r\n\n\tdb, the second\n", ["web01", "db, the second"]),
    (["web01", " db01 ", "a,b"], ["web01", " db01 ", "a,b"]),
    (WEB, [WEB]),
])
def test_vms_come_as_a_list_or_as_a_survey_textarea(given: object, vms: list[str]) -> None:
    assert list(rct_record({}, "start", given)) == vms


@pytest.mark.parametrize(("given", "message"), [
    ("", "rct_backup_vms holds no VM"),
    ("\n \n", "rct_backup_vms holds no VM"),
    ([], "rct_backup_vms holds no VM"),
    (["web01", ""], "rct_backup_vms has an empty name at position 2."),
    ({"web01": 1}, "rct_backup_vms must be a list of VM names or GUIDs, or a text with one per line; got {'web01': 1}."),
    ([1, 2], "rct_backup_vms must be a list of VM names or GUIDs"),
    (None, "rct_backup_vms must be a list"),
])
def test_vms_that_name_no_vm_are_refused(given: object, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        rct_record({}, "start", given)


def point(vm_id: str, name: str, day: int, mode: str = "full", base: str | None = None, foreign: bool = False) -> dict:
    return {"vm_id": vm_id, "name": name, "instance_id": f"ID-{name}", "created": f"2026-11-{day:02d}T01:00:00Z", "mode": mode,
            "base": base, "foreign": foreign}


def test_checkpoint_results_give_each_vm_its_identity_and_consistency() -> None:
    state = started()
    assert [(v["name"], v["id"], v["consistency"]) for v in state.values()] == [("web01", WEB, "application"), ("db01", DB, "crash")]
    assert rct_vms(state, "ids") == [WEB, DB]


def test_a_failed_vm_gets_the_step_in_its_error_and_leaves_the_later_steps() -> None:
    state = rct_record({}, "start", ["web01", "locked01"])
    asked = rct_vms(state, "checkpoint")
    result = {"failed": False, "results": [{"vm": {"name": "web01", "id": WEB}, "failed": False},
                                           {"vm": {"name": "locked01", "id": DB}, "failed": True, "msg": "checkpoints are disabled"}]}
    state = rct_record(state, "checkpoint", result, asked)
    assert state["locked01"]["error"] == "Recovery checkpoint | locked01: checkpoints are disabled"
    assert rct_vms(state, "ids") == [WEB]
    assert rct_vms(state, "cleanup") == [{"vm_id": DB}], "known by id although it failed: its checkpoint is looked for"


def test_a_vm_listed_by_name_and_by_guid_is_one_vm_filed_under_the_listing_that_ran() -> None:
    state = rct_record({}, "start", ["web01", WEB.upper(), "db01"])
    asked = rct_vms(state, "checkpoint")
    twice = f"VM 'web01' ({WEB}) is listed more than once in vms."
    result = {"results": [{"vm": {"name": "web01", "id": WEB}, "failed": False, "consistency": "application"},
                          {"vm": {"name": "web01", "id": WEB}, "failed": True, "msg": twice},
                          {"vm": {"name": "db01", "id": DB}, "failed": False}]}
    state = rct_record(state, "checkpoint", result, asked)
    assert list(state) == ["web01", "db01"], "said once"
    assert state["web01"]["error"] is None and state["web01"]["also_listed_as"] == [WEB.upper()]
    assert rct_vms(state, "cleanup") == [], "the checkpoint the first listing made is never cleaned up for the second"
    assert [s["vm_id"] for s in rct_summary(state)] == [WEB, DB]


def test_backups_of_vms_whose_names_collide_as_folders_go_to_folders_that_do_not() -> None:
    state = rct_record({}, "start", ["Twin", "twin", "a:b"])
    ids = ["11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003"]
    result = {"results": [{"vm": {"name": n, "id": i}, "failed": False} for n, i in zip(["Twin", "twin", "a:b"], ids)]}
    state = rct_record(state, "checkpoint", result, rct_vms(state, "checkpoint"))
    folders = [a["destination"] for a in rct_vms(state, "export", destination="E:\\B", label="run1")]
    assert folders == [f"E:\\B\\Twin_{ids[0]}\\run1", f"E:\\B\\twin_{ids[1]}\\run1", f"E:\\B\\a_b_{ids[2]}\\run1"]
    assert len({f.lower() for f in folders}) == 3, "distinct on a file system that ignores case"


def test_a_task_without_per_vm_results_fails_every_vm_it_was_given() -> None:
    state = started()
    asked = rct_vms(state, "export", destination="E:\\B", label="run2")
    state = rct_record(state, "export", {"failed": False, "msg": "Unsupported parameters for (vm_export) module: x"}, asked)
    assert [v["error"] for v in state.values()] == [
        "Export | web01: Unsupported parameters for (vm_export) module: x", f"Export | {DB.upper()}: Unsupported parameters for (vm_export) module: x"]


def test_base_is_the_newest_own_backup_and_incremental_without_one_fails() -> None:
    points = [point(WEB, "run1", 1), point(WEB, "run2", 2, "incremental", "run1"), point(WEB, "manual", 3, mode=None),
              point(WEB, "other", 4, foreign=True), point(DB, "x", 1, foreign=True)]
    state = rct_record(started(), "base", {"reference_points": points}, mode="incremental")
    assert state["web01"]["base"]["name"] == "run2", "neither a manual nor a foreign point is a base"
    assert state[DB.upper()]["error"].startswith(f"Find the previous backup | {DB.upper()}: VM 'db01' has no earlier backup")


def test_a_run_again_with_its_label_never_takes_its_own_point_as_base() -> None:
    """The controller died after the conversion; the same label runs again and finds its own point newest."""
    points = [point(WEB, "run1", 1), point(WEB, "run2", 2, "incremental", "run1")]
    assert rct_record(started(), "base", {"reference_points": points}, label="run2")["web01"]["base"]["name"] == "run1"


def test_bases_come_from_the_points_the_checkpoint_step_listed_for_each_vm() -> None:
    """The role's checkpoint task runs with list_reference_points: each VM's own listing, never another VM's."""
    state = rct_record({}, "start", ["web01", "db01"])
    asked = rct_vms(state, "checkpoint")
    result = {"results": [
        {"vm": {"name": "web01", "id": WEB}, "reference_points": [point(WEB, "run1", 1), point(WEB, "run2", 2, "incremental", "run1")]},
        # db01's listing names a point of web01 (it cannot, but if it did it is not db01's base)
        {"vm": {"name": "db01", "id": DB}, "reference_points": [point(WEB, "run3", 3)]}]}
    state = rct_record(rct_record(state, "checkpoint", result, asked), "base", mode="auto", label="run4")
    assert state["web01"]["base"]["name"] == "run2" and state["db01"]["base"] == {} and state["db01"]["error"] is None


def test_a_vm_whose_points_were_not_listed_gets_no_base_guessed() -> None:
    """A checkpoint result without reference_points (the option not set): an error naming the cause, not a silent full."""
    state = rct_record(started(), "base", mode="auto")
    assert state["web01"]["error"].startswith("Find the previous backup | web01: the reference points of VM 'web01' were not listed")
    assert rct_vms(state, "ids") == []


def test_retention_is_planned_from_the_points_the_conversion_listed() -> None:
    state = rct_record(started(), "base", {"reference_points": []})
    converted = {"results": [
        {"reference_point": {"name": "run3"}, "reference_points": [point(WEB, "run1", 1), point(WEB, "run2", 2), point(WEB, "run3", 3)]},
        {"reference_point": {"name": "run3"}}]}  # db01: no listing filed
    state = rct_record(state, "convert", converted, [{"vm_id": WEB}, {"vm_id": DB}])
    assert rct_vms(state, "retention", keep=2) == [{"vm_id": WEB, "instance_id": "ID-run1"}], "db01 has nothing removed on a guess"
    assert rct_vms(state, "retention", points=[point(DB, "a", 1), point(DB, "b", 2)], keep=1) == [{"vm_id": DB, "instance_id": "ID-a"}], \
        "points given still win"


def test_export_asks_for_a_differential_only_with_a_base_and_closes_with_the_mode_it_got() -> None:
    state = rct_record(started(), "base", {"reference_points": [point(WEB, "run1", 1)]})
    asked = rct_vms(state, "export", mode="auto", method="export", destination="E:\\B", label="run2")
    assert asked == [{"vm_id": WEB, "destination": f"E:\\B\\web01_{WEB}\\run2", "base": "run1"}, {"vm_id": DB, "destination": f"E:\\B\\db01_{DB}\\run2"}]
    assert rct_vms(state, "export", mode="full", destination="E:\\B", label="run2")[0] == {"vm_id": WEB, "destination": f"E:\\B\\web01_{WEB}\\run2"}
    result = {"results": [{"mode": "incremental", "base": "run1", "bytes": 10, "full_reason": None, "destination": f"E:\\B\\web01_{WEB}\\run2"},
                          {"mode": "full", "base": None, "bytes": 99, "full_reason": None, "destination": f"E:\\B\\db01_{DB}\\run2"}]}
    state = rct_record(state, "export", result, asked)
    assert rct_vms(state, "convert") == [{"vm_id": WEB, "mode": "incremental", "consistency": "application", "base": "run1"},
                                         {"vm_id": DB, "mode": "full", "consistency": "crash"}]


def test_changed_blocks_replace_the_export_unless_a_full_copy_is_needed() -> None:
    state = rct_record(started(), "base", {"reference_points": [point(WEB, "run1", 1), point(DB, "run1", 1)]})
    asked = rct_vms(state, "changes", method="changed_blocks", destination="E:\\B", label="run2")
    assert [a["base"] for a in asked] == ["run1", "run1"] and asked[0]["ranges_dir"] == f"E:\\B\\web01_{WEB}\\run2"
    assert rct_vms(state, "changes", method="export") == [] and rct_vms(state, "changes", method="changed_blocks", mode="full") == []
    result = {"results": [{"full_needed": False, "changed_bytes": 65536}, {"full_needed": True, "full_reasons": ["a disk was added"]}]}
    state = rct_record(state, "changes", result, asked)
    assert [a["vm_id"] for a in rct_vms(state, "export", method="changed_blocks", destination="E:\\B", label="run2")] == [DB]
    state = rct_record(state, "export", {"results": [{"mode": "full", "bytes": 5, "destination": "d"}]}, [{"vm_id": DB}])
    summary = {s["vm"]: s for s in rct_summary(state, 12.34)}
    assert summary["web01"]["mode"] == "incremental" and summary["web01"]["method"] == "changed_blocks" and summary["web01"]["bytes"] == 65536
    assert summary["web01"]["base"] == "run1" and summary["db01"]["method"] == "export" and summary["db01"]["base"] is None
    assert summary["db01"]["full_reason"] == "a disk was added" and summary["db01"]["run_seconds"] == 12.3


def test_each_vm_has_its_own_start_end_and_seconds_up_to_its_last_step() -> None:
    """The VMs start together; one that fails early is done early, one that goes on ends at its last step."""
    state = rct_record({}, "start", ["web01", "db01"], at=1_795_000_000)
    asked = rct_vms(state, "checkpoint")
    result = {"results": [{"vm": {"name": "web01", "id": WEB}, "consistency": "application"},
                          {"vm": {"name": "db01", "id": DB}, "failed": True, "msg": "CreateSnapshot returned 32775"}]}
    state = rct_record(state, "checkpoint", result, asked, at=1_795_000_004.25)
    state = rct_record(state, "export", {"results": [{"mode": "full", "bytes": 5, "destination": "d"}]}, [{"vm_id": WEB}], at=1_795_000_060)
    state = rct_record(state, "cleanup", {"results": [{"changed": False}]}, [{"vm_id": DB}], at=1_795_000_061)
    web, db = rct_summary(state, 70)
    assert (web["started"], web["ended"], web["seconds"], web["run_seconds"]) == ("2026-11-18T11:06:40Z", "2026-11-18T11:07:40Z", 60.0, 70.0)
    assert (db["status"], db["ended"], db["seconds"]) == ("failed", "2026-11-18T11:07:41Z", 61.0), "its clean-up was its last step"


def test_an_impossible_incremental_fails_the_vm() -> None:
    state = rct_record(started(), "base", {"reference_points": [point(WEB, "run1", 1), point(DB, "run1", 1)]})
    asked = rct_vms(state, "changes", mode="incremental", method="changed_blocks", destination="E:\\B", label="run2")
    result = {"results": [{"full_needed": False, "changed_bytes": 1}, {"full_needed": True, "full_reasons": ["rct invalid"]}]}
    state = rct_record(state, "changes", result, asked, mode="incremental")
    assert state[DB.upper()]["error"] == f"Changed blocks | {DB.upper()}: An incremental of VM 'db01' is impossible: rct invalid. " \
                                         "Run with rct_backup_mode=auto or full."


def test_retention_plans_per_vm_and_a_failed_removal_is_that_vms_error() -> None:
    points = [point(WEB, "run1", 1), point(WEB, "run2", 2), point(DB, "run1", 1), point(DB, "run2", 2), point(DB, "other", 3, foreign=True)]
    state = started()
    asked = rct_vms(state, "retention", points=points, keep=1)
    assert asked == [{"vm_id": WEB, "instance_id": "ID-run1"}, {"vm_id": DB, "instance_id": "ID-run1"}], "the newest kept for each VM, foreign left alone"
    state = rct_record(state, "retention", {"results": [{"failed": False}, {"failed": True, "msg": "access denied"}]}, asked)
    summary = rct_summary(state)
    assert [s["status"] for s in summary] == ["ok", "failed"] and summary[1]["error"] == f"Retention | {DB.upper()}: access denied"


def test_an_unexpected_failure_fails_every_vm_still_going_and_a_failed_cleanup_is_added() -> None:
    state = rct_record(started(), "abort", "Close the backups with reference points: template error")
    assert {v["error"] for v in state.values()} == {"Close the backups with reference points: template error"}
    state = rct_record(state, "cleanup", {"results": [{"failed": True, "msg": "job failed"}, {"failed": False}]}, rct_vms(state, "cleanup"))
    assert rct_summary(state)[0]["error"] == ("Close the backups with reference points: template error | "
                                              "Remove this run's recovery checkpoint | web01: job failed")


def test_unknown_steps_and_states_are_refused() -> None:
    with pytest.raises(AnsibleFilterError, match="does not know step 'copy'"):
        rct_vms({}, "copy")
    with pytest.raises(AnsibleFilterError, match="expects the state"):
        rct_record(None, "export", {}, [])


def test_what_went_otherwise_than_asked_is_each_vms_warnings() -> None:
    state = rct_record({}, "start", ["web01", "db01", WEB])
    asked = rct_vms(state, "checkpoint")
    result = {"results": [{"vm": {"name": "web01", "id": WEB}, "consistency": "crash"}, {"vm": {"name": "db01", "id": DB}, "consistency": "application"},
                          {"vm": {"name": "web01", "id": WEB}, "failed": True, "msg": "listed more than once"}]}
    state = rct_record(state, "checkpoint", result, asked, consistency="application")
    exported = {"results": [{"mode": "full", "bytes": 1, "full_reason": "the VM's disk set changed since 'run1' (1 added, 0 removed)"},
                            {"mode": "incremental", "bytes": 1, "base": "run1"}]}
    state = rct_record(state, "export", exported, [{"vm_id": WEB}, {"vm_id": DB}])
    web, db = rct_summary(state)
    assert web["warnings"] == [
        "The application-consistent checkpoint failed (the guest's VSS or integration services); a crash-consistent one was taken instead "
        "(rct_backup_crash_fallback).",
        "Full backup instead of an incremental: the VM's disk set changed since 'run1' (1 added, 0 removed).",
        f"Listed more than once (also as {WEB}); backed up once."]
    assert db["warnings"] == []
