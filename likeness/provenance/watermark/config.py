"""Watermark parameters. Embedder and detector must share the pattern fields."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatermarkConfig:
    """Spread-spectrum watermark on luma with a keyed periodic tile.

    PSNR is measured per frame over all three RGB channels of the rounded, clipped uint8
    output against the input (the luma change is split over R, G and B by their luma
    weights, the least RGB error for it).

    Why luma and not chroma (measured 2026-12-07, five 256 px corpus clips and a still
    photo, 60 frames, one random 6..24-cycle tile at 42 dB, read at the true geometry,
    per-coefficient signal-to-noise): a Cb or Cr mark reads 2-3x better than luma on the
    unattacked frames (3.1-4.6 against 1.1-1.9: chroma holds less host texture), but
    x264 all but erases it (CRF 28: 0.06-0.29 against luma's 0.27-0.81; CRF 33: 0.02-0.10
    against 0.14-0.46). And where the small frames fail, the codec is what limits them:
    at CRF 35 the mark keeps a seventh of its amplitude, and removing the host's own
    projection entirely (an oracle of informed embedding) would lift the
    signal-to-noise only 1.4-2.7x (0.22 -> 0.35 on a typical clip), the codec's error on
    the host being of the host's own size there.
    """

    psnr_db: float = 42.0
    # Smaller pictures are enlarged to this short side before marking. Measured on
    # 12-frame clips at CRF 18 (15 keys each): short side 128 px, 15/15 marks unreadable;
    # 160 px, 6/15; 192 px, 0/15 (the 112 px tile must repeat for sync to lock).
    min_side: int = 192
    # Tile: a pattern periodic with `period` pixels, described on a grid of `grid` samples
    # per period. The period follows the frame size (short side / tiles_per_short_side,
    # at least min_period) so the pattern looks the same at any resolution.
    grid: int = 128
    # 3 since 2026-12-01 (was 4; same coefficients, still pattern version 2): a longer
    # tile in frames of 432 px and more, for the same reason as min_period below.
    # Measured on four 450-720 px corpus clips (30 frames), 4 -> 3: CRF 38 2/4 -> 4/4
    # (z 5.0 -> 6.1 and 5.5 -> 8.0 at 512 px), SSIM 0.960 -> 0.964 at 512 px and
    # 0.962 -> 0.969 at 720p, the rest found as before; 2.5 lost crop 10 % + rotation
    # 2 + CRF 28 on all three clips under 720p (2 tiles left after the crop).
    tiles_per_short_side: float = 3.0
    # 112 (144 was tried on 2026-12-01 and taken back the same day: at 256 px it leaves
    # 1.8 tiles per side; it carried quarter scale (0/5 -> 4/5 on five 256 px clips) and
    # CRF 35 (1/5 -> 3/5), but the read-back of short 256 px outputs lost its margin:
    # 4-frame 256 px clip at CRF 18, 10 random keys, sync z 6.2-10.5 against 9.4-11.3
    # with 112 px, and one test run met a key at z 5.8 that the writer then refused).
    # Small frames need a stronger or longer mark, not fewer repetitions.
    min_period: int = 112
    # Small-frame tiling (2026-12-01 evening): frames with a short side over 2 x
    # min_period and at most `small_side` carry `small_tiles` tiles per short side (256
    # px: 128 px) in the band `small_band`. 6..24 is version 1's band: the version-1
    # reader reads these files (and reports version 1); older 256 px files (112 px tile,
    # band 5..22) read through the (112, 3) legacy tiling and the version-2 reader.
    # Measured on the bench's five 256 px corpus clips (30 frames, 3 keys, 15 reads per
    # attack; 112 px and 5..22 -> 128 px and 6..24): CRF 33 8 -> 10, CRF 35 1 -> 4,
    # quarter scale 0 -> 7, rotation 2 + CRF 28 12 -> 14, crop 10 + rotation 2 + CRF 28
    # 7 -> 6 (noise: 4/10 and 4/10 over all 30 attacks, 2 keys, none lost), and the
    # read-back over 10 random keys kept its margin (4-frame 256 px clip at CRF 18: sync
    # z min 9.4 -> 9.8; still photo at CRF 18: 8.7 -> 9.0, after CRF 28: 5.5 -> 6.0, 1
    # of 10 keys without its payload both times). Tried: 128 px in band 5..22 won as
    # much (quarter scale 9/15) but lost that margin (z min 7.8, 6.5 and 4.1; 2 of 10
    # lost after CRF 28); 136 px, 6 of 10 lost; 120 px, CRF 33 11/15 but quarter scale
    # 3/15 and the crop + rotation 3/15; mask_strength 0.75 or 1.0 on top: CRF 35 6-7/15
    # and half scale + CRF 28 4-6/15 (1/15) but rotation 2 + CRF 28 12/15 (14/15).
    # Bands under quarter scale's Nyquist (16 cycles per tile; 59 % of 6..24's
    # coefficients lie above it), 2026-12-02 evening, the five 256 px clips (30 frames)
    # and a still 256 px photo (12 frames), 2 keys, 12 reads per attack (6..24 / 4..15.5
    # / 3..15.5; 5..15 leaves too few coefficients for the payload): quarter scale 7 /
    # 10 / 8, CRF 35 4 / 6 / 6, CRF 33 9 / 8 / 9, but CRF 28 12 / 11 / 10, half scale +
    # CRF 28 2 / 0 / 1, crop 10 + rotation 2 + CRF 28 4 / 0 / 1: kept 6..24.
    small_side: int = 256
    small_tiles: float = 2.0
    small_band: tuple[float, float] = (6.0, 24.0)
    # (min_period, tiles_per_short_side) of earlier embedders: the detector also tries
    # their period for the frame size (counted in p_false), so older files read at
    # their own scale without relying on the autocorrelation to find it (a 256 px
    # 12-frame file of 112 px tiles: found, z 11.9; without this candidate, z 4.7).
    legacy_tilings: tuple[tuple[int, float], ...] = ((112, 3.0), (112, 4.0), (144, 3.0))
    # Pass band, in cycles per tile: at 480p (period 120 px) wavelengths 5.5..24 px.
    # Version 2 (was 6..24): measured on the bench's 10 corpus clips (30 frames), 5..22
    # against 6..24: half scale + CRF 28 6/10 (was 3/10), CRF 38 on large clips 2/5
    # (1/5), crop 10 % + rotation 2 + CRF 28 8/10 (7/10), the rest equal. Lower bands
    # keep more through the codec but let a still host's own low frequencies in: 4..18
    # gave half scale + CRF 28 5/5 on large clips and CRF 38 3/5, but lost the still
    # 256 px photo after CRF 28 (coded-bit accuracy 0.74, 5..22 0.84, 6..24 0.86).
    band_low: float = 5.0
    band_high: float = 22.0
    # Pass bands of earlier versions that the detector also reads (files marked
    # before, with the same key): version 1 = 6..24. Every band read counts in p_false.
    legacy_bands: tuple[tuple[float, float], ...] = ((6.0, 24.0),)
    # Share of the pattern's coefficients that carry the sync (registration) signal.
    sync_fraction: float = 0.2
    # Informed strength per region: the mark is scaled by (local residual level)^-gamma,
    # gamma = mask_strength (0 = flat). Smooth regions carry more, texture less: that is
    # where the detector's matched filter weighs a unit of mark most and where x264 keeps
    # it (still 256 px clips after CRF 28: z 5.2 -> 7.4). Masking the other way (more in
    # texture) was measured before and lost (CRF 28: z 14 flat vs 9).
    # The SSIM target (0.97; 0.9649 on the bench's 10 clips) trades against this: SSIM
    # loses most in flat windows, so strength times ((2 var + C2) / C2)^beta (var: the
    # host's 7x7 luma variance, C2 SSIM's constant) was tried on the bench's 10 clips (30
    # frames, one key; found of 10 at CRF 33 / 35 / half scale + CRF 28): beta 0 SSIM
    # 0.9649, 9 / 7 / 7; 0.1 0.9666, 9 / 7 / 6; 0.2 0.9688, 8 / 6 / 5; 0.3 0.9717, 7 / 6 /
    # 5 (2026-12-07 late). Every point of SSIM is paid in detections; not taken.
    mask_strength: float = 0.5
    # Informed coding (improved spread spectrum): share of the host's opposing projection
    # onto the payload that is cancelled (0 = off), and the largest share of the error
    # budget it may use. Off by default: measured on 256-480 px clips (lambda 0.7, share
    # 0.4), raw coded-bit accuracy on a still texture after CRF 28 rises 0.93 -> 0.99,
    # but the sync loses the energy (z 11.0 -> 8.6; after CRF 28 on a moving clip
    # 20.5 -> 18.9) and the cases that fail blind (still photo after CRF 28, CRF 33 at
    # 256 px, half scale + CRF 28) fail on codec loss, which cancelling does not touch.
    # Tried again with the 128 px tile of small frames, also cancelling the sync's
    # opposing part (lambda 0.7): the still photo after CRF 28 lost its payload for 5 of
    # 10 random keys (blind: 2 of 10) and the 4-frame 256 px clip's z min fell 7.8 -> 6.1.
    informed: float = 0.0
    informed_share: float = 0.4
    # Detection: accept when the false-positive probability is at most this.
    threshold_p: float = 1e-6
    # Detection: period search range in pixels, relative to the short side of the frame.
    min_search_period: float = 24.0
    max_period_fraction: float = 0.7
    period_candidates: int = 3
    # Detection: rotations searched, in degrees either way (the lattice search reads
    # the angle from the autocorrelation; every angle tried counts in p_false).
    max_rotation: float = 15.0
    lattice_candidates: int = 3
