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
//! encapsulated documents, overlay and spectroscopy data are always bulk; everything inside
//! the Waveform Sequence is always inline (viewers read ECG samples from the metadata).

use crate::charset::repair_text;
use base64::Engine as _;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_core::header::Header;
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

const WAVEFORM_SEQUENCE: Tag = Tag(0x5400, 0x0100);
const WAVEFORM_DATA: Tag = Tag(0x5400, 0x1010);
const SPECTROSCOPY_DATA: Tag = Tag(0x5600, 0x0020);

/// Elements whose value is always a BulkDataURI, whatever their length.
fn always_bulk(tag: Tag) -> bool {
    tag == tags::PIXEL_DATA
        || tag == tags::FLOAT_PIXEL_DATA
        || tag == tags::DOUBLE_FLOAT_PIXEL_DATA
        || tag == tags::ENCAPSULATED_DOCUMENT
        || tag == SPECTROSCOPY_DATA
        || ((0x6000..=0x60FF).contains(&tag.group())
            && tag.group() % 2 == 0
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
    dataset(obj, charsets, &Ctx { opts }, "", false)
}

/// Open a Part 10 file (with or without preamble) from its bytes and return the JSON of its
/// data set (the file meta group is not part of it); the character set comes from (0008,0005).
pub fn file_to_json(bytes: &[u8], opts: &JsonOptions) -> Result<Map<String, Value>, JsonError> {
    let obj = OpenFileOptions::new()
        .from_reader(bytes)
        .map_err(JsonError::Parse)?;
    let charsets = charsets_of(&obj).unwrap_or_default();
    Ok(to_json(&obj, &charsets, opts))
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
    in_waveform: bool,
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
            DicomValue::Sequence(seq) => {
                let waveform = in_waveform || tag == WAVEFORM_SEQUENCE;
                let items: Vec<Value> = seq
                    .items()
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let own = charsets_of(item);
                        let cs = own.as_deref().unwrap_or(charsets);
                        Value::Object(dataset(item, cs, ctx, &format!("{path}.{i}"), waveform))
                    })
                    .collect();
                element(VR::SQ, (!items.is_empty()).then_some(Body::Value(items)))
            }
            DicomValue::PixelSequence(_) => element(e.vr(), Some(Body::Bulk(bulk_uri(ctx, &path)))),
            DicomValue::Primitive(v) => {
                primitive(tag, e.vr(), v, charsets, ctx, &path, in_waveform)
            }
        };
        out.insert(key, json);
    }
    out
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
    in_waveform: bool,
) -> Value {
    // a standard attribute sent as UN: decode it with its dictionary VR
    if vr == VR::UN && tag.group() % 2 == 0 {
        if let Some(dict_vr) = dictionary_vr(tag) {
            if dict_vr == VR::SQ {
                // a sequence sent as UN is encoded in Implicit VR Little Endian (PS3.5 6.2.2)
                if let Some(seq) = un_sequence(tag, &le_bytes(v), charsets) {
                    let items: Vec<Value> = seq
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let own = charsets_of(item);
                            let cs = own.as_deref().unwrap_or(charsets);
                            let waveform = in_waveform || tag == WAVEFORM_SEQUENCE;
                            Value::Object(dataset(item, cs, ctx, &format!("{path}.{i}"), waveform))
                        })
                        .collect();
                    return element(VR::SQ, (!items.is_empty()).then_some(Body::Value(items)));
                }
            }
            if dict_vr != VR::UN && dict_vr != VR::SQ && !is_binary_vr(dict_vr) {
                let bytes = le_bytes(v);
                let decoded = decode_un(&bytes, dict_vr, charsets);
                return primitive(tag, dict_vr, &decoded, charsets, ctx, path, in_waveform);
            }
            if is_binary_vr(dict_vr) {
                return primitive(tag, dict_vr, v, charsets, ctx, path, in_waveform);
            }
        }
    }

    if is_binary_vr(vr) || always_bulk(tag) {
        let bytes = le_bytes(v);
        if bytes.is_empty() {
            return element(vr, None);
        }
        let inline = !always_bulk(tag)
            && (in_waveform || tag == WAVEFORM_DATA || bytes.len() <= ctx.opts.inline_binary_max);
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
            _ => strings(v, vr, charsets).into_iter().map(text_or_null).collect(),
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
    Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
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
