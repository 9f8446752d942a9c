//! DICOM JSON (PS3.18 Annex F) of a data set, for WADO-RS `/metadata` and the QIDO index.
//!
//! Text is decoded the way [`crate::extract`] decodes it: dicom-rs decodes with the first
//! value of Specific Character Set (0008,0005), [`repair_text`] then fixes ISO 2022 IR 58,
//! and standard attributes that arrive with VR UN are decoded with their dictionary VR
//! (pydicom's `replace_un_with_known_vr` does the same).
//!
//! Binary values (OB, OD, OF, OL, OV, OW, UN) longer than [`JsonOptions::inline_binary_max`]
//! become a `BulkDataURI` `{bulk_prefix}{path}`, where `path` is the tag path of the element:
//! `7FE00010` at the top level, `00540016.0.00181074` inside item 0 of a sequence. Pixel data,
//! encapsulated documents, overlay and spectroscopy data are always bulk. Waveform Data
//! (5400,1010) follows the size rule like any other binary value: an ECG's samples are a
//! BulkDataURI (as dcm4chee serves them; cornerstone3D's ECG viewport and OHIF fetch bulk
//! data on demand), so the index does not hold a base64 copy of every waveform.
//! InlineBinary holds little-endian bytes whatever the file's transfer syntax.
//!
//! Where PS3.18 and pydicom differ, this follows PS3.18: an empty value inside a multi-valued
//! element is `null` (pydicom: `""`), an empty sequence has no `Value` (pydicom: `[]`), a
//! PN has only its non-empty groups, group length elements are omitted, and encapsulated
//! Pixel Data is `OB`. `tests/json_vs_pydicom.rs` lists every difference it tolerates.

use crate::charset::repair_text;
use base64::Engine as _;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header;
use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use serde_json::{Map, Number, Value};

/// How binary values are rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonOptions {
    /// Binary values (OB, OD, OF, OL, OV, OW, UN) longer than this many bytes become
    /// BulkDataURI; shorter or equal ones are InlineBinary (base64).
    pub inline_binary_max: usize,
    /// The prefix of every BulkDataURI; the URI is `{prefix}{path}` (see the module docs).
    pub bulk_prefix: String,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            inline_binary_max: 1024,
            bulk_prefix: "dxhub-bulk:".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("cannot parse the DICOM file: {0}")]
    Parse(#[source] dicom_object::ReadError),
}

/// The QIDO-RS level an attribute belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryLevel {
    /// Patient and study attributes (Patient, General Study and Patient Study modules).
    Study,
    /// General Series, Frame of Reference, General Equipment and Performed Procedure Step.
    Series,
    /// Everything else.
    Instance,
}

/// Patient module, General Study, Patient Study and the QIDO study-level computed keys.
const STUDY_LEVEL: &[u32] = &[
    // Patient module and patient identification
    0x0010_0010,
    0x0010_0020,
    0x0010_0021,
    0x0010_0022,
    0x0010_0024,
    0x0010_0026,
    0x0010_0027,
    0x0010_0028,
    0x0010_0030,
    0x0010_0032,
    0x0010_0033,
    0x0010_0034,
    0x0010_0035,
    0x0010_0040,
    0x0010_0041,
    0x0010_0050,
    0x0010_0200,
    0x0010_0212,
    0x0010_0213,
    0x0010_0214,
    0x0010_0215,
    0x0010_0216,
    0x0010_0217,
    0x0010_0218,
    0x0010_0219,
    0x0010_0221,
    0x0010_0222,
    0x0010_0223,
    0x0010_0229,
    0x0010_1000,
    0x0010_1001,
    0x0010_1002,
    0x0010_1005,
    0x0010_1040,
    0x0010_1060,
    0x0010_1100,
    0x0010_2154,
    0x0010_2155,
    0x0010_2160,
    0x0010_2201,
    0x0010_2202,
    0x0010_2203,
    0x0010_2292,
    0x0010_2293,
    0x0010_2294,
    0x0010_2295,
    0x0010_2296,
    0x0010_2297,
    0x0010_2298,
    0x0010_2299,
    0x0010_4000,
    0x0012_0062,
    0x0012_0063,
    0x0012_0064,
    // General Study
    0x0008_0020,
    0x0008_0030,
    0x0008_0050,
    0x0008_0051,
    0x0008_0090,
    0x0008_0096,
    0x0008_009C,
    0x0008_009D,
    0x0008_1030,
    0x0008_1032,
    0x0008_1048,
    0x0008_1049,
    0x0008_1060,
    0x0008_1062,
    0x0008_1110,
    0x0020_000D,
    0x0020_0010,
    0x0032_1032,
    0x0032_1033,
    0x0032_1034,
    0x0032_1060,
    0x0032_1064,
    0x0040_1012,
    // Patient Study
    0x0008_1080,
    0x0008_1084,
    0x0010_1010,
    0x0010_1020,
    0x0010_1021,
    0x0010_1022,
    0x0010_1023,
    0x0010_1024,
    0x0010_1030,
    0x0010_2000,
    0x0010_2110,
    0x0010_2180,
    0x0010_21A0,
    0x0010_21B0,
    0x0010_21C0,
    0x0010_21D0,
    0x0032_1066,
    0x0032_1067,
    0x0038_0010,
    0x0038_0014,
    0x0038_0060,
    0x0038_0062,
    0x0038_0064,
    0x0038_0500,
    // QIDO-RS study-level keys computed by the hub
    0x0008_0061,
    0x0008_0062,
    0x0020_1200,
    0x0020_1202,
    0x0020_1204,
    0x0020_1206,
    0x0020_1208,
];

