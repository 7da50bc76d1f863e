"""Typed request dependencies: a database session and the signed-in user."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi import Path as PathParam
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.security import API_TOKEN_PREFIX, csrf_matches, token_digest
from backend.db.session import session_factory
from backend.db.tables import ApiToken, User, UserSession, utcnow
from backend.errors import StudioError
from backend.settings import Settings, get_settings

SESSION_COOKIE = "studio_session"
CSRF_COOKIE = "studio_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db() -> Iterator[Session]:
    with session_factory()() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]
MAX_ID = 2**63 - 1  # ids are BIGINT: a larger one names nothing, and is refused before any query
# A resource id in a path: 1 .. 2^63 - 1, a 422 naming the parameter otherwise (never a database error).
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _unauthorized(detail: str = "not signed in") -> StudioError:
    return StudioError(401, detail, "not_authenticated", headers={"WWW-Authenticate": "Bearer"})


def _user_from_token(session: Session, token: str) -> User:
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).one_or_none()
    if row is None:
        raise _unauthorized("invalid API token")
    user = session.get(User, row.owner_id)
    if user is None or not user.is_active:
        raise _unauthorized("invalid API token")
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        row.last_used_at = now
        session.commit()
    return user


def _user_from_cookie(session: Session, request: Request, cookie: str, secret: str) -> User:
    row = session.scalars(
        select(UserSession).where(UserSession.token_hash == token_digest(cookie))
    ).one_or_none()
    if row is None or row.expires_at < utcnow():
        raise _unauthorized("session expired, sign in again")
    if request.method not in SAFE_METHODS and not csrf_matches(
        cookie, secret, request.headers.get(CSRF_HEADER)
    ):
        raise StudioError(403, f"missing or wrong {CSRF_HEADER} header", "csrf_failed")
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise _unauthorized()
    return user


def get_current_user(request: Request, session: SessionDep, settings: SettingsDep) -> User:
    auth = request.headers.get("Authorization", "")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        if not credentials.startswith(API_TOKEN_PREFIX):
            raise _unauthorized("invalid API token")
        return _user_from_token(session, credentials.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return _user_from_cookie(session, request, cookie, settings.secret())
    raise _unauthorized()


CurrentUser = Annotated[User, Depends(get_current_user)]
