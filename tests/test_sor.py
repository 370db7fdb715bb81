"""Statements of reasons: the dump layouts, both schema versions, rejections, duplicates,
integrity, the cache, both engines. Every test here runs the engines itself (no cache)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import itertools
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from unittest import mock
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dsarisk.sources.sor as sor
import dsarisk.sources.sor_dumps as sor_dumps
import dsarisk.sources.sor_synth as sor_synth
from dsarisk.cli import main
from dsarisk.hashing import sha256_file
from dsarisk.inputs import load_year
from dsarisk.paths import PROJECT_ROOT
from dsarisk.sources.sor import (FileRecord, FileResult, Filters, SorError, aggregate, aggregate_duckdb,
                                 aggregate_spark, polars_columns)
from dsarisk.sources.sor_dumps import _Scanner, reading
from dsarisk.sources.sor_synth import Rates, day_frame, encode_part, php_csv, synthesize

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from sor_baseline import aggregate_pandas  # noqa: E402  (the benchmark's baseline is the oracle)

RATES = Rates(malformed=0.01, duplicate=0.01, escape=0.005, bad_bytes=0.005)


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    """Four days across the switch to schema version 2, several inner zips and parts per day."""
    folder = tmp_path_factory.mktemp("dump")
    synthesize(folder, rows=6_000, days=4, part_rows=500, inner_rows=1_000, rates=RATES)
    return folder


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _write(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_part(php_csv(frame)))
    return path


def test_generator_is_deterministic_and_faithful_to_the_layout(dump, tmp_path):
    synthesize(tmp_path, rows=6_000, days=4, part_rows=500, inner_rows=1_000, rates=RATES)
    assert _sha(tmp_path) == _sha(dump)
    outer = dump / "sor-global-2025-06-29-full.zip"
    assert (dump / "sor-global-2025-06-29-full.zip.sha1").read_text().split()[0] == \
        hashlib.sha1(outer.read_bytes()).hexdigest()
    with zipfile.ZipFile(outer) as archive:
        assert archive.namelist() == ["sor-global-2025-06-29-full-00000.csv.zip",
                                      "sor-global-2025-06-29-full-00001.csv.zip"]
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
        with zipfile.ZipFile(io.BytesIO(archive.read("sor-global-2025-06-29-full-00000.csv.zip"))) as inner:
            part = inner.read("sor-global-2025-06-29-full-00000-00000.csv")
    assert not part.endswith(b"\n") and part.count(b"\n") == 500  # a header, 500 rows, no final newline


def test_duckdb_matches_the_pandas_oracle_and_accounts_for_every_row(dump):
    result = aggregate_duckdb(dump)
    pd.testing.assert_frame_equal(result.table, aggregate_pandas(dump), check_dtype=False)
    p = result.provenance
    assert p["rows_read"] == 6_000
    assert p["rows_duplicate"] > 25 and p["duplicate_examples"]
    assert set(p["rejected_by_reason"]) == {"malformed application_date", "malformed or unknown content_type array (v1)",
                                            "malformed or unknown content_type array (v2)", "unknown category (v1)",
                                            "unknown category (v2)"}
    example = p["rejected_by_reason"]["unknown category (v1)"]["examples"][0]
    assert ".zip!" in example and ".csv: uuid " in example  # file, part and row named
    assert set(p["repaired_by_reason"]) == {"invalid UTF-8 bytes replaced", 'read with PHP\'s \\" escape'}
    assert {f["schema_version"] for f in p["files"]} == {"v1", "v2"}
    assert all(f["schema_version"] == f["schema_by_date"] for f in p["files"])  # v1 before 2025-07-01, v2 from it
    assert {f["layout"] for f in p["files"]} == {"nested zip"}


def test_the_accounting_check_stops_a_run_that_loses_rows(dump, monkeypatch):
    """Rows lost between reading and the table (here: the groups of one platform dropped
    after they were counted as read) stop the run instead of going unnoticed."""
    original = sor.outer_sql
    monkeypatch.setattr(sor, "outer_sql", lambda *args, **kw: original(*args, **kw).replace(
        "FROM sor_groups", "FROM sor_groups WHERE platform_name <> 'Small Forum'"))
    with pytest.raises(SorError, match=r"1,500 rows read but 1,[0-9]{3} accounted for"):
        aggregate_duckdb(dump / "sor-global-2025-06-29-full.zip")


def test_the_copy_of_a_uuid_that_counts_is_the_one_in_the_earliest_part(tmp_path):
    """Two parts read in one batch share a uuid under different platforms: the copy in the
    first part counts, in every run (before, which copy counted varied from run to run)."""
    first = day_frame(dt.date(2025, 7, 2), 20, seed=1, rates=Rates(0, 0, 0, 0))
    second = day_frame(dt.date(2025, 7, 2), 20, seed=2, rates=Rates(0, 0, 0, 0))
    second.loc[0, "uuid"] = first.loc[5, "uuid"]
    first.loc[5, "platform_name"], second.loc[0, "platform_name"] = "Platform A", "Platform B"
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, frame in enumerate((first, second)):
            archive.writestr(f"d-00000-{index:05d}.csv", encode_part(php_csv(frame)))
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("d-00000.csv.zip", inner.getvalue())
    for _ in range(5):
        result = aggregate_duckdb(tmp_path / "d.zip")
        platforms = result.table.groupby("platform")["statements"].sum()
        assert (platforms.get("Platform A", 0), platforms.get("Platform B", 0)) == (1, 0)
        assert result.provenance["duplicate_examples"] == [
            f"d.zip!d-00000.csv.zip!d-00000-00001.csv: uuid {first.loc[5, 'uuid']}"]


@pytest.mark.parametrize("polars", [True, False], ids=["with polars", "DuckDB's reader alone"])
def test_the_earliest_copy_counts_even_when_its_row_is_read_again_as_php_wrote_it(tmp_path, monkeypatch, polars):
    """The first part's copy of a uuid has a PHP escape (DuckDB sets it aside and it is read
    again, after the rest of the batch) and an unknown category; the second part's copy is
    clean. The first copy counts, rejected, and the second is its duplicate, in either reading
    (before, the copy read again lost to the later part's, and 8 rows were aggregated)."""
    clean = day_frame(dt.date(2025, 7, 2), 8, seed=1, rates=Rates(0, 0, 0, 0))
    damaged = clean.copy()
    damaged.loc[0, "decision_facts"], damaged.loc[0, "category"] = 'He said \\"no\\"', "STATEMENT_CATEGORY_NONE"
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for index, frame in enumerate((damaged, clean)):
            archive.writestr(f"d-{index:05d}.csv", encode_part(php_csv(frame)))
    if not polars:
        _without_polars(monkeypatch)
    provenance = aggregate_duckdb(tmp_path / "d.zip").provenance
    assert [provenance[key] for key in ("rows_read", "rows_aggregated", "rows_rejected", "rows_duplicate")] == [
        16, 7, 1, 8]
    assert provenance["repaired_by_reason"][sor_dumps.PHP_ESCAPE]["rows"] == 1


def test_dump_files_of_one_name_in_two_folders_are_both_read(tmp_path):
    """Two copies of a day in two folders, with PHP escapes (parts DuckDB reads from disk):
    each file's parts are extracted under names of its own (before, the second file's parts
    took the first's names, one was removed under the other, and the run crashed)."""
    for folder in ("a", "b"):
        synthesize(tmp_path / folder, rows=1_000, days=1, part_rows=250, inner_rows=500,
                   rates=Rates(malformed=0, duplicate=0, escape=0.01, bad_bytes=0))
    provenance = aggregate_duckdb(tmp_path).provenance
    assert provenance["rows_read"] == 2_000 and provenance["rows_aggregated"] + provenance["rows_rejected"] == 2_000


def test_a_row_without_platform_is_rejected_not_lost(tmp_path):
    frame = day_frame(dt.date(2024, 3, 14), 40, seed=2, rates=Rates(0, 0, 0, 0))
    frame.loc[3, "platform_name"] = ""
    result = aggregate_duckdb(_write(tmp_path / "p.csv", frame))
    assert result.provenance["rejected_by_reason"]["missing platform_name"]["rows"] == 1
    assert result.provenance["rows_aggregated"] + result.provenance["rows_filtered_out"] == 39


def test_a_row_without_uuid_is_rejected_and_named_by_its_part(tmp_path):
    frame = day_frame(dt.date(2024, 3, 14), 40, seed=2, rates=Rates(0, 0, 0, 0))
    frame.loc[3, "uuid"] = ""
    result = aggregate_duckdb(_write(tmp_path / "p.csv", frame))
    assert result.provenance["rejected_by_reason"]["malformed uuid"] == {"rows": 1,
                                                                        "examples": ["p.csv: a row without uuid"]}


def test_both_category_versions_map_to_modules_and_are_checked_per_version(dump, tmp_path):
    table = aggregate_duckdb(dump).table
    assert set(table["month"]) == {"2025-06", "2025-07"}
    products = table[table["module"] == "prohibited-controlled-products"].groupby("month")["statements"].sum()
    assert products["2025-06"] > 0 and products["2025-07"] > 0  # UNSAFE_AND_ILLEGAL -> UNSAFE_AND_PROHIBITED
    frame = day_frame(dt.date(2025, 7, 2), 20, seed=1, rates=Rates(0, 0, 0, 0))
    frame.loc[0, "category"] = "STATEMENT_CATEGORY_PORNOGRAPHY_OR_SEXUALIZED_CONTENT"  # version 1 only
    result = aggregate_duckdb(_write(tmp_path / "v2.csv", frame))
    assert result.provenance["rejected_by_reason"]["unknown category (v2)"]["rows"] == 1


def test_filters(dump):
    filters = Filters(platforms=("App Store",), start=dt.date(2025, 7, 1), end=dt.date(2025, 7, 1))
    result = aggregate_duckdb(dump, filters)
    assert set(result.table["platform"]) == {"App Store"} and set(result.table["month"]) == {"2025-07"}
    pd.testing.assert_frame_equal(result.table, aggregate_pandas(dump, filters), check_dtype=False)
    assert result.provenance["filters"]["platforms"] == ["App Store"]


def test_every_format_gives_the_same_aggregate(tmp_path):
    frame = day_frame(dt.date(2025, 7, 2), 3_000, seed=5, rates=Rates(0.01, 0, 0, 0))
    plain = _write(tmp_path / "plain" / "sor.csv", frame)
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "sor.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(plain, "sor.csv")
    nested = {}
    for how, compression in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
        nested[how] = tmp_path / f"nested {how}"  # published stored (read in place), else spooled to disk
        nested[how].mkdir()
        with zipfile.ZipFile(nested[how] / "sor.zip", "w", compression) as outer:
            outer.write(zipped / "sor.csv.zip", "sor-00000.csv.zip")
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet / "sor.parquet")
    results = [aggregate_duckdb(folder).table for folder in (plain.parent, zipped, *nested.values(), parquet)]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)
    assert len(results[0]) > 5


