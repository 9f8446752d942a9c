//! Extraction of the attributes the index needs, reading a Part 10 file only up to Pixel
//! Data (never the pixels: a US cine or CT volume can be hundreds of megabytes).

use crate::charset::{repair_text, text_of_values};
use crate::meta::{FileMeta, MetaError, read_file_meta};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{SpecificCharacterSet, TextCodec};
use dicom_object::{InMemDicomObject, OpenFileOptions};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("cannot parse the data set: {0}")]
    Parse(String),
    #[error("required attribute {0} is missing or empty")]
    Missing(&'static str),
    #[error("attribute {attr} holds an invalid UID")]
    InvalidUid { attr: &'static str },
    #[error(transparent)]
    Structure(#[from] crate::validate::StructureError),
}

/// The attributes of one instance that the index and the ingest checks use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub transfer_syntax_uid: String,
    pub meta_sop_class_uid: String,
    pub meta_sop_instance_uid: String,
    pub dataset_offset: u64,
    pub specific_character_set: Vec<String>,

    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,

    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,

    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub study_id: Option<String>,
    pub body_part_examined: Option<String>,

    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,

    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,

    /// DICOM JSON (serialised) of the study-level attributes, for QIDO `includefield`.
    pub study_attrs: Option<String>,
    /// DICOM JSON of the series-level attributes.
    pub series_attrs: Option<String>,
    /// DICOM JSON of the whole instance, bulk data as `dxhub-bulk:` BulkDataURIs (WADO-RS
    /// `/metadata`).
    pub metadata: Option<String>,
}

struct Reader<'a> {
    obj: &'a InMemDicomObject,
    charsets: &'a [String],
}

impl Reader<'_> {
    /// The value as text. Standard attributes sent with VR UN (some converters do that)
    /// arrive as raw bytes: they are decoded with the data set's character set instead of
    /// being rendered as a list of numbers.
    fn string(&self, tag: Tag) -> Option<String> {
        let e = self.obj.get(tag)?;
        if e.vr() == VR::UN {
            let bytes = e.to_bytes().ok()?;
            let codec = self
                .charsets
                .first()
                .and_then(|c| SpecificCharacterSet::from_code(c))
                .unwrap_or_default();
            return codec.decode(&bytes).ok();
        }
        e.to_str().ok().map(|s| s.into_owned())
    }
    fn raw(&self, tag: Tag) -> Option<String> {
        let s = self.string(tag)?;
        let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
        (!s.is_empty()).then(|| s.to_owned())
    }
    /// Text in the data set's character set (PN, LO, SH, ST, LT, UT, UC).
    fn text(&self, tag: Tag) -> Option<String> {
        let e = self.obj.get(tag)?;
        if e.vr() != VR::UN
            && let Some(dicom_core::PrimitiveValue::Strs(values)) = e.value().primitive()
            && values.iter().any(|v| v.contains('\\'))
        {
            // a GBK/GB18030 value cut inside a character by dicom-rs
            return text_of_values(values.iter().cloned().collect(), self.charsets);
        }
        self.raw(tag).map(|s| repair_text(&s, self.charsets))
    }
    fn int(&self, tag: Tag) -> Option<i64> {
        let e = self.obj.get(tag)?;
        if e.vr() == VR::UN {
            return self.raw(tag)?.trim().parse().ok();
        }
        e.to_int::<i64>().ok()
    }
    fn uid(&self, tag: Tag, attr: &'static str) -> Result<String, ExtractError> {
        let v = self.raw(tag).ok_or(ExtractError::Missing(attr))?;
        let v = dxhub_core::uid::trim_uid(&v).to_owned();
        if !dxhub_core::uid::is_key_safe_uid(&v) {
            return Err(ExtractError::InvalidUid { attr });
        }
        Ok(v)
    }
}

/// Read a Part 10 file's meta and data set (up to Pixel Data) and extract the indexed
/// attributes. Fails when the file is not DICOM, cannot be parsed, or lacks one of the
/// four identifying UIDs.
pub fn extract_file(path: &Path) -> Result<Extracted, ExtractError> {
    let meta: FileMeta = read_file_meta(BufReader::new(File::open(path).map_err(MetaError::Io)?))?;
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| ExtractError::Parse(e.to_string()))?;
    crate::validate::check_structure(path, meta.dataset_offset, &meta.transfer_syntax_uid)?;
    extracted(&meta, &obj)
}

