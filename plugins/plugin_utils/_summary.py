# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A line of the rct_backup role's summary table (internal to this collection; the filter
hyperv.backup.summary_line uses it)."""

from __future__ import annotations

from typing import Any


def _size(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def summary_line(entry: dict[str, Any]) -> str:
    line = (f"{str(entry.get('vm'))[:19]:<19} {str(entry.get('status')):<8} {str(entry.get('mode') or '-'):<12} "
            f"{_size(entry.get('bytes')):>10} {float(entry.get('seconds') or 0):>8.1f}  {entry.get('reference_point') or '-'}")
    note = entry.get("error") or (f"full because {entry['full_reason']}" if entry.get("full_reason") else "")
    return f"{line}  {note}".rstrip()
