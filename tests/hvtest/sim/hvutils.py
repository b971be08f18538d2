"""Python renderings of plugins/module_utils/Hv*.psm1, on the simulated host's CIM interface.

Each function carries the name of the PowerShell function it renders and says the same
messages, so a module rendering reads like its .ps1. Keep them in step: tests/e2e and
tests/static/test_sim_contract.py compare the two.
"""

from __future__ import annotations

from collections.abc import Callable

import datetime
import json
import re
import threading
import time
import uuid
from typing import Any

from .host import FINAL_STATES, CimError, SimHost

RETURN_CODES: dict[int, tuple[str, str]] = {
    1: ("Not Supported", "This host does not support the operation; check the Windows Server version and the VM configuration version."),
    2: ("Failed", "See the Hyper-V-VMMS event log on the host for the cause."),
    3: ("Timeout", "Hyper-V timed out; retry when the host is less busy."),
    4: ("Invalid Parameter", "Hyper-V rejected an argument; check the options given."),
    5: ("Invalid State", "The VM is in a state that does not allow this (migrating, saving, or busy with another backup); retry when it is settled."),
    6: ("Invalid Type", "Hyper-V rejected the type asked for on this VM."),
    32768: ("Failed", "See the Hyper-V-VMMS event log on the host for the cause."),
    32769: ("Access Denied", "Run as a member of Hyper-V Administrators or of the local Administrators group."),
    32770: ("Not Supported", "This host or disk does not support the operation."),
    32771: ("Status is unknown", "Check the operation in Hyper-V Manager before retrying."),
    32772: ("Timeout", "Hyper-V timed out; retry when the host is less busy."),
    32773: ("Invalid Parameter", "Hyper-V rejected an argument; check the options given."),
    32774: ("System is in use", "Another operation holds the VM; retry when it has finished."),
    32775: ("Invalid State", "The VM or disk is in a state that does not allow this; retry when it is settled."),
    32776: ("Incorrect data type", "Hyper-V rejected an argument type."),
    32777: ("System is not available", "The Hyper-V management service is not available; check that vmms is running."),
    32778: ("Out of memory", "The host is out of memory."),
    32779: ("File not found", "A file the operation needs is missing; check the VM's disks."),
}
JOB_STATE_NAMES = {2: "new", 3: "starting", 4: "running", 5: "suspended", 6: "shutting_down", 7: "completed",
                   8: "terminated", 9: "killed", 10: "exception", 11: "service", 12: "query_pending",
                   32768: "completed_with_warnings"}
TYPE_PARAMETER = {"log": 0, "rct": 1}
TYPE_PROPERTY = {1: "log", 2: "rct"}
CONSISTENCY_VALUE = {"application": 1, "crash": 2}
CONSISTENCY_NAME = {1: "application", 2: "crash"}
RECOVERY_TYPE = "Microsoft:Hyper-V:Snapshot:Recovery"
TAG_PREFIX = "hyperv.backup: "
MARKER_NAME = "hyperv.backup-export.json"
CATALOG_VERSION = 1
DEFAULT_CATALOG = "C:\\ProgramData\\hyperv.backup\\catalog.json"


class HvError(Exception):
    """A PowerShell `throw` in a module_util."""


class StepExit(Exception):
    """ExitJson / FailJson: ends the module, or (of a stand-in module) one VM's step of a list."""


