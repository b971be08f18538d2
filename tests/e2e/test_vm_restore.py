"""vm_restore on the real PowerShell: each restore point of a chain back as a new VM holding that night's bytes."""

from __future__ import annotations

import os
import pathlib

import pytest
from conftest import Play, invoked, parse_minimal
from test_rct_backup_role import backup

from hvtest.sim import vhd

APP01 = "7a7a7a7a-0000-4000-8000-000000000001"
NIGHTS = ("night1", "night2", "night3")


def three_nights(server, tmp_path) -> dict[str, list[str]]:
    """app01 backed up three nights by the role (full, then two differentials), the guest writing to both
    disks before each night and after the last; returns each night's disk hashes."""
    expected = {}
    for number, night in enumerate(NIGHTS):
        server.write("app01", 2**20 * (number + 1), disk=0, offset=number * 3 * 2**20)
        server.write("app01", 4096, disk=1, offset=2**30 + number * 8192)
        done, _summary = backup(server, tmp_path, night)
        assert done.returncode == 0, done.stdout
        expected[night] = server.disk_hashes("app01")
    server.write("app01", 2**20, disk=0, offset=0)  # after the last backup: in no restore point
    assert len({tuple(h) for h in expected.values()}) == 3
    return expected


def restored_hashes(folder: pathlib.Path) -> list[str]:
    """The hash of the bytes of each restored disk, read from the files the module wrote (not from the simulator)."""
    hashes = []
    for name in ("os.vhdx", "data.vhdx"):
        disk = vhd.read_file(str(folder / "Virtual Hard Disks" / name))
        assert disk.kind == "dynamic" and disk.parent is None, "one whole disk per drive, no chain left"
        hashes.append(vhd.content_hash(disk.virtual_size, disk.segments))
    return hashes


def restore(server, label: str, **options) -> dict:
    """The task restoring a restore point of app01 as app01-<label> into Restore\\<label>, with options changed."""
    return {"name": f"Restore {label}", "hyperv.backup.vm_restore": {
        "path": server.path("Backup"), "vm": "app01", "restore_point": label, "name": f"app01-{label}",
        "folder": server.path("Restore", label), **options}}


@pytest.mark.scenario("restore")
def test_each_restore_point_comes_back_as_a_new_vm_holding_that_nights_bytes(server, play, tmp_path) -> None:
    expected = three_nights(server, tmp_path)
    backups = sorted(str(p) for p in (server.root / "Backup").rglob("*") if p.is_file())
    before = {p: os.stat(p).st_mtime_ns for p in backups}

    planned = play(*(restore(server, night) for night in NIGHTS), check=True)
    assert [r["changed"] for r in planned] == [True, True, True]
    assert [[d["merges"] for d in r["disks"]] for r in planned] == [[0, 0], [1, 1], [2, 2]]
    assert not (server.root / "Restore").exists(), "check mode writes nothing"

    results = play(*(restore(server, night) for night in NIGHTS))
    assert [r["_status"] for r in results] == ["CHANGED"] * 3, play.last_output
    vms = {v["name"]: v for v in server.state()["vms"]}
    for night, result in zip(NIGHTS, results):
        assert result["source"]["restore_point"] == night and result["source"]["vm"] == {"id": APP01, "name": "app01"}
        assert restored_hashes(server.root / "Restore" / night) == expected[night], night
        made = vms[f"app01-{night}"]
        assert made["id"].lower() == result["vm"]["id"] != APP01 and made["state"] == "off"
        assert made["nics"] == [{"switch": "LAN", "connected": True, "switch_name": "LAN"}]
        assert made["data_root"] == server.path("Restore", night), "its configuration and checkpoints go to the target, not app01's folder"
        assert sorted(p.name for p in (server.root / "Restore" / night / "Virtual Hard Disks").iterdir()) == ["data.vhdx", "os.vhdx"]
    assert len({v["id"] for v in vms.values()}) == len(vms) == 4
    assert server.state()["planned"] == []
    assert {p: os.stat(p).st_mtime_ns for p in backups} == before, "the backup files are only read"

    # Idempotent by name and folder: nothing is imported again.
    server.clear_calls()
    (again,) = play(restore(server, "night3"))
    assert again["changed"] is False and again["vm"]["id"] == results[2]["vm"]["id"], again
    assert not any(m.endswith(("ImportSystemDefinition", "MergeVirtualHardDisk")) for m in invoked(server))


