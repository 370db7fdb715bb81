"""Reading the Transparency Database's dump files into the parts an engine scans.

A dump file is a CSV, a zipped CSV, the published nested daily zip (an outer zip, its members
stored, of inner ``.csv.zip`` archives of CSV parts) or Parquet. Each CSV part held in an
archive reaches the engines as a plain CSV file, inflated once by background threads that
run a few parts ahead of the engine. As it writes a part, a thread checks its CRC-32 and
size against the archive's directory, counts its lines and finds the lines that are not valid
UTF-8: the engines then parse plain text on every core, nothing is inflated twice, and an
engine that does not check encodings (Spark, or DuckDB on the columns it does not read)
misses no invalid byte. zlib-ng inflates and computes CRC-32s (zlib's API, faster than the
zlib Python is built with: the part of a run that is not the engine's).
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import re
import shutil
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from zlib_ng import zlib_ng

from ..hashing import sha256_file
from .sor_schema import SorError, check_header, version_of

MAX_EXAMPLES = 3
CHUNK = 1 << 20
# Parts extracted ahead of the engine, by two threads: enough to keep the engine busy, few
# enough that the plain copies on disk stay under a gigabyte (a published part holds up to
# 100,000 rows, about 110 MB).
EXTRACTORS, PARTS_AHEAD = 2, 4
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name's and the extra field's lengths


@dataclass
class FileRecord:
    name: str
    sha256: str
    layout: str
    parts: int = 0
    schema_version: str = ""
    dump: str = ""
    rows_read: int = 0
    territorial_filter: str = ""
    schema_by_date: str = ""  # the version in force on the day the file is named after, if any


@dataclass(frozen=True)
class PartCheck:
    """What reading a CSV part's bytes found: its rows counted as lines after the header (real
    parts have no newline inside a field: the count an engine's rows must match) and its lines
    that are not valid UTF-8, with the first few line numbers (the header is line 1)."""

    rows: int
    invalid_utf8: int = 0
    invalid_utf8_lines: tuple[int, ...] = ()


@dataclass
class Part:
    """A CSV or Parquet part as the engines read it, and the dump file it belongs to."""

    origin: str
    path: Path
    columns: list[str]
    record: FileRecord
    kind: str = "csv"  # or "parquet"
    extracted: bool = False
    check: Future[PartCheck] | None = None

    def verify(self) -> PartCheck | None:
        """Wait until the part is written and checked (raises SorError when its archive, CRC-32
        or size is wrong); None for Parquet. An engine calls it before it reads the part."""
        return self.check.result() if self.check is not None else None

    def release(self) -> None:
        """Remove the part's extracted copy once an engine has read it."""
        if self.extracted:
            self.path.unlink(missing_ok=True)


def _schema_by_date(name: str) -> str:
    """The schema version in force on the date in a dump's name (empty when it has none)."""
    match = re.search(r"(\d{4}-\d{2}-\d{2})", name)
    try:
        return version_of(dt.date.fromisoformat(match[1])) if match else ""
    except ValueError:
        return ""


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


# -- checking a part's bytes -----------------------------------------------------------------
def _valid_utf8(block: bytes | bytearray | memoryview) -> bool:
    """Whether ``block`` is valid UTF-8, checked by Arrow (several GB/s, where decoding in
    Python runs at a few hundred MB/s)."""
    import pyarrow as pa

    offsets = pa.py_buffer(struct.pack("<qq", 0, len(block)))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(block)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _newlines(data: bytes) -> int:
    """The newlines in ``data``: numpy counts them about four times as fast as ``bytes.count``,
    without holding the interpreter lock (two threads scan at once)."""
    import numpy as np

    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


class _Scanner:
    """Counts a CSV part's lines and finds those that are not valid UTF-8, fed chunk by chunk;
    a line cut by a chunk's end is checked whole with the next chunk."""

    def __init__(self) -> None:
        self.newlines, self.last, self.pending = 0, b"\n", bytearray()
        self.invalid, self.examples = 0, []  # type: ignore[var-annotated]

    def add(self, data: bytes) -> None:
        if not data:
            return
        first = data.find(b"\n")
        if first < 0:
            self.pending += data
        else:
            cut = data.rfind(b"\n") + 1
            self._check(self.pending + data[: first + 1], self.newlines + 1)
            self._check(memoryview(data)[first + 1: cut], self.newlines + 2)
            self.newlines += _newlines(data)
            self.pending = bytearray(data[cut:])
        self.last = data[-1:]

    def _check(self, block: bytes | bytearray | memoryview, first_line: int) -> None:
        """Find the invalid lines of ``block``, whose first line has number ``first_line``
        (rare, so only a block Arrow finds invalid is checked line by line)."""
        if not block or _valid_utf8(block):
            return
        for number, line in enumerate(bytes(block).split(b"\n"), first_line):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid += 1
                if len(self.examples) < MAX_EXAMPLES:
                    self.examples.append(number)

    def finish(self) -> PartCheck:
        self._check(self.pending, self.newlines + 1)
        lines = self.newlines + (self.last != b"\n")
        return PartCheck(max(lines - 1, 0), self.invalid, tuple(self.examples))


