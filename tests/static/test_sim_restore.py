"""The simulated host's restore methods (sim/restore.py): import, planned systems, disk chains, heartbeat."""

from __future__ import annotations

import shutil

import pytest
from test_sim_host import ONE_DISK, Clock, three_nights

from hvtest.sim import vhd, vmcx
from hvtest.sim.host import CimError, SimHost

SWITCHED = {**ONE_DISK, "switches": ["LAN"], "vms": [{**ONE_DISK["vms"][0], "nics": [{"switch": "LAN"}]}]}


def _rasd(instance: dict, **changes) -> str:
    """An embedded instance of a resource with some properties changed (what ConvertTo-HvEmbeddedInstance sends)."""
    values = {**instance, **changes}
    parts = []
    for name in ("InstanceID", "HostResource", "EnabledState"):
        if name not in values or name == "EnabledState" and instance["ClassName"] != "Msvm_EthernetPortAllocationSettingData":
            continue
        value = values[name]
        if isinstance(value, list):
            items = "".join(f"<VALUE>{v}</VALUE>" for v in value)
            parts.append(f'<PROPERTY.ARRAY NAME="{name}" TYPE="string"><VALUE.ARRAY>{items}</VALUE.ARRAY></PROPERTY.ARRAY>')
        else:
            parts.append(f'<PROPERTY NAME="{name}" TYPE="string"><VALUE>{value}</VALUE></PROPERTY>')
    return f'<INSTANCE CLASSNAME="{instance["ClassName"]}">{"".join(parts)}</INSTANCE>'


def _done(host: SimHost, output: dict) -> dict:
    """The job of a method output, once ended (the test clock does not move: jobs take no time here)."""
    assert output["ReturnValue"] == 4096, output
    return host.get_job(output["Job"]["InstanceID"])


def _restore_disk(host: SimHost, tmp_path, upto: int) -> str:
    """The chain up to night upto copied to tmp_path/restore, re-parented and merged; returns the merged disk's path."""
    images = host.enumerate("Msvm_ImageManagementService")[0]
    target = tmp_path / "restore" / "os.vhdx"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "night0" / "a" / "Virtual Hard Disks" / "os.vhdx", target)
    for night in range(1, upto + 1):
        child = tmp_path / "restore" / f"os-{night}.avhdx"
        shutil.copy(tmp_path / f"night{night}" / "a" / "Virtual Hard Disks" / "os.vhdx", child)
        arguments = {"ChildPath": str(child), "ParentPath": str(target), "IgnoreIDMismatch": True}
        assert _done(host, host.invoke(images, "SetParentVirtualHardDisk", arguments))["JobState"] == 7
        merge = {"SourcePath": str(child), "DestinationPath": str(target)}
        assert _done(host, host.invoke(images, "MergeVirtualHardDisk", merge))["JobState"] == 7
        child.unlink()
    return str(target)


def _import(host: SimHost, tmp_path) -> dict:
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    config = tmp_path / "restore" / "a.vmcx"
    shutil.copy(next((tmp_path / "night0" / "a" / "Virtual Machines").glob("*.vmcx")), config)
    job = _done(host, host.invoke(management, "ImportSystemDefinition", {"SystemDefinitionFile": str(config), "GenerateNewSystemIdentifier": True}))
    (planned,) = host.associators(job, "Msvm_AffectedJobElement", "Msvm_PlannedComputerSystem")
    return planned


@pytest.mark.parametrize("upto", [0, 1, 2])
def test_a_chain_merged_imported_and_realized_is_a_new_vm_on_the_disk_of_that_night(tmp_path, upto) -> None:
    host = SimHost(SWITCHED)
    expected = three_nights(host, tmp_path)
    merged = _restore_disk(host, tmp_path, upto)
    restored = vhd.read_file(merged)
    assert restored.kind == "dynamic" and vhd.content_hash(restored.virtual_size, restored.segments) == expected[upto]

    planned = _import(host, tmp_path)
    assert planned["ElementName"] == "a" and planned["Name"] != ONE_DISK["vms"][0]["id"].upper()
    (settings,) = host.associators(planned, "Msvm_SettingsDefineState", "Msvm_VirtualSystemSettingData")
    assert settings["VirtualSystemType"] == "Microsoft:Hyper-V:System:Planned"
    disk, nic = host.associators(settings, "Msvm_VirtualSystemSettingDataComponent", "CIM_ResourceAllocationSettingData")
    assert disk["HostResource"] == ["C:\\VMs\\a\\os.vhdx"] and nic["LastKnownSwitchName"] == "LAN"
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    # Still on the exported path: validation reports it, and realizing fails with the same text.
    validated = _done(host, host.invoke(management, "ValidatePlannedSystem", {"PlannedSystem": planned}))
    assert validated["JobState"] == 7
    (problem,) = host.invoke(validated, "GetErrorEx", {})["Errors"]
    assert "C:\\VMs\\a\\os.vhdx" in problem and "cannot be found" in problem
    assert host.invoke(management, "ModifyResourceSettings", {"ResourceSettings": [_rasd(disk, HostResource=[merged])]})["ReturnValue"] == 0
    realized = host.invoke(management, "RealizePlannedSystem", {"PlannedSystem": planned})
    job = _done(host, realized)
    assert job["JobState"] == 7 and host.planned == []
    (vm,) = host.associators(job, "Msvm_AffectedJobElement", "Msvm_ComputerSystem")
    assert vm["ElementName"] == "a" and vm["Name"] == planned["Name"] and vm["EnabledState"] == 3
    assert host.snapshot()["vms"][-1]["nics"] == [{"switch": "LAN", "connected": True, "switch_name": "LAN"}]


