"""`likeness bench refiner`: the diffusion refiner on vs off, on held-out identities.

    likeness bench refiner --pack PACK [--weights RUN/best] [-o benchmarks]
    likeness bench refiner --pairs PAIRS ...   (pairs cached by refiner.pairs)

Test-split self-reenactment pairs (generator render, real frame; people no model saw in
training) are scored unrefined and refined: L1, PSNR and SSIM of the whole 256 px crop
(as `bench generator`), L1 and PSNR inside the face mask (the only pixels the refiner
changes), and eye and mouth sharpness as a ratio to the real frame's (variance of the
Laplacian in each box; 1.0 is as sharp as the truth), and the mouth opening the face
stack reads on each frame against the real frame's (`face_metrics.mouth_open`:
correlation over the pairs and mean absolute error; the renderer opens a mouth to
about 0.4 of what its keypoints ask, and the refiner's `apertures` preset is told the
keypoints' opening). Speed: the refiner alone on
batches of 8 crops of 256 px, and `animate` end to end with and without `--refine`.

The issue's rule, recorded as `verdict.ships`: the refiner ships only if, refined, the
eyes and the mouth are both closer to the truth's sharpness, and face L1 and SSIM are
not worse than unrefined.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from likeness.bench.common import machine_info, write_json
from likeness.errors import InputError

PAIRS = {False: 256, True: 24}  # test pairs scored (full, --quick)
E2E_FRAMES = {False: 24, True: 8}
TARGET_E2E_FPS = 1.0  # issue 15: end to end with the refiner on this CPU


def _test_pairs(pack: Path | None, pairs: Path | None, quick: bool, work: Path):
    from likeness.generator.refiner.pairs import build, load_pairs, read_meta

    n = PAIRS[quick]
    if pairs is None:
        if pack is None:
            raise InputError("bench refiner needs --pack PACK (or --pairs PAIRS)")
        build(pack, work, {"test": n})
        pairs = work
    meta = read_meta(pairs)
    return load_pairs(pairs, "test", n), meta, str(pairs)


def score(frames: np.ndarray, pairs, masks: np.ndarray) -> dict[str, float]:
    """Mean figures of `frames` against the pairs' real frames."""
    from likeness.bench import face_metrics as fm
    from likeness.generator.refiner.metrics import masked_l1, sharpness_ratio

    img = fm.image_scores(frames, pairs.target)
    inside = [(m > 0) & (v > 0) for m, v in zip(masks, pairs.valid, strict=True)]
    sharp = [
        sharpness_ratio(f, t, k) for f, t, k in zip(frames, pairs.target, pairs.kp, strict=True)
    ]
    rows = {
        "l1": float(np.mean(img.l1)),
        "psnr": float(np.mean(img.psnr)),
        "ssim": float(np.mean(img.ssim)),
        "face_l1": float(
            np.nanmean(
                [masked_l1(f, t, m) for f, t, m in zip(frames, pairs.target, inside, strict=True)]
            )
        ),
        "face_psnr": float(
            np.nanmean(
                [fm.psnr(f, t, m) for f, t, m in zip(frames, pairs.target, inside, strict=True)]
            )
        ),
        "eyes_sharpness_ratio": float(np.nanmean([s["eyes"] for s in sharp])),
        "mouth_sharpness_ratio": float(np.nanmean([s["mouth"] for s in sharp])),
    }
    return {k: round(v, 5) for k, v in rows.items()}


def mouth_openings(stack, frames: np.ndarray) -> np.ndarray:
    """Each frame's mouth-open ratio as the face stack reads it (NaN: no face)."""
    from likeness.bench import face_metrics as fm
    from likeness.bench.generator_quality import measure

    out = []
    for frame in frames:
        m = measure(stack, frame)
        out.append(fm.mouth_open(m.landmarks) if m is not None else np.nan)
    return np.asarray(out, np.float64)