class Hv:
    """The module_utils, bound to one simulated host."""

    def __init__(self, host: SimHost) -> None:
        self.host = host

    # ---------------------------------------------------------- HvVirtualMachine.psm1

    def get_vm_list(self) -> list[dict]:
        """Get-HvVirtualMachineList"""
        result = []
        for vm in self.host.enumerate("Msvm_ComputerSystem"):
            if vm.get("Caption") != "Virtual Machine":
                continue
            try:
                uuid.UUID(vm["Name"])
            except ValueError:
                continue
            result.append(vm)
        return result

    @staticmethod
    def _format_vm_list(vms: list[dict]) -> str:
        """Format-HvVirtualMachineList"""
        if not vms:
            return "none"
        return ", ".join(f"'{vm['ElementName']}' ({vm['Name']})" for vm in vms)

    def select_vm(self, vms: list[dict], name: str | None = None, vm_id: str | None = None) -> dict:
        """Select-HvVirtualMachine"""
        if vm_id is not None:
            try:
                wanted = uuid.UUID(vm_id)
            except ValueError:
                raise HvError(f"vm_id '{vm_id}' is not a GUID. Use the VM's Id as Get-VM shows it, or select the VM by name with vm.") from None
            found = [vm for vm in vms if uuid.UUID(vm["Name"]) == wanted]
            if not found:
                raise HvError(f"No virtual machine with id {wanted} on host {self.host.name}.")
            return found[0]
        found = [vm for vm in vms if vm["ElementName"].lower() == (name or "").lower()]
        if not found:
            raise HvError(f"No virtual machine named '{name}' on host {self.host.name}. Virtual machines found: {self._format_vm_list(vms)}.")
        if len(found) > 1:
            raise HvError(f"The name '{name}' matches {len(found)} virtual machines on host {self.host.name}: "
                          f"{self._format_vm_list(found)}. Select one with vm_id.")
        return found[0]

    def get_vm(self, name: str | None = None, vm_id: str | None = None) -> dict:
        """Get-HvVirtualMachine"""
        return self.select_vm(self.get_vm_list(), name=name, vm_id=vm_id)

    def selected_vm(self, name: str | None, vm_id: str | None) -> dict:
        """Get-HvSelectedVirtualMachine"""
        return self.get_vm(vm_id=vm_id) if vm_id else self.get_vm(name=name)

    @staticmethod
    def vm_identity(vm: dict) -> dict:
        """Get-HvVirtualMachineIdentity"""
        return {"name": vm["ElementName"], "id": str(uuid.UUID(vm["Name"]))}

    # ---------------------------------------------------------- HvCimJob.psm1

    @staticmethod
    def return_code_message(value: int) -> str:
        """Get-HvReturnCodeMessage"""
        known = RETURN_CODES.get(value)
        if known is None:
            return f"returned {value} (undocumented value)"
        return f"returned {value} ({known[0]}). {known[1]}"

    def invoke_method(self, instance: dict, method: str, arguments: dict, action: str) -> dict:
        """Invoke-HvCimMethod"""
        output = self.host.invoke(instance, method, arguments)
        code = int(output["ReturnValue"])
        if code not in (0, 4096):
            raise HvError(f"{action} failed: {method} {self.return_code_message(code)}")
        return output

    def get_job(self, instance_id: str) -> dict | None:
        """Get-HvCimJob"""
        return self.host.get_job(instance_id)

    @staticmethod
    def job_finished(job: dict) -> bool:
        """Test-HvCimJobFinished"""
        return int(job["JobState"]) >= 7

    def wait_job(self, instance_id: str, timeout: int) -> dict | None:
        """Wait-HvCimJob"""
        self.wait_any_job([instance_id], timeout)
        return self.get_job(instance_id)

    def wait_any_job(self, instance_ids: list[str], timeout: int) -> list[str]:
        """Wait-HvAnyCimJob"""
        deadline = time.monotonic() + timeout
        interval = 0.25
        while True:
            ended = []
            for instance_id in instance_ids:
                job = self.get_job(instance_id)
                if job is None or self.job_finished(job):
                    ended.append(instance_id)
            left = deadline - time.monotonic()
            if ended or left <= 0:
                return ended
            time.sleep(min(interval, left))
            interval = min(interval * 2, 2.0)

    def job_errors(self, job: dict) -> list[str]:
        """Get-HvCimJobError"""
        try:
            output = self.host.invoke(job, "GetErrorEx", {})
        except CimError:
            return []
        if output["ReturnValue"] != 0:
            return []
        texts = []
        for text in output.get("Errors") or []:
            message = embedded_properties(text).get("Message")
            if message:
                texts.append(message)
        return texts

    def job_result(self, job: dict) -> dict:
        """ConvertTo-HvJobResult"""
        state = int(job["JobState"])
        finished = self.job_finished(job)
        succeeded = state in (7, 32768)
        errors = self.job_errors(job) if finished and not succeeded else []
        return {
            "id": job["InstanceID"],
            "state": JOB_STATE_NAMES.get(state, "unknown"),
            "state_code": state,
            "percent_complete": int(job["PercentComplete"]),
            "finished": finished,
            "succeeded": succeeded,
            "cancellable": bool(job["Cancellable"]),
            "job_type": int(job["JobType"]),
            "error_code": int(job["ErrorCode"]),
            "error_description": str(job["ErrorDescription"]),
            "errors": errors,
        }

    @staticmethod
    def format_job_failure(job_result: dict, action: str) -> str:
        """Format-HvJobFailure"""
        text = f"{action} failed: job {job_result['id']} ended in state {job_result['state']} with error code {job_result['error_code']}"
        if job_result["error_description"]:
            text += f": {job_result['error_description']}"
        for detail in job_result["errors"]:
            if detail != job_result["error_description"]:
                text += f" {detail}"
        return text

    def stop_job(self, job: dict) -> None:
        """Stop-HvCimJob"""
        if not job["Cancellable"]:
            raise HvError(f"job {job['InstanceID']} cannot be cancelled (Cancellable is false); it will run to its end.")
        self.invoke_method(job, "RequestStateChange", {"RequestedState": 4}, f"Cancelling job {job['InstanceID']}")

    def job_product(self, job: dict, result_class: str) -> list[dict]:
        """Get-HvJobProduct"""
        return self.host.associators(job, "CIM_AffectedJobElement", result_class)

    # ---------------------------------------------------------- HvEmbeddedInstance.psm1

    def new_embedded_instance(self, class_name: str, properties: dict) -> str:
        """New-HvEmbeddedInstance (as CimSerializer writes it)"""
        known = self.host.schema.properties(class_name)
        if not self.host.schema.has_class(class_name):
            raise CimError(f"Invalid class {class_name}")
        parts = [f'<INSTANCE CLASSNAME="{class_name}">']
        for name, value in properties.items():
            if name not in known:
                raise CimError(f"{class_name} has no property {name}")
            parts.append(f'<PROPERTY NAME="{name}" TYPE="{known[name]}"><VALUE>{value}</VALUE></PROPERTY>')
        parts.append("</INSTANCE>")
        return "".join(parts)

    def to_embedded_instance(self, instance: dict) -> str:
        """ConvertTo-HvEmbeddedInstance"""
        known = self.host.schema.properties(instance["ClassName"])
        parts = [f'<INSTANCE CLASSNAME="{instance["ClassName"]}">']
        for name, value in instance.items():
            if name in known and value is not None and not isinstance(value, list):
                parts.append(f'<PROPERTY NAME="{name}" TYPE="{known[name]}"><VALUE>{value}</VALUE></PROPERTY>')
        parts.append("</INSTANCE>")
        return "".join(parts)

    # ---------------------------------------------------------- HvCheckpoint.psm1

    def snapshot_service(self) -> dict:
        """Get-HvSnapshotService"""
        return self.host.enumerate("Msvm_VirtualSystemSnapshotService")[0]

    def management_service(self) -> dict:
        """Get-HvManagementService"""
        return self.host.enumerate("Msvm_VirtualSystemManagementService")[0]

    def recovery_checkpoints(self, vm: dict) -> list[dict]:
        """Get-HvRecoveryCheckpoint"""
        found = self.host.associators(vm, "Msvm_SnapshotOfVirtualSystem", "Msvm_VirtualSystemSettingData")
        return sorted((c for c in found if c["VirtualSystemType"] == RECOVERY_TYPE), key=lambda c: c["CreationTime"])

    @staticmethod
    def checkpoint_tag(label: str) -> str:
        """Get-HvCheckpointTag"""
        return f"{TAG_PREFIX}{label}"

    def select_checkpoint(self, checkpoints: list[dict], label: str) -> dict | None:
        """Select-HvRecoveryCheckpoint"""
        tag = self.checkpoint_tag(label)
        return next((c for c in checkpoints if c["ElementName"] == tag), None)

    @staticmethod
    def checkpoint_owned(checkpoint: dict) -> bool:
        """Test-HvCheckpointOwned"""
        return str(checkpoint.get("ElementName") or "").lower().startswith(TAG_PREFIX.lower())

    def new_recovery_checkpoint(self, vm: dict, consistency: str) -> dict:
        """New-HvRecoveryCheckpoint"""
        settings = self.new_embedded_instance("Msvm_VirtualSystemSnapshotSettingData", {
            "ConsistencyLevel": CONSISTENCY_VALUE[consistency], "IgnoreNonSnapshottableDisks": True})
        return self.invoke_method(self.snapshot_service(), "CreateSnapshot", {
            "AffectedSystem": vm, "SnapshotSettings": settings, "SnapshotType": 32768,
        }, f"Creating a recovery checkpoint of VM '{vm['ElementName']}'")

    def set_checkpoint_tag(self, checkpoint: dict, label: str) -> dict:
        """Set-HvCheckpointTag"""
        checkpoint["ElementName"] = self.checkpoint_tag(label)
        return self.invoke_method(self.management_service(), "ModifySystemSettings", {
            "SystemSettings": self.to_embedded_instance(checkpoint)}, f"Naming recovery checkpoint {checkpoint['InstanceID']}")

    def remove_recovery_checkpoint(self, checkpoint: dict) -> dict:
        """Remove-HvRecoveryCheckpoint"""
        return self.invoke_method(self.snapshot_service(), "DestroySnapshot", {"AffectedSnapshot": checkpoint},
                                  f"Removing recovery checkpoint {checkpoint['InstanceID']}")

    def convert_recovery_checkpoint(self, checkpoint: dict) -> dict:
        """Convert-HvRecoveryCheckpoint"""
        return self.invoke_method(self.snapshot_service(), "ConvertToReferencePoint", {
            "AffectedSnapshot": checkpoint, "ReferencePointSettings": ""},
            f"Converting recovery checkpoint {checkpoint['InstanceID']} to a reference point")

    def checkpoint_disks(self, checkpoint: dict) -> list[str]:
        """Get-HvCheckpointDisk"""
        return sorted(d["device"] for d in self.checkpoint_disk_files(checkpoint))

    def checkpoint_disk_files(self, checkpoint: dict) -> list[dict]:
        """Get-HvCheckpointDiskFile"""
        found = self.host.associators(checkpoint, "Msvm_VirtualSystemSettingDataComponent", "Msvm_StorageAllocationSettingData")
        return [{"device": self.disk_device_part(d["InstanceID"]), "path": str((d.get("HostResource") or [""])[0])} for d in found]

    @staticmethod
    def disk_device_part(disk_id: str) -> str:
        """Get-HvDiskDevicePart"""
        at = disk_id.find("\\")
        return disk_id if at < 0 else disk_id[at + 1:]

    def checkpoint_result(self, checkpoint: dict) -> dict:
        """ConvertTo-HvCheckpointResult"""
        owned = self.checkpoint_owned(checkpoint)
        return {
            "instance_id": checkpoint["InstanceID"],
            "element_name": str(checkpoint.get("ElementName") or ""),
            "label": str(checkpoint["ElementName"])[len(TAG_PREFIX):] if owned else None,
            "created": str(checkpoint.get("CreationTime") or ""),
            "owned": owned,
        }

    # ---------------------------------------------------------- HvExport.psm1

    def instance_path(self, class_name: str, instance_id: str) -> str:
        """Get-HvInstancePath"""
        key = instance_id.replace("\\", "\\\\")
        return f'\\\\{self.host.name.upper()}\\root\\virtualization\\v2:{class_name}.InstanceID="{key}"'

    def start_export(self, vm: dict, checkpoint: dict, destination: str, base_point: dict | None) -> dict:
        """Start-HvExport"""
        base = self.instance_path("Msvm_VirtualSystemReferencePoint", base_point["InstanceID"]) if base_point is not None else ""
        settings = self.new_embedded_instance("Msvm_VirtualSystemExportSettingData", {
            "SnapshotVirtualSystem": self.instance_path("Msvm_VirtualSystemSettingData", checkpoint["InstanceID"]),
            "CopySnapshotConfiguration": 2,
            "CopyVmStorage": True,
            "CopyVmRuntimeInformation": False,
            "CreateVmExportSubdirectory": True,
            "BackupIntent": 1,
            "DifferentialBackupBase": base,
        })
        service = self.host.enumerate("Msvm_VirtualSystemManagementService")[0]
        return self.invoke_method(service, "ExportSystemDefinition", {
            "ComputerSystem": vm, "ExportDirectory": destination, "ExportSettingData": settings,
        }, f"Exporting VM '{vm['ElementName']}'")

    @staticmethod
    def rct_failure(job_result: dict) -> bool:
        """Test-HvRctFailure"""
        texts = [job_result["error_description"], *job_result["errors"]]
        return any(re.search(r"0xC03A00(29|30|2A)", t or "", re.IGNORECASE) for t in texts)

    @staticmethod
    def export_marker_path(destination: str) -> str:
        """Get-HvExportMarkerPath"""
        return destination.rstrip("\\") + "\\" + MARKER_NAME

    def read_export_marker(self, destination: str) -> dict | None:
        """Read-HvExportMarker"""
        text = self.host.files.get(self.export_marker_path(destination))
        return self.to_hashtable(json.loads(text)) if text is not None else None

    def export_files(self, destination: str) -> list[dict]:
        """Get-HvExportFile"""
        if not self.host.fs_exists(destination):
            return []
        return [{"path": path, "size": size} for path, size in self.host.fs_files(destination)
                if path.rsplit("\\", 1)[-1] != MARKER_NAME]

    def save_export_marker(self, destination: str, marker: dict) -> None:
        """Save-HvExportMarker"""
        self.host.files[self.export_marker_path(destination)] = json.dumps(marker)

    def clear_export_destination(self, destination: str) -> None:
        """Clear-HvExportDestination"""
        self.host.fs_clear(destination)

    # ---------------------------------------------------------- HvDiskChanges.psm1

    def image_management_service(self) -> dict:
        """Get-HvImageManagementService"""
        return self.host.enumerate("Msvm_ImageManagementService")[0]

    def virtual_disk_size(self, path: str) -> int:
        """Get-HvVirtualDiskSize"""
        output = self.invoke_method(self.image_management_service(), "GetVirtualHardDiskSettingData", {"Path": path},
                                    f"Reading virtual disk '{path}'")
        return int(embedded_properties(output["SettingData"]).get("MaxInternalSize") or 0)

    def virtual_disk_changes(self, path: str, limit_id: str, size: int, chunk_bytes: int = 0) -> list[list[int]]:
        """Get-HvVirtualDiskChange"""
        service = self.image_management_service()
        offset = 0
        ranges: list[list[int]] = []
        while offset < size:
            length = size - offset
            if 0 < chunk_bytes < length:
                length = chunk_bytes
            output = self.invoke_method(service, "GetVirtualDiskChanges", {
                "Path": path, "LimitId": limit_id, "TargetSnapshotId": "", "ByteOffset": offset, "ByteLength": length,
            }, f"Reading the changes of '{path}'")
            processed = int(output["ProcessedByteLength"])
            if processed <= 0:
                raise HvError(f"GetVirtualDiskChanges processed nothing of '{path}' at offset {offset}; the disk cannot be walked.")
            ranges += [[int(o), int(n)] for o, n in zip(output["ChangedByteOffsets"], output["ChangedByteLengths"])]
            offset += processed
        return ranges

    # ---------------------------------------------------------- HvCatalog.psm1

    def lock_catalog(self, path: str) -> threading.Lock:
        """Lock-HvCatalog (the simulated file lock is a lock per path on the host)."""
        locks = self.host.__dict__.setdefault("_catalog_locks", {})
        lock = locks.setdefault(path.lower(), threading.Lock())
        if not lock.acquire(timeout=60):
            raise HvError(f"The reference point catalog is locked by another run ('{path}.lock' held for over 60 s). "
                          "Wait for the other play to finish, then retry.")
        return lock

    @staticmethod
    def to_hashtable(dictionary: dict) -> dict:
        """ConvertTo-HvHashtable"""
        return dict(dictionary)

    def read_catalog(self, path: str) -> dict:
        """Read-HvCatalog"""
        text = self.host.files.get(path)
        if text is None:
            return {"version": CATALOG_VERSION, "entries": []}
        problem = None
        catalog: Any = None
        try:
            catalog = json.loads(text)
        except ValueError as error:
            problem = f"it is not valid JSON ({error})"
        if problem is None:
            if not isinstance(catalog, dict) or "version" not in catalog or "entries" not in catalog:
                problem = "it has no version and entries"
            elif catalog["version"] != CATALOG_VERSION:
                problem = f"its version {catalog['version']} is not the supported version {CATALOG_VERSION}"
            elif not isinstance(catalog["entries"], list):
                problem = "its entries are not a list"
            elif any(not isinstance(e, dict) for e in catalog["entries"]):
                problem = "some entries are not objects"
        if problem:
            raise HvError(f"The reference point catalog '{path}' is corrupt: {problem}. It was left unchanged; restore it from a backup "
                          "or move it aside (Hyper-V's reference points are not affected, only their names).")
        return {"version": CATALOG_VERSION, "entries": [self.to_hashtable(e) for e in catalog["entries"]]}

    def save_catalog(self, path: str, catalog: dict) -> None:
        """Save-HvCatalog"""
        self.host.files[path] = json.dumps(catalog)
        self.host.log("file_written", path=path)

    @staticmethod
    def find_entries(catalog: dict, vm_id: str | None = None, name: str | None = None, instance_id: str | None = None) -> list[dict]:
        """Find-HvCatalogEntry"""
        if instance_id is not None:
            return [e for e in catalog["entries"] if e.get("instance_id") and e["instance_id"] == instance_id]
        return [e for e in catalog["entries"] if e["vm_id"] == vm_id and e["name"] == name]

    @staticmethod
    def remove_entries(catalog: dict, vm_id: str, name: str) -> int:
        """Remove-HvCatalogEntry"""
        before = len(catalog["entries"])
        catalog["entries"] = [e for e in catalog["entries"] if not (e["vm_id"] == vm_id and e["name"] == name)]
        return before - len(catalog["entries"])

    def set_entry(self, catalog: dict, entry: dict) -> None:
        """Set-HvCatalogEntry"""
        self.remove_entries(catalog, entry["vm_id"], entry["name"])
        catalog["entries"].append(entry)

    @staticmethod
    def new_entry(identity: dict, name: str, type_: str, consistency: str, run_id: str, mode: str = "", base: str = "") -> dict:
        """New-HvCatalogEntry"""
        return {
            "vm_id": identity["id"], "vm_name": identity["name"], "name": name, "type": type_,
            "consistency": consistency, "run_id": run_id,
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": "pending", "instance_id": None, "job_id": None,
            "mode": mode or None, "base": base or None,
        }

    @staticmethod
    def resolve_catalog_path(path: str | None) -> str:
        """Resolve-HvCatalogPath"""
        return path or DEFAULT_CATALOG

    # ---------------------------------------------------------- HvReferencePoint.psm1

    def reference_point_service(self) -> dict:
        """Get-HvReferencePointService"""
        services = self.host.enumerate("Msvm_VirtualSystemReferencePointService")
        if not services:
            raise HvError(f"Host {self.host.name} has no Msvm_VirtualSystemReferencePointService: reference points need Windows Server 2016 "
                          "or Windows 10 or later with the Hyper-V role.")
        return services[0]

    def reference_points(self, vm: dict) -> list[dict]:
        """Get-HvReferencePoint"""
        return self.host.associators(vm, "Msvm_ReferencePointOfVirtualSystem", "Msvm_VirtualSystemReferencePoint")

    @staticmethod
    def select_reference_point(points: list[dict], instance_id: str | None) -> dict | None:
        """Select-HvReferencePoint"""
        return next((pt for pt in points if pt["InstanceID"] == instance_id), None) if instance_id else None

    def new_reference_point(self, vm: dict, type_: str, consistency: str) -> dict:
        """New-HvReferencePoint"""
        settings = self.new_embedded_instance("Msvm_VirtualSystemReferencePointSettingData",
                                              {"ConsistencyLevel": CONSISTENCY_VALUE[consistency]})
        service = self.reference_point_service()
        return self.invoke_method(service, "CreateReferencePoint", {
            "AffectedSystem": vm,
            "ReferencePointSettings": settings,
            "ReferencePointType": TYPE_PARAMETER[type_],
        }, f"Creating a reference point of VM '{vm['ElementName']}'")

    def remove_reference_point(self, point: dict) -> dict:
        """Remove-HvReferencePoint"""
        service = self.reference_point_service()
        return self.invoke_method(service, "DestroyReferencePoint", {"AffectedReferencePoint": point},
                                  f"Removing reference point {point['InstanceID']}")

    @staticmethod
    def reference_point_result(point: dict, identity: dict, entry: dict | None) -> dict:
        """ConvertTo-HvReferencePointResult"""
        disk_ids = [d for d in point.get("VirtualDiskIdentifiers") or [] if d is not None]
        rct_ids = [r for r in point.get("ResilientChangeTrackingIdentifiers") or [] if r is not None]
        disks = [{"disk_id": disk_ids[i] if i < len(disk_ids) else None, "rct_id": rct_ids[i] if i < len(rct_ids) else None}
                 for i in range(max(len(disk_ids), len(rct_ids)))]
        return {
            "instance_id": point["InstanceID"],
            "type": TYPE_PROPERTY.get(int(point.get("ReferencePointType") or 0), "unknown"),
            "consistency": CONSISTENCY_NAME.get(int(point.get("ConsistencyLevel") or 0), "unknown"),
            "vm_name": identity["name"],
            "vm_id": identity["id"],
            "disks": disks,
            "disks_aligned": len(disk_ids) == len(rct_ids),
            "name": entry["name"] if entry else None,
            "created": entry["created"] if entry else None,
            "run_id": entry["run_id"] if entry else None,
            "mode": entry.get("mode") if entry else None,
            "base": entry.get("base") if entry else None,
            "foreign": entry is None,
        }


