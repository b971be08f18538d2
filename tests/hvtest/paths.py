"""Paths the tests share: the collection laid out for ansible (a symlink), the venv's tools."""

from __future__ import annotations

import os
import pathlib
import sys

from .collection import ROOT


def collections_path() -> pathlib.Path:
    """A directory holding ansible_collections/hyperv/backup -> the working tree."""
    base = ROOT / ".build" / "collections"
    link = base / "ansible_collections" / "hyperv" / "backup"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(ROOT, target_is_directory=True)
        except FileExistsError:
            pass  # another test worker made it first
    return base


def tool(name: str) -> str:
    """An executable of the running interpreter's environment (ansible-playbook, ansible-doc)."""
    return str(pathlib.Path(sys.executable).parent / name)


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(ROOT / ".build" / "ansible-tmp"),
        "ANSIBLE_HOME": str(ROOT / ".build" / "ansible-home"),
    })
    env.update(extra)
    return env
