"""Module docs render, and their EXAMPLES and RETURN say what the PowerShell code does."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml

from hvtest import collection, paths, pstree, troubleshooting

MODULES = collection.module_names()
UTILS = collection.ROOT / "plugins" / "module_utils"


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders(name: str) -> None:
    done = subprocess.run([paths.tool("ansible-doc"), f"hyperv.backup.{name}"], env=paths.ansible_env(),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"hyperv.backup.{name}" in done.stdout
    assert "EXAMPLES:" in done.stdout and "RETURN VALUES:" in done.stdout
    assert "[WARNING]" not in done.stderr, done.stderr


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_only_documented_options(name: str) -> None:
    docs = collection.module_docs(name)
    options = set(docs["documentation"]["options"])
    for task in docs["examples"]:
        args = task.get(f"hyperv.backup.{name}")
        if args is None:
            continue
        assert set(args or {}) <= options, task["name"]


def _result_keys(name: str) -> set[str]:
    """Keys the module sets: $module.Result.<key> = ... at the top, $Result.<key> = ... in its steps."""
    source = pstree.parse(collection.ROOT / "plugins" / "modules" / f"{name}.ps1")
    keys = set()
    for node in pstree.walk(source.root):
        text = pstree.text(node)
        if node.type == "member_access" and text.lower().startswith(("$module.result.", "$result.")):
            keys.add(text.split(".")[1] if text.lower().startswith("$result.") else text.split(".")[2])
    if "Invoke-HvVmBatch" in source.text.decode("utf-8"):
        # The driver (_HvBatch) adds the per-VM results; _resume goes only between the collection's
        # own runs and diff to ansible's diff, neither is a result key users see.
        keys |= {"results"}
        keys -= {"_resume", "diff"}
    return keys


# Options the collection once took from users for its own plumbing; they must not come back.
RETIRED = {"reference_point": {"job_id"}, "recovery_checkpoint": {"job_id", "job_ids"},
           "vm_export": {"job_id", "job_ids", "full_reason"}, "disk_changes_info": set()}
BATCH_MODULES = ["disk_changes_info", "recovery_checkpoint", "reference_point", "vm_export"]


def _option_names(options: dict, prefix: str = "") -> set[str]:
    names = set()
    for name, option in (options or {}).items():
        names.add(prefix + name)
        names |= _option_names(option.get("suboptions") or {}, prefix + name + ".")
    return names


@pytest.mark.parametrize("name", MODULES)
def test_the_only_internal_option_is_resume_and_says_so(name: str) -> None:
    done = subprocess.run([paths.tool("ansible-doc"), "--json", f"hyperv.backup.{name}"], env=paths.ansible_env(),
                          capture_output=True, text=True, check=True)
    options = json.loads(done.stdout)[f"hyperv.backup.{name}"]["doc"]["options"]
    internal = {o for o in _option_names(options) if any(part.startswith("_") for part in o.split("."))}
    assert internal == ({"_resume", "_resume.job_id", "_resume.state"} if name in BATCH_MODULES else set())
    if internal:
        assert " ".join(options["_resume"]["description"]).startswith("Internal use only")
    assert not _option_names(options) & RETIRED.get(name, set()), "plumbing between the action plugin and the module is not an option"


def _hashtable_keys(util: str, function_name: str) -> set[str]:
    """Keys of the hashtable a module_util function returns last."""
    source = pstree.parse(UTILS / f"{util}.psm1")
    function = next(f for f in pstree.functions(source.root) if f.name == function_name)
    hashes = [n for n in pstree.walk(function.node) if n.type == "hash_literal_expression" and n.parent.type != "hash_entry"]
    entries = [n for n in pstree.walk(hashes[-1]) if n.type == "hash_entry" and n.parent.parent.id == hashes[-1].id]
    return {pstree.string_value(e.named_children[0]) for e in entries}


@pytest.mark.parametrize("name", MODULES)
def test_return_documents_every_result_key(name: str) -> None:
    documented = set(collection.module_docs(name)["return"])
    # changed is common to every module and documented by ansible itself.
    assert _result_keys(name) - {"changed"} == documented


@pytest.mark.parametrize("name", ["reference_point", "reference_point_info"])
def test_reference_point_fields_match_the_code(name: str) -> None:
    returned = collection.module_docs(name)["return"]
    entry = returned.get("reference_point") or returned["reference_points"]
    assert set(entry["contains"]) == _hashtable_keys("_HvReferencePoint", "ConvertTo-HvReferencePointResult")
    assert set(entry["contains"]["disks"]["contains"]) == {"disk_id", "rct_id"}


@pytest.mark.parametrize("name", ["reference_point", "job_info"])
def test_job_fields_match_the_code(name: str) -> None:
    documented = set(collection.module_docs(name)["return"]["job"]["contains"])
    assert documented == _hashtable_keys("_HvCimJob", "ConvertTo-HvJobResult")


def test_stale_entry_fields_match_the_catalog_entry() -> None:
    documented = set(collection.module_docs("reference_point_info")["return"]["stale_entries"]["contains"])
    assert documented == _hashtable_keys("_HvCatalog", "New-HvCatalogEntry")


def test_troubleshooting_page_lists_every_message_as_the_code_says_it() -> None:
    current = troubleshooting.PAGE.read_text(encoding="utf-8")
    assert current == troubleshooting.render(), "run: PYTHONPATH=tests .venv/bin/python -m hvtest.troubleshooting"
    assert "- `The name '<...>' matches <...> virtual machines on host <...>: <...>. Select one with vm_id.`" in current


FILTER_DIR = collection.ROOT / "plugins" / "filter"
# A filter is documented in its own .py (DOCUMENTATION) or, when a file holds several, in <name>.yml.
FILTERS = sorted([p.stem for p in FILTER_DIR.glob("*.py") if "DOCUMENTATION = " in p.read_text(encoding="utf-8")]
                 + [p.stem for p in FILTER_DIR.glob("*.yml")])


def test_every_filter_is_documented() -> None:
    defined = set()
    for path in FILTER_DIR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "def filters" in text:
            defined |= set(re.findall(r'"(\w+)": \w+', text.split("def filters", 1)[1]))
    assert defined == set(FILTERS)


@pytest.mark.parametrize("name", FILTERS)
def test_filter_docs_render(name: str) -> None:
    done = subprocess.run([paths.tool("ansible-doc"), "-t", "filter", f"hyperv.backup.{name}"], env=paths.ansible_env(),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and f"hyperv.backup.{name}" in done.stdout, done.stderr


def test_role_argument_specs_document_every_default() -> None:
    role = collection.ROOT / "roles" / "rct_backup"
    entry_points = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    assert sorted(entry_points) == ["main", "restore"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    # defaults/main.yml serves every entry point: each of its variables is documented by one, with the same default.
    assert set().union(*(entry["options"] for entry in entry_points.values())) == set(defaults)
    for entry in entry_points.values():
        for name, spec in entry["options"].items():
            if "default" in spec:
                assert spec["default"] == defaults[name], name
            assert spec.get("description"), name
    done = subprocess.run([paths.tool("ansible-doc"), "-t", "role", "hyperv.backup.rct_backup"], env=paths.ansible_env(),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "rct_backup_retention_keep" in done.stdout, done.stderr
