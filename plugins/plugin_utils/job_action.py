# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The part every job-starting action plugin shares: run the module once, follow its job."""

from __future__ import annotations

import time
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


# A job can end in another job (a crash-consistent checkpoint after an application-consistent one
# failed, a full export after a differential one found its base invalid): follow that many at most.
MAX_ROUNDS = 4


def add_warnings(warnings: list[str], result: dict[str, Any]) -> None:
    """Adds a module run's warnings that the task has not given yet."""
    warnings += [w for w in result.get("warnings") or [] if w not in warnings]


def batch_failure(results: list[dict[str, Any]]) -> str | None:
    """The message of a many-VM task with failed VMs (worded as HvBatch words it), or None."""
    failed = [r for r in results if r.get("failed")]
    if not failed:
        return None
    return f"{len(failed)} of {len(results)} VMs failed: {' | '.join(str(r.get('msg')) for r in failed)}"


class JobAction(ActionBase):
    """Runs MODULE; when it returns a pending job, follows the job from the controller.

    With vms the module returns a result per VM; the pending jobs among them are followed one
    after the other (they run side by side on the host, so the later ones have mostly ended by
    then) and the module runs once more for the VMs whose jobs ended, to finish their work.
    """

    MODULE = ""
    # Result keys a pending result sets that the module needs back as options to finish (HvBatch -ResumeOption).
    RESUME_OPTIONS: tuple[str, ...] = ()
    # List results that add up over the module's runs for one VM (HvBatch -CollectKey).
    COLLECT_KEYS: tuple[str, ...] = ()
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
        if args.get("vms") is not None:
            result.update(self.run_batch(args, options, task_vars))
        else:
            result.update(self.run_and_follow(args, options, task_vars))
        # A many-VM task that failed for some VMs still records what the others made.
        failed = result.get("failed") and "results" not in result
        if not (failed or result.get("unreachable") or result.get("pending") or self._task.check_mode):
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

    def resume_values(self, module_result: dict[str, Any]) -> dict[str, Any]:
        """The options a pending result hands back to the module that finishes its work."""
        return {key: module_result[key] for key in self.RESUME_OPTIONS if module_result.get(key) is not None}

    def finish_args(self, args: dict[str, Any], job: dict[str, Any], module_result: dict[str, Any]) -> dict[str, Any]:
        """The module arguments that finish the work once the job has ended."""
        return {**args, **self.resume_values(module_result), "job_id": job.get("id")}

    def merge_runs(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """The result of a VM's work done over two module runs: changed and collected keys add up."""
        after["changed"] = bool(after.get("changed")) or bool(before.get("changed"))
        for key in self.COLLECT_KEYS:
            after[key] = list(before.get(key) or []) + list(after.get(key) or [])
        return after

    def deadline_options(self, options: dict[str, Any], deadline: float) -> dict[str, Any]:
        """The controller options with job_timeout cut to what is left until the task's deadline."""
        return {**options, "job_timeout": max(0.0, deadline - (self.clock or time.monotonic)())}

    def reruns_failed_jobs(self, args: dict[str, Any]) -> bool:
        """Whether a failed job goes back to the module, which may fall back (another consistency, a
        full export) or words the failure itself; otherwise the controller reports it."""
        return False

    def wait_failure(self, args: dict[str, Any], outcome: WaitOutcome, options: dict[str, Any], label: str, action: str) -> dict[str, Any] | None:
        """outcome_failure, except for a failed job the module is to handle."""
        if outcome.status == "finished" and self.reruns_failed_jobs(args):
            return None
        return self.outcome_failure(outcome, options, label, action)

    def follow_pending(self, args: dict[str, Any], result: dict[str, Any], options: dict[str, Any], deadline: float,
                       task_vars: dict[str, Any]) -> tuple[WaitOutcome, dict[str, Any] | None] | None:
        """Follows the job a result (the task's, or one VM's) left running, until the task's deadline.

        Returns the outcome and the result keys of a failure (None when the module is to finish
        the work), or None when the result has no job running.
        """
        job = result.get("job")
        if not (result.get("pending") and job and not result.get("failed")):
            return None
        label, action = self.describe(args, result)
        outcome = self.follow(job, self.deadline_options(options, deadline), label, task_vars)
        return outcome, self.wait_failure(args, outcome, options, label, action)

    def run_and_follow(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Runs the module; follows a job it left running; reruns it to finish the work."""
        module_result = self.run_module(args, task_vars)
        if options["job_timeout"] <= 0:
            return module_result
        deadline = (self.clock or time.monotonic)() + options["job_timeout"]
        warnings = list(module_result.get("warnings") or [])
        for _round in range(MAX_ROUNDS):
            followed = self.follow_pending(args, module_result, options, deadline, task_vars)
            if followed is None:
                break
            outcome, failure = followed
            warnings += outcome.warnings
            if failure is not None:
                module_result.update(failure)
                module_result["job"] = outcome.job
                break
            # The job ended well: the module reads what it made and records it.
            module_result = self.merge_runs(module_result, self.run_module(self.finish_args(args, outcome.job, module_result), task_vars))
            add_warnings(warnings, module_result)
        if warnings:
            module_result["warnings"] = warnings
        return module_result

    def run_batch(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Runs the module for many VMs; follows each VM's pending job; finishes those VMs in one more run."""
        module_result = self.run_module(args, task_vars)
        results = module_result.get("results")
        if not isinstance(results, list) or options["job_timeout"] <= 0:
            return module_result
        deadline = (self.clock or time.monotonic)() + options["job_timeout"]
        warnings = list(module_result.get("warnings") or [])
        for _round in range(MAX_ROUNDS):
            ended: dict[int, dict[str, Any]] = {}
            for index, vm_result in enumerate(results):
                # The VM's own options (its name, instance_id or destination) name its job.
                followed = self.follow_pending({**args, **dict(args["vms"][index])}, vm_result, options, deadline, task_vars)
                if followed is None:
                    continue
                outcome, failure = followed
                warnings += outcome.warnings
                if failure is not None and failure.get("unreachable"):
                    module_result.update(failure, results=results, warnings=warnings)
                    return module_result
                if failure is not None:
                    results[index] = {**vm_result, **failure, "job": outcome.job, "pending": False}
                else:
                    ended[index] = outcome.job
            if not ended:
                break
            # VMs needing the same options back are finished together (usually all of them).
            groups: dict[str, list[int]] = {}
            for index in ended:
                groups.setdefault(repr(sorted(self.resume_values(results[index]).items())), []).append(index)
            for indexes in groups.values():
                rerun = self.run_module(self.finish_batch_args(args, indexes, results, ended), task_vars)
                add_warnings(warnings, rerun)
                finished = rerun.get("results")
                for position, index in enumerate(indexes):
                    if isinstance(finished, list) and position < len(finished):
                        results[index] = self.merge_runs(results[index], finished[position])
                    else:
                        results[index] = {**results[index], "failed": True, "pending": False, "msg": rerun.get("msg") or "the module returned no result"}
        module_result["results"] = results
        module_result["changed"] = any(r.get("changed") for r in results)
        if "pending" in module_result:
            module_result["pending"] = any(r.get("pending") for r in results)
        message = batch_failure(results)
        module_result["failed"] = message is not None
        if message is not None:
            module_result["msg"] = message
        else:
            module_result.pop("msg", None)
        if warnings:
            module_result["warnings"] = warnings
        return module_result

    def finish_batch_args(self, args: dict[str, Any], indexes: list[int], results: list[dict[str, Any]],
                          ended: dict[int, dict[str, Any]]) -> dict[str, Any]:
        """The module arguments that finish the work of some VMs of vms whose jobs have ended."""
        vms = []
        job_ids = {}
        for index in indexes:
            vm_id = (results[index].get("vm") or {}).get("id")
            # The VM's own values stay, except where its pending result says what to finish with.
            element = {k: v for k, v in dict(args["vms"][index]).items() if k not in ("vm", "vm_id", *self.RESUME_OPTIONS)}
            vms.append({**element, "vm_id": vm_id})
            job_ids[vm_id] = ended[index].get("id")
        return {**args, **self.resume_values(results[indexes[0]]), "vms": vms, "job_ids": job_ids}

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
