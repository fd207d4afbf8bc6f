"""The hash chain and `verify`, with the real CLI: a clean run verifies; a dropped, changed or
conflicting line is named; shuffles and repeats are harmless; crashes, tiers and keys hold."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipper.proof import canonical

from .conftest import CLI, kill_loop, run_cli, state_bytes, write_config

FAST = {"requests_per_minute": 60000, "backoff_base": "0.02s", "backoff_max": "0.2s"}


def _verify(tmp: Path, lines: list[bytes], *args: str) -> subprocess.CompletedProcess[bytes]:
    path = tmp / f"export-{random.random()}.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return run_cli("verify", str(path), *args, timeout=120)


def _run(tmp: Path, sim: Any, **sections: Any) -> tuple[Path, list[bytes]]:
    cfg = write_config(tmp, sim.url, rate_limit=FAST, **sections)
    proc = run_cli("run", "--once", "--config", str(cfg), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return cfg, proc.stdout.splitlines()


@pytest.fixture
def clean(tmp_path: Path, simulator: Any) -> tuple[Path, list[bytes]]:
    sim = simulator(events=600)
    return _run(tmp_path, sim, poll={"page_size": 100})


def test_a_clean_run_verifies(tmp_path: Path, clean: tuple[Path, list[bytes]]) -> None:
    cfg, lines = clean
    proc = _verify(tmp_path, lines, "--config", str(cfg))
    assert proc.returncode == 0, proc.stdout.decode()
    assert b"stream standard: OK  records 600  sequence 1..600" in proc.stdout


@pytest.mark.parametrize("which", [0, 299, 599])
def test_dropping_any_one_line_names_its_sequence(tmp_path: Path, clean: tuple[Path, list[bytes]], which: int) -> None:
    cfg, lines = clean
    proc = _verify(tmp_path, lines[:which] + lines[which + 1:], "--config", str(cfg), "--json")
    assert proc.returncode == 1
    gaps = json.loads(proc.stdout)["streams"][0]["gaps"]
    assert [(g["missing_from"], g["missing_to"]) for g in gaps] == [(which + 1, which + 1)]


def test_changing_one_character_of_any_field_names_that_record(tmp_path: Path,
                                                               clean: tuple[Path, list[bytes]]) -> None:
    _, lines = clean
    rng = random.Random(5)
    for _ in range(6):
        n = rng.randrange(len(lines))
        record = json.loads(lines[n])
        path = rng.choice([p for p in _leaf_paths(record) if isinstance(_get(record, p), str) and _get(record, p)])
        value = _get(record, path)
        i = rng.randrange(len(value))
        _set(record, path, value[:i] + ("x" if value[i] != "x" else "y") + value[i + 1:])
        altered = lines[:n] + [json.dumps(record, ensure_ascii=False).encode()] + lines[n + 1:]
        proc = _verify(tmp_path, altered, "--json")
        assert proc.returncode == 1, (path, proc.stdout.decode())
        report = json.loads(proc.stdout)["streams"]
        named = {b["event_id"] for s in report for b in s["breaks"]} | {
            e for s in report for c in s["conflicts"] for e in c["event_ids"]}
        assert json.loads(lines[n])["siem_event_id"] in named or any(s["gaps"] for s in report), path


def _leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*path, i))]
    return [path]


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def test_shuffled_and_repeated_lines_verify_with_repeats_counted(tmp_path: Path,
                                                                  clean: tuple[Path, list[bytes]]) -> None:
    cfg, lines = clean
    mixed = lines + lines[10:40]
    random.Random(3).shuffle(mixed)
    proc = _verify(tmp_path, mixed, "--config", str(cfg), "--json")
    assert proc.returncode == 0, proc.stdout.decode()
    assert json.loads(proc.stdout)["streams"][0]["duplicates"] == 30


def test_a_siem_export_verifies_as_well(tmp_path: Path, clean: tuple[Path, list[bytes]]) -> None:
    """Splunk's JSON export wraps `_raw`; Elastic keeps `_source`, here with its keys reordered."""
    _, lines = clean
    splunk = [json.dumps({"preview": False, "result": {"_raw": line.decode(), "host": "x"}}).encode()
              for line in lines[:300]]
    elastic = [json.dumps({"_index": "logs", "_id": "1", "_source": dict(sorted(json.loads(line).items(),
                                                                              reverse=True))}).encode()
               for line in lines[300:]]
    proc = _verify(tmp_path, splunk + elastic)
    assert proc.returncode == 0, proc.stdout.decode()


