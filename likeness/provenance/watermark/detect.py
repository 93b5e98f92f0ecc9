"""Blind detection: average a high-pass luma residual over frames, find the tile period
from its autocorrelation, fold the residual onto one tile, find the cyclic offset with
the sync pattern, read soft bits, Viterbi-decode, check the CRC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

import cv2
import numpy as np

from likeness.provenance.watermark.config import WatermarkConfig
from likeness.provenance.watermark.embed import residual
from likeness.provenance.watermark.pattern import (
    PatternBank,
    legacy_periods_for,
    pattern_bank,
    period_for,
    small_period,
)
from likeness.provenance.watermark.payload import (
    Payload,
    check_message,
    conv_encode,
    known_key_bits,
    viterbi_decode,
)
from likeness.provenance.watermark.stats import sync_p_value, with_check_bits, with_key_id

NOISE_WINDOW = 11  # frequency window (coefficients) for the local noise estimate
REFINE_SPAN = 0.004  # first relative scale step around the best candidate (0.5 px at 120)
REFINE_ANGLE = 0.16  # first angle step, degrees
REFINE_ROUNDS = 4  # each round halves both steps
REFINE_GAIN = 0.1  # z a refinement step must add to be taken
GAIN_BINS = 4  # radius bins of the channel-gain estimate
CLIP_SIGMA = 4.0  # cap on one whitened coefficient's magnitude in the sync (see _robust)
FEW_TILES = 4.5  # tiles across the short side below which lattices get a scale sweep
SWEEP_LATTICES = 2  # how many of the autocorrelation's lattices get it
SWEEP_SCALES = (0.988, 0.992, 0.996, 1.004, 1.008, 1.012)
RADIAL_ANGLES = 2  # angles read from the polar map along which periods are searched
RADIAL_ANGLE_STEPS = (-0.4, 0.0, 0.4)  # degrees around each (the angle is read to ~0.3)
RADIAL_PERIODS = 3  # periods taken along each
RADIAL_MAX_SIDE = 3.0  # only in frames up to this many minimum tiles on the short side
# Frames of small_side and under that still hold 1.5 small-frame tiles (192-256 px: a
# small frame as marked, or cropped) also try that tile at every whole degree of
# +-max_rotation: with two tiles a side the picture's own structure can outrank the
# lattice's peak in the autocorrelation, and then no candidate angle is right
# (st2-spata, 256 px, rotation 2 + CRF 28: read at 0.58 degrees, z 5.2, lost; with the
# sweep at -2.0, z 11.0, found). Measured on the bench's five 256 px clips x 3 other
# keys: rotation 2 + CRF 28 12 -> 15 of 15, crop 10 % + rotation 2 + CRF 28 6 -> 11,
# CRF 33/35, rotations 5 and 10 (+ CRF 28) and crop 10 % + rotation 5 as before. The
# sweep doubles such a frame's hypotheses (p_false counts them), which is why smaller
# frames do not get it: swept there too, quarter scale lost 2 of 13. Turns between the
# sweep's degrees are found too (the refinement takes them the rest of the way): -1.5
# degrees + CRF 28, five 256 px clips x 2 keys, 6 -> 10 of 10 (2.5 and 3.5 degrees: 10
# either way). Half-degree steps found nothing more.
SWEEP_ANGLE_STEP = 1.0
SWEEP_MIN_TILES = 1.5


@dataclass
class WatermarkResult:
    found: bool
    payload: Payload | None
    confidence: float
    p_false: float
    frames_used: int
    bit_errors_corrected: int | None
    p_sync: float = 1.0
    sync_z: float = 0.0
    crc_ok: bool = False
    period: tuple[float, float] | None = None  # estimated tile period (y, x) in pixels
    offset: tuple[float, float] | None = None  # cyclic offset (y, x) in tile samples
    rotation: float | None = None  # degrees of the tile's x axis in the picture (y down)
    hypotheses: int = 0
    mirrored: bool = False  # found in the horizontally mirrored picture
    # Pattern band read: 2 = 5..22 cycles per tile (frames over 256 px; all frames from
    # 2026-12-01 to that evening), 1 = 6..24 (files before 2026-12, and 226-256 px
    # frames since the small-frame tiling: see WatermarkConfig.small_side).
    version: int | None = None
    soft_bits: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("soft_bits")
        data["payload"] = (
            None
            if self.payload is None
            else {
                "hex": self.payload.hex(),
                "content_id": self.payload.content_id,
                "key_id": self.payload.key_id,
            }
        )
        return data


class ResidualAccumulator:
    """Running sum of per-frame residuals: constant memory whatever the clip length."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        r = residual(rgb)
        if self.total is None:
            self.total = r.copy()
        elif self.total.shape != r.shape:
            raise ValueError("all frames must have the same size")
        else:
            self.total += r
        self.frames += 1

    def mean(self) -> np.ndarray:
        if self.total is None:
            raise ValueError("no frames")
        return (self.total / self.frames).astype(np.float32)


