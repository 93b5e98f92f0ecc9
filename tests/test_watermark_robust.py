"""Watermark robustness (issue 14): still and textured content, rotation with scale, crop
and compression, small frames, false positives on rotated and rescaled unmarked clips,
and `watermark embed` refusing an output whose mark does not read back.

Clips are small (12-16 frames) so that every test takes a few seconds on two cores.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.provenance.watermark import (
    Embedder,
    Payload,
    WatermarkConfig,
    detect_file,
    detect_frames,
    embed_file,
)
from likeness.provenance.watermark.pattern import period_for
from tests.test_watermark import (
    KEY,
    OTHER_KEY,
    PAYLOAD,
    crop_10,
    even,
    synthetic_frames,
    x264,
)

CONFIG = WatermarkConfig()


def rotate(frames: list[np.ndarray], degrees: float) -> list[np.ndarray]:
    """Turn about the centre, same size, black corners."""
    h, w = frames[0].shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return [cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR) for f in frames]


def scale(frames: list[np.ndarray], factor: float) -> list[np.ndarray]:
    h, w = frames[0].shape[:2]
    size = (round(w * factor) // 2 * 2, round(h * factor) // 2 * 2)
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def still_texture(size: int = 256, n: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Random texture (fine grain plus coarser blobs, std about 30 grey levels), no motion."""
    rng = np.random.default_rng(seed)
    fine = rng.normal(0, 24, (size, size, 3))
    coarse = cv2.GaussianBlur(rng.normal(0, 60, (size, size, 3)), (0, 0), 4.0)
    image = np.clip(128 + fine + coarse, 0, 255).astype(np.uint8)
    return [image.copy() for _ in range(n)]


def still_photo(size: int = 256, n: int = 12) -> list[np.ndarray]:
    from skimage import data

    image = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    return [image.copy() for _ in range(n)]


def write_video(path: Path, frames: list[np.ndarray], crf: int = 18) -> Path:
    from likeness.media import VideoWriter

    with VideoWriter(path, 25, crf=crf, preset="veryfast") as writer:
        for frame in frames:
            writer.write(frame)
    return path


def read_video(path: Path) -> list[np.ndarray]:
    from likeness.media import iter_frames

    return [f.image for f in iter_frames(path)]


def assert_payload(result, payload: Payload = PAYLOAD) -> None:
    assert result.found, result.to_dict()
    assert result.payload == payload
    assert result.p_false <= CONFIG.threshold_p


@pytest.fixture(scope="module")
def marked480() -> list[np.ndarray]:
    embedder = Embedder(KEY, PAYLOAD, CONFIG)
    return [embedder.embed(f) for f in synthetic_frames(12, 480, seed=1)]


# ---------------------------------------------------------------- still content


@pytest.mark.parametrize("clip", [still_texture, still_photo], ids=["texture", "photo"])
def test_still_clip_reads_back_and_survives_crf28(tmp_path: Path, clip):
    src = write_video(tmp_path / "still.mp4", clip())
    dst = tmp_path / "still.marked.mp4"
    report = embed_file(src, dst, key=KEY, payload=PAYLOAD, read_back=True)
    assert abs(report.mean_psnr - CONFIG.psnr_db) <= 0.5
    assert_payload(detect_file(dst, key=KEY))
    assert_payload(detect_frames(x264(read_video(dst), 28), key=KEY))


