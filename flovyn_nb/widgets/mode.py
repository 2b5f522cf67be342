"""Display mode: live widgets (interactive) or static text/HTML only (batch).

The kernel extension calls :func:`set_mode`; without it ``FLOVYN_NB_MODE`` decides, and
the default is interactive. In batch mode nothing opens a comm, and a run's display first
waits (up to ``settle_timeout``) for the run to finish or suspend, so that papermill output
and nbval see the same summary on every execution.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Literal

from flovyn_nb.errors import InvalidInput

Mode = Literal["interactive", "batch"]
_MODES: tuple[Mode, ...] = ("interactive", "batch")
DEFAULT_SETTLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Settings:
    mode: Mode
    settle_timeout: float


_lock = threading.Lock()
_settings: _Settings | None = None


def _parse(mode: str) -> Mode:
    value = mode.strip().lower()
    for known in _MODES:
        if value == known:
            return known
    raise InvalidInput(f"unknown display mode {mode!r}; use 'interactive' or 'batch'")


def set_mode(mode: str, *, settle_timeout: float | None = None) -> None:
    """Choose how runs display: ``"interactive"`` (live widget) or ``"batch"`` (static).

    Args:
        mode: ``"interactive"`` or ``"batch"``.
        settle_timeout: in batch mode, how long a run's display waits for the run to
            finish or suspend before it shows whatever state the run is in (seconds).

    Raises:
        InvalidInput: an unknown mode or a negative timeout.
    """
    global _settings
    parsed = _parse(mode)
    if settle_timeout is not None and settle_timeout < 0:
        raise InvalidInput("settle_timeout must not be negative")
    with _lock:
        _settings = _Settings(
            parsed, DEFAULT_SETTLE_TIMEOUT if settle_timeout is None else settle_timeout
        )


def reset_mode() -> None:
    """Forget :func:`set_mode`; ``FLOVYN_NB_MODE`` (or interactive) applies again."""
    global _settings
    with _lock:
        _settings = None


def _current() -> _Settings:
    settings = _settings
    if settings is not None:
        return settings
    env = os.environ.get("FLOVYN_NB_MODE", "").strip()
    try:
        mode = _parse(env) if env else "interactive"
    except InvalidInput:
        mode = "interactive"  # a typo in the environment must not break every display
    return _Settings(mode, DEFAULT_SETTLE_TIMEOUT)


def get_mode() -> Mode:
    """The display mode in force (``set_mode``, else ``FLOVYN_NB_MODE``, else interactive)."""
    return _current().mode


def settle_timeout() -> float:
    return _current().settle_timeout
