# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is destination_info.ps1.

DOCUMENTATION = r"""
---
module: destination_info
short_description: Check from the Hyper-V host that a backup destination can be written
version_added: 0.3.0
description:
  - Answers, from the host and as the account the module runs as, whether backups can go to a
    folder, before anything is made - it is a full path (a drive and its root, or a share), it exists
    or its nearest existing parent does (where it would be created), a file can be written there
    (a probe file, removed at once), and, on a local volume, enough bytes are free.
  - A destination that cannot be used is an answer (RV(usable) false, with RV(problem)), not a
    failure, so a play decides what to do. The same check runs inside
    O(hyperv.backup.recovery_checkpoint#module:destination), which refuses to make any checkpoint when
    the backups could not go there (the role C(hyperv.backup.rct_backup) uses that).
  - A share (C(\\\\server\\share)) reached over WinRM with NTLM or Basic authentication is often
    not reachable at all (the second hop); RV(problem) then says so and what to do
    (docs/awx.md).
  - Creates nothing and changes nothing.
options:
  path:
    description:
      - The folder backups go to, as the host sees it (C(D:\\Backups\\Hyper-V) or C(\\\\server\\share\\Hyper-V)).
    type: str
    required: true
  required_gib:
    description:
      - GiB (2^30 bytes) that must be free there (local volumes only; a share's free space is not
        known to the host).
    type: float
    default: 0
notes:
  - The probe file is named C(.hyperv.backup-probe-<random>) and removed at once.
  - Supports C(check_mode) (it changes nothing in either mode).
seealso:
  - module: hyperv.backup.vm_export
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Check the backup share before the backup window
  hyperv.backup.destination_info:
    path: '\\backup01\hyperv\{{ inventory_hostname }}'
    required_gib: 500
  register: target

- name: Stop here when the host cannot write there
  ansible.builtin.fail:
    msg: "{{ target.problem }}"
  when: not target.usable
"""

RETURN = r"""
path:
  description: The path checked, as given.
  returned: always
  type: str
  sample: 'D:\Backups\Hyper-V'
kind:
  description: V(local) or V(share); V(null) when the path is not a full path.
  returned: always
  type: str
  sample: local
exists:
  description: Whether the folder exists (else it would be created under its nearest existing parent).
  returned: always
  type: bool
  sample: true
writable:
  description: Whether the account the module runs as could write a file there (or in the parent it would be created under).
  returned: always
  type: bool
  sample: true
free_bytes:
  description: Bytes free to this account on the volume; V(null) on a share or when not checked.
  returned: always
  type: int
  sample: 1099511627776
total_bytes:
  description: Size of the volume; V(null) on a share or when not checked.
  returned: always
  type: int
  sample: 4398046511104
required_bytes:
  description: O(required_gib) in bytes, as checked.
  returned: always
  type: int
  sample: 0
usable:
  description: Whether backups can go there.
  returned: always
  type: bool
  sample: true
problem:
  description: Why backups cannot go there, and what to do; V(null) when RV(usable).
  returned: always
  type: str
  sample: "'\\\\backup01\\hyperv' cannot be reached: the share does not exist, or this account cannot see it from the host. ..."
"""
