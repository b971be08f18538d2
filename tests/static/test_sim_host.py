"""The simulated host follows the schema and the documented job behaviour."""

from __future__ import annotations

import pytest

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
