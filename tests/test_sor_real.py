"""Statements of reasons on real rows written by the Commission's export, put into the
published nested layout in a temporary folder; every count is checked against an independent
count made here with Python's csv module."""

from __future__ import annotations

import collections
import csv
import io
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from dsarisk.sources.sor import Filters, aggregate_duckdb, aggregate_spark
from dsarisk.sources.sor_schema import headings
from dsarisk.sources.sor_synth import day_frame, php_csv

PARTS = {  # inner zip -> its CSV parts, as in the real 2024-03-14 dump
    "sor-global-2024-03-14-full-00000.csv.zip": ["sor-global-2024-03-14-full-00000-00000.csv",
                                                 "sor-global-2024-03-14-full-00000-00001.csv"],
    "sor-global-2024-03-14-full-00001.csv.zip": ["sor-global-2024-03-14-full-00001-00001.csv"],
}
DUPLICATED = "03b1b1c9-a860-4bf6-afff-0d8f0d944871"  # the first two rows of part 00000-00000


def real_dir() -> Path | None:
    """``shared/data/sor-real`` beside the repository (or above the test file)."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "data" / "sor-real"
        if candidate.is_dir():
            return candidate
    return None


REAL = real_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="real rows not found: no shared/data/sor-real above the repo")


def real_part(name: str) -> bytes:
    """A real part as published: the cut left a final newline a real part does not have."""
    return (REAL / name).read_bytes().rstrip(b"\n")


def assemble(folder: Path, edit: Callable[[str, bytes], bytes] = lambda name, data: data,
             outer: str = "sor-global-2024-03-14-full.zip") -> Path:
    """The real rows in the published layout: a stored outer zip of deflated inner zips of
    CSV parts. ``edit`` may change a part's bytes first."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / outer, "w", zipfile.ZIP_STORED) as archive:
        for inner_name, parts in PARTS.items():
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as inner:
                for part in parts:
                    inner.writestr(part, edit(part, real_part(part)))
            archive.writestr(inner_name, buffer.getvalue())
    return folder / outer


def independent_counts(parts: dict[str, bytes]) -> tuple[collections.Counter, int, int]:
    """Per platform, statements with distinct uuids; rows; duplicates. Read with Python's csv
    module and PHP's escape character (a ``\\"`` inside a quoted field does not close it)."""
    seen, per_platform, rows = set(), collections.Counter(), 0
    for data in parts.values():
        reader = csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace")), escapechar="\\", doublequote=True)
        for row in reader:
            rows += 1
            if row["uuid"] not in seen:
                seen.add(row["uuid"])
                per_platform[row["platform_name"]] += 1
    return per_platform, rows, rows - len(seen)


def all_parts() -> dict[str, bytes]:
    return {part: real_part(part) for parts in PARTS.values() for part in parts}


@pytest.fixture(scope="module")
def real_dump(tmp_path_factory) -> Path:
    if REAL is None:
        pytest.skip("real rows not found")
    return assemble(tmp_path_factory.mktemp("real")).parent


@needs_real
def test_real_rows_are_read_and_counted_per_platform(real_dump):
    result = aggregate_duckdb(real_dump, Filters(eu_only=False))
    expected, rows, duplicates = independent_counts(all_parts())
    assert rows == 150 and duplicates == 1
    counted = result.table.groupby("platform")["statements"].sum().to_dict()
    p = result.provenance
    assert p["rows_read"] == 150 and p["rows_duplicate"] == 1
    assert p["rejected_by_reason"] == {}, p["rejected_by_reason"]
    assert counted == dict(expected)
    assert p["duplicate_examples"] == [
        f"sor-global-2024-03-14-full.zip!sor-global-2024-03-14-full-00000.csv.zip!"
        f"sor-global-2024-03-14-full-00000-00000.csv: uuid {DUPLICATED}"]
    assert [(f["schema_version"], f["dump"], f["parts"]) for f in p["files"]] == [("v1", "full", 3)]
    months = {row["application_date"][:7] for data in all_parts().values()
              for row in csv.DictReader(io.StringIO(data.decode()), escapechar="\\")}
    assert set(result.table["month"]) == months


@needs_real
def test_dates_with_a_time_filter_by_day(real_dump):
    days = collections.Counter()
    for data in all_parts().values():
        for row in csv.DictReader(io.StringIO(data.decode()), escapechar="\\"):
            days[row["application_date"][:10]] += 1
    day, _ = days.most_common(1)[0]
    one_day = aggregate_duckdb(real_dump, Filters(eu_only=False, start=pd.Timestamp(day).date(),
                                                  end=pd.Timestamp(day).date()))
    p = one_day.provenance
    assert p["rows_aggregated"] + p["rows_filtered_out"] + p["rows_duplicate"] == 150
    assert p["rows_aggregated"] in (days[day], days[day] - 1)  # the duplicate may fall on that day
    assert p["rows_aggregated"] > 0


