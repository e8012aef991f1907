"""Capture files on disk: rotation, the total bound, gzip, recovery and failed writes."""

from __future__ import annotations

import errno
import gzip
import zlib
from pathlib import Path

import aiohttp
import pytest

from modelrollout.core.capture.rotation import RotationPolicy
from modelrollout.services.capture import RunningCapture
from modelrollout.services.capture import files as files_module
from modelrollout.services.capture.files import CaptureFiles, DirectoryError, WriteFailed
from modelrollout.services.capture.metrics import CaptureMetrics
from support.capture import PREDICT, call, lines, start_proxy
from support.modelservers import ModelServer
from support.wait import async_poll_until

LINE = b'{"payload":{"instances":[[1,2,3,4]]},"n":"%02d"}\n'  # 46 bytes once numbered
WALL = 1764590400.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(
    directory: Path,
    *,
    max_bytes: int | None = None,
    max_age: float | None = None,
    total: int | None = None,
    compress: bool = False,
    clock: Clock | None = None,
) -> CaptureFiles:
    files = CaptureFiles(
        directory,
        prefix="cap",
        policy=RotationPolicy(max_bytes, max_age),
        max_total_bytes=total,
        compress=compress,
        metrics=CaptureMetrics(),
        wall_clock=lambda: WALL,
        monotonic=clock or Clock(),
    )
    files.prepare()
    return files


def line(n: int) -> bytes:
    return LINE % n


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def rotated(files: CaptureFiles, reason: str) -> float:
    return files.metrics.value("modelrollout_capture_files_rotated_total", reason=reason)


def test_a_file_closes_when_it_reaches_its_size(tmp_path: Path):
    files = make(tmp_path, max_bytes=100)
    for n in range(5):
        files.write([line(n)])
    assert names(tmp_path) == [
        "cap-20251201T120000Z-000001.jsonl",
        "cap-20251201T120000Z-000002.jsonl",
        "cap-20251201T120000Z-000003.jsonl.part",
    ]
    first = (tmp_path / "cap-20251201T120000Z-000001.jsonl").read_bytes()
    assert first == line(0) + line(1)  # a third line would take it over 100 bytes
    assert rotated(files, "size") == 2
    files.close()
    assert names(tmp_path)[-1] == "cap-20251201T120000Z-000003.jsonl"
    assert rotated(files, "shutdown") == 1
    assert files.metrics.value("modelrollout_capture_bytes_written_total") == 5 * len(line(0))


def test_a_file_closes_when_it_reaches_its_age(tmp_path: Path):
    clock = Clock()
    files = make(tmp_path, max_age=60, clock=clock)
    files.write([line(1)])
    assert files.deadline() == 60
    clock.now = 59.9
    files.tick()
    assert files.open_name is not None
    clock.now = 60
    files.tick()
    assert files.open_name is None
    assert names(tmp_path) == ["cap-20251201T120000Z-000001.jsonl"]
    assert rotated(files, "age") == 1
    assert files.deadline() is None


def test_an_empty_file_is_never_left_behind(tmp_path: Path):
    files = make(tmp_path, max_bytes=100)
    files.close()
    assert names(tmp_path) == []
    files.write([])
    files.close()
    assert names(tmp_path) == []


def test_the_oldest_files_go_to_stay_within_the_total(tmp_path: Path):
    files = make(tmp_path, max_bytes=100, total=250)
    size = len(line(0))
    for n in range(20):
        files.write([line(n)])
        on_disk = sum(path.stat().st_size for path in tmp_path.iterdir())
        assert on_disk <= 250
        assert files.disk_bytes == on_disk
    deleted = files.metrics.value("modelrollout_capture_files_deleted_total")
    assert deleted > 0
    files.close()
    kept = [row for name in names(tmp_path) for row in (tmp_path / name).read_bytes().splitlines()]
    assert kept == [line(n).rstrip(b"\n") for n in range(20 - len(kept), 20)]
    assert files.metrics.value("modelrollout_capture_disk_bytes") == len(kept) * size


def test_files_removed_by_someone_else_stop_counting(tmp_path: Path):
    files = make(tmp_path, max_bytes=100, total=1000)
    for n in range(3):
        files.write([line(n)])
    assert files.disk_bytes == 3 * len(line(0))
    (tmp_path / "cap-20251201T120000Z-000001.jsonl").unlink()  # an uploader took it
    files.close()
    assert files.disk_bytes == len(line(2))
    assert files.disk_bytes == sum(path.stat().st_size for path in tmp_path.iterdir())


def test_left_over_part_files_are_finished_and_numbering_goes_on(tmp_path: Path):
    (tmp_path / "cap-20251130T000000Z-000007.jsonl.part").write_bytes(line(1) + b'{"torn":')
    (tmp_path / "cap-20251130T000000Z-000005.jsonl.part").write_bytes(b'{"only a torn line')
    (tmp_path / "other-20251130T000000Z-000099.jsonl.part").write_bytes(b"not ours")
    files = CaptureFiles(
        tmp_path,
        prefix="cap",
        policy=RotationPolicy(100),
        max_total_bytes=None,
        compress=False,
        metrics=CaptureMetrics(),
        wall_clock=lambda: WALL,
    )
    assert files.prepare() == ["cap-20251130T000000Z-000007.jsonl"]
    assert (tmp_path / "cap-20251130T000000Z-000007.jsonl").read_bytes() == line(1)
    assert "cap-20251130T000000Z-000005.jsonl.part" not in names(tmp_path)
    files.write([line(2)])
    assert files.open_name == "cap-20251201T120000Z-000008.jsonl.part"
    assert "other-20251130T000000Z-000099.jsonl.part" in names(tmp_path)
    assert files.disk_bytes == 2 * len(line(0))


