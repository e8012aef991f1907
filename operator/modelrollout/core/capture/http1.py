"""HTTP/1.1 messages as the capture proxy's lean path reads and writes them, without I/O.

The capture proxy forwards almost nothing but one kind of exchange: a request with a
``Content-Length`` body (or none) to a model on localhost, answered with a
``Content-Length`` body. A general HTTP framework spends most of a request's time on what
such an exchange never needs (routing, streaming bodies, middleware, per-request tasks),
so the proxy serves that common case on a lean path of its own and hands everything else
to aiohttp. This module is the lean path's understanding of HTTP: it parses request and
response heads from bytes, says how a body is framed, decodes a chunked answer, and
writes the heads that go out. It never touches a socket, so every rule is a table test.

What the lean path serves, and what it leaves to the full server:

* a request line ``METHOD /path HTTP/1.1`` (or ``HTTP/1.0``) in origin form, with no
  body or a ``Content-Length`` one, is served here;
* a request with ``Transfer-Encoding`` (a chunked upload), ``Upgrade``, ``Expect`` (a
  client waiting for ``100 Continue``) or a target that is not a path is not:
  :attr:`RequestHead.fallback` names why, and the connection goes to aiohttp as it
  stands, for the rest of its life;
* anything malformed is refused with :class:`HttpError`, which carries the status to
  answer (400, 431, 501, 505) and a message that says what was wrong. Being strict is
  deliberate: a proxy that reads a message differently from the server behind it is how
  requests are smuggled, so an ambiguous message (two lengths, a length beside a
  transfer coding, a folded or malformed header line) is refused, never guessed at.

Answers from the model are read by whatever framing they use: a length, chunks (decoded
here by :class:`ChunkedDecoder`, and re-framed with a length for the client, as the full
path does too), no body (a HEAD, 1xx, 204, 304), or everything until the model closes.

Header names are compared without regard to case and kept as they came; values keep
their bytes. The heads written out carry the headers of the message they forward, minus
the hop-by-hop ones (and any that ``Connection`` names), and the framing and inference id
headers that the proxy sets itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

MAX_HEAD_BYTES = 64 * 1024
"""The longest request or response head (request line and headers) accepted."""
MAX_HEADERS = 200
MAX_CHUNK_LINE = 4096
"""The longest chunk-size line (with its extensions) or trailer line of a chunked answer."""

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {b"content-length", b"expect"}
"""Request headers the proxy does not pass on to the model (it frames the body itself)."""
NOT_RETURNED = HOP_BY_HOP | {b"content-length"}
"""Answer headers the proxy does not pass on to the client (it frames the body itself)."""

FALLBACK_TRANSFER_ENCODING = "transfer-encoding"
FALLBACK_UPGRADE = "upgrade"
FALLBACK_EXPECT = "expect"
FALLBACK_TARGET = "target"

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_VERSIONS = {b"HTTP/1.1": (1, 1), b"HTTP/1.0": (1, 0)}

Headers = list[tuple[bytes, bytes]]
"""Header fields in order, each ``(name as sent, value without surrounding whitespace)``."""


class HttpError(ValueError):
    """A message the proxy will not read; ``status`` is the answer it gets (on a request)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Framing(Enum):
    """How the body of an answer is delimited."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until_close"


@dataclass(slots=True)
class Fields:
    """A head's header lines, read once: in order as sent, and indexed by lower-case name."""

    headers: Headers
    lines: list[bytes]
    """Each field line exactly as received, without its CRLF (forwarded as it is)."""
    lowers: list[bytes]
    """Each field's name, lower-cased."""
    index: dict[bytes, bytes]
    """The first value of each field, by lower-case name; for the fields that are lists
    (``Content-Length``, ``Transfer-Encoding``, ``Connection``), every value, comma-joined."""

    def get(self, lower_name: bytes) -> bytes | None:
        return self.index.get(lower_name)

    def tokens(self, lower_name: bytes) -> list[bytes]:
        """The comma-separated tokens of a list field, lower-cased and stripped."""
        value = self.index.get(lower_name)
        if value is None:
            return []
        stripped = (token.strip(b" \t") for token in value.lower().split(b","))
        return [token for token in stripped if token]


@dataclass(slots=True)
class RequestHead:
    method: str
    target: str
    """The path and query string, exactly as received."""
    version: tuple[int, int]
    fields: Fields
    content_length: int
    keep_alive: bool
    """Whether the client's connection stays open after the answer."""
    fallback: str | None
    """Why the lean path does not serve this request (it goes to the full server), if so."""
    request_line: bytes = b""

    @property
    def headers(self) -> Headers:
        return self.fields.headers

    def get(self, lower_name: bytes) -> bytes | None:
        """The first value of a header, by its lower-case name."""
        return self.fields.index.get(lower_name)


