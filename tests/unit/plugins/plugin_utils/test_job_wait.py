# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import itertools

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.hyperv.backup.plugins.plugin_utils import facts
from ansible_collections.hyperv.backup.plugins.plugin_utils.job_wait import Backoff, Progress, wait_for_job


class Shown:
    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {"display": [], "v": [], "vvv": []}

    def display(self, msg: str) -> None:
        self.lines["display"].append(msg)

    def v(self, msg: str) -> None:  # pylint: disable=invalid-name
        self.lines["v"].append(msg)

    def vvv(self, msg: str) -> None:
        self.lines["vvv"].append(msg)


def job(percent: int, state: str = "running", finished: bool = False) -> dict:
    return {"id": "J1", "state": state, "percent_complete": percent, "finished": finished, "succeeded": finished}


def test_backoff_grows_to_its_cap_and_stays() -> None:
    assert list(itertools.islice(Backoff().intervals(), 10)) == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 11.390625, 15.0, 15.0, 15.0]


def test_progress_prints_a_line_per_quarter_and_state_change_only() -> None:
    shown = Shown()
    progress = Progress(shown, "RP")
    for percent in range(0, 100):
        progress.update(job(percent))
    progress.update(job(100, "completed", True))
    quarters = ["0% complete", "25% complete", "50% complete", "75% complete", "100% complete"]
    assert [line.split(", ")[-1] for line in shown.lines["display"]] == quarters
    assert len(shown.lines["v"]) == 96 and shown.lines["vvv"] == []


def test_repeated_percent_goes_to_debug_verbosity() -> None:
    shown = Shown()
    progress = Progress(shown, "RP")
    for _repeat in range(5):
        progress.update(job(10))
    assert len(shown.lines["display"]) == 1 and len(shown.lines["vvv"]) == 4


def test_consecutive_failures_reset_after_a_good_poll() -> None:
    answers = iter([AnsibleConnectionFailure("x"), {"job": job(10)}, AnsibleConnectionFailure("y"), {"job": job(100, "completed", True)}])

    def poll(_wait: int) -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    slept: list[float] = []
    outcome = wait_for_job(poll, job(0), timeout=100, retries=1, reconnect=lambda: None, progress=Progress(Shown(), "RP"),
                           clock=lambda: 0.0, sleep=slept.append)
    assert outcome.status == "finished" and outcome.polls == 2 and len(outcome.warnings) == 2 and slept == [1.5, 1.5]


def test_a_job_that_vanished_ends_the_wait_as_gone() -> None:
    outcome = wait_for_job(lambda _w: {"job": {"id": "J1", "state": "gone"}}, job(0), timeout=100, retries=1, reconnect=lambda: None,
                           progress=Progress(Shown(), "RP"), clock=lambda: 0.0, sleep=lambda _s: None)
    assert outcome.status == "gone" and outcome.polls == 1


def test_last_poll_waits_no_longer_than_the_time_left() -> None:
    now = [0.0]
    waits: list[int] = []

    def poll(wait: int) -> dict:
        waits.append(wait)
        now[0] += wait
        return {"job": job(1)}

    outcome = wait_for_job(poll, job(0), timeout=10, retries=1, reconnect=lambda: None, progress=Progress(Shown(), "RP"),
                           clock=lambda: now[0], sleep=lambda _s: None)
    assert outcome.status == "timeout" and waits == [1, 2, 3, 4] and sum(waits) == 10


def test_fact_drops_empty_vms_and_copies() -> None:
    first = facts.with_reference_point(None, "web01", "a", {"instance_id": "1"})
    second = facts.with_reference_point(first, "web01", "a", None)
    assert first == {"reference_points": {"web01": {"a": {"instance_id": "1"}}}}
    assert second == {"reference_points": {}}
