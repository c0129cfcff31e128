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
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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
from fluxup.logic.gate_values import ValuePathError, parse_value_path
from fluxup.logic.identity import is_exact_version

__all__ = [
    "HELM_GROUP",
    "SOURCE_GROUP",
    "WORKLOAD_POD_SPEC_PATHS",
    "DocumentRef",
    "ImageRef",
    "diff_text",
    "edit_chart_version",
    "edit_container_image",
    "edit_oci_tag",
    "edit_scalar",
    "edit_values_image_tag",
    "find_documents",
    "list_documents",
    "normalize_repository",
    "parse_image",
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
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Anchors and tags written in front of a scalar: "&name ", "!!str ", "!<tag:x> ".
_NODE_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")
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
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}\Z")


@dataclass(frozen=True)
class DocumentRef:
    """Where an object is defined: the ``index`` of its document in the file (0-based,
    counting every ``---`` document) and the 1-based ``line`` its document starts on."""

    index: int
    line: int
    kind: str
    name: str
    namespace: str | None
    api_version: str


@dataclass(frozen=True)
class ImageRef:
    """A container image reference split into ``repository``, ``tag`` and ``digest``."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}{tag}{digest}"


@dataclass(frozen=True)
class _Doc:
    index: int
    root: MappingNode
    ref: DocumentRef


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
    return [d.ref for d in _matching(_documents(text, path), kind, name, namespace, api_group)]


def list_documents(text: str, path: str = "<text>") -> list[DocumentRef]:
    """Every Kubernetes object document (one with ``kind`` and ``metadata.name``) in
    ``text``. Raises InvalidYamlError when the text is not YAML."""
    return [d.ref for d in _documents(text, path)]


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
    doc = _select(_documents(text, path), kind, name, namespace, api_group, path)
    fields = _fields(field)
    return _scalar_at(text, doc, fields, path).value  # type: ignore[no-any-return]


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
    _check_single_line(value, path, kind, name, _dotted(_fields(field)))
    doc = _select(_documents(text, path), kind, name, namespace, api_group, path)
    fields = _fields(field)
    node = _scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, _in_flow(doc, fields), doc.index, fields, value)], path)


def edit_chart_version(
    text: str, *, name: str, version: str, namespace: str | None = None, path: str = "<text>"
) -> str:
    """Set a HelmRelease's ``spec.chart.spec.version`` to the exact ``version``."""
    fields: tuple[str | int, ...] = ("spec", "chart", "spec", "version")
    where = _where(path, "HelmRelease", name, namespace)
    _check_version(version, where, "spec.chart.spec.version")
    if not is_exact_version(version):
        raise InvalidValueError(
            f"{where}: cannot set spec.chart.spec.version to {version!r}: that is a version "
            "range; FluxUp only writes exact versions"
        )
    doc = _select(_documents(text, path), "HelmRelease", name, namespace, HELM_GROUP, path)
    where = _where(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    if _find(doc.root, ("spec", "chartRef")) is not None and _find(doc.root, fields) is None:
        raise FieldNotFoundError(
            f"{where}: has no spec.chart.spec.version because it uses spec.chartRef; "
            "edit the referenced OCIRepository's spec.ref.tag instead"
        )
    node = _scalar_at(text, doc, fields, path)
    if not is_exact_version(node.value):
        raise VersionRangeError(
            f"{where}: spec.chart.spec.version is the range {node.value!r}; FluxUp can only "
            "gate and edit exact versions - pin an exact version in Git first"
        )
    return _apply(text, [_Target(node, _in_flow(doc, fields), doc.index, fields, version)], path)


def edit_oci_tag(
    text: str, *, name: str, tag: str, namespace: str | None = None, path: str = "<text>"
) -> str:
    """Set an OCIRepository's ``spec.ref.tag``; refuses when ``ref.semver`` or
    ``ref.digest`` decide the artifact instead of the tag."""
    where = _where(path, "OCIRepository", name, namespace)
    _check_version(tag, where, "spec.ref.tag")
    doc = _select(_documents(text, path), "OCIRepository", name, namespace, SOURCE_GROUP, path)
    where = _where(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    if _find(doc.root, ("spec", "ref", "semver")) is not None:
        raise VersionRangeError(
            f"{where}: spec.ref.semver selects the version, so a tag cannot be gated or "
            "edited; replace spec.ref.semver with an exact spec.ref.tag in Git first"
        )
    if _find(doc.root, ("spec", "ref", "digest")) is not None:
        raise UnsupportedYamlError(
            f"{where}: spec.ref.digest pins the artifact and wins over spec.ref.tag; "
            "remove the digest (or update it by hand)"
        )
    fields: tuple[str | int, ...] = ("spec", "ref", "tag")
    node = _scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, _in_flow(doc, fields), doc.index, fields, tag)], path)


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
    where = _where(path, "HelmRelease", name, namespace)
    if isinstance(values_path, str):
        try:
            segments = parse_value_path(values_path).segments
        except ValuePathError as exc:
            raise InvalidValueError(f"{where}: {exc}") from None
    else:
        segments = tuple(values_path)
    fields = ("spec", "values", *segments)
    _check_version(tag, where, _dotted(fields))
    doc = _select(_documents(text, path), "HelmRelease", name, namespace, HELM_GROUP, path)
    node = _scalar_at(text, doc, fields, path)
    return _apply(text, [_Target(node, _in_flow(doc, fields), doc.index, fields, tag)], path)


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
    where = _where(path, kind, name, namespace)
    pod_spec = WORKLOAD_POD_SPEC_PATHS.get(kind)
    if pod_spec is None:
        raise InvalidValueError(
            f"{where}: cannot edit container images of kind {kind}; supported kinds: "
            + ", ".join(sorted(WORKLOAD_POD_SPEC_PATHS))
        )
    _check_version(tag, where, "image tag")
    if digest is not None and not _DIGEST.match(digest):
        raise InvalidValueError(f"{where}: {digest!r} is not an image digest (sha256:<hex>)")
    doc = _select(_documents(text, path), kind, name, namespace, None, path)
    where = _where(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    wanted = normalize_repository(repository)
    targets: list[_Target] = []
    seen: list[str] = []
    for list_key in ("initContainers", "containers"):
        items = _find(doc.root, (*pod_spec, list_key))
        for i, item in enumerate(items.value if isinstance(items, SequenceNode) else []):
            cname = _plain_value(_find(item, ("name",)))
            image = _find(item, ("image",))
            if (container is not None and cname != container) or not isinstance(image, ScalarNode):
                continue
            seen.append(image.value)
            if normalize_repository(parse_image(image.value).repository) != wanted:
                continue
            fields: tuple[str | int, ...] = (*pod_spec, list_key, i, "image")
            node = _scalar_at(text, doc, fields, path)  # checks alias, ${...}, style
            new = ImageRef(parse_image(node.value).repository, tag, digest)
            targets.append(_Target(node, _in_flow(doc, fields), doc.index, fields, str(new)))
    if not targets:
        scope = f"container {container!r}" if container else "no container"
        raise FieldNotFoundError(
            f"{where}: {scope} {'does not use' if container else 'uses'} image {repository} "
            f"(images found: {', '.join(seen) or 'none'})"
        )
    return _apply(text, targets, path)


def parse_image(reference: str) -> ImageRef:
    """Split ``[registry[:port]/]path[:tag][@digest]``."""
    rest, _, digest = reference.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return ImageRef(rest[:colon], rest[colon + 1 :] or None, digest or None)
    return ImageRef(rest, None, digest or None)


def normalize_repository(repository: str) -> str:
    """The fully qualified repository: ``nginx`` → ``docker.io/library/nginx``."""
    first, sep, remainder = repository.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        registry, remainder = "docker.io", repository
    else:
        registry = first.lower()
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    return f"{registry}/{remainder}"


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


# --------------------------------------------------------------------------- parsing


def _documents(text: str, path: str) -> list[_Doc]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. ReusedAnchorWarning: valid YAML anyway
            nodes = list(YAML(typ="safe", pure=True).compose_all(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidYamlError(f"{path}: not valid YAML{at}: {problem}") from None
    docs: list[_Doc] = []
    for index, root in enumerate(nodes):
        if not isinstance(root, MappingNode):
            continue
        kind = _plain_value(_find(root, ("kind",)))
        name = _plain_value(_find(root, ("metadata", "name")))
        if kind is None or name is None:
            continue
        ref = DocumentRef(
            index=index,
            line=root.start_mark.line + 1,
            kind=kind,
            name=name,
            namespace=_plain_value(_find(root, ("metadata", "namespace"))),
            api_version=_plain_value(_find(root, ("apiVersion",))) or "",
        )
        docs.append(_Doc(index, root, ref))
    return docs


def _matching(
    docs: list[_Doc], kind: str, name: str, namespace: str | None, api_group: str | None
) -> list[_Doc]:
    found = [
        d
        for d in docs
        if d.ref.kind == kind
        and d.ref.name == name
        and (api_group is None or d.ref.api_version.startswith(f"{api_group}/"))
        and (namespace is None or d.ref.namespace in (None, namespace))
    ]
    exact = [d for d in found if namespace is not None and d.ref.namespace == namespace]
    return exact if len(found) > 1 and exact else found


def _select(
    docs: list[_Doc],
    kind: str,
    name: str,
    namespace: str | None,
    api_group: str | None,
    path: str,
) -> _Doc:
    found = _matching(docs, kind, name, namespace, api_group)
    where = _where(path, kind, name, namespace)
    if not found:
        group = f" (apiVersion {api_group}/*)" if api_group else ""
        raise DocumentNotFoundError(f"{where}: no document defines it{group}")
    if len(found) > 1:
        lines = ", ".join(str(d.ref.line) for d in found)
        raise AmbiguousDocumentError(
            f"{where}: defined by {len(found)} documents (lines {lines}); give the namespace"
        )
    return found[0]


# --------------------------------------------------------------------------- navigation


def _find(node: Node, fields: Sequence[str | int]) -> Node | None:
    """The node at ``fields`` or None, without any checks (for probing)."""
    current: Node | None = node
    for field in fields:
        if isinstance(current, MappingNode) and isinstance(field, str):
            current = next(
                (v for k, v in current.value if isinstance(k, ScalarNode) and k.value == field),
                None,
            )
        elif isinstance(current, SequenceNode) and isinstance(field, int):
            current = current.value[field] if 0 <= field < len(current.value) else None
        else:
            return None
    return current


def _scalar_at(text: str, doc: _Doc, fields: tuple[str | int, ...], path: str) -> ScalarNode:
    """The editable scalar at ``fields``; raises the specific error when there is none."""
    where = _where(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    node: Node = doc.root
    floor = doc.root.start_mark.index  # a child starting before this is an alias
    for depth, field in enumerate(fields):
        here = _dotted(fields[:depth]) or "the document"
        if isinstance(node, MappingNode) and isinstance(field, str):
            pairs = [
                (k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == field
            ]
            if len(pairs) > 1:
                raise UnsupportedYamlError(
                    f"{where}: {_dotted(fields[: depth + 1])} is defined twice; remove one"
                )
            if not pairs:
                if any(k.tag == _MERGE_TAG for k, _ in node.value):
                    raise UnsupportedYamlError(
                        f"{where}: {_dotted(fields[: depth + 1])} is not set here and may "
                        "come from a YAML merge key (<<); FluxUp does not edit through "
                        "merge keys - edit it by hand"
                    )
                raise FieldNotFoundError(f"{where}: {_dotted(fields[: depth + 1])} not found")
            key, child = pairs[0]
            floor = key.end_mark.index
        elif isinstance(node, SequenceNode) and isinstance(field, int):
            if not 0 <= field < len(node.value):
                raise FieldNotFoundError(f"{where}: {_dotted(fields[: depth + 1])} not found")
            child = node.value[field]
            floor = node.value[field - 1].end_mark.index if field else node.start_mark.index
        else:
            raise FieldNotFoundError(
                f"{where}: {_dotted(fields[: depth + 1])} not found: {here} is "
                f"{_describe(node)}, not a {'list' if isinstance(field, int) else 'mapping'}"
            )
        if child.start_mark.index < floor:
            raise UnsupportedYamlError(
                f"{where}: {_dotted(fields[: depth + 1])} is a YAML alias (*{child.anchor}); "
                "FluxUp does not edit through aliases - edit it by hand"
            )
        node = child
    field_name = _dotted(fields)
    if not isinstance(node, ScalarNode):
        raise NotAScalarError(f"{where}: {field_name} is {_describe(node)}, not a single value")
    if node.style in ("|", ">"):
        raise NotAScalarError(f"{where}: {field_name} is a block scalar; edit it by hand")
    if node.start_mark.index == node.end_mark.index:
        raise FieldNotFoundError(f"{where}: {field_name} is empty; set a value by hand first")
    start, end = _value_span(text, node)
    if "\n" in text[start:end] or "\r" in text[start:end]:
        raise UnsupportedYamlError(f"{where}: {field_name} spans several lines; edit it by hand")
    if "${" in node.value:
        raise UnsupportedYamlError(
            f"{where}: {field_name} is {node.value!r}, a ${{...}} substitution; edit it by hand"
        )
    if node.anchor and _alias_count(doc.root, node) > 1:
        raise UnsupportedYamlError(
            f"{where}: {field_name} carries the anchor &{node.anchor}, which other fields "
            "reuse; FluxUp would change them too - edit it by hand"
        )
    return node


def _alias_count(root: Node, target: Node) -> int:
    """How often ``target`` is reachable from ``root`` (once, plus once per alias)."""
    count = 0
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if node is target:
            count += 1
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return count


# --------------------------------------------------------------------------- splicing


def _value_span(text: str, node: ScalarNode) -> tuple[int, int]:
    """Start and end offsets of the scalar's own characters (quotes included, anchor and
    tag excluded)."""
    start, end = node.start_mark.index, node.end_mark.index
    props = _NODE_PROPERTIES.match(text, start, end)
    return (props.end() if props else start), end


def _in_flow(doc: _Doc, fields: tuple[str | int, ...]) -> bool:
    """Whether the scalar at ``fields`` sits inside a flow collection (``{...}``/``[...]``)."""
    return any(
        getattr(_find(doc.root, fields[:depth]), "flow_style", False)
        for depth in range(len(fields))
    )


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
        start, end = _value_span(text, target.node)
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
            _find(after[target.doc_index], target.fields) if target.doc_index < len(after) else None
        )
        if not (
            isinstance(node, ScalarNode) and node.value == target.value and node.tag == _STR_TAG
        ):  # pragma: no cover - a bug in _render
            raise YamlEditError(
                f"{path}: {_dotted(target.fields)} would not read back as {target.value!r} "
                "after the edit; nothing changed"
            )


# --------------------------------------------------------------------------- small parts


def _fields(field: str | Sequence[str | int]) -> tuple[str | int, ...]:
    parts: Sequence[str | int] = field.split(".") if isinstance(field, str) else field
    return tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parts)


def _dotted(fields: Sequence[str | int]) -> str:
    out = ""
    for field in fields:
        out += f"[{field}]" if isinstance(field, int) else (f".{field}" if out else field)
    return out


def _where(path: str, kind: str, name: str, namespace: str | None) -> str:
    return f"{path}: {kind} {namespace}/{name}" if namespace else f"{path}: {kind} {name}"


def _describe(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


def _plain_value(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) and node.value else None


def _check_single_line(value: str, path: str, kind: str, name: str, field: str) -> None:
    if not value or not value.isprintable() or value != value.strip():
        raise InvalidValueError(
            f"{_where(path, kind, name, None)}: refusing to set {field} to {value!r}: empty, "
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
