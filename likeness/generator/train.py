"""Self-supervised training: reconstruct a driving frame from a source frame of the
same person, given both frames' keypoints.

    likeness train generator --pack PACK --out RUN [--resume] [--minutes N]

RUN holds `checkpoint.pt` (everything needed to continue exactly), `loss.csv`,
`samples/step_XXXXXXX.png` (source | driving | output | spline warp, on validation
pairs) and `weights/` (the exportable model: config.json + model.safetensors).
Imports only torch, numpy, OpenCV, timm and safetensors (the GPU machine has no PyAV).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from likeness import training
from likeness.errors import InputError
from likeness.generator import extractor_loss as EL
from likeness.generator import keypoints as kpt
from likeness.generator import losses as L
from likeness.generator.config import ExtractorAugment, GeneratorConfig, TrainConfig, preset
from likeness.generator.data import Batch, PairSampler, grid_image, load_clips
from likeness.generator.extractor_data import FrameBatch, FrameSampler
from likeness.generator.model import GeneratorNetworks, load_weights, save_weights
from likeness.generator.networks.discriminator import PatchDiscriminator
from likeness.tensors import resize_square, to_uint8
from likeness.training import RunState, open_run, run_chunk, save_checkpoint
from likeness.weights_io import WEIGHTS_NAME, model_files

CSV_FIELDS = (
    "step",
    "time_s",
    "total",
    "loss",
    "l1",
    "ssim",
    "psnr",
    "extractor",
    "kp_err",
    "retarget",
    "gan",
    "iris",
    "lr",
    "val_psnr",
    "val_ssim",
    "val_l1",
    "equivariance",
    "val_kp_px",
    "val_expr_px",
    "val_motion_px",
    "mouth_profile",
)


def _lr(train: TrainConfig, step: int, base: float) -> float:
    return training.warmup_cosine(step, base, train.warmup, train.steps, floor=0.1)


class Trainer:
    def __init__(
        self,
        pack_path: Path,
        out: Path,
        train: TrainConfig | None = None,
        *,
        overrides: dict | None = None,
        device: str = "cpu",
        resume: bool = False,
    ) -> None:
        """A new run from `train` (default TrainConfig) with `overrides`; or, with
        `resume`, the run in `out` with its own config and `overrides` on top.

        Args:
            pack_path: a pack from `likeness dataset pack`.
            out: the run folder (checkpoint.pt, loss.csv, samples/, weights/).
            train: the training config of a new run.
            overrides: config fields on top (--set), for new and resumed runs.
            device: a torch device string.
            resume: continue the run in `out` exactly where it stopped.

        Raises:
            InputError: a bad pack or config, `out` already holding a run (without
                `resume`), or no checkpoint to resume.
        """
        from likeness.datasets.pack_reader import Pack

        self.out = Path(out)
        self.device = torch.device(device)
        ckpt, train, config = open_run(
            self.out, resume, train, overrides, TrainConfig, GeneratorConfig, preset
        )
        if ckpt is None:
            config = _initial_config(train, config)
        self.train = train
        self.config = config
        self.extractor_only = train.mode == "extractor"
        if train.num_threads > 0:
            torch.set_num_threads(train.num_threads)
        torch.manual_seed(train.seed)
        self.pack = Pack.open(pack_path)
        if self.extractor_only:
            self._frame_samplers()
        else:
            self.clips = load_clips(self.pack, "train", self.config, train.max_frames_per_clip)
            self.sampler = PairSampler(self.clips, self.config, train)
            val_clips = self._val_clips()
            self.val = (
                PairSampler(
                    val_clips,
                    self.config,
                    dataclasses.replace(train, flip=0.0, colour_jitter=0.0),
                )
                if val_clips
                else None
            )
        self.nets = GeneratorNetworks(self.config).to(self.device)
        if ckpt is None and train.init:
            load_weights(self.nets, Path(train.init) / WEIGHTS_NAME)
        if self.extractor_only:
            for name, p in self.nets.named_parameters():
                p.requires_grad_(name.startswith("extractor."))
        self.disc = PatchDiscriminator().to(self.device) if train.losses.gan > 0 else None
        frozen = tuple(train.freeze)  # str.startswith(()) is False: nothing frozen
        params = dict(self.nets.named_parameters())
        for prefix in frozen:
            if not any(n.startswith(prefix) for n in params):
                raise InputError(f"freeze: no generator parameter starts with {prefix!r}")
        gen_params = []
        for name, p in params.items():
            if name.startswith(frozen):
                p.requires_grad_(False)
            elif not name.startswith("extractor."):
                gen_params.append(p)
        self.opt = torch.optim.AdamW(
            gen_params, lr=train.lr, weight_decay=train.weight_decay, betas=(0.5, 0.999)
        )
        self.opt_ext = torch.optim.AdamW(
            self.nets.extractor.parameters(), lr=train.extractor_lr, weight_decay=train.weight_decay
        )
        self.opt_d = (
            torch.optim.AdamW(self.disc.parameters(), lr=train.lr, betas=(0.5, 0.999))
            if self.disc is not None
            else None
        )
        self.state = RunState()
        if ckpt is not None:
            self._restore(ckpt)
        self.amp = self.device.type == "cuda"

    def _val_clips(self, size: int | None = None):
        try:
            return load_clips(self.pack, "val", self.config, 64, size=size)
        except InputError:
            return []

    def _frame_samplers(self) -> None:
        """Mode "extractor": frames at the extractor's input size, two views each."""
        tr, size = self.train, self.config.extractor_size
        self.clips = load_clips(self.pack, "train", self.config, tr.max_frames_per_clip, size=size)
        self.sampler = FrameSampler(
            self.clips, tr.batch_size, tr.seed, tr.photo_fraction, tr.flip, tr.augment
        )
        val_clips = self._val_clips(size)
        still = ExtractorAugment(**dict.fromkeys(ExtractorAugment.__dataclass_fields__, 0.0))
        self.val = (
            FrameSampler(val_clips, tr.batch_size, tr.seed, 0.0, 0.0, still) if val_clips else None
        )

    # ------------------------------------------------------------ checkpoints

    def _restore(self, ckpt: dict) -> None:
        self.nets.load_state_dict(ckpt["networks"])
        self.opt.load_state_dict(ckpt["opt"])
        self.opt_ext.load_state_dict(ckpt["opt_ext"])
        if self.disc is not None and "disc" in ckpt:
            self.disc.load_state_dict(ckpt["disc"])
            self.opt_d.load_state_dict(ckpt["opt_d"])
        self.state = RunState(**ckpt["state"])

    def save(self) -> None:
        ckpt = {
            "networks": self.nets.state_dict(),
            "opt": self.opt.state_dict(),
            "opt_ext": self.opt_ext.state_dict(),
            "state": dataclasses.asdict(self.state),
            "train": dataclasses.asdict(self.train),
            "config": dataclasses.asdict(self.config),
            "pack": {"root": str(self.pack.root), "items": [c.item.id for c in self.clips]},
        }
        if self.disc is not None:
            ckpt["disc"] = self.disc.state_dict()
            ckpt["opt_d"] = self.opt_d.state_dict()
        save_checkpoint(self.out, ckpt)
        save_weights(self.nets, self.out / "weights")

    # ------------------------------------------------------------ steps

    def _losses(self, batch: Batch, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        c, tr, w = self.config, self.train, self.train.losses
        nets = self.nets
        small = resize_square(batch.source, c.image_size)
        out = nets.renderer(small, batch.source, batch.kp_source, batch.kp_driving)
        pred = out["image"].float()
        # Where the driving frame's window reaches past its own crop there are no real
        # pixels: the target takes the prediction's value there, so they cost nothing.
        target = batch.valid * batch.driving + (1 - batch.valid) * pred.detach()
        l1 = (pred - target).abs().mean()
        pyr = L.pyramid_l1(pred, target)
        ss = L.ssim(resize_square(pred, c.image_size), resize_square(target, c.image_size)).mean()
        region = L.region_mask(batch.kp_driving, pred.shape[-1])
        reg_l1 = ((pred - target).abs() * region).sum() / (region.sum() * 3 + 1.0)
        # The decoder alone must also reconstruct, or it learns to lean on the blend.
        dec_l1 = (out["decoded"].float() - resize_square(target, c.image_size)).abs().mean()
        loss = w.l1 * (l1 + 0.5 * dec_l1) + w.pyramid * pyr + w.ssim * (1 - ss) + w.regions * reg_l1
        iris = pred.new_zeros(())
        if w.mouth > 0:
            mouth = L.mouth_mask(batch.kp_driving, pred.shape[-1]) * batch.valid
            loss = loss + w.mouth * ((pred - target).abs() * mouth).sum() / (mouth.sum() * 3 + 1.0)
        if w.iris > 0:
            iris = L.iris_loss(pred, target, batch.kp_driving)
            loss = loss + w.iris * iris
        # Read every step (a 16 x 12 sample of the mouth: cheap) so a run without it logs
        # what it would have been; its gradient only where it counts.
        with torch.set_grad_enabled(w.mouth_profile > 0):
            profile = L.mouth_profile_loss(pred, target, batch.kp_driving)
        if w.mouth_profile > 0:
            loss = loss + w.mouth_profile * profile
        gan = pred.new_zeros(())
        if self.disc is not None and step >= tr.gan_start:
            real_f, fake_f = self.disc(target), self.disc(pred)
            adv, fm = L.generator_gan_losses(real_f, fake_f)
            gan = adv
            loss = loss + w.gan * adv + w.feature_matching * fm
        # Retargeting MLPs: predict the expression offsets that took source to driving.
        ret = pred.new_zeros(())
        for net, delta, ctl in (
            (nets.eyes, batch.eye_delta, batch.eyes),
            (nets.lips, batch.lip_delta, batch.lips),
        ):
            guess = net(batch.kp_source, ctl[:, 0], ctl[:, 1])
            err = ((guess - delta) * net.mask).abs().sum()
            ret = ret + err / (net.mask.sum() * 3 * len(delta))
        loss = loss + tr.retarget_weight * ret
        metrics = {
            "l1": l1.item(),
            "ssim": ss.item(),
            "psnr": L.psnr(pred.detach(), target).mean().item(),
            "retarget": ret.item(),
            "gan": gan.item(),
            "iris": iris.item(),
            "mouth_profile": profile.item(),
        }
        return loss, metrics, pred

    def _extractor_loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        ext = self.nets.extractor(resize_square(batch.driving, c.extractor_size))
        loss, parts = EL.distillation(
            ext, batch.kp_driving, batch.angles_driving, batch.canonical_driving, c.pose_bins
        )
        return loss, {"extractor": loss.item(), "kp_err": parts["kp_l1"].item()}

    def _extractor_only_loss(self, batch: FrameBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """Mode "extractor": distillation on both views plus their equivariance."""
        tr, c = self.train, self.config
        out = self.nets.extractor(batch.images)
        loss, parts = EL.distillation(
            out, batch.keypoints, batch.angles, batch.canonical, c.pose_bins, tr.expression_weight
        )
        b = batch.a_to_b.shape[0]
        kp = out["keypoints"]
        eq = EL.equivariance(kp[:b], kp[b:], batch.a_to_b, batch.depth_scale)
        loss = loss + tr.equivariance * eq
        return loss, {
            "extractor": loss.item(),
            "kp_err": parts["kp_l1"].item(),
            "equivariance": eq.item(),
        }

    def _extractor_step(self) -> dict[str, float]:
        tr, step = self.train, self.state.step
        torch.manual_seed(tr.seed * 1_000_003 + step)
        batch = self.sampler.batch(step).to(self.device)
        lr = _lr(tr, step, tr.extractor_lr)
        for group in self.opt_ext.param_groups:
            group["lr"] = lr
        self.nets.extractor.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, metrics = self._extractor_only_loss(batch)
        self.opt_ext.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.nets.extractor.parameters(), 1.0)
        self.opt_ext.step()
        self.state.step += 1
        return {**metrics, "total": metrics["extractor"], "lr": lr}

    def step(self) -> dict[str, float]:
        if self.extractor_only:
            return self._extractor_step()
        tr = self.train
        step = self.state.step
        torch.manual_seed(tr.seed * 1_000_003 + step)
        batch = self.sampler.batch(step).to(self.device)
        lr = _lr(tr, step, tr.lr)
        for group in self.opt.param_groups:
            group["lr"] = lr
        for group in self.opt_ext.param_groups:
            group["lr"] = _lr(tr, step, tr.extractor_lr)
        self.nets.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            loss, metrics, pred = self._losses(batch, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.opt.param_groups[0]["params"], 1.0)
        self.opt.step()
        if self.disc is not None and step >= tr.gan_start:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                d_loss = L.hinge_d_loss(self.disc(batch.driving), self.disc(pred.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
        if tr.extractor_weight > 0:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                e_loss, e_metrics = self._extractor_loss(batch)
            self.opt_ext.zero_grad(set_to_none=True)
            (tr.extractor_weight * e_loss).backward()
            self.opt_ext.step()
            metrics.update(e_metrics)
        metrics.update(loss=loss.item(), lr=lr)
        metrics["total"] = metrics["loss"] + tr.extractor_weight * metrics.get("extractor", 0.0)
        self.state.step += 1
        return metrics

    @torch.no_grad()
    def evaluate(self, batch: Batch) -> dict[str, float]:
        """The training objectives on `batch`, without training: the renderer's
        reconstruction loss, the extractor's loss, and their weighted total."""
        self.nets.eval()
        batch = batch.to(self.device)
        if self.extractor_only:
            ext, _ = self._extractor_only_loss(batch)
            return {"renderer": 0.0, "extractor": ext.item(), "total": ext.item()}
        loss, _, _ = self._losses(batch, self.state.step)
        ext, _ = self._extractor_loss(batch)
        total = loss.item() + self.train.extractor_weight * ext.item()
        return {"renderer": loss.item(), "extractor": ext.item(), "total": total}

    @torch.no_grad()
    def validate(self, pairs: int = 16) -> dict[str, float]:
        if self.val is None:
            return {}
        self.nets.eval()
        if self.extractor_only:
            return self._validate_extractor()
        batch = self.val.batch(0, batch_size=pairs, seed=12345).to(self.device)
        c = self.config
        out = self.nets.renderer(
            resize_square(batch.source, c.image_size),
            batch.source,
            batch.kp_source,
            batch.kp_driving,
        )
        pred = out["image"].float()
        target = batch.valid * batch.driving + (1 - batch.valid) * pred
        self._last_val = (batch, out)
        return {
            "val_psnr": L.psnr(pred, target).mean().item(),
            "val_ssim": L.ssim(pred, target).mean().item(),
            "val_l1": (pred - target).abs().mean().item(),
        }

    def _validate_extractor(self, frames: int = 64) -> dict[str, float]:
        """Keypoint distance to the mesh on fixed val frames (unaugmented), in pixels of
        a 256 px crop: all rows, and the lids, lips and irises alone."""
        batch = self.val.batch(0, batch_size=frames // 2, seed=12345).to(self.device)
        got = self.nets.extractor(batch.images)["keypoints"].float()
        dist = (got[..., :2] - batch.keypoints[..., :2]).norm(dim=-1) * 128  # 256 px units
        return {
            "val_kp_px": dist.mean().item(),
            "val_expr_px": dist[:, list(EL.EXPRESSION_ROWS)].mean().item(),
            "val_motion_px": self._val_motion(),
        }

    def _val_motion(self, clips: int = 6, frames: int = 16) -> float:
        """What relative motion uses: each val clip's change since its first frame,
        extractor against mesh (2D, pixels of 256), over evenly spaced frames; an
        offset the extractor keeps on every frame of a clip costs nothing here."""
        errors = []
        for clip in self.val.videos[:clips]:
            pick = np.linspace(0, len(clip.frames) - 1, frames).round().astype(int)
            images = torch.from_numpy(clip.frames[pick].transpose(0, 3, 1, 2).copy())
            got = self.nets.extractor(images.float().div(255).to(self.device))["keypoints"]
            got = got.float().cpu().numpy()[..., :2]
            want = clip.keypoints[pick][..., :2]
            diff = (got - got[:1]) - (want - want[:1])
            errors.append(np.linalg.norm(diff[1:], axis=-1).mean() * 128)
        return float(np.mean(errors)) if errors else float("nan")

    @torch.no_grad()
    def sample_grid(self, rows: int = 4) -> Path:
        """source | driving | output | spline-warped source, on validation pairs (or
        fixed training pairs when the pack has no validation split)."""
        if self.extractor_only:
            return self._extractor_grid(rows)
        if self.val is not None and hasattr(self, "_last_val"):
            batch, out = self._last_val
        else:
            self.nets.eval()
            batch = self.sampler.batch(0, batch_size=rows, seed=12345).to(self.device)
            small = resize_square(batch.source, self.config.image_size)
            out = self.nets.renderer(small, batch.source, batch.kp_source, batch.kp_driving)
        n = min(rows, batch.source.shape[0])
        cols = [to_uint8(t[:n]) for t in (batch.source, batch.driving, out["image"], out["warped"])]
        grid = grid_image([[col[i] for col in cols] for i in range(n)])
        path = self.out / "samples" / f"step_{self.state.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        import cv2

        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        return path

    def _extractor_grid(self, rows: int) -> Path:
        """Frames with the mesh's keypoints (green) and the extractor's (red)."""
        import cv2

        sampler = self.val or self.sampler
        batch = sampler.batch(0, batch_size=rows, seed=12345).to(self.device)
        self.nets.eval()
        got = self.nets.extractor(batch.images)["keypoints"].float().cpu().numpy()
        images = to_uint8(batch.images[:rows])
        size = images.shape[1]
        tiles = []
        for img, want, pred in zip(images, batch.keypoints[:rows].cpu().numpy(), got, strict=False):
            tile = np.ascontiguousarray(img)
            for pts, colour in ((want, (0, 255, 0)), (pred, (255, 0, 0))):
                for x, y, _ in kpt.to_pixels(pts, size):
                    cv2.circle(tile, (int(round(x)), int(round(y))), 1, colour, -1)
            tiles.append(tile)
        path = self.out / "samples" / f"step_{self.state.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid_image([tiles]), cv2.COLOR_RGB2BGR))
        return path

    def checkpoint(self, final: bool = False) -> dict[str, float]:
        metrics = self.validate()
        self.save()
        if final or self.state.step % self.train.sample_every == 0:
            self.sample_grid()
        return metrics

    def run(
        self, minutes: float | None = None, steps: int | None = None, progress=None
    ) -> RunState:
        """Train until `train.steps`, `steps` more steps, or `minutes` pass; checkpoint
        at every `checkpoint_every` and at the end (also on SIGTERM/SIGINT).

        Args:
            minutes: stop after this much wall time.
            steps: stop after this many more steps.
            progress: a `likeness.ui.Progress` over the run's steps.

        Returns:
            the `RunState` reached (step, training seconds).
        """
        return run_chunk(self, CSV_FIELDS, minutes=minutes, steps=steps, progress=progress)


def _initial_config(train: TrainConfig, config: GeneratorConfig) -> GeneratorConfig:
    """A new run's model config: the preset's, or that of the `init` weights folder;
    then `extractor_size` if set."""
    if train.init:
        path, _ = model_files(
            Path(train.init),
            "--set init: not a generator weights folder",
            "name a weights folder (a run's weights/ or likeness/weights/generator)",
            error=InputError,
        )
        config = GeneratorConfig.load(path)
    if train.extractor_size:
        config = dataclasses.replace(config, extractor_size=train.extractor_size)
    return config


def config_overrides(
    path: Path | None, preset_name: str | None = None, overrides: dict | None = None
) -> dict:
    """Training config fields from a JSON file, --preset and --set, later ones winning."""
    return training.config_overrides(path, preset_name, overrides, preset)


def describe(config: GeneratorConfig) -> dict[str, int]:
    nets = GeneratorNetworks(config)
    return {name: sum(p.numel() for p in m.parameters()) for name, m in nets.named_children()}
