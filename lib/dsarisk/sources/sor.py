"""Statements of reasons from the DSA Transparency Database, aggregated per module and month.

Reads exports as published: CSV, zipped CSV, the nested daily zips (an outer zip of inner
``.csv.zip`` parts) and Parquet, full or light, schema version 1 or 2, as the Commission's
export writes them (PHP ``fputcsv`` quoting, ``\\"`` escapes, dates with a time, the odd
invalid UTF-8 byte, the same statement twice). Values are checked against the Commission's
own enumerations of each version (``data/sor/schema.yaml`` says which applies to what);
categories of both versions map to risk modules through ``data/sor/categories.yaml``.

The aggregation is one SQL text (:func:`inner_sql` then :func:`outer_sql`) run unchanged by
two engines: DuckDB, embedded, the default, streaming a batch of CSV parts at a time so that
memory stays bounded whatever the size of the dump; and Apache Spark, for data beyond one
machine. It uses only what both dialects share (CASE, LIKE, substr, and Spark's
``regexp_like``, which DuckDB gets as a one-line macro; patterns need no backslash, since the
two dialects escape string literals differently).

Every row read ends in exactly one of: aggregated, rejected (with a reason), filtered out,
or a duplicate (a uuid already seen in the same dump file); the run stops when the four do
not add up to the rows read.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from .. import paths
from ..exceptions import InputError
from ..hashing import sha256_file
from ..methodology import read_yaml

SOR_DIR = paths.sor_mapping()
NOT_MAPPED = "(no module)"
MAX_EXAMPLES = 3
# Bumped whenever reading changes in a way the SQL text does not show (the cache key holds it).
READER_VERSION = "3"


class SorError(InputError):
    """A statement-of-reasons file that cannot be read at all."""


@cache
def schema() -> dict[str, Any]:
    return read_yaml(SOR_DIR / "schema.yaml", SorError)


@cache
def enumerations() -> dict[str, Any]:
    """The Commission's enumerations and column headings (a verbatim copy, as data)."""
    path = SOR_DIR / schema()["enumerations"]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SorError(f"unreadable enumerations ({exc})", file=path) from None


@cache
def categories() -> dict[str, dict[str, str | None]]:
    return read_yaml(SOR_DIR / "categories.yaml", SorError)


def category_modules() -> dict[str, str | None]:
    """Every known category of either version and its module."""
    return {**categories()["version_1"], **categories()["version_2"]}


VERSIONS = ("v1", "v2")
DUMPS = ("full", "light")


def allowed(column: str, version: str) -> list[str]:
    """The values a column (or each item of an array column) may hold in a schema version."""
    spec = schema()
    enums = enumerations()[spec["versions"][version]["enumerations"]]
    entry = enums[spec["values"].get(column) or spec["arrays"][column]]
    return list(entry.get("stored_values", entry))


def eu_codes() -> list[str]:
    """The EU and EEA country codes a territorial scope may list."""
    return list(enumerations()[schema()["territorial_scope"]])


def headings(version: str, dump: str) -> list[str]:
    """The column headings of a published dump of one schema version, full or light."""
    return list(enumerations()[schema()["versions"][version]["headings"][dump]])


def version_of(day: dt.date) -> str:
    """The schema version in force on ``day``."""
    return "v2" if day >= schema()["versions"]["v2"]["from"] else "v1"


@dataclass(frozen=True)
class Filters:
    """Which statements count: platforms (all when None), an application-date period, and
    whether the territorial scope must include an EU/EEA country (light dumps carry no
    territorial scope: for them this filter cannot apply, which their file record says)."""

    platforms: tuple[str, ...] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    eu_only: bool = True

    def describe(self) -> dict[str, Any]:
        return {"platforms": list(self.platforms) if self.platforms else "all",
                "application_date": [str(self.start) if self.start else None, str(self.end) if self.end else None],
                "territorial_scope": "EU/EEA (not applicable to light dumps)" if self.eu_only else "any"}


# -- the SQL, one text for both engines ------------------------------------------------------
def _quoted(values: Iterable[str]) -> str:
    """SQL string literals; a quote is doubled, which both dialects read as one quote."""
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _valid_array(column: str, items: Sequence[str]) -> str:
    """SQL: the column is a JSON array of known items, like ["A","B"], or empty (``[]``)."""
    value = f"coalesce({column}, '[]')"
    return f"({value} LIKE '[%]' AND regexp_like({value}, '^.( *\"({'|'.join(items)})\" *,?)*.$'))"


UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# real dumps write every date with a time ("2024-03-14 00:00:00"); a bare date is accepted too
DATE_PATTERN = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])( [0-2][0-9]:[0-5][0-9]:[0-5][0-9])?$"
MALFORMED_DATE = "malformed application_date"
# Columns with few distinct values: the rows are grouped on them, then they are checked and
# counted once per group rather than once per row.
VALUE_COLUMNS = ("category", "decision_ground", "source_type", "automated_detection", "automated_decision",
                 "decision_account", "decision_provision", "decision_monetary")
MAY_BE_EMPTY = ("decision_account", "decision_provision", "decision_monetary")
ARRAY_COLUMNS = ("content_type", "decision_visibility")
GROUPED = (*VALUE_COLUMNS, *ARRAY_COLUMNS)


def _reasons(checks: list[tuple[str, str]], otherwise: str) -> str:
    """SQL CASE naming the first (reason, condition) that holds, else ``otherwise``."""
    whens = "\n    ".join(f"WHEN {condition} THEN '{reason}'" for reason, condition in checks)
    return f"CASE\n    {whens}\n    ELSE {otherwise} END"


def _row_checks(has_territorial_scope: bool) -> list[tuple[str, str]]:
    """(reason, SQL condition) of the checks on each row's own value."""
    checks = [("malformed uuid", f"NOT regexp_like(coalesce(uuid, ''), '{UUID_PATTERN}')"),
              ("missing platform_name", "coalesce(platform_name, '') = ''"),
              (MALFORMED_DATE, f"NOT regexp_like(coalesce(application_date, ''), '{DATE_PATTERN}')")]
    if has_territorial_scope:
        checks.append(("malformed territorial_scope array", f"NOT {_valid_array('territorial_scope', eu_codes())}"))
    return checks


