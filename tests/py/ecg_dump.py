"""Print pydicom's reading of each DICOM ECG waveform file given on the command line.

One JSON line per file, in the order given:
``{"sop_class_uid", "patient_id", "groups": [{"label", "channels", "samples",
"sampling_frequency", "leads": [{"code", "scheme", "meaning", "unit", "uv": [...]}]}],
"statements": [...], "measurements": [{"code", "value", "unit"}]}`` (statements and
measurements from the Waveform Annotation Sequence),
or ``{"__error__": "<message>"}`` when pydicom cannot read the file.

Samples come from ``Dataset.waveform_array(i)``, which applies Channel Sensitivity,
Channel Sensitivity Correction Factor and Channel Baseline and returns values in the
Channel Sensitivity Units; they are converted here to microvolts from the UCUM unit code.

Used by crates/dxhub-ecg/tests/dicom_vs_pydicom.rs as the reference implementation.
"""

import json
import sys
import warnings

import pydicom

TO_UV = {"uV": 1.0, "\u00b5V": 1.0, "mV": 1e3, "V": 1e6, "nV": 1e-3}


def group(ds, index, item):
    arr = ds.waveform_array(index)
    leads = []
    for jj, ch in enumerate(item.ChannelDefinitionSequence):
        src = ch.ChannelSourceSequence[0] if "ChannelSourceSequence" in ch else None
        unit = ""
        if "ChannelSensitivityUnitsSequence" in ch:
            unit = str(ch.ChannelSensitivityUnitsSequence[0].CodeValue)
        factor = TO_UV[unit]
        leads.append(
            {
                "code": str(src.CodeValue) if src is not None else None,
                "scheme": str(src.CodingSchemeDesignator) if src is not None else None,
                "meaning": str(src.get("CodeMeaning", "")) if src is not None else None,
                "unit": unit,
                "uv": [float(v) * factor for v in arr[:, jj]],
            }
        )
    return {
        "label": str(item.get("MultiplexGroupLabel", "")),
        "channels": int(item.NumberOfWaveformChannels),
        "samples": int(item.NumberOfWaveformSamples),
        "sampling_frequency": float(item.SamplingFrequency),
        "leads": leads,
    }


def annotations(ds):
    statements, measurements = [], []
    for a in ds.get("WaveformAnnotationSequence", []):
        if "UnformattedTextValue" in a:
            statements.append(str(a.UnformattedTextValue).strip())
        elif "NumericValue" in a and "ConceptNameCodeSequence" in a:
            unit = ""
            if "MeasurementUnitsCodeSequence" in a:
                unit = str(a.MeasurementUnitsCodeSequence[0].CodeValue)
            measurements.append(
                {
                    "code": str(a.ConceptNameCodeSequence[0].CodeValue),
                    "value": float(a.NumericValue),
                    "unit": unit,
                }
            )
    return {"statements": statements, "measurements": measurements}


def main(paths):
    warnings.simplefilter("ignore")
    for path in paths:
        try:
            ds = pydicom.dcmread(path)
            out = {
                "sop_class_uid": str(ds.SOPClassUID),
                "patient_id": str(ds.get("PatientID", "")),
                "groups": [group(ds, i, it) for i, it in enumerate(ds.WaveformSequence)],
                **annotations(ds),
            }
        except Exception as exc:  # reported to the Rust test, which decides
            out = {"__error__": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
