"""What the simulated host does for a restore: import, planned systems, disk chains, start and heartbeat.

SimHost takes these methods from RestoreMethods. Each follows tests/hvtest/sim/RESTORE.md (what
Microsoft's pages and public tools say Windows does); where nobody says, the method raises
CimError (the shim's call fails loudly) instead of guessing. The disk files are the real files
the modules copied (sim/vhd.py); the configuration file is sim/vmcx.py's.
"""

from __future__ import annotations

import ntpath
import os
import re
import uuid
from typing import Any

from . import vhd, vmcx
from .errors import CimError, embedded_array, embedded_property

PLANNED = "Microsoft:Hyper-V:System:Planned"
ETHERNET_CONNECTION = "Microsoft:Hyper-V:Ethernet Connection"
# Job types of the restore methods (Msvm_ConcreteJob JobType values as hosts report them are not
# documented per method; these are only distinct, and nothing in the collection reads them).
RESTORE_JOB_TYPE = {"ImportSystemDefinition": 63, "ValidatePlannedSystem": 64, "RealizePlannedSystem": 65, "DestroySystem": 66,
                    "MergeVirtualHardDisk": 94, "SetParentVirtualHardDisk": 95, "RequestStateChange": 11}
# vagrant's mapping of Hyper-V job errors (hashicorp/vagrant#9317): 32784 for a configuration
# version the host cannot run.
UNSUPPORTED_VERSION = 32784


def _same_path(left: str | None, right: str | None) -> bool:
    """Whether two host paths name the same file (Windows compares paths without case)."""
    return bool(left) and bool(right) and os.path.normcase(os.path.normpath(str(left))).lower() == \
        os.path.normcase(os.path.normpath(str(right))).lower()


def switch_path(host: str, switch_id: str) -> str:
    """The WMI path of a Msvm_VirtualEthernetSwitch, as an adapter's HostResource names it."""
    return (f"\\\\{host}\\root\\virtualization\\v2:Msvm_VirtualEthernetSwitch."
            f'CreationClassName="Msvm_VirtualEthernetSwitch",Name="{switch_id}"')


def _switch_id(path: str) -> str | None:
    found = re.search(r'[.,]Name="([^"]+)"', path or "")
    return found.group(1) if found else None