def test_light_dump_and_territorial_scope(tmp_path):
    light = day_frame(dt.date(2025, 7, 2), 2_000, seed=1, light=True, rates=Rates(0, 0, 0, 0))
    result = aggregate_duckdb(_write(tmp_path / "light.csv", light))
    record = result.provenance["files"][0]
    assert (record["dump"], record["schema_version"]) == ("light", "v2")
    assert record["territorial_filter"].startswith("not applicable")
    assert result.provenance["rows_aggregated"] == 2_000
    full = day_frame(dt.date(2025, 7, 2), 10, seed=1, rates=Rates(0, 0, 0, 0))
    full.loc[0:3, "territorial_scope"] = "[]"
    _write(tmp_path / "scope" / "scope.csv", full)
    eu = aggregate_duckdb(tmp_path / "scope")
    anywhere = aggregate_duckdb(tmp_path / "scope", Filters(eu_only=False))
    assert (eu.provenance["rows_filtered_out"], anywhere.provenance["rows_aggregated"]) == (4, 10)


def test_zipped_parts_reach_the_engine_as_plain_csv_read_once(dump, tmp_path):
    """Each part held in an archive (nested or not) is inflated once, by the background
    thread, into a plain CSV carrying the part's header; its check counts its rows as lines.
    On leaving, the extracted copies are gone."""
    with zipfile.ZipFile(tmp_path / "top.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("top.csv", encode_part(php_csv(day_frame(dt.date(2025, 7, 2), 40, seed=2))))
    seen = {}
    with reading([dump / "sor-global-2025-06-29-full.zip", tmp_path / "top.zip"]) as per_file:
        for record, parts in per_file:
            for part in parts:
                check = part.verify()
                with part.path.open(encoding="utf-8", errors="replace", newline="") as text:
                    assert next(csv.reader(text)) == part.columns
                    assert check.rows == sum(1 for _ in text)
                seen[part.origin] = part.path
                part.release()
            assert record.parts == sum(1 for origin in seen if origin.startswith(record.name))
    assert {origin.split("!")[0] for origin in seen} == {"sor-global-2025-06-29-full.zip", "top.zip"}
    assert len(seen) > 3 and not any(path.exists() for path in seen.values())
    assert not any(path.parent.exists() for path in seen.values()), "the extraction folder is removed"


@given(st.lists(st.sampled_from([b"plain text", "é€😀".encode(), b"\xff\xfe", b"\n", b"\xe2\x82", b",", b"\\", b'"',
                                  b"\r"]), max_size=40),
       st.lists(st.integers(1, 12), min_size=1, max_size=8))
def test_the_scan_finds_what_a_line_by_line_reading_finds_across_chunk_boundaries(pieces, cuts):
    """The background thread's scan, fed in chunks cut anywhere (a character, a line, a ``\\"``
) across two chunks), finds what reading the whole part line by
    line finds: lines, invalid UTF-8, PHP escapes and carriage returns."""
    data = b"header\n" + b"".join(pieces)
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    invalid = [number for number, line in enumerate(lines, 1) if not _decodes(line)]
    scanner, start = _Scanner(), 0
    for size in itertools.cycle(cuts):
        if start >= len(data):
            break
        scanner.add(data[start:start + size])
        start += size
    check = scanner.finish()
    assert (check.rows, check.invalid_utf8, check.invalid_utf8_lines) == (len(lines) - 1, len(invalid),
                                                                         tuple(invalid[:3]))
    assert check.php_escapes == sum(line.count(b'\\"') for line in lines)
    assert check.carriage_returns == sum(line.count(b"\r") for line in lines)


@given(st.lists(st.sampled_from([b"a,b", b"\n", b"long text " * 30, b"\xff"]), max_size=60),
       st.integers(1, 64), st.integers(1, 300))
def test_a_part_is_handed_on_in_pieces_that_end_with_a_line(parts, chunk, piece):
    """However the bytes come in, the pieces put together are the part, each but the last
    ends with a line, only the first skips the header, and the scan after the last piece is
    that of the whole part."""
    data = b"header\n" + b"".join(parts)
    chunks = (data[start:start + chunk] for start in range(0, len(data), chunk))
    with mock.patch.object(sor_dumps, "PIECE", piece):
        handed = sor_dumps.Pieces(["header"], chunks)
        taken = list(handed)
    assert b"".join(data for data, _ in taken) == data
    assert all(data.endswith(b"\n") for data, _ in taken[:-1]) and all(data for data, _ in taken)
    assert [skip for _, skip in taken] == [1] + [0] * (len(taken) - 1)
    whole = _Scanner()
    whole.add(data)
    assert handed.check == whole.finish()


# -- polars reads clean parts for DuckDB, DuckDB's CSV reader every other ------------------
def _part_text(folder: Path, origin: str) -> str:
    """A part of a nested dump, named as the engines name it (outer!inner!part), read independently."""
    outer, inner, part = origin.split("!")
    with zipfile.ZipFile(folder / outer) as archive, zipfile.ZipFile(io.BytesIO(archive.read(inner))) as nested:
        return nested.read(part).decode("utf-8")


def _without_polars(monkeypatch) -> None:
    monkeypatch.setattr(sor, "polars_columns", lambda part: None)


def _polars_read(path: Path, columns: list[str]):
    """What polars makes of a plain CSV part, handed over as the extraction threads hand it."""
    return polars_columns(sor_dumps.Pieces(columns, sor_dumps._file_chunks(path, path.name)))


def _comparable(result) -> tuple[pd.DataFrame, dict]:
    provenance = {k: v for k, v in result.provenance.items() if k != "engine"}
    return result.table, provenance


@pytest.fixture(params=["whole parts", "small pieces"])
def pieces(request, monkeypatch) -> None:
    """Parts handed to polars whole (a test part is smaller than a piece) or in pieces of
    about a row (rows of about 1.1 KB, pieces of 1 KB: a line longer than a piece)."""
    if request.param == "small pieces":
        monkeypatch.setattr(sor_dumps, "PIECE", 1024)
        monkeypatch.setattr(sor_dumps, "CHUNK", 256)


def test_polars_reads_the_clean_parts_and_both_readings_agree(tmp_path, monkeypatch, pieces):
    """In a dump with PHP escapes and invalid bytes in some parts, polars reads exactly the
    parts without them; the aggregate, rejections, duplicates, repairs and examples equal
    DuckDB's own reading of every part."""
    dump = tmp_path / "dump"
    synthesize(dump, rows=6_000, days=2, part_rows=500, inner_rows=1_000,
               rates=Rates(malformed=0.01, duplicate=0.01, escape=0.0005, bad_bytes=0.0005))
    loaded = {}
    with reading(sor_dumps.discover(dump), load=polars_columns) as per_file:
        for _, parts in per_file:
            for part in parts:
                check = part.verify()
                loaded[part.origin] = check.loaded is not None
                assert loaded[part.origin] == (check.php_escapes == 0 and check.invalid_utf8 == 0)
                assert part.path.exists() != loaded[part.origin], "only a part left to DuckDB reaches the disk"
                if check.loaded is not None:
                    rows = list(csv.DictReader(io.StringIO(_part_text(dump, part.origin))))
                    assert check.loaded.column_names == [c for c in sor.READ_COLUMNS if c in part.columns]
                    for column in ("uuid", "platform_name", "decision_visibility", "territorial_scope"):
                        assert check.loaded.column(column).to_pylist() == [r[column] or None for r in rows]
                part.release()
    assert 0 < sum(loaded.values()) < len(loaded), "both readings are exercised"
    with_polars = _comparable(aggregate_duckdb(dump))
    _without_polars(monkeypatch)
    table, provenance = _comparable(aggregate_duckdb(dump))
    pd.testing.assert_frame_equal(with_polars[0], table)
    assert with_polars[1] == provenance


def test_a_quoted_empty_field_reads_as_an_unquoted_one(tmp_path, monkeypatch):
    """DuckDB reads an empty field as NULL, quoted ("") or not; polars reads "" as empty text.
    Rows without uuid or platform, written both ways, give the same groups and examples in
    both readings."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    frame.loc[[3, 4, 5, 6], "platform_name"] = ""
    frame.loc[[7, 8], "uuid"] = ""
    lines = php_csv(frame).split("\n")
    for row, column in ((4, "platform_name"), (6, "platform_name"), (8, "uuid")):
        fields = next(csv.reader([lines[row]]))
        lines[row] = ",".join('""' if name == column else sor_synth.php_field(value)
                              for name, value in zip(frame.columns, fields))
    path = tmp_path / "day.csv"
    path.write_bytes(encode_part("\n".join(lines)))
    assert _polars_read(path, frame.columns.tolist()) is not None
    with_polars = _comparable(aggregate_duckdb(path))
    _without_polars(monkeypatch)
    table, provenance = _comparable(aggregate_duckdb(path))
    pd.testing.assert_frame_equal(with_polars[0], table)
    assert with_polars[1] == provenance
    assert with_polars[1]["rejected_by_reason"]["missing platform_name"]["rows"] == 4
    assert "day.csv: a row without uuid" in with_polars[1]["rejected_by_reason"]["malformed uuid"]["examples"]


def _with_empty_fields_past_the_last(path: Path) -> pd.DataFrame:
    """A part whose rows 3, 5 and 7 end with empty fields past the last: ``,``, ``,,`` and ``,""``."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    lines = php_csv(frame).split("\n")
    for row, extra in ((3, ","), (5, ",,"), (7, ',""')):
        lines[row] += extra
    path.write_bytes(encode_part("\n".join(lines)))
    return frame


def test_empty_fields_past_the_last_are_no_fields_to_either_reading(tmp_path, monkeypatch):
    """DuckDB's CSV reader takes a row that ends with empty fields past the last as the row
    without them; polars reads such a part (it sees no field there either) and both readings
    aggregate all 30 rows, alike."""
    frame = _with_empty_fields_past_the_last(tmp_path / "day.csv")
    assert _polars_read(tmp_path / "day.csv", frame.columns.tolist()) is not None
    with_polars = _comparable(aggregate_duckdb(tmp_path / "day.csv"))
    _without_polars(monkeypatch)
    table, provenance = _comparable(aggregate_duckdb(tmp_path / "day.csv"))
    pd.testing.assert_frame_equal(with_polars[0], table)
    assert with_polars[1] == provenance and provenance["rows_aggregated"] == 30


def _short(lines: list[str]) -> None:
    lines[3] = lines[3].rsplit(",", 1)[0]


def _long(lines: list[str]) -> None:
    lines[3] += ",extra"


def _longer(lines: list[str]) -> None:
    lines[3] += ",,extra"  # the first extra field empty


def _empty_last(lines: list[str]) -> None:
    lines[3] = lines[3].rsplit(",", 1)[0] + ","


def _unbalanced(lines: list[str]) -> None:
    lines[3] += '"'


def _empty_line(lines: list[str]) -> None:
    lines.insert(3, "")


def _carriage_return(lines: list[str]) -> None:
    lines[3] = "\r" + lines[3]  # DuckDB ends a line there, polars does not


@pytest.mark.parametrize("facts, damage", [
    (None, _short), (None, _long), (None, _longer), (None, _empty_last), (None, _unbalanced), (None, _empty_line),
    (None, _carriage_return), ("two\nlines", None), ('say \\"hi\\"', None), ("a bad byte " + sor_synth.BAD_MARK, None),
], ids=["short row", "long row", "row two fields long", "empty last field", "unbalanced quote", "empty line", "carriage return",
        "field across lines", "PHP escape", "invalid UTF-8"])
def test_polars_leaves_every_part_it_could_misread_to_duckdb(facts, damage, tmp_path, monkeypatch, pieces):
    """A part polars could read otherwise than a strict RFC 4180 reading, or than PHP meant
    it, goes to DuckDB's reader whole (which counts and names the damage); the same part
    undamaged is read by polars, and both readings of it agree."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    clean = _write(tmp_path / "clean.csv", frame)
    assert _polars_read(clean, frame.columns.tolist()) is not None
    with_polars = _comparable(aggregate_duckdb(clean))
    _without_polars(monkeypatch)
    assert with_polars[1]["rows_aggregated"] > 0 and with_polars[1] == _comparable(aggregate_duckdb(clean))[1]
    if facts is not None:
        frame.loc[2, "decision_facts"] = facts
    lines = php_csv(frame).split("\n")
    if damage is not None:
        damage(lines)
    damaged = tmp_path / "damaged.csv"
    damaged.write_bytes(encode_part("\n".join(lines)))
    assert _polars_read(damaged, frame.columns.tolist()) is None


def _rfc_quoting(text: str) -> bool:
    """Whether every quote in ``text`` stands where RFC 4180 puts one (a line by line state
    machine: a quoted value opens a field, closes before a comma or the line's end, and
    doubles the quotes inside it)."""
    for line in text.split("\n"):
        inside, at_field_start, index = False, True, 0
        while index < len(line):
            char = line[index]
            if inside:
                if char == '"' and line[index + 1: index + 2] == '"':
                    index += 1
                elif char == '"':
                    inside = False
                    if line[index + 1: index + 2] not in ("", ","):
                        return False
            elif char == '"':
                if not at_field_start:
                    return False
                inside = True
            at_field_start = char == "," and not inside
            index += 1
        if inside:
            return False
    return True


LINE_DAMAGE = st.sampled_from(['"', '""', ",", "\\", '\\"', "\n", "\r", " ", "x"])


@settings(deadline=None, max_examples=60)  # two engine runs an example
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 2_000), LINE_DAMAGE), max_size=6))
def test_both_readings_agree_on_damaged_lines(tmp_path_factory, damages):
    """Quotes, commas, backslashes, carriage returns and newlines inserted anywhere in a part's
    lines: with polars reading the parts it takes, every row is accounted for as with DuckDB
    reading every part; where every quote stands where RFC 4180 puts one, the aggregate,
    rejections and examples are the same too (a line RFC 4180 calls malformed has no one true
    reading: see :func:`polars_columns`)."""
    frame = day_frame(dt.date(2025, 7, 2), 12, seed=5, rates=Rates(0, 0, 0, 0))
    lines = php_csv(frame).split("\n")
    for line, position, text in damages:
        row = lines[1 + line]
        cut = position % (len(row) + 1)
        lines[1 + line] = row[:cut] + text + row[cut:]
    folder = tmp_path_factory.mktemp("damaged")
    (folder / "day.csv").write_text("\n".join(lines), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patched:
        try:
            with_polars = _comparable(aggregate_duckdb(folder))
        except SorError as exc:
            with_polars = str(exc)
        _without_polars(patched)
        try:
            alone = _comparable(aggregate_duckdb(folder))
        except SorError as exc:
            alone = str(exc)
    if isinstance(alone, str) or isinstance(with_polars, str):
        assert with_polars == alone
    elif _rfc_quoting("\n".join(lines)):
        pd.testing.assert_frame_equal(with_polars[0], alone[0])
        assert with_polars[1] == alone[1]
    else:
        counts = ("rows_read", "rows_aggregated", "rows_rejected", "rows_filtered_out", "rows_duplicate")
        assert with_polars[1]["rows_read"] == alone[1]["rows_read"]
        assert sum(with_polars[1][c] for c in counts[1:]) == with_polars[1]["rows_read"]


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- integrity ---------------------------------------------------------------------------------
def test_a_damaged_byte_inside_a_nested_part_is_caught(dump, tmp_path):
    source = dump / "sor-global-2025-06-29-full.zip"
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as outer:
        inner = outer.getinfo("sor-global-2025-06-29-full-00000.csv.zip")
    data[inner.header_offset + 30 + len(inner.filename) + inner.compress_size // 2] ^= 0xFF
    damaged = tmp_path / source.name
    damaged.write_bytes(bytes(data))
    with pytest.raises(SorError, match=rf"{damaged.name}!sor-global-2025-06-29-full-00000.csv.zip: truncated or corrupt"):
        aggregate_duckdb(damaged)


def test_a_stored_inner_zip_read_in_place_is_held_against_its_crc(dump, tmp_path):
    """An inner zip is read where it lies in the daily dump, but only once its own CRC-32
    holds: a byte changed where no part's CRC-32 looks (a part's time in its local header)
    stops the run, named, as zipfile did when inner zips were copied out."""
    source = dump / "sor-global-2025-06-29-full.zip"
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as outer:
        inner = outer.getinfo("sor-global-2025-06-29-full-00000.csv.zip")
    start = inner.header_offset + 30 + len(inner.filename) + len(inner.extra)
    assert data[start:start + 4] == b"PK\x03\x04"
    data[start + 10] ^= 0x01  # the first part's modification time
    damaged = tmp_path / source.name
    damaged.write_bytes(bytes(data))
    with pytest.raises(SorError, match=rf"{damaged.name}!sor-global-2025-06-29-full-00000.csv.zip: truncated or "
                                       r"corrupt archive \(CRC-32"):
        aggregate_duckdb(damaged)


def _with_crc(inner: bytes, member: str, crc: int) -> bytes:
    """An inner zip whose member ``member`` claims ``crc`` (local header and directory)."""
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        info = archive.getinfo(member)
        true_crc = info.CRC
    old = struct.pack("<I", true_crc)
    assert inner.count(old) == 2  # once in the local header, once in the central directory
    return inner.replace(old, struct.pack("<I", crc))


def test_a_part_whose_own_crc_is_wrong_is_rejected(tmp_path):
    """The outer zip is sound (its CRC covers the inner zip as it is) but the inner CSV's
    CRC-32 does not match its bytes: the thread that inflates the part checks it."""
    frame = day_frame(dt.date(2025, 7, 2), 500, seed=3, rates=Rates(0, 0, 0, 0))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as inner:
        inner.writestr("d-00000-00000.csv", encode_part(php_csv(frame)))
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_STORED) as outer:
        outer.writestr("d-00000.csv.zip", _with_crc(buffer.getvalue(), "d-00000-00000.csv", 0x12345678))
    with pytest.raises(SorError, match=r"d.zip!d-00000.csv.zip!d-00000-00000.csv: truncated or corrupt archive "
                                       r"\(CRC-32 [0-9a-f]{8} .*the archive says 12345678"):
        aggregate_duckdb(tmp_path / "d.zip")


def test_paths_with_quotes_are_passed_safely(tmp_path):
    """A plain CSV is read where it lies: its path, with quotes, reaches the SQL text."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    path = _write(tmp_path / "l'analyste's dumps" / "it's.csv", frame)
    assert aggregate_duckdb(path.parent).provenance["rows_read"] == 30


