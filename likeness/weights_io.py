"""Shipped-model folders (config beside weights, as diffusers keeps them): writing a
network as half-precision safetensors plus its config JSON, and loading it back with
a clear `ModelError` when the file is unreadable or does not fit the network."""

from __future__ import annotations

from pathlib import Path

import torch

from likeness.errors import ModelError
from likeness.fsio import atomic_output

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def model_files(
    folder: Path, problem: str, fix: str, *extra: str, error: type[Exception] = ModelError
) -> list[Path]:
    """config.json, model.safetensors and the `extra` files of a weights folder, in that
    order. When any is missing: `error` (ModelError: a model to load; InputError: a
    folder the user named, e.g. a training run's `init`) "{problem} in {folder}
    (missing ...); {fix}", one message shape for every weights folder."""
    paths = [Path(folder) / n for n in (CONFIG_NAME, WEIGHTS_NAME, *extra)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise error(f"{problem} in {folder} (missing {', '.join(missing)}); {fix}")
    return paths


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def save_model(
    network: torch.nn.Module, folder: Path, config_json: str, dtype=torch.float16
) -> Path:
    """Write folder/model.safetensors (float16 halves the size; inference runs in
    float32 after loading) and folder/config.json; each replaced only when complete."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in network.state_dict().items()
    }
    with atomic_output(folder / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"config": config_json})
    write_text_atomic(folder / CONFIG_NAME, config_json)
    return folder / WEIGHTS_NAME


def load_model(network: torch.nn.Module, path: Path, what: str) -> None:
    """Load safetensors at `path` into `network` (float32); `what` names the model in
    errors ("generator", "detector")."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{what} weights {path} cannot be read: {err}") from None
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ModelError(
            f"{what} weights {path.name} do not fit this model "
            f"({len(missing)} missing, {len(unexpected)} unexpected tensors)"
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise ModelError(
                f"{what} weights {path.name}: {k} has shape {tuple(v.shape)}, "
                f"expected {tuple(own[k].shape)}"
            )
    network.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    )
