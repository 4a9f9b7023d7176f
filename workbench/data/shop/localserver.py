"""A shop served from a folder on 127.0.0.1, for the demo, the tests and the bench (no network): files as they are,
with ETag and Last-Modified, conditional requests answered 304, and a log of every request.

    with serve_folder("workbench/data/shop/demo_shop") as shop:
        crawl_shop(actor, shop.url)
        shop.log            # [(path, status), ...] in order
        shop.count(200)     # responses with that status

``index.html`` answers for a folder; a path outside the folder or a missing file is 404.
"""
from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import mimetypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class LocalShop:
    url: str
    root: Path
    log: list[tuple[str, int]] = field(default_factory=list)

    def count(self, status: int | None = None, prefix: str = "") -> int:
        return sum(1 for p, s in self.log if (status is None or s == status) and p.startswith(prefix))

    def paths(self, status: int | None = None) -> list[str]:
        return [p for p, s in self.log if status is None or s == status]


def respond(root: Path, path: str, request_headers) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for GET ``path`` from folder ``root``: 200, 304 for a matching If-None-Match (or
    If-Modified-Since not older than the file), 404."""
    root = root.resolve()
    target = (root / unquote(urlsplit(path).path).lstrip("/")).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        return 404, {"Content-Type": "text/plain"}, b"not found"
    data = target.read_bytes()
    etag = '"' + hashlib.sha1(data).hexdigest()[:16] + '"'
    mtime = int(target.stat().st_mtime)
    headers = {"ETag": etag, "Last-Modified": email.utils.formatdate(mtime, usegmt=True),
               "Content-Type": mimetypes.guess_type(target.name)[0] or "application/octet-stream"}
    if request_headers.get("If-None-Match") == etag:
        return 304, headers, b""
    since = request_headers.get("If-Modified-Since")
    if since and not request_headers.get("If-None-Match"):
        try:
            if mtime <= email.utils.parsedate_to_datetime(since).timestamp():
                return 304, headers, b""
        except (TypeError, ValueError):
            pass
    return 200, headers, data


def _handler(shop: LocalShop, lock: threading.Lock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall

        def log_message(self, *args) -> None:  # quiet: the log is shop.log
            pass

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            status, headers, body = respond(shop.root, self.path, self.headers)
            with lock:
                shop.log.append((urlsplit(self.path).path, status))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    return Handler


def folder_adapter(folder: str | Path, log: list[tuple[str, int]] | None = None):
    """A requests transport adapter answering from ``folder`` as the server above does, without a socket: mount it
    for a shop's origin (``crawl_shop(..., transport=...)``) to crawl shipped files under the shop's own URL."""
    from requests.adapters import BaseAdapter
    from requests.models import Response
    from requests.structures import CaseInsensitiveDict

    root = Path(folder)

    class FolderAdapter(BaseAdapter):
        def send(self, request, **kwargs):
            status, headers, body = respond(root, request.path_url, request.headers)
            if log is not None:
                log.append((urlsplit(request.url).path, status))
            r = Response()
            r.status_code, r.url, r.request = status, request.url, request
            r.headers = CaseInsensitiveDict({**headers, "Content-Length": str(len(body))})
            r.raw = io.BytesIO(body)
            r.reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "")
            return r

        def close(self) -> None:
            pass

    return FolderAdapter()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its keep-alive connection
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[LocalShop]:
    """Serve ``folder`` on 127.0.0.1 (a free port) in a thread while the block runs."""
    shop = LocalShop("", Path(folder))
    server = _Server(("127.0.0.1", 0), _handler(shop, threading.Lock()))
    server.daemon_threads = True
    shop.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield shop
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
