"""reference_point and reference_point_info through ansible-playbook, WinRM and the simulator."""

from __future__ import annotations

import pathlib

import pytest
from conftest import catalog_entries, invoked

CREATE = "Msvm_VirtualSystemReferencePointService.CreateReferencePoint"
DESTROY = "Msvm_VirtualSystemReferencePointService.DestroyReferencePoint"
GET_ERROR = "Msvm_ConcreteJob.GetErrorEx"


def rp(**args):
    return {"hyperv.backup.reference_point": args}


def info(**args):
    return {"hyperv.backup.reference_point_info": args}


def test_second_run_changes_nothing_and_calls_create_once(play, server) -> None:
    first, second = play(rp(vm="web01", name="nightly"), rp(vm="web01", name="nightly"))
    assert first["changed"] is True and second["changed"] is False
    assert first["reference_point"] == second["reference_point"]
    point = first["reference_point"]
    assert point["name"] == "nightly" and point["type"] == "rct" and point["consistency"] == "application"
    assert point["vm_name"] == "web01" and point["vm_id"] == "6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"
    assert len(point["disks"]) == 2 and point["disks_aligned"] is True
    assert all(d["rct_id"].startswith("rctX:") and d["disk_id"].startswith("Microsoft:6B4A5C2E") for d in point["disks"])
    assert first["job"]["state"] == "completed" and first["job"]["job_type"] == 201 and first["pending"] is False
    assert invoked(server) == [CREATE]
    assert [p["InstanceID"] for p in server.state()["reference_points"] if p["VirtualSystemIdentifier"].startswith("6B4A")] == [point["instance_id"]]


def test_check_mode_reports_change_and_calls_nothing(play, server) -> None:
    (result,) = play(rp(vm="web01", name="nightly"), check=True, diff=True)
    assert result["changed"] is True and result["reference_point"] is None
    # callbacks print the diff rather than keep it in the result
    assert "--- before\n+++ after\n@@ -1 +1,15 @@\n-{}\n+{" in play.last_output and '+    "name": "nightly",' in play.last_output
    assert invoked(server) == []
    assert not server.catalog.exists()


def test_remove_by_name_then_again_is_unchanged(play, server) -> None:
    created, removed, again = play(rp(vm="web01", name="n1"), rp(vm="web01", name="n1", state="absent"),
                                   rp(vm="web01", name="n1", state="absent"))
    assert created["changed"] is True and removed["changed"] is True and removed["job"]["job_type"] == 202
    assert again["changed"] is False
    assert invoked(server) == [CREATE, DESTROY]
    assert catalog_entries(server) == []


def test_unknown_vm_fails_listing_the_vms_and_changes_nothing(play, server) -> None:
    (result,) = play(rp(vm="web99", name="nightly"))
    assert result["_status"] == "FAILED"
    assert result["msg"] == (
        "Reference point of VM 'web99': No virtual machine named 'web99' on host HV01. Virtual machines found: "
        "'web01' (6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162), 'db01' (0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0), "
        "'test' (11111111-2222-4333-8444-555555555555), 'test' (66666666-7777-4888-8999-aaaaaaaaaaaa).")
    assert result["vm"] == {"name": "web99", "id": None}
    assert invoked(server) == []


def test_ambiguous_name_fails_naming_both_and_suggesting_vm_id(play, server) -> None:
    (result,) = play(rp(vm="TEST", name="nightly"))
    assert result["_status"] == "FAILED"
    assert result["msg"].endswith(
        "The name 'TEST' matches 2 virtual machines on host HV01: 'test' (11111111-2222-4333-8444-555555555555), "
        "'test' (66666666-7777-4888-8999-aaaaaaaaaaaa). Select one with vm_id.")
    assert invoked(server) == []


def test_vm_id_selects_one_of_two_same_named_vms(play, server) -> None:
    (result,) = play(rp(vm_id="66666666-7777-4888-8999-AAAAAAAAAAAA", name="nightly"))
    assert result["changed"] is True and result["vm"] == {"name": "test", "id": "66666666-7777-4888-8999-aaaaaaaaaaaa"}


