//! # The JSON ECG form
//!
//! A simple upload form for ECG devices that write neither DICOM, SCP-ECG nor HL7 aECG: one
//! JSON object (UTF-8) holding the raw sample values of every lead, the sampling rate and
//! the voltage of one sample unit, with the patient, the device and the acquisition time.
//!
//! ```json
//! {
//!   "sample_rate_hz": 500,
//!   "uv_per_lsb": 4.88,
//!   "leads": {
//!     "I":   [12, 15, 19, 20, 18],
//!     "II":  [30, 34, 41, 45, 40],
//!     "V1":  [-8, -9, -12, -10, -7]
//!   },
//!   "patient": {"id": "0012345", "name": "张三", "birth_date": "1958-03-14", "sex": "M"},
//!   "device": {"serial": "SN20261122", "model": "ECG-12A", "manufacturer": "Acme Medical"},
//!   "acquired_at": "2026-11-22T08:15:00+08:00",
//!   "filters": {"low_hz": 0.05, "high_hz": 150, "notch_hz": 50},
//!   "measurements": [
//!     {"name": "HR", "value": 72, "unit": "/min"},
//!     {"name": "PR", "value": 160, "unit": "ms"},
//!     {"name": "QRS_axis", "value": 45, "unit": "deg"}
//!   ],
//!   "statements": ["窦性心律", "正常心电图"]
//! }
//! ```
//!
//! | field | required | meaning |
//! | --- | --- | --- |
//! | `sample_rate_hz` | yes | samples per second of every lead, 50 to 10000 |
//! | `uv_per_lsb` | yes | microvolts of one unit of the sample values (the ADC step), greater than 0 and at most 1 000 000; sample in µV = value × `uv_per_lsb` |
//! | `leads` | yes | an object: lead name → array of integer sample values, in time order; at least one lead, all equally long (1 to 4 000 000 samples), at most 64 leads; the leads keep the order of the object |
//! | `patient` | no | `id`, `name`, `birth_date` (`YYYY-MM-DD` or `YYYYMMDD`), `sex` (`M`, `F` or `O`), each optional |
//! | `device` | no | `serial`, `model`, `manufacturer`, each optional |
//! | `acquired_at` | no | start of the recording, RFC 3339 (`2026-11-22T08:15:00+08:00`; without an offset it is the device's local time) |
//! | `filters` | no | `low_hz` (high-pass cutoff, the lower edge of the pass band), `high_hz` (low-pass cutoff), `notch_hz` (mains notch; omit it when no notch filter was on), each optional, greater than 0 |
//! | `measurements` | no | the device's own measurements: `name`, `value`, `unit` (UCUM: `ms`, `/min`, `deg`; optional) |
//! | `statements` | no | the device's interpretation statements, as text |
//!
//! **Lead names**: `I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1` … `V6` (any letter case, also
//! `Lead II`), and the other leads of the MDC lead list: `V7`, `V8`, `V9`, `V2R` … `V9R`,
//! `X`, `Y`, `Z`, `CC5`, `CM5`, `LA`, `RA`, `LL`, `-aVR`. Any other name is refused, and so
//! is a lead given twice. A 12-lead device may send only `I`, `II` and `V1` … `V6`: the
//! reader of a stored ECG derives III, aVR, aVL and aVF from I and II.
//!
//! **Measurement names** are free text; dxhub's own analysis does not depend on them. Use
//! `HR` (`/min`), `RR`, `P`, `PR`, `QRS`, `QT`, `QTc` (`ms`), `P_axis`, `QRS_axis`, `T_axis`
//! (`deg`) where they fit.
//!
//! Unknown fields are refused (a misspelt `sample_rate` is an error, not an ignored field).
//! Every error names the field, lead or sample at fault, for example
//! `lead "V1": 4999 samples, lead "I" has 5000: all leads must be equally long`,
//! `unknown lead name "V13"`, `sample_rate_hz 20 is outside 50–10000 Hz`,
//! `invalid JSON: lead "II", sample 37: 1.5 is not an integer at line 1 column 212`.
//!
//! The Rust types of the form ([`JsonEcg`] and its parts) derive `utoipa::ToSchema`: the
//! API publishes the form in its OpenAPI document.

use crate::model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use utoipa::ToSchema;

/// The largest number of samples of a lead.
pub const MAX_SAMPLES_PER_LEAD: usize = 4_000_000;
/// The largest number of leads of a form.
pub const MAX_LEADS: usize = 64;
/// The largest accepted µV per sample unit (1 V).
pub const MAX_UV_PER_LSB: f64 = 1e6;
/// The longest lead name (characters); the known ones are far shorter.
pub const MAX_LEAD_NAME_CHARS: usize = 64;
/// The lowest accepted sampling rate (Hz).
pub const MIN_SAMPLE_RATE_HZ: f64 = 50.0;
/// The highest accepted sampling rate (Hz).
pub const MAX_SAMPLE_RATE_HZ: f64 = 10_000.0;

