"""Nothing duplicated, nothing left unnamed (issue 18): what a job made is found when the host has
forgotten the job or the job does not name it, and a run after a dead controller finishes the
creation it left instead of starting a second one. Counts come from the host and the catalog."""

from __future__ import annotations

import json
import pathlib
import time

import pytest
from conftest import catalog_entries, invoked


def point_task(**options) -> dict:
    return {"hyperv.backup.reference_point": {"vm": "web01", "name": "nightly", "wait_timeout": 0, **options}}


@pytest.mark.parametrize("job", [{"duration": 2, "vanish_after": 0.2}, {"duration": 0.5, "names_product": False}],
                         ids=["job-forgotten", "product-not-named"])
def test_a_reference_point_whose_job_cannot_name_it_is_recorded_once(server, play, job) -> None:
    server.add_fault(method="CreateReferencePoint", vm="web01", job=job)
    (created,) = play(point_task())
    assert created["changed"] is True and not created.get("failed"), created.get("msg")
    web01 = [p for p in server.state()["reference_points"] if p["VirtualSystemIdentifier"] == "6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162"]
    assert len(web01) == 1, "one reference point, not a second one made by a retry"
    (entry,) = [e for e in catalog_entries(server) if e["vm_id"] == "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"]
    assert entry["status"] == "ready" and entry["instance_id"] == web01[0]["InstanceID"] == created["reference_point"]["instance_id"]

    (again,) = play(point_task())
    assert again["changed"] is False and again["reference_point"]["instance_id"] == web01[0]["InstanceID"]
    assert invoked(server).count("Msvm_VirtualSystemReferencePointService.CreateReferencePoint") == 1


def test_two_new_unnamed_reference_points_are_named_not_guessed(server, play) -> None:
    server.add_fault(method="CreateReferencePoint", vm="web01", job={"duration": 2, "vanish_after": 0.2})
    (started,) = play(point_task(job_timeout=0))
    assert started["pending"] is True, "the controller stops following: as if it died"
    time.sleep(2.5)
    # Another product makes one too once ours has ended (and the host has forgotten our job).
    (other,) = play({"hyperv.backup.reference_point": {"vm": "web01", "name": "other", "wait_timeout": 30}})
    catalog = json.loads(server.catalog.read_text(encoding="utf-8"))
    catalog["entries"] = [e for e in catalog["entries"] if e["name"] != "other"]
    server.catalog.write_text(json.dumps(catalog), encoding="utf-8")
    (result,) = play({**point_task(), "ignore_errors": True})
    assert result["_status"] == "FAILED"
    assert "has 2 reference points no catalog entry names that it did not have before" in result["msg"]
    assert other["reference_point"]["instance_id"] in result["msg"]
    assert invoked(server).count("Msvm_VirtualSystemReferencePointService.CreateReferencePoint") == 2, "nothing more was created"


