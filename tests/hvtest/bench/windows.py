"""ansible.windows for the benchmark's baseline, taken out of the ansible package's wheel.

The ansible package bundles ansible.windows with the community collections (tens of thousands of
files); the baseline needs only ansible.windows, so only its folder is unpacked from the wheel
(seconds, where installing the whole package takes more than a minute). The wheel is fetched by
pip at the version tests/bench/requirements-windows.txt pins.

Run: python -m hvtest.bench.windows WHEEL_DIR TARGET
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import zipfile

PREFIX = "ansible_collections/ansible/windows/"


def unpack(wheel_dir: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    """Unpacks ansible.windows from the one ansible-*.whl in wheel_dir into target/ansible_collections; returns its folder."""
    wheels = sorted(wheel_dir.glob("ansible-[0-9]*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one ansible wheel in {wheel_dir}, found {[w.name for w in wheels]}")
    collection = target / "ansible_collections" / "ansible" / "windows"
    shutil.rmtree(collection, ignore_errors=True)
    with zipfile.ZipFile(wheels[0]) as wheel:
        members = [name for name in wheel.namelist() if name.startswith(PREFIX)]
        if not members:
            raise SystemExit(f"{wheels[0].name} holds no ansible.windows")
        wheel.extractall(target, members=members)
    return collection


if __name__ == "__main__":
    print(unpack(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])))
