"""The simulated host follows the schema and the documented job behaviour."""

from __future__ import annotations

import pytest

from hvtest.sim import vhd
from hvtest.sim.host import CimError, SimHost

SCENARIO = {"host": "hv9", "vms": [
    {"name": "a", "id": "aaaaaaaa-0000-4000-8000-000000000001", "disks": [{"path": "C:\\a.vhdx"}, {"path": "C:\\b.vhdx", "rct": False}]},
    {"name": "m", "id": "aaaaaaaa-0000-4000-8000-000000000002", "state": "migrating"},
]}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_job_follows_its_progress_curve_and_completes_once() -> None:
    clock = Clock()
    host = SimHost(dict(SCENARIO, jobs={"CreateReferencePoint": {"duration": 10, "curve": [[0, 0], [0.1, 60], [0.9, 61], [1, 100]]}}), clock)
    vm = next(v for v in host.enumerate("Msvm_ComputerSystem") if v["ElementName"] == "a")
    service = host.enumerate("Msvm_VirtualSystemReferencePointService")[0]
    out = host.invoke(service, "CreateReferencePoint", {"AffectedSystem": vm, "ReferencePointType": 1})
    assert out["ReturnValue"] == 4096
    job_id = out["Job"]["InstanceID"]
    seen = []
    for now in (0, 1, 5, 9, 10, 11):
        clock.now = now
        job = host.get_job(job_id)
        seen.append((job["JobState"], job["PercentComplete"]))
    assert seen == [(4, 0), (4, 60), (4, 60), (4, 61), (7, 100), (7, 100)]
    assert len(host.reference_points) == 1


def test_disk_without_rct_has_no_rct_id() -> None:
    host = SimHost(dict(SCENARIO, jobs={"CreateReferencePoint": {"duration": 0}}))
    vm = next(v for v in host.enumerate("Msvm_ComputerSystem") if v["ElementName"] == "a")
    service = host.enumerate("Msvm_VirtualSystemReferencePointService")[0]
    host.get_job(host.invoke(service, "CreateReferencePoint", {"AffectedSystem": vm})["Job"]["InstanceID"])
    (point,) = host.reference_points
    assert len(point["VirtualDiskIdentifiers"]) == 2 and len(point["ResilientChangeTrackingIdentifiers"]) == 1


def test_migrating_vm_answers_invalid_state() -> None:
    host = SimHost(SCENARIO)
    vm = next(v for v in host.enumerate("Msvm_ComputerSystem") if v["ElementName"] == "m")
    service = host.enumerate("Msvm_VirtualSystemReferencePointService")[0]
    assert host.invoke(service, "CreateReferencePoint", {"AffectedSystem": vm})["ReturnValue"] == 5


def test_host_itself_is_listed_but_not_as_a_virtual_machine() -> None:
    systems = SimHost(SCENARIO).enumerate("Msvm_ComputerSystem")
    assert systems[0] == {"ClassName": "Msvm_ComputerSystem", "CreationClassName": "Msvm_ComputerSystem", "Name": "HV9",
                          "ElementName": "HV9", "Caption": "Hosting Computer System",
                          "Description": "Microsoft Hosting Computer System", "EnabledState": 2}
    assert [s["Caption"] for s in systems[1:]] == ["Virtual Machine", "Virtual Machine"]


def test_a_scaled_clock_ends_a_ten_minute_job_in_thirty_real_seconds_and_times_it() -> None:
    clock = Clock()
    host = SimHost(dict(SCENARIO, clock_scale=20, jobs={"CreateReferencePoint": {"duration": 600}}), clock)
    vm = next(v for v in host.enumerate("Msvm_ComputerSystem") if v["ElementName"] == "a")
    service = host.enumerate("Msvm_VirtualSystemReferencePointService")[0]
    job_id = host.invoke(service, "CreateReferencePoint", {"AffectedSystem": vm, "ReferencePointType": 1})["Job"]["InstanceID"]
    clock.now = 29.9
    assert host.get_job(job_id)["JobState"] == 4
    clock.now = 30.0
    assert host.get_job(job_id)["JobState"] == 7
    (timed,) = host.timeline()
    assert timed["method"] == "CreateReferencePoint" and timed["ended"] - timed["started"] == 30.0
    # The host still forgets the finished job five real minutes later, not five simulated ones:
    # the controller's gaps are real time (found by make bench: 20 VMs' jobs "lost" at 60x).
    clock.now = 30.0 + 299
    assert host.get_job(job_id) is not None
    clock.now = 30.0 + 300
    assert host.get_job(job_id) is None


