"""Detector: a face-crop classifier (real vs manipulated), its training, calibration,
frame -> video pooling, `likeness scan` and its report.

Importing this package loads nothing; `DetectorModel.from_pretrained()` does.
"""