def test_bad_input_is_refused_before_any_call(play, server) -> None:
    bad_guid, negative, both, unknown_choice, extra = play(
        {**rp(vm_id="not-a-guid", name="x"), "ignore_errors": True},
        {**rp(vm="web01", name="x", wait_timeout=-1), "ignore_errors": True},
        {**rp(vm="web01", vm_id="6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162", name="x"), "ignore_errors": True},
        {**rp(vm="web01", name="x", type="snapshot"), "ignore_errors": True},
        {**rp(vm="web01", name="x", label="y"), "ignore_errors": True},
    )
    assert "vm_id 'not-a-guid' is not a GUID" in bad_guid["msg"]
    assert negative["msg"] == "wait_timeout must be 0 or more seconds, got -1."
    assert both["msg"] == "parameters are mutually exclusive: vm, vm_id, vms"
    assert unknown_choice["msg"] == "value of type must be one of: log, rct. Got no match for: snapshot"
    assert extra["msg"].startswith("Unsupported parameters for (hyperv.backup.reference_point) module: label.")
    assert invoked(server) == []


def test_failed_job_reports_its_errors_and_leaves_no_catalog_entry(play, server) -> None:
    server.add_fault(method="CreateReferencePoint", job={"duration": 0.2, "fail": {
        "error_code": 32768,
        "description": "Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
        "errors": ["Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162)",
                   "Could not create backup checkpoint for virtual machine 'web01': The system cannot find the file specified. (0x80070002)."],
    }})
    (result,) = play(rp(vm="web01", name="nightly"))
    job_id = result["job"]["id"]
    assert result["_status"] == "FAILED"
    assert result["msg"] == (
        f"Creating Reference point 'nightly' of VM 'web01' failed: job {job_id} ended in state exception with error code 32768: "
        "Checkpoint operation for 'web01' failed. (Virtual machine ID 6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162) "
        "Could not create backup checkpoint for virtual machine 'web01': The system cannot find the file specified. (0x80070002).")
    assert result["job"]["errors"][1].startswith("Could not create backup checkpoint")
    assert invoked(server) == [CREATE, GET_ERROR], "the job's errors are read once"
    assert catalog_entries(server) == []


def test_error_return_value_is_explained(play, server) -> None:
    server.add_fault(method="CreateReferencePoint", return_value=32775)
    (result,) = play(rp(vm="web01", name="nightly"))
    assert result["msg"] == (
        "Creating reference point 'nightly' of VM 'web01' (6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162), which is running, failed: CreateReferencePoint "
        "returned 32775 (Invalid State). The VM or disk is in a state that does not allow this; retry when it is settled.")
    assert catalog_entries(server) == []


def test_wrong_password_is_unreachable(play, server) -> None:
    (result,) = play(rp(vm="web01", name="nightly"), password="wrong")
    assert result["_status"] == "UNREACHABLE"
    assert "credentials were rejected" in result["msg"]
    assert invoked(server) == []


@pytest.mark.scenario("names")
def test_names_with_wql_characters_are_matched_exactly(play, server) -> None:
    made, near = play(rp(vm="O'Brien \\ 100%_vm", name="it's 50%"), {**rp(vm="O'Brien \\ 100%", name="x"), "ignore_errors": True})
    assert made["changed"] is True and made["vm"]["id"] == "3c3c3c3c-0000-4000-8000-000000000001"
    assert made["reference_point"]["name"] == "it's 50%"
    assert near["_status"] == "FAILED" and "No virtual machine named 'O'Brien \\ 100%'" in near["msg"]


def test_pending_job_is_followed_not_duplicated(play, server) -> None:
    # The job outlasts two module runs (a module run takes seconds: the exec wrapper compiles Ansible.Basic each time).
    server.add_fault(method="CreateReferencePoint", job={"duration": 30})
    (started,) = play(rp(vm="web01", name="slow", wait_timeout=0, job_timeout=0))
    assert started["changed"] is True and started["pending"] is True and started["job"]["state"] == "running"
    assert started["reference_point"] is None
    (still,) = play(rp(vm="web01", name="slow", wait_timeout=0, job_timeout=0))
    assert still["pending"] is True and still["job"]["id"] == started["job"]["id"]
    (done,) = play(rp(vm="web01", name="slow", wait_timeout=40, job_timeout=0))
    assert done["changed"] is True and done["pending"] is False and done["reference_point"]["name"] == "slow"
    (again,) = play(rp(vm="web01", name="slow"))
    assert again["changed"] is False and again["reference_point"]["instance_id"] == done["reference_point"]["instance_id"]
    assert invoked(server).count(CREATE) == 1


