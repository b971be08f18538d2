"""recovery_checkpoint through ansible-playbook, WinRM and the simulator."""

from __future__ import annotations

import json
import pathlib

import pytest
from conftest import catalog_entries, invoked


def rc(**args):
    return {"hyperv.backup.recovery_checkpoint": args}


@pytest.mark.scenario("backup")
def test_create_is_idempotent_then_converts_into_a_catalogued_reference_point(play, server) -> None:
    made, again, converted, converted_again = play(
        rc(vm="app01", name="b1"), rc(vm="app01", name="b1"),
        rc(vm="app01", name="b1", state="converted", mode="full", run_id="awx-7"),
        rc(vm="app01", name="b1", state="converted", mode="full"))
    assert made["changed"] is True and made["consistency"] == "application"
    assert made["checkpoint"]["element_name"] == "hyperv.backup: b1" and made["checkpoint"]["owned"] is True
    assert again["changed"] is False and again["checkpoint"]["instance_id"] == made["checkpoint"]["instance_id"]
    point = converted["reference_point"]
    assert converted["changed"] is True and point["name"] == "b1" and point["mode"] == "full" and point["run_id"] == "awx-7"
    assert converted["checkpoints"] == [], "Hyper-V removes the checkpoint as it converts it"
    assert converted_again["changed"] is False and converted_again["reference_point"]["instance_id"] == point["instance_id"]
    assert converted["ansible_facts"]["hyperv_backup"]["reference_points"]["7a7a7a7a-0000-4000-8000-000000000001"]["b1"]["instance_id"] == point["instance_id"]
    entries = catalog_entries(server)
    assert [(e["name"], e["status"], e["mode"]) for e in entries] == [("b1", "ready", "full")]
    assert invoked(server).count("Msvm_VirtualSystemSnapshotService.CreateSnapshot") == 1
    assert invoked(server).count("Msvm_VirtualSystemSnapshotService.ConvertToReferencePoint") == 1


@pytest.mark.scenario("backup")
def test_leftover_of_a_failed_run_is_removed_before_a_new_checkpoint(play, server) -> None:
    _left, made = play(rc(vm="app01", name="monday"), rc(vm="app01", name="tuesday", leftover_min_age=0))
    assert [c["label"] for c in made["removed_leftovers"]] == ["monday"]
    assert [c["label"] for c in made["checkpoints"]] == ["tuesday"]


@pytest.mark.scenario("backup")
def test_a_young_leftover_may_be_another_runs_and_is_left_alone(play, server) -> None:
    """Two plays on one VM: the second must not remove the first one's checkpoint while it exports."""
    _first, second = play(rc(vm="app01", name="play-a"), rc(vm="app01", name="play-b"))
    assert second["removed_leftovers"] == [] and sorted(c["label"] for c in second["checkpoints"]) == ["play-a", "play-b"]
    warning = " ".join(play.last_output.split())
    assert ("VM 'app01' (7a7a7a7a-0000-4000-8000-000000000001) has recovery checkpoint 'play-a' of this collection, made ") in warning
    assert ("younger than leftover_min_age (720 minutes): it may belong to a run still going, so it is left alone. If that run died, the first "
            "run after it is old enough removes it; to remove it now, run recovery_checkpoint with name 'play-a' and state=absent.") in warning


@pytest.mark.scenario("backup")
def test_application_consistency_failure_falls_back_to_crash_when_allowed(play, server) -> None:
    (refused,) = play(rc(vm="legacy01", name="b1"))
    assert refused["_status"] == "FAILED"
    assert refused["msg"].startswith("Creating Recovery checkpoint 'b1' of VM 'legacy01' failed: job ")
    assert "The guest did not answer the VSS request" in refused["msg"]
    assert server.state()["checkpoints"] == [], "a failed checkpoint job leaves no checkpoint"
    (fallback,) = play(rc(vm="legacy01", name="b1", crash_fallback=True))
    assert fallback["changed"] is True and fallback["consistency"] == "crash"
    assert "Falling back to a crash-consistent checkpoint (crash_fallback=true)." in " ".join(play.last_output.split())


