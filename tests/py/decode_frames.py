#!/usr/bin/env python3
"""Decode the frames of DICOM Part 10 files with pydicom and write them as raw arrays.

Usage: decode_frames.py OUTDIR FILE...

For each FILE (with Pixel Data) and each frame n (1-based) it writes
  OUTDIR/<index>.<n>.decoded   the frame of ds.pixel_array as little-endian bytes in
                               the layout Explicit VR Little Endian carries with
                               Planar Configuration 0 (samples interleaved, rows first);
                               Bits Allocated 1 is packed again with pack_bits
  OUTDIR/<index>.<n>.original  for encapsulated transfer syntaxes only: the frame's
                               fragments concatenated, as pydicom.encaps.generate_frames
                               yields them

and prints a JSON list, one object per FILE: path, transfer_syntax_uid, frames,
dtype, shape (of one frame), photometric_interpretation, decoded (list of
{"path", "sha256"}), original (list of {"path", "sha256"} or null). Files without
Pixel Data get "frames": 0. A file pydicom cannot decode gets "error": "...".

The decoding plugins are those in requirements.txt (pylibjpeg with -libjpeg and
-openjpeg for JPEG, JPEG-LS and JPEG 2000; RLE is pydicom's own).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels.utils import pack_bits


def write(path: str, data: bytes) -> dict:
    with open(path, "wb") as f:
        f.write(data)
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest()}


def one(index: int, path: str, outdir: str) -> dict:
    ds = pydicom.dcmread(path)
    ts = str(ds.file_meta.TransferSyntaxUID)
    out: dict = {"path": path, "transfer_syntax_uid": ts}
    if "PixelData" not in ds:
        out["frames"] = 0
        return out
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    out["frames"] = frames
    out["photometric_interpretation"] = str(ds.PhotometricInterpretation)
    try:
        arr = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - reported to the Rust test
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    if frames == 1:
        arr = arr[np.newaxis, ...]
    out["dtype"] = str(arr.dtype)
    out["shape"] = list(arr.shape[1:])
    decoded = []
    for n in range(frames):
        a = arr[n]
        if int(ds.BitsAllocated) == 1:
            data = pack_bits(a)
        else:
            data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        decoded.append(write(os.path.join(outdir, f"{index}.{n + 1}.decoded"), data))
    out["decoded"] = decoded
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        original = []
        for n, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=frames)):
            original.append(write(os.path.join(outdir, f"{index}.{n + 1}.original"), frame))
        out["original"] = original
    else:
        out["original"] = None
    return out


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    result = [one(i, p, outdir) for i, p in enumerate(sys.argv[2:])]
    json.dump(result, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
