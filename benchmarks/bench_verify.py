"""Verify: `genesys-audit-shipper verify FILE` on 1,000,000 chained records, in order and shuffled.

    python benchmarks/bench_verify.py [--records 1000000] [--base 100000] [--quick]

The records are the shipper's own: a simulator (own process) serves `--base` events, and one
`run --once` (siem schema, `output.chain: sha256`, the default) writes them to a file. When more
records are asked for than the simulator served, the file is repeated with the shipper's own chain
code (`shipper.proof.chain.Chainer.seal`, what the pipeline seals each line with): every copy gets
fresh event ids (`siem_event_id` and the embedded event's `id`), its dates moved back by whole
spans so the stream stays in time order, and new `audit_seq` numbers; every line is re-chained
from the one before it. The last copy is the real output with its sequence numbers moved only.
Only bytes that canonical JSON writes verbatim change (an ASCII UUID for another, an ISO date for
another of the same length, a decimal integer), so each line stays canonical; a sample is checked
against `shipper.proof.canonical` and the whole file must verify OK (exit 0) with the record
count asked for. --quick verifies the real 100,000-record output as written, no copies.

A second row verifies a shuffled copy of the same file (lines in a uniformly random order, as a
SIEM export comes back): verify digests every line and sorts by stream and sequence on disk, so
the order of the input is its own cost. Shuffled in buckets on disk: this process never holds
the file.

Each verify runs through measure.py: wall, CPU (user+sys of verify and of its pool workers, which
it waits for) and peak RSS (ru_maxrss: the largest single process, verify or one worker; not their
sum). Targets: >= 100,000 records/s and < 100 MB peak RSS, judged on the worse of the two rows.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import uuid
from pathlib import Path
from typing import Any

from common import SHIPPER, ChildRun, SimProcess, check, count_lines, run_child, scratch, table, write_config

from shipper.models import format_ms, parse_event_time_ms
from shipper.proof import canonical
from shipper.proof.chain import CHAIN_FIELD, Chainer
from shipper.schemas.common import Stamp
from shipper.store import ChainHead

TARGET_RPS = 100_000
TARGET_RSS_MB = 100.0
STREAM = "standard"  # the one stream of a config without routing tiers or orgs
_SEQ = re.compile(rb'"audit_seq":(\d+),"audit_stream":"([^"]*)",')  # not always first: `_truncated` sorts before
_ID = re.compile(rb'"siem_event_id":"([^"]+)"')
_DATE = re.compile(rb'"siem_timestamp":"([^"]+)"')
_SEAL = b',"' + CHAIN_FIELD.encode() + b'":"'
_SEAL_LEN = len(_SEAL) + 64 + 2  # ,"audit_chain":"<64 hex>"}
BUCKET_BYTES = 128 << 20


# -- the input -------------------------------------------------------------------------------------
def produce(tmp: Path, events: int) -> dict[str, Any]:
    """The shipper's real output for `events` simulator events: one run --once into a file."""
    with SimProcess(events=events) as sim:
        cfg = write_config(tmp, sim.url)
        out = tmp / "real.ndjson"
        r = run_child([*SHIPPER, "run", "--once", "--config", str(cfg)], stdout_path=out, timeout=900)
        check(r, f"run --once ({events} events)")
        sim_startup = sim.startup_s
    lines = count_lines(out)
    if lines != events:
        raise RuntimeError(f"run --once wrote {lines} lines for {events} events")
    return {"path": out, "events": events, "sim_startup_s": sim_startup, "run": r}


def _body(line: bytes) -> bytes:
    """A sealed line back to the canonical bytes that were hashed (Chainer.seal, reversed)."""
    line = line.rstrip(b"\n")
    if line[-_SEAL_LEN:-_SEAL_LEN + len(_SEAL)] != _SEAL or not line.endswith(b'"}'):
        raise RuntimeError(f"not a sealed line: ...{line[-120:]!r}")
    return line[:-_SEAL_LEN] + b"}"


def rechain(src: Path, dst: Path, copies: int, seed: int = 7) -> int:
    """Write `copies` copies of `src` to `dst` as one stream, re-numbered and re-chained (see the
    module docstring). Returns the number of records written."""
    lines = src.read_bytes().splitlines()
    first, last = (_DATE.search(lines[i]) for i in (0, -1))
    assert first is not None and last is not None
    span_ms = parse_event_time_ms(last.group(1).decode()) - parse_event_time_ms(first.group(1).decode()) + 1
    chainer, rng = Chainer(None), random.Random(seed)
    head: ChainHead | None = None
    seq = 0
    with open(dst, "wb") as out:
        for copy in range(copies):
            shift = (copies - 1 - copy) * span_ms  # older copies first: dates ascend with the sequence
            dates: dict[bytes, bytes] = {}
            buf: list[bytes] = []
            for n, line in enumerate(lines):
                body = _body(line)
                m = _SEQ.search(body)
                if m is None or m.group(2) != STREAM.encode():
                    raise RuntimeError(f"unexpected record start: {body[:80]!r}")
                seq += 1
                body = body[:m.start(1)] + str(seq).encode() + body[m.end(1):]
                if shift:
                    id_m, date_m = _ID.search(body), _DATE.search(body)
                    if id_m is None or date_m is None:
                        raise RuntimeError(f"record {n + 1} has no siem_event_id or siem_timestamp")
                    old_date = date_m.group(1)
                    new_date = dates.get(old_date)
                    if new_date is None:
                        new_date = dates[old_date] = format_ms(parse_event_time_ms(old_date.decode()) - shift).encode()
                    fresh = str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode()
                    body = body.replace(id_m.group(1), fresh).replace(old_date, new_date)
                if (n < 50 or len(body) > 4096) and canonical.canonical(body) != body:  # a sample, and every large one
                    raise RuntimeError(f"copy {copy}, record {n + 1} is not canonical after the rewrite")
                sealed, head = chainer.seal(body, Stamp(seq=seq, stream=STREAM), head)
                buf.append(sealed)
                if len(buf) >= 10_000:
                    out.write(b"\n".join(buf) + b"\n")
                    buf = []
            if buf:
                out.write(b"\n".join(buf) + b"\n")
    return seq


