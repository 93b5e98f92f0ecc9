"""The refiner's training and evaluation data: (generator render, real frame) pairs of
one pack split, rendered once by the shipped generator and cached, so that training
never runs the generator again.

    python -m likeness.generator.refiner.pairs --pack PACK --out PAIRS [--train 2000]

Pairs are self-reenactment as the generator trains on them (generator.data's
PairSampler: two frames of one clip, the driving frame seen through the source frame's
crop window; photos through a random warp in the train split only), each drawn from a
generator seeded by (seed, pair), so the same arguments give the same pairs. PAIRS/SPLIT/
holds `pairs-NNN.npz` shards (render, target, valid, kp) and PAIRS/meta.json
records the generator's name and weights hash, the pack and the residual's scale.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from likeness.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
SHARD = 64
META = "meta.json"


@dataclass
class Pairs:
    """Pairs of one split, in memory."""

    render: np.ndarray  # (N, S, S, 3) uint8: the generator's output
    target: np.ndarray  # (N, S, S, 3) uint8: the real driving frame
    valid: np.ndarray  # (N, S, S) uint8: 1 where the driving frame has real pixels
    kp: np.ndarray  # (N, K, 3) float32: the driving keypoints the render followed

    def __len__(self) -> int:
        return len(self.render)

    def take(self, index) -> Pairs:
        return Pairs(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))


def load_pairs(root: Path, split: str, limit: int | None = None) -> Pairs:
    folder = Path(root) / split
    shards = sorted(folder.glob("pairs-*.npz"))
    if not shards:
        raise InputError(
            f"no refiner pairs in {folder}: build them with likeness.generator.refiner.pairs"
        )
    parts: dict[str, list] = {f.name: [] for f in dataclasses.fields(Pairs)}
    count = 0
    for shard in shards:
        with np.load(shard) as data:
            for name in parts:
                parts[name].append(data[name])
        count += len(parts["render"][-1])
        if limit is not None and count >= limit:
            break
    pairs = Pairs(*(np.concatenate(parts[f.name]) for f in dataclasses.fields(Pairs)))
    return pairs.take(slice(0, limit)) if limit is not None else pairs


def read_meta(root: Path) -> dict:
    path = Path(root) / META
    if not path.is_file():
        raise InputError(f"{root} holds no refiner pairs ({META} missing)")
    return json.loads(path.read_text())


def _sampler(pack, split: str, gen_config, max_frames: int):
    from likeness.generator.config import TrainConfig
    from likeness.generator.data import PairSampler, load_clips

    clips = load_clips(pack, split, gen_config, max_frames)
    if split != "train":
        # Held-out figures on real motion only: video clips, no synthetic photo warps.
        clips = [c for c in clips if len(c.frames) > 1]
    train = TrainConfig(
        photo_fraction=0.1 if split == "train" else 0.0,
        still_fraction=0.0,
        flip=0.0,
        colour_jitter=0.0,
    )
    return PairSampler(clips, gen_config, train), clips


def build(
    pack_path: Path,
    out: Path,
    counts: dict[str, int],
    weights: Path | None = None,
    max_frames: int = 80,
    seed: int = 0,
    batch: int = 8,
    progress=None,
    resume: bool = False,
) -> dict:
    """Render `counts[split]` pairs of each split into OUT/SPLIT/ and write OUT/meta.json;
    `resume` keeps the whole shards an interrupted run left (the residual statistic is
    then taken over the pairs rendered in this run only)."""
    from likeness.datasets.pack_reader import Pack
    from likeness.fsio import atomic_output
    from likeness.generator.model import DEFAULT_WEIGHTS, GeneratorModel
    from likeness.tensors import resize_square, to_uint8
    from likeness.ui import no_progress

    out = Path(out)
    model = GeneratorModel.from_pretrained(weights)
    pack = Pack.open(pack_path)
    renderer = model.networks.renderer
    size = model.config.output_size
    stats = {}
    sq_sum, n_px = 0.0, 0
    for split in SPLIT_NAMES:
        want = counts.get(split, 0)
        if want <= 0:
            continue
        sampler, clips = _sampler(pack, split, model.config, max_frames)
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        if not resume:
            for old in folder.glob("pairs-*.npz"):
                old.unlink()
        shard: dict[str, list] = {f.name: [] for f in dataclasses.fields(Pairs)}
        made, number = 0, 0
        with (progress or no_progress)(f"refiner pairs ({split})", want) as advance:
            while made < want:
                b = min(batch, want - made)
                step = made // batch
                # Pairs are drawn by (seed, step): a whole shard already on disk from an
                # interrupted run with the same arguments is the same shard.
                done = folder / f"pairs-{number:03d}.npz"
                if resume and done.is_file() and made + SHARD <= want:
                    made += SHARD
                    number += 1
                    advance(SHARD)
                    continue
                pb = sampler.batch(step, batch_size=b, seed=seed * 7919 + SPLIT_NAMES.index(split))
                with torch.inference_mode():
                    small = resize_square(pb.source, model.config.image_size)
                    image = renderer(small, pb.source, pb.kp_source, pb.kp_driving)["image"]
                render, target = to_uint8(image), to_uint8(pb.driving)
                valid = (pb.valid[:, 0].numpy() > 0.5).astype(np.uint8)
                if split == "train":
                    diff = (target.astype(np.float32) - render.astype(np.float32)) / 255.0
                    sq_sum += float((diff**2 * valid[..., None]).sum())
                    n_px += int(valid.sum()) * 3
                shard["render"].append(render)
                shard["target"].append(target)
                shard["valid"].append(valid)
                shard["kp"].append(pb.kp_driving.numpy().astype(np.float32))
                made += b
                advance(b)
                if sum(len(x) for x in shard["render"]) >= SHARD or made >= want:
                    path = folder / f"pairs-{number:03d}.npz"
                    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
                        np.savez(fh, **{k: np.concatenate(v) for k, v in shard.items()})
                    shard = {k: [] for k in shard}
                    number += 1
        stats[split] = {
            "pairs": made,
            "clips": len(clips),
            "identities": sorted({c.item.identity for c in clips}),
        }
    meta = {
        "generator": model.config.name,
        "generator_weights_sha256": model.weights_hash,
        "generator_weights": str(weights or DEFAULT_WEIGHTS),
        "pack": str(pack.root),
        "pack_split_sha256": pack.manifest.get("split", {}).get("sha256"),
        "size": size,
        "seed": seed,
        "max_frames_per_clip": max_frames,
        "residual_rms_train": (sq_sum / n_px) ** 0.5 if n_px else None,
        "splits": stats,
    }
    with atomic_output(out / META) as tmp:
        Path(tmp).write_text(json.dumps(meta, indent=1))
    return meta


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None, help="generator folder")
    for split, n in (("train", 2000), ("val", 128), ("test", 256)):
        parser.add_argument(f"--{split}", type=int, default=n, help=f"pairs (default {n})")
    parser.add_argument("--max-frames", type=int, default=80, help="frames read per clip")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="keep whole shards on disk")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from likeness.ui import progress_bar

    counts = {"train": args.train, "val": args.val, "test": args.test}
    meta = build(
        args.pack,
        args.out,
        counts,
        args.weights,
        args.max_frames,
        progress=progress_bar,
        resume=args.resume,
    )
    print(json.dumps({k: v for k, v in meta.items() if k != "splits"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
