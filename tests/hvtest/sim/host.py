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
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from .. import schema as schema_mod
from . import vhd, vmcx
from .errors import CimError, embedded_property
from .restore import RESTORE_JOB_TYPE, RestoreMethods

NAMESPACE = "root/virtualization/v2"
JOB_TYPE = {"CreateReferencePoint": 201, "DestroyReferencePoint": 202, "CreateSnapshot": 70, "DestroySnapshot": 72,
            "ConvertToReferencePoint": 200, "ExportSystemDefinition": 62, **RESTORE_JOB_TYPE}
RECOVERY = "Microsoft:Hyper-V:Snapshot:Recovery"
REALIZED = "Microsoft:Hyper-V:System:Realized"
HARD_DISK = "Microsoft:Hyper-V:Virtual Hard Disk"      # .vhd, .vhdx and .vhds alike (Msvm_StorageAllocationSettingData page)
DVD_DISK = "Microsoft:Hyper-V:Virtual CD/DVD Disk"     # an ISO in a DVD drive
PHYSICAL_DISK = "Microsoft:Hyper-V:Physical Disk Drive"  # a pass-through disk (Msvm_ResourceAllocationSettingData page)
# EnabledState of a VM by the state a scenario names: 2 running, 3 off, 6 saved, 9 paused, 10 starting
# (Msvm_ComputerSystem page; 6 and 9 as hosts report them); migrating is running with
# OperationalStatus[1] 32774 Migrating Virtual Machine.
ENABLED_STATE = {"running": 2, "off": 3, "saved": 6, "paused": 9, "starting": 10, "migrating": 2}
# UserSnapshotType by the checkpoint setting a scenario names (Msvm_VirtualSystemSettingData page).
CHECKPOINT_TYPE = {"disabled": 2, "production": 3, "enabled": 3, "production_only": 4, "standard": 5}
DISK_KINDS = ("vhdx", "vhd", "vhds", "iso", "dvd_empty", "passthrough")
VIRTUAL_HARD_DISKS = ("vhdx", "vhd", "vhds")
# The configuration versions each Windows Server can run (Microsoft's "Upgrade virtual machine
# version" page): 2022 and 2025 cannot run VMs below 8.0.
HOST_VERSIONS = {2016: ("5.0", "8.0"), 2019: ("5.0", "9.0"), 2022: ("8.0", "10.0"), 2025: ("8.0", "12.0")}


# Texts Windows localizes. Where users have reported what a host says in a language, that text
# (sv-SE Caption "Virtuell dator": GNS3 issue #1612; fr-FR Description "Ordinateur virtuel
# Microsoft": podman issue #20571; de-DE service Caption "Hyper-V-Imageverwaltungsdienst":
# microsoft/wmi issue #117). Every other localizable text (captions, descriptions, job and error
# texts, which nobody documents) is scrambled: not a translation, only different from English, so
# a test shows that nothing the collection decides depends on it.
LANGUAGES = {
    "en-US": {},
    "sv-SE": {"Virtual Machine": "Virtuell dator"},
    "fr-FR": {"Microsoft Virtual Machine": "Ordinateur virtuel Microsoft"},
    "de-DE": {"Hyper-V Image Management Service": "Hyper-V-Imageverwaltungsdienst"},
    "ja-JP": {},
}
SERVICE_CAPTIONS = {
    "Msvm_VirtualSystemReferencePointService": "Hyper-V Virtual System Reference Point Service",
    "Msvm_VirtualSystemSnapshotService": "Hyper-V Virtual System Snapshot Service",
    "Msvm_VirtualSystemManagementService": "Hyper-V Virtual System Management Service",
    "Msvm_ImageManagementService": "Hyper-V Image Management Service",
}


def localized(text: str, language: str) -> str:
    """text as a host in language shows it: a reported translation, else scrambled (words reversed,
    with what is not a word - numbers, hex codes, quoted names - kept as it is)."""
    if language == "en-US" or not text:
        return text
    known = LANGUAGES[language].get(text)
    if known:
        return known
    tag = language.split("-")[0]
    parts = re.split(r"('[^']*'|0x[0-9A-Fa-f]+|\d[\w.:-]*)", text)
    return f"[{tag}] " + "".join(part if index % 2 else re.sub(r"[A-Za-z]{2,}", lambda m: m.group(0)[::-1], part)
                                 for index, part in enumerate(parts))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


FINAL_STATES = frozenset({7, 8, 9, 10, 32768})
# Methods a host answers at once unless a scenario says otherwise; their pages list 4096 too.
# ModifyResourceSettings too: its page allows 0 and 4096; a scenario or fault can make it a job (answers).
# The classes of the jobs Hyper-V starts (see Job.class_name).
JOB_CLASSES = ("Msvm_ConcreteJob", "Msvm_StorageJob")
ANSWERED_AT_ONCE = frozenset({"GetVirtualHardDiskSettingData", "GetVirtualHardDiskState", "GetVirtualDiskChanges", "ModifyResourceSettings"})
# Each service class has one instance per host; Name as Windows gives it.
SERVICES = {
    "Msvm_VirtualSystemReferencePointService": "vmms",
    "Msvm_VirtualSystemSnapshotService": "vssnapshotservice",
    "Msvm_VirtualSystemManagementService": "vmms",
    "Msvm_ImageManagementService": "vhdsvc",
}


# A guest write's bytes are kept in memory (sim/vhd.py): tests write megabytes, never gigabytes.
MAX_WRITE = 256 * 2**20


def _guid() -> str:
    return str(uuid.uuid4())


# Msvm_ConcreteJob.TimeBeforeRemoval: "always 00000000000500.000000:000", five minutes after the
# job ends the host forgets it (Microsoft's Msvm_ConcreteJob page).
TIME_BEFORE_REMOVAL = 300.0