def test_kill_9_during_a_catch_up_then_a_rerun_verifies(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=8000, span=6 * 3600)
    cfg = write_config(tmp_path, sim.url, poll={"page_size": 100, "start_from": "7h"},
                       rate_limit={"requests_per_minute": 1500}, output={"max_line_bytes": 1 << 20})
    outputs, kills = kill_loop(tmp_path, cfg, kills=12, seed=11, wait=(0.4, 1.2))
    assert kills == 12
    written = [line for data in outputs for line in data.split(b"\n") if _complete(line)]
    proc = _verify(tmp_path, written, "--config", str(cfg), "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout.decode()[:3000]
    assert report["streams"][0]["records"] == 8000


def _complete(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False  # a kill -9 cut it: it was not written


def test_one_chain_per_tier_each_verifies_alone(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=800)
    cfg, lines = _run(tmp_path, sim, routing={"tiers": [{"tier": "high_value", "rules": [{"entity_type": "Role"},
                                                                                        {"entity_type": "OAuthClient"}]}]})
    by_stream: dict[str, list[bytes]] = {}
    for line in lines:
        by_stream.setdefault(json.loads(line)["audit_stream"], []).append(line)
    assert set(by_stream) == {"high_value", "standard"}
    for stream, own in by_stream.items():
        proc = _verify(tmp_path, own, "--json")
        assert proc.returncode == 0, (stream, proc.stdout.decode())
        assert [s["stream"] for s in json.loads(proc.stdout)["streams"]] == [stream]


def test_hmac_chains_need_the_right_key_and_name_rotated_keys(tmp_path: Path, simulator: Any) -> None:
    key_a, key_b, wrong = (tmp_path / n for n in ("a.key", "b.key", "wrong.key"))
    for path in (key_a, key_b, wrong):
        path.write_bytes(os.urandom(32).hex().encode())
    sim = simulator(events=400, live_rate=20)
    cfg, first = _run(tmp_path, sim, output={"chain": "hmac-sha256", "chain_key_file": str(key_a)})
    key_a_text = key_a.read_text()
    time.sleep(1.5)  # live events arrive in between: the second run, under the new key, has some to write
    _, second = _run(tmp_path, sim, output={"chain": "hmac-sha256", "chain_key_file": str(key_b)})  # rotation
    assert second and json.loads(second[0]).get("audit_key_id")
    lines = first + second
    good = _verify(tmp_path, lines, "--key-file", str(key_a), "--key-file", str(key_b), "--config", str(cfg))
    assert good.returncode == 0, good.stdout.decode()
    bad = _verify(tmp_path, first, "--key-file", str(wrong), "--json")
    assert bad.returncode == 1
    breaks = json.loads(bad.stdout)["streams"][0]["breaks"]
    assert breaks[0]["seq"] == 1  # the first record already fails
    assert key_a_text.encode() not in state_bytes(tmp_path / "state.json")


def test_hmac_without_a_readable_key_refuses_to_start(tmp_path: Path, simulator: Any) -> None:
    sim = simulator(events=10)
    for key_file in (tmp_path / "missing.key", tmp_path / "short.key"):
        if key_file.name == "short.key":
            key_file.write_text("tiny")
        cfg = write_config(tmp_path, sim.url, output={"chain": "hmac-sha256", "chain_key_file": str(key_file)})
        proc = run_cli("run", "--once", "--config", str(cfg), timeout=30)
        assert proc.returncode == 2, proc.stderr.decode()
        assert b"output.chain_key_file" in proc.stderr
        assert proc.stdout == b""


def test_unreadable_input_is_exit_2(tmp_path: Path) -> None:
    assert run_cli("verify", str(tmp_path / "nope.ndjson")).returncode == 2
    broken = tmp_path / "broken.ndjson"
    broken.write_bytes(b'{"audit_chain": "00"\n')
    assert run_cli("verify", str(broken)).returncode == 2


# -- the canonical form against the reference implementation of RFC 8785 --------------------------
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
              st.floats(allow_nan=False, allow_infinity=False), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_canonical_bytes_are_rfc_8785(value: Any) -> None:
    expected = rfc8785.dumps(value)
    data = msgspec.json.encode(value)
    assert canonical.canonical(data) == expected
    assert canonical.encode(canonical.parse(data)) == expected
    assert canonical.canonical(json.dumps(value).encode()) == expected  # \u escapes, as many SIEMs export


@pytest.mark.parametrize("schema", ["siem", "ecs", "ocsf", "cim", "asim", "raw"])
def test_the_fast_canonical_path_writes_exactly_rfc_8785(schema: str) -> None:
    """Typed records written by msgspec with sorted keys are already canonical: every simulator
    event, through every schema, with an org, equals the general (parse and sort) path."""
    import time

    from shipper.config import config_from_mapping
    from shipper.core.pipeline import Pipeline
    from shipper.simulator import EventStore, SimConfig

    events = [msgspec.Raw(e.expanded) for e in EventStore(SimConfig(events=600), time.time()).events]
    out = Pipeline(config_from_mapping({"output": {"schema": schema, "max_line_bytes": 1 << 20}}),
                   org="prod").process(events, {}, 0, 0)
    assert out.lines == 600
    for line in bytes(out.data).splitlines():
        body = line[:line.rindex(b',"audit_chain"')] + b"}"
        assert canonical.canonical(body) == body
        assert rfc8785.dumps(json.loads(body)) == body


@pytest.mark.parametrize("schema", ["siem", "ecs", "ocsf", "cim", "asim", "raw"])
def test_the_verify_quick_path_gives_the_entries_of_the_long_way(tmp_path: Path, simulator: Any, schema: str) -> None:
    """Every line as the shipper wrote it takes the quick path (the digest of its bytes), and that
    digest is the canonical one the long way computes, for every schema."""
    from shipper.proof import verify

    sim = simulator(events=300)
    _, lines = _run(tmp_path, sim, poll={"page_size": 100}, output={"schema": schema})
    long_way = sorted(verify.entry_of(record, (), src) for line in lines
                      for record, src in verify.records_in(canonical.parse(line), line))
    quick = [verify.quick_entry(line + b"\n", 0, n) for n, line in enumerate(lines)]
    assert len(long_way) == 300 and None not in quick
    assert sorted(q._replace(source=verify.NO_SOURCE, offset=0) for q in quick if q is not None) == long_way


def test_a_line_whose_bytes_are_not_canonical_is_read_again_and_verifies(tmp_path: Path,
                                                                          clean: tuple[Path, list[bytes]]) -> None:
    """The quick digest of a re-serialized line (a space after a colon) does not link; the walk
    reads the line again, canonically, in order and shuffled; a clean export reads nothing again."""
    _, lines = clean
    proc = _verify(tmp_path, lines, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["streams"][0]["reread"] == 0
    spaced = lines[:]
    spaced[150] = spaced[150].replace(b'":', b'": ', 1)
    for order in (spaced, random.Random(1).sample(spaced, len(spaced))):
        proc = _verify(tmp_path, order, "--json")
        assert proc.returncode == 0, proc.stdout.decode()
        assert json.loads(proc.stdout)["streams"][0]["reread"] == 1
    # Lines re-serialized as Fluent Bit writes them (\/ and \u00e9 escapes) are recognised in the
    # workers and take the long way there: none is left for the walk to read again.
    escaped = [json.dumps(json.loads(line), separators=(",", ":")).replace("/", "\\/").encode() for line in lines]
    assert all(line.isascii() and b"\\/" in line for line in escaped) and escaped != lines
    proc = _verify(tmp_path, escaped, "--json")
    assert proc.returncode == 0, proc.stdout.decode()
    assert json.loads(proc.stdout)["streams"][0]["reread"] == 0
    # Both forms of the same record: an identical repeat, not a conflict, in either order.
    for both in (lines + [spaced[150]], [spaced[150], *lines]):
        proc = _verify(tmp_path, both, "--json")
        assert proc.returncode == 0, proc.stdout.decode()
        assert json.loads(proc.stdout)["streams"][0]["duplicates"] == 1


def test_verify_reads_inputs_in_ranges_that_cut_lines_anywhere(tmp_path: Path, clean: tuple[Path, list[bytes]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges far smaller than a line, in one process and in workers: every line is read exactly
    once, and an unreadable line is named by its line number in its file."""
    from shipper.proof import verify

    _, lines = clean
    path = tmp_path / "export.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in lines[:100]) + b"\n{not json\n" +
                     b"".join(line + b"\n" for line in lines[100:]))
    source = verify.Source(str(path), str(path), path.stat().st_size)
    whole = verify.Sorter()
    verify.digest_all([source], (), whole, workers=1)
    expected = list(whole.merged())
    assert len(expected) == len(lines)
    for job_bytes, workers in ((700, 1), (997, 2), (1 << 20, 2)):
        monkeypatch.setattr(verify, "JOB_BYTES", job_bytes)
        sorter = verify.Sorter()
        bad, foreign = verify.digest_all([source], (), sorter, workers=workers)
        assert list(sorter.merged()) == expected
        assert (bad, foreign) == ([f"{path}:102: {bad[0].split(': ', 1)[1]}"], 0)


def test_verify_reads_standard_input_and_pipes(tmp_path: Path, clean: tuple[Path, list[bytes]]) -> None:
    _, lines = clean
    data = b"".join(line + b"\n" for line in random.Random(2).sample(lines, len(lines)))
    proc = run_cli("verify", "-", "--json", input=data, timeout=120)
    assert proc.returncode == 0, proc.stdout.decode()
    assert json.loads(proc.stdout)["streams"][0]["records"] == len(lines)
    dropped = b"".join(line + b"\n" for line in lines[:10] + lines[11:])
    proc = run_cli("verify", "-", "--json", input=dropped, timeout=120)
    assert proc.returncode == 1
    assert [(g["missing_from"], g["missing_to"]) for g in json.loads(proc.stdout)["streams"][0]["gaps"]] == [(11, 11)]
    fifo = tmp_path / "export.fifo"  # a named pipe, as a process substitution gives
    os.mkfifo(fifo)
    reader = subprocess.Popen([*CLI, "verify", str(fifo), "--json"], stdout=subprocess.PIPE)
    fifo.write_bytes(data)  # blocks until verify opens it
    out, _ = reader.communicate(timeout=120)
    assert reader.returncode == 0 and json.loads(out)["streams"][0]["records"] == len(lines)


def test_the_external_sort_is_exact_and_keeps_few_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of one size are merged into one of the next, FAN_IN at a time: the order is exact,
    in order or shuffled, and the runs left stay few however many were spilled."""
    from shipper.proof import verify

    monkeypatch.setattr(verify, "FAN_IN", 3)
    for seed in range(12):
        rng = random.Random(seed)
        data = [rng.randbytes(rng.randrange(1, 40)) for _ in range(rng.randrange(0, 3000))]
        if seed % 3 == 0:
            data.sort()
        sorter = verify.Sorter(run_entries=rng.randrange(1, 30))
        for i in range(0, len(data), 50):
            sorter.add(data[i:i + 50])
        assert len(sorter.runs) <= 2 * 6  # FAN_IN - 1 per level, log3(3000) levels
        assert list(sorter.merged()) == sorted(data)


def test_verify_review_cases(tmp_path: Path, clean: tuple[Path, list[bytes]]) -> None:
    """A one-record pretty-printed document verifies; a line that is not UTF-8 is unreadable (exit
    2), not a break; with two keys given, a plain SHA-256 chain (anyone can recompute it) fails."""
    _, lines = clean
    whole = tmp_path / "whole.json"
    whole.write_bytes(b"{\n" + lines[0][1:] + b"\n")
    assert run_cli("verify", str(whole)).returncode == 0
    broken = lines[:]
    broken[4] = broken[4].replace(b'"siem_actor_name":"', b'"siem_actor_name":"\xff', 1)
    assert broken[4] != lines[4]
    proc = _verify(tmp_path, broken)
    assert proc.returncode == 2 and b"unreadable" in proc.stdout, proc.stdout.decode()
    keys = []
    for name in ("a.key", "b.key"):
        keys += ["--key-file", str(tmp_path / name)]
        (tmp_path / name).write_bytes(os.urandom(32).hex().encode())
    proc = _verify(tmp_path, lines, *keys)
    assert proc.returncode == 1 and b"no key given links this record" in proc.stdout, proc.stdout.decode()[:500]
