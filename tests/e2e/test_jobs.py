"""Hyper-V jobs followed from the controller: progress, dropped connections, timeouts, resume, facts."""

from __future__ import annotations

import pathlib
import re
import signal
import subprocess
import time

import pytest
import yaml
from conftest import SCENARIOS, invoked

from hvtest import paths
from hvtest.sim.runner import PASSWORD, USER, SimServer

CREATE = "Msvm_VirtualSystemReferencePointService.CreateReferencePoint"
LOST = "Connection to the host lost while waiting on Hyper-V job"


def rp(**args):
    return {"hyperv.backup.reference_point": args}


def job_info(**args):
    return {"hyperv.backup.job_info": args}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.scenario("long")
def test_ninety_second_job_with_two_dropped_connections_ends_in_success(play, server) -> None:
    server.endpoint_faults(drop_receives=2, drop_module="job_info")
    started = time.monotonic()
    (result,) = play(rp(vm="sql01", name="nightly", wait_timeout=3), extra=("-v",))
    took = time.monotonic() - started
    assert result["_status"] == "CHANGED" and result["reference_point"]["name"] == "nightly"
    assert result["job"]["state"] == "completed" and result["job"]["percent_complete"] == 100
    assert len(result["reference_point"]["disks"]) == 3
    assert took >= 88, "the job cannot have ended before its 90 s"
    output = flat(play.last_output)
    assert output.count(LOST) == 2
    assert "Retry 1 of 5 in 1.5 s." in output and "Retry 2 of 5 in 2.25 s." in output
    # Progress at -v: a few lines (state changes and quarters), not one per poll, each naming the host.
    progress = [line for line in play.last_output.splitlines() if ": Hyper-V job " in line and "% complete" in line]
    assert 3 <= len(progress) <= 8, progress
    assert all(line.startswith("<hv01> Reference point 'nightly' of VM 'sql01': Hyper-V job") for line in progress), progress
    assert re.search(r"running, \d+% complete, \d+ s$", progress[0])
    assert invoked(server).count(CREATE) == 1
    polls = [r for r in server.calls()["module_runs"] if r["module"] == "job_info"]
    assert 8 <= len(polls) <= 20, "back-off from 1 s to 15 s makes about a dozen polls in 90 s"


@pytest.mark.scenario("slow")
def test_too_many_dropped_connections_report_unreachable_with_the_job_id(play, server) -> None:
    server.endpoint_faults(drop_receives=3, drop_module="job_info")
    (result,) = play(rp(vm="big01", name="n", wait_timeout=1, connection_retries=2))
    assert result["_status"] == "UNREACHABLE"
    job_id = result["job"]["id"]
    assert f"the host stayed unreachable for 2 retries while waiting on Hyper-V job {job_id}" in result["msg"]
    assert f"hyperv.backup.job_info job_id={job_id} wait=true" in result["msg"]


@pytest.mark.scenario("slow", vms=[{"name": "big01", "id": "5a5a5a5a-0000-4000-8000-000000000001"},
                                   {"name": "big02", "id": "5a5a5a5a-0000-4000-8000-000000000002"}])
def test_hung_job_times_out_with_id_state_and_percent_then_cancels(play, server) -> None:
    server.add_fault(method="CreateReferencePoint", job={"never_ends": True})
    server.add_fault(method="CreateReferencePoint", job={"never_ends": True})
    # Two VMs: the first job goes on, and Hyper-V refuses a second one on the same VM (32775).
    timed_out, cancelled = play(
        {**rp(vm="big01", name="n", wait_timeout=1, job_timeout=3), "ignore_errors": True},
        {**rp(vm="big02", name="m", wait_timeout=1, job_timeout=3, cancel_on_job_timeout=True), "ignore_errors": True},
    )
    job_id = timed_out["job"]["id"]
    assert timed_out["_status"] == "FAILED"
    assert re.match(rf"Reference point 'n' of VM 'big01': Hyper-V job {job_id} is still running at \d+% after 3 s \(job_timeout\)\. "
                    rf"It goes on on the host: wait on it with hyperv.backup.job_info job_id={job_id} wait=true", timed_out["msg"])
    assert cancelled["_status"] == "FAILED" and cancelled["pending"] is False
    assert re.match(rf"Reference point 'm' of VM 'big02': Hyper-V job {cancelled['job']['id']} was still running at \d+% after 3 s \(job_timeout\) "
                    r"and was cancelled \(cancel_on_job_timeout\); it is terminated now and made nothing that was recorded\. "
                    r"Run the task again to start over", cancelled["msg"]), cancelled["msg"]
    jobs = server.state()["jobs"]
    assert jobs[job_id]["JobState"] == 4 and jobs[cancelled["job"]["id"]]["JobState"] == 8


@pytest.mark.scenario("slow")
def test_job_info_resumes_waiting_on_a_job_started_earlier(play, server) -> None:
    started, = play(rp(vm="big01", name="n", wait_timeout=0, job_timeout=0))
    assert started["pending"] is True
    waited, = play(job_info(job_id=started["job"]["id"], wait=True))
    assert waited["job"]["state"] == "completed" and waited["exists"] is True
    again, = play(rp(vm="big01", name="n"))
    assert again["changed"] is True  # the catalog records the end the controller saw
    assert again["reference_point"]["name"] == "n" and again["job"]["id"] == started["job"]["id"]
    assert invoked(server).count(CREATE) == 1


