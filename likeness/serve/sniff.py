"""What an upload is, from its first bytes: an image likeness decodes, a video container
FFmpeg commonly reads, or neither (refused before the rest of it is stored).

The client's file name and Content-Type say nothing here: a PNG named `clip.mp4` is an
image, a shell script named `clip.mp4` is refused. The decoder has the last word later
(`media.probe` inside the scan, verify and animate pipelines); this is the cheap gate
that keeps non-media off the disk. The suffix returned names the stored copy, so
tools that look at names see the truth; it is always one of `media.suffixes`.
"""

from __future__ import annotations

from likeness.media.inputs import sniff_image_format

# Bytes needed to decide: an MPEG transport stream shows its 0x47 sync byte at 0, 188
# and 376; every other signature below sits in the first 64 bytes.
HEAD_BYTES = 512

# Every suffix here is one of media.suffixes (tests/test_serve.py checks).
_IMAGE_SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "bmp": ".bmp"}
# Classic QuickTime files may start with one of these atoms instead of `ftyp`.
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
_TS_PACKET = 188


def sniff_upload(head: bytes) -> tuple[str, str] | None:
    """`(kind, suffix)` for the first bytes of a file, kind "image" or "video"; None when
    they match no format likeness reads. `head` is the first `HEAD_BYTES` bytes (or the
    whole file when it is shorter)."""
    fmt = sniff_image_format(head)
    if fmt is not None:
        return "image", _IMAGE_SUFFIX[fmt]
    suffix = _video_suffix(head)
    return ("video", suffix) if suffix is not None else None


def _video_suffix(head: bytes) -> str | None:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return ".mov"
        return ".3gp" if brand.startswith(b"3g") else ".mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return ".mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska or WebM
        return ".webm" if b"webm" in head[:64] else ".mkv"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return ".avi"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):  # MPEG program / video
        return ".mpg"
    if len(head) > 2 * _TS_PACKET and all(head[i] == 0x47 for i in (0, 188, 376)):
        return ".ts"
    return None


def describe_head(head: bytes) -> str:
    """A few words on what a refused upload looks like (for its one-line error)."""
    if not head:
        return "it is empty"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:256]):
        return "it looks like text"
    return "its first bytes match no video or image format"
