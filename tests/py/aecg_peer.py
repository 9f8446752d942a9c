"""Third-party side of the HL7 aECG reader tests (crates/dxhub-ecg/tests/aecg_vs_biosig.rs).

Two commands, each printing one JSON object on stdout:

``edf DCM OUT.edf [--unit uV|mV] [--decimate N] [--offset-uv X]``
    Writes an EDF+ file (written by hand here: 256-byte header, 256 bytes per signal,
    1-second data records of 16-bit little-endian samples) holding the rhythm group of the
    DICOM ECG ``DCM`` as read by pydicom: every channel, its raw 16-bit values, the physical
    range chosen so that one digital step is exactly the DICOM Channel Sensitivity (in µV or
    mV, per ``--unit``) and the physical value is ``raw × sensitivity + offset``. Patient ID,
    sex and birth date, start date and time, the manufacturer's first word (as equipment) and
    the first channel's filters (as prefiltering) go into the EDF+ header. ``--decimate N`` keeps
    every N-th sample (sampling rate / N). Prints the source: ``{"sample_rate", "step_uv",
    "offset_uv", "patient_id", "sex", "birth_date", "manufacturer", "high_pass_hz",
    "low_pass_hz", "leads": [{"name", "uv": [...]}]}``, with
    ``uv`` = pydicom's ``waveform_array`` (Channel Sensitivity applied) in µV plus the offset.
    Debian's biosig-tools ``save2gdf -f=HL7aECG`` turns this EDF into the aECG under test.

``parse AECG.xml``
    An independent aECG reader with Python's xml.etree: the first ``component/series`` with a
    sequenceSet, its time sequence's increment (s or ms) and every ``SLIST_PQ`` sequence
    (µV = origin + scale × digit, units uV/mV/V); the trial subject's id and gender code;
    ``effectiveTime/low``; filter cutoffs (any ``…_FILTER_LOW_PASS`` / ``_HIGH_PASS`` code).
    Prints ``{"sample_rate", "patient_id", "sex", "birth_time", "effective_low",
    "manufacturer", "low_pass_hz", "high_pass_hz", "leads": [{"code", "uv": [...]}]}``.
"""

import json
import math
import sys
import xml.etree.ElementTree as ET

TO_UV = {"uV": 1.0, "\u00b5V": 1.0, "mV": 1e3, "V": 1e6, "nV": 1e-3}
MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()


def lead_name(meaning):
    m = meaning.strip()
    if m.startswith("Lead "):
        m = m[5:]
    return m.split("(")[0].strip()


def field(value, width):
    s = str(value)
    if len(s) > width:
        raise SystemExit(f"EDF field {s!r} is wider than {width}")
    return s.ljust(width).encode("ascii")


def fmt8(x):
    """A number in at most 8 characters (EDF header fields)."""
    for digits in range(8, 0, -1):
        s = f"{x:.{digits}f}".rstrip("0").rstrip(".")
        if len(s) <= 8:
            return s
    raise SystemExit(f"cannot write {x} in 8 characters")