def restore_test(server, tmp_path, **variables) -> list[dict]:
    """The role's restore entry point in its test mode, then the fact it sets; returns every task's result."""
    play = Play(server, tmp_path)
    return play({"name": "Restore test", "block": [{"ansible.builtin.include_role": {"name": "hyperv.backup.rct_backup", "tasks_from": "restore"},
                                                    "vars": {"rct_backup_destination": server.path("Backup"), "rct_backup_restore_vm": "app01",
                                                             "rct_backup_restore_folder": server.path("Restore", "test"),
                                                             "rct_backup_restore_verify": True, **variables}}],
                 "always": [{"ansible.builtin.debug": {"var": "rct_backup_restore_result"}}]})


@pytest.mark.parametrize("server", [{"guest_boots": True}, {"guest_boots": False}], indirect=True, ids=["boots", "never-boots"])
@pytest.mark.scenario("restore")
def test_the_roles_restore_test_boots_without_network_and_leaves_nothing_whatever_happens(server, tmp_path) -> None:
    assert backup(server, tmp_path, "night1")[0].returncode == 0
    boots = server.scenario_knobs["guest_boots"]
    results = restore_test(server, tmp_path, rct_backup_restore_heartbeat_timeout=3)
    booted, removed, result = results[-4], results[-3], results[-1]["rct_backup_restore_result"]
    assert booted["_status"] == ("CHANGED" if boots else "FAILED"), booted
    assert booted["vm"]["name"] == "app01-restore-test" and booted["vm"]["state"] == "running" and booted["heartbeat"] == ("ok" if boots else "no_contact")
    assert booted["source"]["restore_point"] == "night1" and [n["connected"] for n in booted["network"]] == [False]
    if not boots:
        assert booted["msg"].startswith(f"VM 'app01-restore-test' ({booted['vm']['id']}) was restored into '{server.path('Restore', 'test')}' "
                                        "and started, but its heartbeat was not OK within 3 seconds (last: no_contact).")
    assert removed["_status"] == "CHANGED" and removed["vm"]["id"] == booted["vm"]["id"], removed
    assert result["removed"] is True and result["heartbeat"] == booted["heartbeat"]
    assert [v["name"] for v in server.state()["vms"]] == ["app01"] and server.state()["planned"] == []
    assert list((server.root / "Restore").iterdir()) == [], "the test leaves no file behind"


