"""Per-frame embedding: stateless, so frames can be marked one at a time as they stream."""

from __future__ import annotations

import math

import cv2
import numpy as np

from likeness.provenance.watermark.config import WatermarkConfig
from likeness.provenance.watermark.pattern import band_config, pattern_bank, period_for
from likeness.provenance.watermark.payload import Payload, encode_payload

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# A luma change d is made as d * SPLIT on R, G, B: the least RGB error that changes luma
# by d (SPLIT = LUMA / |LUMA|^2), 0.746 d^2 per channel instead of d^2 for an equal
# offset. At the same RGB PSNR the luma mark is 16 % stronger (measured on 256-512 px
# clips: z after CRF 33 4.2 -> 5.3 and 11.6 -> 13.4, SSIM 0.958 -> 0.964); chroma moves
# by about 0.4 d, which the eye and 4:2:0 coding both discount at these frequencies.
SPLIT = (LUMA / float(LUMA @ LUMA)).astype(np.float64)
SPLIT_MSE = float(SPLIT @ SPLIT) / 3  # RGB mean squared error per unit luma change
# The detector's residual: luma minus a Gaussian blur of this sigma (pixels), divided by
# the local residual level over this window. The embedder's region strength follows it.
HIGHPASS_SIGMA = 3.0
LOCAL_WINDOW = 15
# Strength is aimed this far above the PSNR target and accepted anywhere from the
# target to PSNR_WINDOW_DB above it, so the output lands at or above the target (aimed
# at the target with a 0.1 dB tolerance either way, the bench's 10 clips averaged 41.94
# dB against 42) and the first try is usually kept (each retry costs a full pass).
PSNR_MARGIN_DB = 0.07
PSNR_WINDOW_DB = 0.15
SEARCH_STRIDE = 4
# Below this many pixels the small search's copies cost more than the second full pass
# it saves (480x480 synthetic frames, median of 5 runs: 354 fps with it, 538 without,
# 462 before either change; 720p: 83 with it, 65 before).
SEARCH_MIN_PIXELS = 500_000


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as float32 (a 2-D array passes through)."""
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    return cv2.transform(rgb.astype(np.float32), LUMA.reshape(1, 3))


def residual(rgb: np.ndarray) -> np.ndarray:
    """What the detector reads: luma minus its Gaussian blur (the picture's smooth part
    is most of its energy and would swamp the pattern), divided by the local residual
    level (texture and edges carry far more host noise than flat areas; weighting each
    pixel by 1/sigma is the locally matched filter)."""
    if rgb.ndim == 3 and rgb.dtype == np.uint8:
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)  # BT.601, rounded
    else:
        y = luma(rgb)
    r = y - smooth(y)
    energy = cv2.blur(r * r, (LOCAL_WINDOW, LOCAL_WINDOW))
    return cv2.divide(r, cv2.sqrt(energy + 4.0))


def smooth(y: np.ndarray) -> np.ndarray:
    """The detector's low-pass: a Gaussian of HIGHPASS_SIGMA (three box filters cost as
    much with OpenCV, measured)."""
    return cv2.GaussianBlur(y, (0, 0), HIGHPASS_SIGMA)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def markable(rgb: np.ndarray, config: WatermarkConfig) -> np.ndarray:
    """`rgb`, enlarged (bicubic, aspect kept, even sides) when its short side is below
    `config.min_side`: a mark in a smaller picture cannot be read back, and an output
    that looks marked but is not would break the promise that every output is."""
    h, w = rgb.shape[:2]
    if min(h, w) >= config.min_side:
        return rgb
    scale = config.min_side / min(h, w)
    size = (2 * math.ceil(w * scale / 2), 2 * math.ceil(h * scale / 2))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)


class Embedder:
    """Adds the keyed tile (sync + payload) to luma, stronger where the host is smooth.

    The luma change is spread over R, G and B in proportion to their luma weights (see
    SPLIT). Strength is set per frame so that the rounded, clipped output has
    `config.psnr_db` PSNR against the input over all RGB channels.
    """

    def __init__(
        self, key: bytes, payload: Payload, config: WatermarkConfig = WatermarkConfig()
    ) -> None:
        self.config = config
        self.payload = payload
        self._key = bytes(key)
        self._bank = pattern_bank(self._key, config)  # checks the key; per size: _bank_for
        self._coded = encode_payload(payload)
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None
        self.last_psnr: float | None = None

    def _bank_for(self, height: int, width: int):
        """The pattern for this frame size (small frames use their own band)."""
        return pattern_bank(self._key, band_config(height, width, self.config))

    def pattern(self, height: int, width: int) -> np.ndarray:
        """The full-frame pattern (unit RMS tile repeated from the top-left corner)."""
        if self._cache is None or self._cache[0] != (height, width):
            period = period_for(height, width, self.config)
            tile = self._bank_for(height, width).tile(self._coded, period)
            reps = (-(-height // period), -(-width // period))
            self._cache = ((height, width), np.tile(tile, reps)[:height, :width].copy())
        return self._cache[1]

    def _mask(self, rgb: np.ndarray) -> np.ndarray:
        """Strength per region, informed by the host: (local residual level)^-gamma,
        smoothed, unit RMS, clipped to [0.25, 3].

        The detector divides its high-pass residual by the local residual level (the
        locally matched filter), so a unit of mark in a flat or smooth region is worth
        more there than in texture, where the host's own residual drowns it; x264 also
        keeps smooth regions' low frequencies. Measured on still 256 px clips (12
        frames): gamma 0.5 lifts z after CRF 28 from 5.2 to 7.4 (photo) and from 5.7
        to 8.1 (photo + moving disc), for SSIM 0.957 instead of 0.974 at the same PSNR.
        Computed at half resolution or less (it is smooth): a few ms at 720p."""
        gamma = self.config.mask_strength
        h, w = rgb.shape[:2]
        f = max(1, round(min(h, w) / 256))
        small = luma(cv2.resize(rgb, (max(1, w // (2 * f)), max(1, h // (2 * f))),
                                interpolation=cv2.INTER_AREA))  # fmt: skip
        sigma = HIGHPASS_SIGMA / (2 * f)
        r = small - cv2.GaussianBlur(small, (0, 0), sigma)
        win = max(3, round(LOCAL_WINDOW / (2 * f)) | 1)
        level = cv2.blur(r * r, (win, win)) + 4.0
        mask = cv2.blur(level ** (-gamma / 2), (win, win))
        # Normalised and clipped on the small map (the same to within a percent), so
        # the full-size work is one resize.
        mask /= max(float(np.sqrt(np.mean(mask * mask))), 1e-12)
        np.clip(mask, 0.25, 3.0, out=mask)
        return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)

    def _informed(self, rgb: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
        """The pixel change that cancels part of the host's own projection onto the
        payload (improved spread spectrum, sign-informed), or None.

        The detector folds its residual onto one tile and reads each coded bit from
        Fourier coefficients of that fold; a still or textured host puts its own values
        there, which no averaging over frames removes. The embedder sees the same fold
        of the host (origin and period are its own) and, for every payload real part
        whose host value opposes the bit it carries, adds `informed` times minus that
        value. Agreeing host values are kept (they help). The sync coefficients are
        left alone: their statistic is normalised by the host's level, so cancelling
        there would not raise it."""
        lam = self.config.informed
        if lam <= 0:
            return None
        h, w = rgb.shape[:2]
        bank = self._bank_for(h, w)
        g = bank.grid
        period = period_for(h, w, self.config)
        y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        r = y - smooth(y)
        inv_level = 1.0 / np.sqrt(cv2.blur(r * r, (LOCAL_WINDOW, LOCAL_WINDOW)) + 4.0)
        res = r * inv_level  # = residual(rgb)
        # Fold at the embedder's own geometry (origin at the top-left corner).
        new_w, new_h = max(1, round(w * g / period)), max(1, round(h * g / period))
        scaled = cv2.resize(res, (new_w, new_h), interpolation=cv2.INTER_AREA)
        ph, pw = -(-new_h // g) * g, -(-new_w // g) * g
        canvas = np.zeros((ph, pw), np.float32)
        canvas[:new_h, :new_w] = scaled
        folded = canvas.reshape(ph // g, g, pw // g, g).sum(axis=(0, 2))
        spec = np.fft.rfft2(folded)
        rows, cols = bank.ky % g, bank.kx
        host = spec[rows, cols]
        c = bank.dof_coef
        part = np.where(bank.dof_imag, host[c].imag, host[c].real)
        want = (self._coded.astype(np.float64) * 2 - 1)[bank.dof_bit] * bank.dof_sign
        fix = np.where(part * want < 0, -lam * part, 0.0)
        if not np.any(fix):
            return None
        delta = np.zeros(len(bank.ky), np.complex128)
        np.add.at(delta, c[~bank.dof_imag], fix[~bank.dof_imag])
        np.add.at(delta, c[bank.dof_imag], 1j * fix[bank.dof_imag])
        # Chain from a pixel change t (tiled, times the mask) to the fold's spectrum:
        # tiles (area / period^2) x high-pass gain x mean(mask / local level).
        rho = float(np.mean(inv_level if mask is None else mask * inv_level))
        tiles = (new_w * new_h) / (g * g)
        freq = np.hypot(bank.ky, bank.kx) / period  # cycles per pixel
        highpass = 1.0 - np.exp(-2 * np.pi**2 * HIGHPASS_SIGMA**2 * freq**2)
        delta /= tiles * rho * highpass
        # The tile at `period` pixels: same coefficients, irfft2 scaled to that size.
        spec_p = np.zeros((period, period // 2 + 1), np.complex128)
        spec_p[bank.ky % period, bank.kx] = delta * (period / g) ** 2
        tile = np.fft.irfft2(spec_p, s=(period, period)).astype(np.float32)
        reps = (-(-h // period), -(-w // period))
        change = np.tile(tile, reps)[:h, :w]
        return change if mask is None else change * mask

    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """The marked frame; a frame below `config.min_side` comes back enlarged to it."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("embed expects an H x W x 3 uint8 RGB frame")
        rgb = markable(rgb, self.config)
        h, w = rgb.shape[:2]
        pattern = self.pattern(h, w)
        mask = self._mask(rgb) if self.config.mask_strength > 0 else None
        signal = pattern if mask is None else mask * pattern
        target = 255.0**2 / 10 ** ((self.config.psnr_db + PSNR_MARGIN_DB) / 10)
        fix = self._informed(rgb, mask)
        if fix is not None:
            # The correction may use at most `informed_share` of the error budget.
            energy = float(np.mean(fix * fix))
            cap = self.config.informed_share * target / SPLIT_MSE
            if energy > cap:
                fix *= math.sqrt(cap / energy)
                energy = cap
            left = max(target - SPLIT_MSE * energy, 0.05 * target)
            gain = math.sqrt(left / (SPLIT_MSE * float(np.mean(signal * signal))))
        else:
            gain = math.sqrt(target / max(SPLIT_MSE * float(np.mean(signal * signal)), 1e-12))
        # Clipping in saturated areas lowers the error; making up for it elsewhere is
        # allowed only up to 1.5x, so a mostly black frame is not over-marked (its PSNR
        # then ends above the target, never below).
        max_gain = 1.5 * gain
        # Rounding and clipping change the error, so the gain is searched: first on every
        # SEARCH_STRIDE-th row and column (1/16 of the pixels) to within 0.02 dB of the
        # aim, then on the whole frame. The first guess lands at the window's lower edge
        # (rounding adds about 1.6 % to the error), so without the small search 30 of 40
        # 720p frames took a second full pass (ls-demo2, 1.75 passes a frame).
        k = SEARCH_STRIDE
        if h * w >= SEARCH_MIN_PIXELS:
            sub = (np.ascontiguousarray(rgb[::k, ::k]), np.ascontiguousarray(signal[::k, ::k]),
                   None if fix is None else np.ascontiguousarray(fix[::k, ::k]))  # fmt: skip
            aim = (PSNR_MARGIN_DB - 0.02, PSNR_MARGIN_DB + 0.02)
            gain, scale, _, _ = _fit_gain(*sub, gain, 1.0, max_gain, target, 4, aim)
            if fix is not None:
                fix = fix * np.float32(scale)
        gain, _, out, mse = _fit_gain(rgb, signal, fix, gain, 1.0, max_gain, target, 3)
        # The PSNR of what we return (mse was measured on the clipped, rounded output).
        self.last_psnr = math.inf if mse <= 0 else 10 * math.log10(255.0**2 / mse)
        return out


