"""The collection on hosts as users have them (issue 13): other languages and cultures, drives that
are not virtual hard disks, VMs in every state, old versions, busy VMs, methods that answer at once
or with a job where one expects the other, and Windows Server 2016. Each knob is the simulator's
(docs/simulator.md lists them); the PowerShell that runs is the collection's own."""

from __future__ import annotations

import re

import pytest
from conftest import catalog_entries, invoked
from test_disk_changes import base_then_checkpoint
from test_rct_backup_role import GIB, VHD_HEADER, VMCX, backup

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def checkpoint_task(vms: list[str], **options) -> dict:
    return {"name": "Recovery checkpoints", "hyperv.backup.recovery_checkpoint": {
        "vms": [{"vm": name} for name in vms], "name": "nightly", **options}, "ignore_errors": True}


@pytest.mark.parametrize("server", [{"language": "sv-SE", "culture": "fi-FI"}, {"language": "ja-JP", "culture": "tr-TR"},
                                    {"language": "de-DE", "culture": "de-DE"}], indirect=True,
                         ids=["sv-SE+fi-FI", "ja-JP+tr-TR", "de-DE"])
@pytest.mark.scenario("backup")
def test_a_backup_chain_comes_out_the_same_in_another_language_and_culture(server, play, tmp_path) -> None:
    (shown,) = play({"ansible.builtin.raw": "(Get-Culture).Name; ([datetime]'2026-01-01T02:15:00').ToString('HH:mm')", "register": "shown"},
                    {"ansible.builtin.debug": {"var": "shown.stdout_lines"}})[-1:]
    culture = server.scenario_knobs["culture"]
    lines = [line.strip() for line in shown["shown.stdout_lines"] if line.strip()]
    assert lines[:2] == [culture, "02.15" if culture == "fi-FI" else "02:15"], "the modules run in the host's culture"
    captions = {vm["Caption"] for vm in server.cim_instances("Msvm_ComputerSystem")}
    assert "Virtual Machine" not in captions, "the host's texts are translated"

    done, (run1,) = backup(server, tmp_path, "run1")
    assert done.returncode == 0, done.stdout
    assert run1["status"] == "ok" and run1["mode"] == "full" and run1["bytes"] == 2 * GIB + VMCX
    server.write("app01", 3 * 2**20, disk=1)
    done, (run2,) = backup(server, tmp_path, "run2")
    assert done.returncode == 0 and run2["mode"] == "incremental" and run2["bytes"] == 3 * 2**20 + 2 * VHD_HEADER + VMCX
    entries = catalog_entries(server)
    assert [(e["name"], e["mode"], e["status"]) for e in entries] == [("run1", "full", "ready"), ("run2", "incremental", "ready")]
    assert all(TIMESTAMP.match(e["created"]) for e in entries), [e["created"] for e in entries]


@pytest.mark.scenario("fidelity")
def test_a_vm_with_a_dvd_and_a_pass_through_disk_backs_up_its_virtual_disk_and_names_what_it_left_out(server, tmp_path) -> None:
    done, (run1,) = backup(server, tmp_path, "run1", rct_backup_vms=["media01"])
    assert done.returncode == 0, done.stdout
    assert run1["mode"] == "full" and run1["bytes"] == GIB + VMCX, "only the virtual hard disk is exported (its 1 GiB file)"
    assert "leaves out pass-through disk 'Disk 2'" in " ".join((done.stdout + done.stderr).split())
    server.write("media01", 2**20)
    done, (run2,) = backup(server, tmp_path, "run2", rct_backup_vms=["media01"])
    # The ISO is storage too: counted as a disk it made every backup a full one.
    assert done.returncode == 0 and run2["mode"] == "incremental" and run2["bytes"] == 2**20 + VHD_HEADER + VMCX, run2


@pytest.mark.scenario("fidelity")
def test_vms_rct_cannot_cover_are_refused_before_any_change(server, play) -> None:
    (result,) = play(checkpoint_task(["old01", "vhd01", "vhds01"]), {"ansible.builtin.meta": "noop"})
    by_vm = {r["vm"]["name"]: r for r in result["results"]}
    assert by_vm["old01"]["msg"] == ("Recovery checkpoint 'nightly' of VM 'old01' (13000000-0000-4000-8000-000000000008) was refused before "
                                     "any change: its configuration version is 5.0 and RCT needs 6.2 or later (upgrade it with Update-VMVersion "
                                     "while it is off).")
    assert "disk 'D:\\VMs\\vhd01\\os.vhd' is a VHD and RCT needs VHDX (convert it with Convert-VHD)" in by_vm["vhd01"]["msg"]
    assert "disk 'C:\\ClusterStorage\\shared\\quorum.vhds' is a VHD Set (.vhds)" in by_vm["vhds01"]["msg"]
    assert all(r["changed"] is False for r in result["results"])
    assert "Msvm_VirtualSystemSnapshotService.CreateSnapshot" not in invoked(server)

    (point,) = play({"hyperv.backup.reference_point": {"vm": "media01", "name": "p1"}, "ignore_errors": True})
    assert point["msg"].startswith("Reference point 'p1' of VM 'media01' (13000000-0000-4000-8000-000000000002) was refused before any "
                                   "change: disk 'Disk 2' is a pass-through disk")
    assert server.state()["reference_points"] == [] and catalog_entries(server) == []


