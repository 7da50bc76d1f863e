"""The API's error shape: ``{"detail": ..., "code": ...}``, naming the field, file or value at fault."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


class StudioError(HTTPException):
    """An HTTP error with a machine-readable code beside the human-readable detail."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        code: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code
        self.extra = extra or {}


def not_found(what: str, ident: object) -> StudioError:
    return StudioError(404, f"{what} {ident} not found", "not_found")
