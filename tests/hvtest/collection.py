"""Where the collection's files are, and what a module's sources and docs say."""

from __future__ import annotations

import ast
import functools
import pathlib
from typing import Any

import yaml

from . import pstree

ROOT = pathlib.Path(__file__).resolve().parents[2]
PREFIX = "..module_utils."


def module_util_path(name: str, root: pathlib.Path = ROOT) -> pathlib.Path:
    if not name.startswith(PREFIX):
        raise ValueError(f"#AnsibleRequires -PowerShell {name}: use the relative name {PREFIX}<name>")
    return root / "plugins" / "module_utils" / (name[len(PREFIX):] + ".psm1")


def module_sources(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[pstree.Source]:
    """A .ps1/.psm1 and every collection module_util it requires, transitively, itself first."""
    seen: dict[pathlib.Path, pstree.Source] = {}
    pending = [pathlib.Path(path)]
    while pending:
        current = pending.pop(0).resolve()
        if current in seen:
            continue
        source = pstree.parse(current)
        seen[current] = source
        for name in pstree.required_module_utils(source):
            if name.startswith(PREFIX):
                pending.append(module_util_path(name, root))
    return list(seen.values())


def _assigned_string(path: pathlib.Path, variable: str) -> str | None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _fragment(name: str, root: pathlib.Path) -> dict:
    """A doc fragment of this collection (hyperv.backup.NAME[.VAR])."""
    parts = name.split(".")
    if parts[:2] != ["hyperv", "backup"]:
        raise ValueError(f"doc fragment {name} is not of this collection")
    variable = parts[3].upper() if len(parts) > 3 else "DOCUMENTATION"
    path = root / "plugins" / "doc_fragments" / f"{parts[2]}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == variable for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    raise ValueError(f"doc fragment {name} has no {variable}")


@functools.lru_cache(maxsize=None)
def module_docs(name: str, root: pathlib.Path = ROOT) -> dict[str, Any]:
    """DOCUMENTATION (with fragments merged), EXAMPLES and RETURN of a module's doc stub."""
    stub = root / "plugins" / "modules" / f"{name}.py"
    documentation = yaml.safe_load(_assigned_string(stub, "DOCUMENTATION"))
    for fragment in documentation.get("extends_documentation_fragment", []):
        extra = _fragment(fragment, root)
        documentation.setdefault("options", {}).update(extra.get("options", {}))
    return {
        "documentation": documentation,
        "examples": yaml.safe_load(_assigned_string(stub, "EXAMPLES") or "[]"),
        "return": yaml.safe_load(_assigned_string(stub, "RETURN") or "{}") or {},
    }


def module_names(root: pathlib.Path = ROOT) -> list[str]:
    return sorted(p.stem for p in (root / "plugins" / "modules").glob("*.ps1"))


def powershell_files(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    return sorted((root / "plugins").rglob("*.ps1")) + sorted((root / "plugins").rglob("*.psm1"))
