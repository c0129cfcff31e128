"""RFC 7386 merge patches: the examples of the RFC's appendix A, and ``changes``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fluxup.logic.merge_patch import apply_merge_patch, changes

RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_the_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert apply_merge_patch(target, patch) == result
    assert (target, patch) == before  # neither argument is modified


def test_changes_tells_a_write_that_would_leave_the_status_as_it_is() -> None:
    status = {"currentVersion": "1.0.0", "pvcs": [{"name": "data"}],
              "conditions": [{"type": "Ready", "status": "True"}]}
    assert not changes(status, {"currentVersion": "1.0.0", "pvcs": [{"name": "data"}]})
    assert not changes(status, {"activeRequest": None})  # deleting what is not there
    assert changes(status, {"currentVersion": "1.1.0"})
    assert changes(status, {"pvcs": []})
    assert changes(status, {"currentVersion": None})
    assert changes(status, {"conditions": [{"type": "Ready", "status": "False"}]})
