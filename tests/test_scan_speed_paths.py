"""The scan's fast paths give what the slow ones gave: sampled decoding (non-reference
frames skipped) returns the full decode's frames bit for bit, and the whole-factor
pre-reduce of `warp_to_crop` is an anti-aliased warp in the right place."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from likeness.faces.warp import reduce_factor, warp_to_crop
from likeness.media import decode as decode_module
from likeness.media import iter_frames


def _textured(i: int, w: int = 160, h: int = 96) -> np.ndarray:
    """Frame i of a moving, detailed picture (so P- and B-frames carry real residuals)."""
    rng = np.random.default_rng(7)
    base = cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3), np.uint8), (w * 2, h * 2))
    x, y = int(20 + 15 * np.sin(i / 5)), int(10 + 8 * np.cos(i / 7))
    frame = base[y : y + h, x : x + w].copy()
    cv2.circle(frame, (20 + i * 2 % (w - 40), h // 2), 12, (255, 255 - 3 * i % 256, 0), -1)
    return frame


def _bframes_clip(path: Path, frames: int = 64, audio_first: bool = False) -> Path:
    """x264 at `veryfast` (3 B-frames, a reference pyramid): half the frames are
    non-reference ones the sampled decode may skip."""
    with av.open(str(path), "w") as out:
        if audio_first:  # the video stream is then stream 1, not 0
            out.add_stream("aac", rate=44100)
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20", "g": "30"}
        for i in range(frames):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_textured(i), format="rgb24")))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("speed-paths")
    return {
        "mp4": _bframes_clip(root / "b.mp4"),
        "mkv": _bframes_clip(root / "b.mkv", frames=40),
        "audio-first": _bframes_clip(root / "a.mov", frames=40, audio_first=True),
    }


def _counters(monkeypatch) -> list:
    made: list = []
    real = decode_module._Counter

    def counting():
        made.append(real())
        return made[-1]

    monkeypatch.setattr(decode_module, "_Counter", counting)
    return made


@pytest.mark.parametrize("kind", ["mp4", "mkv", "audio-first"])
@pytest.mark.parametrize("every", [2, 3, 10])
def test_sampled_decode_is_the_full_decode_bit_for_bit(clips, kind, every, monkeypatch) -> None:
    path = clips[kind]
    full = list(iter_frames(path))
    counters = _counters(monkeypatch)
    sampled = list(iter_frames(path, every=every))
    want = full[::every]
    assert [f.index for f in sampled] == [f.index for f in want]
    assert [f.time for f in sampled] == [f.time for f in want]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(sampled, want, strict=True))
    # and it did skip: fewer frames came out of the decoder than the clip holds
    (counter,) = counters
    assert counter.frames == len(full)
    assert len(want) <= counter.decoded < len(full)


def test_sampled_decode_keeps_max_frames_and_end(clips) -> None:
    path = clips["mp4"]
    full = list(iter_frames(path))
    firsts = list(iter_frames(path, every=3, max_frames=5))
    assert [f.index for f in firsts] == [f.index for f in full[:15:3]]
    until = list(iter_frames(path, every=4, end=1.0))  # 25 fps: frames 0..24
    assert [f.index for f in until] == list(range(0, 25, 4))
    assert all(np.array_equal(a.image, full[a.index].image) for a in until)
    # a start after 0 counts `every` from there, decoding every frame as before
    later = list(iter_frames(path, every=5, start=1.0))
    assert [f.index for f in later] == list(range(25, 64, 5))


def test_sampled_decode_keeps_the_frame_limit(clips) -> None:
    from likeness.errors import MediaError
    from likeness.media.limits import MediaLimits

    with pytest.raises(MediaError, match="more than 10 frames"):
        list(iter_frames(clips["mp4"], every=3, limits=MediaLimits(max_frames=10)))


def test_codecs_that_cannot_skip_decode_every_frame(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "m.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(20):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(_textured(i), format="rgb24")))
        out.mux(stream.encode())
    counters = _counters(monkeypatch)
    frames = list(iter_frames(path, every=4))
    assert [f.index for f in frames] == [0, 4, 8, 12, 16]
    assert counters[0].decoded == 20


# ---------------------------------------------------------------- warp_to_crop


def _crop_matrix(scale: float, angle: float, centre: tuple[float, float], size: int):
    """frame -> crop: rotate by `angle`, scale, `centre` to the crop's middle."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    lin = np.array([[c, s], [-s, c]])
    offset = np.array([size / 2, size / 2]) - lin @ np.asarray(centre)
    return np.hstack([lin, offset[:, None]])


