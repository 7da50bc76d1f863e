"""Creating users, sessions and API tokens; used by the REST endpoints and by ``studio user create`` and
``studio token create``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.auth.security import API_TOKEN_PREFIX, hash_password, new_token, token_digest, verify_password
from backend.db.tables import ApiToken, User, UserSession, utcnow
from backend.errors import StudioError


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(session: Session, email: str, password: str) -> User:
    email = normalise_email(email)
    if session.scalars(select(User).where(func.lower(User.email) == email)).first() is not None:
        raise StudioError(409, f"a user with email {email} already exists", "email_taken")
    user = User(email=email, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    user = session.scalars(select(User).where(User.email == normalise_email(email))).one_or_none()
    ok = verify_password(password, user.password_hash if user else None)
    return user if ok and user is not None and user.is_active else None


def open_session(session: Session, user: User, days: int) -> str:
    """A new browser session; returns the cookie value (only its digest is stored)."""
    token = new_token()
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at < now))
    session.add(
        UserSession(user_id=user.id, token_hash=token_digest(token), expires_at=now + timedelta(days=days))
    )
    return token


def close_session(session: Session, cookie: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == token_digest(cookie)))


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new API token of ``user`` for ``Authorization: Bearer``: its row (only the hash is stored) and
    the token itself, which nobody can read again."""
    token = new_token(API_TOKEN_PREFIX)
    row = ApiToken(owner_id=user.id, name=name, token_hash=token_digest(token), prefix=token[:10])
    session.add(row)
    session.flush()
    return row, token
