"""Semantic versions for the version policy: parse, compare, classify, match constraints.

Called by :mod:`fluxup.logic.version_policy` (which update the policy allows) and
:mod:`fluxup.logic.renovate_map` (the update type of a candidate when Renovate gives
none). Chart versions and image tags are compared as semver 2.0 with a leading ``v``
allowed and missing minor/patch read as 0 (``7.2`` is ``7.2.0``, a common image tag).
Constraints use the syntax Flux and Helm use (Masterminds semver): comparators
``= != > >= < <=``, ``~1.2`` (patch updates), ``^1.2`` (no major change), wildcards
``1.x``/``1.2.*``, hyphen ranges ``1.2 - 1.4``, AND by space or comma and OR by ``||``.
A pre-release satisfies a constraint only when the constraint itself names one.
Pure; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

__all__ = [
    "Constraint",
    "Version",
    "classify_update",
    "parse_constraint",
    "parse_version",
]

_VERSION = re.compile(
    r"^[vV=]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_MAX_TEXT = 256


@total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed semantic version (build metadata is kept but never compared)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # a release sorts after its pre-releases; numeric identifiers before alphanumeric
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text


def parse_version(text: str) -> Version | None:
    """The version ``text`` spells, or ``None`` when it is not a (lenient) semver."""
    if len(text) > _MAX_TEXT:
        return None
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    return Version(
        int(major),
        int(minor or 0),
        int(patch or 0),
        tuple(pre.split(".")) if pre else (),
        build or "",
    )


def classify_update(current: str, new: str) -> str | None:
    """``major``/``minor``/``patch`` for an upgrade from ``current`` to ``new``; ``None``
    when either is not a version or ``new`` is not newer."""
    old_v, new_v = parse_version(current), parse_version(new)
    if old_v is None or new_v is None or new_v <= old_v:
        return None
    if new_v.major != old_v.major:
        return "major"
    if new_v.minor != old_v.minor:
        return "minor"
    return "patch"


# --- constraints ----------------------------------------------------------------------

_Comparator = tuple[str, Version]
_PART = re.compile(r"^(\d+|[xX*])$")


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: OR of ANDs of comparators (``op``, version)."""

    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]
    allows_prerelease: bool

    def allows(self, version: str | Version) -> bool:
        """Whether ``version`` satisfies the constraint (non-versions never do)."""
        parsed = parse_version(version) if isinstance(version, str) else version
        if parsed is None:
            return False
        if parsed.prerelease and not self.allows_prerelease:
            return False
        return any(all(_compare(parsed, op, v) for op, v in alt) for alt in self.alternatives)


def _compare(version: Version, op: str, bound: Version) -> bool:
    if op == "=":
        return version == bound
    if op == "!=":
        return version != bound
    if op == ">":
        return version > bound
    if op == ">=":
        return version >= bound
    if op == "<":
        return version < bound
    return version <= bound  # "<="


def _partial(text: str, whole: str) -> tuple[list[int | None], tuple[str, ...]]:
    """``1.2.x`` → ([1, 2, None], ()); raise ValueError naming ``whole`` when malformed."""
    core, _, pre = text.lstrip("vV").partition("-")
    core = core.split("+", 1)[0]
    parts = core.split(".")
    if not 1 <= len(parts) <= 3 or not all(_PART.match(p) for p in parts):
        raise ValueError(f"{text!r} in constraint {whole!r} is not a version")
    numbers: list[int | None] = [None if p in ("x", "X", "*") else int(p) for p in parts]
    numbers += [None] * (3 - len(numbers))
    for i in range(1, 3):  # nothing after a wildcard: 1.x.2 is nonsense
        if numbers[i - 1] is None and numbers[i] is not None:
            raise ValueError(f"{text!r} in constraint {whole!r} has a number after a wildcard")
    return numbers, tuple(pre.split(".")) if pre else ()


def _v(parts: list[int | None], pre: tuple[str, ...] = ()) -> Version:
    return Version(parts[0] or 0, parts[1] or 0, parts[2] or 0, pre)


def _expand(op: str, text: str, whole: str) -> list[_Comparator]:
    """Comparators for one term (``op`` may be empty, ``~``, ``^`` or a comparison)."""
    parts, pre = _partial(text, whole)
    major, minor, patch = parts
    if major is None:
        return [(">=", Version(0, 0, 0))]
    if op in ("", "=") and None in parts:  # wildcard: 1.x, 1.2.*
        if not major:
            return _wild_zero(parts)
        zeroed = re.sub(r"[xX*]", "0", text)
        return _expand("~" if minor is not None else "^", zeroed, whole)
    if op == "~":
        low = _v(parts, pre)
        high = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [(">=", low), ("<", high)]
    if op == "^":
        low = _v(parts, pre)
        if major > 0 or minor is None:
            high = Version(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = Version(0, minor + 1, 0)
        else:
            high = Version(0, 0, patch + 1)
        return [(">=", low), ("<", high)]
    if None in parts and op in (">", "<="):  # >1.2 means >=1.3.0; <=1.2 means <1.3.0
        bump = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
        return [(">=" if op == ">" else "<", bump)]
    return [(op or "=", _v(parts, pre))]


def _wild_zero(parts: list[int | None]) -> list[_Comparator]:
    minor = parts[1]
    if minor is None:
        return [(">=", Version(0, 0, 0)), ("<", Version(1, 0, 0))]
    return [(">=", Version(0, minor, 0)), ("<", Version(0, minor + 1, 0))]


_TERM = re.compile(r"(!=|>=|<=|=|>|<|~>|~|\^)?\s*([^\s,<>=!~^][^\s,]*)")


def parse_constraint(text: str) -> Constraint:
    """Parse a constraint; raise ValueError with a message naming what is wrong."""
    if not text.strip():
        raise ValueError("a version constraint must not be empty")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"a version constraint is at most {_MAX_TEXT} characters")
    alternatives: list[tuple[_Comparator, ...]] = []
    for alt in text.split("||"):
        alt = alt.strip()
        if not alt:
            raise ValueError(f"constraint {text!r} has an empty alternative around '||'")
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        comparators: list[_Comparator] = []
        if hyphen:
            comparators += _expand(">=", hyphen.group(1), text)
            comparators += _expand("<=", hyphen.group(2), text)
        else:
            rest = alt.replace(",", " ")
            if _TERM.sub("", rest).strip():
                raise ValueError(f"constraint {text!r} has a dangling operator in {alt!r}")
            for match in _TERM.finditer(rest):
                op = (match.group(1) or "").replace("~>", "~")
                comparators += _expand(op, match.group(2), text)
            if not comparators:
                raise ValueError(f"constraint {text!r} has no version in {alt!r}")
        alternatives.append(tuple(comparators))
    return Constraint(text, tuple(alternatives), allows_prerelease="-" in text.replace(" - ", ""))