def edf(args):
    import numpy as np
    import pydicom

    dcm, out = args[0], args[1]
    unit, decimate, offset_uv = "uV", 1, 0.0
    rest = args[2:]
    while rest:
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--unit":
            unit = val
        elif opt == "--decimate":
            decimate = int(val)
        elif opt == "--offset-uv":
            offset_uv = float(val)
        else:
            raise SystemExit(f"unknown option {opt}")
    ds = pydicom.dcmread(dcm)
    index = next(
        i
        for i, g in enumerate(ds.WaveformSequence)
        if "MEDIAN" not in str(g.get("MultiplexGroupLabel", "")).upper()
    )
    group = ds.WaveformSequence[index]
    if int(group.WaveformBitsAllocated) != 16:
        raise SystemExit("only 16-bit waveforms")
    nch = int(group.NumberOfWaveformChannels)
    raw = np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, nch)[::decimate]
    phys = ds.waveform_array(index)[::decimate]  # in the Channel Sensitivity Units
    channels = list(group.ChannelDefinitionSequence)
    sens = {float(c.ChannelSensitivity) * float(c.get("ChannelSensitivityCorrectionFactor", 1)) for c in channels}
    units = {str(c.ChannelSensitivityUnitsSequence[0].CodeValue) for c in channels}
    baselines = {float(c.get("ChannelBaseline", 0)) for c in channels}
    if len(sens) != 1 or units != {"uV"} or baselines != {0.0}:
        raise SystemExit("this writer needs one sensitivity in uV and no baseline for all channels")
    step_uv = sens.pop()
    fs = float(group.SamplingFrequency) / decimate
    if fs != int(fs):
        raise SystemExit("non-integer sampling rate")
    fs = int(fs)
    nrec = raw.shape[0] // fs
    raw = raw[: nrec * fs]
    phys = phys[: nrec * fs]
    labels = [lead_name(c.ChannelSourceSequence[0].CodeMeaning) for c in channels]

    factor = TO_UV[unit]
    dmin, dmax = -32768, 32767
    pmin = (dmin * step_uv + offset_uv) / factor
    pmax = (dmax * step_uv + offset_uv) / factor

    pid = str(ds.get("PatientID", "X")).replace(" ", "_") or "X"
    sex = str(ds.get("PatientSex", "X")) or "X"
    birth = str(ds.get("PatientBirthDate", ""))
    birth_edf = f"{birth[6:8]}-{MONTHS[int(birth[4:6]) - 1]}-{birth[0:4]}" if len(birth) == 8 else "X"
    acquired = str(ds.get("AcquisitionDateTime", ""))
    date = acquired[:8] or str(ds.get("ContentDate", "20000101"))
    time = acquired[8:14] or str(ds.get("ContentTime", "000000"))[:6]

    h = field("0", 8)
    h += field(f"{pid} {sex} {birth_edf} X", 80)
    equipment = str(ds.get("Manufacturer", "X")).split(",")[0].split(" ")[0] or "X"
    h += field(f"Startdate {date[6:8]}-{MONTHS[int(date[4:6]) - 1]}-{date[0:4]} X X {equipment}", 80)
    h += field(f"{date[6:8]}.{date[4:6]}.{date[2:4]}", 8)
    h += field(f"{time[0:2]}.{time[2:4]}.{time[4:6]}", 8)
    h += field(256 * (nch + 1), 8) + field("EDF+C", 44) + field(nrec, 8) + field(1, 8) + field(nch, 4)
    h += b"".join(field(label, 16) for label in labels)
    h += b"".join(field("AgAgCl electrode", 80) for _ in labels)
    h += b"".join(field(unit, 8) for _ in labels)
    h += b"".join(field(fmt8(pmin), 8) for _ in labels)
    h += b"".join(field(fmt8(pmax), 8) for _ in labels)
    h += b"".join(field(dmin, 8) for _ in labels)
    h += b"".join(field(dmax, 8) for _ in labels)
    first = channels[0]
    high_pass = float(first.get("FilterLowFrequency", 0) or 0)
    low_pass = float(first.get("FilterHighFrequency", 0) or 0)
    prefilter = " ".join(
        f"{kind}:{fmt8(hz)}Hz" for kind, hz in (("HP", high_pass), ("LP", low_pass)) if hz > 0
    )
    h += b"".join(field(prefilter, 80) for _ in labels)
    h += b"".join(field(fs, 8) for _ in labels)
    h += b"".join(field("", 32) for _ in labels)
    assert len(h) == 256 * (nch + 1)
    # The header's ranges must reproduce the step exactly, or the expected values drift.
    got = (float(fmt8(pmax)) - float(fmt8(pmin))) / (dmax - dmin) * factor
    if abs(got - step_uv) > 1e-9 * step_uv:
        raise SystemExit(f"EDF header cannot state a step of {step_uv} uV exactly ({got})")
    body = b"".join(raw[r * fs : (r + 1) * fs, :].T.astype("<i2").tobytes() for r in range(nrec))
    with open(out, "wb") as f:
        f.write(h + body)

    uv_factor = TO_UV[units.pop()]
    print(
        json.dumps(
            {
                "sample_rate": fs,
                "step_uv": step_uv,
                "offset_uv": offset_uv,
                "patient_id": pid,
                "sex": sex,
                "birth_date": birth,
                "manufacturer": equipment,
                "high_pass_hz": high_pass or None,
                "low_pass_hz": low_pass or None,
                "leads": [
                    {"name": label, "uv": [float(v) * uv_factor + offset_uv for v in phys[:, k]]}
                    for k, label in enumerate(labels)
                ],
            }
        )
    )


