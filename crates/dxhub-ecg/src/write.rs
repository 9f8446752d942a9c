//! DICOM ECG waveform writer: one [`Ecg`] becomes one Part 10 instance (Explicit VR Little
//! Endian, with File Meta) of the 12-Lead, General or Ambulatory ECG Waveform Storage SOP
//! class, so that an ECG received in any format (SCP-ECG, HL7 aECG, JSON…) is stored like any
//! other DICOM instance.
//!
//! # Which IOD (PS3.3 A.34)
//!
//! The first IOD whose content constraints the recording meets ([`sop_class_for`]):
//!
//! 1. **12-Lead ECG** (`1.2.840.10008.5.1.4.1.1.9.1.1`, PS3.3 A.34.3.4): Modality ECG; 1 to 5
//!    Waveform Sequence Items; Number of Waveform Channels 1–13 in each Item and at most 13
//!    across all Items (A.34.3.4.4); Number of Waveform Samples at most 16384 in each Item;
//!    Sampling Frequency 200–1000 Hz inclusive; Waveform Sample Interpretation SS; Channel
//!    Source from CID 3001.
//! 2. **General ECG** (`…9.1.2`, A.34.4.4): Modality ECG; 1 to 4 Items; 1–24 channels in each
//!    Item; Sampling Frequency 200–1000 Hz inclusive; CID 3001; SS. The number of samples is
//!    limited only by the length of Waveform Data, a 32-bit length (at most 2³² − 2 bytes).
//! 3. **Ambulatory ECG** (`…9.1.3`, A.34.5.4): Modality ECG; 1 to 4 Items; 1–12 channels in
//!    each Item; Sampling Frequency 50–1000 Hz inclusive; CID 3001; SB or SS. Long (Holter)
//!    recordings whose samples do not fit one Waveform Data value are split in time into
//!    consecutive multiplex groups (at most 4), each with its Multiplex Group Time Offset
//!    (C.10.9.1.1) from the first sample.
//!
//! Anything else is a [`WriteError::NoIod`] or [`WriteError::TooLong`].
//!
//! # Content
//!
//! The modules the three IODs make mandatory (Tables A.34.3-1, A.34.4-1, A.34.5-1: Patient,
//! General Study, General Series, General Equipment, Waveform Identification, Waveform,
//! Acquisition Context, SOP Common; Waveform Annotation when there are annotations), with
//! every Type 1 and Type 2 attribute; the User modules (Synchronization, Clinical Trial…) are
//! not written.
//!
//! - Specific Character Set `ISO_IR 192` (UTF-8), so that any name survives.
//! - Study Date/Time, Content Date/Time and Acquisition DateTime from [`Ecg::acquired_at`]
//!   (DICOM DT or RFC 3339); an offset from UTC becomes Timezone Offset From UTC. Without an
//!   acquisition time (Content Date/Time and Acquisition DateTime are Type 1) the time of
//!   writing, in UTC, is used and Study Date/Time stay empty.
//! - One multiplex group labelled `RHYTHM` (Waveform Originality ORIGINAL), 16-bit signed
//!   interleaved samples (SS, Waveform Data OW). Each channel: Channel Source Sequence coded by
//!   CID 3001 with the SCP-ECG scheme (`SCPECG` `5.6.3-9-n`, n the MDC lead partition index;
//!   a lead without an index gets a local `99DXHUB` code whose value and meaning are its
//!   name); Channel Label with the lead name; Channel Sensitivity in µV (UCUM `uV`), Channel
//!   Sensitivity Correction Factor 1, Channel Baseline 0, Channel Sample Skew 0, Waveform Bits
//!   Stored 16; Filter Low/High Frequency and Notch Filter Frequency from [`Ecg::filters`].
//! - Channel Sensitivity is chosen per channel: the largest value of the 1-1.25-2.5-5 series
//!   (0.1 µV … 5 V per LSB) on which every sample falls exactly (the source's own quantum,
//!   so that a DICOM → model → DICOM trip is lossless), else the smallest that holds every
//!   sample in ±32767 (the round trip is then within half an LSB).
//! - Waveform Annotation Sequence: each device measurement as Concept Name Code Sequence,
//!   Numeric Value and Measurement Units Code Sequence (UCUM; `1` "no units" when the source
//!   gives none; a measurement without a coding scheme gets `99DXHUB`), each statement as
//!   Unformatted Text Value (ST, cut to 1024 characters); all reference the whole rhythm
//!   group (Referenced Waveform Channels `1\0`, C.10.10.1.1). SCP-ECG codes carry Coding
//!   Scheme Version `1.3`.
//! - Acquisition Context Sequence (Type 2) is written empty: nothing in the model states the
//!   lead system or the patient state.

use crate::dicom::{AMBULATORY_ECG, GENERAL_ECG, TWELVE_LEAD_ECG};
use crate::model::{Ecg, LeadCode, Measurement};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use std::ops::Range;

/// dxhub's implementation class UID. The same value as `dxhub_dicom::meta::
/// IMPLEMENTATION_CLASS_UID`, duplicated because dxhub-ecg must not depend on dxhub-dicom:
/// change both together.
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.136589714826316547891093512370968224971";
/// dxhub's implementation version name, as `dxhub_dicom::meta::IMPLEMENTATION_VERSION_NAME`
/// (the crates share the workspace version).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DXHUB_", env!("CARGO_PKG_VERSION"));

/// Explicit VR Little Endian.
const TRANSFER_SYNTAX: &str = "1.2.840.10008.1.2.1";