/// An ECG as a simple device uploads it: raw integer samples of every lead, the sampling
/// rate and the µV of one sample unit, with patient, device and acquisition time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sample_rate_hz": 500,
    "uv_per_lsb": 4.88,
    "leads": {"I": [12, 15, 19], "II": [30, 34, 41], "V1": [-8, -9, -12]},
    "patient": {"id": "0012345", "name": "张三", "birth_date": "1958-03-14", "sex": "M"},
    "device": {"serial": "SN20261122", "model": "ECG-12A", "manufacturer": "Acme Medical"},
    "acquired_at": "2026-11-22T08:15:00+08:00",
    "filters": {"low_hz": 0.05, "high_hz": 150, "notch_hz": 50},
    "measurements": [{"name": "PR", "value": 160, "unit": "ms"}],
    "statements": ["窦性心律"]
}))]
pub struct JsonEcg {
    /// Samples per second of every lead, 50 to 10000.
    pub sample_rate_hz: f64,
    /// Microvolts of one unit of the sample values (the ADC step), greater than 0 and at
    /// most 1000000: sample in µV = value × `uv_per_lsb`.
    pub uv_per_lsb: f64,
    /// Lead name (`I`, `II`, `III`, `aVR`, `aVL`, `aVF`, `V1`…`V6`, or another MDC lead
    /// such as `V4R`, `V7`) → integer sample values in time order. At least one lead, at most
    /// 64; all equally long, 1 to 4 000 000 samples. Leads keep the order of the object.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, Vec<i32>>, required = true)]
    pub leads: JsonLeads,
    /// The patient, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<JsonPatient>,
    /// The acquiring device, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<JsonDevice>,
    /// Start of the recording, RFC 3339 (`2026-11-22T08:15:00+08:00`); without an offset,
    /// the device's local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquired_at: Option<String>,
    /// The filters that were on during the recording, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<JsonFilters>,
    /// The device's own measurements (intervals, axes, rate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<JsonMeasurement>,
    /// The device's interpretation statements, as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statements: Vec<String>,
}

/// The leads of a form in the order sent: a JSON object of lead name → integer samples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonLeads(pub Vec<JsonLead>);

/// One lead of [`JsonLeads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLead {
    /// The lead name as sent.
    pub name: String,
    /// Raw sample values; µV = value × `uv_per_lsb`.
    pub samples: Vec<i32>,
}

/// The patient of a form; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonPatient {
    /// The patient ID of the institution (medical record number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The patient's name as written (any script, e.g. `张三`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Date of birth, `YYYY-MM-DD` or `YYYYMMDD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// `M`, `F` or `O` (other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<String>,
}

/// The acquiring device of a form; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonDevice {
    /// The device's serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The device's model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The device's manufacturer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
}

/// Filter settings in Hz; every field is optional and greater than 0 when present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonFilters {
    /// High-pass cutoff: the lower edge of the pass band (e.g. 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_hz: Option<f64>,
    /// Low-pass cutoff: the upper edge of the pass band (e.g. 150).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_hz: Option<f64>,
    /// Mains notch filter frequency (50 or 60); omitted when no notch filter was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notch_hz: Option<f64>,
}

/// A measurement made by the device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonMeasurement {
    /// What was measured: free text; `HR`, `RR`, `P`, `PR`, `QRS`, `QT`, `QTc`, `P_axis`,
    /// `QRS_axis`, `T_axis` where they fit.
    pub name: String,
    /// The value.
    pub value: f64,
    /// UCUM unit (`ms`, `/min`, `deg`), empty or omitted when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JsonEcgError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not a JSON ECG form: the form is one JSON object ({{\"sample_rate_hz\": …}})")]
    NotAnObject,
    #[error("no leads: \"leads\" is missing or empty")]
    NoLeads,
    #[error(
        "unknown lead name {0:?} (known: I, II, III, aVR, aVL, aVF, V1–V6, V7–V9, V2R–V9R, X, Y, Z, CC5, CM5, LA, RA, LL, -aVR)"
    )]
    UnknownLead(String),
    #[error("lead {name:?} is lead {first:?} a second time")]
    DuplicateLead { name: String, first: String },
    #[error("lead {0:?} has no samples")]
    EmptyLead(String),
    #[error(
        "lead {name:?}: {samples} samples, lead {first:?} has {first_samples}: all leads must be equally long"
    )]
    UnequalLengths {
        name: String,
        samples: usize,
        first: String,
        first_samples: usize,
    },
    #[error("sample_rate_hz {} is outside 50–10000 Hz", show(*.0))]
    SampleRate(f64),
    #[error("uv_per_lsb {} is not a positive number up to 1000000 µV", show(*.0))]
    UvPerLsb(f64),
    #[error("patient.sex {0:?} is not M, F or O")]
    Sex(String),
    #[error("patient.birth_date {0:?} is not a date (YYYY-MM-DD or YYYYMMDD)")]
    BirthDate(String),
    #[error("acquired_at {0:?} is not an RFC 3339 date-time (2026-11-22T08:15:00+08:00)")]
    AcquiredAt(String),
    #[error("filters.{field} {} is not a positive number of Hz", show(*.value))]
    Filter { field: &'static str, value: f64 },
    #[error("measurements[{index}]: {detail}")]
    Measurement { index: usize, detail: String },
}

