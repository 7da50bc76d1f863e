"""``/api/auth`` and ``/api/tokens``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import delete

from backend.auth import service
from backend.auth.schemas import Credentials, SignedIn, TokenCreate, TokenCreated, TokenOut, UserOut
from backend.auth.scope import get_owned, owned
from backend.auth.security import csrf_for
from backend.db.tables import ApiToken, User
from backend.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, Id, SessionDep, SettingsDep
from backend.errors import StudioError
from backend.ratelimit import hit
from backend.settings import Settings

auth_router = APIRouter(prefix="/api/auth", tags=["auth"])
tokens_router = APIRouter(prefix="/api/tokens", tags=["tokens"])


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _sign_in(response: Response, session: SessionDep, settings: Settings, user: User) -> SignedIn:
    cookie = service.open_session(session, user, settings.session_days)
    session.commit()
    csrf = csrf_for(cookie, settings.secret())
    max_age = settings.session_days * 86400
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token; useless to another origin.
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    return SignedIn(user=UserOut.model_validate(user), csrf_token=csrf)


@auth_router.post("/register", status_code=status.HTTP_201_CREATED)
def register(
    body: Credentials, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> SignedIn:
    """Create an account and sign in."""
    hit(settings.login_rate_limit, "register", _client(request))
    user = service.create_user(session, body.email, body.password)
    return _sign_in(response, session, settings, user)


@auth_router.post("/login")
def login(
    body: Credentials, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> SignedIn:
    """Sign in: sets an HttpOnly session cookie and returns the CSRF token."""
    hit(settings.login_rate_limit, "login", _client(request), service.normalise_email(body.email))
    user = service.authenticate(session, body.email, body.password)
    if user is None:
        raise StudioError(401, "wrong email or password", "bad_credentials")
    return _sign_in(response, session, settings, user)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, user: CurrentUser, session: SessionDep) -> None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service.close_session(session, cookie)
        session.commit()
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@auth_router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@tokens_router.get("")
def list_tokens(user: CurrentUser, session: SessionDep) -> list[TokenOut]:
    rows = session.scalars(owned(ApiToken, user.id).order_by(ApiToken.id))
    return [TokenOut.model_validate(r) for r in rows]


@tokens_router.post("", status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> TokenCreated:
    """A new API token for ``Authorization: Bearer``; the token is in this answer only."""
    hit(settings.token_rate_limit, "token", str(user.id))
    row, token = service.create_api_token(session, user, body.name)
    session.commit()
    return TokenCreated(token=token, **TokenOut.model_validate(row).model_dump())


@tokens_router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: Id, user: CurrentUser, session: SessionDep) -> None:
    row = get_owned(session, ApiToken, token_id, user.id, "token")
    session.execute(delete(ApiToken).where(ApiToken.id == row.id))
    session.commit()
