"""The Jupyter server extension: the store's runs, promises and definitions over REST.

Everything is under ``/flovyn-nb/api/`` (see ``openapi.py`` for the document served at
``openapi.json``) behind Jupyter's authentication and XSRF checks:

- ``app/extension.py``: :class:`~flovyn_nb.server.app.extension.FlovynNb`, the
  ``ExtensionApp`` (config ``c.FlovynNb.store``), which finds the store and adds the routes;
- ``door.py``: the one way handlers reach the store: ``flovyn_nb.client`` door functions
  run on a small thread pool (the tornado loop never waits on the store's file lock);
- ``shapes.py``: the JSON the API returns (camelCase keys, ISO 8601 times);
- ``listing.py`` / ``metrics.py``: paging of the runs list and the metrics, over client reads;
- ``feed.py``: one change feed per server (the store's doorbell through ``client.watch``)
  turned into "run changed" / "promise waiting" messages for every open event stream;
- ``handlers/``: the tornado handlers, one module per resource;
- ``errors.py``: flovyn errors to HTTP statuses with ``{"error": "<one line>"}``.

The server never starts an engine and never runs user code: it reads and writes the
store through the client only (runs are executed by kernels and workers).
"""