@contextlib.contextmanager
def _archive_errors(origin: str | Path, *more: type[Exception]) -> Iterator[None]:
    """Turn what zipfile and zlib raise on a damaged archive into one SorError naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, zlib_ng.error, EOFError, *more) as exc:
        raise SorError(f"truncated or corrupt archive ({exc})", file=origin) from None


def _member_data(handle: BinaryIO, size: int, inflater: Any, origin: str) -> Iterator[bytes]:
    """A member's ``size`` stored bytes, inflated when ``inflater`` is given, a few MB at a
    time (a small member can inflate to a thousand times its size)."""
    remaining = size
    while remaining:
        chunk = handle.read(min(CHUNK, remaining))
        if not chunk:
            raise SorError("truncated or corrupt archive (a member ends early)", file=origin)
        remaining -= len(chunk)
        if inflater is None:
            yield chunk
            continue
        while chunk:
            yield inflater.decompress(chunk, 4 * CHUNK)
            chunk = inflater.unconsumed_tail


def _extract(source: Path, info: zipfile.ZipInfo, target: Path, origin: str) -> PartCheck:
    """Write a deflated or stored member of the archive ``source`` to ``target`` as plain CSV,
    holding its CRC-32 and size against the archive's directory, and scan it."""
    scanner, crc, length = _Scanner(), 0, 0
    inflater = zlib_ng.decompressobj(-zlib_ng.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    with _archive_errors(origin, OSError), source.open("rb") as handle, target.open("wb") as out:
        handle.seek(info.header_offset)
        signature, name_length, extra_length = LOCAL_HEADER.unpack(handle.read(LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise SorError("truncated or corrupt archive (bad local header)", file=origin)
        handle.seek(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)
        for data in _member_data(handle, info.compress_size, inflater, origin):
            length += len(data)
            if length > info.file_size:
                break  # longer than the directory says: reported below, without filling the disk
            out.write(data)
            crc = zlib_ng.crc32(data, crc)
            scanner.add(data)
    if (inflater is not None and not inflater.eof) or crc != info.CRC or length != info.file_size:
        raise SorError(f"truncated or corrupt archive (CRC-32 {crc:08x} and {length:,} bytes, "
                       f"the archive says {info.CRC:08x} and {info.file_size:,})", file=origin)
    return scanner.finish()


def _scan_file(path: Path, origin: str) -> PartCheck:
    """Scan a plain CSV part where it lies."""
    scanner = _Scanner()
    with _archive_errors(origin, OSError), path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            scanner.add(chunk)
    return scanner.finish()


# -- the parts of the dump files -------------------------------------------------------------
def _header(line: bytes) -> list[str]:
    """A CSV header line's column names."""
    return next(csv.reader(io.StringIO(line.decode("utf-8", errors="replace"))), [])


def _remove_when_done(path: Path, extractions: list[Future[PartCheck]]) -> None:
    """Remove ``path`` once the extractions reading it have ended (or now, if none is queued)."""
    remaining, lock = [len(extractions)], threading.Lock()

    def one_ended(_: Future[PartCheck]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            path.unlink(missing_ok=True)

    if not extractions:
        path.unlink(missing_ok=True)
    for extraction in extractions:
        extraction.add_done_callback(one_ended)


def _zip_parts(archive: zipfile.ZipFile, source: Path, origin: str, workdir: Path, record: FileRecord,
               pool: Executor) -> Iterator[Part]:
    """The CSV parts of ``archive`` (the file ``source``), each queued for extraction."""
    # several files' parts can wait on disk at once: their extracted names must not collide
    prefix = hashlib.sha1(origin.encode()).hexdigest()[:12]
    for info in archive.infolist():
        name = f"{origin}!{info.filename}"
        if info.filename.endswith(".csv.zip"):
            spool, extractions = workdir / f"{prefix}-{record.parts:06d}.zip", []
            try:  # spooled to disk (zipfile checks the outer CRC as it copies): memory stays flat
                with _archive_errors(name, OSError):
                    with archive.open(info) as stream, spool.open("wb") as out:
                        shutil.copyfileobj(stream, out, CHUNK)
                    inner = zipfile.ZipFile(spool)
                with inner:
                    for part in _zip_parts(inner, spool, name, workdir, record, pool):
                        extractions.append(part.check)
                        yield part
            finally:
                _remove_when_done(spool, extractions)
        elif info.filename.endswith(".csv"):
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SorError(f"compression method {info.compress_type} is not read (the Commission's dumps "
                               "are deflated or stored)", file=name)
            with _archive_errors(name, OSError), archive.open(info) as stream:
                columns = _header(stream.readline())
            target = workdir / f"{prefix}-{record.parts:06d}.csv"
            record.parts += 1
            yield Part(name, target, columns, record, extracted=True,
                       check=pool.submit(_extract, source, info, target, name))


def iter_parts(files: Sequence[Path], workdir: Path, pool: Executor,
               digests: Mapping[Path, str]) -> Iterator[Part]:
    """Each CSV or Parquet part of ``files``, one at a time, with a FileRecord per file (its
    SHA-256 from ``digests``, or computed); a zipped part is queued on ``pool`` for extraction
    to ``workdir`` as it is yielded."""
    for path in files:
        sha256 = digests.get(path) or sha256_file(path)
        record = FileRecord(path.name, sha256, layout="", schema_by_date=_schema_by_date(path.name))
        if path.name.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                columns = pq.read_schema(path).names
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise SorError(f"unreadable Parquet file ({exc})", file=path) from None
            record.layout, record.parts = "parquet", 1
            yield Part(path.name, path, columns, record, kind="parquet")
        elif path.name.endswith(".zip"):
            with _archive_errors(path, OSError):
                archive = zipfile.ZipFile(path)
            with archive:
                record.layout = ("nested zip" if any(m.endswith(".csv.zip") for m in archive.namelist())
                                 else "zipped csv")
                yield from _zip_parts(archive, path, path.name, workdir, record, pool)
            if record.parts == 0:
                raise SorError("the archive holds no CSV part", file=path)
        else:
            with path.open("rb") as handle:
                columns = _header(handle.readline())
            record.layout, record.parts = "csv", 1
            yield Part(path.name, path, columns, record, check=pool.submit(_scan_file, path, path.name))


def checked_parts(parts: Iterable[Part]) -> Iterator[Part]:
    """``parts``, each header checked and its schema version and dump kind written into its
    file's record."""
    for part in parts:
        version, dump = check_header(part.columns, part.origin)
        record = part.record
        if record.schema_version and (record.schema_version, record.dump) != (version, dump):
            raise SorError(f"parts of one file mix headings ({record.schema_version} {record.dump} "
                           f"and {version} {dump})", file=part.origin)
        record.schema_version, record.dump = version, dump
        record.territorial_filter = ("applied" if "territorial_scope" in part.columns
                                     else "not applicable: a light dump has no territorial_scope")
        yield part


def _ahead(items: Iterator[Part], count: int) -> Iterator[Part]:
    """``items``, with ``count`` of them taken ahead of the consumer (taking a part queues its
    extraction, which then runs while the engine reads the parts before it)."""
    window = collections.deque(itertools.islice(items, count))
    for item in items:
        window.append(item)
        yield window.popleft()
    yield from window


def _by_file(parts: Iterator[Part]) -> Iterator[tuple[FileRecord, Iterator[Part]]]:
    for _, group in itertools.groupby(parts, key=lambda part: id(part.record)):
        first = next(group)
        yield first.record, itertools.chain([first], group)


@contextlib.contextmanager
def reading(files: Sequence[Path], digests: Mapping[Path, str] | None = None
            ) -> Iterator[Iterator[tuple[FileRecord, Iterator[Part]]]]:
    """Each file's record and its checked parts, one file at a time; zipped parts are
    extracted by background threads, a few parts ahead (across files). On exit the threads
    are stopped and the extracted copies are removed. ``digests`` holds the SHA-256 of files
    the caller hashed already (the cache keys them by it): no file is hashed twice."""
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-") as workdir:
        pool = ThreadPoolExecutor(max_workers=EXTRACTORS, thread_name_prefix="dsarisk-sor-extract")
        try:
            yield _by_file(_ahead(checked_parts(iter_parts(files, Path(workdir), pool, digests or {})), PARTS_AHEAD))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def batches(parts: Iterable[Part], size: int) -> Iterator[list[Part]]:
    """Consecutive parts of one file with the same columns and kind, at most ``size`` at a
    time: what one engine query reads."""
    batch: list[Part] = []
    for part in parts:
        if batch and (part.columns != batch[0].columns or part.kind != batch[0].kind
                      or part.record is not batch[0].record or len(batch) >= size):
            yield batch
            batch = []
        batch.append(part)
    if batch:
        yield batch


# -- rows an RFC 4180 reader cannot take -----------------------------------------------------
class PhpDialect(csv.Dialect):
    """PHP's ``fputcsv`` as the Commission's export used it: a quote inside a quoted field is
    doubled, except after a backslash (PHP's escape character), where it stays single."""

    delimiter, quotechar, escapechar, doublequote = ",", '"', "\\", True
    skipinitialspace, lineterminator, quoting, strict = False, "\n", csv.QUOTE_MINIMAL, False


PHP_ESCAPE = 'read with PHP\'s \\" escape'
UNREADABLE = "unreadable CSV row"


def php_fields(line: str, width: int) -> tuple[list[str] | None, str]:
    """A CSV line the way the program that wrote it means it: ``width`` fields, or None.
    PHP's escape first, then the RFC 4180 reading (a value that ends in a backslash is
    written ``...\\"`` and only the second reads it). Returns the fields and how they were read."""
    for dialect, how in ((PhpDialect, PHP_ESCAPE), (csv.excel, "")):
        try:
            fields = next(csv.reader([line], dialect), [])
        except csv.Error:  # an unterminated quote, say
            continue
        if len(fields) == width:
            return fields, how if '\\"' in line else ""
    return None, UNREADABLE
