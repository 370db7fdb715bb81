"""Statements of reasons on real rows written by the Commission's export, put into the
published nested layout in a temporary folder; every count is checked against an independent
count made here with Python's csv module."""

from __future__ import annotations

import collections
import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from dsarisk.sources.sor import Filters, SorError, aggregate, aggregate_duckdb, aggregate_spark

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
    assert set(result.table["month"]) == {"2024-03"} or set(result.table["month"]) >= {"2024-03"}


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


@needs_real
def test_php_escapes_and_invalid_utf8_keep_every_row(tmp_path):
    def edit(part: str, data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[3], lines[7] = _inject_escape(lines[3]), _inject_bad_bytes(lines[7])
        return b"\n".join(lines)

    edited = {part: edit(part, real_part(part)) for part in all_parts()}
    assemble(tmp_path / "dump", lambda name, data: edited[name])
    expected, rows, duplicates = independent_counts(edited)
    result = aggregate_duckdb(tmp_path / "dump", Filters(eu_only=False))
    p = result.provenance
    assert (p["rows_read"], p["rows_duplicate"], p["rows_rejected"]) == (rows, duplicates, 0), p
    assert result.table.groupby("platform")["statements"].sum().to_dict() == dict(expected)
    assert p["repaired_by_reason"]['read with PHP\'s \\" escape']["rows"] == 3
    assert p["repaired_by_reason"]["invalid UTF-8 bytes replaced"]["rows"] == 3


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
