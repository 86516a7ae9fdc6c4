"""Streamed reading of large review files through pyarrow, filtered while they are read.

Every reader yields :class:`pyarrow.RecordBatch` es in the common review schema
(``user, item, rating, time, text, summary`` and, for review tables, ``tags`` and ``item_text``)
together with how many bytes of the file it has consumed, so :func:`collect` can draw a progress
bar over the file size (compressed bytes for gzip). Only the columns a run needs are parsed; the
rest of each record is skipped by pyarrow.

:func:`collect` applies a :class:`ReviewFilter` in steps that never hold the reviews in pandas: the
date range and ``max_reviews`` per batch while reading; then it drops copies of a review (the same
user, time and non-empty text again, as the Amazon 2018 files list one review under every variant
of a product); then, on integer user/item codes, the per-user and per-item caps (first reviews in
file order) and the k-core; only the kept rows are converted to a DataFrame at the end.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from .errors import CorruptDataError

REVIEW_COLUMNS = ["user", "item", "rating", "time", "text", "summary"]
#: optional columns of review tables (``tags`` joined by commas, ``item_text`` the item's description)
EXTRA_COLUMNS = ["tags", "item_text"]
#: bytes of a file pyarrow parses at once (one batch)
BLOCK_SIZE = 16 << 20
GZIP_MAGIC = b"\x1f\x8b"

Batches = Iterator[tuple[pa.RecordBatch, int]]


@dataclass(frozen=True)
class ReviewFilter:
    """Filters applied while a review file is read.

    Parameters
    ----------
    k_core : int
        Keep the largest subset in which every user and every item has at least ``k_core`` reviews (0: off).
    max_per_user, max_per_item : int
        Keep at most this many reviews per user / per item, the first in file order (0: no cap).
    since, until : str
        Keep reviews with ``since <= time < until`` (ISO dates such as ``2015-01-01``; empty: open).
    max_reviews : int
        Stop reading after this many reviews have passed the date range (0: read everything).
    """

    k_core: int = 0
    max_per_user: int = 0
    max_per_item: int = 0
    since: str = ""
    until: str = ""
    max_reviews: int = 0

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_options(cls, options: dict[str, str]) -> ReviewFilter:
        """Build from ``{name: text}`` options (the ``#k_core=5,since=2015-01-01`` part of a dataset name)."""
        values: dict[str, int | str] = {}
        for key, text in options.items():
            if key in ("since", "until"):
                _timestamp(text, key)
                values[key] = text
            else:
                try:
                    values[key] = int(text)
                except ValueError as exc:
                    raise ValueError(f"filter {key}={text!r} must be an integer") from exc
                if values[key] < 0:
                    raise ValueError(f"filter {key}={text!r} must be >= 0")
        return cls(**values)

    def options(self) -> dict[str, str]:
        """The filters that are set, as ``{name: text}``."""
        default = ReviewFilter()
        return {k: str(getattr(self, k)) for k in self.keys() if getattr(self, k) != getattr(default, k)}


def _timestamp(text: str, key: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"filter {key}={text!r} is not an ISO date such as 2015-01-01") from exc
    return int(when.replace(tzinfo=when.tzinfo or dt.timezone.utc).timestamp())


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _open(path: Path) -> tuple[pa.NativeFile, pa.NativeFile]:
    """(raw file, stream to parse): the raw file's position measures progress through a gzip file."""
    raw = pa.OSFile(str(path))
    return raw, (pa.CompressedInputStream(raw, "gzip") if is_gzip(path) else raw)


def _json_batches(path: Path, schema: pa.Schema) -> Batches:
    """JSON lines parsed against ``schema``; fields not in it are skipped (Amazon 2018 records carry
    ``style``/``image``/``vote`` fields whose types vary between records, which a schema inferred from
    the first block would reject later on)."""
    raw, stream = _open(path)
    with raw:
        try:
            reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE),
                                      parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                                        unexpected_field_behavior="ignore"))
            for batch in reader:
                yield batch, raw.tell()
        except (pa.ArrowInvalid, OSError, EOFError) as exc:
            raise CorruptDataError(f"{path}: cannot be read as JSON lines ({exc})") from exc


def _check_present(path: Path, batch: pa.RecordBatch, required: Sequence[str], start: int, what: str) -> None:
    """Raise naming the first record that lacks one of ``required``."""
    for name in required:
        col = batch.column(name)
        if col.null_count:
            row = start + int(pc.index(pc.is_null(col), True).as_py()) + 1
            raise CorruptDataError(f"{path}: record {row} (non-empty line {row}) lacks {name!r}; not {what}")


_AMAZON_SCHEMA = pa.schema([("reviewerID", pa.string()), ("asin", pa.string()), ("overall", pa.float64()),
                            ("unixReviewTime", pa.int64()), ("reviewText", pa.string()), ("summary", pa.string())])


def amazon_batches(path: str | os.PathLike) -> Batches:
    """Amazon 2014/2018 JSON lines (gzipped or not) in the review schema."""
    path, seen = Path(path), 0
    for batch, pos in _json_batches(path, _AMAZON_SCHEMA):
        _check_present(path, batch, ["reviewerID", "asin", "overall", "unixReviewTime"], seen, "an Amazon review record")
        seen += batch.num_rows
        yield _review_batch(batch.column("reviewerID"), batch.column("asin"), batch.column("overall"),
                            batch.column("unixReviewTime"), batch.column("reviewText"), batch.column("summary")), pos


_YELP_SCHEMA = pa.schema([("user_id", pa.string()), ("business_id", pa.string()), ("stars", pa.float64()),
                          ("text", pa.string()), ("date", pa.string())])


def yelp_open_batches(path: str | os.PathLike) -> Batches:
    """Yelp Open Dataset ``review.json`` (``user_id, business_id, stars, text, date``) in the review schema."""
    path, seen = Path(path), 0
    for batch, pos in _json_batches(path, _YELP_SCHEMA):
        _check_present(path, batch, ["user_id", "business_id", "stars", "date"], seen, "a Yelp review record")
        seen += batch.num_rows
        yield _review_batch(batch.column("user_id"), batch.column("business_id"), batch.column("stars"),
                            _seconds(batch.column("date"), path), batch.column("text"), None), pos


def _seconds(col: pa.Array, path: Path) -> pa.Array:
    """Unix seconds from integer/float seconds, timestamps or ISO date strings."""
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return pc.cast(col, pa.int64(), safe=False)
    try:
        return pc.cast(pc.cast(col, pa.timestamp("s"), safe=False), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CorruptDataError(f"{path}: the time column holds {col.type} values that are neither unix seconds nor "
                               f"ISO dates ({exc})") from exc


def _review_batch(user: pa.Array, item: pa.Array, rating: pa.Array, time: pa.Array | None, text: pa.Array | None,
                  summary: pa.Array | None, extra: dict[str, pa.Array] | None = None) -> pa.RecordBatch:
    n = len(user)
    empty = pa.array([""] * n, pa.string())
    cols = {
        "user": pc.cast(user, pa.string()), "item": pc.cast(item, pa.string()), "rating": pc.cast(rating, pa.float64()),
        "time": pa.nulls(n, pa.int64()) if time is None else pc.cast(time, pa.int64()),
        "text": empty if text is None else pc.fill_null(pc.cast(text, pa.string()), ""),
        "summary": empty if summary is None else pc.fill_null(pc.cast(summary, pa.string()), ""),
    }
    for name, col in (extra or {}).items():
        cols[name] = pc.fill_null(col, "")
    return pa.RecordBatch.from_pydict(cols)


def table_batches(path: str | os.PathLike, fmt: str, columns: dict[str, str]) -> Batches:
    """A review table (``csv``, ``tsv``, ``jsonl`` or ``parquet``) with ``columns`` mapping roles
    (``user, item, rating, text`` and optionally ``time, tags, item_text``) to its column names."""
    path, done = Path(path), 0
    wanted = list(dict.fromkeys(columns.values()))
    if fmt == "parquet":
        handle = pq.ParquetFile(str(path))
        per_row = os.path.getsize(path) / max(1, handle.metadata.num_rows)
        for batch in handle.iter_batches(batch_size=1 << 17, columns=wanted):
            yield _table_batch(batch, columns, path, done), int((done + batch.num_rows) * per_row)
            done += batch.num_rows
        return
    raw, stream = _open(path)
    with raw:
        try:
            if fmt in ("csv", "tsv"):
                strings = {columns[r]: pa.string() for r in ("user", "item", "text", "tags", "item_text") if r in columns}
                reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=BLOCK_SIZE),
                                        parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",",
                                                                         newlines_in_values=True),
                                        convert_options=pacsv.ConvertOptions(include_columns=wanted,
                                                                             column_types=strings))
            else:
                reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE),
                                          parse_options=pajson.ParseOptions(explicit_schema=_json_table_schema(path, wanted),
                                                                            unexpected_field_behavior="ignore"))
            for batch in reader:
                yield _table_batch(batch, columns, path, done), raw.tell()
                done += batch.num_rows
        except pa.ArrowInvalid as exc:
            raise CorruptDataError(f"{path}: cannot be read as a {fmt.upper()} review table ({exc})") from exc


def _json_table_schema(path: Path, wanted: list[str]) -> pa.Schema:
    """The types of ``wanted`` as pyarrow infers them from the file's first block; other fields are skipped."""
    raw, stream = _open(path)
    with raw:
        first = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=1 << 20)).read_next_batch()
    return pa.schema([first.schema.field(name) for name in wanted])


def _table_batch(batch: pa.RecordBatch, columns: dict[str, str], path: Path, start: int) -> pa.RecordBatch:
    _check_present(path, batch, list(dict.fromkeys(columns[r] for r in ("user", "item", "rating"))), start,
                   "a review with user, item and rating")
    col = {role: batch.column(name) for role, name in columns.items()}
    extra = {}
    if "tags" in col:
        tags = col["tags"]
        extra["tags"] = (pc.binary_join(tags, ",") if pa.types.is_list(tags.type) or pa.types.is_large_list(tags.type)
                         else pc.cast(tags, pa.string()))
    if "item_text" in col:
        extra["item_text"] = pc.cast(col["item_text"], pa.string())
    time = _seconds(col["time"], path) if "time" in col else None
    return _review_batch(col["user"], col["item"], col["rating"], time, col["text"], None, extra)


def frame_batches(df: pd.DataFrame, size: int) -> Batches:
    """A review frame parsed by other means (Tang ``.ss`` files, PETER pickles) as batches, for the same filters."""
    table = pa.Table.from_pandas(df[REVIEW_COLUMNS], preserve_index=False).combine_chunks()
    for batch in table.to_batches():
        yield batch, size


def collect(batches: Batches, filt: ReviewFilter = ReviewFilter(), *, total_bytes: int = 0, desc: str = "reading",
            progress: bool = True) -> pd.DataFrame:
    """Read ``batches`` with a progress bar, filter them (see the module docstring) and return the kept reviews.

    A missing ``time`` (a table without a time column) is the review's position in the file, as for ``.ss`` files.
    """
    from ..progress import tqdm

    since = _timestamp(filt.since, "since") if filt.since else None
    until = _timestamp(filt.until, "until") if filt.until else None
    kept: list[pa.RecordBatch] = []
    n_read = n_kept = 0
    with tqdm(total=total_bytes or None, desc=desc, unit="B", unit_scale=True, disable=not progress) as bar:
        shown = 0
        for batch, pos in batches:
            position = pa.array(np.arange(n_read, n_read + batch.num_rows), pa.int64())
            batch = batch.set_column(batch.schema.get_field_index("time"), "time",
                                     pc.coalesce(batch.column("time"), position))
            n_read += batch.num_rows
            if since is not None:
                batch = batch.filter(pc.greater_equal(batch.column("time"), since))
            if until is not None:
                batch = batch.filter(pc.less(batch.column("time"), until))
            if filt.max_reviews and n_kept + batch.num_rows > filt.max_reviews:
                batch = batch.slice(0, filt.max_reviews - n_kept)
            kept.append(batch)
            n_kept += batch.num_rows
            bar.update(pos - shown)
            shown = pos
            if filt.max_reviews and n_kept >= filt.max_reviews:
                break
    if not kept:
        return pd.DataFrame(columns=REVIEW_COLUMNS)
    table = pa.Table.from_batches(kept)
    del kept  # the table alone holds the batches now, so the rows dropped below are freed
    table = drop_review_copies(table)
    rows = _kept_rows(table, filt)
    if rows is not None:
        table = table.take(pa.array(rows))
    return table.to_pandas()


def drop_review_copies(table: pa.Table) -> pa.Table:
    """``table`` without the repeats of a review: a row whose user, time and non-empty text equal an
    earlier row's (the first one, in file order, is kept; its item is the one the review stays with).

    The Amazon 2018 5-core files list one review once per variant of a product (size, colour,
    amount) under different product ids; kept, a random split puts copies of a test review into
    the training data. Rows without text are never merged (two ratings at the same time are two
    reviews).
    """
    text = table.column("text")
    has_text = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False)
    keyed = pa.table({"user": table.column("user"), "time": table.column("time"), "text": text,
                      "row": pa.array(np.arange(table.num_rows), pa.int64())}).filter(has_text)
    first = keyed.group_by(["user", "time", "text"]).aggregate([("row", "min")]).column("row_min")
    keep = ~np.asarray(has_text.to_numpy(zero_copy_only=False), bool)
    keep[first.to_numpy()] = True
    return table if keep.all() else table.filter(pa.array(keep))


def _codes(col: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    encoded = col.combine_chunks().dictionary_encode()
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def _first_per_group(codes: np.ndarray, cap: int) -> np.ndarray:
    """Mask of the first ``cap`` rows (in row order) of each code."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
    rank = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    mask = np.empty(len(codes), bool)
    mask[order] = rank < cap
    return mask


def _kept_rows(table: pa.Table, filt: ReviewFilter) -> np.ndarray | None:
    """Row numbers that survive the caps and the k-core (None: all rows)."""
    if not (filt.k_core or filt.max_per_user or filt.max_per_item):
        return None
    users, n_users = _codes(table.column("user"))
    items, n_items = _codes(table.column("item"))
    keep = np.ones(len(users), bool)
    if filt.max_per_user:
        keep &= _first_per_group(users, filt.max_per_user)
    if filt.max_per_item:
        keep &= _first_per_group(items, filt.max_per_item)
    while filt.k_core:
        cu = np.bincount(users[keep], minlength=n_users)
        ci = np.bincount(items[keep], minlength=n_items)
        new = keep & (cu[users] >= filt.k_core) & (ci[items] >= filt.k_core)
        if new.sum() == keep.sum():
            break
        keep = new
    return np.flatnonzero(keep)