const TWELVE_LEAD_MAX_CHANNELS: usize = 13;
const TWELVE_LEAD_MAX_SAMPLES: usize = 16384;
const GENERAL_MAX_CHANNELS: usize = 24;
const AMBULATORY_MAX_CHANNELS: usize = 12;
const AMBULATORY_MAX_GROUPS: usize = 4;
const RESTING_MIN_HZ: f64 = 200.0;
const AMBULATORY_MIN_HZ: f64 = 50.0;
const MAX_HZ: f64 = 1000.0;
/// The largest even 32-bit value length (0xFFFFFFFF means undefined length).
const MAX_WAVEFORM_DATA_BYTES: usize = 0xFFFF_FFFE;
/// Largest magnitude of a stored sample (−32768 is left out, as a padding candidate).
const MAX_RAW: f64 = 32767.0;
/// Candidate Channel Sensitivities in µV per LSB, ascending.
const SENSITIVITIES: [f64; 32] = [
    0.1, 0.125, 0.25, 0.5, 1.0, 1.25, 2.5, 5.0, 10.0, 12.5, 25.0, 50.0, 100.0, 125.0, 250.0, 500.0,
    1e3, 1.25e3, 2.5e3, 5e3, 1e4, 1.25e4, 2.5e4, 5e4, 1e5, 1.25e5, 2.5e5, 5e5, 1e6, 1.25e6, 2.5e6,
    5e6,
];
/// Coding scheme of codes dxhub makes up (PS3.16 8.2: "99" prefix for private schemes).
const LOCAL_SCHEME: &str = "99DXHUB";

/// The identifiers and descriptions dxhub assigns to the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteIds {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    pub series_number: i32,
    pub instance_number: i32,
    pub accession_number: Option<String>,
    pub institution_name: Option<String>,
    pub study_description: Option<String>,
    pub series_description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("the ECG has no leads")]
    NoLeads,
    #[error("the ECG has no samples")]
    NoSamples,
    #[error("lead {lead} has {samples} samples, the first lead has {expected}")]
    LeadLengthMismatch {
        lead: String,
        samples: usize,
        expected: usize,
    },
    #[error("sample rate {0} Hz is not a positive number")]
    BadSampleRate(f64),
    #[error("lead {lead}, sample {index}: {value} µV is not a finite number")]
    NonFiniteSample {
        lead: String,
        index: usize,
        value: f32,
    },
    #[error(
        "lead {lead}: {max_abs_uv} µV does not fit 16-bit samples at the coarsest sensitivity (5 V per LSB)"
    )]
    SampleOutOfRange { lead: String, max_abs_uv: f64 },
    #[error(
        "no DICOM ECG IOD takes {channels} channels at {rate_hz} Hz with {samples} samples per channel: \
         12-lead ECG needs ≤ 13 channels, 200–1000 Hz and ≤ 16384 samples (PS3.3 A.34.3.4); \
         General ECG ≤ 24 channels and 200–1000 Hz (A.34.4.4); \
         Ambulatory ECG ≤ 12 channels and 50–1000 Hz (A.34.5.4)"
    )]
    NoIod {
        channels: usize,
        rate_hz: f64,
        samples: usize,
    },
    #[error(
        "{samples} samples per channel × {channels} channels need {groups} multiplex groups of at most {max_group_bytes} bytes; the Ambulatory ECG IOD allows 4 (PS3.3 A.34.5.4)"
    )]
    TooLong {
        channels: usize,
        samples: usize,
        groups: usize,
        max_group_bytes: usize,
    },
    #[error("{attr}: {uid:?} is not a UID (1 to 64 digits and dots)")]
    BadUid { attr: &'static str, uid: String },
    #[error("acquisition time {0:?} is neither a DICOM DT nor an RFC 3339 date-time")]
    BadAcquisitionTime(String),
    #[error("cannot encode the DICOM file: {0}")]
    Encode(String),
}

type Result<T, E = WriteError> = std::result::Result<T, E>;

/// The SOP class (IOD) [`to_dicom`] will write for this ECG, or why none fits.
pub fn sop_class_for(ecg: &Ecg) -> Result<&'static str> {
    plan(ecg, MAX_WAVEFORM_DATA_BYTES).map(|p| p.sop_class_uid)
}

/// The Part 10 bytes (preamble, File Meta, Explicit VR Little Endian data set) of the ECG.
pub fn to_dicom(ecg: &Ecg, ids: &WriteIds) -> Result<Vec<u8>> {
    write(ecg, ids, MAX_WAVEFORM_DATA_BYTES)
}

/// Where the samples go: the SOP class and the sample range of each multiplex group.
#[derive(Debug, PartialEq)]
struct Plan {
    sop_class_uid: &'static str,
    groups: Vec<Range<usize>>,
}

/// Channels, samples per channel and sample rate, once the ECG is known to be writable.
fn shape(ecg: &Ecg) -> Result<(usize, usize, f64)> {
    let first = ecg.leads.first().ok_or(WriteError::NoLeads)?;
    let samples = first.samples_uv.len();
    if samples == 0 {
        return Err(WriteError::NoSamples);
    }
    let rate = ecg.sample_rate_hz;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(WriteError::BadSampleRate(rate));
    }
    for lead in &ecg.leads {
        if lead.samples_uv.len() != samples {
            return Err(WriteError::LeadLengthMismatch {
                lead: lead.code.to_string(),
                samples: lead.samples_uv.len(),
                expected: samples,
            });
        }
        if let Some((index, &value)) = lead
            .samples_uv
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return Err(WriteError::NonFiniteSample {
                lead: lead.code.to_string(),
                index,
                value,
            });
        }
    }
    Ok((ecg.leads.len(), samples, rate))
}

