//! DICOM JSON (PS3.18 Annex F) back into a data set: the inverse of [`crate::json::to_json`],
//! for STOW-RS `multipart/related; type="application/dicom+json"` (PS3.18 10.5.1.2.2), where
//! the first part is a JSON array of data sets and further parts carry the bulk data named by
//! each `BulkDataURI` (the part's `Content-Location`).
//!
//! - Every VR is accepted. DS and IS JSON numbers become their decimal text (the shortest
//!   text that reads back as the same number, at most 16 characters for DS); AT values are
//!   `GGGGEEEE`; PN objects become `Alphabetic=Ideographic=Phonetic` (trailing empty groups
//!   dropped); `null` inside a multi-valued element is an empty value (PS3.18 F.2.5); an
//!   element without `Value`, `InlineBinary` or `BulkDataURI` is empty.
//! - Binary values (InlineBinary, or the bulk part returned by the caller's `bulk(uri)`) are
//!   little-endian bytes, as PS3.18 and [`crate::json`] define them; OW/OF/OD/OL/OV become
//!   typed values so that any transfer syntax (Big Endian included) writes them correctly.
//! - JSON text is Unicode: when any text of a character-set-dependent VR (SH, LO, ST, LT,
//!   UT, UC, PN) is not ASCII, Specific Character Set (0008,0005) is set to `ISO_IR 192` at
//!   the top level and in every item that has its own, so dicom-rs encodes the text as UTF-8.
//!   Non-ASCII text in a default-repertoire VR (AE, AS, CS, DA, DS, DT, IS, TM, UI) is refused.
//! - File meta group elements (0002,xxxx) and group lengths (gggg,0000) in the JSON are
//!   ignored: the file meta group is built by [`part10_from_json`].

use base64::Engine as _;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use serde_json::{Map, Value};
use std::str::FromStr;

use crate::meta::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

const UTF8: &str = "ISO_IR 192";

#[derive(Debug, thiserror::Error)]
pub enum FromJsonError {
    #[error("a DICOM JSON data set must be a JSON object")]
    NotAnObject,
    #[error("bad attribute tag {0:?} (expected 8 hexadecimal digits)")]
    BadTag(String),
    #[error("{tag}: bad or missing VR {vr:?}")]
    BadVr { tag: String, vr: String },
    #[error("{tag}: {msg}")]
    BadValue { tag: String, msg: String },
    #[error("no bulk data part for BulkDataURI {0:?}")]
    MissingBulk(String),
    #[error("the data set has no {0}")]
    MissingUid(&'static str),
    #[error("unknown transfer syntax {0:?}")]
    UnknownTransferSyntax(String),
    #[error("cannot build the file meta group: {0}")]
    Meta(#[source] Box<dicom_object::meta::Error>),
    #[error("cannot write the DICOM file: {0}")]
    Write(#[source] Box<dicom_object::WriteError>),
}

type Result<T, E = FromJsonError> = std::result::Result<T, E>;

/// A data set from its DICOM JSON object; `bulk(uri)` returns the bytes of a BulkDataURI part
/// (`None` → [`FromJsonError::MissingBulk`]).
pub fn from_json(
    obj: &Map<String, Value>,
    bulk: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
) -> Result<InMemDicomObject> {
    let mut non_ascii = false;
    let mut ds = dataset(obj, bulk, &mut non_ascii, true)?;
    if non_ascii {
        ds.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from(UTF8),
        ));
        utf8_items(&mut ds);
    }
    Ok(ds)
}

/// A complete Part 10 file (bytes) for STOW: the data set from JSON plus a file meta group
/// (Media Storage SOP Class/Instance from (0008,0016)/(0008,0018) and the given transfer
/// syntax). For an encapsulated transfer syntax, Pixel Data from `bulk` becomes a single
/// fragment after an empty Basic Offset Table: right for one frame; a multi-frame image
/// needs [`part10_from_json_with_frames`] (PS3.5 A.4: frames never share a fragment).
pub fn part10_from_json(
    obj: &Map<String, Value>,
    transfer_syntax_uid: &str,
    bulk: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
) -> Result<Vec<u8>> {
    part10_from_json_with_frames(obj, transfer_syntax_uid, bulk, None)
}

/// [`part10_from_json`], where `encapsulated_frames` gives the byte length of each frame in
/// the Pixel Data bulk part of an encapsulated transfer syntax: each frame becomes one
/// fragment (the lengths must add up to the part's length). Ignored for native syntaxes.
pub fn part10_from_json_with_frames(
    obj: &Map<String, Value>,
    transfer_syntax_uid: &str,
    bulk: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
    encapsulated_frames: Option<&[usize]>,
) -> Result<Vec<u8>> {
    let ts_uid = transfer_syntax_uid.trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| FromJsonError::UnknownTransferSyntax(ts_uid.to_owned()))?;
    let mut ds = from_json(obj, bulk)?;
    let uid = |ds: &InMemDicomObject, tag: Tag, name: &'static str| -> Result<String> {
        ds.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(FromJsonError::MissingUid(name))
    };
    let sop_class_uid = uid(&ds, tags::SOP_CLASS_UID, "SOP Class UID (0008,0016)")?;
    let sop_instance_uid = uid(&ds, tags::SOP_INSTANCE_UID, "SOP Instance UID (0008,0018)")?;

    if ts.is_encapsulated_pixel_data() {
        encapsulate_pixel_data(&mut ds, encapsulated_frames)?;
    }

    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(ts_uid)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| FromJsonError::Meta(Box::new(e)))?;
    let file = ds.with_exact_meta(meta);
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| FromJsonError::Write(Box::new(e)))?;
    Ok(out)
}

