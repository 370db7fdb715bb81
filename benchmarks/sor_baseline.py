"""The straightforward way: pandas reading each CSV part in chunks, the same filters and
aggregation in pandas. It is the benchmark's baseline and the tests' independent oracle.
``count_duckdb`` is the benchmark's scan floor: the DuckDB path's reading alone."""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from dsarisk.sources.sor import (MEASURES, NOT_MAPPED, Filters, batches, category_modules, discover, duckdb_source,
                                 iter_parts, schema)

DATE = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


def _csv_streams(path: Path) -> Iterator[io.BufferedIOBase]:
    if path.suffix == ".csv":
        yield path.open("rb")
        return
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".csv.zip"):
                with archive.open(member) as raw, zipfile.ZipFile(io.BytesIO(raw.read())) as inner:
                    for name in inner.namelist():
                        if name.endswith(".csv"):
                            yield inner.open(name)
            elif member.endswith(".csv"):
                yield archive.open(member)


def _valid_array(series: pd.Series, item: str) -> pd.Series:
    return series.fillna("[]").str.fullmatch(r"\[( *\"" + item + r"\" *,?)*\]")


def aggregate_pandas(path: str | Path, filters: Filters = Filters(), *, chunksize: int = 100_000) -> pd.DataFrame:
    values, modules = schema()["values"], category_modules()
    eu = "|".join(values["territorial_scope"])
    frames = []
    for file in discover(path):
        for stream in _csv_streams(file):
            with stream:
                for chunk in pd.read_csv(stream, dtype=str, keep_default_na=False, chunksize=chunksize):
                    valid = (chunk["application_date"].str.match(DATE) & chunk["category"].isin(list(modules))
                             & chunk["decision_ground"].isin(values["decision_ground"])
                             & chunk["source_type"].isin(values["source_type"])
                             & chunk["automated_detection"].isin(values["automated_detection"])
                             & chunk["automated_decision"].isin(values["automated_decision"])
                             & _valid_array(chunk["content_type"], "[A-Z_]+")
                             & _valid_array(chunk["decision_visibility"], "[A-Z_]+"))
                    has_scope = "territorial_scope" in chunk
                    if has_scope:
                        valid &= _valid_array(chunk["territorial_scope"], "[A-Z]{2}")
                    keep = valid
                    if filters.platforms:
                        keep &= chunk["platform_name"].isin(filters.platforms)
                    if filters.start:
                        keep &= chunk["application_date"] >= filters.start.isoformat()
                    if filters.end:
                        keep &= chunk["application_date"] <= filters.end.isoformat()
                    if filters.eu_only and has_scope:
                        keep &= chunk["territorial_scope"].str.contains(f'"(?:{eu})"')
                    rows = chunk[keep]
                    out = pd.DataFrame({
                        "platform": rows["platform_name"],
                        "module": rows["category"].map(lambda c: modules[c] or NOT_MAPPED),
                        "month": rows["application_date"].str[:7],
                        "statements": 1,
                        "illegal": rows["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT",
                        "incompatible": rows["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT",
                        "own_initiative": rows["source_type"] == "SOURCE_VOLUNTARY",
                        "notices": rows["source_type"] == "SOURCE_ARTICLE_16",
                        "trusted_flaggers": rows["source_type"] == "SOURCE_TRUSTED_FLAGGER",
                        "other_notifications": rows["source_type"] == "SOURCE_TYPE_OTHER_NOTIFICATION",
                        "automated_detection": rows["automated_detection"] == "Yes",
                        "automated_decision_full": rows["automated_decision"] == "AUTOMATED_DECISION_FULLY",
                        "automated_decision_partial": rows["automated_decision"] == "AUTOMATED_DECISION_PARTIALLY",
                        "visibility": ~rows["decision_visibility"].isin(["", "[]"]),
                        "account": rows["decision_account"] != "",
                        "provision": rows["decision_provision"] != "",
                        "monetary": rows["decision_monetary"] != "",
                        **{f"content_{v.removeprefix('CONTENT_TYPE_').lower()}":
                           rows["content_type"].str.contains(f'"{v}"', regex=False) for v in values["content_type"]},
                    })
                    frames.append(out.groupby(["platform", "module", "month"], as_index=False).sum())
    assert set(MEASURES) <= set(frames[0].columns)
    table = pd.concat(frames).groupby(["platform", "module", "month"], as_index=False).sum()
    return table.sort_values(["platform", "module", "month"], ignore_index=True).astype(
        {c: "int64" for c in table.columns if c not in ("platform", "module", "month")})


def count_duckdb(path: str | Path, *, batch_parts: int = 10) -> int:
    """Rows in the dump, read the way ``aggregate_duckdb`` reads them (the same parts in the
    same batches, the same CSV options, every column text) but only counted: reading alone."""
    import duckdb

    connection, rows, records = duckdb.connect(), 0, []  # type: ignore[var-annotated]
    with tempfile.TemporaryDirectory(prefix="sor-scan-") as workdir:
        for batch in batches(iter_parts(discover(path), Path(workdir), records), batch_parts):
            rows += connection.execute(f"SELECT count(*) FROM {duckdb_source(batch)}").fetchone()[0]
            for part in batch:
                part.release()
    return rows
