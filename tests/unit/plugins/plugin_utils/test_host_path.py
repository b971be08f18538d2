# -*- coding: utf-8 -*-

# Copyright: (c) 2026, hyperv.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.hyperv.backup.plugins.plugin_utils import _host_path

WEB01 = "6B4A5C2E-0D8C-4F7A-9A57-1D2E3F405162"


@pytest.mark.parametrize(("name", "folder"), [
    ("web01", "web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    ("Web01", "Web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    ('a\\b/c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    (" web01. ", "web01_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    ("...", "vm_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    ("CON", "CON_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
    ("datenbank-ß-ü", "datenbank-ß-ü_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"),
])
def test_vm_folder_is_readable_safe_and_unique(name: str, folder: str) -> None:
    assert _host_path.vm_folder(name, WEB01) == folder


def test_a_long_name_is_cut_so_that_the_backup_path_stays_short() -> None:
    folder = _host_path.vm_folder("w" * 300, WEB01)
    assert folder == "w" * 40 + "_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162"
    cut_at_space = _host_path.vm_folder("x" * 39 + " tail", WEB01)
    assert cut_at_space == "x" * 39 + "_6b4a5c2e-0d8c-4f7a-9a57-1d2e3f405162", "no space before the id"


def test_join_keeps_the_destination_style() -> None:
    assert _host_path.join("D:\\Backups", "web01_x", "b1") == "D:\\Backups\\web01_x\\b1"
    assert _host_path.join("\\\\nas\\share", "web01_x") == "\\\\nas\\share\\web01_x"
    assert _host_path.join("/srv/backups", "web01_x") == "/srv/backups/web01_x"
