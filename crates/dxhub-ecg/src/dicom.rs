//! Reader of DICOM 12-lead, General and Ambulatory ECG waveform instances (PS3.3 A.34,
//! C.10.9 Waveform module) into [`Ecg`].
//!
//! - The rhythm is the first multiplex group with at least 8 channels that is not labelled
//!   as median beats; when no group has 8 channels (ambulatory recordings often have 2 or 3),
//!   the first non-median group with channels. Median-beat groups are not read; their
//!   presence is noted in [`Ecg::has_median_beats`].
//! - Sample value in µV = (raw × Channel Sensitivity × Channel Sensitivity Correction Factor
//!   plus Channel Baseline) × the factor of the Channel Sensitivity Units (UCUM `uV`, `mV`,
//!   `V`, `nV`; also `µV`). This is PS3.3 C.10.9.1.4.3 and what pydicom's `waveform_array`
//!   does.
//! - Filters are those of the rhythm group's first channel that states them; a notch of 0 Hz
//!   means no notch.
//! - Device measurements and statements come from the Waveform Annotation Sequence: items with
//!   a Numeric Value and a Concept Name are measurements, Unformatted Text Values are statements.
//! - Text (patient, device, statements) is decoded per Specific Character Set and repaired as
//!   the index repairs it (`dxhub_core::charset`): GBK/GB18030 characters whose second byte is
//!   0x5C, and ISO 2022 IR 58.

use crate::model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use dicom_core::Tag;
use dicom_core::value::PrimitiveValue;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};

/// SOP classes this reader accepts.
pub const TWELVE_LEAD_ECG: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
pub const GENERAL_ECG: &str = "1.2.840.10008.5.1.4.1.1.9.1.2";
pub const AMBULATORY_ECG: &str = "1.2.840.10008.5.1.4.1.1.9.1.3";

#[derive(Debug, thiserror::Error)]
pub enum DicomEcgError {
    #[error("cannot parse the DICOM file: {0}")]
    Parse(#[source] Box<dicom_object::ReadError>),
    #[error(
        "SOP class {0} is not an ECG waveform (12-lead {TWELVE_LEAD_ECG}, general {GENERAL_ECG} or ambulatory {AMBULATORY_ECG})"
    )]
    NotEcg(String),
    #[error("not a waveform: the data set has no Waveform Sequence (5400,0100) or it is empty")]
    NoWaveform,
    #[error("no rhythm data: every multiplex group of the Waveform Sequence is a median beat")]
    OnlyMedianBeats,
    #[error("multiplex group {group}: {attr} is missing or invalid")]
    MissingAttribute { group: usize, attr: &'static str },
    #[error("multiplex group {group}: no channels")]
    NoChannels { group: usize },
    #[error("multiplex group {group}: no samples")]
    NoSamples { group: usize },
    #[error("multiplex group {group}: Sampling Frequency {value} Hz is not a positive number")]
    BadSampleRate { group: usize, value: f64 },
    #[error(
        "multiplex group {group}: Number of Waveform Channels is {declared} but the Channel Definition Sequence has {defined} items"
    )]
    ChannelCountMismatch {
        group: usize,
        declared: usize,
        defined: usize,
    },
    #[error(
        "multiplex group {group}: Waveform Bits Allocated {bits} is not supported (8, 16 or 32)"
    )]
    UnsupportedBits { group: usize, bits: u16 },
    #[error(
        "multiplex group {group}: Waveform Sample Interpretation {interpretation:?} is not supported with {bits} bits allocated"
    )]
    UnsupportedInterpretation {
        group: usize,
        bits: u16,
        interpretation: String,
    },
    #[error("multiplex group {group}: Waveform Data holds {actual} bytes, {expected} expected")]
    Truncated {
        group: usize,
        expected: usize,
        actual: usize,
    },
    #[error("multiplex group {group}: Waveform Data has an unexpected value representation")]
    BadWaveformData { group: usize },
    #[error(
        "multiplex group {group}, channel {channel}: no Channel Sensitivity, so no voltage scale"
    )]
    MissingSensitivity { group: usize, channel: usize },
    #[error(
        "multiplex group {group}, channel {channel}: Channel Sensitivity Units {unit:?} is not a voltage unit"
    )]
    UnsupportedUnits {
        group: usize,
        channel: usize,
        unit: String,
    },
}

