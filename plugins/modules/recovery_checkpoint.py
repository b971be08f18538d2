# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is recovery_checkpoint.ps1.

DOCUMENTATION = r"""
---
module: recovery_checkpoint
short_description: Create, remove or convert a Hyper-V recovery checkpoint for a backup
version_added: 0.1.0
description:
  - Manages the recovery checkpoint (C(CreateSnapshot) type 32768) a backup is taken from, hidden
    from Hyper-V Manager, application or crash consistent.
  - "The checkpoint is named C(hyperv.backup: <name>) (its C(ElementName)), as backup products tag
    theirs, so a later run recognises checkpoints an earlier failed run left behind and removes them
    (O(cleanup_leftovers), once older than O(leftover_min_age)) before making a new one. Recovery
    checkpoints of other software are left alone, with a warning."
  - O(state=converted) turns the checkpoint into a reference point (C(ConvertToReferencePoint)),
    recorded in the catalog under O(reference_point_name) with O(mode) and O(base); this closes a
    backup. Hyper-V removes the checkpoint as it does so.
  - Jobs that outlive O(wait_timeout) are followed from the controller (O(job_timeout)).
options:
  name:
    description:
      - The label of the checkpoint (for example the backup run's label).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the checkpoint exists; V(absent) removes it; V(converted) turns it into
        a reference point (idempotent, a conversion already recorded changes nothing).
      - V(present) makes nothing when the catalog records this label's checkpoint as converted
        already (the reference point named O(reference_point_name), or O(name)); it returns that
        reference point in RV(reference_point) when that conversion is more recent than
        O(leftover_min_age), and fails otherwise (the label is being used again). Give each run its
        own label.
    type: str
    choices: [absent, converted, present]
    default: present
  consistency:
    description:
      - V(application) asks the guest (integration services, VSS) for an application-consistent
        checkpoint; V(crash) does not involve the guest.
    type: str
    choices: [application, crash]
    default: application
  crash_fallback:
    description:
      - When an application-consistent checkpoint fails, make a crash-consistent one instead, with a
        warning. RV(consistency) says which was obtained.
    type: bool
    default: false
  cleanup_leftovers:
    description:
      - Before creating, remove recovery checkpoints this collection made under other names (left by
        a run that failed half-way); they block merges and grow. Only those older than
        O(leftover_min_age); younger ones are left alone with a warning that names them.
    type: bool
    default: true
  leftover_min_age:
    description:
      - Minutes a recovery checkpoint of this collection, under another name, must have existed
        before O(cleanup_leftovers) removes it. A younger one may belong to a run still going on the
        VM (two plays at once), whose export removing it would break.
      - V(0) removes every leftover at once; use it only when no other run can be going.
      - Also how recent the catalog entry of a label converted already must be for O(state=present)
        to take it as this run's (a run whose controller died after the conversion); an older one
        means the label is used again, which fails, naming the earlier backup.
    type: int
    default: 720
  reference_point_name:
    description:
      - The catalog name of the reference point made by O(state=converted). Defaults to O(name).
    type: str
  mode:
    description:
      - V(full) or V(incremental), recorded in the catalog with the reference point, for retention.
    type: str
    choices: [full, incremental]
  base:
    description:
      - The name of the reference point an incremental backup was taken against; recorded in the
        catalog, so retention never removes a reference point a kept incremental depends on.
    type: str
  run_id:
    description:
      - Free text recorded with the reference point (for example the AWX job id).
    type: str
    default: ''
  destination:
    description:
      - The folder or share the backups of these checkpoints will be written to, checked from the host
        before any checkpoint is made, as M(hyperv.backup.destination_info) checks it (a full path, reachable,
        writable by the account the module runs as).
      - When backups could not go there, the task fails with the problem in RV(destination) and its C(msg),
        and no VM gets a checkpoint that no export could use. Saves a separate check; the role
        C(hyperv.backup.rct_backup) uses it.
      - Only with O(state=present).
    type: str
    version_added: 0.2.0
  list_reference_points:
    description:
      - Also return the VM's reference points after the task, as M(hyperv.backup.reference_point_info) lists them
        (catalog names, modes, bases, C(foreign) flags), in RV(reference_points).
      - Saves a separate listing when the next step needs them - choosing the base of an incremental after
        the checkpoint, planning retention after the conversion. The role C(hyperv.backup.rct_backup) does both.
    type: bool
    default: false
    version_added: 0.2.0
  wait_timeout:
    description:
      - Seconds the module waits on the host for a job in its own round trip, counted from when it has
        started the job of every VM of the task.
    type: int
    default: 30
  vms:
    description:
      - Several VMs of the host in one task, instead of O(vm) or O(vm_id) - one round trip for all of them
        rather than one task per VM.
      - Each element selects one VM with C(vm) (display name) or C(vm_id) (GUID) and may set its own
        values of the options listed below; the task's values apply where it does not.
      - The work of every VM is started first, then the jobs run side by side on the host and are waited
        on together (up to O(wait_timeout) on the host, then O(job_timeout) from the controller).
      - One VM's failure does not stop the others. The result has one entry per VM in RV(results); the
        task fails when any VM failed, with a message naming each.
    type: list
    version_added: 0.2.0
    elements: dict
    suboptions:
      vm:
        description:
          - Display name of the VM. Exactly one of C(vm) and C(vm_id) is required.
        type: str
      vm_id:
        description:
          - GUID of the VM.
        type: str
      consistency:
        description:
          - This VM's O(consistency) (for O(state=converted), the consistency its checkpoint obtained).
        type: str
        choices: [application, crash]
      mode:
        description:
          - This VM's O(mode).
        type: str
        choices: [full, incremental]
      base:
        description:
          - This VM's O(base).
        type: str
extends_documentation_fragment:
  - hyperv.backup.vm
  - hyperv.backup.catalog
  - hyperv.backup.job_wait
notes:
  - Supports C(check_mode). O(state=converted) in check mode reports the conversion even when the
    checkpoint does not exist, as it would be made by a O(state=present) task before it that ran in
    check mode too (the rct_backup role under C(--check)).
  - Before any change (check mode too) a VM is refused whose configuration version is below 6.2 or
    that has a VHD or VHD Set (.vhds) disk, since RCT cannot cover it; the message says what to do.
  - A pass-through disk cannot be checkpointed; the checkpoint leaves it out and a warning names it.
  - A VM that is off gets a crash-consistent checkpoint (with a warning); a saved or paused one gets
    an application-consistent checkpoint refused, or a crash-consistent one with O(crash_fallback=true).
  - A converted reference point is also set as the fact C(hyperv_backup.reference_points[<VM id>][<reference_point_name>]),
    keyed by the VM's GUID in lower case.
seealso:
  - module: hyperv.backup.reference_point
  - module: hyperv.backup.vm_export
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Recovery checkpoint for tonight's backup, crash consistent if the guest cannot do better
  hyperv.backup.recovery_checkpoint:
    vm: web01
    name: nightly-2026-11-28
    consistency: application
    crash_fallback: true
  register: checkpoint

- name: Close the backup - the checkpoint becomes the reference point for the next incremental
  hyperv.backup.recovery_checkpoint:
    vm: web01
    name: nightly-2026-11-28
    state: converted
    mode: incremental
    base: nightly-2026-11-27

- name: Remove the checkpoint after a failed copy
  hyperv.backup.recovery_checkpoint:
    vm: web01
    name: nightly-2026-11-28
    state: absent

- name: Recovery checkpoints of three VMs in one task, their jobs running side by side
  hyperv.backup.recovery_checkpoint:
    vms:
      - vm: web01
      - vm: web02
      - vm_id: 0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13
    name: nightly-2026-11-28
    crash_fallback: true
    destination: 'E:\Backups\Hyper-V'  # no checkpoint at all when the exports could not go there
    list_reference_points: true  # each VM's reference points, to choose the bases of incrementals
  register: checkpoints

- name: Close the backups of both VMs, each against its own base
  hyperv.backup.recovery_checkpoint:
    vms:
      - {vm: web01, mode: incremental, base: nightly-2026-11-27}
      - {vm: web02, mode: full}
    name: nightly-2026-11-28
    state: converted
"""

