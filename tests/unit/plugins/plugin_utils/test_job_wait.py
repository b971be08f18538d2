# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import itertools

import pytest
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.hyperv.backup.plugins.plugin_utils import _facts, _options
from ansible_collections.hyperv.backup.plugins.plugin_utils._job_wait import HOLD_ENDED, Backoff, JobFollower, Progress


class Shown:
    """Stands in for Display: what was printed, at which verbosity, for which host."""

    def __init__(self) -> None:
        self.lines: dict[str, list[tuple[str, str | None]]] = {"display": [], "v": [], "vvv": []}

    def display(self, msg: str, **kwargs) -> None:
        self.lines["display"].append((msg, kwargs.get("host")))

    def v(self, msg: str, host: str | None = None) -> None:  # pylint: disable=invalid-name
        self.lines["v"].append((msg, host))

    def vvv(self, msg: str, host: str | None = None) -> None:
        self.lines["vvv"].append((msg, host))


def job(job_id: str, percent: int, state: str = "running", finished: bool = False) -> dict:
    return {"id": job_id, "state": state, "percent_complete": percent, "finished": finished, "succeeded": finished}


def follower(poll, shown: Shown | None = None, timeout: float = 100, now: list[float] | None = None, slept: list[float] | None = None) -> JobFollower:
    clock = now if now is not None else [0.0]
    return JobFollower(poll, display=shown or Shown(), host="hv01", timeout=timeout, retries=1, reconnect=lambda: None,
                       clock=lambda: clock[0], sleep=(slept.append if slept is not None else lambda _s: None))


def test_backoff_grows_to_its_cap_and_stays() -> None:
    assert list(itertools.islice(Backoff().intervals(), 10)) == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 11.390625, 15.0, 15.0, 15.0]


def test_progress_is_verbose_only_a_line_per_quarter_and_state_change_each_naming_the_host() -> None:
    shown = Shown()
    progress = Progress(shown, "hv07", "RP", started=0.0)
    for percent in range(0, 100):
        progress.update(job("J1", percent), now=float(percent))
    progress.update(job("J1", 100, "completed", True), now=120.0)
    assert shown.lines["display"] == []
    assert [line.split(", ", 1)[1] for line, _host in shown.lines["v"]] == [
        "0% complete, 0 s", "25% complete, 25 s, about 75 s left", "50% complete, 50 s, about 50 s left", "75% complete, 75 s, about 25 s left",
        "100% complete, 120 s"]
    assert {host for _line, host in shown.lines["v"] + shown.lines["vvv"]} == {"hv07"}
    assert len(shown.lines["vvv"]) == 96


def test_the_estimate_follows_the_pace_since_the_job_was_first_seen_and_waits_for_it_to_move() -> None:
    shown = Shown()
    progress = Progress(shown, "hv07", "Export", started=0.0)
    progress.update(job("J2", 40), now=10.0)  # first seen at 40%: nothing to measure a pace by yet
    progress.update(job("J2", 40), now=20.0)
    progress.update(job("J2", 60), now=30.0)  # 20 points in 20 s: 40 points left take 40 s
    assert [line.split(", ", 1)[1] for line, _host in shown.lines["v"]] == ["40% complete, 10 s", "60% complete, 30 s, about 40 s left"]
    assert [line.split(", ", 1)[1] for line, _host in shown.lines["vvv"]] == ["40% complete, 20 s"]


def test_one_poll_reads_every_job_running_and_the_wait_ends_when_all_have_ended() -> None:
    """One module run finishes both VMs: the wait goes on for A once B has ended, polling only A."""
    polls = []
    answers = iter([[job("A", 50), job("B", 100, "completed", True)], [job("A", 100, "completed", True)]])

    def poll(job_ids: list[str], wait: int) -> dict:
        polls.append((list(job_ids), wait))
        return {"jobs": next(answers)}

    follow = follower(poll)
    follow.follow(job("A", 0), "VM a")
    follow.follow(job("B", 0), "VM b")
    outcome = follow.wait(["A", "B"])
    assert outcome.status == "ended" and outcome.ended == ["A", "B"]
    assert polls == [(["A", "B"], 1), (["A"], 2)], "one job_info run for both jobs, then for the one still running"


