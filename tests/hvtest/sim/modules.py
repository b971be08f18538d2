"""Python renderings of the collection's PowerShell modules, run by the endpoint.

One function per module, written to follow its .ps1 line by line (same decisions, same
messages, same Hyper-V calls through hvutils). `run_module` plays Ansible.Basic's part:
arguments validated from the module's own $spec, check mode, diff, warnings, and a result
that may hold only keys the module's RETURN documents.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable
from typing import Any

from .. import collection, pscheck
from . import argspec
from .host import SimHost
from .hvutils import Hv, HvError, StepExit, get_step_vm, invoke_vm_batch

COMMON_KEYS = frozenset({"changed", "failed", "msg", "warnings", "deprecations", "diff", "invocation", "exception"})


class _Exit(StepExit):
    """ExitJson / FailJson: stops the module like Ansible.Basic's exit (or, of a stand-in, one VM's step)."""


class UndocumentedKey(AssertionError):
    """A rendering returned a key its module does not document: rendering and docs drifted."""


class Module:
    """The part of Ansible.Basic.AnsibleModule the modules use."""

    def __init__(self, name: str, params: dict, check_mode: bool, diff: bool) -> None:
        self.name = name
        self.params = params
        self.check_mode = check_mode
        self.diff_mode = diff
        self.result: dict[str, Any] = {"changed": False}
        self.diff: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.failed = False

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def exit_json(self) -> None:
        raise _Exit()

    def fail_json(self, message: str) -> None:
        self.failed = True
        self.result["msg"] = message
        raise _Exit()

    def output(self) -> dict:
        result = dict(self.result)
        result["failed"] = self.failed
        result["invocation"] = {"module_args": self.params}
        if self.warnings:
            result["warnings"] = self.warnings
        if self.diff_mode and self.diff:
            result["diff"] = self.diff
        return result


@functools.lru_cache(maxsize=None)
def module_spec(name: str) -> dict:
    return pscheck.module_spec(collection.ROOT / "plugins" / "modules" / f"{name}.ps1")


@functools.lru_cache(maxsize=None)
def documented_keys(name: str) -> frozenset[str]:
    return frozenset(collection.module_docs(name)["return"])


def run_module(name: str, args: dict, host: SimHost) -> dict:
    """Runs a module rendering as the PowerShell module would run on the host."""
    implementation = RENDERINGS.get(name)
    if implementation is None:
        return {"failed": True, "changed": False,
                "msg": f"The Hyper-V simulator has no rendering of module '{name}'; it runs hyperv.backup modules only."}
    try:
        params = argspec.validate(name, module_spec(name), args)
    except argspec.ArgumentError as error:
        return {"failed": True, "changed": False, "msg": str(error)}
    spec = module_spec(name)
    check_mode = bool(args.get("_ansible_check_mode", False))
    if check_mode and not spec.get("supports_check_mode"):
        return {"skipped": True, "changed": False, "msg": "remote module does not support check mode"}
    module = Module(name, params, check_mode, bool(args.get("_ansible_diff", False)))
    try:
        implementation(module, Hv(host))
    except _Exit:
        pass
    except HvError as error:
        module.failed = True
        module.result["msg"] = f"Unhandled error in {name}: {error}"
    result = module.output()
    extra = set(result) - COMMON_KEYS - documented_keys(name)
    for element in result.get("results") or []:
        # Each VM's entry holds the keys the module returns for one VM.
        extra |= set(element) - COMMON_KEYS - documented_keys(name)
    if extra:
        raise UndocumentedKey(f"{name} returned {sorted(extra)}, which its RETURN does not document")
    return result


# ---------------------------------------------------------------------- reference_point.ps1

def reference_point_step(module: Module, hv: Hv) -> None:  # noqa: C901  (follows the .ps1 step by step)
    """Invoke-ReferencePointStep"""
    p = module.params
    state, label, instance_id, wait_timeout = p["state"], p["name"], p["instance_id"], p["wait_timeout"]
    catalog_path = hv.resolve_catalog_path(p["catalog_path"])
    r = module.result
    r.update({"changed": False, "pending": False, "vm": {"name": p["vm"], "id": p["vm_id"]}, "reference_point": None, "job": None})
    module.diff.update({"before": {}, "after": {}})

    if wait_timeout < 0:
        module.fail_json(f"wait_timeout must be 0 or more seconds, got {wait_timeout}.")
    if not label and not instance_id:
        module.fail_json(f"Reference point of VM '{p['vm'] or ''}{p['vm_id'] or ''}' needs name or instance_id, for the task or for the VM in vms.")
    if label and instance_id:
        module.fail_json("name and instance_id are mutually exclusive: name selects by catalog name, instance_id by InstanceID.")
    if state == "present" and instance_id:
        module.fail_json("instance_id selects a reference point to remove (state=absent); give name with state=present.")

    def entry_view(entry: dict | None) -> dict:
        return dict(entry) if entry else {}

    def update_catalog(change: Callable[[dict], Any]) -> Any:
        lock = hv.lock_catalog(catalog_path)
        try:
            catalog_ = hv.read_catalog(catalog_path)
            output_ = change(catalog_)
            hv.save_catalog(catalog_path, catalog_)
            return output_
        finally:
            lock.release()

    def created_point(job: dict | None) -> dict | None:
        if job is not None and hv.job_result(job)["succeeded"]:
            made_ = hv.job_product(job, "Msvm_VirtualSystemReferencePoint")
            return made_[0] if made_ else None
        return None

    def complete_entry(entry: dict, job: dict | None) -> dict | None:
        made_ = created_point(job)

        def change(catalog_: dict) -> None:
            if made_ is None:
                hv.remove_entries(catalog_, entry["vm_id"], entry["name"])
            else:
                entry["status"] = "ready"
                entry["instance_id"] = made_["InstanceID"]
                hv.set_entry(catalog_, entry)

        update_catalog(change)
        return made_

    def set_point(point: dict, entry: dict | None) -> None:
        r["reference_point"] = hv.reference_point_result(point, identity, entry)

    def set_job(job: dict | None, job_id: str, action_: str) -> None:
        if job is None:
            r["job"] = {"id": job_id, "state": "gone"}
            return
        job_result = hv.job_result(job)
        r["job"] = job_result
        r["pending"] = not job_result["finished"]
        if job_result["finished"] and not job_result["succeeded"]:
            module.fail_json(hv.format_job_failure(job_result, action_))

    try:
        vm = get_step_vm(module, hv)
        identity = hv.vm_identity(vm)
        r["vm"] = identity
        existing = hv.reference_points(vm)
        catalog = hv.read_catalog(catalog_path)
    except HvError as error:
        module.fail_json(f"Reference point of VM '{r['vm']['name'] or ''}{r['vm']['id'] or ''}': {error}")
    action = f"Reference point '{label}' of VM '{identity['name']}'"

    if state == "present":
        entries = hv.find_entries(catalog, vm_id=identity["id"], name=label)
        entry = entries[0] if entries else None
        module.diff["before"] = entry_view(entry)

        if entry is not None and entry["status"] == "ready":
            found = hv.select_reference_point(existing, entry["instance_id"])
            if found is not None:
                set_point(found, entry)
                module.diff["after"] = entry_view(entry)
                module.exit_json()
            module.warn(f"{action} was recorded as {entry['instance_id']}, which no longer exists on the host "
                        "(removed outside this collection); a new one is made.")
        elif entry is not None and entry.get("job_id"):
            follow_for = 0 if module.check_mode else wait_timeout
            job = hv.wait_job(entry["job_id"], follow_for)
            if job is not None and not hv.job_finished(job):
                r["changed"] = True
                module.diff["after"] = entry_view(entry)
                set_job(job, entry["job_id"], f"Creating {action}")
                module.exit_json()
            made = created_point(job)
            if made is not None:
                r["changed"] = True
                if not module.check_mode:
                    complete_entry(entry, job)
                set_point(made, entry)
                set_job(job, entry["job_id"], f"Creating {action}")
                module.diff["after"] = entry_view(entry)
                module.exit_json()
            if p.get("job_id") and p["job_id"] == entry["job_id"] and not module.check_mode:
                complete_entry(entry, job)
                set_job(job, entry["job_id"], f"Creating {action}")
            module.warn(f"{action} was being created by job {entry['job_id']}, which ended without a reference point; a new one is made.")

        r["changed"] = True
        new_entry = hv.new_entry(identity, label, p["type"], p["consistency"], p["run_id"])
        module.diff["after"] = entry_view(new_entry)
        if module.check_mode:
            module.exit_json()

        def start(catalog_: dict) -> dict:
            current = hv.find_entries(catalog_, vm_id=identity["id"], name=label)
            seen_stamp = entry["created"] if entry is not None else None
            current_stamp = current[0]["created"] if current else None
            if current_stamp != seen_stamp:
                raise HvError(f"another run recorded '{label}' for this VM while this one was deciding; rerun the task.")
            started_ = hv.new_reference_point(vm, p["type"], p["consistency"])
            if started_.get("Job") is not None:
                new_entry["job_id"] = started_["Job"]["InstanceID"]
            else:
                new_entry["status"] = "ready"
                new_entry["instance_id"] = started_["ResultingReferencePoint"]["InstanceID"]
            hv.set_entry(catalog_, new_entry)
            return started_

        try:
            output = update_catalog(start)
        except HvError as error:
            module.fail_json(f"Creating {action} failed: {error}")

        if new_entry["status"] == "ready":
            made = hv.select_reference_point(hv.reference_points(vm), new_entry["instance_id"])
        else:
            job = hv.wait_job(new_entry["job_id"], wait_timeout)
            if job is not None and not hv.job_finished(job):
                set_job(job, new_entry["job_id"], f"Creating {action}")
                module.diff["after"] = entry_view(new_entry)
                module.exit_json()
            made = complete_entry(new_entry, job)
            set_job(job, new_entry["job_id"], f"Creating {action}")
        if made is None:
            module.fail_json(f"Creating {action} returned {output['ReturnValue']} but the new reference point cannot be found on the host; "
                             "run reference_point_info to check.")
        set_point(made, new_entry)
        module.diff["after"] = entry_view(new_entry)
        module.exit_json()

    # state=absent
    if instance_id:
        entries = hv.find_entries(catalog, instance_id=instance_id)
        entry = entries[0] if entries else None
        target = hv.select_reference_point(existing, instance_id)
        action = f"Reference point {instance_id} of VM '{identity['name']}'"
        if target is not None and entry is None and not p["allow_foreign"]:
            module.fail_json(f"{action} was not made by this collection (it is not in the catalog '{catalog_path}'); another backup product "
                             "may depend on it. Set allow_foreign=true to remove it anyway.")
    else:
        entries = hv.find_entries(catalog, vm_id=identity["id"], name=label)
        entry = entries[0] if entries else None
        target = hv.select_reference_point(existing, entry["instance_id"]) if entry is not None else None
    module.diff["before"] = entry_view(entry)

    if entry is not None and entry["status"] == "removing" and entry.get("job_id"):
        follow_for = 0 if module.check_mode else wait_timeout
        job = hv.wait_job(entry["job_id"], follow_for)
        if job is not None and not hv.job_finished(job):
            r["changed"] = True
            set_job(job, entry["job_id"], f"Removing {action}")
            module.exit_json()
        if job is not None and p.get("job_id") == entry["job_id"] and not hv.job_result(job)["succeeded"] and not module.check_mode:
            failed_job_id = entry["job_id"]
            entry["status"] = "ready"
            entry["job_id"] = None
            update_catalog(lambda catalog_: hv.set_entry(catalog_, entry))
            set_job(job, failed_job_id, f"Removing {action}")
        target = hv.select_reference_point(hv.reference_points(vm), entry["instance_id"])
    if entry is None and p.get("job_id"):
        job = hv.get_job(p["job_id"])
        if job is not None and hv.job_finished(job) and not hv.job_result(job)["succeeded"]:
            set_job(job, p["job_id"], f"Removing {action}")
    if entry is not None and entry["status"] == "pending":
        job = hv.get_job(entry["job_id"])
        if job is not None and not hv.job_finished(job):
            module.fail_json(f"{action} is still being created by job {entry['job_id']}; wait for it (hyperv.backup.job_info with wait=true) "
                             "before removing it.")
        target = created_point(job)
        if not module.check_mode:
            complete_entry(entry, job)
    if target is None and entry is None:
        module.exit_json()

    r["changed"] = True
    if module.check_mode:
        module.exit_json()

    try:
        if target is not None:
            output = hv.remove_reference_point(target)
            if output.get("Job") is not None:
                job_id = output["Job"]["InstanceID"]
                if entry is not None:
                    entry["status"] = "removing"
                    entry["job_id"] = job_id
                    update_catalog(lambda catalog_: hv.set_entry(catalog_, entry))
                job = hv.wait_job(job_id, wait_timeout)
                set_job(job, job_id, f"Removing {action}")
                if r["pending"]:
                    module.exit_json()
        if entry is not None:
            update_catalog(lambda catalog_: hv.remove_entries(catalog_, entry["vm_id"], entry["name"]))
    except HvError as error:
        module.fail_json(f"Removing {action} failed: {error}")
    module.exit_json()


def reference_point(module: Module, hv: Hv) -> None:
    invoke_vm_batch(module, reference_point_step, hv, distinct_by=("name", "instance_id"))


# ---------------------------------------------------------------------- reference_point_info.ps1

def reference_point_info(module: Module, hv: Hv) -> None:
    p = module.params
    catalog_path = hv.resolve_catalog_path(p["catalog_path"])
    r = module.result
    r.update({"changed": False, "vms": [], "reference_points": [], "stale_entries": [], "catalog_path": catalog_path})
    try:
        all_vms = hv.get_vm_list()
        selected = [hv.select_vm(all_vms, name=n) for n in p["vm"]]
        selected += [hv.select_vm(all_vms, vm_id=i) for i in p["vm_id"]]
        if not selected:
            selected = list(all_vms)
        unique = {vm["Name"]: vm for vm in selected}
        vms = [unique[k] for k in sorted(unique)]
        catalog = hv.read_catalog(catalog_path)
    except HvError as error:
        module.fail_json(f"Listing reference points failed: {error}")

    points, stale, identities = [], [], []
    for vm in vms:
        identity = hv.vm_identity(vm)
        identities.append(identity)
        try:
            existing = hv.reference_points(vm)
        except HvError as error:
            module.fail_json(f"Listing reference points of VM '{identity['name']}' ({identity['id']}) failed: {error}")
        ids = {pt["InstanceID"] for pt in existing}
        known = {}
        for entry in catalog["entries"]:
            if entry["vm_id"] == identity["id"]:
                if entry.get("instance_id") and entry["instance_id"] in ids:
                    known[entry["instance_id"]] = entry
                else:
                    stale.append(entry)
        for point in existing:
            points.append(hv.reference_point_result(point, identity, known.get(point["InstanceID"])))
    r["vms"] = identities
    r["reference_points"] = points
    r["stale_entries"] = stale
    module.exit_json()


# ---------------------------------------------------------------------- job_info.ps1

def job_info(module: Module, hv: Hv) -> None:
    p = module.params
    job_id = p["job_id"]
    r = module.result
    r.update({"changed": False, "exists": False, "job": {"id": job_id, "state": "gone"}})
    if p["wait_timeout"] < 0:
        module.fail_json(f"wait_timeout must be 0 or more seconds, got {p['wait_timeout']}.")
    try:
        job = hv.wait_job(job_id, p["wait_timeout"])
    except HvError as error:
        module.fail_json(f"Reading Hyper-V job {job_id} failed: {error}")
    if job is None:
        module.exit_json()
    r["exists"] = True
    if p["cancel"] and not hv.job_finished(job):
        r["changed"] = True
        if not module.check_mode:
            try:
                hv.stop_job(job)
                job = hv.wait_job(job_id, 5)
            except HvError as error:
                module.fail_json(f"Cancelling Hyper-V job {job_id} failed: {error}")
    if job is not None:
        r["job"] = hv.job_result(job)
    module.exit_json()


# ---------------------------------------------------------------------- recovery_checkpoint.ps1

def recovery_checkpoint_step(module: Module, hv: Hv) -> None:  # noqa: C901  (follows the .ps1 step by step)
    """Invoke-CheckpointStep"""
    p = module.params
    state, label, wait_timeout = p["state"], p["name"], p["wait_timeout"]
    point_name = p["reference_point_name"] or label
    catalog_path = hv.resolve_catalog_path(p["catalog_path"])
    r = module.result
    r.update({"changed": False, "pending": False, "vm": {"name": p["vm"], "id": p["vm_id"]}, "checkpoint": None, "consistency": None,
              "reference_point": None, "removed_leftovers": [], "checkpoints": [], "job": None})
    if wait_timeout < 0:
        module.fail_json(f"wait_timeout must be 0 or more seconds, got {wait_timeout}.")

    def wait_job(job_id: str, action_: str, allow_failure: bool = False) -> dict | None:
        job = hv.wait_job(job_id, wait_timeout)
        if job is None:
            r["job"] = {"id": job_id, "state": "gone"}
            return None
        job_result = hv.job_result(job)
        r["job"] = job_result
        if not job_result["finished"]:
            r["pending"] = True
            module.exit_json()
        if not job_result["succeeded"] and not allow_failure:
            module.fail_json(hv.format_job_failure(job_result, action_))
        return job

    def set_checkpoint_list() -> None:
        r["checkpoints"] = [hv.checkpoint_result(c) for c in hv.recovery_checkpoints(vm)]

    try:
        vm = get_step_vm(module, hv)
        identity = hv.vm_identity(vm)
        r["vm"] = identity
        existing = hv.recovery_checkpoints(vm)
    except HvError as error:
        module.fail_json(f"Recovery checkpoint '{label}' of VM '{r['vm']['name'] or ''}{r['vm']['id'] or ''}': {error}")
    action = f"Recovery checkpoint '{label}' of VM '{identity['name']}'"
    mine = hv.select_checkpoint(existing, label)

    try:
        if state == "present":
            consistency = p["consistency"]
            job = None
            if mine is None and p["job_id"]:
                job = wait_job(p["job_id"], f"Creating {action}", allow_failure=True)
                if job is not None and hv.job_result(job)["succeeded"]:
                    made = hv.job_product(job, "Msvm_VirtualSystemSettingData")
                    mine = made[0] if made else None
                    if mine is not None:
                        r["changed"] = True
                        r["consistency"] = consistency
                        hv.set_checkpoint_tag(mine, label)
                    job = None
            if mine is not None:
                r["checkpoint"] = hv.checkpoint_result(mine)
                set_checkpoint_list()
                module.exit_json()

            r["changed"] = True
            r["consistency"] = consistency
            if job is None:
                leftovers = [c for c in existing if hv.checkpoint_owned(c)]
                foreign = [c for c in existing if not hv.checkpoint_owned(c)]
                for other in foreign:
                    module.warn(f"VM '{identity['name']}' has a recovery checkpoint '{other['ElementName']}' ({other['InstanceID']}) made by other "
                                "software; it is left alone.")
                if module.check_mode:
                    module.exit_json()
                if p["cleanup_leftovers"]:
                    for leftover in leftovers:
                        output = hv.remove_recovery_checkpoint(leftover)
                        r["removed_leftovers"].append(hv.checkpoint_result(leftover))
                        if output.get("Job") is not None:
                            wait_job(output["Job"]["InstanceID"],
                                     f"Removing leftover recovery checkpoint '{leftover['ElementName']}' of VM '{identity['name']}'")
                output = hv.new_recovery_checkpoint(vm, consistency)
                job = wait_job(output["Job"]["InstanceID"], f"Creating {action}", allow_failure=True)
            if job is not None and not hv.job_result(job)["succeeded"]:
                failure = hv.format_job_failure(hv.job_result(job), f"Creating {action}")
                if consistency != "application" or not p["crash_fallback"]:
                    module.fail_json(failure)
                module.warn(f"{failure} Falling back to a crash-consistent checkpoint (crash_fallback=true).")
                consistency = "crash"
                r["consistency"] = consistency
                output = hv.new_recovery_checkpoint(vm, consistency)
                job = wait_job(output["Job"]["InstanceID"], f"Creating {action} (crash consistent)")
            made = hv.job_product(job, "Msvm_VirtualSystemSettingData") if job is not None else []
            if not made:
                module.fail_json(f"Creating {action} finished but Hyper-V reported no checkpoint; check the VM in Hyper-V Manager.")
            hv.set_checkpoint_tag(made[0], label)
            r["checkpoint"] = hv.checkpoint_result(made[0])
            set_checkpoint_list()
            module.exit_json()

        if state == "absent":
            if mine is not None:
                r["changed"] = True
                if not module.check_mode:
                    output = hv.remove_recovery_checkpoint(mine)
                    if output.get("Job") is not None:
                        wait_job(output["Job"]["InstanceID"], f"Removing {action}")
            set_checkpoint_list()
            module.exit_json()

        lock = None if module.check_mode else hv.lock_catalog(catalog_path)
        try:
            catalog = hv.read_catalog(catalog_path)
            entries = hv.find_entries(catalog, vm_id=identity["id"], name=point_name)
            entry = entries[0] if entries else None
            points = hv.reference_points(vm)
            point = None
            if entry is not None:
                point = hv.select_reference_point(points, entry.get("instance_id"))
            resume_job_id = p["job_id"]
            if not resume_job_id and entry is not None and entry["status"] == "pending":
                resume_job_id = entry["job_id"]
            if point is None and mine is None and resume_job_id:
                job = wait_job(resume_job_id, f"Converting {action}")
                if job is not None:
                    made = hv.job_product(job, "Msvm_VirtualSystemReferencePoint")
                    point = made[0] if made else None
                r["changed"] = True
            elif point is None:
                if mine is None:
                    module.fail_json(f"{action} does not exist, so it cannot be converted to reference point '{point_name}'; "
                                     "create it first (state=present).")
                r["changed"] = True
                if module.check_mode:
                    module.exit_json()
                entry = hv.new_entry(identity, point_name, "rct", p["consistency"], p["run_id"], p["mode"] or "", p["base"] or "")
                output = hv.convert_recovery_checkpoint(mine)
                entry["job_id"] = output["Job"]["InstanceID"]
                hv.set_entry(catalog, entry)
                hv.save_catalog(catalog_path, catalog)
                job = wait_job(output["Job"]["InstanceID"], f"Converting {action}")
                made = hv.job_product(job, "Msvm_VirtualSystemReferencePoint") if job is not None else []
                point = made[0] if made else None
            if point is None:
                module.fail_json(f"Converting {action} finished but Hyper-V reported no reference point; run reference_point_info to check.")
            if r["changed"]:
                if entry is None:
                    entry = hv.new_entry(identity, point_name, "rct", p["consistency"], p["run_id"], p["mode"] or "", p["base"] or "")
                entry["status"] = "ready"
                entry["instance_id"] = point["InstanceID"]
                hv.set_entry(catalog, entry)
                hv.save_catalog(catalog_path, catalog)
            r["reference_point"] = hv.reference_point_result(point, identity, entry)
        finally:
            if lock is not None:
                lock.release()
        set_checkpoint_list()
    except HvError as error:
        module.fail_json(f"{action} failed: {error}")
    module.exit_json()


def recovery_checkpoint(module: Module, hv: Hv) -> None:
    invoke_vm_batch(module, recovery_checkpoint_step, hv, ("consistency",), ("removed_leftovers",))


# ---------------------------------------------------------------------- vm_export.ps1

def vm_export_step(module: Module, hv: Hv) -> None:  # noqa: C901  (follows the .ps1 step by step)
    """Invoke-ExportStep"""
    p = module.params
    label, destination, base_name, wait_timeout = p["checkpoint"], p["destination"], p["base"], p["wait_timeout"]
    catalog_path = hv.resolve_catalog_path(p["catalog_path"])
    r = module.result
    r.update({"changed": False, "pending": False, "vm": {"name": p["vm"], "id": p["vm_id"]}, "destination": destination,
              "mode": "differential" if base_name else "full", "base": base_name, "full_reason": None, "files": [], "bytes": 0, "job": None})
    if wait_timeout < 0:
        module.fail_json(f"wait_timeout must be 0 or more seconds, got {wait_timeout}.")
    if not destination:
        module.fail_json(f"Export of VM '{p['vm'] or ''}{p['vm_id'] or ''}' needs a destination: set destination for the task or for the VM in vms.")

    def set_export_result(marker: dict) -> None:
        r["mode"], r["base"], r["full_reason"] = marker["mode"], marker["base"], marker["full_reason"]
        r["files"], r["bytes"] = list(marker["files"]), int(marker["bytes"])

    try:
        vm = get_step_vm(module, hv)
        identity = hv.vm_identity(vm)
        r["vm"] = identity
    except HvError as error:
        module.fail_json(f"Export of VM '{r['vm']['name'] or ''}{r['vm']['id'] or ''}': {error}")
    action = f"Export of VM '{identity['name']}' to '{destination}'"

    try:
        marker = hv.read_export_marker(destination)
        if marker is not None:
            if marker["vm_id"] != identity["id"] or marker["checkpoint"] != label:
                module.fail_json(f"{action} refused: the destination holds a complete export of VM '{marker['vm_name']}' checkpoint "
                                 f"'{marker['checkpoint']}'. Choose another destination.")
            set_export_result(marker)
            module.exit_json()

        partial = hv.export_files(destination)
        if partial and not p["job_id"]:
            if not p["overwrite_partial"]:
                module.fail_json(f"{action} refused: the destination holds a partial export ({len(partial)} files, no completion marker), "
                                 "probably from a run that failed. Set overwrite_partial=true to remove it and export again.")
            module.warn(f"{action} removes a partial export ({len(partial)} files) before exporting again.")

        checkpoint = hv.select_checkpoint(hv.recovery_checkpoints(vm), label)
        if checkpoint is None:
            module.fail_json(f"{action} needs the recovery checkpoint '{label}', which VM '{identity['name']}' does not have; create it with "
                             "hyperv.backup.recovery_checkpoint first.")
        base_point = None
        why_full = None
        if p["full_reason"]:
            why_full = p["full_reason"]
        elif base_name:
            catalog = hv.read_catalog(catalog_path)
            entries = hv.find_entries(catalog, vm_id=identity["id"], name=base_name)
            entry = entries[0] if entries else None
            if entry is not None:
                base_point = hv.select_reference_point(hv.reference_points(vm), entry.get("instance_id"))
            if base_point is None:
                why_full = f"the base reference point '{base_name}' no longer exists"
            else:
                before = sorted(hv.disk_device_part(d) for d in base_point["VirtualDiskIdentifiers"])
                now = hv.checkpoint_disks(checkpoint)
                added = [d for d in now if d not in before]
                removed = [d for d in before if d not in now]
                if added or removed:
                    why_full = f"the VM's disk set changed since '{base_name}' ({len(added)} added, {len(removed)} removed)"
            if why_full:
                if not p["fallback_to_full"]:
                    module.fail_json(f"{action} cannot be differential: {why_full}. Take a full export (no base), or set fallback_to_full=true.")
                module.warn(f"{action} is full instead of differential: {why_full}.")
                base_point = None
        if why_full:
            r["mode"] = "full"
            r["full_reason"] = why_full

        r["changed"] = True
        if module.check_mode:
            module.exit_json()

        job_id = p["job_id"]
        if not job_id:
            if partial:
                hv.clear_export_destination(destination)
            elif not hv.host.fs_exists(destination):
                hv.host.fs_mkdir(destination)
            output = hv.start_export(vm, checkpoint, destination, base_point)
            job_id = output["Job"]["InstanceID"]
        job = hv.wait_job(job_id, wait_timeout)
        if job is None:
            module.fail_json(f"{action} lost track of job {job_id} (Hyper-V no longer has it) and the destination has no completion marker; "
                             "export again with overwrite_partial=true.")
        job_result = hv.job_result(job)
        r["job"] = job_result
        if not job_result["finished"]:
            r["pending"] = True
            module.exit_json()
        if not job_result["succeeded"] and base_point is not None and p["fallback_to_full"] and hv.rct_failure(job_result):
            why_full = f"the change tracking data of base '{base_name}' is no longer valid ({job_result['error_description']})"
            module.warn(f"{action} is full instead of differential: {why_full}.")
            r["mode"] = "full"
            r["full_reason"] = why_full
            hv.clear_export_destination(destination)
            output = hv.start_export(vm, checkpoint, destination, None)
            job = hv.wait_job(output["Job"]["InstanceID"], wait_timeout)
            job_result = hv.job_result(job)
            r["job"] = job_result
            if not job_result["finished"]:
                r["pending"] = True
                module.exit_json()
        if not job_result["succeeded"]:
            module.fail_json(hv.format_job_failure(job_result, action))
        files = hv.export_files(destination)
        total = sum(int(f["size"]) for f in files)
        marker = {
            "vm_id": identity["id"], "vm_name": identity["name"], "checkpoint": label, "mode": r["mode"],
            "base": None if r["mode"] == "full" else base_name, "full_reason": r["full_reason"],
            "files": files, "bytes": total,
            "completed": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        hv.save_export_marker(destination, marker)
        set_export_result(marker)
    except HvError as error:
        module.fail_json(f"{action} failed: {error}")
    module.exit_json()


def vm_export(module: Module, hv: Hv) -> None:
    invoke_vm_batch(module, vm_export_step, hv, ("full_reason",))


# ---------------------------------------------------------------------- disk_changes_info.ps1

def disk_changes_info_step(module: Module, hv: Hv) -> None:  # noqa: C901  (follows the .ps1 step by step)
    """Invoke-DiskChangesStep"""
    p = module.params
    label, base_name = p["checkpoint"], p["base"]
    catalog_path = hv.resolve_catalog_path(p["catalog_path"])
    ranges_dir = p["ranges_dir"] or "C:\\ProgramData\\hyperv.backup\\changes"
    r = module.result
    r.update({"changed": False, "vm": {"name": p["vm"], "id": p["vm_id"]}, "checkpoint": label, "base": base_name, "disks": [],
              "changed_bytes": 0, "full_needed": False, "full_reasons": []})
    if p["chunk_bytes"] < 0 or p["max_ranges_inline"] < 0:
        module.fail_json("chunk_bytes and max_ranges_inline must be 0 or more.")
    if not base_name:
        module.fail_json(f"Changed blocks of VM '{p['vm'] or ''}{p['vm_id'] or ''}' need a base reference point: set base for the task or for the VM in vms.")
    try:
        vm = get_step_vm(module, hv)
        identity = hv.vm_identity(vm)
        r["vm"] = identity
    except HvError as error:
        module.fail_json(f"Changed blocks of VM '{r['vm']['name'] or ''}{r['vm']['id'] or ''}': {error}")
    action = f"Changed blocks of VM '{identity['name']}' since '{base_name}'"

    try:
        checkpoint = hv.select_checkpoint(hv.recovery_checkpoints(vm), label)
        if checkpoint is None:
            module.fail_json(f"{action} need the recovery checkpoint '{label}', which the VM does not have; create it with "
                             "hyperv.backup.recovery_checkpoint first.")
        catalog = hv.read_catalog(catalog_path)
        entries = hv.find_entries(catalog, vm_id=identity["id"], name=base_name)
        entry = entries[0] if entries else None
        base_point = None
        if entry is not None:
            base_point = hv.select_reference_point(hv.reference_points(vm), entry.get("instance_id"))
        if base_point is None:
            r["full_needed"] = True
            r["full_reasons"] = [f"the base reference point '{base_name}' no longer exists"]
            module.exit_json()

        base_ids = list(base_point["VirtualDiskIdentifiers"] or [])
        rct_ids = list(base_point["ResilientChangeTrackingIdentifiers"] or [])
        rct_by_device = {hv.disk_device_part(base_ids[i]): rct_ids[i] for i in range(min(len(base_ids), len(rct_ids)))}
        reasons: list[str] = []
        disks: list[dict] = []
        total = 0
        seen = []
        for disk in hv.checkpoint_disk_files(checkpoint):
            seen.append(disk["device"])
            result = {"path": disk["path"], "device": disk["device"], "rct_id": rct_by_device.get(disk["device"]), "size": None,
                      "changed_bytes": None, "range_count": 0, "ranges": [], "ranges_file": None}
            if not result["rct_id"]:
                reasons.append(f"disk '{disk['path']}' is not in '{base_name}' (added since, or without change tracking)")
                disks.append(result)
                continue
            result["size"] = hv.virtual_disk_size(disk["path"])
            try:
                ranges = hv.virtual_disk_changes(disk["path"], result["rct_id"], result["size"], p["chunk_bytes"])
            except HvError as error:
                reasons.append(f"the changes of '{disk['path']}' since '{base_name}' cannot be read: {error}")
                disks.append(result)
                continue
            changed = sum(n for _o, n in ranges)
            result["changed_bytes"] = changed
            result["range_count"] = len(ranges)
            total += changed
            if len(ranges) > p["max_ranges_inline"] and not module.check_mode:
                path = f"{ranges_dir}\\{identity['id']}-{label}-{len(disks)}.json"
                hv.host.files[path] = json.dumps({"path": disk["path"], "base": base_name, "ranges": ranges})
                result["ranges_file"] = path
            else:
                result["ranges"] = ranges
            disks.append(result)
        for device in rct_by_device:
            if device not in seen:
                reasons.append(f"a disk of '{base_name}' is no longer attached to the VM")
        r["disks"] = disks
        r["changed_bytes"] = total
        r["full_reasons"] = reasons
        r["full_needed"] = bool(reasons)
    except HvError as error:
        module.fail_json(f"{action} failed: {error}")
    module.exit_json()


def disk_changes_info(module: Module, hv: Hv) -> None:
    invoke_vm_batch(module, disk_changes_info_step, hv)


RENDERINGS: dict[str, Callable[[Module, Hv], None]] = {
    "reference_point": reference_point,
    "reference_point_info": reference_point_info,
    "job_info": job_info,
    "recovery_checkpoint": recovery_checkpoint,
    "vm_export": vm_export,
    "disk_changes_info": disk_changes_info,
}