def test_an_unreadable_row_is_counted_with_its_part_and_line(tmp_path):
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    lines = php_csv(frame).split("\n")
    lines[5] += ',"unterminated'
    (tmp_path / "day-1.csv").write_text("\n".join(lines))
    result = aggregate_duckdb(tmp_path)
    p = result.provenance
    assert p["rejected_by_reason"]["unreadable CSV row"] == {"rows": 1, "examples": ["day-1.csv: line 6"]}
    assert p["rejected_by_reason"]["lines swallowed by an unterminated quote"]["rows"] == 1
    assert (p["rows_read"], p["rows_aggregated"] + p["rows_filtered_out"]) == (30, 28)


def test_a_part_duckdb_cannot_read_is_read_line_by_line_not_lost(tmp_path):
    """A bare carriage return in a value (PHP quotes a value holding one) stops DuckDB's CSV
    reader for the whole part ("state machine reached an invalid state"): the part is read
    line by line as PHP wrote it, the broken line counted as unreadable, the others kept, and
    why is said among what was repaired. Before, the run stopped and the day was lost."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    lines = php_csv(frame).split("\n")
    lines[5] = lines[5][:1] + "\r" + lines[5][1:]
    (tmp_path / "day.csv").write_bytes(encode_part("\n".join(lines)))
    p = aggregate_duckdb(tmp_path).provenance
    assert (p["rows_read"], p["rows_aggregated"] + p["rows_filtered_out"]) == (30, 29)
    assert p["rejected_by_reason"] == {"unreadable CSV row": {"rows": 1, "examples": ["day.csv: line 6"]}}
    (how, entry), = p["repaired_by_reason"].items()
    assert how == sor.LINE_BY_LINE and entry["rows"] == 29
    assert entry["examples"] == ["day.csv: Invalid Input Error: The CSV Parser state machine reached an invalid state."]


@pytest.mark.parametrize("facts", ['say \\"hi\\" ' + "long text " * 2_000, "x" * 2_100_000],
                         ids=["PHP escape in a 20 KB row", "a 2 MB field"])
def test_long_rows_duckdb_sets_aside_are_read_whole(facts, tmp_path, monkeypatch):
    """A row DuckDB sets aside is read again from the part's file, whole: DuckDB's own copy of
    it stops at 10,000 characters, and it sets aside any line over 2,000,000 bytes (before,
    both were lost as unreadable). Polars, when it reads the part, agrees."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    frame.loc[3, "decision_facts"] = facts
    path = _write(tmp_path / "day.csv", frame)
    readings = [_comparable(aggregate_duckdb(path))]
    _without_polars(monkeypatch)
    readings.append(_comparable(aggregate_duckdb(path)))
    for _, provenance in readings:
        assert (provenance["rows_aggregated"] + provenance["rows_filtered_out"], provenance["rejected_by_reason"]) == (
            30, {})
    pd.testing.assert_frame_equal(readings[0][0], readings[1][0])


