"""Pages of long lists: parsing ?page=/?per_page= and slicing, edge cases included."""

from __future__ import annotations

import pytest

from fluxup.errors import ConfigError
from fluxup.logic.paging import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    build_page,
    parse_page_number,
    parse_per_page,
)


@pytest.mark.parametrize(("raw", "number"), [(None, 1), ("1", 1), ("7", 7), (" 3 ", 3),
                                             ("999999999", 999999999)])
def test_page_numbers(raw: str | None, number: int) -> None:
    assert parse_page_number(raw) == number


@pytest.mark.parametrize("raw", ["", "0", "-1", "+2", "1.5", "abc", "1e3", "\uff12", "½",
                                 "1000000000", "9" * 5000])
def test_bad_page_numbers_say_what_to_send(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"\?page= must be a whole number from 1 up"):
        parse_page_number(raw)


def test_per_page_bounds() -> None:
    assert parse_per_page(None) == DEFAULT_PER_PAGE
    assert parse_per_page("1") == 1
    assert parse_per_page(str(MAX_PER_PAGE)) == MAX_PER_PAGE
    for raw in ("0", str(MAX_PER_PAGE + 1), "ten"):
        with pytest.raises(ConfigError, match=rf"\?per_page= .* from 1 to {MAX_PER_PAGE}"):
            parse_per_page(raw)


def test_pages_of_a_list() -> None:
    items = list(range(1, 121))  # 120 items, 50 a page: 50, 50, 20
    first = build_page(items, 1)
    assert (first.items[0], first.items[-1], first.pages, first.total) == (1, 50, 3, 120)
    assert (first.has_previous, first.has_next, first.first, first.last) == (False, True, 1, 50)
    last = build_page(items, 3)
    assert last.items == tuple(range(101, 121))
    assert (last.has_previous, last.has_next, last.first, last.last) == (True, False, 101, 120)
    assert not last.beyond_end


def test_page_beyond_the_end_is_empty_and_says_so() -> None:
    page = build_page(list(range(120)), 4)
    assert page.items == ()
    assert page.beyond_end
    assert page.pages == 3
    assert (page.first, page.last, page.has_next, page.has_previous) == (0, 0, False, True)


def test_empty_list_has_one_empty_page() -> None:
    page = build_page([], 1)
    assert (page.items, page.pages, page.beyond_end, page.has_next) == ((), 1, False, False)
    assert build_page([], 2).beyond_end


def test_exact_multiple_and_custom_size() -> None:
    assert build_page(list(range(100)), 2).pages == 2
    assert not build_page(list(range(100)), 2).has_next
    assert build_page(list(range(10)), 2, per_page=3).items == (3, 4, 5)


def test_build_page_refuses_page_zero() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        build_page([1], 0)
