"""The typed models in fluxup.api agree with the CRDs in crds/, and parse what users write.

* schema vs. model: walking each CRD's openAPIV3Schema and the dataclasses together,
  every property has a field and vice versa, with compatible types, equal enums, equal
  requiredness and equal defaults;
* every sample in manifests/samples and every status example round-trips through the
  models, with the CRD's defaults applied exactly as the model applies them;
* bad input raises InvalidObjectError naming the field and the object.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxup.api import constants
from fluxup.api._codec import FieldSpec, Resource, encode, model_fields
from fluxup.api.duration import DURATION_PATTERN, Duration
from fluxup.api.managedapp import ManagedApp, ManagedAppSpec, ManagedAppStatus
from fluxup.api.meta import ObjectMeta
from fluxup.api.rollbackrequest import RollbackRequest
from fluxup.api.upgraderequest import Origin, UpgradeRequest, UpgradeRequestStatus
from fluxup.errors import ConfigError, InvalidObjectError
from tests.api.examples import STATUS_EXAMPLES

REPO = Path(__file__).resolve().parents[2]
CRD_FILES = sorted((REPO / "crds").glob("fluxup.dev_*.yaml"))
SAMPLE_FILES = sorted((REPO / "manifests" / "samples").glob("*.yaml"))

MODELS: dict[str, type[Resource]] = {
    "ManagedApp": ManagedApp,
    "UpgradeRequest": UpgradeRequest,
    "RollbackRequest": RollbackRequest,
}
KINDS = {
    k.kind: k
    for k in (constants.MANAGED_APP, constants.UPGRADE_REQUEST, constants.ROLLBACK_REQUEST)
}


def load_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in CRD_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                crds[doc["spec"]["names"]["kind"]] = doc
    return crds


CRDS = load_crds()


def test_every_kind_has_a_crd() -> None:
    assert set(CRDS) == set(MODELS)


def root_schema(kind: str) -> dict[str, Any]:
    (version,) = CRDS[kind]["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    """Structural defaulting as the apiserver does it (defaults of absent properties)."""
    if isinstance(value, dict) and "properties" in schema:
        for key, sub in schema["properties"].items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
    elif isinstance(value, list) and "items" in schema:
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def as_json(value: object) -> object:
    """A model default the way it appears in JSON."""
    if isinstance(value, Duration):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return [as_json(v) for v in value]
    return value


def unwrap_optional(hint: Any) -> Any:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, hint
        return args[0]
    return hint


# --- schema vs. model -----------------------------------------------------------------


def compare(schema: Mapping[str, Any], hint: Any, path: str, problems: list[str]) -> None:
    """Append to ``problems`` every way ``schema`` and the type ``hint`` disagree."""
    hint = unwrap_optional(hint)
    kind = schema.get("type")
    if kind == "object":
        if "properties" not in schema:
            if hint is not ObjectMeta and typing.get_origin(hint) is not Mapping:
                problems.append(f"{path}: free-form object in schema, {hint!r} in model")
            return
        if not dataclasses.is_dataclass(hint):
            problems.append(f"{path}: object in schema, {hint!r} in model")
            return
        compare_object(schema, hint, path, problems)
    elif kind == "array":
        if typing.get_origin(hint) is not tuple:
            problems.append(f"{path}: array in schema, {hint!r} in model")
            return
        compare(schema["items"], typing.get_args(hint)[0], f"{path}[]", problems)
    elif kind == "string":
        compare_string(schema, hint, path, problems)
    elif kind == "integer":
        if hint is not int:
            problems.append(f"{path}: integer in schema, {hint!r} in model")
    elif kind == "boolean":
        if hint is not bool:
            problems.append(f"{path}: boolean in schema, {hint!r} in model")
    else:
        problems.append(f"{path}: schema type {kind!r} is not modelled")


def compare_string(schema: Mapping[str, Any], hint: Any, path: str, problems: list[str]) -> None:
    if "enum" in schema:
        if not (isinstance(hint, type) and issubclass(hint, enum.StrEnum)):
            problems.append(f"{path}: enum in schema, {hint!r} in model")
        elif set(schema["enum"]) != {m.value for m in hint}:
            problems.append(
                f"{path}: schema enum {sorted(schema['enum'])} != "
                f"{hint.__name__} {sorted(m.value for m in hint)}"
            )
    elif schema.get("format") == "date-time":
        if hint is not datetime:
            problems.append(f"{path}: date-time in schema, {hint!r} in model")
    elif schema.get("pattern") == DURATION_PATTERN:
        if hint is not Duration:
            problems.append(f"{path}: duration in schema, {hint!r} in model")
    elif hint is not str:
        problems.append(f"{path}: plain string in schema, {hint!r} in model")


def compare_object(schema: Mapping[str, Any], cls: Any, path: str, problems: list[str]) -> None:
    props: dict[str, Any] = schema["properties"]
    fields: dict[str, FieldSpec] = {f.json: f for f in model_fields(cls)}
    for name in sorted(props.keys() - fields.keys()):
        problems.append(f"{path}.{name}: in the schema, not in {cls.__name__}")
    for name in sorted(fields.keys() - props.keys()):
        problems.append(f"{path}.{name}: in {cls.__name__}, not in the schema")
    required = set(schema.get("required", []))
    for name in sorted(props.keys() & fields.keys()):
        field, sub, where = fields[name], props[name], f"{path}.{name}".lstrip(".")
        if not (path == "" and name in ("apiVersion", "kind", "metadata")):
            if field.required != (name in required):
                problems.append(
                    f"{where}: required in schema={name in required}, model={field.required}"
                )
            if "default" in sub:
                expected = apply_defaults(sub, copy.deepcopy(sub["default"]))
                if field.required or as_json(field.default) != expected:
                    problems.append(
                        f"{where}: schema default {expected!r}, model default {field.default!r}"
                    )
            elif not field.required and as_json(field.default) not in (None, [], {}):
                problems.append(f"{where}: model default {field.default!r}, none in schema")
        compare(sub, field.hint, where, problems)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_schema_and_model_agree(kind: str) -> None:
    problems: list[str] = []
    compare(root_schema(kind), MODELS[kind], "", problems)
    assert problems == []


def test_the_walk_finds_disagreements() -> None:
    """The comparison itself catches each kind of drift (a guard against a vacuous walk)."""
    schema = copy.deepcopy(root_schema("UpgradeRequest"))
    spec = schema["properties"]["spec"]["properties"]
    spec["newField"] = {"type": "string"}
    del spec["dryRun"]
    spec["origin"]["enum"].append("cron")
    spec["origin"]["default"] = "ui"
    spec["skipSnapshot"]["type"] = "string"
    schema["properties"]["status"]["properties"]["deadline"].pop("format")
    problems: list[str] = []
    compare(schema, UpgradeRequest, "", problems)
    text = "\n".join(problems)
    for expected in (
        "spec.newField: in the schema",
        "spec.dryRun: in UpgradeRequestSpec",
        "spec.origin: schema enum",
        "spec.origin: schema default",
        "spec.skipSnapshot: plain string",
        "status.deadline: plain string",
    ):
        assert expected in text


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_crd_names_match_constants(kind: str) -> None:
    crd, names = CRDS[kind], KINDS[kind]
    assert crd["metadata"]["name"] == names.crd_name
    assert crd["spec"]["group"] == constants.GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert [v["name"] for v in crd["spec"]["versions"]] == [constants.VERSION]
    assert crd["spec"]["names"] == {
        "kind": names.kind,
        "listKind": f"{names.kind}List",
        "plural": names.plural,
        "singular": names.singular,
        "shortNames": [names.short_name],
        "categories": [constants.CATEGORY],
    }
    assert kind == MODELS[kind].KIND


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_crd_has_status_subresource_and_columns(kind: str) -> None:
    (version,) = CRDS[kind]["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert (
        columns
        == {
            "ManagedApp": ["Current", "Available", "Ready", "Age"],
            "UpgradeRequest": ["App", "Target", "Phase", "Age"],
            "RollbackRequest": ["App", "From", "To", "Phase", "Age"],
        }[kind]
    )


def test_every_cel_string_and_list_is_bounded() -> None:
    """Strings and lists under a CEL rule carry maxLength/maxItems (keeps the cost static)."""
    unbounded: list[str] = []

    def walk(schema: Mapping[str, Any], path: str, under_rule: bool) -> None:
        under_rule = under_rule or bool(schema.get("x-kubernetes-validations"))
        bounded = "maxLength" in schema or "enum" in schema or schema.get("format") == "date-time"
        if under_rule and schema.get("type") == "string" and not bounded:
            unbounded.append(path)
        if under_rule and schema.get("type") == "array" and "maxItems" not in schema:
            unbounded.append(path)
        for key, sub in schema.get("properties", {}).items():
            if not (path == "" and key in ("metadata", "status")):
                walk(sub, f"{path}.{key}", under_rule)
        if "items" in schema:
            walk(schema["items"], f"{path}[]", under_rule)

    for kind in MODELS:
        walk(root_schema(kind)["properties"]["spec"], f"{kind}.spec", False)
    assert unbounded == []


# --- round trips ----------------------------------------------------------------------


def load_samples() -> list[Any]:
    params = []
    for path in SAMPLE_FILES:
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                params.append(pytest.param(doc, id=f"{path.stem}-{i}"))
    return params


def test_there_are_samples_of_every_kind() -> None:
    kinds = [p.values[0]["kind"] for p in load_samples()]
    assert set(kinds) == set(MODELS)
    specs = [p.values[0]["spec"] for p in load_samples()]
    assert any(s.get("versionPolicy", {}).get("images") for s in specs)
    assert any("snapshotRef" in s for s in specs)


@pytest.mark.parametrize("doc", load_samples())
def test_sample_round_trips_with_crd_defaults(doc: dict[str, Any]) -> None:
    model = MODELS[doc["kind"]].from_dict(doc)
    expected = apply_defaults(root_schema(doc["kind"]), copy.deepcopy(doc))
    assert model.to_dict() == expected
    assert type(model).from_dict(model.to_dict()) == model


@pytest.mark.parametrize("kind", sorted(STATUS_EXAMPLES))
def test_status_example_round_trips(kind: str) -> None:
    example = STATUS_EXAMPLES[kind]
    status_cls = typing.get_type_hints(MODELS[kind])["status"]
    status = status_cls.from_dict(example)
    assert status.to_dict() == example


def schema_paths(schema: Mapping[str, Any], path: str = "") -> set[str]:
    paths = {path} if path else set()
    for key, sub in schema.get("properties", {}).items():
        paths |= schema_paths(sub, f"{path}.{key}")
    if "items" in schema:
        paths |= schema_paths(schema["items"], f"{path}[]")
    return paths


def value_paths(value: Any, path: str = "") -> set[str]:
    paths = {path} if path else set()
    if isinstance(value, dict):
        for key, sub in value.items():
            paths |= value_paths(sub, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            paths |= value_paths(item, f"{path}[]")
    return paths


@pytest.mark.parametrize("kind", sorted(STATUS_EXAMPLES))
def test_status_example_sets_every_status_field(kind: str) -> None:
    schema = root_schema(kind)["properties"]["status"]
    assert schema_paths(schema) - value_paths(STATUS_EXAMPLES[kind]) == set()


def test_merge_patch_form_clears_unset_fields() -> None:
    status = UpgradeRequestStatus.from_dict({"phase": "Preflight", "message": "checking"})
    patch = status.to_dict(nulls=True)
    assert patch["phase"] == "Preflight"
    assert patch["deadline"] is None
    assert patch["snapshots"] is None
    assert set(patch) == {f.json for f in model_fields(UpgradeRequestStatus)}


def test_defaults_and_typed_values() -> None:
    app = ManagedApp.from_dict(
        {
            "apiVersion": "fluxup.dev/v1alpha1",
            "kind": "ManagedApp",
            "metadata": {
                "name": "podinfo",
                "namespace": "podinfo",
                "generation": 2,
                "creationTimestamp": "2026-03-01T10:00:00Z",
                "managedFields": [{"manager": "kubectl"}],
            },
            "spec": {"helmReleaseRef": {"name": "podinfo"}, "timeouts": {"apply": "1h30m"}},
        }
    )
    assert app.metadata.generation == 2
    assert app.metadata.creation_timestamp == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert app.spec.helm_release_ref.namespace_or("podinfo") == "podinfo"
    assert app.spec.volume_snapshots.enabled is True
    assert app.spec.volume_snapshots.retention_policy.keep_last == 3
    assert app.spec.timeouts.apply.to_timedelta().total_seconds() == 5400
    assert app.spec.timeouts.snapshot.to_timedelta().total_seconds() == 600
    assert app.spec.health_check.timeout == Duration("5m")
    assert app.status == ManagedAppStatus()
    assert "status" not in app.to_dict()
    spec = {"helmReleaseRef": {"name": "podinfo"}, "timeouts": {"apply": "1h30m"}}
    assert ManagedAppSpec.from_dict(spec) == app.spec


def test_kopf_style_mappings_are_accepted() -> None:
    class View(Mapping[str, Any]):  # kopf hands bodies over as read-only mapping views
        def __init__(self, data: dict[str, Any]) -> None:
            self._data = data

        def __getitem__(self, key: str) -> Any:
            return self._data[key]

        def __iter__(self) -> Any:
            return iter(self._data)

        def __len__(self) -> int:
            return len(self._data)

    ur = UpgradeRequest.from_dict(
        View(
            {
                "apiVersion": "fluxup.dev/v1alpha1",
                "kind": "UpgradeRequest",
                "metadata": View({"name": "u", "namespace": "n"}),
                "spec": View(
                    {
                        "managedAppRef": {"name": "podinfo"},
                        "origin": "git",
                        "targetVersion": "6.5.4",
                    }
                ),
            }
        )
    )
    assert ur.spec.origin is Origin.GIT


# --- parse errors ---------------------------------------------------------------------


def managed_app(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "ManagedApp",
        "metadata": {"name": "podinfo", "namespace": "demo"},
        "spec": {"helmReleaseRef": {"name": "podinfo"}, **spec},
    }


def upgrade_request(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "UpgradeRequest",
        "metadata": {"name": "podinfo-6-5-4", "namespace": "demo"},
        "spec": {"managedAppRef": {"name": "podinfo"}, **spec},
    }


def rollback_request(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "fluxup.dev/v1alpha1",
        "kind": "RollbackRequest",
        "metadata": {"name": "undo", "namespace": "demo"},
        "spec": spec,
    }


def _with(doc: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    change(doc)
    return doc


PARSE_ERRORS = [
    # (id, model, object, path, problem substring)
    (
        "missing-spec",
        ManagedApp,
        _with(managed_app(), lambda d: d.pop("spec")),
        "spec",
        "required field is missing",
    ),
    (
        "missing-ref",
        ManagedApp,
        _with(managed_app(), lambda d: d["spec"].pop("helmReleaseRef")),
        "spec.helmReleaseRef",
        "required field is missing",
    ),
    (
        "missing-ref-name",
        ManagedApp,
        managed_app(kustomizationRef={"namespace": "flux-system"}),
        "spec.kustomizationRef.name",
        "required field is missing",
    ),
    (
        "spec-not-object",
        ManagedApp,
        _with(managed_app(), lambda d: d.update(spec=["a"])),
        "spec",
        "expected an object, got ['a'] (list)",
    ),
    (
        "bool-as-string",
        ManagedApp,
        managed_app(suspend="yes"),
        "spec.suspend",
        "expected true or false, got 'yes' (str)",
    ),
    (
        "int-as-string",
        ManagedApp,
        managed_app(volumeSnapshots={"retentionPolicy": {"keepLast": "3"}}),
        "spec.volumeSnapshots.retentionPolicy.keepLast",
        "expected an integer, got '3' (str)",
    ),
    (
        "bool-as-int",
        ManagedApp,
        managed_app(volumeSnapshots={"retentionPolicy": {"keepLast": True}}),
        "spec.volumeSnapshots.retentionPolicy.keepLast",
        "expected an integer",
    ),
    (
        "string-as-int",
        ManagedApp,
        managed_app(gitPath=7),
        "spec.gitPath",
        "expected a string, got 7 (int)",
    ),
    (
        "bad-enum",
        ManagedApp,
        managed_app(versionPolicy={"chart": {"autoUpdate": "always"}}),
        "spec.versionPolicy.chart.autoUpdate",
        "expected one of none, patch, minor, major",
    ),
    (
        "bad-duration",
        ManagedApp,
        managed_app(timeouts={"snapshot": "1d"}),
        "spec.timeouts.snapshot",
        "'1d' is not a duration; write it like 30s, 5m, 1h30m or 1.5h",
    ),
    (
        "duration-as-int",
        ManagedApp,
        managed_app(healthCheck={"timeout": 300}),
        "spec.healthCheck.timeout",
        "expected a duration, got 300 (int)",
    ),
    (
        "list-expected",
        ManagedApp,
        managed_app(volumeSnapshots={"pvcs": {"name": "data"}}),
        "spec.volumeSnapshots.pvcs",
        "expected a list",
    ),
    (
        "item-field",
        ManagedApp,
        managed_app(volumeSnapshots={"pvcs": [{"name": "a"}, {}]}),
        "spec.volumeSnapshots.pvcs[1].name",
        "required field is missing",
    ),
    (
        "image-item",
        ManagedApp,
        managed_app(versionPolicy={"images": [{"name": "ghcr.io/x/y"}]}),
        "spec.versionPolicy.images[0].valuesPath",
        "required field is missing",
    ),
    (
        "window-time",
        ManagedApp,
        managed_app(versionPolicy={"maintenanceWindow": {"start": "2:00", "end": "05:00"}}),
        "spec.versionPolicy.maintenanceWindow.start",
        "'2:00' is not a time of day; write HH:MM",
    ),
    (
        "window-empty",
        ManagedApp,
        managed_app(versionPolicy={"maintenanceWindow": {"start": "02:00", "end": "02:00"}}),
        "spec.versionPolicy.maintenanceWindow.end",
        "equals start",
    ),
    (
        "window-day",
        ManagedApp,
        managed_app(versionPolicy={"maintenanceWindow": {"start": "02:00", "end": "03:00",
                                                         "days": ["Sat", "Caturday"]}}),
        "spec.versionPolicy.maintenanceWindow.days[1]",
        "expected one of Mon, Tue, Wed, Thu, Fri, Sat, Sun",
    ),
    (
        "bad-time",
        ManagedApp,
        _with(
            managed_app(),
            lambda d: d.update(
                status={
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Succeeded",
                            "message": "",
                            "lastTransitionTime": "yesterday",
                        }
                    ]
                }
            ),
        ),
        "status.conditions[0].lastTransitionTime",
        "expected an RFC 3339 time",
    ),
    (
        "naive-time",
        ManagedApp,
        _with(
            managed_app(),
            lambda d: d.update(
                status={
                    "lastUpgrade": {
                        "upgradeRequest": "u",
                        "phase": "Succeeded",
                        "startedAt": "2026-03-01T10:00:00",
                    }
                }
            ),
        ),
        "status.lastUpgrade.startedAt",
        "expected an RFC 3339 time",
    ),
    (
        "bad-condition-status",
        ManagedApp,
        _with(
            managed_app(),
            lambda d: d.update(
                status={
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "true",
                            "reason": "Succeeded",
                            "message": "",
                            "lastTransitionTime": "2026-03-01T10:00:00Z",
                        }
                    ]
                }
            ),
        ),
        "status.conditions[0].status",
        "expected one of True, False, Unknown",
    ),
    (
        "wrong-kind",
        ManagedApp,
        _with(managed_app(), lambda d: d.update(kind="HelmRelease")),
        "kind",
        "expected ManagedApp, got 'HelmRelease'",
    ),
    (
        "wrong-api-version",
        ManagedApp,
        _with(managed_app(), lambda d: d.update(apiVersion="fluxup.dev/v1")),
        "apiVersion",
        "expected fluxup.dev/v1alpha1, got 'fluxup.dev/v1'",
    ),
    (
        "missing-name",
        ManagedApp,
        _with(managed_app(), lambda d: d["metadata"].pop("name")),
        "metadata.name",
        "required field is missing",
    ),
    (
        "bad-origin",
        UpgradeRequest,
        upgrade_request(origin="github"),
        "spec.origin",
        "expected one of ui, kubectl, git, renovate, got 'github'",
    ),
    (
        "bad-phase",
        UpgradeRequest,
        _with(upgrade_request(), lambda d: d.update(status={"phase": "Completed"})),
        "status.phase",
        "expected one of Pending, Queued",
    ),
    (
        "target-image-tag",
        UpgradeRequest,
        upgrade_request(targetImages=[{"valuesPath": "image.tag"}]),
        "spec.targetImages[0].tag",
        "required field is missing",
    ),
    (
        "rollback-both",
        RollbackRequest,
        rollback_request(upgradeRequestRef={"name": "u"}, snapshotRef={"name": "s"}),
        "spec",
        "set exactly one of upgradeRequestRef or snapshotRef",
    ),
    (
        "rollback-none",
        RollbackRequest,
        rollback_request(),
        "spec",
        "set exactly one of upgradeRequestRef or snapshotRef",
    ),
    (
        "rollback-origin",
        RollbackRequest,
        rollback_request(snapshotRef={"name": "s"}, origin="renovate"),
        "spec.origin",
        "expected one of ui, kubectl, auto",
    ),
]


@pytest.mark.parametrize(
    ("model", "doc", "path", "problem"),
    [pytest.param(*case[1:], id=case[0]) for case in PARSE_ERRORS],
)
def test_parse_error(model: type[Resource], doc: dict[str, Any], path: str, problem: str) -> None:
    with pytest.raises(InvalidObjectError) as info:
        model.from_dict(doc)
    err = info.value
    assert isinstance(err, ConfigError)
    assert err.path == path
    assert problem in err.problem
    name = doc.get("metadata", {}).get("name")
    assert err.obj == (f"{model.KIND} demo/{name}" if name else model.KIND)
    assert str(err).startswith(f"{err.obj}: {path}: ")
    assert "apply crds/ again" in str(err)  # says what to do


def test_spec_and_status_parsers_name_their_position() -> None:
    with pytest.raises(InvalidObjectError) as info:
        ManagedAppSpec.from_dict({"helmReleaseRef": {"name": 3}})
    assert info.value.path == "spec.helmReleaseRef.name"
    with pytest.raises(InvalidObjectError) as info:
        UpgradeRequestStatus.from_dict({"snapshots": [{"name": "s"}]})
    assert info.value.path == "status.snapshots[0].namespace"
