"""Convert GE MUSE XML ECGs to DICOM General ECG with PyPI's ``ecg2dcm`` (the converter under
test), from the real samples of pydicom's ``waveform_ecg.dcm``.

Usage: ``ecg2dcm_make.py SOURCE.dcm OUT_DIR`` with the Python of
``tests/py/ecg2dcm_requirements.txt`` (ecg2dcm 1.3.1 needs pydicom < 3, so it has its own
venv). ecg2dcm ships no sample files in its wheel, so this script writes the MUSE XML
(``<RestingECG>``, the element names ecg2dcm's ``adapters/muse.py`` reads) itself:

- ``muse_rhythm_median.xml``: the 8 independent leads (I, II, V1–V6) of the source's rhythm
  group (10 s at 1000 Hz, 1.25 µV per bit) and of its median beat, as MUSE exports them
  (ecg2dcm derives III, aVR, aVL, aVF), global measurements with fiducial points, two
  interpretation statements (one Chinese), a Chinese patient name, filters;
- ``muse_500hz.xml``: all 12 leads resampled to 500 Hz (every other sample) and
  requantised to GE's usual 4.88 µV per bit, nothing else.

Each is parsed and built with ecg2dcm's Python API (``parse``, ``build`` with the identity
kept, ``check_iod_constraints``) and saved as DICOM next to it. One JSON line per file:
``{"path", "xml", "conformance": [ecg2dcm's IOD constraint violations],
"expected": {what the XML said: patient, filters, statements, leads, units_per_bit,
sampling_frequency, has_median}}``, or ``{"__error__": "<message>"}``.

Used by crates/dxhub-ecg/tests/dicom_ecg2dcm.rs.
"""

import base64
import json
import sys
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pydicom

import ecg2dcm

EIGHT = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
TWELVE = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
STATEMENTS = ["窦性心律", "Normal ECG"]


def source_leads(ds, index):
    """{lead name: samples in µV} of a multiplex group of the source, and its rate."""
    item = ds.WaveformSequence[index]
    arr = ds.waveform_array(index)
    out = {}
    for j, ch in enumerate(item.ChannelDefinitionSequence):
        meaning = str(ch.ChannelSourceSequence[0].CodeMeaning)
        name = meaning.replace("Lead ", "").split("(")[0].strip()
        unit = str(ch.ChannelSensitivityUnitsSequence[0].CodeValue)
        out[name] = arr[:, j] * {"uV": 1.0, "mV": 1000.0}[unit]
    return out, float(item.SamplingFrequency)


def lead_data(name, uv, units_per_bit):
    raw = np.clip(np.round(uv / units_per_bit), -32768, 32767).astype("<i2")
    data = base64.b64encode(raw.tobytes()).decode("ascii")
    return f"""    <LeadData>
      <LeadByteCountTotal>{raw.size * 2}</LeadByteCountTotal>
      <LeadTimeOffset>0</LeadTimeOffset>
      <LeadSampleCountTotal>{raw.size}</LeadSampleCountTotal>
      <LeadAmplitudeUnitsPerBit>{units_per_bit}</LeadAmplitudeUnitsPerBit>
      <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>
      <LeadHighLimit>32767</LeadHighLimit>
      <LeadLowLimit>-32768</LeadLowLimit>
      <LeadID>{name}</LeadID>
      <LeadOffsetFirstSample>0</LeadOffsetFirstSample>
      <FirstSampleBaseline>0</FirstSampleBaseline>
      <LeadSampleSize>2</LeadSampleSize>
      <LeadOff>FALSE</LeadOff>
      <BaselineSway>FALSE</BaselineSway>
      <WaveFormData>{data}</WaveFormData>
    </LeadData>
"""


def waveform(kind, leads, names, rate, units_per_bit, filters):
    high_pass, low_pass, ac = filters
    body = "".join(lead_data(n, leads[n], units_per_bit) for n in names)
    return f"""  <Waveform>
    <WaveformType>{kind}</WaveformType>
    <WaveformStartTime>0</WaveformStartTime>
    <NumberofLeads>{len(names)}</NumberofLeads>
    <SampleType>CONTINUOUS_SAMPLES</SampleType>
    <SampleBase>{int(rate)}</SampleBase>
    <SampleExponent>0</SampleExponent>
    <HighPassFilter>{high_pass}</HighPassFilter>
    <LowPassFilter>{low_pass}</LowPassFilter>
    <ACFilter>{ac}</ACFilter>
{body}  </Waveform>
"""


