"""Release identity: versions, value paths, desired and deployed identity, JSON form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxup.api import annotations as ann
from fluxup.logic.admitted import Deployed, parse_admitted
from fluxup.logic.admitted import determine_deployed as deployed_of
from fluxup.logic.gate_values import (
    ValuePath,
    ValuePathError,
    annotations_of,
    parse_value_path,
    scalar_text,
)
from fluxup.logic.identity import (
    GatedKind,
    Identity,
    IdentityError,
    determine_desired,
    image_paths_of,
    is_exact_version,
    normalize_chart_version,
    parse_identity,
)

HR = GatedKind.HELM_RELEASE
OCI = GatedKind.OCI_REPOSITORY


#: The fixtures' chart source (no sourceRef, no namespace) and absent image siblings.
SOURCE = "chart:app@//"
NO_EXTRAS = (("image.digest", None), ("image.registry", None), ("image.repository", None))


def helm_release(
    version: Any = "12.4.0",
    *,
    values: Any = None,
    paths: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    chart_ref: bool = False,
) -> dict[str, Any]:
    notes = dict(annotations or {})
    if paths is not None:
        notes[ann.IMAGE_PATHS] = json.dumps(paths)
    spec: dict[str, Any] = {}
    if chart_ref:
        spec["chartRef"] = {"kind": "OCIRepository", "name": "app"}
    else:
        spec["chart"] = {"spec": {"chart": "app", "version": version}}
    if values is not None:
        spec["values"] = values
    obj: dict[str, Any] = {"metadata": {"name": "app", "annotations": notes}, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


# --- versions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "exact"),
    [
        ("12.5.0", True),
        ("v12.5.0", True),
        ("=1.2.3", True),
        (" 1.2.3 ", True),
        ("1.2.3-rc.1", True),
        ("1.2.3+build.5", True),
        ("12.x", False),
        ("12.5.x", False),
        (">=12", False),
        (">=12.0.0 <13.0.0", False),
        ("^1.2", False),
        ("~1.2", False),
        ("~1.2.3", False),
        ("*", False),
        ("12", False),
        ("12.5", False),
        ("", False),
        ("1.2.3 || 1.2.4", False),
        ("01.2.3", False),
    ],
)
def test_is_exact_version(version: str, exact: bool) -> None:
    assert is_exact_version(version) is exact


def test_normalize_chart_version_drops_prefixes() -> None:
    assert normalize_chart_version(" =v1.2.3 ") == "1.2.3"
    assert normalize_chart_version("1.2.3") == "1.2.3"


# --- value paths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("image.tag", ("image", "tag")),
        ("spec.values.image.tag", ("image", "tag")),
        ("sidecars[0].image.tag", ("sidecars", 0, "image", "tag")),
        ("matrix[1][2]", ("matrix", 1, 2)),
        (r"annotations.example\.com/tag", ("annotations", "example.com/tag")),
        ("tag", ("tag",)),
    ],
)
def test_parse_value_path(text: str, segments: tuple[str | int, ...]) -> None:
    assert parse_value_path(text).segments == segments


@pytest.mark.parametrize(
    "text", ["", "  ", "image..tag", ".image", "image.", "[0].a", "a[x]", "a[0]b", "a\\", "a[1"]
)
def test_parse_value_path_rejects(text: str) -> None:
    with pytest.raises(ValuePathError):
        parse_value_path(text)


_keys = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zs"]), min_size=1, max_size=8
).filter(lambda k: k == k.strip())


@given(st.lists(st.one_of(_keys, st.integers(0, 20)), min_size=1, max_size=6))
def test_value_path_round_trips(segments: list[str | int]) -> None:
    if isinstance(segments[0], int) or segments[:2] == ["spec", "values"]:
        segments = ["root", *segments]
    path = ValuePath(tuple(segments))
    assert parse_value_path(str(path)) == path


def test_lookup_follows_maps_and_lists_and_tolerates_shapes() -> None:
    values = {"a": {"b": [{"c": "x"}]}, "s": "str"}
    assert parse_value_path("a.b[0].c").lookup(values) == "x"
    assert parse_value_path("a.b[3].c").lookup(values) is None
    assert parse_value_path("s.t").lookup(values) is None
    assert parse_value_path("a[0]").lookup(values) is None
    assert parse_value_path("a.b").lookup(None) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [("1.2", "1.2"), (1.2, "1.2"), (12, "12"), (True, "true"), (None, None), ({"b": 1, "a": 2},
     '{"a":2,"b":1}')],
)
def test_scalar_text(value: object, text: str | None) -> None:
    assert scalar_text(value) == text


def test_annotations_skip_non_strings() -> None:
    assert annotations_of({"metadata": {"annotations": {"a": "1", "b": 2}}}) == {"a": "1"}
    assert annotations_of({"metadata": {"annotations": ["x"]}}) == {}
    assert annotations_of("nonsense") == {}


# --- the identity value ---------------------------------------------------------------


def test_identity_json_round_trip_is_canonical() -> None:
    ident = Identity("12.5.0", (("spec.values.image.tag", "1.22"), ("db.tag", None)))
    text = ident.to_json()
    assert text == '{"chart":"12.5.0","images":{"db.tag":null,"image.tag":"1.22"}}'
    assert parse_identity(text) == ident


@given(
    st.one_of(st.none(), st.text(max_size=10)),
    st.dictionaries(st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,5}){0,2}", fullmatch=True),
                    st.one_of(st.none(), st.text(max_size=10)), max_size=4),
)
def test_identity_json_round_trips(chart: str | None, images: dict[str, str | None]) -> None:
    ident = Identity(chart, tuple(images.items()))
    assert parse_identity(ident.to_json()) == ident


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[]", '"x"', '{"chart": 1}', '{"images": []}', '{"images": {"a": 1}}',
     '{"chart": "1", "extra": true}'],
)
def test_parse_identity_rejects(text: str) -> None:
    with pytest.raises(IdentityError):
        parse_identity(text)


def test_satisfies_compares_only_defined_components() -> None:
    desired = Identity(None, (("image.tag", "2"),))
    assert desired.satisfies(Identity("1.0.0", (("image.tag", "2"),)))
    assert not desired.satisfies(Identity("1.0.0", (("image.tag", "1"),)))
    assert not desired.satisfies(Identity("1.0.0"))  # image unknown there
    assert Identity("1.0.0").satisfies(Identity("1.0.0", (("x", "y"),)))
    assert not Identity("1.0.0").satisfies(Identity(None))
    assert Identity(None, (("a", None),)).satisfies(Identity(None, (("a", None),)))


def test_describe() -> None:
    assert Identity("12.5.0").describe() == "12.5.0"
    assert Identity("1", (("image.tag", "2"),)).describe() == "1 (image.tag=2)"
    assert Identity(None, (("image.tag", None),)).describe() == "image.tag=<unset>"


# --- desired --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "chart", "ungated"),
    [
        (helm_release("12.5.0"), "12.5.0", False),
        (helm_release("v12.5.0"), "12.5.0", False),
        (helm_release("12.x"), None, True),
        (helm_release(">=12"), None, True),
        (helm_release("^1.2"), None, True),
        (helm_release("~1.2"), None, True),
        (helm_release("*"), None, True),
        (helm_release(None), None, True),
        (helm_release(12), None, True),
        (helm_release(chart_ref=True), None, False),
        ({}, None, True),
        ({"spec": "garbage"}, None, True),
    ],
)
def test_desired_helm_release_chart(obj: dict[str, Any], chart: str | None, ungated: bool) -> None:
    desired = determine_desired(HR, obj)
    assert desired.identity.chart == chart
    assert bool(desired.ungated) is ungated
    assert desired.problems == ()


def test_desired_helm_release_images_at_paths() -> None:
    obj = helm_release(values={"image": {"tag": "1.22"}, "db": {"image": {"tag": 15}}},
                       paths=["image.tag", "spec.values.db.image.tag", "missing.tag"])
    none = dict.fromkeys(
        ("image.repository", "image.registry", "image.digest", "db.image.repository",
         "db.image.registry", "db.image.digest", "missing.repository", "missing.registry",
         "missing.digest"))
    assert determine_desired(HR, obj).identity == Identity(
        "12.4.0", (("image.tag", "1.22"), ("db.image.tag", "15"), ("missing.tag", None)),
        SOURCE, tuple(none.items()),
    )


def test_the_chart_source_and_image_repository_are_part_of_the_identity() -> None:
    base = helm_release(values={"image": {"tag": "1.0", "repository": "a/app"}},
                        paths=["image.tag"])
    desired = determine_desired(HR, base).identity
    moved = json.loads(json.dumps(base))
    moved["spec"]["chart"]["spec"]["sourceRef"] = {"kind": "HelmRepository", "name": "other"}
    renamed = json.loads(json.dumps(base))
    renamed["spec"]["chart"]["spec"]["chart"] = "other-chart"
    repo = json.loads(json.dumps(base))
    repo["spec"]["values"]["image"]["repository"] = "evil/app"
    ref = helm_release(chart_ref=True, values=base["spec"]["values"], paths=["image.tag"])
    for changed in (moved, renamed, repo, ref):
        assert not determine_desired(HR, changed).identity.satisfies(desired)
    assert desired.satisfies(determine_desired(HR, json.loads(json.dumps(base))).identity)


def test_build_metadata_does_not_make_another_chart_version() -> None:
    assert Identity("1.0.0+abc") == Identity("1.0.0")
    assert Identity("@sha256:ab+cd").chart == "@sha256:ab+cd"  # digests are kept whole


@pytest.mark.parametrize("paths", ["not json", '{"a": 1}', '["ok", 3]', '["a..b"]'])
def test_desired_unreadable_image_paths_is_a_problem(paths: str) -> None:
    obj = helm_release(annotations={ann.IMAGE_PATHS: paths})
    assert determine_desired(HR, obj).problems


def test_image_paths_absent_means_none() -> None:
    assert image_paths_of(helm_release()) == ((), ())


@pytest.mark.parametrize(
    ("ref", "chart", "ungated"),
    [
        ({"tag": "1.2.3"}, "1.2.3", False),
        ({"tag": "1.2.3", "digest": "sha256:ab"}, "@sha256:ab", False),
        ({"semver": ">=1.0.0", "tag": "1.2.3"}, None, True),
        ({"tag": "latest"}, None, True),
        ({}, None, True),
        (None, None, True),
    ],
)
def test_desired_oci_repository(ref: Any, chart: str | None, ungated: bool) -> None:
    obj = {"spec": {"url": "oci://x", "ref": ref}}
    desired = determine_desired(OCI, obj)
    assert desired.identity.chart == chart
    assert bool(desired.ungated) is ungated


# --- deployed -------------------------------------------------------------------------


def determine_deployed(kind: GatedKind, stored: Any, incoming: Any) -> Deployed:
    """What runs, from plain objects read through the gate's parser."""
    return deployed_of(parse_admitted(kind, stored) if stored is not None else None,
                       parse_admitted(kind, incoming))


