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
    RESUME_OPTIONS = ("consistency",)
    COLLECT_KEYS = ("removed_leftovers",)

    def reruns_failed_jobs(self, args: dict[str, Any]) -> bool:
        # A failed creation may fall back to crash consistency; a failed removal is reported as is.
        return args.get("state", "present") != "absent"

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        vm = (module_result.get("vm") or {}).get("name")
        label = f"Recovery checkpoint '{args.get('name')}' of VM '{vm}'"
        return label, f"{VERBS.get(args.get('state', 'present'), 'Creating')} {label}"

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        fact = task_vars.get(facts.FACT)
        made = False
        for vm_result in result.get("results") or [result]:
            point = vm_result.get("reference_point")
            if point and not vm_result.get("failed"):
                fact = facts.with_reference_point(fact, (vm_result.get("vm") or {}).get("name"), point["name"], point)
                made = True
        return fact if made else None
