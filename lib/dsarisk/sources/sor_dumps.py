"""Reading the Transparency Database's dump files into the parts an engine scans.

A dump file is a CSV, a zipped CSV, the published nested daily zip (an outer zip, its members
stored, of inner ``.csv.zip`` archives of CSV parts) or Parquet. Each CSV part held in an
archive reaches the engines as a plain CSV file, inflated once by background threads that
run a few parts ahead of the engine. As it writes a part, a thread checks its CRC-32 and
size against the archive's directory, counts its lines and finds the lines that are not valid
UTF-8: the engines then parse plain text on every core, nothing is inflated twice, and an
engine that does not check encodings (Spark, or DuckDB on the columns it does not read)
misses no invalid byte. zlib-ng inflates and computes CRC-32s (zlib's API, faster than the
zlib Python is built with: the part of a run that is not the engine's). An engine may also
hand :func:`reading` a loader, which the same thread runs on each part instead, handing it
the part in pieces as it inflates and scans them (the DuckDB engine reads the columns it
needs there, while DuckDB works on earlier parts): such a part reaches the disk only when
the loader leaves it to the engine.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import functools
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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Callable

from zlib_ng import zlib_ng

from ..hashing import sha256_file
from .sor_schema import SorError, check_header, version_of

MAX_EXAMPLES = 3
# Bytes of a member inflated (or read) at a time: a chunk stays in the cache while it is
# checked, scanned and copied on, and the allocator reuses its memory from one to the next.
CHUNK = 1 << 20
# Parts extracted ahead of the engine, by two threads: enough to keep the engine busy, few
# enough that the plain copies on disk stay under a gigabyte (a published part holds up to
# 100,000 rows, about 110 MB).
EXTRACTORS, PARTS_AHEAD = 2, 4
# A part is handed to a loader when no larger than this (what it makes of the part is held
# in memory until the engine reads it).
IN_MEMORY = 256 << 20
# A loader is handed a part in pieces of about this many bytes, each ending with a line: glibc
# serves a block under 32 MB from memory it reuses, and maps a larger one afresh, a page fault
# per 4 KB: a whole 110 MB part in memory cost a second of kernel time per million rows.
PIECE = 16 << 20
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
    parts have no newline inside a field: the count an engine's rows must match), its lines
    that are not valid UTF-8, with the first few line numbers (the header is line 1), its PHP
    escapes (``\\"``, where an RFC 4180 reading and PHP's differ) and its carriage returns
    (which CSV readers take apart: PHP quotes a value holding one). ``loaded`` is what the
    engine's loader made of the part, if it was given one."""

    rows: int
    invalid_utf8: int = 0
    invalid_utf8_lines: tuple[int, ...] = ()
    php_escapes: int = 0
    carriage_returns: int = 0
    loaded: Any = None


class Pieces:
    """A CSV part as the extraction threads hand it to a loader: its columns, and, iterated,
    its bytes in pieces that each end with a line (the last may not), with the lines to skip
    before the first row (the header, in the first piece). ``check`` is what the scan found in
    the pieces so far: a piece is scanned before it is handed on, and the part is held against
    its archive's directory (CRC-32, size) as its last piece is taken."""

    def __init__(self, columns: list[str], chunks: Iterator[bytes]) -> None:
        self.columns, self._scanner, self._check = columns, _Scanner(), None
        self._pieces = self._cut(chunks)

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        return self._pieces

    def close(self) -> None:
        self._pieces.close()

    def _cut(self, chunks: Iterator[bytes]) -> Iterator[tuple[bytes, int]]:
        skip, held, size = 1, [], 0
        with contextlib.closing(chunks):  # (the member's file is closed with the pieces)
            for data in chunks:
                self._scanner.add(data)
                held.append(data)
                size += len(data)
                end = data.rfind(b"\n") + 1
                if size >= PIECE and end:  # (a line longer than a piece waits for its end)
                    yield b"".join([*held[:-1], data[:end]]), skip
                    skip, held = 0, [data[end:]]
                    size = len(held[0])
        self._check = self._scanner.finish()
        if size:
            yield b"".join(held), skip

    @property
    def check(self) -> PartCheck:
        """What the scan found so far; with the line count once every piece is taken."""
        return self._check if self._check is not None else self._scanner.so_far()


