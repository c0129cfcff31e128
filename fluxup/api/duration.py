"""Go-style durations (``30s``, ``5m``, ``1h30m``, ``1.5h``) as FluxUp's specs spell them.

The CRDs accept exactly the strings :data:`DURATION_PATTERN` matches (the pattern Flux
uses for its own intervals and timeouts); :class:`Duration` keeps the text for
round-tripping and converts it to a :class:`datetime.timedelta`. Pure; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

__all__ = ["DURATION_PATTERN", "Duration"]

#: The ``pattern`` of every duration field in ``crds/``: one or more ``<number><unit>``
#: with unit ``ms``, ``s``, ``m`` or ``h``.
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

_WHOLE: Final = re.compile(DURATION_PATTERN)
_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Duration:
    """A duration written the Go way; ``str()`` gives back the text it was parsed from."""

    text: str

    def __post_init__(self) -> None:
        if not _WHOLE.fullmatch(self.text):
            raise ValueError(
                f"{self.text!r} is not a duration; write it like 30s, 5m, 1h30m or 1.5h"
            )

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``text``; raise :class:`ValueError` saying how to write it when invalid."""
        return cls(text)

    def to_timedelta(self) -> timedelta:
        """The duration as a :class:`datetime.timedelta`."""
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(self.text))
        return timedelta(seconds=seconds)

    def __str__(self) -> str:
        return self.text
