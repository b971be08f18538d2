# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.job_info: read a job once, or follow it with wait=true."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils.job_action import JobAction
from ansible_collections.hyperv.backup.plugins.plugin_utils.job_wait import JOB_WAIT_ARGSPEC

# Options handled here, not by the PowerShell module (the static check reads this tuple).
CONTROLLER_OPTIONS = ("wait", "job_timeout", "cancel_on_job_timeout", "connection_retries")


class ActionModule(JobAction):
    MODULE = "hyperv.backup.job_info"
    CONTROLLER_ARGSPEC = {"wait": {"type": "bool", "default": False}, **JOB_WAIT_ARGSPEC}

    def run_and_follow(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Reads the job; with wait=true follows it until it ends (a failed job is reported, not a failure)."""
        module_result = self.run_module(args, task_vars)
        job = module_result.get("job") or {}
        if not (options["wait"] and options["job_timeout"] > 0 and not module_result.get("failed") and module_result.get("exists")
                and not job.get("finished")):
            return module_result
        label = f"Job {job.get('id')}"
        outcome = self.follow(job, options, label, task_vars)
        module_result["job"] = outcome.job
        module_result["exists"] = outcome.status != "gone"
        if outcome.warnings:
            module_result["warnings"] = list(module_result.get("warnings") or []) + outcome.warnings
        if outcome.status != "finished":
            module_result.update(self.outcome_failure(outcome, options, label, label) or {})
        if outcome.status == "cancelled":
            module_result["changed"] = True
        return module_result
