"""Reading datasets and profiles from files, for ``modelrollout profile`` and ``drift``.

The pure work (rows, columns, sketches, statistics) is in
:mod:`modelrollout.core.monitoring`; this module opens files and walks their lines.

**Formats.** JSON Lines of replay events (gzip detected by content, as replay does) or
CSV with a header line. The format comes from the name (``.csv``, ``.csv.gz`` are CSV,
anything else JSON Lines) unless given.

**Shards.** With ``shard_count`` N, shard I reads the lines whose number (from 1) is I
modulo N, as replay's shards do; for CSV, the records whose number (from 1, header
excluded) is I modulo N. The shards of a dataset therefore read every line exactly once,
and merging their profiles gives the profile of the whole.

**Bad lines.** A line that cannot be read is skipped and counted (``malformed`` in the
profile), as replay does, because one corrupt line in a million must not stop a
baseline. More than :data:`MAX_MALFORMED_FRACTION` of the lines, or no usable row at
all, is a bad dataset: :class:`DataError` names the file and the first bad line, e.g.
``window.jsonl:17: payload: missing (each event needs payload or body)``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from modelrollout.core.monitoring import sketches
from modelrollout.core.monitoring.builder import (
    DEFAULT_MAX_FEATURES,
    ProfileBuilder,
    TooManyFeaturesError,
    WindowSample,
)
from modelrollout.core.monitoring.profile import (
    DEFAULT_CATEGORY_LIMIT,
    SCHEMA_VERSION,
    Profile,
    ProfileSource,
)
from modelrollout.core.monitoring.rows import (
    DEFAULT_LABEL_FIELD,
    DEFAULT_PREDICTION_COLUMN,
    DEFAULT_PREDICTION_PATH,
    CsvRows,
    EventRows,
    Row,
    RowError,
)
from modelrollout.services.replay.dataset import (
    DatasetError,
    DatasetFetchError,
    LocalDataset,
    download,
    is_url,
)

MAX_MALFORMED_FRACTION = 0.01
Format = Literal["jsonl", "csv"]


class DataError(Exception):
    """A dataset or profile that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a dataset; None fields take the format's defaults."""

    format: Format | None = None
    prediction_field: str | None = None
    label_field: str | None = None
    categorical: frozenset[str] = frozenset()
    only: frozenset[str] | None = None
    shard_index: int = 0
    shard_count: int = 1

    def source(self, path: Path) -> ProfileSource:
        fmt = self.format or detect_format(path)
        prediction = self.prediction_field
        if prediction is None:
            prediction = DEFAULT_PREDICTION_PATH if fmt == "jsonl" else DEFAULT_PREDICTION_COLUMN
        label = self.label_field if self.label_field is not None else DEFAULT_LABEL_FIELD
        return ProfileSource(
            format=fmt, prediction_field=prediction or None, label_field=label or None
        )


def detect_format(path: Path) -> Format:
    name = path.name.lower()
    return "csv" if name.endswith((".csv", ".csv.gz")) else "jsonl"


def _open(path: Path) -> LocalDataset:
    if not path.is_file():
        raise DataError(f"{path}: does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: is not readable")
    try:
        return LocalDataset(path, str(path))
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None