/// As [`extract_file`], for a Part 10 object already in memory (with its 128-byte
/// preamble): an object the hub made itself, e.g. the DICOM ECG written from an upload,
/// is not written to a spool file and read back.
pub fn extract_bytes(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let meta: FileMeta = read_file_meta(bytes)?;
    let body = bytes
        .get(crate::meta::PREAMBLE_LEN as usize..)
        .ok_or(ExtractError::Meta(MetaError::NotPart10))?;
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(body)
        .map_err(|e| ExtractError::Parse(e.to_string()))?;
    crate::validate::check_structure_bytes(bytes, meta.dataset_offset, &meta.transfer_syntax_uid)?;
    extracted(&meta, &obj)
}

fn extracted(
    meta: &FileMeta,
    obj: &dicom_object::FileDicomObject<InMemDicomObject>,
) -> Result<Extracted, ExtractError> {
    let charsets: Vec<String> = obj
        .get(tags::SPECIFIC_CHARACTER_SET)
        .and_then(|e| {
            e.to_multi_str()
                .ok()
                .map(|v| v.iter().map(|s| s.trim().to_owned()).collect())
        })
        .unwrap_or_default();
    let r = Reader {
        obj,
        charsets: &charsets,
    };
    let (study_attrs, series_attrs, metadata) =
        derived_json(obj, &charsets, &meta.transfer_syntax_uid);

    Ok(Extracted {
        transfer_syntax_uid: meta.transfer_syntax_uid.clone(),
        meta_sop_class_uid: meta.media_storage_sop_class_uid.clone(),
        meta_sop_instance_uid: meta.media_storage_sop_instance_uid.clone(),
        dataset_offset: meta.dataset_offset,
        sop_class_uid: r.uid(tags::SOP_CLASS_UID, "SOPClassUID")?,
        sop_instance_uid: r.uid(tags::SOP_INSTANCE_UID, "SOPInstanceUID")?,
        study_instance_uid: r.uid(tags::STUDY_INSTANCE_UID, "StudyInstanceUID")?,
        series_instance_uid: r.uid(tags::SERIES_INSTANCE_UID, "SeriesInstanceUID")?,
        patient_id: r.text(tags::PATIENT_ID).unwrap_or_default(),
        issuer_of_patient_id: r.text(tags::ISSUER_OF_PATIENT_ID),
        patient_name: r.text(tags::PATIENT_NAME),
        patient_birth_date: r.raw(tags::PATIENT_BIRTH_DATE),
        patient_sex: r.raw(tags::PATIENT_SEX),
        study_date: r.raw(tags::STUDY_DATE),
        study_time: r.raw(tags::STUDY_TIME),
        accession_number: r.text(tags::ACCESSION_NUMBER),
        study_description: r.text(tags::STUDY_DESCRIPTION),
        referring_physician_name: r.text(tags::REFERRING_PHYSICIAN_NAME),
        study_id: r.text(tags::STUDY_ID),
        body_part_examined: r.raw(tags::BODY_PART_EXAMINED),
        modality: r.raw(tags::MODALITY),
        series_number: r.int(tags::SERIES_NUMBER),
        series_description: r.text(tags::SERIES_DESCRIPTION),
        series_date: r.raw(tags::SERIES_DATE),
        series_time: r.raw(tags::SERIES_TIME),
        instance_number: r.int(tags::INSTANCE_NUMBER),
        number_of_frames: r.int(tags::NUMBER_OF_FRAMES),
        specific_character_set: charsets.clone(),
        study_attrs: Some(study_attrs),
        series_attrs: Some(series_attrs),
        metadata: Some(metadata),
    })
}