def muse(patient, measurements, statements, waveforms):
    demographics = "".join(f"    <{k}>{escape(v)}</{k}>\n" for k, v in patient.items())
    meas = "".join(f"    <{k}>{v}</{k}>\n" for k, v in measurements.items())
    diagnosis = "".join(
        f"    <DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag>"
        f"<StmtText>{escape(s)}</StmtText></DiagnosisStatement>\n"
        for s in statements
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE RestingECG SYSTEM "restecg.dtd">
<RestingECG>
  <MuseInfo><MuseVersion>9.0.10.18619</MuseVersion></MuseInfo>
  <PatientDemographics>
{demographics}  </PatientDemographics>
  <TestDemographics>
    <DataType>RESTING</DataType>
    <Site>1</Site>
    <SiteName>Test Site</SiteName>
    <AcquisitionDevice>MAC55</AcquisitionDevice>
    <Status>CONFIRMED</Status>
    <AcquisitionTime>08:09:10</AcquisitionTime>
    <AcquisitionDate>03-05-2024</AcquisitionDate>
    <AcquisitionSoftwareVersion>010A</AcquisitionSoftwareVersion>
    <AnalysisSoftwareVersion>233</AnalysisSoftwareVersion>
  </TestDemographics>
  <RestingECGMeasurements>
{meas}  </RestingECGMeasurements>
  <Diagnosis>
    <Modality>RESTING</Modality>
{diagnosis}  </Diagnosis>
{"".join(waveforms)}</RestingECG>
"""


def convert(xml_path, expected):
    rec = ecg2dcm.parse(str(xml_path))
    ds = ecg2dcm.build(rec, index=1, deidentify_record=False)
    conformance = [str(v) for v in ecg2dcm.check_iod_constraints(ds)]
    out = xml_path.with_suffix(".dcm")
    ds.save_as(str(out), write_like_original=False)
    return {"path": str(out), "xml": str(xml_path), "conformance": conformance, "expected": expected}


def main(source, out_dir):
    warnings.simplefilter("ignore")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(source)
    rhythm, rate = source_leads(ds, 0)
    median, median_rate = source_leads(ds, 1)
    results = []

    # 1. As MUSE exports a resting ECG: 8 leads, rhythm and median beat, everything.
    patient = {
        "PatientID": "MUSE-0042",
        "PatientLastName": "王",
        "PatientFirstName": "小明",
        "Gender": "FEMALE",
        "PatientAge": "53",
        "AgeUnits": "YEARS",
        "DateofBirth": "05-06-1970",
    }
    measurements = {
        "VentricularRate": 61,
        "AtrialRate": 61,
        "PRInterval": 161,
        "QRSDuration": 75,
        "QTInterval": 398,
        "QTCorrected": 401,
        "PAxis": 52,
        "RAxis": -12,
        "TAxis": 38,
        "ECGSampleBase": int(median_rate),
        "ECGSampleExponent": 0,
        "POnset": 220,
        "POffset": 318,
        "QOnset": 381,
        "QOffset": 456,
        "TOffset": 779,
    }
    xml = out_dir / "muse_rhythm_median.xml"
    xml.write_text(
        muse(
            patient,
            measurements,
            STATEMENTS,
            [
                waveform("Median", median, EIGHT, median_rate, 1.25, (5, 150, 50)),
                waveform("Rhythm", rhythm, EIGHT, rate, 1.25, (5, 150, 50)),
            ],
        ),
        encoding="utf-8",
    )
    results.append(
        convert(
            xml,
            {
                "patient": {"id": "MUSE-0042", "name": "王^小明", "sex": "F", "birth_date": "19700506"},
                "filters": {"low": 0.05, "high": 150.0, "notch": 50.0},
                "statements": STATEMENTS,
                "leads": TWELVE,
                "units_per_bit": 1.25,
                "sampling_frequency": rate,
                "samples": len(rhythm["I"]),
                "has_median": True,
                "acquired_at": "20240305080910",
            },
        )
    )

    # 2. All 12 leads at 500 Hz, 4.88 µV per bit, no median, no measurements, no statements.
    half = {k: v[::2] for k, v in rhythm.items()}
    xml = out_dir / "muse_500hz.xml"
    xml.write_text(
        muse(
            {"PatientID": "MUSE-0500", "Gender": "MALE"},
            {},
            [],
            [waveform("Rhythm", half, TWELVE, rate / 2, 4.88, (5, 40, "NONE"))],
        ),
        encoding="utf-8",
    )
    results.append(
        convert(
            xml,
            {
                "patient": {"id": "MUSE-0500", "name": None, "sex": "M", "birth_date": None},
                "filters": {"low": 0.05, "high": 40.0, "notch": None},
                "statements": [],
                "leads": TWELVE,
                "units_per_bit": 4.88,
                "sampling_frequency": rate / 2,
                "samples": len(half["I"]),
                "has_median": False,
                "acquired_at": "20240305080910",
            },
        )
    )
    for r in results:
        sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except Exception as exc:  # reported to the Rust test, which decides
        sys.stdout.write(json.dumps({"__error__": f"{type(exc).__name__}: {exc}"}) + "\n")
