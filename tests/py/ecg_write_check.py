"""Print pydicom's reading of the attributes dxhub's ECG writer stores, for each file given.

One JSON line per file, in the order given::

    {"warnings": [...],            # every warning pydicom raised while reading and decoding
     "transfer_syntax", "sop_class_uid", "specific_character_set", "modality",
     "patient": {"name", "id", "birth_date", "sex"},
     "study": {"date", "time", "accession", "description", "referring_physician", "study_id"},
     "series": {"number", "description"}, "instance_number", "institution",
     "device": {"manufacturer", "model", "serial"},
     "content_date", "content_time", "acquisition_datetime", "timezone_offset",
     "acquisition_context_items",
     "groups": [{"label", "originality", "channels", "samples", "sampling_frequency",
                 "bits_allocated", "interpretation", "time_offset",
                 "channel_defs": [{"code", "scheme", "version", "meaning", "label",
                                   "sensitivity", "unit", "unit_scheme", "unit_meaning",
                                   "correction", "baseline", "skew", "bits_stored",
                                   "low", "high", "notch"}]}],
     "annotations": [{"refs", "text"} or {"refs", "code", "scheme", "meaning", "value",
                      "unit"}]}

or ``{"__error__": "<message>"}`` when pydicom cannot read the file. Person names are
decoded by pydicom from the Specific Character Set. Every group's ``waveform_array`` is
decoded too, so that its warnings are counted.

Used by crates/dxhub-ecg/tests/write_vs_pydicom.rs as the independent reader.
"""

import json
import sys
import warnings

import pydicom


def s(ds, keyword):
    v = ds.get(keyword)
    return None if v is None else str(v)


def f(ds, keyword):
    v = ds.get(keyword)
    return None if v is None or v == "" else float(v)


def code(seq):
    if not seq:
        return {}
    c = seq[0]
    return {
        "code": s(c, "CodeValue") or s(c, "LongCodeValue"),
        "scheme": s(c, "CodingSchemeDesignator"),
        "version": s(c, "CodingSchemeVersion"),
        "meaning": s(c, "CodeMeaning"),
    }


def channel(ch):
    src = code(ch.get("ChannelSourceSequence"))
    unit = code(ch.get("ChannelSensitivityUnitsSequence"))
    return {
        **src,
        "label": s(ch, "ChannelLabel"),
        "sensitivity": f(ch, "ChannelSensitivity"),
        "unit": unit.get("code"),
        "unit_scheme": unit.get("scheme"),
        "unit_meaning": unit.get("meaning"),
        "correction": f(ch, "ChannelSensitivityCorrectionFactor"),
        "baseline": f(ch, "ChannelBaseline"),
        "skew": f(ch, "ChannelSampleSkew"),
        "bits_stored": ch.get("WaveformBitsStored"),
        "low": f(ch, "FilterLowFrequency"),
        "high": f(ch, "FilterHighFrequency"),
        "notch": f(ch, "NotchFilterFrequency"),
    }


def group(ds, index, g):
    ds.waveform_array(index)  # decode, for the warnings
    return {
        "label": s(g, "MultiplexGroupLabel"),
        "originality": s(g, "WaveformOriginality"),
        "channels": int(g.NumberOfWaveformChannels),
        "samples": int(g.NumberOfWaveformSamples),
        "sampling_frequency": float(g.SamplingFrequency),
        "bits_allocated": int(g.WaveformBitsAllocated),
        "interpretation": s(g, "WaveformSampleInterpretation"),
        "time_offset": f(g, "MultiplexGroupTimeOffset"),
        "channel_defs": [channel(ch) for ch in g.ChannelDefinitionSequence],
    }


def annotation(a):
    out = {"refs": [int(v) for v in a.get("ReferencedWaveformChannels", [])]}
    if "UnformattedTextValue" in a:
        out["text"] = str(a.UnformattedTextValue)
    else:
        concept = code(a.get("ConceptNameCodeSequence"))
        out.update(
            code=concept.get("code"),
            scheme=concept.get("scheme"),
            version=concept.get("version"),
            meaning=concept.get("meaning"),
            value=f(a, "NumericValue"),
            unit=code(a.get("MeasurementUnitsCodeSequence")).get("code"),
        )
    return out


def read(path):
    ds = pydicom.dcmread(path)
    ds.decode()  # apply the Specific Character Set to every text value
    return {
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "sop_class_uid": s(ds, "SOPClassUID"),
        "specific_character_set": s(ds, "SpecificCharacterSet"),
        "modality": s(ds, "Modality"),
        "patient": {
            "name": s(ds, "PatientName"),
            "id": s(ds, "PatientID"),
            "birth_date": s(ds, "PatientBirthDate"),
            "sex": s(ds, "PatientSex"),
        },
        "study": {
            "date": s(ds, "StudyDate"),
            "time": s(ds, "StudyTime"),
            "accession": s(ds, "AccessionNumber"),
            "description": s(ds, "StudyDescription"),
            "referring_physician": s(ds, "ReferringPhysicianName"),
            "study_id": s(ds, "StudyID"),
        },
        "series": {
            "number": s(ds, "SeriesNumber"),
            "description": s(ds, "SeriesDescription"),
        },
        "instance_number": s(ds, "InstanceNumber"),
        "institution": s(ds, "InstitutionName"),
        "device": {
            "manufacturer": s(ds, "Manufacturer"),
            "model": s(ds, "ManufacturerModelName"),
            "serial": s(ds, "DeviceSerialNumber"),
        },
        "content_date": s(ds, "ContentDate"),
        "content_time": s(ds, "ContentTime"),
        "acquisition_datetime": s(ds, "AcquisitionDateTime"),
        "timezone_offset": s(ds, "TimezoneOffsetFromUTC"),
        "acquisition_context_items": (
            len(ds.AcquisitionContextSequence) if "AcquisitionContextSequence" in ds else None
        ),
        "groups": [group(ds, i, g) for i, g in enumerate(ds.WaveformSequence)],
        "annotations": [annotation(a) for a in ds.get("WaveformAnnotationSequence", [])],
    }


def main(paths):
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = read(path)
            except Exception as exc:  # reported to the Rust test, which decides
                out = {"__error__": f"{type(exc).__name__}: {exc}"}
        if "__error__" not in out:
            out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
