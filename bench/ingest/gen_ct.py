#!/usr/bin/env python3
"""Synthetic DICOM for the ingest benchmark.

  gen_ct.py ct OUTDIR N [--dirs 4] [--series 8]
      N CT Image Storage instances, 512x512, 16-bit, Explicit VR Little Endian, one
      patient, one study, several series, unique UIDs.  Files are spread round-robin over
      OUTDIR/0 .. OUTDIR/{dirs-1} so that parallel senders get equal shares.

  gen_ct.py big OUTFILE [--frames 2000]
      One uncompressed multi-frame instance (Multi-frame Grayscale Word Secondary Capture,
      512x512x16-bit per frame; 2000 frames = 1,048,576,000 bytes of pixel data).  The
      header is written with pydicom; the Pixel Data element header and the frames are
      appended by hand in chunks so the whole 1 GB never sits in Python memory.

Both write into a temporary name and rename at the end, so an interrupted run leaves no
half-written cache behind.
"""

import argparse
import os
import shutil
import struct
import sys
import time
import uuid

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MF_WORD_SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7.3"
ROWS = COLS = 512


def new_uid() -> str:
    # 2.25.<128-bit decimal>: at most 44 characters, unique without a registered root
    return "2.25." + str(uuid.uuid4().int)


def file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    m = FileMetaDataset()
    m.MediaStorageSOPClassUID = sop_class
    m.MediaStorageSOPInstanceUID = sop_instance
    m.TransferSyntaxUID = ExplicitVRLittleEndian
    m.ImplementationClassUID = "1.2.826.0.1.3680043.10.1386.1"  # any valid UID
    m.ImplementationVersionName = "DXHUB_BENCH"
    return m


def patient_study(ds: Dataset, study_uid: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = "BENCH^INGEST"
    ds.PatientID = "BENCH-0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = time.strftime("%Y%m%d")
    ds.StudyTime = "120000"
    ds.AccessionNumber = "BENCH1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "dxhub ingest benchmark"


def pixel_module(ds: Dataset) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ROWS
    ds.Columns = COLS
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0


def gen_ct(outdir: str, n: int, ndirs: int, nseries: int) -> None:
    tmp = outdir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for d in range(ndirs):
        os.makedirs(os.path.join(tmp, str(d)))
    study_uid = new_uid()
    series_uids = [new_uid() for _ in range(nseries)]
    frame_of_ref = new_uid()
    rng = np.random.default_rng(12345)
    # a phantom-ish base slice plus noise; each instance rolls it so pixel data differ
    yy, xx = np.mgrid[0:ROWS, 0:COLS]
    disc = ((yy - ROWS / 2) ** 2 + (xx - COLS / 2) ** 2) < (ROWS * 0.45) ** 2
    base = np.where(disc, 1000, 0).astype(np.uint16) + rng.integers(0, 200, (ROWS, COLS), dtype=np.uint16)
    per_series = (n + nseries - 1) // nseries
    t0 = time.time()
    total = 0
    for i in range(n):
        s = i // per_series
        k = i % per_series
        sop_uid = new_uid()
        ds = Dataset()
        ds.file_meta = file_meta(CT_IMAGE_STORAGE, sop_uid)
        patient_study(ds, study_uid)
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop_uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.Modality = "CT"
        ds.Manufacturer = "dxhub-bench"
        ds.SeriesInstanceUID = series_uids[s]
        ds.SeriesNumber = s + 1
        ds.SeriesDescription = f"bench series {s + 1}"
        ds.BodyPartExamined = "CHEST"
        ds.InstanceNumber = k + 1
        ds.FrameOfReferenceUID = frame_of_ref
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [-250.0, -250.0, float(k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 1.0
        ds.PixelSpacing = [0.9765625, 0.9765625]
        ds.KVP = 120
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        pixel_module(ds)
        ds.PixelData = np.roll(base, i, axis=1).tobytes()
        path = os.path.join(tmp, str(i % ndirs), f"ct{i:06d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        total += os.path.getsize(path)
    os.rename(tmp, outdir)
    dt = time.time() - t0
    print(f"gen_ct: {n} CT files, {total / 1e6:.1f} MB in {outdir} ({dt:.1f} s)", file=sys.stderr)


def gen_big(outfile: str, frames: int) -> None:
    frame_bytes = ROWS * COLS * 2
    pixel_len = frames * frame_bytes
    if pixel_len >= 0xFFFFFFFF:
        sys.exit("gen_ct: pixel data must stay below 4 GiB (32-bit length)")
    sop_uid = new_uid()
    ds = Dataset()
    ds.file_meta = file_meta(MF_WORD_SC_STORAGE, sop_uid)
    patient_study(ds, new_uid())
    ds.SOPClassUID = MF_WORD_SC_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesInstanceUID = new_uid()
    ds.SeriesNumber = 1
    ds.SeriesDescription = "bench 1 GB multi-frame"
    ds.InstanceNumber = 1
    ds.NumberOfFrames = frames
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 33.3
    pixel_module(ds)
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    tmp = outfile + ".tmp"
    ds.save_as(tmp, enforce_file_format=True)  # header only; Pixel Data is the last element
    t0 = time.time()
    rng = np.random.default_rng(7)
    chunk = rng.integers(0, 4096, (ROWS, COLS), dtype=np.uint16).tobytes()
    with open(tmp, "ab") as f:
        # (7FE0,0010) OW, explicit VR LE: tag, VR, 2 reserved bytes, 32-bit length
        f.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_len))
        for i in range(frames):
            # cheap per-frame variation: the frame number in the first pixel
            f.write(struct.pack("<H", i & 0xFFFF))
            f.write(chunk[2:])
    os.rename(tmp, outfile)
    print(
        f"gen_ct: multi-frame {frames} frames, {os.path.getsize(outfile) / 1e6:.1f} MB in {outfile} "
        f"({time.time() - t0:.1f} s)",
        file=sys.stderr,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ct")
    c.add_argument("outdir")
    c.add_argument("n", type=int)
    c.add_argument("--dirs", type=int, default=4)
    c.add_argument("--series", type=int, default=8)
    b = sub.add_parser("big")
    b.add_argument("outfile")
    b.add_argument("--frames", type=int, default=2000)
    a = p.parse_args()
    if a.cmd == "ct":
        gen_ct(a.outdir, a.n, a.dirs, a.series)
    else:
        gen_big(a.outfile, a.frames)


if __name__ == "__main__":
    main()
