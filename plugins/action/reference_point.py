# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.reference_point: run the module, follow its jobs, set the fact."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils import _facts
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_action import JobAction


class ActionModule(JobAction):
    MODULE = "hyperv.backup.reference_point"

    def describe(self, args: dict[str, Any], vm_result: dict[str, Any]) -> str:
        vm = (vm_result.get("vm") or {}).get("name")
        return f"Reference point '{args.get('name') or args.get('instance_id')}' of VM '{vm}'"

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        fact = task_vars.get(_facts.FACT)
        changed = False
        entries = result.get("results")
        pairs = zip(entries, args.get("vms") or []) if isinstance(entries, list) else [(result, {})]
        for vm_result, element in pairs:
            vm = vm_result.get("vm")
            point = vm_result.get("reference_point")
            name = element.get("name") or args.get("name") or (point or {}).get("name")
            if not _facts.vm_key(vm) or not name or vm_result.get("failed"):
                continue
            fact = _facts.with_reference_point(fact, vm, name, point)
            changed = True
        return fact if changed else None
