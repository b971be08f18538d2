"""The rct_backup role over WinRM against the simulator: chains, forced fulls, retention, failures."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
import yaml
from conftest import catalog_entries

from hvtest import paths
from hvtest.sim.vhd import HEADER as VHD_HEADER  # every exported disk file starts with one, as a VHDX file does

GIB = 2**30
VMCX = 61440


def backup(server, tmp_path, label: str, *args: str, **variables):
    playbook = tmp_path / f"backup-{label}.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "nightly", "hosts": "hyperv", "gather_facts": False,
        "tasks": [{"name": "Back up", "block": [{"ansible.builtin.include_role": {"name": "hyperv.backup.rct_backup"}, "vars": {
            "rct_backup_vms": ["app01"], "rct_backup_destination": server.path("Backup"), "rct_backup_label": label, **variables}}],
            "always": [{"name": "Keep the summary", "ansible.builtin.copy": {
                "content": "{{ rct_backup_summary | default([]) | to_json }}", "dest": str(tmp_path / f"summary-{label}.json")},
                "delegate_to": "localhost", "check_mode": False}]}],
    }]), encoding="utf-8")
    done = server.playbook(playbook, *args)
    summary_file = tmp_path / f"summary-{label}.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    return done, summary


def points(server) -> list[dict]:
    entries = catalog_entries(server)
    live = {p["InstanceID"] for p in server.state()["reference_points"]}
    return [e for e in entries if e["instance_id"] in live]


def host_state(server) -> dict:
    """What a backup run leaves on the host: reference points, checkpoints, catalog entries, files."""
    state = server.state()
    backups = server.root / "Backup"
    files = sorted(str(p.relative_to(backups)) for p in backups.rglob("*") if p.is_file()) if backups.exists() else []
    for kind in ("checkpoints", "exports"):
        pending = server.catalog.parent / f"pending-{kind}.json"
        files.append(pending.read_text(encoding="utf-8") if pending.exists() else "")
    return {"reference_points": state["reference_points"], "checkpoints": state["checkpoints"],
            "catalog": catalog_entries(server), "files": files}


@pytest.mark.scenario("backup")
def test_check_mode_says_what_the_role_would_do_and_changes_nothing(server, tmp_path) -> None:
    # A record of an export job Hyper-V has forgotten: a run not in check mode would drop it.
    server.catalog.parent.mkdir(parents=True, exist_ok=True)
    (server.catalog.parent / "pending-exports.json").write_text(json.dumps({"version": 1, "entries": [{
        "vm_id": "7a7a7a7a-0000-4000-8000-000000000001", "vm_name": "app01", "name": "z:\\elsewhere", "checkpoint": "old",
        "job_id": "0D0D0D0D-0000-4000-8000-00000000000D", "started": "2026-01-01T00:00:00Z", "resume": {"differential": False}}]}), encoding="utf-8")
    before = host_state(server)
    done, (first,) = backup(server, tmp_path, "check1", "--check")
    assert done.returncode == 0, done.stdout
    assert first["status"] == "ok" and first["mode"] == "full" and first["vm_id"] == "7a7a7a7a-0000-4000-8000-000000000001"
    assert first["bytes"] == 2 * GIB, "what the full backup would copy: its two disks' files"
    assert host_state(server) == before, "a run in check mode changes nothing"

    # The VMs as an AWX survey's textarea gives them: a string, one per line.
    done, (run1,) = backup(server, tmp_path, "run1", rct_backup_vms="  app01 \n\n")
    assert done.returncode == 0 and run1["mode"] == "full", done.stdout
    server.write("app01", 2**20, disk=0)
    before = host_state(server)
    done, (second,) = backup(server, tmp_path, "check2", "--check")
    assert done.returncode == 0, done.stdout
    assert second["status"] == "ok" and second["mode"] == "incremental" and second["full_reason"] is None
    assert host_state(server) == before

    server.add_disk("app01", "D:\\VMs\\app01\\logs.vhdx", 8)
    done, (third,) = backup(server, tmp_path, "check3", "--check")
    assert done.returncode == 0 and third["mode"] == "full", done.stdout
    assert third["full_reason"] == "the VM's disk set changed since 'run1' (1 added, 0 removed)"


@pytest.mark.scenario("backup")
@pytest.mark.parametrize(("destination", "problem"), [
    ("Backup", "'Backup' is not a full path: give a local path with its drive"),
    ("D:Backup", "'D:Backup' is not a full path"),
    ("\\\\nas", "'\\\\nas' is not a full path"),
    # No account may write there: the module's own account (on Windows, one without rights or a share beyond the second hop).
    ("/proc/hyperv-backup", "'/proc' (where '/proc/hyperv-backup' would be created) is not writable by "),
])
def test_a_destination_the_host_cannot_use_stops_the_role_before_any_checkpoint(server, tmp_path, destination, problem) -> None:
    done, summary = backup(server, tmp_path, "run1", rct_backup_destination=destination)
    assert done.returncode == 2 and [(s["vm"], s["status"]) for s in summary] == [("app01", "failed")]
    # Every VM's error in a new summary: AWX's fact cache never keeps last night's "ok" for a run that did nothing.
    assert summary[0]["error"].startswith(f"Recovery checkpoint | app01: Backup destination {problem}"), summary
    assert summary[0]["error"].endswith("Nothing was changed."), summary
    shown = json.dumps(problem)[1:-1]  # as the callback prints it, in JSON
    assert f"Backup destination {shown}" in done.stdout, done.stdout
    # Checked by the checkpoint task itself, before any checkpoint: one module run, and nothing made.
    assert [r["module"] for r in server.calls()["module_runs"]] == ["recovery_checkpoint"] and server.state()["checkpoints"] == []


@pytest.mark.scenario("backup")
def test_vm_export_refuses_a_relative_path_and_a_volume_without_room_before_any_change(play, server) -> None:
    same = server.path("Backup", "y")
    made, relative, no_room, shared, spelled = play(
        {"hyperv.backup.recovery_checkpoint": {"vm": "app01", "name": "n1"}},
        {"hyperv.backup.vm_export": {"vm": "app01", "checkpoint": "n1", "destination": "Backup\\app01"}, "ignore_errors": True},
        # 2 GiB of disk files and a margin of a hundred million percent: more than any machine has free.
        {"hyperv.backup.vm_export": {"vm": "app01", "checkpoint": "n1", "destination": server.path("Backup", "app01"), "free_space_margin": 100000000},
         "ignore_errors": True},
        # One folder for two VMs: one export's clean-up would take the other's files for its own.
        {"hyperv.backup.vm_export": {"vms": [{"vm": "app01"}, {"vm": "legacy01"}], "checkpoint": "n1", "destination": server.path("Backup", "x")},
         "ignore_errors": True},
        # The same folder written two ways (other separators, doubled, trailing, other case) is one folder.
        {"hyperv.backup.vm_export": {"vms": [{"vm": "app01", "destination": same},
                                             {"vm": "legacy01", "destination": same.replace("/", "\\\\").upper() + "/"}], "checkpoint": "n1"},
         "ignore_errors": True})
    assert made["changed"] is True
    assert shared["msg"] == (f"vms: destination '{server.path('Backup', 'x')}' is given for 2 VMs; each export needs a folder of its own. "
                             "Nothing was changed.")
    assert spelled["msg"] == f"vms: destination '{same}' is given for 2 VMs; each export needs a folder of its own. Nothing was changed."
    assert relative["msg"] == ("Export of VM 'app01' to 'Backup\\app01' refused: 'Backup\\app01' is not a full path: give a local path with its drive "
                               "(D:\\Backups\\Hyper-V) or a share (\\\\server\\share\\Hyper-V). Nothing was changed.")
    assert relative["changed"] is False and no_room["changed"] is False
    assert "GiB free, and this needs 2000002.0 GiB (the disks to copy and the free space margin): free some space, or choose another " in no_room["msg"]
    assert not (server.root / "Backup").exists(), "nothing was written"
    assert not [c for c in server.calls()["calls"] if c["op"] == "invoke" and c["method"] == "ExportSystemDefinition"]


@pytest.mark.scenario("backup")
def test_full_then_incrementals_then_forced_full_after_a_disk_is_added_then_retention(server, tmp_path) -> None:
    done, summary = backup(server, tmp_path, "run1")
    assert done.returncode == 0, done.stdout
    (run1,) = summary
    assert run1["status"] == "ok" and run1["mode"] == "full" and run1["bytes"] == 2 * GIB + VMCX
    assert run1["reference_point"] == "run1" and run1["full_reason"] is None

    server.write("app01", 3 * 2**20, disk=0)
    server.write("app01", 5 * 2**20, disk=1, offset=10 * 2**20)
    done, (run2,) = backup(server, tmp_path, "run2")
    assert done.returncode == 0 and run2["mode"] == "incremental" and run2["bytes"] == 8 * 2**20 + 2 * VHD_HEADER + VMCX

    server.write("app01", 2**20, disk=1)
    server.write("app01", 2**20, disk=1)  # the same range again counts once
    done, (run3,) = backup(server, tmp_path, "run3")
    assert run3["mode"] == "incremental" and run3["bytes"] == 2**20 + 2 * VHD_HEADER + VMCX
    assert [(p["name"], p["mode"], p["base"]) for p in points(server)] == [
        ("run1", "full", None), ("run2", "incremental", "run1"), ("run3", "incremental", "run2")]

    server.add_disk("app01", "D:\\VMs\\app01\\logs.vhdx", 8)
    done, (run4,) = backup(server, tmp_path, "run4", rct_backup_retention_keep=1)
    assert done.returncode == 0, done.stdout
    assert run4["mode"] == "full" and run4["full_reason"] == "the VM's disk set changed since 'run3' (1 added, 0 removed)"
    assert run4["bytes"] == 3 * GIB + VMCX
    # keep=1 chain: the whole first chain goes, newest first, and only run4 stays
    assert [p["name"] for p in points(server)] == ["run4"]
    assert server.state()["checkpoints"] == []
    assert "full because the VM's disk set changed since 'run3'" in done.stdout
    destroyed = [c["instance_id"] for c in server.calls()["calls"] if c["op"] == "destroyed"]
    assert len(destroyed) == 3


@pytest.mark.scenario("backup")
def test_invalid_change_tracking_forces_a_full_backup_and_says_so(server, tmp_path) -> None:
    backup(server, tmp_path, "run1")
    server.invalidate_rct("app01")
    done, (run2,) = backup(server, tmp_path, "run2")
    assert done.returncode == 0 and run2["mode"] == "full"
    assert run2["full_reason"].startswith("the change tracking data of base 'run1' is no longer valid")
    assert "0xC03A0029" in run2["full_reason"]


@pytest.mark.scenario("backup")
def test_incremental_without_a_base_is_refused_and_leaves_nothing(server, tmp_path) -> None:
    done, (result,) = backup(server, tmp_path, "run1", rct_backup_mode="incremental")
    assert done.returncode != 0 and result["status"] == "failed"
    assert "has no earlier backup of this collection to take an incremental against" in result["error"]
    assert server.state()["checkpoints"] == [] and points(server) == []


@pytest.mark.parametrize("step, fault", [
    ("Recovery checkpoint", {"method": "CreateSnapshot", "times": 2,  # the crash-consistent fallback fails too
                             "job": {"duration": 0.2, "fail": {"error_code": 32768, "description": "Checkpoint failed"}}}),
    ("Export", {"method": "ExportSystemDefinition", "job": {"duration": 0.2, "fail": {"error_code": 32768, "description": "Disk full"}}}),
    ("Close the backup with a reference point", {"method": "ConvertToReferencePoint", "return_value": 32775}),
    ("Retention", {"method": "DestroyReferencePoint", "return_value": 32769}),
])
@pytest.mark.scenario("backup")
def test_a_failure_at_any_step_leaves_no_checkpoint_and_keeps_earlier_reference_points(server, tmp_path, step, fault) -> None:
    backup(server, tmp_path, "run1")
    backup(server, tmp_path, "run2", rct_backup_mode="full")
    before = {p["name"] for p in points(server)}
    server.add_fault(**fault)
    done, (result,) = backup(server, tmp_path, "run3", rct_backup_mode="full", rct_backup_retention_keep=1)
    assert done.returncode != 0
    assert result["status"] == "failed" and result["error"].startswith(f"{step} | app01: ")
    assert server.state()["checkpoints"] == [], "no recovery checkpoint is left behind"
    after = {p["name"] for p in points(server)}
    if step == "Retention":
        # the backup itself closed; retention removed what it could and kept the one Hyper-V refused to destroy
        assert after == {"run2", "run3"}
    else:
        assert before <= after, "no earlier reference point is lost"
    assert "rct_backup failed for app01" in done.stdout


@pytest.mark.scenario("backup")
def test_changed_blocks_method_lists_ranges_for_incrementals(server, tmp_path) -> None:
    done, (run1,) = backup(server, tmp_path, "run1", rct_backup_method="changed_blocks")
    assert done.returncode == 0 and run1["mode"] == "full", "no base: a full export"
    server.write("app01", 65536, disk=1, offset=2**20)
    done, (run2,) = backup(server, tmp_path, "run2", rct_backup_method="changed_blocks")
    assert done.returncode == 0, done.stdout
    assert run2["mode"] == "incremental" and run2["method"] == "changed_blocks" and run2["bytes"] == 65536
    files = sorted(pathlib.Path(server.path("Backup", "app01_7a7a7a7a-0000-4000-8000-000000000001", "run2")).glob("*.json"))
    ranges = [json.loads(f.read_text(encoding="utf-8"))["ranges"] for f in files]
    assert ranges == [[[2**20, 65536]]], "a file for each disk with changes"
    assert [(p["name"], p["mode"], p["base"]) for p in points(server)] == [("run1", "full", None), ("run2", "incremental", "run1")]


@pytest.mark.scenario("backup")
def test_three_vms_are_backed_up_together_one_module_run_per_step(server, tmp_path) -> None:
    vms = ["app01", "legacy01", "locked01"]
    server.clear_calls()
    done, summary = backup(server, tmp_path, "run1", rct_backup_vms=vms)
    by_vm = {entry["vm"]: entry for entry in summary}
    assert done.returncode != 0, "locked01 cannot be checkpointed: the role fails at the end, naming it"
    assert "rct_backup failed for locked01" in done.stdout
    assert '"hv01: 2 of 3 VMs backed up; failed: locked01"' in done.stdout, "the host's result in one line"
    assert [entry["vm"] for entry in summary] == vms
    assert by_vm["app01"]["status"] == "ok" and by_vm["app01"]["consistency"] == "application" and by_vm["app01"]["mode"] == "full"
    assert by_vm["legacy01"]["status"] == "ok" and by_vm["legacy01"]["consistency"] == "crash", "no integration services: crash fallback"
    assert by_vm["locked01"]["status"] == "failed" and by_vm["locked01"]["error"].startswith("Recovery checkpoint | locked01: ")
    assert {p["vm_name"] for p in points(server)} == {"app01", "legacy01"}
    assert server.state()["checkpoints"] == [], "no recovery checkpoint is left behind"
    runs = [r["module"] for r in server.calls()["module_runs"]]
    # one run per step for all three VMs: checkpoints (with the destination check and the bases' listing), exports,
    # conversions (with the retention listing), clean-up; nothing else
    assert runs == ["recovery_checkpoint", "vm_export", "recovery_checkpoint", "recovery_checkpoint"], runs
    exports = [c for c in server.calls()["calls"] if c["op"] == "invoke" and c["method"] == "ExportSystemDefinition"]
    assert len(exports) == 2

    server.clear_calls()
    done, summary = backup(server, tmp_path, "run2", rct_backup_vms=vms[:2])
    assert done.returncode == 0, done.stdout
    assert [(e["vm"], e["status"], e["mode"]) for e in summary] == [("app01", "ok", "incremental"), ("legacy01", "ok", "incremental")]
    assert [r["module"] for r in server.calls()["module_runs"]].count("vm_export") == 1

    server.clear_calls()
    done, summary = backup(server, tmp_path, "run3", rct_backup_vms=vms[:2], rct_backup_mode="full", rct_backup_retention_keep=1)
    assert done.returncode == 0, done.stdout
    assert sorted((p["vm_name"], p["name"]) for p in points(server)) == [("app01", "run3"), ("legacy01", "run3")]
    runs = [r["module"] for r in server.calls()["module_runs"]]
    assert runs.count("reference_point") == 1, "the four reference points retention drops go in one module run"
    destroyed = [c for c in server.calls()["calls"] if c["op"] == "invoke" and c["method"] == "DestroyReferencePoint"]
    assert len(destroyed) == 4


NOTIFY = [{"name": "Report the backup", "hosts": "localhost", "gather_facts": False, "tasks": [
    # As docs/awx.md prints it: a host that was unreachable has no summary; it says so instead.
    {"name": "Every host's result, the unreachable ones included", "ansible.builtin.set_fact": {
        "backup_report": "{{ backup_report | default({}) | combine({item: hostvars[item].rct_backup_summary | default("
                         "'no summary: the host was unreachable, or the play stopped before the role ran')}) }}"},
     "loop": "{{ groups['hyperv'] }}"},
    {"name": "Keep it", "ansible.builtin.copy": {"content": "{{ backup_report | to_json }}", "dest": "{{ report_file }}"}}]}]


@pytest.mark.scenario("backup")
def test_an_unreachable_host_has_no_summary_and_the_notification_play_says_so(server, tmp_path) -> None:
    inventory = tmp_path / "two-hosts.yml"
    inventory.write_text(server.inventory().read_text(encoding="utf-8") + (
        "        hv02:\n          ansible_host: 127.0.0.1\n          ansible_port: 9\n          ansible_connection: winrm\n"
        "          ansible_winrm_transport: basic\n          ansible_winrm_scheme: http\n          ansible_user: ansible\n"
        "          ansible_password: nothing-listens-here\n"), encoding="utf-8")
    playbook = tmp_path / "nightly-and-report.yml"
    playbook.write_text(yaml.safe_dump([{"name": "nightly", "hosts": "hyperv", "gather_facts": False, "roles": [{
        "role": "hyperv.backup.rct_backup", "vars": {"rct_backup_vms": ["app01"], "rct_backup_destination": server.path("Backup"),
                                                     "rct_backup_label": "run1"}}]}, *NOTIFY]), encoding="utf-8")
    report_file = tmp_path / "report.json"
    done = subprocess.run([paths.tool("ansible-playbook"), "-i", str(inventory), str(playbook), "-e", f"report_file={report_file}"],
                          env=paths.ansible_env(), capture_output=True, text=True, check=False, cwd=str(paths.ROOT))
    assert done.returncode == 4, done.stdout  # ansible's code for an unreachable host
    assert "hv02" in done.stdout and "UNREACHABLE!" in done.stdout
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert [entry["status"] for entry in report["hv01"]] == ["ok"], "the reachable host is backed up and reported"
    assert report["hv02"] == "no summary: the host was unreachable, or the play stopped before the role ran"
