"""Request and response bodies of the auth and token endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class Credentials(BaseModel):
    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=8, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    created_at: datetime


class SignedIn(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it back as the X-CSRF-Token header on unsafe methods")


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .:@/-]+$")


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored")
