"""Draw what the face stack sees: boxes, mesh, eye contours, irises and head pose."""

from __future__ import annotations

import cv2
import numpy as np

from likeness.faces.types import FACE_OVAL, LEFT_EYE_RING, RIGHT_EYE_RING, Face

BOX = (0, 220, 255)
MESH = (120, 255, 120)
CONTOUR = (255, 255, 255)
IRIS = (255, 80, 200)
TEXT = (255, 255, 0)


def _polyline(img: np.ndarray, pts: np.ndarray, idx: tuple[int, ...], color, width: int) -> None:
    poly = np.round(pts[list(idx), :2] * 16).astype(np.int32)
    cv2.polylines(img, [poly], True, color, width, cv2.LINE_AA, shift=4)


def draw_faces(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of `rgb` with every face annotated; line widths follow the image size."""
    out = rgb.copy()
    unit = max(1, round(max(rgb.shape[:2]) / 640))
    for i, face in enumerate(faces):
        x0, y0, x1, y1 = (int(round(v)) for v in face.detection.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), BOX, unit, cv2.LINE_AA)
        for kx, ky in face.detection.keypoints:
            cv2.circle(out, (int(kx), int(ky)), 2 * unit, BOX, -1, cv2.LINE_AA)
        if face.landmarks is not None:
            radius = max(1, unit // 2)
            for x, y in face.landmarks[:, :2].astype(int):
                cv2.circle(out, (int(x), int(y)), radius, MESH, -1)
            for ring in (FACE_OVAL, RIGHT_EYE_RING, LEFT_EYE_RING):
                _polyline(out, face.landmarks, ring, CONTOUR, unit)
        if face.irises is not None:
            for iris in face.irises:
                centre = iris[0, :2]
                r = float(np.linalg.norm(iris[1:, :2] - centre, axis=1).mean())
                c = (int(round(centre[0] * 16)), int(round(centre[1] * 16)))
                cv2.circle(out, c, int(round(r * 16)), IRIS, unit, cv2.LINE_AA, shift=4)
                cv2.circle(out, c, int(round(unit * 1.5 * 16)), IRIS, -1, cv2.LINE_AA, shift=4)
        label = f"#{i} {face.detection.score:.2f}"
        if face.pose is not None:
            yaw, pitch, roll = face.pose.as_tuple()
            label += f" yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}"
        cv2.putText(out, label, (x0, max(12 * unit, y0 - 4 * unit)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45 * unit, TEXT, unit, cv2.LINE_AA)  # fmt: skip
    return out
