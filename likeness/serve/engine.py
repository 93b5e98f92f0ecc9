"""The work behind the web app: the three jobs through `likeness.api`, the one shape the
CLI, the Ray backend and a Python user share (ScanResult, Verification, AnimateResult).

`likeness.api` keeps one `Scanner` (the detector and the face stack, about 7 s to load
on the loaded 2-core machine) per scan configuration for the life of the process and
lets it scan one file at a time (MediaPipe's graphs and the face tracker keep state per
call): a second upload waits for the first, then answers. `warm_up()` scans one small
generated picture so that the models load at start, not in the first user's request.
Methods are blocking; the app calls them from its thread pool, so the event loop keeps
answering (health, other uploads streaming in) while a scan runs.

Every answer names the upload by its display name, never by where it was stored: the
temporary path is replaced in records, verdicts and error messages.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from likeness.serve.config import ServeConfig
from likeness.serve.errors import HttpError, NotMedia, status_of_kind
from likeness.serve.uploads import Upload

if TYPE_CHECKING:
    from likeness.pipelines.animate import AnimateResult
    from likeness.pipelines.scan import FileScan


def relabel(text: str, upload: Upload) -> str:
    """`text` with the stored file's path and name replaced by the upload's label."""
    return text.replace(str(upload.path), upload.name).replace(upload.path.name, upload.name)


@dataclass
class AnimateRequest:
    photo: Upload
    driving: Upload | None
    motion: str | None
    max_frames: int
    region: str = "all"
    multiplier: float = 1.0
    # Web-app videos carry the visible "AI-generated" label unless the request says
    # label=false (EU AI Act art. 50: deepfakes disclosed to people, not only machines).
    label: bool = True


class Engine:
    """The jobs of `likeness serve`, and what it knows of the loaded models."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self._animate_lock = threading.Lock()
        self.model: dict | None = None  # the detector's name and weights hash, once loaded
        self.load_seconds: float | None = None

    # ------------------------------------------------------------ models

    def warm_up(self) -> float:
        """Load the detector and face models now (ModelError when they are missing), by
        scanning a small blank picture; returns the seconds it took."""
        import numpy as np

        from likeness import api
        from likeness.media.images import write_image

        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="likeness-warm-") as folder:
            blank = Path(folder) / "blank.png"
            write_image(blank, np.full((64, 64, 3), 128, np.uint8))
            self._note_model(api.scan_file(blank, self.config.scan).record)
        self.load_seconds = round(time.monotonic() - t0, 2)
        return self.load_seconds

    def _note_model(self, record) -> None:
        if record.model is not None and self.model is None:
            self.model = {"name": record.model.name, "weights_sha256": record.model.weights_sha256}

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def health(self) -> dict:
        from likeness import __version__
        from likeness.provenance.keys import keys_exist

        return {
            "status": "ok",
            "likeness": __version__,
            "models_loaded": self.loaded,
            "model": self.model,
            "signing_keys": keys_exist(),
            "token_required": bool(self.config.token),
            "max_upload_bytes": self.config.max_upload_bytes,
            "animate_max_frames": self.config.animate_max_frames,
        }

    # ------------------------------------------------------------ jobs

    def scan(self, upload: Upload) -> FileScan:
        """Scan one upload (`likeness.api.scan_file`); a file the scanner cannot read
        raises (415/422/500) instead of answering with an error record: the API speaks
        in statuses."""
        from likeness import api

        result = api.scan_file(upload.path, self.config.scan)
        record = result.record
        self._note_model(record)
        record.path = record.name = upload.name
        if record.provenance_error:
            record.provenance_error = relabel(record.provenance_error, upload)
        if record.provenance is not None:
            record.provenance.reasons = [relabel(r, upload) for r in record.provenance.reasons]
        if not record.ok:
            kind = record.error.kind if record.error else None
            message = relabel(record.error.message if record.error else "cannot scan", upload)
            raise HttpError(message, status=status_of_kind(kind))
        return result

    def verify(self, upload: Upload) -> dict:
        """The `Verification` of one upload (`likeness.api.verify`), as a JSON object."""
        from likeness import api

        cfg = self.config.scan
        try:
            check = api.verify(upload.path, cfg.trust, max_frames=cfg.provenance_frames)
        except Exception as err:
            _relabel_error(err, upload)
            raise
        data = check.to_dict()
        data["path"] = upload.name
        data["reasons"] = [relabel(r, upload) for r in data.get("reasons") or []]
        return data

    def animate(self, job: AnimateRequest, out: Path) -> AnimateResult:
        """Animate the photo into `out` (`likeness.api.animate`: signed, watermarked, in
        the store), one job at a time (the generator uses every core it is given)."""
        from likeness import api
        from likeness.pipelines.configs import AnimateConfig

        if (job.driving is None) == (job.motion is None):
            raise HttpError(
                'give a "driving" video or scripted "motion" (such as nod,blink), one of them'
            )
        if job.photo.kind != "image":
            raise NotMedia(f'"photo" must be an image, and {job.photo.name} is a video')
        config = AnimateConfig(
            device=self.config.scan.device,
            weights=self.config.generator_weights,
            max_frames=job.max_frames,
            region=job.region if job.driving is not None else "all",
            multiplier=job.multiplier,
            label=job.label,
        )
        driving = job.driving.path if job.driving is not None else None
        with self._animate_lock:
            try:
                return api.animate(job.photo.path, out, driving, motion=job.motion, config=config)
            except Exception as err:
                for upload in (job.photo, job.driving):
                    if upload is not None:
                        _relabel_error(err, upload)
                raise


def _relabel_error(err: BaseException, upload: Upload) -> None:
    """Rewrite a LikenessError's message in place so it names the upload's label."""
    from likeness.errors import LikenessError

    if isinstance(err, LikenessError) and err.args:
        err.args = (relabel(str(err.args[0]), upload),)
