# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filter hyperv.backup.summary_line: one line of the rct_backup role's summary table."""

from __future__ import annotations

from typing import Any

from ansible_collections.hyperv.backup.plugins.plugin_utils._summary import summary_line

DOCUMENTATION = r"""
name: summary_line
short_description: One line of the rct_backup summary table
version_added: 0.1.0
description:
  - Formats one entry of C(rct_backup_summary) as a fixed-width line (VM, status, mode, bytes, seconds,
    reference point, and the reason for a forced full backup or the error).
options:
  _input:
    description: One entry of C(rct_backup_summary).
    type: dict
    required: true
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ rct_backup_summary | map('hyperv.backup.summary_line') | list }}"
"""

RETURN = r"""
_value:
  description: The line.
  type: str
"""


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"summary_line": summary_line}
