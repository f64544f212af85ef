"""Simulated (smoke-test) recipients: accepted with a 201, never stored, sent or counted (DESIGN §2.1 step 4, §4.6)."""

from __future__ import annotations

from functools import lru_cache

from notify.errors import ValidationError
from notify.notifications import validation
from notify.settings import ApiSettings


@lru_cache(maxsize=8)
def _normalised(emails: tuple[str, ...], numbers: tuple[str, ...]) -> frozenset[str]:
    recipients: set[str] = set()
    for email in emails:
        try:
            recipients.add(validation.check_email(email))
        except ValidationError:
            recipients.add(email.strip().lower())
    for number in numbers:
        try:
            recipients.add(validation.check_phone(number))
        except ValidationError:
            recipients.add(number.strip())
    return frozenset(recipients)


def is_simulated(settings: ApiSettings, normalised_to: str) -> bool:
    """Return whether a normalised recipient is one of the configured simulated addresses or numbers."""
    return normalised_to in _normalised(tuple(settings.simulated_emails), tuple(settings.simulated_numbers))