/// Replace a native Pixel Data value by an encapsulated one: an empty Basic Offset Table and
/// one fragment per frame (or a single fragment when the frames are not known).
fn encapsulate_pixel_data(ds: &mut InMemDicomObject, frames: Option<&[usize]>) -> Result<()> {
    let Some(e) = ds.get(tags::PIXEL_DATA) else {
        return Ok(());
    };
    let Some(v) = e.value().primitive() else {
        return Ok(()); // already a fragment sequence
    };
    let bytes = le_bytes(v);
    let bad = |msg: String| FromJsonError::BadValue {
        tag: "7FE00010".to_owned(),
        msg,
    };
    let fragments: Vec<Vec<u8>> = match frames {
        Some(lengths) => {
            let total: usize = lengths.iter().sum();
            if total != bytes.len() {
                return Err(bad(format!(
                    "the frame lengths add up to {total} bytes, the Pixel Data part has {}",
                    bytes.len()
                )));
            }
            let mut rest = &bytes[..];
            lengths
                .iter()
                .map(|&n| {
                    let (frame, tail) = rest.split_at(n);
                    rest = tail;
                    padded(frame.to_vec())
                })
                .collect()
        }
        None => vec![padded(bytes)],
    };
    if fragments.iter().any(Vec::is_empty) {
        return Err(bad("an encapsulated frame is empty".to_owned()));
    }
    ds.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PixelFragmentSequence::new(Vec::<u32>::new(), fragments),
    ));
    Ok(())
}

/// Fragments have an even length (PS3.5 A.4); a trailing zero pads an odd one.
fn padded(mut b: Vec<u8>) -> Vec<u8> {
    if !b.len().is_multiple_of(2) {
        b.push(0);
    }
    b
}

/// Set (0008,0005) to UTF-8 in every item that has its own: dicom-rs's writer switches its
/// text codec at each (0008,0005) it meets, so all of them must agree.
fn utf8_items(ds: &mut InMemDicomObject) {
    let seq_tags: Vec<Tag> = ds
        .iter()
        .filter(|e| e.value().items().is_some())
        .map(|e| e.header().tag)
        .collect();
    for tag in seq_tags {
        ds.update_value(tag, |v| {
            if let Some(items) = v.items_mut() {
                for item in items.iter_mut() {
                    if item.get(tags::SPECIFIC_CHARACTER_SET).is_some() {
                        item.put(DataElement::new(
                            tags::SPECIFIC_CHARACTER_SET,
                            VR::CS,
                            PrimitiveValue::from(UTF8),
                        ));
                    }
                    utf8_items(item);
                }
            }
        });
    }
}

fn parse_tag(key: &str) -> Result<Tag> {
    if key.len() != 8 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FromJsonError::BadTag(key.to_owned()));
    }
    let g =
        u16::from_str_radix(&key[..4], 16).map_err(|_| FromJsonError::BadTag(key.to_owned()))?;
    let e =
        u16::from_str_radix(&key[4..], 16).map_err(|_| FromJsonError::BadTag(key.to_owned()))?;
    Ok(Tag(g, e))
}

/// The VR of a standard attribute from the dictionary (for JSON that omits `vr`).
fn dictionary_vr(tag: Tag) -> Option<VR> {
    if tag.group() & 1 == 1 {
        return None;
    }
    let entry = StandardDataDictionary.by_tag(tag)?;
    Some(match entry.vr() {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => VR::US,
        VirtualVr::Ox | VirtualVr::Px => VR::OW,
        _ => return None,
    })
}

fn dataset(
    obj: &Map<String, Value>,
    bulk: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
    non_ascii: &mut bool,
    top: bool,
) -> Result<InMemDicomObject> {
    let mut ds = InMemDicomObject::new_empty();
    for (key, elem) in obj {
        let tag = parse_tag(key)?;
        if tag.element() == 0x0000 || (top && tag.group() == 0x0002) {
            continue;
        }
        let elem = elem.as_object().ok_or_else(|| FromJsonError::BadValue {
            tag: key.clone(),
            msg: "an attribute must be a JSON object".to_owned(),
        })?;
        ds.put(element(key, tag, elem, bulk, non_ascii)?);
    }
    Ok(ds)
}

