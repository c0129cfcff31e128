"""Tests for fluxup.logic.yamledit: golden files byte for byte, reverse-edit properties,
and one test per refusal (each names the file, the object and the field)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from fluxup.errors import (
    AmbiguousDocumentError,
    DocumentNotFoundError,
    FieldNotFoundError,
    InvalidValueError,
    InvalidYamlError,
    NotAScalarError,
    UnsupportedYamlError,
    VersionRangeError,
    YamlEditError,
)
from fluxup.logic import yamledit
from fluxup.logic.imageref import ImageRef, normalize_repository, parse_image
from fluxup.logic.yamledit import (
    DocumentRef,
    diff_text,
    edit_chart_version,
    edit_container_image,
    edit_oci_tag,
    edit_scalar,
    edit_values_image_tag,
    find_documents,
    read_scalar,
)

GOLDEN = Path(__file__).parent / "golden"

Edit = Callable[[str], str]

#: golden output name -> (input name, the edit that turns input into output)
CASES: dict[str, tuple[str, Edit]] = {
    "helmrelease_multidoc": (
        "helmrelease_multidoc",
        lambda t: edit_chart_version(t, name="redis", namespace="apps", version="18.2.0"),
    ),
    "helmrelease_indent4": (
        "helmrelease_indent4",
        lambda t: edit_chart_version(t, name="postgres", version="12.6.0"),
    ),
    "helmrelease_flow": (
        "helmrelease_flow",
        lambda t: edit_chart_version(t, name="podinfo", namespace="demo", version="6.6.0"),
    ),
    "helmrelease_crlf": (
        "helmrelease_crlf",
        lambda t: edit_chart_version(t, name="gitea", version="10.2.0"),
    ),
    "ocirepository_tag": (
        "ocirepository_tag",
        lambda t: edit_oci_tag(t, name="podinfo-chart", namespace="demo", tag="6.6.0"),
    ),
    "values_image_tag": (
        "values_image_tag",
        lambda t: edit_values_image_tag(
            t, name="nextcloud", values_path="app.image.tag", tag="29.0.0-apache"
        ),
    ),
    "values_image_tag.sidecar": (
        "values_image_tag",
        lambda t: edit_values_image_tag(
            t, name="nextcloud", values_path="sidecars[0].image.tag", tag="0.6.3"
        ),
    ),
    "values_tag_numeric": (
        "values_tag_numeric",
        lambda t: edit_values_image_tag(t, name="mosquitto", values_path="image.tag", tag="2.1"),
    ),
    "deployment_images": (
        "deployment_images",
        lambda t: edit_container_image(
            t, kind="Deployment", name="web", repository="nginx", tag="1.26.0"
        ),
    ),
    "cronjob_image": (
        "cronjob_image",
        lambda t: edit_container_image(
            t, kind="CronJob", name="backup", repository="ghcr.io/restic/restic", tag="0.17.0"
        ),
    ),
}


def load(name: str) -> str:
    """A golden file exactly as stored (no newline translation)."""
    return (GOLDEN / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_edit_matches_byte_for_byte(case: str) -> None:
    source, edit = CASES[case]
    original = load(f"{source}.in.yaml")
    result = edit(original)
    assert result.encode("utf-8") == (GOLDEN / f"{case}.out.yaml").read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_edit_is_idempotent(case: str) -> None:
    _, edit = CASES[case]
    expected = load(f"{case}.out.yaml")
    assert edit(expected) == expected


def test_golden_files_all_have_a_case() -> None:
    outputs = {p.name.removesuffix(".out.yaml") for p in GOLDEN.glob("*.out.yaml")}
    assert outputs == set(CASES)


def test_crlf_and_bom_survive() -> None:
    result = CASES["helmrelease_crlf"][1](load("helmrelease_crlf.in.yaml"))
    assert result.startswith("\ufeff")
    assert result.count("\r\n") == result.count("\n")


# --------------------------------------------------------------------------- properties

SEMVER = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
    st.integers(0, 300),
    st.integers(0, 300),
    st.integers(0, 300),
    st.sampled_from(["", "-rc.1", "-debian-12-r3", "+build.7", "-alpha.0+meta"]),
)
TAG = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,40}", fullmatch=True)

#: (input, edit taking the new value, the original value) - for reverse edits
REVERSIBLE: dict[str, tuple[str, Callable[[str, str], str], str]] = {
    "double-quoted chart version": (
        "helmrelease_multidoc.in.yaml",
        lambda t, v: edit_chart_version(t, name="redis", namespace="apps", version=v),
        "18.1.0",
    ),
    "single-quoted chart version, 4 spaces": (
        "helmrelease_indent4.in.yaml",
        lambda t, v: edit_chart_version(t, name="postgres", version=v),
        "12.5.6",
    ),
    "plain chart version in flow style": (
        "helmrelease_flow.in.yaml",
        lambda t, v: edit_chart_version(t, name="podinfo", version=v),
        "6.5.4",
    ),
    "plain chart version, CRLF": (
        "helmrelease_crlf.in.yaml",
        lambda t, v: edit_chart_version(t, name="gitea", version=v),
        "10.1.4",
    ),
    "OCI tag": (
        "ocirepository_tag.in.yaml",
        lambda t, v: edit_oci_tag(t, name="podinfo-chart", tag=v),
        "6.5.4",
    ),
    "plain values tag": (
        "values_image_tag.in.yaml",
        lambda t, v: edit_values_image_tag(t, name="nextcloud", values_path="app.image.tag", tag=v),
        "28.0.4-apache",
    ),
    "single-quoted image in a flow mapping": (
        "cronjob_image.in.yaml",
        lambda t, v: edit_container_image(
            t, kind="CronJob", name="backup", repository="ghcr.io/restic/restic", tag=v
        ),
        "0.16.4",
    ),
}
QUOTED = {
    "double-quoted values tag": (
        "values_image_tag.in.yaml",
        lambda t, v: edit_values_image_tag(
            t, name="nextcloud", values_path="sidecars[0].image.tag", tag=v
        ),
        "0.6.2",
    ),
    "OCI tag": REVERSIBLE["OCI tag"],
    "single-quoted image in a flow mapping": REVERSIBLE["single-quoted image in a flow mapping"],
}


@pytest.mark.parametrize("case", sorted(REVERSIBLE))
@settings(deadline=None, max_examples=40)
@given(version=SEMVER)
def test_edit_then_reverse_edit_restores_the_bytes(case: str, version: str) -> None:
    source, edit, original_value = REVERSIBLE[case]
    original = load(source)
    edited = edit(original, version)
    assert edit(edited, original_value) == original


@pytest.mark.parametrize("case", sorted(QUOTED))
@settings(deadline=None, max_examples=40)
@given(tag=TAG)
def test_quoted_scalars_reverse_any_tag(case: str, tag: str) -> None:
    source, edit, original_value = QUOTED[case]
    original = load(source)
    assert edit(edit(original, tag), original_value) == original


@settings(deadline=None, max_examples=40)
@given(tag=TAG)
def test_only_the_scalar_changes_and_it_reads_back_as_a_string(tag: str) -> None:
    original = load("values_image_tag.in.yaml")
    edited = edit_values_image_tag(original, name="nextcloud", values_path="app.image.tag", tag=tag)
    start = original.index("28.0.4-apache")
    end = start + len("28.0.4-apache")
    assert edited[:start] == original[:start]
    assert edited.endswith(original[end:])
    for loaded in (pyyaml.safe_load(edited), YAML(typ="safe", pure=True).load(edited)):
        assert loaded["spec"]["values"]["app"]["image"]["tag"] == tag  # YAML 1.1 and 1.2
        assert loaded["spec"]["values"]["cronjob"]["image"]["tag"] == "28.0.4-apache"


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("1.26", '"1.26"'),  # float
        ("2024-01-02", '"2024-01-02"'),  # YAML 1.1 timestamp
        ("on", '"on"'),  # YAML 1.1 bool
        ("y", '"y"'),  # Go YAML v2 bool
        ("1e3", '"1e3"'),
        ("0x1F", '"0x1F"'),
        ("1_000", '"1_000"'),
        ("null", '"null"'),
        ("v1.26", "v1.26"),
        ("1.26.0-alpine", "1.26.0-alpine"),
        ("latest", "latest"),
    ],
)
def test_plain_scalars_are_quoted_only_when_needed(value: str, written: str) -> None:
    edited = edit_values_image_tag(
        load("values_image_tag.in.yaml"), name="nextcloud", values_path="app.image.tag", tag=value
    )
    assert f"        tag: {written}\n" in edited


def test_plain_scalars_that_yaml_1_1_reads_as_sexagesimal_are_quoted() -> None:
    text = "kind: Job\nmetadata: {name: j}\nspec:\n  backoffLimit: x\n"
    edited = edit_scalar(text, kind="Job", name="j", field="spec.backoffLimit", value="1:20")
    assert edited == text.replace("backoffLimit: x", 'backoffLimit: "1:20"')
    plain = edit_scalar(text, kind="Job", name="j", field="spec.backoffLimit", value="a:b/c@d")
    assert plain == text.replace("backoffLimit: x", "backoffLimit: a:b/c@d")


# --------------------------------------------------------------------------- refusals

HR = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app
  namespace: ns
spec:
  chart:
    spec:
      chart: app
      version: {version}
  values:
{values}
"""


