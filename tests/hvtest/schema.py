"""The Hyper-V WMI schema (tests/data/root-virtualization-v2.schema.json) with inheritance."""

from __future__ import annotations

import copy
import functools
import json
import pathlib

SCHEMA_PATH = pathlib.Path(__file__).resolve().parent.parent / "data" / "root-virtualization-v2.schema.json"

# System members every CimInstance / CimMethodResult has besides the class's properties.
CIM_INSTANCE_MEMBERS = frozenset({"CimClass", "CimInstanceProperties", "CimSystemProperties", "PSComputerName", "Count", "Length", "PSObject"})
METHOD_RESULT_MEMBERS = frozenset({"ReturnValue", "PSComputerName"})


# What the collection touches that Windows Server 2016 (1607) does not have: Microsoft's class
# pages give the Windows 10 release each was added in (1703 and 1709 came after 2016 and before
# 2019). Only these cited differences are modelled; 2019, 2022 and 2025 share the schema.
ADDED_AFTER_2016 = {
    "classes": ["Msvm_VirtualSystemReferencePointSettingData", "Msvm_VirtualSystemReferencePointExportJob"],  # 1703
    "properties": {
        "Msvm_VirtualSystemSnapshotSettingData": ["GuestBackupType"],  # 1703
        "Msvm_VirtualSystemExportSettingData": ["ExportForLiveMigration",  # 1703
                                                "DisableDifferentialOfIgnoredStorage", "ExcludedVirtualHardDisks"],  # 1709
        "Msvm_VirtualSystemSettingData": ["AutomaticSnapshotsEnabled", "IsAutomaticSnapshot"],  # 1709
    },
    "methods": {"Msvm_VirtualSystemReferencePointService": ["ImportReferencePointMetadata"]},  # 1703
}


class Schema:
    """Lookups by class, with properties and methods inherited along `base`."""

    def __init__(self, data: dict) -> None:
        self.classes: dict[str, dict] = data["classes"]
        self.enums: dict[str, dict[str, int]] = data["enums"]

    def for_windows(self, release: int) -> Schema:
        """The schema as a host of that Windows Server release has it (ADDED_AFTER_2016)."""
        if release >= 2019:
            return self
        data = {"classes": copy.deepcopy(self.classes), "enums": self.enums}
        for name in ADDED_AFTER_2016["classes"]:
            data["classes"].pop(name, None)
        for name, properties in ADDED_AFTER_2016["properties"].items():
            for prop in properties:
                data["classes"][name]["properties"].pop(prop, None)
        for name, methods in ADDED_AFTER_2016["methods"].items():
            for method in methods:
                data["classes"][name]["methods"].pop(method, None)
        # A method parameter of a class the host lacks would be refused by the host; keep it
        # declared, as the method pages do, and let the embedded-instance check refuse the class.
        return Schema(data)

    def has_class(self, name: str) -> bool:
        return name in self.classes

    def lineage(self, name: str) -> list[str]:
        """The class and its bases, nearest first (bases outside the schema end the chain)."""
        chain = []
        while name in self.classes and name not in chain:
            chain.append(name)
            name = self.classes[name].get("base", "")
        return chain

    def properties(self, name: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for cls in reversed(self.lineage(name)):
            merged.update(self.classes[cls].get("properties", {}))
        return merged

    def methods(self, name: str) -> dict[str, dict]:
        merged: dict[str, dict] = {}
        for cls in reversed(self.lineage(name)):
            merged.update(self.classes[cls].get("methods", {}))
        return merged

    def method(self, class_name: str, method_name: str) -> dict | None:
        return self.methods(class_name).get(method_name)

    def classes_with_method(self, method_name: str) -> list[str]:
        return sorted(c for c in self.classes if method_name in self.methods(c))

    def parameters(self, class_name: str, method_name: str, directions: tuple[str, ...]) -> set[str]:
        method = self.method(class_name, method_name) or {"params": []}
        return {p["name"] for p in method["params"] if p["direction"] in directions}


@functools.lru_cache(maxsize=None)
def load(path: str = str(SCHEMA_PATH)) -> Schema:
    with open(path, encoding="utf-8") as handle:
        return Schema(json.load(handle))
