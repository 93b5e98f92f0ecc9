"""Pipelines: the jobs that combine models, faces, media and provenance.

One module per job: `animate` (with `driving` motion and `compositing` split off),
`scan` (+ `scan_record`, `scan_runner`, `report`), `fakes` (detector training sets);
their options in `configs`. The only layer that combines those packages; nothing
generated leaves it unmarked. Importing this package loads nothing: the names below
resolve on first use (the job functions keep their modules' names: `animate.animate`).
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.pipelines.animate": ("AnimateResult", "Animation", "prepare"),
        "likeness.pipelines.configs": ("AnimateConfig", "ScanConfig"),
        "likeness.pipelines.fakes": ("FakesConfig", "FakesReport", "make_fakes"),
        "likeness.pipelines.report": ("write_report",),
        "likeness.pipelines.scan": ("FileScan", "Scanner"),
        "likeness.pipelines.scan_record": ("ScanRecord",),
        "likeness.pipelines.scan_runner": ("ScanRun", "run_scan"),
    },
)
