"""The delivery matrix: every shipped Fluent Bit template x scenario, with a real Fluent Bit on both ends.

    python benchmarks/bench_delivery.py                       # the matrix the test suite runs
    python benchmarks/bench_delivery.py --templates splunk.conf,http-input.yaml --scenarios kill9
    python benchmarks/bench_delivery.py --kills 5 --events 4000 --workers 4
    FLUENT_BIT=/path/to/fluent-bit python benchmarks/bench_delivery.py

Counts distinct event ids at each receiver against the simulator's truth, and duplicates. Needs a
Fluent Bit binary (FLUENT_BIT or PATH). It measures: the exit status is 0 unless --strict, which
exits 1 when a case breaks the acceptance rule (nothing lost; duplicates within one page, plus the
replayed events, per restart). The test suite runs the same cases (tests/test_delivery.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.delivery_harness import (  # noqa: E402
    SCENARIOS,
    TEMPLATES,
    Settings,
    find_fluent_bit,
    format_matrix,
    run_matrix,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--templates", help="comma-separated template names (default: every shipped one)")
    p.add_argument("--scenarios", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    p.add_argument("--workers", type=int, default=6, help="cases run at once (default 6)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs, received files)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a case breaks the acceptance rule")
    for f in fields(Settings):
        if f.type in ("int", "float", "int | None"):
            p.add_argument(f"--{f.name.replace('_', '-')}", type=float if f.type == "float" else int,
                           help=f"Settings.{f.name} (default {f.default})")
    args = p.parse_args(argv)
    binary = find_fluent_bit()
    if binary is None:
        print("no Fluent Bit: set FLUENT_BIT or put fluent-bit on PATH", file=sys.stderr)
        return 2
    settings = Settings()
    for f in fields(Settings):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(settings, f.name, value)
    names = args.templates.split(",") if args.templates else [t.name for t in TEMPLATES]
    specs = [t for t in TEMPLATES if t.name in names]
    if len(specs) != len(names):
        print(f"unknown template(s): {set(names) - {t.name for t in specs}}", file=sys.stderr)
        return 2
    scenarios = tuple(args.scenarios.split(",")) if args.scenarios else SCENARIOS
    root = Path(tempfile.mkdtemp(prefix="delivery-matrix-"))
    started = time.monotonic()
    results = run_matrix(binary, specs, scenarios, root, settings, workers=args.workers,
                         log=lambda m: print(f"[{time.monotonic() - started:6.1f}s] {m}", flush=True))
    print()
    print(f"Fluent Bit: {binary}; {settings}")
    print(format_matrix(results))
    failing = {key: r.failures() for key, r in results.items() if r.failures()}
    print(f"\n{len(results)} cases in {time.monotonic() - started:.0f}s; {len(failing)} break the acceptance rule")
    for (template, scenario), problems in failing.items():
        print(f"  {template} {scenario}: {'; '.join(problems)}")
    if args.keep:
        print(f"work directory kept: {root}")
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return 1 if args.strict and failing else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
