"""Opening an event dataset: a local file or an http(s) URL, plain or gzip.

A replay reads its dataset at least twice: a first pass counts and validates the selected
events (so that an empty selection fails before any traffic, and so that the schedule
knows the recorded time span), and the sending pass streams them again, once per loop.
Holding a large dataset in memory for that would be wasteful, so the file is re-read
each pass instead; a dataset behind a URL is downloaded once into a temporary file
(streamed, never held in memory) and then treated like a local one.

Compression is detected by content (the gzip magic bytes ``1f 8b``), not by file name,
because URLs and ConfigMap keys rarely carry a trustworthy extension. A gzip stream that
ends early or is corrupt stops the reading; the fault is recorded so that it is reported
like a malformed line instead of aborting the run.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

GZIP_MAGIC = b"\x1f\x8b"


class DatasetError(Exception):
    """The dataset cannot be used as given (missing file, HTTP 404, ...): bad input."""


class DatasetFetchError(Exception):
    """The dataset could not be downloaded (network failure, server error): a run error."""


class LocalDataset:
    """A dataset file on disk; :meth:`lines` starts a fresh pass each call."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source
        self.read_error: tuple[int, str] | None = None
        with path.open("rb") as handle:
            self.compressed = handle.read(2) == GZIP_MAGIC

    def _open(self) -> io.BufferedIOBase:
        if self.compressed:
            return gzip.open(self.path, "rb")
        return self.path.open("rb")

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(line_number, raw_line)`` from 1; a corrupt gzip tail ends the pass."""
        number = 0
        with self._open() as handle:
            try:
                for number, raw in enumerate(handle, start=1):
                    yield number, raw
            except (OSError, EOFError, zlib.error) as error:
                reason = "gzip stream is truncated or corrupt; reading stopped here"
                if not isinstance(error, EOFError | gzip.BadGzipFile | zlib.error):
                    reason = f"read error: {error}; reading stopped here"
                self.read_error = (number + 1, reason)


def _local(source: str) -> LocalDataset:
    path = Path(source)
    if not path.is_file():
        raise DatasetError(f"--events: {source} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise DatasetError(f"--events: {source} is not readable")
    return LocalDataset(path, source)


def is_url(source: str) -> bool:
    return urlsplit(source).scheme in {"http", "https"}


@asynccontextmanager
async def open_dataset(
    source: str,
    *,
    fetch_timeout: float = 60.0,
    max_bytes: int | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[LocalDataset]:
    """Yield a :class:`LocalDataset` for a path or URL; downloads are removed afterwards."""
    if not is_url(source):
        yield _local(source)
        return
    with tempfile.TemporaryDirectory(prefix="modelrollout-events-") as tmp:
        path = Path(tmp) / "events"
        await download(
            source, path, fetch_timeout=fetch_timeout, max_bytes=max_bytes, headers=headers
        )
        yield LocalDataset(path, source)


async def download(
    url: str,
    path: Path,
    *,
    fetch_timeout: float,
    max_bytes: int | None = None,
    headers: dict[str, str] | None = None,
    flag: str = "--events",
) -> None:
    """Stream ``url`` into ``path``; errors name ``flag``, the option that gave the URL."""
    written = 0
    try:
        async with (
            httpx.AsyncClient(timeout=fetch_timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if 400 <= response.status_code < 500:
                raise DatasetError(f"{flag}: GET {url} returned HTTP {response.status_code}")
            if response.status_code >= 300:
                raise DatasetFetchError(f"{flag}: GET {url} returned HTTP {response.status_code}")
            with path.open("wb") as out:
                # Raw bytes: a gzip dataset stays compressed on disk and is detected by
                # content. (Content-Encoding, if any, is undone by the client.)
                async for chunk in response.aiter_bytes(1 << 16):
                    written += len(chunk)
                    if max_bytes is not None and written > max_bytes:
                        raise DatasetError(
                            f"{flag}: {url} is larger than the {max_bytes} byte limit"
                        )
                    out.write(chunk)
    except httpx.HTTPError as error:
        raise DatasetFetchError(
            f"{flag}: cannot fetch {url}: {error!s} ({type(error).__name__})"
        ) from None
