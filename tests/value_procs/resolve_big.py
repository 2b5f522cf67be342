"""Resolve a promise with a big value in a fresh process; print its memory as JSON.

usage: resolve_big.py STORE WORKFLOW_ID PROMISE MIB [rows]

Prints {"value_bytes", "before_kib", "peak_kib"}: the process's peak resident memory
after building the value and opening the store, and after resolving.
"""

from __future__ import annotations

import json
import resource
import sys

import flovyn_nb as fn


def peak_kib() -> int:
    # VmHWM is the peak of this program's own memory. ru_maxrss is not: Linux carries the
    # parent's resident size at fork over the exec into it (a big pytest process would
    # hide everything this one does).
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def main() -> None:
    store, workflow_id, name, mib = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    size = int(mib * 1024 * 1024)
    value: object
    if len(sys.argv) > 5 and sys.argv[5] == "rows":
        # rows of about 100 bytes of JSON each
        value = [
            {"id": i, "name": f"name-{i:08d}", "score": i * 0.5, "tags": ["a", "b"]}
            for i in range(size // 100)
        ]
    else:
        value = {"text": "x" * size}
    fn.pending_promises(workflow_id, store=store)  # the store's own memory is baseline
    before = peak_kib()
    fn.resolve_promise(workflow_id, name, value, store=store)
    print(json.dumps({"value_bytes": size, "before_kib": before, "peak_kib": peak_kib()}))


if __name__ == "__main__":
    main()
