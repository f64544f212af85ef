"""The lean HS256 check agrees with PyJWT (the general path) on every token a client could send."""

from __future__ import annotations

import base64
import time
import uuid

import jwt
import pytest

from notify.auth import tokens

SECRET = str(uuid.uuid4())
OTHER = str(uuid.uuid4())


def pyjwt_accepts(token: str, secret: str) -> bool:
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_iat": False, "verify_exp": False})
    except jwt.PyJWTError:
        return False
    return True


def lean_accepts(token: str, secret: str) -> bool:
    try:
        parsed = tokens.parse(token)
    except tokens.InvalidTokenError:
        return False
    return parsed.header.get("alg") == "HS256" and parsed.signed_with(secret)


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _cases() -> list[tuple[str, str]]:
    claims = {"iss": str(uuid.uuid4()), "iat": int(time.time())}
    good = jwt.encode(claims, SECRET, algorithm="HS256")
    header, payload, signature = good.split(".")
    tampered_payload = _segment(b'{"iss":"someone-else","iat":1}')
    none_header = _segment(b'{"alg":"none","typ":"JWT"}')
    return [
        ("valid", good),
        ("valid with extra header fields", jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "x"})),
        ("other secret", jwt.encode(claims, OTHER, algorithm="HS256")),
        ("HS512", jwt.encode(claims, SECRET * 2, algorithm="HS512")),
        ("alg none", f"{none_header}.{payload}."),
        ("tampered claims", f"{header}.{tampered_payload}.{signature}"),
        ("truncated signature", f"{header}.{payload}.{signature[:-2]}"),
        ("two segments", f"{header}.{payload}"),
        ("garbage", "not.a.token"),
        ("empty", ""),
        ("claims not an object", f"{header}.{_segment(b'[1,2]')}.{signature}"),
    ]


@pytest.mark.parametrize(("case", "token"), _cases(), ids=[case for case, _ in _cases()])
def test_lean_check_agrees_with_pyjwt(case: str, token: str) -> None:
    assert lean_accepts(token, SECRET) == pyjwt_accepts(token, SECRET), case


def test_parse_exposes_the_claims() -> None:
    token = jwt.encode({"iss": "abc", "iat": 123}, SECRET, algorithm="HS256")
    parsed = tokens.parse(token)
    assert parsed.claims == {"iss": "abc", "iat": 123}
    assert parsed.header["alg"] == "HS256"
    assert parsed.signed_with(SECRET)
    assert not parsed.signed_with(OTHER)
