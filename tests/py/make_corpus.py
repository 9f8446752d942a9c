#!/usr/bin/env python3
"""Generate the dxhub DICOM test corpus.

Usage: make_corpus.py OUTDIR

Writes DICOM Part 10 files under OUTDIR plus OUTDIR/manifest.json (one entry per
file: path, transfer_syntax, sop_class, sop_instance, source, sender) and
OUTDIR/bad_manifest.json (deliberately broken files under OUTDIR/bad/).

Sources (nothing third-party is stored in the repository):
  * "generated"        images/objects built here with pydicom (+ numpy/imagecodecs
                       for HTJ2K; synthetic payloads for the video transfer syntaxes)
  * "dcmtk:<tool>"     a generated uncompressed object converted by a DCMTK tool
                       (dcmcjpeg, dcmcjpls, dcmcrle, dcmconv, pdf2dcm)
  * "pydicom:<name>"   a test file read from the installed pydicom package, given
                       new Study/Series/SOP Instance UIDs (pixel data and transfer
                       syntax untouched)

Every UID is derived deterministically (2.25.<uuid5>) so two runs of the same
generator give the same UIDs for everything except what DCMTK stamps itself
(none: the DCMTK tools are run with "never assign new UID").

Needs: pydicom, numpy, imagecodecs (HTJ2K via OpenJPH), DCMTK on PATH.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import Tag

# pydicom 3.0.2 lists "iso_ir_58" among the encodings whose escape sequences
# Python strips itself, but Python's iso_ir_58 is plain GB 2312 (EUC-CN), so
# "ESC $ ) A" stays in the decoded text. Let pydicom strip it (PS3.5 6.1.2.5).
import pydicom.charset as _charset
_charset.handled_encodings = tuple(e for e in _charset.handled_encodings if e != "iso_ir_58")

# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------
ENTROPY = "dxhub-test-corpus-v1"
UID_NS = uuid.UUID("6c1b0e3a-5d0e-4a53-9c55-8f3a4c1d2e01")

TS = {
    "implicit": "1.2.840.10008.1.2",
    "explicit": "1.2.840.10008.1.2.1",
    "bigendian": "1.2.840.10008.1.2.2",
    "deflated": "1.2.840.10008.1.2.1.99",
    "jpeg_baseline": "1.2.840.10008.1.2.4.50",
    "jpeg_extended": "1.2.840.10008.1.2.4.51",
    "jpeg_lossless": "1.2.840.10008.1.2.4.57",
    "jpeg_lossless_sv1": "1.2.840.10008.1.2.4.70",
    "jpegls_lossless": "1.2.840.10008.1.2.4.80",
    "jpegls_near": "1.2.840.10008.1.2.4.81",
    "j2k_lossless": "1.2.840.10008.1.2.4.90",
    "j2k": "1.2.840.10008.1.2.4.91",
    "htj2k_lossless": "1.2.840.10008.1.2.4.201",
    "htj2k_rpcl": "1.2.840.10008.1.2.4.202",
    "htj2k": "1.2.840.10008.1.2.4.203",
    "rle": "1.2.840.10008.1.2.5",
    "mpeg2_mpml": "1.2.840.10008.1.2.4.100",
    "h264_hp41": "1.2.840.10008.1.2.4.102",
    "hevc_mp51": "1.2.840.10008.1.2.4.107",
}

SOP = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",
    "IO": "1.2.840.10008.5.1.4.1.1.1.3",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "US_MF": "1.2.840.10008.5.1.4.1.1.3.1",
    "XA": "1.2.840.10008.5.1.4.1.1.12.1",
    "RF": "1.2.840.10008.5.1.4.1.1.12.2",
    "NM": "1.2.840.10008.5.1.4.1.1.20",
    "PT": "1.2.840.10008.5.1.4.1.1.128",
    "SC": "1.2.840.10008.5.1.4.1.1.7",
    "SC_MF_BYTE": "1.2.840.10008.5.1.4.1.1.7.2",
    "SC_MF_WORD": "1.2.840.10008.5.1.4.1.1.7.3",
    "SC_MF_COLOR": "1.2.840.10008.5.1.4.1.1.7.4",
    "VL_PHOTO": "1.2.840.10008.5.1.4.1.1.77.1.4",
    "VL_ENDO": "1.2.840.10008.5.1.4.1.1.77.1.1",
    "VIDEO_ENDO": "1.2.840.10008.5.1.4.1.1.77.1.1.1",
    "VIDEO_PHOTO": "1.2.840.10008.5.1.4.1.1.77.1.4.1",
    "PDF": "1.2.840.10008.5.1.4.1.1.104.1",
    "ECG_12LEAD": "1.2.840.10008.5.1.4.1.1.9.1.1",
    "ECG_GENERAL": "1.2.840.10008.5.1.4.1.1.9.1.2",
    "ECG_AMBULATORY": "1.2.840.10008.5.1.4.1.1.9.1.3",
    "SR_BASIC": "1.2.840.10008.5.1.4.1.1.88.11",
    "SR_ENHANCED": "1.2.840.10008.5.1.4.1.1.88.22",
    "SR_COMPREHENSIVE": "1.2.840.10008.5.1.4.1.1.88.33",
    "SEG": "1.2.840.10008.5.1.4.1.1.66.4",
    "RTSTRUCT": "1.2.840.10008.5.1.4.1.1.481.3",
    "RTPLAN": "1.2.840.10008.5.1.4.1.1.481.5",
    "RTDOSE": "1.2.840.10008.5.1.4.1.1.481.2",
}

UNCOMPRESSED = {TS["implicit"], TS["explicit"], TS["bigendian"]}
# What DCMTK 3.6.7's dcmsend can read and propose as stored.
DCMSEND_TS = {
    TS[k]
    for k in (
        "deflated", "jpeg_baseline", "jpeg_extended", "jpeg_lossless",
        "jpeg_lossless_sv1", "jpegls_lossless", "jpegls_near", "j2k_lossless",
        "j2k", "rle",
    )
}

PATIENTS = {
    "alpha": ("Corpus^Alpha", "DXC-0001", "19700101", "M"),
    "beta": ("Corpus^Beta", "DXC-0002", "19800202", "F"),
    "gamma": ("Corpus^Gamma", "DXC-0003", "19900303", "O"),
}

IMPL_CLASS_UID = "2.25.94406524474929870498153622094906447713"
IMPL_VERSION = "DXHUB_CORPUS_1"


def uid(*keys: object) -> str:
    """Deterministic 2.25 UID (UUIDv5 of ENTROPY + keys); at most 44 chars."""
    name = "/".join([ENTROPY, *map(str, keys)])
    return "2.25." + str(uuid.uuid5(UID_NS, name).int)


def sender_for(ts: str) -> str:
    if ts in UNCOMPRESSED:
        return "storescu"
    if ts in DCMSEND_TS:
        return "dcmsend"
    return "pynetdicom"


# Options that make the sender keep the file's transfer syntax (besides the
# usual -aet/-aec/host/port). storescu proposes all uncompressed TS and sends
# in the first one the peer accepted, converting; -x? puts the file's own first.
# dcmsend would also propose uncompressed for lossless TS and decompress if the
# peer picks that; -dn stops it.
SENDER_ARGS = {
    TS["implicit"]: ["-R", "-xi"],
    TS["explicit"]: ["-R", "-xe"],
    TS["bigendian"]: ["-R", "-xb"],
}


def sender_args_for(sender: str, ts: str) -> list[str]:
    if sender == "storescu":
        return SENDER_ARGS[ts]
    if sender == "dcmsend":
        return ["-dn"]
    return []


# --------------------------------------------------------------------------
# pixel data
# --------------------------------------------------------------------------
def pattern(rows: int, cols: int, frames: int, bits_stored: int, spp: int, seed: int) -> np.ndarray:
    """Deterministic smooth test pattern (gradient + disc + per-frame shift)."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    out = []
    maxv = (1 << bits_stored) - 1
    for f in range(frames):
        cx = cols / 2 + (f * 3 + seed) % 11 - 5
        cy = rows / 2 + (f * 5 + seed) % 7 - 3
        r = np.hypot(x - cx, y - cy)
        base = (x + y + 4 * f + seed) / (rows + cols + 4 * frames + seed + 1)
        img = 0.55 * base + 0.45 * (r < rows / 4)
        if spp == 1:
            out.append(np.round(img * maxv))
        else:
            rgb = np.stack(
                [img, np.roll(img, seed + 7, axis=1), 1.0 - img], axis=-1
            )
            out.append(np.round(rgb * maxv))
    arr = np.stack(out)
    dtype = np.uint8 if bits_stored <= 8 else np.uint16
    arr = arr.astype(dtype)
    return arr if frames > 1 else arr[0]


