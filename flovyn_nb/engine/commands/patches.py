"""Patching in-flight runs: ``ctx.patched`` (Temporal's ``patched``, DBOS's ``patch``)."""

from __future__ import annotations

from flovyn_nb.engine.commands.base import RunBase
from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import EventType, PatchMarker

E = EventType


class PatchCommands(RunBase):
    """``ctx.patched(patch_id)``: which branch of an edited workflow a run takes."""

    def patched(self, patch_id: str) -> bool:
        if not isinstance(patch_id, str) or not patch_id:
            raise InvalidInput("ctx.patched() needs a non-empty patch id, e.g. 'new-pricing'")
        known = self.patch_memo.get(patch_id)
        if known is not None:  # one answer per run, however often the code asks
            return known
        history = self.history
        if history is not None and patch_id in history.patches:
            taken = True  # the run took the new branch when it was recorded
        elif self.replaying:
            # History goes on past this point without the marker: it was recorded by the
            # code before the patch, and must replay on the old branch.
            taken = False
        else:
            # New ground (a new run, or past the end of history): take the new branch and
            # say so, so that every later replay takes it too. The marker is no step:
            # replay never matches it, so adding or removing patches shifts no numbering.
            self.emit(E.PATCH_MARKER, PatchMarker(patch_id=patch_id))
            taken = True
        self.patch_memo[patch_id] = taken
        return taken

    def deprecate_patch(self, patch_id: str) -> None:
        if not isinstance(patch_id, str) or not patch_id:
            raise InvalidInput("ctx.deprecate_patch() needs a non-empty patch id")
