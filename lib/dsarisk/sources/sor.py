"""Statements of reasons from the DSA Transparency Database, aggregated per module and month.

Reads exports as published: CSV, zipped CSV, the nested daily zips (an outer zip of inner
``.csv.zip`` parts) and Parquet, full or light, schema version 1 or 2. Categories of both
versions map to risk modules through ``data/sor/categories.yaml``; allowed values come from
``data/sor/schema.yaml``.

The aggregation is one SQL text (:func:`aggregate_sql`) run unchanged by two engines:
DuckDB, embedded, the default, streaming one CSV part at a time so that memory stays bounded
whatever the size of the dump; and Apache Spark, for data beyond one machine. One SQL text
rather than a dataframe library keeps the aggregation reviewable as it is executed and adds
no dependency; it uses only what both dialects share (CASE, LIKE, substr, and Spark's
``regexp_like``, which DuckDB gets as a one-line macro; patterns need no backslash, since the
two dialects escape string literals differently).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from ..exceptions import InputError
from ..hashing import sha256_file
from ..methodology import read_yaml
from .. import paths

SOR_DIR = paths.sor_mapping()
NOT_MAPPED = "(no module)"
MAX_EXAMPLES = 3


class SorError(InputError):
    """A statement-of-reasons file that cannot be read at all."""


@cache
def schema() -> dict[str, Any]:
    return read_yaml(SOR_DIR / "schema.yaml", SorError)


@cache
def categories() -> dict[str, dict[str, str | None]]:
    return read_yaml(SOR_DIR / "categories.yaml", SorError)


def category_modules() -> dict[str, str | None]:
    """Every known category of either version and its module."""
    return {**categories()["version_1"], **categories()["version_2"]}


@dataclass(frozen=True)
class Filters:
    """Which statements count: platforms (all when None), an application-date period, and
    whether the territorial scope must include an EU/EEA country."""

    platforms: tuple[str, ...] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    eu_only: bool = True

    def describe(self) -> dict[str, Any]:
        return {"platforms": list(self.platforms) if self.platforms else "all",
                "application_date": [str(self.start) if self.start else None, str(self.end) if self.end else None],
                "territorial_scope": "EU/EEA" if self.eu_only else "any"}


# -- the SQL, one text for both engines ------------------------------------------------------
def _quoted(values: Sequence[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _valid_array(column: str, item: str) -> str:
    """SQL: the column is a JSON array of quoted items, like ["A","B"] (or empty)."""
    value = f"coalesce({column}, '[]')"
    return f"({value} LIKE '[%]' AND regexp_like({value}, '^.( *\"{item}\" *,?)*.$'))"


DATE_PATTERN = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
MALFORMED_DATE = "malformed application_date"
# Columns with few distinct values: the rows are grouped on them, then they are checked and
# counted once per group rather than once per row.
VALUE_COLUMNS = ("category", "decision_ground", "source_type", "automated_detection", "automated_decision")
ARRAY_COLUMNS = ("content_type", "decision_visibility")
GROUPED = (*VALUE_COLUMNS, *ARRAY_COLUMNS)


def _reasons(checks: list[tuple[str, str]], otherwise: str) -> str:
    """SQL CASE naming the first (reason, condition) that holds, else ``otherwise``."""
    whens = "\n    ".join(f"WHEN {condition} THEN '{reason}'" for reason, condition in checks)
    return f"CASE\n    {whens}\n    ELSE {otherwise} END"


def _row_checks(has_territorial_scope: bool) -> list[tuple[str, str]]:
    """(reason, SQL condition) of the checks on each row's own value."""
    checks = [(MALFORMED_DATE, f"NOT regexp_like(coalesce(application_date, ''), '{DATE_PATTERN}')")]
    if has_territorial_scope:
        checks.append(("malformed territorial_scope array", f"NOT {_valid_array('territorial_scope', '[A-Z]{2}')}"))
    return checks