def _grouped_checks(version: str) -> list[tuple[str, str]]:
    """(reason, SQL condition) of the checks on the grouped columns, against the version's
    enumerations."""
    checks = []
    for column in VALUE_COLUMNS:
        values = allowed(column, version) + ([""] if column in MAY_BE_EMPTY else [])
        checks.append((f"unknown {column} ({version})", f"coalesce({column}, '') NOT IN ({_quoted(values)})"))
    checks += [(f"malformed or unknown {column} array ({version})", f"NOT {_valid_array(column, allowed(column, version))}")
               for column in ARRAY_COLUMNS]
    return checks


def reject_expression(version: str) -> str:
    """SQL CASE giving a group's reason for rejection, or NULL when its rows are valid: a
    malformed uuid, platform or date first, then an unknown value, then a malformed array,
    then a malformed territorial scope."""
    first = [(reason, f"row_reason = '{reason}'") for reason, _ in _row_checks(False)]
    return _reasons([*first, *_grouped_checks(version)], "row_reason")


def _filter_expression(filters: Filters, has_territorial_scope: bool) -> str:
    conditions = ["1 = 1"]
    if filters.platforms:
        conditions.append(f"platform_name IN ({_quoted(filters.platforms)})")
    if filters.start:
        conditions.append(f"substr(application_date, 1, 10) >= '{filters.start.isoformat()}'")
    if filters.end:
        conditions.append(f"substr(application_date, 1, 10) <= '{filters.end.isoformat()}'")
    if filters.eu_only and has_territorial_scope:
        conditions.append(f"regexp_like(coalesce(territorial_scope, ''), '\"({'|'.join(eu_codes())})\"')")
    return " AND ".join(conditions)


def _module_expression() -> str:
    whens = " ".join(f"WHEN '{category}' THEN '{module or NOT_MAPPED}'"
                     for category, module in category_modules().items())
    return f"CASE category {whens} END"


MEASURES = {  # column -> SQL condition on a group's columns, counted per group
    "illegal": "decision_ground = 'DECISION_GROUND_ILLEGAL_CONTENT'",
    "incompatible": "decision_ground = 'DECISION_GROUND_INCOMPATIBLE_CONTENT'",
    "own_initiative": "source_type = 'SOURCE_VOLUNTARY'",
    "notices": "source_type = 'SOURCE_ARTICLE_16'",
    "trusted_flaggers": "source_type = 'SOURCE_TRUSTED_FLAGGER'",
    "other_notifications": "source_type = 'SOURCE_TYPE_OTHER_NOTIFICATION'",
    "automated_detection": "automated_detection = 'Yes'",
    "automated_decision_full": "automated_decision = 'AUTOMATED_DECISION_FULLY'",
    "automated_decision_partial": "automated_decision = 'AUTOMATED_DECISION_PARTIALLY'",
    "visibility": "coalesce(decision_visibility, '[]') <> '[]'",
    "account": "coalesce(decision_account, '') <> ''",
    "provision": "coalesce(decision_provision, '') <> ''",
    "monetary": "coalesce(decision_monetary, '') <> ''",
}


def _content_measures() -> dict[str, str]:
    return {f"content_{value.removeprefix('CONTENT_TYPE_').lower()}": f"content_type LIKE '%\"{value}\"%'"
            for value in allowed("content_type", "v2")}


def measure_columns() -> list[str]:
    return ["statements", *MEASURES, *_content_measures()]


def inner_sql(filters: Filters, *, has_territorial_scope: bool, table: str, ids: str = "") -> str:
    """First step, over the rows: each row checked for what needs its own value
    (``row_reason``), marked ``kept`` when the filters keep it, and counted per part,
    platform, month and the GROUPED columns; rows marked ``dup`` (a uuid seen before) are
    counted apart. ``ids`` adds an engine's own aggregate of the rows' ids."""
    keys = f"source_part, platform_name, substr(application_date, 1, 7), {', '.join(GROUPED)}"
    return f"""
SELECT source_part, platform_name AS platform, substr(application_date, 1, 7) AS month, {', '.join(GROUPED)},
  {_reasons(_row_checks(has_territorial_scope), "NULL")} AS row_reason,
  CASE WHEN {_filter_expression(filters, has_territorial_scope)} THEN 1 ELSE 0 END AS kept,
  SUM(1 - dup) AS statements, SUM(dup) AS duplicates,
  MIN(uuid) AS example_first, MAX(uuid) AS example_last{', ' + ids if ids else ''}
FROM {table}
GROUP BY {keys}, row_reason, kept"""


def outer_sql(version: str, *, table: str = "sor_groups") -> str:
    """Second step, over the groups of :func:`inner_sql`: each checked for unknown values and
    malformed arrays (``reason`` NULL when valid) and counted per part, platform, module and
    month. Rejected and filtered rows are counted too, so that every row read is accounted for."""
    sums = ",\n  ".join(f"SUM(CASE WHEN {condition} THEN statements ELSE 0 END) AS {name}"
                        for name, condition in {**MEASURES, **_content_measures()}.items())
    return f"""
SELECT source_part, platform, {_module_expression()} AS module, month, {reject_expression(version)} AS reason, kept,
  SUM(statements) AS statements, SUM(duplicates) AS duplicates,
  {sums},
  MIN(example_first) AS example_first, MAX(example_last) AS example_last
FROM {table}
GROUP BY source_part, platform, module, month, reason, kept"""


def view_sql(source: str, columns: Sequence[str], *, part_column: str, dup: str = "0") -> str:
    """Every column as text, whatever the source's types (Parquet carries dates and arrays),
    ``source_part``, the file each row came from (each engine names it its own way), and
    ``dup``, 1 for a row whose uuid was seen before."""
    return ("SELECT " + ", ".join(f"CAST({c} AS STRING) AS {c}" for c in columns)
            + f", {part_column} AS source_part, {dup} AS dup FROM {source}")


