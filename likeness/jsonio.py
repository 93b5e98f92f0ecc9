"""Reading the small JSON files likeness writes beside models and runs (configs,
calibrations, training configs), with one-line errors of the caller's kind."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path

from likeness.errors import InputError, LikenessError


def read_json_object(path: Path, what: str, error: type[LikenessError] = InputError) -> dict:
    """The JSON object in `path`; `error` ("cannot read {what} ...", "... must hold a
    JSON object") when it is unreadable, not JSON, or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise error(f"cannot read {what} {path}: {err}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} must hold a JSON object")
    return data


def check_fields(cls: type, data: dict, what: str, error: type[LikenessError] = InputError) -> None:
    """Refuse keys that are not fields of the dataclass `cls` (a typo in a config must
    not be ignored silently), with an `error` ("{what} has unknown fields [...]")."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise error(f"{what} has unknown fields {unknown}")


def json_safe(value):
    """`value` as plain JSON: dict keys as strings, tuples as lists, numpy scalars as
    Python numbers, and non-finite floats as null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return value if math.isfinite(value) else None
    return value
