"""Everything that writes signed files.

`MarkedVideoWriter`, `mark_and_sign` and `mark_image` are the only ways generator
output leaves the program: each embeds the keyed watermark in the pixels, signs a C2PA
manifest that names the watermark (soft binding), records the result in the local store
and only then renames the file into place. None of them has a switch that skips a step.

`sign_file` signs an existing file without touching its pixels (`likeness sign`).

Order of work, and why:
1. keys load first, before any frame is accepted or any byte written (fail fast);
2. pixels go to an unsigned temp file in a private temp folder beside the target, and
   the watermark is read back from that encoded file (an output whose mark did not
   survive encoding is refused, not signed with a soft binding it does not carry);
3. signing writes a second temp file (via `atomic_output`), which is read back and
   checked, hashed and recorded; the rename into place is the last step, so a failure
   anywhere leaves no file at the target and no temp files.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from likeness.errors import InputError, MediaError, OutputError, ProvenanceError, SetupError
from likeness.provenance import c2pa_io
from likeness.provenance.keys import SigningKeys, load_signing, watermark_key
from likeness.provenance.manifest import (
    CREATED_LABELS,
    SoftBinding,
    build_manifest,
    check_actions,
    ingredient_definition,
    safe_title,
)
from likeness.provenance.store import Store, payload_to_hex, sha256_file


@dataclass(frozen=True)
class SignResult:
    """A signed file: where it is, what it carries, and its store record."""

    target: Path
    mime: str
    sha256: str
    manifest_label: str | None
    manifest: dict = field(repr=False)  # the active manifest as c2pa read it back
    payload: Any | None = None  # watermark Payload, when the pixels carry one
    payload_hex: str | None = None
    record_id: int | None = None

    def to_dict(self) -> dict:
        return {
            "target": str(self.target),
            "mime": self.mime,
            "sha256": self.sha256,
            "manifest_label": self.manifest_label,
            "payload": self.payload_hex,
            "record_id": self.record_id,
        }


# ---------------------------------------------------------------- checks


def _check_source(path: Path) -> Path:
    """Exists, is a regular readable file, not empty, within the size limit."""
    from likeness.media import check_input_file

    check_input_file(path)
    return Path(path)


def _check_decodable(path: Path) -> None:
    """c2pa hashes bytes and would happily sign a truncated video; refuse what our
    media layer cannot open (it raises MediaError with the reason)."""
    from likeness.media import probe

    probe(path)


def _check_target(target: Path, inputs: Sequence[Path]) -> Path:
    """Refuse early what `atomic_output` would refuse late (after the encoding work),
    with the one check every writer uses (it also refuses symlinked targets)."""
    from likeness.fsio import check_output_path

    return check_output_path(Path(target), [Path(p) for p in inputs])


def _check_suffix(target: Path, mime: str) -> None:
    allowed = c2pa_io.SIGNABLE[mime]
    if target.suffix.lower() not in allowed:
        raise OutputError(
            f"output {target.name} must end in {' or '.join(allowed)} "
            f"(the file is {c2pa_io.FORMAT_NAMES[mime]})"
        )


def _ingredient_sources(
    paths: Sequence[Path], parent: Path | None = None
) -> list[c2pa_io.IngredientSource]:
    """The parent (parentOf, what c2pa.opened opened) first, then the inputs (inputTo);
    each with its sha256, so that an ingredient without a manifest is bound too."""
    sources = []
    for raw, relationship in [
        *([(parent, "parentOf")] if parent is not None else []),
        *((p, "inputTo") for p in paths),
    ]:
        path = _check_source(Path(raw))
        mime = c2pa_io.sniff(path) or mimetypes.guess_type(path.name)[0]
        if not mime:
            raise InputError(
                f"ingredient {path.name} is {c2pa_io.describe(path)}: "
                "C2PA cannot record it as an ingredient"
            )
        definition = ingredient_definition(path.name, relationship, sha256=sha256_file(path))
        sources.append(c2pa_io.IngredientSource(definition, path, mime))
    return sources


THUMBNAIL_EDGE = 512  # longest side of a video's claim thumbnail, in pixels


def _video_thumbnail(path: Path) -> bytes | None:
    """A JPEG of the video's first frame for the claim thumbnail (c2pa makes one for
    images only), or None where that frame cannot be had."""
    import cv2

    from likeness.errors import LikenessError
    from likeness.media import iter_frames

    try:
        frame = next(iter(iter_frames(path, max_frames=1)), None)
    except LikenessError:
        return None
    if frame is None:
        return None
    rgb = frame.image
    scale = THUMBNAIL_EDGE / max(rgb.shape[:2])
    if scale < 1:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    return buf.tobytes() if ok else None


def _opened_parent(actions: Sequence[str], parent: Path | None, what: str) -> Path | None:
    """The file a c2pa.opened manifest names as its parentOf ingredient (C2PA 2.x wants
    one); None when the first action is not c2pa.opened."""
    names = check_actions(actions)
    if names[0] != "c2pa.opened":
        return None
    if parent is None:
        raise InputError(f"c2pa.opened needs the file that was opened: pass it as the first {what}")
    return Path(parent)


# ---------------------------------------------------------------- signing


def _sign_into(
    unsigned: Path,
    target: Path,
    *,
    mime: str,
    keys: SigningKeys,
    inputs: Sequence[Path],
    ingredients: Sequence[Path],
    actions: Sequence[str],
    digital_source_type: str,
    model_name: str | None,
    model_hash: str | None,
    payload: Any | None,
    title: str | None,
    tsa_url: str | None,
    parent: Path | None = None,
    visible_label: dict | None = None,
) -> SignResult:
    """Sign `unsigned` into `target` atomically, read it back, hash and record it.

    `parent` is the parentOf ingredient (the file a c2pa.opened action opened);
    `visible_label` records a disclosure burnt into the pixels (manifest.build_manifest)."""
    from likeness.fsio import atomic_output

    payload_hex = payload_to_hex(payload) if payload is not None else None
    manifest = build_manifest(
        title=title or target.name,
        actions=actions,
        digital_source_type=digital_source_type,
        model_name=model_name,
        model_hash=model_hash,
        soft_binding=SoftBinding(payload_hex) if payload_hex else None,
        visible_label=visible_label,
    )
    sources = _ingredient_sources(ingredients, parent)
    thumbnail = _video_thumbnail(unsigned) if mime == c2pa_io.MP4 else None
    with atomic_output(target, inputs=tuple(inputs)) as tmp:
        tmp = Path(tmp)
        c2pa_io.sign_stream(
            unsigned,
            tmp,
            mime=mime,
            manifest=manifest,
            keys=keys,
            ingredients=sources,
            tsa_url=tsa_url,
            thumbnail=thumbnail,
            created_labels=CREATED_LABELS,
        )
        # Read back with our own root as anchor: anything but Trusted means the file we
        # are about to publish would not verify, so it must not be published.
        readback = c2pa_io.read_manifest(tmp, mime=mime, trust_pems=[keys.root_pem])
        if readback is None or readback.state != "Trusted":
            codes = ", ".join(s.code for s in (readback.failures if readback else []))
            raise ProvenanceError(
                f"the signed {target.name} does not verify against our own root ({codes})"
            )
        digest = sha256_file(tmp)
        record = Store().record(
            sha256=digest,
            manifest=readback.store,
            file_name=safe_title(target.name),
            payload_hex=payload_hex,
            content_id=getattr(payload, "content_id", None),
            key_id=getattr(payload, "key_id", None),
        )
    return SignResult(
        target=target,
        mime=mime,
        sha256=digest,
        manifest_label=readback.active_label,
        manifest=readback.active or {},
        payload=payload,
        payload_hex=payload_hex,
        record_id=record.id,
    )


def sign_file(
    src: Path,
    dst: Path,
    *,
    ingredients: Sequence[Path] = (),
    actions: Sequence[str] = ("c2pa.created",),
    digital_source_type: str = "trainedAlgorithmicMedia",
    model_name: str | None = None,
    model_hash: str | None = None,
    soft_binding: Any | None = None,
    title: str | None = None,
    tsa_url: str | None = None,
) -> SignResult:
    """Sign an MP4, JPEG or PNG into `dst` with a C2PA manifest (pixels untouched).

    `soft_binding` is the watermark `Payload` the pixels already carry, if any. Offline
    unless `tsa_url` names a timestamp authority.
    """
    src = _check_source(Path(src))
    dst = Path(dst)
    mime = c2pa_io.sniff(src)
    if mime is None:
        raise InputError(
            f"{src.name} is {c2pa_io.describe(src)}: likeness signs MP4, JPEG and PNG files"
        )
    ingredient_paths = [Path(p) for p in ingredients]
    _check_target(dst, [src, *ingredient_paths])
    _check_suffix(dst, mime)
    _check_decodable(src)
    parent = _opened_parent(actions, src, "argument")  # the file opened is the one signed
    keys = load_signing()
    return _sign_into(
        src,
        dst,
        mime=mime,
        keys=keys,
        inputs=[src, *ingredient_paths],
        ingredients=ingredient_paths,
        actions=actions,
        digital_source_type=digital_source_type,
        model_name=model_name,
        model_hash=model_hash,
        payload=soft_binding,
        title=title,
        tsa_url=tsa_url,
        parent=parent,
    )


# ---------------------------------------------------------------- marking


@dataclass
class _Marking:
    """Keys, watermark key and a fresh payload, loaded before any work is done."""

    keys: SigningKeys
    secret: bytes = field(repr=False)
    payload: Any


def _prepare() -> _Marking:
    keys = load_signing()
    wm_key = watermark_key()
    try:
        from likeness.provenance.watermark import Payload
    except ImportError as err:
        raise SetupError(
            "the watermark module is missing from this install; reinstall likeness"
        ) from err
    return _Marking(keys=keys, secret=wm_key.secret, payload=Payload.random(wm_key.key_id))


_WORK_SUFFIX = ".likeness"
_OWNER = "owner.json"


def _process_start(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, /proc/PID/stat field 22), so that a
    reused pid is not mistaken for the owner; None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the name in (...) may hold spaces
    return fields[19] if len(fields) > 19 else None


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid())}


def _owner_gone(folder: Path) -> bool:
    """True only when `folder`'s owner file names a process of this host that has ended
    (or whose pid now belongs to a later process); unknown owners are left alone."""
    try:
        owner = json.loads((folder / _OWNER).read_text())
        host, pid, start = owner["host"], int(owner["pid"]), owner.get("start")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return start is not None and _process_start(pid) not in (None, start)


def _remove_stale_work_folders(folder: Path) -> None:
    """Remove work folders that runs killed outright (SIGKILL, power loss) left behind:
    nothing else ever would. Best effort: it must never fail the output being made."""
    with contextlib.suppress(OSError):
        for path in folder.glob(f".*{_WORK_SUFFIX}"):
            if path.is_dir() and not path.is_symlink() and _owner_gone(path):
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _private_tempdir(beside: Path):
    """A hidden temp folder in the target's folder (same disk, so the rename is cheap);
    removed whatever happens short of SIGKILL. For that case it names its owner, and
    opening one removes those whose owner is gone."""
    from likeness.fsio import hidden_name

    _remove_stale_work_folders(beside.parent)
    tail = "XXXXXXXX.likeness"  # mkdtemp puts 8 random characters before the suffix
    prefix = hidden_name(beside.name, f".{tail}")[: -len(tail)]
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=_WORK_SUFFIX, dir=beside.parent))
    try:
        (path / _OWNER).write_text(json.dumps(_owner()))
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _embedder(marking: _Marking):
    from likeness.provenance.watermark import Embedder, WatermarkConfig

    return Embedder(marking.secret, marking.payload, WatermarkConfig())


def mark_and_sign(
    src: Path,
    dst: Path,
    *,
    ingredients: Sequence[Path] = (),
    model_name: str | None = None,
    model_hash: str | None = None,
    actions: Sequence[str] = ("c2pa.created",),
    digital_source_type: str = "trainedAlgorithmicMedia",
    crf: int = 18,
) -> SignResult:
    """Watermark an existing video or image, sign it into `dst`, record it.

    Videos are re-encoded to H.264 MP4 (`dst` must end in .mp4); images keep their
    kind (`dst` .png or .jpg). `src` itself is not an ingredient (it is this output
    before marking); pass the real inputs (photo, driving video) as `ingredients`.
    """
    from likeness.media import read_image, write_image
    from likeness.provenance.watermark import embed_file

    src = _check_source(Path(src))
    dst = Path(dst)
    ingredient_paths = [Path(p) for p in ingredients]
    _check_target(dst, [src, *ingredient_paths])
    still = c2pa_io.sniff(src) in (c2pa_io.JPEG, c2pa_io.PNG)
    mime = _image_mime(dst) if still else c2pa_io.MP4
    _check_suffix(dst, mime)
    parent = _opened_parent(actions, src, "argument")  # what was opened: the unmarked file
    marking = _prepare()
    with _private_tempdir(dst) as tmpdir:
        unsigned = tmpdir / f"unsigned{dst.suffix.lower()}"
        if still:
            marked = _embedder(marking).embed(read_image(src))
            write_image(unsigned, marked)
        else:
            embed_file(src, unsigned, key=marking.secret, payload=marking.payload, crf=crf)
        return _finish(
            unsigned, dst, marking, mime, [src, *ingredient_paths], ingredient_paths,
            actions, digital_source_type, model_name, model_hash, parent,
        )  # fmt: skip


def _image_mime(dst: Path) -> str:
    suffix = dst.suffix.lower()
    for mime in (c2pa_io.JPEG, c2pa_io.PNG):
        if suffix in c2pa_io.SIGNABLE[mime]:
            return mime
    raise OutputError(f"output {dst.name} must end in .png, .jpg or .jpeg for an image")


def mark_image(
    rgb: np.ndarray,
    dst: Path,
    *,
    ingredients: Sequence[Path] = (),
    model_name: str | None = None,
    model_hash: str | None = None,
    actions: Sequence[str] = ("c2pa.created",),
    digital_source_type: str = "trainedAlgorithmicMedia",
) -> SignResult:
    """Watermark an RGB still, write it as PNG or JPEG, sign and record it."""
    from likeness.media import write_image

    dst = Path(dst)
    ingredient_paths = [Path(p) for p in ingredients]
    _check_target(dst, ingredient_paths)
    parent, rest = _split_parent(actions, ingredient_paths)
    mime = _image_mime(dst)
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise InputError("mark_image needs an RGB image (height x width x 3)")
    marking = _prepare()
    with _private_tempdir(dst) as tmpdir:
        unsigned = tmpdir / f"unsigned{dst.suffix.lower()}"
        write_image(unsigned, _embedder(marking).embed(np.ascontiguousarray(rgb, np.uint8)))
        return _finish(
            unsigned, dst, marking, mime, ingredient_paths, rest,
            actions, digital_source_type, model_name, model_hash, parent,
        )  # fmt: skip


def _check_mark_readable(unsigned: Path, dst: Path, marking: _Marking) -> None:
    """Read the watermark back from the encoded pixels before signing: a manifest whose
    soft binding names a payload the pixels do not carry would be a false promise, and
    an output that loses its manifest would then trace back to nothing."""
    from likeness.provenance.watermark import detect_file

    found = detect_file(unsigned, key=marking.secret, key_id=marking.payload.key_id)
    if not (found.found and found.payload == marking.payload):
        raise ProvenanceError(
            f"the watermark cannot be read back from {dst.name} after encoding "
            f"(sync z {found.sync_z:.1f}); nothing was written. The picture may be too "
            "small, too short or too flat to carry it: try a larger or longer output"
        )


def _finish(
    unsigned: Path,
    dst: Path,
    marking: _Marking,
    mime: str,
    inputs: Sequence[Path],
    ingredients: Sequence[Path],
    actions: Sequence[str],
    digital_source_type: str,
    model_name: str | None,
    model_hash: str | None,
    parent: Path | None = None,
    visible_label: dict | None = None,
) -> SignResult:
    _check_mark_readable(unsigned, dst, marking)
    return _sign_into(
        unsigned,
        dst,
        mime=mime,
        keys=marking.keys,
        inputs=inputs,
        ingredients=ingredients,
        actions=actions,
        digital_source_type=digital_source_type,
        model_name=model_name,
        model_hash=model_hash,
        payload=marking.payload,
        title=dst.name,
        tsa_url=None,
        parent=parent,
        visible_label=visible_label,
    )


def _split_parent(
    actions: Sequence[str], ingredients: Sequence[Path]
) -> tuple[Path | None, list[Path]]:
    """For c2pa.opened, the first ingredient is the parent (the file opened)."""
    paths = [Path(p) for p in ingredients]
    parent = _opened_parent(actions, paths[0] if paths else None, "ingredient")
    return parent, (paths[1:] if parent is not None else paths)


class MarkedVideoWriter:
    """Write generated frames as a watermarked, signed, recorded MP4.

        with MarkedVideoWriter(out, fps, ingredients=[photo, driving]) as writer:
            for rgb in frames:
                writer.write(rgb)
        writer.result  # SignResult: target, payload, sha256, manifest

    Keys load in the constructor: a missing key or a wrong passphrase fails before the
    first frame. Frames are watermarked, encoded to a temp file, and signed into
    `target` when the block ends without an exception; with one, nothing is left (no
    target, no temp file, no store record).
    """

    def __init__(
        self,
        target: Path,
        fps: float,
        *,
        ingredients: Sequence[Path] = (),
        audio_from: Path | None = None,
        model_name: str | None = None,
        model_hash: str | None = None,
        crf: int = 18,
        preset: str = "medium",
        actions: Sequence[str] = ("c2pa.created",),
        visible_label: dict | None = None,
    ) -> None:
        self.target = Path(target)
        # The caller burns the label into the frames it writes; the manifest records it.
        self.visible_label = dict(visible_label) if visible_label is not None else None
        self.fps = fps
        self.ingredients = [Path(p) for p in ingredients]
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.model_name = model_name
        self.model_hash = model_hash
        self.crf = crf
        self.preset = preset
        self.actions = tuple(actions)
        self.result: SignResult | None = None
        self.frames = 0
        inputs = [*self.ingredients, *([self.audio_from] if self.audio_from else [])]
        for path in inputs:
            _check_source(path)
        self._inputs = inputs
        _check_target(self.target, inputs)
        _check_suffix(self.target, c2pa_io.MP4)
        self._parent, self._other_ingredients = _split_parent(self.actions, self.ingredients)
        self._marking = _prepare()
        self._embedder = _embedder(self._marking)
        self._tmpdir_cm: contextlib.AbstractContextManager[Path] | None = None
        self._tmpdir: Path | None = None
        self._writer: Any | None = None
        self._closed = False

    @property
    def payload(self) -> Any:
        return self._marking.payload

    def __enter__(self) -> MarkedVideoWriter:
        return self

    def write(self, rgb: np.ndarray) -> None:
        if self._closed:
            raise OutputError(f"{self.target.name}: write() after the writer was closed")
        if self._writer is None:
            self._open()
        self._writer.write(self._embedder.embed(rgb))
        self.frames += 1

    def _open(self) -> None:
        from likeness.media import VideoWriter

        self._tmpdir_cm = _private_tempdir(self.target)
        self._tmpdir = self._tmpdir_cm.__enter__()
        try:
            writer = VideoWriter(
                self._tmpdir / "unsigned.mp4",
                self.fps,
                crf=self.crf,
                preset=self.preset,
                audio_from=self.audio_from,
                inputs=tuple(self._inputs),
            )
            writer.__enter__()
        except BaseException:
            self._drop_tmpdir()
            raise
        self._writer = writer

    def _drop_tmpdir(self) -> None:
        if self._tmpdir_cm is not None:
            self._tmpdir_cm.__exit__(None, None, None)
        self._tmpdir_cm = None
        self._tmpdir = None

    def abort(self, exc: BaseException | None = None) -> None:
        """Throw away everything written so far."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._writer is not None:
                error = exc or OutputError("aborted")
                with contextlib.suppress(Exception):
                    self._writer.__exit__(type(error), error, error.__traceback__)
        finally:
            self._writer = None
            self._drop_tmpdir()

    def close(self) -> SignResult:
        """Finish the video, then sign, record and rename it into place."""
        if self._closed:
            if self.result is None:
                raise OutputError(f"{self.target.name}: the writer was aborted")
            return self.result
        if self._writer is None:
            self.abort()
            raise MediaError(f"no frames were written to {self.target.name}")
        try:
            writer, self._writer = self._writer, None
            writer.__exit__(None, None, None)
            assert self._tmpdir is not None
            self.result = _finish(
                self._tmpdir / "unsigned.mp4", self.target, self._marking, c2pa_io.MP4,
                self._inputs, self._other_ingredients, self.actions, "trainedAlgorithmicMedia",
                self.model_name, self.model_hash, self._parent, self.visible_label,
            )  # fmt: skip
        finally:
            self._closed = True
            self._drop_tmpdir()
        return self.result

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.abort(exc)
            return
        self.close()