def logic_text() -> str:
    """The SQL the aggregation runs, for every version and layout: part of the cache key."""
    texts = [inner_sql(Filters(), has_territorial_scope=scope, table="t") for scope in (True, False)]
    return "\n".join([*texts, *(outer_sql(version) for version in VERSIONS)])


# -- reading the dumps -----------------------------------------------------------------------
_CHECKER: ThreadPoolExecutor | None = None


def _checker() -> ThreadPoolExecutor:
    """One background thread that checks the CRC-32 of parts the engines inflate themselves
    (zlib releases the GIL, so the check runs beside the engine)."""
    global _CHECKER
    if _CHECKER is None:
        _CHECKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsarisk-sor-crc")
    return _CHECKER


@dataclass
class Part:
    """A CSV or Parquet part as the engines read it, and where it came from."""

    origin: str
    path: Path
    columns: list[str]
    file: str = ""  # the dump file it belongs to
    kind: str = "csv"  # or "csv.gz" (a zip member handed over compressed) or "parquet"
    extracted: bool = False
    check: Future | None = None

    def verify(self) -> int | None:
        """Wait for the part's integrity check and line count (raises SorError when the check
        failed); return its rows counted as lines (None for Parquet)."""
        return self.check.result() if self.check is not None else None

    def release(self) -> None:
        """Check the part, then remove its extracted copy once an engine has read it."""
        try:
            self.verify()
        finally:
            if self.extracted:
                self.path.unlink(missing_ok=True)


@dataclass
class FileRecord:
    name: str
    sha256: str
    layout: str
    parts: int = 0
    schema_version: str = ""
    dump: str = ""
    rows_read: int = 0
    territorial_filter: str = ""
    schema_by_date: str = ""  # the version in force on the day the file is named after, if any


def _schema_by_date(name: str) -> str:
    """The schema version in force on the date in a dump's name (empty when it has none)."""
    match = re.search(r"(\d{4}-\d{2}-\d{2})", name)
    try:
        return version_of(dt.date.fromisoformat(match[1])) if match else ""
    except ValueError:
        return ""


def discover(path: str | Path) -> list[Path]:
    """The dump files under ``path`` (or the file itself), in name order."""
    root = Path(path)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise SorError("no such file or folder", file=root)
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith((".csv", ".zip", ".parquet")))
    if not found:
        raise SorError("no .csv, .zip or .parquet file in this folder", file=root)
    return found


def check_header(columns: list[str], origin: str) -> tuple[str, str]:
    """Match a part's header with the Commission's headings; return (schema version, full or
    light). Parquet parts may order their columns differently: only the set must match."""
    for version in VERSIONS:
        for dump in DUMPS:
            if set(columns) == set(headings(version, dump)) and len(columns) == len(headings(version, dump)):
                return version, dump
    known = set(headings("v2", "full")) | set(headings("v1", "full"))
    missing = [c for c in schema()["required"] if c not in columns]
    if missing:
        raise SorError(f"missing column(s) {', '.join(missing)}", file=origin)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SorError(f"unknown column(s) {', '.join(unknown)} (not in data/sor/{schema()['enumerations']})",
                       file=origin)
    raise SorError(f"the {len(columns)} columns match no published heading (schema v1 or v2, full or light)",
                   file=origin)


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name's and the extra field's lengths


def _header(line: bytes) -> list[str]:
    """A CSV header line's column names."""
    return next(csv.reader(io.StringIO(line.decode("utf-8", errors="replace"))), [])


@contextmanager
def _archive_errors(origin: str | Path, *more: type[Exception]) -> Iterator[None]:
    """Turn what zipfile and zlib raise on a damaged archive into one SorError naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, *more) as exc:
        raise SorError(f"truncated or corrupt archive ({exc})", file=origin) from None


def _copy(stream: io.BufferedIOBase | Any, target: Path, origin: str) -> None:
    """Copy an archive member to ``target``; zipfile checks its CRC as the copy ends."""
    with _archive_errors(origin, OSError), target.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)


class _Lines:
    """Counts the rows of a CSV part as its lines after the header (real parts have no newline
    inside a field): the count an engine's rows must match."""

    def __init__(self) -> None:
        self.newlines, self.last = 0, b"\n"

    def add(self, data: bytes) -> None:
        if data:
            self.newlines += data.count(b"\n")
            self.last = data[-1:]

    def rows(self) -> int:
        lines = self.newlines + (self.last != b"\n")
        return max(lines - 1, 0)


def _count_rows(path: Path, origin: str) -> int:
    """The rows of a plain CSV part, counted as lines."""
    lines = _Lines()
    with _archive_errors(origin, OSError), path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines.add(chunk)
    return lines.rows()


def _check_gzip(path: Path, crc: int, size: int, origin: str) -> int:
    """Inflate a rewrapped part, compare its CRC-32 and size with the zip directory's, and
    return its rows counted as lines."""
    inflater, value, length, lines = zlib.decompressobj(-zlib.MAX_WBITS), 0, 0, _Lines()
    with _archive_errors(origin), path.open("rb") as handle:
        handle.seek(len(GZIP_HEADER))
        while not inflater.eof and (chunk := handle.read(1 << 20)):
            data = inflater.decompress(chunk)
            value, length = zlib.crc32(data, value), length + len(data)
            lines.add(data)
    if not inflater.eof or value != crc or length != size:
        raise SorError(f"truncated or corrupt archive (CRC-32 {value:08x} and {length:,} bytes, "
                       f"the archive says {crc:08x} and {size:,})", file=origin)
    return lines.rows()