// ---------------------------------------------------------------------------------------
// Serde of the leads: an ordered object, samples checked while read (memory stays bounded)
// ---------------------------------------------------------------------------------------

impl Serialize for JsonLeads {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for lead in &self.0 {
            map.serialize_entry(&lead.name, &lead.samples)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for JsonLeads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(LeadsVisitor)
    }
}

struct LeadsVisitor;

impl<'de> Visitor<'de> for LeadsVisitor {
    type Value = JsonLeads;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of lead name → array of integer samples")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonLeads, A::Error> {
        let mut leads: Vec<JsonLead> = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let chars = name.chars().count();
            if chars > MAX_LEAD_NAME_CHARS {
                return Err(de::Error::custom(format!(
                    "a lead name of {chars} characters (lead names have at most {MAX_LEAD_NAME_CHARS})"
                )));
            }
            if leads.len() == MAX_LEADS {
                return Err(de::Error::custom(format!("more than {MAX_LEADS} leads")));
            }
            if leads.iter().any(|l| l.name == name) {
                return Err(de::Error::custom(format!("lead {name:?} appears twice")));
            }
            let samples = if EXACT_SAMPLE_ERRORS.get() {
                map.next_value_seed(SamplesSeed::<true> { lead: &name })?
            } else {
                map.next_value_seed(SamplesSeed::<false> { lead: &name })?
            };
            leads.push(JsonLead { name, samples });
        }
        Ok(JsonLeads(leads))
    }
}

/// The samples of a lead; `EXACT`: each read with `deserialize_any`, for exact error
/// messages (see `read_json`), else as a number.
struct SamplesSeed<'a, const EXACT: bool> {
    lead: &'a str,
}

