"""Read and check a bulk job's rows, one at a time (GC Notify's RecipientCSV rules, pure: no I/O)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from notify.errors import BadRequestError, ValidationError
from notify.notifications import validation
from notify.templates import rendering

# Normalised header keys of the recipient column, English and French (UTILS recipients.first_column_headings).
RECIPIENT_COLUMNS = {
    "email": ("emailaddress", "adressecourriel"),
    "sms": ("phonenumber", "numérodetéléphone"),
}
RECIPIENT_NAMES = {"email": "email address", "sms": "phone number"}
REFERENCE_KEY = "reference"
MAX_ERRORS_LISTED = 100


def iter_csv(text: str) -> Iterator[list[str]]:
    """Yield the CSV's records as lists of cells, parsing lazily (the text is never copied or split into a list)."""
    yield from csv.reader(_physical_lines(text), skipinitialspace=True)


def _physical_lines(text: str) -> Iterator[str]:
    # Not io.StringIO: it copies the text into a 4-bytes-a-character buffer. Lines keep their ending so csv can
    # join a quoted field that spans lines; a file with only old-Mac "\r" endings is split on those.
    separator = "\n" if "\n" in text or "\r" not in text else "\r"
    start = 0
    while start < len(text):
        end = text.find(separator, start)
        if end == -1:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def iter_rows(rows: Sequence[Sequence[Any]]) -> Iterator[list[str]]:
    """Yield JSON `rows` as lists of string cells."""
    for row in rows:
        yield ["" if cell is None else str(cell) for cell in row]


def is_blank(cells: Sequence[str]) -> bool:
    """Return whether a line has no values at all (such lines are skipped, as GC Notify does)."""
    return not any(cell.strip() for cell in cells)


@dataclass(frozen=True, slots=True)
class CheckedRow:
    """A valid row, ready to store."""

    row_number: int
    recipient: str
    personalisation: dict[str, str]
    client_reference: str | None
    units: int = 1  # what the row costs against the daily limit: 1 email, or the SMS's fragments


class RowChecker:
    """Checks rows against the header and the template; built from the header row."""

    def __init__(
        self,
        notification_type: str,
        subject: str | None,
        content: str,
        header: Sequence[str],
        sms_max_chars: int,
        refuse_recipient: Callable[[str], str | None] = lambda _: None,
    ) -> None:
        """Check the header row; raise BadRequestError for missing or duplicate columns.

        `refuse_recipient` gets each normalised recipient and returns why it may not be sent to (or None).
        """
        self._refuse_recipient = refuse_recipient
        self._type = notification_type
        self._subject = subject or ""
        self._content = content
        self._sms_max_chars = sms_max_chars
        self._names = [name.strip() for name in header]
        keys = [rendering.normalise_placeholder(name) for name in self._names]
        recipient_keys = RECIPIENT_COLUMNS[notification_type]
        placeholders = rendering.placeholders(self._subject, content)
        present = set(keys)
        missing = [] if present & set(recipient_keys) else [RECIPIENT_NAMES[notification_type]]
        missing += [name for name in placeholders if rendering.normalise_placeholder(name) not in present]
        if missing:
            raise BadRequestError(f"Missing column headers: {', '.join(sorted(missing))}")
        duplicates = sorted({self._names[i] for i, key in enumerate(keys) if key and keys.count(key) > 1})
        if duplicates:
            raise BadRequestError(f"Duplicate column headers: {', '.join(duplicates)}")
        self._recipient = next(i for i, key in enumerate(keys) if key in recipient_keys)
        self._reference = keys.index(REFERENCE_KEY) if REFERENCE_KEY in keys else None
        placeholder_keys = {rendering.normalise_placeholder(name) for name in placeholders}
        # Every required placeholder has a column (checked above): per row, only an empty cell can be missing.
        required = rendering.missing_personalisation({}, self._subject, content)
        self._required = [self._names[keys.index(rendering.normalise_placeholder(name))] for name in required]
        self._required_at = [keys.index(rendering.normalise_placeholder(name)) for name in required]
        self._values = [
            i
            for i, key in enumerate(keys)
            if key and i != self._recipient and (i != self._reference or key in placeholder_keys)
        ]

    def check(self, row_number: int, cells: Sequence[str]) -> CheckedRow | list[str]:
        """Return the checked row, or its errors (`Row n - <column>: problem.` texts)."""
        recipient = _cell(cells, self._recipient)
        errors: list[str] = []
        column = self._names[self._recipient]
        try:
            normalised = (
                validation.check_email(recipient) if self._type == "email" else validation.check_phone(recipient)
            )
        except ValidationError:
            errors.append(f"Row {row_number} - `{column}`: invalid recipient.")
        else:
            if (refused := self._refuse_recipient(normalised)) is not None:
                errors.append(f"Row {row_number} - `{column}`: {refused.rstrip('.')}.")
        personalisation = {self._names[i]: value for i in self._values if (value := _cell(cells, i))}
        missing = [name for name, i in zip(self._required, self._required_at, strict=True) if not _cell(cells, i)]
        errors.extend(f"Row {row_number} - `{name}`: Missing." for name in missing)
        units = 1
        if self._type == "sms" and not missing:
            rendered = rendering.render_sms(self._content, personalisation)
            units = rendered.fragment_count
            if rendered.character_count > self._sms_max_chars:
                errors.append(f"Row {row_number} - message is too long: over {self._sms_max_chars} characters.")
        if errors:
            return errors
        reference = _cell(cells, self._reference) if self._reference is not None else ""
        return CheckedRow(row_number, recipient, personalisation, reference or None, units)


def _cell(cells: Sequence[str], index: int) -> str:
    # Missing trailing cells count as empty; values lose surrounding whitespace.
    return cells[index].strip() if index < len(cells) else ""


def row_errors_message(errors: Sequence[str], total: int) -> str:
    """Return GC Notify's `Some rows have errors. Row 0 - ...` text, listing at most MAX_ERRORS_LISTED problems."""
    message = "Some rows have errors. " + " ".join(errors[:MAX_ERRORS_LISTED])
    if total > MAX_ERRORS_LISTED:
        message += f" And {total - MAX_ERRORS_LISTED} more errors."
    return message