def _rewrap_as_gzip(archive: BinaryIO, info: zipfile.ZipInfo, target: Path, origin: str) -> list[str]:
    """Write a deflated zip member as a gzip file without inflating it, and return its header.

    Both formats carry the same raw DEFLATE stream (RFC 1951): gzip adds a 10-byte header and
    a trailer of CRC-32 and size, both known from the zip directory. The engines then inflate
    it in their own threads, instead of Python inflating every byte before they start. DuckDB
    does not check the gzip trailer: the caller checks the CRC-32 beside it (:func:`_check_gzip`).
    """
    archive.seek(info.header_offset)
    signature, name_length, extra_length = LOCAL_HEADER.unpack(archive.read(LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise SorError("truncated or corrupt archive (bad local header)", file=origin)
    archive.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
    remaining, first = info.compress_size, b""
    with target.open("wb") as out:
        out.write(GZIP_HEADER)
        while remaining:
            chunk = archive.read(min(1 << 20, remaining))
            if not chunk:
                raise SorError("truncated or corrupt archive (a member ends early)", file=origin)
            first = first or chunk
            out.write(chunk)
            remaining -= len(chunk)
        out.write(struct.pack("<II", info.CRC, info.file_size & 0xFFFFFFFF))
    with _archive_errors(origin):  # the header only: inflate no more than its first line needs
        start = zlib.decompressobj(-zlib.MAX_WBITS).decompress(first, 1 << 20)
    return _header(start.split(b"\n", 1)[0])


def _zip_parts(archive: zipfile.ZipFile, origin: str, workdir: Path, record: FileRecord, *,
               checked_file: BinaryIO | None = None) -> Iterator[Part]:
    """The CSV parts of ``archive``. ``checked_file`` is the archive's file when its bytes
    passed the CRC of the zip that held them: its deflated parts are then handed over still
    compressed, their own CRC checked in the background."""
    # several files' parts can wait in one batch: their extracted names must not collide
    prefix = hashlib.sha1(origin.encode()).hexdigest()[:12]
    for info in archive.infolist():
        name = f"{origin}!{info.filename}"
        if info.filename.endswith(".csv.zip"):
            spool = workdir / f"{prefix}-{record.parts:06d}.zip"
            try:  # spooled to disk: an inner zip can be large, memory stays flat
                with _archive_errors(name):
                    with archive.open(info) as stream:
                        _copy(stream, spool, name)
                    with spool.open("rb") as raw, zipfile.ZipFile(raw) as inner:
                        yield from _zip_parts(inner, name, workdir, record, checked_file=raw)
            finally:
                spool.unlink(missing_ok=True)
        elif info.filename.endswith(".csv"):
            target = workdir / f"{prefix}-{record.parts:06d}.csv"
            kind, check = "csv", None
            if checked_file is not None and info.compress_type == zipfile.ZIP_DEFLATED:
                target, kind = target.with_suffix(".csv.gz"), "csv.gz"
                columns = _rewrap_as_gzip(checked_file, info, target, name)
                check = _checker().submit(_check_gzip, target, info.CRC, info.file_size, name)
            else:
                with _archive_errors(name), archive.open(info) as stream:
                    _copy(stream, target, name)
                with target.open("rb") as handle:
                    columns = _header(handle.readline())
                check = _checker().submit(_count_rows, target, name)
            record.parts += 1
            yield Part(name, target, columns, file=record.name, kind=kind, extracted=True, check=check)


def iter_parts(files: Sequence[Path], workdir: Path, records: list[FileRecord]) -> Iterator[Part]:
    """Each CSV or Parquet part of ``files``, one at a time (zipped parts extracted to
    ``workdir``; the reader calls :meth:`Part.release` once it has read one); one FileRecord
    per file is appended to ``records``."""
    for path in files:
        record = FileRecord(path.name, sha256_file(path), layout="", schema_by_date=_schema_by_date(path.name))
        records.append(record)
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                columns = pq.read_schema(path).names
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise SorError(f"unreadable Parquet file ({exc})", file=path) from None
            record.layout, record.parts = "parquet", 1
            yield Part(path.name, path, columns, file=path.name, kind="parquet")
        elif path.name.endswith(".zip"):
            with _archive_errors(path, OSError):
                archive = zipfile.ZipFile(path)
            with archive:
                record.layout = ("nested zip" if any(m.endswith(".csv.zip") for m in archive.namelist())
                                 else "zipped csv")
                yield from _zip_parts(archive, path.name, workdir, record)
            if record.parts == 0:
                raise SorError("the archive holds no CSV part", file=path)
        else:
            with path.open("rb") as handle:
                columns = _header(handle.readline())
            record.layout, record.parts = "csv", 1
            yield Part(path.name, path, columns, file=path.name, check=_checker().submit(_count_rows, path, path.name))


def checked_parts(files: Sequence[Path], workdir: Path, records: list[FileRecord]) -> Iterator[Part]:
    """The parts of ``files`` (see :func:`iter_parts`), each header checked and its schema
    version and dump kind written into its file's record."""
    for part in iter_parts(files, workdir, records):
        version, dump = check_header(part.columns, part.origin)
        record = records[-1]
        if record.schema_version and (record.schema_version, record.dump) != (version, dump):
            raise SorError(f"parts of one file mix headings ({record.schema_version} {record.dump} "
                           f"and {version} {dump})", file=part.origin)
        record.schema_version, record.dump = version, dump
        record.territorial_filter = ("applied" if "territorial_scope" in part.columns
                                     else "not applicable: a light dump has no territorial_scope")
        yield part


def batches(parts: Iterable[Part], size: int) -> Iterator[list[Part]]:
    """Consecutive parts of one file with the same columns and kind, at most ``size`` at a
    time: what one DuckDB query reads."""
    batch: list[Part] = []
    for part in parts:
        if batch and (part.columns != batch[0].columns or part.kind != batch[0].kind
                      or part.file != batch[0].file or len(batch) >= size):
            yield batch
            batch = []
        batch.append(part)
    if batch:
        yield batch


# -- rows an RFC 4180 reader cannot take -----------------------------------------------------
class PhpDialect(csv.Dialect):
    """PHP's ``fputcsv`` as the Commission's export used it: a quote inside a quoted field is
    doubled, except after a backslash (PHP's escape character), where it stays single."""

    delimiter, quotechar, escapechar, doublequote = ",", '"', "\\", True
    skipinitialspace, lineterminator, quoting, strict = False, "\n", csv.QUOTE_MINIMAL, False


INVALID_UTF8 = "invalid UTF-8 bytes replaced"
PHP_ESCAPE = 'read with PHP\'s \\" escape'
UNREADABLE = "unreadable CSV row"
LOST = "lines swallowed by an unterminated quote"


def php_fields(line: str, width: int) -> tuple[list[str] | None, str]:
    """A CSV line the way the program that wrote it means it: ``width`` fields, or None.
    PHP's escape first, then the RFC 4180 reading (a value that ends in a backslash is
    written ``...\\"`` and only the second reads it). Returns the fields and how they were read."""
    for dialect, how in ((PhpDialect, PHP_ESCAPE), (csv.excel, "")):
        try:
            fields = next(csv.reader([line], dialect), [])
        except csv.Error:  # an unterminated quote, say
            continue
        if len(fields) == width:
            return fields, how if '\\"' in line else ""
    return None, UNREADABLE


# -- engines -------------------------------------------------------------------------------
@dataclass
class SorAggregate:
    """The tidy per-platform, per-module, per-month table and where it came from."""

    table: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)

    def proxy(self, *, platform: str, module: str, start: dt.date | None = None,
              end: dt.date | None = None) -> int:
        """Statements of one platform and module over months within [start, end]."""
        rows = self.table[(self.table["platform"] == platform) & (self.table["module"] == module)]
        if start:
            rows = rows[rows["month"] >= start.strftime("%Y-%m")]
        if end:
            rows = rows[rows["month"] <= end.strftime("%Y-%m")]
        return int(rows["statements"].sum())


@dataclass
class FileResult:
    """One dump file's checked groups (the rows of :func:`outer_sql`, with ``origin`` naming
    the part), what its reading repaired, and its duplicates: what the cache keeps per file."""

    record: FileRecord
    groups: pd.DataFrame
    engine: str
    repaired: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicate_examples: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"record": asdict(self.record), "groups": self.groups.to_dict("records"),
                           "engine": self.engine, "repaired": self.repaired,
                           "duplicate_examples": self.duplicate_examples})

    @classmethod
    def from_json(cls, text: str) -> FileResult:
        stored = json.loads(text)
        return cls(FileRecord(**stored["record"]), pd.DataFrame(stored["groups"]), stored["engine"],
                   stored["repaired"], stored["duplicate_examples"])


