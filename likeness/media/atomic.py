"""Moved to likeness.fsio (temporary re-export while other work lands)."""

from likeness.fsio import *  # noqa: F403
from likeness.fsio import NAME_MAX, hidden_name, install_dir, make_temp_dir  # noqa: F401
