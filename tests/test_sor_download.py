"""`dsarisk sor download` against a local HTTP server on 127.0.0.1 serving generated dumps:
SHA-1 checked, interrupted downloads resumed, complete days skipped. No other address is used."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from pathlib import Path

import pytest

from dsarisk.cli import main
from dsarisk.sources.sor import SorError
from dsarisk.sources.sor_download import download
from dsarisk.sources.sor_synth import synthesize

DAY = dt.date(2024, 3, 14)


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files of one folder, honouring ``Range: bytes=N-``; logs every request."""

    requests: list[tuple[str, str]] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.directory) / self.path.lstrip("/")
        range_ = self.headers.get("Range", "")
        type(self).requests.append((self.path, range_))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(range_.removeprefix("bytes=").rstrip("-")) if range_ else 0
        if start >= len(data) and range_:
            self.send_error(416)
            return
        self.send_response(206 if range_ else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    served = tmp_path_factory.mktemp("served")
    synthesize(served, rows=600, days=2, start=DAY, part_rows=200)
    handler = lambda *a, **k: RangeHandler(*a, directory=str(served), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()


def test_download_checks_resumes_and_skips(server, tmp_path):
    url, served = server
    names = [f"sor-global-{DAY + dt.timedelta(days=d)}-full.zip" for d in range(2)]
    # an interrupted earlier run left the first half of day one
    first = (served / names[0]).read_bytes()
    (tmp_path / (names[0] + ".part")).write_bytes(first[: len(first) // 2])
    RangeHandler.requests.clear()
    files = download(start=DAY, end=DAY + dt.timedelta(days=1), to=tmp_path, base_url=url)
    assert [f.name for f in files] == names
    assert all((tmp_path / n).read_bytes() == (served / n).read_bytes() for n in names)
    assert (f"/{names[0]}", f"bytes={len(first) // 2}-") in RangeHandler.requests  # resumed, not restarted
    assert not list(tmp_path.glob("*.part"))
    RangeHandler.requests.clear()
    download(start=DAY, end=DAY + dt.timedelta(days=1), to=tmp_path, base_url=url)
    assert sorted(path for path, _ in RangeHandler.requests) == sorted(f"/{n}.sha1" for n in names)  # skipped


def test_a_dump_whose_sha1_does_not_match_is_removed(server, tmp_path):
    url, served = server
    name = f"sor-global-{DAY}-full.zip"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / name).write_bytes((served / name).read_bytes()[:-10] + b"0123456789")
    (bad / (name + ".sha1")).write_text((served / (name + ".sha1")).read_text())
    handler = lambda *a, **k: RangeHandler(*a, directory=str(bad), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SorError, match="SHA-1 does not match"):
            download(start=DAY, end=DAY, to=tmp_path / "out", base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
    assert not list((tmp_path / "out").iterdir())


def test_cli_download_and_a_missing_day(server, tmp_path, capsys):
    url, _ = server
    assert main(["sor", "download", "--start", str(DAY), "--end", str(DAY), "--to", str(tmp_path),
                 "--base-url", url]) == 0
    assert "1 dump(s) complete" in capsys.readouterr().err
    assert main(["sor", "download", "--start", "2024-03-20", "--end", "2024-03-20", "--to", str(tmp_path),
                 "--base-url", url]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "sor-global-2024-03-20-full.zip.sha1" in err and "Traceback" not in err
