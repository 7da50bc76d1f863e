"""OpenAPI descriptions of the multipart forms whose bodies the routes stream themselves."""

from __future__ import annotations

from typing import Any


def multipart_body(
    file_field: str, description: str, fields: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    """``openapi_extra`` for a route reading a multipart form with one file part and small text fields."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [file_field, *required],
                        "properties": {
                            file_field: {"type": "string", "format": "binary", "description": description},
                            **fields,
                        },
                    }
                }
            },
        }
    }
