# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every job-starting action plugin shares (internal to this collection).

The module does the work and starts Hyper-V jobs; when jobs are still running as it returns,
this follows all of them in one loop (plugin_utils/_job_wait.py) and runs the module again for
the VMs whose jobs ended (once all have, see JobFollower.hold_left), handing each its job and what the module asked to get back (the
internal option _resume, one entry per VM of the run), until none is left or the task's job_timeout passes. Whatever happened to a job,
failed or gone, the module says what it means: only the PowerShell words job failures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hyperv.backup.plugins.plugin_utils import _facts, _options
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_wait import (
    JOB,
    JOB_INFO,
    JobFollower,
    WaitOutcome,
    describe_cancelled,
    describe_timeout,
    describe_unreachable,
)

display = Display()

# A VM's work can take a few jobs in a row (a leftover removed, then the checkpoint; an
# application-consistent checkpoint, then a crash-consistent one): at most this many reruns.
MAX_RERUNS = 8

# Result keys a module reports only in its first run of a task, never in the rerun that finishes jobs.
FIRST_RUN_ONLY = ("destination",)


def batch_message(results: list[dict[str, Any]]) -> str | None:
    """The message of a task with failed VMs, as the module words it (_HvBatch), or None.

    The module words it for the VMs of its own run; after the controller has finished some VMs in
    later runs, the task's message is worded again here from all of them.
    """
    failed = [r for r in results if r.get("failed")]
    if not failed:
        return None
    return f"{len(failed)} of {len(results)} VMs failed: {' | '.join(str(r.get('msg')) for r in failed)}"


def with_warnings(merged: dict[str, Any], first: dict[str, Any], rerun: dict[str, Any]) -> dict[str, Any]:
    """merged with the warnings of the first run and then the rerun, each once.

    ansible-core before 2.19 shows a module's warnings only from the task's final result: those
    of the run that started a job (a fallback, a followed run's job) would be lost with it.
    """
    warnings = list(first.get("warnings") or [])
    warnings += [w for w in rerun.get("warnings") or [] if w not in warnings]
    if warnings:
        merged["warnings"] = warnings
    return merged


def resume_entry(vm_result: dict[str, Any]) -> dict[str, Any]:
    """What a VM's rerun gets back in _resume: the job it was run again for and the state its step kept."""
    return {"job_id": vm_result["job"]["id"], "state": vm_result.get("_resume")}


def hide_internals(result: dict[str, Any]) -> None:
    """Removes what only the collection hands between its runs (_resume) from what the task shows."""
    result.pop("_resume", None)
    for vm_result in result.get("results") or []:
        if isinstance(vm_result, dict):
            vm_result.pop("_resume", None)
    args = (result.get("invocation") or {}).get("module_args")
    if isinstance(args, dict):
        args.pop(_options.INTERNAL, None)


class _Single:
    """The task's one VM: the module's result is the VM's."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args

    def entries(self, result: dict[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
        """(position, the VM's result, the VM's arguments) of each VM."""
        return [(0, result, self.args)]

    def finish_args(self, ended: dict[int, dict[str, Any]]) -> dict[str, Any]:
        return {**self.args, "_resume": [resume_entry(ended[0])]}

    def merge(self, result: dict[str, Any], positions: list[int], rerun: dict[str, Any]) -> dict[str, Any]:
        del positions
        # The rerun finishes the VM's work and its result is the VM's; what only the first run
        # reports (the destination check, made before any checkpoint) is kept from it.
        merged = {**{key: result[key] for key in FIRST_RUN_ONLY if key in result and key not in rerun}, **rerun}
        return with_warnings(merged, result, rerun)

    def settle(self, result: dict[str, Any]) -> dict[str, Any]:
        return result


class _Batch:
    """The VMs of vms: the module's results, one per VM in order."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.vms = [dict(element) for element in args["vms"]]

    def entries(self, result: dict[str, Any]) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
        results = result.get("results")
        if not isinstance(results, list):
            return []
        return [(i, r, {**self.args, **self.vms[i]}) for i, r in enumerate(results) if i < len(self.vms)]

    def finish_args(self, ended: dict[int, dict[str, Any]]) -> dict[str, Any]:
        positions = sorted(ended)
        return {**self.args, "vms": [self.vms[i] for i in positions], "_resume": [resume_entry(ended[i]) for i in positions]}

    def merge(self, result: dict[str, Any], positions: list[int], rerun: dict[str, Any]) -> dict[str, Any]:
        finished = rerun.get("results")
        results = list(result["results"])
        for place, index in enumerate(sorted(positions)):
            if isinstance(finished, list) and place < len(finished):
                results[index] = finished[place]
            else:
                results[index] = {**results[index], "failed": True, "pending": False,
                                  "msg": rerun.get("msg") or "the module returned no result for this VM"}
        return with_warnings({**result, "results": results}, result, rerun)

    def settle(self, result: dict[str, Any]) -> dict[str, Any]:
        results = result.get("results")
        if not isinstance(results, list):
            return result
        result["changed"] = any(r.get("changed") for r in results)
        if "pending" in result:
            result["pending"] = any(r.get("pending") for r in results)
        message = batch_message(results)
        result["failed"] = message is not None
        if message is None:
            result.pop("msg", None)
        else:
            result["msg"] = message
        return result