# what an engine may have the extraction threads do with each CSV part, in pieces: anything
# the engine reads later, made of every piece, or None to read the part from a plain copy on
# disk (written then: the part is inflated again)
Loader = Callable[[Pieces], Any]


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


def _counts(data: bytes) -> tuple[int, int, int]:
    """The newlines in ``data``, its backslashes followed by a quote (one cut by the end of
    ``data`` is the caller's to see) and its carriage returns: numpy counts newlines about
    four times as fast as ``bytes.count``, without holding the interpreter lock (two threads
    scan at once); the rare backslashes and carriage returns are only counted when ``in``
    (a ``memchr``) finds one."""
    import numpy as np

    values = np.frombuffer(data, dtype=np.uint8)
    escapes = 0
    if b"\\" in data:
        backslashes = np.flatnonzero(values[:-1] == 92)
        escapes = int(np.count_nonzero(values[backslashes + 1] == 34))
    return int(np.count_nonzero(values == 10)), escapes, data.count(b"\r") if b"\r" in data else 0


class _Scanner:
    """Counts a CSV part's lines, PHP escapes and carriage returns and finds the lines that are
    not valid UTF-8, fed chunk by chunk; a line cut by a chunk's end is checked whole with the
    next chunk."""

    def __init__(self) -> None:
        self.newlines, self.escapes, self.returns, self.last, self.pending = 0, 0, 0, b"\n", bytearray()
        self.invalid, self.examples = 0, []  # type: ignore[var-annotated]

    def add(self, data: bytes) -> None:
        if not data:
            return
        newlines, escapes, returns = _counts(data)
        self.escapes += escapes + (self.last == b"\\" and data[:1] == b'"')
        self.returns += returns
        first = data.find(b"\n")
        if first < 0:
            self.pending += data
        else:
            cut = data.rfind(b"\n") + 1
            self._check(self.pending + data[: first + 1], self.newlines + 1)
            self._check(memoryview(data)[first + 1: cut], self.newlines + 2)
            self.newlines += newlines
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

    def so_far(self) -> PartCheck:
        """What the lines scanned whole so far hold (their count aside)."""
        return PartCheck(0, self.invalid, tuple(self.examples), self.escapes, self.returns)

    def finish(self) -> PartCheck:
        self._check(self.pending, self.newlines + 1)
        lines = self.newlines + (self.last != b"\n")
        return PartCheck(max(lines - 1, 0), self.invalid, tuple(self.examples), self.escapes, self.returns)