RETURN = r"""
vm:
  description: The virtual machine (filled before any work, also on failure).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  contains:
    name:
      description: Display name.
      type: str
      sample: web01
    id:
      description: GUID.
      type: str
      sample: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162
checkpoint:
  description: The checkpoint with this name (O(state=present)); V(null) otherwise.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  contains:
    instance_id:
      description: C(InstanceID) of the checkpoint's C(Msvm_VirtualSystemSettingData).
      type: str
      sample: Microsoft:52870366-70FC-4A35-B351-6AED09D0CD69
    element_name:
      description: Its C(ElementName).
      type: str
      sample: 'hyperv.backup: nightly-2026-11-28'
    label:
      description: The name this collection gave it; V(null) for other software's.
      type: str
      sample: nightly-2026-11-28
    created:
      description: C(CreationTime) (UTC).
      type: str
      sample: '2026-11-28T01:00:03Z'
    owned:
      description: Whether this collection made it.
      type: bool
      sample: true
consistency:
  description: The consistency obtained by a creation (V(crash) after a fallback); V(null) when nothing was created.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: str
  sample: application
reference_point:
  description:
    - The reference point made by O(state=converted), as M(hyperv.backup.reference_point) returns it.
    - With O(state=present), when the catalog shows this label's checkpoint already converted (a run
      that died after the conversion, or a playbook run twice), that reference point, and no new
      checkpoint is made (one now would never be exported nor converted). While its conversion
      still runs, only C(name), C(status), C(job_id), C(vm_id) and C(vm_name).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  sample: {instance_id: 'Microsoft:5B1F4A0C-3C1E-4C55-9C1B-7E0F7C3A9D11', name: nightly-2026-11-28, mode: full}
removed_leftovers:
  description: Recovery checkpoints of earlier failed runs removed before creating.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: list
  elements: dict
  sample: []
checkpoints:
  description: Every recovery checkpoint of the VM after the task (same fields as RV(checkpoint)).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: list
  elements: dict
  sample: []
destination:
  description:
    - What the check of O(destination) found, with the keys M(hyperv.backup.destination_info) returns
      (C(path), C(kind), C(exists), C(writable), C(free_bytes), C(total_bytes), C(required_bytes), C(usable), C(problem)).
  returned: when O(destination) is set
  type: dict
  version_added: 0.2.0
  sample: {path: 'E:\Backups', kind: local, exists: true, writable: true, usable: true, problem: null}
reference_points:
  description:
    - The VM's reference points after the task, with the fields of RV(hyperv.backup.reference_point_info#module:reference_points).
  returned: with O(list_reference_points=true), when the VM's work ended (not while its job is pending); with O(vms), in each element of RV(results) instead
  type: list
  elements: dict
  version_added: 0.2.0
  sample: [{instance_id: 'Microsoft:5B1F4A0C-3C1E-4C55-9C1B-7E0F7C3A9D11', name: nightly-2026-11-27, mode: full, base: null, foreign: false}]
job:
  description: The last Hyper-V job the task ran or followed (fields as in M(hyperv.backup.job_info)); V(null) when none.
  returned: always (with O(vms), in each element of RV(results) instead)
  type: dict
  sample: {id: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4, state: completed, percent_complete: 100}
pending:
  description: Whether that job was still running when the task ended (only with O(job_timeout=0)).
  returned: always (with O(vms), in each element of RV(results) instead)
  type: bool
  sample: false
results:
  description:
    - With O(vms), one entry per VM in the order given, each with the keys this module returns for one VM
      (RV(vm), RV(checkpoint), RV(consistency), RV(reference_point), RV(removed_leftovers), RV(checkpoints),
      RV(reference_points), RV(job)) and C(changed), C(failed) and, when it failed, C(msg).
    - A VM whose job was still running at the end has C(pending=true) and its RV(job).
  returned: when O(vms) is set
  type: list
  elements: dict
  sample:
    - {vm: {name: web01, id: 6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162}, changed: true, failed: false, pending: false}
    - {vm: {name: db01, id: 0f0e43a1-5c4b-4d0e-8a52-6f5ddc0b7a13}, changed: false, failed: true, msg: '...'}
"""