def shuffle(src: Path, dst: Path, seed: int = 11) -> None:
    """`src`'s lines in a uniformly random order: each line to a random bucket file, then each
    bucket shuffled in memory and appended. Holds one bucket (~BUCKET_BYTES) at a time."""
    rng = random.Random(seed)
    n = max(1, src.stat().st_size // BUCKET_BYTES + 1)
    paths = [dst.with_name(f"{dst.name}.bucket{i}") for i in range(n)]
    handles = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    try:
        with open(src, "rb") as fh:
            for line in fh:
                handles[rng.randrange(n)].write(line)
    finally:
        for h in handles:
            h.close()
    with open(dst, "wb") as out:
        for p in paths:
            lines = p.read_bytes().splitlines(keepends=True)
            p.unlink()
            rng.shuffle(lines)
            out.writelines(lines)


# -- the measurement --------------------------------------------------------------------------------
def verify(path: Path, records: int, report: Path) -> ChildRun:
    r = run_child([*SHIPPER, "verify", "--json", str(path)], stdout_path=report, timeout=900)
    check(r, f"verify {path.name}")
    doc = json.loads(report.read_text())
    streams = doc.get("streams") or []
    got = sum(s["records"] for s in streams)
    if not doc.get("ok") or got != records or len(streams) != 1:
        raise RuntimeError(f"verify {path.name}: ok={doc.get('ok')}, {len(streams)} stream(s), {got} of {records} "
                           f"records: {json.dumps(doc)[:1500]}")
    return r


def run(quick: bool = False, records: int | None = None, base: int | None = None) -> dict[str, Any]:
    base = base or 100_000
    records = records or (base if quick else 1_000_000)
    if records % base:
        raise ValueError(f"--records ({records}) must be a multiple of --base ({base})")
    copies = records // base
    res: dict[str, Any] = {"records": records, "base": base, "copies": copies}
    with scratch("verify") as tmp:
        made = produce(tmp, base)
        res["produce"] = {"events": base, "wall": made["run"].wall, "cpu": made["run"].cpu,
                          "rss_mb": made["run"].maxrss_kb / 1024, "sim_startup_s": made["sim_startup_s"]}
        path: Path = made["path"]
        if copies > 1:
            path = tmp / "chained.ndjson"
            written = rechain(made["path"], path, copies)
            made["path"].unlink()
            assert written == records
        shuffled = tmp / "shuffled.ndjson"
        shuffle(path, shuffled)
        size_mb = path.stat().st_size / 1e6
        rows: list[list[Any]] = []
        for name, p in (("in order", path), ("shuffled lines", shuffled)):
            r = verify(p, records, tmp / "report.json")
            row = {"records": records, "file_mb": size_mb, "wall": r.wall, "rps": records / r.wall, "cpu": r.cpu,
                   "cpu_us": r.cpu * 1e6 / records, "rss_mb": r.maxrss_kb / 1024}
            res["in_order" if name == "in order" else "shuffled"] = row
            rows.append([name, records, size_mb, row["wall"], row["rps"], row["cpu"], row["cpu_us"], row["rss_mb"]])
    res["worst_rps"] = min(res["in_order"]["rps"], res["shuffled"]["rps"])
    res["worst_rss_mb"] = max(res["in_order"]["rss_mb"], res["shuffled"]["rss_mb"])
    res["targets"] = [
        {"target": f"Verify: >= {TARGET_RPS:,} records/s (in order and shuffled)",
         "measured": f"{res['worst_rps']:,.0f} records/s (in order {res['in_order']['rps']:,.0f}, shuffled "
                     f"{res['shuffled']['rps']:,.0f}) at {records:,} records",
         "ok": res["worst_rps"] >= TARGET_RPS},
        {"target": f"Verify: peak RSS < {TARGET_RSS_MB:.0f} MB",
         "measured": f"{res['worst_rss_mb']:.1f} MB at {records:,} records", "ok": res["worst_rss_mb"] < TARGET_RSS_MB},
    ]
    made_how = (f"{base:,} from run --once" if copies == 1
                else f"{base:,} from run --once, re-chained x{copies} with fresh ids")
    res["table"] = table(f"Verify: genesys-audit-shipper verify on {records:,} chained records ({made_how})",
                         ["input", "records", "file MB", "wall s", "records/s", "CPU s", "CPU µs / record",
                          "peak RSS MB"], rows)
    res["targets_table"] = table("Verify: targets", ["target", "measured", "verdict"],
                                 [[t["target"], t["measured"], "PASS" if t["ok"] else "FAIL"] for t in res["targets"]])
    return res


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, help="records to verify (default 1,000,000; --quick: 100,000)")
    p.add_argument("--base", type=int, help="events the simulator serves and run --once writes (default 100,000)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    res = run(a.quick, a.records, a.base)
    print(res["table"])
    print(res["targets_table"])


if __name__ == "__main__":
    main()
