"""A deterministic generator of statement-of-reasons dumps for tests and benchmarks.

It writes the published layout: per day an outer ``sor-global-<date>-full.zip`` (or
``-light``) holding inner ``.csv.zip`` files with CSV parts and a sha1 checksum beside each.
Platforms and categories are skewed as in the real database (a few platforms send most
statements, each platform its own mix of categories), and a small share of rows is malformed
(a bad date, a broken array, an unknown category) so the reader's rejections can be tested.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .sor import categories, schema

V2_FROM = dt.date(2025, 7, 1)
PLATFORMS = {  # name: (share of statements, categories it mostly sends)
    "Sample Marketplace": (0.30, ("PRODUCTS", "INTELLECTUAL_PROPERTY", "SCAMS", "CONSUMER")),
    "Video Platform": (0.25, ("SPEECH", "VIOLENCE", "MINORS", "SCOPE", "OTHER_VIOLATION")),
    "Social Network": (0.20, ("SPEECH", "CIVIC", "SELF_HARM", "CYBER", "NON_CONSENSUAL")),
    "App Store": (0.12, ("SCOPE", "OTHER_VIOLATION", "DATA_PROTECTION", "INTELLECTUAL_PROPERTY")),
    "Search Engine": (0.08, ("INTELLECTUAL_PROPERTY", "DATA_PROTECTION")),
    "Small Forum": (0.05, ("SPEECH", "SCOPE", "OTHER_VIOLATION")),
}
MALFORMED = {
    "application_date": "2025-13-40",
    "content_type": "[CONTENT_TYPE_TEXT",
    "category": "STATEMENT_CATEGORY_NOT_A_CATEGORY",
}


def columns_for(version: str, light: bool) -> list[str]:
    spec = schema()["columns"]
    columns = list(spec["v1"])
    if version == "v2":
        columns.insert(columns.index("content_date") + 1, "content_id_ean")
    if light:
        columns = [c for c in columns if c not in spec["light_dropped"]]
    return columns


def _platform_categories(version: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    known = list(categories()["version_1" if version == "v1" else "version_2"])
    mixes = {}
    for platform, (_, favourites) in PLATFORMS.items():
        weights = np.array([8.0 if any(f in c for f in favourites) else 1.0 for c in known])
        mixes[platform] = (np.array(known), weights / weights.sum())
    return mixes


def _choice(rng: np.random.Generator, values: list[str], size: int, p: list[float] | None = None) -> np.ndarray:
    return np.array(values, dtype=object)[rng.choice(len(values), size=size, p=p)]


def day_table(day: dt.date, rows: int, *, seed: int, light: bool, malformed_share: float) -> pa.Table:
    """One day's statements as an Arrow table of strings."""
    version = "v2" if day >= V2_FROM else "v1"
    rng = np.random.default_rng([seed, day.toordinal()])
    values = schema()["values"]
    names = list(PLATFORMS)
    platform = _choice(rng, names, rows, p=[PLATFORMS[n][0] for n in names])
    category = np.empty(rows, dtype=object)
    for name, (known, weights) in _platform_categories(version).items():
        where = platform == name
        category[where] = known[rng.choice(len(known), size=int(where.sum()), p=weights)]
    codes = values["territorial_scope"]
    scope_pick = rng.integers(0, len(codes), size=(rows, 2))
    content = np.array(['["CONTENT_TYPE_PRODUCT"]', '["CONTENT_TYPE_TEXT"]', '["CONTENT_TYPE_IMAGE"]',
                        '["CONTENT_TYPE_VIDEO"]', '["CONTENT_TYPE_TEXT","CONTENT_TYPE_IMAGE"]', '["CONTENT_TYPE_OTHER"]'],
                       dtype=object)
    detection = rng.random(rows) < 0.7
    data: dict[str, np.ndarray] = {
        "uuid": np.array([f"{day:%Y%m%d}-{seed:04d}-{i:09d}" for i in range(rows)], dtype=object),
        "decision_visibility": _choice(rng, ['["DECISION_VISIBILITY_CONTENT_REMOVED"]',
                                             '["DECISION_VISIBILITY_CONTENT_DISABLED"]', "[]"], rows, [0.6, 0.25, 0.15]),
        "decision_monetary": _choice(rng, ["", "DECISION_MONETARY_SUSPENSION"], rows, [0.95, 0.05]),
        "decision_provision": _choice(rng, ["", "DECISION_PROVISION_PARTIAL_SUSPENSION"], rows, [0.9, 0.1]),
        "decision_account": _choice(rng, ["", "DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"], rows,
                                    [0.85, 0.1, 0.05]),
        "account_type": _choice(rng, ["ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"], rows, [0.4, 0.6]),
        "decision_ground": _choice(rng, values["decision_ground"], rows, [0.25, 0.75]),
        "category": category,
        "content_type": content[rng.integers(0, len(content), rows)],
        "content_language": _choice(rng, ["EN", "DE", "FR", "ES", "IT", "PL", "NL"], rows),
        "content_date": np.full(rows, (day - dt.timedelta(days=2)).isoformat(), dtype=object),
        "territorial_scope": np.array([f'["{codes[a]}","{codes[b]}"]' for a, b in scope_pick], dtype=object),
        "application_date": np.full(rows, day.isoformat(), dtype=object),
        "source_type": _choice(rng, values["source_type"], rows, [0.15, 0.03, 0.02, 0.80]),
        "automated_detection": np.where(detection, "Yes", "No").astype(object),
        "automated_decision": np.where(detection, _choice(rng, values["automated_decision"], rows, [0.6, 0.3, 0.1]),
                                       "AUTOMATED_DECISION_NOT_AUTOMATED").astype(object),
        "platform_name": platform,
        "platform_uid": np.array([f"uid-{names.index(p)}" for p in platform], dtype=object),
        "created_at": np.full(rows, f"{day.isoformat()} 12:00:00", dtype=object),
        "content_id_ean": np.full(rows, "", dtype=object),
        "decision_facts": np.full(rows, "Decided under the terms and conditions.", dtype=object),
    }
    bad = np.flatnonzero(rng.random(rows) < malformed_share)
    for index, column in zip(bad, rng.choice(list(MALFORMED), size=len(bad))):
        data[column][index] = MALFORMED[column]
    columns = columns_for(version, light)
    return pa.table({c: pa.array(data.get(c, np.full(rows, "", dtype=object)), type=pa.string()) for c in columns})


