"""`likeness serve`: a local web app and JSON API over scan, verify and animate.

`create_app(ServeConfig(...))` gives the FastAPI app (app.py); the page (page.py), the
self-contained API docs (docs.py), uploads streamed under a limit into per-request
folders (uploads.py, sniff.py) and the loaded models (engine.py) are its parts. FastAPI
is imported only inside this package, and only when an app is made: importing it loads
nothing (the names below resolve on first use).
"""

from __future__ import annotations

from likeness.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "likeness.serve.app": ("create_app", "require_fastapi"),
        "likeness.serve.config": ("ServeConfig", "is_loopback"),
        "likeness.serve.engine": ("Engine",),
    },
)
