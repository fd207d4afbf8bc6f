"""Every org of a deployment in one process: a worker per org, one writer for all of them, and at
most `max_parallel_orgs` orgs in a cycle at once.

An org that fails (its credentials, its API, its state, its lock held by another process) is
logged with its name; the daemon tries it again with a growing backoff while the others go on.
`--once` finishes every healthy org, then reports each failed one on a line of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .. import logs
from ..errors import Interrupted, LeadershipLost, LockHeldError, OutputClosed, ShipperError
from ..lifecycle import Lifecycle
from ..store.etcd_gateway import EtcdUnavailable
from .engine import Engine

FIRST_BACKOFF_S = 5.0
MAX_BACKOFF_S = 300.0


class OrgFailed(ShipperError):
    """One or more orgs failed in a `--once` run; each was reported on its own line."""


class AllLocked(LockHeldError):
    """Every org's lock is held by another process."""


@dataclass
class Outcome:
    org: str
    error: BaseException | None = None

    @property
    def locked(self) -> bool:
        return isinstance(self.error, LockHeldError)


@dataclass
class OrgJob:
    """What a worker needs: the org's name, how to take and give back its state, and its work."""

    name: str
    engine: Engine
    acquire: Callable[[], None]
    release: Callable[[], None]
    load: Callable[[], None]
    work: Callable[[], None]
    standby_s: float  # how often a collector that does not lead the org tries again


class OrgWorker:
    def __init__(self, job: OrgJob, lifecycle: Lifecycle, once: bool, retry_lock: bool) -> None:
        self.job = job
        self.lifecycle = lifecycle
        self.once = once
        self.retry_lock = retry_lock  # the daemon of a named-orgs deployment stands by for a held lock
        self.outcome = Outcome(job.name)
        self._held = False

    def run(self) -> None:
        logs.bind(org=self.job.name or None)
        backoff = FIRST_BACKOFF_S
        told_locked = False
        while not self.lifecycle.stop.is_set():
            try:
                self._start()
                self.job.work()
                return
            except (Interrupted, OutputClosed):
                return
            except LockHeldError as exc:
                if self.once or not self.retry_lock:
                    self.outcome.error = exc
                    return
                if not told_locked:
                    logs.info("standing by: another process leads this org", reason=str(exc))
                    told_locked = True
                wait = self.job.standby_s
            except (LeadershipLost, EtcdUnavailable) as exc:
                self._stop_holding()
                if self.once:
                    self.outcome.error = exc
                    return
                logs.warning("not leading this org any more; writing nothing for it, standing by", reason=str(exc))
                told_locked, wait = True, self.job.standby_s
            except ShipperError as exc:
                self.outcome.error = exc
                if self.once:
                    return
                logs.error("org failed; the others go on, it is tried again", org=self.job.name or None,
                           reason=str(exc), retry_in_s=round(backoff))
                self._stop_holding()
                wait, backoff = backoff, min(MAX_BACKOFF_S, backoff * 2)
            if self.lifecycle.idle(wait, lambda: False):
                return

    def _start(self) -> None:
        if not self._held:
            self.job.acquire()
            self._held = True
            self.job.load()

    def _stop_holding(self) -> None:
        if self._held:
            self.job.release()  # the next attempt loads the state again: nothing half-done survives
            self._held = False

    def close(self) -> None:
        self._stop_holding()


def run_orgs(jobs: list[OrgJob], lifecycle: Lifecycle, *, once: bool, named: bool, shared: bool,
             tick: Callable[[], None]) -> list[Outcome]:
    """Run every org until stopped (or once); each outcome says how its org ended. With `shared`
    state (etcd), collectors that do not lead an org stand by for it."""
    workers = [OrgWorker(job, lifecycle, once, retry_lock=named or shared) for job in jobs]
    if named and not once and not shared:
        _stand_by_all_locked(workers)
    results = lifecycle.run_workers({w.job.name or "default": w.run for w in workers}, tick=tick)
    for w in workers:
        error = results.get(w.job.name or "default")
        if error is not None and not isinstance(error, (Interrupted, OutputClosed)):
            w.outcome.error = w.outcome.error or error
        w.close()
    return [w.outcome for w in workers]


def _stand_by_all_locked(workers: list[OrgWorker]) -> None:
    """A daemon that can take no org at all is a second instance: exit 3, as with one org."""
    locked = 0
    for w in workers:
        try:
            w.job.acquire()
            w.job.release()
        except LockHeldError:
            locked += 1
    if workers and locked == len(workers):
        raise AllLocked("another instance holds the lock of every org; stop it first or give this one its own "
                        "state paths")


def summarize(outcomes: list[Outcome], named: bool) -> None:
    """Raise what the run's exit code should be: the org's own error without `orgs:`; otherwise
    exit 3 when every org was locked, exit 1 (one line per failed org) when any failed."""
    if not named:
        error = outcomes[0].error if outcomes else None
        if error is not None:
            raise error
        return
    locked = [o for o in outcomes if o.locked]
    failed = [o for o in outcomes if o.error is not None and not o.locked]
    for o in locked:
        logs.error("org not shipped: another process holds its lock", org=o.org)
    for o in failed:
        logs.error("org failed", org=o.org, reason=str(o.error))
    if outcomes and len(locked) == len(outcomes):
        raise AllLocked("another instance holds the lock of every org")
    if failed:
        raise OrgFailed(f"{len(failed)} of {len(outcomes)} orgs failed: {', '.join(o.org for o in failed)}")