def test_cli_embed_refuses_an_unreadable_output(tmp_path: Path, monkeypatch):
    """Full-range white noise with no motion drowns a 42 dB blind mark in a 256 px
    frame: `watermark embed` must say so in one line, exit 2, and write nothing."""
    import typer
    from typer.testing import CliRunner

    from likeness.commands import watermark as command
    from likeness.provenance import keys

    monkeypatch.setattr(keys, "watermark_key", lambda: keys.WatermarkKey(KEY, 0x1234))
    app = typer.Typer()
    command.register(app)
    app.command("noop")(lambda: None)
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    src = write_video(tmp_path / "noise.mp4", [noise] * 12, crf=10)
    dst = tmp_path / "noise.marked.mp4"
    done = CliRunner().invoke(app, ["watermark", "embed", str(src), "-o", str(dst)])
    assert isinstance(done.exception, Exception)
    from likeness.errors import ProvenanceError

    assert isinstance(done.exception, ProvenanceError), done.output
    assert done.exception.exit_code == 2
    assert "\n" not in str(done.exception) and "does not read back" in str(done.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.mp4"]


def test_cli_embed_reads_back_and_keeps_a_good_output(tmp_path: Path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from likeness.commands import watermark as command
    from likeness.provenance import keys

    monkeypatch.setattr(keys, "watermark_key", lambda: keys.WatermarkKey(KEY, 0x1234))
    app = typer.Typer()
    command.register(app)
    app.command("noop")(lambda: None)
    src = write_video(tmp_path / "in.mp4", synthetic_frames(12, 256, seed=2))
    dst = tmp_path / "out.mp4"
    done = CliRunner().invoke(
        app, ["watermark", "embed", str(src), "-o", str(dst), "--payload", PAYLOAD.hex()]
    )
    assert done.exit_code == 0, done.output
    assert_payload(detect_file(dst, key=KEY))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


# ---------------------------------------------------------------- geometry


@pytest.mark.parametrize("degrees", [2.0, -5.0, 10.0])
def test_payload_exact_after_rotation(marked480, degrees):
    result = detect_frames(rotate(marked480, degrees), key=KEY)
    assert_payload(result)
    assert result.rotation == pytest.approx(-degrees, abs=0.3)


def test_payload_exact_after_rotation_on_a_256px_clip():
    embedder = Embedder(KEY, PAYLOAD, CONFIG)
    marked = [embedder.embed(f) for f in synthetic_frames(12, 256, seed=0)]
    assert_payload(detect_frames(rotate(marked, 5.0), key=KEY))


def test_payload_exact_after_crop_rotation_and_crf28(marked480):
    assert_payload(detect_frames(x264(rotate(crop_10(marked480), 2.0), 28), key=KEY))


def test_payload_exact_after_rotation_and_rescale(marked480):
    result = detect_frames(scale(rotate(marked480, 5.0), 0.7), key=KEY)
    assert_payload(result)
    assert result.period[0] == pytest.approx(0.7 * period_for(480, 480, CONFIG), abs=1.0)


def test_payload_exact_after_mirror_and_rotation(marked480):
    mirrored = [np.ascontiguousarray(f[:, ::-1]) for f in marked480]
    result = detect_frames(rotate(mirrored, 3.0), key=KEY)
    assert_payload(result)
    assert result.mirrored


# ---------------------------------------------------------------- compression, small frames


def test_payload_exact_after_scale_half_and_crf28(marked480):
    # Carried since pattern version 2 (band 4..18 cycles per tile; version 1's 6..24
    # read z 4.3 and no CRC here).
    result = detect_frames(x264(scale(marked480, 0.5), 28), key=KEY)
    assert_payload(result)
    assert result.version == 2


def test_version_1_marks_still_read(marked480):
    """Files marked before pattern version 2 (band 6..24) still read, and say so; the
    current embedder writes version 2."""
    from dataclasses import replace

    v1 = replace(CONFIG, band_low=6.0, band_high=24.0, legacy_bands=())
    embedder = Embedder(KEY, PAYLOAD, v1)
    old = [embedder.embed(f) for f in synthetic_frames(12, 480, seed=1)]
    result = detect_frames(x264(old, 28), key=KEY)
    assert_payload(result)
    assert result.version == 1
    assert detect_frames(marked480, key=KEY).version == 2
    # Without the legacy band the old mark is not read: the versions are distinct.
    current_only = replace(CONFIG, legacy_bands=())
    assert not detect_frames(old, key=KEY, config=current_only).found


def _clip_frames(corpus: Path) -> list[np.ndarray]:
    """16 frames of a 256 px corpus clip."""
    from likeness.media import iter_frames

    path = corpus / "videos" / "dt-m030-front-neutral-level1-001.mp4"
    if not path.exists():
        pytest.skip(f"{path.name} not in the corpus")
    return [even(f.image) for f in iter_frames(path, max_frames=16)]


def _marked_256px_clip(corpus: Path) -> list[np.ndarray]:
    """16 frames of a 256 px corpus clip, marked with the test key."""
    embedder = Embedder(KEY, PAYLOAD, CONFIG)
    return [embedder.embed(f) for f in _clip_frames(corpus)]


def test_payload_exact_after_crf33_on_a_256px_clip(corpus: Path):
    assert_payload(detect_frames(x264(_marked_256px_clip(corpus), 33), key=KEY))


def test_files_marked_with_the_144px_tile_still_read_after_quarter_scale(corpus: Path):
    """The 144 px tile (2026-12-01, taken back the same day: it cost short 256 px
    outputs their read-back margin) carried a 256 px clip through quarter scale (64 px
    frame, 36 px tile); files marked with it still read: the detector tries its period."""
    from dataclasses import replace

    assert period_for(256, 256, CONFIG) == 128 and period_for(720, 1280, CONFIG) == 240
    longer = replace(CONFIG, min_period=144)
    assert period_for(256, 256, longer) == 144
    frames = _clip_frames(corpus)
    embedder = Embedder(KEY, PAYLOAD, longer)
    result = detect_frames(scale([embedder.embed(f) for f in frames], 0.25), key=KEY)
    assert_payload(result)
    assert result.period[0] == pytest.approx(36.0, abs=0.5)


def test_default_tiling_survives_quarter_scale_on_a_256px_clip(corpus: Path):
    """Quarter scale leaves a 64 px frame: the 112 px tile (28 px there) did not read
    (z 6.3, no CRC); the small-frame 128 px tile (32 px) does for this key, and for 6
    of 10 clip-key pairs on the bench's 256 px clips (0 of 10 before): not for all."""
    embedder = Embedder(KEY, PAYLOAD, CONFIG)
    marked = [embedder.embed(f) for f in _clip_frames(corpus)]
    assert_payload(detect_frames(scale(marked, 0.25), key=KEY))


def test_256px_marks_of_the_112px_tile_still_read(corpus: Path):
    """256 px files marked before the small-frame tiling (112 px tile, band 5..22, the
    version-2 reader) read at their own period, also after CRF 28; today's 256 px
    marks use the 128 px tile in band 6..24 (the version-1 reader)."""
    from dataclasses import replace

    frames = _clip_frames(corpus)
    before = Embedder(KEY, PAYLOAD, replace(CONFIG, small_side=0))
    result = detect_frames(x264([before.embed(f) for f in frames], 28), key=KEY)
    assert_payload(result)
    assert result.period == (112.0, 112.0) and result.version == 2
    now = detect_frames(x264(_marked_256px_clip(corpus), 28), key=KEY)
    assert_payload(now)
    assert now.period == (128.0, 128.0) and now.version == 1


def test_crop_of_a_256px_clip_reads_after_rotation_and_crf28(corpus: Path):
    """The cropped frame's own nominal period (112 px) is not the 128 px tile it kept:
    the detector tries the small-frame tile at every angle it reads."""
    result = detect_frames(x264(rotate(crop_10(_marked_256px_clip(corpus)), 2.0), 28), key=KEY)
    assert_payload(result)
    assert result.period[0] == pytest.approx(128.0, abs=1.0)


@pytest.mark.parametrize(("size", "period"), [(256, 112.0), (480, 120.0)])
def test_marks_with_the_old_tiling_still_read(size: int, period: float):
    """Files marked before the 2026-12 tiling (112 px tiles at least, 4 per short side)
    read at their own period, also after re-encoding."""
    from dataclasses import replace

    old_tiling = replace(CONFIG, min_period=112, tiles_per_short_side=4.0, small_side=0)
    old = Embedder(KEY, PAYLOAD, old_tiling)
    frames = [old.embed(f) for f in synthetic_frames(12, size, seed=0)]
    result = detect_frames(x264(frames, 23), key=KEY)
    assert_payload(result)
    assert result.period == (period, period)


def test_payload_exact_after_rotation_rescale_and_crf23_on_a_256px_clip(corpus: Path):
    """Rotation 5 + scale 0.7 + CRF 23 leaves 1.8 tiles of 101 px in a 178 px frame:
    the lattice is found along the angle the polar map reads (it ranked below the
    picture's own structure in the map: 0/5 small corpus clips before, 5/5 after)."""
    marked = _marked_256px_clip(corpus)
    assert_payload(detect_frames(x264(scale(rotate(marked, 5.0), 0.7), 23), key=KEY))


def test_psnr_lands_at_or_above_the_target():
    """The strength loop aims just above the target, so no frame ends below it (before,
    a 0.1 dB tolerance around the target gave 41.94 dB on average)."""
    from likeness.provenance.watermark.embed import psnr

    frames = synthetic_frames(6, 320, seed=1)
    embedder = Embedder(KEY, PAYLOAD, CONFIG)
    values = [psnr(embedder.embed(f), f) for f in frames]
    assert min(values) >= CONFIG.psnr_db - 0.02 and np.mean(values) >= CONFIG.psnr_db, values
    assert max(values) <= CONFIG.psnr_db + 0.3, values


# ---------------------------------------------------------------- false positives


def stripes_and_checkerboard(size: int = 256, n: int = 12) -> list[np.ndarray]:
    """Strongly periodic unmarked content, moving: a checkerboard of 16 px squares
    behind diagonal stripes (period 23 px), the kind of texture whose spectrum has
    lines on a lattice like the watermark's tile."""
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    for i in range(n):
        board = ((xx + 2 * i) // 16 + yy // 16) % 2
        stripes = np.sin(2 * np.pi * (xx + yy + 3 * i) / 23.0)
        grey = 128 + 60 * board - 30 + 25 * stripes
        frames.append(np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2))
    return frames


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda f: f, id="as-is"),
        pytest.param(lambda f: x264(scale(f, 0.5), 28), id="scale0.5-crf28"),
        pytest.param(lambda f: rotate(f, 2.0), id="rot2"),
    ],
)
def test_another_keys_mark_is_not_read_as_ours(attack):
    """Another key's mark is a periodic tile in the same band with the same lattice:
    the strongest structure our search (with its scale sweep on small frames) can
    meet. It must not be found, nor any payload decoded."""
    other = Embedder(OTHER_KEY, PAYLOAD, CONFIG)
    frames = [other.embed(f) for f in synthetic_frames(12, 256, seed=1)]
    assert detect_frames(frames, key=OTHER_KEY).found  # the foreign mark is there
    result = detect_frames(attack(frames), key=KEY)
    assert not result.found and result.payload is None
    assert result.p_false > CONFIG.threshold_p, result.to_dict()