def test_a_job_that_failed_ends_the_wait_at_once_for_its_fallback() -> None:
    failed = {**job("B", 30, "exception", True), "succeeded": False}
    follow = follower(lambda _ids, _w: {"jobs": [job("A", 50), failed]})
    follow.follow(job("A", 0), "VM a")
    follow.follow(job("B", 0), "VM b")
    assert follow.wait(["A", "B"]).ended == ["B"] and follow.polls == 1


def test_a_job_that_ended_waits_for_the_others_no_longer_than_the_hold() -> None:
    """Hyper-V forgets a finished job five minutes after its end: the module must read it well before."""
    now = [0.0]
    waits: list[int] = []

    def poll(_ids: list[str], wait: int) -> dict:
        waits.append(wait)
        now[0] += wait
        return {"jobs": [job("A", 10), job("B", 100, "completed", True)] if len(waits) == 1 else [job("A", 10)]}

    follow = follower(poll, now=now)
    follow.follow(job("A", 0), "VM a")
    follow.follow(job("B", 0), "VM b")
    outcome = follow.wait(["A", "B"])
    assert outcome.ended == ["B"] and now[0] - 1 == HOLD_ENDED, "B was seen ended after the first poll, and held exactly the hold"
    assert max(waits) <= 15


def test_jobs_that_ended_are_finished_when_the_time_is_up_before_the_others() -> None:
    now = [0.0]

    def poll(_ids: list[str], wait: int) -> dict:
        now[0] += wait
        return {"jobs": [job("A", 10), job("B", 100, "completed", True)]}

    follow = follower(poll, timeout=5, now=now)
    follow.follow(job("A", 0), "VM a")
    follow.follow(job("B", 0), "VM b")
    assert follow.wait(["A", "B"]).ended == ["B"] and now[0] == 5
    assert follow.wait(["A"]).status == "timeout"


def test_the_back_off_goes_on_across_waits_of_one_task() -> None:
    waits: list[int] = []
    answers = iter([[job("A", 10)], [job("A", 100, "completed", True)], [job("B", 10)], [job("B", 100, "completed", True)]])

    def poll(job_ids: list[str], wait: int) -> dict:
        waits.append(wait)
        return {"jobs": next(answers)}

    follow = follower(poll)
    follow.follow(job("A", 0), "a")
    assert follow.wait(["A"]).ended == ["A"]
    follow.follow(job("B", 0), "b")
    assert follow.wait(["B"]).ended == ["B"]
    assert waits == [1, 2, 3, 4]


def test_consecutive_failures_reset_after_a_good_poll() -> None:
    answers = iter([AnsibleConnectionFailure("x"), {"jobs": [job("J1", 10)]}, AnsibleConnectionFailure("y"), {"jobs": [job("J1", 100, "completed", True)]}])

    def poll(_ids: list[str], _wait: int) -> dict:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    slept: list[float] = []
    follow = follower(poll, slept=slept)
    follow.follow(job("J1", 0), "RP")
    outcome = follow.wait(["J1"])
    assert outcome.status == "ended" and follow.polls == 2 and len(follow.warnings) == 2 and slept == [1.5, 1.5]


def test_too_many_failures_in_a_row_are_unreachable() -> None:
    def poll(_ids: list[str], _wait: int) -> dict:
        raise AnsibleConnectionFailure("gone")

    follow = follower(poll)
    follow.follow(job("J1", 0), "RP")
    outcome = follow.wait(["J1"])
    assert outcome.status == "unreachable" and outcome.error == "gone"