def _csv_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style="needed"))
    return buffer.getvalue()


def _member(name: str, day: dt.date, compress: int) -> zipfile.ZipInfo:
    """A zip entry stamped with its day, not the clock: the same arguments give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = compress
    return info


def synthesize(out_dir: str | Path, *, rows: int, days: int, start: dt.date = dt.date(2025, 6, 29),
               seed: int = 0, light: bool = False, part_rows: int = 100_000, inner_rows: int = 1_000_000,
               malformed_share: float = 0.002) -> list[Path]:
    """Write ``days`` daily dumps of ``rows`` statements in all, from ``start`` (the default
    spans the switch to schema version 2 on 1 July 2025). Returns the outer zip files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kind = "light" if light else "full"
    per_day = [rows // days + (1 if i < rows % days else 0) for i in range(days)]
    written = []
    for offset, day_rows in enumerate(per_day):
        day = start + dt.timedelta(days=offset)
        stem = f"sor-global-{day.isoformat()}-{kind}"
        outer_path = out / f"{stem}.zip"
        with zipfile.ZipFile(outer_path, "w", zipfile.ZIP_STORED) as outer:
            for inner_index, inner_start in enumerate(range(0, day_rows, inner_rows)):
                inner_name = f"{stem}-{inner_index:05d}.csv.zip"
                inner_buffer = io.BytesIO()
                with zipfile.ZipFile(inner_buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as inner:
                    inner_count = min(inner_rows, day_rows - inner_start)
                    for part_index, part_start in enumerate(range(0, inner_count, part_rows)):
                        table = day_table(day, min(part_rows, inner_count - part_start),
                                          seed=seed * 1_000_003 + inner_index * 10_007 + part_index,
                                          light=light, malformed_share=malformed_share)
                        inner.writestr(_member(f"{stem}-{inner_index:05d}-{part_index:05d}.csv", day,
                                               zipfile.ZIP_DEFLATED), _csv_bytes(table), compresslevel=1)
                payload = inner_buffer.getvalue()
                outer.writestr(_member(inner_name, day, zipfile.ZIP_STORED), payload)
                outer.writestr(_member(f"{inner_name}.sha1", day, zipfile.ZIP_STORED),
                               hashlib.sha1(payload).hexdigest() + f"  {inner_name}\n")
        written.append(outer_path)
    return written
