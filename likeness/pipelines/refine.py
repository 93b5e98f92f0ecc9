"""`--refine`: the diffusion refiner after the generator, in both animate paths.

One loaded refiner per weights file and device per process (as `generator_cache` keeps
the generator), and what the manifest says made the pixels: with the refiner on, the
model name and weights hash name both models, generator first ("NAME+REFINER",
"HASH+REFINER_HASH"), so a reader of the C2PA manifest sees that the output was refined
and by which weights. Missing weights fail in `prepare()`, before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from likeness.generator.model import GeneratorModel
    from likeness.generator.refiner.model import RefinerModel
    from likeness.pipelines.configs import AnimateConfig


def load_refiner(config: AnimateConfig, device: str) -> RefinerModel | None:
    """The refiner `config.refine` asks for (None when it is off), loaded once per
    process (one refiner at a time is all a process uses); ModelError (exit 2, one
    line) when its weights are missing."""
    if not config.refine:
        return None
    from likeness.generator.refiner.model import DEFAULT_WEIGHTS, RefinerModel
    from likeness.pipelines.generator_cache import cached_load

    folder = Path(config.refiner_weights) if config.refiner_weights else DEFAULT_WEIGHTS
    return cached_load("refiner", folder, device, RefinerModel.from_pretrained, keep=1)


def model_record(model: GeneratorModel, refiner: RefinerModel | None) -> dict[str, str | None]:
    """`model_name` and `model_hash` for the marked writer."""
    if refiner is None:
        return {"model_name": model.config.name, "model_hash": model.weights_hash}
    return {
        "model_name": f"{model.config.name}+{refiner.config.name}",
        "model_hash": f"{model.weights_hash}+{refiner.weights_hash}",
    }