/// The IOD choice of the module doc, with `max_group_bytes` the largest Waveform Data value.
fn plan(ecg: &Ecg, max_group_bytes: usize) -> Result<Plan> {
    let (channels, samples, rate) = shape(ecg)?;
    let frame_bytes = channels * 2;
    let resting_rate = (RESTING_MIN_HZ..=MAX_HZ).contains(&rate);
    let fits_one_group = samples
        .checked_mul(frame_bytes)
        .is_some_and(|b| b <= max_group_bytes);
    let single = |sop_class_uid| Plan {
        sop_class_uid,
        groups: std::iter::once(0..samples).collect(),
    };
    if channels <= TWELVE_LEAD_MAX_CHANNELS
        && resting_rate
        && samples <= TWELVE_LEAD_MAX_SAMPLES
        && fits_one_group
    {
        return Ok(single(TWELVE_LEAD_ECG));
    }
    if channels <= GENERAL_MAX_CHANNELS && resting_rate && fits_one_group {
        return Ok(single(GENERAL_ECG));
    }
    if channels <= AMBULATORY_MAX_CHANNELS && (AMBULATORY_MIN_HZ..=MAX_HZ).contains(&rate) {
        let per_group = (max_group_bytes / frame_bytes).max(1);
        let groups = samples.div_ceil(per_group);
        if groups > AMBULATORY_MAX_GROUPS {
            return Err(WriteError::TooLong {
                channels,
                samples,
                groups,
                max_group_bytes,
            });
        }
        return Ok(Plan {
            sop_class_uid: AMBULATORY_ECG,
            groups: (0..groups)
                .map(|g| g * per_group..((g + 1) * per_group).min(samples))
                .collect(),
        });
    }
    Err(WriteError::NoIod {
        channels,
        rate_hz: rate,
        samples,
    })
}

fn write(ecg: &Ecg, ids: &WriteIds, max_group_bytes: usize) -> Result<Vec<u8>> {
    let plan = plan(ecg, max_group_bytes)?;
    for (attr, uid) in [
        ("Study Instance UID", &ids.study_instance_uid),
        ("Series Instance UID", &ids.series_instance_uid),
        ("SOP Instance UID", &ids.sop_instance_uid),
    ] {
        if !is_uid(uid) {
            return Err(WriteError::BadUid {
                attr,
                uid: uid.clone(),
            });
        }
    }
    let when = match ecg.acquired_at.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            Some(parse_moment(s).ok_or_else(|| WriteError::BadAcquisitionTime(s.to_owned()))?)
        }
        _ => None,
    };
    let channels = ecg
        .leads
        .iter()
        .map(|l| quantize(&l.code, &l.samples_uv))
        .collect::<Result<Vec<_>>>()?;

    let mut ds = InMemDicomObject::new_empty();

    // SOP Common (C.12.1)
    text(&mut ds, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    text(&mut ds, tags::SOP_CLASS_UID, VR::UI, plan.sop_class_uid);
    text(
        &mut ds,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &ids.sop_instance_uid,
    );

    // Patient (C.7.1.1): all Type 2.
    let p = &ecg.patient;
    opt_text(
        &mut ds,
        tags::PATIENT_NAME,
        VR::PN,
        p.name.as_deref().map(pn),
    );
    opt_text(&mut ds, tags::PATIENT_ID, VR::LO, p.id.as_deref().map(lo));
    opt_text(
        &mut ds,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        p.birth_date.as_deref().and_then(birth_date),
    );
    opt_text(
        &mut ds,
        tags::PATIENT_SEX,
        VR::CS,
        p.sex.as_deref().and_then(sex),
    );

    // General Study (C.7.2.1)
    text(
        &mut ds,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &ids.study_instance_uid,
    );
    opt_text(
        &mut ds,
        tags::STUDY_DATE,
        VR::DA,
        when.as_ref().map(|w| w.date.clone()),
    );
    opt_text(
        &mut ds,
        tags::STUDY_TIME,
        VR::TM,
        when.as_ref().and_then(|w| w.time.clone()),
    );
    empty(&mut ds, tags::REFERRING_PHYSICIAN_NAME, VR::PN);
    empty(&mut ds, tags::STUDY_ID, VR::SH);
    opt_text(
        &mut ds,
        tags::ACCESSION_NUMBER,
        VR::SH,
        ids.accession_number.as_deref().map(sh),
    );
    if let Some(d) = ids
        .study_description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        text(&mut ds, tags::STUDY_DESCRIPTION, VR::LO, &lo(d));
    }

    // General Series (C.7.3.1)
    text(&mut ds, tags::MODALITY, VR::CS, "ECG");
    text(
        &mut ds,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &ids.series_instance_uid,
    );
    text(
        &mut ds,
        tags::SERIES_NUMBER,
        VR::IS,
        &ids.series_number.to_string(),
    );
    if let Some(d) = ids
        .series_description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        text(&mut ds, tags::SERIES_DESCRIPTION, VR::LO, &lo(d));
    }

    // General Equipment (C.7.5.1)
    let dev = &ecg.device;
    opt_text(
        &mut ds,
        tags::MANUFACTURER,
        VR::LO,
        dev.manufacturer.as_deref().map(lo),
    );
    if let Some(v) = ids
        .institution_name
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        text(&mut ds, tags::INSTITUTION_NAME, VR::LO, &lo(v));
    }
    if let Some(v) = dev.model.as_deref().filter(|v| !v.trim().is_empty()) {
        text(&mut ds, tags::MANUFACTURER_MODEL_NAME, VR::LO, &lo(v));
    }
    if let Some(v) = dev.serial.as_deref().filter(|v| !v.trim().is_empty()) {
        text(&mut ds, tags::DEVICE_SERIAL_NUMBER, VR::LO, &lo(v));
    }

    // Waveform Identification (C.10.8): Content Date/Time and Acquisition DateTime are Type 1.
    let content = when.clone().unwrap_or_else(Moment::now_utc);
    text(
        &mut ds,
        tags::INSTANCE_NUMBER,
        VR::IS,
        &ids.instance_number.to_string(),
    );
    text(&mut ds, tags::CONTENT_DATE, VR::DA, &content.date);
    text(
        &mut ds,
        tags::CONTENT_TIME,
        VR::TM,
        content.time.as_deref().unwrap_or("000000"),
    );
    text(&mut ds, tags::ACQUISITION_DATE_TIME, VR::DT, &content.dt());
    if let Some(offset) = &content.offset {
        text(&mut ds, tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, offset);
    }

    // Acquisition Context (C.7.6.14): Type 2, nothing known.
    sequence(&mut ds, tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new());

    // Waveform (C.10.9)
    let groups = plan
        .groups
        .iter()
        .map(|range| group(ecg, &channels, range, plan.groups.len() > 1))
        .collect();
    sequence(&mut ds, tags::WAVEFORM_SEQUENCE, groups);

    // Waveform Annotation (C.10.10): required when there are annotations.
    let annotations: Vec<InMemDicomObject> = ecg
        .device_measurements
        .iter()
        .map(measurement)
        .chain(
            ecg.statements
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| statement(s)),
        )
        .collect();
    if !annotations.is_empty() {
        sequence(&mut ds, tags::WAVEFORM_ANNOTATION_SEQUENCE, annotations);
    }

    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(plan.sop_class_uid)
        .media_storage_sop_instance_uid(ids.sop_instance_uid.as_str())
        .transfer_syntax(TRANSFER_SYNTAX)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| WriteError::Encode(e.to_string()))?;
    let mut out = Vec::new();
    ds.with_exact_meta(meta)
        .write_all(&mut out)
        .map_err(|e| WriteError::Encode(e.to_string()))?;
    Ok(out)
}

