"""Statements of reasons from the DSA Transparency Database, aggregated per module and month.

Reads exports as published (:mod:`.sor_dumps`: CSV, zipped CSV, the nested daily zips and
Parquet, full or light, schema version 1 or 2), as the Commission's export writes them (PHP
``fputcsv`` quoting, ``\\"`` escapes, dates with a time, the odd invalid UTF-8 byte, the same
statement twice). Values are checked against the Commission's own enumerations of each
version (:mod:`.sor_schema`); categories of both versions map to risk modules through
``data/sor/categories.yaml``.

The aggregation is one SQL text (:func:`inner_sql` then :func:`outer_sql`) run unchanged by
two engines: DuckDB, embedded, the default, streaming a batch of CSV parts at a time so that
memory stays bounded whatever the size of the dump; and Apache Spark, for data beyond one
machine. For DuckDB, polars reads the columns the SQL needs from each part that a strict
RFC 4180 reading takes whole (:func:`polars_columns`; it makes values several times faster
than DuckDB's CSV reader), and DuckDB's CSV reader, with its PHP-aware fallback, every other. It uses only what both dialects share (CASE, LIKE, substr, and Spark's
``regexp_like``, which DuckDB gets as a one-line macro; patterns need no backslash, since the
two dialects escape string literals differently).

Every row read ends in exactly one of: aggregated, rejected (with a reason), filtered out,
or a duplicate (a uuid already seen in the same dump file); the run stops when the four do
not add up to the rows read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import paths
from ..exceptions import InputError
from ..hashing import sha256_file
from .sor_dumps import (MAX_EXAMPLES, UNREADABLE, FileRecord, Part, PartCheck, Pieces, batches, discover, php_fields,
                        reading)
from .sor_schema import SOR_DIR, VERSIONS, SorError, allowed, category_modules, eu_codes, schema

NOT_MAPPED = "(no module)"
# Bumped whenever reading changes in a way the SQL text does not show (the cache key holds it).
READER_VERSION = "6"


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


def _empty_array(column: str) -> str:
    """SQL: the column's text, ``[]`` when it is empty (an engine may read an empty field as
    NULL or as empty text: the aggregation never tells them apart)."""
    return f"coalesce(nullif({column}, ''), '[]')"


def _valid_array(column: str, items: Sequence[str]) -> str:
    """SQL: the column is a JSON array of known items, like ["A","B"], or empty (``[]``)."""
    value = _empty_array(column)
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
READ_COLUMNS = ("uuid", "platform_name", "application_date", "territorial_scope", *GROUPED)  # what the SQL reads


def _reasons(checks: list[tuple[str, str]], otherwise: str) -> str:
    """SQL CASE naming the first (reason, condition) that holds, else ``otherwise``."""
    whens = "\n    ".join(f"WHEN {condition} THEN '{reason}'" for reason, condition in checks)
    return f"CASE\n    {whens}\n    ELSE {otherwise} END"


MALFORMED_UUID = "malformed uuid"
ROW_REASON = f"CASE WHEN NOT regexp_like(coalesce(uuid, ''), '{UUID_PATTERN}') THEN '{MALFORMED_UUID}' END"


def _grouped_checks(version: str, has_territorial_scope: bool) -> list[tuple[str, str]]:
    """(reason, SQL condition) of the checks on the grouped columns: a missing platform, a
    malformed date, values against the version's enumerations, malformed arrays, a malformed
    territorial scope."""
    checks = [("missing platform_name", "coalesce(platform_name, '') = ''"),
              (MALFORMED_DATE, f"NOT regexp_like(coalesce(application_date, ''), '{DATE_PATTERN}')")]
    for column in VALUE_COLUMNS:
        values = allowed(column, version) + ([""] if column in MAY_BE_EMPTY else [])
        checks.append((f"unknown {column} ({version})", f"coalesce({column}, '') NOT IN ({_quoted(values)})"))
    checks += [(f"malformed or unknown {column} array ({version})", f"NOT {_valid_array(column, allowed(column, version))}")
               for column in ARRAY_COLUMNS]
    if has_territorial_scope:
        checks.append(("malformed territorial_scope array", f"NOT {_valid_array('territorial_scope', eu_codes())}"))
    return checks


def reject_expression(version: str, has_territorial_scope: bool) -> str:
    """SQL CASE giving a group's reason for rejection, or NULL when its rows are valid: a
    malformed uuid first (checked on each row), then the checks on the grouped columns."""
    return _reasons([(MALFORMED_UUID, f"row_reason = '{MALFORMED_UUID}'"),
                     *_grouped_checks(version, has_territorial_scope)], "NULL")


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
    "visibility": f"{_empty_array('decision_visibility')} <> '[]'",
    "account": "coalesce(decision_account, '') <> ''",
    "provision": "coalesce(decision_provision, '') <> ''",
    "monetary": "coalesce(decision_monetary, '') <> ''",
}


def _content_measures() -> dict[str, str]:
    return {f"content_{value.removeprefix('CONTENT_TYPE_').lower()}": f"content_type LIKE '%\"{value}\"%'"
            for value in allowed("content_type", "v2")}


def measure_columns() -> list[str]:
    return ["statements", *MEASURES, *_content_measures()]


def _grouped_columns(has_territorial_scope: bool) -> str:
    """What the first step groups on: every column a check, filter or measure reads, except the
    uuid. A day's rows share few values of them, so each is checked once per group."""
    scope = ["territorial_scope"] if has_territorial_scope else []
    return ", ".join(["source_part", "platform_name", "application_date", *scope, *GROUPED])