@pytest.mark.scenario("fidelity")
def test_each_state_gets_the_checkpoint_it_can_have_or_a_message_with_the_state(server, play) -> None:
    vms = ["off01", "saved01", "paused01", "starting01", "migrating01", "busy01", "locked01"]
    (strict,) = play(checkpoint_task(vms))
    by_vm = {r["vm"]["name"]: r for r in strict["results"]}
    assert by_vm["off01"]["failed"] is False and by_vm["off01"]["consistency"] == "crash"
    assert ("VM 'off01' (13000000-0000-4000-8000-000000000003): it is off, so the checkpoint is crash-consistent"
            in " ".join(play.last_output.split()))
    for name in ("saved01", "paused01"):
        state = name[:-2]
        assert by_vm[name]["msg"].endswith(f"was refused before any change: it is {state} and an application-consistent checkpoint needs "
                                           "it running; start or resume it, or ask for a crash-consistent one."), by_vm[name]["msg"]
    for name, state, code in (("starting01", "starting", "5 (Invalid State)"), ("migrating01", "migrating", "5 (Invalid State)"),
                              ("busy01", "running", "32775 (Invalid State)"), ("locked01", "running", "5 (Invalid State)")):
        assert f"VM '{name}' (" in by_vm[name]["msg"] and f"which is {state}, failed: " in by_vm[name]["msg"], by_vm[name]["msg"]
        assert f"CreateSnapshot returned {code}" in by_vm[name]["msg"]
    assert strict["msg"].startswith("6 of 7 VMs failed: ")
    assert [r["vm"]["name"] for r in strict["results"] if r["changed"]] == ["off01"], "a failure that changed nothing says so"
    made = {c["VirtualSystemIdentifier"] for c in server.state()["checkpoints"] if c["ElementName"].startswith("hyperv.backup: ")}
    assert made == {"13000000-0000-4000-8000-000000000003"}, "only the VM that is off got a checkpoint"

    (allowed,) = play(checkpoint_task(["saved01", "paused01"], crash_fallback=True))
    assert [(r["vm"]["name"], r["failed"], r["consistency"]) for r in allowed["results"]] == [
        ("saved01", False, "crash"), ("paused01", False, "crash")]


@pytest.mark.scenario("fidelity")
def test_another_products_recovery_checkpoint_is_left_alone(server, play) -> None:
    (result,) = play({"hyperv.backup.recovery_checkpoint": {"vm": "foreign01", "name": "nightly"}})
    assert result["changed"] is True and result["checkpoint"]["label"] == "nightly"
    assert "made by other software; it is left alone" in " ".join(play.last_output.split())
    names = sorted(c["ElementName"] for c in server.state()["checkpoints"])
    assert names == ["Veeam Backup checkpoint", "hyperv.backup: nightly"]


SYNC = {method: "sync" for method in ("CreateSnapshot", "DestroySnapshot", "ConvertToReferencePoint", "CreateReferencePoint",
                                      "DestroyReferencePoint", "ExportSystemDefinition")}


@pytest.mark.scenario("backup", answers=SYNC)
def test_every_method_answering_at_once_gives_the_same_backups(server, play, tmp_path) -> None:
    done, (run1,) = backup(server, tmp_path, "run1")
    assert done.returncode == 0, done.stdout
    server.write("app01", 2**20, disk=0)
    done, (run2,) = backup(server, tmp_path, "run2")
    assert done.returncode == 0 and run2["mode"] == "incremental" and run2["bytes"] == 2**20 + 2 * VHD_HEADER + VMCX
    created, removed = play({"hyperv.backup.reference_point": {"vm": "app01", "name": "manual"}},
                            {"hyperv.backup.reference_point": {"vm": "app01", "name": "manual", "state": "absent"}})
    assert created["changed"] and created["reference_point"]["name"] == "manual" and removed["changed"]
    assert [c for c in server.calls()["calls"] if c["op"] == "job_started"] == [], "no method started a job"


@pytest.mark.scenario("blocks")
def test_changed_blocks_are_read_again_when_hyperv_answers_with_a_job_and_need_a_full_copy_when_it_keeps_doing_so(server, play) -> None:
    base_then_checkpoint(play, server, [(1, 3 * GIB, 8192)])
    server.add_fault(method="GetVirtualDiskChanges", answer="job", times=2)
    server.add_fault(method="GetVirtualHardDiskSettingData", answer="job", times=1)
    (ok,) = play({"hyperv.backup.disk_changes_info": {"vm": "files01", "checkpoint": "now", "base": "base"}})
    # Read as an answer, the empty out parameters of a job would say: size 0, nothing changed.
    assert ok["changed_bytes"] == 8192 and [d["size"] for d in ok["disks"]] == [4 * GIB, 8 * GIB]

    server.add_fault(method="GetVirtualDiskChanges", answer="job", times=-1)
    (full,) = play({"hyperv.backup.disk_changes_info": {"vm": "files01", "checkpoint": "now", "base": "base"}})
    # Never "nothing changed": the changes cannot be read, so only a full copy is safe, and why is said.
    assert full["full_needed"] is True
    reasons = " ".join(full["full_reasons"])
    assert "GetVirtualDiskChanges answered with a Hyper-V job (4096, last " in reasons and "instead of the data 3 times" in reasons


@pytest.mark.scenario("backup", windows=2016)
def test_windows_server_2016_backs_up_and_refuses_what_it_lacks_clearly(server, play, tmp_path) -> None:
    done, (run1,) = backup(server, tmp_path, "run1")
    assert done.returncode == 0, done.stdout
    server.write("app01", 2**20, disk=0)
    done, (run2,) = backup(server, tmp_path, "run2")
    assert done.returncode == 0 and run2["mode"] == "incremental"
    (direct,) = play({"hyperv.backup.reference_point": {"vm": "app01", "name": "manual"}, "ignore_errors": True})
    assert direct["_status"] == "FAILED"
    assert "has no class Msvm_VirtualSystemReferencePointSettingData" in direct["msg"]
    assert "missing on a 2016 host" in direct["msg"]
    assert [e["name"] for e in catalog_entries(server)] == ["run1", "run2"], "nothing recorded for the refused one"