@dataclasses.dataclass
class Job:
    """A Msvm_ConcreteJob whose state follows the clock.

    states: the states it goes through while running, as [seconds since start, JobState] (2 New,
    3 Starting, 4 Running, 5 Suspended, 6 Shutting Down, 11 Service, 12 Query Pending); final:
    the state it ends in when it does not fail (7, or 32768 completed with warnings, or 9 Killed);
    vanish_after: seconds after its end until the host forgets it; affected: whether
    CIM_AffectedJobElement names what it made.
    """

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
    states: list[tuple[float, int]] | None = None
    final: int = 7
    vanish_after: float = TIME_BEFORE_REMOVAL
    names_product: bool = True
    ended_at: float | None = None
    vm: str | None = None
    # What a job that fails or is cancelled leaves behind (an export's files written so far).
    on_abort: Callable[[], None] | None = None
    # For the benchmark's timeline: the WinRM command that started it, and when, in wall-clock seconds.
    run: str = ""
    method: str = ""
    started_wall: float = 0.0
    # Msvm_StorageJob for the image management service's work, Msvm_ConcreteJob for the rest
    # (Microsoft's Msvm_StorageJob page: "a storage operation job created by the Image Management
    # Service"). Two sibling classes under CIM_ConcreteJob: a job is found by key in its own class only.
    class_name: str = "Msvm_ConcreteJob"

    def state(self, now: float) -> tuple[int, int]:
        """(JobState, PercentComplete) at time now; completes (once) when its time has come."""
        if self.finished_state is not None:
            return self.finished_state, 100 if self.finished_state in (7, 32768) else self._percent(now)
        if self.killed:
            self._abort()
            return self._end(9, now), self._percent(now)
        if self.never_ends or now - self.started < self.duration:
            return self._running_state(now), self._percent(now)
        if self.fail:
            self._abort()
            return self._end(10, now), self._percent(now)
        products = self.on_complete()
        # A job may do its work without naming it in CIM_AffectedJobElement (a knob: what then?).
        self.affected = products if self.names_product else []
        return self._end(self.final, now), 100

    def _abort(self) -> None:
        if self.on_abort is not None:
            self.on_abort()
            self.on_abort = None

    def _end(self, state: int, now: float) -> int:
        self.finished_state = state
        self.ended_at = now
        return state

    def _running_state(self, now: float) -> int:
        state = 4
        for at, value in self.states or []:
            if now - self.started >= at:
                state = value
        return state

    def gone(self, now: float) -> bool:
        """Whether the host has forgotten the job (it ended more than vanish_after seconds ago)."""
        self.state(now)
        return self.ended_at is not None and now - self.ended_at >= self.vanish_after

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


