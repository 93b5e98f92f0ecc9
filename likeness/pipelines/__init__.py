"""Pipelines: the jobs that combine models, faces, media and provenance.

One module per job: `animate` (with `driving` motion and `compositing` split off),
`scan` (+ `scan_runner`, `report`), `fakes` (detector training sets). The only layer
that combines those packages; nothing generated leaves it unmarked. Importing this
package loads nothing.
"""
