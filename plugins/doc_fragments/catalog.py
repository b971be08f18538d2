# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Option shared by every module that reads or writes the reference point catalog."""

    # Matches Get-HvCatalogSpec in plugins/module_utils/HvCatalog.psm1 (checked by tests/static).
    DOCUMENTATION = r"""
options:
  catalog_path:
    description:
      - Path on the Hyper-V host of the catalog that gives reference points their names.
      - Reference points have no writable label in Hyper-V, so the collection keeps one JSON
        file per host that maps (VM id, name) to the reference point's InstanceID.
      - The file is changed under a lock file (C(<catalog_path>.lock)) and replaced atomically;
        a corrupt file is reported and never overwritten.
      - Defaults to C(%ProgramData%\\hyperv.backup\\catalog.json).
      - Every task that touches the same host should use the same path.
    type: path
"""