type Result<T, E = DicomEcgError> = std::result::Result<T, E>;

/// Read a Part 10 file (with or without the 128-byte preamble) from its bytes.
pub fn read_dicom(bytes: &[u8]) -> Result<Ecg> {
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(|e| DicomEcgError::Parse(Box::new(e)))?;
    read_dicom_object(&obj)
}

/// Read an already parsed data set.
pub fn read_dicom_object(obj: &InMemDicomObject) -> Result<Ecg> {
    if let Some(sop) = string(obj, tags::SOP_CLASS_UID)
        && ![TWELVE_LEAD_ECG, GENERAL_ECG, AMBULATORY_ECG].contains(&sop.as_str())
    {
        return Err(DicomEcgError::NotEcg(sop));
    }
    let groups = obj
        .get(tags::WAVEFORM_SEQUENCE)
        .and_then(|e| e.items())
        .filter(|items| !items.is_empty())
        .ok_or(DicomEcgError::NoWaveform)?;

    let is_median = |g: &InMemDicomObject| {
        string(g, tags::MULTIPLEX_GROUP_LABEL)
            .is_some_and(|l| l.to_ascii_uppercase().contains("MEDIAN"))
    };
    let channels = |g: &InMemDicomObject| int(g, tags::NUMBER_OF_WAVEFORM_CHANNELS).unwrap_or(0);
    let has_median_beats = groups.iter().any(is_median);
    let rhythm = groups
        .iter()
        .position(|g| !is_median(g) && channels(g) >= 8)
        .or_else(|| groups.iter().position(|g| !is_median(g) && channels(g) > 0))
        .or_else(|| groups.iter().position(|g| !is_median(g)))
        .ok_or(DicomEcgError::OnlyMedianBeats)?;

    let (leads, sample_rate_hz, filters) = read_group(&groups[rhythm], rhythm)?;
    let cs = charsets(obj);
    let (device_measurements, statements) = annotations(obj, &cs);

    let acquired_at = string(obj, tags::ACQUISITION_DATE_TIME).or_else(|| {
        let date = string(obj, tags::CONTENT_DATE)?;
        Some(format!(
            "{date}{}",
            string(obj, tags::CONTENT_TIME).unwrap_or_default()
        ))
    });

    Ok(Ecg {
        leads,
        sample_rate_hz,
        filters,
        device_measurements,
        statements,
        patient: Patient {
            id: text(obj, tags::PATIENT_ID, &cs),
            name: text(obj, tags::PATIENT_NAME, &cs),
            birth_date: string(obj, tags::PATIENT_BIRTH_DATE),
            sex: string(obj, tags::PATIENT_SEX),
        },
        device: Device {
            serial: text(obj, tags::DEVICE_SERIAL_NUMBER, &cs),
            model: text(obj, tags::MANUFACTURER_MODEL_NAME, &cs),
            manufacturer: text(obj, tags::MANUFACTURER, &cs),
        },
        acquired_at,
        has_median_beats,
    })
}

/// The data set's Specific Character Set values.
fn charsets(obj: &InMemDicomObject) -> Vec<String> {
    obj.get(tags::SPECIFIC_CHARACTER_SET)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default()
}

/// A trimmed, non-empty text value (LO, PN, UT …), repaired for its character set.
fn text(obj: &InMemDicomObject, tag: Tag, charsets: &[String]) -> Option<String> {
    match obj.get(tag)?.value().primitive()? {
        PrimitiveValue::Strs(values) => {
            dxhub_core::charset::text_of_values(values.iter().cloned().collect(), charsets)
        }
        PrimitiveValue::Str(value) => {
            dxhub_core::charset::text_of_values(vec![value.clone()], charsets)
        }
        _ => string(obj, tag),
    }
}

/// A trimmed, non-empty string value.
fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    (!s.is_empty()).then(|| s.to_owned())
}

fn float(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    obj.get(tag)?.to_float64().ok().filter(|v| v.is_finite())
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    obj.get(tag)?.to_int::<u32>().ok()
}

fn first_item(obj: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    obj.get(tag)?.items()?.first()
}

