# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.recovery_checkpoint: run the module, follow its job, set the fact."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils import facts
from ansible_collections.hyperv.backup.plugins.plugin_utils.job_action import JobAction

# Options handled here, not by the PowerShell module (the static check reads this tuple).
CONTROLLER_OPTIONS = ("job_timeout", "cancel_on_job_timeout", "connection_retries")

VERBS = {"present": "Creating", "absent": "Removing", "converted": "Converting"}


class ActionModule(JobAction):
    MODULE = "hyperv.backup.recovery_checkpoint"

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args, options = self.split_args()
        if self._task.async_val:
            result.update(self.run_async(args, task_vars))
            return result
        result.update(self.run_and_follow(args, options, task_vars))
        point = result.get("reference_point")
        if point and not (result.get("failed") or result.get("unreachable") or self._task.check_mode):
            vm = (result.get("vm") or {}).get("name")
            result["ansible_facts"] = {facts.FACT: facts.with_reference_point(task_vars.get(facts.FACT), vm, point["name"], point)}
        return result

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        vm = (module_result.get("vm") or {}).get("name")
        label = f"Recovery checkpoint '{args.get('name')}' of VM '{vm}'"
        return label, f"{VERBS.get(args.get('state', 'present'), 'Creating')} {label}"

    def finish_args(self, args: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        # The module adopts what the job made (a checkpoint to name, or a reference point to record).
        return {**args, "job_id": job.get("id")}