def test_deployed_from_v2_history() -> None:
    stored = helm_release(status={"history": [{"chartVersion": "12.4.0"}, {"chartVersion": "1"}]})
    deployed = determine_deployed(HR, stored, stored)
    assert deployed.candidates == (Identity("12.4.0", source=SOURCE),)
    assert not deployed.nothing


def test_deployed_is_the_newest_attempt_even_when_it_failed() -> None:
    """A failed upgrade passed the gate (it was snapshotted) and may have half-run: it is
    what runs. Going back to the version before it is a change, held and snapshotted."""
    stored = helm_release("12.5.0", status={"history": [
        {"chartVersion": "12.5.0", "status": "failed"},
        {"chartVersion": "12.4.0", "status": "superseded"}]})
    deployed = determine_deployed(HR, stored, stored)
    assert deployed.candidates == (Identity("12.5.0", source=SOURCE),)
    assert not deployed.satisfied_by(Identity("12.4.0", source=SOURCE))


def test_deployed_from_v2beta1_last_applied_revision() -> None:
    stored = helm_release(status={"lastAppliedRevision": "12.4.0"})
    assert determine_deployed(HR, stored, stored).candidates == (Identity("12.4.0", source=SOURCE),)


def test_deployed_history_wins_over_released_chart_and_released_gives_images() -> None:
    released = Identity("12.3.0", (("image.tag", "1.0"),)).to_json()
    stored = helm_release(annotations={ann.RELEASED: released}, paths=["image.tag"],
                          status={"history": [{"chartVersion": "12.4.0"}]})
    deployed = determine_deployed(HR, stored, stored)
    assert deployed.candidates == (
        Identity("12.4.0", (("image.tag", "1.0"),), SOURCE, NO_EXTRAS),
    )


