"""Provider errors, classified by what the worker should do about them."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider refused or failed a send; `message` is kept as the notification's provider_response."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TransientProviderError(ProviderError):
    """Retry later: throttling, provider 5xx, timeouts, network errors, account-level pauses."""

    def __init__(self, message: str, *, account_paused: bool = False) -> None:
        super().__init__(message)
        self.account_paused = account_paused


class PermanentProviderError(ProviderError):
    """Do not retry: the provider rejected this message (invalid address, rejected content, unverified sender)."""