def _grouped_checks() -> list[tuple[str, str]]:
    """(reason, SQL condition) of the checks on the grouped columns."""
    allowed = {**{column: schema()["values"][column] for column in VALUE_COLUMNS[1:]},
               "category": list(category_modules())}
    return [*((f"unknown {column}", f"coalesce({column}, '') NOT IN ({_quoted(allowed[column])})")
              for column in VALUE_COLUMNS),
            *((f"malformed {column} array", f"NOT {_valid_array(column, '[A-Z_]+')}") for column in ARRAY_COLUMNS)]


def reject_expression() -> str:
    """SQL CASE giving a group's reason for rejection, or NULL when its rows are valid: a
    malformed date first, then an unknown value, then a malformed array, then a malformed
    territorial scope."""
    return _reasons([(MALFORMED_DATE, f"row_reason = '{MALFORMED_DATE}'"), *_grouped_checks()], "row_reason")


def _filter_expression(filters: Filters, has_territorial_scope: bool) -> str:
    conditions = ["1 = 1"]
    if filters.platforms:
        conditions.append(f"platform_name IN ({_quoted(filters.platforms)})")
    if filters.start:
        conditions.append(f"application_date >= '{filters.start.isoformat()}'")
    if filters.end:
        conditions.append(f"application_date <= '{filters.end.isoformat()}'")
    if filters.eu_only and has_territorial_scope:
        codes = "|".join(schema()["values"]["territorial_scope"])
        conditions.append(f"regexp_like(coalesce(territorial_scope, ''), '\"({codes})\"')")
    return " AND ".join(conditions)


def _module_expression() -> str:
    whens = " ".join(f"WHEN '{category}' THEN '{module or NOT_MAPPED}'"
                     for category, module in category_modules().items())
    return f"CASE category {whens} END"


