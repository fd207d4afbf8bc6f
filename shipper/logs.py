"""Logging to stderr only: JSON lines for machines, text on a TTY, secrets redacted everywhere."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import msgspec

LOGGER_NAME = "genesys_audit_shipper"
_PATTERNS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)([\"']?(?:access_token|refresh_token|client_secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"),
]
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a value that must never appear in a log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


_URL_QUERY = re.compile(r"(https?://[^\s?\"'#]+)\?[^\s\"']*")


def redact(text: str) -> str:
    text = _URL_QUERY.sub(r"\1?[REDACTED]", text)  # pre-signed URLs carry credentials in the query
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "[REDACTED]")
    text = _PATTERNS[0].sub(r"\1\2 [REDACTED]", text)
    text = _PATTERNS[1].sub(r"\1 [REDACTED]", text)
    return _PATTERNS[2].sub(r"\1[REDACTED]", text)


class _Formatter(logging.Formatter):
    def __init__(self, as_json: bool) -> None:
        super().__init__()
        self.as_json = as_json
        self.encoder = msgspec.json.Encoder()

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {}) or {}
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields = {**fields, "error": f"{type(exc).__name__}: {exc}"}
        if self.as_json:
            doc = {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int(record.msecs):03d}Z",
                "level": record.levelname.lower(),
                "message": message,
                **{k: v for k, v in fields.items() if v is not None},
            }
            return redact(self.encoder.encode(doc).decode("utf-8", "replace"))
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return redact(f"{stamp} {record.levelname:<7} {message}" + (f"  {extra}" if extra else ""))


def setup_logging(level: str = "info", stream: Any = None) -> logging.Logger:
    stream = stream or sys.stderr
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    handler.setFormatter(_Formatter(as_json=not is_tty))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


def fatal(message: str, exit_code: int) -> None:
    """The last word before exiting: a JSON log line off a terminal, a plain line on one."""
    logger = logging.getLogger(LOGGER_NAME)
    handler = logger.handlers[0] if logger.handlers else None
    if handler is None or getattr(handler.formatter, "as_json", False) is False:
        sys.stderr.write(f"genesys-audit-shipper: error: {redact(message)}\n")
        return
    record = logger.makeRecord(LOGGER_NAME, logging.ERROR, "", 0, message, (), None,
                               extra={"fields": {"exit_code": exit_code}})
    handler.handle(record)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_fields", default=None)


def bind(**fields: Any) -> None:
    """Fields every later log line of this thread carries (a worker binds its org's name)."""
    _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def log(level: int, message: str, **fields: Any) -> None:
    bound = _bound.get()
    logging.getLogger(LOGGER_NAME).log(level, message, extra={"fields": {**bound, **fields} if bound else fields})


def debug(message: str, **fields: Any) -> None:
    log(logging.DEBUG, message, **fields)


def info(message: str, **fields: Any) -> None:
    log(logging.INFO, message, **fields)


def warning(message: str, **fields: Any) -> None:
    log(logging.WARNING, message, **fields)


def error(message: str, **fields: Any) -> None:
    log(logging.ERROR, message, **fields)