def test_gzip_is_readable_after_a_flush_and_complete_after_close(tmp_path: Path):
    files = make(tmp_path, compress=True, max_bytes=1 << 20)
    data = b"".join(line(n) for n in range(10))
    files.write([line(n) for n in range(10)])
    files.flush()
    (part,) = tmp_path.iterdir()
    assert part.name == "cap-20251201T120000Z-000001.jsonl.gz.part"
    assert zlib.decompressobj(31).decompress(part.read_bytes()) == data
    files.close()
    (done,) = tmp_path.iterdir()
    assert done.name == "cap-20251201T120000Z-000001.jsonl.gz"
    assert gzip.decompress(done.read_bytes()) == data
    assert files.metrics.value("modelrollout_capture_bytes_written_total") == done.stat().st_size


def test_gzip_files_rotate_on_their_compressed_size(tmp_path: Path):
    files = make(tmp_path, compress=True, max_bytes=200)
    for n in range(300):
        files.write([line(n)])
        files.flush()
    files.close()
    found = names(tmp_path)
    assert len(found) > 2
    text = b"".join(gzip.decompress((tmp_path / name).read_bytes()) for name in found)
    assert text == b"".join(line(n) for n in range(300))


def test_a_failed_write_leaves_no_torn_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    files = make(tmp_path, max_bytes=10_000)
    files.write([line(1)])
    real = files_module._write_all

    def disk_full(fd: int, data: bytes) -> None:
        real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_module, "_write_all", disk_full)
    with pytest.raises(WriteFailed, match="No space") as failed:
        files.write([line(2), line(3)])
    assert failed.value.written == 0
    assert names(tmp_path) == ["cap-20251201T120000Z-000001.jsonl"]
    assert (tmp_path / names(tmp_path)[0]).read_bytes() == line(1)
    assert rotated(files, "error") == 1
    assert files.metrics.value("modelrollout_capture_write_errors_total") == 1
    monkeypatch.setattr(files_module, "_write_all", real)
    files.write([line(4)])
    files.close()
    assert names(tmp_path)[-1] == "cap-20251201T120000Z-000002.jsonl"
    assert (tmp_path / names(tmp_path)[-1]).read_bytes() == line(4)


def test_a_directory_that_cannot_be_made(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    files = CaptureFiles(
        tmp_path / "file" / "sub",
        prefix="cap",
        policy=RotationPolicy(100),
        max_total_bytes=None,
        compress=False,
        metrics=CaptureMetrics(),
    )
    with pytest.raises(DirectoryError, match="cannot create"):
        files.prepare()


# -- through the proxy ---------------------------------------------------------------------

INSTANCE = {"instances": [[0.3, -1.2, 0.8, 0.1]]}


async def test_files_rotate_by_size_while_serving(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    async with start_proxy(
        tmp_path, model.url, max_file_bytes="2k", max_total_bytes="1Mi"
    ) as proxy:
        for i in range(30):
            headers = {"X-Inference-Id": f"r{i:02d}"}
            status, _, _ = await call(http, proxy.url + PREDICT, payload=INSTANCE, headers=headers)
            assert status == 200
        await async_poll_until(
            lambda: proxy.metrics.value("modelrollout_capture_records_written_total") == 30,
            timeout=10,
            message="every record written",
        )
    found = names(tmp_path)
    assert all(name.endswith(".jsonl") for name in found)
    assert all((tmp_path / name).stat().st_size <= 2000 for name in found)
    assert len(found) >= 30 * 350 // 2000
    assert [r["inferenceId"] for r in lines(tmp_path)] == [f"r{i:02d}" for i in range(30)]
    assert rotated_by(proxy, "size") + rotated_by(proxy, "shutdown") == len(found)


async def test_an_idle_file_is_closed_at_its_age(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, model.url, rotate_interval="200ms") as proxy:
        await call(http, proxy.url + PREDICT, payload=INSTANCE)
        await async_poll_until(
            lambda: complete_files(tmp_path) == 1, timeout=10, message="the file closes by age"
        )
        assert rotated_by(proxy, "age") == 1
    assert len(lines(tmp_path)) == 1


async def test_the_total_bound_holds_while_serving(
    tmp_path: Path, model: ModelServer, http: aiohttp.ClientSession
):
    async with start_proxy(tmp_path, model.url, max_file_bytes="1k", max_total_bytes="3k") as proxy:
        for _ in range(40):
            await call(http, proxy.url + PREDICT, payload=INSTANCE)
        await async_poll_until(
            lambda: proxy.metrics.value("modelrollout_capture_records_written_total") == 40,
            timeout=10,
            message="every record written",
        )
        assert proxy.metrics.value("modelrollout_capture_files_deleted_total") > 0
        assert disk_usage(tmp_path) <= 3000
    assert disk_usage(tmp_path) <= 3000


def rotated_by(proxy: RunningCapture, reason: str) -> float:
    return proxy.metrics.value("modelrollout_capture_files_rotated_total", reason=reason)


def complete_files(directory: Path) -> int:
    return sum(1 for path in directory.iterdir() if path.name.endswith(".jsonl"))


def disk_usage(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir())


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", b""),
        (b"a\n", b"a\n"),
        (b"a\nbc", b"a\n"),
        (b"a\nbcdefghijkl", b"a\n"),
        (b"abcdefghijkl", b""),
        (b"ab\ncd\nefghijklmnop", b"ab\ncd\n"),
    ],
)
def test_a_torn_last_line_is_cut(tmp_path: Path, content: bytes, kept: bytes):
    path = tmp_path / "f"
    path.write_bytes(content)
    assert files_module._trim_torn_line(path, chunk=3) == len(kept)
    assert path.read_bytes() == kept
