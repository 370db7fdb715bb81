"""Daily statement-of-reasons dumps fetched from the Transparency Database's download location.

Each day's dump ``sor-<platform>-<YYYY-MM-DD>-<full|light>.zip`` has a ``.sha1`` beside it.
A dump already complete (its SHA-1 matches) is skipped; an interrupted download resumes from
the bytes it has (an HTTP range request) and is only moved into place once its SHA-1 matches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .sor_schema import SorError

BASE_URL = "https://dsa-sor-data-dumps.s3.eu-central-1.amazonaws.com/"
VARIANTS = ("full", "light")
PLATFORM = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # "global" or a platform's slug
SHA1 = re.compile(r"^[0-9a-f]{40}$")
CHUNK = 1 << 20
Progress = Callable[[str, int, int | None], None]  # name, bytes so far, bytes in all (None: unknown)


def dump_name(day: dt.date, *, platform: str = "global", variant: str = "full") -> str:
    return f"sor-{platform}-{day.isoformat()}-{variant}.zip"


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open(url: str, *, offset: int = 0, timeout: float) -> urllib.request.addinfourl:
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (the scheme is checked)
    except urllib.error.HTTPError as exc:
        raise SorError(f"download failed: HTTP {exc.code} {exc.reason}", file=url) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SorError(f"download failed: {getattr(exc, 'reason', exc)}", file=url) from None


def _expected_sha1(url: str, timeout: float) -> str:
    with _open(url + ".sha1", timeout=timeout) as response:
        text = response.read(4096).decode("ascii", errors="replace").split()
    if not text or not SHA1.match(text[0].lower()):
        raise SorError("not a SHA-1 checksum file", file=url + ".sha1")
    return text[0].lower()


def _fetch(url: str, partial: Path, name: str, progress: Progress | None, timeout: float) -> None:
    """Append the rest of ``url`` to ``partial`` (all of it when the server ignores the range)."""
    offset = partial.stat().st_size if partial.is_file() else 0
    try:
        response = _open(url, offset=offset, timeout=timeout)
    except SorError:
        if not offset:
            raise
        offset = 0  # a range the server refuses (a copy longer than the file, say): start again
        response = _open(url, timeout=timeout)
    with response:
        if offset and response.status != 206:  # the server sent the whole file: start again
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with partial.open("ab" if offset else "wb") as out:
            done = offset
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(name, done, total)


def download(*, start: dt.date, end: dt.date, to: str | Path, platform: str = "global", variant: str = "full",
             base_url: str = BASE_URL, progress: Progress | None = None, timeout: float = 60) -> list[Path]:
    """Fetch the daily dumps from ``start`` to ``end`` into ``to``; return their paths.

    Raises
    ------
    SorError
        An option out of range, a day the server does not have, or a dump whose SHA-1 does not
        match its ``.sha1`` (the bad copy is removed, so that the next run fetches it again).
    """
    if end < start:
        raise SorError(f"--end {end} is before --start {start}", field="end")
    if not PLATFORM.match(platform):
        raise SorError(f"'{platform}' is not 'global' or a platform slug (lower case, digits, '-')", field="platform")
    if variant not in VARIANTS:
        raise SorError(f"'{variant}' is not one of {', '.join(VARIANTS)}", field="variant")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise SorError(f"'{base_url}' is not an http(s) address", field="base_url")
    folder = Path(to)
    if folder.exists() and not folder.is_dir():
        raise SorError("exists and is not a folder", file=folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = base_url if base_url.endswith("/") else base_url + "/"
    written = []
    for offset in range((end - start).days + 1):
        name = dump_name(start + dt.timedelta(days=offset), platform=platform, variant=variant)
        url, target = base + name, folder / name
        expected = _expected_sha1(url, timeout)
        if target.is_file() and _sha1(target) == expected:
            if progress:
                progress(name, target.stat().st_size, target.stat().st_size)
            written.append(target)
            continue
        partial = folder / (name + ".part")
        _fetch(url, partial, name, progress, timeout)
        if _sha1(partial) != expected:
            partial.unlink()
            raise SorError(f"SHA-1 does not match {url}.sha1 (the copy was removed; run again)", file=target)
        partial.replace(target)
        (folder / (name + ".sha1")).write_text(f"{expected}  {name}\n")
        written.append(target)
    return written
