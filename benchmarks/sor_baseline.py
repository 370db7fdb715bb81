"""The straightforward way: pandas reading each CSV part in chunks (PHP's escape character
given, so that ``\\"`` inside a quoted field does not close it), the same checks, filters,
duplicate removal and aggregation in pandas. It is the benchmark's baseline and the tests'
independent oracle. ``count_duckdb`` is the benchmark's scan floor: DuckDB inflating and
counting the parts, with nothing of dsarisk's reading (no check, no extraction)."""

from __future__ import annotations

import csv
import io
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from dsarisk.sources.sor import (ARRAY_COLUMNS, DATE_PATTERN, MAY_BE_EMPTY, MEASURES, NOT_MAPPED, UUID_PATTERN,
                                 VALUE_COLUMNS, Filters, duckdb_source)
from dsarisk.sources.sor_dumps import discover
from dsarisk.sources.sor_schema import allowed, category_modules, eu_codes


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


def _valid_array(series: pd.Series, items: list[str]) -> pd.Series:
    return series.replace("", "[]").str.fullmatch(r"\[( *\"(" + "|".join(items) + r")\" *,?)*\]")


def _checked(chunk: pd.DataFrame, filters: Filters, seen: set[str]) -> pd.DataFrame:
    """The chunk's rows that are new, valid and kept by the filters."""
    version = "v2" if "content_id_ean" in chunk else "v1"
    well_formed = chunk["uuid"].str.fullmatch(UUID_PATTERN)
    duplicate = well_formed & (chunk["uuid"].duplicated() | chunk["uuid"].isin(seen))
    seen.update(chunk.loc[well_formed, "uuid"])
    chunk = chunk[~duplicate]
    valid = chunk["uuid"].str.fullmatch(UUID_PATTERN) & (chunk["platform_name"] != "")
    valid &= chunk["application_date"].str.fullmatch(DATE_PATTERN)
    for column in VALUE_COLUMNS:
        valid &= chunk[column].isin(allowed(column, version) + ([""] if column in MAY_BE_EMPTY else []))
    for column in ARRAY_COLUMNS:
        valid &= _valid_array(chunk[column], allowed(column, version))
    has_scope = "territorial_scope" in chunk
    if has_scope:
        valid &= _valid_array(chunk["territorial_scope"], eu_codes())
    keep = valid
    day = chunk["application_date"].str[:10]
    if filters.platforms:
        keep &= chunk["platform_name"].isin(filters.platforms)
    if filters.start:
        keep &= day >= filters.start.isoformat()
    if filters.end:
        keep &= day <= filters.end.isoformat()
    if filters.eu_only and has_scope:
        keep &= chunk["territorial_scope"].str.contains(f'"(?:{"|".join(eu_codes())})"')
    return chunk[keep]


def aggregate_pandas(path: str | Path, filters: Filters = Filters(), *, chunksize: int = 100_000) -> pd.DataFrame:
    modules = category_modules()
    frames = []
    for file in discover(path):
        seen: set[str] = set()  # duplicates are found within each dump file
        for stream in _csv_streams(file):
            with stream:
                for chunk in pd.read_csv(stream, dtype=str, keep_default_na=False, chunksize=chunksize,
                                         escapechar="\\", encoding_errors="replace"):
                    rows = _checked(chunk, filters, seen)
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
                           rows["content_type"].str.contains(f'"{v}"', regex=False)
                           for v in allowed("content_type", "v2")},
                    })
                    frames.append(out.groupby(["platform", "module", "month"], as_index=False).sum())
    if set(MEASURES) - set(frames[0].columns):
        raise ValueError("the baseline does not compute every measure")
    table = pd.concat(frames).groupby(["platform", "module", "month"], as_index=False).sum()
    return table.sort_values(["platform", "module", "month"], ignore_index=True).astype(
        {c: "int64" for c in table.columns if c not in ("platform", "module", "month")})


GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name's and the extra field's lengths


def _as_gzip(archive: zipfile.ZipFile, data: bytes, info: zipfile.ZipInfo, target: Path) -> Path:
    """A deflated member of ``archive`` (whose bytes are ``data``) written as a gzip file
    without inflating it: both carry the same raw DEFLATE stream; gzip adds a 10-byte header
    and a trailer of CRC-32 and size, both known from the zip directory."""
    _, name_length, extra_length = LOCAL_HEADER.unpack_from(data, info.header_offset)
    start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    target.write_bytes(GZIP_HEADER + data[start:start + info.compress_size]
                       + struct.pack("<II", info.CRC, info.file_size & 0xFFFFFFFF))
    return target


def count_duckdb(path: str | Path) -> int:
    """Rows in a dump of nested zips, at the bare cost of reading them: each inner zip's
    deflated parts handed to DuckDB as gzip (no byte inflated in Python), read with the same
    CSV options as dsarisk, every column text, and only counted (no check of any kind)."""
    import duckdb

    connection, rows = duckdb.connect(), 0
    connection.execute("SET enable_progress_bar = false")
    with tempfile.TemporaryDirectory(prefix="sor-scan-") as workdir:
        for file in discover(path):
            with zipfile.ZipFile(file) as outer:
                for member in outer.namelist():
                    data = outer.read(member)  # stored in the outer zip: a copy, nothing inflated
                    with zipfile.ZipFile(io.BytesIO(data)) as inner:
                        infos = inner.infolist()
                        with inner.open(infos[0]) as first:
                            columns = next(csv.reader([first.readline().decode()]))
                        parts = [_as_gzip(inner, data, info, Path(workdir) / f"{n}.csv.gz")
                                 for n, info in enumerate(infos)]
                    rows += connection.execute(
                        f"SELECT count(*) FROM {duckdb_source(parts, columns, keep_rejects=False)}").fetchone()[0]
                    for part in parts:
                        part.unlink()
    return rows
