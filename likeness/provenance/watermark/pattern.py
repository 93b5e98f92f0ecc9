"""Keyed pattern generation. Pure: the key and config fix every pattern.

The tile is described by its 2-D spectrum on a `grid` x `grid` torus. Every Fourier
coefficient inside the pass band belongs to exactly one owner: the sync pattern (random
phase) or, for each of its two real parts, one coded bit (random sign). Disjoint
coefficients make the sync and all bit patterns exactly orthogonal, so they do not
interfere at detection; the key decides the assignment, phases and signs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from likeness.provenance.watermark.config import WatermarkConfig
from likeness.provenance.watermark.payload import CODED_BITS


@dataclass(frozen=True)
class PatternBank:
    grid: int
    ky: np.ndarray  # signed vertical frequency of each in-band coefficient
    kx: np.ndarray  # horizontal frequency (>= 1: one half-plane, no self-conjugates)
    sync_coef: np.ndarray  # indices (into ky/kx) of sync coefficients
    sync_phase: np.ndarray  # unit complex values of the sync coefficients
    dof_coef: np.ndarray  # per payload real DOF: coefficient index
    dof_imag: np.ndarray  # per payload real DOF: True for the imaginary part
    dof_bit: np.ndarray  # per payload real DOF: which coded bit it carries
    dof_sign: np.ndarray  # per payload real DOF: +-1

    def spectrum(self, coded_bits: np.ndarray | None, size: int) -> np.ndarray:
        """rfft2 layout (size, size//2+1) of the tile sampled at `size` per period."""
        spec = np.zeros((size, size // 2 + 1), dtype=np.complex128)
        rows = self.ky % size
        # sqrt(2): a sync coefficient carries the energy of two payload real parts.
        spec[rows[self.sync_coef], self.kx[self.sync_coef]] = np.sqrt(2.0) * self.sync_phase
        if coded_bits is not None:
            symbols = (np.asarray(coded_bits, np.float64) * 2 - 1)[self.dof_bit] * self.dof_sign
            c = self.dof_coef
            real = np.zeros(len(self.ky))
            imag = np.zeros(len(self.ky))
            np.add.at(real, c[~self.dof_imag], symbols[~self.dof_imag])
            np.add.at(imag, c[self.dof_imag], symbols[self.dof_imag])
            payload_coefs = np.setdiff1d(np.arange(len(self.ky)), self.sync_coef)
            spec[rows[payload_coefs], self.kx[payload_coefs]] = (
                real[payload_coefs] + 1j * imag[payload_coefs]
            )
        return spec

    def tile(self, coded_bits: np.ndarray, size: int) -> np.ndarray:
        """The spatial tile at `size` pixels per period (exact band-limited resampling),
        normalised to unit RMS."""
        tile = np.fft.irfft2(self.spectrum(coded_bits, size), s=(size, size))
        return (tile / np.sqrt(np.mean(tile**2))).astype(np.float32)


def _seed(key: bytes, config: WatermarkConfig) -> int:
    label = (
        f"likeness-watermark-v1|{config.grid}|{config.band_low}|{config.band_high}|"
        f"{config.sync_fraction}"
    ).encode()
    digest = hmac.new(key, label, hashlib.sha256).digest()
    return int.from_bytes(digest, "big")


@cache
def pattern_bank(key: bytes, config: WatermarkConfig) -> PatternBank:
    if not key:
        raise ValueError("the watermark key must not be empty")
    g = config.grid
    ky, kx = np.meshgrid(np.arange(-g // 2 + 1, g // 2), np.arange(1, g // 2), indexing="ij")
    radius = np.hypot(ky, kx)
    # Half the band (a checkerboard in frequency) stays empty: those "probe" coefficients
    # measure the noise level next to each used one, so the detector's normalisation is
    # not inflated by the watermark itself (which would cap the statistic).
    inside = (radius >= config.band_low) & (radius <= config.band_high) & ((ky + kx) % 2 == 0)
    ky, kx = ky[inside].ravel(), kx[inside].ravel()
    rng = np.random.default_rng(_seed(key, config))
    order = rng.permutation(len(ky))
    ky, kx = ky[order], kx[order]
    n = len(ky)
    # Sync share of the energy: a sync coefficient weighs as two payload real parts.
    n_sync = round(config.sync_fraction * n)
    sync_coef = np.arange(n_sync)
    sync_phase = np.exp(2j * np.pi * rng.random(n_sync))
    rest = np.arange(n_sync, n)
    dof_coef = np.repeat(rest, 2)
    dof_imag = np.tile(np.array([False, True]), len(rest))
    shuffle = rng.permutation(len(dof_coef))
    dof_coef, dof_imag = dof_coef[shuffle], dof_imag[shuffle]
    if len(dof_coef) < CODED_BITS:
        raise ValueError("pass band too narrow for the coded payload")
    dof_bit = np.arange(len(dof_coef)) % CODED_BITS
    dof_sign = rng.choice(np.array([-1.0, 1.0]), size=len(dof_coef))
    return PatternBank(g, ky, kx, sync_coef, sync_phase, dof_coef, dof_imag, dof_bit, dof_sign)


def is_small(height: int, width: int, config: WatermarkConfig) -> bool:
    """Whether the embedder uses the small-frame tiling and band (read back as pattern
    version 1: the band is version 1's)."""
    short = min(height, width)
    return 2 * config.min_period < short <= config.small_side


def period_for(height: int, width: int, config: WatermarkConfig) -> int:
    """Tile period in pixels for a frame of this size (what the embedder uses)."""
    if is_small(height, width, config):
        return _period(height, width, config.min_period, config.small_tiles, config)
    return _period(height, width, config.min_period, config.tiles_per_short_side, config)


def small_period(config: WatermarkConfig) -> int:
    """The tile period of a frame of `config.small_side` (128 px at 256 px)."""
    side = config.small_side
    return _period(side, side, config.min_period, config.small_tiles, config)


def band_config(height: int, width: int, config: WatermarkConfig) -> WatermarkConfig:
    """The config whose pass band the embedder uses for a frame of this size (its
    pattern bank: `config.small_band` in small frames, else the config's own band)."""
    if not is_small(height, width, config):
        return config
    low, high = config.small_band
    return replace(config, band_low=low, band_high=high, legacy_bands=())


def legacy_periods_for(height: int, width: int, config: WatermarkConfig) -> list[int]:
    """Periods earlier embedders (`config.legacy_tilings`) used for a frame of this
    size, other than today's; in a frame no larger than `config.small_side` also the
    small-frame tile of a frame of that size (a crop of a 256 px output keeps its 128
    px tile; the detector also tries it at every angle it reads)."""
    now = period_for(height, width, config)
    periods = [_period(height, width, m, tiles, config) for m, tiles in config.legacy_tilings]
    if min(height, width) <= config.small_side:
        periods.append(small_period(config))
    out: list[int] = []
    for p in periods:
        if p != now and p not in out:
            out.append(p)
    return out


def _period(height: int, width: int, min_period: int, tiles: float, config: WatermarkConfig) -> int:
    short = min(height, width)
    period = max(min_period, round(short / tiles))
    # Band-limited resampling needs the highest frequency below the period's Nyquist.
    top = max(config.band_high, config.small_band[1])
    return max(period, int(2 * top) + 2)
