"""A real HTTP server on 127.0.0.1 for the download tests: Range requests, a connection dropped
half way, a 404, a server too slow to answer, one that trickles its answer (a chunk every 0.1 s),
and the ways a careless network poisons a download: a captive portal's page with status 200, a
body cut off without a Content-Length, a resume answered from byte 0, and a hub's reported hash."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRICKLE_CHUNK = 1 << 20


def generated_checkpoint(seed=0) -> bytes:
    """A real checkpoint file's bytes ({"model": state dict}, about 660 kB) to serve."""
    import io

    import torch

    generator = torch.Generator().manual_seed(seed)
    buffer = io.BytesIO()
    torch.save({"model": {f"layer{i}.weight": torch.randn(64, 64, generator=generator) for i in range(40)}}, buffer)
    return buffer.getvalue()


class CheckpointServer:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests = []  # (path, Range header)
        self.dropped = set()  # paths whose first response was cut
        self.hub_hashes = {}  # file name -> the SHA-256 a hub reports for it
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/slow/"):
                    time.sleep(3)
                if self.path.startswith("/portal/"):
                    return self._send(200, b"<!DOCTYPE html><html><body>Please log in to the hotel Wi-Fi</body></html>")
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                if self.path.startswith("/cut/"):  # no Content-Length: the end of the body is the end of the file
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(server.files[name][: len(server.files[name]) // 2])
                    self.close_connection = True
                    return
                if self.path.startswith("/from-zero/") and self.headers.get("Range"):
                    body = server.files[name]  # a 206 that ignores the asked start
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes 0-{len(body) - 1}/{len(body)}")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = server.files[name]
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                if name in server.hub_hashes:
                    self.send_header("X-Linked-Etag", f'"{server.hub_hashes[name]}"')
                self.end_headers()
                if self.path.startswith("/drop/") and self.path not in server.dropped:
                    server.dropped.add(self.path)  # the first answer stops half way
                    self.wfile.write(body[start:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if self.path.startswith("/trickle/"):
                    for offset in range(start, len(body), TRICKLE_CHUNK):
                        self.wfile.write(body[offset:offset + TRICKLE_CHUNK])
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        return False
