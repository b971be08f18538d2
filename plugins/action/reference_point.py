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

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args, options = self.split_args()
        if self._task.async_val:
            result.update(self.run_async(args, task_vars))
            return result

        module_result = self.run_module(args, task_vars)
        job = module_result.get("job")
        if module_result.get("pending") and job and not module_result.get("failed") and options["job_timeout"] > 0:
            vm = (module_result.get("vm") or {}).get("name")
            target = args.get("name") or args.get("instance_id")
            state = args.get("state", "present")
            label = f"Reference point '{target}' of VM '{vm}'"
            action = f"{'Creating' if state == 'present' else 'Removing'} {label}"
            outcome = self.follow(job, options, label, task_vars)
            failure = self.outcome_failure(outcome, options, label, action)
            warnings = list(module_result.get("warnings") or []) + outcome.warnings
            if failure is None:
                # The job ended well: the module reads what it made and records it in the catalog.
                changed = bool(module_result.get("changed"))
                module_result = self.run_module(args, task_vars)
                module_result["changed"] = bool(module_result.get("changed")) or changed
            else:
                module_result.update(failure)
                module_result["job"] = outcome.job
            warnings += [w for w in module_result.get("warnings") or [] if w not in warnings]
            if warnings:
                module_result["warnings"] = warnings
        result.update(module_result)
        self._set_fact(result, args, task_vars)
        return result

    def _set_fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> None:
        if result.get("failed") or result.get("unreachable") or self._task.check_mode or result.get("pending"):
            return
        vm = (result.get("vm") or {}).get("name")
        point = result.get("reference_point")
        name = args.get("name") or (point or {}).get("name")
        if not vm or not name:
            return
        existing = task_vars.get(facts.FACT)
        result["ansible_facts"] = {facts.FACT: facts.with_reference_point(existing, vm, name, point)}