def embedded_properties(text: str) -> dict:
    """ConvertFrom-HvEmbeddedInstance"""
    import xml.etree.ElementTree as ET  # pylint: disable=import-outside-toplevel
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {}
    properties: dict[str, Any] = {}
    for prop in root.iter("PROPERTY"):
        value = prop.find("VALUE")
        if value is not None:
            properties[prop.get("NAME")] = value.text or ""
    for prop in root.iter("PROPERTY.ARRAY"):
        properties[prop.get("NAME")] = [v.text or "" for v in prop.iter("VALUE")]
    return properties


__all__ = ["Hv", "HvError", "CimError", "FINAL_STATES", "embedded_properties"]


# ---------------------------------------------------------- HvBatch.psm1

def test_step_exit(error: BaseException) -> bool:
    """Test-HvStepExit"""
    return isinstance(error, StepExit)


def new_step_module(module: Any, params: dict, vm: dict) -> Any:
    """New-HvStepModule"""
    stand = type(module)(module.name, params, module.check_mode, module.diff_mode)
    stand.warn = module.warn
    stand.virtual_machine = vm
    return stand


def get_step_vm(module: Any, hv: Hv) -> dict:
    """Get-HvStepVirtualMachine"""
    vm = getattr(module, "virtual_machine", None)
    if vm is not None:
        return vm
    return hv.selected_vm(module.params["vm"], module.params["vm_id"])


