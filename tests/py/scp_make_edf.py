"""Write the rhythm samples of a DICOM ECG waveform as an EDF file, for save2gdf to turn into SCP-ECG.

Usage: scp_make_edf.py IN.dcm OUT.edf OUT.json

The EDF holds the raw 16-bit samples of the first multiplex group with at least 8 channels
that is not labelled as median beats, one signal per lead (label = the lead name of the DICOM
code meaning, "Lead I (Einthoven)" -> "I"), 1-second data records, and a physical range set so
that one digital step is the channel's sensitivity in uV (Channel Sensitivity x Correction
Factor; baseline 0 is required). OUT.json gets the truth the Rust test compares against:
``{"sample_rate_hz", "leads": [{"name", "step_uv", "uv": [...]}], "patient_id", "sex",
"birth_date", "start": "YYYYMMDDHHMMSS"}``.

EDF (European Data Format, Kemp et al. 1992) is a fixed-width ASCII header of 256 bytes plus
256 bytes per signal, then data records of little-endian int16 samples; this writer is ours,
written from that description, and is used by crates/dxhub-ecg/tests/scp_vs_biosig.rs.
"""

import json
import sys

import numpy as np
import pydicom


def field(value, width):
    text = str(value)
    if len(text) > width:
        raise ValueError(f"EDF field {text!r} is longer than {width} characters")
    return text.ljust(width).encode("ascii")


def number(value, width=8):
    """A number in at most `width` characters (EDF's physical min/max are 8 wide)."""
    for digits in range(6, -1, -1):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
        if len(text) <= width:
            return field(text, width)
    raise ValueError(f"{value} does not fit in {width} characters")


def lead_name(meaning):
    m = meaning.strip()
    if m.startswith("Lead "):
        m = m[5:]
    return m.split("(")[0].strip()


def main():
    src, out_edf, out_json = sys.argv[1:4]
    ds = pydicom.dcmread(src)
    group_index = None
    for i, item in enumerate(ds.WaveformSequence):
        label = str(item.get("MultiplexGroupLabel", "")).upper()
        if "MEDIAN" not in label and int(item.NumberOfWaveformChannels) >= 8:
            group_index = i
            break
    if group_index is None:
        raise SystemExit("no rhythm group with >= 8 channels")
    item = ds.WaveformSequence[group_index]
    if int(item.WaveformBitsAllocated) != 16 or str(item.WaveformSampleInterpretation) != "SS":
        raise SystemExit("only 16-bit signed waveforms are supported")
    fs = float(item.SamplingFrequency)
    if fs != int(fs):
        raise SystemExit("non-integer sampling frequency")
    fs = int(fs)
    n_ch = int(item.NumberOfWaveformChannels)
    n_samples = int(item.NumberOfWaveformSamples)
    raw = np.frombuffer(item.WaveformData, dtype="<i2").reshape(n_samples, n_ch)
    n_records = n_samples // fs
    raw = raw[: n_records * fs]

    leads = []
    for j, ch in enumerate(item.ChannelDefinitionSequence):
        unit = str(ch.ChannelSensitivityUnitsSequence[0].CodeValue)
        if unit != "uV":
            raise SystemExit(f"channel {j}: unit {unit} (uV expected)")
        if float(ch.get("ChannelBaseline", 0)) != 0:
            raise SystemExit(f"channel {j}: non-zero baseline")
        step = float(ch.ChannelSensitivity) * float(ch.get("ChannelSensitivityCorrectionFactor", 1))
        name = lead_name(str(ch.ChannelSourceSequence[0].CodeMeaning))
        leads.append({"name": name, "step_uv": step, "raw": raw[:, j]})

    birth = str(ds.get("PatientBirthDate", ""))
    sex = str(ds.get("PatientSex", "X")) or "X"
    months = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
    birth_edf = f"{birth[6:8]}-{months[int(birth[4:6]) - 1]}-{birth[0:4]}" if len(birth) == 8 else "X"
    pid = str(ds.get("PatientID", "X")).replace(" ", "_") or "X"
    start = str(ds.get("AcquisitionDateTime", ""))[:14]
    if len(start) != 14:
        start = "20000101000000"

    header = bytearray()
    header += field("0", 8)
    header += field(f"{pid} {sex} {birth_edf} X", 80)
    header += field(f"Startdate {start[6:8]}-{months[int(start[4:6]) - 1]}-{start[0:4]} X X X", 80)
    header += field(f"{start[6:8]}.{start[4:6]}.{start[2:4]}", 8)
    header += field(f"{start[8:10]}.{start[10:12]}.{start[12:14]}", 8)
    header += field(256 + 256 * n_ch, 8)
    header += field("", 44)
    header += field(n_records, 8)
    header += field(1, 8)
    header += field(n_ch, 4)
    dmin, dmax = -32768, 32767
    for key in ("label", "transducer", "dim", "pmin", "pmax", "dmin", "dmax", "prefilter", "ns", "reserved"):
        for lead in leads:
            if key == "label":
                header += field(lead["name"], 16)
            elif key == "transducer":
                header += field("", 80)
            elif key == "dim":
                header += field("uV", 8)
            elif key == "pmin":
                header += number(dmin * lead["step_uv"])
            elif key == "pmax":
                header += number(dmax * lead["step_uv"])
            elif key == "dmin":
                header += field(dmin, 8)
            elif key == "dmax":
                header += field(dmax, 8)
            elif key == "prefilter":
                header += field("", 80)
            elif key == "ns":
                header += field(fs, 8)
            else:
                header += field("", 32)
    assert len(header) == 256 + 256 * n_ch
    data = bytearray()
    for r in range(n_records):
        for lead in leads:
            data += lead["raw"][r * fs : (r + 1) * fs].astype("<i2").tobytes()
    with open(out_edf, "wb") as f:
        f.write(header)
        f.write(data)

    # The physical value EDF readers compute: (d - dmin) * (pmax - pmin) / (dmax - dmin) + pmin.
    truth = {
        "sample_rate_hz": fs,
        "patient_id": pid,
        "sex": sex,
        "birth_date": birth,
        "start": start,
        "leads": [
            {
                "name": lead["name"],
                "step_uv": lead["step_uv"],
                "uv": [float(v) * lead["step_uv"] for v in lead["raw"]],
            }
            for lead in leads
        ],
    }
    with open(out_json, "w") as f:
        json.dump(truth, f)


if __name__ == "__main__":
    main()
