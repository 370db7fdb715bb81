"""Statements of reasons: the dump layouts, both schema versions, rejections, both engines."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dsarisk.cli import main
from dsarisk.inputs import load_year
from dsarisk.paths import PROJECT_ROOT
from dsarisk.sources.sor import Filters, SorError, aggregate_duckdb, aggregate_spark, iter_parts
from dsarisk.sources.sor_synth import day_table, synthesize

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
from sor_baseline import aggregate_pandas  # noqa: E402  (the benchmark's baseline is the oracle)


@pytest.fixture(scope="module")
def dump(tmp_path_factory) -> Path:
    """Four days across the switch to schema version 2, several inner zips and parts per day."""
    folder = tmp_path_factory.mktemp("dump")
    synthesize(folder, rows=24_000, days=4, part_rows=2_000, inner_rows=4_000, malformed_share=0.01)
    return folder


def _sha(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_generator_is_deterministic_and_faithful_to_the_layout(dump, tmp_path):
    synthesize(tmp_path, rows=24_000, days=4, part_rows=2_000, inner_rows=4_000, malformed_share=0.01)
    assert _sha(tmp_path) == _sha(dump)
    with zipfile.ZipFile(dump / "sor-global-2025-06-29-full.zip") as outer:
        names = outer.namelist()
        assert "sor-global-2025-06-29-full-00000.csv.zip" in names
        assert "sor-global-2025-06-29-full-00000.csv.zip.sha1" in names
        payload = outer.read("sor-global-2025-06-29-full-00000.csv.zip")
        assert outer.read("sor-global-2025-06-29-full-00000.csv.zip.sha1").decode().startswith(
            hashlib.sha1(payload).hexdigest())


def test_duckdb_matches_the_pandas_oracle_and_accounts_for_every_row(dump):
    result = aggregate_duckdb(dump)
    pd.testing.assert_frame_equal(result.table, aggregate_pandas(dump), check_dtype=False)
    p = result.provenance
    assert p["rows_read"] == 24_000
    assert p["rows_aggregated"] + p["rows_rejected"] + p["rows_filtered_out"] == p["rows_read"]
    assert set(p["rejected_by_reason"]) == {"malformed application_date", "malformed content_type array",
                                            "unknown category"}
    example = p["rejected_by_reason"]["unknown category"]["examples"][0]
    assert ".zip!" in example and ".csv: uuid " in example  # file, part and row named
    assert {f["schema_version"] for f in p["files"]} == {"v1", "v2"}
    assert {f["layout"] for f in p["files"]} == {"nested zip"}


def test_both_category_versions_map_to_modules(dump):
    table = aggregate_duckdb(dump).table
    months = set(table["month"])
    assert months == {"2025-06", "2025-07"}
    products = table[table["module"] == "prohibited-controlled-products"].groupby("month")["statements"].sum()
    assert products["2025-06"] > 0 and products["2025-07"] > 0  # UNSAFE_AND_ILLEGAL -> UNSAFE_AND_PROHIBITED


def test_filters(dump):
    filters = Filters(platforms=("App Store",), start=dt.date(2025, 7, 1), end=dt.date(2025, 7, 1))
    result = aggregate_duckdb(dump, filters)
    assert set(result.table["platform"]) == {"App Store"} and set(result.table["month"]) == {"2025-07"}
    pd.testing.assert_frame_equal(result.table, aggregate_pandas(dump, filters), check_dtype=False)
    assert result.provenance["filters"]["platforms"] == ["App Store"]


def _write_csv(path: Path, table) -> Path:
    pacsv.write_csv(table, path)
    return path


def test_every_format_gives_the_same_aggregate(tmp_path):
    table = day_table(dt.date(2025, 7, 2), 3_000, seed=5, light=False, malformed_share=0.01)
    (tmp_path / "plain").mkdir()
    plain = _write_csv(tmp_path / "plain" / "sor.csv", table)
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    with zipfile.ZipFile(zipped / "sor.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(plain, "sor.csv")
    nested = tmp_path / "nested"
    nested.mkdir()
    with zipfile.ZipFile(nested / "sor.zip", "w", zipfile.ZIP_STORED) as outer:
        outer.write(zipped / "sor.csv.zip", "sor-00000.csv.zip")
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pq.write_table(table, parquet / "sor.parquet")
    results = [aggregate_duckdb(folder).table for folder in (plain.parent, zipped, nested, parquet)]
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0], other)
    assert len(results[0]) > 5


def test_light_dump_and_territorial_scope(tmp_path):
    light = day_table(dt.date(2025, 7, 2), 2_000, seed=1, light=True, malformed_share=0)
    _write_csv(tmp_path / "light.csv", light)
    result = aggregate_duckdb(tmp_path / "light.csv")
    assert result.provenance["files"][0]["dump"] == "light" and result.provenance["rows_aggregated"] == 2_000
    full = day_table(dt.date(2025, 7, 2), 10, seed=1, light=False, malformed_share=0).to_pandas()
    full.loc[0:3, "territorial_scope"] = '["US"]'
    full.to_csv(tmp_path / "scope.csv", index=False)
    eu = aggregate_duckdb(tmp_path / "scope.csv")
    anywhere = aggregate_duckdb(tmp_path / "scope.csv", Filters(eu_only=False))
    assert (eu.provenance["rows_filtered_out"], anywhere.provenance["rows_aggregated"]) == (4, 10)


def test_nested_parts_reach_the_engine_still_compressed(dump, tmp_path):
    """Inside a nested zip, whose inner archives pass the outer zip's CRC, deflated parts are
    handed to the engine as gzip without Python inflating them; a top-level zipped CSV, whose
    bytes nothing checked yet, is extracted through zipfile (which checks its CRC)."""
    records: list = []
    nested = list(iter_parts([dump / "sor-global-2025-06-29-full.zip"], tmp_path, records))
    assert nested and {part.kind for part in nested} == {"csv.gz"}
    assert all(part.path.read_bytes()[:2] == b"\x1f\x8b" for part in nested)
    with gzip.open(nested[0].path, "rt", encoding="utf-8") as part:  # a valid gzip, trailer included
        assert next(csv.reader(part)) == nested[0].columns
        assert sum(1 for _ in part) == 2_000
    with zipfile.ZipFile(tmp_path / "top.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("top.csv", gzip.decompress(nested[0].path.read_bytes()))
    (tmp_path / "work").mkdir()
    top = list(iter_parts([tmp_path / "top.zip"], tmp_path / "work", records))
    assert [part.kind for part in top] == ["csv"]


# -- bad input -------------------------------------------------------------------------------
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


def test_an_unreadable_row_names_its_part_and_line(tmp_path):
    for seed in range(3):
        frame = day_table(dt.date(2025, 7, 2), 30, seed=seed, light=False, malformed_share=0).to_pandas()
        frame.to_csv(tmp_path / f"day-{seed}.csv", index=False)
    lines = (tmp_path / "day-1.csv").read_text().splitlines()
    lines[5] += ',"unterminated'
    (tmp_path / "day-1.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SorError) as info:
        aggregate_duckdb(tmp_path)
    message = str(info.value)
    assert message.startswith("day-1.csv: unreadable (") and "Line: 6" in message
    assert "\n" not in message and str(tmp_path) not in message
def test_truncated_zip_names_the_file(dump, tmp_path):
    source = dump / "sor-global-2025-06-29-full.zip"
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(SorError, match=rf"{broken.name}.*truncated or corrupt archive"):
        aggregate_duckdb(broken)


def test_missing_column_names_file_and_column(tmp_path):
    frame = day_table(dt.date(2025, 7, 2), 20, seed=1, light=False, malformed_share=0).to_pandas()
    frame.drop(columns=["category"]).to_csv(tmp_path / "nocat.csv", index=False)
    with pytest.raises(SorError, match=r"nocat.csv: missing column\(s\) category"):
        aggregate_duckdb(tmp_path / "nocat.csv")


def test_unreadable_file_stops_the_run(tmp_path):
    (tmp_path / "noise.zip").write_bytes(b"this is not a zip archive at all")
    with pytest.raises(SorError, match="noise.zip: truncated or corrupt archive"):
        aggregate_duckdb(tmp_path)


def test_malformed_values_are_counted_never_dropped(tmp_path):
    frame = day_table(dt.date(2025, 7, 2), 50, seed=3, light=False, malformed_share=0).to_pandas()
    frame.loc[0, "application_date"] = "02/07/2025"
    frame.loc[1, "territorial_scope"] = "DE,FR"
    frame.loc[2, "category"] = "STATEMENT_CATEGORY_MADE_UP"
    frame.loc[3, "decision_visibility"] = '["DECISION_VISIBILITY_CONTENT_REMOVED"'
    # several faults in one row: the first in the order date, values, arrays is reported
    frame.loc[4, ["application_date", "category"]] = ["2025-13-01", "STATEMENT_CATEGORY_MADE_UP"]
    frame.loc[5, ["source_type", "content_type", "territorial_scope"]] = ["SOURCE_PIGEON", "[x]", "DE"]
    frame.loc[6, ["content_type", "territorial_scope"]] = ['["CONTENT_TYPE_TEXT",', "DE"]
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = aggregate_duckdb(tmp_path / "bad.csv")
    reasons = {k: v["rows"] for k, v in result.provenance["rejected_by_reason"].items()}
    assert reasons == {"malformed application_date": 2, "malformed territorial_scope array": 1,
                       "unknown category": 1, "malformed decision_visibility array": 1, "unknown source_type": 1,
                       "malformed content_type array": 1}
    assert result.provenance["rows_aggregated"] == 43


# -- into the workbook -----------------------------------------------------------------------
def test_a_module_proxy_counted_from_the_database():
    item = load_year(2024).modules["prohibited-controlled-products"]
    proxy = next(p for p in item.probability.proxies if p.id == "sor-statements")
    expected = aggregate_duckdb(PROJECT_ROOT / "data/sor/sample", Filters(
        platforms=("Sample Marketplace",), start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31)))
    count = expected.proxy(platform="Sample Marketplace", module="prohibited-controlled-products")
    assert proxy.incidents.value == count > 0
    assert "sor-global-2024-03-01-full.zip (sha256" in proxy.source and "rejected" in proxy.source


def test_cli_synth_and_aggregate(tmp_path, capsys):
    assert main(["sor", "synth", "--rows", "3000", "--days", "2", "--out", str(tmp_path / "d"), "--part-rows", "1000"]) == 0
    assert main(["sor", "aggregate", str(tmp_path / "d"), "--out", str(tmp_path / "t.csv")]) == 0
    assert pd.read_csv(tmp_path / "t.csv")["statements"].sum() > 2_900
    assert '"rows_read": 3000' in capsys.readouterr().err


# -- Spark -------------------------------------------------------------------------------------
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


@pytest.mark.skipif(_spark_unavailable() is not None, reason=str(_spark_unavailable()))
def test_spark_runs_the_same_sql_with_the_same_result(dump):
    duck, spark = aggregate_duckdb(dump), aggregate_spark(dump)
    pd.testing.assert_frame_equal(duck.table, spark.table, check_dtype=False)
    for key in ("rows_read", "rows_rejected", "rows_filtered_out", "rows_aggregated", "rejected_by_reason"):
        assert duck.provenance[key] == spark.provenance[key], key
    assert spark.provenance["engine"].startswith("spark")


def test_transparency_database_notebook_executes(tmp_path):
    import nbformat
    import papermill

    output = tmp_path / "80.ipynb"
    papermill.execute_notebook(str(PROJECT_ROOT / "notebooks/80_transparency_database.ipynb"), str(output),
                               kernel_name="python3", progress_bar=False)
    notebook = nbformat.read(output, as_version=4)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "Rejected rows, never dropped silently" in html and "Sample Marketplace: profile per risk module" in html
