"""Run a command and write its own rusage as JSON to the file named first.

    python benchmarks/measure.py RESULT.json CMD [ARGS...]

Why a separate small process: on Linux a child's ru_maxrss starts at its parent's RSS at fork
time and survives exec, so a command spawned straight from a benchmark process that holds 100 MB
of test events would report at least 100 MB. Spawned from this small launcher, the floor is this
launcher's own RSS (~10 MB), below anything measured. CPU and wall are the command's alone.
stdin, stdout and stderr are inherited.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    out, cmd = argv[1], argv[2:]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    with open(out, "w") as fh:
        json.dump({"rc": rc, "wall": wall, "user": ru.ru_utime, "sys": ru.ru_stime, "maxrss_kb": ru.ru_maxrss}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