/// General Series, Frame of Reference, General Equipment, Performed Procedure Step and the
/// QIDO series-level computed keys.
const SERIES_LEVEL: &[u32] = &[
    // General Series
    0x0008_0021,
    0x0008_0031,
    0x0008_0060,
    0x0008_103E,
    0x0008_103F,
    0x0008_1050,
    0x0008_1052,
    0x0008_1070,
    0x0008_1072,
    0x0008_1111,
    0x0008_1250,
    0x0010_2210,
    0x0018_0015,
    0x0018_1030,
    0x0018_5100,
    0x0020_000E,
    0x0020_0011,
    0x0020_0060,
    0x0028_0108,
    0x0028_0109,
    0x0040_0244,
    0x0040_0245,
    0x0040_0250,
    0x0040_0251,
    0x0040_0253,
    0x0040_0254,
    0x0040_0260,
    0x0040_0261,
    0x0040_0275,
    0x0040_0280,
    // Frame of Reference
    0x0020_0052,
    0x0020_1040,
    // General Equipment
    0x0008_0070,
    0x0008_0080,
    0x0008_0081,
    0x0008_1010,
    0x0008_1040,
    0x0008_1090,
    0x0018_1000,
    0x0018_1002,
    0x0018_1008,
    0x0018_1020,
    0x0018_1050,
    0x0018_1200,
    0x0018_1201,
    // QIDO-RS series-level keys computed by the hub
    0x0020_1209,
    0x0040_0244,
];

/// The query level an attribute belongs to for QIDO-RS.
pub fn query_level(tag: Tag) -> QueryLevel {
    let t = (u32::from(tag.group()) << 16) | u32::from(tag.element());
    if STUDY_LEVEL.contains(&t) {
        QueryLevel::Study
    } else if SERIES_LEVEL.contains(&t) {
        QueryLevel::Series
    } else {
        QueryLevel::Instance
    }
}

const SPECTROSCOPY_DATA: Tag = Tag(0x5600, 0x0020);

/// Elements whose value is always a BulkDataURI, whatever their length.
fn always_bulk(tag: Tag) -> bool {
    tag == tags::PIXEL_DATA
        || tag == tags::FLOAT_PIXEL_DATA
        || tag == tags::DOUBLE_FLOAT_PIXEL_DATA
        || tag == tags::ENCAPSULATED_DOCUMENT
        || tag == SPECTROSCOPY_DATA
        || ((0x6000..=0x60FF).contains(&tag.group())
            && tag.group() & 1 == 0
            && tag.element() == 0x3000)
}

fn is_binary_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
    )
}

/// VRs whose text is in the data set's character set (PS3.5 6.1.2.3) and needs the repair.
fn is_charset_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::PN | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC
    )
}

/// Text VRs whose value is a single string: a backslash is part of the text.
fn is_single_text_vr(vr: VR) -> bool {
    matches!(vr, VR::LT | VR::ST | VR::UT | VR::UR)
}

struct Ctx<'a> {
    opts: &'a JsonOptions,
}

/// DICOM JSON object of a data set (the top level of a file or an item), `charsets` being its
/// Specific Character Set values (see the module docs for the rules).
pub fn to_json(
    obj: &InMemDicomObject,
    charsets: &[String],
    opts: &JsonOptions,
) -> Map<String, Value> {
    dataset(obj, charsets, &Ctx { opts }, "")
}

/// Open a Part 10 file (with or without preamble) from its bytes and return the JSON of its
/// data set (the file meta group is not part of it); the character set comes from (0008,0005).
pub fn file_to_json(bytes: &[u8], opts: &JsonOptions) -> Result<Map<String, Value>, JsonError> {
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(JsonError::Parse)?;
    Ok(to_json(&obj, &specific_character_set(&obj), opts))
}

/// The Specific Character Set (0008,0005) values of a data set, trimmed (empty when absent):
/// what [`to_json`] takes for an object not read through [`file_to_json`].
pub fn specific_character_set(obj: &InMemDicomObject) -> Vec<String> {
    charsets_of(obj).unwrap_or_default()
}

/// The (0008,0005) values of a data set, trimmed; `None` when the element is absent.
fn charsets_of(obj: &InMemDicomObject) -> Option<Vec<String>> {
    let e = obj.get(tags::SPECIFIC_CHARACTER_SET)?;
    let v = e.to_multi_str().ok()?;
    Some(v.iter().map(|s| s.trim().to_owned()).collect())
}

fn dataset(
    obj: &InMemDicomObject,
    charsets: &[String],
    ctx: &Ctx<'_>,
    prefix: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    for e in obj.iter() {
        let tag = e.tag();
        if tag.element() == 0x0000 {
            continue; // group length
        }
        let key = format!("{:04X}{:04X}", tag.group(), tag.element());
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let json = match e.value() {
            DicomValue::Sequence(seq) => sequence(seq.items(), charsets, ctx, &path),
            DicomValue::PixelSequence(_) => element(e.vr(), Some(Body::Bulk(bulk_uri(ctx, &path)))),
            DicomValue::Primitive(v) => primitive(tag, e.vr(), v, charsets, ctx, &path),
        };
        out.insert(key, json);
    }
    out
}

