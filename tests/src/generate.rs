//! Synthetic instances for load, concurrency and negative tests.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh `2.25.` UID.
pub fn new_uid() -> String {
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(SEQ.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    // 2.25 UIDs are decimal UUIDs: keep it below 2^122 like a v4 UUID's random bits
    format!("2.25.{}", u128::from_le_bytes(b) >> 6)
}

#[derive(Debug, Clone)]
pub struct CtSpec {
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub patient_id: String,
    pub patient_name: String,
    pub instance_number: i32,
    pub rows: u16,
    pub cols: u16,
}

impl CtSpec {
    pub fn new(study_uid: &str, series_uid: &str, instance_number: i32) -> Self {
        CtSpec {
            study_uid: study_uid.to_owned(),
            series_uid: series_uid.to_owned(),
            sop_uid: new_uid(),
            patient_id: "P0001".into(),
            patient_name: "Test^Patient".into(),
            instance_number,
            rows: 16,
            cols: 16,
        }
    }
}

pub fn ct_object(spec: &CtSpec) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let mut put = |tag, vr, v: PrimitiveValue| {
        o.put(DataElement::new(tag, vr, v));
    };
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192".into());
    put(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE.into());
    put(tags::SOP_INSTANCE_UID, VR::UI, spec.sop_uid.as_str().into());
    put(tags::STUDY_DATE, VR::DA, "20261122".into());
    put(tags::STUDY_TIME, VR::TM, "101500".into());
    put(tags::ACCESSION_NUMBER, VR::SH, "ACC-1".into());
    put(tags::MODALITY, VR::CS, "CT".into());
    put(tags::STUDY_DESCRIPTION, VR::LO, "头颅CT平扫".into());
    put(
        tags::PATIENT_NAME,
        VR::PN,
        spec.patient_name.as_str().into(),
    );
    put(tags::PATIENT_ID, VR::LO, spec.patient_id.as_str().into());
    put(tags::PATIENT_BIRTH_DATE, VR::DA, "19600101".into());
    put(tags::PATIENT_SEX, VR::CS, "M".into());
    put(tags::BODY_PART_EXAMINED, VR::CS, "HEAD".into());
    put(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        spec.study_uid.as_str().into(),
    );
    put(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        spec.series_uid.as_str().into(),
    );
    put(tags::SERIES_NUMBER, VR::IS, "1".into());
    put(
        tags::INSTANCE_NUMBER,
        VR::IS,
        spec.instance_number.to_string().as_str().into(),
    );
    put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2".into(),
    );
    put(tags::ROWS, VR::US, PrimitiveValue::from(spec.rows));
    put(tags::COLUMNS, VR::US, PrimitiveValue::from(spec.cols));
    put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
    put(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16));
    put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16));
    put(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    let n = spec.rows as usize * spec.cols as usize;
    let pixels: Vec<u16> = (0..n)
        .map(|i| ((i as i32 * 7 + spec.instance_number) % 4096) as u16)
        .collect();
    put(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(pixels.into()));
    o
}

/// The data set alone, Explicit VR Little Endian (what an SCU sends in C-STORE).
pub fn ct_dataset(spec: &CtSpec) -> Vec<u8> {
    let mut out = Vec::new();
    ct_object(spec)
        .write_dataset_with_ts(&mut out, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
        .expect("encode dataset");
    out
}

/// A Part 10 file of the instance.
pub fn ct_file(spec: &CtSpec, path: &std::path::Path) {
    ct_object(spec)
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(spec.sop_uid.as_str())
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .expect("meta")
        .write_to_file(path)
        .expect("write file");
}

/// Bytes after the file meta of a Part 10 file (the data set as a sender sends it).
pub fn dataset_of_file(bytes: &[u8]) -> &[u8] {
    assert!(
        bytes.len() > 144 && &bytes[128..132] == b"DICM",
        "not a Part 10 file"
    );
    let group_len = u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    &bytes[144 + group_len..]
}
