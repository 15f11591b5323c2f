"""What the server refuses, on a real uvicorn on 127.0.0.1: requests without a valid token (401,
nothing more), another user's session (404), quotas, a non-loopback bind without tokens,
oversized and malformed uploads, malformed bodies and prompt files, and path-like image ids."""

from __future__ import annotations

import http.client
import io
import json
import urllib.parse
import zipfile

import numpy as np
import pytest

from SegmentWithSAM2Lib.cli import main
from SegmentWithSAM2Lib.io.models import load_model
from SegmentWithSAM2Lib.remote import Client, RemoteError
from SegmentWithSAM2Lib.remote.leases import Limits
from SegmentWithSAM2Lib.remote.tokens import TokenBook, digest
from SegmentWithSAM2Lib.remote.wire import image_id, pack_image
from serving import blob_volume, call, point_prompts, running

ALICE, BOB = "alice-token-" + "a" * 20, "bob-token-" + "b" * 20
LIMIT = 600_000  # bytes an upload may have, compressed or inflated


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure")
    tokens = TokenBook({"alice": digest(ALICE), "bob": digest(BOB)})
    model = load_model("micro", device="cpu", precision="fp32")
    with running({"micro": model}, folder, tokens, Limits(per_token=2, max_sessions=3), LIMIT) as (url, service):
        yield url, service, folder


@pytest.fixture(scope="module")
def alice_session(server):
    url, _, _ = server
    volume, _ = blob_volume()
    session = Client(url, ALICE, heartbeat=False).session(volume)
    yield session
    session.close()


@pytest.mark.parametrize("method, path", [("POST", "/v1/sessions"), ("HEAD", "/v1/images/" + "0" * 64),
                                          ("PUT", "/v1/images/" + "0" * 64), ("GET", "/v1/anything"),
                                          ("GET", "/docs"), ("GET", "/openapi.json")])
@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {ALICE}", f"Bearer {ALICE}x", "Bearer "])
def test_without_a_valid_token_only_401(server, method, path, header):
    url, _, _ = server
    status, body = call(url, method, path, headers={"Authorization": header} if header else {}, data=b"{}")
    assert status == 401
    assert body in ({"detail": "unauthorized"}, None)  # HEAD has no body


def test_health_answers_without_a_token(server):
    status, body = call(server[0], "GET", "/v1/health")
    assert status == 200 and body["models"][0]["model"] == "micro" and body["protocol"] == 1


def test_client_says_why_a_token_is_refused(server):
    with pytest.raises(RemoteError, match="401.*refused the token"):
        Client(server[0], "not-a-token").session(blob_volume()[0])


def test_another_users_session_does_not_exist_for_them(server, alice_session):
    url = server[0]
    sid = alice_session.id
    for method, path in [("POST", f"/v1/sessions/{sid}/propagate"), ("POST", f"/v1/sessions/{sid}/preview"),
                         ("POST", f"/v1/sessions/{sid}/cancel"), ("POST", f"/v1/sessions/{sid}/heartbeat"),
                         ("DELETE", f"/v1/sessions/{sid}")]:
        body = {"prompts": point_prompts(8), **({"slice": 8} if "preview" in path else {})} if "/p" in path else {}
        assert call(url, method, path, BOB, body=body) == (404, {"detail": "no such session"})
    assert call(url, "POST", f"/v1/sessions/{sid}/heartbeat", ALICE, body={})[0] == 200  # still hers, still open


def test_per_token_quota_and_server_maximum(server, alice_session):
    url = server[0]
    volume, _ = blob_volume()
    Client(url, ALICE, heartbeat=False).session(volume, axis="coronal")  # her second
    with pytest.raises(RemoteError, match="429.*already holds 2 sessions"):
        Client(url, ALICE, heartbeat=False).session(volume, axis="sagittal")
    Client(url, BOB, heartbeat=False).session(volume)  # the server's third
    with pytest.raises(RemoteError, match="503.*maximum of 3 sessions"):
        Client(url, BOB, heartbeat=False).session(volume, axis="coronal")


def test_non_loopback_bind_without_tokens_is_refused(capsys):
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        assert main(["serve", "--host", host, "--random-init"]) == 1
        assert "reachable from other machines; give --tokens FILE" in capsys.readouterr().err


