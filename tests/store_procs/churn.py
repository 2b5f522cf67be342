"""A zygote for tests/test_crash_safety.py: forks writers that the test kills with SIGKILL.

Usage: ``python churn.py STORE``. duckdb and the store are imported once here; each
``go N`` line on stdin forks a child that loops: open the store, commit the row ``N``
(then N+1, ...), print ``ack N``, close the store (which checkpoints when the WAL is over
``FLOVYN_NB_CHECKPOINT_WAL`` bytes) — a ``flovyn-nb resolve`` per iteration, without an
interpreter's start-up. The zygote prints ``child PID`` for each fork and ``reaped PID``
once the test has killed it (so the test knows the child is gone). Each line is one
``write`` to the pipe, so lines of the zygote and its children never interleave.
"""

from __future__ import annotations

import os
import sys

import duckdb

from flovyn_nb.store.duckdb import DuckDBStore as Store


def say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def child(path: str, first: int) -> None:
    number = first
    while True:
        store = Store(path)

        def insert(con: duckdb.DuckDBPyConnection, number: int = number) -> None:
            con.execute(
                "INSERT INTO logs VALUES ('churn', NULL, now()::TIMESTAMP, 'stdout', 'INFO', ?)",
                [str(number)],
            )

        store.transaction(insert)
        say(f"ack {number}")
        store.close()
        number += 1


def main() -> None:
    path = sys.argv[1]
    say("ready")
    for line in sys.stdin:
        words = line.split()
        if words[:1] != ["go"]:
            continue
        pid = os.fork()
        if pid == 0:
            try:
                child(path, int(words[1]))
            finally:
                os._exit(1)
        say(f"child {pid}")
        os.waitpid(pid, 0)
        say(f"reaped {pid}")


if __name__ == "__main__":
    main()
