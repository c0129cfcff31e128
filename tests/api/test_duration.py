"""Durations parse exactly what the CRDs' duration pattern accepts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fluxup.api.duration import DURATION_PATTERN, Duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("168h", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1m30s500ms", timedelta(seconds=90.5)),
    ],
)
def test_valid_durations(text: str, expected: timedelta) -> None:
    assert re.fullmatch(DURATION_PATTERN, text)
    duration = Duration.parse(text)
    assert duration.to_timedelta() == expected
    assert str(duration) == text


@pytest.mark.parametrize("text", ["", "5", "1d", "-5m", "5 m", "m", "1h 30m", "PT5M", "5M"])
def test_invalid_durations(text: str) -> None:
    assert not re.fullmatch(DURATION_PATTERN, text)
    with pytest.raises(ValueError, match=re.escape("write it like 30s, 5m, 1h30m or 1.5h")):
        Duration.parse(text)
