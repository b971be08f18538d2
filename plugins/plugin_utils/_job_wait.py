# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Following Hyper-V jobs from the controller (internal to this collection).

One loop follows every job a task has running: each poll is one job_info run that waits on
the host until one of the jobs ends or the poll interval passes, and answers with all of them.
The interval grows (one back-off for the task), progress goes to Display at -v with the host
named, a dropped connection is retried (the jobs go on on the host), and the wait is bounded.
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
JOB = "hyperv.backup.job"


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


# How long the first job seen ended waits for the others of the task before the module is run
# again for it: one run then finishes every VM whose job ended meanwhile. Well under the five
# minutes after which Hyper-V forgets a finished job (Msvm_ConcreteJob.TimeBeforeRemoval), since
# the module reads what the job made from it.
HOLD_ENDED = 60.0


def ended(job: dict[str, Any]) -> bool:
    """Whether a job (as job_info reports it) has ended or the host no longer has it."""
    return bool(job.get("finished")) or job.get("state") == "gone"


def ended_well(job: dict[str, Any]) -> bool:
    """Whether a job ended with success: what is left of its VM's work waits on no new job, unlike a fallback after a failure."""
    return bool(job.get("finished")) and bool(job.get("succeeded"))


class Progress:
    """Progress lines of one job for one host, through Display: at -v a line when the job is first
    seen, changes state or passes a quarter of the work; at -vvv every poll. Each line names the
    host and the time since the task started following, and, once Hyper-V's percentage has moved,
    an estimate of the time left at the pace seen so far."""

    def __init__(self, display: Any, host: str, label: str, started: float) -> None:
        self.display = display
        self.host = host
        self.label = label
        self.started = started
        self.state: str | None = None
        self.quarter = -1
        self.first: tuple[float, int] | None = None  # (when, percent) the job was first seen

    def left(self, percent: int, now: float) -> float | None:
        """Seconds left at the pace since the job was first seen; None until the percentage has moved."""
        if self.first is None or not 0 < percent < 100:
            return None
        seen_at, seen_percent = self.first
        if percent <= seen_percent or now <= seen_at:
            return None
        return (100 - percent) * (now - seen_at) / (percent - seen_percent)

    def update(self, job: dict[str, Any], now: float) -> None:
        state = str(job.get("state"))
        percent = int(job.get("percent_complete") or 0)
        if self.first is None:
            self.first = (now, percent)
        left = self.left(percent, now) if not job.get("finished") else None
        estimate = f", about {left:.0f} s left" if left is not None else ""
        line = f"{self.label}: Hyper-V job {job.get('id')} {state}, {percent}% complete, {now - self.started:.0f} s{estimate}"
        if state != self.state or percent // 25 > self.quarter:
            self.display.v(line, host=self.host)
        else:
            self.display.vvv(line, host=self.host)
        self.state, self.quarter = state, max(self.quarter, percent // 25)


@dataclasses.dataclass
class WaitOutcome:
    """How one wait ended: ended (some jobs ended), timeout, unreachable or error."""

    status: str
    ended: list[str] = dataclasses.field(default_factory=list)
    error: str = ""


Poll = Callable[[list[str], int], dict[str, Any]]


class JobFollower:
    """Follows the jobs of one task until a deadline, with one back-off and progress per job."""

    def __init__(self, poll: Poll, *, display: Any, host: str, timeout: float, retries: int,
                 reconnect: Callable[[], None], backoff: Backoff = Backoff(), hold: float = HOLD_ENDED,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        self.poll = poll
        self.display = display
        self.host = host
        self.retries = retries
        self.reconnect = reconnect
        self.backoff = backoff
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.started = self.clock()
        self.deadline = self.started + timeout
        self.intervals = backoff.intervals()
        self.hold = hold
        self.jobs: dict[str, dict[str, Any]] = {}
        self.seen_ended: dict[str, float] = {}  # job id -> when a poll first saw it ended
        self.progress: dict[str, Progress] = {}
        self.warnings: list[str] = []
        self.polls = 0

    def follow(self, job: dict[str, Any], label: str) -> None:
        """Adds a job (as the module reported it) to those followed."""
        job_id = str(job.get("id"))
        self.jobs[job_id] = job
        if job_id not in self.progress:
            self.progress[job_id] = Progress(self.display, self.host, label, self.started)
        self.progress[job_id].update(job, self.clock())

    def hold_left(self, job_ids: list[str], done: list[str], now: float) -> float | None:
        """Seconds the jobs that ended may still wait for the others, or None when the module must run for them now.

        None when all have ended, or one ended otherwise than well (the module may start another job
        for it: a crash-consistent checkpoint, a full export), or the first seen ended has waited
        the hold out.
        """
        if len(done) == len(job_ids) or not all(ended_well(self.jobs[job_id]) for job_id in done):
            return None
        left = self.hold - (now - min(self.seen_ended[job_id] for job_id in done))
        return left if left > 0 else None

    def wait(self, job_ids: list[str]) -> WaitOutcome:
        """Polls the jobs until they have all ended (or some, see hold_left), the deadline passes or the host stays unreachable."""
        failures = 0
        while True:
            now = self.clock()
            done = [job_id for job_id in job_ids if ended(self.jobs[job_id])]
            for job_id in done:
                self.seen_ended.setdefault(job_id, now)
            hold = self.hold_left(job_ids, done, now) if done else None
            if done and hold is None:
                return WaitOutcome("ended", done)
            left = self.deadline - now
            if left <= 0:
                return WaitOutcome("ended", done) if done else WaitOutcome("timeout")
            # Only the jobs still running: the host's wait ends as soon as one of those ends.
            running = [job_id for job_id in job_ids if job_id not in done]
            limits = [next(self.intervals), left] + ([hold] if hold is not None else [])
            host_wait = max(1, math.ceil(min(limits)))
            try:
                answer = self.poll(running, host_wait)
            except CONNECTION_ERRORS as error:
                failures += 1
                if failures > self.retries:
                    return WaitOutcome("unreachable", error=str(error))
                delay = self.backoff.retry_delay(failures)
                self.warnings.append(
                    f"Connection to the host lost while waiting on Hyper-V job {', '.join(job_ids)} ({error}); "
                    f"the job goes on on the host. Retry {failures} of {self.retries} in {delay:g} s.")
                self.reconnect()
                self.sleep(delay)
                continue
            self.polls += 1
            if answer.get("failed"):
                # job_info answers for any job id (a gone one is state=gone): a failed poll is the
                # host's or the transport's (a pwsh that died, a reply cut short); reading again is harmless.
                failures += 1
                error = poll_failure(answer)
                if failures > self.retries:
                    return WaitOutcome("error", error=error)
                delay = self.backoff.retry_delay(failures)
                self.warnings.append(
                    f"Reading Hyper-V job {', '.join(running)} failed ({error}); the job goes on on the host. "
                    f"Retry {failures} of {self.retries} in {delay:g} s.")
                self.sleep(delay)
                continue
            failures = 0
            now = self.clock()
            for job in answer.get("jobs") or []:
                job_id = str(job.get("id"))
                if job_id in self.jobs:
                    self.jobs[job_id] = job
                    self.progress[job_id].update(job, now)


def poll_failure(answer: dict[str, Any]) -> str:
    """What a failed job_info run says: its message, and the end of what the host printed when that is all there is to go on."""
    error = str(answer.get("msg") or "job_info failed")
    printed = " ".join(str(answer.get(key) or "").strip() for key in ("module_stderr", "module_stdout")).strip()
    if printed:
        error += f" (the host printed: {printed[-300:]})"
    return error


def describe_timeout(label: str, job: dict[str, Any], timeout: float) -> str:
    return (f"{label}: Hyper-V job {job.get('id')} is still {job.get('state')} at {job.get('percent_complete', 0)}% after "
            f"{timeout:g} s (job_timeout). It goes on on the host: wait on it with hyperv.backup.job_info "
            f"job_id={job.get('id')} wait=true, or rerun this task, which follows the same job.")


def describe_cancelled(label: str, job: dict[str, Any], timeout: float, running: dict[str, Any]) -> str:
    """The message of a job cancelled at job_timeout: job is the job as cancelled, running as last seen running."""
    return (f"{label}: Hyper-V job {job.get('id')} was still {running.get('state')} at {running.get('percent_complete', 0)}% after "
            f"{timeout:g} s (job_timeout) and was cancelled (cancel_on_job_timeout); it is {job.get('state')} now and made nothing "
            f"that was recorded. Run the task again to start over, with a longer job_timeout if the work needs it.")


def describe_unreachable(label: str, job: dict[str, Any], retries: int, error: str) -> str:
    return (f"{label}: the host stayed unreachable for {retries} retries while waiting on Hyper-V job {job.get('id')} ({error}). "
            f"The job goes on on the host: rerun the task, or wait with hyperv.backup.job_info job_id={job.get('id')} wait=true.")
