"""`JsonConfig`: the one JSON round trip of config dataclasses, and `default_of`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from likeness.config import JsonConfig, default_of
from likeness.errors import InputError


@dataclass(frozen=True)
class Inner(JsonConfig):
    config_name = "inner config"

    weight: float = 1.0


@dataclass(frozen=True)
class Outer(JsonConfig):
    config_name = "outer config"

    sizes: tuple[int, ...] = (1, 2)
    folder: Path | None = None
    inner: Inner = field(default_factory=Inner)
    steps: int = 10

    def validate(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be 1 or more, got {self.steps}")


def test_round_trip_with_tuples_paths_and_nested_configs(tmp_path):
    config = Outer(sizes=(3, 4, 5), folder=Path("/x/y"), inner=Inner(0.5), steps=3)
    data = config.to_dict()
    assert data == {"sizes": (3, 4, 5), "folder": "/x/y", "inner": {"weight": 0.5}, "steps": 3}
    path = config.save(tmp_path / "c.json")
    assert Outer.load(path) == config
    assert Outer.from_dict({}) == Outer()


def test_unknown_fields_and_validation_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"outer config has unknown fields \['stepz'\]"):
        Outer.from_dict({"stepz": 3})
    with pytest.raises(InputError, match=r"outer config inner has unknown fields \['w'\]"):
        Outer.from_dict({"inner": {"w": 1}})
    with pytest.raises(InputError, match="steps must be 1 or more"):
        Outer.from_dict({"steps": 0})
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        Outer.load(tmp_path / "bad.json")


def test_default_of_reads_field_defaults_and_factories():
    assert default_of(Outer, "steps") == 10
    assert default_of(Outer, "inner") == Inner()
    with pytest.raises(KeyError):
        default_of(Outer, "nope")


def test_a_config_read_from_weights_can_raise_its_own_error_kind():
    from likeness.errors import ModelError

    @dataclass(frozen=True)
    class Shipped(JsonConfig):
        config_name = "model config"
        config_error = ModelError

        size: int = 1

    with pytest.raises(ModelError, match=r"model config has unknown fields \['sise'\]"):
        Shipped.from_dict({"sise": 2})
    with pytest.raises(ModelError, match="must be a JSON object"):
        Shipped.from_dict([1])