class RestoreMethods:
    """The restore half of SimHost (mixed in; uses its lock, jobs, log and faults)."""

    # Set by SimHost.__init__ (seed_switches).
    lock: Any
    planned: list[dict]
    switches: list[dict]
    job_errors: dict[str, list[str]]

    def seed_switches(self, scenario: dict) -> None:
        self.planned = []
        self.job_errors = {}
        self.switches = [{"ClassName": "Msvm_VirtualEthernetSwitch", "CreationClassName": "Msvm_VirtualEthernetSwitch",
                          "Name": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"switch:{name}")).upper(), "ElementName": name}
                         for name in scenario.get("switches", [])]

    def switch_by_name(self, name: str) -> dict:
        found = next((s for s in self.switches if s["ElementName"] == name), None)
        if found is None:
            raise CimError(f"switch {name!r} is not one of the scenario's switches ({[s['ElementName'] for s in self.switches]})")
        return found

    def remove_switch(self, name: str) -> None:
        """The switch is deleted (or renamed) on the host: an adapter backed up on it has nowhere to connect."""
        with self.lock:
            self.switches = [s for s in self.switches if s["ElementName"] != name]

    def power(self, name: str, state: str) -> None:
        """The admin turns a VM off or on outside the collection (Stop-VM, Start-VM); the guest boots again from now."""
        enabled = {"off": 3, "running": 2}.get(state)  # Msvm_ComputerSystem.EnabledState
        if enabled is None:
            raise ValueError(f"power: state {state!r} is not off or running")
        with self.lock:
            vm = next(v for v in self.vms if v["ElementName"] == name)
            vm["_state"], vm["EnabledState"] = state, enabled
            vm["_started_at"] = self.clock() if state == "running" else None
            self.log("vm_state", vm=name, state=state)

    def vm_config(self, vm: dict) -> dict:
        """What the simulated .vmcx of an export holds (sim/vmcx.py)."""
        first = next((d["path"] for d in vm["_disks"]), "")
        return {"id": vm["Name"], "name": vm["ElementName"], "version": vm["_version"], "checkpoints": vm["_checkpoints"],
                "folder": ntpath.dirname(first),
                "integration_services": vm["_integration_services"],
                "disks": [{"path": d["path"], "kind": d["kind"], "size": d["size"]} for d in vm["_disks"] if d["kind"] in ("vhdx", "vhd")],
                "nics": [dict(n) for n in vm.get("_nics", [])]}

    # ------------------------------------------------------------------ instances

    def planned_settings(self, planned: dict) -> dict:
        return {"ClassName": "Msvm_VirtualSystemSettingData", "InstanceID": f"Microsoft:{planned['Name']}",
                "ElementName": planned["ElementName"], "Caption": self.localize("Virtual Machine Settings"),
                "VirtualSystemIdentifier": planned["Name"], "VirtualSystemType": PLANNED, "Version": planned["_version"],
                **{root: planned["_data_root"] for root in ("ConfigurationDataRoot", "SnapshotDataRoot", "SwapFileDataRoot")}}

    def planned_resources(self, planned: dict) -> list[dict]:
        """The planned system's disks (Msvm_StorageAllocationSettingData) and adapters' connections."""
        found = [{"ClassName": "Msvm_StorageAllocationSettingData", "InstanceID": f"Microsoft:{planned['Name']}\\{d['device']}",
                  "ResourceType": 31, "ResourceSubType": "Microsoft:Hyper-V:Virtual Hard Disk", "HostResource": [d["path"]]}
                 for d in planned["_disks"]]
        found += [{"ClassName": "Msvm_EthernetPortAllocationSettingData", "InstanceID": f"Microsoft:{planned['Name']}\\{n['device']}\\C",
                   "ResourceType": 33, "ResourceSubType": ETHERNET_CONNECTION, "HostResource": [n["host_resource"]] if n["host_resource"] else [],
                   "EnabledState": n["enabled"], "LastKnownSwitchName": n["switch"]}
                  for n in planned["_nics"]]
        return found

    def heartbeat(self, vm: dict) -> list[dict]:
        """The VM's Msvm_HeartbeatComponent: none while it is off; No Contact (12) until the guest
        has booted (scenario boot_seconds), OK (2) after, or No Contact for ever (guest_boots: false)."""
        if vm["_state"] != "running":
            return []
        started = vm.get("_started_at")
        booted = (self.scenario.get("guest_boots", True) and vm["_integration_services"]
                  and (started is None or self.clock() - started >= float(self.scenario.get("boot_seconds", 1))))
        return [{"ClassName": "Msvm_HeartbeatComponent", "CreationClassName": "Msvm_HeartbeatComponent",
                 "DeviceID": f"Microsoft:{vm['Name']}\\84EAAE65-2F2E-45F5-9BB5-0E857DC8EB47", "SystemCreationClassName": "Msvm_ComputerSystem",
                 "SystemName": vm["Name"], "ElementName": self.localize("Heartbeat"), "OperationalStatus": [2] if booted else [12],
                 "EnabledState": 2}]

    def _planned(self, reference: dict | None) -> dict | None:
        return next((p for p in self.planned if reference and p["Name"].lower() == str(reference.get("Name", "")).lower()), None)

    def _planned_by_setting(self, instance_id: str | None) -> dict | None:
        return next((p for p in self.planned if instance_id and instance_id.lower().startswith(f"microsoft:{p['Name'].lower()}")), None)

    # ------------------------------------------------------------------ import, validate, realize, destroy

    def _m_ImportSystemDefinition(self, _service: dict, arguments: dict, fault: dict) -> dict:
        path = arguments.get("SystemDefinitionFile") or ""
        if not os.path.isfile(path):
            raise CimError(f"ImportSystemDefinition of {path!r}, which does not exist: the answer Hyper-V gives is not documented (not modelled)")
        if not arguments.get("GenerateNewSystemIdentifier"):
            raise CimError("ImportSystemDefinition keeping the exported identifier: what Hyper-V does when that VM still exists is not "
                           "documented (not modelled; a restore asks for a new one)")
        try:
            config = vmcx.read_config(path)
        except vmcx.ConfigDamaged as damaged:
            raise CimError(f"ImportSystemDefinition of a damaged configuration ({damaged}): Hyper-V's answer is not documented (not modelled)")
        supported = self.supported_versions()
        if not supported[0] <= tuple(int(p) for p in config["version"].split(".")) <= supported[1] and "fail" not in fault.get("job", {}):
            fault = {"job": {**fault.get("job", {}), "fail": {
                "error_code": UNSUPPORTED_VERSION,
                "description": f"The virtual machine '{config['name']}' has configuration version {config['version']}, which this host does not support."}}}

        def complete() -> list[dict]:
            planned = {
                "ClassName": "Msvm_PlannedComputerSystem", "CreationClassName": "Msvm_PlannedComputerSystem",
                "Name": str(uuid.uuid4()).upper(), "ElementName": config["name"], "Caption": self.localize("Planned Virtual Machine"),
                "_version": config["version"], "_checkpoints": config["checkpoints"], "_integration_services": config["integration_services"],
                "_config_file": path,
                # The imported settings keep the backed-up VM's folders until they are changed.
                "_data_root": config.get("folder"),
                "_disks": [{"device": f"{str(uuid.uuid4()).upper()}\\0\\{i}\\D", "path": d["path"], "size": d["size"]}
                           for i, d in enumerate(config["disks"])],
                "_nics": [{"device": str(uuid.uuid4()).upper(), "switch": n["switch"], "enabled": 2,
                           "host_resource": switch_path(self.name, n["switch_id"])} for n in config["nics"]],
            }
            self.planned.append(planned)
            self.log("imported", planned=planned["Name"], file=path)
            return [planned]

        return self._start_job("ImportSystemDefinition", fault, complete, product="ImportedSystem")

    def planned_problems(self, planned: dict) -> list[str]:
        """What keeps a planned system from being realized, as ValidatePlannedSystem's Msvm_Error entries would say it."""
        problems = []
        for disk in planned["_disks"]:
            try:
                header = vhd.read_file(disk["path"]) if os.path.isfile(disk["path"]) else None
            except vhd.VhdDamaged:
                header = None
            if header is None:
                problems.append(f"'{planned['ElementName']}': the virtual hard disk '{disk['path']}' cannot be found or opened.")
            elif header.kind == "differencing":
                problems.append(f"'{planned['ElementName']}': the virtual hard disk '{disk['path']}' is a differencing disk whose chain "
                                "is not restored.")
        for nic in planned["_nics"]:
            if nic["enabled"] == 2 and not any(s["Name"] == _switch_id(nic["host_resource"]) for s in self.switches):
                problems.append(f"'{planned['ElementName']}': the network adapter was connected to switch '{nic['switch']}', which "
                                "this host does not have.")
        return problems

    def _m_ValidatePlannedSystem(self, _service: dict, arguments: dict, fault: dict) -> dict:
        planned = self._planned(arguments.get("PlannedSystem"))
        if planned is None:
            return {"ReturnValue": 4}
        problems = self.planned_problems(planned)
        output = self._start_job("ValidatePlannedSystem", fault, lambda: [])
        if output.get("Job"):
            # Reported by GetErrorEx of the job, which still completes (Microsoft's PVM sample prints them as warnings).
            self.job_errors[output["Job"]["InstanceID"]] = problems
        elif problems:
            raise CimError("ValidatePlannedSystem answering at once with problems: where Hyper-V puts them then is not documented (not modelled)")
        return output

    def _m_RealizePlannedSystem(self, _service: dict, arguments: dict, fault: dict) -> dict:
        planned = self._planned(arguments.get("PlannedSystem"))
        if planned is None:
            return {"ReturnValue": 4}
        problems = self.planned_problems(planned)
        if problems and "fail" not in fault.get("job", {}):
            fault = {"job": {**fault.get("job", {}), "fail": {
                "error_code": 32768, "description": f"Failed to realize the virtual machine '{planned['ElementName']}'.", "errors": problems}}}

        def complete() -> list[dict]:
            vm = self.realized_vm(planned)
            # Whether the planned instance disappears on realize is not documented: it is removed here, and a
            # module that looks for it afterwards finds nothing (docs/simulator.md says so).
            self.planned = [p for p in self.planned if p is not planned]
            self.log("realized", planned=planned["Name"], vm=vm["ElementName"])
            return [vm]

        return self._start_job("RealizePlannedSystem", fault, complete, product="ResultingSystem")

    def realized_vm(self, planned: dict) -> dict:
        disks = []
        for index, disk in enumerate(planned["_disks"]):
            made = self._new_disk(index, {"path": disk["path"], "size_gb": disk["size"] / 2**30})
            made["_file"] = disk["path"]
            disks.append(made)
        vm = {
            "ClassName": "Msvm_ComputerSystem", "CreationClassName": "Msvm_ComputerSystem", "Name": planned["Name"],
            "ElementName": planned["ElementName"], "Caption": self.localize("Virtual Machine"),
            "Description": self.localize("Microsoft Virtual Machine"), "EnabledState": 3, "OperationalStatus": [2],
            "_state": "off", "_disks": disks, "_checkpoints": planned["_checkpoints"], "_version": planned["_version"],
            "_integration_services": planned["_integration_services"], "_busy": False,
            "_nics": [{"switch": n["switch"], "connected": n["enabled"] == 2,
                       "switch_name": next((s["ElementName"] for s in self.switches if s["Name"] == _switch_id(n["host_resource"])), None)}
                      for n in planned["_nics"]],
            "_restored_from": planned["_config_file"],
            "_data_root": planned["_data_root"],
        }
        self.vms.append(vm)
        return vm

    def _m_DestroySystem(self, _service: dict, arguments: dict, fault: dict) -> dict:
        target = arguments.get("AffectedSystem") or {}
        planned = self._planned(target)
        vm = self._live_vm(target) if planned is None else None
        if planned is None and vm is None:
            return {"ReturnValue": 4}
        if vm is not None:
            if vm["_state"] != "off":
                raise CimError(f"DestroySystem of VM {vm['ElementName']}, which is {vm['_state']}: not documented (not modelled)")
            if any(c["VirtualSystemIdentifier"] == vm["Name"] for c in self.checkpoints) or any(
                    p["VirtualSystemIdentifier"] == vm["Name"] for p in self.reference_points):
                raise CimError(f"DestroySystem of VM {vm['ElementName']} with checkpoints or reference points: not modelled")

        def complete() -> list[dict]:
            # Whether Hyper-V deletes the configuration file is not documented: the files stay here.
            if planned is not None:
                self.planned = [p for p in self.planned if p is not planned]
                self.log("planned_destroyed", planned=planned["Name"])
            else:
                self.vms = [v for v in self.vms if v is not vm]
                self.log("vm_destroyed", vm=vm["ElementName"], id=vm["Name"])
            return []

        return self._start_job("DestroySystem", fault, complete)

    def _m_ModifyResourceSettings(self, _service: dict, arguments: dict, fault: dict) -> dict:
        changes = []  # (the planned system's disk or adapter, its new values)
        for text in arguments.get("ResourceSettings") or []:
            instance_id = embedded_property(text, "InstanceID") or ""
            planned = self._planned_by_setting(instance_id)
            if planned is None:
                raise CimError(f"ModifyResourceSettings of {instance_id!r}, which is not a planned system's resource: not modelled")
            host_resource = embedded_array(text, "HostResource")
            device = instance_id.split("\\", 1)[1].lower() if "\\" in instance_id else ""
            disk = next((d for d in planned["_disks"] if d["device"].lower() == device), None)
            nic = next((n for n in planned["_nics"] if f"{n['device']}\\C".lower() == device), None)
            if disk is not None and len(host_resource) == 1:
                changes.append((disk, {"path": host_resource[0]}))
            elif nic is not None:
                enabled = embedded_property(text, "EnabledState")
                changes.append((nic, {"enabled": int(enabled) if enabled is not None else nic["enabled"],
                                      "host_resource": host_resource[0] if host_resource else None}))
            else:
                return {"ReturnValue": 4}

        def complete() -> list[dict]:
            for resource, values in changes:
                resource.update(values)
            self.log("resources_modified", count=len(changes))
            return []

        return self._start_job("ModifyResourceSettings", fault, complete)

    # ------------------------------------------------------------------ disk chains

    def _m_SetParentVirtualHardDisk(self, _service: dict, arguments: dict, fault: dict) -> dict:
        child, parent = arguments.get("ChildPath") or "", arguments.get("ParentPath") or ""
        if not os.path.isfile(child) or not os.path.isfile(parent):
            return {"ReturnValue": 32779}
        if arguments.get("LeafPath"):
            raise CimError("SetParentVirtualHardDisk with LeafPath (a chain with a running VM): not modelled")
        if not arguments.get("IgnoreIDMismatch"):
            # What Hyper-V compares is the parent's DataWriteGuid against the child's parent_linkage ([MS-VHDX]);
            # the simulated files do not keep it, so the outcome would be a guess.
            raise CimError("SetParentVirtualHardDisk without IgnoreIDMismatch: the identity check is not modelled")
        if self.read_disk(child).kind != "differencing":
            raise CimError(f"SetParentVirtualHardDisk of {child!r}, which is not a differencing disk: Hyper-V's answer is not documented")

        def complete() -> list[dict]:
            disk = self.read_disk(child)
            vhd.write_file(child, vhd.VhdFile("differencing", disk.virtual_size, disk.segments, parent=parent), size=os.path.getsize(child))
            self.log("reparented", child=child, parent=parent)
            return []

        return self._start_job("SetParentVirtualHardDisk", fault, complete)

    def _m_MergeVirtualHardDisk(self, _service: dict, arguments: dict, fault: dict) -> dict:
        source, destination = arguments.get("SourcePath") or "", arguments.get("DestinationPath") or ""
        if not os.path.isfile(source) or not os.path.isfile(destination):
            return {"ReturnValue": 32779}
        child = self.read_disk(source)
        if child.kind != "differencing" or not _same_path(child.parent, destination):
            raise CimError(f"MergeVirtualHardDisk of {source!r} into {destination!r}, which is not its parent ({child.parent!r}): "
                           "not modelled")

        def complete() -> list[dict]:
            merged = self.read_disk(destination)
            segments = merged.segments
            for start, chunk in self.read_disk(source).segments:
                segments = vhd.overlay(segments, start, chunk)
            vhd.write_file(destination, vhd.VhdFile(merged.kind, merged.virtual_size, segments, parent=merged.parent),
                           size=os.path.getsize(destination))
            # Whether Hyper-V deletes the merged child is not documented: it stays here, and the module removes it.
            self.log("merged", source=source, destination=destination)
            return []

        return self._start_job("MergeVirtualHardDisk", fault, complete)

    def read_disk(self, path: str) -> vhd.VhdFile:
        try:
            return vhd.read_file(path)
        except vhd.VhdDamaged as damaged:
            raise CimError(f"a method opened a damaged virtual hard disk ({damaged}): what Hyper-V answers is not documented") from damaged

    def file_setting_data(self, path: str) -> dict[str, Any] | None:
        """Msvm_VirtualHardDiskSettingData of a virtual hard disk file (not a VM's disk): None when there is no such file."""
        if not os.path.isfile(path):
            return None
        disk = self.read_disk(path)
        return {"Path": path, "Type": 4 if disk.kind == "differencing" else 3, "Format": 3, "MaxInternalSize": disk.virtual_size,
                "ParentPath": disk.parent or ""}

    # ------------------------------------------------------------------ start

    def start_vm(self, vm: dict, arguments: dict, fault: dict) -> dict:
        """Msvm_ComputerSystem.RequestStateChange: 2 starts a VM that is off, 3 turns off a running one."""
        requested = arguments.get("RequestedState")
        if requested not in (2, 3):
            raise CimError(f"RequestStateChange({requested}) of a VM: not modelled")
        if (requested == 2) != (vm["_state"] == "off"):
            raise CimError(f"RequestStateChange({requested}) of VM {vm['ElementName']}, which is {vm['_state']}: not modelled")

        def complete() -> list[dict]:
            vm["_state"] = "running" if requested == 2 else "off"
            vm["EnabledState"] = requested
            vm["_started_at"] = self.clock() if requested == 2 else None
            self.log("vm_state", vm=vm["ElementName"], state=vm["_state"])
            return []

        return self._start_job("RequestStateChange", fault, complete, vm=vm)