class JobAction(ActionBase):
    """Runs MODULE; when it returns jobs still running, follows them and runs the module again to finish."""

    MODULE = ""
    CONTROLLER_SPEC: dict[str, dict[str, Any]] = _options.JOB_WAIT_SPEC
    TRANSFERS_FILES = False
    _supports_async = True
    _supports_check_mode = True
    # Replaced in unit tests, which replay recorded module runs without waiting.
    clock: Callable[[], float] | None = None
    sleep: Callable[[float], None] | None = None

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        args, options = _options.split(dict(self._task.args), self.CONTROLLER_SPEC)
        if self._task.async_val:
            result.update(self.run_async(args, task_vars))
        else:
            result.update(self.run_and_follow(args, options, task_vars))
        hide_internals(result)
        # A many-VM task that failed for some VMs still records what the others made.
        failed = result.get("failed") and "results" not in result
        if not (failed or result.get("unreachable") or result.get("pending") or self._task.check_mode):
            fact = self.fact(result, args, task_vars)
            if fact is not None:
                result["ansible_facts"] = {_facts.FACT: fact}
        return result

    def fact(self, result: dict[str, Any], args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any] | None:
        """The new value of the hyperv_backup fact after a successful task, or None to leave it."""
        return None

    def describe(self, args: dict[str, Any], vm_result: dict[str, Any]) -> str:
        """What a VM's job does, for progress lines and the controller's own messages."""
        raise NotImplementedError

    def run_module(self, args: dict[str, Any], task_vars: dict[str, Any], module: str | None = None) -> dict[str, Any]:
        return self._execute_module(module_name=module or self.MODULE, module_args=args, task_vars=task_vars)

    def run_async(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Under the async keyword ansible's wrapper runs the module, which then waits on the host itself."""
        args.setdefault("wait_timeout", int(self._task.async_val))
        return self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars, wrap_async=True)

    def follower(self, options: dict[str, Any], task_vars: dict[str, Any]) -> JobFollower:
        """One follower for the task: its polls read every job it follows in one job_info run."""

        def poll(job_ids: list[str], host_wait: int) -> dict[str, Any]:
            return self.run_module({"job_ids": job_ids, "wait_timeout": host_wait}, task_vars, JOB_INFO)

        host = task_vars.get("inventory_hostname") or self._play_context.remote_addr or ""
        return JobFollower(poll, display=display, host=str(host), timeout=options["job_timeout"], retries=options["connection_retries"],
                           reconnect=self._connection.reset, clock=self.clock, sleep=self.sleep)

    def run_and_follow(self, args: dict[str, Any], options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """Runs the module; follows the jobs it left running; runs it again for the VMs whose jobs ended."""
        task = _Batch(args) if args.get("vms") is not None else _Single(args)
        result = self.run_module(args, task_vars)
        if options["job_timeout"] <= 0:
            return result
        follower = self.follower(options, task_vars)
        for _rerun in range(MAX_RERUNS):
            pending = {index: (vm_result, vm_args) for index, vm_result, vm_args in task.entries(result)
                       if vm_result.get("pending") and vm_result.get("job") and not vm_result.get("failed")}
            if not pending:
                break
            for vm_result, vm_args in pending.values():
                follower.follow(vm_result["job"], self.describe(vm_args, vm_result))
            # Two VMs of vms can wait on one job: a second work of a VM waits on the first one's (_HvBatch).
            outcome = follower.wait(list(dict.fromkeys(str(vm_result["job"]["id"]) for vm_result, _args in pending.values())))
            if outcome.status != "ended":
                result = self.stop_following(task, result, pending, outcome, options, task_vars)
                break
            ended = {index: vm_result for index, (vm_result, _args) in pending.items() if str(vm_result["job"]["id"]) in outcome.ended}
            # Ended well, failed or gone: the module reads what the job made, falls back, or says why not.
            result = task.merge(result, list(ended), self.run_module(task.finish_args(ended), task_vars))
        result = task.settle(result)
        if follower.warnings:
            result["warnings"] = list(result.get("warnings") or []) + follower.warnings
        return result

    def stop_following(self, task: _Single | _Batch, result: dict[str, Any], pending: dict[int, tuple[dict[str, Any], dict[str, Any]]],
                       outcome: WaitOutcome, options: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """The result when following ends before the jobs do: the time is up, the host is lost, or job_info failed."""
        cancelled: dict[int, dict[str, Any]] = {}
        for index, (vm_result, vm_args) in pending.items():
            label = self.describe(vm_args, vm_result)
            job = dict(vm_result["job"])
            if outcome.status == "unreachable":
                return {**result, "unreachable": True, "msg": describe_unreachable(label, job, options["connection_retries"], outcome.error)}
            if outcome.status == "error":
                message = f"{label}: following Hyper-V job {job.get('id')} failed: {outcome.error}"
            elif options["cancel_on_job_timeout"]:
                message, job = self.cancel(label, job, options["job_timeout"], task_vars)
                if job.get("finished"):
                    cancelled[index] = {**vm_result, "job": job, "msg": message}
            else:
                message = describe_timeout(label, job, options["job_timeout"])
            # Pending only while the job still runs on the host: a cancelled one is over.
            failure = {**vm_result, "failed": True, "job": job, "msg": message, "pending": not job.get("finished", False)}
            if isinstance(task, _Batch):
                result["results"][index] = failure
            else:
                result = failure
        if cancelled:
            result = self.settle_cancelled(task, result, cancelled, task_vars)
        return result

    def settle_cancelled(self, task: _Single | _Batch, result: dict[str, Any], cancelled: dict[int, dict[str, Any]],
                         task_vars: dict[str, Any]) -> dict[str, Any]:
        """The result once the module has seen the jobs cancelled at job_timeout end: it drops what it had
        recorded as pending (a catalog entry, a checkpoint record) and says whether anything changed; the
        message stays the cancellation's."""
        rerun = self.run_module(task.finish_args(cancelled), task_vars)
        merged = task.merge(result, list(cancelled), rerun)
        for index, vm_result in cancelled.items():
            if isinstance(task, _Batch):
                merged["results"][index] = {**merged["results"][index], "failed": True, "pending": False, "msg": vm_result["msg"]}
            else:
                merged = {**merged, "failed": True, "pending": False, "msg": vm_result["msg"]}
        return merged

    def cancel(self, label: str, job: dict[str, Any], timeout: float, task_vars: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Asks Hyper-V to cancel a job the task stopped following at job_timeout: (the message, the job as it is now)."""
        cancelled = self.run_module({"job_id": job["id"]}, task_vars, JOB)
        if cancelled.get("failed"):
            return f"{describe_timeout(label, job, timeout)} Cancelling it failed: {cancelled.get('msg')}", job
        now = cancelled.get("job") or job
        return describe_cancelled(label, now, timeout, job), now
