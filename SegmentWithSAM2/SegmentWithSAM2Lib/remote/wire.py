"""What travels between client and server, in numpy alone (the Slicer client imports no torch).

An image is an ``.npz`` (voxels, IJK->RAS, tags as JSON) named by the SHA-256 of its content, so a
re-opened session finds it already on the server.  A result is the labelmap of the region that
changed since the session's previous result (a bounding box, compressed), with the full
labelmap's digest so the client can check what it rebuilt.  A mask prompt carries its voxels
packed and compressed: a server reads no file a client names.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import zipfile
import zlib

import numpy as np

from ..errors import SegmentWithSAM2Error

IMAGE_PARTS = ("voxels", "ijk_to_ras", "tags")
REGION_PARTS = ("labels", "offset", "shape")
MASK_ENCODING = "packbits+zlib+base64"
TAGS = ("modality", "window")  # the metadata that steers "auto" windowing; nothing else leaves the client


def image_id(voxels: np.ndarray, ijk_to_ras: np.ndarray, tags: dict) -> str:
    """SHA-256 over dtype, shape, matrix, tags and the C-order voxel bytes: equal content, equal id."""
    voxels = np.ascontiguousarray(voxels)
    header = json.dumps({"dtype": voxels.dtype.str, "shape": list(voxels.shape),
                         "ijk_to_ras": np.asarray(ijk_to_ras, dtype=float).tolist(), "tags": tags}, sort_keys=True)
    hasher = hashlib.sha256(header.encode("utf-8"))
    hasher.update(memoryview(voxels).cast("B"))
    return hasher.hexdigest()


def image_tags(metadata: dict) -> dict:
    tags = {key: metadata[key] for key in TAGS if metadata.get(key) is not None}
    if "window" in tags:
        tags["window"] = [float(v) for v in tags["window"]]
    return tags


def pack_image(voxels: np.ndarray, ijk_to_ras: np.ndarray, tags: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, voxels=np.ascontiguousarray(voxels), ijk_to_ras=np.asarray(ijk_to_ras, dtype=float),
                        tags=np.array(json.dumps(tags, sort_keys=True)))
    return buffer.getvalue()


def unpack_image(source, max_bytes: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """An uploaded image, refused before it is inflated when its parts would exceed ``max_bytes``."""
    parts = _open_npz(source, IMAGE_PARTS, max_bytes, "image")
    voxels, matrix = parts["voxels"], parts["ijk_to_ras"]
    if voxels.ndim != 3 or not (np.issubdtype(voxels.dtype, np.integer) or np.issubdtype(voxels.dtype, np.floating)
                                or voxels.dtype == bool):
        raise SegmentWithSAM2Error(f"image voxels must be a 3D array of numbers, got {voxels.dtype} {voxels.shape}")
    if matrix.shape != (4, 4) or matrix.dtype.kind != "f" or not np.all(np.isfinite(matrix)):
        raise SegmentWithSAM2Error("image ijk_to_ras must be a finite 4x4 matrix of floats")
    try:
        tags = json.loads(str(parts["tags"]))
    except (json.JSONDecodeError, ValueError) as error:
        raise SegmentWithSAM2Error(f"image tags are not JSON: {error}") from None
    if not isinstance(tags, dict) or set(tags) - set(TAGS):
        raise SegmentWithSAM2Error(f"image tags must be an object with only {', '.join(TAGS)}")
    return voxels, matrix, tags


def _open_npz(source, names, max_bytes: int, what: str) -> dict:
    try:
        with zipfile.ZipFile(source) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            expected = {f"{name}.npy" for name in names}
            if set(infos) != expected:
                raise SegmentWithSAM2Error(f"{what} must be an .npz of exactly {', '.join(names)}; got {sorted(infos)}")
            if sum(info.file_size for info in infos.values()) > max_bytes:
                raise SegmentWithSAM2Error(f"{what} inflates past the server's limit of {max_bytes} bytes")
            return {name: _read_array(archive, infos[f"{name}.npy"], max_bytes, what) for name in names}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        if isinstance(error, SegmentWithSAM2Error):
            raise
        raise SegmentWithSAM2Error(f"{what} is not a readable .npz ({error})") from None


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, what: str) -> np.ndarray:
    """One member, its header checked before any voxel is read: a plain dtype, and exactly as many
    bytes as the header's shape needs (a header claiming more is a memory bomb, not an image)."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(member)
        size = math.prod(shape) * dtype.itemsize  # Python ints: a huge shape cannot wrap around
        if dtype.hasobject or size > max_bytes or size != info.file_size - member.tell():
            raise SegmentWithSAM2Error(f"{what}: {info.filename} declares {dtype} {shape}, which its "
                                       f"{info.file_size} bytes do not hold (or Python objects)")
        return np.frombuffer(member.read(size), dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def pack_region(labelmap: np.ndarray, before: np.ndarray | None) -> dict:
    """The box of voxels that differ from ``before`` (or are set, with none before), compressed."""
    changed = labelmap != 0 if before is None else labelmap != before
    offset = [0, 0, 0]
    crop = labelmap[:0, :0, :0]
    if changed.any():
        spans = [np.flatnonzero(changed.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
        offset = [int(s[0]) for s in spans]
        crop = labelmap[tuple(slice(s[0], s[-1] + 1) for s in spans)]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, labels=np.ascontiguousarray(crop), offset=np.array(offset, dtype=np.int64),
                        shape=np.array(labelmap.shape, dtype=np.int64))
    return {"region": base64.b64encode(buffer.getvalue()).decode("ascii"), "digest": labelmap_digest(labelmap)}


def apply_region(message: dict, before: np.ndarray | None) -> np.ndarray:
    """The full labelmap from a result message and the labelmap it was computed against."""
    parts = _open_npz(io.BytesIO(base64.b64decode(message["region"])), REGION_PARTS, 1 << 34, "result region")
    shape, offset, crop = tuple(int(v) for v in parts["shape"]), parts["offset"], parts["labels"]
    if before is not None and before.shape != shape:
        raise SegmentWithSAM2Error(f"the server's result is shaped {shape}, the client's labelmap {before.shape}")
    labelmap = np.zeros(shape, dtype=crop.dtype) if before is None else before.astype(crop.dtype, copy=True)
    labelmap[tuple(slice(o, o + n) for o, n in zip(offset, crop.shape))] = crop
    if labelmap_digest(labelmap) != message["digest"]:
        raise SegmentWithSAM2Error("the labelmap rebuilt from the server's answer does not match its digest; "
                                   "the client's copy and the server's session disagree; open a new session")
    return labelmap


def labelmap_digest(labelmap: np.ndarray) -> str:
    labelmap = np.ascontiguousarray(labelmap)
    hasher = hashlib.sha256(f"{labelmap.dtype.str}{labelmap.shape}".encode("ascii"))
    hasher.update(memoryview(labelmap).cast("B"))
    return hasher.hexdigest()


def encode_masks(prompts: dict) -> dict:
    """The prompt dict with each mask array packed into JSON (it stays volume-shaped on arrival)."""
    out = dict(prompts)
    out["objects"] = [_with_masks(obj, _encode_mask) for obj in prompts.get("objects") or []]
    return out


def decode_masks(prompts: dict, shape: tuple) -> dict:
    """The server's side of ``encode_masks``; a mask named by a file is refused, never opened."""
    out = dict(prompts)
    out["objects"] = [_with_masks(obj, lambda item: _decode_mask(item, shape)) for obj in prompts.get("objects") or []]
    return out


def _with_masks(obj, convert):
    if not isinstance(obj, dict) or not isinstance(obj.get("masks"), list):
        return obj
    return dict(obj, masks=[convert(item) if isinstance(item, dict) else item for item in obj["masks"]])


def pack_mask(mask) -> dict:
    """A boolean array as JSON: its shape and its bits, packed, compressed, base64."""
    packed = np.packbits(np.asarray(mask, dtype=bool).ravel())
    data = base64.b64encode(zlib.compress(packed.tobytes(), 6)).decode("ascii")
    return {"encoding": MASK_ENCODING, "shape": list(np.shape(mask)), "data": data}


def unpack_mask(mask, shape: tuple) -> np.ndarray:
    """``pack_mask``'s array, which must have ``shape``; inflated no further than its bits need."""
    if not isinstance(mask, dict) or mask.get("encoding") != MASK_ENCODING or not isinstance(mask.get("data"), str):
        raise SegmentWithSAM2Error(f"a mask must be {{'encoding': '{MASK_ENCODING}', 'shape', 'data'}}")
    if list(mask.get("shape") or []) != list(shape):
        raise SegmentWithSAM2Error(f"a mask has shape {mask.get('shape')}; it must match {list(shape)}")
    count = math.prod(shape)
    try:
        raw = zlib.decompressobj().decompress(base64.b64decode(mask["data"], validate=True), (count + 7) // 8 + 1)
    except (ValueError, zlib.error) as error:
        raise SegmentWithSAM2Error(f"a mask's data cannot be decoded ({error})") from None
    if len(raw) != (count + 7) // 8:
        raise SegmentWithSAM2Error("a mask's data does not hold one bit per voxel")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=count).astype(bool).reshape(shape)


def _encode_mask(item: dict) -> dict:
    return dict(item, mask=pack_mask(item["mask"])) if "mask" in item else item


def _decode_mask(item: dict, shape: tuple) -> dict:
    if "file" in item:
        raise SegmentWithSAM2Error("a mask prompt sent to a server must carry its mask, not a file name (the server "
                                   "reads no files a client names); the Python client packs masks itself")
    return dict(item, mask=unpack_mask(item.get("mask"), shape))