@contextlib.contextmanager
def _archive_errors(origin: str | Path, *more: type[Exception]) -> Iterator[None]:
    """Turn what zipfile and zlib raise on a damaged archive into one SorError naming it."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, zlib_ng.error, EOFError, NotImplementedError, *more) as exc:
        raise SorError(f"truncated or corrupt archive ({exc})", file=origin) from None


def _member_data(handle: BinaryIO, size: int, inflater: Any, origin: str) -> Iterator[bytes]:
    """A member's ``size`` stored bytes, inflated when ``inflater`` is given, at most CHUNK
    bytes at a time (a small member can inflate to a thousand times its size)."""
    remaining = size
    # text inflates to about eight times its size: a read makes a chunk or two (a larger read
    # is copied again, as the inflater's unconsumed tail, for every chunk it makes)
    read = CHUNK if inflater is None else CHUNK // 8
    while remaining:
        chunk = handle.read(min(read, remaining))
        if not chunk:
            raise SorError("truncated or corrupt archive (a member ends early)", file=origin)
        remaining -= len(chunk)
        if inflater is None:
            yield chunk
            continue
        while chunk:
            yield inflater.decompress(chunk, CHUNK)
            chunk = inflater.unconsumed_tail


class _Window(io.RawIOBase):
    """``size`` bytes of an open file from ``start`` on, read as a file of their own."""

    def __init__(self, handle: BinaryIO, start: int, size: int) -> None:
        super().__init__()
        self._handle, self._start, self._size, self._position = handle, start, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._position = max((0, self._position, self._size)[whence] + offset, 0)
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        self._handle.seek(self._start + self._position)
        got = self._handle.readinto(memoryview(buffer)[:max(self._size - self._position, 0)])
        self._position += got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


@dataclass(frozen=True)
class Region:
    """Where an archive lies: a whole file, or the stored bytes of a member of another archive
    (a published daily dump's inner zips are stored in it, and read where they lie)."""

    path: Path
    start: int = 0
    size: int | None = None  # to the end of the file

    def open(self) -> BinaryIO:
        handle = self.path.open("rb")
        if self.size is None:
            return handle
        return io.BufferedReader(_Window(handle, self.start, self.size))  # type: ignore[return-value]

    def member(self, info: zipfile.ZipInfo, bound: int, origin: str) -> Region:
        """Where the stored bytes of the member ``info`` of the archive here lie."""
        with _archive_errors(origin, OSError), self.open() as handle:
            start = _open_member(handle, info, bound, origin)
        return Region(self.path, self.start + start, info.compress_size)


def _open_member(handle: BinaryIO, info: zipfile.ZipInfo, bound: int, origin: str) -> int:
    """Move ``handle`` to the first stored byte of the member ``info``, whose stored bytes must
    end by ``bound`` (where the next member or the directory starts: a directory that
    overstates a member's size would have it read into what follows); returns where that is."""
    handle.seek(info.header_offset)
    header = handle.read(LOCAL_HEADER.size)
    if len(header) < LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise SorError("truncated or corrupt archive (bad local header)", file=origin)
    _, name_length, extra_length = LOCAL_HEADER.unpack(header)
    # zipfile's own check, as it opens a member: the header is the directory's member's
    name = handle.read(name_length).decode("utf-8" if info.flag_bits & 0x800 else "cp437", errors="replace")
    if name != info.orig_filename:
        raise SorError(f"truncated or corrupt archive (the member's local header names {name!r})", file=origin)
    start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
    if start + info.compress_size > bound:
        raise SorError(f"truncated or corrupt archive (the directory says the member holds {info.compress_size:,} "
                       f"bytes, {start + info.compress_size - bound:,} more than there is room for)", file=origin)
    return handle.seek(start)


def _held_against(info: zipfile.ZipInfo, crc: int, length: int, complete: bool, origin: str) -> None:
    """Raise unless a member's bytes, as inflated, match the archive's directory."""
    if not complete or crc != info.CRC or length != info.file_size:
        raise SorError(f"truncated or corrupt archive (CRC-32 {crc:08x} and {length:,} bytes, "
                       f"the archive says {info.CRC:08x} and {info.file_size:,})", file=origin)


def _inflater(info: zipfile.ZipInfo) -> Any:
    return zlib_ng.decompressobj(-zlib_ng.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None


def _inflated_whole(inflater: Any) -> bool:
    """Whether the deflate stream ended, and with the member's last stored byte."""
    return inflater is None or (inflater.eof and not inflater.unused_data)


def _member_chunks(source: Region, info: zipfile.ZipInfo, bound: int, origin: str) -> Iterator[bytes]:
    """A deflated or stored member of the archive ``source`` as plain bytes, a chunk at a time,
    held against the archive's directory (CRC-32, size) once the last chunk is taken."""
    crc, length, inflater = 0, 0, _inflater(info)
    with _archive_errors(origin, OSError), source.open() as handle:
        _open_member(handle, info, bound, origin)
        for data in _member_data(handle, info.compress_size, inflater, origin):
            length += len(data)
            if length > info.file_size:
                break  # longer than the directory says: reported below, without filling the disk
            crc = zlib_ng.crc32(data, crc)
            yield data
    _held_against(info, crc, length, _inflated_whole(inflater), origin)


def _file_chunks(path: Path, origin: str) -> Iterator[bytes]:
    with _archive_errors(origin, OSError), path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _scanned(chunks: Iterable[bytes], target: Path | None = None) -> PartCheck:
    """Scan a part's ``chunks``, writing them to ``target`` when given."""
    scanner = _Scanner()
    with target.open("wb") if target is not None else contextlib.nullcontext() as out:
        for data in chunks:
            if out is not None:
                out.write(data)
            scanner.add(data)
    return scanner.finish()


def _extract(source: Region, info: zipfile.ZipInfo, bound: int, target: Path, origin: str) -> PartCheck:
    """Write a member of the archive ``source`` to ``target`` as plain CSV and scan it."""
    with _archive_errors(origin, OSError):
        return _scanned(_member_chunks(source, info, bound, origin), target)


def _loaded(pieces: Pieces, load: Loader, fallback: Callable[[], PartCheck]) -> PartCheck:
    """Hand a part to the loader, piece by piece; when the loader leaves it to the engine,
    ``fallback`` makes the part's plain copy on disk (a part goes there whole, or not at all:
    the pieces read are not kept, as memory that outlives a piece is costly to come by)."""
    with contextlib.closing(pieces):
        loaded = load(pieces)
        if loaded is not None:
            collections.deque(pieces, maxlen=0)  # a loader that stopped early: the directory is still checked
            return replace(pieces.check, loaded=loaded)
    return fallback()


# -- the parts of the dump files -------------------------------------------------------------
def _header(line: bytes) -> list[str]:
    """A CSV header line's column names."""
    return next(csv.reader(io.StringIO(line.decode("utf-8", errors="replace"))), [])


class _RemovedWhenRead:
    """Removes a spooled inner archive once the extractions reading it have ended and no more
    will be queued. Holds no extraction: each part's loaded columns are freed with its part."""

    def __init__(self, path: Path) -> None:
        self.path, self.pending, self.closed, self.lock = path, 0, False, threading.Lock()

    def track(self, extraction: Future[PartCheck]) -> None:
        with self.lock:
            self.pending += 1
        extraction.add_done_callback(self._ended)  # called at once if it has ended: outside the lock

    def _ended(self, extraction: Future[PartCheck] | None = None) -> None:
        with self.lock:
            if extraction is not None:
                self.pending -= 1
            last = self.closed and self.pending == 0
        if last:
            self.path.unlink(missing_ok=True)

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self._ended()


END_RECORD, END_RECORD_SIZE, MAX_COMMENT = b"PK\x05\x06", 22, 0xFFFF


def _end_record_in_a_comment(tail: bytes, used: int) -> bool:
    """Whether an end record before the one at ``used`` in ``tail`` (an archive's last bytes)
    has a comment that runs to the end, holding the one used: zipfile takes the last end
    record it finds, and one written into a comment would hide the archive's directory."""
    at = tail.rfind(END_RECORD, 0, used)
    while at >= 0:
        if at + END_RECORD_SIZE <= len(tail) and \
                at + END_RECORD_SIZE + struct.unpack_from("<H", tail, at + 20)[0] == len(tail):
            return True
        at = tail.rfind(END_RECORD, 0, at)
    return False


@contextlib.contextmanager
def _whole_archive(source: Region, origin: str) -> Iterator[zipfile.ZipFile]:
    """The zip archive at ``source``, opened once known whole: its end record at its end, its
    first member at its start, and as many members in its directory as the end record counts.
    (zipfile takes the last end record it finds: in a truncated daily dump, that of an inner
    zip stored in it, which it would then read as the dump; and it stops reading the directory
    where an entry's lengths, damaged, run past the directory's size: the members after it
    would be left out. An end record written into the comment of the real one is refused.)"""
    with contextlib.ExitStack() as stack:
        with _archive_errors(origin, OSError):
            handle = stack.enter_context(source.open())
            archive = stack.enter_context(zipfile.ZipFile(handle))
            handle.seek(-min(handle.seek(0, io.SEEK_END), MAX_COMMENT + 2 * END_RECORD_SIZE + len(archive.comment)),
                        io.SEEK_END)
            tail = handle.read()
        used = len(tail) - END_RECORD_SIZE - len(archive.comment)  # where zipfile's end record is in ``tail``
        end = tail[used:used + END_RECORD_SIZE]
        if end[:4] != END_RECORD or min((info.header_offset for info in archive.infolist()), default=0) != 0:
            raise SorError("truncated or corrupt archive (its end is not where its directory says)", file=origin)
        if _end_record_in_a_comment(tail, used):
            raise SorError("truncated or corrupt archive (its end record lies in the comment of another)", file=origin)
        counted = struct.unpack_from("<H", end, 10)[0]
        if counted != 0xFFFF and counted != len(archive.infolist()):  # (0xFFFF: zip64 counts elsewhere)
            raise SorError(f"truncated or corrupt archive (its directory holds {len(archive.infolist())} members, "
                           f"its end record counts {counted})", file=origin)
        yield archive


def _bounds(archive: zipfile.ZipFile, origin: str) -> dict[int, int]:
    """Where each member's stored bytes must end, by its header's offset: where the next
    member, or the directory, starts. Two entries of the directory on one member (its rows
    read twice) are refused."""
    starts = sorted(info.header_offset for info in archive.infolist())
    if len(set(starts)) < len(starts):
        raise SorError("truncated or corrupt archive (two entries of its directory name one member)", file=origin)
    starts.append(archive.start_dir)
    return dict(zip(starts, starts[1:]))


def _member_checked(info: zipfile.ZipInfo, name: str) -> None:
    if info.flag_bits & 0x1:
        raise SorError("an encrypted member is not read (the Commission's dumps are not encrypted)", file=name)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise SorError(f"compression method {info.compress_type} is not read (the Commission's dumps "
                       "are deflated or stored)", file=name)


@dataclass
class _Extraction:
    """Where and how the parts of one dump file are extracted: the folder, a stem of the
    file's own there (several files' parts can wait at once, two of them of one name in two
    folders), its record, the threads and the engine's loader."""

    workdir: Path
    stem: str
    record: FileRecord
    pool: Executor
    load: Loader | None

    def target(self, suffix: str) -> Path:
        """Where the file's next part (or spooled inner zip) goes: the engines take a file's
        parts in their names' order, which is the archive's."""
        return self.workdir / f"{self.stem}-{self.record.parts:06d}{suffix}"


def _zip_parts(archive: zipfile.ZipFile, source: Region, origin: str, into: _Extraction,
               inner: bool = False) -> Iterator[Part]:
    """The CSV parts of ``archive`` (at ``source``; ``inner``: itself an inner zip), each
    queued for extraction."""
    record, load = into.record, into.load
    bounds = _bounds(archive, origin)
    for info in archive.infolist():
        name = f"{origin}!{info.filename}"
        if info.filename.endswith((".csv.zip", ".csv")):
            _member_checked(info, name)
        if inner and info.filename.endswith(".csv.zip"):
            raise SorError("an inner zip inside an inner zip is not read (a daily dump nests once)", file=name)
        if (inner or record.layout == "nested zip") and not info.filename.endswith((".csv.zip", ".csv")) \
                and not info.is_dir():  # the published layout holds nothing else: a damaged name, say
            raise SorError("a member of a daily dump that is neither an inner zip nor a CSV part", file=name)
        bound = bounds[info.header_offset]
        if info.filename.endswith(".csv.zip") and info.compress_type == zipfile.ZIP_STORED:
            # the published layout: read where it lies, once its CRC-32 holds (its directory is trusted then)
            collections.deque(_member_chunks(source, info, bound, name), maxlen=0)
            region = source.member(info, bound, name)
            with _whole_archive(region, name) as nested:
                yield from _zip_parts(nested, region, name, into, inner=True)
        elif info.filename.endswith(".csv.zip"):
            spool = into.target(".zip")
            removal = _RemovedWhenRead(spool)
            try:  # a deflated inner zip: spooled to disk (zipfile checks the outer CRC as it copies)
                with _archive_errors(name, OSError):
                    with archive.open(info) as stream, spool.open("wb") as out:
                        shutil.copyfileobj(stream, out, CHUNK)
                with _whole_archive(Region(spool), name) as nested:
                    for part in _zip_parts(nested, Region(spool), name, into, inner=True):
                        removal.track(part.check)
                        yield part
            finally:
                removal.close()
        elif info.filename.endswith(".csv"):
            with _archive_errors(name, OSError), archive.open(info) as stream:
                columns = _header(stream.readline())
            target = into.target(".csv")
            record.parts += 1
            extract = functools.partial(_extract, source, info, bound, target, name)
            if load is not None and info.file_size <= IN_MEMORY:
                pieces = Pieces(columns, _member_chunks(source, info, bound, name))
                check = into.pool.submit(_loaded, pieces, load, extract)
            else:
                check = into.pool.submit(extract)
            yield Part(name, target, columns, record, extracted=True, check=check)


def iter_parts(files: Sequence[Path], workdir: Path, pool: Executor, digests: Mapping[Path, str],
               load: Loader | None = None) -> Iterator[Part]:
    """Each CSV or Parquet part of ``files``, one at a time, with a FileRecord per file (its
    SHA-256 from ``digests``, or computed); a CSV part is queued on ``pool`` for extraction
    to ``workdir`` (or, when plain, for its scan), then ``load``, as it is yielded."""
    for number, path in enumerate(files):
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
            with _whole_archive(Region(path), path.name) as archive:
                record.layout = ("nested zip" if any(m.endswith(".csv.zip") for m in archive.namelist())
                                 else "zipped csv")
                yield from _zip_parts(archive, Region(path), path.name,
                                      _Extraction(workdir, f"{number:06d}", record, pool, load))
            if record.parts == 0:
                raise SorError("the archive holds no CSV part", file=path)
        else:
            with path.open("rb") as handle:
                columns = _header(handle.readline())
            record.layout, record.parts = "csv", 1
            scan = functools.partial(_scanned, _file_chunks(path, path.name))
            if load is not None and path.stat().st_size <= IN_MEMORY:
                check = pool.submit(_loaded, Pieces(columns, _file_chunks(path, path.name)), load, scan)
            else:
                check = pool.submit(scan)
            yield Part(path.name, path, columns, record, check=check)


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
def reading(files: Sequence[Path], digests: Mapping[Path, str] | None = None, load: Loader | None = None
            ) -> Iterator[Iterator[tuple[FileRecord, Iterator[Part]]]]:
    """Each file's record and its checked parts, one file at a time; zipped parts are
    extracted by background threads, a few parts ahead (across files), which then run
    ``load`` on each CSV part (its result in the part's check, ``loaded``). On exit the threads
    are stopped and the extracted copies are removed. ``digests`` holds the SHA-256 of files
    the caller hashed already (the cache keys them by it): no file is hashed twice."""
    with tempfile.TemporaryDirectory(prefix="dsarisk-sor-") as workdir:
        pool = ThreadPoolExecutor(max_workers=EXTRACTORS, thread_name_prefix="dsarisk-sor-extract")
        try:
            parts = iter_parts(files, Path(workdir), pool, digests or {}, load)
            yield _by_file(_ahead(checked_parts(parts), PARTS_AHEAD))
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
    written ``...\\"`` and only the second reads it); empty fields past the last are no fields,
    as DuckDB's CSV reader and polars read them. Returns the fields and how they were read."""
    if len(line) > csv.field_size_limit():  # a long text is a value, not an attack: we hold the line already
        csv.field_size_limit(len(line))
    for dialect, how in ((PhpDialect, PHP_ESCAPE), (csv.excel, "")):
        try:
            fields = next(csv.reader([line], dialect), [])
        except csv.Error:  # an unterminated quote, say
            continue
        if len(fields) >= width and not any(fields[width:]):
            return fields[:width], how if '\\"' in line else ""
    return None, UNREADABLE
