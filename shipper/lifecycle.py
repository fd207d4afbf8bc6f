"""Shutdown has one home: the stop event, the --max-runtime deadline, the grace for blocked I/O,
the signal handlers, and the workers that do the shipping.

- SIGTERM/SIGINT: stop at the next page boundary. Workers finish the page in hand; one still
  blocked after `grace` seconds (an API answer that never comes, a reader that stopped reading)
  is abandoned: its page was not checkpointed, so nothing is lost, and the next run repeats it.
- --max-runtime: the same stop, early enough that the grace still ends before the deadline.
- SIGHUP: reopen the output and quarantine files (log rotation); never kills the process.
A page is written and checkpointed under `commit_lock`, so abandoning workers never cuts a commit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from . import logs
from .errors import Interrupted, OutputClosed

ABORT_GRACE_S = 3.0


class Lifecycle:
    def __init__(self, grace: float = ABORT_GRACE_S) -> None:
        self.stop = threading.Event()
        self.grace = grace
        self.deadline: float | None = None  # monotonic
        self.stopped_at: float | None = None
        self.commit_lock = threading.RLock()
        self._reopen = threading.Event()
        self._timer: threading.Timer | None = None

    # -- stopping -----------------------------------------------------------------------------
    def request_stop(self, reason: str = "stop requested") -> None:
        if self.stop.is_set():
            return
        self.stopped_at = time.monotonic()
        logs.debug("stopping", reason=reason)
        self.stop.set()

    def set_max_runtime(self, seconds: float) -> None:
        """Stop early enough that the grace for a blocked worker still ends before the deadline."""
        self.deadline = time.monotonic() + seconds
        self.grace = min(self.grace, seconds / 4)
        self._timer = threading.Timer(max(0.0, seconds - self.grace - 0.5), self.request_stop, args=("--max-runtime",))
        self._timer.daemon = True
        self._timer.start()

    def give_up_at(self) -> float | None:
        """When blocked I/O must be abandoned (monotonic), or None while it may wait for ever."""
        limits = []
        if self.stopped_at is not None:
            limits.append(self.stopped_at + self.grace)
        if self.deadline is not None:
            limits.append(self.deadline)
        return min(limits) if limits else None

    def time_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def idle(self, seconds: float, reader_gone: Callable[[], bool]) -> bool:
        """Wait for the next cycle; True on stop. A vanished reader ends the wait (and the lock)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, 0.5)):
                return True
            if reader_gone():
                raise OutputClosed("stdout reader is gone")
        return False

    # -- SIGHUP ---------------------------------------------------------------------------------
    def take_reopen(self) -> bool:
        """True once after each SIGHUP."""
        if self._reopen.is_set():
            self._reopen.clear()
            return True
        return False

    # -- signals --------------------------------------------------------------------------------
    def install_signals(self) -> None:
        def on_stop(signum: int, _frame: FrameType | None) -> None:
            # Event.set takes a lock the interrupted thread may hold: set it from a helper thread.
            threading.Thread(target=self.request_stop, args=(signal.Signals(signum).name,), daemon=True).start()

        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            threading.Thread(target=self._reopen.set, daemon=True).start()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # -- workers ----------------------------------------------------------------------------------
    def run_workers(self, targets: dict[str, Callable[[], None]],
                    tick: Callable[[], None] | None = None) -> dict[str, BaseException | None]:
        """Run each target in its own thread; return each one's exception (None when it ended well).
        `tick` runs on this thread between waits (periodic stats).

        A worker still running `grace` seconds after a stop is abandoned with an Interrupted
        outcome; the commit lock is taken first, so no page is half checkpointed."""
        outcomes: dict[str, BaseException | None] = {}

        def wrap(name: str, fn: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    fn()
                    outcomes[name] = None
                except BaseException as exc:  # noqa: BLE001 - reported to the caller
                    outcomes[name] = exc

            return run

        threads = {name: threading.Thread(target=wrap(name, fn), name=f"org-{name}", daemon=True)
                   for name, fn in targets.items()}
        for t in threads.values():
            t.start()
        while any(t.is_alive() for t in threads.values()):
            if not self.stop.wait(0.2):
                if tick is not None:
                    tick()
                continue
            give_up = (self.give_up_at() or time.monotonic()) + 0.2
            for t in threads.values():
                t.join(max(0.0, give_up - time.monotonic()))
            break
        stuck = [name for name, t in threads.items() if t.is_alive()]
        if stuck:
            # Held until exit: no worker may start a commit now. A worker blocked inside its own
            # write gives up at give_up_at(); past that, its page was not checkpointed anyway.
            self.commit_lock.acquire(timeout=self.grace + 1)
            logs.info("stop: abandoned work still in flight (its page was not checkpointed)", workers=len(stuck))
            for name in stuck:
                outcomes[name] = Interrupted("abandoned at stop")
        return outcomes
