"""HTTP calls to a server, on the standard library alone (so Slicer's Python needs nothing more).

A 4xx or 5xx answer becomes a ``RemoteError`` carrying the server's reason; 410 (the session
expired) is ``SessionExpired``, which the client answers by re-seeding a new session.  Loopback
addresses never go through a proxy (an SSH tunnel's end is local); others follow the environment.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ..errors import SegmentWithSAM2Error


class RemoteError(SegmentWithSAM2Error):
    def __init__(self, problem: str, status: int = 0):
        super().__init__(problem)
        self.status = status


class SessionExpired(RemoteError):
    """The server no longer holds the session (410)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Connection:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0, cafile=None):
        """``cafile``: the certificate (or CA) to trust for https, e.g. a server's self-signed one."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SegmentWithSAM2Error(f"server URL {url!r} must look like http://HOST:PORT or https://HOST:PORT")
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout
        handlers = [urllib.request.ProxyHandler({})] if is_loopback(parts.hostname) else []
        if cafile is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(cafile))))
        self._opener = urllib.request.build_opener(*handlers)

    def call(self, method: str, path: str, body=None, data: bytes | None = None, stream: bool = False):
        """The answer's JSON (or, with ``stream``, the open response to read lines from)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode("utf-8"), "application/json"
        elif data is not None:
            headers["Content-Type"] = "application/octet-stream"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            response = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise RemoteError(f"the server at {self.url} shows a certificate this computer does not trust "
                                  f"({reason.verify_message}); give its certificate or CA file to trust") from None
            raise RemoteError(f"cannot reach the server at {self.url} ({reason}); check the URL and that it runs") from None
        if stream:
            return response
        with response:
            text = response.read()
        return json.loads(text) if text else {}


def _refusal(error: urllib.error.HTTPError) -> RemoteError:
    try:
        detail = json.loads(error.read() or b"{}").get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    if isinstance(detail, list):  # a request the server's schema refused: name the fields
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" for d in detail)
    if error.code == 401:
        detail = "the server refused the token (missing, mistyped or revoked); ask its administrator for one"
    kind = SessionExpired if error.code == 410 else RemoteError
    return kind(f"server answered {error.code}: {detail or error.reason}", error.code)