def test_truncated_zip_names_the_file(dump, tmp_path):
    source = dump / "sor-global-2025-06-29-full.zip"
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(SorError, match=rf"{broken.name}.*truncated or corrupt archive"):
        aggregate_duckdb(broken)


@pytest.mark.parametrize("cut", ["half", "after an inner zip"])
def test_a_truncated_nested_dump_is_never_read_as_one_of_its_inner_zips(tmp_path, cut):
    """zipfile takes the last end record it finds: in a truncated daily dump, an inner zip's.
    Cut anywhere, even right after an inner zip, the dump stops the run named (before, half a
    dump was read as a "zipped csv" of a third of its rows, silently)."""
    synthesize(tmp_path / "whole", rows=3_000, days=1, part_rows=500, inner_rows=1_000, rates=Rates(0, 0, 0, 0))
    source, = (tmp_path / "whole").glob("*.zip")
    data = source.read_bytes()
    with zipfile.ZipFile(source) as outer:
        second = outer.infolist()[1]
    end = len(data) // 2 if cut == "half" else second.header_offset  # the first inner zip ends there
    broken = tmp_path / source.name
    broken.write_bytes(data[:end])
    with pytest.raises(SorError, match=rf"{broken.name}: truncated or corrupt archive"):
        aggregate_duckdb(broken)


