"""The static PowerShell check passes on the collection and catches what it is meant to catch.

(Argument specs against the docs: validate-modules reads the real specs through pwsh, in make sanity.)"""

from __future__ import annotations

import pathlib
import shutil

import pytest

from hvtest import collection, pscheck, pstree


def test_collection_has_no_findings() -> None:
    assert [str(f) for f in pscheck.check_all()] == []


def test_every_powershell_file_is_checked() -> None:
    names = {p.name for p in collection.powershell_files()}
    assert {"reference_point.ps1", "reference_point_info.ps1", "_HvCatalog.psm1", "_HvCimJob.psm1"} <= names


@pytest.fixture
def copy(tmp_path: pathlib.Path):
    """A copy of plugins/ with one text replaced, checked from scratch."""

    def mutate(relative: str, old: str, new: str) -> list[str]:
        root = tmp_path / "collection"
        shutil.copytree(collection.ROOT / "plugins", root / "plugins")
        path = root / relative
        original = path.read_text(encoding="utf-8")
        assert old in original, f"{old!r} not in {relative}: the test needs updating"
        path.write_text(original.replace(old, new, 1), encoding="utf-8")
        return [str(f) for f in pscheck.check_all(root)]

    return mutate


def test_wrong_class_name_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvReferencePoint.psm1",
                 "-ClassName Msvm_VirtualSystemReferencePointService", "-ClassName Msvm_VirtualSystemReferencePointSvc")
    assert found == ["plugins/module_utils/_HvReferencePoint.psm1:67: [cim] class Msvm_VirtualSystemReferencePointSvc is not in the schema"]


def test_variable_used_before_assignment_is_found(copy) -> None:
    found = copy("plugins/modules/reference_point.ps1", "    $label = $Params.name\n", "")
    assert found and all("[variables] $label is read before it is assigned" in f for f in found)


def test_variable_assigned_after_its_use_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvCimJob.psm1", "    $interval = 250\n", "")
    assert len(found) == 1 and found[0].startswith("plugins/module_utils/_HvCimJob.psm1:")
    assert found[0].endswith(": [variables] $interval is read before it is assigned")


def test_unknown_method_parameter_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvReferencePoint.psm1", "ReferencePointType = [uint16]", "ReferencePointKind = [uint16]")
    assert len(found) == 1 and "CreateReferencePoint takes" in found[0] and "'ReferencePointKind'" in found[0]


def test_unknown_property_of_typed_parameter_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvReferencePoint.psm1", "$ReferencePoint.VirtualDiskIdentifiers", "$ReferencePoint.DiskIdentifiers")
    assert len(found) == 1 and found[0].startswith("plugins/module_utils/_HvReferencePoint.psm1:")
    assert found[0].endswith("[cim] $ReferencePoint is a Msvm_VirtualSystemReferencePoint, which has no property DiskIdentifiers")


def test_unknown_method_output_is_found(copy) -> None:
    found = copy("plugins/modules/reference_point.ps1", "$newEntry.job_id = $output.Job.InstanceID", "$newEntry.job_id = $output.Jobs.InstanceID")
    assert len(found) == 1 and "CreateReferencePoint, which has no output Jobs" in found[0]


def test_embedded_instance_property_is_checked(copy) -> None:
    found = copy("plugins/module_utils/_HvReferencePoint.psm1", "ConsistencyLevel = [byte]", "Consistency = [byte]")
    assert len(found) == 1 and found[0].endswith("[cim] Msvm_VirtualSystemReferencePointSettingData has no property Consistency")


# The modules use no WQL (every lookup is by key or association); these give one a filter.
LISTING = "Get-CimInstance -Namespace $script:HvNamespace -ClassName Msvm_ConcreteJob)"


def test_user_text_in_wql_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvCimJob.psm1", LISTING, LISTING[:-1] + " -Filter \"ElementName = '$InstanceId'\")")
    assert any("-Filter interpolates $InstanceId: WQL must be constant" in f for f in found)


def test_wql_property_is_checked(copy) -> None:
    found = copy("plugins/module_utils/_HvCimJob.psm1", LISTING, LISTING[:-1] + " -Filter \"JobStatus = 'x' AND JobStat = 4\")")
    assert len(found) == 1 and found[0].endswith("[cim] WQL names JobStat, which Msvm_ConcreteJob does not have")


def test_syntax_error_is_found(copy) -> None:
    found = copy("plugins/module_utils/_HvCatalog.psm1", "    while ($true) {\n", "    while ($true {\n")
    assert found and all("[syntax]" in f for f in found)


def test_missing_required_module_util_is_found(copy) -> None:
    found = copy("plugins/modules/reference_point_info.ps1",
                 "#AnsibleRequires -PowerShell ..module_utils._HvReferencePoint\n", "")
    assert any(f.startswith("plugins/modules/reference_point_info.ps1:") and
               f.endswith("[style] Get-HvReferencePointListing is not defined here nor in a module_util this file requires") for f in found), found


def test_guid_typed_value_may_be_interpolated() -> None:
    source = pstree.parse_text("[guid]$id = $x\nGet-CimInstance -ClassName Msvm_ComputerSystem -Filter \"Name = '$id'\"\n")
    assert pscheck._guid_variables(source) == {"id"}


def test_literal_reads_spec_shapes() -> None:
    source = pstree.parse_text("$spec = @{ options = @{ a = @{ type = 'list'; elements = 'str'; default = @() }; "
                               "b = @{ choices = @('x', 'y'); default = $false } }; mutually_exclusive = @(, @('a', 'b')) }")
    node = next(n for n in pstree.walk(source.root) if n.type == "assignment_expression")
    assert pstree.literal(node.named_children[-1]) == {
        "options": {"a": {"type": "list", "elements": "str", "default": []}, "b": {"choices": ["x", "y"], "default": False}},
        "mutually_exclusive": [["a", "b"]],
    }
