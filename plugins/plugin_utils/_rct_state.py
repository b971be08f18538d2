# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The per-VM bookkeeping of the rct_backup role (internal to this collection; the filters
rct_vms, rct_record and rct_summary are thin over it).

The role runs each step once for all its VMs (one module call with vms). Its state is a dict
keyed by the VM as the user gave it (name or GUID); each step's VMs come from rct_vms, and
rct_record files the step's per-VM results back, turning a VM's failure into its error, so
later steps leave that VM out and the clean-up removes its recovery checkpoint.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.hyperv.backup.plugins.plugin_utils import _host_path
from ansible_collections.hyperv.backup.plugins.plugin_utils._data import plain_copy
from ansible_collections.hyperv.backup.plugins.plugin_utils._retention import retention_plan

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# What the summary calls each step when a VM failed there.
TITLES = {
    "checkpoint": "Recovery checkpoint",
    "base": "Find the previous backup",
    "changes": "Changed blocks",
    "export": "Export",
    "convert": "Close the backup with a reference point",
    "retention": "Retention",
    "cleanup": "Remove this run's recovery checkpoint",
}
STEPS = ("checkpoint", "changes", "export", "convert", "retention", "cleanup", "ids")


def _ok(state: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [vm for vm in state.values() if not vm.get("error")]


def _destination(vm: dict[str, Any], destination: str, label: str) -> str:
    return _host_path.join(destination, _host_path.vm_folder(vm["name"], vm["id"]), label)


def rct_vms(state: dict[str, dict[str, Any]], step: str, mode: str = "auto", method: str = "export", destination: str = "",
            label: str = "", points: list[dict[str, Any]] | None = None, keep: int = 2, unit: str = "chains",
            include_foreign: bool = False, consistency: str = "application") -> list[Any]:
    """The vms list (or loop) of one step: the VMs still without an error that the step concerns."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("rct_vms expects the state that rct_record builds")
    if step not in STEPS:
        raise AnsibleFilterError(f"rct_vms does not know step {step!r}; steps: {', '.join(STEPS)}")
    ok = _ok(state)
    if step == "checkpoint":
        return [{"vm_id": vm["vm"]} if GUID.match(vm["vm"]) else {"vm": vm["vm"]} for vm in ok]
    if step == "ids":
        return [vm["id"] for vm in ok]
    if step == "changes":
        if method != "changed_blocks" or mode == "full":
            return []
        return [{"vm_id": vm["id"], "base": vm["base"]["name"], "ranges_dir": _destination(vm, destination, label)} for vm in ok if vm.get("base")]
    if step == "export":
        asked = []
        for vm in ok:
            if vm.get("copy"):
                continue  # its changed blocks were listed
            element = {"vm_id": vm["id"], "destination": _destination(vm, destination, label)}
            if method == "export" and mode != "full" and vm.get("base"):
                element["base"] = vm["base"]["name"]
            asked.append(element)
        return asked
    if step == "convert":
        asked = []
        for vm in ok:
            full = vm["copy"].get("mode") == "full"
            element = {"vm_id": vm["id"], "mode": "full" if full else "incremental", "consistency": vm.get("consistency") or consistency}
            if not full:
                element["base"] = vm["copy"].get("base")
            asked.append(element)
        return asked
    if step == "retention":
        plan = []
        for vm in ok:
            if points is None and vm.get("points") is None:
                continue  # no listing after its conversion: nothing is removed on a guess
            own = [p for p in (vm["points"] if points is None else points) if p.get("vm_id") == vm["id"]]
            # All removed in one call, side by side: a plan never holds the base of a point it keeps.
            plan += [{"vm_id": vm["id"], "instance_id": p["instance_id"]} for p in retention_plan(own, keep=keep, unit=unit, include_foreign=include_foreign)]
        return plan
    # cleanup: every VM that failed after its identity was known (it may hold this run's checkpoint)
    return [{"vm_id": vm["id"]} for vm in state.values() if vm.get("error") and vm.get("id")]


def _per_vm(result: dict[str, Any], asked: list[Any]) -> list[dict[str, Any]]:
    """The result of each asked VM: the module's own, or the task's failure for every VM."""
    results = result.get("results") if isinstance(result, dict) else None
    if isinstance(results, list) and len(results) == len(asked):
        return results
    # No result per VM: the task itself failed (bad arguments, a module error) - for every VM.
    message = result.get("msg") if isinstance(result, dict) else None
    return [{"failed": True, "msg": message or "the task returned no result per VM"} for _vm in asked]


def _fail(vm: dict[str, Any], step: str, message: str) -> None:
    text = f"{TITLES[step]} | {vm['vm']}: {message}"
    vm["error"] = f"{vm['error']} | {text}" if vm.get("error") else text


def vm_list(given: Any) -> list[str]:
    """The VMs of rct_backup_vms as a list of exact names or GUIDs.

    A list is taken as given (names stay exact, spaces included). A string is what an AWX survey's
    textarea gives: one VM per line, each line's surrounding whitespace stripped, empty lines
    skipped. Never split on commas: a VM name may hold one.
    """
    if isinstance(given, str):
        vms = [line.strip() for line in given.splitlines() if line.strip()]
    elif isinstance(given, (list, tuple)) and all(isinstance(vm, str) for vm in given):
        vms = list(given)
    else:
        raise AnsibleFilterError(f"rct_backup_vms must be a list of VM names or GUIDs, or a text with one per line; got {given!r}.")
    empty = [index for index, vm in enumerate(vms) if not vm]
    if not vms or empty:
        raise AnsibleFilterError("rct_backup_vms holds no VM" if not vms else f"rct_backup_vms has an empty name at position {empty[0] + 1}.")
    return vms


def rct_record(state: dict[str, dict[str, Any]] | None, step: str, result: Any = None, asked: list[Any] | None = None,
               mode: str = "auto", label: str = "", at: float | None = None, consistency: str = "") -> dict[str, dict[str, Any]]:
    """The state with one step's results filed per VM (a failed VM gets its error).

    Each VM's `ended` becomes the time of the last step it took part in (at, by default now): the
    VMs of a run start together, and each is done at its own last step."""
    now = time.time() if at is None else float(at)
    if step == "start":
        return {vm: {"vm": vm, "name": vm, "id": None, "error": None, "cleanup_error": None, "base": {}, "points": None,
                     "consistency": None, "changes": None, "copy": {}, "reference_point": None, "started": now, "ended": now}
                for vm in vm_list(result)}
    if not isinstance(state, dict):
        raise AnsibleFilterError("rct_record expects the state that rct_record(step='start') began")
    state = plain_copy(state)
    if step == "abort":
        # An error outside the per-VM results (the result is its message): every VM still going fails with it.
        for vm in _ok(state):
            vm["error"] = str(result)
            vm["ended"] = now
        return state
    if step == "base":
        for vm in _ok(state):
            if result is None and vm.get("points") is None:
                _fail(vm, "base", f"the reference points of VM '{vm['name']}' were not listed after its checkpoint (list_reference_points), "
                                  "so its base cannot be chosen; this is a bug in hyperv.backup, please report it.")
                continue
            points = vm["points"] if result is None else (result or {}).get("reference_points") or []
            # This run's own point (a rerun after its conversion) is never its own base.
            own = sorted((p for p in points if p.get("vm_id") == vm["id"] and not p.get("foreign") and p.get("mode") in ("full", "incremental")
                          and p.get("name") != label),
                         key=lambda p: (str(p.get("created") or ""), str(p.get("name") or "")))
            vm["base"] = own[-1] if own else {}
            if mode == "incremental" and not own:
                _fail(vm, "base", f"VM '{vm['name']}' has no earlier backup of this collection to take an incremental against; "
                                  "run once with rct_backup_mode=full (or auto).")
        return state
    if step not in TITLES:
        raise AnsibleFilterError(f"rct_record does not know step {step!r}")
    by_id = {vm["id"]: vm for vm in state.values() if vm.get("id")}
    asked = list(asked or [])
    for element, outcome in zip(asked, _per_vm(result, asked)):
        if step == "checkpoint":
            vm = state[element.get("vm") or element.get("vm_id")]
        else:
            vm = by_id[element["vm_id"]]
        vm["ended"] = now
        if step == "checkpoint":
            # Known even when it failed, so the clean-up looks for a checkpoint made before the failure.
            identity = outcome.get("vm") or {}
            vm["name"], vm["id"] = identity.get("name") or vm["name"], identity.get("id")
        if outcome.get("failed"):
            if step == "cleanup":
                vm["cleanup_error"] = f"{TITLES[step]} | {vm['vm']}: {outcome.get('msg')}"
            else:
                _fail(vm, step, str(outcome.get("msg")))
            continue
        if step in ("checkpoint", "convert"):
            # The VM's reference points after the step (list_reference_points): the bases, then retention, are chosen from them.
            vm["points"] = outcome.get("reference_points")
        if step == "checkpoint":
            vm["consistency"] = outcome.get("consistency")
            vm["consistency_asked"] = consistency or None
        elif step == "changes":
            vm["changes"] = {"full_needed": bool(outcome.get("full_needed")), "full_reasons": list(outcome.get("full_reasons") or [])}
            if outcome.get("full_needed") and mode == "incremental":
                _fail(vm, step, f"An incremental of VM '{vm['name']}' is impossible: {'; '.join(vm['changes']['full_reasons'])}. "
                                "Run with rct_backup_mode=auto or full.")
            elif not outcome.get("full_needed"):
                vm["copy"] = {"mode": "incremental", "method": "changed_blocks", "base": vm["base"].get("name"),
                              "bytes": outcome.get("changed_bytes") or 0, "full_reason": None, "destination": element["ranges_dir"]}
        elif step == "export":
            reasons = "; ".join((vm.get("changes") or {}).get("full_reasons") or [])
            vm["copy"] = {"mode": outcome.get("mode"), "method": "export", "base": outcome.get("base"), "bytes": outcome.get("bytes") or 0,
                          "full_reason": outcome.get("full_reason") or reasons or None, "destination": outcome.get("destination")}
        elif step == "convert":
            vm["reference_point"] = (outcome.get("reference_point") or {}).get("name")
    if step == "checkpoint":
        state = _one_entry_per_vm(state, asked)
    return state


def _one_entry_per_vm(state: dict[str, dict[str, Any]], asked: list[Any]) -> dict[str, dict[str, Any]]:
    """The state with each VM once: a VM listed twice (by name and by GUID, or in two spellings)
    stays under its first listing, which the module ran; the other listings, which the module
    refused as listed more than once, go, so nothing is filed, cleaned up or reported under them."""
    first: dict[str, str] = {}
    for key, vm in state.items():
        vm_id = str(vm.get("id") or "").lower()
        if vm_id:
            first.setdefault(vm_id, key)
    kept = {}
    for key, vm in state.items():
        vm_id = str(vm.get("id") or "").lower()
        owner = first.get(vm_id)
        if owner is not None and owner != key:
            state[owner].setdefault("also_listed_as", []).append(vm["vm"])
            continue
        kept[key] = vm
    del asked
    return kept


def _utc(timestamp: float | None) -> str | None:
    """A time as the collection writes every time: UTC, 'YYYY-MM-DDTHH:MM:SSZ'."""
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(float(timestamp), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rct_summary(state: dict[str, dict[str, Any]], seconds: float | None = None) -> list[dict[str, Any]]:
    """One summary entry per VM (the role's rct_backup_summary).

    seconds, when given, is the run's time (run_seconds); each VM's own is from the run's start to
    its last step."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("rct_summary expects the state that rct_record builds")
    summary = []
    for vm in state.values():
        copied = vm.get("copy") or {}
        error = " | ".join(e for e in (vm.get("error"), vm.get("cleanup_error")) if e) or None
        started, ended = vm.get("started"), vm.get("ended")
        own = float(ended) - float(started) if started is not None and ended is not None else float(seconds or 0.0)
        summary.append({
            "vm": vm["name"], "vm_id": vm.get("id"), "status": "failed" if vm.get("error") else "ok",
            "mode": copied.get("mode"), "method": copied.get("method"), "base": copied.get("base"),
            "full_reason": copied.get("full_reason"), "consistency": vm.get("consistency"),
            "bytes": copied.get("bytes") or 0, "started": _utc(started), "ended": _utc(ended), "seconds": round(own, 1),
            "run_seconds": round(float(seconds if seconds is not None else own), 1), "reference_point": vm.get("reference_point"),
            "destination": copied.get("destination"), "error": error, "warnings": _warnings(vm),
        })
    return summary


def _warnings(vm: dict[str, Any]) -> list[str]:
    """What went otherwise than asked for a VM that was backed up, each in a sentence (the task's warnings, filed per VM)."""
    warnings = []
    asked, got = vm.get("consistency_asked"), vm.get("consistency")
    if asked == "application" and got == "crash":
        warnings.append("The application-consistent checkpoint failed (the guest's VSS or integration services); "
                        "a crash-consistent one was taken instead (rct_backup_crash_fallback).")
    reason = (vm.get("copy") or {}).get("full_reason")
    if reason:
        warnings.append(f"Full backup instead of an incremental: {reason}.")
    also = vm.get("also_listed_as") or []
    if also:
        warnings.append(f"Listed more than once (also as {', '.join(also)}); backed up once.")
    return warnings
