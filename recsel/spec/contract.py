"""Validation of recsel's JSON files against the JSON Schemas in ``schemas/``."""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any

import jsonschema

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]  # recsel/, this file is recsel/spec/
_SCHEMA_DIRS = (_PACKAGE / "schemas", _PACKAGE.parent / "schemas")
# Errors of these keywords only say "not valid under any of the given schemas": a plain
# error at the same place (a bad enum value, a missing key) says more, so it goes first.
_COMBINATORS = ("oneOf", "anyOf", "allOf", "not", "if", "then", "else")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    for folder in _SCHEMA_DIRS:
        candidate = folder / name
        if candidate.is_file():
            return json.loads(candidate.read_text())
    raise FileNotFoundError(f"JSON Schema {name} not found in {[str(d) for d in _SCHEMA_DIRS]}.")


def validate(data: Any, schema_name: str, source: str) -> None:
    """Raises ValueError naming ``source``, the offending field and the fix if ``data`` is invalid.

    Example:
        >>> validate({"version": 1, "features": []}, "feature_spec.schema.json", "spec.json")
        Traceback (most recent call last):
        ValueError: spec.json: invalid at features: [] should be non-empty
    """
    schema = load_schema(schema_name)
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(data))
    if not errors:
        return
    err = min(errors, key=lambda e: (e.validator in _COMBINATORS, len(e.absolute_path)))
    path = list(err.absolute_path)
    location = "/".join(str(p) for p in path) or "(top level)"
    raise ValueError(f"{source}: invalid at {location}{_named(data, path)}: {_message(err)}")


def _named(data: Any, path: list) -> str:
    """`` ('user_id')`` when the path is inside a list entry with a ``name``."""
    node = data
    for step, key in enumerate(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return ""
        if isinstance(key, int) and isinstance(node, dict) and "name" in node:
            return f" ({node['name']!r})" if step < len(path) else ""
    return ""


def _message(err: jsonschema.ValidationError) -> str:
    """The error as what to change: the keys a ``oneOf`` or ``not`` wants or refuses."""
    if err.validator == "oneOf":
        options = ", ".join(_alternatives(_required(s)) for s in err.validator_value)
        if "is valid under each of" in err.message:
            return f"give only one of: {options}"
        return f"needs one of: {options}"
    if err.validator == "not":
        return f"takes none of: {', '.join(repr(k) for k in _required(err.validator_value))}"
    return err.message


def _alternatives(keys: list[str]) -> str:
    first, *others = keys
    return repr(first) + (f" (or {', '.join(map(repr, others))})" if others else "")


def _required(schema: dict) -> list[str]:
    keys = list(schema.get("required", []))
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        keys += _required(branch)
    return keys or ["(see the schema)"]