def _peaks(score: np.ndarray, first_lag: int, count: int) -> list[float]:
    """Sub-pixel positions of the strongest local maxima of a detrended 1-D score."""
    # Running median (15 lags) as the trend: the watermark peak is 2-3 lags wide.
    padded = np.pad(score, 7, mode="edge")
    trend = np.median(np.lib.stride_tricks.sliding_window_view(padded, 15), axis=1)
    detrended = score - trend
    found: list[tuple[float, float]] = []
    for i in range(1, len(detrended) - 1):
        a, b, c = detrended[i - 1], detrended[i], detrended[i + 1]
        if b > a and b >= c:
            denom = a - 2 * b + c
            shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
            found.append((b, first_lag + i + shift))
    found.sort(reverse=True)
    return [lag for _, lag in found[:count]]


def period_candidates(
    res: np.ndarray, config: WatermarkConfig, auto: np.ndarray | None = None
) -> list[tuple[float, float]]:
    """Candidate (period_y, period_x) from the spectrally whitened autocorrelation.

    A periodic tile puts lines on a lattice in the spectrum; whitening (power divided by
    its local average) keeps those lines and flattens the picture's smooth spectrum, so
    the autocorrelation shows sharp peaks at the period along both axes.

    The embedder's own period for a frame of this size comes first: an unscaled video
    has exactly that period, and in a small frame (2-3 tiles) the picture's
    autocorrelation can outrank it after compression."""
    h, w = res.shape
    nominal = float(period_for(h, w, config))
    # Earlier embedders' periods for this size come next (files marked before).
    known = [(nominal, nominal), *((float(p), float(p)) for p in legacy_periods_for(h, w, config))]
    if auto is None:
        auto = _autocorrelation(res)
    cy, cx = auto.shape[0] // 2, auto.shape[1] // 2
    lo = int(config.min_search_period)
    hi_x = int(w * config.max_period_fraction)
    hi_y = int(h * config.max_period_fraction)
    if hi_x <= lo + 4 or hi_y <= lo + 4:
        return known
    row = auto[cy, cx + lo : cx + hi_x].astype(np.float64)
    col = auto[cy + lo : cy + hi_y, cx].astype(np.float64)
    k = config.period_candidates
    px, py = _peaks(row, lo, k), _peaks(col, lo, k)
    common = min(len(row), len(col))
    both = _peaks(row[:common] + col[:common], lo, k)
    cands = [*known, *((p, p) for p in both)]
    if px and py:
        cands.append((py[0], px[0]))
    unique: list[tuple[float, float]] = []
    for c in cands:
        if all(abs(c[0] - u[0]) > 0.5 or abs(c[1] - u[1]) > 0.5 for u in unique):
            unique.append(c)
    return unique


def basis(period: float | tuple[float, float], angle_deg: float = 0.0) -> np.ndarray:
    """Lattice basis (columns: the tile's x and y axes, in image pixels) of a tile of
    `period` (py, px) rotated by `angle_deg` (image y points down)."""
    py, px = (period, period) if np.isscalar(period) else period
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[px * c, -py * s], [px * s, py * c]])


def _autocorrelation(res: np.ndarray) -> np.ndarray:
    """Spectrally whitened autocorrelation of the residual, zero lag in the centre."""
    h, w = res.shape
    padded = np.zeros((2 * h, 2 * w), np.float32)
    padded[:h, :w] = res - res.mean()
    power = np.abs(np.fft.rfft2(padded)) ** 2
    smooth = cv2.blur(power.astype(np.float32), (9, 9)) + 1e-9
    auto = np.fft.irfft2(power / smooth, s=padded.shape).astype(np.float32)
    return np.fft.fftshift(auto)


