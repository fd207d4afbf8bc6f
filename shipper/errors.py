"""Exceptions that carry their exit code, so the CLI maps failures in one place."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class ShipperError(Exception):
    """A failure with a one-line, user-facing message."""

    exit_code = EXIT_RUNTIME


class ConfigError(ShipperError):
    """Bad config, bad flag or bad input file: the user must fix something."""

    exit_code = EXIT_CONFIG


class LockHeldError(ShipperError):
    """Another instance holds the state file lock."""

    exit_code = EXIT_LOCKED


class StateError(ShipperError):
    """The state file is unreadable, corrupt or unsafe."""


class ApiError(ShipperError):
    """The API answered with a non-retryable error (or retries ran out)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AuthError(ApiError):
    """The login service refused our credentials."""


class Interrupted(ShipperError):
    """A stop signal arrived while waiting; the caller unwinds without advancing."""

    exit_code = EXIT_OK


class OutputClosed(ShipperError):
    """stdout was closed by the reader (EPIPE)."""

    exit_code = EXIT_OK


class OutputError(ShipperError):
    """The output could not take a page (disk full, I/O error, a receiver that stays down)."""


class LeadershipLost(ShipperError):
    """Another collector leads this org now, or the lease cannot be proven alive (etcd)."""
