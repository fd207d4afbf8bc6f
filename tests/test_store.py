"""The file store: O(page) commits, compaction, and a consistent state after a crash at any byte."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from shipper.core.ledger import fold, pack_seen, unpack_seen
from shipper.errors import LockHeldError, StateError
from shipper.store import Delta, State
from shipper.store.file import COMPACT_MIN_BYTES, FileStore


def _delta(i: int, ids: dict[int, int]) -> Delta:
    return Delta(frontier_ms=1000 + i, recheck_ms=0, new_ids=pack_seen(ids), emitted=i)


def _committed(tmp_path: Path, pages: int, per_page: int = 3) -> tuple[FileStore, dict[int, int]]:
    store = FileStore(tmp_path / "state.json")
    store.acquire()
    seen: dict[int, int] = {}
    state = State(frontier_ms=1000, recheck_ms=0)
    for i in range(pages):
        ids = {i * 100 + k: 1000 + i for k in range(per_page)}
        seen.update(ids)
        state.frontier_ms, state.emitted = 1000 + i, i
        state.seen = pack_seen(seen)
        store.commit(_delta(i, ids), lambda s=state: State(**{f: getattr(s, f) for f in State.__struct_fields__}))
    return store, seen


def _load(path: Path) -> State | None:
    stored = FileStore(path).load()
    return fold(stored, str(path)) if stored is not None else None


def test_commits_append_and_fold_back(tmp_path: Path) -> None:
    store, seen = _committed(tmp_path, pages=5)
    store.release()
    state = _load(tmp_path / "state.json")
    assert state is not None and state.frontier_ms == 1004 and state.emitted == 4
    assert unpack_seen(state.seen) == seen
    assert (tmp_path / "state.json.journal").stat().st_size > 0
    assert os.stat(tmp_path / "state.json").st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / "state.json.journal").st_mode & 0o777 == 0o600


def test_a_commit_writes_only_its_delta(tmp_path: Path) -> None:
    small, _ = _committed(tmp_path, pages=3)
    journal = tmp_path / "state.json.journal"
    before = journal.stat().st_size
    big = State(frontier_ms=1, recheck_ms=0, seen=pack_seen({h: 5 for h in range(50_000)}))
    small.commit(Delta(frontier_ms=2, recheck_ms=0, new_ids=pack_seen({1: 5})), lambda: big)
    assert journal.stat().st_size - before < 200  # the 50k remembered ids are not rewritten
    small.release()


def test_compaction_when_the_journal_outgrows_the_snapshot(tmp_path: Path) -> None:
    store, seen = _committed(tmp_path, pages=1)
    journal = tmp_path / "state.json.journal"
    full = State(frontier_ms=1, recheck_ms=0, seen=pack_seen(seen))
    big_ids = {h: 7 for h in range(COMPACT_MIN_BYTES // 16 + 10)}
    store.commit(Delta(frontier_ms=2, recheck_ms=0, new_ids=pack_seen(big_ids)), lambda: full)
    grown = journal.stat().st_size
    assert grown > COMPACT_MIN_BYTES
    full = State(frontier_ms=3, recheck_ms=0, seen=pack_seen({**seen, **big_ids}))
    store.commit(Delta(frontier_ms=3, recheck_ms=0, new_ids=pack_seen({9: 7})), lambda: full)
    assert journal.stat().st_size < 100  # a fresh journal of the next generation
    store.release()
    state = _load(tmp_path / "state.json")
    assert state is not None and state.frontier_ms == 3 and state.journal_gen == 1


def test_a_crash_at_any_byte_of_the_journal_leaves_a_consistent_state(tmp_path: Path) -> None:
    store, _ = _committed(tmp_path, pages=4)
    store.release()
    journal = tmp_path / "state.json.journal"
    whole = journal.read_bytes()
    good: list[int] = []
    for cut in range(len(whole) + 1):
        journal.write_bytes(whole[:cut])
        try:
            state = _load(tmp_path / "state.json")
        except StateError:
            assert cut < 12, f"a cut at byte {cut} must read as an earlier commit, not as corruption"
            continue
        assert state is not None
        good.append(state.frontier_ms or 0)
    assert good == sorted(good) and good[-1] == 1003  # only ever an earlier or the last commit
    assert set(good) == {1000, 1001, 1002, 1003}


def test_the_next_commit_cuts_off_a_torn_record(tmp_path: Path) -> None:
    store, _ = _committed(tmp_path, pages=3)
    store.release()
    journal = tmp_path / "state.json.journal"
    journal.write_bytes(journal.read_bytes()[:-5])  # the last record lost its tail in a crash
    store = FileStore(tmp_path / "state.json")
    store.acquire()
    state = fold(store.load(), "x")  # type: ignore[arg-type]
    assert state.frontier_ms == 1001
    store.commit(_delta(7, {777: 1007}), lambda: state)
    store.release()
    after = _load(tmp_path / "state.json")
    assert after is not None and after.frontier_ms == 1007 and 777 in unpack_seen(after.seen)


def test_corruption_before_the_end_is_refused(tmp_path: Path) -> None:
    store, _ = _committed(tmp_path, pages=4)
    store.release()
    journal = tmp_path / "state.json.journal"
    data = bytearray(journal.read_bytes())
    data[30] ^= 0xFF  # inside the second record, with whole records after it
    journal.write_bytes(bytes(data))
    with pytest.raises(StateError, match="corrupt"):
        _load(tmp_path / "state.json")


def test_a_journal_from_another_snapshot_is_refused(tmp_path: Path) -> None:
    store, _ = _committed(tmp_path, pages=2)
    store.compact(State(frontier_ms=5, recheck_ms=0))  # generation 1
    store.compact(State(frontier_ms=6, recheck_ms=0))  # generation 2
    store.release()
    snapshot = (tmp_path / "state.json").read_bytes()
    assert b'"journal_gen":2' in snapshot
    (tmp_path / "state.json").write_bytes(snapshot.replace(b'"journal_gen":2', b'"journal_gen":1'))
    with pytest.raises(StateError, match="newer than its snapshot"):
        _load(tmp_path / "state.json")


def test_lock_is_exclusive(tmp_path: Path) -> None:
    first = FileStore(tmp_path / "state.json")
    first.acquire()
    second = FileStore(tmp_path / "state.json")
    with pytest.raises(LockHeldError):
        second.acquire()
    assert second.is_locked_elsewhere()
    first.release()
    second.acquire()
    second.release()


def test_a_world_writable_state_directory_is_refused_even_when_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # sticky, like /tmp: anyone may plant a file there
    with pytest.raises(StateError, match="world-writable"):
        FileStore(shared / "state.json").load()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a file owned by another user")
def test_a_state_file_of_another_user_is_refused() -> None:
    home = Path(tempfile.mkdtemp(prefix="gas-owner-", dir="/tmp"))
    os.chmod(home, 0o755)
    (home / "state.json").write_text("{}")
    os.chown(home, 65534, 65534)
    os.chown(home / "state.json", 12345, 12345)  # planted by someone else
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon's user, without root's right to read anything
        os.close(read)
        try:
            os.setegid(65534)
            os.seteuid(65534)
            FileStore(home / "state.json").load()
            os.write(write, b"accepted")
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            os.write(write, str(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as fh:
        message = fh.read().decode()
    shutil.rmtree(home)
    assert "belongs to another user" in message