def test_deployed_from_released_only() -> None:
    released = Identity("12.4.0", source="chart:app@HelmRepository/x/y").to_json()
    stored = helm_release(annotations={ann.RELEASED: released})
    assert determine_deployed(HR, stored, stored).candidates == (
        Identity("12.4.0", source="chart:app@HelmRepository/x/y"),  # released source wins
    )


def test_deployed_nothing_without_status_or_released() -> None:
    assert determine_deployed(HR, helm_release(), helm_release()).nothing


def test_deployed_on_create_ignores_incoming_status_but_reads_released() -> None:
    incoming = helm_release(status={"history": [{"chartVersion": "12.4.0"}]})
    assert determine_deployed(HR, None, incoming).nothing
    incoming = helm_release(annotations={ann.RELEASED: Identity("1.0.0").to_json()})
    assert determine_deployed(HR, None, incoming).candidates == (Identity("1.0.0"),)


def test_deployed_images_fall_back_to_unheld_stored_spec() -> None:
    stored = helm_release(values={"image": {"tag": "1.0"}}, paths=["image.tag"],
                          status={"history": [{"chartVersion": "12.4.0"}]})
    deployed = determine_deployed(HR, stored, stored)
    assert deployed.candidates == (
        Identity("12.4.0", (("image.tag", "1.0"),), SOURCE, NO_EXTRAS),
    )
    held = dict(stored, metadata={"annotations": {ann.HELD: "{}"}})
    deployed = determine_deployed(HR, held, held)
    # image and source unknown: a held spec is not running
    assert deployed.candidates == (Identity("12.4.0"),)


def test_deployed_ignores_malformed_released() -> None:
    stored = helm_release(annotations={ann.RELEASED: "garbage"})
    assert determine_deployed(HR, stored, stored).nothing


@pytest.mark.parametrize(
    ("revision", "charts"),
    [
        ("1.2.3@sha256:abc", ("1.2.3", "@sha256:abc")),
        ("sha256:abc", ("@sha256:abc",)),
        ("1.2.3/abc", ("1.2.3", "@sha256:abc")),
        ("1.2.3", ("1.2.3",)),
    ],
)
def test_deployed_oci_revision(revision: str, charts: tuple[str, ...]) -> None:
    stored = {"spec": {"ref": {"tag": "x"}}, "status": {"artifact": {"revision": revision}}}
    deployed = determine_deployed(OCI, stored, stored)
    assert tuple(c.chart for c in deployed.candidates) == charts