fn element(
    key: &str,
    tag: Tag,
    elem: &Map<String, Value>,
    bulk: &mut dyn FnMut(&str) -> Option<Vec<u8>>,
    non_ascii: &mut bool,
) -> Result<DataElement<InMemDicomObject>> {
    let vr = match elem.get("vr") {
        Some(Value::String(s)) => VR::from_str(s).map_err(|_| FromJsonError::BadVr {
            tag: key.to_owned(),
            vr: s.clone(),
        })?,
        None => dictionary_vr(tag).ok_or_else(|| FromJsonError::BadVr {
            tag: key.to_owned(),
            vr: String::new(),
        })?,
        Some(other) => {
            return Err(FromJsonError::BadVr {
                tag: key.to_owned(),
                vr: other.to_string(),
            });
        }
    };
    let bad = |msg: String| FromJsonError::BadValue {
        tag: key.to_owned(),
        msg,
    };

    if vr == VR::SQ {
        let items = match elem.get("Value") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(m) => dataset(m, bulk, non_ascii, false),
                    _ => Err(bad("a sequence item must be a JSON object".to_owned())),
                })
                .collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(bad("Value must be an array".to_owned())),
        };
        return Ok(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
    }

    // binary: InlineBinary or BulkDataURI, little-endian bytes
    let binary = if let Some(b64) = elem.get("InlineBinary") {
        let s = b64
            .as_str()
            .ok_or_else(|| bad("InlineBinary must be a string".to_owned()))?;
        let cleaned: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        Some(
            base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|e| bad(format!("InlineBinary is not base64: {e}")))?,
        )
    } else if let Some(uri) = elem.get("BulkDataURI") {
        let uri = uri
            .as_str()
            .ok_or_else(|| bad("BulkDataURI must be a string".to_owned()))?;
        Some(bulk(uri).ok_or_else(|| FromJsonError::MissingBulk(uri.to_owned()))?)
    } else {
        None
    };
    if let Some(bytes) = binary {
        return Ok(DataElement::new(tag, vr, binary_value(vr, bytes)));
    }

    let values: &[Value] = match elem.get("Value") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(v)) => v,
        Some(_) => return Err(bad("Value must be an array".to_owned())),
    };
    if values.is_empty() {
        return Ok(DataElement::new(tag, vr, PrimitiveValue::Empty));
    }
    let value = match vr {
        VR::AT => PrimitiveValue::Tags(
            values
                .iter()
                .map(|v| match v {
                    Value::String(s) => {
                        parse_tag(s).map_err(|_| bad("AT: a string that is not a tag".to_owned()))
                    }
                    other => Err(bad(format!("AT: {}", kind(other)))),
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        VR::US => PrimitiveValue::U16(ints(values, &bad)?.into()),
        VR::SS => PrimitiveValue::I16(ints(values, &bad)?.into()),
        VR::UL => PrimitiveValue::U32(ints(values, &bad)?.into()),
        VR::SL => PrimitiveValue::I32(ints(values, &bad)?.into()),
        VR::UV => PrimitiveValue::U64(ints(values, &bad)?.into()),
        VR::SV => PrimitiveValue::I64(ints(values, &bad)?.into()),
        VR::FL => {
            #[allow(clippy::cast_possible_truncation)]
            let f: Vec<f32> = floats(values, &bad)?
                .into_iter()
                .map(|f| f as f32)
                .collect();
            PrimitiveValue::F32(f.into())
        }
        VR::FD => PrimitiveValue::F64(floats(values, &bad)?.into()),
        VR::DS | VR::IS => PrimitiveValue::Strs(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(String::new()),
                    Value::Number(n) => Ok(number_text(n, vr == VR::DS)),
                    Value::String(s) if s.is_ascii() => Ok(s.clone()),
                    other => Err(bad(format!("{vr}: {}", kind(other)))),
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        VR::PN => PrimitiveValue::Strs(
            values
                .iter()
                .map(|v| {
                    person_name(v)
                        .ok_or_else(|| bad(format!("PN: {} that is not a person name", kind(v))))
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            return Err(bad(format!(
                "{vr} needs InlineBinary or BulkDataURI, not Value"
            )));
        }
        _ => PrimitiveValue::Strs(
            values
                .iter()
                .map(|v| match v {
                    Value::Null => Ok(String::new()),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad(format!("{vr}: {}", kind(other)))),
                })
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
    };
    if let PrimitiveValue::Strs(ss) = &value
        && ss.iter().any(|s| !s.is_ascii())
    {
        if !is_charset_text_vr(vr) {
            return Err(bad(format!(
                "{vr} allows only the default character repertoire"
            )));
        }
        *non_ascii = true;
    }
    Ok(DataElement::new(tag, vr, value))
}

/// VRs whose text is in the data set's character set (PS3.5 6.1.2.3).
fn is_charset_text_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::PN | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC
    )
}

/// A PN value: an object of groups, a plain string, or null (empty).
fn person_name(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => {
            let mut groups = Vec::with_capacity(3);
            for g in ["Alphabetic", "Ideographic", "Phonetic"] {
                match m.get(g) {
                    None | Some(Value::Null) => groups.push(""),
                    Some(Value::String(s)) => groups.push(s.as_str()),
                    Some(_) => return None,
                }
            }
            while groups.last() == Some(&"") {
                groups.pop();
            }
            Some(groups.join("="))
        }
        _ => None,
    }
}

/// The text of a DS or IS JSON number. Integers print as integers; other numbers as the
/// shortest text that reads back as the same f64, shortened further if a DS would exceed
/// its 16 characters.
fn number_text(n: &serde_json::Number, ds: bool) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !ds && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation)]
        return (f as i64).to_string(); // an IS written as 3.0
    }
    let s = n.to_string();
    if !ds || s.len() <= 16 {
        return s;
    }
    // fewer significant digits until it fits
    for digits in (1..=16usize).rev() {
        let t = format!("{:.*e}", digits - 1, f);
        let t = compact_exponent(&t);
        if t.len() <= 16 {
            return t;
        }
    }
    s
}