@pytest.mark.scenario("restore")
def test_a_broken_chain_a_taken_name_or_a_failed_merge_change_nothing(server, play, tmp_path) -> None:
    for night in NIGHTS[:2]:
        server.write("app01", 2**20, disk=0, offset=0)
        assert backup(server, tmp_path, night)[0].returncode == 0
    folder = server.root / "Backup" / f"app01_{APP01}"
    cut = folder / "night2" / "app01" / "Virtual Hard Disks" / "os.vhdx"
    written = cut.stat().st_size
    os.truncate(cut, written - 1)
    server.clear_calls()
    broken, taken, busy_folder = play(*({**task, "ignore_errors": True} for task in (
        restore(server, "night2"), restore(server, "night1", name="APP01"), restore(server, "night1", folder=str(folder)))))
    assert broken["msg"] == (f"Cannot restore VM 'app01' from '{server.path('Backup')}': backup 'night2' of VM 'app01' cannot be restored: "
                             f"file '{cut}' is {written - 1} bytes, the export wrote {written}. Nothing was changed.")
    assert taken["msg"].startswith(f"A VM named 'APP01' already exists on host HV07: 'app01' ({APP01}). It was not restored into")
    assert busy_folder["msg"].startswith(f"Cannot restore into '{folder}': folder '{folder}' is not empty")
    assert [r["changed"] for r in (broken, taken, busy_folder)] == [False] * 3
    assert not (server.root / "Restore").exists()
    assert not any(m.split(".")[1] in ("ImportSystemDefinition", "SetParentVirtualHardDisk") for m in invoked(server))

    # A merge that fails half-way: the imported nothing, the files written removed, the backup untouched.
    os.truncate(cut, written)
    server.add_fault(method="MergeVirtualHardDisk", job={"fail": {"error_code": 32768, "description": "The merge failed: the disk is full."}})
    (failed,) = play(restore(server, "night2"))
    assert failed["_status"] == "FAILED" and failed["changed"] is False
    assert "while copying the disks: Merging the difference of " in failed["msg"] and "The merge failed: the disk is full." in failed["msg"]
    assert failed["msg"].endswith("Nothing was left: the files written and the imported VM were removed.")
    assert not (server.root / "Restore").exists(), "the folders it made above the target go too"
    assert [v["name"] for v in server.state()["vms"]] == ["app01"]

    # The adapter's switch is gone from the host: left disconnected and said; switch_map connects it to another.
    server.remove_switch("LAN")
    unmapped, mapped = play(restore(server, "night1"), restore(server, "night2", switch_map={"LAN": "Isolated"}))
    assert unmapped["network"] == [{"adapter": 0, "backed_up_switch": "LAN", "switch": None, "connected": False,
                                    "reason": "this host has no switch named 'LAN'"}]
    warnings = [line for line in play.last_output.splitlines() if "[WARNING]" in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        "Network adapter 0 of 'app01-night1' was on switch 'LAN': this host has no switch named 'LAN'; it is left disconnected."), warnings
    assert mapped["network"][0]["switch"] == "Isolated" and mapped["network"][0]["connected"] is True
    assert [v["nics"] for v in server.state()["vms"][1:]] == [[{"switch": "LAN", "connected": False, "switch_name": None}],
                                                              [{"switch": "LAN", "connected": True, "switch_name": "Isolated"}]]

    # Asked again for another restore point into the same folder and name: refused, not "ok".
    (other,) = play({**restore(server, "night1", restore_point="night2"), "ignore_errors": True})
    assert other["msg"].startswith(f"VM 'app01-night1' ({unmapped['vm']['id']}) in '{server.path('Restore', 'night1')}' is not the restore asked "
                                   "for: it holds the restore of backup 'night1', not of 'night2'.")

    # A copy of a restore's folder does not make its VM removable from there.
    copy = server.root / "Restore" / "copy"
    copy.mkdir()
    (copy / "hyperv.backup-restore.json").write_bytes((server.root / "Restore" / "night1" / "hyperv.backup-restore.json").read_bytes())
    (refused,) = play({"hyperv.backup.vm_restore": {"name": "app01-night1", "folder": str(copy), "state": "absent"}, "ignore_errors": True})
    assert refused["msg"].endswith(f"has disks outside '{copy}' ({server.path('Restore', 'night1', 'Virtual Hard Disks', 'os.vhdx')}, "
                                   f"{server.path('Restore', 'night1', 'Virtual Hard Disks', 'data.vhdx')}), so it is not the restore recorded "
                                   "there; nothing was removed"), refused
    assert "app01-night1" in [v["name"] for v in server.state()["vms"]] and (server.root / "Restore" / "night1" / "Virtual Hard Disks").exists()


