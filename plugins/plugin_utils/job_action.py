# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The part every job-starting action plugin shares: run the module once, follow its job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hyperv.backup.plugins.plugin_utils import facts
from ansible_collections.hyperv.backup.plugins.plugin_utils.job_wait import (
    JOB_INFO,
    JOB_WAIT_ARGSPEC,
    Progress,
    WaitOutcome,
    describe_timeout,
    describe_unreachable,
    wait_for_job,
)

display = Display()


def format_job_failure(job: dict[str, Any], action: str) -> str:
    """The module's Format-HvJobFailure, for a job whose end the controller saw."""
    text = f"{action} failed: job {job.get('id')} ended in state {job.get('state')} with error code {job.get('error_code')}"
    if job.get("error_description"):
        text += f": {job['error_description']}"
    for detail in job.get("errors") or []:
        if detail != job.get("error_description"):
            text += f" {detail}"
    return text


class JobAction(ActionBase):
    """Runs MODULE; when it returns a pending job, follows the job from the controller."""

    MODULE = ""
    CONTROLLER_ARGSPEC: dict[str, dict[str, Any]] = JOB_WAIT_ARGSPEC
    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True
    # Replaced in unit tests, which replay recorded polls without waiting.
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args, options = self.split_args()
        if self._task.async_val:
            result.update(self.run_async(args, task_vars))
            return result
        result.update(self.run_and_follow(args, options, task_vars))
        if not (result.get("failed") or result.get("unreachable") or result.get("pending") or self._task.check_mode):
            fact = self.fact(result, args, task_vars)
            if fact is not None:
                result["ansible_facts"] = {facts.FACT: fact}
        return result

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        """The new value of the hyperv_backup fact after a successful task, or None to leave it."""
        return None

    def split_args(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(module arguments, validated controller options) of the task."""
        args = dict(self._task.args)
        controller = {name: args.pop(name) for name in list(args) if name in self.CONTROLLER_ARGSPEC}
        validated = ArgumentSpecValidator(self.CONTROLLER_ARGSPEC).validate(controller)
        if validated.error_messages:
            raise AnsibleActionFail("; ".join(validated.error_messages))
        options = validated.validated_parameters
        for name in ("job_timeout", "connection_retries"):
            if name in options and options[name] < 0:
                raise AnsibleActionFail(f"{name} must be 0 or more, got {options[name]}.")
        return args, options

    def run_module(self, args: dict[str, Any], task_vars: dict[str, Any], module: str | None = None) -> dict[str, Any]:
        return self._execute_module(module_name=module or self.MODULE, module_args=args, task_vars=task_vars)

    def run_async(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Under the async keyword ansible's wrapper runs the module, which then waits on the host itself."""
        args.setdefault("wait_timeout", int(self._task.async_val))
        return self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars, wrap_async=True)

    def follow(self, job: dict[str, Any], options: dict[str, Any], label: str, task_vars: dict[str, Any]) -> WaitOutcome:
        """Polls the job with job_info until it ends, or the timeout or the connection gives up."""

        def poll(host_wait: int) -> dict[str, Any]:
            return self.run_module({"job_id": job["id"], "wait_timeout": host_wait}, task_vars, JOB_INFO)

        outcome = wait_for_job(poll, job, timeout=options["job_timeout"], retries=options["connection_retries"],
                               reconnect=self._connection.reset, progress=Progress(display, label),
                               clock=self.clock, sleep=self.sleep)
        if outcome.status == "timeout" and options["cancel_on_job_timeout"]:
            cancelled = self.run_module({"job_id": job["id"], "cancel": True}, task_vars, JOB_INFO)
            if cancelled.get("failed"):
                outcome.warnings.append(f"Cancelling job {job['id']} after the timeout failed: {cancelled.get('msg')}")
            else:
                outcome.job = cancelled.get("job") or outcome.job
                outcome.status = "cancelled"
        return outcome

    def describe(self, args: dict[str, Any], module_result: dict[str, Any]) -> tuple[str, str]:
        """(label, action) naming what the job does, for progress and messages."""
        raise NotImplementedError

    def finish_args(self, args: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
        """The module arguments that finish the work once the job has ended."""
        return args

    def run_and_follow(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Runs the module; follows a job it left running; reruns it to finish the work."""
        module_result = self.run_module(args, task_vars)
        job = module_result.get("job")
        if not (module_result.get("pending") and job and not module_result.get("failed") and options["job_timeout"] > 0):
            return module_result
        label, action = self.describe(args, module_result)
        outcome = self.follow(job, options, label, task_vars)
        failure = self.outcome_failure(outcome, options, label, action)
        warnings = list(module_result.get("warnings") or []) + outcome.warnings
        if failure is None:
            # The job ended well: the module reads what it made and records it.
            changed = bool(module_result.get("changed"))
            module_result = self.run_module(self.finish_args(args, outcome.job), task_vars)
            module_result["changed"] = bool(module_result.get("changed")) or changed
        else:
            module_result.update(failure)
            module_result["job"] = outcome.job
        warnings += [w for w in module_result.get("warnings") or [] if w not in warnings]
        if warnings:
            module_result["warnings"] = warnings
        return module_result

    def outcome_failure(self, outcome: WaitOutcome, options: dict[str, Any], label: str, action: str) -> dict[str, Any] | None:
        """The result keys that report a wait which did not end in success, or None."""
        job = outcome.job
        if outcome.status == "timeout":
            return {"failed": True, "msg": describe_timeout(label, job, options["job_timeout"])}
        if outcome.status == "cancelled":
            return {"failed": True, "msg": f"{describe_timeout(label, job, options['job_timeout'])} It was cancelled (state {job.get('state')})."}
        if outcome.status == "unreachable":
            return {"unreachable": True, "msg": describe_unreachable(label, job, options["connection_retries"], outcome.error)}
        if outcome.status == "error":
            return {"failed": True, "msg": f"{label}: following Hyper-V job {job.get('id')} failed: {outcome.error}"}
        if outcome.status == "finished" and not job.get("succeeded"):
            return {"failed": True, "msg": format_job_failure(job, action)}
        return None