/// The DICOM JSON the index keeps (see [`Extracted::metadata`]): the study-level and
/// series-level attributes, and the whole data set. The data set was read up to Pixel
/// Data, so an image's Pixel Data is added as a BulkDataURI (OB when encapsulated, else
/// OW above 8 bits allocated).
fn derived_json(
    obj: &InMemDicomObject,
    charsets: &[String],
    transfer_syntax_uid: &str,
) -> (String, String, String) {
    use crate::json::{JsonOptions, QueryLevel, query_level, to_json};
    use serde_json::{Map, Value};
    let opts = JsonOptions::default();
    let mut all = to_json(obj, charsets, &opts);
    let mut study = Map::new();
    let mut series = Map::new();
    for (k, v) in &all {
        let Ok(t) = u32::from_str_radix(k, 16) else {
            continue;
        };
        match query_level(Tag((t >> 16) as u16, (t & 0xFFFF) as u16)) {
            QueryLevel::Study => {
                study.insert(k.clone(), v.clone());
            }
            QueryLevel::Series => {
                series.insert(k.clone(), v.clone());
            }
            QueryLevel::Instance => {}
        }
    }
    if obj.get(tags::ROWS).is_some() && !all.contains_key("7FE00010") {
        let encapsulated = crate::ts::is_compressed(transfer_syntax_uid);
        let bits = obj
            .get(tags::BITS_ALLOCATED)
            .and_then(|e| e.to_int::<u16>().ok())
            .unwrap_or(8);
        let vr = if encapsulated || bits <= 8 {
            "OB"
        } else {
            "OW"
        };
        let mut e = Map::new();
        e.insert("vr".into(), Value::String(vr.into()));
        e.insert(
            "BulkDataURI".into(),
            Value::String(format!("{}7FE00010", opts.bulk_prefix)),
        );
        all.insert("7FE00010".into(), Value::Object(e));
    }
    // a Map serialises as the JSON object it is: no clone into a Value first
    let ser = |m: &Map<String, Value>| serde_json::to_string(m).unwrap_or_else(|_| "{}".into());
    (ser(&study), ser(&series), ser(&all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_object::FileMetaTableBuilder;

    fn write_file(path: &Path, charset: &str, name_bytes: &[u8]) {
        // Write a minimal Explicit VR LE file by hand-assembling the PN bytes so that the
        // encoding under test is exactly what a modality would send.
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from(charset),
        ));
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3"),
        ));
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.1"),
        ));
        obj.put(DataElement::new(
            tags::SERIES_NUMBER,
            VR::IS,
            PrimitiveValue::from(" 7"),
        ));
        let file = obj
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax("1.2.840.10008.1.2.1"),
            )
            .unwrap();
        file.write_to_file(path).unwrap();
        // append PatientName (0010,0010) PN with raw bytes: it sorts after the UIDs? No:
        // (0010,0010) < (0020,000D), so splice it in before the study UID instead.
        let bytes = std::fs::read(path).unwrap();
        let needle = [0x20u8, 0x00, 0x0D, 0x00];
        let pos = bytes.windows(4).position(|w| w == needle).unwrap();
        let mut v = name_bytes.to_vec();
        if v.len() % 2 == 1 {
            v.push(b' ');
        }
        let mut elem = vec![0x10, 0x00, 0x10, 0x00, b'P', b'N'];
        elem.extend_from_slice(&(v.len() as u16).to_le_bytes());
        elem.extend_from_slice(&v);
        let mut out = bytes[..pos].to_vec();
        out.extend_from_slice(&elem);
        out.extend_from_slice(&bytes[pos..]);
        std::fs::write(path, out).unwrap();
    }

    /// The file and in-memory extractions agree.
    fn extract_both(p: &Path) -> Result<Extracted, ExtractError> {
        let on_disk = extract_file(p);
        let in_memory = extract_bytes(&std::fs::read(p).unwrap());
        assert_eq!(
            format!("{in_memory:?}"),
            format!("{on_disk:?}"),
            "extract_bytes differs from extract_file"
        );
        on_disk
    }

    #[test]
    fn chinese_names_in_three_character_sets() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.dcm");
        let name = "Zhang^San=张^三";

        write_file(&p, "ISO_IR 192", name.as_bytes());
        assert_eq!(
            extract_both(&p).unwrap().patient_name.as_deref(),
            Some(name)
        );

        let (gb, _, _) = encoding_rs::GB18030.encode(name);
        write_file(&p, "GB18030", &gb);
        assert_eq!(
            extract_both(&p).unwrap().patient_name.as_deref(),
            Some(name)
        );

        // 昞 is `95 5C`: its second byte is the value delimiter
        let (gb, _, _) = encoding_rs::GB18030.encode("王^昞");
        assert!(gb.ends_with(&[0x95, 0x5C]));
        write_file(&p, "GB18030", &gb);
        assert_eq!(
            extract_both(&p).unwrap().patient_name.as_deref(),
            Some("王^昞")
        );

        let mut iso = b"Zhang^San=\x1b$)A".to_vec();
        iso.extend_from_slice(&encoding_rs::GBK.encode("张^三").0);
        write_file(&p, "\\ISO 2022 IR 58", &iso);
        let x = extract_both(&p).unwrap();
        assert_eq!(x.patient_name.as_deref(), Some(name));
        assert_eq!(x.series_number, Some(7));
        assert_eq!(x.study_instance_uid, "1.2.3");
    }

    #[test]
    fn missing_uid_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.dcm");
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                .media_storage_sop_instance_uid("1.2.3.4")
                .transfer_syntax("1.2.840.10008.1.2.1"),
        )
        .unwrap()
        .write_to_file(&p)
        .unwrap();
        assert!(matches!(
            extract_both(&p),
            Err(ExtractError::Missing("StudyInstanceUID"))
        ));
        std::fs::write(&p, b"not dicom at all").unwrap();
        assert!(matches!(
            extract_both(&p),
            Err(ExtractError::Meta(MetaError::NotPart10))
        ));
    }
}