def lattice_candidates(
    res: np.ndarray, config: WatermarkConfig, count: int = 3, auto: np.ndarray | None = None
) -> list[np.ndarray]:
    """Lattice bases (see `basis`) of the repeated tile, rotated and scaled, read from
    the residual's whitened autocorrelation.

    The tile repeats along two perpendicular vectors, so the autocorrelation peaks at
    lag v and at v turned by 90 degrees; summing the two in polar coordinates (radius =
    period, angle = rotation within +-max_rotation) gives one sharp peak per lattice.
    The strongest few come back, each with sub-sample refinement."""
    h, w = res.shape
    lo = float(config.min_search_period)
    hi = float(min(h, w) * config.max_period_fraction)
    if hi <= lo + 4:
        return []
    step = np.rad2deg(0.5 / hi)
    angles = np.arange(-config.max_rotation, config.max_rotation + step / 2, step)
    score = _polar_lattice_score(res, auto, angles, lo, hi)
    # Detrend: the picture's own correlation varies slowly with radius and angle.
    trend = cv2.blur(score, (31, 31), borderType=cv2.BORDER_REFLECT)
    detr = score - trend
    peaks = (detr == cv2.dilate(detr, np.ones((7, 7), np.uint8))) & (detr > 0)
    ai, ri = np.nonzero(peaks)
    order = np.argsort(detr[ai, ri])[::-1][:count]
    out = []
    for i, j in zip(ai[order], ri[order], strict=True):
        di = _parabola(detr, i, j, axis=0)
        dj = _parabola(detr, i, j, axis=1)
        period = float(lo + 0.5 * (j + dj))
        angle = float(angles[0] + step * (i + di))
        out.append(basis(period, angle))
    return out


