# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This file holds the documentation only; the module is job.ps1.

DOCUMENTATION = r"""
---
module: job
short_description: Cancel a running Hyper-V job
version_added: 0.2.0
description:
  - Asks Hyper-V to terminate a running job (C(Msvm_ConcreteJob) or C(Msvm_StorageJob), C(RequestStateChange) to Terminate),
    found by the C(InstanceID) the modules of this collection return in RV(hyperv.backup.job_info#module:job.id).
  - Hyper-V rolls back what the job had done (a terminated checkpoint or export leaves nothing behind);
    the module then waits up to O(wait_timeout) for the job to reach its final state.
  - A job that already ended, or that the host no longer has, is left as it is (no change).
  - Fails when the job says it cannot be cancelled (C(Cancellable) false).
options:
  job_id:
    description:
      - The job's C(InstanceID).
    type: str
    required: true
  state:
    description:
      - V(cancelled) - the job is not running any more.
    type: str
    choices: [cancelled]
    default: cancelled
  wait_timeout:
    description:
      - Seconds the module waits on the host for the cancelled job to reach its final state.
    type: int
    default: 5
notes:
  - Supports C(check_mode) - reports a change for a running job without cancelling it.
  - The job-starting modules cancel their own jobs with this module when O(hyperv.backup.reference_point#module:cancel_on_job_timeout=true).
seealso:
  - module: hyperv.backup.job_info
author:
  - hyperv.backup contributors (@hyperv-backup)
"""

EXAMPLES = r"""
- name: Start a long export without following it
  hyperv.backup.vm_export:
    vm: db01
    checkpoint: nightly
    destination: E:\Backup\db01
    wait_timeout: 0
    job_timeout: 0
  register: export

- name: Cancel it again
  hyperv.backup.job:
    job_id: "{{ export.job.id }}"
    state: cancelled
  when: export.pending
"""

RETURN = r"""
exists:
  description: Whether the host still has the job.
  returned: always
  type: bool
  sample: true
job:
  description: The job as it is after the request (C(state=gone) and only C(id) when the host no longer has it).
  returned: always
  type: dict
  contains:
    id:
      description: The job's C(InstanceID).
      type: str
      sample: 2D7CF5B5-3F0A-4F12-9A8E-0E3F29E1C0B4
    state:
      description: Job state (V(running), V(completed), V(exception), V(terminated), ...), or V(gone).
      type: str
      sample: running
    state_code:
      description: C(JobState) as a number.
      type: int
      sample: 4
    percent_complete:
      description: C(PercentComplete).
      type: int
      sample: 42
    finished:
      description: Whether the job reached a final state.
      type: bool
      sample: false
    succeeded:
      description: Whether it completed without error.
      type: bool
      sample: false
    cancellable:
      description: Whether the job can be cancelled.
      type: bool
      sample: true
    job_type:
      description: C(JobType) (201 create reference point, 202 delete reference point, 70 create snapshot, 62 export).
      type: int
      sample: 201
    error_code:
      description: C(ErrorCode); 0 when none.
      type: int
      sample: 0
    error_description:
      description: C(ErrorDescription).
      type: str
      sample: ''
    errors:
      description: The texts of C(GetErrorEx) for a failed job.
      type: list
      elements: str
      sample: []
"""
