"""The corpus index: the rows of a corpus folder's MANIFEST.tsv, each file once.

The corpus holds one clip under two names (`videos/ap-pose-ref.mp4` and
`videos/r3dp-may5s.mp4`, the same 359,008 bytes from two upstream projects): read
twice, it would weigh one person double in a pack and count one test clip twice in
the generator bench. Rows whose sha256 an earlier row already has are dropped (the
first name is kept; a row without a sha256 is always kept).
"""

from __future__ import annotations

import csv
from pathlib import Path

from likeness.errors import InputError

CORPUS_MANIFEST = "MANIFEST.tsv"


def is_corpus(root: Path) -> bool:
    return (Path(root) / CORPUS_MANIFEST).is_file()


def manifest_rows(root: Path, unique: bool = True) -> list[dict[str, str]]:
    """MANIFEST.tsv's rows (column -> value) in its order, repeats of a file dropped
    (`unique=False`: every row, for lookups by name, where each name must be found)."""
    path = Path(root) / CORPUS_MANIFEST
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if rows and "file" not in rows[0]:
        raise InputError(f"{path} has no 'file' column")
    if not unique:
        return rows
    seen: set[str] = set()
    kept = []
    for row in rows:
        digest = (row.get("sha256") or "").strip().lower()
        if digest and digest in seen:
            continue
        seen.add(digest)
        kept.append(row)
    return kept