/// The lead of a channel from its Channel Source Sequence: the code value (CID 3001), else
/// the code meaning, else the code value as is.
fn channel_lead(ch: &InMemDicomObject, index: usize) -> LeadCode {
    let Some(src) = first_item(ch, tags::CHANNEL_SOURCE_SEQUENCE) else {
        return LeadCode::Other(format!("channel {}", index + 1));
    };
    let value = string(src, tags::CODE_VALUE);
    value
        .as_deref()
        .and_then(LeadCode::from_cid3001)
        .or_else(|| string(src, tags::CODE_MEANING).and_then(|m| LeadCode::from_name(&m)))
        .or_else(|| value.map(LeadCode::Other))
        .unwrap_or_else(|| LeadCode::Other(format!("channel {}", index + 1)))
}

/// Factor from a Channel Sensitivity Units code to µV.
fn unit_to_uv(code: &str) -> Option<f64> {
    match code.trim() {
        "uV" | "µV" | "μV" | "UV" => Some(1.0),
        "mV" | "MV" => Some(1e3),
        "V" => Some(1e6),
        "nV" | "NV" => Some(1e-3),
        _ => None,
    }
}

/// The Waveform Data as little-endian bytes, whatever VR it was read with.
fn waveform_bytes(value: &PrimitiveValue) -> Option<Vec<u8>> {
    Some(match value {
        PrimitiveValue::U8(v) => v.to_vec(),
        PrimitiveValue::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::U32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PrimitiveValue::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => return None,
    })
}

fn read_group(g: &InMemDicomObject, group: usize) -> Result<(Vec<Lead>, f64, Filters)> {
    let missing = |attr| DicomEcgError::MissingAttribute { group, attr };
    let n_channels = int(g, tags::NUMBER_OF_WAVEFORM_CHANNELS)
        .ok_or(missing("Number of Waveform Channels (003A,0005)"))? as usize;
    if n_channels == 0 {
        return Err(DicomEcgError::NoChannels { group });
    }
    let n_samples = int(g, tags::NUMBER_OF_WAVEFORM_SAMPLES)
        .ok_or(missing("Number of Waveform Samples (003A,0010)"))? as usize;
    if n_samples == 0 {
        return Err(DicomEcgError::NoSamples { group });
    }
    let rate =
        float(g, tags::SAMPLING_FREQUENCY).ok_or(missing("Sampling Frequency (003A,001A)"))?;
    if rate <= 0.0 {
        return Err(DicomEcgError::BadSampleRate { group, value: rate });
    }
    let bits = g
        .get(tags::WAVEFORM_BITS_ALLOCATED)
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or(missing("Waveform Bits Allocated (5400,1004)"))?;
    let interpretation = string(g, tags::WAVEFORM_SAMPLE_INTERPRETATION)
        .ok_or(missing("Waveform Sample Interpretation (5400,1006)"))?;
    let bytes_per_sample = match bits {
        8 => 1,
        16 => 2,
        32 => 4,
        _ => return Err(DicomEcgError::UnsupportedBits { group, bits }),
    };
    let decode: fn(&[u8]) -> f64 = match (bits, interpretation.as_str()) {
        (8, "SB") => |b| f64::from(b[0] as i8),
        (8, "UB") => |b| f64::from(b[0]),
        (16, "SS") => |b| f64::from(i16::from_le_bytes([b[0], b[1]])),
        (16, "US") => |b| f64::from(u16::from_le_bytes([b[0], b[1]])),
        (32, "SL") => |b| f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        (32, "UL") => |b| f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => {
            return Err(DicomEcgError::UnsupportedInterpretation {
                group,
                bits,
                interpretation,
            });
        }
    };

    let defs = g
        .get(tags::CHANNEL_DEFINITION_SEQUENCE)
        .and_then(|e| e.items())
        .ok_or(missing("Channel Definition Sequence (003A,0200)"))?;
    if defs.len() != n_channels {
        return Err(DicomEcgError::ChannelCountMismatch {
            group,
            declared: n_channels,
            defined: defs.len(),
        });
    }

    let data = g
        .get(tags::WAVEFORM_DATA)
        .ok_or(missing("Waveform Data (5400,1010)"))?;
    let data = data
        .value()
        .primitive()
        .and_then(waveform_bytes)
        .ok_or(DicomEcgError::BadWaveformData { group })?;
    let expected = n_samples * n_channels * bytes_per_sample;
    if data.len() < expected {
        return Err(DicomEcgError::Truncated {
            group,
            expected,
            actual: data.len(),
        });
    }

    // Per channel: µV = raw × scale + offset.
    let mut scales = Vec::with_capacity(n_channels);
    for (channel, ch) in defs.iter().enumerate() {
        let sensitivity = float(ch, tags::CHANNEL_SENSITIVITY)
            .ok_or(DicomEcgError::MissingSensitivity { group, channel })?;
        let correction = float(ch, tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR).unwrap_or(1.0);
        let baseline = float(ch, tags::CHANNEL_BASELINE).unwrap_or(0.0);
        let unit = first_item(ch, tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE)
            .and_then(|u| string(u, tags::CODE_VALUE))
            .unwrap_or_default();
        let to_uv = unit_to_uv(&unit).ok_or(DicomEcgError::UnsupportedUnits {
            group,
            channel,
            unit,
        })?;
        scales.push((sensitivity * correction * to_uv, baseline * to_uv));
    }

    let mut leads: Vec<Lead> = defs
        .iter()
        .enumerate()
        .map(|(i, ch)| Lead {
            code: channel_lead(ch, i),
            samples_uv: Vec::with_capacity(n_samples),
        })
        .collect();
    // Multiplexed: C1S1, C2S1, …, CnS1, C1S2, …
    for frame in data[..expected].chunks_exact(n_channels * bytes_per_sample) {
        for ((lead, raw), (scale, offset)) in leads
            .iter_mut()
            .zip(frame.chunks_exact(bytes_per_sample))
            .zip(&scales)
        {
            lead.samples_uv.push((decode(raw) * scale + offset) as f32);
        }
    }

    let filters = defs
        .iter()
        .find(|ch| {
            ch.get(tags::FILTER_LOW_FREQUENCY).is_some()
                || ch.get(tags::FILTER_HIGH_FREQUENCY).is_some()
                || ch.get(tags::NOTCH_FILTER_FREQUENCY).is_some()
        })
        .map(|ch| Filters {
            low_hz: float(ch, tags::FILTER_LOW_FREQUENCY),
            high_hz: float(ch, tags::FILTER_HIGH_FREQUENCY),
            notch_hz: float(ch, tags::NOTCH_FILTER_FREQUENCY).filter(|v| *v > 0.0),
        })
        .unwrap_or_default();

    Ok((leads, rate, filters))
}

