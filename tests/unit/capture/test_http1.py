"""The lean path's HTTP/1.1 reading and writing, as tables: good messages, and bad ones with
the status and the words each is refused with."""

from __future__ import annotations

import pytest

from modelrollout.core.capture import http1
from modelrollout.core.capture.http1 import Framing, HttpError

ID = b"X-Inference-Id"


def _request(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- finding the end of a head ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("buffer", "expected"),
    [
        (b"", -1),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", -1),
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27),
        (b"GET / HTTP/1.1\r\n\r\nbody after", 18),
        (b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 18),
    ],
)
def test_the_end_of_a_head(buffer: bytes, expected: int):
    assert http1.head_end(buffer) == expected


def test_a_head_that_never_ends_is_431():
    with pytest.raises(HttpError) as raised:
        http1.head_end(b"GET / HTTP/1.1\r\nX: " + b"a" * http1.MAX_HEAD_BYTES)
    assert raised.value.status == 431
    assert "longer than" in raised.value.message


# -- requests ---------------------------------------------------------------------------------

GOOD_REQUESTS = [
    # (head, method, target, version, content length, keep-alive, fallback)
    (
        _request("POST /v1/models/m:predict HTTP/1.1", "Host: a", "Content-Length: 12"),
        ("POST", "/v1/models/m:predict", (1, 1), 12, True, None),
    ),
    (_request("GET /healthz HTTP/1.1", "Host: a"), ("GET", "/healthz", (1, 1), 0, True, None)),
    (
        _request("GET /x?a=1&b=%20 HTTP/1.1", "Connection: close"),
        ("GET", "/x?a=1&b=%20", (1, 1), 0, False, None),
    ),
    (
        _request("GET / HTTP/1.1", "connection: Keep-Alive, CLOSE"),
        ("GET", "/", (1, 1), 0, False, None),
    ),
    (_request("GET / HTTP/1.0"), ("GET", "/", (1, 0), 0, False, None)),
    (
        _request("GET / HTTP/1.0", "Connection: keep-alive"),
        ("GET", "/", (1, 0), 0, True, None),
    ),
    (
        _request("PUT / HTTP/1.1", "content-length: 5", "CONTENT-LENGTH: 5"),
        ("PUT", "/", (1, 1), 5, True, None),
    ),
    (_request("PUT / HTTP/1.1", "Content-Length: 5, 5"), ("PUT", "/", (1, 1), 5, True, None)),
    (
        _request("POST / HTTP/1.1", "Transfer-Encoding: chunked"),
        ("POST", "/", (1, 1), 0, True, http1.FALLBACK_TRANSFER_ENCODING),
    ),
    (
        _request("GET /ws HTTP/1.1", "Connection: Upgrade", "Upgrade: websocket"),
        ("GET", "/ws", (1, 1), 0, True, http1.FALLBACK_UPGRADE),
    ),
    (
        _request("POST / HTTP/1.1", "Content-Length: 3", "Expect: 100-continue"),
        ("POST", "/", (1, 1), 3, True, http1.FALLBACK_EXPECT),
    ),
    (
        _request("GET http://model/v1 HTTP/1.1"),
        ("GET", "http://model/v1", (1, 1), 0, True, http1.FALLBACK_TARGET),
    ),
    (_request("OPTIONS * HTTP/1.1"), ("OPTIONS", "*", (1, 1), 0, True, http1.FALLBACK_TARGET)),
    (
        _request("GET / HTTP/1.1", "X-Empty:", "X-Spaces: \t padded \t", "X-Obs: caf\xe9"),
        ("GET", "/", (1, 1), 0, True, None),
    ),
]


@pytest.mark.parametrize(("head", "expected"), GOOD_REQUESTS)
def test_good_request_heads(head: bytes, expected: tuple[object, ...]):
    parsed = http1.parse_request_head(head)
    found = (
        parsed.method,
        parsed.target,
        parsed.version,
        parsed.content_length,
        parsed.keep_alive,
        parsed.fallback,
    )
    assert found == expected


