"""What a batch leaves in OUT: ``<case>.<ext>`` and its ``<case>.json`` sidecar (written last),
``manifest.jsonl`` (one line per attempt), ``errors/<case>.txt`` and ``summary.json``; and the
rule that decides whether a finished case can be trusted and skipped."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import numpy as np

from ..io.atomic import write_text_atomic
from ..io.hashing import sha256_of

STATUSES = ("ok", "failed", "skipped", "invalid-prompts")


def path_digest(image: Path) -> str:
    """SHA-256 of a file, or of a folder's files (a DICOM series, a PEFT adapter) (names and contents, in name order)."""
    if not image.is_dir():
        return sha256_of(image)
    digest = hashlib.sha256()
    for path in sorted(p for p in image.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(image)).encode() + b"\0" + sha256_of(path).encode())
    return digest.hexdigest()


def prompts_digest(prompts) -> str:
    """SHA-256 of the prompt structure as the engine receives it (mask arrays by their bytes)."""
    digest = hashlib.sha256()

    def canonical(value):
        if isinstance(value, np.ndarray):
            digest.update(value.astype(bool).tobytes())
            return {"array": list(value.shape)}
        if isinstance(value, dict):
            return {str(k): canonical(v) for k, v in sorted(value.items())}
        if isinstance(value, (list, tuple)):
            return [canonical(v) for v in value]
        return value
    digest.update(json.dumps(canonical(prompts), sort_keys=True).encode())
    return digest.hexdigest()


class Outputs:
    """The files of one batch folder; the process that owns it is the only manifest writer."""

    def __init__(self, folder, suffix: str):
        self.folder, self.suffix = Path(folder), suffix
        (self.folder / "errors").mkdir(parents=True, exist_ok=True)
        (self.folder / ".locks").mkdir(exist_ok=True)

    def output(self, case_id: str) -> Path:
        return self.folder / f"{case_id}{self.suffix}"

    def sidecar(self, case_id: str) -> Path:
        return self.folder / f"{case_id}.json"

    def trusted(self, case_id: str, request: dict) -> bool:
        """Done already: the output and sidecar exist, the status is ok, the output is the file
        the sidecar describes, and the request (hashes, settings, version) is the same."""
        output, sidecar = self.output(case_id), self.sidecar(case_id)
        if not (output.is_file() and sidecar.is_file()):
            return False
        try:
            record = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return (record.get("status") == "ok" and record.get("request") == request
                and record.get("output_sha256") == sha256_of(output))

    def failed_before(self, case_id: str) -> bool:
        try:
            return json.loads(self.sidecar(case_id).read_text(encoding="utf-8")).get("status") != "ok"
        except (OSError, ValueError):
            return False

    def write_sidecar(self, case_id: str, record: dict) -> None:
        output = self.output(case_id)
        if record["status"] == "ok":
            record["output_sha256"] = sha256_of(output)
        write_text_atomic(self.sidecar(case_id), json.dumps(record, indent=2, default=str) + "\n")

    def write_error(self, case_id: str, text: str) -> None:
        write_text_atomic(self.folder / "errors" / f"{case_id}.txt", text)

    def append_manifest(self, line: dict) -> None:
        with open(self.folder / "manifest.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write_summary(self, summary: dict) -> None:
        write_text_atomic(self.folder / "summary.json", json.dumps(summary, indent=2) + "\n")

    def lock(self, case_id: str) -> "CaseLock":
        return CaseLock(self.folder / ".locks" / f"{case_id}.lock")


class CaseLock:
    """An O_EXCL lock file (host and pid inside) keeping two shards or drivers off one case; a
    lock left by a process of this host that is gone is taken over."""

    def __init__(self, path: Path):
        self.path, self.held = path, False

    def acquire(self) -> bool:
        owner = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if not self._stale():
                    return False
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner)
            self.held = True
            return True
        return False

    def _stale(self) -> bool:
        try:
            host, pid = self.path.read_text().split()
        except (OSError, ValueError):
            return False
        if host != socket.gethostname():
            return False  # another machine's: only it knows whether it still runs
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, ValueError):
            return False
        return False

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
