"""The role run the way AWX runs it: ansible-runner, a private data dir, extravars with awx_job_id and
survey answers as strings, the machine credential's password answered to the password prompt, and
the fact cache on. The playbook is docs/awx.md's, as printed there."""

from __future__ import annotations

import json
import os
import pathlib
import re

import ansible_runner
import pytest
import yaml

from hvtest import paths
from hvtest.sim.runner import PASSWORD, USER

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "awx.md"


def playbook_in_the_docs() -> str:
    """The job template's playbook, as docs/awx.md prints it."""
    block = re.search(r"```yaml\n(   # backup\.yml\n.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert block, "docs/awx.md has no backup.yml block"
    return "\n".join(line[3:] for line in block.group(1).splitlines()) + "\n"


def untagged(value):
    """Facts as ansible-core 2.19+ caches them (a JSON payload, tagged values as {value, tags,
    __ansible_type}), back to plain data."""
    if isinstance(value, dict) and "__payload__" in value:
        return untagged(json.loads(value["__payload__"]))
    if isinstance(value, dict) and "__ansible_type" in value and "value" in value:
        return untagged(value["value"])
    if isinstance(value, dict):
        return {key: untagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [untagged(item) for item in value]
    return value


def private_data_dir(root: pathlib.Path, server, survey: dict) -> pathlib.Path:
    """An AWX-like private data dir: project, inventory, env/{extravars,passwords,cmdline,envvars,settings}.

    ansible-runner turns the fact cache on itself (jsonfile, under artifacts/), as AWX runs it."""
    (root / "project").mkdir(parents=True)
    (root / "project" / "backup.yml").write_text(playbook_in_the_docs(), encoding="utf-8")
    (root / "inventory").mkdir()
    (root / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"hyperv_hosts": {"hosts": {"hv01": {
        "ansible_host": "127.0.0.1", "ansible_port": server.port, "ansible_connection": "winrm", "ansible_winrm_transport": "basic",
        "ansible_winrm_scheme": "http", "ansible_user": USER}}}}}}), encoding="utf-8")
    env = root / "env"
    env.mkdir()
    (env / "extravars").write_text(yaml.safe_dump({"awx_job_id": 4711, **survey}), encoding="utf-8")
    # The machine credential's password, answered to ansible's prompt as AWX does.
    (env / "passwords").write_text(yaml.safe_dump({r"^SSH [pP]assword:\s*?$": PASSWORD}), encoding="utf-8")
    (env / "cmdline").write_text("--ask-pass -v", encoding="utf-8")
    (env / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": True}), encoding="utf-8")
    variables = {key: value for key, value in paths.ansible_env().items() if key.startswith("ANSIBLE_") or key in ("PATH", "HOME")}
    # ansible-playbook of the tests' venv first on PATH, as an execution environment has it.
    variables["PATH"] = f"{pathlib.Path(paths.tool('ansible-playbook')).parent}{os.pathsep}{variables['PATH']}"
    (env / "envvars").write_text(yaml.safe_dump(variables), encoding="utf-8")
    return root


@pytest.mark.scenario("backup")
def test_an_awx_job_with_survey_strings_keeps_its_summary_shows_progress_per_host_and_no_secret(server, tmp_path, monkeypatch) -> None:
    survey = {"rct_backup_vms": "app01\n  legacy01 \n\n", "rct_backup_destination": server.path("Backup"),
              "rct_backup_mode": "auto", "rct_backup_method": "export", "rct_backup_retention_keep": "2"}
    # ansible-runner looks for ansible-playbook on its own PATH, as in an execution environment.
    monkeypatch.setenv("PATH", f"{pathlib.Path(paths.tool('ansible-playbook')).parent}{os.pathsep}{os.environ['PATH']}")
    # An export that outlives the module's wait (rct_backup_wait_timeout, 5 s): followed from the controller.
    server.add_fault(method="ExportSystemDefinition", vm="app01", job={"duration": 9})
    root = private_data_dir(tmp_path / "awx", server, survey)
    run = ansible_runner.run(private_data_dir=str(root), playbook="backup.yml", inventory=str(root / "inventory" / "hosts.yml"), quiet=True)
    stdout = run.stdout.read()
    assert run.status == "successful" and run.rc == 0, stdout

    # The run is named after the AWX job, and the summary is in the fact cache ansible-runner keeps
    # for the job (artifacts/<job>/fact_cache), which AWX stores with Enable Fact Storage.
    (cache,) = (root / "artifacts").glob("*/fact_cache/*hv01")
    cached = untagged(json.loads(cache.read_text(encoding="utf-8")))
    summary = {entry["vm"]: entry for entry in cached["rct_backup_summary"]}
    assert set(summary) == {"app01", "legacy01"}
    assert all(entry["status"] == "ok" and entry["mode"] == "full" and entry["reference_point"] == "awx-4711" for entry in summary.values())

    # Progress lines (-v, AWX's Verbose) name their host; AWX gets them as verbose events.
    progress = [e for e in run.events if "Hyper-V job" in (e.get("stdout") or "")]
    assert progress, "no progress line"
    assert all(re.search(r"<hv01> .*Hyper-V job", e["stdout"]) for e in progress), [e["stdout"] for e in progress]

    # No warning but the one the operator needs (legacy01 has no integration services, so its
    # checkpoint fell back to crash consistency), no deprecation, and the password nowhere in what
    # the job leaves.
    warnings = [line for line in stdout.splitlines() if "[WARNING]" in line]
    assert len(warnings) == 1 and "of VM 'legacy01'" in warnings[0] and "Falling back to a crash-consistent checkpoint" in warnings[0], warnings
    assert "DEPRECATION" not in stdout, stdout
    assert summary["legacy01"]["consistency"] == "crash" and summary["app01"]["consistency"] == "application"
    for artifact in (root / "artifacts").rglob("*"):
        if artifact.is_file():
            assert PASSWORD not in artifact.read_text(encoding="utf-8", errors="replace"), artifact
