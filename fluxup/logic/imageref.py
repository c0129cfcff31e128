"""Container image references: ``[registry[:port]/]path[:tag][@digest]``.

Split into repository, tag and digest (:func:`parse_image`) and compared by their fully
qualified repository (:func:`normalize_repository`: ``nginx`` is
``docker.io/library/nginx``). Used by :mod:`fluxup.logic.yamledit` to edit ``image:``
fields of workloads. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ImageRef", "is_digest", "normalize_repository", "parse_image"]

_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}\Z")


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


def is_digest(text: str) -> bool:
    """``sha256:<hex>`` (any algorithm, at least 32 hex digits)."""
    return _DIGEST.match(text) is not None


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