def mouth_figures(got: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from likeness.bench import face_metrics as fm

    ok = np.isfinite(got) & np.isfinite(truth)
    return {
        "mouth_open_corr": round(fm.correlation(got, truth), 5),
        "mouth_open_error": round(float(np.abs(got[ok] - truth[ok]).mean()), 5),
    }


def refine_all(refiner, pairs, steps: int) -> tuple[np.ndarray, float]:
    """Refined frames and the refiner's frames per second over them (batches of 8)."""
    out = []
    t0 = time.perf_counter()
    for i in range(0, len(pairs), 8):
        out.append(refiner.refine(pairs.render[i : i + 8], pairs.kp[i : i + 8], steps=steps))
    seconds = time.perf_counter() - t0
    return np.concatenate(out), len(pairs) / seconds


def verdict(off: dict, on: dict) -> dict:
    def gap(ratio: float) -> float:
        return abs(math.log(ratio)) if ratio > 0 else math.inf

    checks = {
        "eyes_closer_to_truth_sharpness": gap(on["eyes_sharpness_ratio"])
        < gap(off["eyes_sharpness_ratio"]),
        "mouth_closer_to_truth_sharpness": gap(on["mouth_sharpness_ratio"])
        < gap(off["mouth_sharpness_ratio"]),
        "face_l1_not_worse": on["face_l1"] <= off["face_l1"],
        "ssim_not_worse": on["ssim"] >= off["ssim"],
    }
    return {"ships": all(checks.values()), **checks}


def end_to_end(photo: Path, work: Path, frames: int, weights: Path | None) -> dict:
    """`animate` of a held-out face with scripted motion, refiner off and on: frames
    per second of the run (marking, encoding and signing included; loading not)."""
    from likeness.pipelines.animate import prepare
    from likeness.pipelines.configs import AnimateConfig

    rows = {}
    for name, refine in (("off", False), ("on", True)):
        config = AnimateConfig(max_frames=frames, refine=refine, refiner_weights=weights)
        t0 = time.perf_counter()
        job = prepare(photo, work / f"e2e-{name}.mp4", None, config, "talk,blink,nod,smile")
        t1 = time.perf_counter()
        result = job.run()
        t2 = time.perf_counter()
        rows[name] = {
            "frames": result.frames,
            "fps": round(result.frames / (t2 - t1), 2),
            "prepare_seconds": round(t1 - t0, 2),
        }
    return rows


def run(
    out_dir: Path,
    quick: bool = False,
    weights: Path | None = None,
    pack: Path | None = None,
    pairs: Path | None = None,
) -> Path:
    import tempfile

    import cv2
    import torch

    from likeness.faces import FaceStack
    from likeness.generator.refiner.model import RefinerModel
    from likeness.provenance.keys import load_signing

    refiner = RefinerModel.from_pretrained(weights)  # ModelError names the folder
    load_signing()  # SetupError naming `likeness keys init` now, not after the work
    with tempfile.TemporaryDirectory(prefix="likeness-bench-refiner-") as tmp:
        work = Path(tmp)
        test, meta, origin = _test_pairs(pack, pairs, quick, work / "pairs")
        masks = refiner.masks(test.kp, test.render.shape[1])
        stack = FaceStack()
        truth_mouth = mouth_openings(stack, test.target)
        rows = {"off": score(test.render, test, masks)}
        rows["off"].update(mouth_figures(mouth_openings(stack, test.render), truth_mouth))
        speeds = {}
        steps = [refiner.config.steps]
        if not quick:
            steps.append(1 if refiner.config.steps != 1 else 2)
        for n in steps:
            frames, fps = refine_all(refiner, test, n)
            rows[f"on_{n}_steps"] = score(frames, test, masks)
            rows[f"on_{n}_steps"].update(mouth_figures(mouth_openings(stack, frames), truth_mouth))
            speeds[f"refiner_fps_{n}_steps"] = round(fps, 2)
        on = rows[f"on_{refiner.config.steps}_steps"]
        photo = work / "held-out-face.png"
        cv2.imwrite(str(photo), cv2.cvtColor(test.target[0], cv2.COLOR_RGB2BGR))
        e2e = end_to_end(photo, work, E2E_FRAMES[quick], weights)
    payload = {
        "benchmark": "refiner",
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "quick": quick,
        "pairs": {
            "origin": origin,
            "split": "test",
            "count": len(test),
            "identities": meta.get("splits", {}).get("test", {}).get("identities"),
            "generator": meta.get("generator"),
            "generator_weights_sha256": meta.get("generator_weights_sha256"),
        },
        "refiner": {
            "name": refiner.config.name,
            "weights_sha256": refiner.weights_hash,
            "steps": refiner.config.steps,
            "strength": refiner.config.strength,
            "parameters": sum(p.numel() for p in refiner.network.parameters()),
        },
        "metrics": rows,
        "verdict": verdict(rows["off"], on),
        "speed": {
            **speeds,
            "end_to_end": e2e,
            "target_end_to_end_fps_refined": TARGET_E2E_FPS,
        },
    }
    return write_json(out_dir, "refiner", payload)
