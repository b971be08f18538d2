"""The VM configuration file (Virtual Machines\\<GUID>.vmcx) the simulated host exports and imports.

A real .vmcx is a binary format Microsoft does not publish. What an import needs from it is what
the simulator writes here: the VM's id, name, configuration version, checkpoint setting, whether
the guest has integration services, its virtual hard disks (path as the VM had them, kind, virtual
size) and its network adapters (the switch each was connected to, by name and id). The file keeps
the size exports have always had (SIZE bytes, the rest sparse); a file without the header, or cut
short, cannot be imported (ConfigDamaged).
"""

from __future__ import annotations

import json
import os

MAGIC = b"hvsim-vmcx\n"
SIZE = 61440


class ConfigDamaged(Exception):
    """The file is not a whole configuration file the simulator wrote."""


def write_config(path: str, config: dict) -> None:
    text = MAGIC + json.dumps(config, sort_keys=True).encode()
    if len(text) > SIZE:
        raise ValueError(f"{path}: the simulated configuration is larger than {SIZE} bytes")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(text)
        handle.truncate(SIZE)


def read_config(path: str) -> dict:
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < SIZE or not data.startswith(MAGIC):
        raise ConfigDamaged(f"{path} is not a whole virtual machine configuration file")
    try:
        return json.loads(data[len(MAGIC):].rstrip(b"\0").decode())
    except ValueError as error:
        raise ConfigDamaged(f"{path} has a damaged configuration: {error}") from error
