"""Options of `likeness serve`: where it listens, who may call it, what it accepts."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from likeness.config import JsonConfig
from likeness.errors import InputError
from likeness.pipelines.configs import ScanConfig

TOKEN_ENV = "LIKENESS_SERVE_TOKEN"
MB = 1_000_000
# A 10 s 1080p phone clip is 20-40 MB; 200 MB leaves room for a few minutes of video
# without letting one request fill a small disk.
DEFAULT_MAX_UPLOAD = 200 * MB
# Scripted or driven animation per request: 300 frames are 12 s at 25 fps, about a
# minute of CPU on the loaded 2-core machine; more belongs on the command line.
DEFAULT_ANIMATE_FRAMES = 300


def is_loopback(host: str) -> bool:
    """Whether `host` only reaches this machine (127.0.0.0/8, ::1, "localhost")."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


@dataclass(frozen=True)
class ServeConfig(JsonConfig):
    """Options of `likeness serve`; the CLI flags map one to one onto these."""

    config_name = "serve config"

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # required as `Authorization: Bearer T` when set
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD  # whole request body, counted as it streams
    temp_root: Path | None = None  # per-request folders go here; None: the system temp
    animate_max_frames: int = DEFAULT_ANIMATE_FRAMES
    scan: ScanConfig = field(default_factory=ScanConfig)
    generator_weights: Path | None = None  # animate's generator; None: the shipped one

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be 0-65535, got {self.port}")
        if self.max_upload_bytes < 1:
            raise InputError(f"--max-upload-mb must be positive, got {self.max_upload_bytes}")
        if not 1 <= self.animate_max_frames <= 10_000:
            raise InputError("--animate-max-frames must be 1-10000")
        if self.token is not None and not self.token.strip():
            raise InputError(f"the token is empty: give --token T or set {TOKEN_ENV}")
        if not self.token and not is_loopback(self.host):
            raise InputError(
                f"refusing to serve on {self.host} without a token: anyone who can reach "
                f"it could use it; give --token T (or set {TOKEN_ENV}), or bind 127.0.0.1"
            )

    @property
    def max_upload_mb(self) -> float:
        return self.max_upload_bytes / MB

    def describe_limit(self) -> str:
        return f"{self.max_upload_mb:g} MB"
