# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of hyperv.backup.job_info: read jobs once, or follow one with wait=true."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.modules.job_info import DOCUMENTATION
from ansible_collections.hyperv.backup.plugins.plugin_utils import _options
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_action import JobAction
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_wait import describe_timeout, describe_unreachable

# wait is documented with the module, the rest in the job_wait fragment: all read from the docs.
WAIT_SPEC = {"wait": _options.argument_spec(DOCUMENTATION)["wait"]}


class ActionModule(JobAction):
    MODULE = "hyperv.backup.job_info"
    CONTROLLER_SPEC = {**WAIT_SPEC, **_options.JOB_WAIT_SPEC}

    def run_and_follow(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Reads the job; with wait=true follows it until it ends (a failed job is reported, not a failure)."""
        result = self.run_module(args, task_vars)
        job = result.get("job") or {}
        if not (options["wait"] and options["job_timeout"] > 0 and not result.get("failed") and result.get("exists")
                and not job.get("finished")):
            return result
        label = f"Job {job.get('id')}"
        follower = self.follower(options, task_vars)
        follower.follow(job, label)
        outcome = follower.wait([str(job.get("id"))])
        result["job"] = follower.jobs[str(job.get("id"))]
        result["exists"] = result["job"].get("state") != "gone"
        if follower.warnings:
            result["warnings"] = list(result.get("warnings") or []) + follower.warnings
        if outcome.status == "timeout":
            result.update(failed=True, msg=describe_timeout(label, result["job"], options["job_timeout"]))
            if options["cancel_on_job_timeout"]:
                result["msg"], result["job"] = self.cancel(result["job"], result["msg"], task_vars)
                result["changed"] = True
        elif outcome.status == "unreachable":
            result.update(unreachable=True, msg=describe_unreachable(label, result["job"], options["connection_retries"], outcome.error))
        elif outcome.status == "error":
            result.update(failed=True, msg=f"{label}: following Hyper-V job {job.get('id')} failed: {outcome.error}")
        return result
