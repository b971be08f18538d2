"""The CIM wire of the simulated host (sim/cim.py): what the CIM shim receives, and what it refuses."""

from __future__ import annotations

import datetime

import pytest

from hvtest.sim import cim
from hvtest.sim.host import CimError, SimHost

SCENARIO = {"host": "hv9", "vms": [
    {"name": "O'Brien \\ 100%", "id": "aaaaaaaa-0000-4000-8000-000000000001", "disks": [{"path": "C:\\a.vhdx"}]},
    {"name": "web01", "id": "aaaaaaaa-0000-4000-8000-000000000002"},
]}


def _properties(wire: dict) -> dict:
    return {name: (cim_type, array, value) for name, cim_type, array, value in wire["properties"]}


def _vm_ref(host: SimHost, name: str) -> dict:
    vm = next(v for v in host.vms if v["ElementName"] == name)
    return {"kind": "instance", "class": "Msvm_ComputerSystem", "keys": {"CreationClassName": "Msvm_ComputerSystem", "Name": vm["Name"]}}


def test_instances_carry_every_property_of_the_class_typed_with_nulls() -> None:
    reply = cim.answer(SimHost(SCENARIO), {"op": "enumerate", "namespace": "root\\virtualization\\v2", "class": "msvm_computersystem"})
    host, vm, _other = reply["instances"]
    assert host["class"] == "Msvm_ComputerSystem" and host["lineage"][:2] == ["Msvm_ComputerSystem", "CIM_ComputerSystem"]
    assert vm["keys"] == ["CreationClassName", "Name"]
    props = _properties(vm)
    assert props["EnabledState"] == ("uint16", False, 2)
    assert props["OperationalStatus"] == ("uint16", True, [2])
    assert props["InstallDate"] == ("datetime", False, None)
    assert props["CreationClassName"][2] == "Msvm_ComputerSystem"
    assert len(props) == 46


def test_wql_filters_compare_strings_without_case_and_escape_quotes() -> None:
    host = SimHost(SCENARIO)
    found = cim.answer(host, {"op": "enumerate", "class": "Msvm_ComputerSystem", "filter": "ElementName = 'o\\'brien \\\\ 100%'"})
    assert [_properties(i)["ElementName"][2] for i in found["instances"]] == ["O'Brien \\ 100%"]
    like = cim.answer(host, {"op": "enumerate", "class": "Msvm_ComputerSystem", "filter": "ElementName LIKE 'WEB%' AND NOT Caption IS NULL"})
    assert len(like["instances"]) == 1
    assert cim.answer(host, {"op": "enumerate", "class": "Msvm_ComputerSystem", "filter": "Name = 'x"})["fault"]["native"] == "InvalidQuery"


def test_faults_are_what_windows_gives() -> None:
    host = SimHost(SCENARIO)
    assert cim.answer(host, {"op": "enumerate", "class": "Msvm_Nothing"})["fault"] == {
        "native": "InvalidClass", "message": "Invalid class ", "category": "MetadataError", "hresult": "HRESULT 0x80041010"}
    assert cim.answer(host, {"op": "class", "class": "Msvm_Nothing"})["fault"]["hresult"] == "HRESULT 0x80041002"
    assert cim.answer(host, {"op": "enumerate", "namespace": "root/cimv2", "class": "Msvm_ComputerSystem"})["fault"]["native"] == "InvalidNamespace"
    missing = {"kind": "instance", "class": "Msvm_ConcreteJob", "keys": {"InstanceID": "NOPE"}}
    assert cim.answer(host, {"op": "get", "instance": missing})["fault"]["native"] == "NotFound"


def test_a_parameter_the_method_does_not_declare_is_refused_on_the_client() -> None:
    host = SimHost(SCENARIO)
    service = {"kind": "instance", "class": "Msvm_VirtualSystemReferencePointService",
               "keys": {"CreationClassName": "Msvm_VirtualSystemReferencePointService", "Name": "vmms",
                        "SystemCreationClassName": "Msvm_ComputerSystem", "SystemName": "HV9"}}
    reply = cim.answer(host, {"op": "invoke", "instance": service, "method": "CreateReferencePoint",
                              "arguments": {"Affected": _vm_ref(host, "web01")}})
    assert reply == {"argument_error": "Can not find Parameter 'Affected' in method 'CreateReferencePoint' of class "
                                       "'Msvm_VirtualSystemReferencePointService'."}
    assert "refused" in cim.answer(host, {"op": "invoke", "instance": service, "method": "Explode", "arguments": {}})