def invoke_vm_step(module: Any, step: Callable[[Any, Hv], None], params: dict, hv: Hv, vm: dict) -> dict:
    """Invoke-HvVmStep"""
    stand = new_step_module(module, params, vm)
    try:
        step(stand, hv)
    except (StepExit, HvError) as error:
        if not test_step_exit(error):
            stand.failed = True
            stand.result["msg"] = f"VM '{params.get('vm') or ''}{params.get('vm_id') or ''}': {error}"
    result = dict(stand.result)
    result["failed"] = stand.failed
    return result


def get_batch_params(module: Any, hv: Hv, distinct_by: tuple[str, ...] = ()) -> list[dict]:
    """Get-HvBatchParams"""
    everything = hv.get_vm_list()
    seen: set[str] = set()
    entries = []
    for item in module.params["vms"]:
        params = {k: v for k, v in module.params.items() if k not in ("vms", "job_ids")}
        params.update({k: v for k, v in item.items() if v is not None})
        try:
            vm = hv.select_vm(everything, vm_id=item["vm_id"]) if item.get("vm_id") else hv.select_vm(everything, name=item.get("vm"))
        except HvError as error:
            entries.append({"params": params, "error": str(error)})
            continue
        identity = hv.vm_identity(vm)
        key = "|".join([identity["id"], *(str(params.get(k) or "") for k in distinct_by)])
        if key in seen:
            entries.append({"params": params, "error": f"VM '{identity['name']}' ({identity['id']}) is listed more than once in vms."})
            continue
        seen.add(key)
        job_ids = module.params.get("job_ids") or {}
        params.update({"vm": None, "vm_id": identity["id"], "job_id": str(job_ids[identity["id"]]) if identity["id"] in job_ids else None})
        entries.append({"params": params, "identity": identity, "vm": vm, "error": None})
    return entries