@pytest.mark.scenario("backup")
def test_vm_that_cannot_be_checkpointed_is_refused_clearly(play, server) -> None:
    (result,) = play(rc(vm="locked01", name="b1"))
    assert result["_status"] == "FAILED"
    assert "CreateSnapshot returned 5 (Invalid State)" in result["msg"]
    assert server.state()["checkpoints"] == []


@pytest.mark.scenario("backup")
def test_converting_a_missing_checkpoint_fails_and_says_what_to_do(play, server) -> None:
    (result,) = play(rc(vm="app01", name="never", state="converted"))
    assert result["msg"] == ("Recovery checkpoint 'never' of VM 'app01' does not exist, so it cannot be converted to reference point 'never'; "
                             "create it first (state=present).")


@pytest.mark.scenario("backup")
def test_absent_removes_only_our_checkpoint(play, server) -> None:
    made, removed, again = play(rc(vm="app01", name="b1"), rc(vm="app01", name="b1", state="absent"), rc(vm="app01", name="b1", state="absent"))
    assert made["changed"] and removed["changed"] is True and again["changed"] is False
    assert server.state()["checkpoints"] == []


@pytest.mark.scenario("backup")
def test_many_vms_with_jobs_beyond_the_wait_are_followed_and_finished_together(play, server) -> None:
    # The jobs end 5 s apart: the controller finishes both in one run, not one run per job's end.
    server.add_fault(method="CreateSnapshot", vm="app01", job={"duration": 9})
    server.add_fault(method="CreateSnapshot", times=-1, job={"duration": 4})
    server.clear_calls()
    (made,) = play(rc(vms=[{"vm": "app01"}, {"vm_id": "7a7a7a7a-0000-4000-8000-000000000002"}, {"vm": "locked01"}],
                      name="many", consistency="crash", wait_timeout=0))
    assert made["_status"] == "FAILED" and made["msg"].startswith("1 of 3 VMs failed: "), play.last_output
    app01, legacy01, locked01 = made["results"]
    assert app01["changed"] and app01["checkpoint"]["label"] == "many" and not app01["pending"]
    assert legacy01["vm"]["name"] == "legacy01" and legacy01["checkpoint"]["label"] == "many"
    assert locked01["failed"] and "locked01" in locked01["msg"]
    runs = [r["module"] for r in server.calls()["module_runs"]]
    assert runs.count("recovery_checkpoint") == 2, "one run to start both jobs, one to finish both"
    polls = [r["args"]["job_ids"] for r in server.calls()["module_runs"] if r["module"] == "job_info"]
    assert len(polls[-1]) == 1, "once legacy01's job has ended, only app01's is polled"
    assert invoked(server).count("Msvm_VirtualSystemSnapshotService.CreateSnapshot") == 3, "once per VM (locked01 refused its call)"


@pytest.mark.scenario("backup")
def test_an_export_marker_of_an_older_version_reads_with_todays_mode_word(play, server) -> None:
    destination = server.path("Backup", "app01", "b1")
    export = {"hyperv.backup.vm_export": {"vm": "app01", "checkpoint": "b1", "destination": destination}}
    made, exported = play(rc(vm="app01", name="b1", consistency="crash"), export)
    assert made["changed"] is True and exported["changed"] is True and exported["mode"] == "full"
    marker = pathlib.Path(destination) / "hyperv.backup-export.json"
    # Before 0.3.0 an export against a base was called differential in its marker.
    written = json.loads(marker.read_text(encoding="utf-8"))
    marker.write_text(json.dumps({**written, "mode": "differential", "base": "b0"}), encoding="utf-8")
    (again,) = play(export)
    assert again["changed"] is False and again["mode"] == "incremental" and again["base"] == "b0"


@pytest.mark.scenario("backup")
def test_present_after_the_conversion_makes_no_checkpoint_nobody_converts(play, server) -> None:
    """A playbook of present and converted run twice: the second present finds the label converted."""
    *_first, again = play(rc(vm="app01", name="n1"), rc(vm="app01", name="n1", state="converted"), rc(vm="app01", name="n1"))
    assert again["changed"] is False and again["checkpoint"] is None, again
    assert again["reference_point"]["name"] == "n1" and again["reference_point"]["instance_id"].startswith("Microsoft:")
    assert server.state()["checkpoints"] == [], "no recovery checkpoint is left that nothing will convert or remove"


