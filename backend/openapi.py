"""Write the API's OpenAPI document to a file (the frontend's typed client is generated from it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from backend.app import create_app


def main(path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/openapi.json")
