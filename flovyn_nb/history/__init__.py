"""Pure functions over a run's event history: the replay index and the fold.

- ``history.events``: :class:`~flovyn_nb.history.events.Event` (what both read), which
  events are commands (the 1-based step numbering everyone shares), and ``events_of``
  for events read through the client.
- ``history.replay``: :class:`~flovyn_nb.history.replay.History`, the index the engine
  replays a run against (commands matched per type and position).
- ``history.fold``: :func:`~flovyn_nb.history.fold.fold`, one pass over a run's events
  into a :class:`~flovyn_nb.history.folded.FoldedRun` (``history.folded``): the run's
  status, its steps with their attempts, the waits still open and the earliest deadline.

Nothing here does I/O or keeps state between calls. The package imports nothing by
itself, so the engine, which needs only the replay index, does not pay for the fold's
classes at start-up.
"""