/// An SQ element; an item with its own (0008,0005) uses it, others inherit the parent's.
fn sequence(items: &[InMemDicomObject], charsets: &[String], ctx: &Ctx<'_>, path: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let own = charsets_of(item);
            let cs = own.as_deref().unwrap_or(charsets);
            Value::Object(dataset(item, cs, ctx, &format!("{path}.{i}")))
        })
        .collect();
    element(VR::SQ, (!items.is_empty()).then_some(Body::Value(items)))
}

enum Body {
    Value(Vec<Value>),
    Inline(String),
    Bulk(String),
}

fn element(vr: VR, body: Option<Body>) -> Value {
    let mut m = Map::new();
    m.insert("vr".to_owned(), Value::String(vr.to_string().to_owned()));
    match body {
        None => {}
        Some(Body::Value(v)) => {
            m.insert("Value".to_owned(), Value::Array(v));
        }
        Some(Body::Inline(b)) => {
            m.insert("InlineBinary".to_owned(), Value::String(b));
        }
        Some(Body::Bulk(u)) => {
            m.insert("BulkDataURI".to_owned(), Value::String(u));
        }
    }
    Value::Object(m)
}

fn bulk_uri(ctx: &Ctx<'_>, path: &str) -> String {
    format!("{}{}", ctx.opts.bulk_prefix, path)
}

fn primitive(
    tag: Tag,
    vr: VR,
    v: &PrimitiveValue,
    charsets: &[String],
    ctx: &Ctx<'_>,
    path: &str,
) -> Value {
    // a standard attribute sent as UN: decode it with its dictionary VR
    let dict_vr = if vr == VR::UN && tag.group() & 1 == 0 {
        dictionary_vr(tag).filter(|d| *d != VR::UN)
    } else {
        None
    };
    match dict_vr {
        Some(VR::SQ) => {
            // a sequence sent as UN is encoded in Implicit VR Little Endian (PS3.5 6.2.2);
            // if it does not parse, it stays UN
            if let Some(seq) = un_sequence(tag, &le_bytes(v), charsets) {
                return sequence(&seq, charsets, ctx, path);
            }
        }
        Some(d) if is_binary_vr(d) => {
            return primitive(tag, d, v, charsets, ctx, path);
        }
        Some(d) => {
            let decoded = decode_un(&le_bytes(v), d, charsets);
            return primitive(tag, d, &decoded, charsets, ctx, path);
        }
        None => {}
    }

    if is_binary_vr(vr) || always_bulk(tag) {
        let bytes = le_bytes(v);
        if bytes.is_empty() {
            return element(vr, None);
        }
        let inline = !always_bulk(tag) && bytes.len() <= ctx.opts.inline_binary_max;
        let body = if inline {
            Body::Inline(base64::engine::general_purpose::STANDARD.encode(&bytes))
        } else {
            Body::Bulk(bulk_uri(ctx, path))
        };
        return element(vr, Some(body));
    }

    let values: Vec<Value> = match vr {
        VR::AT => match v {
            PrimitiveValue::Tags(ts) => ts
                .iter()
                .map(|t| Value::String(format!("{:04X}{:04X}", t.group(), t.element())))
                .collect(),
            _ => strings(v, vr, charsets)
                .into_iter()
                .map(text_or_null)
                .collect(),
        },
        VR::PN => strings(v, vr, charsets)
            .into_iter()
            .map(|s| person_name(&s))
            .collect(),
        VR::IS => match v {
            PrimitiveValue::Strs(_) | PrimitiveValue::Str(_) => strings(v, vr, charsets)
                .iter()
                .map(|s| is_number(s))
                .collect(),
            _ => numbers(v),
        },
        VR::DS => match v {
            PrimitiveValue::Strs(_) | PrimitiveValue::Str(_) => strings(v, vr, charsets)
                .iter()
                .map(|s| ds_number(s))
                .collect(),
            _ => numbers(v),
        },
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD => match v {
            PrimitiveValue::Strs(_) | PrimitiveValue::Str(_) => strings(v, vr, charsets)
                .iter()
                .map(|s| ds_number(s))
                .collect(),
            _ => numbers(v),
        },
        _ => strings(v, vr, charsets)
            .into_iter()
            .map(text_or_null)
            .collect(),
    };
    if values.iter().all(Value::is_null) {
        return element(vr, None);
    }
    element(vr, Some(Body::Value(values)))
}

/// The items of a sequence whose value arrived as the bytes of a UN element; `None` when
/// they do not parse.
fn un_sequence(tag: Tag, bytes: &[u8], charsets: &[String]) -> Option<Vec<InMemDicomObject>> {
    let ts = TransferSyntaxRegistry.get(crate::ts::IMPLICIT_VR_LE)?;
    let len = u32::try_from(bytes.len()).ok()?;
    let mut buf = Vec::with_capacity(bytes.len() + 8);
    buf.extend_from_slice(&tag.group().to_le_bytes());
    buf.extend_from_slice(&tag.element().to_le_bytes());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(bytes);
    let cs = charsets
        .first()
        .and_then(|c| SpecificCharacterSet::from_code(c))
        .unwrap_or_default();
    let obj = InMemDicomObject::read_dataset_with_ts_cs(&buf[..], ts, cs).ok()?;
    match obj.get(tag)?.value() {
        DicomValue::Sequence(seq) => Some(seq.items().to_vec()),
        _ => None,
    }
}

fn dictionary_vr(tag: Tag) -> Option<VR> {
    let entry = StandardDataDictionary.by_tag(tag)?;
    Some(match entry.vr() {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => VR::US,
        _ => VR::OW,
    })
}