@pytest.mark.scenario("backup")
def test_a_label_converted_long_ago_is_refused_not_taken_for_this_runs(play, server) -> None:
    """A fixed label, or AWX job ids that started over: present must not report an old backup as this run's."""
    play(rc(vm="app01", name="n1"), rc(vm="app01", name="n1", state="converted"))
    catalog = json.loads(server.catalog.read_text(encoding="utf-8"))
    catalog["entries"][0]["created"] = "2025-01-01T01:00:00Z"
    server.catalog.write_text(json.dumps(catalog), encoding="utf-8")
    (again,) = play({**rc(vm="app01", name="n1"), "ignore_errors": True})
    assert again["msg"] == ("Recovery checkpoint 'n1' of VM 'app01' (7a7a7a7a-0000-4000-8000-000000000001) was converted to a reference point at "
                            "2025-01-01T01:00:00Z already, longer ago than leftover_min_age (720 minutes): this label belongs to an earlier backup. "
                            "Give each run a label of its own. Nothing was changed.")
    assert again["changed"] is False and server.state()["checkpoints"] == []


@pytest.mark.scenario("backup")
def test_list_reference_points_gives_each_vm_its_listing_after_the_step_also_when_followed(play, server) -> None:
    """What the role chooses bases and retention from, with no reference_point_info run: the same listing, per VM."""
    server.add_fault(method="CreateSnapshot", vm="legacy01", job={"duration": 3})
    vms = [{"vm": "app01"}, {"vm": "legacy01"}]
    made, converted, listed = play(
        rc(vms=vms, name="n1", consistency="crash", wait_timeout=0, list_reference_points=True),
        rc(vms=[{**vm, "mode": "full"} for vm in vms], name="n1", state="converted", list_reference_points=True),
        {"hyperv.backup.reference_point_info": {"vm": ["app01", "legacy01"]}})
    assert [r["reference_points"] for r in made["results"]] == [[], []], "no reference point yet, listed after the followed job"
    after = {r["vm"]["name"]: r["reference_points"] for r in converted["results"]}
    assert {name: [(p["name"], p["vm_name"], p["mode"]) for p in points] for name, points in after.items()} == {
        "app01": [("n1", "app01", "full")], "legacy01": [("n1", "legacy01", "full")]}
    assert sorted((p["instance_id"] for points in after.values() for p in points)) == sorted(p["instance_id"] for p in listed["reference_points"])
    (plain,) = play(rc(vm="app01", name="n1", state="converted"))
    assert "reference_points" not in plain, "only when asked"


@pytest.mark.scenario("backup")
def test_one_vm_followed_from_the_controller_keeps_its_destination_check(play, server) -> None:
    """The destination is checked by the first run only; the rerun that finishes the followed job must not lose it."""
    server.add_fault(method="CreateSnapshot", vm="app01", job={"duration": 3})
    (made,) = play(rc(vm="app01", name="n1", consistency="crash", wait_timeout=0, destination=server.path("Backup")))
    assert made["changed"] is True and made["checkpoint"]["label"] == "n1" and made["pending"] is False
    assert made["destination"]["usable"] is True and made["destination"]["path"] == server.path("Backup")
    runs = [r["module"] for r in server.calls()["module_runs"]]
    assert runs.count("recovery_checkpoint") == 2 and "job_info" in runs, "followed from the controller, then finished"


@pytest.mark.scenario("backup")
def test_a_creation_lists_each_vms_checkpoints_once_before_and_once_after(play, server) -> None:
    # Each listing is a Hyper-V call per VM; the creation used to list six times (leftovers, young
    # leftovers, the ids known before, the tagged one, the result's list), where one listing before
    # the creation and one after tagging tell the module everything.
    (made,) = play(rc(vms=[{"vm": "app01"}, {"vm": "legacy01"}], name="n1", consistency="crash"))
    assert made["changed"] is True and sorted(r["vm"]["name"] for r in made["results"]) == ["app01", "legacy01"], made
    listings = [c for c in server.calls()["calls"] if c["op"] == "associators" and c["association"] == "Msvm_SnapshotOfVirtualSystem"]
    assert len(listings) == 2 * 2
