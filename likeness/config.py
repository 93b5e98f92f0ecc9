"""Where likeness keeps its files, which device it computes on, and `JsonConfig`: the one
way a config dataclass becomes JSON and back (diffusers' ConfigMixin idea)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from likeness.errors import InputError, LikenessError

C = TypeVar("C", bound="JsonConfig")


def home() -> Path:
    """LIKENESS_HOME, else $XDG_DATA_HOME/likeness, else ~/.local/share/likeness."""
    explicit = os.environ.get("LIKENESS_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "likeness"


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/likeness, else ~/.cache/likeness: what can be fetched again."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "likeness"


def models_dir() -> Path:
    """Where `likeness models install` puts the face models: the user cache, shared by
    every LIKENESS_HOME (a fresh home needs no second install)."""
    return cache_dir() / "models"


def legacy_models_dir() -> Path:
    """LIKENESS_HOME/models, where models were installed before they moved to the
    cache; still looked in, after the cache."""
    return home() / "models"


def keys_dir() -> Path:
    return home() / "keys"


def store_path() -> Path:
    return home() / "store.sqlite"


def choose_device(name: str = "auto") -> str:
    """Map `auto|cpu|cuda` to a torch device string; torch is imported only here."""
    name = name.lower()
    if name not in {"auto", "cpu", "cuda"}:
        raise InputError(f"unknown device {name!r}: use auto, cpu or cuda")
    if name == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise InputError("--device cuda was asked for but no CUDA device is available")
    return "cpu"


# ---------------------------------------------------------------- config dataclasses


class JsonConfig:
    """Mixin for config dataclasses: `to_dict`, `to_json`, `from_dict`, `load`, `save`.

    `from_dict` refuses unknown fields (a typo must not be ignored), turns JSON lists
    into tuples, strings into `Path` for Path fields, and dicts into nested config
    dataclasses; then calls `validate()`, the class's own checks (a no-op by default).
    `config_name` names the config in error messages ("generator config"), and
    `config_error` is their kind (InputError: a bad file the user gave; a class read
    from shipped weights may say ModelError).
    """

    config_name: ClassVar[str] = "config"
    config_error: ClassVar[type[LikenessError]] = InputError

    def validate(self) -> None:
        """Raise InputError when the values do not make sense together."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (nested configs as dicts, paths as strings)."""
        return {f.name: _to_json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls: type[C], data: dict, what: str | None = None) -> C:
        from likeness.jsonio import check_fields

        what = what or cls.config_name
        if not isinstance(data, dict):
            raise cls.config_error(f"{what} must be a JSON object")
        check_fields(cls, data, what, cls.config_error)
        hints = _field_types(cls)
        values = {k: _from_json_value(hints[k], v, f"{what} {k}") for k, v in data.items()}
        config = cls(**values)
        config.validate()
        return config

    @classmethod
    def load(cls: type[C], path: Path) -> C:
        from likeness.jsonio import read_json_object

        return cls.from_dict(read_json_object(path, cls.config_name, cls.config_error))

    def save(self, path: Path) -> Path:
        """Write the JSON to `path`, replaced only when complete."""
        from likeness.fsio import atomic_output

        with atomic_output(path) as tmp:
            Path(tmp).write_text(self.to_json())
        return Path(path)


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass field `name` (a CLI option's default comes from here)."""
    f = cls.__dataclass_fields__[name]
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise KeyError(f"{cls.__name__}.{name} has no default")


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _to_json_value(value: Any) -> Any:
    if isinstance(value, JsonConfig):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return type(value)(_to_json_value(v) for v in value)
    return value


def _options(hint: Any) -> tuple:
    """The types a hint allows: `Path | None` -> (Path, NoneType)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _from_json_value(hint: Any, value: Any, what: str) -> Any:
    options = _options(hint)
    if isinstance(value, dict):
        for option in options:
            if isinstance(option, type) and issubclass(option, JsonConfig):
                return option.from_dict(value, what)
        return value
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str) and Path in options:
        return Path(value)
    return value
