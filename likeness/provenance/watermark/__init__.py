"""Blind, keyed, multi-bit video watermark: spread spectrum on luma with a periodic tile.

Embedding changes luma (split over R, G and B by their luma weights) by a tile that
repeats every `period` pixels (the short side / 3, at least 112 px, since 2026-12-01;
before: / 4, still read; frames of 226-256 px: / 2, since that evening) and is the same
in every frame, stronger where the host is smooth than in texture. Its spectrum (5..22
cycles per tile since pattern version 2, 6..24 in version 1 and in 226-256 px frames;
every other coefficient) is
split by the key between a sync pattern and the 258 bits of the coded payload (64
information bits + CRC-16, K=7 rate-1/3 convolutional code). Strength is set per frame
to a PSNR target (RGB, rounded output).

Detection averages a locally normalised high-pass residual over frames, reads the tile's
lattice (rotation within +-15 degrees and scale; different x and y scales unrotated)
from the whitened autocorrelation in polar coordinates (so rotating, scaling and
cropping need no brute-force search; in frames of few tiles also along the angle read
and at a few scales around the period read), folds the residual onto one tile through that
affine map, refines angle and scale by the sync statistic, finds the cyclic offset by
FFT correlation with the sync, and decodes soft bits with Viterbi; every fold is read
for both pattern versions (old files stay readable). `p_false` is the Gaussian tail of
the sync statistic corrected for every lattice, version and offset tried, times 2^-16
for the CRC.
"""

from likeness.provenance.watermark.config import WatermarkConfig
from likeness.provenance.watermark.detect import WatermarkResult, detect_frames
from likeness.provenance.watermark.embed import Embedder
from likeness.provenance.watermark.files import EmbedReport, detect_file, embed_file
from likeness.provenance.watermark.payload import Payload

__all__ = [
    "EmbedReport",
    "Embedder",
    "Payload",
    "WatermarkConfig",
    "WatermarkResult",
    "detect_file",
    "detect_frames",
    "embed_file",
]
