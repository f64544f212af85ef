"""API key strings and the encryption of their secrets at rest (DESIGN §4.2)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

KEY_PREFIX = "notify-"
_SECRET_LENGTH = 36
_SERVICE_ID_SLICE = slice(-73, -37)


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """The parts of a full key string that the server needs."""

    service_id: uuid.UUID
    secret: str


def new_secret() -> str:
    """Return a new random key secret (a UUID string, as Notify clients expect 36 characters)."""
    return str(uuid.uuid4())


def format_key(key_name: str, service_id: uuid.UUID, secret: str) -> str:
    """Build the key string the clients parse: `{prefix}{name}-{service id}-{secret}`."""
    slug = "_".join(key_name.lower().split()) or "key"
    return f"{KEY_PREFIX}{slug}-{service_id}-{secret}"


def parse_key(key: str) -> ParsedKey | None:
    """Split a full key string into service id and secret; None when it is not one."""
    if len(key) < 74:
        return None
    try:
        service_id = uuid.UUID(key[_SERVICE_ID_SLICE])
    except ValueError:
        return None
    secret = key[-_SECRET_LENGTH:]
    if key[-_SECRET_LENGTH - 1] != "-":
        return None
    return ParsedKey(service_id=service_id, secret=secret)


class SecretBox:
    """Encrypt and decrypt key secrets with a key derived from the server secret."""

    def __init__(self, server_secret: str) -> None:
        digest = hashlib.sha256(b"notify.api-key-secret:" + server_secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, plaintext: str) -> bytes:
        """Return the ciphertext stored in the database."""
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str | None:
        """Return the plaintext, or None when it was not encrypted with this server secret."""
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            return None