@pytest.mark.corpus
def test_no_sync_on_the_interpolation_grid_of_an_upscaled_clip(corpus: Path):
    """Upscaling by 1.5 leaves a grid every 3 px; the lattice of (48, 9) px vectors puts
    it on one in-band coefficient at 55 sigma, which the free offset aligns: z 13.6 for
    any key (p_false 7e-36 without a CRC pass, found by the bench's false-positive
    run). With each coefficient capped at 4 sigma it is noise."""
    from likeness.media import iter_frames

    path = corpus / "videos" / "dt-w009-front-surprised-level3-001.mp4"
    if not path.exists():
        pytest.skip(f"{path.name} not in the corpus")
    frames = [even(f.image) for f in iter_frames(path, max_frames=30)]
    size = (frames[0].shape[1] * 3 // 2, frames[0].shape[0] * 3 // 2)
    upscaled = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    for key in (KEY, OTHER_KEY):
        result = detect_frames(upscaled, key=key)
        assert not result.found and result.p_false > 1e-3, result.to_dict()


def test_no_false_positive_on_stripes_and_a_checkerboard():
    for frames in (stripes_and_checkerboard(), x264(stripes_and_checkerboard(), 28)):
        result = detect_frames(frames, key=KEY)
        assert not result.found and result.p_false > CONFIG.threshold_p, result.to_dict()


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(lambda f: f, id="as-is"),
        pytest.param(lambda f: rotate(f, 3.0), id="rot3"),
        pytest.param(lambda f: rotate(f, -8.0), id="rot-8"),
        pytest.param(lambda f: scale(rotate(f, 4.0), 0.7), id="rot4-scale0.7"),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_false_positive_on_unmarked_synthetic(seed, attack):
    result = detect_frames(attack(x264(synthetic_frames(12, 384, seed=seed), 23)), key=KEY)
    assert not result.found and result.payload is None
    assert result.p_false > CONFIG.threshold_p


def test_no_false_positive_on_a_still_texture():
    result = detect_frames(rotate(still_texture(), 2.0), key=KEY)
    assert not result.found and result.p_false > CONFIG.threshold_p


CORPUS_CLIPS = ["lp-d0.mp4", "st2-kristinoem.mp4", "ls-demo2.mp4"]


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_CLIPS)
def test_no_false_positive_on_rotated_and_rescaled_corpus_clips(corpus: Path, name: str):
    from likeness.media import iter_frames

    path = corpus / "videos" / name
    if not path.exists():
        pytest.skip(f"{name} not in the corpus")
    frames = [even(f.image) for f in iter_frames(path, max_frames=12)]
    if max(frames[0].shape[:2]) > 720:
        frames = scale(frames, 720 / max(frames[0].shape[:2]))
    for attacked in (frames, rotate(frames, 2.0), rotate(frames, -7.0), scale(frames, 0.6)):
        result = detect_frames(attacked, key=KEY)
        assert not result.found and result.p_false > CONFIG.threshold_p, result.to_dict()


def test_p_sync_of_the_full_search_is_calibrated_on_noise():
    """The whole search (periods, lattices, angles, refinement, mirror, offsets) on
    unmarked residuals: p_sync is uniform or conservative, as counted hypotheses say."""
    from likeness.provenance.watermark.detect import detect_residual

    rng = np.random.default_rng(7)
    p = []
    for _ in range(30):
        res = cv2.GaussianBlur(rng.normal(size=(256, 256)).astype(np.float32), (0, 0), 0.8)
        result = detect_residual(res, 1, key=KEY)
        assert not result.found
        p.append(result.p_sync)
    p = np.array(p)
    assert np.mean(p < 0.1) <= 0.25 and np.mean(p < 0.5) <= 0.7
    assert p.min() > 1e-4