class SimHost(RestoreMethods):
    """A Hyper-V host seeded from a scenario (see tests/e2e/scenarios/*.yml)."""

    def __init__(self, scenario: dict, clock: Callable[[], float] = time.monotonic) -> None:
        # clock_scale: simulated seconds per real second, so a job of 10 simulated minutes ends in
        # 30 real seconds at 20 (the benchmark's long job). Job durations and percentages follow
        # it; the default TimeBeforeRemoval does not (see _start_job).
        self.clock_scale = float(scenario.get("clock_scale", 1))
        if self.clock_scale <= 0:
            raise CimError(f"clock_scale must be more than 0, got {self.clock_scale}")
        self.clock = clock if self.clock_scale == 1 else _scaled(clock, self.clock_scale)
        self.lock = threading.RLock()
        self.calls: list[dict] = []
        self.context = threading.local()  # .run: the WinRM command whose CIM call is being answered
        self.scenario = copy.deepcopy(scenario)
        self.name = scenario.get("host", "HV01").upper()
        self.language = str(scenario.get("language", "en-US"))
        if self.language not in LANGUAGES:
            raise CimError(f"language {self.language!r} is not modelled ({', '.join(LANGUAGES)})")
        self.windows = int(scenario.get("windows", 2022))
        if self.windows not in HOST_VERSIONS:
            raise CimError(f"Windows Server {self.windows} is not modelled ({', '.join(map(str, HOST_VERSIONS))})")
        self.schema = schema_mod.load().for_windows(self.windows)
        self.faults: list[dict] = list(scenario.get("faults", []))
        self.job_defaults: dict = dict(scenario.get("jobs", {}))
        self.vms: list[dict] = []
        self.reference_points: list[dict] = []
        self.checkpoints: list[dict] = []
        self.jobs: dict[str, Job] = {}
        self.seed_switches(scenario)
        for vm in scenario.get("vms", []):
            self._add_vm(vm)
        for checkpoint in scenario.get("recovery_checkpoints", []):
            # Another product's recovery checkpoint (its own name), left on the VM.
            vm = self._vm_by_name(checkpoint["vm"])
            self.checkpoints.append(self._new_checkpoint(vm, checkpoint.get("consistency", 2), checkpoint.get("name")))
        for point in scenario.get("reference_points", []):
            vm = self._vm_by_name(point["vm"])
            self.reference_points.append(self._new_reference_point(vm, point.get("type", 2), point.get("consistency", 1),
                                                                   instance_id=point.get("instance_id")))

    # ------------------------------------------------------------------ seeding

    def _add_vm(self, spec: dict) -> None:
        vm_id = spec.get("id") or _guid()
        state = {False: "off", True: "running"}.get(spec.get("state"), spec.get("state", "running"))  # YAML 1.1 reads off as false
        if state not in ENABLED_STATE:
            raise CimError(f"VM {spec['name']}: state {state!r} is not modelled ({', '.join(ENABLED_STATE)})")
        supported = HOST_VERSIONS[self.windows]
        # New VMs get the host's default version; Microsoft's page lists the supported ones, and the
        # newest of them is taken as the default (not documented; nothing here depends on it).
        version = str(spec.get("version", supported[1]))
        if _version(version) < _version(supported[0]) or _version(version) > _version(supported[1]):
            raise CimError(f"VM {spec['name']}: configuration version {version} cannot exist on Windows Server {self.windows} "
                           f"(supported {supported[0]} to {supported[1]})")
        checkpoints = spec.get("checkpoints", "production")
        if checkpoints not in CHECKPOINT_TYPE:
            raise CimError(f"VM {spec['name']}: checkpoints {checkpoints!r} is not modelled ({', '.join(CHECKPOINT_TYPE)})")
        disks = []
        for index, disk in enumerate(spec.get("disks", [{"path": f"C:\\VMs\\{spec['name']}\\disk0.vhdx"}])):
            disks.append(self._new_disk(index, disk))
        self.vms.append({
            "ClassName": "Msvm_ComputerSystem",
            "CreationClassName": "Msvm_ComputerSystem",
            "Name": vm_id.upper(),
            "ElementName": spec["name"],
            "Caption": self.localize("Virtual Machine"),
            "Description": self.localize("Microsoft Virtual Machine"),
            "EnabledState": ENABLED_STATE[state],
            "OperationalStatus": [2, 32774] if state == "migrating" else [2],
            "_state": state,
            "_disks": disks,
            "_checkpoints": checkpoints,
            "_version": version,
            "_integration_services": spec.get("integration_services", True),
            "_busy": bool(spec.get("busy", False)),
            # Network adapters, each connected to a switch of the scenario's `switches`.
            "_nics": [{"switch": nic["switch"], "switch_id": self.switch_by_name(nic["switch"])["Name"]} for nic in spec.get("nics", [])],
        })

    @staticmethod
    def _new_disk(index: int, disk: dict) -> dict:
        """A drive of a VM: a virtual hard disk (vhdx, vhd, vhds), an ISO, or a pass-through disk."""
        path = disk.get("path", "")
        kind = disk.get("kind") or {".vhdx": "vhdx", ".vhd": "vhd", ".vhds": "vhds", ".iso": "iso", ".avhdx": "vhdx"}.get(
            os.path.splitext(path.lower())[1], "")
        if kind not in DISK_KINDS:
            raise CimError(f"disk {path!r}: kind {kind!r} is not modelled ({', '.join(DISK_KINDS)})")
        return {
            "path": path,
            "kind": kind,
            "rct": disk.get("rct", kind in ("vhdx", "vhds")),
            # the part of a disk id that names the disk everywhere (VM, checkpoint, reference point)
            "device": f"{_guid().upper()}\\0\\{index}\\D",
            "size": int(float(disk.get("size_gb", 10)) * 2**30),
            # Dynamic disks: the file holds what was written (file_gb, by default up to 1 GiB), and a
            # full export copies the file. Kept small so the exports' sparse files and the modules'
            # free space check (DriveInfo, on the machine running the simulator) fit any test machine.
            "file_size": int(float(disk.get("file_gb", min(float(disk.get("size_gb", 10)), 1.0))) * 2**30),
            "counter": 0,
            "tracking_id": str(uuid.uuid4()),
            "generation": 0,
            "writes": [],  # (generation, offset, length)
        }

    def supported_versions(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The oldest and newest configuration version this host runs (HOST_VERSIONS)."""
        low, high = HOST_VERSIONS[self.windows]
        return _version(low), _version(high)

    def _vm_by_name(self, name: str) -> dict:
        return next(vm for vm in self.vms if vm["ElementName"] == name)

    def host_system(self) -> dict:
        return {"ClassName": "Msvm_ComputerSystem", "CreationClassName": "Msvm_ComputerSystem", "Name": self.name,
                "ElementName": self.name, "Caption": self.localize("Hosting Computer System"),
                "Description": self.localize("Microsoft Hosting Computer System"), "EnabledState": 2}

    def service(self, class_name: str) -> dict:
        """The host's one instance of a Hyper-V service class."""
        return {"ClassName": class_name, "CreationClassName": class_name, "Name": SERVICES[class_name],
                "SystemCreationClassName": "Msvm_ComputerSystem", "SystemName": self.name,
                "Caption": self.localize(SERVICE_CAPTIONS[class_name])}

    def localize(self, text: str) -> str:
        """A text Windows localizes, in the host's language (see LANGUAGES)."""
        return localized(text, self.language)

    def settings(self, vm: dict) -> dict:
        """The VM's own Msvm_VirtualSystemSettingData (VirtualSystemType Realized)."""
        return {
            "ClassName": "Msvm_VirtualSystemSettingData",
            "InstanceID": f"Microsoft:{vm['Name']}",
            "ElementName": vm["ElementName"],
            "Caption": self.localize("Virtual Machine Settings"),
            "VirtualSystemIdentifier": vm["Name"],
            "VirtualSystemType": REALIZED,
            "Version": vm["_version"],
            "UserSnapshotType": CHECKPOINT_TYPE[vm["_checkpoints"]],
        }

    def drives(self, owner: str, disks: list[dict], with_passthrough: bool) -> list[dict]:
        """The storage of a VM or checkpoint: a Msvm_StorageAllocationSettingData per virtual hard disk
        or ISO, and (for the VM) a Msvm_ResourceAllocationSettingData per pass-through disk."""
        found = []
        for disk in disks:
            if disk["kind"] in VIRTUAL_HARD_DISKS or disk["kind"] == "iso":
                found.append({"ClassName": "Msvm_StorageAllocationSettingData", "InstanceID": disk_id(owner, disk),
                              "ResourceType": 31, "ResourceSubType": HARD_DISK if disk["kind"] != "iso" else DVD_DISK,
                              "HostResource": [disk["path"]]})
            elif disk["kind"] == "dvd_empty" and with_passthrough:
                # A DVD drive with nothing in it: the drive's RASD, and no storage behind it.
                found.append({"ClassName": "Msvm_ResourceAllocationSettingData", "InstanceID": disk_id(owner, disk),
                              "ResourceType": 16, "ResourceSubType": "Microsoft:Hyper-V:Virtual CD/DVD Drive", "HostResource": []})
            elif disk["kind"] == "passthrough" and with_passthrough:
                # Which host disk it names is not documented in a form worth guessing: the path stays as the scenario gives it.
                found.append({"ClassName": "Msvm_ResourceAllocationSettingData", "InstanceID": disk_id(owner, disk),
                              "ResourceType": 17, "ResourceSubType": PHYSICAL_DISK, "HostResource": [disk["path"]]})
        return found

    def _new_reference_point(self, vm: dict, type_value: int, consistency: int, instance_id: str | None = None,
                             disks: list[dict] | None = None) -> dict:
        """A reference point of the VM's disks as they are, or as a checkpoint saw them (disks)."""
        disk_ids, rct_ids, generations = [], [], {}
        for disk in (d for d in (disks if disks is not None else vm["_disks"]) if d["kind"] in VIRTUAL_HARD_DISKS):
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
                return [self.host_system()] + [_public(vm) for vm in self.vms]
            if class_name in SERVICES:
                return [self.service(class_name)]
            if class_name == "Msvm_VirtualSystemReferencePoint":
                return [_public(p) for p in self.reference_points]
            if class_name == "Msvm_VirtualSystemSettingData":
                return ([self.settings(vm) for vm in self.vms] + [_public(c) for c in self.checkpoints]
                        + [self.planned_settings(p) for p in self.planned])
            if class_name == "Msvm_VirtualEthernetSwitch":
                return [_public(s) for s in self.switches]
            if class_name == "Msvm_PlannedComputerSystem":
                return [_public(p) for p in self.planned]
            if class_name in JOB_CLASSES:
                # Every job the host still has (running, or ended less than TimeBeforeRemoval ago).
                return [j for j in (self._job_instance(i, class_name) for i in list(self.jobs)) if j is not None]
            if class_name in ("Msvm_StorageAllocationSettingData", "Msvm_ResourceAllocationSettingData"):
                raise CimError(f"enumerating every {class_name} of the host is not modelled by the simulator")
            return []

    def associators(self, instance: dict, association: str, result_class: str) -> list[dict]:
        """Get-CimAssociatedInstance -Association ... -ResultClassName ..."""
        with self.lock:
            self.log("associators", class_name=instance["ClassName"], association=association, result_class=result_class)
            self._require_class(association)
            self._require_class(result_class)
            if association == "Msvm_ReferencePointOfVirtualSystem" and instance["ClassName"] == "Msvm_ComputerSystem":
                return [_public(p) for p in self.reference_points if p["VirtualSystemIdentifier"] == instance["Name"]]
            if association == "Msvm_SettingsDefineState" and instance["ClassName"] in ("Msvm_PlannedComputerSystem", "Msvm_ComputerSystem"):
                planned, vm = self._planned(instance), self._live_vm(instance)
                found = [self.planned_settings(planned)] if planned else [self.settings(vm)] if vm else []
                return [f for f in found if result_class in self.schema.lineage(f["ClassName"])]
            if association == "Msvm_SystemDevice" and instance["ClassName"] == "Msvm_ComputerSystem":
                vm = self._live_vm(instance)
                if result_class != "Msvm_HeartbeatComponent":
                    raise CimError(f"Msvm_SystemDevice to {result_class}: only the heartbeat component is modelled")
                return self.heartbeat(vm) if vm else []
            if association == "Msvm_VirtualSystemSettingDataComponent" and instance["ClassName"] == "Msvm_VirtualSystemSettingData" \
                    and self._planned_by_setting(instance.get("InstanceID")) is not None:
                resources = self.planned_resources(self._planned_by_setting(instance.get("InstanceID")))
                return [r for r in resources if result_class in self.schema.lineage(r["ClassName"])]
            if association == "Msvm_VirtualSystemSettingDataComponent" and instance["ClassName"] == "Msvm_VirtualSystemSettingData":
                checkpoint = self._checkpoint(instance)
                if checkpoint is not None:
                    drives = self.drives(checkpoint["InstanceID"].split(":", 1)[1], checkpoint["_disks"], with_passthrough=False)
                else:
                    vm = next((v for v in self.vms if f"Microsoft:{v['Name']}" == instance.get("InstanceID")), None)
                    drives = self.drives(vm["Name"], vm["_disks"], with_passthrough=True) if vm else []
                return [d for d in drives if result_class in self.schema.lineage(d["ClassName"])]
            if association == "Msvm_SnapshotOfVirtualSystem" and instance["ClassName"] == "Msvm_ComputerSystem":
                return [_public(c) for c in self.checkpoints if c["VirtualSystemIdentifier"] == instance["Name"]]
            if instance["ClassName"] == "Msvm_StorageJob":
                raise CimError(f"{association} of a Msvm_StorageJob is not modelled by the simulator")
            if association in ("CIM_AffectedJobElement", "Msvm_AffectedJobElement") and instance["ClassName"] == "Msvm_ConcreteJob":
                job = self.jobs.get(instance["InstanceID"])
                if job is None or job.gone(self.clock()):
                    raise CimError("CIM_AffectedJobElement of a job the host has forgotten: what Get-CimAssociatedInstance gives then is not modelled")
                return [_public(a) for a in job.affected if a["ClassName"] == result_class]
            return []

    def get_job(self, instance_id: str) -> dict | None:
        """A job of either class by its id (logged as a get); None when the host no longer has it."""
        with self.lock:
            job = self.jobs.get(instance_id)
            class_name = job.class_name if job is not None else "Msvm_ConcreteJob"
            self.log("get", class_name=class_name)
            return self._job_instance(instance_id, class_name)

    def _job_instance(self, instance_id: str, class_name: str) -> dict | None:
        """The job with this id as an instance of class_name; None when the host no longer has it or it is of the other class
        (WMI finds an instance by key in the class its path names: a Msvm_StorageJob is no Msvm_ConcreteJob)."""
        job = self.jobs.get(instance_id)
        if job is None or job.gone(self.clock()) or job.class_name != class_name:
            return None
        state, percent = job.state(self.clock())
        fail = job.fail or {}
        return {
            "ClassName": job.class_name,
            "InstanceID": job.instance_id,
            "JobState": state,
            "PercentComplete": percent,
            "JobType": job.job_type,
            "Cancellable": job.cancellable,
            "ErrorCode": fail.get("error_code", 32768) if state == 10 else 0,
            "ErrorDescription": self.localize(fail.get("description", "")) if state == 10 else "",
            "Caption": self.localize("Job"),
        }

    def get_instance(self, target: dict) -> dict | None:
        """Get-CimInstance -InputObject: the instance with the target's key values, or None."""
        with self.lock:
            class_name = target["ClassName"]
            self.log("get", class_name=class_name)
            if class_name in JOB_CLASSES:
                return self._job_instance(target.get("InstanceID", ""), class_name)
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
            return [self.settings(vm) for vm in self.vms] + list(self.checkpoints) + [self.planned_settings(p) for p in self.planned]
        if class_name == "Msvm_PlannedComputerSystem":
            return list(self.planned)
        if class_name == "Msvm_VirtualEthernetSwitch":
            return list(self.switches)
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

    def answer(self, method: str, fault: dict) -> str:
        """How a method answers: 'job' (4096, the work in a Msvm_ConcreteJob) or 'sync' (0, done).

        Every method the collection calls documents both; the scenario's answers (and a fault's
        answer) pick one per method, a job by default.
        """
        default = "sync" if method in ANSWERED_AT_ONCE else "job"
        return str(fault.get("answer") or self.scenario.get("answers", {}).get(method) or default)

    def job_instead_of_output(self, method: str, fault: dict) -> dict | None:
        """A method that usually answers at once (ANSWERED_AT_ONCE) answering 4096 instead: a job,
        and out parameters left empty, as its page allows."""
        if self.answer(method, fault) != "job":
            return None
        return self._start_job(method, fault, lambda: [])

    def _start_job(self, method: str, fault: dict, on_complete: Callable[[], list[dict]], product: str | None = None,
                   vm: dict | None = None, on_abort: Callable[[], None] | None = None) -> dict:
        """Does the work of a method: in a job (4096), or at once (0, product in the out parameter product)."""
        settings = {**self.job_defaults.get(method, {}), **fault.get("job", {})}
        if self.answer(method, fault) == "sync":
            if settings.get("fail"):
                raise CimError(f"{method}: a failure of a synchronous answer is a return value, not a job failure (use return_value)")
            made = on_complete()
            self.log("answered_at_once", method=method)
            output: dict[str, Any] = {"ReturnValue": 0}
            if product and made:
                output[product] = made[0]
            return output
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
            states=[(float(at), int(value)) for at, value in settings.get("states", [])] or None,
            final=int(settings.get("final", 7)),
            # On a scaled clock TimeBeforeRemoval stays five real minutes: the controller's gaps
            # (module starts, WinRM) are not scaled, and a host does not forget faster than that.
            vanish_after=float(settings.get("vanish_after", TIME_BEFORE_REMOVAL * self.clock_scale)),
            names_product=bool(settings.get("names_product", True)),
            vm=vm["Name"] if vm else None,
            on_abort=on_abort,
            run=getattr(self.context, "run", ""),
            method=method,
            started_wall=time.time(),
            class_name="Msvm_StorageJob" if method in self.schema.methods("Msvm_ImageManagementService") else "Msvm_ConcreteJob",
        )
        if job.final not in (7, 9, 32768):
            raise CimError(f"{method}: a job ends in 7, 9 or 32768 unless it fails; got final={job.final}")
        self.jobs[job.instance_id] = job
        self.log("job_started", method=method, job_id=job.instance_id)
        return {"ReturnValue": 4096, "Job": {"ClassName": job.class_name, "InstanceID": job.instance_id}}

    def _m_CreateReferencePoint(self, _service: dict, arguments: dict, fault: dict) -> dict:
        vm = arguments["AffectedSystem"]
        live = next((v for v in self.vms if v["Name"] == vm.get("Name")), None)
        if live is None:
            return {"ReturnValue": 4}
        if live["_state"] in ("migrating", "starting"):
            return {"ReturnValue": 5}
        type_parameter = arguments.get("ReferencePointType", 1)
        if type_parameter not in (0, 1):
            return {"ReturnValue": 4}
        if self.busy(live):
            # A second reference point (or checkpoint) of a VM another operation holds: invalid state (issue 13).
            return {"ReturnValue": 32775}
        consistency = int(embedded_property(arguments.get("ReferencePointSettings", ""), "ConsistencyLevel") or 1)
        self.refuse_unmodelled("CreateReferencePoint", live, consistency)

        def complete() -> list[dict]:
            point = self._new_reference_point(live, type_parameter + 1, consistency)
            self.reference_points.append(point)
            self.log("created", instance_id=point["InstanceID"], vm=live["ElementName"])
            return [point]

        return self._start_job("CreateReferencePoint", fault, complete, product="ResultingReferencePoint", vm=live)

    def _m_DestroyReferencePoint(self, _service: dict, arguments: dict, fault: dict) -> dict:
        target = arguments["AffectedReferencePoint"].get("InstanceID")
        if not any(p["InstanceID"] == target for p in self.reference_points):
            return {"ReturnValue": 4}

        def complete() -> list[dict]:
            self.reference_points = [p for p in self.reference_points if p["InstanceID"] != target]
            self.log("destroyed", instance_id=target)
            return []

        return self._start_job("DestroyReferencePoint", fault, complete)

    def _m_RequestStateChange(self, job_instance: dict, arguments: dict, fault: dict) -> dict:
        if job_instance["ClassName"] == "Msvm_ComputerSystem":
            vm = self._live_vm(job_instance)
            return self.start_vm(vm, arguments, fault) if vm else {"ReturnValue": 4}
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

    def _new_checkpoint(self, vm: dict, consistency: int, name: str | None = None, snapshot_type: int = 32768,
                        ignore_non_snapshottable: bool = True) -> dict:
        """A checkpoint of the VM's disks as they are now (pass-through disks are left out, as
        IgnoreNonSnapshottableDisks asks)."""
        del ignore_non_snapshottable  # a checkpoint that keeps a pass-through disk is refused before this
        return {
            "ClassName": "Msvm_VirtualSystemSettingData",
            "InstanceID": f"Microsoft:{_guid().upper()}",
            "ElementName": name or f"{vm['ElementName']} - Backup - ({time.strftime('%m/%d/%Y - %H:%M:%S')})",
            "Caption": self.localize("Virtual Machine Settings"),
            "VirtualSystemIdentifier": vm["Name"],
            "VirtualSystemType": RECOVERY if snapshot_type == 32768 else "Microsoft:Hyper-V:Snapshot:Realized",
            "Version": vm["_version"],
            "CreationTime": datetime.datetime.now(datetime.timezone.utc),
            "_consistency": consistency,
            "_disks": [dict(d, writes=list(d["writes"])) for d in vm["_disks"] if d["kind"] != "passthrough"],
        }

    def busy(self, vm: dict) -> bool:
        """Whether the VM is held: by another product (scenario busy: true, a merge in progress) or by
        a job of ours on it that still runs."""
        if vm.get("_busy"):
            return True
        now = self.clock()
        return any(job.vm == vm["Name"] and job.state(now)[0] < 7 for job in self.jobs.values())

    def refuse_unmodelled(self, method: str, vm: dict, consistency: int | None = None,
                          ignore_non_snapshottable: bool = True) -> None:
        """What Microsoft does not document is not guessed: a call that would need a guess fails loudly."""
        if _version(vm["_version"]) < (6, 2):
            raise CimError(f"{method} on VM {vm['ElementName']} of configuration version {vm['_version']}: RCT and production "
                           "checkpoints need 6.2 or later, and what Hyper-V answers below that is not documented (not modelled)")
        kinds = sorted({d["kind"] for d in vm["_disks"]} & {"vhd", "vhds"})
        if kinds and method != "CreateSnapshot":
            raise CimError(f"{method} on VM {vm['ElementName']} with {'/'.join(kinds)} disks: RCT needs VHDX, and what Hyper-V "
                           "answers for these disks is not documented (not modelled)")
        if not ignore_non_snapshottable and any(d["kind"] == "passthrough" for d in vm["_disks"]):
            raise CimError(f"{method} on VM {vm['ElementName']} with a pass-through disk and IgnoreNonSnapshottableDisks false: "
                           "the error Hyper-V gives is not documented (not modelled)")
        if method == "CreateReferencePoint" and any(d["kind"] == "passthrough" for d in vm["_disks"]):
            raise CimError(f"CreateReferencePoint on VM {vm['ElementName']} with a pass-through disk: not documented (not modelled)")
        if consistency == 1 and vm["_state"] in ("off", "saved", "paused"):
            raise CimError(f"{method} application-consistent on VM {vm['ElementName']}, which is {vm['_state']}: what Hyper-V does "
                           "without a running guest is not documented (not modelled)")

    def _m_CreateSnapshot(self, _service: dict, arguments: dict, fault: dict) -> dict:
        live = self._live_vm(arguments.get("AffectedSystem"))
        if live is None or arguments.get("SnapshotType") not in (2, 3, 32768):
            return {"ReturnValue": 4}
        settings = arguments.get("SnapshotSettings", "")
        consistency = int(embedded_property(settings, "ConsistencyLevel") or 1)
        ignore = (embedded_property(settings, "IgnoreNonSnapshottableDisks") or "false").lower() == "true"
        # A VM in a transitional state or with checkpoints disabled: invalid state (shared/spec hyperv-rct.md).
        if live["_state"] in ("migrating", "starting") or live["_checkpoints"] == "disabled":
            return {"ReturnValue": 5}
        if self.busy(live):
            return {"ReturnValue": 32775}
        self.refuse_unmodelled("CreateSnapshot", live, consistency, ignore)
        if consistency == 1 and not live["_integration_services"] and "fail" not in fault.get("job", {}):
            # Application consistency needs the guest's VSS through integration services.
            fault = {"job": {**fault.get("job", {}), "fail": {
                "error_code": 32768,
                "description": f"Checkpoint operation for '{live['ElementName']}' failed. (Virtual machine ID {live['Name'].upper()})",
                "errors": [f"Checkpoint operation for '{live['ElementName']}' failed. (Virtual machine ID {live['Name'].upper()})",
                           f"Could not create backup checkpoint for virtual machine '{live['ElementName']}': The guest did not answer the "
                           "VSS request (integration services unavailable). (Virtual machine ID " + live["Name"].upper() + ")"]}}}
        snapshot_type = arguments["SnapshotType"]

        def complete() -> list[dict]:
            checkpoint = self._new_checkpoint(live, consistency, snapshot_type=snapshot_type)
            self.checkpoints.append(checkpoint)
            self.log("checkpoint_created", instance_id=checkpoint["InstanceID"], vm=live["ElementName"])
            return [_public(checkpoint)]

        return self._start_job("CreateSnapshot", fault, complete, product="ResultingSnapshot", vm=live)

    def _m_ModifySystemSettings(self, _service: dict, arguments: dict, _fault: dict) -> dict:
        settings = arguments.get("SystemSettings", "")
        planned = self._planned_by_setting(embedded_property(settings, "InstanceID"))
        target = planned or self._checkpoint({"InstanceID": embedded_property(settings, "InstanceID")})
        if target is None:
            return {"ReturnValue": 4}
        target["ElementName"] = embedded_property(settings, "ElementName") or ""
        if planned is not None:
            # Where the VM's configuration, checkpoints, paging file and guest state go (the data roots).
            planned["_data_root"] = embedded_property(settings, "ConfigurationDataRoot") or planned["_data_root"]
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
        self.refuse_unmodelled("ConvertToReferencePoint", live)

        def complete() -> list[dict]:
            point = self._new_reference_point(live, 2, target["_consistency"], disks=target["_disks"])
            self.reference_points.append(point)
            self.checkpoints = [c for c in self.checkpoints if c is not target]
            self.log("converted", checkpoint=target["InstanceID"], instance_id=point["InstanceID"])
            return [point]

        return self._start_job("ConvertToReferencePoint", fault, complete, product="ResultingReferencePoint", vm=live)

    def _m_ExportSystemDefinition(self, _service: dict, arguments: dict, fault: dict) -> dict:
        live = self._live_vm(arguments.get("ComputerSystem"))
        settings = arguments.get("ExportSettingData", "")
        checkpoint = self._checkpoint({"InstanceID": _path_key(embedded_property(settings, "SnapshotVirtualSystem"))})
        base_id = _path_key(embedded_property(settings, "DifferentialBackupBase"))
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
            for disk in (d for d in checkpoint["_disks"] if d["kind"] in VIRTUAL_HARD_DISKS):
                name = disk["path"].rsplit(chr(92), 1)[-1]
                since = base["_generations"].get(disk["device"]) if base else None
                target = os.path.join(folder, "Virtual Hard Disks", name)
                if since is None:
                    # A whole copy of the disk as the checkpoint holds it; a dynamic disk's file is larger than its data.
                    vhd.write_file(target, vhd.VhdFile("dynamic", disk["size"], vhd.disk_segments(disk["device"], disk["writes"], disk["generation"])),
                                   size=disk["file_size"])
                else:
                    # Only what changed since the base, over a parent the restore has to name (SetVirtualHardDiskSettingData).
                    changed = vhd.changed_segments(disk["device"], disk["writes"], since[1], disk["generation"])
                    vhd.write_file(target, vhd.VhdFile("differencing", disk["size"], changed, parent=disk["path"]))
            vmcx.write_config(os.path.join(folder, "Virtual Machines", f"{live['Name'].upper()}.vmcx"), self.vm_config(live))
            self.log("exported", vm=live["ElementName"], directory=directory, differential=base is not None)
            return []

        def abort() -> None:
            # An export that fails or is cancelled half-way leaves what it had written: the
            # configuration, and part of the first disk (Hyper-V does not clean up after it).
            folder = os.path.join(directory, live["ElementName"])
            _sparse_file(os.path.join(folder, "Virtual Machines", f"{live['Name'].upper()}.vmcx"), vmcx.SIZE)
            disks = [d for d in checkpoint["_disks"] if d["kind"] in VIRTUAL_HARD_DISKS]
            if disks:
                _sparse_file(os.path.join(folder, "Virtual Hard Disks", disks[0]["path"].rsplit(chr(92), 1)[-1]), disks[0]["file_size"] // 2)
            self.log("export_aborted", vm=live["ElementName"], directory=directory)

        return self._start_job("ExportSystemDefinition", fault, complete, vm=live, on_abort=abort)

    def _disk_by_path(self, path: str) -> tuple[dict, dict] | tuple[None, None]:
        for vm in self.vms:
            for disk in vm["_disks"]:
                if disk["path"].lower() == (path or "").lower():
                    return vm, disk
        return None, None

    def _m_GetVirtualHardDiskSettingData(self, _service: dict, arguments: dict, fault: dict) -> dict:
        _vm, disk = self._disk_by_path(arguments.get("Path"))
        if disk is None:
            # A file no VM uses (a copied backup's disk): its own header says what it is.
            found = self.file_setting_data(arguments.get("Path") or "")
            if found is None:
                return {"ReturnValue": 32779}
            as_job = self.job_instead_of_output("GetVirtualHardDiskSettingData", fault)
            if as_job is not None:
                return as_job
            return {"ReturnValue": 0, "SettingData": (
                '<INSTANCE CLASSNAME="Msvm_VirtualHardDiskSettingData">'
                + "".join(f'<PROPERTY NAME="{name}" TYPE="{kind}"><VALUE>{_xml_escape(str(found[name]))}</VALUE></PROPERTY>'
                          for name, kind in (("Path", "string"), ("Type", "uint16"), ("Format", "uint16"), ("MaxInternalSize", "uint64"),
                                             ("ParentPath", "string")))
                + "</INSTANCE>")}
        as_job = self.job_instead_of_output("GetVirtualHardDiskSettingData", fault)
        if as_job is not None:
            return as_job
        return {"ReturnValue": 0, "SettingData": (
            '<INSTANCE CLASSNAME="Msvm_VirtualHardDiskSettingData">'
            f'<PROPERTY NAME="Path" TYPE="string"><VALUE>{_xml_escape(disk["path"])}</VALUE></PROPERTY>'
            f'<PROPERTY NAME="MaxInternalSize" TYPE="uint64"><VALUE>{disk["size"]}</VALUE></PROPERTY>'
            '<PROPERTY NAME="Format" TYPE="uint16"><VALUE>3</VALUE></PROPERTY></INSTANCE>')}

    def _m_GetVirtualHardDiskState(self, _service: dict, arguments: dict, fault: dict) -> dict:
        """FileSize: what the disk's file holds (file_gb), which is what a full export copies."""
        _vm, disk = self._disk_by_path(arguments.get("Path"))
        if disk is None:
            return {"ReturnValue": 32779}
        as_job = self.job_instead_of_output("GetVirtualHardDiskState", fault)
        if as_job is not None:
            return as_job
        return {"ReturnValue": 0, "State": (
            '<INSTANCE CLASSNAME="Msvm_VirtualHardDiskState">'
            f'<PROPERTY NAME="FileSize" TYPE="uint64"><VALUE>{disk["file_size"]}</VALUE></PROPERTY>'
            '<PROPERTY NAME="InUse" TYPE="boolean"><VALUE>TRUE</VALUE></PROPERTY></INSTANCE>')}

    def _m_GetVirtualDiskChanges(self, _service: dict, arguments: dict, fault: dict) -> dict:
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
        if disk["kind"] == "vhds":
            raise CimError("GetVirtualDiskChanges of a VHD Set: Microsoft documents it through TargetSnapshotId (VHD Set "
                           "snapshots), which the simulator does not model")
        if tracking != disk["tracking_id"]:
            return {"ReturnValue": 32768}  # 0xC03A0029: the change tracking identifier is not valid
        as_job = self.job_instead_of_output("GetVirtualDiskChanges", fault)
        if as_job is not None:
            return as_job
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
        # The merged written ranges, cut to the window this call processed.
        merged = [(max(start, offset), min(stop, window_end)) for start, stop in vhd.written_ranges(disk["writes"], since, upto)
                  if max(start, offset) < min(stop, window_end)]
        return {"ReturnValue": 0, "ProcessedByteLength": processed,
                "ChangedByteOffsets": [s for s, _e in merged], "ChangedByteLengths": [e - s for s, e in merged]}

    # ------------------------------------------------------------------ what happens to a VM between backups

    def write(self, vm_name: str, disk: int, offset: int, length: int) -> None:
        """The guest writes to a disk: RCT records the range, and the disk holds the write's own bytes (sim/vhd.py)."""
        if length > MAX_WRITE:
            raise CimError(f"a write of {length} bytes: the simulator keeps each write's bytes in memory, up to {MAX_WRITE} bytes a write")
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

    def disk_hashes(self, vm_name: str) -> list[str]:
        """The hash of the bytes each virtual hard disk of a VM holds now (vhd.content_hash), in the VM's order."""
        with self.lock:
            return [vhd.content_hash(d["size"], vhd.disk_segments(d["device"], d["writes"], d["generation"]))
                    for d in self._vm_by_name(vm_name)["_disks"] if d["kind"] in VIRTUAL_HARD_DISKS]

    def add_disk(self, vm_name: str, path: str, size_gb: float) -> None:
        with self.lock:
            vm = self._vm_by_name(vm_name)
            vm["_disks"].append(self._new_disk(len(vm["_disks"]), {"path": path, "size_gb": size_gb}))

    def _m_GetErrorEx(self, job_instance: dict, _arguments: dict, _fault: dict) -> dict:
        job = self.jobs.get(job_instance["InstanceID"])
        if job is not None and not job.fail and self.job_errors.get(job.instance_id):
            return {"ReturnValue": 0, "Errors": [_msvm_error(t) for t in self.job_errors[job.instance_id]]}
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

    def timeline(self) -> list[dict]:
        """Every job as the benchmark times it: the run that started it, and its start and end in wall-clock seconds."""
        with self.lock:
            return [{"run": job.run, "method": job.method, "vm": job.vm, "started": job.started_wall,
                     "ended": None if job.never_ends else job.started_wall + job.duration / self.clock_scale}
                    for job in self.jobs.values()]

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "vms": [{"name": v["ElementName"], "id": v["Name"], "state": v["_state"], "nics": v.get("_nics", []), "data_root": v.get("_data_root"),
                         "disks": [d.get("_file", d["path"]) for d in v["_disks"]], "restored_from": v.get("_restored_from")} for v in self.vms],
                "planned": [{"name": p["ElementName"], "id": p["Name"]} for p in self.planned],
                "reference_points": [_public(p) for p in self.reference_points],
                "checkpoints": [_public(c) for c in self.checkpoints],
                "jobs": {k: self.get_job(k) for k in list(self.jobs)},
            }


def _scaled(clock: Callable[[], float], scale: float) -> Callable[[], float]:
    """A clock that runs scale times faster than clock, from now on."""
    origin = clock()
    return lambda: origin + (clock() - origin) * scale


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


def _msvm_error(message: str) -> str:
    return ('<INSTANCE CLASSNAME="Msvm_Error"><PROPERTY NAME="Message" TYPE="string"><VALUE>'
            + _xml_escape(message) + "</VALUE></PROPERTY></INSTANCE>")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
