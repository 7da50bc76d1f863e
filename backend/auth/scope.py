"""Owner scoping: every query for a user's rows goes through these, so a foreign id answers 404."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from backend.db.tables import ApiToken, Artifact, Dataset, Job, TrainedModel
from backend.errors import not_found

# Every table with an owner_id; a new owned table is added here and so gets scoped queries.
T = TypeVar("T", ApiToken, Artifact, Dataset, Job, TrainedModel)


def owned(model: type[T], owner_id: int) -> Select[T]:
    """``SELECT model WHERE owner_id = owner_id``: the start of every listing."""
    return select(model).where(model.owner_id == owner_id)


def get_owned(session: Session, model: type[T], ident: Any, owner_id: int, what: str | None = None) -> T:
    """The row with this id if the caller owns it; a 404 that reads exactly like a missing row otherwise."""
    row = session.scalars(owned(model, owner_id).where(model.id == ident)).one_or_none()
    if row is None:
        raise not_found(what or getattr(model, "__tablename__", "resource").rstrip("s"), ident)
    return row