class _Tally:
    """Lines read and lines skipped, with the first bad one."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines = 0
        self.malformed = 0
        self.first: tuple[int, str] | None = None

    def bad(self, line: int, reason: str) -> None:
        self.malformed += 1
        if self.first is None:
            self.first = (line, reason)

    def check(self, rows: int) -> None:
        where = f"{self.path}:{self.first[0]}: {self.first[1]}" if self.first else ""
        if rows == 0:
            raise DataError(where + "; no usable row" if where else f"{self.path}: no row")
        if self.malformed > MAX_MALFORMED_FRACTION * self.lines:
            raise DataError(
                f"{where} ({self.malformed} of {self.lines} lines are malformed, more than "
                f"{MAX_MALFORMED_FRACTION:.0%})"
            )


def _event_rows(
    dataset: LocalDataset, source: ProfileSource, options: ReadOptions, tally: _Tally
) -> Iterator[tuple[int, Row]]:
    reader = EventRows(prediction_path=source.prediction_field, label_field=source.label_field)
    for number, raw in dataset.lines():
        if number % options.shard_count != options.shard_index or not raw.strip():
            continue
        tally.lines += 1
        try:
            document = json.loads(raw)
        except UnicodeDecodeError:
            tally.bad(number, "line is not valid UTF-8")
            continue
        except json.JSONDecodeError as error:
            tally.bad(number, f"not JSON: {error.msg} at column {error.colno}")
            continue
        try:
            yield number, reader.row(document)
        except RowError as error:
            tally.bad(number, error.reason)
    if dataset.read_error is not None:
        tally.bad(*dataset.read_error)


def _csv_rows(
    dataset: LocalDataset, source: ProfileSource, options: ReadOptions, tally: _Tally
) -> Iterator[tuple[int, Row]]:
    decode_error: list[int] = []

    def text_lines() -> Iterator[str]:
        for number, raw in dataset.lines():
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                decode_error.append(number)
                return

    reader = csv.reader(text_lines())
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{tally.path}: empty; a CSV needs a header line")
        columns = CsvRows(
            header, prediction_column=source.prediction_field, label_column=source.label_field
        )
        record_number = 0
        for record in reader:
            if not record or all(not cell.strip() for cell in record):
                continue
            record_number += 1
            if record_number % options.shard_count != options.shard_index:
                continue
            tally.lines += 1
            try:
                yield reader.line_num, columns.row(record)
            except RowError as error:
                tally.bad(reader.line_num, error.reason)
    except RowError as error:
        raise DataError(f"{tally.path}:1: {error.reason}") from None
    except csv.Error as error:
        tally.bad(reader.line_num, f"not CSV: {error}")
    if decode_error:
        tally.bad(decode_error[0], "line is not valid UTF-8; reading stopped here")
    if dataset.read_error is not None:
        tally.bad(*dataset.read_error)


def _fill(
    builder: ProfileBuilder, path: Path, options: ReadOptions, name: str | None = None
) -> None:
    """Add the rows of ``path`` (of its shard); messages call it ``name`` (a URL)."""
    if not 0 <= options.shard_index < options.shard_count:
        raise ValueError(f"shard index {options.shard_index} is not in [0, {options.shard_count})")
    dataset = _open(path)
    name = name or str(path)
    tally = _Tally(name)
    rows = _csv_rows if builder.source.format == "csv" else _event_rows
    line = 0
    try:
        for number, row in rows(dataset, builder.source, options, tally):
            line = number
            builder.add(row)
    except TooManyFeaturesError as error:
        raise DataError(f"{name}:{line}: {error}") from None
    builder.malformed = tally.malformed
    tally.check(builder.rows)


def profile_dataset(
    data: Path | str,
    options: ReadOptions,
    *,
    k: int = sketches.DEFAULT_K,
    category_limit: int = DEFAULT_CATEGORY_LIMIT,
    max_features: int = DEFAULT_MAX_FEATURES,
) -> Profile:
    """Profile one dataset (or one shard of it): a file, a directory of one file, or an
    http(s) URL."""
    with local_dataset(data) as (path, name):
        if options.format is None and is_url(name):
            options = replace(options, format=detect_format(Path(urlsplit(name).path)))
        return _profile_file(path, name, options, k, category_limit, max_features)


def _profile_file(
    path: Path,
    name: str,
    options: ReadOptions,
    k: int,
    category_limit: int,
    max_features: int,
) -> Profile:
    source = options.source(path)
    builder = ProfileBuilder(
        source,
        k=k,
        category_limit=category_limit,
        categorical=options.categorical,
        only=options.only,
        numbers_in_text=source.format == "csv",
        max_features=max_features,
    )
    _fill(builder, path, options, name)
    return builder.profile()


@contextmanager
def local_dataset(data: Path | str, *, fetch_timeout: float = 60.0) -> Iterator[tuple[Path, str]]:
    """``(file, name)`` of a dataset for the time of the block.

    An http(s) URL is downloaded into a temporary file, removed afterwards (its name is
    the URL). A directory must hold one dataset file, which is read: a ConfigMap mounted
    whole, whose keys are its files (names starting with a dot are the mount's own).
    """
    text = str(data)
    if not is_url(text):
        yield _only_file(Path(data)), text
        return
    with tempfile.TemporaryDirectory(prefix="modelrollout-profile-") as tmp:
        path = Path(tmp) / "data"
        try:
            asyncio.run(download(text, path, fetch_timeout=fetch_timeout, flag="--data"))
        except (DatasetError, DatasetFetchError) as error:
            raise DataError(str(error).removeprefix("--data: ")) from None
        yield path, text


def _only_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    files = sorted(p.name for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    if len(files) != 1:
        held = ", ".join(files) if files else "none"
        raise DataError(
            f"{path}: a directory; it must hold exactly one dataset file (it holds: {held})"
        )
    return path / files[0]


def read_window(path: Path, baseline: Profile, options: ReadOptions) -> WindowSample | Profile:
    """A window to compare with ``baseline``: a profile file, or a dataset's raw values.

    A dataset is read with the baseline's kinds and categories, and by default with the
    baseline's prediction and label fields when both are in the same format.
    """
    if is_profile(path):
        return load_profile(path)
    fmt = options.format or detect_format(path)
    if fmt == baseline.source.format:
        options = ReadOptions(
            format=fmt,
            prediction_field=(
                options.prediction_field
                if options.prediction_field is not None
                else baseline.source.prediction_field or ""
            ),
            label_field=(
                options.label_field
                if options.label_field is not None
                else baseline.source.label_field or ""
            ),
            categorical=options.categorical,
        )
    source = options.source(path)
    builder = ProfileBuilder(
        source, k=baseline.sketch_k, against=baseline, keep_raw=True, max_features=10**9
    )
    _fill(builder, path, options)
    return builder.window()


def is_profile(path: Path) -> bool:
    """Whether ``path`` holds a profile (a JSON object naming the profile schema)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and SCHEMA_VERSION.encode() in head


def load_profile(path: Path) -> Profile:
    """Read a profile; errors name the file and the field."""
    try:
        text = path.read_text()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a profile (not UTF-8 text)") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: not a profile (expected a JSON object)")
    version = document.get("schemaVersion")
    if version != SCHEMA_VERSION:
        raise DataError(
            f"{path}: schemaVersion {version!r} is not {SCHEMA_VERSION!r}; is it a profile "
            "written by modelrollout profile?"
        )
    try:
        profile = Profile.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DataError(f"{path}: {where}: {first['msg']}") from None
    for name, column in profile.features.items():
        if column.kind == "numeric":
            try:
                column.quantile_sketch()
            except sketches.SketchError as error:
                raise DataError(f"{path}: features.{name}.sketch: {error}") from None
    return profile


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