def _supersampled(rgb: np.ndarray, matrix: np.ndarray, size: int, factor: int = 4):
    """The warp at `factor` times the size (no shrinking, so no aliasing), area-averaged
    down: what an ideal anti-aliased warp gives."""
    m = matrix.copy()
    m[:, :2] *= factor
    m[:, 2] = m[:, 2] * factor + (factor - 1) / 2
    big = cv2.warpAffine(rgb, m, (size * factor,) * 2, flags=cv2.INTER_CUBIC)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def test_reduce_factor_keeps_the_warp_after_it_near_the_region_scale() -> None:
    for scale in (0.07, 0.13, 0.2, 0.26, 0.33, 0.4, 0.49):
        k = reduce_factor(scale)
        assert k >= 2 and 0.5 <= k * scale < 1.0, scale
    # 0.5-0.7 is reduced fractionally (k = 1), from 0.7 on not at all
    assert reduce_factor(0.55) == reduce_factor(0.69) == reduce_factor(0.9) == 1


def test_warp_places_pixels_where_the_matrix_says() -> None:
    """On a steep ramp any shift shows: each crop pixel is the frame at the point its
    centre maps to (the fractional reduce this replaced was 0.4 px off at scale 0.4)."""
    ys, xs = np.mgrid[0:900, 0:1200].astype(np.float32)
    ramp = np.dstack([2 * xs, 3 * ys, xs + ys])
    size = 64  # inside the frame at every scale tried (no border values)
    for scale in (0.4, 0.22, 0.12):
        matrix = _crop_matrix(scale, 0.3, (600.0, 450.0), size)
        crop = warp_to_crop(ramp, matrix, (size, size))
        inv = cv2.invertAffineTransform(matrix)
        v, u = np.mgrid[0:size, 0:size].astype(np.float64)
        fx = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
        fy = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
        want = np.dstack([2 * fx, 3 * fy, fx + fy])
        assert np.abs(crop - want).max() < 0.05, scale


def test_warp_is_close_to_a_supersampled_one_and_does_not_alias() -> None:
    rng = np.random.default_rng(3)
    fine = rng.integers(0, 256, (1200, 1600, 3), np.uint8)  # detail at every pixel
    detail = cv2.GaussianBlur(fine, (0, 0), 1.0)
    size = 128
    for scale in (0.6, 0.45, 0.3, 0.18):  # fractional, then whole factors 2, 3, 4
        matrix = _crop_matrix(scale, -0.2, (800.0, 600.0), size)
        ideal = _supersampled(detail, matrix, size).astype(np.float32)
        ours = warp_to_crop(detail, matrix, (size, size), cv2.INTER_CUBIC).astype(np.float32)
        plain = cv2.warpAffine(detail, matrix, (size, size), flags=cv2.INTER_CUBIC)
        err = np.abs(ours - ideal)[4:-4, 4:-4].mean()
        aliased = np.abs(plain.astype(np.float32) - ideal)[4:-4, 4:-4].mean()
        assert err < 4.5 and err < 0.75 * aliased, (scale, err, aliased)


# ---------------------------------------------------------------- detector scores


def test_scores_path_matches_the_trained_network() -> None:
    """The folded, channels-last backbone that scores crops on CPU gives the logits of
    the network as trained (its dense forward, which heat maps still use)."""
    import torch

    from likeness.detector.model import DetectorModel

    model = DetectorModel.from_pretrained()
    crops = np.random.default_rng(1).integers(0, 256, (5, 256, 256, 3), np.uint8)
    fast = model.logits(crops)
    trained, maps = model.dense(crops)
    assert np.abs(fast - trained).max() < 1e-4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model._scorer().modules())
    assert maps is None or maps.shape[0] == 5


@pytest.mark.slow
def test_scan_makes_thumbnails_and_heat_maps_for_the_final_top_frames(tmp_path, astronaut):
    """Crops are scored without the dense head; the top frames' thumbnails and heat maps
    are made at the end, for exactly the frames the record lists."""
    import torch

    from likeness.detector.config import preset
    from likeness.detector.model import Decision, save_weights
    from likeness.detector.network import FaceClassifier
    from likeness.pipelines.scan import ScanConfig, Scanner
    from tests import samples

    torch.manual_seed(0)
    weights = tmp_path / "det"
    save_weights(FaceClassifier(preset("tiny")), weights, Decision(threshold=0.5))
    video = samples.face_video(tmp_path / "astro.mp4", astronaut, frames=10)
    config = ScanConfig(weights=weights, every=1, provenance=False, top_frames=3)
    result = Scanner(config).scan_file(video)
    record = result.record
    tops = [t.frame for t in record.top_frames]
    assert record.status == "ok" and len(tops) == 3
    scores = [t.score for t in record.top_frames]
    best = sorted((f.score for f in record.frames if f.score is not None), reverse=True)
    assert scores == best[:3]
    assert sorted(result.thumbnails) == sorted(result.heatmaps) == sorted(tops)
    assert all(jpeg[:2] == b"\xff\xd8" for jpeg in result.heatmaps.values())