/// One channel ready to store: its sensitivity in µV per LSB and the stored samples.
struct Channel {
    sensitivity_uv: f64,
    raw: Vec<i16>,
}

/// `x.round()` (half away from zero), exactly, for |x| < 2⁶³; without SSE4.1 `f64::round`
/// is a libm call, and this runs for every sample of every lead (several times).
fn round_half_away(x: f64) -> f64 {
    let t = x.abs();
    let whole = t as i64 as f64; // truncation; t − whole is exact
    // branch-free: the fraction is as likely above ½ as below
    let r = whole + f64::from(u8::from(t - whole >= 0.5));
    r.copysign(x)
}

/// `x` rounded to an integer (ties to even), for |x| < 2⁵¹: two additions, which the
/// compiler vectorises (`round_half_away` is not, for want of an SSE2 conversion). Only
/// for quotients known to lie next to an integer, where the tie rule cannot matter.
fn round_near(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    (x + MAGIC) - MAGIC
}

/// Choose the Channel Sensitivity (module doc) and convert the samples.
fn quantize(code: &LeadCode, samples: &[f32]) -> Result<Channel> {
    // (a NaN is passed over, as `f64::max` would)
    let max_abs = f64::from(samples.iter().fold(0.0f32, |m, &v| {
        let a = v.abs();
        if a > m { a } else { m }
    }));
    let fits = |q: f64| round_half_away(max_abs / q) <= MAX_RAW;
    // Multiplying by 1/q instead of dividing moves a quotient by an ulp or two. That can
    // only change its rounding next to a half, where the remainder is about q/2 — far
    // above the tolerance (at most 1e-3 + 0.033·q once `fits(q)` holds): the verdict is
    // the same. For the same reason an exact q converts with 1/q to the same integers,
    // and every quotient is within 0.05 of an integer, so the tie rule does not matter
    // (`round_near`). Checked a block at a time: branch-free inside, so it vectorises.
    let exact = |q: f64| {
        let inv = 1.0 / q;
        samples.chunks(256).all(|block| {
            block.iter().fold(true, |ok, &v| {
                let v = f64::from(v);
                ok & ((v - round_near(v * inv) * q).abs() <= 1e-3 + v.abs() * 1e-6)
            })
        })
    };
    let exact_q = if max_abs == 0.0 {
        Some(1.0)
    } else {
        SENSITIVITIES
            .iter()
            .rev()
            .copied()
            .find(|&q| fits(q) && exact(q))
    };
    let raw_of = |x: f64| round_half_away(x).clamp(-MAX_RAW, MAX_RAW) as i16;
    let (sensitivity_uv, raw) = match exact_q {
        Some(q) => {
            let inv = 1.0 / q;
            let raw = samples
                .iter()
                .map(|&v| round_near(f64::from(v) * inv).clamp(-MAX_RAW, MAX_RAW) as i16)
                .collect();
            (q, raw)
        }
        None => {
            let q = SENSITIVITIES
                .iter()
                .copied()
                .find(|&q| fits(q))
                .ok_or_else(|| WriteError::SampleOutOfRange {
                    lead: code.to_string(),
                    max_abs_uv: max_abs,
                })?;
            (
                q,
                samples.iter().map(|&v| raw_of(f64::from(v) / q)).collect(),
            )
        }
    };
    Ok(Channel {
        sensitivity_uv,
        raw,
    })
}

