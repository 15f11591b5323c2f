"""``segment-with-sam2 serve`` as a user starts it, in its own process on 127.0.0.1: over TLS with
a certificate made here (openssl), tokens from ``--new-token``, the Python client trusting that
certificate; plain HTTP and untrusted clients get nowhere.  And the server's concurrency: a
heartbeat is answered while a propagation runs, a second run on the same session is refused,
and admission counts feature memory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from SegmentWithSAM2Lib import api
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.remote import Client, RemoteError
from SegmentWithSAM2Lib.remote.leases import Limits
from serving import blob_volume, call, point_prompts, running


def _certificate(folder):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test's certificate (Debian package openssl)")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_over_tls_with_a_new_token(tmp_path):
    key, cert = _certificate(tmp_path)
    tokens = tmp_path / "tokens"
    made = subprocess.run([sys.executable, "-m", "SegmentWithSAM2Lib.cli", "serve", "--tokens", str(tokens),
                           "--new-token", "reader1"], capture_output=True, text=True, check=True)
    token = made.stdout.strip().splitlines()[-1]
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "SegmentWithSAM2Lib.cli", "serve", "--model", "micro",
                               "--device", "cpu", "--precision", "fp32", "--port", str(port), "--tokens", str(tokens),
                               "--ssl-keyfile", str(key), "--ssl-certfile", str(cert),
                               "--audit-log", str(tmp_path / "audit.jsonl")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"https://127.0.0.1:{port}"
        client = Client(url, token, cafile=cert)
        _wait(lambda: _answers(client), server)
        assert client.health()["models"][0]["model"] == "micro"
        volume, _ = blob_volume()
        remote = client.segment(volume, point_prompts(8))
        local = api.segment(load_model("micro", device="cpu", precision="fp32"), volume, point_prompts(8))
        assert np.array_equal(remote.labelmap, local.labelmap)
        client.close()
        with pytest.raises(RemoteError, match="certificate this computer does not trust"):
            Client(url, token).health()
        with pytest.raises(RemoteError, match="cannot reach"):  # plain HTTP to a TLS port
            Client(f"http://127.0.0.1:{port}", token).health()
    finally:
        server.terminate()
        output = server.communicate(timeout=60)[0]
    assert "serving micro on https://127.0.0.1" in output and "1 token(s)" in output
    assert token not in output and token not in tokens.read_text()


def _answers(client) -> bool:
    try:
        client.health()
        return True
    except RemoteError:
        return False


def _wait(condition, server, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert server.poll() is None, server.communicate()[0][-2000:]
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.2)


def test_heartbeat_answers_while_a_propagation_runs_and_a_second_run_waits_its_turn(tmp_path):
    micro = load_model("micro", device="cpu", precision="fp32")
    volume, _ = blob_volume(slices=40, seed=2)
    with running({"micro": micro}, tmp_path) as (url, _):
        client = Client(url, heartbeat=False)
        session = client.session(volume)
        started, finished = threading.Event(), threading.Event()

        def propagate():
            session.propagate(point_prompts(20), on_progress=lambda *a: started.set())
            finished.set()

        worker = threading.Thread(target=propagate)
        worker.start()
        assert started.wait(60)
        status, answer = call(url, "POST", f"/v1/sessions/{session.id}/heartbeat", body={})
        status2, answer2 = call(url, "POST", f"/v1/sessions/{session.id}/preview",
                                body={"prompts": point_prompts(20), "slice": 20})
        running_then = not finished.is_set()
        worker.join(120)
        assert status == 200 and running_then  # answered while the model worked
        assert status2 == 409 and "already running a request" in answer2["detail"]
        assert finished.is_set() and session.labelmap.any()
        client.close()


def test_admission_counts_feature_memory(tmp_path):
    micro = load_model("micro", device="cpu", precision="fp32")
    volume, _ = blob_volume()
    with running({"micro": micro}, tmp_path, limits=Limits(memory_mb=300)) as (url, service):
        first = Client(url, heartbeat=False).session(volume)  # 256 MB of the server's 300
        with pytest.raises(RemoteError, match="503.*feature memory is taken"):
            Client(url, heartbeat=False).session(volume, axis="coronal")
        first.close()
        Client(url, heartbeat=False).session(volume, axis="coronal")  # room again
        assert len(service.book.live()) == 1