def test_reference_point_removed_outside_is_recreated_with_a_warning(play, server) -> None:
    (first,) = play(rp(vm="web01", name="n"))
    recorded = first["reference_point"]["instance_id"]
    server.remove_behind_catalog(recorded)
    (again,) = play(rp(vm="web01", name="n"))
    assert again["changed"] is True and again["reference_point"]["instance_id"] != recorded
    warning = (f"Reference point 'n' of VM 'web01' was recorded as {recorded}, which no longer exists on the host "
               "(removed outside this collection); a new one is made.")
    assert warning in " ".join(play.last_output.split())


def test_foreign_reference_point_is_kept_unless_allowed(play, server) -> None:
    foreign = "Microsoft:0A0B0C0D-1111-4222-8333-444455556666"
    refused, allowed = play(
        {**rp(vm="db01", instance_id=foreign, state="absent"), "ignore_errors": True},
        rp(vm="db01", instance_id=foreign, state="absent", allow_foreign=True),
    )
    assert refused["_status"] == "FAILED" and "Set allow_foreign=true to remove it anyway." in refused["msg"]
    assert allowed["changed"] is True
    assert invoked(server) == [DESTROY]


def test_corrupt_catalog_is_reported_and_left_alone(play, server) -> None:
    corrupt = server.path("corrupt.json")
    (result,) = play(rp(vm="web01", name="n", catalog_path=corrupt))
    assert result["_status"] == "FAILED"
    assert f"The reference point catalog '{corrupt}' is corrupt: it is not valid JSON" in result["msg"]
    assert pathlib.Path(corrupt).read_text(encoding="utf-8") == "{not json"
    assert invoked(server) == []


def test_info_lists_named_foreign_and_stale(play, server) -> None:
    created, listing, one = play(rp(vm="web01", name="n"), info(), info(vm=["db01"]))
    by_vm = {p["vm_name"]: p for p in listing["reference_points"]}
    assert by_vm["web01"]["name"] == "n" and by_vm["web01"]["foreign"] is False
    assert by_vm["web01"] == created["reference_point"]
    assert by_vm["db01"]["foreign"] is True and by_vm["db01"]["name"] is None
    assert len(listing["vms"]) == 4
    assert [p["vm_name"] for p in one["reference_points"]] == ["db01"] and one["vms"][0]["name"] == "db01"
    assert listing["changed"] is False


def test_raw_commands_run_in_powershell_with_cim_answered_by_the_host(play, server) -> None:
    script = ("(Get-CimInstance -Namespace root/virtualization/v2 -ClassName Msvm_ComputerSystem | "
              "Where-Object Caption -eq 'Virtual Machine').ElementName -join ','")
    play({"ansible.builtin.raw": script})
    assert "hv01 | CHANGED | rc=0 >>\nweb01,db01,test,test" in play.last_output


def test_many_reference_points_in_one_task_with_jobs_followed_from_the_controller(play, server) -> None:
    server.add_fault(method="CreateReferencePoint", times=-1, job={"duration": 3})
    server.add_fault(method="DestroyReferencePoint", times=-1, job={"duration": 3})
    server.clear_calls()
    made, removed = play(rp(vms=[{"vm": "web01", "name": "a"}, {"vm": "web01", "name": "b"}, {"vm": "db01", "name": "a"}], wait_timeout=0),
                         rp(vms=[{"vm": "web01", "name": "a"}, {"vm": "web01", "name": "b"}, {"vm": "db01", "name": "a"}], wait_timeout=0,
                            state="absent"))
    assert made["_status"] == "CHANGED", play.last_output
    assert [(r["vm"]["name"], r["reference_point"]["name"], r["pending"]) for r in made["results"]] == [
        ("web01", "a", False), ("web01", "b", False), ("db01", "a", False)]
    fact = made["ansible_facts"]["hyperv_backup"]["reference_points"]
    assert set(fact["6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"]) == {"a", "b"}, "keyed by the VM's id"
    assert {p["vm_name"] for points in fact.values() for p in points.values()} == {"web01", "db01"}
    assert removed["_status"] == "CHANGED" and [r["changed"] for r in removed["results"]] == [True, True, True]
    runs = [r["module"] for r in server.calls()["module_runs"]]
    # Hyper-V takes one reference point job per VM at a time (32775 otherwise): per task, one run
    # starting web01 'a' and db01 'a', one finishing them and starting web01 'b', one finishing it.
    assert runs.count("reference_point") == 6, runs
    assert invoked(server).count("Msvm_VirtualSystemReferencePointService.CreateReferencePoint") == 3
    assert catalog_entries(server) == []
