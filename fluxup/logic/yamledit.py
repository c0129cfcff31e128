"""Byte-preserving edits of version fields in Flux and Kubernetes YAML files.

The operator calls these to build a Git commit for an upgrade (and its dry-run diff): the
chart version of a HelmRelease, the tag of an OCIRepository, an image tag at a values path
of a HelmRelease, and ``image: repo:tag[@digest]`` in the containers of a workload.

How: the text is composed (not constructed) with ruamel.yaml, which gives every node its
exact start and end offset in the text; the edit replaces only the characters of the one
scalar and leaves every other byte alone — comments, quoting, indentation, flow style,
anchors, ``---`` markers, key order, CRLF line endings, a byte-order mark, a missing final
newline. Nothing is ever re-dumped. The edited scalar keeps its style (plain, 'single',
"double"); a plain scalar whose new value would read as something other than a string
(``1.10``, ``on``, ``2024-01-02``, ``1e3``) in YAML 1.1, YAML 1.2 or Go's YAML is written
double-quoted instead. After splicing, the result is parsed again and checked.

Every function returns the new text or raises a :class:`fluxup.errors.YamlEditError`
subclass whose message names the file, the object and the field; on error nothing changes
(the functions are pure). Setting the value a field already has returns the text as it is.

This module is pure: no I/O, no kopf/kubernetes_asyncio/httpx/aiohttp/subprocess.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode, SequenceNode

from fluxup.errors import (
    FieldNotFoundError,
    InvalidValueError,
    UnsupportedYamlError,
    VersionRangeError,
    YamlEditError,
)
from fluxup.logic.gate_values import ValuePathError, parse_value_path
from fluxup.logic.identity import is_exact_version
from fluxup.logic.imageref import ImageRef, is_digest, normalize_repository, parse_image
from fluxup.logic.yamlnodes import (
    DocumentRef,
    compose_documents,
    dotted,
    find_node,
    in_flow,
    locate,
    matching_documents,
    plain_value,
    scalar_at,
    select_document,
    value_span,
)

__all__ = [
    "HELM_GROUP",
    "SOURCE_GROUP",
    "WORKLOAD_POD_SPEC_PATHS",
    "DocumentRef",
    "diff_text",
    "edit_chart_version",
    "edit_container_image",
    "edit_oci_tag",
    "edit_scalar",
    "edit_values_image_tag",
    "find_documents",
    "list_documents",
    "read_scalar",
]

HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"

#: Where the pod spec sits in each workload kind whose container images can be edited.
WORKLOAD_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

_STR_TAG = "tag:yaml.org,2002:str"
# A plain scalar is only written as such when it is made of these characters (no ':'
# inside flow collections, where YAML 1.1 parsers reject it) ...
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+\-/:@]*\Z")
_PLAIN_SAFE_IN_FLOW = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+\-/@]*\Z")
# ... and does not resolve to a bool, null, number or timestamp in YAML 1.1/1.2/Go YAML.
_NOT_A_STRING = re.compile(
    r"""(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE
          |on|On|ON|off|Off|OFF|~|null|Null|NULL
          |[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
          |[-+]?0[xX][0-9a-fA-F_]+|[-+]?0[oO]?[0-7_]+|[-+]?0[bB][01_]+
          |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)
          |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
          |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt\s].*)?
        )\Z""",
    re.VERBOSE,
)
_VERSION_VALUE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+\-]{0,127}\Z")


@dataclass(frozen=True)
class _Target:
    """One scalar to replace, and how to re-find it to check the result."""

    node: ScalarNode
    in_flow: bool
    doc_index: int
    fields: tuple[str | int, ...]
    value: str


# --------------------------------------------------------------------------- public API


def find_documents(
    text: str,
    kind: str,
    name: str,
    namespace: str | None = None,
    *,
    api_group: str | None = None,
    path: str = "<text>",
) -> list[DocumentRef]:
    """Every document in ``text`` defining a ``kind`` object named ``name``.

    A document without ``metadata.namespace`` matches any ``namespace`` (kustomize may set
    it); with one, it must equal ``namespace`` when that is given. ``api_group`` restricts
    the apiVersion's group (``helm.toolkit.fluxcd.io``). Raises InvalidYamlError when the
    text is not YAML (callers scanning a tree skip such files).
    """
    if kind not in text or name not in text:  # cheap pre-filter for tree scans
        return []
    docs = compose_documents(text, path)
    return [d.ref for d in matching_documents(docs, kind, name, namespace, api_group)]


def list_documents(text: str, path: str = "<text>") -> list[DocumentRef]:
    """Every Kubernetes object document (one with ``kind`` and ``metadata.name``) in
    ``text``. Raises InvalidYamlError when the text is not YAML."""
    return [d.ref for d in compose_documents(text, path)]


def read_scalar(
    text: str,
    *,
    kind: str,
    name: str,
    field: str | Sequence[str | int],
    namespace: str | None = None,
    api_group: str | None = None,
    path: str = "<text>",
) -> str:
    """The current value of the scalar at ``field`` (dotted, or a sequence of keys and
    list indexes) in the object's document."""
    doc = select_document(compose_documents(text, path), kind, name, namespace, api_group, path)
    fields = _fields(field)
    return scalar_at(text, doc, fields, path).value  # type: ignore[no-any-return]


