# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.reference_point: run the module, follow its job, set the fact."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils import facts
from ansible_collections.hyperv.backup.plugins.plugin_utils.job_action import JobAction

# Options handled here, not by the PowerShell module (the static check reads this tuple).
CONTROLLER_OPTIONS = ("job_timeout", "cancel_on_job_timeout", "connection_retries")


class ActionModule(JobAction):
    MODULE = "hyperv.backup.reference_point"

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        vm = (module_result.get("vm") or {}).get("name")
        label = f"Reference point '{args.get('name') or args.get('instance_id')}' of VM '{vm}'"
        return label, f"{'Creating' if args.get('state', 'present') == 'present' else 'Removing'} {label}"

    def finish_args(self, args: dict[str, Any], job: dict[str, Any], module_result: dict[str, Any]) -> dict[str, Any]:
        # The catalog's pending entry holds the job id: the module finds the job there.
        return args

    def finish_batch_args(self, args: dict[str, Any], indexes: list[int], results: list[dict[str, Any]],
                          ended: dict[int, dict[str, Any]]) -> dict[str, Any]:
        # The catalog holds each entry's job, and a VM may be listed once per reference point.
        finish = super().finish_batch_args(args, indexes, results, ended)
        finish.pop("job_ids", None)
        return finish

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        fact = task_vars.get(facts.FACT)
        changed = False
        entries = result.get("results")
        pairs = zip(entries, args.get("vms") or []) if isinstance(entries, list) else [(result, {})]
        for vm_result, element in pairs:
            vm = (vm_result.get("vm") or {}).get("name")
            point = vm_result.get("reference_point")
            name = element.get("name") or args.get("name") or (point or {}).get("name")
            if not vm or not name or vm_result.get("failed"):
                continue
            fact = facts.with_reference_point(fact, vm, name, point)
            changed = True
        return fact if changed else None
