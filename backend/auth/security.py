"""Passwords (Argon2 via pwdlib), random tokens stored as SHA-256, CSRF tokens bound to a session."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()
# Verifying against this keeps a login for an unknown email as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

API_TOKEN_PREFIX = "stu_"  # noqa: S105 - a marker so leaked tokens are recognisable, not a secret


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Tokens are random (256 bits), so a fast hash is enough; only the digest is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(session_token: str, secret: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, secret: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(csrf_for(session_token, secret), presented)
