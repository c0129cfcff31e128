"""Pages of long lists for the web UI's tables and the JSON API (``?page=``, ``?per_page=``).

With a fleet of a thousand apps the inbox cannot render every row; the routes in
:mod:`fluxup.ui` parse the query with :func:`parse_page_number` / :func:`parse_per_page`
(bad input is a :class:`~fluxup.errors.ConfigError`, a 400 saying what to send) and
slice with :func:`build_page`. A page past the end is not an error: it is empty and
says how many pages there are, so a link that went stale after apps were deleted still
answers. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from fluxup.errors import ConfigError

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "Page", "build_page", "parse_page_number",
           "parse_per_page"]

#: Rows per page unless ``?per_page=`` asks for another size.
DEFAULT_PER_PAGE: Final = 50
#: The largest ``?per_page=`` accepted.
MAX_PER_PAGE: Final = 500

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, which page it is (from 1) and the whole list's size."""

    items: tuple[T, ...]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the list has (1 for an empty list)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def beyond_end(self) -> bool:
        """Asked for a page after the last one (the page is empty)."""
        return self.number > self.pages

    @property
    def first(self) -> int:
        """1-based position of the first item shown (0 when the page is empty)."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        """1-based position of the last item shown (0 when the page is empty)."""
        return self.first + len(self.items) - 1 if self.items else 0


def _whole_number(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    text = raw.strip()
    # digits only (no sign, no "1e3", no "½"), and short enough to be a page number
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or int(text) < low or (
            high is not None and int(text) > high):
        upper = f" to {high}" if high is not None else " up"
        raise ConfigError(f"?{name}= must be a whole number from {low}{upper}, got {raw!r}")
    return int(text)


def parse_page_number(raw: str | None, name: str = "page") -> int:
    """The page asked for by ``?page=`` (1 when absent); a ConfigError if it is no page."""
    return _whole_number(raw, name, 1, 1, None)


def parse_per_page(raw: str | None, name: str = "per_page") -> int:
    """Rows per page from ``?per_page=`` (:data:`DEFAULT_PER_PAGE` when absent)."""
    return _whole_number(raw, name, DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)


def build_page(items: Sequence[T], number: int, per_page: int = DEFAULT_PER_PAGE) -> Page[T]:
    """Page ``number`` (from 1) of ``items``, ``per_page`` at a time."""
    if number < 1 or per_page < 1:
        raise ValueError(f"page {number} of {per_page} per page: both start at 1")
    start = (number - 1) * per_page
    return Page(tuple(items[start:start + per_page]), number, per_page, len(items))
