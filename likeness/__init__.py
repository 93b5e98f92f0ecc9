"""likeness: make, mark and catch synthetic portrait videos.

    import likeness
    likeness.scan("clip.mp4").verdict          # a ScanResult
    likeness.verify("animated.mp4").manifest   # a Verification
    likeness.animate("photo.jpg", "out.mp4", motion="nod,blink")

Importing the package loads nothing: the names resolve from `likeness.api` on first use.
"""

from likeness.lazy import lazy_exports

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.api": (
            "AnimateConfig", "ScanConfig", "ScanResult", "Verification", "animate",
            "report_html", "scan", "scan_file", "verify",
        ),
    },
)  # fmt: skip