/// Device measurements and interpretation statements of the Waveform Annotation Sequence.
fn annotations(obj: &InMemDicomObject, cs: &[String]) -> (Vec<Measurement>, Vec<String>) {
    let mut measurements = Vec::new();
    let mut statements = Vec::new();
    let Some(items) = obj
        .get(tags::WAVEFORM_ANNOTATION_SEQUENCE)
        .and_then(|e| e.items())
    else {
        return (measurements, statements);
    };
    for item in items {
        if let Some(t) = text(item, tags::UNFORMATTED_TEXT_VALUE, cs) {
            statements.push(t);
            continue;
        }
        let (Some(value), Some(concept)) = (
            float(item, tags::NUMERIC_VALUE),
            first_item(item, tags::CONCEPT_NAME_CODE_SEQUENCE),
        ) else {
            continue;
        };
        measurements.push(Measurement {
            code: string(concept, tags::CODE_VALUE).unwrap_or_default(),
            scheme: string(concept, tags::CODING_SCHEME_DESIGNATOR).unwrap_or_default(),
            meaning: text(concept, tags::CODE_MEANING, cs).unwrap_or_default(),
            value,
            unit: first_item(item, tags::MEASUREMENT_UNITS_CODE_SEQUENCE)
                .and_then(|u| string(u, tags::CODE_VALUE))
                .unwrap_or_default(),
        });
    }
    (measurements, statements)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, PrimitiveValue, VR};

    fn s(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    }

    fn seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
        obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
    }

    fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
        let mut c = InMemDicomObject::new_empty();
        s(&mut c, tags::CODE_VALUE, VR::SH, value);
        s(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
        s(&mut c, tags::CODE_MEANING, VR::LO, meaning);
        c
    }

    struct Channel {
        code: &'static str,
        sensitivity: &'static str,
        correction: Option<&'static str>,
        baseline: Option<&'static str>,
        unit: &'static str,
    }

    fn ch(code: &'static str, sensitivity: &'static str, unit: &'static str) -> Channel {
        Channel {
            code,
            sensitivity,
            correction: None,
            baseline: None,
            unit,
        }
    }

    fn group(
        label: &str,
        channels: &[Channel],
        samples: usize,
        bits: u16,
        interp: &str,
        data: PrimitiveValue,
    ) -> InMemDicomObject {
        let mut g = InMemDicomObject::new_empty();
        s(&mut g, tags::MULTIPLEX_GROUP_LABEL, VR::SH, label);
        g.put(DataElement::new(
            tags::NUMBER_OF_WAVEFORM_CHANNELS,
            VR::US,
            PrimitiveValue::from(channels.len() as u16),
        ));
        g.put(DataElement::new(
            tags::NUMBER_OF_WAVEFORM_SAMPLES,
            VR::UL,
            PrimitiveValue::from(samples as u32),
        ));
        s(&mut g, tags::SAMPLING_FREQUENCY, VR::DS, "500");
        g.put(DataElement::new(
            tags::WAVEFORM_BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(bits),
        ));
        s(&mut g, tags::WAVEFORM_SAMPLE_INTERPRETATION, VR::CS, interp);
        let defs = channels
            .iter()
            .map(|c| {
                let mut d = InMemDicomObject::new_empty();
                seq(
                    &mut d,
                    tags::CHANNEL_SOURCE_SEQUENCE,
                    vec![code(c.code, "MDC", "")],
                );
                s(&mut d, tags::CHANNEL_SENSITIVITY, VR::DS, c.sensitivity);
                seq(
                    &mut d,
                    tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE,
                    vec![code(c.unit, "UCUM", "")],
                );
                if let Some(v) = c.correction {
                    s(
                        &mut d,
                        tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR,
                        VR::DS,
                        v,
                    );
                }
                if let Some(v) = c.baseline {
                    s(&mut d, tags::CHANNEL_BASELINE, VR::DS, v);
                }
                s(&mut d, tags::FILTER_LOW_FREQUENCY, VR::DS, "0.05");
                s(&mut d, tags::FILTER_HIGH_FREQUENCY, VR::DS, "150");
                s(&mut d, tags::NOTCH_FILTER_FREQUENCY, VR::DS, "50");
                d
            })
            .collect();
        seq(&mut g, tags::CHANNEL_DEFINITION_SEQUENCE, defs);
        g.put(DataElement::new(tags::WAVEFORM_DATA, VR::OW, data));
        g
    }

    fn ecg_object(sop: &str, groups: Vec<InMemDicomObject>) -> InMemDicomObject {
        let mut obj = InMemDicomObject::new_empty();
        s(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop);
        s(&mut obj, tags::PATIENT_ID, VR::LO, "P-1 ");
        s(&mut obj, tags::PATIENT_SEX, VR::CS, "M");
        s(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "SN42");
        s(&mut obj, tags::CONTENT_DATE, VR::DA, "20240102");
        s(&mut obj, tags::CONTENT_TIME, VR::TM, "101500");
        seq(&mut obj, tags::WAVEFORM_SEQUENCE, groups);
        obj
    }

    #[test]
    fn millivolts_correction_and_baseline_become_microvolts() {
        let channels = [
            Channel {
                code: "2:1",
                sensitivity: "0.005",
                correction: Some("2"),
                baseline: Some("0.1"),
                unit: "mV",
            },
            ch("2:2", "2.5", "uV"),
        ];
        // Two samples: (10, -4), (-20, 8).
        let data = PrimitiveValue::I16(vec![10, -4, -20, 8].into());
        let obj = ecg_object(
            GENERAL_ECG,
            vec![group("RHYTHM", &channels, 2, 16, "SS", data)],
        );
        let ecg = read_dicom_object(&obj).unwrap();
        assert_eq!(ecg.leads.len(), 2);
        assert_eq!(ecg.leads[0].code, LeadCode::I);
        // (10 × 0.005 × 2 + 0.1) mV = 0.2 mV = 200 µV; (−20 × 0.01 + 0.1) mV = −100 µV.
        let i = &ecg.leads[0].samples_uv;
        assert!(
            (i[0] - 200.0).abs() < 1e-3 && (i[1] + 100.0).abs() < 1e-3,
            "{i:?}"
        );
        assert_eq!(ecg.leads[1].samples_uv, vec![-10.0, 20.0]);
        assert_eq!(ecg.sample_rate_hz, 500.0);
        assert_eq!(
            ecg.filters,
            Filters {
                low_hz: Some(0.05),
                high_hz: Some(150.0),
                notch_hz: Some(50.0)
            }
        );
        assert_eq!(ecg.patient.id.as_deref(), Some("P-1"));
        assert_eq!(ecg.device.serial.as_deref(), Some("SN42"));
        assert_eq!(ecg.acquired_at.as_deref(), Some("20240102101500"));
        assert!(!ecg.has_median_beats);
    }

    #[test]
    fn eight_and_thirty_two_bit_samples() {
        let one = [ch("2:1", "1", "uV")];
        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group(
                "RHYTHM",
                &one,
                3,
                8,
                "SB",
                PrimitiveValue::U8(vec![0x7f, 0x80, 0xff].into()),
            )],
        );
        assert_eq!(
            read_dicom_object(&obj).unwrap().leads[0].samples_uv,
            vec![127.0, -128.0, -1.0]
        );
        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group(
                "RHYTHM",
                &one,
                2,
                32,
                "SL",
                PrimitiveValue::I32(vec![-100_000, 70_000].into()),
            )],
        );
        assert_eq!(
            read_dicom_object(&obj).unwrap().leads[0].samples_uv,
            vec![-100_000.0, 70_000.0]
        );
    }

    #[test]
    fn rhythm_is_the_first_group_of_eight_channels_and_median_is_noted() {
        let two = [ch("2:1", "1", "uV"), ch("2:2", "1", "uV")];
        let eight: Vec<Channel> = (1..=8)
            .map(|n| {
                ch(
                    ["2:1", "2:2", "2:3", "2:4", "2:5", "2:6", "2:7", "2:8"][n - 1],
                    "1",
                    "uV",
                )
            })
            .collect();
        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![
                group(
                    "MEDIAN BEAT",
                    &eight,
                    1,
                    16,
                    "SS",
                    PrimitiveValue::I16(vec![9; 8].into()),
                ),
                group(
                    "AUX",
                    &two,
                    1,
                    16,
                    "SS",
                    PrimitiveValue::I16(vec![5; 2].into()),
                ),
                group(
                    "RHYTHM",
                    &eight,
                    1,
                    16,
                    "SS",
                    PrimitiveValue::I16(vec![1; 8].into()),
                ),
            ],
        );
        let ecg = read_dicom_object(&obj).unwrap();
        assert_eq!(ecg.leads.len(), 8);
        assert_eq!(ecg.leads[0].samples_uv, vec![1.0]);
        assert!(ecg.has_median_beats);

        // Ambulatory with 2 channels: the first non-median group with channels.
        let obj = ecg_object(
            AMBULATORY_ECG,
            vec![group(
                "",
                &two,
                1,
                16,
                "SS",
                PrimitiveValue::I16(vec![5, 6].into()),
            )],
        );
        let ecg = read_dicom_object(&obj).unwrap();
        assert_eq!(ecg.leads[1].samples_uv, vec![6.0]);
    }

    /// Part 10 bytes of an ECG whose Specific Character Set, patient name and statement
    /// are raw bytes (as a Chinese device writes them): placeholders written in UTF-8,
    /// replaced byte for byte after encoding.
    fn ecg_with_raw_text(charset: &[u8; 16], name: &[u8; 16], statement: &[u8; 8]) -> Vec<u8> {
        use dicom_object::meta::FileMetaTableBuilder;
        let one = [ch("2:1", "1", "uV")];
        let data = PrimitiveValue::I16(vec![1, 2].into());
        let mut obj = ecg_object(GENERAL_ECG, vec![group("RHYTHM", &one, 2, 16, "SS", data)]);
        s(
            &mut obj,
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            "ISO_IR 192      ",
        );
        s(&mut obj, tags::PATIENT_NAME, VR::PN, "NAMEPLACEHOLDER1");
        let mut item = InMemDicomObject::new_empty();
        s(&mut item, tags::UNFORMATTED_TEXT_VALUE, VR::UT, "STMTPLCH");
        seq(&mut obj, tags::WAVEFORM_ANNOTATION_SEQUENCE, vec![item]);
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(GENERAL_ECG)
            .media_storage_sop_instance_uid("1.2.3.4")
            .transfer_syntax("1.2.840.10008.1.2.1")
            .build()
            .unwrap();
        let mut out = Vec::new();
        obj.with_exact_meta(meta).write_all(&mut out).unwrap();
        let mut replace = |from: &[u8], to: &[u8]| {
            let at = out.windows(from.len()).position(|w| w == from).unwrap();
            out[at..at + to.len()].copy_from_slice(to);
        };
        replace(b"ISO_IR 192      ", charset);
        replace(b"NAMEPLACEHOLDER1", name);
        replace(b"STMTPLCH", statement);
        out
    }

    fn padded<const N: usize>(bytes: &[u8]) -> [u8; N] {
        let mut out = [b' '; N];
        out[..bytes.len()].copy_from_slice(bytes);
        out
    }

    /// The readings the index makes of the same bytes: GB18030 names with a 0x5C second
    /// byte (昞 is 95 5C) and ISO 2022 IR 58 names, not what dicom-rs alone decodes.
    #[test]
    fn chinese_text_is_read_as_the_index_reads_it() {
        let gb = |t: &str| encoding_rs::GB18030.encode(t).0.into_owned();
        let bytes = ecg_with_raw_text(
            &padded(b"GB18030"),
            &padded(&gb("王^昞")),
            &padded(&gb("窦性心律")),
        );
        let ecg = read_dicom(&bytes).unwrap();
        assert_eq!(ecg.patient.name.as_deref(), Some("王^昞"));
        assert_eq!(ecg.statements, ["窦性心律"]);

        let mut name = b"Li^Lei=\x1b$)A".to_vec();
        name.extend_from_slice(&encoding_rs::GBK.encode("李^雷").0);
        let mut statement = b"\x1b$)A".to_vec();
        statement.extend_from_slice(&encoding_rs::GBK.encode("窦性").0);
        let bytes = ecg_with_raw_text(
            &padded(b"\\ISO 2022 IR 58"),
            &padded(&name),
            &padded(&statement),
        );
        let ecg = read_dicom(&bytes).unwrap();
        assert_eq!(ecg.patient.name.as_deref(), Some("Li^Lei=李^雷"));
        assert_eq!(ecg.statements, ["窦性"]);
    }

    #[test]
    fn precise_errors() {
        let one = [ch("2:1", "1", "uV")];
        let data = || PrimitiveValue::I16(vec![1, 2].into());

        let obj = ecg_object("1.2.840.10008.5.1.4.1.1.9.4.1", vec![]);
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::NotEcg(_))
        ));

        let obj = ecg_object(TWELVE_LEAD_ECG, vec![]);
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::NoWaveform)
        ));

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group("RHYTHM", &one, 2, 12, "SS", data())],
        );
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::UnsupportedBits { bits: 12, .. })
        ));

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group("RHYTHM", &one, 2, 8, "MB", data())],
        );
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::UnsupportedInterpretation { .. })
        ));

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group("RHYTHM", &one, 3, 16, "SS", data())],
        );
        let err = read_dicom_object(&obj).unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiplex group 0: Waveform Data holds 4 bytes, 6 expected"
        );

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group("RHYTHM", &[], 2, 16, "SS", data())],
        );
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::NoChannels { group: 0 })
        ));

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group(
                "RHYTHM",
                &[ch("2:1", "1", "mmHg")],
                2,
                16,
                "SS",
                data(),
            )],
        );
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::UnsupportedUnits { channel: 0, .. })
        ));

        let obj = ecg_object(
            TWELVE_LEAD_ECG,
            vec![group("MEDIAN BEAT", &one, 2, 16, "SS", data())],
        );
        assert!(matches!(
            read_dicom_object(&obj),
            Err(DicomEcgError::OnlyMedianBeats)
        ));

        assert!(matches!(
            read_dicom(b"not a dicom file"),
            Err(DicomEcgError::Parse(_))
        ));
    }
}