def first_copy_order(has_territorial_scope: bool) -> str:
    """SQL ORDER BY keys of the rows of a file deciding which copy of a uuid counts, the others
    being duplicates: the copy in the earliest part, and within a part the first by its grouped
    values, NULL first, so that every run and engine keeps the same copy (a part's rows are
    grouped before its duplicates are found: their line order is gone)."""
    return ", ".join(f"{column} NULLS FIRST" for column in _grouped_columns(has_territorial_scope).split(", "))


def inner_sql(*, has_territorial_scope: bool, table: str, ids: str = "") -> str:
    """First step, over the rows: each row's uuid checked (``row_reason``) and the rows counted
    per part and grouped columns; rows marked ``dup`` (a uuid seen before) are counted apart.
    ``ids`` adds an engine's own aggregate of the rows' ids."""
    keys = _grouped_columns(has_territorial_scope)
    return f"""
SELECT {keys}, {ROW_REASON} AS row_reason,
  SUM(1 - dup) AS statements, SUM(dup) AS duplicates,
  MIN(uuid) AS example_first, MAX(uuid) AS example_last{', ' + ids if ids else ''}
FROM {table}
GROUP BY {keys}, row_reason"""


def outer_sql(version: str, filters: Filters, *, has_territorial_scope: bool, table: str = "sor_groups") -> str:
    """Second step, over the groups of :func:`inner_sql`: each checked (``reason`` NULL when
    valid), marked ``kept`` when the filters keep it, and counted per part, platform, module
    and month. Rejected and filtered rows are counted too, so that every row read is accounted for."""
    sums = ",\n  ".join(f"SUM(CASE WHEN {condition} THEN statements ELSE 0 END) AS {name}"
                        for name, condition in {**MEASURES, **_content_measures()}.items())
    return f"""
SELECT source_part, platform_name AS platform, {_module_expression()} AS module,
  substr(application_date, 1, 7) AS month, {reject_expression(version, has_territorial_scope)} AS reason,
  CASE WHEN {_filter_expression(filters, has_territorial_scope)} THEN 1 ELSE 0 END AS kept,
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
    """The SQL the aggregation runs, for every version and layout: part of the cache key
    (the filters are keyed apart)."""
    return "\n".join([*(inner_sql(has_territorial_scope=scope, table="t") for scope in (True, False)),
                      *(deduplicate_sql(scope) for scope in (True, False)),
                      *(outer_sql(version, Filters(), has_territorial_scope=scope)
                        for version in VERSIONS for scope in (True, False))])


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


def _label(origin: str, example: str | None) -> str:
    if not isinstance(example, str):  # a row without uuid (NULL, or NaN once in pandas)
        return f"{origin}: a row without uuid"
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


BEYOND = 8  # columns past the header polars reads: a field in any of them makes a row too wide


def polars_columns(part: Pieces) -> Any:
    """The columns the SQL reads (:data:`READ_COLUMNS`) of a plain CSV part, read by polars
    piece by piece as an Arrow table; None, leaving the part to DuckDB's CSV reader and its
    PHP-aware fallback, unless the part is one PHP could have written and a strict RFC 4180
    reading takes whole: valid UTF-8, no PHP escape, no carriage return, as many rows as
    lines, and every row exactly as wide as the header. Polars does not say a row's width (it
    pads a short row and ignores fields past the columns it reads), so the part is read
    :data:`BEYOND` columns wider than its header, columns only a too-wide row fills (empty
    fields past the last are no fields to polars, as to DuckDB's reader and :func:`php_fields`;
    a row whose first eight extra fields are empty but a later one is not, is not seen), and a
    row whose last column is empty, as none in real dumps is, counts as short. Empty fields,
    quoted or not, are NULL, as DuckDB reads them.

    A quote that PHP would never write where it stands (inside an unquoted value, or text
    right after a closing quote) is not looked for: checking every quote costs more than
    polars saves. Polars reads such a line by toggling on each quote, DuckDB's fallback as
    Python's csv module does; both account for the line, but the values read from it can
    differ (a line RFC 4180 calls malformed has no one true reading). Run by the extraction
    threads (:func:`.sor_dumps.reading`)."""
    import polars as pl
    import pyarrow as pa

    columns = part.columns
    names = [f"column_{number}" for number in range(1, len(columns) + BEYOND + 1)]  # polars' own names
    named: dict[str, str] = {}
    for name, column in zip(names, columns):
        named.setdefault(column, name)
    wanted = [column for column in READ_COLUMNS if column in named]
    last, beyond = names[len(columns) - 1], names[len(columns):]
    tables = []
    for data, skip in part:
        if not _polars_may_read(part.check):  # (polars would refuse invalid UTF-8 itself: a read spared)
            return None
        try:
            frame = pl.read_csv(data, has_header=False, skip_rows=skip, schema=dict.fromkeys(names, pl.String),
                                missing_columns="insert", quote_char='"', raise_if_empty=True,
                                null_values=[""],  # a quoted empty field ("") too, as DuckDB reads it
                                columns=list(dict.fromkeys([*(named[column] for column in wanted), last, *beyond])))
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):  # malformed: DuckDB says how
            return None
        if frame[last].null_count() or any(frame[name].null_count() != frame.height for name in beyond):
            return None
        tables.append(frame.select([pl.col(named[column]).alias(column) for column in wanted])
                      .to_arrow(compat_level=pl.CompatLevel.newest()))
    # a field across lines reads as fewer rows than lines (every piece ends with a line)
    rows = part.check.rows
    if not _polars_may_read(part.check) or not rows or sum(table.num_rows for table in tables) != rows:
        return None
    return pa.concat_tables(tables)


def _polars_may_read(check: PartCheck) -> bool:
    return not (check.invalid_utf8 or check.php_escapes or check.carriage_returns)


DUCKDB_REGEXP_LIKE = "CREATE MACRO regexp_like(text, pattern) AS regexp_matches(text, pattern)"  # Spark's name
REJECTS = "rejects_table = 'sor_rejects', rejects_scan = 'sor_reject_scans'"


def duckdb_source(files: Sequence[Path], columns: Sequence[str], *, kind: str = "csv",
                  keep_rejects: bool = True) -> str:
    """DuckDB's table function reading ``files``, with each row's file in ``filename``. A CSV
    row that an RFC 4180 reading cannot take (a PHP ``\\"`` escape, invalid UTF-8 in a column
    read) is set aside in ``sor_rejects`` rather than failing the file; paths are SQL
    literals, quotes doubled."""
    paths = _quoted(str(file) for file in files)
    if kind == "parquet":
        return f"read_parquet([{paths}], filename = true)"
    # the header was checked already: no sniffing, every column text
    types = ", ".join(f"'{c}': 'VARCHAR'" for c in columns)
    rejects = f", store_rejects = true, {REJECTS}" if keep_rejects else ", ignore_errors = true"
    return (f"read_csv([{paths}], header = true, auto_detect = false, columns = {{{types}}}, "
            f"delim = ',', quote = '\"', escape = '\"', filename = true{rejects})")


def deduplicate_sql(has_territorial_scope: bool) -> str:
    """DuckDB's SQL finding a file's duplicates once all its groups are in ``sor_groups``: of
    the copies of a uuid, the first in :func:`first_copy_order` counts, as in Spark's window
    over the rows (whichever query, or reading, made its group), and each group's count of the
    others moves from its statements to its duplicates."""
    return f"""
