"""HPACK encoding of the gRPC server's answers (RFC 7541), one encoder per connection.

Every answer repeats three fields: ``content-type: application/grpc`` and
``grpc-accept-encoding`` in its headers, ``grpc-status: 0`` in its trailers. The first answer
of a connection adds them to the peer's dynamic table; every answer after that names them by
index (one byte each), so the peer decodes a few bytes instead of three literal fields per call.
All other fields (error statuses, messages) are literals that are not indexed.

The three entries take 177 of the 4,096 bytes a peer's table holds by default and are the only
entries we add, so nothing is ever evicted and their indices never change. A peer that allows
less (SETTINGS_HEADER_TABLE_SIZE) is told, at the start of our next header block, that our table
is that size now, as the RFC requires (nghttp2's decoder fails a connection whose encoder does not
say so); below 177 bytes nothing more is indexed.
"""

from __future__ import annotations


def integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    """``value`` in HPACK's integer encoding, in a first byte whose high bits are ``first``."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name: bytes, value: bytes, indexing: bool = False) -> bytes:
    """A field with a literal name (no Huffman), added to the peer's table when ``indexing``."""
    first = b"\x40" if indexing else b"\x00"
    return first + integer(len(name), 7) + name + integer(len(value), 7) + value


_DEFAULT_TABLE_SIZE = 4096
_CONTENT_TYPE = (b"content-type", b"application/grpc")
_ACCEPT_ENCODING = (b"grpc-accept-encoding", b"identity,deflate,gzip")
_STATUS_OK = (b"grpc-status", b"0")
#: Each entry counts its name, its value and 32 bytes (RFC 7541 section 4.1).
_ENTRIES_SIZE = sum(
    len(name) + len(value) + 32 for name, value in (_CONTENT_TYPE, _ACCEPT_ENCODING, _STATUS_OK)
)

#: The trailers of a call that succeeded; :meth:`AnswerEncoder.block` encodes them.
OK_TRAILERS = literal(*_STATUS_OK)

# :status 200 is static index 8; the dynamic table's newest entry is index 62.
_HEADERS_LITERAL = b"\x88" + literal(*_CONTENT_TYPE) + literal(*_ACCEPT_ENCODING)
_HEADERS_ADDING = b"\x88" + literal(*_CONTENT_TYPE, True) + literal(*_ACCEPT_ENCODING, True)
_HEADERS_TWO_ADDED = b"\x88\xbf\xbe"  # content-type 63, grpc-accept-encoding 62
_OK_ADDING = literal(*_STATUS_OK, True)
# All three in the table: content-type 64, grpc-accept-encoding 63, grpc-status 62.
_STEADY_HEADERS = b"\x88\xc0\xbf"
_STEADY_OK_TRAILERS = b"\xbe"

_NOT_INDEXING, _NONE_ADDED, _TWO_ADDED, _ALL_ADDED = -1, 0, 1, 2


class AnswerEncoder:
    """The header blocks of one connection's answers, in the order they are sent."""

    __slots__ = ("size_update", "state", "steady", "table_size")

    def __init__(self) -> None:
        self.state = _NONE_ADDED
        self.table_size = _DEFAULT_TABLE_SIZE
        #: A dynamic table size update that the next header block starts with.
        self.size_update = b""
        #: All three fields are in the peer's table and no size update is due: every answer's
        #: blocks are the same from now on.
        self.steady = False

    def peer_table_size(self, size: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE, acknowledged before our next header block."""
        if size >= self.table_size:
            return  # we may use less than the peer allows: nothing to say
        self.table_size = size
        self.size_update = integer(size, 5, 0x20)  # the smallest size since the last block
        self.steady = False
        if size < _ENTRIES_SIZE:
            self.state = _NOT_INDEXING  # the peer evicts what we added: never referred to again

    def _start(self) -> bytes:
        update, self.size_update = self.size_update, b""
        self.steady = self.state == _ALL_ADDED
        return update

    def headers(self) -> bytes:
        """The headers of an answer (``:status 200``, the gRPC content type)."""
        if self.steady:  # every call after the first: nothing to decide
            return _STEADY_HEADERS
        start = self._start() if self.size_update else b""
        state = self.state
        if state == _ALL_ADDED:
            return start + _STEADY_HEADERS
        if state == _TWO_ADDED:
            return start + _HEADERS_TWO_ADDED
        if state == _NONE_ADDED:
            self.state = _TWO_ADDED
            return start + _HEADERS_ADDING
        return start + _HEADERS_LITERAL

    def block(self, block: bytes) -> bytes:
        """Any other header block (trailers, errors): ``OK_TRAILERS`` by index, others as given."""
        if self.steady:
            return _STEADY_OK_TRAILERS if block is OK_TRAILERS else block
        start = self._start() if self.size_update else b""
        if block is OK_TRAILERS:
            if self.state == _ALL_ADDED:
                return start + _STEADY_OK_TRAILERS
            if self.state == _TWO_ADDED:
                self.state = _ALL_ADDED
                self.steady = not self.size_update
                return start + _OK_ADDING
        return start + block