def test_a_missing_switch_is_reported_and_refused_until_the_adapter_is_disconnected(tmp_path) -> None:
    host = SimHost(SWITCHED)
    three_nights(host, tmp_path)
    merged = _restore_disk(host, tmp_path, 0)
    host.switches = []  # restored on a host without that switch
    planned = _import(host, tmp_path)
    (settings,) = host.associators(planned, "Msvm_SettingsDefineState", "Msvm_VirtualSystemSettingData")
    disk, nic = host.associators(settings, "Msvm_VirtualSystemSettingDataComponent", "CIM_ResourceAllocationSettingData")
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    host.invoke(management, "ModifyResourceSettings", {"ResourceSettings": [_rasd(disk, HostResource=[merged])]})
    failed = _done(host, host.invoke(management, "RealizePlannedSystem", {"PlannedSystem": planned}))
    assert failed["JobState"] == 10 and len(host.planned) == 1
    (problem,) = [e for e in host.invoke(failed, "GetErrorEx", {})["Errors"] if "switch" in e]
    assert "'LAN', which this host does not have" in problem
    host.invoke(management, "ModifyResourceSettings", {"ResourceSettings": [_rasd(nic, HostResource=[], EnabledState="3")]})
    assert _done(host, host.invoke(management, "RealizePlannedSystem", {"PlannedSystem": planned}))["JobState"] == 7
    assert host.snapshot()["vms"][-1]["nics"] == [{"switch": "LAN", "connected": False, "switch_name": None}]


def test_destroying_a_planned_system_leaves_no_vm(tmp_path) -> None:
    host = SimHost(ONE_DISK)
    three_nights(host, tmp_path)
    _restore_disk(host, tmp_path, 0)
    planned = _import(host, tmp_path)
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    assert _done(host, host.invoke(management, "DestroySystem", {"AffectedSystem": planned}))["JobState"] == 7
    assert host.planned == [] and [v["ElementName"] for v in host.vms] == ["a"]


def test_a_started_vm_has_a_heartbeat_once_its_guest_has_booted_and_none_while_off(tmp_path) -> None:
    clock = Clock()
    host = SimHost({**ONE_DISK, "boot_seconds": 5}, clock)
    three_nights(host, tmp_path)
    merged = _restore_disk(host, tmp_path, 0)
    planned = _import(host, tmp_path)
    (settings,) = host.associators(planned, "Msvm_SettingsDefineState", "Msvm_VirtualSystemSettingData")
    (disk,) = host.associators(settings, "Msvm_VirtualSystemSettingDataComponent", "Msvm_StorageAllocationSettingData")
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    host.invoke(management, "ModifyResourceSettings", {"ResourceSettings": [_rasd(disk, HostResource=[merged])]})
    (vm,) = host.associators(_done(host, host.invoke(management, "RealizePlannedSystem", {"PlannedSystem": planned})),
                             "Msvm_AffectedJobElement", "Msvm_ComputerSystem")
    assert host.associators(vm, "Msvm_SystemDevice", "Msvm_HeartbeatComponent") == []
    _done(host, host.invoke(vm, "RequestStateChange", {"RequestedState": 2}))
    assert [h["OperationalStatus"] for h in host.associators(vm, "Msvm_SystemDevice", "Msvm_HeartbeatComponent")] == [[12]]
    clock.now = 5
    assert [h["OperationalStatus"] for h in host.associators(vm, "Msvm_SystemDevice", "Msvm_HeartbeatComponent")] == [[2]]


def test_what_nobody_documents_is_refused_not_guessed(tmp_path) -> None:
    host = SimHost(ONE_DISK)
    three_nights(host, tmp_path)
    images = host.enumerate("Msvm_ImageManagementService")[0]
    full = tmp_path / "night0" / "a" / "Virtual Hard Disks" / "os.vhdx"
    child = tmp_path / "night1" / "a" / "Virtual Hard Disks" / "os.vhdx"
    with pytest.raises(CimError, match="identity check is not modelled"):
        host.invoke(images, "SetParentVirtualHardDisk", {"ChildPath": str(child), "ParentPath": str(full), "IgnoreIDMismatch": False})
    with pytest.raises(CimError, match="which is not its parent"):
        host.invoke(images, "MergeVirtualHardDisk", {"SourcePath": str(child), "DestinationPath": str(full)})
    assert host.invoke(images, "MergeVirtualHardDisk", {"SourcePath": str(tmp_path / "none.avhdx"), "DestinationPath": str(full)}) == {
        "ReturnValue": 32779}
    config = next((tmp_path / "night0" / "a" / "Virtual Machines").glob("*.vmcx"))
    assert vmcx.read_config(str(config))["name"] == "a"
    management = host.enumerate("Msvm_VirtualSystemManagementService")[0]
    with pytest.raises(CimError, match="keeping the exported identifier"):
        host.invoke(management, "ImportSystemDefinition", {"SystemDefinitionFile": str(config), "GenerateNewSystemIdentifier": False})