@dataclass(slots=True)
class ResponseHead:
    version: tuple[int, int]
    status: int
    reason: str
    fields: Fields
    framing: Framing
    content_length: int
    """The body's length when ``framing`` is ``LENGTH``, else 0."""
    keep_alive: bool
    """Whether the connection can carry another request after this answer's body."""

    @property
    def headers(self) -> Headers:
        return self.fields.headers

    def get(self, lower_name: bytes) -> bytes | None:
        return self.fields.index.get(lower_name)


def head_end(buffer: bytes | bytearray, start: int = 0) -> int:
    """The offset just past the blank line that ends a head in ``buffer``, or -1.

    Raises :class:`HttpError` (431) when no head has ended within :data:`MAX_HEAD_BYTES`.
    """
    found = buffer.find(b"\r\n\r\n", start)
    if found < 0:
        if len(buffer) - start > MAX_HEAD_BYTES:
            raise HttpError(431, f"the head is longer than {MAX_HEAD_BYTES} bytes")
        return -1
    if found + 4 - start > MAX_HEAD_BYTES:
        raise HttpError(431, f"the head is longer than {MAX_HEAD_BYTES} bytes")
    return found + 4


_FIELD_LINES = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*")
"""Well-formed field lines, checked in one pass; only a head that fails is looked at line by
line, to say what is wrong with it."""
_LISTS = frozenset({b"content-length", b"transfer-encoding", b"connection"})


def _fields(block: bytes, status: int) -> Fields:
    """The field lines of a head, each ending in CRLF (the blank line excluded)."""
    if _FIELD_LINES.fullmatch(block) is None:
        _diagnose(block.split(b"\r\n")[:-1], status)
    lines = block.split(b"\r\n")
    lines.pop()
    if len(lines) > MAX_HEADERS:
        raise HttpError(431 if status == 400 else status, f"more than {MAX_HEADERS} header fields")
    headers: Headers = []
    lowers: list[bytes] = []
    index: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        value = value.strip(b" \t")
        lower = name.lower()
        headers.append((name, value))
        lowers.append(lower)
        if lower not in index:
            index[lower] = value
        elif lower in _LISTS:
            index[lower] += b"," + value
    return Fields(headers, lines, lowers, index)


def _diagnose(lines: list[bytes], status: int) -> None:
    """Raise :class:`HttpError` naming the first malformed field line."""
    for line in lines:
        name, colon, value = line.partition(b":")
        if name[:1] in (b" ", b"\t"):
            raise HttpError(status, f"folded header line {_shown(line)} (obsolete line folding)")
        if not colon:
            raise HttpError(status, f"header line {_shown(line)} has no colon")
        if not name or _TOKEN.fullmatch(name) is None:
            raise HttpError(status, f"header name {_shown(name)} is not a token")
        if _BAD_VALUE.search(value) is not None:
            raise HttpError(status, f"header {_shown(name)} has a control character in its value")
    raise HttpError(status, "a header line is malformed")


def _shown(raw: bytes) -> str:
    text = raw[:60].decode("latin-1")
    return repr(text + ("..." if len(raw) > 60 else ""))


def _content_length(fields: Fields, status: int) -> int | None:
    value = fields.index.get(b"content-length")
    if value is None:
        return None
    lengths = set()
    for part in value.split(b","):
        part = part.strip(b" \t")
        if _DIGITS.fullmatch(part) is None:
            raise HttpError(status, f"Content-Length {_shown(value)} is not a number")
        lengths.add(int(part))
    if len(lengths) > 1:
        raise HttpError(status, "several different Content-Length values")
    return lengths.pop()


def _keep_alive(version: tuple[int, int], connection: list[bytes]) -> bool:
    tokens = set(connection)
    if b"close" in tokens:
        return False
    return version >= (1, 1) or b"keep-alive" in tokens


def _split_head(head: bytes | bytearray, status: int) -> tuple[bytes, bytes]:
    """The first line, and the field lines each ending in CRLF."""
    raw = bytes(head)
    if not raw.endswith(b"\r\n\r\n"):
        raise HttpError(status, "the head does not end in a blank line")
    first = raw.find(b"\r\n")
    return raw[:first], raw[first + 2 : -2]