def _patched(raw: bytearray, at: int, value: int | Callable[[int], int], size: str = "<H") -> None:
    """Set the field of a zip header at ``at`` to ``value`` (or to ``value`` of it)."""
    struct.pack_into(size, raw, at, value(struct.unpack_from(size, raw, at)[0]) if callable(value) else value)


LOCAL, ENTRY, END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"  # a member's local header, its directory entry, the end record


def test_encrypted_or_unknown_compression_members_are_named_not_crashed_on(tmp_path):
    part = encode_part(php_csv(day_frame(dt.date(2025, 7, 2), 10, seed=1, rates=Rates(0, 0, 0, 0))))
    with zipfile.ZipFile(tmp_path / "enc.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.csv", part)
    raw = bytearray((tmp_path / "enc.zip").read_bytes())
    _patched(raw, raw.find(LOCAL) + 6, lambda flags: flags | 1)
    _patched(raw, raw.find(ENTRY) + 8, lambda flags: flags | 1)
    (tmp_path / "enc.zip").write_bytes(raw)
    with pytest.raises(SorError, match=r"enc.zip!a.csv: an encrypted member is not read"):
        aggregate_duckdb(tmp_path / "enc.zip")
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.csv", part)
    with zipfile.ZipFile(tmp_path / "nested.zip", "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("x.csv.zip", inner.getvalue())
    raw = bytearray((tmp_path / "nested.zip").read_bytes())
    _patched(raw, raw.find(LOCAL) + 8, 99)
    _patched(raw, raw.rfind(ENTRY) + 10, 99)  # the outer directory comes after the inner zip's
    (tmp_path / "nested.zip").write_bytes(raw)
    with pytest.raises(SorError, match=r"nested.zip!x.csv.zip: compression method 99 is not read"):
        aggregate_duckdb(tmp_path / "nested.zip")


def _nested_dump(tmp_path: Path) -> tuple[Path, bytearray]:
    synthesize(tmp_path / "whole", rows=2_000, days=1, part_rows=500, inner_rows=1_000, rates=Rates(0, 0, 0, 0))
    source, = (tmp_path / "whole").glob("*.zip")
    return tmp_path / source.name, bytearray(source.read_bytes())


def _entries(raw: bytearray) -> list[int]:
    """Where the outer directory's entries start (after the inner zips', which are stored)."""
    start = struct.unpack_from("<I", raw, len(raw) - 6)[0]  # the end record's offset of the directory
    return [at for at in range(start, len(raw) - 22) if raw[at:at + 4] == ENTRY]


@pytest.mark.parametrize("damage, message", [
    (lambda raw, entries: _patched(raw, entries[1] + 42, len(raw) + 100, "<I"), "bad local header"),
    (lambda raw, entries: _patched(raw, entries[1] + 42, struct.unpack_from("<I", raw, entries[0] + 42)[0], "<I"),
     "two entries of its directory name one member"),
    (lambda raw, entries: raw.__setitem__(slice(34, 35), b"X"), "the member's local header names"),
    (lambda raw, entries: _patched(raw, entries[0] + 6, lambda version: version | 0x80), "version"),
], ids=["an entry past the end", "two entries on one inner zip", "a local header of another name",
        "a version zipfile cannot read"])
def test_an_outer_directory_at_odds_with_its_members_is_one_line(tmp_path, damage, message):
    """What zipfile checked when it copied inner zips out, the reading in place checks too: a
    damaged outer directory stops the run with one line naming the dump (before: a
    ``struct.error`` traceback, an inner zip read twice, a renamed member read)."""
    path, raw = _nested_dump(tmp_path)
    damage(raw, _entries(raw))
    path.write_bytes(raw)
    with pytest.raises(SorError, match=rf"{path.name}.*: truncated or corrupt archive \(.*{message}"):
        aggregate_duckdb(path)


def test_a_directory_whose_damaged_entry_hides_the_next_is_one_line(tmp_path):
    """One bit of an entry's comment length, and zipfile reads that entry over the next and
    stops: the inner zip after it would be left out, silently (half the rows, before). The end
    record's count of members no longer matches: one line."""
    path, raw = _nested_dump(tmp_path)
    entries = _entries(raw)
    _patched(raw, entries[0] + 32, len(raw) - entries[1])  # its comment runs to the end of the file
    path.write_bytes(raw)
    with pytest.raises(SorError, match=rf"{path.name}: truncated or corrupt archive \(its directory holds 1 "
                                       r"members, its end record counts 2\)"):
        aggregate_duckdb(path)


def _two_inner_zips(path: Path, *, comment: bytes = b"", inner_extra: str = "", outer_name: str = "") -> Path:
    """A daily dump of two inner zips of one part of 8 rows: the first inner zip with
    ``comment``, the second with a member ``inner_extra`` more, or named ``outer_name``."""
    part = encode_part(php_csv(day_frame(dt.date(2025, 7, 2), 8, seed=1, rates=Rates(0, 0, 0, 0))))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as outer:
        for index in range(2):
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as inner:
                inner.writestr(f"d-{index:05d}-00000.csv", part)
                if index:
                    if inner_extra:
                        inner.writestr(inner_extra, part)
                else:
                    inner.comment = comment
            outer.writestr(outer_name if index and outer_name else f"d-{index:05d}.csv.zip", buffer.getvalue())
    return path


def test_an_end_record_hidden_in_an_inner_zips_comment_is_one_line(tmp_path):
    """An inner zip whose comment is an end record of no members: zipfile takes it (the last
    it finds), and the inner zip's parts would be left out while the others are read (8 rows
    of 16, silently, before). Refused, named."""
    path = _two_inner_zips(tmp_path / "d.zip", comment=END + bytes(18))
    with pytest.raises(SorError, match=r"d.zip!d-00000.csv.zip: truncated or corrupt archive \(its end record lies "
                                       r"in the comment of another\)"):
        aggregate_duckdb(path)


@pytest.mark.parametrize("names", [{"outer_name": "d-00001.csv.zi{"}, {"inner_extra": "d-00001-00001.csv{"}],
                         ids=["outer", "inner"])
def test_a_member_of_a_daily_dump_that_is_no_part_is_one_line(tmp_path, names):
    """A daily dump holds inner zips of CSV parts and nothing else: a member of another name (a
    damaged one, ``.csv.zi{``) was skipped silently, and its rows with it. Refused, named."""
    path = _two_inner_zips(tmp_path / "d.zip", **names)
    with pytest.raises(SorError, match=r"d.zip!d-00001.csv.zi.*: a member of a daily dump that is neither"):
        aggregate_duckdb(path)


def test_an_inner_zip_inside_an_inner_zip_is_one_line(tmp_path):
    """A daily dump nests once: an inner zip in an inner zip is refused, named (before, read at
    any depth, 1,200 deep ended in a RecursionError)."""
    part = encode_part(php_csv(day_frame(dt.date(2025, 7, 2), 10, seed=1, rates=Rates(0, 0, 0, 0))))
    data = part
    for name in ("d-00000-00000.csv", "d-deep.csv.zip", "d-00000.csv.zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(name, data)
        data = buffer.getvalue()
    (tmp_path / "d.zip").write_bytes(data)
    with pytest.raises(SorError, match=r"d.zip!d-00000.csv.zip!d-deep.csv.zip: an inner zip inside an inner zip"):
        aggregate_duckdb(tmp_path / "d.zip")


def test_a_directory_overstating_a_members_size_is_refused_before_reading(tmp_path):
    """The directory says a part holds far more stored bytes than lie before the next member:
    refused before anything is read (before, the bytes of what followed were read into memory,
    and the run went on)."""
    path = tmp_path / "d.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("a.csv"), encode_part(php_csv(day_frame(
            dt.date(2025, 7, 2), 50, seed=1, rates=Rates(0, 0, 0, 0)))), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(zipfile.ZipInfo("zz.bin"), bytes(1 << 20))
    raw = bytearray(path.read_bytes())
    _patched(raw, raw.find(ENTRY) + 20, lambda size: size + (1 << 20), "<I")
    path.write_bytes(raw)
    with pytest.raises(SorError, match=r"d.zip!a.csv: truncated or corrupt archive \(the directory says the member "
                                       r"holds [0-9,]+ bytes, [0-9,]+ more than there is room for\)"):
        aggregate_duckdb(path)


