"""Jupyter kernel integration: the IPython extension, the ``%flovyn`` magic, batch mode and
:func:`~flovyn_nb.kernel.waiting.wait_all`.

- ``extension.py``: ``%load_ext`` / ``%reload_ext`` / shutdown: one engine per kernel.
- ``magics.py``: ``%flovyn runs|show|start|resolve|reject|cancel|panel|dashboard|sql|wait``.
- ``mode.py``: interactive or batch (papermill) panels, chosen or detected.
- ``waiting.py``: ``fn.wait_all()``, which waits for this kernel's runs to end or suspend.
- ``redefinition.py``: the warning shown when a cell changes a workflow with runs in flight.

Waiting for a run in a cell, and the panels' buttons
----------------------------------------------------
The kernel handles button clicks (comm messages) on its main thread, between or around
cells. The engine runs in its own thread, so runs progress whatever the cell does, but
whether a *click* is handled while a cell waits depends on how it waits:

- ``await handle`` (top-level await in a cell) on ipykernel 7: the cell yields to the
  kernel's event loop, so clicks are handled while it waits; resolving a promise from the
  run's panel lets the awaited run finish and the cell completes.
- ``await handle`` on ipykernel 6: the kernel handles no other shell message until the
  cell ends, so clicks queue up; a cell that awaits a run which needs a click waits until
  interrupted (or resolved from elsewhere: another kernel, ``flovyn-nb resolve``).
- ``handle.result()`` blocks the main thread on any ipykernel: clicks queue until it
  returns (use ``result(timeout=...)``); the queued clicks are handled afterwards.

So a cell that waits for a human should ``await handle`` (ipykernel 7), or not wait at all:
the panel shows the result when it comes.
"""
