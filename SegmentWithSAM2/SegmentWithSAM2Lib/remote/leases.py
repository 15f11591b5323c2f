"""The server's sessions ("leases"): who owns each, when it expires, and whether a new one fits.

A lease expires when its client has sent nothing, not even a heartbeat, for ``lease_seconds``
(the client is gone) or has asked for no model work for ``idle_seconds`` (the user walked away;
its features are memory another user could have).  An expired lease answers 410 to its owner, so
the client knows to re-seed; to anyone else every lease but their own does not exist (404).
Admission counts each lease's feature budget against the server's, so a second user is turned
away (503) rather than running the first one's GPU out of memory.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

FORGET_AFTER = 10_000  # expired lease ids remembered for their 410


class LeaseError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Lease:
    owner: str
    model_id: str
    image: str
    session: object  # core.engine.VolumeSession
    budget_mb: float
    id: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    last: object = None  # the last propagation's SegmentationResult: corrections start from it
    cancel: threading.Event = field(default_factory=threading.Event)
    work: threading.Lock = field(default_factory=threading.Lock)  # one request of a lease at a time
    seen: float = field(default_factory=time.monotonic)
    worked: float = field(default_factory=time.monotonic)


@dataclass
class Limits:
    max_sessions: int = 8
    per_token: int = 2
    memory_mb: float = 8192.0
    lease_seconds: float = 120.0
    idle_seconds: float = 1800.0


class LeaseBook:
    def __init__(self, limits: Limits, clock=time.monotonic):
        self.limits, self.clock = limits, clock
        self._leases: dict[str, Lease] = {}
        self._expired: OrderedDict[str, str] = OrderedDict()  # id -> owner
        self._lock = threading.Lock()

    def admit(self, owner: str, budget_mb: float) -> None:
        """Refuse a new lease that would pass a limit, before it is built (building takes a while)."""
        with self._lock:
            self._check(owner, budget_mb)

    def add(self, lease: Lease) -> None:
        with self._lock:  # checked again: two leases admitted at once must not both pass
            self._check(lease.owner, lease.budget_mb)
            self._leases[lease.id] = lease

    def _check(self, owner: str, budget_mb: float) -> None:
        leases = self._leases.values()
        if sum(lease.owner == owner for lease in leases) >= self.limits.per_token:
            raise LeaseError(429, f"this token already holds {self.limits.per_token} sessions; close one first")
        if len(leases) >= self.limits.max_sessions:
            raise LeaseError(503, f"the server holds its maximum of {self.limits.max_sessions} sessions; try later")
        if sum(lease.budget_mb for lease in leases) + budget_mb > self.limits.memory_mb:
            raise LeaseError(503, "the server's feature memory is taken by other sessions; try later")

    def get(self, lease_id: str, owner: str, work: bool = False) -> Lease:
        with self._lock:
            lease = self._leases.get(lease_id)
            if lease is None or lease.owner != owner:
                if self._expired.get(lease_id) == owner:
                    raise LeaseError(410, "this session has expired; open a new one (the image is still on the server)")
                raise LeaseError(404, "no such session")
            lease.seen = self.clock()
            if work:
                lease.worked = lease.seen
            return lease

    def close(self, lease_id: str, owner: str) -> Lease:
        lease = self.get(lease_id, owner)
        with self._lock:
            self._leases.pop(lease.id, None)
        lease.cancel.set()
        return lease

    def reap(self) -> list[Lease]:
        """Remove and return the leases past a timeout (a running request keeps its lease alive)."""
        now = self.clock()
        with self._lock:
            gone = [lease for lease in self._leases.values() if not lease.work.locked() and (
                now - lease.seen > self.limits.lease_seconds or now - lease.worked > self.limits.idle_seconds)]
            for lease in gone:
                del self._leases[lease.id]
                self._expired[lease.id] = lease.owner
            while len(self._expired) > FORGET_AFTER:
                self._expired.popitem(last=False)
        for lease in gone:
            lease.cancel.set()
        return gone

    def live(self) -> list[Lease]:
        with self._lock:
            return list(self._leases.values())
