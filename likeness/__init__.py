"""likeness: make, mark and catch synthetic portrait videos."""

__version__ = "0.1.0"
