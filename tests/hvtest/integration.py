"""make integration: the ansible-test integration targets against the simulator.

Starts the simulator with tests/integration/sim-scenario.yml, writes the same kind of inventory a
real Hyper-V host gets (group windows, WinRM), with hyperv_backup_test_vm_create=false because the
scenario seeds the test VM, and runs `ansible-test windows-integration --inventory` on it.
Against a real host: write tests/integration/inventory.winrm for it and run ansible-test directly.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from .collection import ROOT
from .sim.runner import PASSWORD, USER, SimServer


def main(argv: list[str]) -> int:
    venv = pathlib.Path(argv[0]) if argv else pathlib.Path(sys.executable).parent.parent
    targets = argv[1:]
    with SimServer(ROOT / "tests" / "integration" / "sim-scenario.yml") as server:
        inventory = ROOT / "tests" / "integration" / "inventory.winrm"
        inventory.write_text(
            "[windows]\n"
            f"hvtest ansible_host=127.0.0.1 ansible_port={server.port} ansible_user={USER} ansible_password={PASSWORD}\n\n"
            "[windows:vars]\n"
            "ansible_connection=winrm\nansible_winrm_transport=basic\nansible_winrm_scheme=http\n"
            "hyperv_backup_test_vm_create=false\n"
            # The host's folders in the simulator's own path style, under its root.
            f"hyperv_backup_test_dir={server.path('ansible_testing')}\n"
            f"hyperv_backup_test_catalog={server.path('ansible_testing', 'catalog.json')}\n"
            f"hyperv_backup_test_export_dir={server.path('ansible_testing', 'export')}\n"
            f"hyperv_backup_test_backup_dir={server.path('ansible_testing', 'backups')}\n"
            f"hyperv_backup_test_restore_dir={server.path('ansible_testing', 'restore-points')}\n"
            f"hyperv_backup_test_restored_dir={server.path('ansible_testing', 'restored')}\n",
            encoding="utf-8")
        try:
            done = subprocess.run(
                [str(ROOT / "tests" / "ansible-test"), str(venv), "windows-integration", "--inventory", str(inventory), *targets],
                cwd=ROOT, env=dict(os.environ, ANSIBLE_TEST_TREE="integration"), check=False)  # its own copy: sanity may run beside it
        finally:
            inventory.unlink(missing_ok=True)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
