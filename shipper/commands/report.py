"""How a command prints its report: one line at a time on stdout."""

from __future__ import annotations

import sys

from ..errors import ConfigError


def emit(text: str) -> None:
    """One line of a command's report on stdout."""
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise ConfigError("stdout is closed: run the command with stdout open to read its report")
    print(text, flush=True)


def step(name: str, ok: bool, detail: str) -> bool:
    emit(f"{'ok  ' if ok else 'FAIL'}  {name}: {detail}")
    return ok