def hr(version: str = "1.2.3", values: str = "    image: {tag: 1.0.0}") -> str:
    return HR.format(version=version, values=values)


@pytest.mark.parametrize(
    ("text", "edit", "error", "words"),
    [
        (
            hr(),
            lambda t: edit_chart_version(t, name="other", version="1.2.4", path="apps/a.yaml"),
            DocumentNotFoundError,
            ["apps/a.yaml", "HelmRelease other"],
        ),
        (
            hr(),
            lambda t: edit_chart_version(t, name="app", namespace="x", version="1.2.4"),
            DocumentNotFoundError,
            ["HelmRelease x/app"],
        ),
        (
            hr().replace("helm.toolkit.fluxcd.io/v2", "example.com/v1"),
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            DocumentNotFoundError,
            ["helm.toolkit.fluxcd.io"],
        ),
        (
            hr() + "---\n" + hr().replace("namespace: ns", "namespace: other"),
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            AmbiguousDocumentError,
            ["2 documents", "namespace"],
        ),
        (
            hr("12.x"),
            lambda t: edit_chart_version(t, name="app", version="12.5.0"),
            VersionRangeError,
            ["spec.chart.spec.version", "'12.x'", "HelmRelease ns/app"],
        ),
        (
            hr('">=12.0.0"'),
            lambda t: edit_chart_version(t, name="app", version="12.5.0"),
            VersionRangeError,
            [">=12.0.0"],
        ),
        (
            hr(),
            lambda t: edit_chart_version(t, name="app", version="1.x"),
            InvalidValueError,
            ["range"],
        ),
        (
            hr(),
            lambda t: edit_chart_version(t, name="app", version="1.2.4\nkind: Secret"),
            InvalidValueError,
            ["spec.chart.spec.version"],
        ),
        (
            hr("|\n        1.2.3"),
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            NotAScalarError,
            ["block scalar"],
        ),
        (
            hr("${CHART_VERSION}"),
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            UnsupportedYamlError,
            ["substitution"],
        ),
        (
            hr(""),
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            FieldNotFoundError,
            ["spec.chart.spec.version is empty"],
        ),
        (
            hr().replace("  chart:\n    spec:\n      chart: app\n      version: 1.2.3\n", "")
            + "  chartRef: {kind: OCIRepository, name: app}\n",
            lambda t: edit_chart_version(t, name="app", version="1.2.4"),
            FieldNotFoundError,
            ["chartRef", "OCIRepository"],
        ),
        (
            hr(),
            lambda t: edit_values_image_tag(t, name="app", values_path="image", tag="2"),
            NotAScalarError,
            ["spec.values.image", "a mapping"],
        ),
        (
            hr(),
            lambda t: edit_values_image_tag(t, name="app", values_path="app.image.tag", tag="2"),
            FieldNotFoundError,
            ["spec.values.app not found"],
        ),
        (
            hr(),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag.x", tag="2"),
            FieldNotFoundError,
            ["spec.values.image.tag.x"],
        ),
        (
            hr(),
            lambda t: edit_values_image_tag(t, name="app", values_path="image..tag", tag="2"),
            InvalidValueError,
            ["image..tag"],
        ),
        (
            hr(values="    base: &b {tag: 1.0.0}\n    image: *b"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["alias", "*b"],
        ),
        (
            hr(values="    base: &t 1.0.0\n    image: {tag: *t}"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["alias"],
        ),
        (
            hr(values="    image: {tag: &t 1.0.0}\n    other: *t"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["anchor &t"],
        ),
        (
            hr(values="    base: &b {tag: 1.0.0}\n    image: {<<: *b, pullPolicy: Always}"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["merge key"],
        ),
        (
            hr(values="    image: {tag: 1.0.0}\n    image: {tag: 1.0.1}"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["defined twice"],
        ),
        (
            hr(values='    image:\n      tag: "1.0\n        .0"'),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            UnsupportedYamlError,
            ["several lines"],
        ),
        (
            hr(values="    image: {tag: }"),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="2.0.0"),
            FieldNotFoundError,
            ["empty"],
        ),
        (
            hr(),
            lambda t: edit_values_image_tag(t, name="app", values_path="image.tag", tag="a b"),
            InvalidValueError,
            ["'a b'"],
        ),
        (
            "kind: HelmRelease\nmetadata: {name: app\n",
            lambda t: edit_chart_version(t, name="app", version="1.2.4", path="broken.yaml"),
            InvalidYamlError,
            ["broken.yaml", "not valid YAML", "line"],
        ),
    ],
)
def test_refusals_name_what_and_where(
    text: str, edit: Edit, error: type[YamlEditError], words: list[str]
) -> None:
    with pytest.raises(error) as caught:
        edit(text)
    for word in words:
        assert word in str(caught.value)


OCI = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {{name: chart, namespace: demo}}
spec:
  url: oci://ghcr.io/org/chart
  ref:
{ref}
"""


@pytest.mark.parametrize(
    ("ref", "error", "word"),
    [
        ('    semver: ">=6.0.0"', VersionRangeError, "spec.ref.semver"),
        ("    tag: 1.0.0\n    semver: 1.x", VersionRangeError, "spec.ref.semver"),
        ("    tag: 1.0.0\n    digest: sha256:" + "0" * 64, UnsupportedYamlError, "digest"),
        ("    branch: main", FieldNotFoundError, "spec.ref.tag"),
    ],
)
def test_oci_tag_refusals(ref: str, error: type[YamlEditError], word: str) -> None:
    with pytest.raises(error, match=word.replace(".", r"\.")) as caught:
        edit_oci_tag(OCI.format(ref=ref), name="chart", tag="1.0.1", path="oci.yaml")
    assert "OCIRepository demo/chart" in str(caught.value)
    assert "oci.yaml" in str(caught.value)


DEPLOY = load("deployment_images.in.yaml")


def test_container_image_only_in_the_named_container_and_with_a_new_digest() -> None:
    digest = "sha256:" + "ab" * 32
    edited = edit_container_image(
        DEPLOY,
        kind="Deployment",
        name="web",
        repository="docker.io/library/nginx",
        tag="1.26.0",
        digest=digest,
        container="migrate",
    )
    assert f"image: nginx:1.26.0@{digest}\n" in edited
    assert 'image: "docker.io/library/nginx:1.25.3"' in edited
    assert diff_text("d.yaml", DEPLOY, edited).count("\n+ ") == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "word"),
    [
        ({"repository": "redis"}, FieldNotFoundError, "images found: nginx:1.25.3@"),
        ({"repository": "nginx", "container": "nope"}, FieldNotFoundError, "container 'nope'"),
        ({"repository": "nginx", "kind": "Service"}, InvalidValueError, "Service"),
        ({"repository": "nginx", "digest": "md5:1"}, InvalidValueError, "digest"),
        ({"repository": "nginx", "tag": "1.26 "}, InvalidValueError, "'1.26 '"),
        ({"repository": "nginx", "name": "api"}, DocumentNotFoundError, "Deployment api"),
    ],
)
def test_container_image_refusals(
    kwargs: dict[str, str], error: type[YamlEditError], word: str
) -> None:
    arguments = {"kind": "Deployment", "name": "web", "tag": "1.26.0", **kwargs}
    with pytest.raises(error) as caught:
        edit_container_image(DEPLOY, path="deploy.yaml", **arguments)  # type: ignore[arg-type]
    assert word in str(caught.value)
    assert "deploy.yaml" in str(caught.value)


@pytest.mark.parametrize("kind", sorted(yamledit.WORKLOAD_POD_SPEC_PATHS))
def test_every_workload_kind_finds_its_pod_spec(kind: str) -> None:
    pod_spec: tuple[str, ...] = yamledit.WORKLOAD_POD_SPEC_PATHS[kind]
    lines = [f"kind: {kind}", "metadata:", "  name: w"]
    indent = ""
    for key in pod_spec:
        lines.append(f"{indent}{key}:")
        indent += "  "
    lines += [f"{indent}containers:", f"{indent}- name: c", f"{indent}  image: busybox:1.36"]
    text = "\n".join(lines) + "\n"
    edited = edit_container_image(text, kind=kind, name="w", repository="busybox", tag="1.37")
    assert edited == text.replace("busybox:1.36", "busybox:1.37")


# --------------------------------------------------------------------------- finding, reading


def test_find_documents_reports_index_line_and_namespace() -> None:
    text = load("helmrelease_multidoc.in.yaml")
    assert find_documents(text, "HelmRelease", "redis") == [
        DocumentRef(1, 14, "HelmRelease", "redis", "apps", "helm.toolkit.fluxcd.io/v2"),
        DocumentRef(2, 38, "HelmRelease", "redis", "staging", "helm.toolkit.fluxcd.io/v2beta2"),
    ]
    assert [d.namespace for d in find_documents(text, "HelmRelease", "redis", "staging")] == [
        "staging"
    ]
    assert (
        find_documents(text, "HelmRepository", "bitnami", api_group="helm.toolkit.fluxcd.io") == []
    )
    assert find_documents(text, "HelmRelease", "absent") == []


def test_find_documents_matches_documents_without_namespace() -> None:
    text = "kind: HelmRelease\nmetadata: {name: a}\n---\nkind: HelmRelease\nmetadata: {name: b}\n"
    assert [d.index for d in find_documents(text, "HelmRelease", "a", "anywhere")] == [0]


def test_find_documents_raises_on_templates() -> None:
    with pytest.raises(InvalidYamlError, match=r"chart/templates/x\.yaml"):
        find_documents(
            "kind: HelmRelease\nmetadata:\n  name: {{ .Release.Name }\n",
            "HelmRelease",
            "Release",
            path="chart/templates/x.yaml",
        )


def test_read_scalar_and_generic_edit() -> None:
    text = load("values_image_tag.in.yaml")
    version = read_scalar(
        text, kind="HelmRelease", name="nextcloud", field="spec.chart.spec.version"
    )
    assert version == "4.5.10"
    field = ("spec", "values", "sidecars", 0, "name")
    assert read_scalar(text, kind="HelmRelease", name="nextcloud", field=field) == "exporter"
    edited = edit_scalar(
        text,
        kind="HelmRelease",
        name="nextcloud",
        field="spec.values.app.image.pullPolicy",
        value="Always",
    )
    assert edited == text.replace("pullPolicy: IfNotPresent", "pullPolicy: Always")
    with pytest.raises(InvalidValueError):
        edit_scalar(text, kind="HelmRelease", name="nextcloud", field="metadata.name", value="")


# --------------------------------------------------------------------------- small parts


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("nginx", ImageRef("nginx")),
        ("nginx:1.25", ImageRef("nginx", "1.25")),
        ("localhost:5000/app:1", ImageRef("localhost:5000/app", "1")),
        ("localhost:5000/app", ImageRef("localhost:5000/app")),
        ("ghcr.io/o/a:1@sha256:ab", ImageRef("ghcr.io/o/a", "1", "sha256:ab")),
        ("ghcr.io/o/a@sha256:ab", ImageRef("ghcr.io/o/a", None, "sha256:ab")),
    ],
)
def test_parse_image(reference: str, expected: ImageRef) -> None:
    assert parse_image(reference) == expected
    assert str(parse_image(reference)) == reference


@pytest.mark.parametrize(
    ("repository", "normalized"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("docker.io/nginx", "docker.io/library/nginx"),
        ("index.docker.io/library/nginx", "docker.io/library/nginx"),
        ("bitnami/redis", "docker.io/bitnami/redis"),
        ("ghcr.io/org/app", "ghcr.io/org/app"),
        ("localhost/app", "localhost/app"),
        ("registry:5000/app", "registry:5000/app"),
    ],
)
def test_normalize_repository(repository: str, normalized: str) -> None:
    assert normalize_repository(repository) == normalized


def test_diff_text() -> None:
    assert diff_text("a.yaml", "x\n", "x\n") == ""
    diff = diff_text("apps/a.yaml", "a: 1\nb: 2\n", "a: 1\nb: 3\n")
    assert diff.startswith("--- a/apps/a.yaml\n+++ b/apps/a.yaml\n@@ -1,2 +1,2 @@\n")
    assert diff.endswith(" a: 1\n-b: 2\n+b: 3\n")
    no_newline = diff_text("a.yaml", "a: 1", "a: 2")
    assert no_newline.endswith(
        "-a: 1\n\\ No newline at end of file\n+a: 2\n\\ No newline at end of file\n"
    )
    assert "\r\n" in diff_text("w.yaml", "a: 1\r\n", "a: 2\r\n")
