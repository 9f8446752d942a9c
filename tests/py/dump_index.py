#!/usr/bin/env python3
"""Print the index attributes of DICOM Part 10 files as JSON (a list, one object per file).

Usage: dump_index.py FILE...

Per file: path, sop_instance_uid, sop_class_uid, transfer_syntax_uid,
study_instance_uid, series_instance_uid, patient_id, patient_name (unicode,
str(ds.PatientName) decoded with the file's Specific Character Set),
patient_birth_date, patient_sex, study_date, study_time, accession_number,
study_description, modality, series_number, instance_number, number_of_frames,
dataset_offset (byte offset where the data set starts, right after the file
meta information) and sha256_dataset (sha256 hex of the file bytes from
dataset_offset to the end; for Deflated TS that is the deflated stream as stored).

Missing attributes are null; series_number, instance_number and number_of_frames
are ints (null when absent or not parseable).
"""

from __future__ import annotations

import hashlib
import json
import sys

import pydicom
import pydicom.charset as _charset

# pydicom 3.0.2 keeps "ESC $ ) A" in text decoded from ISO 2022 IR 58 (it assumes
# Python strips the escape, but Python's iso_ir_58 is plain GB 2312): let pydicom
# strip it and reset at delimiters itself, as PS3.5 6.1.2.5 describes.
_charset.handled_encodings = tuple(e for e in _charset.handled_encodings if e != "iso_ir_58")

_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def dataset_offset(data: bytes) -> int:
    """Offset just past the group 0002 elements (always Explicit VR Little Endian)."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise ValueError("not a DICOM Part 10 file (no DICM prefix at offset 128)")
    pos = 132
    while pos + 8 <= len(data):
        group = int.from_bytes(data[pos:pos + 2], "little")
        if group != 0x0002:
            break
        vr = data[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length = int.from_bytes(data[pos + 8:pos + 12], "little")
            pos += 12 + length
        else:
            length = int.from_bytes(data[pos + 6:pos + 8], "little")
            pos += 8 + length
    return pos


def _str(ds, keyword):
    v = ds.get(keyword)
    if v is None or v == "":
        return None
    return str(v)


def _int(ds, keyword):
    v = ds.get(keyword)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return None


def index(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    off = dataset_offset(data)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    meta = ds.file_meta
    name = ds.get("PatientName")
    return {
        "path": path,
        "sop_instance_uid": _str(ds, "SOPInstanceUID") or _str(meta, "MediaStorageSOPInstanceUID"),
        "sop_class_uid": _str(ds, "SOPClassUID") or _str(meta, "MediaStorageSOPClassUID"),
        "transfer_syntax_uid": _str(meta, "TransferSyntaxUID"),
        "study_instance_uid": _str(ds, "StudyInstanceUID"),
        "series_instance_uid": _str(ds, "SeriesInstanceUID"),
        "patient_id": _str(ds, "PatientID"),
        "patient_name": str(name) if name not in (None, "") else None,
        "patient_birth_date": _str(ds, "PatientBirthDate"),
        "patient_sex": _str(ds, "PatientSex"),
        "study_date": _str(ds, "StudyDate"),
        "study_time": _str(ds, "StudyTime"),
        "accession_number": _str(ds, "AccessionNumber"),
        "study_description": _str(ds, "StudyDescription"),
        "modality": _str(ds, "Modality"),
        "series_number": _int(ds, "SeriesNumber"),
        "instance_number": _int(ds, "InstanceNumber"),
        "number_of_frames": _int(ds, "NumberOfFrames"),
        "dataset_offset": off,
        "sha256_dataset": hashlib.sha256(data[off:]).hexdigest(),
    }


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = []
    rc = 0
    for p in argv:
        try:
            out.append(index(p))
        except Exception as e:  # report and carry on; exit non-zero at the end
            print(f"dump_index: {p}: {e}", file=sys.stderr)
            rc = 1
    json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
