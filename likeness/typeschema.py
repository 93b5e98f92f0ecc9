"""JSON Schema (draft 2020-12) from dataclasses: walk the fields and their type hints.

The dataclasses are the one definition of a record (the scan's JSON line, verify's
answer); the shipped schema files are generated from them (`likeness.api.write_schemas`)
and a test holds the files equal to what this generator makes, so they cannot drift.

Rules, matching how the records' `to_dict` writes them:
- every field is a required property (`to_dict` always writes every key), except a
  field named `extra` (dict): the keys a line carries beyond the schema, so the object
  allows additional properties;
- a class may name optional keys it reads from `extra` with their types in a ClassVar
  `json_optional` ({"name": type}): they become properties, not required;
- `X | None` is a union with null; `Literal[...]` an enum (one value: a const);
  `list[T]` and `tuple[T, ...]` arrays of T; `tuple[A, B]` a fixed-length array;
  `dict[str, T]` an object of T; `Any`, bare `dict` or `list` anything of that kind;
  `Path` a string; a nested dataclass a `$ref` into `$defs`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def dataclass_schema(cls: type, schema_id: str | None = None) -> dict:
    """The JSON Schema of dataclass `cls` (its nested dataclasses under `$defs`)."""
    defs: dict[str, dict] = {}
    root = _object(cls, defs)
    out: dict[str, Any] = {"$schema": DRAFT}
    if schema_id:
        out["$id"] = schema_id
    out["title"] = cls.__name__
    out.update(root)
    if defs:
        out["$defs"] = dict(sorted(defs.items()))
    return out


def _doc(cls: type) -> str | None:
    doc = cls.__dict__.get("__doc__")
    # dataclasses make a signature docstring when there is none: not a description
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return " ".join(doc.split())


def _object(cls: type, defs: dict[str, dict]) -> dict:
    hints = typing.get_type_hints(cls)
    props: dict[str, dict] = {}
    required: list[str] = []
    open_ended = False
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            open_ended = True
            continue
        props[f.name] = _type(hints[f.name], defs)
        required.append(f.name)
    optional = getattr(cls, "json_optional", {}) or {}
    for name, hint in optional.items():
        props[name] = _type(hint, defs)
    out: dict[str, Any] = {}
    doc = _doc(cls)
    if doc:
        out["description"] = doc
    out.update(
        {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": open_ended,
        }
    )
    return out


def _type(hint: Any, defs: dict[str, dict]) -> dict:
    if hint is Any:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is Path:
        return {"type": "string"}
    if hint is dict:
        return {"type": "object"}
    if hint is list:
        return {"type": "array"}
    if dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: a class that refers to itself stops here
            defs[name] = _object(hint, defs)
        return {"$ref": f"#/$defs/{name}"}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        if len(args) == 1:
            return {"const": args[0]}
        return {"enum": list(args)}
    if origin in (types.UnionType, typing.Union):
        return _union([_type(a, defs) for a in args])
    if origin is list:
        return {"type": "array", "items": _type(args[0], defs)} if args else {"type": "array"}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type(args[0], defs)}
        return {
            "type": "array",
            "prefixItems": [_type(a, defs) for a in args],
            "minItems": len(args),
            "maxItems": len(args),
            "items": False,
        }
    if origin is dict:
        value = _type(args[1], defs) if args else {}
        return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
    raise TypeError(f"no JSON Schema for type {hint!r}")


def _union(options: list[dict]) -> dict:
    """`{"type": [a, b]}` when every option is a bare type, else `anyOf`; null last."""
    if all(set(o) == {"type"} and isinstance(o["type"], str) for o in options):
        kinds = [o["type"] for o in options]
        kinds = [k for k in kinds if k != "null"] + (["null"] if "null" in kinds else [])
        return {"type": kinds}
    if any(o == {"type": "null"} for o in options):
        options = [o for o in options if o != {"type": "null"}] + [{"type": "null"}]
    # a nullable enum: null is one more allowed value
    if len(options) == 2 and options[1] == {"type": "null"} and "enum" in options[0]:
        return {"enum": [*options[0]["enum"], None]}
    return {"anyOf": options}
