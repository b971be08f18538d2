"""The simulated Hyper-V host: CIM instances, methods, jobs and associations of root/virtualization/v2.

Everything the module renderings do to the host goes through `SimHost`'s small CIM interface
(enumerate, associators, invoke, get_job) and is logged in `calls`, so a test can assert exactly
which Hyper-V calls a task made. Behaviour follows the schema (names and parameter directions)
and Microsoft's pages (return codes, job states); see docs/simulator.md.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from .. import schema as schema_mod

NAMESPACE = "root/virtualization/v2"
JOB_TYPE = {"CreateReferencePoint": 201, "DestroyReferencePoint": 202, "CreateSnapshot": 70, "DestroySnapshot": 72,
            "ConvertToReferencePoint": 200, "ExportSystemDefinition": 62}
RECOVERY = "Microsoft:Hyper-V:Snapshot:Recovery"
FINAL_STATES = frozenset({7, 8, 9, 10, 32768})
# Each service class has one instance per host; Name as Windows gives it.
SERVICES = {
    "Msvm_VirtualSystemReferencePointService": "vmms",
    "Msvm_VirtualSystemSnapshotService": "vssnapshotservice",
    "Msvm_VirtualSystemManagementService": "vmms",
    "Msvm_ImageManagementService": "vhdsvc",
}


class CimError(Exception):
    """The simulator was asked for something it does not model (a test tooling gap, never an answer)."""


def _guid() -> str:
    return str(uuid.uuid4())


@dataclasses.dataclass
class Job:
    """A Msvm_ConcreteJob whose state follows the clock."""

    instance_id: str
    job_type: int
    started: float
    duration: float
    fail: dict | None
    never_ends: bool
    on_complete: Callable[[], list[dict]]
    cancellable: bool = True
    curve: list[tuple[float, float]] | None = None
    killed: bool = False
    affected: list[dict] = dataclasses.field(default_factory=list)
    finished_state: int | None = None

    def state(self, now: float) -> tuple[int, int]:
        """(JobState, PercentComplete) at time now; completes (once) when its time has come."""
        if self.finished_state is not None:
            return self.finished_state, 100 if self.finished_state == 7 else self._percent(now)
        if self.killed:
            self.finished_state = 9
            return 9, self._percent(now)
        if self.never_ends or now - self.started < self.duration:
            return 4, self._percent(now)
        if self.fail:
            self.finished_state = 10
            return 10, self._percent(now)
        self.affected = self.on_complete()
        self.finished_state = 7
        return 7, 100

    def _percent(self, now: float) -> int:
        """PercentComplete: linear in time, or along `curve` ([time fraction, percent] points)."""
        if self.duration <= 0:
            return 0 if self.never_ends else 100
        fraction = min(1.0, (now - self.started) / self.duration)
        points = self.curve or [(0.0, 0.0), (1.0, 100.0)]
        percent = points[-1][1]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 <= fraction <= x1:
                percent = y0 + (y1 - y0) * ((fraction - x0) / (x1 - x0) if x1 > x0 else 1.0)
                break
        return max(0, min(99, int(percent)))


class SimHost:
    """A Hyper-V host seeded from a scenario (see tests/e2e/scenarios/*.yml)."""

    def __init__(self, scenario: dict, clock: Callable[[], float] = time.monotonic) -> None:
        self.schema = schema_mod.load()
        self.clock = clock
        self.lock = threading.RLock()
        self.calls: list[dict] = []
        self.context = threading.local()  # .run: the WinRM command whose CIM call is being answered
        self.scenario = copy.deepcopy(scenario)
        self.name = scenario.get("host", "HV01").upper()
        self.faults: list[dict] = list(scenario.get("faults", []))
        self.job_defaults: dict = dict(scenario.get("jobs", {}))
        self.vms: list[dict] = []
        self.reference_points: list[dict] = []
        self.checkpoints: list[dict] = []
        self.jobs: dict[str, Job] = {}
        for vm in scenario.get("vms", []):
            self._add_vm(vm)
        for point in scenario.get("reference_points", []):
            vm = self._vm_by_name(point["vm"])
            self.reference_points.append(self._new_reference_point(vm, point.get("type", 2), point.get("consistency", 1),
                                                                   instance_id=point.get("instance_id")))

    # ------------------------------------------------------------------ seeding

    def _add_vm(self, spec: dict) -> None:
        vm_id = spec.get("id") or _guid()
        state = {False: "off", True: "running"}.get(spec.get("state"), spec.get("state", "running"))  # YAML 1.1 reads off as false
        disks = []
        for index, disk in enumerate(spec.get("disks", [{"path": f"C:\\VMs\\{spec['name']}\\disk0.vhdx"}])):
            disks.append(self._new_disk(index, disk))
        self.vms.append({
            "ClassName": "Msvm_ComputerSystem",
            "CreationClassName": "Msvm_ComputerSystem",
            "Name": vm_id.upper(),
            "ElementName": spec["name"],
            "Caption": "Virtual Machine",
            "EnabledState": {"running": 2, "off": 3, "saved": 6, "migrating": 2}.get(state, 2),
            "_state": state,
            "_disks": disks,
            "_checkpoints": spec.get("checkpoints", "enabled"),
            "_integration_services": spec.get("integration_services", True),
        })

    @staticmethod
    def _new_disk(index: int, disk: dict) -> dict:
        return {
            "path": disk["path"],
            "rct": disk.get("rct", True),
            # the part of a disk id that names the disk everywhere (VM, checkpoint, reference point)
            "device": f"{_guid().upper()}\\0\\{index}\\D",
            "size": int(float(disk.get("size_gb", 10)) * 2**30),
            "counter": 0,
            "tracking_id": str(uuid.uuid4()),
            "generation": 0,
            "writes": [],  # (generation, offset, length)
        }

    def _vm_by_name(self, name: str) -> dict:
        return next(vm for vm in self.vms if vm["ElementName"] == name)

    def host_system(self) -> dict:
        return {"ClassName": "Msvm_ComputerSystem", "CreationClassName": "Msvm_ComputerSystem", "Name": self.name,
                "ElementName": self.name, "Caption": "Hosting Computer System", "EnabledState": 2}

    def service(self, class_name: str) -> dict:
        """The host's one instance of a Hyper-V service class."""
        return {"ClassName": class_name, "CreationClassName": class_name, "Name": SERVICES[class_name],
                "SystemCreationClassName": "Msvm_ComputerSystem", "SystemName": self.name}

    def _new_reference_point(self, vm: dict, type_value: int, consistency: int, instance_id: str | None = None,
                             disks: list[dict] | None = None) -> dict:
        """A reference point of the VM's disks as they are, or as a checkpoint saw them (disks)."""
        disk_ids, rct_ids, generations = [], [], {}
        for disk in disks if disks is not None else vm["_disks"]:
            live = next((d for d in vm["_disks"] if d["device"] == disk["device"]), disk)
            disk_ids.append(disk_id(vm["Name"], disk))
            generations[disk["device"]] = (disk["tracking_id"], disk["generation"])
            if disk["rct"]:
                live["counter"] += 1
                rct_ids.append(f"rctX:{disk['tracking_id'].replace('-', ':')}:{live['counter']:08d}")
        return {
            "ClassName": "Msvm_VirtualSystemReferencePoint",
            "InstanceID": instance_id or f"Microsoft:{_guid().upper()}",
            "VirtualSystemIdentifier": vm["Name"],
            "ReferencePointType": type_value,
            "ConsistencyLevel": consistency,
            "VirtualDiskIdentifiers": disk_ids,
            "ResilientChangeTrackingIdentifiers": rct_ids,
            "HasAssociatedData": False,
            "_generations": generations,
        }

    # ------------------------------------------------------------------ the CIM interface

    def log(self, kind: str, **details: Any) -> None:
        self.calls.append({"op": kind, "run": getattr(self.context, "run", ""), **details})

    def enumerate(self, class_name: str) -> list[dict]:
        """All instances of a class (Get-CimInstance -ClassName)."""
        with self.lock:
            self.log("enumerate", class_name=class_name)
            self._require_class(class_name)
            if class_name == "Msvm_ComputerSystem":
                return [self.host_system()] + [dict(vm) for vm in self.vms]
            if class_name in SERVICES:
                return [self.service(class_name)]
            if class_name == "Msvm_VirtualSystemReferencePoint":
                return [_public(p) for p in self.reference_points]
            return []

    def associators(self, instance: dict, association: str, result_class: str) -> list[dict]:
        """Get-CimAssociatedInstance -Association ... -ResultClassName ..."""
        with self.lock:
            self.log("associators", class_name=instance["ClassName"], association=association, result_class=result_class)
            self._require_class(association)
            self._require_class(result_class)
            if association == "Msvm_ReferencePointOfVirtualSystem" and instance["ClassName"] == "Msvm_ComputerSystem":
                return [_public(p) for p in self.reference_points if p["VirtualSystemIdentifier"] == instance["Name"]]
            if association == "Msvm_VirtualSystemSettingDataComponent" and instance["ClassName"] == "Msvm_VirtualSystemSettingData":
                checkpoint = self._checkpoint(instance)
                owner = checkpoint["InstanceID"].split(":", 1)[1] if checkpoint else ""
                return [{"ClassName": "Msvm_StorageAllocationSettingData", "InstanceID": disk_id(owner, d), "HostResource": [d["path"]]}
                        for d in (checkpoint or {}).get("_disks", [])]
            if association == "Msvm_SnapshotOfVirtualSystem" and instance["ClassName"] == "Msvm_ComputerSystem":
                return [_public(c) for c in self.checkpoints if c["VirtualSystemIdentifier"] == instance["Name"]]
            if association == "CIM_AffectedJobElement" and instance["ClassName"] == "Msvm_ConcreteJob":
                job = self.jobs.get(instance["InstanceID"])
                return [dict(a) for a in (job.affected if job else []) if a["ClassName"] == result_class]
            return []

    def get_job(self, instance_id: str) -> dict | None:
        """A Msvm_ConcreteJob by key (logged as a get); None when the host no longer has it."""
        with self.lock:
            self.log("get", class_name="Msvm_ConcreteJob")
            return self._job_instance(instance_id)

    def _job_instance(self, instance_id: str) -> dict | None:
        job = self.jobs.get(instance_id)
        if job is None:
            return None
        state, percent = job.state(self.clock())
        fail = job.fail or {}
        return {
            "ClassName": "Msvm_ConcreteJob",
            "InstanceID": job.instance_id,
            "JobState": state,
            "PercentComplete": percent,
            "JobType": job.job_type,
            "Cancellable": job.cancellable,
            "ErrorCode": fail.get("error_code", 32768) if state == 10 else 0,
            "ErrorDescription": fail.get("description", "") if state == 10 else "",
        }

    def get_instance(self, target: dict) -> dict | None:
        """Get-CimInstance -InputObject: the instance with the target's key values, or None."""
        with self.lock:
            class_name = target["ClassName"]
            self.log("get", class_name=class_name)
            if class_name == "Msvm_ConcreteJob":
                return self._job_instance(target.get("InstanceID", ""))
            keys = {k: v for k, v in target.items() if k != "ClassName"}
            for instance in self._instances(class_name):
                if all(str(instance.get(k, "")).lower() == str(v).lower() for k, v in keys.items() if k != "CreationClassName"):
                    return _public(instance)
            return None

    def _instances(self, class_name: str) -> list[dict]:
        if class_name == "Msvm_ComputerSystem":
            return [self.host_system(), *self.vms]
        if class_name in SERVICES:
            return [self.service(class_name)]
        if class_name == "Msvm_VirtualSystemReferencePoint":
            return list(self.reference_points)
        if class_name == "Msvm_VirtualSystemSettingData":
            return list(self.checkpoints)
        raise CimError(f"Get-CimInstance -InputObject of a {class_name} is not modelled by the simulator")

    def invoke(self, instance: dict, method: str, arguments: dict) -> dict:
        """Invoke-CimMethod, with arguments already checked against the schema (sim/cim.py)."""
        with self.lock:
            class_name = instance["ClassName"]
            self.log("invoke", class_name=class_name, method=method, arguments=sorted(arguments))
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise CimError(f"the simulator does not implement {class_name}.{method}")
            fault = self._take_fault(method, arguments)
            if fault and "return_value" in fault:
                return {"ReturnValue": fault["return_value"]}
            return handler(instance, arguments, fault or {})

    # ------------------------------------------------------------------ methods

    def _start_job(self, method: str, fault: dict, on_complete: Callable[[], list[dict]]) -> dict:
        settings = {**self.job_defaults.get(method, {}), **fault.get("job", {})}
        job = Job(
            instance_id=str(uuid.uuid4()).upper(),
            job_type=JOB_TYPE.get(method, 0),
            started=self.clock(),
            duration=float(settings.get("duration", 0.0)),
            fail=settings.get("fail"),
            never_ends=bool(settings.get("never_ends", False)),
            on_complete=on_complete,
            cancellable=bool(settings.get("cancellable", True)),
            curve=[tuple(point) for point in settings["curve"]] if settings.get("curve") else None,
        )
        self.jobs[job.instance_id] = job
        self.log("job_started", method=method, job_id=job.instance_id)
        return {"ReturnValue": 4096, "Job": {"ClassName": "Msvm_ConcreteJob", "InstanceID": job.instance_id}}

    def _m_CreateReferencePoint(self, _service: dict, arguments: dict, fault: dict) -> dict:
        vm = arguments["AffectedSystem"]
        live = next((v for v in self.vms if v["Name"] == vm.get("Name")), None)
        if live is None:
            return {"ReturnValue": 4}
        if live["_state"] == "migrating":
            return {"ReturnValue": 5}
        type_parameter = arguments.get("ReferencePointType", 1)
        if type_parameter not in (0, 1):
            return {"ReturnValue": 4}
        consistency = _embedded_property(arguments.get("ReferencePointSettings", ""), "ConsistencyLevel") or 1

        def complete() -> list[dict]:
            point = self._new_reference_point(live, type_parameter + 1, int(consistency))
            self.reference_points.append(point)
            self.log("created", instance_id=point["InstanceID"], vm=live["ElementName"])
            return [point]

        return self._start_job("CreateReferencePoint", fault, complete)

    def _m_DestroyReferencePoint(self, _service: dict, arguments: dict, fault: dict) -> dict:
        target = arguments["AffectedReferencePoint"].get("InstanceID")
        if not any(p["InstanceID"] == target for p in self.reference_points):
            return {"ReturnValue": 4}

        def complete() -> list[dict]:
            self.reference_points = [p for p in self.reference_points if p["InstanceID"] != target]
            self.log("destroyed", instance_id=target)
            return []

        return self._start_job("DestroyReferencePoint", fault, complete)

    def _m_RequestStateChange(self, job_instance: dict, arguments: dict, _fault: dict) -> dict:
        job = self.jobs.get(job_instance["InstanceID"])
        if job is None:
            return {"ReturnValue": 4}
        if arguments.get("RequestedState") not in (4, 5) or not job.cancellable:
            return {"ReturnValue": 1}
        state, _percent = job.state(self.clock())
        if state >= 7:
            return {"ReturnValue": 5}
        job.finished_state = 8
        self.log("job_terminated", job_id=job.instance_id)
        return {"ReturnValue": 0}

    def _live_vm(self, reference: dict | None) -> dict | None:
        return next((v for v in self.vms if reference and v["Name"] == reference.get("Name")), None)

    def _checkpoint(self, reference: dict | None) -> dict | None:
        return next((c for c in self.checkpoints if reference and c["InstanceID"] == reference.get("InstanceID")), None)

    def _m_CreateSnapshot(self, _service: dict, arguments: dict, fault: dict) -> dict:
        live = self._live_vm(arguments.get("AffectedSystem"))
        if live is None or arguments.get("SnapshotType") not in (2, 3, 32768):
            return {"ReturnValue": 4}
        if live["_state"] == "migrating" or live["_checkpoints"] == "disabled":
            return {"ReturnValue": 5}
        consistency = int(_embedded_property(arguments.get("SnapshotSettings", ""), "ConsistencyLevel") or 1)
        if consistency == 1 and (not live["_integration_services"] or live["_state"] != "running") and "fail" not in fault.get("job", {}):
            # Application consistency needs a running guest with integration services (VSS).
            fault = {"job": {**fault.get("job", {}), "fail": {
                "error_code": 32768,
                "description": f"Checkpoint operation for '{live['ElementName']}' failed. (Virtual machine ID {live['Name'].upper()})",
                "errors": [f"Checkpoint operation for '{live['ElementName']}' failed. (Virtual machine ID {live['Name'].upper()})",
                           f"Could not create backup checkpoint for virtual machine '{live['ElementName']}': The guest did not answer the "
                           "VSS request (integration services unavailable). (Virtual machine ID " + live["Name"].upper() + ")"]}}}
        snapshot_type = arguments["SnapshotType"]

        def complete() -> list[dict]:
            checkpoint = {
                "ClassName": "Msvm_VirtualSystemSettingData",
                "InstanceID": f"Microsoft:{_guid().upper()}",
                "ElementName": f"{live['ElementName']} - Backup - ({time.strftime('%m/%d/%Y - %H:%M:%S')})",
                "VirtualSystemIdentifier": live["Name"],
                "VirtualSystemType": RECOVERY if snapshot_type == 32768 else "Microsoft:Hyper-V:Snapshot:Realized",
                "CreationTime": datetime.datetime.now(datetime.timezone.utc),
                "_consistency": consistency,
                "_disks": [dict(d, writes=list(d["writes"])) for d in live["_disks"]],
            }
            self.checkpoints.append(checkpoint)
            self.log("checkpoint_created", instance_id=checkpoint["InstanceID"], vm=live["ElementName"])
            return [_public(checkpoint)]

        return self._start_job("CreateSnapshot", fault, complete)

    def _m_ModifySystemSettings(self, _service: dict, arguments: dict, _fault: dict) -> dict:
        settings = arguments.get("SystemSettings", "")
        target = self._checkpoint({"InstanceID": _embedded_property(settings, "InstanceID")})
        if target is None:
            return {"ReturnValue": 4}
        target["ElementName"] = _embedded_property(settings, "ElementName") or ""
        return {"ReturnValue": 0}

    def _m_DestroySnapshot(self, _service: dict, arguments: dict, fault: dict) -> dict:
        target = self._checkpoint(arguments.get("AffectedSnapshot"))
        if target is None:
            return {"ReturnValue": 4}

        def complete() -> list[dict]:
            self.checkpoints = [c for c in self.checkpoints if c is not target]
            self.log("checkpoint_destroyed", instance_id=target["InstanceID"])
            return []

        return self._start_job("DestroySnapshot", fault, complete)

    def _m_ConvertToReferencePoint(self, _service: dict, arguments: dict, fault: dict) -> dict:
        target = self._checkpoint(arguments.get("AffectedSnapshot"))
        if target is None or target["VirtualSystemType"] != RECOVERY:
            return {"ReturnValue": 4}  # only recovery checkpoints can be converted
        live = self._live_vm({"Name": target["VirtualSystemIdentifier"]})

        def complete() -> list[dict]:
            point = self._new_reference_point(live, 2, target["_consistency"], disks=target["_disks"])
            self.reference_points.append(point)
            self.checkpoints = [c for c in self.checkpoints if c is not target]
            self.log("converted", checkpoint=target["InstanceID"], instance_id=point["InstanceID"])
            return [point]

        return self._start_job("ConvertToReferencePoint", fault, complete)

    def _m_ExportSystemDefinition(self, _service: dict, arguments: dict, fault: dict) -> dict:
        live = self._live_vm(arguments.get("ComputerSystem"))
        settings = arguments.get("ExportSettingData", "")
        checkpoint = self._checkpoint({"InstanceID": _path_key(_embedded_property(settings, "SnapshotVirtualSystem"))})
        base_id = _path_key(_embedded_property(settings, "DifferentialBackupBase"))
        base = next((p for p in self.reference_points if p["InstanceID"] == base_id), None)
        directory = arguments.get("ExportDirectory") or ""
        if live is None or checkpoint is None or checkpoint["VirtualSystemIdentifier"] != live["Name"] or not directory:
            return {"ReturnValue": 4}
        if not os.path.isdir(directory):
            raise CimError(f"ExportSystemDefinition into {directory!r}, which does not exist: what Hyper-V does then is not modelled")
        if base_id and base is None:
            return {"ReturnValue": 4}
        stale = [d for d in checkpoint["_disks"] if base and d["device"] in base["_generations"]
                 and base["_generations"][d["device"]][0] != d["tracking_id"]]
        if stale and "fail" not in fault.get("job", {}):
            fault = {"job": {**fault.get("job", {}), "fail": {
                "error_code": 32768,
                "description": f"Failed to export '{live['ElementName']}': The change tracking identifier is not valid (0xC03A0029).",
                "errors": [f"Could not export the differences of '{d['path']}' since the base: The change tracking identifier is not valid "
                           "(0xC03A0029)." for d in stale]}}}

        def complete() -> list[dict]:
            # Hyper-V writes the export under ExportDirectory\<VM name> (CreateVmExportSubdirectory);
            # the simulator writes real (sparse) files there with the host's path separator.
            folder = os.path.join(directory, live["ElementName"])
            for disk in checkpoint["_disks"]:
                name = disk["path"].rsplit(chr(92), 1)[-1]
                since = base["_generations"].get(disk["device"]) if base else None
                size = disk["size"] if since is None else _changed_bytes(disk["writes"], since[1])
                _sparse_file(os.path.join(folder, "Virtual Hard Disks", name), size)
            _sparse_file(os.path.join(folder, "Virtual Machines", f"{live['Name'].upper()}.vmcx"), 61440)
            self.log("exported", vm=live["ElementName"], directory=directory, differential=base is not None)
            return []

        return self._start_job("ExportSystemDefinition", fault, complete)

    def _disk_by_path(self, path: str) -> tuple[dict, dict] | tuple[None, None]:
        for vm in self.vms:
            for disk in vm["_disks"]:
                if disk["path"].lower() == (path or "").lower():
                    return vm, disk
        return None, None

    def _m_GetVirtualHardDiskSettingData(self, _service: dict, arguments: dict, _fault: dict) -> dict:
        _vm, disk = self._disk_by_path(arguments.get("Path"))
        if disk is None:
            return {"ReturnValue": 32779}
        return {"ReturnValue": 0, "SettingData": (
            '<INSTANCE CLASSNAME="Msvm_VirtualHardDiskSettingData">'
            f'<PROPERTY NAME="Path" TYPE="string"><VALUE>{_xml_escape(disk["path"])}</VALUE></PROPERTY>'
            f'<PROPERTY NAME="MaxInternalSize" TYPE="uint64"><VALUE>{disk["size"]}</VALUE></PROPERTY>'
            '<PROPERTY NAME="Format" TYPE="uint16"><VALUE>3</VALUE></PROPERTY></INSTANCE>')}

    def _m_GetVirtualDiskChanges(self, _service: dict, arguments: dict, _fault: dict) -> dict:
        """Changes since the RCT id LimitId, up to the newest recovery checkpoint holding the disk.

        Answers at most `changes_per_call` bytes of the range asked for (scenario knob), as Hyper-V
        may process less than asked.
        """
        vm, disk = self._disk_by_path(arguments.get("Path"))
        if disk is None:
            return {"ReturnValue": 32779}
        limit = str(arguments.get("LimitId") or "")
        tracking = ":".join(limit.split(":")[1:6]).replace(":", "-")
        if not disk["rct"]:
            return {"ReturnValue": 32770}
        if tracking != disk["tracking_id"]:
            return {"ReturnValue": 32768}  # 0xC03A0029: the change tracking identifier is not valid
        base = next((p for p in self.reference_points if limit in p["ResilientChangeTrackingIdentifiers"]), None)
        if base is None or disk["device"] not in base["_generations"]:
            return {"ReturnValue": 32768}
        since = base["_generations"][disk["device"]][1]
        checkpoint = next((c for c in reversed(self.checkpoints) if c["VirtualSystemIdentifier"] == vm["Name"]), None)
        upto = next((d["generation"] for d in (checkpoint or {}).get("_disks", []) if d["device"] == disk["device"]), disk["generation"])
        offset, length = int(arguments.get("ByteOffset") or 0), int(arguments.get("ByteLength") or 0)
        step = int(self.scenario.get("changes_per_call") or 0)
        processed = min(length, step) if step else length
        window_end = offset + processed
        merged: list[list[int]] = []
        for start, stop in sorted((o, o + n) for g, o, n in disk["writes"] if since < g <= upto):
            start, stop = max(start, offset), min(stop, window_end)
            if start >= stop:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        return {"ReturnValue": 0, "ProcessedByteLength": processed,
                "ChangedByteOffsets": [s for s, _e in merged], "ChangedByteLengths": [e - s for s, e in merged]}

    # ------------------------------------------------------------------ what happens to a VM between backups

    def write(self, vm_name: str, disk: int, offset: int, length: int) -> None:
        """The guest writes to a disk: RCT records the range."""
        with self.lock:
            target = self._vm_by_name(vm_name)["_disks"][disk]
            target["generation"] += 1
            target["writes"].append((target["generation"], offset, length))

    def invalidate_rct(self, vm_name: str) -> None:
        """Change tracking restarts (the VM moved, RCT files were lost): earlier RCT ids stop being valid."""
        with self.lock:
            for disk in self._vm_by_name(vm_name)["_disks"]:
                disk["tracking_id"] = str(uuid.uuid4())
                disk["counter"] = 0

    def add_disk(self, vm_name: str, path: str, size_gb: float) -> None:
        with self.lock:
            vm = self._vm_by_name(vm_name)
            vm["_disks"].append(self._new_disk(len(vm["_disks"]), {"path": path, "size_gb": size_gb}))

    def _m_GetErrorEx(self, job_instance: dict, _arguments: dict, _fault: dict) -> dict:
        job = self.jobs.get(job_instance["InstanceID"])
        if job is None or not job.fail:
            return {"ReturnValue": 0, "Errors": []}
        texts = job.fail.get("errors") or [job.fail.get("description", "")]
        return {"ReturnValue": 0, "Errors": [_msvm_error(t) for t in texts]}

    # ------------------------------------------------------------------ faults

    def _take_fault(self, method: str, arguments: dict) -> dict | None:
        for fault in self.faults:
            if fault.get("method") != method:
                continue
            vm = self._live_vm(arguments.get("AffectedSystem") or arguments.get("ComputerSystem"))
            if fault.get("vm") and (vm is None or vm["ElementName"] != fault["vm"]):
                continue
            times = fault.get("times", 1)
            if times == 0:
                continue
            if times > 0:
                fault["times"] = times - 1
            return fault
        return None

    def remove_reference_point(self, instance_id: str) -> None:
        """What another tool does: the reference point goes, unlogged as a call of ours."""
        with self.lock:
            self.reference_points = [p for p in self.reference_points if p["InstanceID"] != instance_id]

    def add_fault(self, fault: dict) -> None:
        with self.lock:
            self.faults.append(dict(fault))

    def _require_class(self, name: str) -> None:
        if not self.schema.has_class(name):
            raise CimError(f"Invalid class {name} in namespace {NAMESPACE}")

    # ------------------------------------------------------------------ inspection

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "vms": [{"name": v["ElementName"], "id": v["Name"], "state": v["_state"]} for v in self.vms],
                "reference_points": [_public(p) for p in self.reference_points],
                "checkpoints": [_public(c) for c in self.checkpoints],
                "jobs": {k: self.get_job(k) for k in list(self.jobs)},
            }


def disk_id(owner: str, disk: dict) -> str:
    """A Msvm_StorageAllocationSettingData InstanceID: Microsoft:<owner GUID>\\<device part>."""
    return f"Microsoft:{owner.upper()}\\{disk['device']}"


def _public(instance: dict) -> dict:
    """An instance as a CIM client sees it: without the simulator's own bookkeeping."""
    return {k: v for k, v in instance.items() if not k.startswith("_")}


def _path_key(path: str | None) -> str | None:
    """The InstanceID in a WMI path (\\\\HOST\\root\\...:Class.InstanceID="..."), backslashes undoubled."""
    if not path or 'InstanceID="' not in path:
        return None
    return path.split('InstanceID="', 1)[1].rstrip('"').replace("\\\\", "\\")


def _sparse_file(path: str, size: int) -> None:
    """A file of the given size that takes no disk space (exported disks can be hundreds of GiB)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(size)


def _changed_bytes(writes: list, since_generation: int) -> int:
    """Bytes in the union of the ranges written after a generation."""
    ranges = sorted((offset, offset + length) for generation, offset, length in writes if generation > since_generation)
    total, end = 0, -1
    for start, stop in ranges:
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def _msvm_error(message: str) -> str:
    return ('<INSTANCE CLASSNAME="Msvm_Error"><PROPERTY NAME="Message" TYPE="string"><VALUE>'
            + _xml_escape(message) + "</VALUE></PROPERTY></INSTANCE>")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _embedded_property(text: str, name: str) -> str | None:
    """A property value of an embedded CIM-XML instance (as New-HvEmbeddedInstance makes them)."""
    if not text:
        return None
    root = ET.fromstring(text)
    for prop in root.iter("PROPERTY"):
        if prop.get("NAME") == name:
            value = prop.find("VALUE")
            return value.text if value is not None else None
    return None