def test_missing_column_names_file_and_column(tmp_path):
    frame = day_frame(dt.date(2025, 7, 2), 20, seed=1, rates=Rates(0, 0, 0, 0))
    _write(tmp_path / "nocat.csv", frame.drop(columns=["category"]))
    with pytest.raises(SorError, match=r"nocat.csv: missing column\(s\) category"):
        aggregate_duckdb(tmp_path / "nocat.csv")


def test_unreadable_file_stops_the_run(tmp_path):
    (tmp_path / "noise.zip").write_bytes(b"this is not a zip archive at all")
    with pytest.raises(SorError, match="noise.zip: truncated or corrupt archive"):
        aggregate_duckdb(tmp_path)


def test_malformed_values_are_counted_never_dropped(tmp_path):
    frame = day_frame(dt.date(2025, 7, 2), 50, seed=3, rates=Rates(0, 0, 0, 0))
    frame.loc[0, "application_date"] = "02/07/2025"
    frame.loc[1, "territorial_scope"] = "DE,FR"
    frame.loc[2, "category"] = "STATEMENT_CATEGORY_MADE_UP"
    frame.loc[3, "decision_visibility"] = '["DECISION_VISIBILITY_CONTENT_REMOVED"'
    # several faults in one row: the first in the order uuid, date, values, arrays is reported
    frame.loc[4, ["application_date", "category"]] = ["2025-13-01 00:00:00", "STATEMENT_CATEGORY_MADE_UP"]
    frame.loc[5, ["source_type", "content_type", "territorial_scope"]] = ["SOURCE_PIGEON", "[x]", "DE"]
    frame.loc[6, ["content_type", "territorial_scope"]] = ['["CONTENT_TYPE_TEXT",', "DE"]
    frame.loc[7, "territorial_scope"] = '["US"]'  # not a code the database accepts
    frame.loc[8, "uuid"] = "not-a-uuid"
    result = aggregate_duckdb(_write(tmp_path / "bad.csv", frame))
    reasons = {k: v["rows"] for k, v in result.provenance["rejected_by_reason"].items()}
    assert reasons == {"malformed application_date": 2, "malformed territorial_scope array": 2,
                       "unknown category (v2)": 1, "malformed or unknown decision_visibility array (v2)": 1,
                       "unknown source_type (v2)": 1, "malformed or unknown content_type array (v2)": 1,
                       "malformed uuid": 1}
    assert result.provenance["rows_aggregated"] == 41