@pytest.mark.scenario("backup")
def test_a_checkpoint_whose_controller_died_is_tagged_by_the_next_run_not_made_twice(server, play) -> None:
    task = {"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "nightly", "wait_timeout": 0, "job_timeout": 0}}
    (started,) = play(task)
    assert started["pending"] is True, "the controller stops following: as if it died"
    time.sleep(1.5)
    (rerun,) = play({"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "nightly"}})
    assert rerun["changed"] is True and rerun["checkpoint"]["label"] == "nightly"
    assert "of a run that did not see it end; it is tagged now instead of making a second one" in " ".join(play.last_output.split())
    checkpoints = [c for c in server.state()["checkpoints"] if c["VirtualSystemIdentifier"] == "7A7A7A7A-0000-4000-8000-000000000001"]
    assert [c["ElementName"] for c in checkpoints] == ["hyperv.backup: nightly"], "no untagged orphan"
    assert invoked(server).count("Msvm_VirtualSystemSnapshotService.CreateSnapshot") == 1
    pending = server.root / "ProgramData" / "hyperv.backup" / "pending-checkpoints.json"
    assert catalog_entries(server, pending) == [], "the record of the creation is gone once it is tagged"


@pytest.mark.scenario("backup")
def test_an_export_whose_controller_stopped_following_is_never_exported_over(server, play) -> None:
    """The export's job recorded on the host (pending-exports.json) stops a run of another label or
    VM from taking the folder while Hyper-V has the job, running or ended; its own run records it;
    once Hyper-V has forgotten the job, what it wrote is a partial export like any other, and its
    record goes, also the record of a folder nobody exports into again."""
    play({"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "night", "consistency": "crash"}})
    pending = server.root / "ProgramData" / "hyperv.backup" / "pending-exports.json"
    busy = {"vm": "app01", "checkpoint": "night", "destination": server.path("Backup", "app01-busy")}
    server.add_fault(method="ExportSystemDefinition", job={"duration": 600})
    (started,) = play({"hyperv.backup.vm_export": {**busy, "wait_timeout": 0, "job_timeout": 0}})
    assert started["pending"] is True, "the controller stops following: as if it died"
    busy_job = started["job"]["id"]
    (other,) = play({"hyperv.backup.vm_export": {**busy, "checkpoint": "other"}, "ignore_errors": True})
    assert other["_status"] == "FAILED" and other["changed"] is False
    assert (f"export job {busy_job} of VM 'app01' (7a7a7a7a-0000-4000-8000-000000000001) checkpoint 'night', started by a run that did not see "
            "it end, is still writing into it") in other["msg"]
    (legacy,) = play({"hyperv.backup.vm_export": {**busy, "vm": "legacy01", "overwrite_partial": True}, "ignore_errors": True})
    assert legacy["_status"] == "FAILED" and f"export job {busy_job} of VM 'app01'" in legacy["msg"], "nor another VM"
    assert [e["job_id"] for e in catalog_entries(server, pending)] == [busy_job], "the record stays while its job runs"

    ended = {"vm": "app01", "checkpoint": "night", "destination": server.path("Backup", "app01-ended")}
    server.add_fault(method="ExportSystemDefinition", job={"duration": 1})
    (started,) = play({"hyperv.backup.vm_export": {**ended, "wait_timeout": 0, "job_timeout": 0}})
    time.sleep(1.5)
    (other,) = play({"hyperv.backup.vm_export": {**ended, "checkpoint": "other", "overwrite_partial": True}, "ignore_errors": True})
    assert other["_status"] == "FAILED" and f"export job {started['job']['id']} of VM 'app01'" in other["msg"], other
    assert "has ended and is not recorded yet" in other["msg"], "ended, its files are not taken for a partial export"
    (own,) = play({"hyperv.backup.vm_export": ended})
    assert own["changed"] is True and (pathlib.Path(ended["destination"]) / "hyperv.backup-export.json").is_file(), own

    forgotten = {"vm": "app01", "checkpoint": "night", "destination": server.path("Backup", "app01-forgotten")}
    server.add_fault(method="ExportSystemDefinition", job={"duration": 1, "vanish_after": 0})
    (started,) = play({"hyperv.backup.vm_export": {**forgotten, "wait_timeout": 0, "job_timeout": 0}})
    time.sleep(1.5)
    # A read after its end ends the simulated job, which the host then forgets at once (vanish_after 0).
    play({"hyperv.backup.job_info": {"job_id": started["job"]["id"]}})
    (seen,) = play({"hyperv.backup.job_info": {"job_id": started["job"]["id"]}})
    assert seen["job"]["state"] == "gone", seen
    # A folder nobody exports into again (the role's holds its label): its record, older than the
    # five minutes Hyper-V keeps a finished job, goes with the next export on the host.
    records = json.loads(pending.read_text(encoding="utf-8"))
    records["entries"].append({"vm_id": "7a7a7a7a-0000-4000-8000-000000000001", "vm_name": "app01", "name": "z:\\elsewhere", "checkpoint": "old",
                               "job_id": "0D0D0D0D-0000-4000-8000-00000000000D", "started": "2026-01-01T00:00:00Z", "resume": {"differential": False}})
    pending.write_text(json.dumps(records), encoding="utf-8")
    (again,) = play({"hyperv.backup.vm_export": forgotten, "ignore_errors": True})
    assert again["_status"] == "FAILED" and "holds a partial export" in again["msg"], again
    assert [e["job_id"] for e in catalog_entries(server, pending)] == [busy_job], "forgotten jobs' records go, a running one's stays"
    assert invoked(server).count("Msvm_VirtualSystemManagementService.ExportSystemDefinition") == 3, "nothing was exported over"


@pytest.mark.scenario("backup")
def test_a_followed_incremental_export_is_recorded_as_the_job_made_it_not_as_the_rerun_asks(server, play) -> None:
    """The run that follows another run's job and the run that finishes it take the job's kind and
    base from its record, not from their own task: an incremental recorded as full would break the
    restore chain."""
    checkpoint = {"vm": "app01", "consistency": "crash"}
    play({"hyperv.backup.recovery_checkpoint": {**checkpoint, "name": "n1"}},
         {"hyperv.backup.vm_export": {"vm": "app01", "checkpoint": "n1", "destination": server.path("Backup", "n1")}},
         {"hyperv.backup.recovery_checkpoint": {**checkpoint, "name": "n1", "state": "converted"}},
         {"hyperv.backup.recovery_checkpoint": {**checkpoint, "name": "n2"}})
    incremental = {"vm": "app01", "checkpoint": "n2", "destination": server.path("Backup", "n2")}
    server.add_fault(method="ExportSystemDefinition", job={"duration": 40})
    (started,) = play({"hyperv.backup.vm_export": {**incremental, "base": "n1", "wait_timeout": 0, "job_timeout": 0}})
    assert started["pending"] is True and started["mode"] == "incremental", started
    # Run again without the base (a playbook changed meanwhile): the job in the folder is still the incremental one.
    (again,) = play({"hyperv.backup.vm_export": {**incremental, "wait_timeout": 1}})
    assert again["changed"] is True and (again["mode"], again["base"]) == ("incremental", "n1"), again
    marker = json.loads((pathlib.Path(incremental["destination"]) / "hyperv.backup-export.json").read_text(encoding="utf-8"))
    assert (marker["mode"], marker["base"]) == ("incremental", "n1")
    assert " ".join(play.last_output.split()).count("this run follows that job instead of exporting again") == 1, "warned once"


@pytest.mark.scenario("backup")
def test_a_checkpoint_whose_job_names_nothing_is_still_the_one_tagged(server, play) -> None:
    server.add_fault(method="CreateSnapshot", vm="app01", job={"duration": 0.3, "names_product": False})
    (result,) = play({"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "nightly"}})
    assert result["changed"] is True and result["checkpoint"]["label"] == "nightly"
    assert [c["ElementName"] for c in server.state()["checkpoints"]] == ["hyperv.backup: nightly"]
