"""Finding objects and fields in YAML text, with the exact offsets to edit them.

:func:`compose_documents` composes (never constructs) every document of a file with
ruamel.yaml, so each node keeps its start and end offset in the text;
:func:`select_document` picks the one object an edit is for, :func:`scalar_at` walks to
one editable scalar and refuses, with a message naming the file, object and field, what
cannot be edited safely in place (aliases, anchors shared by other fields, merge keys,
block or multi-line scalars, ``${...}`` substitutions). :mod:`fluxup.logic.yamledit`
builds its edits on these. Pure.
"""

from __future__ import annotations

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
    InvalidYamlError,
    NotAScalarError,
    UnsupportedYamlError,
)

__all__ = [
    "Doc",
    "DocumentRef",
    "compose_documents",
    "describe",
    "dotted",
    "find_node",
    "in_flow",
    "locate",
    "matching_documents",
    "plain_value",
    "scalar_at",
    "select_document",
    "value_span",
]

_MERGE_TAG = "tag:yaml.org,2002:merge"
# Anchors and tags written in front of a scalar: "&name ", "!!str ", "!<tag:x> ".
_NODE_PROPERTIES = re.compile(r"(?:[&!]\S*\s+)*")


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
class Doc:
    """One composed document that defines an object: its node tree and where it is."""

    index: int
    root: MappingNode
    ref: DocumentRef


def compose_documents(text: str, path: str) -> list[Doc]:
    """Every document of ``text`` that is a mapping with a kind and a name; raises
    :class:`InvalidYamlError` naming the line for text that is not YAML."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. ReusedAnchorWarning: valid YAML anyway
            nodes = list(YAML(typ="safe", pure=True).compose_all(text))
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidYamlError(f"{path}: not valid YAML{at}: {problem}") from None
    docs: list[Doc] = []
    for index, root in enumerate(nodes):
        if not isinstance(root, MappingNode):
            continue
        kind = plain_value(find_node(root, ("kind",)))
        name = plain_value(find_node(root, ("metadata", "name")))
        if kind is None or name is None:
            continue
        ref = DocumentRef(
            index=index,
            line=root.start_mark.line + 1,
            kind=kind,
            name=name,
            namespace=plain_value(find_node(root, ("metadata", "namespace"))),
            api_version=plain_value(find_node(root, ("apiVersion",))) or "",
        )
        docs.append(Doc(index, root, ref))
    return docs


def matching_documents(
    docs: list[Doc], kind: str, name: str, namespace: str | None, api_group: str | None
) -> list[Doc]:
    """The documents defining ``kind``/``name`` (in ``namespace`` or without one, of
    ``api_group`` when given); an exact namespace match wins over namespace-less ones."""
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


def select_document(
    docs: list[Doc],
    kind: str,
    name: str,
    namespace: str | None,
    api_group: str | None,
    path: str,
) -> Doc:
    """The one document defining the object; raises when none or several do."""
    found = matching_documents(docs, kind, name, namespace, api_group)
    where = locate(path, kind, name, namespace)
    if not found:
        group = f" (apiVersion {api_group}/*)" if api_group else ""
        raise DocumentNotFoundError(f"{where}: no document defines it{group}")
    if len(found) > 1:
        lines = ", ".join(str(d.ref.line) for d in found)
        raise AmbiguousDocumentError(
            f"{where}: defined by {len(found)} documents (lines {lines}); give the namespace"
        )
    return found[0]


def find_node(node: Node, fields: Sequence[str | int]) -> Node | None:
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


def scalar_at(text: str, doc: Doc, fields: tuple[str | int, ...], path: str) -> ScalarNode:
    """The editable scalar at ``fields``; raises the specific error when there is none."""
    where = locate(path, doc.ref.kind, doc.ref.name, doc.ref.namespace)
    node: Node = doc.root
    floor = doc.root.start_mark.index  # a child starting before this is an alias
    for depth, field in enumerate(fields):
        here = dotted(fields[:depth]) or "the document"
        if isinstance(node, MappingNode) and isinstance(field, str):
            pairs = [
                (k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == field
            ]
            if len(pairs) > 1:
                raise UnsupportedYamlError(
                    f"{where}: {dotted(fields[: depth + 1])} is defined twice; remove one"
                )
            if not pairs:
                if any(k.tag == _MERGE_TAG for k, _ in node.value):
                    raise UnsupportedYamlError(
                        f"{where}: {dotted(fields[: depth + 1])} is not set here and may "
                        "come from a YAML merge key (<<); FluxUp does not edit through "
                        "merge keys - edit it by hand"
                    )
                raise FieldNotFoundError(f"{where}: {dotted(fields[: depth + 1])} not found")
            key, child = pairs[0]
            floor = key.end_mark.index
        elif isinstance(node, SequenceNode) and isinstance(field, int):
            if not 0 <= field < len(node.value):
                raise FieldNotFoundError(f"{where}: {dotted(fields[: depth + 1])} not found")
            child = node.value[field]
            floor = node.value[field - 1].end_mark.index if field else node.start_mark.index
        else:
            raise FieldNotFoundError(
                f"{where}: {dotted(fields[: depth + 1])} not found: {here} is "
                f"{describe(node)}, not a {'list' if isinstance(field, int) else 'mapping'}"
            )
        if child.start_mark.index < floor:
            raise UnsupportedYamlError(
                f"{where}: {dotted(fields[: depth + 1])} is a YAML alias (*{child.anchor}); "
                "FluxUp does not edit through aliases - edit it by hand"
            )
        node = child
    field_name = dotted(fields)
    if not isinstance(node, ScalarNode):
        raise NotAScalarError(f"{where}: {field_name} is {describe(node)}, not a single value")
    if node.style in ("|", ">"):
        raise NotAScalarError(f"{where}: {field_name} is a block scalar; edit it by hand")
    if node.start_mark.index == node.end_mark.index:
        raise FieldNotFoundError(f"{where}: {field_name} is empty; set a value by hand first")
    start, end = value_span(text, node)
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


def value_span(text: str, node: ScalarNode) -> tuple[int, int]:
    """Start and end offsets of the scalar's own characters (quotes included, anchor and
    tag excluded)."""
    start, end = node.start_mark.index, node.end_mark.index
    props = _NODE_PROPERTIES.match(text, start, end)
    return (props.end() if props else start), end


def in_flow(doc: Doc, fields: tuple[str | int, ...]) -> bool:
    """Whether the scalar at ``fields`` sits inside a flow collection (``{...}``/``[...]``)."""
    return any(
        getattr(find_node(doc.root, fields[:depth]), "flow_style", False)
        for depth in range(len(fields))
    )


def dotted(fields: Sequence[str | int]) -> str:
    """``spec.values.image[0].tag`` for messages."""
    out = ""
    for field in fields:
        out += f"[{field}]" if isinstance(field, int) else (f".{field}" if out else field)
    return out


def locate(path: str, kind: str, name: str, namespace: str | None) -> str:
    """``apps/db.yaml: HelmRelease shop/db`` for messages."""
    return f"{path}: {kind} {namespace}/{name}" if namespace else f"{path}: {kind} {name}"


def describe(node: Node) -> str:
    """What a node is, for messages: a mapping, a list or the value 'x'."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the value {node.value!r}"


def plain_value(node: Node | None) -> str | None:
    """A scalar's non-empty text, else None."""
    return node.value if isinstance(node, ScalarNode) and node.value else None
