"""A deterministic generator of statement-of-reasons dumps that writes what the Commission writes.

The published layout: per day an outer ``sor-global-<date>-full.zip`` (or ``-light``, stored)
holding inner ``.csv.zip`` files of CSV parts, each part with its header and no final newline,
and a ``.sha1`` file beside the outer zip. Rows are written as the Commission's PHP export
writes them (``fputcsv``: a field quoted only when it holds a space, comma, quote, backslash,
tab or newline; a quote doubled unless a backslash precedes it), dates with a time, schema
version 1 before 1 July 2025 and version 2 from then on, free text in several languages so
that rows average about 1.1 KB. At small configurable rates it also writes what real dumps
hold: the same statement twice, ``\\"`` escapes, invalid UTF-8 bytes, and malformed values (a
bad date, a broken array, an unknown category) for the reader's rejections to be tested.
Platforms and categories are skewed as in the real database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .sor_schema import allowed, eu_codes, headings, version_of

PLATFORMS = {  # name: (share of statements, categories it mostly sends, how its ids look)
    "Sample Marketplace": (0.30, ("PRODUCTS", "INTELLECTUAL_PROPERTY", "SCAMS", "CONSUMER"), "uuid"),
    "Video Platform": (0.25, ("SPEECH", "VIOLENCE", "MINORS", "SCOPE", "OTHER_VIOLATION"), "digits"),
    "Social Network": (0.20, ("SPEECH", "CIVIC", "SELF_HARM", "CYBER", "NON_CONSENSUAL"), "user"),
    "App Store": (0.12, ("SCOPE", "OTHER_VIOLATION", "DATA_PROTECTION", "INTELLECTUAL_PROPERTY"), "zeros"),
    "Search Engine": (0.08, ("INTELLECTUAL_PROPERTY", "DATA_PROTECTION"), "ad"),
    "Small Forum": (0.05, ("SPEECH", "SCOPE", "OTHER_VIOLATION"), "digits"),
}
MALFORMED = {
    "application_date": "2025-13-40 00:00:00",
    "content_type": "[CONTENT_TYPE_TEXT",
    "category": "STATEMENT_CATEGORY_NOT_A_CATEGORY",
}
SENTENCES = (  # free text in the languages real statements use
    "The content was removed because it infringes our policy on prohibited products.",
    "We proactively enforce our Community Guidelines through a mix of technology and human moderation.",
    "Your listing was found to violate the terms of service, section 4.2, and has been restricted.",
    "Der Inhalt verstößt gegen unsere Richtlinien und wurde daher entfernt.",
    "Le contenu a été retiré, car il enfreint nos règles relatives aux produits dangereux.",
    "Il contenuto è stato rimosso perché viola le nostre linee guida sulla sicurezza.",
    "Treść została usunięta, ponieważ narusza regulamin serwisu.",
    "您好！您的商品存在违规现象，现依据平台规则对商品进行处罚。",
    "تمت إزالة المحتوى لأنه ينتهك إرشادات المجتمع الخاصة بنا.",
    "This decision was taken pursuant to own-initiative investigations; you may appeal it in the app.",
)
BAD_MARK, BAD_BYTES = "\ue000", b"\xff\xfe"  # a private-use character stands for invalid UTF-8
WRITE_MARKS = set(' ,"\\\t\n\r')  # what makes PHP's fputcsv quote a field


@dataclass(frozen=True)
class Rates:
    """How often the generator writes what real dumps hold besides clean rows (shares of rows)."""

    malformed: float = 0.002
    duplicate: float = 0.0005
    escape: float = 0.0002
    bad_bytes: float = 0.0001

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0 <= value <= 0.5:
                raise InputError(f"the rate must be between 0 and 0.5, not {value}", field=name)


# -- PHP's fputcsv ---------------------------------------------------------------------------
def php_field(value: str) -> str:
    """One value as PHP's ``fputcsv`` writes it with its default escape character ``\\``."""
    if not WRITE_MARKS & set(value):
        return value
    out, escaped = ['"'], False
    for char in value:
        if char == "\\":
            escaped = True
        elif char == '"' and not escaped:
            out.append('"')
        else:
            escaped = False
        out.append(char)
    out.append('"')
    return "".join(out)


def php_csv(frame: pd.DataFrame) -> str:
    """A CSV part as the export writes it: the header, then one line per row, no final newline.
    Each distinct value of a column is written once (most columns hold few)."""
    columns = []
    for column in frame.columns:
        values = frame[column].tolist()
        written = {value: php_field(value) for value in dict.fromkeys(values)}
        columns.append([written[value] for value in values])
    return "\n".join([",".join(php_field(c) for c in frame.columns), *map(",".join, zip(*columns))])


