"""Virtual environments with an older ansible-core (and pywinrm), shared by the sanity matrix and the
end-to-end run per supported ansible-core version: .build/venv-core<version>."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

from .collection import ROOT

# The supported ansible-core releases other than the one in .venv, each with a Python it supports.
OLDER = {"2.16": "3.12", "2.17": "3.12", "2.18": "3.13", "2.19": "3.13", "2.20": "3.13"}


def python(version: str) -> str:
    """A Python interpreter of the given minor version: on PATH, else pyenv's versions folder."""
    candidates = [shutil.which(f"python{version}") or ""]
    pyenv_root = pathlib.Path.home() / ".pyenv"
    found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False) if shutil.which("pyenv") else None
    if found and found.returncode == 0:
        pyenv_root = pathlib.Path(found.stdout.strip())
    candidates += sorted((str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/python3")), reverse=True)
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", "import sys"], capture_output=True, check=False).returncode == 0:
            return candidate
    raise RuntimeError(f"no Python {version} found (for ansible-core {', '.join(k for k, v in OLDER.items() if v == version)})")


def venv(core: str) -> pathlib.Path:
    """The venv of ansible-core <core> with pywinrm, made on first use."""
    folder = ROOT / ".build" / f"venv-core{core}"
    ready = folder / ".e2e-ready"
    if ready.exists():
        return folder
    if not (folder / "bin" / "python").exists():
        subprocess.run([python(OLDER[core]), "-m", "venv", str(folder)], check=True)
    major, minor = core.split(".")
    subprocess.run([str(folder / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    f"ansible-core>={core},<{major}.{int(minor) + 1}", "pywinrm>=0.5"], check=True)
    ready.touch()
    return folder