/// `1.5e-7` stays, `1.50000e7` loses its trailing zeros: `1.5e7`.
fn compact_exponent(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let m = if m.contains('.') {
                m.trim_end_matches('0').trim_end_matches('.')
            } else {
                m
            };
            format!("{m}e{e}")
        }
        None => s.to_owned(),
    }
}

fn ints<T>(values: &[Value], bad: &dyn Fn(String) -> FromJsonError) -> Result<Vec<T>>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    values
        .iter()
        .map(|v| {
            let out = match v {
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        T::try_from(i).ok()
                    } else if let Some(u) = n.as_u64() {
                        T::try_from(u).ok()
                    } else {
                        n.as_f64().filter(|f| f.fract() == 0.0).and_then(|f| {
                            #[allow(clippy::cast_possible_truncation)]
                            T::try_from(f as i64).ok()
                        })
                    }
                }
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .and_then(|i| T::try_from(i).ok()),
                _ => None,
            };
            out.ok_or_else(|| bad(format!("{} that is not an integer in range", kind(v))))
        })
        .collect()
}

/// FL/FD values; `null` (how [`crate::json`] writes a NaN) reads back as NaN.
fn floats(values: &[Value], bad: &dyn Fn(String) -> FromJsonError) -> Result<Vec<f64>> {
    values
        .iter()
        .map(|v| match v {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| bad("a number out of range".to_owned())),
            Value::Null => Ok(f64::NAN),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| bad("a string that is not a number".to_owned())),
            other => Err(bad(format!("{} where a number belongs", kind(other)))),
        })
        .collect()
}

/// Little-endian bytes as the value of a binary VR; typed where the length allows.
fn binary_value(vr: VR, bytes: Vec<u8>) -> PrimitiveValue {
    fn chunks<const N: usize, T>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
        b.chunks_exact(N)
            .filter_map(|c| <[u8; N]>::try_from(c).ok())
            .map(f)
            .collect()
    }
    if bytes.is_empty() {
        return PrimitiveValue::Empty;
    }
    let n = bytes.len();
    match vr {
        VR::OW if n.is_multiple_of(2) => {
            PrimitiveValue::U16(chunks(&bytes, u16::from_le_bytes).into())
        }
        VR::OF if n.is_multiple_of(4) => {
            PrimitiveValue::F32(chunks(&bytes, f32::from_le_bytes).into())
        }
        VR::OL if n.is_multiple_of(4) => {
            PrimitiveValue::U32(chunks(&bytes, u32::from_le_bytes).into())
        }
        VR::OD if n.is_multiple_of(8) => {
            PrimitiveValue::F64(chunks(&bytes, f64::from_le_bytes).into())
        }
        VR::OV if n.is_multiple_of(8) => {
            PrimitiveValue::U64(chunks(&bytes, u64::from_le_bytes).into())
        }
        _ => PrimitiveValue::U8(bytes.into()),
    }
}

/// The bytes of a primitive value, numbers in little endian.
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
        other => other.to_bytes().into_owned(),
    }
}

/// The data sets of a STOW-RS metadata part: a JSON array of DICOM JSON objects (a single
/// object is accepted as an array of one).
pub fn datasets(metadata: &Value) -> Result<Vec<&Map<String, Value>>> {
    match metadata {
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_object().ok_or(FromJsonError::NotAnObject))
            .collect(),
        Value::Object(m) => Ok(vec![m]),
        _ => Err(FromJsonError::NotAnObject),
    }
}

