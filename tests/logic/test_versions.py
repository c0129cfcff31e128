"""Semantic versions and constraints of the version policy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxup.logic.versions import classify_update, parse_constraint, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3, ())),
        ("v1.2.3", (1, 2, 3, ())),
        ("7.2", (7, 2, 0, ())),
        ("1.0.0-rc.1", (1, 0, 0, ("rc", "1"))),
        ("1.0.0+build.5", (1, 0, 0, ())),
    ],
)
def test_parse_version(text: str, expected: tuple[object, ...]) -> None:
    v = parse_version(text)
    assert v is not None
    assert (v.major, v.minor, v.patch, v.prerelease) == expected


@pytest.mark.parametrize("text", ["latest", "", "1.2.3.4", "01.2.3", "1.2.x", "a" * 300])
def test_not_versions(text: str) -> None:
    assert parse_version(text) is None


def test_ordering_follows_semver() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1",
               "1.10.0", "2.0.0"]
    parsed = [parse_version(t) for t in ordered]
    assert parsed == sorted(parsed)  # type: ignore[type-var]
    assert parse_version("1.0.0+a") == parse_version("1.0.0+b")


@pytest.mark.parametrize(
    ("current", "new", "kind"),
    [
        ("1.0.0", "1.0.1", "patch"),
        ("1.0.0", "1.1.0", "minor"),
        ("1.9.9", "2.0.0", "major"),
        ("v6.5.0", "6.7.1", "minor"),
        ("1.0.0", "1.0.0", None),
        ("1.1.0", "1.0.9", None),
        ("latest", "1.0.0", None),
    ],
)
def test_classify_update(current: str, new: str, kind: str | None) -> None:
    assert classify_update(current, new) == kind


@pytest.mark.parametrize(
    ("constraint", "allowed", "refused"),
    [
        (">=12.0.0 <13.0.0", ["12.0.0", "12.9.9"], ["11.9.9", "13.0.0"]),
        (">=12.0.0, <13.0.0", ["12.5.0"], ["13.0.0"]),
        ("~7.2", ["7.2.0", "7.2.11"], ["7.3.0", "7.1.9"]),
        ("~> 7.2", ["7.2.5"], ["7.3.0"]),
        ("^1.2", ["1.2.0", "1.9.0"], ["2.0.0", "1.1.9"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("1.x", ["1.0.0", "1.99.1"], ["2.0.0", "0.9.0"]),
        ("1.2.*", ["1.2.7"], ["1.3.0"]),
        ("0.x", ["0.5.0"], ["1.0.0"]),
        ("*", ["0.0.1", "99.0.0"], []),
        ("1.2 - 1.4", ["1.2.0", "1.4.9"], ["1.5.0", "1.1.9"]),
        ("1.2.0 - 1.4.0", ["1.4.0"], ["1.4.1"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("!=1.2.3", ["1.2.4"], ["1.2.3"]),
        ("<1.0.0 || >=3.0.0", ["0.9.0", "3.1.0"], ["1.0.0", "2.9.9"]),
        (">=1.0.0", ["1.1.0"], ["1.2.0-rc.1", "latest"]),
        (">=1.0.0-0", ["1.2.0-rc.1"], []),
    ],
)
def test_constraints(constraint: str, allowed: list[str], refused: list[str]) -> None:
    parsed = parse_constraint(constraint)
    assert [v for v in allowed if not parsed.allows(v)] == []
    assert [v for v in refused if parsed.allows(v)] == []


@pytest.mark.parametrize(
    ("constraint", "message"),
    [
        ("", "must not be empty"),
        ("abc", "is not a version"),
        (">=1.0 ||", "empty alternative"),
        ("1.x.2", "after a wildcard"),
        ("1.0 >=", "dangling operator"),
        (">=", "dangling operator"),
        ("x" * 300, "at most 256"),
    ],
)
def test_bad_constraints(constraint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_constraint(constraint)


versions = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(
    lambda t: f"{t[0]}.{t[1]}.{t[2]}"
)


@given(versions, versions)
def test_caret_and_tilde_agree_with_classification(current: str, new: str) -> None:
    """``~current`` allows exactly the patch updates, ``^current`` (for majors > 0) the
    patch and minor ones: the update types the policy compares against."""
    kind = classify_update(current, new)
    if kind is None:
        return
    assert parse_constraint(f"~{current}").allows(new) == (kind == "patch")
    if not current.startswith("0."):
        assert parse_constraint(f"^{current}").allows(new) == (kind in ("patch", "minor"))
