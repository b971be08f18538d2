# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Paths on the managed host, built on the controller (internal to this collection).

A Hyper-V host takes Windows paths: a drive letter (D:\\Backup) or a share (\\\\server\\share).
Folders below a destination the user gave are joined in that path's own style, so a
destination given as a POSIX path (a host reached through another PowerShell, as the
collection's tests do) keeps its style too.
"""

from __future__ import annotations

import ntpath
import posixpath
import re

_WINDOWS = re.compile(r"^(?:[A-Za-z]:|\\\\)|\\")


def is_windows_path(path: str) -> bool:
    """Whether a path is written the Windows way (drive letter, UNC share or any backslash)."""
    return bool(_WINDOWS.search(path))


def join(base: str, *parts: str) -> str:
    """base joined with parts, in base's path style."""
    module = ntpath if is_windows_path(base) else posixpath
    return module.join(base, *parts)


# Characters a Windows file name cannot hold (and control characters); VM display names may hold them.
_NOT_IN_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
_NAME_CHARS = 40


def vm_folder(name: str, vm_id: str) -> str:
    """The folder a VM's backups go to: its display name, made safe for a file name, and its GUID.

    The name keeps the folder readable; the GUID keeps two VMs apart whose names are the same, or
    differ only in case (one folder on NTFS), or differ only in characters a file name cannot hold.
    """
    # The readable part is cut at _NAME_CHARS: Windows paths stop at 260 characters unless long
    # paths are enabled, and the export adds the VM name and the disk file's name below it.
    safe = _NOT_IN_NAME.sub("_", name)[:_NAME_CHARS].strip(" .") or "vm"
    return f"{safe}_{vm_id.lower()}"