def test_a_clock_that_does_not_run_forward_is_refused() -> None:
    with pytest.raises(CimError, match="clock_scale must be more than 0"):
        SimHost(dict(SCENARIO, clock_scale=0))


def _embedded(class_name: str, **properties: str) -> str:
    values = "".join(f'<PROPERTY NAME="{name}" TYPE="string"><VALUE>{value}</VALUE></PROPERTY>' for name, value in properties.items())
    return f'<INSTANCE CLASSNAME="{class_name}">{values}</INSTANCE>'


def _path(host: SimHost, class_name: str, instance_id: str) -> str:
    return f'\\\\{host.name}\\root\\virtualization\\v2:{class_name}.InstanceID="{instance_id.replace(chr(92), chr(92) * 2)}"'


def three_nights(host: SimHost, tmp_path) -> list[str]:
    """VM a backed up three nights (full, then two differentials) into tmp_path/night<n>, with writes
    before each and after the last; returns the hash of the disk's bytes at each night's checkpoint."""
    vm = next(v for v in host.enumerate("Msvm_ComputerSystem") if v["ElementName"] == "a")
    snapshots = host.enumerate("Msvm_VirtualSystemSnapshotService")[0]
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    expected, base = [], None
    for night in range(3):
        host.write("a", disk=0, offset=night * 3000, length=4096 * (night + 1))
        made = host.invoke(snapshots, "CreateSnapshot", {"AffectedSystem": vm, "SnapshotType": 32768, "SnapshotSettings": _embedded(
            "Msvm_VirtualSystemSnapshotSettingData", ConsistencyLevel="2")})
        (checkpoint,) = host.get_job(made["Job"]["InstanceID"]) and host.checkpoints
        settings = {"SnapshotVirtualSystem": _path(host, "Msvm_VirtualSystemSettingData", checkpoint["InstanceID"])}
        if base is not None:
            settings["DifferentialBackupBase"] = _path(host, "Msvm_VirtualSystemReferencePoint", base["InstanceID"])
        (tmp_path / f"night{night}").mkdir()
        arguments = {"ComputerSystem": vm, "ExportDirectory": str(tmp_path / f"night{night}"),
                     "ExportSettingData": _embedded("Msvm_VirtualSystemExportSettingData", **settings)}
        exported = host.invoke(management, "ExportSystemDefinition", arguments)
        host.get_job(exported["Job"]["InstanceID"])
        disk = checkpoint["_disks"][0]
        expected.append(vhd.content_hash(disk["size"], vhd.disk_segments(disk["device"], disk["writes"], disk["generation"])))
        converted = host.invoke(snapshots, "ConvertToReferencePoint", {"AffectedSnapshot": checkpoint})
        host.get_job(converted["Job"]["InstanceID"])
        base = host.reference_points[-1]
    host.write("a", disk=0, offset=0, length=100)  # after the last backup: in no restore point
    return expected


ONE_DISK = {"host": "hv9", "vms": [{"name": "a", "id": "aaaaaaaa-0000-4000-8000-000000000001",
                                    "disks": [{"path": "C:\\VMs\\a\\os.vhdx", "size_gb": 1, "file_gb": 0.01}]}]}


def test_exports_carry_the_disk_bytes_so_a_merged_chain_is_the_disk_at_each_backup(tmp_path) -> None:
    """A full export, then two differentials with writes between: each merged in order onto the full copy
    gives the disk's bytes at that backup's checkpoint, not the disk as it is now."""
    host = SimHost(ONE_DISK)
    expected = three_nights(host, tmp_path)
    files = [vhd.read_file(str(tmp_path / f"night{n}" / "a" / "Virtual Hard Disks" / "os.vhdx")) for n in range(3)]
    assert [f.kind for f in files] == ["dynamic", "differencing", "differencing"] and files[1].parent == "C:\\VMs\\a\\os.vhdx"
    restored = files[0].segments
    assert vhd.content_hash(files[0].virtual_size, restored) == expected[0]
    for night in (1, 2):
        for start, chunk in files[night].segments:
            restored = vhd.overlay(restored, start, chunk)
        assert vhd.content_hash(files[0].virtual_size, restored) == expected[night]
    assert len(set(expected)) == 3, "each night's disk differs from the others"