@pytest.mark.scenario("slow")
def test_killed_controller_then_rerun_makes_exactly_one_reference_point(server, tmp_path) -> None:
    playbook = tmp_path / "nightly.yml"
    playbook.write_text(yaml.safe_dump([{"name": "nightly", "hosts": "hyperv", "gather_facts": False,
                                         "tasks": [rp(vm="big01", name="nightly", wait_timeout=1)]}]), encoding="utf-8")
    controller = subprocess.Popen(  # pylint: disable=consider-using-with
        [paths.tool("ansible-playbook"), "-i", str(server.inventory()), str(playbook)],
        env=paths.ansible_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not any(c["op"] == "job_started" for c in server.calls()["calls"]):
            assert time.monotonic() < deadline, "the play never started its job"
            time.sleep(0.2)
        time.sleep(1.5)  # now polling from the controller
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait()
    rerun = server.playbook(playbook)
    assert rerun.returncode == 0, rerun.stdout
    points = [p for p in server.state()["reference_points"] if p["VirtualSystemIdentifier"].startswith("5A5A5A5A")]
    assert len(points) == 1
    assert invoked(server).count(CREATE) == 1


@pytest.mark.scenario("slow")
def test_fact_is_set_for_later_tasks_and_dropped_on_removal(play, server) -> None:
    results = play(
        rp(vm="big01", name="a", wait_timeout=10),
        rp(vm="big01", name="b", wait_timeout=10),
        {"ansible.builtin.assert": {"that": [
            "hyperv_backup.reference_points[big01].a.instance_id != hyperv_backup.reference_points[big01].b.instance_id",
            "hyperv_backup.reference_points[big01].b.disks | length == 3",
            "hyperv_backup.reference_points[big01].b.vm_name == 'big01'",
        ]}, "vars": {"big01": "5a5a5a5a-0000-4000-8000-000000000001"}},
        rp(vm="big01", name="a", state="absent", wait_timeout=10),
        {"ansible.builtin.assert": {"that": ["'a' not in hyperv_backup.reference_points[big01]", "'b' in hyperv_backup.reference_points[big01]"]},
         "vars": {"big01": "5a5a5a5a-0000-4000-8000-000000000001"}},
    )
    assert [r["_status"] for r in results] == ["CHANGED", "CHANGED", "SUCCESS", "CHANGED", "SUCCESS"]


@pytest.mark.scenario("slow")
def test_check_mode_starts_no_job_and_sets_no_fact(play, server) -> None:
    (result,) = play(rp(vm="big01", name="n"), check=True)
    assert result["changed"] is True and "ansible_facts" not in result
    assert invoked(server) == []


@pytest.mark.scenario("slow")
def test_module_defaults_through_the_action_group(play, server, tmp_path) -> None:
    names = server.path("Backup", "names.json")
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "defaults", "hosts": "hyperv", "gather_facts": False,
        "module_defaults": {"group/hyperv.backup.all": {"catalog_path": names}},
        "tasks": [rp(vm="big01", name="n", wait_timeout=10), {"hyperv.backup.reference_point_info": {}, "register": "listing"},
                  {"ansible.builtin.assert": {"that": [f"listing.catalog_path == '{names}'"]}}],
    }]), encoding="utf-8")
    done = server.playbook(playbook)
    assert done.returncode == 0, done.stdout
    assert pathlib.Path(names).is_file()


def test_three_hosts_following_jobs_print_no_progress_by_default_and_tagged_lines_with_v(tmp_path) -> None:
    scenario = SCENARIOS / "slow.yml"
    with SimServer(scenario, tmp_path / "a") as one, SimServer(scenario, tmp_path / "b") as two, SimServer(scenario, tmp_path / "c") as three:
        inventory = tmp_path / "hosts.yml"
        hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": server.port, "ansible_connection": "winrm",
                        "ansible_winrm_transport": "basic", "ansible_winrm_scheme": "http", "ansible_user": USER, "ansible_password": PASSWORD}
                 for name, server in (("hv-a", one), ("hv-b", two), ("hv-c", three))}
        inventory.write_text(yaml.safe_dump({"all": {"children": {"hyperv": {"hosts": hosts}}}}), encoding="utf-8")
        playbook = tmp_path / "play.yml"
        playbook.write_text(yaml.safe_dump([{"name": "three", "hosts": "hyperv", "gather_facts": False,
                                             "tasks": [rp(vm="big01", name="n", wait_timeout=0)]}]), encoding="utf-8")
        quiet = subprocess.run([paths.tool("ansible-playbook"), "-i", str(inventory), str(playbook)], env=paths.ansible_env(),
                               capture_output=True, text=True, check=False)
        assert quiet.returncode == 0, quiet.stdout
        assert "Hyper-V job" not in quiet.stdout
        playbook.write_text(yaml.safe_dump([{"name": "three", "hosts": "hyperv", "gather_facts": False,
                                             "tasks": [rp(vm="big01", name="m", wait_timeout=0)]}]), encoding="utf-8")
        verbose = subprocess.run([paths.tool("ansible-playbook"), "-i", str(inventory), str(playbook), "-v"], env=paths.ansible_env(),
                                 capture_output=True, text=True, check=False)
        assert verbose.returncode == 0, verbose.stdout
        lines = [line for line in verbose.stdout.splitlines() if "Hyper-V job" in line]
        for host in ("hv-a", "hv-b", "hv-c"):
            own = [line for line in lines if line.startswith(f"<{host}> Reference point 'm' of VM 'big01': Hyper-V job ")]
            assert own and own[-1].split(" Hyper-V job ")[1].split(" ")[1] == "completed,", lines
        assert all(line.startswith(("<hv-a> ", "<hv-b> ", "<hv-c> ")) for line in lines), lines