def test_method_results_are_typed_and_jobs_are_key_only_references() -> None:
    host = SimHost(dict(SCENARIO, jobs={"CreateReferencePoint": {"duration": 5}}))
    service = {"kind": "instance", "class": "Msvm_VirtualSystemReferencePointService",
               "keys": {"CreationClassName": "x", "Name": "vmms", "SystemCreationClassName": "y", "SystemName": "HV9"}}
    reply = cim.answer(host, {"op": "invoke", "instance": service, "method": "createreferencepoint", "arguments": {
        "AffectedSystem": _vm_ref(host, "web01"), "ReferencePointType": {"type": "uint16", "value": 1}}})
    result = reply["result"]
    assert result["method"] == "CreateReferencePoint" and result["return_value"] == 4096
    out = {name: (cim_type, value) for name, cim_type, _array, value in result["out"]}
    assert out["ResultingReferencePoint"] == ("reference", None)
    job = out["Job"][1]
    assert job["class"] == "Msvm_ConcreteJob" and _properties(job)["InstanceID"][2] and _properties(job)["JobState"][2] is None


@pytest.mark.parametrize("text, problem", [
    ("<INSTANCE CLASSNAME='Msvm_VirtualSystemSnapshotSettingData'><PROPERTY NAME='ConsistencyLevel' TYPE='uint16'><VALUE>1</VALUE></PROPERTY></INSTANCE>",
     "ConsistencyLevel is uint8, the embedded instance says uint16"),
    ("<INSTANCE CLASSNAME='Msvm_VirtualSystemSnapshotSettingData'><PROPERTY NAME='Colour' TYPE='string'><VALUE>x</VALUE></PROPERTY></INSTANCE>",
     "has no property 'Colour'"),
    ("<INSTANCE CLASSNAME='Msvm_VirtualSystemExportSettingData'></INSTANCE>", "where Hyper-V takes Msvm_VirtualSystemSnapshotSettingData"),
    ("<INSTANCE CLASSNAME='Msvm_VirtualSystemSnapshotSettingData'><PROPERTY NAME='IgnoreNonSnapshottableDisks' TYPE='boolean'>"
     "<VALUE>True</VALUE></PROPERTY><PROPERTY NAME='ConsistencyLevel' TYPE='uint8'><VALUE>1,0</VALUE></PROPERTY></INSTANCE>",
     "'1,0' is not a uint8 in CIM-XML"),
    ("<INSTANCE CLASSNAME='Msvm_VirtualSystemSnapshotSettingData'>", "not well-formed XML"),
])
def test_embedded_instances_are_checked_against_the_schema(text: str, problem: str) -> None:
    types = cim.Types(SimHost(SCENARIO).schema)
    with pytest.raises(cim.SimRefused, match=problem.replace("(", "\\(")):
        cim.parse_embedded(text, "Msvm_VirtualSystemSnapshotSettingData", types, "CreateSnapshot(SnapshotSettings)")


def test_a_value_the_overlay_cannot_type_is_refused_rather_than_guessed() -> None:
    host = SimHost(SCENARIO)
    host.vms[0]["LastSuccessfulBackupTime"] = "20261129000000.000000+000"
    wire = cim.Wire(cim.Types(host.schema), host.name)
    assert wire.instance(host.vms[0])  # a string property holding a string is served as such
    host.vms[0]["Dedicated"] = [2]
    with pytest.raises(cim.SimRefused, match="ComputerSystem_Dedicated is not known"):
        wire.instance(host.vms[0])


def test_datetimes_travel_as_utc_text() -> None:
    when = datetime.datetime(2026, 11, 29, 8, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert cim.check_value("datetime", when, "x") == "2026-11-29T07:00:00.000000Z"
    with pytest.raises(cim.SimRefused):
        cim.check_value("datetime", datetime.datetime(2026, 1, 1), "x")


def test_a_call_the_host_does_not_model_is_refused_loudly_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by the benchmark's baseline: an export into a folder that does not exist raised CimError
    # out of answer(), the HTTP handler died, and the module saw only "the response ended prematurely".
    host = SimHost(SCENARIO)

    def unmodelled(*_args: object) -> dict:
        raise CimError("ExportSystemDefinition into 'Z:\\nowhere', which does not exist: what Hyper-V does then is not modelled")

    monkeypatch.setattr(host, "invoke", unmodelled)
    service = {"kind": "instance", "class": "Msvm_VirtualSystemManagementService",
               "keys": {"CreationClassName": "x", "Name": "vmms", "SystemCreationClassName": "y", "SystemName": "HV9"}}
    reply = cim.answer(host, {"op": "invoke", "instance": service, "method": "ExportSystemDefinition", "arguments": {}})
    assert "which does not exist" in reply["refused"]
    assert host.calls[-1]["op"] == "refused"