/// The values of a text element, decoded and repaired, trailing spaces and NULs removed.
fn strings(v: &PrimitiveValue, vr: VR, charsets: &[String]) -> Vec<String> {
    let raw: Vec<String> = match v {
        PrimitiveValue::Empty => Vec::new(),
        PrimitiveValue::Str(s) => vec![s.clone()],
        PrimitiveValue::Strs(ss) => ss.iter().cloned().collect(),
        other => other.to_multi_str().iter().cloned().collect(),
    };
    let raw = if is_charset_text_vr(vr) {
        crate::charset::rejoin_gb_values(raw, charsets)
    } else {
        raw
    };
    raw.into_iter()
        .map(|s| {
            let s = if is_charset_text_vr(vr) {
                repair_text(&s, charsets)
            } else {
                s
            };
            s.trim_end_matches([' ', '\0']).to_owned()
        })
        .collect()
}

fn text_or_null(s: String) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s)
    }
}

/// PN as `{"Alphabetic","Ideographic","Phonetic"}`, only the non-empty groups.
fn person_name(s: &str) -> Value {
    if s.is_empty() {
        return Value::Null;
    }
    let mut m = Map::new();
    for (name, group) in ["Alphabetic", "Ideographic", "Phonetic"]
        .iter()
        .zip(s.splitn(3, '='))
    {
        let g = group.trim_end_matches([' ', '\0']);
        if !g.is_empty() {
            m.insert((*name).to_owned(), Value::String(g.to_owned()));
        }
    }
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// An IS value as a JSON integer; an invalid value is kept as text rather than lost.
fn is_number(s: &str) -> Value {
    let t = s.trim();
    if t.is_empty() {
        return Value::Null;
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    if let Ok(i) = t.parse::<i64>() {
        return Value::Number(i.into());
    }
    ds_number(t)
}

/// A DS value as a JSON number: an integer where the value is integral (like pydicom's
/// `int` rendering of IS), a float otherwise; an invalid value is kept as text.
fn ds_number(s: &str) -> Value {
    let t = s.trim();
    if t.is_empty() {
        return Value::Null;
    }
    match t.parse::<f64>() {
        Ok(f) => float(f),
        Err(_) => Value::String(t.to_owned()),
    }
}

fn float(f: f64) -> Value {
    // integral values within the exactly representable range become JSON integers
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number((f as i64).into());
    }
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn numbers(v: &PrimitiveValue) -> Vec<Value> {
    match v {
        PrimitiveValue::U16(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::I16(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::U32(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::I32(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::U64(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::I64(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::U8(x) => x.iter().map(|n| Value::from(*n)).collect(),
        PrimitiveValue::F32(x) => x.iter().map(|n| float(f64::from(*n))).collect(),
        PrimitiveValue::F64(x) => x.iter().map(|n| float(*n)).collect(),
        _ => Vec::new(),
    }
}

/// The value's bytes as stored, numbers in little endian.
fn le_bytes(v: &PrimitiveValue) -> Vec<u8> {
    match v {
        PrimitiveValue::Empty => Vec::new(),
        PrimitiveValue::U8(x) => x.to_vec(),
        PrimitiveValue::I16(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U16(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::I32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::I64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::F32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::F64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::Tags(x) => x
            .iter()
            .flat_map(|t| {
                let [a, b] = t.group().to_le_bytes();
                let [c, d] = t.element().to_le_bytes();
                [a, b, c, d]
            })
            .collect(),
        other => other.to_bytes().into_owned(),
    }
}

/// Decode the bytes of a UN element with its dictionary VR (little endian, the encoding
/// of every transfer syntax but the retired Explicit VR Big Endian).
fn decode_un(bytes: &[u8], vr: VR, charsets: &[String]) -> PrimitiveValue {
    if bytes.is_empty() {
        return PrimitiveValue::Empty;
    }
    fn chunks<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .filter_map(|c| <[u8; N]>::try_from(c).ok())
            .map(f)
            .collect()
    }
    match vr {
        VR::US => PrimitiveValue::U16(chunks(bytes, u16::from_le_bytes).into()),
        VR::SS => PrimitiveValue::I16(chunks(bytes, i16::from_le_bytes).into()),
        VR::UL => PrimitiveValue::U32(chunks(bytes, u32::from_le_bytes).into()),
        VR::SL => PrimitiveValue::I32(chunks(bytes, i32::from_le_bytes).into()),
        VR::UV => PrimitiveValue::U64(chunks(bytes, u64::from_le_bytes).into()),
        VR::SV => PrimitiveValue::I64(chunks(bytes, i64::from_le_bytes).into()),
        VR::FL => PrimitiveValue::F32(chunks(bytes, f32::from_le_bytes).into()),
        VR::FD => PrimitiveValue::F64(chunks(bytes, f64::from_le_bytes).into()),
        VR::AT => PrimitiveValue::Tags(
            chunks(bytes, |b: [u8; 4]| {
                Tag(
                    u16::from_le_bytes([b[0], b[1]]),
                    u16::from_le_bytes([b[2], b[3]]),
                )
            })
            .into(),
        ),
        _ => {
            // text, as extract.rs decodes it: the first character set, then the repair
            let codec = charsets
                .first()
                .and_then(|c| SpecificCharacterSet::from_code(c))
                .unwrap_or_default();
            let decode = |b: &[u8]| {
                codec
                    .decode(b)
                    .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned())
            };
            if is_single_text_vr(vr) {
                PrimitiveValue::Str(decode(bytes))
            } else {
                PrimitiveValue::Strs(bytes.split(|b| *b == b'\\').map(decode).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, dicom_value};
    use dicom_object::FileMetaTableBuilder;

    fn opts() -> JsonOptions {
        JsonOptions::default()
    }

    fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: PrimitiveValue) {
        obj.put(DataElement::new(tag, vr, v));
    }

    fn json_of(obj: &InMemDicomObject, cs: &[&str]) -> Map<String, Value> {
        let cs: Vec<String> = cs.iter().map(|s| (*s).to_owned()).collect();
        to_json(obj, &cs, &opts())
    }

    /// A Part 10 file (Explicit VR Little Endian) whose data set is the given elements,
    /// encoded by hand so the bytes are exactly what a sender would put on the wire.
    /// Elements must be given in ascending tag order.
    fn part10(elems: &[(Tag, &[u8; 2], Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        InMemDicomObject::new_empty()
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax(crate::ts::EXPLICIT_VR_LE),
            )
            .unwrap()
            .write_all(&mut out)
            .unwrap();
        for (tag, vr, value) in elems {
            let mut v = value.clone();
            if v.len() % 2 == 1 {
                v.push(if **vr == *b"UN" || **vr == *b"OB" {
                    0
                } else {
                    b' '
                });
            }
            out.extend_from_slice(&tag.group().to_le_bytes());
            out.extend_from_slice(&tag.element().to_le_bytes());
            out.extend_from_slice(*vr);
            if [
                b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"UT", b"UC", b"UR",
            ]
            .contains(vr)
            {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            } else {
                out.extend_from_slice(&(v.len() as u16).to_le_bytes());
            }
            out.extend_from_slice(&v);
        }
        out
    }

    fn gb2312_iso2022(s: &str) -> Vec<u8> {
        let mut out = b"\x1b$)A".to_vec();
        out.extend_from_slice(&encoding_rs::GBK.encode(s).0);
        out
    }

    #[test]
    fn person_name_groups_with_chinese_ideographic() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            "ISO_IR 192".into(),
        );
        put(
            &mut obj,
            tags::PATIENT_NAME,
            VR::PN,
            "Wang^XiaoDong=王^小东=".into(),
        );
        put(
            &mut obj,
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            "=李^四".into(),
        );
        put(
            &mut obj,
            tags::PERFORMING_PHYSICIAN_NAME,
            VR::PN,
            dicom_value!(Strs, ["Doe^John", "", "A^B=C^D=E^F"]),
        );
        let j = json_of(&obj, &["ISO_IR 192"]);
        assert_eq!(
            j["00100010"],
            serde_json::json!({"vr": "PN", "Value": [{"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小东"}]})
        );
        assert_eq!(
            j["00080090"]["Value"],
            serde_json::json!([{"Ideographic": "李^四"}])
        );
        assert_eq!(
            j["00081050"]["Value"],
            serde_json::json!([
                {"Alphabetic": "Doe^John"},
                null,
                {"Alphabetic": "A^B", "Ideographic": "C^D", "Phonetic": "E^F"}
            ])
        );
    }

    #[test]
    fn iso2022_ir58_is_repaired_in_both_declarations() {
        for charset in [&b"\\ISO 2022 IR 58"[..], b"ISO 2022 IR 58"] {
            let mut name = b"Zhang^XiaoDong=".to_vec();
            name.extend(gb2312_iso2022("张^小东"));
            let file = part10(&[
                (tags::SPECIFIC_CHARACTER_SET, b"CS", charset.to_vec()),
                (tags::STUDY_DESCRIPTION, b"LO", gb2312_iso2022("胸部")),
                (tags::PATIENT_NAME, b"PN", name),
            ]);
            let j = file_to_json(&file, &opts()).unwrap();
            assert_eq!(
                j["00100010"]["Value"][0],
                serde_json::json!({"Alphabetic": "Zhang^XiaoDong", "Ideographic": "张^小东"}),
                "charset {:?}",
                String::from_utf8_lossy(charset)
            );
            assert_eq!(j["00081030"]["Value"][0], "胸部");
        }
    }

    #[test]
    fn gb18030_names_are_decoded() {
        let file = part10(&[
            (tags::SPECIFIC_CHARACTER_SET, b"CS", b"GB18030".to_vec()),
            (
                tags::PATIENT_NAME,
                b"PN",
                encoding_rs::GB18030.encode("张^小明").0.into_owned(),
            ),
        ]);
        let j = file_to_json(&file, &opts()).unwrap();
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "张^小明");
        // 昞 (`95 5C`): one value, not cut at its second byte
        for cs in [&b"GB18030"[..], b"GBK"] {
            let file = part10(&[
                (tags::SPECIFIC_CHARACTER_SET, b"CS", cs.to_vec()),
                (
                    tags::PATIENT_NAME,
                    b"PN",
                    encoding_rs::GB18030.encode("王^昞").0.into_owned(),
                ),
            ]);
            let j = file_to_json(&file, &opts()).unwrap();
            assert_eq!(
                j["00100010"]["Value"],
                serde_json::json!([{"Alphabetic": "王^昞"}]),
                "{}",
                String::from_utf8_lossy(cs)
            );
        }
    }

    #[test]
    fn standard_attributes_sent_as_un_use_the_dictionary_vr() {
        let file = part10(&[
            (tags::SPECIFIC_CHARACTER_SET, b"CS", b"GB18030".to_vec()),
            (tags::MODALITY, b"UN", b"CT".to_vec()),
            (
                tags::PATIENT_NAME,
                b"UN",
                encoding_rs::GB18030.encode("张^小明").0.into_owned(),
            ),
            (tags::IMAGE_POSITION_PATIENT, b"UN", b"-1.5\\2\\3 ".to_vec()),
            (tags::INSTANCE_NUMBER, b"UN", b" 7".to_vec()),
            (tags::ROWS, b"UN", 512u16.to_le_bytes().to_vec()),
            (Tag(0x0029, 0x1010), b"UN", b"ab".to_vec()),
        ]);
        let j = file_to_json(&file, &opts()).unwrap();
        assert_eq!(
            j["00080060"],
            serde_json::json!({"vr": "CS", "Value": ["CT"]})
        );
        assert_eq!(
            j["00100010"],
            serde_json::json!({"vr": "PN", "Value": [{"Alphabetic": "张^小明"}]})
        );
        assert_eq!(
            j["00200032"],
            serde_json::json!({"vr": "DS", "Value": [-1.5, 2, 3]})
        );
        assert_eq!(j["00200013"], serde_json::json!({"vr": "IS", "Value": [7]}));
        assert_eq!(
            j["00280010"],
            serde_json::json!({"vr": "US", "Value": [512]})
        );
        // private: no dictionary, stays UN (binary)
        assert_eq!(
            j["00291010"],
            serde_json::json!({"vr": "UN", "InlineBinary": "YWI="})
        );
    }

    #[test]
    fn sequence_sent_as_un_is_parsed_as_implicit_vr_items() {
        // one item (defined length) holding Referenced SOP Class and Instance UIDs
        let mut item = Vec::new();
        for (elem, value) in [(0x1150u16, &b"1.2\0"[..]), (0x1155, b"1.2.3.4\0")] {
            item.extend_from_slice(&0x0008u16.to_le_bytes());
            item.extend_from_slice(&elem.to_le_bytes());
            item.extend_from_slice(&(value.len() as u32).to_le_bytes());
            item.extend_from_slice(value);
        }
        let mut seq = vec![0xFE, 0xFF, 0x00, 0xE0];
        seq.extend_from_slice(&(item.len() as u32).to_le_bytes());
        seq.extend_from_slice(&item);
        let file = part10(&[(tags::REFERENCED_IMAGE_SEQUENCE, b"UN", seq)]);
        let j = file_to_json(&file, &opts()).unwrap();
        assert_eq!(
            j["00081140"],
            serde_json::json!({"vr": "SQ", "Value": [{
                "00081150": {"vr": "UI", "Value": ["1.2"]},
                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]}
            }]})
        );
    }

    #[test]
    fn un_with_iso2022_ir58_is_repaired_like_extract() {
        let file = part10(&[
            (
                tags::SPECIFIC_CHARACTER_SET,
                b"CS",
                b"\\ISO 2022 IR 58".to_vec(),
            ),
            (tags::PATIENT_NAME, b"UN", gb2312_iso2022("张^三")),
        ]);
        let j = file_to_json(&file, &opts()).unwrap();
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "张^三");
    }

    #[test]
    fn is_and_ds_are_json_numbers() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            tags::PIXEL_SPACING,
            VR::DS,
            dicom_value!(Strs, ["0.5", " 2.0 ", "-0.25e1", "1e-3"]),
        );
        put(&mut obj, tags::SERIES_NUMBER, VR::IS, " +42 ".into());
        put(&mut obj, tags::SLICE_THICKNESS, VR::DS, "abc".into());
        put(&mut obj, tags::ROWS, VR::US, dicom_value!(U16, [512]));
        put(
            &mut obj,
            tags::SPACING_BETWEEN_SLICES,
            VR::DS,
            dicom_value!(F64, [3.0]),
        );
        let j = json_of(&obj, &[]);
        assert_eq!(
            serde_json::to_string(&j["00280030"]["Value"]).unwrap(),
            "[0.5,2,-2.5,0.001]"
        );
        // integers as JSON integers (the text, not only the value: `42`, not `42.0`)
        assert_eq!(j["00200011"]["vr"], "IS");
        assert_eq!(
            serde_json::to_string(&j["00200011"]["Value"]).unwrap(),
            "[42]"
        );
        // invalid DS: kept as text rather than dropped
        assert_eq!(j["00180050"]["Value"], serde_json::json!(["abc"]));
        assert_eq!(j["00280010"]["Value"], serde_json::json!([512]));
        assert_eq!(
            serde_json::to_string(&j["00180088"]["Value"]).unwrap(),
            "[3]"
        );
    }

    #[test]
    fn empty_values_have_no_value_key() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            tags::ACCESSION_NUMBER,
            VR::SH,
            PrimitiveValue::Empty,
        );
        put(&mut obj, tags::STUDY_ID, VR::SH, "  ".into());
        put(&mut obj, tags::PATIENT_NAME, VR::PN, PrimitiveValue::Empty);
        put(&mut obj, tags::PATIENT_WEIGHT, VR::DS, "".into());
        put(
            &mut obj,
            tags::IMAGE_TYPE,
            VR::CS,
            dicom_value!(Strs, ["ORIGINAL", "", "AXIAL "]),
        );
        obj.put(DataElement::new(
            tags::REFERENCED_STUDY_SEQUENCE,
            VR::SQ,
            DataSetSequence::<InMemDicomObject>::empty(),
        ));
        let j = json_of(&obj, &[]);
        for key in ["00080050", "00200010", "00100010", "00101030", "00081110"] {
            assert!(j[key].get("Value").is_none(), "{key}: {}", j[key]);
            assert!(j[key]["vr"].is_string(), "{key}");
        }
        assert_eq!(j["00081110"], serde_json::json!({"vr": "SQ"}));
        // an empty value inside a multi-valued element is null (PS3.18 F.2.5)
        assert_eq!(
            j["00080008"]["Value"],
            serde_json::json!(["ORIGINAL", null, "AXIAL"])
        );
    }

    #[test]
    fn binary_inline_up_to_the_threshold_then_bulk() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            Tag(0x0009, 0x1001),
            VR::OB,
            PrimitiveValue::U8(vec![1u8; 1024].into()),
        );
        put(
            &mut obj,
            Tag(0x0009, 0x1002),
            VR::OB,
            PrimitiveValue::U8(vec![1u8; 1025].into()),
        );
        put(
            &mut obj,
            Tag(0x0009, 0x1003),
            VR::OW,
            dicom_value!(U16, [0x0102, 0x0304]),
        );
        let j = json_of(&obj, &[]);
        let inline = j["00091001"]["InlineBinary"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(inline)
            .unwrap();
        assert_eq!(decoded, vec![1u8; 1024]);
        assert!(j["00091001"].get("BulkDataURI").is_none());
        assert_eq!(
            j["00091002"],
            serde_json::json!({"vr": "OB", "BulkDataURI": "dxhub-bulk:00091002"})
        );
        // OW inline in little endian
        assert_eq!(j["00091003"]["InlineBinary"], "AgEEAw==");

        let custom = JsonOptions {
            inline_binary_max: 16,
            bulk_prefix: "https://hub/bulk/1.2.3/".to_owned(),
        };
        let j = to_json(&obj, &[], &custom);
        assert_eq!(
            j["00091001"]["BulkDataURI"],
            "https://hub/bulk/1.2.3/00091001"
        );
        assert!(j["00091003"].get("InlineBinary").is_some());
    }

    fn item(elems: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
        InMemDicomObject::from_element_iter(elems)
    }

    #[test]
    fn nested_bulk_paths_name_sequence_item_and_tag() {
        let big = || PrimitiveValue::U8(vec![7u8; 2000].into());
        let inner = item(vec![DataElement::new(Tag(0x0029, 0x1010), VR::OB, big())]);
        let outer0 = item(vec![DataElement::new(
            tags::RADIONUCLIDE_TOTAL_DOSE,
            VR::DS,
            PrimitiveValue::from("370"),
        )]);
        let outer1 = item(vec![
            DataElement::new(Tag(0x0029, 0x1010), VR::OB, big()),
            DataElement::new(
                Tag(0x0029, 0x1020),
                VR::SQ,
                DataSetSequence::from(vec![inner]),
            ),
        ]);
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![outer0, outer1]),
        ));
        let j = json_of(&obj, &[]);
        let seq = &j["00540016"];
        assert_eq!(seq["vr"], "SQ");
        assert_eq!(
            seq["Value"][0]["00181074"]["Value"],
            serde_json::json!([370])
        );
        assert_eq!(
            seq["Value"][1]["00291010"]["BulkDataURI"],
            "dxhub-bulk:00540016.1.00291010"
        );
        assert_eq!(
            seq["Value"][1]["00291020"]["Value"][0]["00291010"]["BulkDataURI"],
            "dxhub-bulk:00540016.1.00291020.0.00291010"
        );
    }

    #[test]
    fn pixel_document_overlay_and_spectroscopy_data_are_always_bulk() {
        let small = || PrimitiveValue::U8(vec![0u8; 4].into());
        let mut obj = InMemDicomObject::new_empty();
        put(&mut obj, tags::ENCAPSULATED_DOCUMENT, VR::OB, small());
        put(
            &mut obj,
            Tag(0x5600, 0x0020),
            VR::OF,
            dicom_value!(F32, [1.0]),
        );
        put(
            &mut obj,
            Tag(0x6002, 0x3000),
            VR::OW,
            dicom_value!(U16, [1]),
        );
        put(
            &mut obj,
            tags::FLOAT_PIXEL_DATA,
            VR::OF,
            dicom_value!(F32, [1.0]),
        );
        put(
            &mut obj,
            tags::PIXEL_DATA,
            VR::OW,
            dicom_value!(U16, [1, 2]),
        );
        let j = json_of(&obj, &[]);
        for key in ["00420011", "56000020", "60023000", "7FE00008", "7FE00010"] {
            assert_eq!(
                j[key]["BulkDataURI"],
                format!("dxhub-bulk:{key}"),
                "{key}: {}",
                j[key]
            );
            assert!(j[key].get("InlineBinary").is_none());
        }
        assert_eq!(j["7FE00010"]["vr"], "OW");
    }

    #[test]
    fn encapsulated_pixel_data_is_bulk() {
        use dicom_core::value::PixelFragmentSequence;
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![vec![1u8, 2, 3, 4]]),
        ));
        let j = json_of(&obj, &[]);
        assert_eq!(
            j["7FE00010"],
            serde_json::json!({"vr": "OB", "BulkDataURI": "dxhub-bulk:7FE00010"})
        );
    }

    #[test]
    fn waveform_data_follows_the_bulk_rule() {
        const WAVEFORM_SEQUENCE: Tag = Tag(0x5400, 0x0100);
        const WAVEFORM_DATA: Tag = Tag(0x5400, 0x1010);
        let wave = |samples: usize| {
            item(vec![
                DataElement::new(
                    tags::WAVEFORM_BITS_ALLOCATED,
                    VR::US,
                    dicom_value!(U16, [16]),
                ),
                DataElement::new(
                    tags::CHANNEL_MINIMUM_VALUE,
                    VR::OW,
                    PrimitiveValue::U16(vec![0u16; 8].into()),
                ),
                DataElement::new(
                    WAVEFORM_DATA,
                    VR::OW,
                    PrimitiveValue::U16((0..samples as u16).collect::<Vec<_>>().into()),
                ),
            ])
        };
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            WAVEFORM_SEQUENCE,
            VR::SQ,
            // an ECG's samples (8000 bytes), and a short waveform (200 bytes)
            DataSetSequence::from(vec![wave(4000), wave(100)]),
        ));
        let j = json_of(&obj, &[]);
        let items = &j["54000100"]["Value"];
        assert_eq!(
            items[0]["54001010"],
            serde_json::json!({"vr": "OW", "BulkDataURI": "dxhub-bulk:54000100.0.54001010"})
        );
        let b = base64::engine::general_purpose::STANDARD
            .decode(items[1]["54001010"]["InlineBinary"].as_str().unwrap())
            .unwrap();
        let expected: Vec<u8> = (0..100u16).flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(b, expected);
        // small binary values of the item stay inline
        assert!(items[0]["54000110"]["InlineBinary"].is_string());
        assert_eq!(items[0]["54001004"]["Value"], serde_json::json!([16]));
    }

    #[test]
    fn at_values_are_ggggeeee() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            tags::FRAME_INCREMENT_POINTER,
            VR::AT,
            dicom_value!(Tags, [Tag(0x0018, 0x1063), Tag(0x0054, 0x0080)]),
        );
        let j = json_of(&obj, &[]);
        assert_eq!(
            j["00280009"],
            serde_json::json!({"vr": "AT", "Value": ["00181063", "00540080"]})
        );
    }

    #[test]
    fn group_length_omitted_private_tags_kept_text_trimmed() {
        let mut obj = InMemDicomObject::new_empty();
        put(
            &mut obj,
            Tag(0x0008, 0x0000),
            VR::UL,
            dicom_value!(U32, [100]),
        );
        put(&mut obj, Tag(0x0029, 0x0010), VR::LO, "ACME 1.0 ".into());
        put(&mut obj, Tag(0x0029, 0x1001), VR::SH, "x".into());
        put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3\0".into());
        put(&mut obj, Tag(0x0032, 0x4000), VR::LT, "a\\b  ".into());
        let j = json_of(&obj, &[]);
        assert!(!j.contains_key("00080000"));
        assert_eq!(
            j["00290010"],
            serde_json::json!({"vr": "LO", "Value": ["ACME 1.0"]})
        );
        assert_eq!(
            j["00291001"],
            serde_json::json!({"vr": "SH", "Value": ["x"]})
        );
        assert_eq!(j["00080018"]["Value"], serde_json::json!(["1.2.3"]));
        assert_eq!(j["00324000"]["Value"], serde_json::json!(["a\\b"]));
    }

    #[test]
    fn file_to_json_rejects_non_dicom() {
        assert!(matches!(
            file_to_json(b"not dicom at all", &opts()),
            Err(JsonError::Parse(_))
        ));
    }

    #[test]
    fn query_levels() {
        for t in [
            tags::PATIENT_NAME,
            tags::PATIENT_ID,
            tags::PATIENT_BIRTH_DATE,
            tags::PATIENT_SEX,
            tags::PATIENT_AGE,
            tags::PATIENT_SIZE,
            tags::PATIENT_WEIGHT,
            tags::STUDY_DATE,
            tags::STUDY_TIME,
            tags::ACCESSION_NUMBER,
            tags::REFERRING_PHYSICIAN_NAME,
            tags::STUDY_DESCRIPTION,
            tags::STUDY_INSTANCE_UID,
            tags::STUDY_ID,
            tags::REQUESTING_PHYSICIAN,
            tags::NAME_OF_PHYSICIANS_READING_STUDY,
            tags::MODALITIES_IN_STUDY,
        ] {
            assert_eq!(query_level(t), QueryLevel::Study, "{t}");
        }
        for t in [
            tags::MODALITY,
            tags::SERIES_INSTANCE_UID,
            tags::SERIES_NUMBER,
            tags::SERIES_DESCRIPTION,
            tags::SERIES_DATE,
            tags::SERIES_TIME,
            tags::BODY_PART_EXAMINED,
            tags::FRAME_OF_REFERENCE_UID,
            tags::MANUFACTURER,
            tags::MANUFACTURER_MODEL_NAME,
            tags::PERFORMED_PROCEDURE_STEP_START_DATE,
            tags::PERFORMED_PROCEDURE_STEP_START_TIME,
            tags::PERFORMED_PROCEDURE_STEP_DESCRIPTION,
        ] {
            assert_eq!(query_level(t), QueryLevel::Series, "{t}");
        }
        for t in [
            tags::SOP_INSTANCE_UID,
            tags::SOP_CLASS_UID,
            tags::INSTANCE_NUMBER,
            tags::ROWS,
            tags::NUMBER_OF_FRAMES,
            tags::PIXEL_DATA,
            Tag(0x0029, 0x1010),
        ] {
            assert_eq!(query_level(t), QueryLevel::Instance, "{t}");
        }
    }
}