def edit_scalar(
    text: str,
    *,
    kind: str,
    name: str,
    field: str | Sequence[str | int],
    value: str,
    namespace: str | None = None,
    api_group: str | None = None,
    path: str = "<text>",
) -> str:
    """Set the scalar at ``field`` to ``value`` (any single-line string)."""
    _check_single_line(value, path, kind, name, dotted(_fields(field)))
    doc = select_document(compose_documents(text, path), kind, name, namespace, api_group, path)
    fields = _fields(field)
    node = scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, in_flow(doc, fields), doc.index, fields, value)], path)


def edit_chart_version(
    text: str, *, name: str, version: str, namespace: str | None = None, path: str = "<text>"
) -> str:
    """Set a HelmRelease's ``spec.chart.spec.version`` to the exact ``version``."""
    fields: tuple[str | int, ...] = ("spec", "chart", "spec", "version")
    where = locate(path, "HelmRelease", name, namespace)
    _check_version(version, where, "spec.chart.spec.version")
    if not is_exact_version(version):
        raise InvalidValueError(
            f"{where}: cannot set spec.chart.spec.version to {version!r}: that is a version "
            "range; FluxUp only writes exact versions"
        )
    doc = select_document(compose_documents(text, path), "HelmRelease", name, namespace,
                          HELM_GROUP, path)
    where = locate(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    chart_ref = find_node(doc.root, ("spec", "chartRef"))
    if chart_ref is not None and find_node(doc.root, fields) is None:
        raise FieldNotFoundError(
            f"{where}: has no spec.chart.spec.version because it uses spec.chartRef; "
            "edit the referenced OCIRepository's spec.ref.tag instead"
        )
    node = scalar_at(text, doc, fields, path)
    if not is_exact_version(node.value):
        raise VersionRangeError(
            f"{where}: spec.chart.spec.version is the range {node.value!r}; FluxUp can only "
            "gate and edit exact versions - pin an exact version in Git first"
        )
    return _apply(text, [_Target(node, in_flow(doc, fields), doc.index, fields, version)], path)


def edit_oci_tag(
    text: str, *, name: str, tag: str, namespace: str | None = None, path: str = "<text>"
) -> str:
    """Set an OCIRepository's ``spec.ref.tag``; refuses when ``ref.semver`` or
    ``ref.digest`` decide the artifact instead of the tag."""
    where = locate(path, "OCIRepository", name, namespace)
    _check_version(tag, where, "spec.ref.tag")
    doc = select_document(compose_documents(text, path), "OCIRepository", name, namespace,
                          SOURCE_GROUP, path)
    where = locate(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    if find_node(doc.root, ("spec", "ref", "semver")) is not None:
        raise VersionRangeError(
            f"{where}: spec.ref.semver selects the version, so a tag cannot be gated or "
            "edited; replace spec.ref.semver with an exact spec.ref.tag in Git first"
        )
    if find_node(doc.root, ("spec", "ref", "digest")) is not None:
        raise UnsupportedYamlError(
            f"{where}: spec.ref.digest pins the artifact and wins over spec.ref.tag; "
            "remove the digest (or update it by hand)"
        )
    fields: tuple[str | int, ...] = ("spec", "ref", "tag")
    node = scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, in_flow(doc, fields), doc.index, fields, tag)], path)


def edit_values_image_tag(
    text: str,
    *,
    name: str,
    values_path: str | Sequence[str | int],
    tag: str,
    namespace: str | None = None,
    path: str = "<text>",
) -> str:
    """Set the image tag at ``spec.values.<values_path>`` of a HelmRelease.

    ``values_path`` uses the gate's syntax (:func:`fluxup.logic.gate_values.parse_value_path`:
    ``image.tag``, ``app.image.tag``, ``sidecars[0].image.tag``, ``a\\.b`` for a dot in a
    key, an optional ``spec.values.`` prefix) or is a sequence of keys and list indexes.
    """
    where = locate(path, "HelmRelease", name, namespace)
    if isinstance(values_path, str):
        try:
            segments = parse_value_path(values_path).segments
        except ValuePathError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
    else:
        segments = tuple(values_path)
    fields = ("spec", "values", *segments)
    _check_version(tag, where, dotted(fields))
    doc = select_document(compose_documents(text, path), "HelmRelease", name, namespace,
                          HELM_GROUP, path)
    node = scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, in_flow(doc, fields), doc.index, fields, tag)], path)