impl<'de, const EXACT: bool> DeserializeSeed<'de> for SamplesSeed<'_, EXACT> {
    type Value = Vec<i32>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<i32>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, const EXACT: bool> Visitor<'de> for SamplesSeed<'_, EXACT> {
    type Value = Vec<i32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "lead {:?}: an array of integer samples", self.lead)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<i32>, A::Error> {
        let hint = seq.size_hint().unwrap_or(0).min(MAX_SAMPLES_PER_LEAD);
        let mut out = Vec::with_capacity(hint);
        loop {
            let index = out.len();
            if index == MAX_SAMPLES_PER_LEAD {
                // One more element means too many; none means exactly the maximum.
                return match seq.next_element::<de::IgnoredAny>()? {
                    None => Ok(out),
                    Some(_) => Err(de::Error::custom(format!(
                        "lead {:?}: more than {MAX_SAMPLES_PER_LEAD} samples",
                        self.lead
                    ))),
                };
            }
            match seq.next_element_seed(SampleSeed::<EXACT> {
                lead: self.lead,
                index,
            })? {
                Some(v) => out.push(v),
                None => return Ok(out),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fast reader of the leads
// ---------------------------------------------------------------------------------------
//
// A 10 s 12-lead form is ~99 % sample arrays, and serde_json spends ~3 ns a byte on them
// (it scans each number, then calls the visitor). The fast reader finds the top-level
// `"leads"` value itself, reads it — an object of plain lead names → arrays of plain
// integers — in one pass, and hands serde_json the rest of the document with `{}` in its
// place. Anything it does not read with certainty (escapes in a name, a float, too many
// samples, broken JSON …) sends the whole body to the serde reader, whose answers and
// error messages therefore stay exactly as they are.

const WS: [bool; 256] = {
    let mut t = [false; 256];
    t[b' ' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'\t' as usize] = true;
    t
};

fn skip_ws(b: &[u8], i: &mut usize) {
    while *i < b.len() && WS[b[*i] as usize] {
        *i += 1;
    }
}

/// A plain string at `b[*i]` (`"`…`"`, no escapes, no control characters): its text.
fn plain_string<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a str> {
    if b.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let len = b
        .get(start..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    if b[start + len] != b'"' {
        return None;
    }
    *i = start + len + 1;
    std::str::from_utf8(&b[start..start + len]).ok()
}

/// Skip any JSON value at `b[*i]` (not validated: serde_json reads it afterwards).
fn skip_value(b: &[u8], i: &mut usize) -> Option<()> {
    let mut depth = 0usize;
    loop {
        let c = *b.get(*i)?;
        match c {
            b'"' => {
                *i += 1;
                loop {
                    match *b.get(*i)? {
                        b'\\' => *i += 2,
                        b'"' => {
                            *i += 1;
                            break;
                        }
                        _ => *i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                *i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                *i += 1;
            }
            b',' | b':' if depth > 0 => *i += 1,
            _ if WS[c as usize] && depth > 0 => *i += 1,
            b',' | b':' => return None,
            _ if WS[c as usize] => return Some(()),
            _ => {
                // a scalar: up to the next structural character or white space
                while *i < b.len()
                    && !matches!(b[*i], b',' | b'}' | b']' | b':')
                    && !WS[b[*i] as usize]
                {
                    *i += 1;
                }
            }
        }
        if depth == 0 {
            return Some(());
        }
    }
}

/// An array of plain integers (`-?[0-9]+`, 32-bit, at most [`MAX_SAMPLES_PER_LEAD`]).
fn int_array(b: &[u8], i: &mut usize) -> Option<Vec<i32>> {
    if b.get(*i) != Some(&b'[') {
        return None;
    }
    *i += 1;
    let mut out = Vec::with_capacity(((b.len() - *i) / 4).min(8192));
    skip_ws(b, i);
    if b.get(*i) == Some(&b']') {
        *i += 1;
        return Some(out);
    }
    loop {
        let neg = b.get(*i) == Some(&b'-');
        *i += usize::from(neg);
        let start = *i;
        // JSON has no leading zeros ("01"); "0" alone is fine
        if b.get(start) == Some(&b'0') && b.get(start + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut v: i64 = 0;
        while let Some(&c) = b.get(*i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            v = v * 10 + i64::from(d);
            *i += 1;
            if *i - start > 10 {
                return None;
            }
        }
        if *i == start {
            return None;
        }
        let v = i32::try_from(if neg { -v } else { v }).ok()?;
        if out.len() == MAX_SAMPLES_PER_LEAD {
            return None;
        }
        out.push(v);
        skip_ws(b, i);
        match b.get(*i) {
            Some(b',') => *i += 1,
            Some(b']') => {
                *i += 1;
                return Some(out);
            }
            _ => return None, // '.', 'e', 'E': not a plain integer; or broken JSON
        }
        skip_ws(b, i);
    }
}

/// The leads object at `b[*i]`, read as `LeadsVisitor` reads it when nothing is wrong.
fn leads_object(b: &[u8], i: &mut usize) -> Option<JsonLeads> {
    if b.get(*i) != Some(&b'{') {
        return None;
    }
    *i += 1;
    let mut leads: Vec<JsonLead> = Vec::new();
    skip_ws(b, i);
    if b.get(*i) == Some(&b'}') {
        *i += 1;
        return Some(JsonLeads(leads));
    }
    loop {
        let name = plain_string(b, i)?;
        if name.chars().count() > MAX_LEAD_NAME_CHARS
            || leads.len() == MAX_LEADS
            || leads.iter().any(|l| l.name == name)
        {
            return None;
        }
        skip_ws(b, i);
        if b.get(*i) != Some(&b':') {
            return None;
        }
        *i += 1;
        skip_ws(b, i);
        let samples = int_array(b, i)?;
        leads.push(JsonLead {
            name: name.to_owned(),
            samples,
        });
        skip_ws(b, i);
        match b.get(*i) {
            Some(b',') => *i += 1,
            Some(b'}') => {
                *i += 1;
                return Some(JsonLeads(leads));
            }
            _ => return None,
        }
        skip_ws(b, i);
    }
}

/// The form read by the fast reader, or `None` (then the serde reader decides).
fn fast_form(b: &[u8]) -> Option<JsonEcg> {
    let mut i = 0;
    skip_ws(b, &mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut found: Option<(usize, usize, JsonLeads)> = None;
    skip_ws(b, &mut i);
    if b.get(i) == Some(&b'}') {
        return None; // no leads: serde says so
    }
    loop {
        // a key with escapes is read by serde: it might spell "leads"
        let key = plain_string(b, &mut i)?;
        skip_ws(b, &mut i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        skip_ws(b, &mut i);
        if key == "leads" {
            if found.is_some() {
                return None; // twice: serde's "duplicate field"
            }
            let start = i;
            let leads = leads_object(b, &mut i)?;
            found = Some((start, i, leads));
        } else {
            skip_value(b, &mut i)?;
        }
        skip_ws(b, &mut i);
        match b.get(i)? {
            b',' => {
                i += 1;
                skip_ws(b, &mut i);
            }
            b'}' => break,
            _ => return None,
        }
    }
    let (start, end, leads) = found?;
    let mut rest = Vec::with_capacity(b.len() - (end - start) + 2);
    rest.extend_from_slice(&b[..start]);
    rest.extend_from_slice(b"{}");
    rest.extend_from_slice(&b[end..]);
    let mut form: JsonEcg = serde_json::from_slice(&rest).ok()?;
    form.leads = leads;
    Some(form)
}

thread_local! {
    /// Read samples with `deserialize_any`, for exact error messages (see `read_json`).
    static EXACT_SAMPLE_ERRORS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct SampleSeed<'a, const EXACT: bool> {
    lead: &'a str,
    index: usize,
}

impl<const EXACT: bool> SampleSeed<'_, EXACT> {
    fn fail<E: de::Error>(&self, what: impl fmt::Display) -> E {
        E::custom(format!(
            "lead {:?}, sample {}: {what}",
            self.lead, self.index
        ))
    }

    fn int<E: de::Error>(&self, v: i128) -> Result<i32, E> {
        i32::try_from(v).map_err(|_| self.fail(format!("{v} is outside the 32-bit integer range")))
    }
}

impl<'de, const EXACT: bool> DeserializeSeed<'de> for SampleSeed<'_, EXACT> {
    type Value = i32;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<i32, D::Error> {
        // A number is read the same either way; only what is said about a sample that is
        // not a number differs (see `read_json`).
        if EXACT {
            d.deserialize_any(self)
        } else {
            d.deserialize_i64(self)
        }
    }
}

impl<'de, const EXACT: bool> Visitor<'de> for SampleSeed<'_, EXACT> {
    type Value = i32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "lead {:?}, sample {}: an integer", self.lead, self.index)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i32, E> {
        self.int(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i32, E> {
        self.int(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i32, E> {
        if v.fract() == 0.0 && v.abs() <= 2f64.powi(31) {
            #[allow(clippy::cast_possible_truncation)]
            return self.int(v as i128);
        }
        Err(self.fail(format!("{v} is not an integer")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i32, E> {
        Err(self.fail(format!("the string {v:?} is not an integer")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<i32, E> {
        Err(self.fail(format!("{v} is not an integer")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<i32, E> {
        Err(self.fail("null is not an integer"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<i32, A::Error> {
        Err(self.fail("an array is not an integer"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<i32, A::Error> {
        Err(self.fail("an object is not an integer"))
    }
}

// ---------------------------------------------------------------------------------------
// Reading and writing
// ---------------------------------------------------------------------------------------

/// Cheap sniff: the first byte after an optional UTF-8 BOM and whitespace is `{`.
pub fn looks_like_json_ecg(bytes: &[u8]) -> bool {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    b.iter()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|c| *c == b'{')
}

/// Read a JSON ECG form (UTF-8, an optional BOM allowed) into the model.
pub fn read_json(bytes: &[u8]) -> Result<Ecg, JsonEcgError> {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if !looks_like_json_ecg(b) {
        return Err(JsonEcgError::NotAnObject);
    }
    // The fast reader first (see `fast_form`). When it declines, samples are read as
    // numbers (serde_json's number path, ~15 % faster than `deserialize_any` on a 12-lead
    // record); should that fail, the body is read again so that a sample that is not a
    // number is named precisely ("the string "2" is not an integer") instead of in serde's
    // generic words. All three reads accept the same input.
    let form: JsonEcg = if let Some(form) = fast_form(b) {
        form
    } else {
        match serde_json::from_slice(b) {
            Ok(form) => form,
            Err(_) => {
                EXACT_SAMPLE_ERRORS.set(true);
                let again = serde_json::from_slice(b);
                EXACT_SAMPLE_ERRORS.set(false);
                again?
            }
        }
    };
    from_form(form)
}

/// The model of an already deserialized form, checked as [`read_json`] checks it.
pub fn from_form(form: JsonEcg) -> Result<Ecg, JsonEcgError> {
    let rate = form.sample_rate_hz;
    if !(MIN_SAMPLE_RATE_HZ..=MAX_SAMPLE_RATE_HZ).contains(&rate) {
        return Err(JsonEcgError::SampleRate(rate));
    }
    let step = form.uv_per_lsb;
    if !(step > 0.0 && step <= MAX_UV_PER_LSB) {
        return Err(JsonEcgError::UvPerLsb(step));
    }
    let leads_in = form.leads.0;
    let Some(first) = leads_in.first() else {
        return Err(JsonEcgError::NoLeads);
    };
    let (first_name, first_len) = (first.name.clone(), first.samples.len());
    let mut leads: Vec<Lead> = Vec::with_capacity(leads_in.len());
    let mut names: Vec<String> = Vec::with_capacity(leads_in.len());
    for JsonLead { name, samples } in leads_in {
        let code = known_lead(&name).ok_or_else(|| JsonEcgError::UnknownLead(name.clone()))?;
        if let Some(i) = leads.iter().position(|l| l.code == code) {
            return Err(JsonEcgError::DuplicateLead {
                name,
                first: names[i].clone(),
            });
        }
        if samples.is_empty() {
            return Err(JsonEcgError::EmptyLead(name));
        }
        if samples.len() != first_len {
            return Err(JsonEcgError::UnequalLengths {
                name,
                samples: samples.len(),
                first: first_name,
                first_samples: first_len,
            });
        }
        #[allow(clippy::cast_possible_truncation)]
        let samples_uv = samples
            .iter()
            .map(|&v| (f64::from(v) * step) as f32)
            .collect();
        leads.push(Lead { code, samples_uv });
        names.push(name);
    }

    let p = form.patient.unwrap_or_default();
    let sex = match nonempty(p.sex) {
        None => None,
        Some(s) => match s.to_ascii_uppercase().as_str() {
            v @ ("M" | "F" | "O") => Some(v.to_owned()),
            _ => return Err(JsonEcgError::Sex(clip(&s).to_owned())),
        },
    };
    let birth_date = nonempty(p.birth_date);
    if let Some(d) = &birth_date
        && !is_date(d)
    {
        return Err(JsonEcgError::BirthDate(clip(d).to_owned()));
    }
    let acquired_at = nonempty(form.acquired_at);
    if let Some(t) = &acquired_at
        && !is_rfc3339(t)
    {
        return Err(JsonEcgError::AcquiredAt(clip(t).to_owned()));
    }
    let f = form.filters.unwrap_or_default();
    for (field, value) in [
        ("low_hz", f.low_hz),
        ("high_hz", f.high_hz),
        ("notch_hz", f.notch_hz),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0)
        {
            return Err(JsonEcgError::Filter { field, value: v });
        }
    }
    let mut device_measurements = Vec::with_capacity(form.measurements.len());
    for (index, m) in form.measurements.into_iter().enumerate() {
        let name = m.name.trim();
        if name.is_empty() {
            return Err(JsonEcgError::Measurement {
                index,
                detail: "the name is empty".into(),
            });
        }
        if !m.value.is_finite() {
            return Err(JsonEcgError::Measurement {
                index,
                detail: format!("{}: the value is not a finite number", clip(name)),
            });
        }
        device_measurements.push(Measurement {
            code: name.to_owned(),
            scheme: String::new(),
            meaning: name.to_owned(),
            value: m.value,
            unit: m.unit.trim().to_owned(),
        });
    }
    let d = form.device.unwrap_or_default();
    Ok(Ecg {
        leads,
        sample_rate_hz: rate,
        filters: Filters {
            low_hz: f.low_hz,
            high_hz: f.high_hz,
            notch_hz: f.notch_hz,
        },
        device_measurements,
        statements: form
            .statements
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .collect(),
        patient: Patient {
            id: nonempty(p.id),
            name: nonempty(p.name),
            birth_date,
            sex,
        },
        device: Device {
            serial: nonempty(d.serial),
            model: nonempty(d.model),
            manufacturer: nonempty(d.manufacturer),
        },
        acquired_at,
        has_median_beats: false,
    })
}

/// The form of an ECG, with samples quantised to `uv_per_lsb` (> 0; rounded, clamped to the
/// 32-bit range). A DICOM DT acquisition time becomes RFC 3339 (one that is neither is left
/// out), a DICOM DA birth date is kept (the form accepts it), and a measurement is named by
/// its meaning (else its code).
pub fn to_json_form(ecg: &Ecg, uv_per_lsb: f64) -> JsonEcg {
    #[allow(clippy::cast_possible_truncation)]
    let quantise = |v: f32| {
        (f64::from(v) / uv_per_lsb)
            .round()
            .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
    };
    let leads = ecg
        .leads
        .iter()
        .map(|l| JsonLead {
            name: l.code.name().to_owned(),
            samples: l.samples_uv.iter().map(|&v| quantise(v)).collect(),
        })
        .collect();
    let p = &ecg.patient;
    let patient = JsonPatient {
        id: p.id.clone(),
        name: p.name.clone(),
        birth_date: p.birth_date.clone(),
        sex: p.sex.clone(),
    };
    let d = &ecg.device;
    let device = JsonDevice {
        serial: d.serial.clone(),
        model: d.model.clone(),
        manufacturer: d.manufacturer.clone(),
    };
    let f = &ecg.filters;
    let filters = JsonFilters {
        low_hz: f.low_hz,
        high_hz: f.high_hz,
        notch_hz: f.notch_hz,
    };
    JsonEcg {
        sample_rate_hz: ecg.sample_rate_hz,
        uv_per_lsb,
        leads: JsonLeads(leads),
        patient: (patient != JsonPatient::default()).then_some(patient),
        device: (device != JsonDevice::default()).then_some(device),
        acquired_at: ecg.acquired_at.as_deref().and_then(|t| {
            if is_rfc3339(t) {
                Some(t.to_owned())
            } else {
                dicom_dt_to_rfc3339(t)
            }
        }),
        filters: (filters != JsonFilters::default()).then_some(filters),
        measurements: ecg
            .device_measurements
            .iter()
            .map(|m| JsonMeasurement {
                name: if m.meaning.is_empty() {
                    m.code.clone()
                } else {
                    m.meaning.clone()
                },
                value: m.value,
                unit: m.unit.clone(),
            })
            .collect(),
        statements: ecg.statements.clone(),
    }
}

/// The lead of a name of the form: a standard lead or another lead of the MDC list.
fn known_lead(name: &str) -> Option<LeadCode> {
    match LeadCode::from_name(name)? {
        LeadCode::Other(other) => (1..=255u32)
            .map(LeadCode::from_mdc_index)
            .find(|c| matches!(c, LeadCode::Other(k) if *k == other && !k.starts_with("MDC "))),
        standard => Some(standard),
    }
}

/// At most the first 64 characters of an input string, for messages.
fn clip(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(i, _)| &s[..i])
}

/// A number for a message: `500`, `0.05`, `1e300` (never 300 digits).
fn show(v: f64) -> String {
    if v.abs() < 1e15 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(u32::MAX)
}

fn valid_ymd(y: &str, m: &str, d: &str) -> bool {
    digits(y) && digits(m) && digits(d) && (1..=12).contains(&num(m)) && (1..=31).contains(&num(d))
}

/// `YYYY-MM-DD` or `YYYYMMDD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    match b.len() {
        8 => valid_ymd(&s[..4], &s[4..6], &s[6..]),
        10 if b[4] == b'-' && b[7] == b'-' => valid_ymd(&s[..4], &s[5..7], &s[8..]),
        _ => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]` (`T`, `t` or a space between date and time).
fn is_rfc3339(s: &str) -> bool {
    if !s.is_ascii() || s.len() < 19 {
        return false;
    }
    let b = s.as_bytes();
    if !is_date(&s[..10]) || !matches!(b[10], b'T' | b't' | b' ') {
        return false;
    }
    let (hh, mm, ss) = (&s[11..13], &s[14..16], &s[17..19]);
    if b[13] != b':' || b[16] != b':' || !digits(hh) || !digits(mm) || !digits(ss) {
        return false;
    }
    if num(hh) > 23 || num(mm) > 59 || num(ss) > 60 {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        "" | "Z" | "z" => true,
        off => {
            let o = off.as_bytes();
            o.len() == 6
                && matches!(o[0], b'+' | b'-')
                && o[3] == b':'
                && digits(&off[1..3])
                && digits(&off[4..6])
                && num(&off[1..3]) <= 23
                && num(&off[4..6]) <= 59
        }
    }
}

/// A DICOM DT with at least seconds (`YYYYMMDDHHMMSS[.F…][&ZZXX]`) as RFC 3339.
fn dicom_dt_to_rfc3339(dt: &str) -> Option<String> {
    let dt = dt.trim();
    let (main, offset) = match dt.find(['+', '-']) {
        Some(i) => (&dt[..i], Some(&dt[i..])),
        None => (dt, None),
    };
    let (whole, frac) = match main.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (main, None),
    };
    if whole.len() != 14 || !digits(whole) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let mut out = format!(
        "{}-{}-{}T{}:{}:{}",
        &whole[..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    );
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if let Some(o) = offset {
        if o.len() != 5 || !digits(&o[1..]) {
            return None;
        }
        out.push_str(&format!("{}:{}", &o[..3], &o[3..]));
    }
    is_rfc3339(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast reader of one sample array, on a whole text.
    fn fast_samples(text: &str) -> Option<Vec<i32>> {
        let mut i = 0;
        let v = int_array(text.as_bytes(), &mut i)?;
        (i == text.len()).then_some(v)
    }

    /// What serde_json's own number reading makes of an array, as `SampleSeed` takes it
    /// (`None`: not all integral numbers in the 32-bit range). serde_json reads `-0` as
    /// the float -0.0, which is the integer 0.
    fn by_serde(text: &str) -> Option<Vec<i32>> {
        let v: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
        v.iter()
            .map(|x| {
                let i = x.as_i64().or_else(|| {
                    let f = x.as_f64()?;
                    #[allow(clippy::cast_possible_truncation)]
                    (f.fract() == 0.0 && f.abs() <= 2f64.powi(31)).then_some(f as i64)
                })?;
                i32::try_from(i).ok()
            })
            .collect()
    }

    #[test]
    fn fast_samples_agree_with_serde() {
        let cases = [
            "[]",
            "[ ]",
            "[0]",
            "[-0]",
            "[1,2,3]",
            "[ 1 , -2 ,\n3\t,\r\n 4 ]",
            "[2147483647,-2147483648]",
            "[2147483648]",
            "[-2147483649]",
            "[99999999999]",
            "[12345678901234567890]",
            "[1.0]",
            "[1.5]",
            "[1e2]",
            "[1E2]",
            "[-1e-2]",
            "[\"1\"]",
            "[null]",
            "[true]",
            "[[1]]",
            "[{}]",
            "[1,[2]]",
        ];
        for text in cases {
            let fast = fast_samples(text);
            if let Some(v) = &fast {
                assert_eq!(Some(v.clone()), by_serde(text), "{text}");
            } else {
                // a bail-out is allowed only where serde's integer path would not give
                // the same integers: floats and exponents go to the exact reader
                assert!(
                    by_serde(text).is_none() || text.contains(['.', 'e', 'E']),
                    "{text}"
                );
            }
        }
        // pseudo-random arrays with random whitespace
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let n = (next() % 50) as usize;
            let mut text = String::from("[");
            for k in 0..n {
                if k > 0 {
                    text.push(',');
                }
                for _ in 0..(next() % 3) {
                    text.push([' ', '\n', '\t', '\r'][(next() % 4) as usize]);
                }
                let v = (next() as i64) >> (next() % 64);
                text.push_str(&v.to_string());
                for _ in 0..(next() % 2) {
                    text.push(' ');
                }
            }
            text.push(']');
            assert_eq!(fast_samples(&text), by_serde(&text), "{text}");
        }
    }

    /// The serde reader alone (what `read_json` did before the fast reader).
    fn by_serde_form(b: &[u8]) -> Result<JsonEcg, serde_json::Error> {
        serde_json::from_slice(b).or_else(|_| {
            EXACT_SAMPLE_ERRORS.set(true);
            let again = serde_json::from_slice(b);
            EXACT_SAMPLE_ERRORS.set(false);
            again
        })
    }

    #[test]
    fn fast_reader_reads_what_serde_reads_or_declines() {
        let leads = r#"{"I": [1, -2, 3], "II":[4,5,6]}"#;
        let cases: Vec<String> = vec![
            format!(r#"{{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{leads}}}"#),
            format!(r#"{{"leads":{leads},"sample_rate_hz":500,"uv_per_lsb":1}}"#),
            format!(
                " \n{{ \"leads\" :\t{leads} , \"sample_rate_hz\" : 500 , \"uv_per_lsb\" : 2.5 }}\n "
            ),
            format!(
                r#"{{"patient":{{"id":"P1","name":"张^三 {{\"leads\":[1]}} ]\\","sex":"F"}},"leads":{leads},"sample_rate_hz":500,"uv_per_lsb":1}}"#
            ),
            format!(
                r#"{{"device":{{"serial":"S\"1","model":"m"}},"sample_rate_hz":500,"uv_per_lsb":1,"leads":{leads},"measurements":[]}}"#
            ),
            // read fast, and refused by `from_form` as the serde reader's form is
            r#"{"leads":{},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            // declined: serde decides (and must agree with itself)
            format!(r#"{{"le\u0061ds":{leads},"sample_rate_hz":500,"uv_per_lsb":1}}"#),
            format!(r#"{{"leads":{leads},"leads":{leads},"sample_rate_hz":500,"uv_per_lsb":1}}"#),
            r#"{"leads":{"I":[1.0,2]},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I":[01,2]},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I":[1,2],},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I":[1,2,]},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I\n":[1,2]},"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I":[1,2]},"sample_rate_hz":500,"uv_per_lsb":1,}"#.to_owned(),
            r#"{"leads":{"I":[1,2]},"sample_rate_hz":500,"uv_per_lsb":1} x"#.to_owned(),
            r#"{"leads":{"I":[1,2]},"sample_rate_hz":500,"uv_per_lsb":1,"extra":1}"#.to_owned(),
            r#"{"leads":{"I":[1,2]} "sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{"leads":{"I":[1,2]},"sample_rate_hz":500,"uv_per_lsb":1"#.to_owned(),
            r#"{"sample_rate_hz":500,"uv_per_lsb":1}"#.to_owned(),
            r#"{}"#.to_owned(),
        ];
        let mut fast_taken = Vec::new();
        for text in &cases {
            let b = text.as_bytes();
            let serde = by_serde_form(b);
            match fast_form(b) {
                Some(fast) => {
                    fast_taken.push(true);
                    assert_eq!(Some(&fast), serde.as_ref().ok(), "{text}");
                }
                // declining is always allowed; the serde reader then answers
                None => fast_taken.push(false),
            }
            // read_json answers as the serde reader does, fast path or not
            match (read_json(b), serde.map(from_form)) {
                (Ok(a), Ok(Ok(b))) => assert_eq!(a.leads.len(), b.leads.len(), "{text}"),
                (Err(a), Ok(Err(b))) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                (Err(JsonEcgError::Json(a)), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string(), "{text}")
                }
                (a, b) => panic!("{text}: read_json {a:?}, serde {b:?}"),
            }
        }
        let want: Vec<bool> = (0..cases.len()).map(|k| k < 6).collect();
        assert_eq!(fast_taken, want, "the first six forms take the fast path");
    }

    #[test]
    fn dates_and_times() {
        assert!(is_date("1958-03-14"));
        assert!(is_date("19580314"));
        assert!(!is_date("1958-13-14"));
        assert!(!is_date("14.03.1958"));
        assert!(is_rfc3339("2026-11-22T08:15:00+08:00"));
        assert!(is_rfc3339("2026-11-22T08:15:00.250Z"));
        assert!(is_rfc3339("2026-11-22 08:15:00"));
        assert!(!is_rfc3339("2026-11-22T08:15"));
        assert!(!is_rfc3339("2026-11-22T08:15:00+0800"));
        assert!(!is_rfc3339("20261122081500"));
        assert_eq!(
            dicom_dt_to_rfc3339("20130125105919").as_deref(),
            Some("2013-01-25T10:59:19")
        );
        assert_eq!(
            dicom_dt_to_rfc3339("20130125105919.5+0800").as_deref(),
            Some("2013-01-25T10:59:19.5+08:00")
        );
        assert_eq!(dicom_dt_to_rfc3339("201301251059"), None);
    }

    #[test]
    fn known_leads() {
        assert_eq!(known_lead("aVR"), Some(LeadCode::AVR));
        assert_eq!(known_lead("v4r"), Some(LeadCode::Other("V4R".into())));
        assert_eq!(known_lead("-aVR"), Some(LeadCode::Other("-aVR".into())));
        assert_eq!(known_lead("V13"), None);
        assert_eq!(known_lead("MDC 2:200"), None);
        assert_eq!(known_lead(""), None);
    }
}