# -- the cache ---------------------------------------------------------------------------------
def test_the_cache_is_per_file_and_keyed_by_engine_and_reader(dump, tmp_path, monkeypatch):
    folder = tmp_path / "days"
    folder.mkdir()
    for name in ("sor-global-2025-06-29-full.zip", "sor-global-2025-06-30-full.zip"):
        shutil.copy(dump / name, folder / name)
    cache = tmp_path / "cache"
    hashed = []
    for module in (sor, sor_dumps):  # each dump file read once to be hashed: for its key and its record
        monkeypatch.setattr(module, "sha256_file", lambda path, real=sha256_file: hashed.append(path) or real(path))
    first = aggregate(folder, cache_dir=cache)
    assert first.provenance["cache"] == {"files_reused": 0, "files_read": 2}
    assert sorted(p.name for p in hashed if p.parent == folder) == sorted(p.name for p in folder.iterdir())
    assert [f["sha256"] for f in first.provenance["files"]] == [sha256_file(p) for p in sorted(folder.iterdir())]
    shutil.copy(dump / "sor-global-2025-07-01-full.zip", folder)
    read = []
    real = sor.duckdb_files
    monkeypatch.setattr(sor, "ENGINES", {**sor.ENGINES, "duckdb": lambda files, filters, **options: read.extend(files)
                                         or real(files, filters, **options)})
    second = aggregate(folder, cache_dir=cache)
    assert [p.name for p in read] == ["sor-global-2025-07-01-full.zip"]  # adding a day reads that day only
    assert second.provenance["cache"] == {"files_reused": 2, "files_read": 1}
    pd.testing.assert_frame_equal(second.table, aggregate_duckdb(folder).table)
    (folder / "sor-global-2025-06-29-full.zip").rename(folder / "renamed.zip")
    assert "renamed.zip" in [f["name"] for f in aggregate(folder, cache_dir=cache).provenance["files"]]
    content = sha256_file(folder / "renamed.zip")
    keys = {sor.cache_key(content, Filters(), engine) for engine in ("duckdb", "spark")}
    monkeypatch.setattr(sor, "READER_VERSION", "next")
    keys.add(sor.cache_key(content, Filters(), "duckdb"))
    assert len(keys) == 3


