"""What every benchmark records beside its figures, and where corpus clips are found."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from likeness import __version__


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "likeness": __version__,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    return info


def corpus_dir() -> Path | None:
    """../shared/corpus beside the checkout, or LIKENESS_CORPUS."""
    explicit = os.environ.get("LIKENESS_CORPUS")
    candidates = [Path(explicit)] if explicit else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "corpus", Path.cwd().parent / "shared" / "corpus"]
    for path in candidates:
        if (path / "MANIFEST.tsv").is_file():
            return path
    return None


def write_json(out_dir: Path, name: str, payload: dict) -> Path:
    from likeness.fsio import atomic_output

    path = out_dir / f"{name}.json"
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2))
    return path
