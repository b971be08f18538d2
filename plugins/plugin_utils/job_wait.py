# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Waiting on Hyper-V jobs from the controller.

A module starts the work and waits briefly on the host; a job that outlives that wait is
followed from here, one WinRM round trip per poll (hyperv.backup.job_info, which itself waits
on the host for the current poll interval), with back-off, throttled progress, reconnects on
a dropped connection, and a bounded total time.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from ansible.errors import AnsibleConnectionFailure


def _connection_errors() -> tuple[type[BaseException], ...]:
    """What a lost WinRM connection raises: ansible's own error, or (from the winrm plugin,
    which lets them through) the HTTP stack's connection and transport errors."""
    errors: list[type[BaseException]] = [AnsibleConnectionFailure, ConnectionError, TimeoutError]
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError, Timeout
        errors += [RequestsConnectionError, Timeout]
    except ImportError:
        pass
    try:
        from winrm.exceptions import WinRMTransportError
        errors.append(WinRMTransportError)
    except ImportError:
        pass
    return tuple(errors)


CONNECTION_ERRORS = _connection_errors()

JOB_INFO = "hyperv.backup.job_info"

# Controller-side options shared by every module that can start a job; documented by the
# doc fragment hyperv.backup.job_wait.
JOB_WAIT_ARGSPEC: dict[str, dict[str, Any]] = {
    "job_timeout": {"type": "int", "default": 3600},
    "cancel_on_job_timeout": {"type": "bool", "default": False},
    "connection_retries": {"type": "int", "default": 5},
}


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Poll intervals: first, then growing by factor up to cap (seconds)."""

    first: float = 1.0
    factor: float = 1.5
    cap: float = 15.0

    def intervals(self) -> Iterator[float]:
        interval = self.first
        while True:
            yield interval
            interval = min(self.cap, interval * self.factor)

    def retry_delay(self, failures: int) -> float:
        return min(self.cap, self.first * self.factor ** failures)


class Progress:
    """Job progress through Display, throttled: a line per state change or quarter of the work,
    every percent at -v, every poll at -vvv."""

    def __init__(self, display: Any, label: str) -> None:
        self.display = display
        self.label = label
        self.state: str | None = None
        self.quarter = -1
        self.percent: int | None = None

    def update(self, job: dict[str, Any]) -> None:
        state = str(job.get("state"))
        percent = int(job.get("percent_complete") or 0)
        line = f"{self.label}: Hyper-V job {job.get('id')} {state}, {percent}% complete"
        if state != self.state or percent // 25 > self.quarter:
            self.display.display(line)
        elif percent != self.percent:
            self.display.v(line)
        else:
            self.display.vvv(line)
        self.state, self.quarter, self.percent = state, max(self.quarter, percent // 25), percent


@dataclasses.dataclass
class WaitOutcome:
    """How waiting ended: finished, gone, timeout, unreachable or error."""

    status: str
    job: dict[str, Any]
    polls: int = 0
    warnings: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


Poll = Callable[[int], dict[str, Any]]


def wait_for_job(poll: Poll, job: dict[str, Any], *, timeout: float, retries: int, reconnect: Callable[[], None],
                 progress: Progress, backoff: Backoff = Backoff(), clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> WaitOutcome:
    """Polls until the job ends, disappears, the timeout passes or the host stays unreachable.

    poll(host_wait) returns job_info's result, waiting on the host up to host_wait seconds;
    it raises one of CONNECTION_ERRORS when the connection drops. The job keeps running on the
    host meanwhile, so a lost connection is retried (after reconnect()) up to `retries` times
    in a row before giving up.
    """
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    outcome = WaitOutcome("running", job)
    deadline = clock() + timeout
    intervals = backoff.intervals()
    failures = 0
    progress.update(job)
    while True:
        if outcome.job.get("state") == "gone":
            outcome.status = "gone"
            return outcome
        if outcome.job.get("finished"):
            outcome.status = "finished"
            return outcome
        left = deadline - clock()
        if left <= 0:
            outcome.status = "timeout"
            return outcome
        host_wait = max(1, min(math.ceil(next(intervals)), math.ceil(left)))
        try:
            answer = poll(host_wait)
        except CONNECTION_ERRORS as error:
            failures += 1
            if failures > retries:
                outcome.status = "unreachable"
                outcome.error = str(error)
                return outcome
            delay = backoff.retry_delay(failures)
            outcome.warnings.append(
                f"Connection to the host lost while waiting on Hyper-V job {outcome.job.get('id')} ({error}); "
                f"the job goes on on the host. Retry {failures} of {retries} in {delay:g} s.")
            reconnect()
            sleep(delay)
            continue
        failures = 0
        outcome.polls += 1
        if answer.get("failed"):
            outcome.status = "error"
            outcome.error = str(answer.get("msg", "job_info failed"))
            return outcome
        outcome.job = answer.get("job") or {"id": outcome.job.get("id"), "state": "gone"}
        progress.update(outcome.job)


def describe_timeout(label: str, job: dict[str, Any], timeout: float) -> str:
    return (f"{label}: Hyper-V job {job.get('id')} is still {job.get('state')} at {job.get('percent_complete', 0)}% after "
            f"{timeout:g} s (job_timeout). It goes on on the host: wait on it with hyperv.backup.job_info "
            f"job_id={job.get('id')} wait=true, or rerun this task, which follows the same job.")


def describe_unreachable(label: str, job: dict[str, Any], retries: int, error: str) -> str:
    return (f"{label}: the host stayed unreachable for {retries} retries while waiting on Hyper-V job {job.get('id')} ({error}). "
            f"The job goes on on the host: rerun the task, or wait with hyperv.backup.job_info job_id={job.get('id')} wait=true.")