def test_a_poll_that_failed_is_read_again_with_a_warning_then_ends_the_wait_naming_what_the_host_printed() -> None:
    """A job_info run whose output was not a result (a pwsh that died under load, as a benchmark fleet
    run saw) is no news about the job: it is read again, up to connection_retries times in a row."""
    broken = {"failed": True, "msg": "Module result deserialization failed: No start of json char found", "module_stderr": "pwsh: killed"}
    answers = iter([broken, {"jobs": [job("J1", 100, "completed", True)]}])
    slept: list[float] = []
    follow = follower(lambda _ids, _w: next(answers), slept=slept)
    follow.follow(job("J1", 0), "RP")
    assert follow.wait(["J1"]).ended == ["J1"] and slept == [1.5]
    assert follow.warnings == ["Reading Hyper-V job J1 failed (Module result deserialization failed: No start of json char found "
                               "(the host printed: pwsh: killed)); the job goes on on the host. Retry 1 of 1 in 1.5 s."]
    always = follower(lambda _ids, _w: broken)
    always.follow(job("J1", 0), "RP")
    outcome = always.wait(["J1"])
    assert outcome.status == "error" and outcome.error.endswith("(the host printed: pwsh: killed)") and always.polls == 2


def test_a_job_that_vanished_ends_the_wait() -> None:
    follow = follower(lambda _ids, _w: {"jobs": [{"id": "J1", "state": "gone"}]})
    follow.follow(job("J1", 0), "RP")
    assert follow.wait(["J1"]).ended == ["J1"] and follow.polls == 1


def test_last_poll_waits_no_longer_than_the_time_left() -> None:
    now = [0.0]
    waits: list[int] = []

    def poll(_ids: list[str], wait: int) -> dict:
        waits.append(wait)
        now[0] += wait
        return {"jobs": [job("J1", 1)]}

    follow = follower(poll, timeout=10, now=now)
    follow.follow(job("J1", 0), "RP")
    assert follow.wait(["J1"]).status == "timeout" and waits == [1, 2, 3, 4] and sum(waits) == 10


def test_controller_options_come_from_the_doc_fragment() -> None:
    assert _options.JOB_WAIT_SPEC == {
        "job_timeout": {"type": "int", "default": 3600},
        "cancel_on_job_timeout": {"type": "bool", "default": False},
        "connection_retries": {"type": "int", "default": 5},
    }
    module_args, options = _options.split({"vm": "x", "job_timeout": "60"}, _options.JOB_WAIT_SPEC)
    assert module_args == {"vm": "x"} and options == {"job_timeout": 60, "cancel_on_job_timeout": False, "connection_retries": 5}
    with pytest.raises(AnsibleActionFail, match="job_timeout must be 0 or more, got -1."):
        _options.split({"job_timeout": -1}, _options.JOB_WAIT_SPEC)


def test_fact_drops_empty_vms_and_copies() -> None:
    web01 = {"name": "web01", "id": "6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162"}
    first = _facts.with_reference_point(None, web01, "a", {"instance_id": "1"})
    second = _facts.with_reference_point(first, web01, "a", None)
    assert first == {"reference_points": {"6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162": {"a": {"instance_id": "1"}}}}
    assert second == {"reference_points": {}}


def test_fact_keys_vms_by_id_so_same_named_vms_do_not_collide() -> None:
    one = _facts.with_reference_point(None, {"name": "web01", "id": "00000000-0000-4000-8000-000000000001"}, "a", {"instance_id": "1"})
    two = _facts.with_reference_point(one, {"name": "WEB01", "id": "00000000-0000-4000-8000-000000000002"}, "a", {"instance_id": "2"})
    same = _facts.with_reference_point(two, {"name": "web01", "id": "00000000-0000-4000-8000-000000000001".upper()}, "b", {"instance_id": "3"})
    assert same["reference_points"] == {
        "00000000-0000-4000-8000-000000000001": {"a": {"instance_id": "1"}, "b": {"instance_id": "3"}},
        "00000000-0000-4000-8000-000000000002": {"a": {"instance_id": "2"}},
    }
    assert _facts.with_reference_point(same, {"name": "web01"}, "c", {"instance_id": "4"}) == same, "no id, no entry"
