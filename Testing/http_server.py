"""A real HTTP server on 127.0.0.1 for the download tests: Range requests, a connection dropped
half way, a 404, a server too slow to answer, and one that trickles its answer (a chunk every
0.1 s, for cancelling mid-download)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRICKLE_CHUNK = 1 << 20


class CheckpointServer:
    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.requests = []  # (path, Range header)
        self.dropped = set()  # paths whose first response was cut
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                name = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/slow/"):
                    time.sleep(3)
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                body = server.files[name]
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
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
