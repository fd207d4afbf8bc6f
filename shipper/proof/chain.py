"""A sequence number and a hash chain on every record, per output stream.

For record n of a stream:  D_n = SHA-256(canonical bytes of the record without `audit_chain`)
                           C_n = H(C_(n-1) || D_n),  C_0 = 32 zero bytes
H is SHA-256 (`output.chain: sha256`, catches accidents) or HMAC-SHA256 with the key of
`output.chain_key_file` (`hmac-sha256`, tamper-evident to anyone without the key). Chaining the
records' digests rather than their bytes lets `verify` check a chain holding 32 bytes per record.
A stream is what one destination receives: one per tier, and one per org.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from ..config import read_regular_file
from ..errors import ConfigError
from ..schemas.common import Stamp
from ..store import ChainHead

GENESIS = bytes(32)
CHAIN_FIELD = "audit_chain"
STREAM_FIELD = "audit_stream"
KEY_ID_FIELD = "audit_key_id"
SEQ_FIELD = "audit_seq"
SEAL_HEAD = b',"' + CHAIN_FIELD.encode() + b'":"'  # a sealed line ends with it, 64 hex digits and `"}`
CHAIN_PROTECTED = frozenset({SEQ_FIELD, STREAM_FIELD, KEY_ID_FIELD, "genesys_org"})  # shrinking never cuts them
MIN_KEY_BYTES = 16
# The sealed line grows by `,"audit_chain":"<64 hex>"`, the stream, sequence and key id: the
# encoder keeps this much room below output.max_line_bytes when chaining.
RESERVE_BYTES = 256


@dataclass(frozen=True)
class ChainKey:
    """An HMAC key and its public id (a hash of it: naming the key never reveals it)."""

    key: bytes
    kid: str

    @classmethod
    def of(cls, key: bytes) -> ChainKey:
        return cls(key, hashlib.sha256(b"genesys-audit-shipper/key-id/v1\0" + key).hexdigest()[:16])


def load_key(path: str, option: str = "output.chain_key_file") -> ChainKey:
    """The key in `path` (surrounding whitespace ignored); ConfigError naming the file otherwise."""
    key = read_regular_file(Path(path), option, 65536).strip()
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{option}: {path!r} holds fewer than {MIN_KEY_BYTES} bytes; write a random key, e.g. "
                          "`head -c 32 /dev/urandom | base64 > FILE`")
    return ChainKey.of(key)


def link(prev: bytes, digest: bytes, key: bytes | None) -> bytes:
    """C_n from C_(n-1) and D_n."""
    if key is None:
        return hashlib.sha256(prev + digest).digest()
    return hmac.digest(key, prev + digest, "sha256")


class Chainer:
    """Numbers the records of each stream and seals them with the chain value."""

    def __init__(self, key: ChainKey | None, org: str = "") -> None:
        self.key = key
        self.org = org

    def stream(self, tier: str) -> str:
        return f"{self.org}/{tier}" if self.org else tier

    def stamp(self, tier: str, head: ChainHead | None) -> Stamp:
        """The next record's stamp: its stream, sequence, org and, after a key rotation, key id."""
        kid = self.key.kid if self.key is not None else ""
        rotated = kid and (head is None or head.key_id != kid)
        return Stamp(seq=(head.seq if head is not None else 0) + 1, stream=self.stream(tier),
                     key_id=kid if rotated else "", org=self.org)

    def seal_into(self, page: bytearray, body: bytes, stamp: Stamp, head: ChainHead | None) -> ChainHead:
        """Append the sealed line (the canonical `body` plus `audit_chain`) to `page`; the stream's
        new head. Appended in place: a line is copied once, not once per part."""
        assert stamp.seq is not None
        value = link(head.value if head is not None else GENESIS, hashlib.sha256(body).digest(),
                     self.key.key if self.key is not None else None)
        page += memoryview(body)[:-1]
        page += SEAL_HEAD
        page += value.hex().encode()
        page += b'"}'
        return ChainHead(stamp.seq, value, self.key.kid if self.key is not None else "")

    def seal(self, body: bytes, stamp: Stamp, head: ChainHead | None) -> tuple[bytes, ChainHead]:
        """The sealed line and the stream's new head (see seal_into)."""
        line = bytearray()
        new_head = self.seal_into(line, body, stamp, head)
        return bytes(line), new_head
