"""Uploads: a per-request folder, and a multipart form streamed into it under a limit.

Nothing of a request lives outside its folder (`request_folder`), and the folder is gone
when the request is answered, whatever happened. The body is read chunk by chunk
(python-multipart's push parser, not Starlette's `request.form()`, which spools every
file to the system temp before we could look at it): the byte count is checked as the
chunks arrive, so an upload over the limit is refused at the limit, not after it is
stored; a file part is sniffed from its first `HEAD_BYTES` bytes before any of it is
written, so a non-media file never reaches the disk. The client's file name is used
only as a label (`display_name`): the stored file is `upload-N` plus the suffix its
content says.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from likeness.serve.errors import HttpError, NotMedia, UploadTooLarge
from likeness.serve.sniff import HEAD_BYTES, describe_head, sniff_upload
from likeness.ui import printable

MAX_FIELD_BYTES = 64 * 1024  # a text field (motion names, numbers) is short
MAX_NAME_CHARS = 200


@dataclass
class Upload:
    """One stored file part: where it is, what it is, what the client called it."""

    field: str
    path: Path
    kind: str  # "video" | "image"
    name: str  # display only (`display_name`), never a path
    size: int


@dataclass
class Form:
    files: dict[str, Upload] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)

    def file(self, name: str, kind: str | None = None, required: bool = True) -> Upload | None:
        """The upload in field `name`, checked to be `kind` ("video" or "image")."""
        upload = self.files.get(name)
        if upload is None:
            if required:
                raise HttpError(f'the form has no "{name}" file')
            return None
        if kind is not None and upload.kind != kind:
            raise NotMedia(f'"{name}" must be {"a" if kind == "video" else "an"} {kind}, '
                           f"and {upload.name} is {'a' if upload.kind == 'video' else 'an'} "
                           f"{upload.kind}")  # fmt: skip
        return upload


def display_name(raw: str | bytes | None) -> str:
    """The client's file name made into a label: its last path component, printable,
    at most `MAX_NAME_CHARS`; "upload" when nothing is left. It labels the answer and is
    escaped wherever it is shown; it never names a file on this machine."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = printable(name).strip()
    if name in ("", ".", ".."):
        return "upload"
    return name[:MAX_NAME_CHARS]


def temp_root(configured: Path | None) -> Path:
    """Where per-request folders go: the configured one, else `likeness-serve` in the
    system temp (created private)."""
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / "likeness-serve"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def request_folder(root: Path) -> Iterator[Path]:
    """A fresh private folder under `root`, removed on the way out (errors included)."""
    folder = Path(tempfile.mkdtemp(prefix="req-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the form


def boundary_of(content_type: str | None) -> bytes:
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise HttpError(
            "send the file as multipart/form-data (a form with a file field), "
            f"not {printable(content_type or 'no Content-Type')}",
            status=415,
        )
    return boundary


class _Collector:
    """python-multipart callbacks that turn the parts into a `Form` inside `folder`."""

    def __init__(self, folder: Path, file_fields: set[str], text_fields: set[str]):
        self.folder, self.file_fields, self.text_fields = folder, file_fields, text_fields
        self.form = Form()
        self._reset()

    def _reset(self) -> None:
        self.headers: dict[str, bytes] = {}
        self._field, self._value = b"", b""
        self.name: str | None = None
        self.filename: str | None = None
        self.head = b""
        self.text = b""
        self.size = 0
        self.handle: IO[bytes] | None = None
        self.path: Path | None = None
        self.kind = ""
        self.unchosen = False

    # -- headers
    def on_part_begin(self) -> None:
        self._reset()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self.headers.get("content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self.name = name
        if filename is not None:
            if name not in self.file_fields:
                raise HttpError(f'unexpected file field "{printable(name)}"')
            if name in self.form.files:
                raise HttpError(f'one file per field: "{name}" came twice')
            self.filename = display_name(filename)
            # A form's file input with no file chosen sends filename="" and no bytes.
            self.unchosen = filename == b""
        elif name not in self.text_fields:
            raise HttpError(f'unexpected form field "{printable(name)}"')

    # -- data
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self.filename is None:
            self.text += chunk
            if len(self.text) > MAX_FIELD_BYTES:
                raise HttpError(f'form field "{self.name}" is too long')
            return
        self.size += len(chunk)
        if self.handle is None:
            self.head += chunk
            if len(self.head) >= HEAD_BYTES:
                self._open()
            return
        self.handle.write(chunk)

    def _open(self) -> None:
        """Decide what the file is from its head; only then does anything hit the disk."""
        found = sniff_upload(self.head[:HEAD_BYTES])
        if found is None:
            raise NotMedia(
                f"{self.filename} is not a video or image likeness reads "
                f"({describe_head(self.head)})"
            )
        self.kind, suffix = found
        self.path = self.folder / f"upload-{len(self.form.files)}{suffix}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.handle = os.fdopen(fd, "wb")
        self.handle.write(self.head)
        self.head = b""

    def on_part_end(self) -> None:
        if self.filename is None:
            self.form.fields[self.name or ""] = self.text.decode("utf-8", "replace")
            return
        if self.size == 0 and self.unchosen:
            return  # the field was left empty: as if it were not sent
        if self.size == 0:
            raise NotMedia(f"{self.filename} is empty (0 bytes)")
        if self.handle is None:
            self._open()  # a file shorter than HEAD_BYTES
        assert self.handle is not None and self.path is not None
        self.handle.close()
        self.handle = None
        self.form.files[self.name or ""] = Upload(
            self.name or "", self.path, self.kind, self.filename, self.size
        )

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()

    def callbacks(self) -> dict:
        return {
            name: getattr(self, name)
            for name in (
                "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
                "on_headers_finished", "on_part_data", "on_part_end",
            )
        }  # fmt: skip


async def receive_form(
    headers: dict[str, str] | object,
    body: AsyncIterator[bytes],
    folder: Path,
    limit: int,
    file_fields: set[str],
    text_fields: set[str] = frozenset(),  # type: ignore[assignment]
    limit_text: str = "",
) -> Form:
    """Parse a multipart body from `body` (chunks as they arrive) into `folder`.

    Args:
        headers: the request headers (a mapping with `.get`).
        body: the body's chunks (Starlette's `request.stream()`).
        folder: the request's folder; file parts are stored here and nowhere else.
        limit: bytes the whole body may have; checked against Content-Length first and
            then against what actually arrives.
        file_fields: names of the file fields accepted; text_fields: of the text ones.
        limit_text: the limit in words, for the error.

    Raises:
        UploadTooLarge (413), NotMedia (415), HttpError (400) for a malformed form.
    """
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    boundary = boundary_of(headers.get("content-type"))
    too_large = UploadTooLarge(f"the upload is larger than the limit of {limit_text or limit}")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large  # before reading a byte of it
    collector = _Collector(folder, set(file_fields), set(text_fields))
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as err:
        raise HttpError(f"malformed multipart form: {' '.join(str(err).split())}") from None
    finally:
        collector.close()
    if not collector.form.files and not collector.form.fields:
        raise HttpError("the form is empty: send a file field")
    return collector.form