def parse_request_head(head: bytes | bytearray) -> RequestHead:
    """A request head: the request line and header lines, ending in a blank line.

    Raises :class:`HttpError` with 400 (malformed), 431 (too many headers) or 505 (a
    version other than 1.0 and 1.1).
    """
    request_line, block = _split_head(head, 400)
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, f"request line {_shown(request_line)} is not METHOD TARGET VERSION")
    method, target, version_text = parts
    if _TOKEN.fullmatch(method) is None:
        raise HttpError(400, f"method {_shown(method)} is not a token")
    if _TARGET.fullmatch(target) is None:
        raise HttpError(400, f"request target {_shown(target)} has a space or control character")
    version = _VERSIONS.get(version_text)
    if version is None:
        if re.fullmatch(rb"HTTP/[0-9]\.[0-9]", version_text):
            raise HttpError(505, f"{version_text.decode()} is not supported: HTTP/1.1 or 1.0")
        raise HttpError(400, f"version {_shown(version_text)} is not HTTP/1.x")
    fields = _fields(block, 400)
    length = _content_length(fields, 400)
    index = fields.index
    transfer = b"transfer-encoding" in index
    if transfer and length is not None:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    fallback = None
    if transfer:
        fallback = FALLBACK_TRANSFER_ENCODING
    elif b"upgrade" in index:
        fallback = FALLBACK_UPGRADE
    elif b"expect" in index:
        fallback = FALLBACK_EXPECT
    elif not target.startswith(b"/"):
        fallback = FALLBACK_TARGET
    return RequestHead(
        method=method.decode("ascii"),
        target=target.decode("ascii"),
        version=version,
        fields=fields,
        content_length=length or 0,
        keep_alive=_keep_alive(version, fields.tokens(b"connection")),
        fallback=fallback,
        request_line=request_line,
    )


def parse_response_head(head: bytes | bytearray, *, request_method: str) -> ResponseHead:
    """An answer's head, and how its body is framed given the request that it answers.

    Raises :class:`HttpError` (502) when the answer cannot be read.
    """
    status_line, block = _split_head(head, 502)
    version_text, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    version = _VERSIONS.get(version_text)
    if version is None:
        raise HttpError(502, f"status line {_shown(status_line)} is not HTTP/1.x")
    if len(code) != 3 or not code.isdigit() or code[:1] == b"0":
        raise HttpError(502, f"status line {_shown(status_line)} has no 3-digit status")
    if _BAD_VALUE.search(reason) is not None:
        raise HttpError(502, "the reason phrase has a control character")
    fields = _fields(block, 502)
    length = _content_length(fields, 502)
    status = int(code)
    transfer = fields.tokens(b"transfer-encoding")
    keep_alive = _keep_alive(version, fields.tokens(b"connection"))
    if request_method == "HEAD" or status < 200 or status in (204, 304):
        framing, length = Framing.NONE, 0
    elif transfer:
        # A transfer coding overrides any length; the connection cannot be trusted after.
        if length is not None:
            keep_alive = False
        framing = Framing.CHUNKED if transfer[-1] == b"chunked" else Framing.UNTIL_CLOSE
        if framing is Framing.UNTIL_CLOSE:
            keep_alive = False
        length = 0
    elif length is not None:
        framing = Framing.LENGTH
    else:
        framing, length, keep_alive = Framing.UNTIL_CLOSE, 0, False
    return ResponseHead(
        version=version,
        status=status,
        reason=reason.decode("latin-1"),
        fields=fields,
        framing=framing,
        content_length=length,
        keep_alive=keep_alive,
    )


class ChunkedDecoder:
    """The body of a chunked answer, fed as it arrives.

    :meth:`feed` takes what it can use of ``data`` and says how many bytes that was; the
    rest belongs to whatever follows the body. :attr:`done` is set after the last chunk
    and its trailers (which are read and left out: the answer goes on with a length).
    Raises :class:`HttpError` (502) on a malformed chunk.
    """

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self.body = bytearray()
        self.done = False
        self._state = self._SIZE
        self._remaining = 0
        self._line = bytearray()

    def feed(self, data: bytes | bytearray) -> int:
        used = 0
        size = len(data)
        while used < size and not self.done:
            if self._state == self._DATA:
                take = min(self._remaining, size - used)
                self.body += data[used : used + take]
                used += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._DATA_END
                continue
            newline = data.find(b"\n", used)
            if newline < 0:
                self._line += data[used:]
                used = size
                if len(self._line) > MAX_CHUNK_LINE:
                    raise HttpError(502, f"a chunk line is longer than {MAX_CHUNK_LINE} bytes")
                break
            self._line += data[used : newline + 1]
            used = newline + 1
            if len(self._line) > MAX_CHUNK_LINE:
                raise HttpError(502, f"a chunk line is longer than {MAX_CHUNK_LINE} bytes")
            line = bytes(self._line)
            self._line.clear()
            if not line.endswith(b"\r\n"):
                raise HttpError(502, f"chunk line {_shown(line)} does not end in CRLF")
            self._line_done(line[:-2])
        return used

    def _line_done(self, line: bytes) -> None:
        if self._state == self._DATA_END:
            if line:
                raise HttpError(502, "chunk data is longer than its size")
            self._state = self._SIZE
        elif self._state == self._SIZE:
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if _HEX.fullmatch(size_text) is None:
                raise HttpError(502, f"chunk size {_shown(size_text)} is not hexadecimal")
            self._remaining = int(size_text, 16)
            self._state = self._DATA if self._remaining else self._TRAILER
        elif not line:  # the blank line after the trailers
            self.done = True