@pytest.mark.scenario("restore")
def test_what_a_failed_restore_could_not_remove_stays_recorded_and_state_absent_finishes_it(server, play, tmp_path) -> None:
    assert backup(server, tmp_path, "night1")[0].returncode == 0
    server.add_fault(method="ValidatePlannedSystem", job={"fail": {"error_code": 32768, "description": "Validation failed."}})
    server.add_fault(method="DestroySystem", return_value=32768)
    failed, again = play(*[{**restore(server, "night1"), "ignore_errors": True}] * 2)
    folder = server.path("Restore", "night1")
    assert failed["changed"] is True and "while validating the imported VM" in failed["msg"], failed
    assert failed["msg"].endswith(f"The restore is recorded in '{folder}': run vm_restore with state=absent, name 'app01-night1' and this folder to "
                                  "remove what is left.")
    (planned,) = server.state()["planned"]
    assert planned["name"] == "app01-night1"
    assert again["msg"] == (f"'{folder}' holds a restore of 'app01-night1' that did not finish. Nothing was changed: remove what it left with "
                            "state=absent and name 'app01-night1', then run the restore again.")
    (removed,) = play({"hyperv.backup.vm_restore": {"name": "app01-night1", "folder": folder, "state": "absent"}})
    assert removed["_status"] == "CHANGED", removed
    assert server.state()["planned"] == [] and not (server.root / "Restore" / "night1").exists()