def test_file_results_survive_the_cache_round_trip(dump):
    result = sor.duckdb_files([dump / "sor-global-2025-06-29-full.zip"])[0]
    again = FileResult.from_json(result.to_json())
    assert again.record == result.record and isinstance(again.record, FileRecord)
    pd.testing.assert_frame_equal(sor._finish([again], Filters()).table, sor._finish([result], Filters()).table)


# -- into the workbook -----------------------------------------------------------------------
def test_a_module_proxy_counted_from_the_database(monkeypatch, tmp_path):
    monkeypatch.setenv("DSARISK_CACHE_DIR", str(tmp_path))  # counted now, not read from an earlier run
    item = load_year(2024).modules["prohibited-controlled-products"]
    proxy = next(p for p in item.probability.proxies if p.id == "sor-statements")
    expected = aggregate_duckdb(PROJECT_ROOT / "data/sor/sample", Filters(
        platforms=("Sample Marketplace",), start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31)))
    count = expected.proxy(platform="Sample Marketplace", module="prohibited-controlled-products")
    assert proxy.incidents.value == count > 0
    assert "sor-global-2024-03-01-full.zip (sha256" in proxy.source and "rejected" in proxy.source


def test_cli_synth_and_aggregate(tmp_path, capsys):
    assert main(["sor", "synth", "--rows", "3000", "--days", "2", "--out", str(tmp_path / "d"),
                 "--part-rows", "1000"]) == 0
    assert main(["sor", "aggregate", str(tmp_path / "d"), "--no-cache", "--out", str(tmp_path / "t.csv")]) == 0
    assert pd.read_csv(tmp_path / "t.csv")["statements"].sum() > 2_900
    assert '"rows_read": 3000' in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["synth", "--rows", "10", "--part-rows", "0"], "field 'part_rows': must be at least 1, not 0"),
    (["synth", "--rows", "-5"], "field 'rows': must be at least 1, not -5"),
    (["synth", "--rows", "10", "--escape-rate", "nan"], "field 'escape': the rate must be between 0 and 0.5"),
    (["aggregate", "{data}", "--out", "{tmp}"], "field '--out': give a CSV file to write in an existing folder"),
    (["aggregate", "{tmp}/missing"], "missing: no such file or folder"),
])
def test_cli_bad_sor_options_give_one_line_and_status_2(args, message, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, data=PROJECT_ROOT / "data/sor/sample") for a in args]
    if argv[0] == "synth":
        argv += ["--out", str(tmp_path / "out")]
    assert main(["sor", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# -- Spark -------------------------------------------------------------------------------------
@functools.cache
def _spark_unavailable() -> str | None:
    if shutil.which("java") is None:
        return "Spark path not run: no java on PATH (.ci/run installs openjdk-17-jre-headless)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "Spark path not run: pyspark is not installed (pip install -e '.[dev]')"
    version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    if '"1.8' in version or '"11' in version:
        return f"Spark path not run: Spark needs Java 17 or newer, found {version.splitlines()[0]}"
    return None


SPARK = pytest.mark.skipif(_spark_unavailable() is not None, reason=str(_spark_unavailable()))


@SPARK
def test_spark_runs_the_same_sql_with_the_same_result(dump):
    one_day = dump / "sor-global-2025-07-01-full.zip"
    duck, spark = aggregate_duckdb(one_day), aggregate_spark(one_day)
    pd.testing.assert_frame_equal(duck.table, spark.table, check_dtype=False)
    for key in ("rows_read", "rows_rejected", "rows_filtered_out", "rows_aggregated", "rows_duplicate",
                "rejected_by_reason"):
        assert duck.provenance[key] == spark.provenance[key], key
    assert spark.provenance["engine"].startswith("spark")


@SPARK
def test_spark_reads_a_part_with_a_bare_carriage_return_line_by_line(tmp_path):
    """Spark's CSV reader ends a line at a carriage return (31 rows from 30 lines stopped the
    run): such a part is read line by line, and Spark counts what DuckDB counts."""
    frame = day_frame(dt.date(2025, 7, 2), 30, seed=1, rates=Rates(0, 0, 0, 0))
    lines = php_csv(frame).split("\n")
    lines[5] = lines[5][:1] + "\r" + lines[5][1:]
    (tmp_path / "day.csv").write_bytes(encode_part("\n".join(lines)))
    spark, duck = aggregate_spark(tmp_path), aggregate_duckdb(tmp_path)
    pd.testing.assert_frame_equal(spark.table, duck.table)
    assert spark.provenance["rejected_by_reason"] == duck.provenance["rejected_by_reason"]
    assert spark.provenance["repaired_by_reason"] == {sor.SPARK_LINE_BY_LINE: {"rows": 29, "examples": ["day.csv"]}}


@SPARK
def test_spark_takes_empty_fields_past_the_last_as_duckdb_does(tmp_path):
    """Spark sets aside a row with more fields than the header; read again as PHP wrote it,
    its empty fields past the last are no fields, as for DuckDB (before, Spark rejected the
    two rows DuckDB aggregated)."""
    _with_empty_fields_past_the_last(tmp_path / "day.csv")
    spark, duck = aggregate_spark(tmp_path), aggregate_duckdb(tmp_path)
    pd.testing.assert_frame_equal(spark.table, duck.table)
    assert spark.provenance["rows_aggregated"] == duck.provenance["rows_aggregated"] == 30


def test_transparency_database_notebook_executes(tmp_path, monkeypatch):
    import nbformat
    import papermill

    monkeypatch.setenv("DSARISK_CACHE_DIR", str(tmp_path / "cache"))
    output = tmp_path / "80.ipynb"
    papermill.execute_notebook(str(PROJECT_ROOT / "notebooks/80_transparency_database.ipynb"), str(output),
                               kernel_name="python3", progress_bar=False)
    notebook = nbformat.read(output, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "Rejected rows, never dropped silently" in html and "Sample Marketplace: profile per risk module" in html


@pytest.mark.parametrize("value, written", [
    ("TikTok", "TikTok"),
    ("Google Shopping", '"Google Shopping"'),
    ('["A","B"]', '"[""A"",""B""]"'),
    ('said \\"no\\"', '"said \\"no\\""'),  # after PHP's escape character a quote is not doubled
    ('a\\\\"b', '"a\\\\"b"'),  # nor after two of them
    ('\\""', '"\\""""'),  # the second quote is doubled again
    ("tab\there", '"tab\there"'),
    ("", ""),
])
def test_the_writer_follows_php_fputcsv(value, written):
    assert sor_synth.php_field(value) == written