def local(tag):
    return tag.rsplit("}", 1)[-1]


def kids(el, name):
    return [c for c in el if local(c.tag) == name]


def kid(el, name):
    found = kids(el, name)
    return found[0] if found else None


def path(el, names):
    level = [el]
    for name in names:
        level = [c for e in level for c in kids(e, name)]
    return level


def parse(args):
    root = ET.parse(args[0]).getroot()
    assert local(root.tag) == "AnnotatedECG", root.tag
    series = next(s for s in path(root, ["component", "series"]) if path(s, ["component", "sequenceSet"]))
    seqset = path(series, ["component", "sequenceSet"])[0]
    rate = None
    leads = []
    for seq in path(seqset, ["component", "sequence"]):
        code = kid(seq, "code").get("code")
        value = kid(seq, "value")
        if code in ("TIME_ABSOLUTE", "TIME_RELATIVE"):
            inc = kid(value, "increment")
            step = float(inc.get("value")) * {"s": 1.0, "ms": 1e-3}[inc.get("unit")]
            rate = 1.0 / step
            continue
        origin, scale = kid(value, "origin"), kid(value, "scale")
        o = float(origin.get("value")) * TO_UV[origin.get("unit")]
        s = float(scale.get("value")) * TO_UV[scale.get("unit")]
        digits = kid(value, "digits").text.split()
        leads.append({"code": code, "uv": [o + s * int(d) for d in digits]})
    subject = path(
        root,
        ["componentOf", "timepointEvent", "componentOf", "subjectAssignment", "subject", "trialSubject"],
    )[0]
    person = kid(subject, "subjectDemographicPerson")
    gender = kid(person, "administrativeGenderCode") if person is not None else None
    birth = kid(person, "birthTime") if person is not None else None
    low = path(root, ["effectiveTime", "low"])
    org = path(series, ["author", "seriesAuthor", "manufacturerOrganization", "name"])
    cutoffs = {}
    for cv in path(series, ["controlVariable", "controlVariable"]):
        kind = kid(cv, "code").get("code")
        for sub in path(cv, ["component", "controlVariable"]):
            v = kid(sub, "value")
            if v is not None and kind.endswith(("_LOW_PASS", "_HIGH_PASS")):
                x = float(v.get("value"))
                if math.isfinite(x):
                    cutoffs[kind.rsplit("_", 2)[-2]] = x
    print(
        json.dumps(
            {
                "sample_rate": rate,
                "patient_id": kid(subject, "id").get("extension"),
                "sex": gender.get("code") if gender is not None else None,
                "birth_time": birth.get("value") if birth is not None else None,
                "effective_low": low[0].get("value") if low else None,
                "manufacturer": (org[0].text or "").strip() if org else None,
                "low_pass_hz": cutoffs.get("LOW"),
                "high_pass_hz": cutoffs.get("HIGH"),
                "leads": leads,
            }
        )
    )


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("edf", "parse"):
        raise SystemExit(__doc__)
    {"edf": edf, "parse": parse}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