def _listed(fields: Fields) -> frozenset[bytes]:
    return frozenset(fields.tokens(b"connection"))


def _status_line(status: int, reason: str) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, reason.encode("latin-1", "replace"))


def forward_request_head(
    request: RequestHead,
    *,
    target: str,
    id_header: bytes,
    inference_id: str,
    body_length: int,
    default_host: bytes,
) -> bytes:
    """The head sent to the model: the client's header lines minus the hop-by-hop ones.

    ``id_header`` (as configured) replaces any the client sent, whatever its case, with
    ``inference_id``; the body is framed with a ``Content-Length`` whenever there is one
    or the client sent one; ``Host`` is the client's, or ``default_host`` when it sent none.
    """
    fields = request.fields
    dropped = NOT_FORWARDED | {id_header.lower()}
    if b"connection" in fields.index:
        dropped |= _listed(fields)
    out = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), target.encode("ascii"))]
    out += [
        line
        for line, lower in zip(fields.lines, fields.lowers, strict=True)
        if lower not in dropped
    ]
    if b"host" not in fields.index:
        out.append(b"Host: " + default_host)
    out.append(id_header + b": " + inference_id.encode("ascii"))
    if body_length or b"content-length" in fields.index:
        out.append(b"Content-Length: %d" % body_length)
    out.append(b"\r\n")
    return b"\r\n".join(out)


def answer_head(
    status: int,
    reason: str,
    fields: Fields,
    *,
    body_length: int,
    head_request: bool,
    id_header: bytes,
    inference_id: str,
    keep_alive: bool,
    client_version: tuple[int, int],
) -> bytes:
    """The head of the answer to the client: the model's header lines minus the hop-by-hop
    ones.

    A HEAD request's answer keeps the model's ``Content-Length`` (the length a GET would
    get); 1xx and 204 answers have none; 304 keeps the model's; every other answer gets
    the length of the body sent. The id header is set to ``inference_id``. ``Connection:
    close`` is added when the connection closes after this answer, ``keep-alive`` when an
    HTTP/1.0 client's stays open.
    """
    keep_length = head_request or status == 304
    dropped = (HOP_BY_HOP if keep_length else NOT_RETURNED) | {id_header.lower()}
    if b"connection" in fields.index:
        dropped |= _listed(fields)
    out = [b"HTTP/1.1 %d %s" % (status, reason.encode("latin-1", "replace"))]
    out += [
        line
        for line, lower in zip(fields.lines, fields.lowers, strict=True)
        if lower not in dropped
    ]
    out.append(id_header + b": " + inference_id.encode("ascii"))
    if not keep_length and status >= 200 and status != 204:
        out.append(b"Content-Length: %d" % body_length)
    if not keep_alive:
        out.append(b"Connection: close")
    elif client_version < (1, 1):
        out.append(b"Connection: keep-alive")
    out.append(b"\r\n")
    return b"\r\n".join(out)


def error_head(
    status: int,
    reason: str,
    *,
    body_length: int,
    id_header: bytes | None,
    inference_id: str | None,
    keep_alive: bool,
) -> bytes:
    """The head of an answer the proxy makes itself (a JSON error body)."""
    out = [_status_line(status, reason), b"Content-Type: application/json\r\n"]
    if id_header is not None and inference_id is not None:
        out.append(b"%s: %s\r\n" % (id_header, inference_id.encode("ascii")))
    out.append(b"Content-Length: %d\r\n" % body_length)
    if not keep_alive:
        out.append(b"Connection: close\r\n")
    out.append(b"\r\n")
    return b"".join(out)