# --------------------------------------------------------------------------
# dataset builders
# --------------------------------------------------------------------------
class Corpus:
    def __init__(self, out: Path):
        self.out = out
        self.entries: list[dict] = []
        self.bad_entries: list[dict] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="dxhub-corpus-"))
        self.series_no: dict[str, int] = {}

    # ---- common attributes -------------------------------------------------
    def base(self, sop_key: str, modality: str, family: str, variant: str,
             patient: str = "alpha", charset: str | None = "ISO_IR 100") -> Dataset:
        name, pid, birth, sex = PATIENTS[patient]
        ds = Dataset()
        if charset:
            ds.SpecificCharacterSet = charset
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.SOPClassUID = SOP[sop_key]
        ds.SOPInstanceUID = uid("sop", family, variant)
        ds.StudyDate = "20240115"
        ds.SeriesDate = "20240115"
        ds.ContentDate = "20240115"
        ds.StudyTime = "101500"
        ds.SeriesTime = "101500"
        ds.ContentTime = "101500"
        ds.AccessionNumber = f"ACC-{family.upper()}"[:16]
        ds.Modality = modality
        ds.Manufacturer = "dxhub-corpus"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = f"Corpus {family}"
        ds.SeriesDescription = f"{family} {variant}"
        ds.PatientName = name
        ds.PatientID = pid
        ds.PatientBirthDate = birth
        ds.PatientSex = sex
        ds.StudyInstanceUID = uid("study", family)
        ds.SeriesInstanceUID = uid("series", family, variant)
        ds.StudyID = "1"
        n = self.series_no.get(family, 0) + 1
        self.series_no[family] = n
        ds.SeriesNumber = n
        ds.InstanceNumber = 1
        ds.PatientOrientation = ""
        return ds

    def image(self, ds: Dataset, rows: int, cols: int, bits_stored: int,
              spp: int = 1, frames: int = 1, seed: int = 0,
              photometric: str | None = None) -> Dataset:
        arr = pattern(rows, cols, frames, bits_stored, spp, seed)
        ds.SamplesPerPixel = spp
        ds.PhotometricInterpretation = photometric or ("MONOCHROME2" if spp == 1 else "RGB")
        if spp > 1:
            ds.PlanarConfiguration = 0
        if frames > 1:
            ds.NumberOfFrames = frames
            ds.FrameIncrementPointer = Tag(0x0018, 0x1063)  # Frame Time
            ds.FrameTime = 100.0
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 8 if bits_stored <= 8 else 16
        ds.BitsStored = bits_stored
        ds.HighBit = bits_stored - 1
        ds.PixelRepresentation = 0
        ds.PixelData = arr.tobytes()
        ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
        return ds

    # ---- writing ---------------------------------------------------------------
    @staticmethod
    def file_meta(ds: Dataset, ts: str) -> FileMetaDataset:
        fm = FileMetaDataset()
        fm.MediaStorageSOPClassUID = ds.SOPClassUID
        fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        fm.TransferSyntaxUID = ts
        fm.ImplementationClassUID = IMPL_CLASS_UID
        fm.ImplementationVersionName = IMPL_VERSION
        return fm

    def write(self, ds: Dataset, path: Path, ts: str) -> Path:
        """Write with pydicom (implicit/explicit LE or encapsulated TS only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.file_meta = self.file_meta(ds, ts)
        ds.preamble = b"\x00" * 128
        ds.save_as(path, enforce_file_format=True)
        return path

    def add(self, path: Path, source: str, sender: str | None = None, **extra) -> dict:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        ts = str(ds.file_meta.TransferSyntaxUID)
        ent = {
            "path": path.relative_to(self.out).as_posix(),
            "transfer_syntax": ts,
            "sop_class": str(ds.SOPClassUID),
            "sop_instance": str(ds.SOPInstanceUID),
            "source": source,
            "sender": sender or sender_for(ts),
        }
        if str(ds.file_meta.MediaStorageSOPInstanceUID) != ent["sop_instance"]:
            raise SystemExit(f"{path}: meta SOP Instance UID differs from dataset")
        if str(ds.file_meta.MediaStorageSOPClassUID) != ent["sop_class"]:
            raise SystemExit(f"{path}: meta SOP Class UID differs from dataset")
        ent["sender_args"] = sender_args_for(ent["sender"], ts)
        ent.update(extra)
        self.entries.append(ent)
        return ent

    # ---- DCMTK conversions ---------------------------------------------------
    def dcmtk(self, ds: Dataset, rel: str, tool: str, *opts: str) -> None:
        """Write ds as Explicit VR LE to a temp file, convert with DCMTK to OUT/rel."""
        src = self.tmp / (uuid.uuid4().hex + ".dcm")
        self.write(ds, src, TS["explicit"])
        dst = self.out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = [tool, *opts, str(src), str(dst)]
        run(cmd)
        self.add(dst, f"dcmtk:{tool}")

    # ---- pydicom test files ------------------------------------------------
    def from_pydicom(self, name: str, rel: str, sop_key: str | None = None,
                     add_meta_ts: str | None = None) -> None:
        src = get_testdata_file(name, download=False)
        if not src:
            raise SystemExit(f"pydicom test file {name} not found in the installed package")
        ds = pydicom.dcmread(src, force=add_meta_ts is not None)
        key = rel
        if add_meta_ts:  # file has no Part 10 header: give it one
            ds.file_meta = self.file_meta(ds, add_meta_ts)
            ds.preamble = b"\x00" * 128
        orig_pixels = ds.get("PixelData")
        orig_pixels = bytes(orig_pixels) if orig_pixels is not None else None
        orig_ts = str(ds.file_meta.TransferSyntaxUID)
        ds.StudyInstanceUID = uid("study", "pydicom", key)
        ds.SeriesInstanceUID = uid("series", "pydicom", key)
        ds.SOPInstanceUID = uid("sop", "pydicom", key)
        if sop_key:
            ds.SOPClassUID = SOP[sop_key]
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        if getattr(ds, "preamble", None) is None:
            ds.preamble = b"\x00" * 128
        dst = self.out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(dst, enforce_file_format=True)
        # the copy must keep transfer syntax and pixel bytes exactly
        back = pydicom.dcmread(dst)
        if str(back.file_meta.TransferSyntaxUID) != orig_ts:
            raise SystemExit(f"{rel}: transfer syntax changed")
        if orig_pixels is not None and bytes(back.PixelData) != orig_pixels:
            raise SystemExit(f"{rel}: pixel data changed")
        self.add(dst, f"pydicom:{name}")


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       errors="replace")
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}")


# --------------------------------------------------------------------------
# modality flavours
# --------------------------------------------------------------------------
def ct(c: Corpus, family: str, variant: str, patient="alpha", **kw) -> Dataset:
    ds = c.base("CT", "CT", family, variant, patient, **kw)
    c.image(ds, 64, 64, 12, seed=1)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.KVP = 120
    ds.SliceThickness = 1.0
    ds.ImagePositionPatient = [0, 0, 0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.FrameOfReferenceUID = uid("for", family)
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    return ds


def gray(c: Corpus, sop_key: str, modality: str, family: str, variant: str,
         bits: int, frames: int = 1, patient="alpha", seed=2) -> Dataset:
    ds = c.base(sop_key, modality, family, variant, patient)
    c.image(ds, 64, 64, bits, frames=frames, seed=seed)
    return ds


def color(c: Corpus, sop_key: str, modality: str, family: str, variant: str,
          frames: int = 1, patient="beta", seed=3) -> Dataset:
    ds = c.base(sop_key, modality, family, variant, patient)
    c.image(ds, 64, 64, 8, spp=3, frames=frames, seed=seed)
    return ds


# --------------------------------------------------------------------------
# the corpus
# --------------------------------------------------------------------------
def build_generated(c: Corpus) -> None:
    g = c.out / "generated"
    d = "dcmtk"

    # --- CT: one generated image per transfer syntax --------------------------
    c.write(ct(c, "ct", "implicit"), g / "ct_implicit.dcm", TS["implicit"])
    c.add(g / "ct_implicit.dcm", "generated")
    c.write(ct(c, "ct", "explicit"), g / "ct_explicit.dcm", TS["explicit"])
    c.add(g / "ct_explicit.dcm", "generated")
    c.dcmtk(ct(c, "ct", "bigendian"), f"{d}/ct_bigendian.dcm", "dcmconv", "-q", "+tb")
    c.dcmtk(ct(c, "ct", "deflated"), f"{d}/ct_deflated.dcm", "dcmconv", "-q", "+td")
    c.dcmtk(ct(c, "ct", "jpeg_extended"), f"{d}/ct_jpeg_extended.dcm", "dcmcjpeg", "-q", "+ee", "+un")
    c.dcmtk(ct(c, "ct", "jpeg_lossless"), f"{d}/ct_jpeg_lossless.dcm", "dcmcjpeg", "-q", "+el", "+un")
    c.dcmtk(ct(c, "ct", "jpeg_lossless_sv1"), f"{d}/ct_jpeg_lossless_sv1.dcm", "dcmcjpeg", "-q", "+e1", "+un")
    c.dcmtk(ct(c, "ct", "jpegls_lossless"), f"{d}/ct_jpegls_lossless.dcm", "dcmcjpls", "-q", "+el", "+un")
    c.dcmtk(ct(c, "ct", "jpegls_near"), f"{d}/ct_jpegls_near.dcm", "dcmcjpls", "-q", "+en", "+un")
    c.dcmtk(ct(c, "ct", "rle"), f"{d}/ct_rle.dcm", "dcmcrle", "-q", "+un")

    # --- projection radiography ----------------------------------------------
    c.write(gray(c, "CR", "CR", "cr", "explicit", 12), g / "cr_explicit.dcm", TS["explicit"])
    c.add(g / "cr_explicit.dcm", "generated")
    c.dcmtk(gray(c, "CR", "CR", "cr", "jpeg_lossless", 12), f"{d}/cr_jpeg_lossless.dcm", "dcmcjpeg", "-q", "+el", "+un")
    dx = gray(c, "DX", "DX", "dx", "jpeg_lossless_sv1", 12, patient="beta")
    dx.PresentationIntentType = "FOR PRESENTATION"
    c.dcmtk(dx, f"{d}/dx_jpeg_lossless_sv1.dcm", "dcmcjpeg", "-q", "+e1", "+un")
    dx = gray(c, "DX", "DX", "dx", "explicit", 12, patient="beta")
    dx.PresentationIntentType = "FOR PRESENTATION"
    c.write(dx, g / "dx_explicit.dcm", TS["explicit"])
    c.add(g / "dx_explicit.dcm", "generated")
    mg = gray(c, "MG", "MG", "mg", "jpegls_lossless", 12, patient="beta")
    mg.PresentationIntentType = "FOR PRESENTATION"
    c.dcmtk(mg, f"{d}/mg_jpegls_lossless.dcm", "dcmcjpls", "-q", "+el", "+un")
    io = gray(c, "IO", "IO", "io", "jpeg_baseline", 8, patient="gamma")
    io.PresentationIntentType = "FOR PRESENTATION"
    c.dcmtk(io, f"{d}/io_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")

    # --- ultrasound ------------------------------------------------------------
    c.write(color(c, "US", "US", "us", "explicit"), g / "us_explicit.dcm", TS["explicit"])
    c.add(g / "us_explicit.dcm", "generated")
    c.dcmtk(color(c, "US", "US", "us", "jpeg_baseline"), f"{d}/us_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")
    c.dcmtk(color(c, "US_MF", "US", "usmf", "jpeg_baseline", frames=4), f"{d}/usmf_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")
    c.dcmtk(color(c, "US_MF", "US", "usmf", "rle", frames=4), f"{d}/usmf_rle.dcm", "dcmcrle", "-q", "+un")

    # --- angio / fluoro / NM / PET ---------------------------------------------
    c.write(gray(c, "XA", "XA", "xa", "implicit", 8, frames=4), g / "xa_implicit.dcm", TS["implicit"])
    c.add(g / "xa_implicit.dcm", "generated")
    c.dcmtk(gray(c, "XA", "XA", "xa", "jpeg_baseline", 8, frames=4), f"{d}/xa_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")
    c.write(gray(c, "RF", "RF", "rf", "explicit", 8, frames=2), g / "rf_explicit.dcm", TS["explicit"])
    c.add(g / "rf_explicit.dcm", "generated")
    c.dcmtk(gray(c, "RF", "RF", "rf", "rle", 8, frames=2), f"{d}/rf_rle.dcm", "dcmcrle", "-q", "+un")
    c.write(gray(c, "NM", "NM", "nm", "implicit", 16, frames=4, patient="gamma"), g / "nm_implicit.dcm", TS["implicit"])
    c.add(g / "nm_implicit.dcm", "generated")
    c.dcmtk(gray(c, "NM", "NM", "nm", "jpegls_near", 16, frames=4, patient="gamma"), f"{d}/nm_jpegls_near.dcm", "dcmcjpls", "-q", "+en", "+un")
    pt = gray(c, "PT", "PT", "pt", "implicit", 16, patient="gamma")
    pt.Units = "BQML"
    pt.RescaleIntercept = 0
    pt.RescaleSlope = 1
    c.write(pt, g / "pt_implicit.dcm", TS["implicit"])
    c.add(g / "pt_implicit.dcm", "generated")
    pt = gray(c, "PT", "PT", "pt", "deflated", 16, patient="gamma")
    pt.Units = "BQML"
    c.dcmtk(pt, f"{d}/pt_deflated.dcm", "dcmconv", "-q", "+td")

    # --- secondary capture -------------------------------------------------------
    def sc(key, variant, bits, spp=1, frames=1):
        ds = c.base(key, "OT", "sc", variant, "beta")
        c.image(ds, 64, 64, bits, spp=spp, frames=frames, seed=5)
        ds.ConversionType = "WSD"
        return ds

    c.write(sc("SC", "implicit", 8), g / "sc_implicit.dcm", TS["implicit"])
    c.add(g / "sc_implicit.dcm", "generated")
    c.dcmtk(sc("SC", "bigendian", 8), f"{d}/sc_bigendian.dcm", "dcmconv", "-q", "+tb")
    c.write(sc("SC_MF_BYTE", "mf_byte_explicit", 8, frames=4), g / "sc_mf_byte_explicit.dcm", TS["explicit"])
    c.add(g / "sc_mf_byte_explicit.dcm", "generated")
    c.dcmtk(sc("SC_MF_BYTE", "mf_byte_jpeg_baseline", 8, frames=4), f"{d}/sc_mf_byte_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")
    c.write(sc("SC_MF_WORD", "mf_word_explicit", 12, frames=3), g / "sc_mf_word_explicit.dcm", TS["explicit"])
    c.add(g / "sc_mf_word_explicit.dcm", "generated")
    c.dcmtk(sc("SC_MF_WORD", "mf_word_rle", 12, frames=3), f"{d}/sc_mf_word_rle.dcm", "dcmcrle", "-q", "+un")
    c.write(sc("SC_MF_COLOR", "mf_color_explicit", 8, spp=3, frames=3), g / "sc_mf_color_explicit.dcm", TS["explicit"])
    c.add(g / "sc_mf_color_explicit.dcm", "generated")
    c.dcmtk(sc("SC_MF_COLOR", "mf_color_jpeg_baseline", 8, spp=3, frames=3), f"{d}/sc_mf_color_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")

    # --- visible light -----------------------------------------------------------
    c.write(color(c, "VL_PHOTO", "XC", "vlphoto", "explicit"), g / "vl_photo_explicit.dcm", TS["explicit"])
    c.add(g / "vl_photo_explicit.dcm", "generated")
    c.dcmtk(color(c, "VL_PHOTO", "XC", "vlphoto", "jpeg_baseline"), f"{d}/vl_photo_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")
    c.dcmtk(color(c, "VL_ENDO", "ES", "vlendo", "jpeg_baseline"), f"{d}/vl_endo_jpeg_baseline.dcm", "dcmcjpeg", "-q", "+eb", "+un")

    # --- HTJ2K (OpenJPH through imagecodecs) ------------------------------------
    build_htj2k(c)
    # --- video (synthetic elementary streams) -----------------------------------
    build_video(c)
    # --- Enhanced SR, encapsulated PDF ----------------------------------------
    build_enhanced_sr(c)
    build_pdf(c)


def build_htj2k(c: Corpus) -> None:
    import imagecodecs

    g = c.out / "generated"

    def one(ds: Dataset, ts: str, rel: str, **enc) -> None:
        frames = int(ds.get("NumberOfFrames", 1))
        arr = np.frombuffer(ds.PixelData, dtype=np.uint8 if ds.BitsAllocated == 8 else np.uint16)
        spp = int(ds.SamplesPerPixel)
        shape = (frames, ds.Rows, ds.Columns) + ((spp,) if spp > 1 else ())
        arr = arr.reshape(shape)
        fragments = []
        for f in range(frames):
            cs = imagecodecs.htj2k_encode(arr[f], **enc)
            # check it is a codestream (SOC) with a CAP marker (HTJ2K)
            if cs[:2] != b"\xff\x4f" or b"\xff\x50" not in cs[:200]:
                raise SystemExit("imagecodecs did not produce an HTJ2K codestream")
            if enc.get("reversible", True) and not np.array_equal(imagecodecs.htj2k_decode(cs), arr[f]):
                raise SystemExit("HTJ2K lossless round-trip failed")
            fragments.append(cs)
        ds.PixelData = encapsulate(fragments)
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        if ts == TS["htj2k"]:
            ds.LossyImageCompression = "01"
            ds.LossyImageCompressionMethod = "ISO_15444_15"
            ds.LossyImageCompressionRatio = round(len(arr.tobytes()) / sum(map(len, fragments)), 2)
        c.write(ds, g / rel, ts)
        c.add(g / rel, "generated")

    one(ct(c, "ct", "htj2k_lossless"), TS["htj2k_lossless"], "ct_htj2k_lossless.dcm", reversible=True)
    mr = c.base("MR", "MR", "mr", "htj2k_rpcl", "beta")
    c.image(mr, 64, 64, 12, seed=9)
    mr.ScanningSequence = "SE"
    mr.SequenceVariant = "NONE"
    mr.ScanOptions = ""
    mr.MRAcquisitionType = "2D"
    mr.EchoTime = 20
    mr.RepetitionTime = 500
    mr.MagneticFieldStrength = 1.5
    # RPCL progression (OpenJPH's default) + TLM marker + one tile-part per resolution
    one(mr, TS["htj2k_rpcl"], "mr_htj2k_rpcl.dcm", reversible=True, tlm=True,
        tilepart=imagecodecs.HTJ2K.TILEPART.RESOLUTIONS)
    one(gray(c, "XA", "XA", "xa", "htj2k_lossy", 8, frames=2), TS["htj2k"], "xa_htj2k_lossy.dcm",
        reversible=False, level=0.01)


def _mpeg2_payload() -> bytes:
    # sequence header: 640x480, aspect 4:3, 30 fps, then sequence extension
    # (MP@ML, progressive, 4:2:0), GOP header, one picture header, end code.
    seq = bytes.fromhex("000001B3" "2801E0" "35" "FFFFE0" "18")  # w=640 h=480 ar=3 fr=5 ...
    ext = bytes.fromhex("000001B5" "148A0001" "0000")  # profile/level 0x48 = MP@ML
    gop = bytes.fromhex("000001B8" "00080000")
    pic = bytes.fromhex("00000100" "000FFFF8")
    body = hashlib.sha256(b"mpeg2").digest() * 8
    return seq + ext + gop + pic + body + bytes.fromhex("000001B7")


def _h264_payload() -> bytes:
    sps = bytes.fromhex("00000001" "67" "640029" "ACD940A0" "3DA100000300010000030032" "0F183196")  # High@4.1
    pps = bytes.fromhex("00000001" "68" "EBE3CB22C0")
    idr = bytes.fromhex("00000001" "65") + hashlib.sha256(b"h264").digest() * 8
    return sps + pps + idr


def _hevc_payload() -> bytes:
    vps = bytes.fromhex("00000001" "4001" "0C01FFFF01600000030090000003000003009995980900")
    sps = bytes.fromhex("00000001" "4201" "01016000000300900000030000030099A0")
    pps = bytes.fromhex("00000001" "4401" "C172B46240")
    idr = bytes.fromhex("00000001" "2601") + hashlib.sha256(b"hevc").digest() * 8
    return vps + sps + pps + idr


def build_video(c: Corpus) -> None:
    g = c.out / "generated"
    for sop_key, modality, ts_key, payload, rel in (
        ("VIDEO_ENDO", "ES", "mpeg2_mpml", _mpeg2_payload(), "video_endo_mpeg2.dcm"),
        ("VIDEO_PHOTO", "XC", "h264_hp41", _h264_payload(), "video_photo_h264.dcm"),
        ("VIDEO_ENDO", "ES", "hevc_mp51", _hevc_payload(), "video_endo_hevc.dcm"),
    ):
        ds = c.base(sop_key, modality, "video", ts_key, "gamma")
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "YBR_PARTIAL_420"
        ds.PlanarConfiguration = 0
        ds.NumberOfFrames = 30
        ds.FrameIncrementPointer = Tag(0x0018, 0x1063)
        ds.FrameTime = 33.33
        ds.CineRate = 30
        ds.RecommendedDisplayFrameRate = 30
        ds.Rows = 480
        ds.Columns = 640
        ds.BitsAllocated = 8
        ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        ds.LossyImageCompression = "01"
        if len(payload) % 2:
            payload += b"\x00"
        ds.PixelData = encapsulate([payload])  # empty BOT + one fragment
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        c.write(ds, g / rel, TS[ts_key])
        c.add(g / rel, "generated", synthetic_payload=True)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    d = Dataset()
    d.CodeValue = value
    d.CodingSchemeDesignator = scheme
    d.CodeMeaning = meaning
    return d


def build_enhanced_sr(c: Corpus) -> None:
    g = c.out / "generated"
    ds = c.base("SR_ENHANCED", "SR", "sr", "enhanced", "alpha")
    del ds.ImageType
    del ds.PatientOrientation
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    text.TextValue = "No acute abnormality."
    num = Dataset()
    num.RelationshipType = "CONTAINS"
    num.ValueType = "NUM"
    num.ConceptNameCodeSequence = Sequence([_code("410668003", "SCT", "Length")])
    mv = Dataset()
    mv.NumericValue = "12.5"
    mv.MeasurementUnitsCodeSequence = Sequence([_code("mm", "UCUM", "millimeter")])
    num.MeasuredValueSequence = Sequence([mv])
    ds.ContentSequence = Sequence([text, num])
    c.write(ds, g / "sr_enhanced.dcm", TS["explicit"])
    c.add(g / "sr_enhanced.dcm", "generated")


def tiny_pdf() -> bytes:
    """A one-page PDF 1.4 with correct xref offsets, written by hand."""
    content = b"BT /F1 14 Tf 20 50 Td (dxhub test report) Tj ET\n"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def build_pdf(c: Corpus) -> None:
    pdf = c.tmp / "report.pdf"
    pdf.write_bytes(tiny_pdf())
    dst = c.out / "dcmtk" / "encapsulated_pdf.dcm"
    dst.parent.mkdir(parents=True, exist_ok=True)
    name, pid, birth, sex = PATIENTS["alpha"]
    run([
        "pdf2dcm", "-q", "+t", "dxhub test report", "+pn", name, "+pi", pid,
        "+pb", birth, "+ps", sex, "-an",
        "-k", f"StudyInstanceUID={uid('study', 'pdf')}",
        "-k", f"SeriesInstanceUID={uid('series', 'pdf', 'doc')}",
        "-k", f"SOPInstanceUID={uid('sop', 'pdf', 'doc')}",
        "-k", "StudyDate=20240115", "-k", "StudyTime=101500",
        "-k", "InstanceCreationDate=20240115", "-k", "InstanceCreationTime=101500",
        "-k", "ContentDate=20240115", "-k", "ContentTime=101500",
        "-k", "SeriesDate=20240115", "-k", "SeriesTime=101500",
        "-k", "AccessionNumber=ACC-PDF", "-k", "StudyDescription=Corpus pdf",
        "-k", "SeriesNumber=1", "-k", "InstanceNumber=1",
        str(pdf), str(dst),
    ])
    # pdf2dcm writes the instance UID into the dataset; make sure meta agrees
    ds = pydicom.dcmread(dst)
    if str(ds.SOPInstanceUID) != uid("sop", "pdf", "doc"):
        ds.SOPInstanceUID = uid("sop", "pdf", "doc")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(dst, enforce_file_format=True)
    if bytes(ds.EncapsulatedDocument).rstrip(b"\x00") != tiny_pdf().rstrip(b"\x00"):
        raise SystemExit("pdf2dcm changed the PDF")
    c.add(dst, "dcmtk:pdf2dcm")


def build_pydicom(c: Corpus) -> None:
    p = "pydicom"
    copies = [
        ("CT_small.dcm", None),                     # CT, Explicit LE
        ("693_J2KI.dcm", None),                     # CT, JPEG 2000 (lossy)
        ("MR_small.dcm", None),                     # MR, Explicit LE
        ("MR_small_implicit.dcm", None),            # MR, Implicit LE
        ("MR_small_bigendian.dcm", None),           # MR, Explicit BE
        ("MR_small_RLE.dcm", None),                 # MR, RLE
        ("MR_small_jpeg_ls_lossless.dcm", None),    # MR, JPEG-LS lossless
        ("MR_small_jp2klossless.dcm", None),        # MR, JPEG 2000 lossless
        ("JPEG2000.dcm", None),                     # SC (NM), JPEG 2000 (lossy)
        ("examples_jpeg2k.dcm", None),              # US, JPEG 2000 lossless
        ("JPGExtended.dcm", None),                  # SC, JPEG extended
        ("JPEGLSNearLossless_08.dcm", None),        # SC, JPEG-LS near-lossless
        ("SC_rgb_jpeg_gdcm.dcm", None),             # SC RGB, JPEG lossless SV1
        ("SC_rgb_rle.dcm", None),                   # SC RGB, RLE
        ("examples_ybr_color.dcm", None),           # US multi-frame, JPEG baseline
        ("image_dfl.dcm", None),                    # SC, deflated explicit LE
        ("ExplVR_BigEnd.dcm", None),                # US RGB, Explicit BE
        ("liver_1frame.dcm", None),                 # Segmentation, Explicit LE
        ("liver_expb_1frame.dcm", None),            # Segmentation, Explicit BE
        ("rtdose.dcm", None),                       # RT Dose, Implicit LE
        ("rtdose_rle_1frame.dcm", None),            # RT Dose, RLE
        ("rtplan.dcm", None),                       # RT Plan, Implicit LE
        ("reportsi.dcm", None),                     # Basic Text SR
        ("test-SR.dcm", None),                      # Comprehensive SR
        ("waveform_ecg.dcm", None),                 # 12-lead ECG
    ]
    for name, sop_key in copies:
        c.from_pydicom(name, f"{p}/{name}", sop_key)
    # RT Structure Set: pydicom ships it as a bare Implicit LE data set (no Part 10 header)
    c.from_pydicom("rtstruct.dcm", f"{p}/rtstruct.dcm", add_meta_ts=TS["implicit"])
    # the same ECG relabelled as General ECG and Ambulatory ECG
    c.from_pydicom("waveform_ecg.dcm", f"{p}/waveform_ecg_general.dcm", "ECG_GENERAL")
    c.from_pydicom("waveform_ecg.dcm", f"{p}/waveform_ecg_ambulatory.dcm", "ECG_AMBULATORY")
    # a real CR (downsized) from pydicom's DICOMDIR test set
    c.from_pydicom("77654033/CR1/6154", f"{p}/dicomdir_cr_6154.dcm")


# --------------------------------------------------------------------------
# character sets
# --------------------------------------------------------------------------
def build_chinese(c: Corpus) -> None:
    gb = lambda s: s.encode("gb2312")  # EUC-CN: GB 2312 in GR (high bit set)
    esc_ir58 = b"\x1b$)A"              # ESC $ ) A designates GB 2312 to G1
    cases = [
        # rel, charset value(s), raw PN bytes, expected unicode
        ("utf8.dcm", "ISO_IR 192", "张^小明".encode("utf-8"), "张^小明"),
        ("gb18030.dcm", "GB18030", "张^小明".encode("gb18030"), "张^小明"),
        ("ir58.dcm", ["", "ISO 2022 IR 58"],
         esc_ir58 + gb("张") + b"^" + esc_ir58 + gb("小明"), "张^小明"),
        ("utf8_groups.dcm", "ISO_IR 192",
         "Wang^XiaoDong=王^小东=".encode("utf-8"), "Wang^XiaoDong=王^小东="),
        # PS3.5 Annex K.2 style: alphabetic group ASCII, ideographic group GB 2312
        ("ir58_groups.dcm", ["", "ISO 2022 IR 58"],
         b"Zhang^XiaoDong=" + esc_ir58 + gb("张") + b"^" + esc_ir58 + gb("小东") + b"=",
         "Zhang^XiaoDong=张^小东="),
    ]
    for rel, charset, raw, expected in cases:
        variant = rel[:-4]
        # one study per file: each has its own patient
        ds = ct(c, f"chinese-{variant}", variant, patient="alpha", charset=None)
        ds.SpecificCharacterSet = charset
        ds.PatientID = f"DXC-ZH-{variant.upper()}"[:64]
        if len(raw) % 2:
            raw += b" "
        tag = Tag(0x0010, 0x0010)
        ds[tag] = RawDataElement(tag, "PN", len(raw), raw, 0, False, True)
        path = c.out / "chinese" / rel
        c.write(ds, path, TS["explicit"])
        # expected_patient_name is what str(PersonName) gives (pydicom drops
        # trailing empty component groups, i.e. a final "="); patient_name_value
        # is the whole decoded element value, delimiters included.
        shown = expected.rstrip("=")
        got = str(pydicom.dcmread(path).PatientName)
        if got != shown:
            raise SystemExit(f"chinese/{rel}: pydicom decodes {got!r}, expected {shown!r}")
        c.add(path, "generated", expected_patient_name=shown, patient_name_value=expected)


# --------------------------------------------------------------------------
# broken files
# --------------------------------------------------------------------------
def _element_offsets(path: Path) -> tuple[int, dict[int, tuple[int, int]]]:
    """Return (dataset_offset, {tag: (value_offset, length)}) for an Explicit VR LE file."""
    b = path.read_bytes()
    pos = 132
    while pos < len(b) and int.from_bytes(b[pos:pos + 2], "little") == 0x0002:
        vr = b[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"OD", b"OL", b"OV", b"UC", b"UR"):
            pos += 12 + int.from_bytes(b[pos + 8:pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(b[pos + 6:pos + 8], "little")
    start = pos
    elems = {}
    while pos + 8 <= len(b):
        tag = (int.from_bytes(b[pos:pos + 2], "little") << 16) | int.from_bytes(b[pos + 2:pos + 4], "little")
        vr = b[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF", b"OD", b"OL", b"OV", b"UC", b"UR"):
            ln = int.from_bytes(b[pos + 8:pos + 12], "little")
            voff = pos + 12
        else:
            ln = int.from_bytes(b[pos + 6:pos + 8], "little")
            voff = pos + 8
        elems[tag] = (voff, ln)
        if ln == 0xFFFFFFFF:
            break
        pos = voff + ln
    return start, elems


def build_bad(c: Corpus) -> None:
    bad = c.out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    for variant, tag, what in (
        ("truncated_header", 0x00081030, "Study Description value cut in half; nothing after it"),
        ("truncated_pixeldata", 0x7FE00010, "Pixel Data value cut in half"),
    ):
        ds = ct(c, "bad", variant, patient="gamma")
        ds.StudyDescription = "Truncated in the middle of this element on purpose"
        path = bad / f"{variant}.dcm"
        c.write(ds, path, TS["explicit"])
        _, elems = _element_offsets(path)
        voff, ln = elems[tag]
        data = path.read_bytes()[: voff + ln // 2]
        path.write_bytes(data)
        c.bad_entries.append({
            "path": path.relative_to(c.out).as_posix(),
            "transfer_syntax": TS["explicit"],
            "sop_class": SOP["CT"],
            "sop_instance": str(ds.SOPInstanceUID),
            "source": "generated",
            "sender": "pynetdicom",
            "sender_args": [],
            "defect": what,
        })


# --------------------------------------------------------------------------
def validate(c: Corpus) -> None:
    seen: dict[str, str] = {}
    for e in c.entries + c.bad_entries:
        p = c.out / e["path"]
        head = p.read_bytes()[:132]
        if len(head) < 132 or head[128:132] != b"DICM":
            raise SystemExit(f"{e['path']}: not a Part 10 file")
        if e["sop_instance"] in seen:
            raise SystemExit(f"duplicate SOP Instance UID {e['sop_instance']}: {seen[e['sop_instance']]} and {e['path']}")
        seen[e["sop_instance"]] = e["path"]
    for e in c.entries:
        ds = pydicom.dcmread(c.out / e["path"])  # full read, pixels included
        _ = ds.get("PixelData")
    # DCMTK must be able to parse every file that a DCMTK tool is meant to send
    if shutil.which("dcmdump"):
        for e in c.entries:
            if e["sender"] in ("storescu", "dcmsend"):
                r = subprocess.run(["dcmdump", "-q", "-M", str(c.out / e["path"])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, errors="replace")
                if r.returncode != 0 or "E: " in r.stderr:
                    raise SystemExit(f"dcmdump cannot parse {e['path']}: {r.stderr.strip()}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1]).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for tool in ("dcmcjpeg", "dcmcjpls", "dcmcrle", "dcmconv", "pdf2dcm"):
        if not shutil.which(tool):
            raise SystemExit(f"make_corpus: DCMTK tool {tool} not on PATH (apt-get install dcmtk)")
    c = Corpus(out)
    try:
        build_generated(c)
        build_pydicom(c)
        build_chinese(c)
        build_bad(c)
        validate(c)
    finally:
        shutil.rmtree(c.tmp, ignore_errors=True)
    c.entries.sort(key=lambda e: e["path"])
    (out / "manifest.json").write_text(json.dumps(c.entries, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "bad_manifest.json").write_text(json.dumps(c.bad_entries, indent=1) + "\n", encoding="utf-8")
    ts_set = sorted({e["transfer_syntax"] for e in c.entries})
    print(f"make_corpus: {len(c.entries)} files, {len(ts_set)} transfer syntaxes, "
          f"{len({e['sop_class'] for e in c.entries})} SOP classes -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
