"""Tracebacks as a user wants to read them: the frames of their own code, with the
engine's machinery (its thread hops, run loop, command plumbing) hidden but counted.
Used by the panels and the CLI alike."""

from __future__ import annotations

__all__ = ["user_traceback"]

# Frames of the engine's own machinery (the thread hop, the run loop, the task
# executor): they say nothing about the user's code, so a traceback hides them.
_ENGINE_FRAME_MARKERS = (
    "/flovyn_nb/engine/",
    "/flovyn_nb/context.py",
    "/flovyn_nb/history/",
    "/anyio/",
    "/concurrent/futures/",
    "/asyncio/",
)


def user_traceback(text: str) -> tuple[str, int]:
    """``text`` without the frames of the engine (and anyio/asyncio) it ran through, and
    how many frames were hidden; a traceback with only such frames stays whole."""
    lines = text.splitlines()
    kept: list[str] = []
    hidden = 0
    skipping = False
    for line in lines:
        if line.startswith('  File "'):
            skipping = any(marker in line for marker in _ENGINE_FRAME_MARKERS)
            hidden += skipping
            if not skipping:
                kept.append(line)
            continue
        if skipping and line.startswith("    "):
            continue  # the frame's source line and its ^^^ marks
        skipping = False
        kept.append(line)
    if hidden and not any(line.startswith('  File "') for line in kept):
        return text, 0
    return "\n".join(kept), hidden
