"""Validation of recsel's JSON files against the JSON Schemas in ``schemas/``."""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

import jsonschema

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]  # recsel/, this file is recsel/spec/
_SCHEMA_DIRS = (_PACKAGE / "schemas", _PACKAGE.parent / "schemas")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    for folder in _SCHEMA_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"JSON Schema {name} not found in {[str(d) for d in _SCHEMA_DIRS]}.")


def validate(data: Any, schema_name: str, source: str) -> None:
    """Raises ValueError naming ``source`` and the offending field if ``data`` is invalid."""
    try:
        jsonschema.validate(data, load_schema(schema_name))
    except jsonschema.ValidationError as err:
        location = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise ValueError(f"{source}: invalid at {location}: {err.message}") from None