/// What a JSON value is, for an error message: never the value itself (it may be a
/// patient's name or ID, and errors are logged).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{JsonOptions, file_to_json};
    use dicom_core::value::Value as DicomValue;
    use dicom_object::OpenFileOptions;
    use serde_json::json;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// A data set with SOP Class/Instance plus `extra`.
    fn with_uids(extra: Value) -> Map<String, Value> {
        let mut m = obj(json!({
            "00080016": {"vr": "UI", "Value": [CT]},
            "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        }));
        m.extend(obj(extra));
        m
    }

    fn no_bulk(_: &str) -> Option<Vec<u8>> {
        None
    }

    fn strs(ds: &InMemDicomObject, tag: Tag) -> Vec<String> {
        ds.get(tag)
            .unwrap()
            .to_multi_str()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    /// JSON → Part 10 → JSON of the produced file.
    fn round_trip(m: &Map<String, Value>) -> (Vec<u8>, Map<String, Value>) {
        let file = part10_from_json(m, EXPLICIT_LE, &mut no_bulk).unwrap();
        let j = file_to_json(&file, &JsonOptions::default()).unwrap();
        (file, j)
    }

    #[test]
    fn chinese_person_name_groups_round_trip_as_utf8() {
        let pn = json!({"Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東", "Phonetic": "おう^しょうとう"});
        let m = with_uids(json!({
            "00080005": {"vr": "CS", "Value": ["GB18030"]},
            "00100010": {"vr": "PN", "Value": [pn.clone()]},
            "00081030": {"vr": "LO", "Value": ["胸部 CT"]},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert_eq!(
            strs(&ds, tags::PATIENT_NAME),
            ["Wang^XiaoDong=王^小東=おう^しょうとう"]
        );
        assert_eq!(strs(&ds, tags::SPECIFIC_CHARACTER_SET), [UTF8]);

        let (file, j) = round_trip(&m);
        // the text is in the file as UTF-8, not GB18030
        let utf8 = "Wang^XiaoDong=王^小東=おう^しょうとう".as_bytes();
        assert!(file.windows(utf8.len()).any(|w| w == utf8));
        assert_eq!(j["00080005"], json!({"vr": "CS", "Value": ["ISO_IR 192"]}));
        assert_eq!(j["00100010"], json!({"vr": "PN", "Value": [pn]}));
        assert_eq!(j["00081030"]["Value"], json!(["胸部 CT"]));
    }

    #[test]
    fn ascii_text_keeps_its_character_set_and_pn_groups_join() {
        let m = with_uids(json!({
            "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}, {"Ideographic": "X"}, null]},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert_eq!(strs(&ds, tags::SPECIFIC_CHARACTER_SET), ["ISO_IR 100"]);
        assert_eq!(strs(&ds, tags::PATIENT_NAME), ["Doe^John", "=X", ""]);
        // no (0008,0005) and no non-ASCII text: none is added
        let ds = from_json(&with_uids(json!({})), &mut no_bulk).unwrap();
        assert!(ds.get(tags::SPECIFIC_CHARACTER_SET).is_none());
    }

    #[test]
    fn item_character_sets_follow_the_top_level() {
        let m = with_uids(json!({
            "00081110": {"vr": "SQ", "Value": [{
                "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
                "00081150": {"vr": "UI", "Value": ["1.2"]},
            }]},
            "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller"}]},
        }));
        let (_, j) = round_trip(&m);
        assert_eq!(j["00080005"]["Value"], json!(["ISO_IR 192"]));
        assert_eq!(
            j["00081110"]["Value"][0]["00080005"]["Value"],
            json!(["ISO_IR 192"])
        );
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "Müller");
    }

    #[test]
    fn ds_and_is_numbers_become_decimal_text() {
        let m = with_uids(json!({
            "00280030": {"vr": "DS", "Value": [0.5, 2, -2.5, 0.001, 1e-10]},
            "00180088": {"vr": "DS", "Value": [0.30000000000000004, "abc"]},
            "00200013": {"vr": "IS", "Value": [42, -7, null, 3.0]},
            "00280010": {"vr": "US", "Value": [512]},
            "00189089": {"vr": "FD", "Value": [0.25, -1, null]},
            "00189219": {"vr": "SS", "Value": [-3]},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert_eq!(
            strs(&ds, tags::PIXEL_SPACING),
            ["0.5", "2", "-2.5", "0.001", "1e-10"]
        );
        let long = strs(&ds, tags::SPACING_BETWEEN_SLICES);
        assert!(long[0].len() <= 16, "{long:?}");
        assert!((long[0].parse::<f64>().unwrap() - 0.3).abs() < 1e-14);
        assert_eq!(long[1], "abc");
        assert_eq!(strs(&ds, tags::INSTANCE_NUMBER), ["42", "-7", "", "3"]);
        assert_eq!(
            ds.get(tags::ROWS).unwrap().value().primitive(),
            Some(&PrimitiveValue::U16(vec![512].into()))
        );
        let fd = ds
            .get(Tag(0x0018, 0x9089))
            .unwrap()
            .to_multi_float64()
            .unwrap();
        assert_eq!(fd[..2], [0.25, -1.0]);
        assert!(fd[2].is_nan());
        let (_, j) = round_trip(&m);
        assert_eq!(
            serde_json::to_string(&j["00280030"]["Value"]).unwrap(),
            "[0.5,2,-2.5,0.001,1e-10]"
        );
        assert_eq!(j["00200013"]["Value"], json!([42, -7, null, 3]));
        assert_eq!(j["00189219"]["Value"], json!([-3]));
    }

    #[test]
    fn at_values_are_tags() {
        let m = with_uids(json!({
            "00280009": {"vr": "AT", "Value": ["00181063", "00540080"]},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert_eq!(
            ds.get(tags::FRAME_INCREMENT_POINTER)
                .unwrap()
                .value()
                .primitive(),
            Some(&PrimitiveValue::Tags(
                [Tag(0x0018, 0x1063), Tag(0x0054, 0x0080)].into()
            ))
        );
        let (_, j) = round_trip(&m);
        assert_eq!(j["00280009"], m["00280009"]);
        let bad = with_uids(json!({"00280009": {"vr": "AT", "Value": ["0018106"]}}));
        assert!(matches!(
            from_json(&bad, &mut no_bulk),
            Err(FromJsonError::BadValue { tag, .. }) if tag == "00280009"
        ));
    }

    #[test]
    fn empty_elements_and_null_values() {
        let m = with_uids(json!({
            "00080050": {"vr": "SH"},
            "00100030": {"vr": "DA", "Value": []},
            "00081110": {"vr": "SQ"},
            "00080008": {"vr": "CS", "Value": ["ORIGINAL", null, "AXIAL"]},
            "00091001": {"vr": "OB"},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert!(
            ds.get(tags::ACCESSION_NUMBER).unwrap().value().primitive()
                == Some(&PrimitiveValue::Empty)
        );
        assert_eq!(
            ds.get(tags::REFERENCED_STUDY_SEQUENCE)
                .unwrap()
                .value()
                .items()
                .map(<[_]>::len),
            Some(0)
        );
        assert_eq!(strs(&ds, tags::IMAGE_TYPE), ["ORIGINAL", "", "AXIAL"]);
        let (_, j) = round_trip(&m);
        for key in ["00080050", "00100030", "00081110", "00091001"] {
            assert!(j[key].get("Value").is_none(), "{key}: {}", j[key]);
            assert_eq!(j[key]["vr"], m[key]["vr"], "{key}");
        }
        assert_eq!(j["00080008"]["Value"], json!(["ORIGINAL", null, "AXIAL"]));
    }

    #[test]
    fn nested_sequences_round_trip() {
        let m = with_uids(json!({
            "00540016": {"vr": "SQ", "Value": [
                {"00181074": {"vr": "DS", "Value": [370]}},
                {
                    "00291010": {"vr": "OB", "InlineBinary": "AQIDBA=="},
                    "00540300": {"vr": "SQ", "Value": [{
                        "00080100": {"vr": "SH", "Value": ["C-111A1"]},
                        "00080104": {"vr": "LO", "Value": ["^18^Fluorine"]},
                    }]},
                },
                {}
            ]},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        let items = ds
            .get(tags::RADIOPHARMACEUTICAL_INFORMATION_SEQUENCE)
            .unwrap()
            .value()
            .items()
            .unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(strs(&items[0], tags::RADIONUCLIDE_TOTAL_DOSE), ["370"]);
        let (_, j) = round_trip(&m);
        assert_eq!(j["00540016"], m["00540016"]);
    }

    #[test]
    fn inline_binary_is_little_endian() {
        let m = with_uids(json!({
            "00091003": {"vr": "OW", "InlineBinary": "AgEEAw=="},
            "00091004": {"vr": "OB", "InlineBinary": "AQIDBA=="},
            "00091007": {"vr": "OB", "InlineBinary": "AQID"},
            "00091005": {"vr": "OF", "InlineBinary": "AACAPw=="},
            "00091006": {"vr": "UN", "InlineBinary": "YWI="},
        }));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        let p = |t| ds.get(t).unwrap().value().primitive().unwrap().clone();
        assert_eq!(
            p(Tag(0x0009, 0x1003)),
            PrimitiveValue::U16(vec![0x0102, 0x0304].into())
        );
        assert_eq!(
            p(Tag(0x0009, 0x1004)),
            PrimitiveValue::U8(vec![1, 2, 3, 4].into())
        );
        assert_eq!(
            p(Tag(0x0009, 0x1005)),
            PrimitiveValue::F32(vec![1.0].into())
        );
        assert_eq!(
            p(Tag(0x0009, 0x1006)),
            PrimitiveValue::U8(b"ab".to_vec().into())
        );
        // the same bytes in a Big Endian file
        let file = part10_from_json(&m, "1.2.840.10008.1.2.2", &mut no_bulk).unwrap();
        let j = file_to_json(&file, &JsonOptions::default()).unwrap();
        for key in ["00091003", "00091004", "00091005", "00091006"] {
            assert_eq!(j[key], m[key], "{key}");
        }
        // an odd length is padded to an even one in the file (PS3.5 7.1.1)
        assert_eq!(
            j["00091007"],
            json!({"vr": "OB", "InlineBinary": "AQIDAA=="})
        );
        let bad = with_uids(json!({"00091004": {"vr": "OB", "InlineBinary": "!!"}}));
        assert!(matches!(
            from_json(&bad, &mut no_bulk),
            Err(FromJsonError::BadValue { .. })
        ));
    }

    #[test]
    fn bulk_data_uri_is_served_by_the_caller_or_missing() {
        let m = with_uids(json!({
            "7FE00010": {"vr": "OW", "BulkDataURI": "http://h/bulk/px"},
        }));
        let mut asked = Vec::new();
        let ds = from_json(&m, &mut |uri: &str| {
            asked.push(uri.to_owned());
            Some(vec![1, 0, 2, 0])
        })
        .unwrap();
        assert_eq!(asked, ["http://h/bulk/px"]);
        assert_eq!(
            ds.get(tags::PIXEL_DATA).unwrap().value().primitive(),
            Some(&PrimitiveValue::U16(vec![1, 2].into()))
        );
        match from_json(&m, &mut no_bulk) {
            Err(FromJsonError::MissingBulk(uri)) => assert_eq!(uri, "http://h/bulk/px"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_tags_vrs_and_values_are_refused() {
        for key in ["0010001G", "001000100", "0010", "(0010,0010)"] {
            let m = obj(json!({ key: {"vr": "PN", "Value": ["x"]} }));
            match from_json(&m, &mut no_bulk) {
                Err(FromJsonError::BadTag(k)) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        let m = obj(json!({"00100010": {"vr": "XX", "Value": ["x"]}}));
        assert!(matches!(
            from_json(&m, &mut no_bulk),
            Err(FromJsonError::BadVr { tag, vr }) if tag == "00100010" && vr == "XX"
        ));
        // without a VR: the dictionary's for standard tags, refused for private ones
        let m = obj(json!({"00100010": {"Value": [{"Alphabetic": "A^B"}]}}));
        let ds = from_json(&m, &mut no_bulk).unwrap();
        assert_eq!(ds.get(tags::PATIENT_NAME).unwrap().vr(), VR::PN);
        let m = obj(json!({"00291010": {"Value": ["x"]}}));
        assert!(matches!(
            from_json(&m, &mut no_bulk),
            Err(FromJsonError::BadVr { .. })
        ));
        for (key, el) in [
            ("00280010", json!({"vr": "US", "Value": ["big"]})),
            ("00280010", json!({"vr": "US", "Value": [70000]})),
            ("00080060", json!({"vr": "CS", "Value": [1]})),
            ("00080060", json!({"vr": "CS", "Value": ["é"]})),
            ("00080060", json!({"vr": "CS", "Value": "CT"})),
            ("00091001", json!({"vr": "OB", "Value": [1]})),
            (
                "00100010",
                json!({"vr": "PN", "Value": [{"Alphabetic": 1}]}),
            ),
            ("00081110", json!({"vr": "SQ", "Value": [1]})),
            ("00100010", json!("Doe")),
        ] {
            let m = obj(json!({ key: el }));
            assert!(
                matches!(from_json(&m, &mut no_bulk), Err(FromJsonError::BadValue { ref tag, .. }) if tag == key),
                "{key} {el}"
            );
        }
        // the refusal names the element and what is wrong, never the value: it is logged,
        // and the value may be a patient's name or ID
        for (key, el) in [
            (
                "00100020",
                json!({"vr": "LO", "Value": [330102195801012345u64]}),
            ),
            (
                "00100010",
                json!({"vr": "PN", "Value": [{"Alphabetic": "WANG^XIAOMING", "Phonetic": 1}]}),
            ),
            ("00101030", json!({"vr": "DS", "Value": [{"kg": "63.5"}]})),
            ("00100032", json!({"vr": "TM", "Value": [true]})),
            ("00280010", json!({"vr": "US", "Value": ["330102"]})),
        ] {
            let m = obj(json!({ key: el }));
            let e = from_json(&m, &mut no_bulk).unwrap_err().to_string();
            for secret in ["330102", "WANG", "63.5"] {
                assert!(!e.contains(secret), "{key}: {e}");
            }
        }
    }

    #[test]
    fn part10_needs_sop_uids_and_a_known_transfer_syntax() {
        let m = obj(json!({"00080016": {"vr": "UI", "Value": [CT]}}));
        assert!(matches!(
            part10_from_json(&m, EXPLICIT_LE, &mut no_bulk),
            Err(FromJsonError::MissingUid(_))
        ));
        assert!(matches!(
            part10_from_json(&with_uids(json!({})), "1.2.3.999", &mut no_bulk),
            Err(FromJsonError::UnknownTransferSyntax(_))
        ));
        // file meta elements and group lengths in the JSON are ignored
        let m = with_uids(json!({
            "00020010": {"vr": "UI", "Value": ["1.2.840.10008.1.2"]},
            "00080000": {"vr": "UL", "Value": [4]},
        }));
        let file = part10_from_json(&m, EXPLICIT_LE, &mut no_bulk).unwrap();
        let o = OpenFileOptions::new().from_reader(&file[..]).unwrap();
        assert_eq!(
            o.meta().transfer_syntax().trim_end_matches('\0'),
            EXPLICIT_LE
        );
        assert_eq!(
            o.meta()
                .media_storage_sop_class_uid()
                .trim_end_matches('\0'),
            CT
        );
        assert_eq!(
            o.meta()
                .media_storage_sop_instance_uid()
                .trim_end_matches('\0'),
            "1.2.3.4"
        );
        assert!(o.get(Tag(0x0008, 0x0000)).is_none());
    }

    fn fragments(file: &[u8]) -> (Vec<u32>, Vec<Vec<u8>>) {
        let o = OpenFileOptions::new().from_reader(file).unwrap();
        match o.get(tags::PIXEL_DATA).unwrap().value() {
            DicomValue::PixelSequence(ps) => (ps.offset_table().to_vec(), ps.fragments().to_vec()),
            other => panic!("Pixel Data is not encapsulated: {other:?}"),
        }
    }

    #[test]
    fn encapsulated_transfer_syntax_wraps_pixel_data_in_fragments() {
        const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
        let m = with_uids(json!({
            "00280010": {"vr": "US", "Value": [1]},
            "00280011": {"vr": "US", "Value": [1]},
            "7FE00010": {"vr": "OB", "BulkDataURI": "px"},
        }));
        let jpeg = vec![0xFF, 0xD8, 0xFF, 0xD9, 0x01];
        let mut bulk = |_: &str| Some(jpeg.clone());
        let file = part10_from_json(&m, JPEG_BASELINE, &mut bulk).unwrap();
        let o = OpenFileOptions::new().from_reader(&file[..]).unwrap();
        assert_eq!(
            o.meta().transfer_syntax().trim_end_matches('\0'),
            JPEG_BASELINE
        );
        assert_eq!(o.get(tags::PIXEL_DATA).unwrap().vr(), VR::OB);
        // one fragment, padded to an even length, after an empty Basic Offset Table
        let (bot, frags) = fragments(&file);
        assert!(bot.is_empty());
        assert_eq!(frags, [vec![0xFF, 0xD8, 0xFF, 0xD9, 0x01, 0x00]]);

        // one fragment per frame when the frames are known
        let two = [vec![1u8, 2, 3, 4], vec![5u8, 6]].concat();
        let mut bulk = |_: &str| Some(two.clone());
        let file =
            part10_from_json_with_frames(&m, JPEG_BASELINE, &mut bulk, Some(&[4, 2])).unwrap();
        let (bot, frags) = fragments(&file);
        assert!(bot.is_empty());
        assert_eq!(frags, [vec![1u8, 2, 3, 4], vec![5u8, 6]]);
        assert!(matches!(
            part10_from_json_with_frames(&m, JPEG_BASELINE, &mut bulk, Some(&[4, 1])),
            Err(FromJsonError::BadValue { .. })
        ));
        // native: the frames are ignored, Pixel Data stays native
        let file = part10_from_json_with_frames(&m, EXPLICIT_LE, &mut bulk, Some(&[4, 2])).unwrap();
        let o = OpenFileOptions::new().from_reader(&file[..]).unwrap();
        assert!(
            o.get(tags::PIXEL_DATA)
                .unwrap()
                .value()
                .primitive()
                .is_some()
        );
    }

    #[test]
    fn stow_metadata_part_is_an_array_of_objects() {
        let v = json!([{"00080018": {"vr": "UI", "Value": ["1"]}}, {}]);
        assert_eq!(datasets(&v).unwrap().len(), 2);
        assert_eq!(datasets(&json!({})).unwrap().len(), 1);
        assert!(matches!(
            datasets(&json!([1])),
            Err(FromJsonError::NotAnObject)
        ));
        assert!(matches!(
            datasets(&json!("x")),
            Err(FromJsonError::NotAnObject)
        ));
    }
}