def encode_part(text: str) -> bytes:
    """A part's bytes: UTF-8, with BAD_MARK written as bytes that are not UTF-8."""
    return text.encode("utf-8").replace(BAD_MARK.encode(), BAD_BYTES)


# -- rows ------------------------------------------------------------------------------------
def _choice(rng: np.random.Generator, values: Sequence[str], size: int, p: Sequence[float] | None = None) -> np.ndarray:
    return np.array(values, dtype=object)[rng.choice(len(values), size=size, p=p)]


def _texts(rng: np.random.Generator, mean_length: int, count: int = 64) -> list[str]:
    """A pool of free texts whose lengths average about ``mean_length`` characters."""
    pool = []
    for _ in range(count):
        target, text = rng.exponential(mean_length), []
        while sum(len(s) + 1 for s in text) < target:
            text.append(SENTENCES[rng.integers(len(SENTENCES))])
        pool.append(" ".join(text))
    return pool


def _uuids(rng: np.random.Generator, rows: int) -> np.ndarray:
    raw = np.frombuffer(rng.bytes(16 * rows), dtype=np.uint8).reshape(rows, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.tobytes().hex()
    return np.array([f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                     for h in (text[i:i + 32] for i in range(0, 32 * rows, 32))], dtype=object)


def _platform_uids(rng: np.random.Generator, platform: np.ndarray) -> np.ndarray:
    """Text ids as platforms send them: long digits, leading zeros, ``ad-<uuid>``, ``...-user``."""
    digits = rng.integers(10**9, 10**18, size=len(platform)).astype(str).astype(object)
    style = np.array([PLATFORMS[p][2] for p in platform], dtype=object)
    uids = digits.copy()
    uids[style == "zeros"] = "000" + digits[style == "zeros"]
    uids[style == "user"] = digits[style == "user"] + "-user"
    uids[style == "ad"] = "ad-" + _uuids(rng, int((style == "ad").sum()))
    uids[style == "uuid"] = _uuids(rng, int((style == "uuid").sum()))
    return uids


def _stamp(day: dt.date) -> str:
    return f"{day.isoformat()} 00:00:00"


def day_frame(day: dt.date, rows: int, *, seed: int, light: bool = False, rates: Rates = Rates()) -> pd.DataFrame:
    """One day's ``rows`` lines as the export writes them (text columns, the day's headings);
    duplicates are among the lines, each right after the statement it repeats."""
    version = version_of(day)
    rng = np.random.default_rng([seed, day.toordinal()])
    names = list(PLATFORMS)
    platform = _choice(rng, names, rows, p=[PLATFORMS[n][0] for n in names])
    known = allowed("category", version)
    category = np.empty(rows, dtype=object)
    for name, (_, favourites, _) in PLATFORMS.items():
        weights = np.array([8.0 if any(f in c for f in favourites) else 1.0 for c in known])
        where = platform == name
        category[where] = _choice(rng, known, int(where.sum()), p=weights / weights.sum())
    codes = eu_codes()
    scopes = np.array(["[" + ",".join(f'"{c}"' for c in codes) + "]", '["DE"]', '["FR","BE","LU"]', '["NL"]'],
                      dtype=object)
    content = np.array([f'["{c}"]' for c in allowed("content_type", version)]
                       + ['["CONTENT_TYPE_TEXT","CONTENT_TYPE_IMAGE"]'], dtype=object)
    ground = _choice(rng, allowed("decision_ground", version), rows, [0.25, 0.75])
    illegal = ground == "DECISION_GROUND_ILLEGAL_CONTENT"
    detection = rng.random(rows) < 0.7
    explanation = _choice(rng, _texts(rng, 170), rows)
    created = [f"{day.isoformat()} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
               for s in rng.integers(0, 86_400, rows)]
    data = {
        "uuid": _uuids(rng, rows),
        "decision_visibility": _choice(rng, ['["DECISION_VISIBILITY_CONTENT_REMOVED"]',
                                             '["DECISION_VISIBILITY_CONTENT_DISABLED"]', '["DECISION_VISIBILITY_OTHER"]',
                                             "[]"], rows, [0.55, 0.25, 0.05, 0.15]),
        "decision_monetary": _choice(rng, ["", "DECISION_MONETARY_SUSPENSION"], rows, [0.95, 0.05]),
        "decision_provision": _choice(rng, ["", "DECISION_PROVISION_PARTIAL_SUSPENSION"], rows, [0.9, 0.1]),
        "decision_account": _choice(rng, ["", "DECISION_ACCOUNT_SUSPENDED", "DECISION_ACCOUNT_TERMINATED"], rows,
                                    [0.85, 0.1, 0.05]),
        "account_type": _choice(rng, ["", "ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"], rows, [0.5, 0.2, 0.3]),
        "decision_ground": ground,
        "illegal_content_legal_ground": np.where(illegal, "Article 6 of the national consumer law", ""),
        "illegal_content_explanation": np.where(illegal, explanation, ""),
        "incompatible_content_ground": np.where(illegal, "", _choice(rng, ["Minimum Age Requirement",
                                                                           "Promotional overlay on image",
                                                                           "商品信息质量-搜索作弊", "Spam"], rows)),
        "incompatible_content_explanation": np.where(illegal, "", explanation),
        "category": category,
        "category_specification": _choice(rng, ["", '["KEYWORD_OTHER"]'], rows, [0.8, 0.2]),
        "content_type": content[rng.integers(0, len(content), rows)],
        "content_language": _choice(rng, ["", "EN", "DE", "FR", "ES", "IT", "PL", "NL"], rows),
        "content_date": _choice(rng, [_stamp(day - dt.timedelta(days=d)) for d in range(30)], rows),
        "content_id_ean": np.full(rows, "", dtype=object),
        "territorial_scope": scopes[rng.choice(len(scopes), rows, p=[0.85, 0.05, 0.05, 0.05])],
        "application_date": _choice(rng, [_stamp(day - dt.timedelta(days=d)) for d in range(3)], rows,
                                    [0.6, 0.3, 0.1]),
        "decision_facts": _choice(rng, _texts(rng, 210), rows),
        "source_type": _choice(rng, allowed("source_type", version), rows, [0.15, 0.03, 0.02, 0.80]),
        "automated_detection": np.where(detection, "Yes", "No").astype(object),
        "automated_decision": np.where(detection, _choice(rng, allowed("automated_decision", version), rows,
                                                          [0.6, 0.3, 0.1]), "AUTOMATED_DECISION_NOT_AUTOMATED"),
        "platform_name": platform,
        "platform_uid": _platform_uids(rng, platform),
        "created_at": np.array(created, dtype=object),
    }
    frame = pd.DataFrame({c: data.get(c, np.full(rows, "", dtype=object)) for c in headings(version, "light" if light
                                                                                          else "full")})
    for index, column in zip(np.flatnonzero(rng.random(rows) < rates.malformed),
                             rng.choice(list(MALFORMED), size=rows)):
        frame.at[index, column] = MALFORMED[column]
    text = "decision_facts" if not light else "incompatible_content_ground"
    for index in np.flatnonzero(rng.random(rows) < rates.escape):  # a value holding backslash-quote
        frame.at[index, text] = frame.at[index, text][:12] + '\\", he wrote \\"' + frame.at[index, text][12:]
    for index in np.flatnonzero(rng.random(rows) < rates.bad_bytes):  # a mark that becomes raw bytes when written
        frame.at[index, text] = frame.at[index, text][:7] + BAD_MARK + frame.at[index, text][7:]
    repeat = np.ones(rows, dtype=int)
    repeat[rng.random(rows) < rates.duplicate] = 2
    return frame.loc[np.repeat(np.arange(rows), repeat)[:rows]].reset_index(drop=True)


def _member(name: str, day: dt.date, compress: int) -> zipfile.ZipInfo:
    """A zip entry stamped with its day, not the clock: the same arguments give the same bytes."""
    info = zipfile.ZipInfo(name, date_time=(day.year, day.month, day.day, 0, 0, 0))
    info.compress_type = compress
    return info


def synthesize(out_dir: str | Path, *, rows: int, days: int, start: dt.date = dt.date(2025, 6, 29),
               seed: int = 0, light: bool = False, part_rows: int = 100_000, inner_rows: int = 1_000_000,
               rates: Rates = Rates()) -> list[Path]:
    """Write ``days`` daily dumps of ``rows`` lines in all, from ``start`` (the default spans
    the switch to schema version 2 on 1 July 2025), each with its ``.sha1`` beside it.
    Returns the outer zip files."""
    for name, value in (("rows", rows), ("days", days), ("part_rows", part_rows), ("inner_rows", inner_rows)):
        if value < 1:
            raise InputError(f"must be at least 1, not {value}", field=name)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", file=out)
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
                        frame = day_frame(day, min(part_rows, inner_count - part_start),
                                          seed=seed * 1_000_003 + inner_index * 10_007 + part_index,
                                          light=light, rates=rates)
                        inner.writestr(_member(f"{stem}-{inner_index:05d}-{part_index:05d}.csv", day,
                                               zipfile.ZIP_DEFLATED),
                                       encode_part(php_csv(frame)), compresslevel=1)
                outer.writestr(_member(inner_name, day, zipfile.ZIP_STORED), inner_buffer.getvalue())
        digest = hashlib.sha1(outer_path.read_bytes()).hexdigest()
        outer_path.with_name(outer_path.name + ".sha1").write_text(f"{digest}  {outer_path.name}\n")
        written.append(outer_path)
    return written
