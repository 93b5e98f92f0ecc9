"""Pipelines: the jobs that combine models, faces, media and provenance.

One module per job: `animate` (with `driving` motion and `compositing` split off),
`scan` (+ `scan_record`, `scan_runner`, `report`), `fakes` (detector training sets);
their options in `configs`. The only layer that combines those packages; nothing
generated leaves it unmarked. Importing this package loads nothing: the names below
resolve on first use (the job functions keep their modules' names: `animate.animate`).
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

_EXPORTS = {
    "AnimateResult": "likeness.pipelines.animate",
    "Animation": "likeness.pipelines.animate",
    "prepare": "likeness.pipelines.animate",
    "AnimateConfig": "likeness.pipelines.configs",
    "ScanConfig": "likeness.pipelines.configs",
    "FakesConfig": "likeness.pipelines.fakes",
    "FakesReport": "likeness.pipelines.fakes",
    "make_fakes": "likeness.pipelines.fakes",
    "write_report": "likeness.pipelines.report",
    "FileScan": "likeness.pipelines.scan",
    "Scanner": "likeness.pipelines.scan",
    "ScanRecord": "likeness.pipelines.scan_record",
    "ScanRun": "likeness.pipelines.scan_runner",
    "run_scan": "likeness.pipelines.scan_runner",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
