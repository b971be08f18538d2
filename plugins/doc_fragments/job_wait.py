# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Controller-side options of the modules that start Hyper-V jobs (handled by their action plugins)."""

    # The action plugins validate these options from this text (plugin_utils/_options.py): declared once.
    DOCUMENTATION = r"""
options:
  job_timeout:
    description:
      - Seconds the controller follows a Hyper-V job that is still running when the module returns,
        polling it with M(hyperv.backup.job_info) (starting at 1 s between polls, growing to 15 s).
      - Progress is shown with C(-v) (AWX's Verbose) - a line per host and job when it starts, changes
        state or passes a quarter of the work, with the time elapsed; every poll with C(-vvv). The
        default output has the task line and its result only.
      - With several VMs, the module is run again once for all of them when their jobs have ended; a
        job that failed, vanished or ended 60 s before the others are done has its VM finished at once.
      - V(0) returns at once with the job still running (and, for the modules that have it, C(pending=true)) and its id.
      - When the time is up the task fails with the job id, state and percentage; the job goes on
        on the host, and rerunning the task follows the same job instead of starting another.
      - Not used with the C(async) task keyword; then the module waits on the host itself.
    type: int
    default: 3600
  cancel_on_job_timeout:
    description:
      - Ask Hyper-V to cancel the job (C(RequestStateChange) to Terminate) when O(job_timeout) passes.
      - Only jobs that say they are cancellable can be cancelled; Hyper-V rolls back what the job had done.
    type: bool
    default: false
  connection_retries:
    description:
      - How many times in a row a lost WinRM connection is retried while following a job, with
        growing delays, before the task reports the host unreachable (with the job id to resume).
      - Also how many times in a row a poll of the job that returned no result (its module's output
        cut short or unreadable) is read again before the VMs fail, naming what the host printed.
    type: int
    default: 5
"""
