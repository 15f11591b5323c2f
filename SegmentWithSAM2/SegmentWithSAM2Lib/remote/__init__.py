"""Remote inference: ``segment-with-sam2 serve`` (server, service, leases, images, audit, tokens) and its
clients (``Client`` for Python, ``RemoteSession`` without torch for the Slicer module)."""

from .client import Client, RemoteImage, RemoteSession  # noqa: F401
from .connection import RemoteError, SessionExpired  # noqa: F401