def _marked(rgb: np.ndarray, signal: np.ndarray, fix: np.ndarray | None, gain: float) -> np.ndarray:
    """clip(rgb + rint(the luma change split over R, G, B), 0, 255): a rounding,
    saturating add in C per channel (merging the uint8 channels back costs a quarter
    of merging three float32 changes first)."""
    total = signal if fix is None else (gain * signal + fix).astype(np.float32)
    weight = gain if fix is None else 1.0
    channels = cv2.split(rgb)
    return cv2.merge([cv2.add(ch, total * np.float32(weight * c), dtype=cv2.CV_8U)
                      for ch, c in zip(channels, SPLIT, strict=True)])  # fmt: skip


def _fit_gain(
    rgb: np.ndarray,
    signal: np.ndarray,
    fix: np.ndarray | None,
    gain: float,
    scale: float,
    max_gain: float,
    target: float,
    tries: int,
    window: tuple[float, float] = (0.0, PSNR_WINDOW_DB),
) -> tuple[float, float, np.ndarray, float]:
    """Gain (and the informed correction's scale) that puts the rounded, clipped
    output's PSNR `window` dB above the target (the aim is PSNR_MARGIN_DB above it);
    the last output and its MSE."""
    out, mse = rgb, 0.0
    for _ in range(tries):
        out = _marked(rgb, signal, None if fix is None else fix * np.float32(scale), gain)
        mse = cv2.norm(out, rgb, cv2.NORM_L2SQR) / out.size
        if mse <= 0:
            break
        ratio = target / mse
        above = 10 * math.log10(ratio) + PSNR_MARGIN_DB  # dB over the target
        if window[0] <= above <= window[1]:
            break
        gain = min(gain * math.sqrt(ratio), max_gain)
        scale *= math.sqrt(ratio)
    return gain, scale, out, mse