def invoke_vm_batch(module: Any, step: Callable[[Any, Hv], None], hv: Hv, resume_options: tuple[str, ...] = (),
                    collect_keys: tuple[str, ...] = (), distinct_by: tuple[str, ...] = ()) -> None:
    """Invoke-HvVmBatch"""
    if module.params.get("vms") is None:
        if module.params.get("job_ids"):
            module.fail_json("job_ids maps the VMs of vms to their jobs; for one VM use job_id.")
        step(module, hv)
        module.exit_json()
    if module.params.get("job_id"):
        module.fail_json("job_id is the job of one VM; with vms use job_ids (VM id to job id).")
    deadline = time.monotonic() + (module.params.get("wait_timeout") or 0)
    entries = get_batch_params(module, hv, distinct_by)
    results: list[dict] = [{} for _entry in entries]
    for index, entry in enumerate(entries):
        if entry["error"]:
            results[index] = {"changed": False, "failed": True, "vm": {"name": entry["params"].get("vm"), "id": entry["params"].get("vm_id")},
                              "msg": entry["error"]}
            continue
        entry["params"]["wait_timeout"] = 0
        results[index] = invoke_vm_step(module, step, entry["params"], hv, entry["vm"])
    while True:
        waiting = {str(r["job"]["id"]): i for i, r in enumerate(results) if r.get("pending") and r.get("job") is not None}
        left = int(deadline - time.monotonic())
        if not waiting or left <= 0:
            break
        ended = hv.wait_any_job(list(waiting), left)
        if not ended:
            break
        for job_id in ended:
            index = waiting[job_id]
            params = dict(entries[index]["params"], job_id=job_id)
            for key in resume_options:
                if results[index].get(key) is not None:
                    params[key] = results[index][key]
            before = results[index]
            results[index] = invoke_vm_step(module, step, params, hv, entries[index]["vm"])
            results[index]["changed"] = bool(before.get("changed")) or bool(results[index].get("changed"))
            for key in collect_keys:
                results[index][key] = [v for v in list(before.get(key) or []) + list(results[index].get(key) or []) if v is not None]
    module.result["results"] = results
    module.result["changed"] = any(r.get("changed") for r in results)
    if any("pending" in r for r in results):
        module.result["pending"] = any(r.get("pending") for r in results)
    failed = [r for r in results if r.get("failed")]
    if failed:
        module.fail_json(f"{len(failed)} of {len(results)} VMs failed: {' | '.join(r['msg'] for r in failed)}")
    module.exit_json()