def radial_candidates(
    res: np.ndarray,
    config: WatermarkConfig,
    angles: list[float],
    per_angle: int,
    auto: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Lattices at each of `angles` with the `per_angle` strongest periods along it.

    With under two tiles across a rescaled, rotated frame the lattice's own peak ranks
    below the picture's structure in the full polar map, but the angle is still read
    well, and along that angle the period is the strongest peak (measured: a 256 px
    clip at rotation 5 + scale 0.7 + CRF 23, 101 px tile in a 178 px frame: first along
    the angle, not in the map's top 8)."""
    h, w = res.shape
    lo = float(config.min_search_period)
    hi = float(min(h, w) * config.max_period_fraction)
    if hi <= lo + 4 or not angles:
        return []
    score = _polar_lattice_score(res, auto, np.asarray(angles), lo, hi)
    out = []
    for row, angle in zip(score, angles, strict=True):
        for period in _peaks(row.astype(np.float64), 0, per_angle):
            out.append(basis(float(lo + 0.5 * period), angle))
    return out


def _polar_lattice_score(
    res: np.ndarray, auto: np.ndarray | None, angles: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """The autocorrelation at lag (radius, angle) plus at the same lag turned by 90
    degrees, for every angle (rows) and radius lo..hi in half samples (columns): a
    square lattice of that period and rotation peaks there."""
    if auto is None:
        auto = _autocorrelation(res)
    cy, cx = auto.shape[0] // 2, auto.shape[1] // 2
    radii = np.arange(lo, hi, 0.5, dtype=np.float32)[None, :]
    a = np.deg2rad(np.asarray(angles, np.float64)).astype(np.float32)[:, None]
    score = np.zeros((a.shape[0], radii.shape[1]), np.float32)
    for turn in (0.0, np.pi / 2):
        map_x = (cx + radii * np.cos(a + turn)).astype(np.float32)
        map_y = (cy + radii * np.sin(a + turn)).astype(np.float32)
        score += cv2.remap(auto, map_x, map_y, cv2.INTER_LINEAR)
    return score


def _parabola(a: np.ndarray, i: int, j: int, axis: int) -> float:
    """Sub-sample offset of a 2-D maximum along one axis (0 at the border)."""
    n = a.shape[axis]
    k = i if axis == 0 else j
    if k == 0 or k == n - 1:
        return 0.0
    if axis == 0:
        x0, x1, x2 = a[i - 1, j], a[i, j], a[i + 1, j]
    else:
        x0, x1, x2 = a[i, j - 1], a[i, j], a[i, j + 1]
    denom = x0 - 2 * x1 + x2
    return float(0.5 * (x0 - x2) / denom) if denom < 0 else 0.0


def fold_affine(
    res: np.ndarray, lattice: np.ndarray, grid: int, cache: dict | None = None
) -> np.ndarray:
    """Resample so that the lattice `basis` maps onto a grid x grid tile, then sum
    every tile onto one. Parts of the canvas outside the picture add zeros."""
    h, w = res.shape
    # Image point p = B @ (u, v) / grid, so (u, v) = grid * B^-1 @ p.
    to_grid = grid * np.linalg.inv(lattice)
    shrink = float(np.sqrt(abs(np.linalg.det(to_grid))))
    src = res
    if shrink < 0.75:
        # Area-average first so that warping does not alias noise into the band.
        # Factors in steps of 1/16, rounded up (never below 1.25 x shrink): the tries
        # of one search share a few area-averaged copies.
        f = min(1.0, np.ceil(shrink * 1.25 * 16) / 16)
        if cache is not None and f in cache:
            src = cache[f]
        else:
            src = cv2.resize(res, (max(1, round(w * f)), max(1, round(h * f))),
                             interpolation=cv2.INTER_AREA)  # fmt: skip
            if cache is not None:
                cache[f] = src
        to_grid = to_grid @ np.diag([w / src.shape[1], h / src.shape[0]])
        h, w = src.shape
    corners = to_grid @ np.array([[0, w, 0, w], [0, 0, h, h]], dtype=np.float64)
    lo = np.floor(corners.min(axis=1))
    size = np.ceil(corners.max(axis=1) - lo).astype(int) + 1
    out_w, out_h = -(-size[0] // grid) * grid, -(-size[1] // grid) * grid
    m = np.hstack([to_grid, -lo[:, None]]).astype(np.float64)
    canvas = cv2.warpAffine(src, m, (int(out_w), int(out_h)), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)  # fmt: skip
    tile = canvas.reshape(out_h // grid, grid, out_w // grid, grid).sum(axis=(0, 2))
    # The canvas started at -lo in tile samples: undo it, so the offset found is the
    # picture origin's position in the tile (as with `fold`).
    return np.roll(tile, (int(lo[1]) % grid, int(lo[0]) % grid), axis=(0, 1))


def fold(res: np.ndarray, period: tuple[float, float], grid: int) -> np.ndarray:
    """Resample so one period is `grid` samples, then sum all tiles onto one."""
    h, w = res.shape
    new_w = max(1, round(w * grid / period[1]))
    new_h = max(1, round(h * grid / period[0]))
    shrink = new_w < w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    scaled = cv2.resize(res, (new_w, new_h), interpolation=interp)
    ph, pw = -(-new_h // grid) * grid, -(-new_w // grid) * grid
    canvas = np.zeros((ph, pw), np.float32)
    canvas[:new_h, :new_w] = scaled
    return canvas.reshape(ph // grid, grid, pw // grid, grid).sum(axis=(0, 2))


def _whitened(folded: np.ndarray, bank: PatternBank) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectrum of the fold divided by its local noise power (a matched filter for
    coloured noise), and those values at the bank's coefficients."""
    white, noise = _whiten(folded)
    rows, cols = bank.ky % bank.grid, bank.kx
    return white, white[rows, cols], noise[rows, cols]


def _whiten(folded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum of the fold divided by its local noise power, and that noise power
    (the same for every pattern version: they share the grid and the probes).

    Noise power at each frequency is the mean |F|^2 of the unused probe coefficients
    (odd ky + kx) in a window around it: the same noise, none of the watermark."""
    g = folded.shape[0]
    spec = np.fft.rfft2(folded)
    ky = np.fft.fftfreq(g, 1 / g).astype(np.int64)[:, None]
    kx = np.arange(g // 2 + 1)[None, :]
    probe = ((ky + kx) % 2 == 1).astype(np.float64)
    power = (np.abs(spec) ** 2) * probe
    half = NOISE_WINDOW // 2
    # ky wraps around (rows are cyclic); kx does not, so it is padded by reflection.
    padded_p = np.pad(
        np.pad(power, ((half, half), (0, 0)), mode="wrap"), ((0, 0), (half, half)), mode="reflect"
    )
    padded_n = np.pad(
        np.pad(probe, ((half, half), (0, 0)), mode="wrap"), ((0, 0), (half, half)), mode="reflect"
    )
    box = (NOISE_WINDOW, NOISE_WINDOW)
    total = cv2.blur(padded_p, box, borderType=cv2.BORDER_CONSTANT)[half:-half, half:-half]
    count = cv2.blur(padded_n, box, borderType=cv2.BORDER_CONSTANT)[half:-half, half:-half]
    noise = np.maximum(total / np.maximum(count, 1e-9), 1e-12)
    return spec / noise, noise


def _robust(white: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The whitened spectrum with each coefficient's magnitude capped at CLIP_SIGMA
    (|F| / sigma; P(above) = exp(-16) on noise, so the null distribution is kept), for
    the sync statistic only, so that no single coefficient can carry it. Measured: a
    256 px clip upscaled 1.5x has an interpolation grid every 3 px; a lattice of (48, 9)
    px vectors puts it on one coefficient at 55 sigma, and the free offset aligns its
    phase: z 13.6 (21.6 before the structure scale) for any key, no CRC (p_false 7e-36,
    a CRC pass the only guard left). Soft bits keep the uncapped values, as before
    (capping them too changed no bench row; nor did the cap change rotation 2 + CRF 28
    on the five 256 px clips, 60 frames: 3 of 5 with and without it)."""
    magnitude = np.abs(white) * np.sqrt(noise)
    return white * np.minimum(1.0, CLIP_SIGMA / np.maximum(magnitude, 1e-12))


def _sync_surface(white: np.ndarray, noise: np.ndarray, bank: PatternBank) -> np.ndarray:
    """z for every cyclic offset: sum_k Re(F_k conj(S_k) e^{i k.o}) / sigma_k^2, divided
    by its standard deviation under no watermark, sqrt(sum_k 1 / (2 sigma_k^2))."""
    g = bank.grid
    template = np.zeros_like(white)
    template[bank.ky[bank.sync_coef] % g, bank.kx[bank.sync_coef]] = bank.sync_phase
    # irfft2 returns (2 / g^2) * sum over the half plane of Re(...).
    surface = np.fft.irfft2(white * np.conj(template), s=(g, g)) * (g * g / 2)
    return surface / np.sqrt(np.sum(0.5 / noise[bank.sync_coef]))


def _peak(surface: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Highest value of a z surface and its sub-sample cyclic position."""
    g = surface.shape[0]
    iy, ix = np.unravel_index(int(np.argmax(surface)), surface.shape)
    z = float(surface[iy, ix])

    def refine(a: float, b: float, c: float) -> float:
        denom = a - 2 * b + c
        return 0.5 * (a - c) / denom if denom < 0 else 0.0

    dy = refine(surface[(iy - 1) % g, ix], surface[iy, ix], surface[(iy + 1) % g, ix])
    dx = refine(surface[iy, (ix - 1) % g], surface[iy, ix], surface[iy, (ix + 1) % g])
    return z, (iy + dy, ix + dx)


def _structure_scale(
    coefs: np.ndarray, noise: np.ndarray, offset: tuple[float, float], bank: PatternBank
) -> float:
    """How much larger than pure noise the sync coefficients' quadrature parts are.

    At the right offset our sync sits in the in-phase (real) parts and the quadrature
    parts hold only noise, so this is ~1. Periodic structure that is not ours (another
    key's watermark, a repeating texture) puts energy into those coefficients with
    unrelated phases: quadrature parts grow as much as in-phase ones, and dividing z by
    this scale keeps such inputs at z ~ N(0, 1) levels instead of flagging them."""
    g = bank.grid
    idx = bank.sync_coef
    phase = np.exp(2j * np.pi * (bank.ky[idx] * offset[0] + bank.kx[idx] * offset[1]) / g)
    # coefs are F / sigma^2; times sigma gives unit-variance values under no watermark.
    u = coefs[idx] * np.sqrt(noise[idx]) * phase * np.conj(bank.sync_phase)
    weight = 1.0 / noise[idx]
    return float(np.sqrt(2 * np.sum(weight * u.imag**2) / np.sum(weight)))


def _channel_gain(
    coefs: np.ndarray, noise: np.ndarray, offset: tuple[float, float], bank: PatternBank
) -> np.ndarray:
    """Per-coefficient gain of the channel, read from the sync (known symbols).

    Compression and scaling remove high frequencies first, so the surviving watermark
    amplitude falls with radius; weighting soft bits by it (amplitude / noise power is
    the matched filter) stops dead coefficients from adding only noise. Fitted over a
    few radius bins, so it is smooth, and never below a small floor."""
    g = bank.grid
    idx = bank.sync_coef
    radius = np.hypot(bank.ky, bank.kx)
    phase = np.exp(2j * np.pi * (bank.ky[idx] * offset[0] + bank.kx[idx] * offset[1]) / g)
    # coefs = F / sigma^2, so coefs * sigma^2 = F; sync amplitude is sqrt(2) at embedding.
    amp = (coefs[idx] * noise[idx] * phase * np.conj(bank.sync_phase)).real
    edges = np.linspace(radius.min(), radius.max() + 1e-9, GAIN_BINS + 1)
    which = np.clip(np.digitize(radius[idx], edges) - 1, 0, GAIN_BINS - 1)
    per_bin = np.array(
        [amp[which == b].mean() if np.any(which == b) else 0.0 for b in range(GAIN_BINS)]
    )
    per_bin = np.maximum(per_bin, 0.05 * max(float(per_bin.max()), 1e-12))
    centres = (edges[:-1] + edges[1:]) / 2
    return np.interp(radius, centres, per_bin)


def _soft_bits(
    coefs: np.ndarray, offset: tuple[float, float], bank: PatternBank, gain: np.ndarray
) -> np.ndarray:
    g = bank.grid
    phase = np.exp(2j * np.pi * (bank.ky * offset[0] + bank.kx * offset[1]) / g)
    aligned = coefs * phase * gain
    parts = np.where(bank.dof_imag, aligned[bank.dof_coef].imag, aligned[bank.dof_coef].real)
    soft = np.zeros(int(bank.dof_bit.max()) + 1)
    np.add.at(soft, bank.dof_bit, parts * bank.dof_sign)
    return soft


def _angle(lattice: np.ndarray) -> float:
    return float(np.rad2deg(np.arctan2(lattice[1, 0], lattice[0, 0])))


def _similar(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.max(np.abs(a - b)) < 0.6)


_MIRROR = np.diag([1.0, -1.0])


def banks(key: bytes, config: WatermarkConfig) -> list[tuple[int, PatternBank]]:
    """(version, pattern) for every pattern the detector reads: the current one first,
    then those of `config.legacy_bands` (older versions, newest first)."""
    versions = [(2, config)]
    for i, (low, high) in enumerate(config.legacy_bands):
        versions.append((1 - i, replace(config, band_low=low, band_high=high, legacy_bands=())))
    return [(v, pattern_bank(bytes(key), c)) for v, c in versions]


def detect_residual(
    res: np.ndarray,
    frames: int,
    *,
    key: bytes,
    key_id: int | None = None,
    config: WatermarkConfig = WatermarkConfig(),
) -> WatermarkResult:
    """Detection on an averaged residual (see `ResidualAccumulator`).

    `key_id`: the id this key marks (`keys.watermark_key().key_id`), or None. Given, the
    payload is first decoded with its 16 key-id bits known and, only when that word
    fails the CRC, blind; p_false counts both words (see `_decide`).

    Geometry: candidate lattices (the embedder's own period, the axis-aligned periods
    and the rotated, scaled lattices that the autocorrelation shows), each in both
    orientations (a mirrored copy is a common edit); the best is refined in angle and
    scale by the sync statistic itself. Every lattice tried, times every cyclic offset,
    times every pattern version read (one fold serves them all), counts as a hypothesis
    in p_false."""
    readers = banks(key, config)
    grid = readers[0][1].grid
    views = {False: res, True: np.ascontiguousarray(res[:, ::-1])}
    caches: dict[bool, dict] = {False: {}, True: {}}
    tried = 0
    tried_unshifted = 0
    # Best try read at offset (0, 0): (z, lattice, coefs, noise, reader index).
    unshifted = None

    def attempt(lattice: np.ndarray, flipped: bool, only: int | None = None):
        nonlocal tried, tried_unshifted, unshifted
        fold = fold_affine(views[flipped], lattice, grid, caches[flipped])
        white_all, noise_all = _whiten(fold)
        robust = _robust(white_all, noise_all)
        best_here = None
        for index, (_, bank) in enumerate(readers):
            if only is not None and index != only:
                continue
            tried += 1
            rows, cols = bank.ky % grid, bank.kx
            coefs, noise = white_all[rows, cols], noise_all[rows, cols]
            surface = _sync_surface(robust, noise, bank)
            z, offset = _peak(surface)
            if not flipped and only is None:
                tried_unshifted += 1
                if unshifted is None or surface[0, 0] > unshifted[0]:
                    unshifted = (float(surface[0, 0]), lattice, coefs, noise, index)
            if best_here is None or z > best_here[0]:
                best_here = (z, lattice, offset, coefs, noise, flipped, index)
        return best_here

    h, w = res.shape
    auto = _autocorrelation(res)
    periods = period_candidates(res, config, auto)
    candidates: list[np.ndarray] = [basis(p) for p in periods]
    lattices = lattice_candidates(res, config, config.lattice_candidates, auto)
    # In a small frame (2-3 tiles) the angle is read well but the period peak can rank
    # below the picture's own structure: the embedder's period is tried at every angle.
    angles: list[float] = []
    for lattice in lattices:
        if all(abs(_angle(lattice) - a) > 0.3 for a in angles):
            angles.append(_angle(lattice))
    radial = []
    # Only frames of a few minimum tiles (they were small or were made small) need
    # these extra tries (and their hypotheses); in larger ones the map reads well.
    small = min(h, w) <= RADIAL_MAX_SIDE * config.min_period
    if small:
        near = [a + d for a in angles[:RADIAL_ANGLES] for d in RADIAL_ANGLE_STEPS]
        radial = radial_candidates(res, config, near, RADIAL_PERIODS, auto)
    # A crop of a small frame (smaller still) has its own nominal period, but kept the
    # small-frame tile: that is tried at every angle too (crop 10 % + rotation 2 + CRF
    # 28 on five 256 px clips, 3 keys: 2 of 15 read without it, 6 with).
    at_angles = [periods[0]]
    if min(h, w) <= config.small_side and small_period(config) != round(periods[0][0]):
        at_angles.append((float(small_period(config)),) * 2)
    tilted = [basis(p, a) for p in at_angles for a in angles[:3]]
    tile = float(small_period(config))
    if SWEEP_MIN_TILES * tile <= min(h, w) <= config.small_side:
        sweep = np.arange(-config.max_rotation, config.max_rotation + 1e-6, SWEEP_ANGLE_STEP)
        tilted += [basis(tile, float(a)) for a in sweep]
    for lattice in [*lattices, *tilted, *radial]:
        if not any(_similar(lattice, c) for c in candidates):
            candidates.append(lattice)
    # With few tiles in the frame the autocorrelation reads the period to only ~1 %,
    # while z falls to half 0.4 % away (measured: a 480 px clip at half scale + CRF 28,
    # tile 72 px, read as 72.9 px: z 4.3 there, 9.1 at 72.2). The strongest lattices
    # are also tried at a few scales either side, so the refinement starts in the peak.
    for lattice in lattices[:SWEEP_LATTICES] if small else []:
        if min(h, w) < FEW_TILES * float(np.hypot(*lattice[:, 0])):
            for factor in SWEEP_SCALES:
                candidates.append(lattice * factor)
    best = None
    for lattice in candidates:
        for flipped in (False, True):
            view_lattice = _MIRROR @ lattice @ _MIRROR if flipped else lattice
            trial = attempt(view_lattice, flipped)
            if best is None or trial[0] > best[0]:
                best = trial
    if best is not None:
        # The autocorrelation gives the period to ~0.3 px and the angle to ~0.2 degree;
        # a 0.2 px error already costs a third of z at 480p (it adds up over the
        # tiles), so refine angle and scale around the winner (coordinate search),
        # with the winner's pattern version only.
        flipped, which = best[5], best[6]
        d_angle, d_scale = REFINE_ANGLE, REFINE_SPAN
        for _ in range(REFINE_ROUNDS):
            for kind in ("scale", "angle"):
                for sign in (-1.0, 1.0):
                    if kind == "scale":
                        step = np.eye(2) * (1 + sign * d_scale)
                    else:
                        a = np.deg2rad(sign * d_angle)
                        step = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
                    trial = attempt(step @ best[1], flipped, only=which)
                    # A move must gain clearly: noise alone moves z by hundredths.
                    if trial[0] > best[0] + REFINE_GAIN:
                        best = trial
                        break
            d_angle, d_scale = d_angle / 2, d_scale / 2
    hypotheses = max(1, tried) * grid**2
    if best is None or unshifted is None:
        return WatermarkResult(False, None, 0.0, 1.0, frames, None, hypotheses=hypotheses)
    # Two tests, the false-positive budget split between them (Bonferroni): the best
    # of every lattice, version and cyclic offset (any crop, rotation, mirror), and the
    # best lattice and version read at offset (0, 0) only, where a picture that was
    # re-encoded, rescaled from its corner or recoloured, but not cropped or turned,
    # keeps the tile origin; that test counts one hypothesis per lattice and version,
    # so a weak sync there still counts and the CRC carries the decision.
    z0, lattice0, coefs0, noise0, which0 = unshifted
    bank_best, bank0 = readers[best[6]][1], readers[which0][1]
    outcomes = [
        _decide(bank_best, config, *best[:6], hypotheses, key_id)
        | {"version": readers[best[6]][0]},
        _decide(
            bank0,
            config,
            z0,
            lattice0,
            (0.0, 0.0),
            coefs0,
            noise0,
            False,
            tried_unshifted,
            key_id,
        )
        | {"version": readers[which0][0]},
    ]
    found = [o for o in outcomes if o["found"]]
    pick = found[0] if found else min(outcomes, key=lambda o: o["p_false"])
    view_lattice = _MIRROR @ pick["lattice"] @ _MIRROR if pick["flipped"] else pick["lattice"]
    offset = pick["offset"]
    return WatermarkResult(
        found=pick["found"],
        payload=pick["payload"] if pick["found"] else None,
        confidence=round(pick["confidence"] if pick["found"] else 0.0, 4),
        p_false=float(pick["p_false"]),
        frames_used=frames,
        bit_errors_corrected=pick["errors"],
        p_sync=pick["p_sync"],
        sync_z=round(float(pick["z"]), 3),
        crc_ok=pick["crc_ok"],
        period=(
            round(float(np.hypot(*view_lattice[:, 1])), 2),
            round(float(np.hypot(*view_lattice[:, 0])), 2),
        ),
        offset=(round(float(offset[0]), 2), round(float(offset[1]), 2)),
        rotation=round(_angle(view_lattice), 2),
        hypotheses=hypotheses + tried_unshifted,
        mirrored=pick["flipped"],
        version=pick["version"] if pick["found"] else None,
        soft_bits=pick["soft"],
    )


STAGES = 2  # tests whose results detect_residual combines (Bonferroni factor)


def _decide(
    bank, config, z, lattice, offset, coefs, noise, flipped, hypotheses, key_id=None
) -> dict:
    """p_sync (times STAGES), soft bits, Viterbi, CRC and the decision for one test.

    With `key_id`, the word is decoded with the key id's bits known (a likeness key
    always marks its own id), then blind if that word fails the CRC (a payload made
    with another key id, `watermark embed --payload`). Why: the known bits pin the
    Viterbi path across the word's middle; on 258 coded bits over a Gaussian channel
    (150 words a point) words decoded rose from 36 % to 51 % at raw coded-bit accuracy
    0.78 and from 19 % to 28 % at 0.76, where small frames after CRF 33-35 sit. Two
    words can pass the CRC by chance, so p_false doubles its CRC term. A blind word that
    passes the CRC and carries the key id is 32 check bits (`stats.with_key_id`): over
    the bench's five 256 px clips x 3 keys, 2 of 28 failing reads (CRF 35 at p_false
    2.1e-5, crop 10 % + rotation 2 + CRF 28 at 1.8e-6) had such a word and now read;
    the rest fail with no word passing at all."""
    z = z / max(1.0, _structure_scale(coefs, noise, offset, bank))
    p_sync = min(1.0, STAGES * sync_p_value(z, hypotheses))
    soft = _soft_bits(coefs, offset, bank, _channel_gain(coefs, noise, offset, bank))
    message = viterbi_decode(soft)
    payload = check_message(message)
    # A blind word that passes the CRC with the reader's key id in its place is also
    # the decode with those bits known (the unconstrained best path satisfies them).
    id_checked = key_id is not None and payload is not None and payload.key_id == key_id
    if key_id is not None and not id_checked:
        known = viterbi_decode(soft, known_key_bits(key_id))
        known_payload = check_message(known)
        if known_payload is not None:
            message, payload = known, known_payload
    crc_ok = payload is not None
    if key_id is None:
        p_false = with_check_bits(p_sync, crc_ok)
    else:
        p_false = with_key_id(p_sync, crc_ok, id_checked)
    found = crc_ok and p_false <= config.threshold_p
    errors = None
    confidence = 0.0
    if crc_ok:
        recoded = conv_encode(message).astype(bool)
        errors = int(np.sum((soft > 0) != recoded))
        agree = 1 - errors / len(soft)
        confidence = max(0.0, 2 * agree - 1) * (1 - min(1.0, p_false / config.threshold_p) / 2)
    return {"found": found, "payload": payload, "confidence": confidence, "p_false": p_false,
            "p_sync": p_sync, "z": z, "crc_ok": crc_ok, "errors": errors, "soft": soft,
            "lattice": lattice, "offset": offset, "flipped": flipped}  # fmt: skip


def detect_frames(
    frames: Iterable[np.ndarray],
    *,
    key: bytes,
    key_id: int | None = None,
    config: WatermarkConfig = WatermarkConfig(),
) -> WatermarkResult:
    """Detection over frames (averaged); `key_id` as in `detect_residual`."""
    acc = ResidualAccumulator()
    for frame in frames:
        acc.add(frame)
    if acc.frames == 0:
        return WatermarkResult(False, None, 0.0, 1.0, 0, None)
    return detect_residual(acc.mean(), acc.frames, key=key, key_id=key_id, config=config)