def edit_container_image(
    text: str,
    *,
    kind: str,
    name: str,
    repository: str,
    tag: str,
    digest: str | None = None,
    container: str | None = None,
    namespace: str | None = None,
    path: str = "<text>",
) -> str:
    """Set the tag of every ``image:`` in ``containers``/``initContainers`` of a workload
    that pulls ``repository`` (compared normalized: ``nginx`` is
    ``docker.io/library/nginx``), optionally only in the container named ``container``.

    The repository is kept as written; an old digest is dropped (it would pin the old
    image), or replaced by ``digest`` when given.
    """
    where = locate(path, kind, name, namespace)
    pod_spec = WORKLOAD_POD_SPEC_PATHS.get(kind)
    if pod_spec is None:
        raise InvalidValueError(
            f"{where}: cannot edit container images of kind {kind}; supported kinds: "
            + ", ".join(sorted(WORKLOAD_POD_SPEC_PATHS))
        )
    _check_version(tag, where, "image tag")
    if digest is not None and not is_digest(digest):
        raise InvalidValueError(f"{where}: {digest!r} is not an image digest (sha256:<hex>)")
    doc = select_document(compose_documents(text, path), kind, name, namespace, None, path)
    where = locate(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    wanted = normalize_repository(repository)
    targets: list[_Target] = []
    seen: list[str] = []
    for list_key in ("initContainers", "containers"):
        items = find_node(doc.root, (*pod_spec, list_key))
        for i, item in enumerate(items.value if isinstance(items, SequenceNode) else []):
            cname = plain_value(find_node(item, ("name",)))
            image = find_node(item, ("image",))
            if (container is not None and cname != container) or not isinstance(image, ScalarNode):
                continue
            seen.append(image.value)
            if normalize_repository(parse_image(image.value).repository) != wanted:
                continue
            fields: tuple[str | int, ...] = (*pod_spec, list_key, i, "image")
            node = scalar_at(text, doc, fields, path)  # checks alias, ${...}, style
            new = ImageRef(parse_image(node.value).repository, tag, digest)
            targets.append(_Target(node, in_flow(doc, fields), doc.index, fields, str(new)))
    if not targets:
        scope = f"container {container!r}" if container else "no container"
        raise FieldNotFoundError(
            f"{where}: {scope} {'does not use' if container else 'uses'} image {repository} "
            f"(images found: {', '.join(seen) or 'none'})"
        )
    return _apply(text, targets, path)


def diff_text(path: str, old: str, new: str) -> str:
    """A unified diff (``a/path`` → ``b/path``, git's "No newline" markers) of two texts;
    empty when they are equal."""
    if old == new:
        return ""
    out: list[str] = []
    for line in difflib.unified_diff(
        _lines(old), _lines(new), fromfile=f"a/{path}", tofile=f"b/{path}"
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# --------------------------------------------------------------------------- splicing


def _render(value: str, style: str | None, in_flow: bool) -> str:
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    plain = _PLAIN_SAFE_IN_FLOW if in_flow else _PLAIN_SAFE
    if style is None and plain.match(value) and not _NOT_A_STRING.match(value):
        return value
    return '"' + "".join(_escape(c) for c in value) + '"'


def _escape(char: str) -> str:
    if char in ('"', "\\"):
        return "\\" + char
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _apply(text: str, targets: list[_Target], path: str) -> str:
    """Replace each target scalar by its rendered value, then re-parse and check."""
    changes = [t for t in targets if t.node.value != t.value]
    if not changes:
        return text
    new = text
    for target in sorted(changes, key=lambda t: t.node.start_mark.index, reverse=True):
        start, end = value_span(text, target.node)
        new = new[:start] + _render(target.value, target.node.style, target.in_flow) + new[end:]
    _verify(new, targets, path)
    return new


def _verify(new: str, targets: list[_Target], path: str) -> None:
    """Parse the result again: every target must read back as its new string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            after = list(YAML(typ="safe", pure=True).compose_all(new))
    except YAMLError as exc:  # pragma: no cover - a bug in _render
        raise YamlEditError(
            f"{path}: the edit would produce invalid YAML ({exc}); nothing changed"
        ) from None
    for target in targets:
        node = (
            find_node(after[target.doc_index], target.fields)
            if target.doc_index < len(after) else None
        )
        if not (
            isinstance(node, ScalarNode) and node.value == target.value and node.tag == _STR_TAG
        ):  # pragma: no cover - a bug in _render
            raise YamlEditError(
                f"{path}: {dotted(target.fields)} would not read back as {target.value!r} "
                "after the edit; nothing changed"
            )


# --------------------------------------------------------------------------- small parts


def _fields(field: str | Sequence[str | int]) -> tuple[str | int, ...]:
    parts: Sequence[str | int] = field.split(".") if isinstance(field, str) else field
    return tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parts)


def _check_single_line(value: str, path: str, kind: str, name: str, field: str) -> None:
    if not value or not value.isprintable() or value != value.strip():
        raise InvalidValueError(
            f"{locate(path, kind, name, None)}: refusing to set {field} to {value!r}: empty, "
            "surrounded by spaces or containing control characters"
        )


def _check_version(value: str, where: str, field: str) -> None:
    if not _VERSION_VALUE.match(value):
        raise InvalidValueError(
            f"{where}: cannot set {field} to {value!r}: a version or tag is 1-128 letters, "
            "digits, '.', '_', '+' or '-', starting with a letter, digit or '_'"
        )


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines
