"""What a ``dataset`` parameter names: a registry dataset, an Amazon file in the layout, or a review file.

A dataset is given as ``<name or path>[#key=value,...]``:

* a registry name (``amazon2014-instruments``) or the derived name of an Amazon category file in the
  layout (``amazon2018-magazine-subscriptions``, see :func:`xrec_core.data.registry.discover_amazon`);
* or a path to a review file, absolute or relative to the data folder, which must lie under that
  folder (so a record can name it relative to it). Its format is detected from its content: Amazon
  2014/2018 or Yelp Open JSON lines (gzipped or not), Tang ``.ss`` lines, or a review table (CSV,
  TSV, JSON lines or Parquet) whose columns are mapped to the roles ``user, item, rating, text``
  (optional ``time, tags, item_text``);
* the options after ``#`` map table columns (``user=reviewer,text=body``) and set the filters of
  :class:`xrec_core.data.stream.ReviewFilter` (``k_core=5,since=2015-01-01``).

A table's column map comes from the options, else from a YAML file beside it (``<file name>.yaml``
or ``columns.yaml`` in its folder, a mapping of roles to columns, optionally under ``columns:``),
else from columns literally named after the roles. :func:`resolve` turns any of these into a
:class:`DataSource` whose ``name`` is canonical: the registry or derived name, or the path
relative to the data folder, followed by the sorted options.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config import ConfigError
from ..paths import data_root
from .registry import DATASETS, KIND_FIELDS, REVIEW_KINDS, DatasetSpec, amazon_layout_name, get_spec, require
from .stream import ReviewFilter

#: roles of a review table's columns; the first four are required
ROLES = ("user", "item", "rating", "text", "time", "tags", "item_text")
REQUIRED_ROLES = ROLES[:4]
#: the fields each optional role adds to what a table holds
ROLE_FIELDS = {"time": "time", "tags": "tags", "item_text": "item_text"}
#: what a field means, for error messages
FIELD_NAMES = {"rating": "star ratings", "text": "review text", "time": "review times", "tags": "item tags",
               "item_text": "item text", "tuples": "feature-opinion tuples"}
EXPECTED_FORMATS = ("Amazon 2014/2018 or Yelp Open JSON lines (gzipped or not), Tang .ss lines "
                    "(user\\t\\titem\\t\\trating\\t\\treview), or a CSV, TSV, JSON-lines or Parquet review table")
_MAP_HELP = ("expected a map of user, item, rating, text (optional: time, tags, item_text) to the file's columns, "
             "in {yaml} beside it or as dataset='{rel}#user=COLUMN,item=COLUMN,rating=COLUMN,text=COLUMN'")


class DatasetError(ConfigError):
    """A dataset that cannot be used as given: unknown name, unknown format, bad column map or option."""


class UnknownDatasetError(DatasetError, KeyError):
    """A dataset name that is neither in the registry nor a file (a ``KeyError`` too, as registry look-ups raise)."""

    __str__ = DatasetError.__str__


@dataclass(frozen=True)
class DataSource:
    """A resolved dataset: its canonical name, kind, files and the fields it holds.

    ``kind`` is a registry kind (``amazon``, ``yelp-open``, ``yelp-ss``, ``citeulike``, ``mter``, ``peter``)
    or ``table``; ``table_format`` is ``csv``, ``tsv``, ``jsonl`` or ``parquet`` for tables.
    """

    name: str
    kind: str
    files: tuple[Path, ...]
    fields: tuple[str, ...]
    spec: DatasetSpec | None = None
    columns: dict[str, str] = field(default_factory=dict)
    table_format: str = ""
    filters: ReviewFilter = ReviewFilter()
    column_map_file: Path | None = None

    @property
    def is_reviews(self) -> bool:
        """Whether :func:`xrec_core.data.load_reviews` reads it."""
        return self.kind in (*REVIEW_KINDS, "table")


def split_options(dataset: str) -> tuple[str, dict[str, str]]:
    """``"path#a=1,b=2"`` -> ``("path", {"a": "1", "b": "2"})`` with the keys checked."""
    base, _, text = dataset.partition("#")
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in (*ROLES, *ReviewFilter.keys()):
            raise DatasetError(f"dataset option {part!r} is not key=value with key one of "
                               f"{', '.join((*ROLES, *ReviewFilter.keys()))}")
        options[key] = value.strip()
    return base.strip(), options


def _with_options(name: str, columns: Mapping[str, str], filt: ReviewFilter) -> str:
    options = {**{r: columns[r] for r in ROLES if r in columns}, **dict(sorted(filt.options().items()))}
    return name + ("#" + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")


def fields_of(dataset: str) -> tuple[str, ...] | None:
    """The fields of a registry dataset, known without reading data (None for anything else)."""
    base = split_options(dataset)[0]
    return KIND_FIELDS[DATASETS[base].kind] if base in DATASETS else None


def resolve(dataset: str, data_dir: str | os.PathLike | None = None, *,
            columns: Mapping[str, str] | None = None, filters: ReviewFilter | None = None) -> DataSource:
    """Resolve a dataset name or path (see the module docstring) into a :class:`DataSource`.

    Parameters
    ----------
    dataset : str
        Registry name, derived Amazon name or path, optionally followed by ``#options``.
    columns : mapping, optional
        Column map of a review table (role -> column), overriding the options and any YAML file.
    filters : ReviewFilter, optional
        Filters applied while reading, overriding those in the options.

    Raises
    ------
    DatasetError
        one line: an unknown name, an unknown format, a column map that misses a role or names an
        absent column, or an option that does not apply.
    MissingDataError
        a registry dataset whose files are absent.
    """
    base, options = split_options(str(dataset))
    role_opts = {k: v for k, v in options.items() if k in ROLES}
    try:
        filt = filters or ReviewFilter.from_options({k: v for k, v in options.items() if k not in ROLES})
    except ValueError as exc:
        raise DatasetError(f"dataset {dataset!r}: {exc}") from exc
    root = data_root(data_dir)
    rel = None
    if base in DATASETS:
        named: str | None = base
    elif os.path.isabs(base) or "/" in base or os.sep in base or (root / base).is_file():
        rel = _relative_to_root(base, root)
        named = amazon_layout_name(rel)
    else:
        try:
            named = get_spec(base, root).name
        except KeyError as exc:
            raise UnknownDatasetError(f"Unknown dataset {base!r}: not a registry name, an Amazon file in the layout "
                                      f"(amazon2014/reviews_<Category>_5.json.gz, amazon2018/<Category>_5.json.gz) nor a "
                                      f"file under the data folder {root}; {str(exc.args[0]).split('; ')[-1]}") from exc
    if named is not None:
        spec = get_spec(named, root)
        if role_opts or columns:
            raise DatasetError(f"dataset {named}: column options apply only to review tables, not to a {spec.kind} dataset")
        if filt.options() and spec.kind not in REVIEW_KINDS:
            raise DatasetError(f"dataset {named}: filters apply only to review datasets, not to a {spec.kind} dataset")
        files = tuple(require(named, root, verify=False).values())
        return DataSource(_with_options(named, {}, filt), spec.kind, files, KIND_FIELDS[spec.kind], spec, filters=filt)
    return _file_source(root / rel, rel, {**role_opts, **(columns or {})}, filt)


def _relative_to_root(base: str, root: Path) -> str:
    """The path of file ``base`` (absolute, or relative to the data folder) relative to the data folder.

    A link inside the folder counts as inside, wherever it points.
    """
    path = Path(os.path.abspath(base if os.path.isabs(base) else root / base))
    if not path.is_file():
        raise UnknownDatasetError(f"Unknown dataset {base!r}: no registry name, Amazon file in the layout or file "
                                  f"{path} matches it; valid: {', '.join(DATASETS)}")
    for candidate in (path, path.resolve()):
        if root in candidate.parents:
            return candidate.relative_to(root).as_posix()
    raise DatasetError(f"{path} lies outside the data folder {root}; put the file (or a link to it) under "
                       "that folder, so that run records can name it relative to the folder")


def _file_source(path: Path, rel: str, columns: dict[str, str], filt: ReviewFilter) -> DataSource:
    kind, fmt, header = sniff(path, rel)
    if kind != "table":
        if columns:
            raise DatasetError(f"{rel} is {kind} data with fixed fields; column options apply only to review tables")
        return DataSource(_with_options(rel, {}, filt), kind, (path,), KIND_FIELDS[kind], filters=filt)
    map_file = None
    if not columns:
        map_file = next((p for p in (path.with_name(path.name + ".yaml"), path.with_name(path.name + ".yml"),
                                     path.with_name("columns.yaml")) if p.is_file()), None)
        columns = _read_map(map_file, rel) if map_file else {r: r for r in ROLES if r in header}
    yaml_name = map_file.name if map_file else f"{path.name}.yaml"
    help_text = _MAP_HELP.format(yaml=yaml_name, rel=rel)
    unknown = sorted(set(columns) - set(ROLES))
    if unknown:
        raise DatasetError(f"{rel}: the column map has unknown role(s) {', '.join(unknown)}; {help_text}")
    absent = [f"{columns[r]!r} for {r}" for r in ROLES if r in columns and columns[r] not in header]
    if absent:
        raise DatasetError(f"{rel}: the column map names {', '.join(absent)}, but the {fmt.upper()} file has columns "
                           f"{', '.join(header)}; {help_text}")
    missing = [r for r in REQUIRED_ROLES if r not in columns]
    if missing:
        raise DatasetError(f"{rel}: a {fmt.upper()} review table with columns {', '.join(header)} and no column for "
                           f"{', '.join(missing)}; {help_text}")
    fields = ("rating", "text", *(ROLE_FIELDS[r] for r in ROLE_FIELDS if r in columns))
    # a map given in the name (or as a parameter) is part of the canonical name; a YAML map is a file of the run
    name = _with_options(rel, columns if map_file is None and columns != {r: r for r in columns} else {}, filt)
    files = (path,) + ((map_file,) if map_file else ())
    return DataSource(name, "table", files, fields, columns=dict(columns), table_format=fmt, filters=filt,
                      column_map_file=map_file)


def _read_map(path: Path, rel: str) -> dict[str, str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"{rel}: the column map {path.name} cannot be read ({exc})") from exc
    data = data.get("columns", data) if isinstance(data, dict) else data
    if not isinstance(data, dict) or not all(isinstance(v, (str, int)) for v in data.values()):
        raise DatasetError(f"{rel}: the column map {path.name} must map roles to column names, e.g. "
                           "{user: reviewer_id, item: product_id, rating: stars, text: body}")
    return {str(k): str(v) for k, v in data.items()}


def _first_line(path: Path) -> str:
    """The first non-empty line of a (gzipped) text file ('' when it is not UTF-8 text)."""
    with open(path, "rb") as handle:
        gz = handle.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    return line.rstrip("\r\n")
    except (UnicodeDecodeError, OSError, EOFError):
        return ""
    return ""


def sniff(path: Path, rel: str) -> tuple[str, str, list[str]]:
    """Detect a review file's format from its content: ``(kind, table format, column names)``.

    Raises
    ------
    DatasetError
        one line saying what the file starts with and which formats are expected.
    """
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        return "table", "parquet", list(pq.read_schema(str(path)).names)
    line = _first_line(path)
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            keys = set(record)
            if {"reviewerID", "asin", "overall"} <= keys:
                return "amazon", "", sorted(keys)
            if {"user_id", "business_id", "stars"} <= keys:
                return "yelp-open", "", sorted(keys)
            return "table", "jsonl", list(record)
    parts = line.split("\t\t")
    if len(parts) == 4 and _is_number(parts[2]):
        return "yelp-ss", "", []
    if line and ("\t" in line or "," in line):
        fmt = "tsv" if line.count("\t") >= max(1, line.count(",")) else "csv"
        header = next(csv.reader(io.StringIO(line), delimiter="\t" if fmt == "tsv" else ","))
        if len(header) > 1 and not any(_is_number(h) for h in header):
            return "table", fmt, [h.strip() for h in header]
    shown = repr(line[:60]) if line else "binary or empty content"
    raise DatasetError(f"{rel}: unknown review format (it starts with {shown}); expected {EXPECTED_FORMATS}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def missing_fields(fields: tuple[str, ...], requires: tuple[str, ...]) -> list[str]:
    """The requirements ``fields`` does not meet; a requirement ``"a|b"`` is met by either field."""
    return [need for need in requires if not any(alt in fields for alt in need.split("|"))]


def describe_fields(requirements: list[str]) -> str:
    """``["text|tuples"]`` -> ``"text (review text) or tuples (feature-opinion tuples)"``."""
    return ", ".join(" or ".join(f"{a} ({FIELD_NAMES.get(a, a)})" for a in need.split("|")) for need in requirements)


def datasets_with(requires: tuple[str, ...]) -> list[str]:
    """Registry datasets that hold every required field."""
    return [name for name, spec in DATASETS.items() if not missing_fields(KIND_FIELDS[spec.kind], requires)]


__all__ = ["DataSource", "DatasetError", "UnknownDatasetError", "ROLES", "describe_fields", "datasets_with", "fields_of",
           "missing_fields", "resolve", "sniff", "split_options"]
