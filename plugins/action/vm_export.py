# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.vm_export: run the module and follow the export job."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils.job_action import JobAction

# Options handled here, not by the PowerShell module (the static check reads this tuple).
CONTROLLER_OPTIONS = ("job_timeout", "cancel_on_job_timeout", "connection_retries")


class ActionModule(JobAction):
    MODULE = "hyperv.backup.vm_export"
    RESUME_OPTIONS = ("full_reason",)

    def reruns_failed_jobs(self, args: dict[str, Any]) -> bool:
        # A differential export whose base lost its change tracking may go full (fallback_to_full).
        return True

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        vm = (module_result.get("vm") or {}).get("name")
        label = f"Export of VM '{vm}' to '{module_result.get('destination') or args.get('destination')}'"
        return label, label