GROUP_KEYS = ["platform", "module", "month"]
SHARES = {"own initiative": "own_initiative", "automated detection": "automated_detection",
          "fully automated decision": "automated_decision_full", "illegal (vs incompatible)": "illegal"}


def shares(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Statements and the share (in %) of own-initiative, automated and illegal ones, per ``by``."""
    totals = table.groupby(by)[["statements", *SHARES.values()]].sum()
    return pd.DataFrame({"statements": totals["statements"],
                         **{name: 100 * totals[column] / totals["statements"] for name, column in SHARES.items()}})


def _note(notes: dict[str, dict[str, Any]], reason: str, rows: int, example: str) -> None:
    entry = notes.setdefault(reason, {"rows": 0, "examples": []})
    entry["rows"] += rows
    if len(entry["examples"]) < MAX_EXAMPLES and example not in entry["examples"]:
        entry["examples"].append(example)


def _label(origin: str, example: str) -> str:
    return f"{origin}: {example}" if example.startswith("line") else f"{origin}: uuid {example}"


def _finish(results: Sequence[FileResult], filters: Filters) -> SorAggregate:
    """Split the checked groups into the tidy table, the rejections, the filtered rows and the
    duplicates, and stop unless they add up to the rows read."""
    frames = [result.groups for result in results if len(result.groups)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*GROUP_KEYS, *measure_columns(), "duplicates", "reason", "kept", "origin", "example_first",
                 "example_last"])
    valid = frame[frame["reason"].isna()]
    kept = valid[valid["kept"].astype(int) == 1]
    table = (kept.groupby(GROUP_KEYS, as_index=False)[measure_columns()].sum()
             .sort_values(GROUP_KEYS, ignore_index=True))
    for column in measure_columns():
        table[column] = table[column].astype("int64")
    rejected: dict[str, dict[str, Any]] = {}
    for row in frame[frame["reason"].notna() & (frame["statements"] > 0)].sort_values(
            ["reason", "origin", "example_first"]).to_dict("records"):  # sorted: every engine names the same examples
        _note(rejected, row["reason"], int(row["statements"]), _label(row["origin"], row["example_first"]))
        if row["example_last"] != row["example_first"]:
            _note(rejected, row["reason"], 0, _label(row["origin"], row["example_last"]))
    repaired: dict[str, dict[str, Any]] = {}
    for result in results:
        for reason, entry in result.repaired.items():
            for example in entry["examples"] or [""]:
                _note(repaired, reason, 0, example)
            repaired[reason]["rows"] += entry["rows"]
    counts = {
        "rows_read": sum(result.record.rows_read for result in results),
        "rows_aggregated": int(table["statements"].sum()),
        "rows_rejected": sum(entry["rows"] for entry in rejected.values()),
        "rows_filtered_out": int(valid.loc[valid["kept"].astype(int) == 0, "statements"].sum()),
        "rows_duplicate": int(frame["duplicates"].sum()),
    }
    accounted = counts["rows_aggregated"] + counts["rows_rejected"] + counts["rows_filtered_out"] + counts["rows_duplicate"]
    if accounted != counts["rows_read"]:
        raise SorError(f"{counts['rows_read']:,} rows read but {accounted:,} accounted for "
                       f"({', '.join(f'{k} {v:,}' for k, v in counts.items() if k != 'rows_read')})",
                       file=", ".join(result.record.name for result in results))
    examples = [example for result in results for example in result.duplicate_examples]
    provenance = {
        "engine": ", ".join(sorted({result.engine for result in results})),
        "reader_version": READER_VERSION,
        "files": [asdict(result.record) for result in results],
        "filters": filters.describe(),
        "mapping_sha256": sha256_file(SOR_DIR / "categories.yaml"),
        **counts,
        "rejected_by_reason": dict(sorted(rejected.items())),
        "duplicate_examples": examples[:MAX_EXAMPLES],
        "repaired_by_reason": dict(sorted(repaired.items())),
    }
    return SorAggregate(table, provenance)


def _duckdb_problem(error: Exception, parts: Sequence[Part]) -> str:
    """DuckDB's error in one line: its first line (with the CSV line number) and, for a CSV
    error, the sentence that says what is wrong; parts named as in the dump."""
    lines = str(error).splitlines()
    before_fixes = lines[: lines.index("Possible fixes:")] if "Possible fixes:" in lines else []
    cause = next((line for line in reversed(before_fixes) if line.strip()), "")
    problem = lines[0] + (f": {cause}" if cause and len(before_fixes) > 2 else "")
    for part in parts:  # our temporary copy's path means nothing to the analyst
        problem = problem.replace(str(part.path), part.origin)
    return problem


DUCKDB_REGEXP_LIKE = "CREATE MACRO regexp_like(text, pattern) AS regexp_matches(text, pattern)"  # Spark's name
REJECTS = "rejects_table = 'sor_rejects', rejects_scan = 'sor_reject_scans'"


def duckdb_source(batch: Sequence[Part], *, keep_rejects: bool = True) -> str:
    """DuckDB's table function reading ``batch``, with each row's file in ``filename``. A CSV
    row that an RFC 4180 reading cannot take (a PHP ``\\"`` escape, invalid UTF-8) is set
    aside in ``sor_rejects`` rather than failing the file; paths are SQL literals, quotes doubled."""
    paths = _quoted(str(part.path) for part in batch)
    if batch[0].kind == "parquet":
        return f"read_parquet([{paths}], filename = true)"
    # the header was checked already: no sniffing, every column text
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in batch[0].columns)
    rejects = f", store_rejects = true, {REJECTS}" if keep_rejects else ", ignore_errors = true"
    return (f"read_csv([{paths}], header = true, auto_detect = false, columns = {{{types}}}, "
            f"delim = ',', quote = '\"', escape = '\"', filename = true{rejects})")


DEDUPLICATE = """
CREATE OR REPLACE TEMP TABLE sor_ids AS SELECT gid, unnest(ids) AS id FROM sor_groups;
CREATE OR REPLACE TEMP TABLE sor_earlier AS SELECT DISTINCT b.id FROM sor_ids b JOIN sor_seen s ON b.id = s.id;
CREATE OR REPLACE TEMP TABLE sor_repeats AS
  WITH candidates AS (SELECT id FROM sor_ids WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1
                      UNION SELECT id FROM sor_earlier),
  occurrences AS (SELECT b.gid, b.id, row_number() OVER (PARTITION BY b.id ORDER BY b.gid) AS nth,
                         e.id IS NOT NULL AS earlier
                  FROM sor_ids b JOIN candidates c ON b.id = c.id LEFT JOIN sor_earlier e ON b.id = e.id)
  SELECT gid, id FROM occurrences WHERE earlier OR nth > 1;
UPDATE sor_groups SET statements = sor_groups.statements - r.n, duplicates = sor_groups.duplicates + r.n
  FROM (SELECT gid, count(*) AS n FROM sor_repeats GROUP BY gid) r WHERE sor_groups.gid = r.gid;
INSERT INTO sor_seen SELECT id FROM sor_ids WHERE id IS NOT NULL;
"""


def _unreadable(result: FileResult, origin: str, reason: str, rows: int, example: str) -> None:
    """Rows read but not made into values (an unreadable line, lines an open quote swallowed),
    counted as rejected."""
    result.groups = pd.concat([result.groups, pd.DataFrame([{
        "source_part": origin, "origin": origin, "reason": reason, "kept": 0, "statements": rows, "duplicates": 0,
        **{c: 0 for c in measure_columns()[1:]}, "example_first": example, "example_last": example}])],
        ignore_index=True)
    result.record.rows_read += rows


def _check_lines(result: FileResult, part: Part, read: int) -> None:
    """Hold the rows an engine read from a part against its lines: lines an unterminated quote
    swallowed into one value are counted as rejected rather than lost."""
    lines = part.verify()
    if lines is None or lines == read:
        return
    if read > lines:
        raise SorError(f"{read:,} rows read from {lines:,} lines", file=part.origin)
    _unreadable(result, part.origin, LOST, lines - read, f"line count {lines:,}, rows read {read:,}")


def _duckdb_fallback(connection: Any, batch: Sequence[Part], result: FileResult) -> tuple[pd.DataFrame | None,
                                                                                           dict[str, int]]:
    """The rows DuckDB set aside, read the way PHP wrote them (:func:`php_fields`): those read
    are returned as a frame of text columns, those that cannot be are counted as rejected
    (and returned per part path)."""
    origins = {str(part.path): part.origin for part in batch}
    found = connection.execute(
        "SELECT s.file_path, e.line, list(DISTINCT e.error_type), any_value(e.csv_line) "
        "FROM sor_rejects e JOIN sor_reject_scans s USING (scan_id, file_id) GROUP BY ALL ORDER BY 1, 2").fetchall()
    columns, rows, unreadable = batch[0].columns, [], {}
    for path, line, errors, text in found:
        origin = origins.get(path, path)
        fields, how = php_fields(text or "", len(columns))
        if "INVALID ENCODING" in errors:  # DuckDB's copy of the line has the bad bytes replaced
            _note(result.repaired, INVALID_UTF8, 1, f"{origin}: line {line}")
        if fields is None:
            _unreadable(result, origin, UNREADABLE, 1, f"line {line}")
            unreadable[path] = unreadable.get(path, 0) + 1
            continue
        if how:
            _note(result.repaired, how, 1, f"{origin}: line {line}")
        rows.append([*fields, path])
    connection.execute("DROP TABLE IF EXISTS sor_rejects; DROP TABLE IF EXISTS sor_reject_scans")
    return (pd.DataFrame(rows, columns=[*columns, "filename"]) if rows else None), unreadable


def _duckdb_file(connection: Any, parts: Iterable[Part], filters: Filters, record: FileRecord,
                 batch_parts: int) -> FileResult:
    import duckdb

    result = FileResult(record, pd.DataFrame(), f"duckdb {duckdb.__version__}")
    connection.execute("CREATE OR REPLACE TEMP TABLE sor_seen (id UUID)")
    for batch in batches(parts, batch_parts):
        columns, scope = batch[0].columns, "territorial_scope" in batch[0].columns
        # every column touched, so that DuckDB checks the UTF-8 of all text, not only of the
        # columns aggregated: a row with invalid bytes then reaches the fallback and is counted
        widest = " + ".join(f"coalesce(length({c}), 0)" for c in columns)
        ids = f"list(TRY_CAST(uuid AS UUID)) AS ids, MAX({widest}) AS widest"
        try:
            connection.execute("CREATE OR REPLACE TEMP TABLE sor_groups AS SELECT row_number() OVER () AS gid, * FROM ("
                               + inner_sql(filters, has_territorial_scope=scope, ids=ids, table="("
                                           + view_sql(duckdb_source(batch), columns, part_column="filename") + ")")
                               + ")")
            unreadable: dict[str, int] = {}
            if batch[0].kind != "parquet":
                fallback, unreadable = _duckdb_fallback(connection, batch, result)
                if fallback is not None:
                    connection.register("sor_fallback", fallback)
                    connection.execute("INSERT INTO sor_groups SELECT (SELECT coalesce(max(gid), 0) FROM sor_groups) "
                                       "+ row_number() OVER (), * FROM (" + inner_sql(
                                           filters, has_territorial_scope=scope, ids=ids,
                                           table="(" + view_sql("sor_fallback", columns, part_column="filename") + ")")
                                       + ")")
                    connection.unregister("sor_fallback")
            read = dict(connection.execute("SELECT source_part, SUM(statements) FROM sor_groups GROUP BY 1").fetchall())
            record.rows_read += sum(int(n) for n in read.values())
            for part in batch:
                _check_lines(result, part, int(read.get(str(part.path), 0)) + unreadable.get(str(part.path), 0))
            connection.execute(DEDUPLICATE)
            for gid, uuid in connection.execute("SELECT gid, CAST(id AS VARCHAR) FROM sor_repeats ORDER BY id LIMIT 3"
                                                ).fetchall():
                source = connection.execute("SELECT source_part FROM sor_groups WHERE gid = ?", [gid]).fetchone()[0]
                if len(result.duplicate_examples) < MAX_EXAMPLES:
                    result.duplicate_examples.append(f"{source}: uuid {uuid}")
            groups = connection.execute(outer_sql(record.schema_version)).df()
        except duckdb.Error as exc:
            culprit = next((part for part in batch if f"file = {part.path}" in str(exc)), batch[0])
            raise SorError(f"unreadable ({_duckdb_problem(exc, batch)})", file=culprit.origin) from None
        origins = {str(part.path): part.origin for part in batch}
        result.duplicate_examples = [_replace_paths(example, origins) for example in result.duplicate_examples]
        result.groups = pd.concat([result.groups, groups.assign(origin=groups["source_part"].map(origins))],
                                  ignore_index=True)
        for part in batch:
            part.release()
    return result


def _replace_paths(text: str, origins: dict[str, str]) -> str:
    for path, origin in origins.items():
        text = text.replace(path, origin)
    return text


def _duckdb_connection(memory_limit: str, threads: int | None) -> Any:
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute("SET enable_progress_bar = false")  # a library does not draw on the terminal
    connection.execute(DUCKDB_REGEXP_LIKE)
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    return connection


def _per_file(files: Sequence[Path], workdir: Path) -> Iterator[tuple[FileRecord, Iterator[Part]]]:
    """Each file's record and its checked parts, one file at a time."""
    for path in files:
        records: list[FileRecord] = []
        parts = checked_parts([path], workdir, records)
        first = next(parts)  # reads the header, so the record knows its version and layout
        yield records[0], itertools.chain([first], parts)


def duckdb_files(files: Sequence[Path], filters: Filters = Filters(), *, memory_limit: str = "512MB",
                 threads: int | None = None, batch_parts: int = 10) -> list[FileResult]:
    """Each file's result with DuckDB, ``batch_parts`` CSV parts (about a million rows) per
    query: DuckDB streams each batch, so memory is bounded by ``memory_limit`` (and the uuids
    of the file read so far, 16 bytes each), not by the dump; extracted parts are removed as
    soon as they are read."""
    connection = _duckdb_connection(memory_limit, threads)
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-") as workdir:
        return [_duckdb_file(connection, parts, filters, record, batch_parts)
                for record, parts in _per_file(files, Path(workdir))]


def aggregate_duckdb(path: str | Path, filters: Filters = Filters(), **options: Any) -> SorAggregate:
    """Aggregate a dump with DuckDB, never cached (see :func:`duckdb_files` for ``options``)."""
    return _finish(duckdb_files(discover(path), filters, **options), filters)


def _collect(frame: Any) -> pd.DataFrame:
    """A small Spark result as pandas, without Spark's own pandas conversion."""
    return pd.DataFrame([row.asDict() for row in frame.collect()], columns=frame.columns)


CORRUPT = "_corrupt_record"


def _spark_part(session: Any, part: Part, result: FileResult) -> tuple[Any, int]:
    """One part as a Spark frame of text columns with ``source_part``, and the number of its
    lines found unreadable. A CSV row that Spark's RFC 4180 reading cannot split into the
    header's columns is read again as PHP wrote it."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    if part.kind == "parquet":
        return session.read.parquet(str(part.path)).withColumn("source_part", F.lit(part.origin)), 0
    schema_ = StructType([StructField(c, StringType()) for c in [*part.columns, CORRUPT]])
    frame = (session.read.schema(schema_).option("header", True).option("quote", '"').option("escape", '"')
             .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT).option("enforceSchema", False)
             .csv(str(part.path))).cache()  # uncached, Spark prunes the corrupt-record column it filters on
    bad = [row[CORRUPT] for row in frame.where(F.col(CORRUPT).isNotNull()).select(*part.columns, CORRUPT).collect()]
    rows, unreadable = [], 0
    for number, text in enumerate(bad, 1):
        fields, how = php_fields(text, len(part.columns))
        if fields is None:
            _unreadable(result, part.origin, UNREADABLE, 1, f"line set aside: {text[:40]}")
            unreadable += 1
        else:
            rows.append(fields)
            if how:
                _note(result.repaired, how, 1, f"{part.origin}: line set aside {number}")
    good = frame.where(F.col(CORRUPT).isNull()).drop(CORRUPT)
    if rows:
        good = good.unionByName(session.createDataFrame(rows, StructType(list(schema_)[:-1])))
    return good.withColumn("source_part", F.lit(part.origin)), unreadable


SPARK_DUPLICATE = (f"CASE WHEN regexp_like(uuid, '{UUID_PATTERN}') "
                   "AND row_number() OVER (PARTITION BY uuid ORDER BY source_part) > 1 THEN 1 ELSE 0 END")


def spark_files(files: Sequence[Path], filters: Filters = Filters(), *, spark: Any = None) -> list[FileResult]:
    """Each file's result with Apache Spark (local mode when no session is given), running
    the same SQL text as DuckDB on all parts of a file at once; a duplicate is found with a
    window over the file's uuids. A cluster would read the parts from shared storage."""
    import pyspark
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    session = spark or (SparkSession.builder.master("local[2]").appName("dsarisk-sor")
                        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
                        .getOrCreate())
    results = []
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-spark-") as workdir:
        for record, parts in _per_file(files, Path(workdir)):
            result = FileResult(record, pd.DataFrame(), f"spark {pyspark.__version__}")
            read, frames, unreadable = [], [], {}
            for part in parts:
                frame, unreadable[part.origin] = _spark_part(session, part, result)
                frames.append(frame.select(*part.columns, "source_part"))
                read.append(part)
            union = frames[0]
            for frame in frames[1:]:
                union = union.unionByName(frame)
            union.createOrReplaceTempView("sor_source")
            columns = read[0].columns
            session.sql(view_sql("sor_source", columns, part_column="source_part", dup=SPARK_DUPLICATE)
                        ).createOrReplaceTempView("sor_rows")
            inner = session.sql(inner_sql(filters, has_territorial_scope="territorial_scope" in columns,
                                          table="sor_rows")).cache()
            inner.createOrReplaceTempView("sor_groups")
            per_part = {row[0]: int(row[1]) for row in inner.groupBy("source_part").agg(
                F.sum(F.col("statements") + F.col("duplicates"))).collect()}
            record.rows_read += sum(per_part.values())
            for part in read:
                _check_lines(result, part, per_part.get(part.origin, 0) + unreadable[part.origin])
            duplicates = session.sql("SELECT source_part, uuid FROM (SELECT source_part, uuid, "
                                     f"{SPARK_DUPLICATE} AS dup FROM sor_source) WHERE dup = 1 ORDER BY uuid LIMIT 3")
            result.duplicate_examples = [f"{row['source_part']}: uuid {row['uuid']}" for row in duplicates.collect()]
            groups = _collect(session.sql(outer_sql(record.schema_version)))
            result.groups = pd.concat([result.groups, groups.assign(origin=groups["source_part"])], ignore_index=True)
            for part in read:
                part.release()
            results.append(result)
    return results


def aggregate_spark(path: str | Path, filters: Filters = Filters(), *, spark: Any = None) -> SorAggregate:
    """Aggregate a dump with Spark, never cached (see :func:`spark_files`)."""
    return _finish(spark_files(discover(path), filters, spark=spark), filters)


ENGINES = {"duckdb": duckdb_files, "spark": spark_files}


def engine_version(engine: str) -> str:
    from importlib.metadata import version

    return f"{engine} {version('duckdb' if engine == 'duckdb' else 'pyspark')}"


def cache_key(file: Path, filters: Filters, engine: str) -> str:
    """What determines one file's result: its content, the filters, the engine and its
    version, the reader's version, the mapping, schema and enumeration files, and the SQL
    text itself (so a change of logic never reuses an old result)."""
    digest = hashlib.sha256()
    for text in [sha256_file(file), json.dumps(filters.describe(), sort_keys=True), engine_version(engine),
                 READER_VERSION, *(sha256_file(SOR_DIR / name) for name in
                                   ("categories.yaml", "schema.yaml", schema()["enumerations"])),
                 logic_text()]:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def default_cache_dir() -> Path | None:
    """Where aggregates are cached: ``$DSARISK_CACHE_DIR/sor`` when set, else the workspace's
    cache (none outside a workspace: nothing is written beside the tool)."""
    folder = os.environ.get("DSARISK_CACHE_DIR")
    return Path(folder) / "sor" if folder else paths.cache_dir("sor")


def aggregate(path: str | Path, filters: Filters = Filters(), *, engine: str = "duckdb",
              cache_dir: Path | None | str = "default") -> SorAggregate:
    """Aggregate a dump with the named engine (``duckdb`` or ``spark``), one dump file at a
    time, reusing each file's cached result for the same content, filters, engine and logic
    (``cache_dir=None`` always recomputes): adding a day to a folder reads that day only."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine '{engine}' ({', '.join(ENGINES)})", field="engine")
    folder = default_cache_dir() if cache_dir == "default" else cache_dir
    files = discover(path)
    keys = {file: cache_key(file, filters, engine) for file in files} if folder is not None else {}
    results: list[FileResult | None] = []
    for file in files:
        cached = Path(folder) / f"{keys[file]}.json" if folder is not None else None
        if cached is not None and cached.is_file():
            result = FileResult.from_json(cached.read_text(encoding="utf-8"))
            result.record.name = file.name  # the content is the same; the name is today's
            results.append(result)
        else:
            results.append(None)
    missing = [file for file, result in zip(files, results) if result is None]
    computed = iter(ENGINES[engine](missing, filters) if missing else [])
    reused = len(files) - len(missing)
    for index, file in enumerate(files):
        if results[index] is None:
            result = results[index] = next(computed)
            if folder is not None:
                cached = Path(folder) / f"{keys[file]}.json"
                cached.parent.mkdir(parents=True, exist_ok=True)
                staging = cached.with_suffix(f".{os.getpid()}.tmp")
                staging.write_text(result.to_json(), encoding="utf-8")
                staging.replace(cached)  # atomic: concurrent runs never read half a file
    aggregated = _finish([r for r in results if r is not None], filters)
    aggregated.provenance["cache"] = {"files_reused": reused, "files_read": len(missing)}
    return aggregated