/// One multiplex group: the samples of `range`, all channels interleaved.
fn group(ecg: &Ecg, channels: &[Channel], range: &Range<usize>, split: bool) -> InMemDicomObject {
    let mut g = InMemDicomObject::new_empty();
    if split {
        // Milliseconds from the first sample of the recording (C.10.9.1.1).
        let offset_ms = range.start as f64 * 1000.0 / ecg.sample_rate_hz;
        text(
            &mut g,
            tags::MULTIPLEX_GROUP_TIME_OFFSET,
            VR::DS,
            &ds(offset_ms),
        );
    }
    text(&mut g, tags::WAVEFORM_ORIGINALITY, VR::CS, "ORIGINAL");
    g.put(DataElement::new(
        tags::NUMBER_OF_WAVEFORM_CHANNELS,
        VR::US,
        PrimitiveValue::from(channels.len() as u16),
    ));
    g.put(DataElement::new(
        tags::NUMBER_OF_WAVEFORM_SAMPLES,
        VR::UL,
        PrimitiveValue::from(range.len() as u32),
    ));
    text(
        &mut g,
        tags::SAMPLING_FREQUENCY,
        VR::DS,
        &ds(ecg.sample_rate_hz),
    );
    text(&mut g, tags::MULTIPLEX_GROUP_LABEL, VR::SH, "RHYTHM");

    let defs = ecg
        .leads
        .iter()
        .zip(channels)
        .map(|(lead, ch)| {
            let mut d = InMemDicomObject::new_empty();
            text(&mut d, tags::CHANNEL_LABEL, VR::SH, &sh(lead.code.name()));
            sequence(
                &mut d,
                tags::CHANNEL_SOURCE_SEQUENCE,
                vec![lead_source(&lead.code)],
            );
            text(
                &mut d,
                tags::CHANNEL_SENSITIVITY,
                VR::DS,
                &ds(ch.sensitivity_uv),
            );
            sequence(
                &mut d,
                tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE,
                vec![code_item("uV", "UCUM", "microvolt")],
            );
            text(
                &mut d,
                tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR,
                VR::DS,
                "1",
            );
            text(&mut d, tags::CHANNEL_BASELINE, VR::DS, "0");
            text(&mut d, tags::CHANNEL_SAMPLE_SKEW, VR::DS, "0");
            d.put(DataElement::new(
                tags::WAVEFORM_BITS_STORED,
                VR::US,
                PrimitiveValue::from(16u16),
            ));
            let f = &ecg.filters;
            for (tag, hz) in [
                (tags::FILTER_LOW_FREQUENCY, f.low_hz),
                (tags::FILTER_HIGH_FREQUENCY, f.high_hz),
                (tags::NOTCH_FILTER_FREQUENCY, f.notch_hz),
            ] {
                if let Some(hz) = hz.filter(|v| v.is_finite()) {
                    text(&mut d, tag, VR::DS, &ds(hz));
                }
            }
            d
        })
        .collect();
    sequence(&mut g, tags::CHANNEL_DEFINITION_SEQUENCE, defs);

    g.put(DataElement::new(
        tags::WAVEFORM_BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    text(&mut g, tags::WAVEFORM_SAMPLE_INTERPRETATION, VR::CS, "SS");
    // Multiplexed: C1S1, C2S1, …, CnS1, C1S2, … (C.10.9.1.4), as 16-bit words.
    let mut data = Vec::with_capacity(range.len() * channels.len());
    for i in range.clone() {
        data.extend(channels.iter().map(|c| c.raw[i] as u16));
    }
    g.put(DataElement::new(
        tags::WAVEFORM_DATA,
        VR::OW,
        PrimitiveValue::U16(data.into()),
    ));
    g
}

/// The CID 3001 code of a lead: `SCPECG` `5.6.3-9-n` with n its MDC lead partition index,
/// else a local code named after the lead.
fn lead_source(code: &LeadCode) -> InMemDicomObject {
    match mdc_index(code) {
        Some(n) => {
            let mut c = code_item(&format!("5.6.3-9-{n}"), "SCPECG", &lead_meaning(n, code));
            text(&mut c, tags::CODING_SCHEME_VERSION, VR::SH, "1.3");
            c
        }
        None => code_item(code.name(), LOCAL_SCHEME, code.name()),
    }
}

/// Index of the lead in the MDC ECG lead partition (the inverse of
/// [`LeadCode::from_mdc_index`]).
fn mdc_index(code: &LeadCode) -> Option<u32> {
    let n = match code {
        LeadCode::I => 1,
        LeadCode::II => 2,
        LeadCode::V1 => 3,
        LeadCode::V2 => 4,
        LeadCode::V3 => 5,
        LeadCode::V4 => 6,
        LeadCode::V5 => 7,
        LeadCode::V6 => 8,
        LeadCode::III => 61,
        LeadCode::AVR => 62,
        LeadCode::AVL => 63,
        LeadCode::AVF => 64,
        LeadCode::Other(name) => {
            if let Some(n) = name
                .strip_prefix("MDC 2:")
                .and_then(|n| n.parse::<u32>().ok())
            {
                return (n > 0 && n <= u32::from(u16::MAX)).then_some(n);
            }
            return (9..=255).find(|&n| LeadCode::from_mdc_index(n) == *code);
        }
    };
    Some(n)
}

/// Code Meaning of a CID 3001 lead (PS3.16 CID 3001; the standard 12 as `Lead I` … `Lead aVF`).
fn lead_meaning(n: u32, code: &LeadCode) -> String {
    match n {
        19 => "Chest lead per V5 and V5R placement".to_owned(),
        20 => "Chest-manubrium lead per V5 placement".to_owned(),
        21 => "Left Arm Lead".to_owned(),
        22 => "Right Arm Lead".to_owned(),
        23 => "Left Leg Lead".to_owned(),
        _ => match code {
            LeadCode::Other(name) if name.starts_with("MDC ") => name.clone(),
            _ => format!("Lead {}", code.name()),
        },
    }
}

/// A Code Sequence item (Code Sequence Macro, Table 8.8-1): Code Value when it fits SH (16
/// characters), else Long Code Value.
fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut c = InMemDicomObject::new_empty();
    if value.chars().count() <= 16 {
        text(&mut c, tags::CODE_VALUE, VR::SH, value);
    } else {
        text(&mut c, tags::LONG_CODE_VALUE, VR::UC, value);
    }
    text(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    text(&mut c, tags::CODE_MEANING, VR::LO, &lo(meaning));
    c
}

/// Referenced Waveform Channels `1\0`: every channel of the first multiplex group.
fn references_rhythm(item: &mut InMemDicomObject) {
    item.put(DataElement::new(
        tags::REFERENCED_WAVEFORM_CHANNELS,
        VR::US,
        PrimitiveValue::U16(vec![1u16, 0].into()),
    ));
}

fn measurement(m: &Measurement) -> InMemDicomObject {
    let mut a = InMemDicomObject::new_empty();
    let meaning = m.meaning.trim();
    let code = match m.code.trim() {
        "" if meaning.is_empty() => "UNNAMED",
        "" => meaning,
        c => c,
    };
    let meaning = if meaning.is_empty() { code } else { meaning };
    let scheme = match m.scheme.trim() {
        "" => LOCAL_SCHEME,
        s => s,
    };
    let mut concept = code_item(code, scheme, meaning);
    if scheme == "SCPECG" {
        // Coding Scheme Version is Type 1C for SCP-ECG codes (PS3.16 8: the designator alone
        // does not identify the version); the codes DICOM adopted are those of 1.3.
        text(&mut concept, tags::CODING_SCHEME_VERSION, VR::SH, "1.3");
    }
    sequence(&mut a, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]);
    text(&mut a, tags::NUMERIC_VALUE, VR::DS, &ds(m.value));
    let unit = match m.unit.trim() {
        "" => "1",
        u => u,
    };
    sequence(
        &mut a,
        tags::MEASUREMENT_UNITS_CODE_SEQUENCE,
        vec![code_item(unit, "UCUM", &ucum_meaning(unit))],
    );
    references_rhythm(&mut a);
    a
}

fn statement(s: &str) -> InMemDicomObject {
    let mut a = InMemDicomObject::new_empty();
    // ST: at most 1024 characters.
    let value: String = s.trim().chars().take(1024).collect();
    text(&mut a, tags::UNFORMATTED_TEXT_VALUE, VR::ST, &value);
    references_rhythm(&mut a);
    a
}

fn ucum_meaning(unit: &str) -> String {
    match unit {
        "1" => "no units",
        "ms" => "millisecond",
        "s" => "second",
        "deg" => "degree",
        "/min" => "per minute",
        "{H.B.}/min" | "{beats}/min" => "BPM",
        "uV" => "microvolt",
        "mV" => "millivolt",
        "Hz" => "hertz",
        "%" => "percent",
        other => other,
    }
    .to_owned()
}

/// A date and time of day, as DICOM DA and TM values, with an optional offset from UTC.
#[derive(Debug, Clone, PartialEq)]
struct Moment {
    /// `YYYYMMDD`
    date: String,
    /// `HH`, `HHMM`, `HHMMSS` or `HHMMSS.F{1,6}`; `None` for a date alone.
    time: Option<String>,
    /// `+HHMM` / `-HHMM`.
    offset: Option<String>,
}

impl Moment {
    /// The DICOM DT value.
    fn dt(&self) -> String {
        format!(
            "{}{}{}",
            self.date,
            self.time.as_deref().unwrap_or(""),
            self.offset.as_deref().unwrap_or("")
        )
    }

    fn now_utc() -> Moment {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let s = secs % 86_400;
        Moment {
            date: format!("{y:04}{m:02}{d:02}"),
            time: Some(format!("{:02}{:02}{:02}", s / 3600, s / 60 % 60, s % 60)),
            offset: Some("+0000".to_owned()),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parse a DICOM DT (`YYYYMMDD[HH[MM[SS[.F{1,6}]]]][&ZZXX]`, at least a full date) or an
/// RFC 3339 / ISO 8601 date-time (`YYYY-MM-DD[(T| )HH:MM[:SS[.F…]]][Z|±HH:MM|±HHMM]`).
fn parse_moment(s: &str) -> Option<Moment> {
    let s = s.trim();
    // Both forms are ASCII; checking it first makes every byte index below a char boundary.
    if !s.is_ascii() {
        return None;
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        parse_rfc3339(s)
    } else {
        parse_dt(s)
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Split a trailing `±HHMM` / `±HH:MM` / `Z` offset off `s`.
fn split_offset(s: &str, allow_z: bool) -> Option<(&str, Option<String>)> {
    if allow_z && (s.ends_with('Z') || s.ends_with('z')) {
        return Some((&s[..s.len() - 1], Some("+0000".to_owned())));
    }
    let Some(i) = s.rfind(['+', '-']) else {
        return Some((s, None));
    };
    let (main, off) = (&s[..i], &s[i + 1..]);
    let off = off.replace(':', "");
    if off.len() != 4 || !all_digits(&off) {
        return None;
    }
    let (h, m): (u32, u32) = (off[..2].parse().ok()?, off[2..].parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    Some((main, Some(format!("{}{off}", &s[i..=i]))))
}

fn valid_date(y: &str, m: &str, d: &str) -> bool {
    if !(y.len() == 4 && m.len() == 2 && d.len() == 2 && [y, m, d].iter().all(|v| all_digits(v))) {
        return false;
    }
    let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// Validate `HH[MM[SS[.F…]]]` (digits only) and return it with the fraction cut to 6 digits.
fn valid_time(t: &str) -> Option<String> {
    let (hms, frac) = match t.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (t, None),
    };
    if !all_digits(hms) || !matches!(hms.len(), 2 | 4 | 6) {
        return None;
    }
    let field = |i: usize| hms.get(i..i + 2).map_or(Some(0), |v| v.parse::<u32>().ok());
    let (h, m, s) = (field(0)?, field(2)?, field(4)?);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    match frac {
        None => Some(hms.to_owned()),
        Some(f) if hms.len() == 6 && all_digits(f) => {
            Some(format!("{hms}.{}", &f[..f.len().min(6)]))
        }
        Some(_) => None,
    }
}

fn parse_dt(s: &str) -> Option<Moment> {
    let (main, offset) = split_offset(s, false)?;
    if main.len() < 8 || !all_digits(&main[..8]) {
        return None;
    }
    let (date, rest) = main.split_at(8);
    if !valid_date(&date[..4], &date[4..6], &date[6..]) {
        return None;
    }
    let time = if rest.is_empty() {
        None
    } else {
        Some(valid_time(rest)?)
    };
    Some(Moment {
        date: date.to_owned(),
        time,
        offset,
    })
}

fn parse_rfc3339(s: &str) -> Option<Moment> {
    let (date, rest) = s.split_at(10);
    let b = date.as_bytes();
    if b[7] != b'-' || !valid_date(&date[..4], &date[5..7], &date[8..]) {
        return None;
    }
    let date = format!("{}{}{}", &date[..4], &date[5..7], &date[8..]);
    if rest.is_empty() {
        return Some(Moment {
            date,
            time: None,
            offset: None,
        });
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset) = split_offset(rest, true)?;
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut t = parts.concat();
    if let Some(f) = frac {
        if parts.len() != 3 {
            return None;
        }
        t = format!("{t}.{f}");
    }
    Some(Moment {
        date,
        time: Some(valid_time(&t)?),
        offset,
    })
}

/// Patient's Birth Date as DA, from DA or ISO 8601 (a date-time keeps its date); `None` when
/// unreadable (the attribute is Type 2: it is then written empty).
fn birth_date(s: &str) -> Option<String> {
    parse_moment(s.trim()).map(|m| m.date)
}

/// Patient's Sex: `M`, `F` or `O` (also `male`, `female`, `other`, any case).
fn sex(s: &str) -> Option<String> {
    match s.trim().to_ascii_uppercase().as_str() {
        "M" | "MALE" => Some("M".to_owned()),
        "F" | "FEMALE" => Some("F".to_owned()),
        "O" | "OTHER" => Some("O".to_owned()),
        _ => None,
    }
}

fn is_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// A value with no backslash (the value delimiter) and at most `max` characters.
fn clip(s: &str, max: usize) -> String {
    s.trim().replace('\\', "/").chars().take(max).collect()
}

fn lo(s: &str) -> String {
    clip(s, 64)
}

fn sh(s: &str) -> String {
    clip(s, 16)
}

/// Person Name: kept as sent (components `^`, groups `=`), 64 characters per group.
fn pn(s: &str) -> String {
    s.trim()
        .replace('\\', "/")
        .split('=')
        .map(|g| g.chars().take(64).collect::<String>())
        .collect::<Vec<_>>()
        .join("=")
}

/// A Decimal String of at most 16 characters.
fn ds(v: f64) -> String {
    let s = format!("{v}");
    if s.len() <= 16 {
        return s;
    }
    for digits in (1..=15).rev() {
        let s = format!("{v:.digits$e}");
        // Trim the mantissa's trailing zeros: "1.500000e3" → "1.5e3".
        let s = match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
        if s.len() <= 16 {
            return s;
        }
    }
    format!("{v:.0e}")
}

fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn empty(obj: &mut InMemDicomObject, tag: Tag, vr: VR) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
}

/// A Type 2 attribute: the value, or empty when unknown.
fn opt_text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: Option<String>) {
    match v.filter(|v| !v.is_empty()) {
        Some(v) => text(obj, tag, vr, &v),
        None => empty(obj, tag, vr),
    }
}

fn sequence(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::Lead;

    #[test]
    fn quantize_matches_division() {
        // samples on each sensitivity's grid (exact), and off any grid (the fallback)
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 60_001) as f64 - 30_000.0
        };
        for q in SENSITIVITIES.iter().copied().filter(|&q| q <= 100.0) {
            let on_grid: Vec<f32> = (0..4000).map(|_| (next() * q) as f32).collect();
            let off_grid: Vec<f32> = (0..4000).map(|_| (next() * q * 0.37) as f32).collect();
            for samples in [on_grid, off_grid] {
                let c = quantize(&LeadCode::II, &samples).unwrap();
                for (&v, &r) in samples.iter().zip(&c.raw) {
                    let want = (f64::from(v) / c.sensitivity_uv)
                        .round()
                        .clamp(-MAX_RAW, MAX_RAW);
                    assert_eq!(f64::from(r), want, "{v} µV at {} µV/LSB", c.sensitivity_uv);
                }
            }
        }
    }

    #[test]
    fn round_half_away_is_f64_round() {
        let mut x = -70_000.0f64;
        while x < 70_000.0 {
            for v in [x, x + 0.5, x - 0.5, 0.499_999_999_999_999_94, -2.5, 2.5] {
                assert_eq!(round_half_away(v).to_bits(), v.round().to_bits(), "{v}");
            }
            x += 0.37;
        }
        assert_eq!(round_half_away(f64::NAN), 0.0);
    }

    fn ecg(channels: usize, rate: f64, samples: usize) -> Ecg {
        Ecg {
            leads: (0..channels)
                .map(|i| Lead {
                    code: LeadCode::from_mdc_index(i as u32 + 1),
                    samples_uv: vec![0.0; samples],
                })
                .collect(),
            sample_rate_hz: rate,
            ..Ecg::default()
        }
    }

    #[test]
    fn ambulatory_long_recordings_are_split_in_time() {
        // 3 channels × 2 bytes = 6 bytes a frame; 60-byte groups hold 10 samples.
        let p = plan(&ecg(3, 200.0, 25), 60).unwrap();
        assert_eq!(p.sop_class_uid, AMBULATORY_ECG);
        assert_eq!(p.groups, vec![0..10, 10..20, 20..25]);
        // Five groups would be needed: too long.
        assert!(matches!(
            plan(&ecg(3, 200.0, 41), 60),
            Err(WriteError::TooLong { groups: 5, .. })
        ));
        // Too long for one General ECG group with 13 channels, and no splitting there.
        assert!(matches!(
            plan(&ecg(13, 500.0, 100), 60),
            Err(WriteError::NoIod { channels: 13, .. })
        ));
    }

    #[test]
    fn split_groups_carry_their_time_offsets_and_read_back() {
        let mut e = ecg(2, 250.0, 7);
        e.leads[0].samples_uv = (0..7).map(|i| i as f32 * 10.0).collect();
        let bytes = write(&e, &ids(), 12).unwrap(); // 3 samples per group
        let obj = dicom_object::OpenFileOptions::new()
            .from_reader(&bytes[..])
            .unwrap();
        let groups = obj.get(tags::WAVEFORM_SEQUENCE).unwrap().items().unwrap();
        assert_eq!(groups.len(), 3);
        let offsets: Vec<f64> = groups
            .iter()
            .map(|g| {
                g.get(tags::MULTIPLEX_GROUP_TIME_OFFSET)
                    .unwrap()
                    .to_float64()
                    .unwrap()
            })
            .collect();
        assert_eq!(offsets, vec![0.0, 12.0, 24.0]);
        // The reader takes the first group.
        let back = crate::read_dicom(&bytes).unwrap();
        assert_eq!(back.leads[0].samples_uv, vec![0.0, 10.0, 20.0]);
    }

    fn ids() -> WriteIds {
        WriteIds {
            study_instance_uid: "2.25.1".into(),
            series_instance_uid: "2.25.2".into(),
            sop_instance_uid: "2.25.3".into(),
            series_number: 1,
            instance_number: 1,
            ..WriteIds::default()
        }
    }

    #[test]
    fn sensitivity_is_the_source_quantum_or_the_finest_that_fits() {
        let lead = LeadCode::I;
        // Multiples of 1.25 µV: stored losslessly at 1.25.
        let c = quantize(&lead, &[1962.5, -1125.0, 0.0, 1.25]).unwrap();
        assert_eq!(c.sensitivity_uv, 1.25);
        assert_eq!(c.raw, vec![1570, -900, 0, 1]);
        // GE-like 4.88 µV steps fall on no series value: the finest that fits, 0.1 µV.
        let c = quantize(&lead, &[4.88, -9.76, 2000.0]).unwrap();
        assert_eq!(c.sensitivity_uv, 0.1);
        // 20 mV does not fit at 0.5 µV (40000 > 32767): 1 µV.
        let c = quantize(&lead, &[20_000.3, -3.0]).unwrap();
        assert_eq!(c.sensitivity_uv, 1.0);
        assert_eq!(c.raw, vec![20_000, -3]);
        // A flat line.
        assert_eq!(quantize(&lead, &[0.0; 4]).unwrap().sensitivity_uv, 1.0);
        assert!(matches!(
            quantize(&lead, &[1e12]),
            Err(WriteError::SampleOutOfRange { .. })
        ));
    }

    #[test]
    fn acquisition_times_in_dicom_and_rfc3339() {
        let m = |date: &str, time: Option<&str>, offset: Option<&str>| Moment {
            date: date.into(),
            time: time.map(Into::into),
            offset: offset.map(Into::into),
        };
        assert_eq!(
            parse_moment("20240102101500"),
            Some(m("20240102", Some("101500"), None))
        );
        assert_eq!(
            parse_moment("20240102101500.1234567+0800"),
            Some(m("20240102", Some("101500.123456"), Some("+0800")))
        );
        assert_eq!(parse_moment("20240102"), Some(m("20240102", None, None)));
        assert_eq!(
            parse_moment("2024-01-02T10:15:00Z"),
            Some(m("20240102", Some("101500"), Some("+0000")))
        );
        assert_eq!(
            parse_moment("2024-01-02 10:15:00.25-05:30"),
            Some(m("20240102", Some("101500.25"), Some("-0530")))
        );
        assert_eq!(
            parse_moment("2024-01-02T10:15+01:00"),
            Some(m("20240102", Some("1015"), Some("+0100")))
        );
        assert_eq!(parse_moment("2024-01-02"), Some(m("20240102", None, None)));
        assert_eq!(
            parse_moment("2024-01-02T10:15:00+08:00").unwrap().dt(),
            "20240102101500+0800"
        );
        for bad in [
            "yesterday",
            "2024",
            "20241302",
            "2024-01-02T25:00:00Z",
            "20240102101500+08",
            "2024-01-02T10:15:00.5+0800x",
            "2024/01/02",
            "+202-01-02",
            "2024-+1-02",
            "2024é0102",
            "２０２４-01-02T10:00",
            "2024-01-02T10:00:00+08:0é",
            "20240102101500.5+08é0",
        ] {
            assert_eq!(parse_moment(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_724), (2024, 1, 2));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(500.0), "500");
        assert_eq!(ds(0.05), "0.05");
        assert_eq!(ds(1.25), "1.25");
        assert_eq!(ds(-12.5), "-12.5");
        for v in [
            1.0 / 3.0,
            1e20,
            -1.234_567_890_123_456_7e-12,
            123_456_789.123_456_79,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap();
            assert!(((back - v) / v).abs() < 1e-9, "{v} → {s}");
        }
    }

    #[test]
    fn lead_codes() {
        let value = |c: &LeadCode| {
            let item = lead_source(c);
            (
                item.get(tags::CODE_VALUE)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
                item.get(tags::CODING_SCHEME_DESIGNATOR)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
                item.get(tags::CODE_MEANING)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            )
        };
        let v = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(value(&LeadCode::I), v("5.6.3-9-1", "SCPECG", "Lead I"));
        assert_eq!(value(&LeadCode::AVR), v("5.6.3-9-62", "SCPECG", "Lead aVR"));
        assert_eq!(value(&LeadCode::V6), v("5.6.3-9-8", "SCPECG", "Lead V6"));
        assert_eq!(
            value(&LeadCode::Other("V4R".into())),
            v("5.6.3-9-12", "SCPECG", "Lead V4R")
        );
        assert_eq!(
            value(&LeadCode::Other("LA".into())),
            v("5.6.3-9-21", "SCPECG", "Left Arm Lead")
        );
        assert_eq!(
            value(&LeadCode::Other("MDC 2:200".into())),
            v("5.6.3-9-200", "SCPECG", "MDC 2:200")
        );
        assert_eq!(
            value(&LeadCode::Other("ECG1".into())),
            v("ECG1", "99DXHUB", "ECG1")
        );
        // Every code reads back as the same lead.
        for n in (1..=23).chain(61..=69) {
            let lead = LeadCode::from_mdc_index(n);
            let (code, _, meaning) = value(&lead);
            assert_eq!(LeadCode::from_cid3001(&code), Some(lead.clone()), "{n}");
            assert!(!meaning.is_empty());
        }
    }
}