CREATE OR REPLACE TEMP TABLE sor_ids AS SELECT gid, unnest(ids) AS id FROM sor_groups;
CREATE OR REPLACE TEMP TABLE sor_repeats AS
  SELECT gid, id FROM (
    SELECT gid, id, row_number() OVER (PARTITION BY id ORDER BY {first_copy_order(has_territorial_scope)}) AS nth
    FROM sor_ids JOIN sor_groups USING (gid)
    WHERE id IN (SELECT id FROM sor_ids WHERE id IS NOT NULL GROUP BY id HAVING count(*) > 1))
  WHERE nth > 1;
UPDATE sor_groups SET statements = sor_groups.statements - r.n, duplicates = sor_groups.duplicates + r.n
  FROM (SELECT gid, count(*) AS n FROM sor_repeats GROUP BY gid) r WHERE sor_groups.gid = r.gid;
"""


def _unreadable(result: FileResult, origin: str, reason: str, rows: int, example: str) -> None:
    """Rows read but not made into values (an unreadable line, lines an open quote swallowed),
    counted as rejected."""
    result.groups = pd.concat([result.groups, pd.DataFrame([{
        "source_part": origin, "origin": origin, "reason": reason, "kept": 0, "statements": rows, "duplicates": 0,
        **{c: 0 for c in measure_columns()[1:]}, "example_first": example, "example_last": example}])],
        ignore_index=True)
    result.record.rows_read += rows


INVALID_UTF8 = "invalid UTF-8 bytes replaced"
LOST = "lines swallowed by an unterminated quote"


def _check_part(result: FileResult, part: Part, read: int) -> None:
    """What the part's reading found, whichever engine read it: lines that are not valid UTF-8
    (the row kept, the engine having replaced or never read the bytes) noted under their
    reason; the rows an engine read held against the part's lines, lines that an unterminated
    quote swallowed into one value counted as rejected rather than lost."""
    check = part.verify()
    if check is None:
        return
    for index, line in enumerate(check.invalid_utf8_lines):
        _note(result.repaired, INVALID_UTF8, check.invalid_utf8 if index == 0 else 0, f"{part.origin}: line {line}")
    if check.rows == read:
        return
    if read > check.rows:
        raise SorError(f"{read:,} rows read from {check.rows:,} lines", file=part.origin)
    _unreadable(result, part.origin, LOST, check.rows - read, f"line count {check.rows:,}, rows read {read:,}")


def _read_as_php(part: Part, result: FileResult, numbers: set[int] | None = None) -> tuple[list[list[str]], int]:
    """Lines of a CSV part's file read as PHP wrote them (:func:`php_fields`): those numbered
    ``numbers`` (the header is line 1), or every line after the header. A line read is a row
    (with the part's path); a line that is not is counted as an unreadable row, and how many
    is returned. Read from the file, whole: DuckDB's own copy of a line it sets aside stops at
    10,000 characters, and a row with a long text is longer."""
    rows, unreadable, last = [], 0, max(numbers) if numbers else None
    with part.path.open("rb") as handle:
        handle.readline()  # the header, checked already
        for number, raw in enumerate(handle, 2):  # a binary file splits on "\n" only
            if numbers is not None and number not in numbers:
                if last is None or number > last:
                    break
                continue
            line = raw.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
            fields, how = php_fields(line, len(part.columns))
            if fields is None:
                _unreadable(result, part.origin, UNREADABLE, 1, f"line {number}")
                unreadable += 1
            else:
                rows.append([*fields, str(part.path)])
                if how:
                    _note(result.repaired, how, 1, f"{part.origin}: line {number}")
    return rows, unreadable


def _duckdb_fallback(connection: Any, batch: Sequence[Part], result: FileResult) -> tuple[pd.DataFrame | None,
                                                                                           dict[str, int]]:
    """The rows DuckDB set aside, read the way PHP wrote them (:func:`_read_as_php`): those read
    are returned as a frame of text columns, those that cannot be are counted as rejected
    (and returned per part path)."""
    found = connection.execute("SELECT DISTINCT s.file_path, e.line FROM sor_rejects e "
                               "JOIN sor_reject_scans s USING (scan_id, file_id)").fetchall()
    connection.execute("DROP TABLE IF EXISTS sor_rejects; DROP TABLE IF EXISTS sor_reject_scans")
    numbers: dict[str, set[int]] = {}
    for path, line in found:
        numbers.setdefault(path, set()).add(int(line))
    rows, unreadable = [], {}
    for part in batch:
        if str(part.path) in numbers:
            read, unreadable[str(part.path)] = _read_as_php(part, result, numbers[str(part.path)])
            rows += read
    return (pd.DataFrame(rows, columns=[*batch[0].columns, "filename"]) if rows else None), unreadable


LINE_BY_LINE = "read line by line (DuckDB's CSV reader failed on the part)"


def _batch_rows(connection: Any, batch: Sequence[Part], columns: list[str],
                line_by_line: FileResult | None = None) -> tuple[str, list[Part], dict[str, int]]:
    """SQL over the rows of a batch (the columns the SQL reads, as text, ``source_part`` and
    ``dup``): the parts polars read, as Arrow tables registered with DuckDB, and the others
    read by DuckDB itself, returned apart; or, given ``line_by_line`` (the file's result), read
    line by line in Python (:func:`_read_as_php`), with their unreadable lines per part path."""
    wanted = [column for column in READ_COLUMNS if column in columns]
    views, on_disk, unreadable = [], [], {}
    for part in batch:
        check = part.verify()  # written whole and checked before DuckDB reads it
        if check is None or check.loaded is None:
            on_disk.append(part)
            continue
        name = f"sor_loaded_{len(views)}"
        connection.register(name, check.loaded)
        views.append(view_sql(name, wanted, part_column=_quoted([str(part.path)])))
    if on_disk and line_by_line is not None:
        rows = []
        for part in on_disk:
            read, unreadable[str(part.path)] = _read_as_php(part, line_by_line)
            rows += read
        connection.register("sor_lines", pd.DataFrame(rows, columns=[*columns, "filename"], dtype=object))
        views.append(view_sql("sor_lines", wanted, part_column="filename"))
    elif on_disk:
        source = duckdb_source([part.path for part in on_disk], columns, kind=on_disk[0].kind)
        views.append(view_sql(source, wanted, part_column="filename"))
    return "(" + " UNION ALL ".join(views) + ")", on_disk, unreadable


def _duckdb_file(connection: Any, parts: Iterable[Part], filters: Filters, record: FileRecord,
                 batch_parts: int) -> FileResult:
    """One file's result: its parts grouped batch by batch into ``sor_groups`` (``gid`` numbers
    them), then its duplicates found once over the whole file's uuids
    (:func:`deduplicate_sql`) and its groups checked and counted."""
    import duckdb

    result = FileResult(record, pd.DataFrame(), engine_version("duckdb"))
    ids, origins, scope = "list(TRY_CAST(uuid AS UUID)) AS ids", {}, False
    connection.execute("DROP TABLE IF EXISTS sor_groups")
    for batch in batches(parts, batch_parts):
        columns, scope = batch[0].columns, "territorial_scope" in batch[0].columns
        origins.update({str(part.path): part.origin for part in batch})

        def add(rows: str) -> None:  # the batch's groups, numbered after those of the batches before
            first = not connection.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'sor_groups'"
                                           ).fetchone()[0]
            connection.execute(
                ("CREATE TEMP TABLE sor_groups AS SELECT 0" if first else
                 "INSERT INTO sor_groups SELECT (SELECT coalesce(max(gid), 0) FROM sor_groups)")
                + " + row_number() OVER () AS gid, * FROM ("
                + inner_sql(has_territorial_scope=scope, ids=ids, table=rows) + ")")

        try:
            rows, on_disk, unreadable = _batch_rows(connection, batch, columns)
            try:
                add(rows)
            except duckdb.Error as exc:
                if not on_disk or on_disk[0].kind == "parquet":
                    raise
                problem = _duckdb_problem(exc, on_disk)
                connection.execute("DROP TABLE IF EXISTS sor_rejects; DROP TABLE IF EXISTS sor_reject_scans")
                rows, on_disk, unreadable = _batch_rows(connection, batch, columns, line_by_line=result)
                add(rows)
                for part in on_disk:  # how, and why, among what was repaired
                    _note(result.repaired, LINE_BY_LINE, part.verify().rows - unreadable[str(part.path)],
                          f"{part.origin}: {problem}")
                on_disk = []  # read already: nothing set aside to read again
            for name in ("sor_lines", *(f"sor_loaded_{index}" for index in range(len(batch)))):
                connection.unregister(name)
            if on_disk and batch[0].kind != "parquet":
                fallback, unreadable = _duckdb_fallback(connection, on_disk, result)
                if fallback is not None:
                    connection.register("sor_fallback", fallback)
                    add("(" + view_sql("sor_fallback", columns, part_column="filename") + ")")
                    connection.unregister("sor_fallback")
            read = dict(connection.execute(
                f"SELECT source_part, SUM(statements) FROM sor_groups WHERE source_part IN "
                f"({_quoted(str(part.path) for part in batch)}) GROUP BY 1").fetchall())
        except duckdb.Error as exc:
            culprit = next((part for part in batch if f"file = {part.path}" in str(exc)), batch[0])
            raise SorError(f"unreadable ({_duckdb_problem(exc, batch)})", file=culprit.origin) from None
        record.rows_read += sum(int(n) for n in read.values())
        for part in batch:
            _check_part(result, part, int(read.get(str(part.path), 0)) + unreadable.get(str(part.path), 0))
            part.release()
    connection.execute(deduplicate_sql(scope))
    for source, uuid in connection.execute(
            "SELECT g.source_part, CAST(r.id AS VARCHAR) FROM sor_repeats r JOIN sor_groups g USING (gid) "
            f"ORDER BY r.id LIMIT {MAX_EXAMPLES}").fetchall():
        result.duplicate_examples.append(f"{origins.get(source, source)}: uuid {uuid}")
    groups = connection.execute(outer_sql(record.schema_version, filters, has_territorial_scope=scope)).df()
    result.groups = pd.concat([result.groups, groups.assign(origin=groups["source_part"].map(origins))],
                              ignore_index=True)
    return result


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


def duckdb_files(files: Sequence[Path], filters: Filters = Filters(), *, memory_limit: str = "512MB",
                 threads: int | None = None, batch_parts: int = 2,
                 digests: Mapping[Path, str] | None = None) -> list[FileResult]:
    """Each file's result with DuckDB, ``batch_parts`` CSV parts per query: DuckDB streams each
    batch, so memory is bounded by ``memory_limit`` (and the uuids of the file read so far, 16
    bytes each), not by the dump; small batches let the next parts be extracted while DuckDB
    reads, and extracted parts are removed as soon as they are read. ``digests``: the files'
    SHA-256 when the caller has them (see :func:`.sor_dumps.reading`)."""
    connection = _duckdb_connection(memory_limit, threads)
    with reading(files, digests, polars_columns) as per_file:
        return [_duckdb_file(connection, parts, filters, record, batch_parts) for record, parts in per_file]


def aggregate_duckdb(path: str | Path, filters: Filters = Filters(), **options: Any) -> SorAggregate:
    """Aggregate a dump with DuckDB, never cached (see :func:`duckdb_files` for ``options``)."""
    return _finish(duckdb_files(discover(path), filters, **options), filters)


def _collect(frame: Any) -> pd.DataFrame:
    """A small Spark result as pandas, without Spark's own pandas conversion."""
    return pd.DataFrame([row.asDict() for row in frame.collect()], columns=frame.columns)


CORRUPT = "_corrupt_record"


SPARK_LINE_BY_LINE = "read line by line (a carriage return, where Spark's CSV reader ends a line)"


def _spark_part(session: Any, part: Part, result: FileResult) -> tuple[Any, int]:
    """One part as a Spark frame of text columns with ``source_part``, and the number of its
    lines found unreadable. A CSV row that Spark's RFC 4180 reading cannot split into the
    header's columns is read again as PHP wrote it; a part with a carriage return is read line
    by line as PHP wrote it (:func:`_read_as_php`)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    check = part.verify()  # written whole and checked before Spark reads it
    if part.kind == "parquet":
        return session.read.parquet(str(part.path)).withColumn("source_part", F.lit(part.origin)), 0
    schema_ = StructType([StructField(c, StringType()) for c in [*part.columns, CORRUPT]])
    if check.carriage_returns:  # where Spark's reader would end a line too: read as PHP wrote it
        lines, unreadable = _read_as_php(part, result)
        _note(result.repaired, SPARK_LINE_BY_LINE, len(lines), part.origin)
        frame = session.createDataFrame([line[:-1] for line in lines], StructType(list(schema_)[:-1]))
        return frame.withColumn("source_part", F.lit(part.origin)), unreadable
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


def _spark_duplicate(has_territorial_scope: bool) -> str:
    """SQL: 1 for a row whose uuid a row before it holds (:func:`first_copy_order`)."""
    return (f"CASE WHEN regexp_like(uuid, '{UUID_PATTERN}') AND row_number() OVER (PARTITION BY uuid "
            f"ORDER BY {first_copy_order(has_territorial_scope)}) > 1 THEN 1 ELSE 0 END")


def spark_files(files: Sequence[Path], filters: Filters = Filters(), *, spark: Any = None,
                digests: Mapping[Path, str] | None = None) -> list[FileResult]:
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
    with reading(files, digests) as per_file:
        for record, parts in per_file:
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
            scope = "territorial_scope" in columns
            session.sql(view_sql("sor_source", columns, part_column="source_part", dup=_spark_duplicate(scope))
                        ).createOrReplaceTempView("sor_rows")
            inner = session.sql(inner_sql(has_territorial_scope=scope, table="sor_rows")).cache()
            inner.createOrReplaceTempView("sor_groups")
            per_part = {row[0]: int(row[1]) for row in inner.groupBy("source_part").agg(
                F.sum(F.col("statements") + F.col("duplicates"))).collect()}
            record.rows_read += sum(per_part.values())
            for part in read:
                _check_part(result, part, per_part.get(part.origin, 0) + unreadable[part.origin])
            duplicates = session.sql("SELECT source_part, uuid FROM (SELECT source_part, uuid, "
                                     f"{_spark_duplicate(scope)} AS dup FROM sor_source) WHERE dup = 1 ORDER BY uuid "
                                     "LIMIT 3")
            result.duplicate_examples = [f"{row['source_part']}: uuid {row['uuid']}" for row in duplicates.collect()]
            groups = _collect(session.sql(outer_sql(record.schema_version, filters, has_territorial_scope=scope)))
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
    """The engine and the versions of what reads the rows (DuckDB has polars read clean parts)."""
    from importlib.metadata import version

    if engine == "duckdb":
        return f"duckdb {version('duckdb')}, polars {version('polars')}"
    return f"{engine} {version('pyspark')}"


def cache_key(content_sha256: str, filters: Filters, engine: str) -> str:
    """What determines one file's result: its content (its SHA-256), the filters, the engine
    and its version, the reader's version, the mapping, schema and enumeration files, and the
    SQL text itself (so a change of logic never reuses an old result)."""
    digest = hashlib.sha256()
    for text in [content_sha256, json.dumps(filters.describe(), sort_keys=True), engine_version(engine),
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
    # each file hashed once: for its key here, and for its record by the engine
    digests = {file: sha256_file(file) for file in files} if folder is not None else {}
    keys = {file: cache_key(digests[file], filters, engine) for file in digests}
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
    computed = iter(ENGINES[engine](missing, filters, digests=digests) if missing else [])
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