def _edit(part: str, data: bytes) -> bytes:
    """A PHP ``\\"`` escape in the part's fourth line, invalid bytes in its eighth."""
    lines = data.split(b"\n")
    lines[3], lines[7] = _inject_escape(lines[3]), _inject_bad_bytes(lines[7])
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def edited_dump(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    if REAL is None:
        pytest.skip("real rows not found")
    edited = {part: _edit(part, real_part(part)) for part in all_parts()}
    return assemble(tmp_path_factory.mktemp("edited") / "dump", lambda name, data: edited[name]).parent, edited


@needs_real
def test_php_escapes_and_invalid_utf8_keep_every_row(edited_dump):
    folder, edited = edited_dump
    expected, rows, duplicates = independent_counts(edited)
    result = aggregate_duckdb(folder, Filters(eu_only=False))
    p = result.provenance
    assert (p["rows_read"], p["rows_duplicate"], p["rows_rejected"]) == (rows, duplicates, 0), p
    assert result.table.groupby("platform")["statements"].sum().to_dict() == dict(expected)
    assert p["repaired_by_reason"]['read with PHP\'s \\" escape']["rows"] == 3
    assert p["repaired_by_reason"]["invalid UTF-8 bytes replaced"] == {"rows": 3, "examples": [
        f"sor-global-2024-03-14-full.zip!{inner}!{part}: line 8" for inner, parts in PARTS.items() for part in parts]}


def _inject_escape(line: bytes) -> bytes:
    """Put ``\\", `` inside the row's first quoted text field longer than 20 characters."""
    reader_fields = next(csv.reader([line.decode()]))
    text = next(f for f in reader_fields if len(f) > 20 and " " in f)
    quoted = text.replace('"', '""')
    return line.replace(f'"{quoted}"'.encode(), f'"{quoted[:10]}\\", {quoted[10:]}"'.encode(), 1)


def _inject_bad_bytes(line: bytes) -> bytes:
    """Put two invalid UTF-8 bytes inside the row's first long quoted text field."""
    text = next(f for f in next(csv.reader([line.decode()])) if len(f) > 20 and " " in f)
    quoted = text.replace('"', '""').encode()
    return line.replace(quoted, quoted[:5] + b"\xff\xfe" + quoted[5:], 1)


# -- the generator writes what the Commission writes -----------------------------------------
DATE_COLUMNS = ("end_date_visibility_restriction", "end_date_monetary_restriction", "end_date_service_restriction",
                "end_date_account_restriction", "content_date", "application_date", "created_at")


@needs_real
@pytest.mark.parametrize("part", list(all_parts()) if REAL else [])
def test_the_generator_quotes_real_values_as_the_export_did(part):
    """Each real part, read and written again by the generator's writer, gives the same bytes."""
    data = real_part(part)
    rows = list(csv.reader(io.StringIO(data.decode()), escapechar="\\"))
    frame = pd.DataFrame(rows[1:], columns=rows[0], dtype=object)
    assert php_csv(frame).encode() == data


@needs_real
def test_generated_rows_look_like_real_rows(tmp_path):
    real = pd.read_csv(io.BytesIO(real_part("sor-global-2024-03-14-full-00000-00000.csv")), dtype=str,
                       keep_default_na=False, escapechar="\\")
    made = day_frame(pd.Timestamp("2024-03-14").date(), 2_000, seed=4)
    assert list(made.columns) == list(real.columns) == headings("v1", "full")
    assert list(day_frame(pd.Timestamp("2025-07-01").date(), 5, seed=4).columns) == headings("v2", "full")
    assert list(day_frame(pd.Timestamp("2024-03-14").date(), 5, seed=4, light=True).columns) == headings("v1", "light")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    for frame in (real, made):
        for column in DATE_COLUMNS:
            values = frame[column][frame[column] != ""]
            assert values.str.fullmatch(stamp).all(), column
        assert set(frame["automated_detection"]) <= {"Yes", "No"}
    text = php_csv(made).encode()
    assert 900 < len(text) / len(made) < 1_400  # rows of realistic length (real ones: about 1.1 KB)
    assert b'"[""' in text and b",[]," in text  # arrays quoted with doubled quotes; a bare empty one


@needs_real
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark path not run: no java on PATH")
def test_duckdb_and_spark_agree_on_real_rows(real_dump, edited_dump):
    """On the real rows, and on them with PHP escapes and invalid bytes (which Java's decoder
    replaces silently: the part's scan counts them for Spark as for DuckDB)."""
    pytest.importorskip("pyspark")
    for folder in (real_dump, edited_dump[0]):
        duck, spark = aggregate_duckdb(folder), aggregate_spark(folder)
        pd.testing.assert_frame_equal(duck.table, spark.table, check_dtype=False)
        for key in ("rows_read", "rows_aggregated", "rows_rejected", "rows_filtered_out", "rows_duplicate",
                    "duplicate_examples", "rejected_by_reason"):
            assert duck.provenance[key] == spark.provenance[key], key
        assert ({reason: entry["rows"] for reason, entry in duck.provenance["repaired_by_reason"].items()}
                == {reason: entry["rows"] for reason, entry in spark.provenance["repaired_by_reason"].items()})
        assert duck.provenance["rows_duplicate"] == 1 and duck.provenance["rows_read"] == 150
    assert spark.provenance["repaired_by_reason"]["invalid UTF-8 bytes replaced"]["rows"] == 3