def test_new_token_is_printed_once_and_only_its_hash_kept(tmp_path, capsys):
    tokens = tmp_path / "tokens"
    assert main(["serve", "--tokens", str(tokens), "--new-token", "carol"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert tokens.read_text() == f"carol {digest(token)}\n" and token not in tokens.read_text()
    assert TokenBook.read(tokens).who(token) == "carol"


def _upload(url, name, data, headers=None):
    return call(url, "PUT", f"/v1/images/{name}", ALICE, data=data, headers=headers)


def test_oversized_upload_is_413_and_leaves_nothing(server):
    url, service, _ = server
    assert _upload(url, "1" * 64, b"x" * (LIMIT + 1))[0] == 413  # by its Content-Length
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    chunks = (b"y" * 50_000 for _ in range(15))  # chunked: no length declared, stopped at the limit
    connection.request("PUT", "/v1/images/" + "2" * 64, body=chunks, encode_chunked=True,
                       headers={"Authorization": f"Bearer {ALICE}"})
    response = connection.getresponse()
    assert response.status == 413 and "larger than this server accepts" in json.loads(response.read())["detail"]
    connection.close()
    assert sorted(p.name for p in service.images.folder.iterdir()) == sorted(
        p.name for p in service.images.folder.glob("*.npz"))  # no part file left


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _image(voxels, matrix=np.eye(4), tags=None):
    tags = tags or {}
    return image_id(voxels, matrix, tags), pack_image(voxels, matrix, tags)


def _lying_header() -> bytes:
    """An .npz whose voxels header claims 10^15 floats in a few bytes: refused before allocating."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (100000, 100000, 100000)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("voxels.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64)
        for name, value in (("ijk_to_ras", np.eye(4)), ("tags", np.array("{}"))):
            member = io.BytesIO()
            np.save(member, value)
            archive.writestr(f"{name}.npy", member.getvalue())
    return buffer.getvalue()


def test_malformed_uploads_are_refused_with_the_reason(server):
    url, service, _ = server
    bomb_id, bomb = _image(np.zeros((100, 100, 100), np.uint8))  # 1 MB inflated, 1 kB sent
    assert len(bomb) < LIMIT
    good_id, good = _image(np.ones((4, 8, 8), np.int16))
    nan = np.eye(4)
    nan[0, 3] = np.nan
    cases = [(bomb_id, bomb, "inflates past"), (good_id, b"not a zip", "not a readable .npz"),
             ("3" * 64, good, "does not match its id"),
             (good_id, _npz(voxels=np.ones((4, 8, 8)), ijk_to_ras=np.eye(4)), "exactly voxels, ijk_to_ras, tags"),
             (_image(np.ones((4, 8, 8)), nan)[0], _image(np.ones((4, 8, 8)), nan)[1], "finite 4x4"),
             (_image(np.ones((8, 8)))[0], _image(np.ones((8, 8)))[1], "3D array"),
             (good_id, _npz(voxels=np.array([{"a": 1}], dtype=object), ijk_to_ras=np.eye(4), tags=np.array("{}")),
              "or Python objects"),
             (good_id, _lying_header(), "do not hold")]
    for name, data, reason in cases:
        status, body = _upload(url, name, data)
        assert status == 422 and reason in body["detail"], (reason, status, body)
    assert not any(service.images.has(name) for name, _, _ in cases)
    assert _upload(url, good_id, good)[0] == 200 and call(url, "HEAD", f"/v1/images/{good_id}", ALICE)[0] == 200


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f" + "0" * 61, "0" * 63 + "G", "0" * 65,
                                  "0" * 63 + "%00", "A" * 64])
def test_path_like_image_ids_are_refused(server, name, tmp_path):
    url, service, folder = server
    status, _ = _upload(url, name, _image(np.ones((4, 8, 8)))[1])
    assert status in (404, 422)
    status, body = call(url, "POST", "/v1/sessions", ALICE, body={"image": urllib.parse.unquote(name)})
    assert status == 422 and "64 lower-case hex digits" in body["detail"]
    assert sorted(p.name for p in folder.iterdir()) == ["audit.jsonl", "images"]


@pytest.mark.parametrize("body, reason", [
    ({"prompts": point_prompts(8), "colour": 1}, "colour"),
    ({"prompts": point_prompts(8), "correct": "yes"}, "correct"),
    ({"prompts": point_prompts(8), "stop_after": 0}, "stop_after"),
    ({"prompts": point_prompts(8), "range": ["a", 3]}, "range"),
    ({"prompts": point_prompts(8), "direction": "forwards"}, "did you mean 'forward'"),
    ({"prompts": {"space": "IJK", "objects": []}}, "no objects"),
    ({"prompts": {"space": "IJK", "objects": [{"name": "x", "points": [{"position": [30, 32, 99]}]}]}}, "outside"),
    ({"prompts": {"space": "IJK", "objects": [{"name": "x", "pointz": []}]}}, "pointz"),
    ({"prompts": {"space": "IJK", "objects": [{"name": "x", "masks": [{"file": "/etc/passwd", "slice": 1}]}]}},
     "not a file name"),
    ({"prompts": point_prompts(8), "correct": True}, "no earlier result"),
])
def test_malformed_requests_are_refused_with_the_reason(server, alice_session, body, reason):
    status, answer = call(server[0], "POST", f"/v1/sessions/{alice_session.id}/propagate", ALICE, body=body)
    assert status in (409, 422) and reason in json.dumps(answer), answer


def test_not_json_is_refused(server, alice_session):
    status, _ = call(server[0], "POST", f"/v1/sessions/{alice_session.id}/propagate", ALICE, data=b"{not json",
                     headers={"Content-Type": "application/json"})
    assert status == 422


def test_upload_archive_members_must_be_plain(server):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../voxels.npy", b"x")
    status, body = _upload(server[0], "4" * 64, buffer.getvalue())
    assert status == 422 and "exactly voxels" in body["detail"]
