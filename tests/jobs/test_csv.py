"""The row checker's fast email path agrees with the API's full check."""

from __future__ import annotations

import pytest

from notify.errors import ValidationError
from notify.jobs import csv
from notify.notifications import validation

ADDRESSES = [
    "ada@example.com",
    " Ada.Lovelace+tag@Example.COM ",
    "first.o'brien@sub.example.co.uk",
    "a..b@example.com",
    ".a@example.com",
    "a@example",
    "a@localhost",
    "a@example.test",
    "a@-example.com",
    "a@exa_mple.com",
    "a" * 65 + "@example.com",
    "a@" + "b" * 64 + ".com",
    "ünïcode@example.com",
    "a@bücher.de",
    "no-at-sign",
    "a@b@example.com",
    '"quoted"@example.com',
    "",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_fast_email_check_matches_the_full_check(address: str) -> None:
    try:
        expected: str | None = validation.check_email_fully(address.strip())
    except ValidationError:
        expected = None
    try:
        actual: str | None = validation.check_email(address)
    except ValidationError:
        actual = None
    assert actual == expected


def test_csv_rows_parse_quotes_and_blank_lines() -> None:
    lines = list(csv.iter_csv('email address,name\r\n"a@example.com","Smith, Ada"\r\n\r\n'))
    assert [line for line in lines if not csv.is_blank(line)] == [
        ["email address", "name"],
        ["a@example.com", "Smith, Ada"],
    ]


def test_csv_records_may_span_lines_and_use_any_line_ending() -> None:
    assert list(csv.iter_csv('a,b\r\n"x\ny",2\r\nlast,1')) == [["a", "b"], ["x\ny", "2"], ["last", "1"]]
    assert list(csv.iter_csv("a,b\rc,d\r")) == [["a", "b"], ["c", "d"]]
    assert list(csv.iter_csv("")) == []
