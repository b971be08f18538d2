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

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        vm = (module_result.get("vm") or {}).get("name")
        label = f"Recovery checkpoint '{args.get('name')}' of VM '{vm}'"
        return label, f"{VERBS.get(args.get('state', 'present'), 'Creating')} {label}"

    def finish_args(self, args: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        # The module adopts what the job made (a checkpoint to name, or a reference point to record).
        return {**args, "job_id": job.get("id")}

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        point = result.get("reference_point")
        if not point:
            return None
        vm = (result.get("vm") or {}).get("name")
        return facts.with_reference_point(task_vars.get(facts.FACT), vm, point["name"], point)