MEASURES = {  # column -> SQL condition, counted per group
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
ROW_MEASURES = ("account", "provision", "monetary")  # on columns that are not grouped


def _content_measures() -> dict[str, str]:
    return {f"content_{value.removeprefix('CONTENT_TYPE_').lower()}": f"content_type LIKE '%\"{value}\"%'"
            for value in schema()["values"]["content_type"]}


def measure_columns() -> list[str]:
    return ["statements", *MEASURES, *_content_measures()]


def aggregate_sql(filters: Filters, *, has_territorial_scope: bool, table: str = "sor_rows") -> str:
    """The whole aggregation in one scan, in two steps. The rows are checked for what needs
    each one's own value (``row_reason``), marked ``kept`` when the filters keep them, and
    counted per part, platform, month and the GROUPED columns; those groups are then checked
    for unknown values and malformed arrays (``reason`` NULL when valid) and counted per
    platform, module and month. Rejected and filtered rows are counted too, so that every row
    read is accounted for."""
    row_sums = ",\n    ".join(f"SUM(CASE WHEN {MEASURES[name]} THEN 1 ELSE 0 END) AS {name}" for name in ROW_MEASURES)
    sums = ",\n  ".join(f"SUM({name}) AS {name}" if name in ROW_MEASURES
                        else f"SUM(CASE WHEN {condition} THEN statements ELSE 0 END) AS {name}"
                        for name, condition in {**MEASURES, **_content_measures()}.items())
    grouped = ", ".join(GROUPED)
    return f"""
SELECT source_part, platform, {_module_expression()} AS module, month, {reject_expression()} AS reason, kept,
  SUM(statements) AS statements,
  {sums},
  MIN(example_first) AS example_first, MAX(example_last) AS example_last
FROM (
  SELECT source_part, platform_name AS platform, substr(application_date, 1, 7) AS month, {grouped},
    {_reasons(_row_checks(has_territorial_scope), "NULL")} AS row_reason,
    CASE WHEN {_filter_expression(filters, has_territorial_scope)} THEN 1 ELSE 0 END AS kept,
    COUNT(*) AS statements,
    {row_sums},
    MIN(uuid) AS example_first, MAX(uuid) AS example_last
  FROM {table}
  GROUP BY source_part, platform_name, substr(application_date, 1, 7), {grouped}, row_reason, kept
) grouped
GROUP BY source_part, platform, module, month, reason, kept"""


def view_sql(source: str, columns: Sequence[str], *, part_column: str) -> str:
    """Every column as text, whatever the source's types (Parquet carries dates and arrays),
    and ``source_part``, the file each row came from (each engine names it its own way)."""
    return ("SELECT " + ", ".join(f"CAST({c} AS STRING) AS {c}" for c in columns)
            + f", {part_column} AS source_part FROM {source}")


# -- reading the dumps -----------------------------------------------------------------------
@dataclass
class Part:
    """A CSV or Parquet part as the engines read it, and where it came from."""

    origin: str
    path: Path
    columns: list[str]
    kind: str = "csv"  # or "csv.gz" (a zip member handed over compressed) or "parquet"
    extracted: bool = False

    def release(self) -> None:
        """Remove the part's extracted copy once an engine has read it."""
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
    """Validate a part's header; return (schema version, full or light)."""
    spec = schema()["columns"]
    known = set(spec["v1"]) | set(spec["v2_added"])
    missing = [c for c in spec["required"] if c not in columns]
    if missing:
        raise SorError(f"missing column(s) {', '.join(missing)}", file=origin)
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise SorError(f"unknown column(s) {', '.join(unknown)} (not in data/sor/schema.yaml)", file=origin)
    version = "v2" if set(spec["v2_added"]) <= set(columns) else "v1"
    dump = "light" if not set(spec["light_dropped"]) & set(columns) else "full"
    return version, dump


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


def _rewrap_as_gzip(archive: BinaryIO, info: zipfile.ZipInfo, target: Path, origin: str) -> list[str]:
    """Write a deflated zip member as a gzip file without inflating it, and return its header.

    Both formats carry the same raw DEFLATE stream (RFC 1951): gzip adds a 10-byte header and
    a trailer of CRC-32 and size, both known from the zip directory. The engines then inflate
    it in their own threads, instead of Python inflating every byte before they start. Only
    for archives whose bytes were checked already (the CRC of the zip that held them):
    DuckDB does not check the gzip trailer.
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
    compressed."""
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
            kind = "csv"
            if checked_file is not None and info.compress_type == zipfile.ZIP_DEFLATED:
                target, kind = target.with_suffix(".csv.gz"), "csv.gz"
                columns = _rewrap_as_gzip(checked_file, info, target, name)
            else:
                with _archive_errors(name), archive.open(info) as stream:
                    _copy(stream, target, name)
                with target.open("rb") as handle:
                    columns = _header(handle.readline())
            record.parts += 1
            yield Part(name, target, columns, kind=kind, extracted=True)


def iter_parts(files: Sequence[Path], workdir: Path, records: list[FileRecord]) -> Iterator[Part]:
    """Each CSV or Parquet part of ``files``, one at a time (zipped parts extracted to
    ``workdir``; the reader calls :meth:`Part.release` once it has read one); one FileRecord
    per file is appended to ``records``."""
    for path in files:
        record = FileRecord(path.name, sha256_file(path), layout="")
        records.append(record)
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                columns = pq.read_schema(path).names
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise SorError(f"unreadable Parquet file ({exc})", file=path) from None
            record.layout, record.parts = "parquet", 1
            yield Part(path.name, path, columns, kind="parquet")
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
            yield Part(path.name, path, columns)


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


GROUP_KEYS = ["platform", "module", "month"]
SHARES = {"own initiative": "own_initiative", "automated detection": "automated_detection",
          "fully automated decision": "automated_decision_full", "illegal (vs incompatible)": "illegal"}


def shares(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Statements and the share (in %) of own-initiative, automated and illegal ones, per ``by``."""
    totals = table.groupby(by)[["statements", *SHARES.values()]].sum()
    return pd.DataFrame({"statements": totals["statements"],
                         **{name: 100 * totals[column] / totals["statements"] for name, column in SHARES.items()}})


def _finish(groups: list[pd.DataFrame], records: list[FileRecord], filters: Filters, engine: str) -> SorAggregate:
    """Split the checked groups into the tidy table, the rejections and the filtered rows.
    Each group's ``origin`` names the dump file and part its rows came from."""
    frame = pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(
        columns=[*GROUP_KEYS, *measure_columns(), "reason", "kept", "origin", "example_first", "example_last"])
    valid = frame[frame["reason"].isna()]
    kept = valid[valid["kept"].astype(int) == 1]
    table = (kept.groupby(GROUP_KEYS, as_index=False)[measure_columns()].sum()
             .sort_values(GROUP_KEYS, ignore_index=True))
    for column in measure_columns():
        table[column] = table[column].astype("int64")
    reject_rows: dict[str, dict[str, Any]] = {}
    rejected = frame[frame["reason"].notna()].sort_values(["reason", "origin", "example_first"])
    for row in rejected.to_dict("records"):  # sorted, so that every engine names the same examples
        entry = reject_rows.setdefault(row["reason"], {"rows": 0, "examples": []})
        entry["rows"] += int(row["statements"])
        for key in ("example_first", "example_last"):
            example = f"{row['origin']}: uuid {row[key]}"
            if len(entry["examples"]) < MAX_EXAMPLES and example not in entry["examples"]:
                entry["examples"].append(example)
    provenance = {
        "engine": engine,
        "files": [vars(record) for record in records],
        "filters": filters.describe(),
        "mapping_sha256": sha256_file(SOR_DIR / "categories.yaml"),
        "rows_read": int(frame["statements"].sum()),
        "rows_rejected": sum(entry["rows"] for entry in reject_rows.values()),
        "rejected_by_reason": dict(sorted(reject_rows.items())),
        "rows_filtered_out": int(valid.loc[valid["kept"].astype(int) == 0, "statements"].sum()),
        "rows_aggregated": int(table["statements"].sum()),
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


def checked_parts(path: str | Path, workdir: Path, records: list[FileRecord]) -> Iterator[Part]:
    """The parts of the dump at ``path`` (see :func:`iter_parts`), each header checked and its
    schema version and dump kind written into its file's record."""
    for part in iter_parts(discover(path), workdir, records):
        records[-1].schema_version, records[-1].dump = check_header(part.columns, part.origin)
        yield part


def batches(parts: Iterable[Part], size: int) -> Iterator[list[Part]]:
    """Consecutive parts with the same columns and kind, at most ``size`` at a time: what one
    DuckDB query reads."""
    batch: list[Part] = []
    for part in parts:
        if batch and (part.columns != batch[0].columns or part.kind != batch[0].kind or len(batch) >= size):
            yield batch
            batch = []
        batch.append(part)
    if batch:
        yield batch


def duckdb_source(batch: Sequence[Part]) -> str:
    """DuckDB's table function reading ``batch``, with each row's file in ``filename``."""
    paths = ", ".join(f"'{part.path}'" for part in batch)
    if batch[0].kind == "parquet":
        return f"read_parquet([{paths}], filename = true)"
    # the header was checked already: no sniffing, every column text
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in batch[0].columns)
    return (f"read_csv([{paths}], header = true, auto_detect = false, columns = {{{types}}}, "
            f"delim = ',', quote = '\"', escape = '\"', filename = true)")


def aggregate_duckdb(path: str | Path, filters: Filters = Filters(), *, memory_limit: str = "512MB",
                     threads: int | None = None, batch_parts: int = 10) -> SorAggregate:
    """Aggregate with DuckDB, ``batch_parts`` CSV parts (about a million rows) per query:
    DuckDB streams each batch, so memory is bounded by ``memory_limit``, not by the dump;
    extracted parts are removed as soon as they are read."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(f"SET memory_limit = '{memory_limit}'")
    connection.execute("SET preserve_insertion_order = false")
    connection.execute(DUCKDB_REGEXP_LIKE)
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    groups: list[pd.DataFrame] = []
    records: list[FileRecord] = []
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-") as workdir:
        for batch in batches(checked_parts(path, Path(workdir), records), batch_parts):
            try:
                connection.execute("CREATE OR REPLACE TEMP VIEW sor_rows AS "
                                   + view_sql(duckdb_source(batch), batch[0].columns, part_column="filename"))
                result = connection.execute(aggregate_sql(filters, has_territorial_scope="territorial_scope"
                                                          in batch[0].columns)).df()
            except duckdb.Error as exc:
                culprit = next((part for part in batch if f"file = {part.path}" in str(exc)), batch[0])
                raise SorError(f"unreadable ({_duckdb_problem(exc, batch)})", file=culprit.origin) from None
            origins = {str(part.path): part.origin for part in batch}
            groups.append(result.assign(origin=result["source_part"].map(origins)))
            for part in batch:
                part.release()
    return _finish(groups, records, filters, engine=f"duckdb {duckdb.__version__}")


def _collect(frame: Any) -> pd.DataFrame:
    """A small Spark result as pandas, without Spark's own pandas conversion."""
    return pd.DataFrame([row.asDict() for row in frame.collect()], columns=frame.columns)


def cache_key(files: Sequence[Path], filters: Filters) -> str:
    """What determines an aggregate: the files' contents, the filters, the mapping and schema
    files, and the SQL text itself (so a change of logic never reuses an old result)."""
    digest = hashlib.sha256()
    for part in [*(sha256_file(f) for f in files), json.dumps(filters.describe(), sort_keys=True),
                 sha256_file(SOR_DIR / "categories.yaml"), sha256_file(SOR_DIR / "schema.yaml"),
                 aggregate_sql(filters, has_territorial_scope=True), aggregate_sql(filters, has_territorial_scope=False)]:
        digest.update(part.encode())
    return digest.hexdigest()


def aggregate(path: str | Path, filters: Filters = Filters(), *, engine: str = "duckdb",
              cache_dir: Path | None | bool = True) -> SorAggregate:
    """Aggregate a dump with the named engine (``duckdb`` or ``spark``), reusing a cached result
    for the same files, filters and logic (``True``: the workspace's cache; ``None`` always recomputes)."""
    cache_dir = paths.cache_dir("sor") if cache_dir is True else cache_dir or None
    engines = {"duckdb": aggregate_duckdb, "spark": aggregate_spark}
    if engine not in engines:
        raise InputError(f"unknown engine '{engine}' ({', '.join(engines)})", field="engine")
    cached = cache_dir / f"{cache_key(discover(path), filters)}.json" if cache_dir else None
    if cached is not None and cached.is_file():
        stored = json.loads(cached.read_text(encoding="utf-8"))
        table = pd.DataFrame(stored["table"], columns=GROUP_KEYS + measure_columns())
        return SorAggregate(table.astype({c: "int64" for c in measure_columns()}),
                            {**stored["provenance"], "cache": "reused"})
    result = engines[engine](path, filters)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        staging = cached.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps({"table": result.table.to_dict("records"), "provenance": result.provenance}),
                           encoding="utf-8")
        staging.replace(cached)  # atomic: concurrent runs never read half a file
    return result


def aggregate_spark(path: str | Path, filters: Filters = Filters(), *, spark: Any = None) -> SorAggregate:
    """Aggregate with Apache Spark (local mode when no session is given), running the same SQL
    text as DuckDB on each part; a cluster would read the parts from shared storage."""
    from pyspark.sql import SparkSession

    session = spark or (SparkSession.builder.master("local[2]").appName("dsarisk-sor")
                        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
                        .getOrCreate())
    groups: list[pd.DataFrame] = []
    records: list[FileRecord] = []
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-spark-") as workdir:
        for part in checked_parts(path, Path(workdir), records):
            if part.kind == "parquet":
                frame = session.read.parquet(str(part.path))
            else:
                frame = (session.read.option("header", True).option("quote", '"').option("escape", '"')
                         .option("multiLine", True).csv(str(part.path)))
            frame.createOrReplaceTempView("sor_source")
            session.sql(view_sql("sor_source", part.columns, part_column=f"'{part.origin}'")
                        ).createOrReplaceTempView("sor_rows")
            has_scope = "territorial_scope" in part.columns
            groups.append(_collect(session.sql(aggregate_sql(filters, has_territorial_scope=has_scope)))
                          .assign(origin=part.origin))
            part.release()
    import pyspark

    return _finish(groups, records, filters, engine=f"spark {pyspark.__version__}")