@pytest.mark.scenario("restore")
def test_replace_restores_the_vm_over_itself_only_when_off_without_checkpoints_and_says_what_it_removed(server, play, tmp_path) -> None:
    expected = {}
    for night in NIGHTS[:2]:
        server.write("app01", 2**20, disk=0, offset=len(expected) * 2**20)
        assert backup(server, tmp_path, night)[0].returncode == 0
        expected[night] = server.disk_hashes("app01")
    folder = server.path("Restore", "app01")
    points = [p["InstanceID"] for p in server.state()["reference_points"]]
    assert len(points) == 2

    def over_itself(label: str, **options) -> dict:
        return restore(server, label, name="app01", folder=folder, replace=True, **options)

    # Refused, with nothing changed: a running VM, then one with a checkpoint.
    server.clear_calls()
    (running,) = play({**over_itself("night2"), "ignore_errors": True})
    assert running["msg"] == (f"Cannot restore backup 'night2' of VM 'app01' over 'app01': VM 'app01' ({APP01}) is running: turn it off first "
                              "(vm_restore does not stop a VM it is to replace). Nothing was changed."), running
    server.power("app01", "off")
    checkpoint = {"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "left", "consistency": "crash"}}
    _made, with_checkpoint, _gone = play(checkpoint, {**over_itself("night2"), "ignore_errors": True},
                                         {"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "left", "state": "absent"}})
    assert f"VM 'app01' ({APP01}) has 1 checkpoint(s) ('hyperv.backup: left'): delete them first" in with_checkpoint["msg"], with_checkpoint
    assert [r["changed"] for r in (running, with_checkpoint)] == [False, False]
    assert not any(m.split(".")[1] in ("ImportSystemDefinition", "DestroySystem", "DestroyReferencePoint") for m in invoked(server))
    assert not (server.root / "Restore").exists() and server.state()["checkpoints"] == []

    # Check mode says what would go and what would be kept.
    (planned,) = play(over_itself("night2"), check=True)
    replaced = {"vm": {"id": APP01, "name": "app01"}, "reference_points": points,
                "files_kept": ["D:\\VMs\\app01\\os.vhdx", "D:\\VMs\\app01\\data.vhdx"]}
    assert planned["changed"] is True and planned["replaced"] == replaced, planned
    assert [v["id"].lower() for v in server.state()["vms"]] == [APP01] and not (server.root / "Restore").exists()

    # Started while the restore ran: checked again before anything of it is removed, and the restore undone.
    server.add_fault(method="RealizePlannedSystem", job={"duration": 5})
    started = play.started({**over_itself("night2"), "ignore_errors": True})
    server.wait_for_call("RealizePlannedSystem", started)
    server.power("app01", "running")
    (busy,) = parse_minimal(started.communicate(timeout=600)[0])
    assert busy["_status"] == "FAILED" and busy["changed"] is False, busy
    assert f"failed while replacing VM 'app01' ({APP01}): VM 'app01' ({APP01}) is running: turn it off first" in busy["msg"], busy
    assert busy["msg"].endswith(f"Nothing was left: the files written and the imported VM were removed. VM 'app01' ({APP01}) was not replaced and "
                                "is as it was.")
    assert [(v["name"], v["id"].lower()) for v in server.state()["vms"]] == [("app01", APP01)] and len(server.state()["reference_points"]) == 2
    server.power("app01", "off")

    # Hyper-V refuses to remove the original: the restore is undone, the original stays, and what it lost is said.
    server.add_fault(method="DestroySystem", vm="app01", return_value=32768)
    (failed,) = play({**over_itself("night2"), "ignore_errors": True})
    assert failed["changed"] is True and f"failed while replacing VM 'app01' ({APP01}): " in failed["msg"], failed
    assert failed["msg"].endswith(f"Nothing was left: the files written and the imported VM were removed. VM 'app01' ({APP01}) was not "
                                  f"replaced, but its reference points {', '.join(points)} were removed: its next backup cannot be a "
                                  "differential one.")
    assert [(v["name"], v["id"].lower()) for v in server.state()["vms"]] == [("app01", APP01)] and server.state()["reference_points"] == []
    assert not (server.root / "Restore" / "app01").exists()

    # Replaced: one VM named app01, with a new id and the night's bytes; the original's disks kept and said.
    (done,) = play(over_itself("night1"))
    assert done["_status"] == "CHANGED" and done["replaced"] == {**replaced, "reference_points": []}, done
    (vm,) = server.state()["vms"]
    assert vm["name"] == "app01" and vm["id"].lower() == done["vm"]["id"] != APP01 and vm["state"] == "off"
    assert restored_hashes(server.root / "Restore" / "app01") == expected["night1"]
    warnings = [line for line in play.last_output.splitlines() if "[WARNING]" in line]
    assert len(warnings) == 1 and "its disks are kept: D:\\VMs\\app01\\os.vhdx, D:\\VMs\\app01\\data.vhdx." in warnings[0], warnings

    # Idempotent: the folder's restore is that VM now; asking again removes nothing.
    server.clear_calls()
    (again,) = play(over_itself("night1"))
    assert again["changed"] is False and again["vm"]["id"] == done["vm"]["id"] and again["replaced"] == done["replaced"], again
    assert not any(m.split(".")[1] in ("ImportSystemDefinition", "DestroySystem") for m in invoked(server))

    # The connection dropped after the original was removed, before the restore was recorded: state=absent
    # refuses to remove what is now the only copy, and the next run records it.
    marker = server.root / "Restore" / "app01" / "hyperv.backup-restore.json"
    marker.write_text(marker.read_text().replace('"status":"done"', '"status":"restoring"'))
    assert '"status":"restoring"' in marker.read_text()
    absent, recorded = play({"hyperv.backup.vm_restore": {"name": "app01", "folder": folder, "state": "absent"}, "ignore_errors": True},
                            over_itself("night1"))
    assert absent["changed"] is False and "is the only copy. Nothing was changed" in absent["msg"], absent
    assert recorded["changed"] is True and recorded["vm"]["id"] == done["vm"]["id"] and recorded["replaced"] == done["replaced"], recorded
    assert '"status":"done"' in marker.read_text() and [v["id"] for v in server.state()["vms"]] == [vm["id"]]

    # The next night backs up the restored VM, a new VM to Hyper-V, in full into its own folder.
    assert backup(server, tmp_path, "night3")[0].returncode == 0
    assert (server.root / "Backup" / f"app01_{done['vm']['id']}" / "night3").is_dir()


@pytest.mark.scenario("restore")
def test_the_roles_restore_refuses_a_replace_that_is_a_test_or_names_no_vm(server, tmp_path) -> None:
    for variables in ({"rct_backup_restore_replace": True}, {"rct_backup_restore_replace": True, "rct_backup_restore_verify": False}):
        server.clear_calls()
        results = restore_test(server, tmp_path, **variables)
        refused = next(r for r in results if r["_status"] == "FAILED")
        assert refused["msg"] == ("rct_backup_restore_replace needs rct_backup_restore_name (the VM to restore over) and cannot be combined "
                                  "with rct_backup_restore_verify. Nothing was changed."), refused
        assert invoked(server) == [] and [v["name"] for v in server.state()["vms"]] == ["app01"]