def test_headers_keep_their_case_and_order_and_are_found_in_any_case():
    parsed = http1.parse_request_head(
        _request("GET / HTTP/1.1", "X-Inference-ID: a", "x-tenant: acme", "X-Tenant: other")
    )
    assert parsed.headers == [
        (b"X-Inference-ID", b"a"),
        (b"x-tenant", b"acme"),
        (b"X-Tenant", b"other"),
    ]
    assert parsed.get(b"x-inference-id") == b"a"
    assert parsed.get(b"x-tenant") == b"acme"  # the first of a repeated field
    assert parsed.get(b"absent") is None


def test_values_are_stripped_of_surrounding_whitespace_only():
    parsed = http1.parse_request_head(
        _request("GET / HTTP/1.1", "X-Spaces: \t padded  value \t", "X-Obs: caf\xe9")
    )
    assert parsed.get(b"x-spaces") == b"padded  value"
    assert parsed.get(b"x-obs") == "café".encode("latin-1")


BAD_REQUESTS = [
    # (head, status, words in the message)
    (b"GET / HTTP/1.1\r\nHost: a\r\n", 400, "blank line"),
    (_request("GET /  HTTP/1.1"), 400, "is not METHOD TARGET VERSION"),
    (_request("GET / HTTP/1.1 extra"), 400, "is not METHOD TARGET VERSION"),
    (_request("GET"), 400, "is not METHOD TARGET VERSION"),
    (_request("G(T / HTTP/1.1"), 400, "method 'G(T' is not a token"),
    (_request("GET /a\x01b HTTP/1.1"), 400, "space or control character"),
    (_request("GET / HTTP/2.0"), 505, "HTTP/2.0 is not supported"),
    (_request("GET / HTTP/1.2"), 505, "HTTP/1.2 is not supported"),
    (_request("GET / http/1.1"), 400, "is not HTTP/1.x"),
    (_request("GET / HTTP/1.1", "Host a"), 400, "has no colon"),
    (_request("GET / HTTP/1.1", "Host : a"), 400, "header name 'Host ' is not a token"),
    (_request("GET / HTTP/1.1", ": a"), 400, "header name '' is not a token"),
    (_request("GET / HTTP/1.1", "X-A: 1", " folded"), 400, "obsolete line folding"),
    (_request("GET / HTTP/1.1", "X-A: 1\x00"), 400, "control character in its value"),
    (_request("GET / HTTP/1.1", "X-A: 1\r2"), 400, "control character in its value"),
    (_request("GET / HTTP/1.1", "X-A: 1\n2"), 400, "control character in its value"),
    (_request("GET / HTTP/1.1", "Content-Length: -1"), 400, "is not a number"),
    (_request("GET / HTTP/1.1", "Content-Length: 1e3"), 400, "is not a number"),
    (_request("GET / HTTP/1.1", "Content-Length: "), 400, "is not a number"),
    (_request("GET / HTTP/1.1", "Content-Length: 9" * 1 + "9" * 30), 400, "is not a number"),
    (
        _request("GET / HTTP/1.1", "Content-Length: 1", "Content-Length: 2"),
        400,
        "several different Content-Length",
    ),
    (_request("GET / HTTP/1.1", "Content-Length: 1, 2"), 400, "several different Content-Length"),
    (
        _request("POST / HTTP/1.1", "Content-Length: 3", "Transfer-Encoding: chunked"),
        400,
        "both Content-Length and Transfer-Encoding",
    ),
    (
        _request("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(http1.MAX_HEADERS + 1)]),
        431,
        "more than",
    ),
]


@pytest.mark.parametrize(("head", "status", "words"), BAD_REQUESTS)
def test_bad_request_heads_are_refused_saying_why(head: bytes, status: int, words: str):
    with pytest.raises(HttpError) as raised:
        http1.parse_request_head(head)
    assert raised.value.status == status
    assert words in raised.value.message


# -- answers ----------------------------------------------------------------------------------


def _answer(*lines: str) -> bytes:
    return _request(*lines)


GOOD_ANSWERS = [
    # (head, request method, (status, reason, framing, length, keep-alive))
    (
        _answer("HTTP/1.1 200 OK", "Content-Length: 5"),
        "POST",
        (200, "OK", Framing.LENGTH, 5, True),
    ),
    (
        _answer("HTTP/1.1 404 Not Found", "Content-Length: 0"),
        "GET",
        (404, "Not Found", Framing.LENGTH, 0, True),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
        "GET",
        (200, "OK", Framing.CHUNKED, 0, True),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"),
        "GET",
        (200, "OK", Framing.CHUNKED, 0, True),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 9"),
        "GET",
        (200, "OK", Framing.CHUNKED, 0, False),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"),
        "GET",
        (200, "OK", Framing.UNTIL_CLOSE, 0, False),
    ),
    (_answer("HTTP/1.1 200 OK"), "GET", (200, "OK", Framing.UNTIL_CLOSE, 0, False)),
    (_answer("HTTP/1.0 200 OK", "Content-Length: 2"), "GET", (200, "OK", Framing.LENGTH, 2, False)),
    (
        _answer("HTTP/1.0 200 OK", "Content-Length: 2", "Connection: keep-alive"),
        "GET",
        (200, "OK", Framing.LENGTH, 2, True),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close"),
        "GET",
        (200, "OK", Framing.LENGTH, 2, False),
    ),
    (
        _answer("HTTP/1.1 200 OK", "Content-Length: 50"),
        "HEAD",
        (200, "OK", Framing.NONE, 0, True),
    ),
    (_answer("HTTP/1.1 204 No Content"), "DELETE", (204, "No Content", Framing.NONE, 0, True)),
    (
        _answer("HTTP/1.1 304 Not Modified", "Content-Length: 50"),
        "GET",
        (304, "Not Modified", Framing.NONE, 0, True),
    ),
    (
        _answer("HTTP/1.1 103 Early Hints", "Link: </a>"),
        "GET",
        (103, "Early Hints", Framing.NONE, 0, True),
    ),
    (_answer("HTTP/1.1 200", "Content-Length: 0"), "GET", (200, "", Framing.LENGTH, 0, True)),
    (
        _answer("HTTP/1.1 599 Model On Fire", "Content-Length: 1"),
        "GET",
        (599, "Model On Fire", Framing.LENGTH, 1, True),
    ),
]


@pytest.mark.parametrize(("head", "method", "expected"), GOOD_ANSWERS)
def test_good_answer_heads_and_their_framing(
    head: bytes, method: str, expected: tuple[object, ...]
):
    parsed = http1.parse_response_head(head, request_method=method)
    found = (parsed.status, parsed.reason, parsed.framing, parsed.content_length, parsed.keep_alive)
    assert found == expected


BAD_ANSWERS = [
    (b"HTTP/1.1 200 OK\r\n", "blank line"),
    (_answer("HTTP/2 200 OK"), "is not HTTP/1.x"),
    (_answer("ICY 200 OK"), "is not HTTP/1.x"),
    (_answer("HTTP/1.1 20 OK"), "no 3-digit status"),
    (_answer("HTTP/1.1 OK"), "no 3-digit status"),
    (_answer("HTTP/1.1 099 Odd"), "no 3-digit status"),
    (_answer("HTTP/1.1 200 O\x01K"), "control character"),
    (_answer("HTTP/1.1 200 OK", "Content-Length: x"), "is not a number"),
    (_answer("HTTP/1.1 200 OK", "Content-Length: 1", "Content-Length: 2"), "several different"),
    (_answer("HTTP/1.1 200 OK", "Bad Name: 1"), "is not a token"),
]


@pytest.mark.parametrize(("head", "words"), BAD_ANSWERS)
def test_bad_answer_heads_are_a_502_saying_why(head: bytes, words: str):
    with pytest.raises(HttpError) as raised:
        http1.parse_response_head(head, request_method="GET")
    assert raised.value.status == 502
    assert words in raised.value.message


# -- chunked answers --------------------------------------------------------------------------

GOOD_CHUNKED = [
    (b"0\r\n\r\n", b""),
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
    (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    (b"a;name=value\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    (b"3\r\n\r\n\r\r\n0\r\n\r\n", b"\r\n\r"),
    (b"2\r\nok\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n", b"ok"),
]


@pytest.mark.parametrize(("wire", "body"), GOOD_CHUNKED)
def test_chunked_bodies_decode_whole(wire: bytes, body: bytes):
    decoder = http1.ChunkedDecoder()
    assert decoder.feed(wire + b"NEXT") == len(wire)
    assert decoder.done
    assert bytes(decoder.body) == body


@pytest.mark.parametrize(("wire", "body"), GOOD_CHUNKED)
def test_chunked_bodies_decode_one_byte_at_a_time(wire: bytes, body: bytes):
    decoder = http1.ChunkedDecoder()
    for i in range(len(wire)):
        assert not decoder.done
        assert decoder.feed(wire[i : i + 1]) == 1
    assert decoder.done
    assert bytes(decoder.body) == body


BAD_CHUNKED = [
    (b"x\r\n", "is not hexadecimal"),
    (b"-1\r\n", "is not hexadecimal"),
    (b"\r\n", "is not hexadecimal"),
    (b"5\nhello", "does not end in CRLF"),
    (b"2\r\nabc\r\n", "longer than its size"),
    (b"1" * 20 + b"\r\n", "is not hexadecimal"),
    (b"5;" + b"x" * http1.MAX_CHUNK_LINE, "longer than"),
]


@pytest.mark.parametrize(("wire", "words"), BAD_CHUNKED)
def test_malformed_chunks_are_a_502_saying_why(wire: bytes, words: str):
    decoder = http1.ChunkedDecoder()
    with pytest.raises(HttpError) as raised:
        decoder.feed(wire)
    assert raised.value.status == 502
    assert words in raised.value.message


# -- what goes out ----------------------------------------------------------------------------


def _lines(head: bytes) -> list[str]:
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].decode("latin-1").split("\r\n")


def test_the_request_forwarded_drops_hop_by_hop_and_sets_the_id_and_length():
    request = http1.parse_request_head(
        _request(
            "POST /v1/m:predict?a=1 HTTP/1.1",
            "Host: fraud.ml.svc",
            "Connection: keep-alive, X-Hop",
            "X-Hop: dropped",
            "Keep-Alive: timeout=5",
            "x-inference-id: from-client",
            "Content-Type: application/json",
            "Content-Length: 2",
            "Proxy-Authorization: secret",
            "TE: trailers",
            "Authorization: Bearer t",
        )
    )
    head = http1.forward_request_head(
        request,
        target="/prefix" + request.target,
        id_header=ID,
        inference_id="chosen",
        body_length=2,
        default_host=b"127.0.0.1:8080",
    )
    assert _lines(head) == [
        "POST /prefix/v1/m:predict?a=1 HTTP/1.1",
        "Host: fraud.ml.svc",
        "Content-Type: application/json",
        "Authorization: Bearer t",
        "X-Inference-Id: chosen",
        "Content-Length: 2",
    ]


@pytest.mark.parametrize(
    ("lines", "body_length", "expected_tail"),
    [
        (("GET / HTTP/1.0",), 0, ["Host: 127.0.0.1:8080", "X-Inference-Id: i"]),
        (("POST / HTTP/1.1", "Host: h"), 0, ["Host: h", "X-Inference-Id: i"]),
        (
            ("POST / HTTP/1.1", "Host: h", "Content-Length: 0"),
            0,
            ["Host: h", "X-Inference-Id: i", "Content-Length: 0"],
        ),
    ],
)
def test_the_request_forwarded_gets_a_host_and_a_length_only_when_needed(
    lines: tuple[str, ...], body_length: int, expected_tail: list[str]
):
    request = http1.parse_request_head(_request(*lines))
    head = http1.forward_request_head(
        request,
        target=request.target,
        id_header=ID,
        inference_id="i",
        body_length=body_length,
        default_host=b"127.0.0.1:8080",
    )
    assert _lines(head)[1:] == expected_tail


def _answer_lines(
    head: bytes,
    *,
    status: int = 200,
    body_length: int = 0,
    method: str = "GET",
    keep_alive: bool = True,
    version: tuple[int, int] = (1, 1),
) -> list[str]:
    parsed = http1.parse_response_head(head, request_method=method)
    return _lines(
        http1.answer_head(
            status,
            parsed.reason,
            parsed.fields,
            body_length=body_length,
            head_request=method == "HEAD",
            id_header=ID,
            inference_id="i",
            keep_alive=keep_alive,
            client_version=version,
        )
    )


def test_the_answer_returned_keeps_the_models_headers_and_reframes_the_body():
    head = _answer(
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        "Set-Cookie: a=1",
        "Set-Cookie: b=2",
        "Transfer-Encoding: chunked",
        "Keep-Alive: timeout=99",
        "X-Inference-Id: the-models-own",
        "Date: Thu, 03 Dec 2026 06:58:44 GMT",
    )
    assert _answer_lines(head, body_length=11) == [
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        "Set-Cookie: a=1",
        "Set-Cookie: b=2",
        "Date: Thu, 03 Dec 2026 06:58:44 GMT",
        "X-Inference-Id: i",
        "Content-Length: 11",
    ]


@pytest.mark.parametrize(
    ("answer", "kwargs", "expected"),
    [
        (  # a HEAD answer keeps the length a GET would get
            ("HTTP/1.1 200 OK", "Content-Length: 50"),
            {"method": "HEAD"},
            ["HTTP/1.1 200 OK", "Content-Length: 50", "X-Inference-Id: i"],
        ),
        (
            ("HTTP/1.1 204 No Content",),
            {"status": 204},
            ["HTTP/1.1 204 No Content", "X-Inference-Id: i"],
        ),
        (
            ("HTTP/1.1 304 Not Modified", "ETag: x"),
            {"status": 304},
            ["HTTP/1.1 304 Not Modified", "ETag: x", "X-Inference-Id: i"],
        ),
        (
            ("HTTP/1.1 200 OK", "Content-Length: 2"),
            {"body_length": 2, "keep_alive": False},
            ["HTTP/1.1 200 OK", "X-Inference-Id: i", "Content-Length: 2", "Connection: close"],
        ),
        (
            ("HTTP/1.1 200 OK", "Content-Length: 2"),
            {"body_length": 2, "version": (1, 0)},
            ["HTTP/1.1 200 OK", "X-Inference-Id: i", "Content-Length: 2", "Connection: keep-alive"],
        ),
        (
            ("HTTP/1.1 200 OK", "Connection: X-Private", "X-Private: 1", "X-Public: 2"),
            {"body_length": 0},
            ["HTTP/1.1 200 OK", "X-Public: 2", "X-Inference-Id: i", "Content-Length: 0"],
        ),
    ],
)
def test_the_answer_returned_in_special_cases(
    answer: tuple[str, ...], kwargs: dict[str, object], expected: list[str]
):
    assert _answer_lines(_answer(*answer), **kwargs) == expected  # type: ignore[arg-type]


def test_an_error_answer_of_the_proxy_itself():
    head = http1.error_head(
        502, "Bad Gateway", body_length=10, id_header=ID, inference_id="i", keep_alive=False
    )
    assert _lines(head) == [
        "HTTP/1.1 502 Bad Gateway",
        "Content-Type: application/json",
        "X-Inference-Id: i",
        "Content-Length: 10",
        "Connection: close",
    ]
