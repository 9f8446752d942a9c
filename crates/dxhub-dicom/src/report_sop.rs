//! DICOM instances for a signed report, to push back to the clinic's PACS: an Encapsulated
//! PDF (PS3.3 A.45.1) holding the rendered report, and a Basic Text SR (PS3.3 A.35.1) holding
//! its text in sections. Both are whole Part 10 files, Explicit VR Little Endian, with
//! Specific Character Set `ISO_IR 192` (names and titles are Chinese).
//!
//! The caller chooses the series and SOP instance UIDs (deterministic per report version),
//! so re-sending the same report version gives the same instances.

use crate::meta::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use dxhub_core::uid::is_valid_uid;

/// Everything the two report instances need besides the report itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportContext {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    /// DA `YYYYMMDD`.
    pub patient_birth_date: Option<String>,
    /// `M`, `F` or `O`.
    pub patient_sex: Option<String>,
    pub study_instance_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub referring_physician: Option<String>,
    /// The reading centre.
    pub institution_name: String,
    /// Chosen by the caller (deterministic per report version).
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    pub series_number: i32,
    pub instance_number: i32,
    /// DICOM DT `YYYYMMDDHHMMSS+0800`.
    pub content_datetime: String,
    /// e.g. "胸部正位片 诊断报告".
    pub document_title: String,
    pub author: String,
    pub verifier: String,
    pub verifier_organization: String,
    /// DT.
    pub verification_datetime: String,
    /// (series UID, SOP class UID, SOP instance UID) of the instances read.
    pub referenced: Vec<(String, String, String)>,
}

/// The report text: (heading, text) sections in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextReport {
    pub sections: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid report context: {0}")]
    Invalid(String),
    #[error("cannot encode the report instance: {0}")]
    Encode(String),
}

/// Manufacturer written in the General Equipment module.
pub const MANUFACTURER: &str = "dxhub";
/// Root concept of the SR: LOINC 18748-4 (PS3.16 TID 2000).
pub const REPORT_TITLE_CODE: (&str, &str, &str) = ("18748-4", "LN", "Diagnostic Imaging Report");

/// A whole Encapsulated PDF Part 10 file (Explicit VR Little Endian) holding `pdf`.
/// An odd-length PDF is padded with one 0x00; Encapsulated Document Length keeps the
/// unpadded length.
pub fn encapsulated_pdf(ctx: &ReportContext, pdf: &[u8]) -> Result<Vec<u8>, Error> {
    check(ctx)?;
    if pdf.is_empty() {
        return Err(Error::Invalid("empty PDF".into()));
    }
    let pdf_len = u32::try_from(pdf.len())
        .ok()
        .filter(|l| *l < u32::MAX - 1)
        .ok_or_else(|| Error::Invalid("PDF too large for one DICOM element".into()))?;
    let (content_date, content_time) = split_dt(&ctx.content_datetime)?;
    let mut obj = common(ctx, uids::ENCAPSULATED_PDF_STORAGE, "DOC");
    // SC Equipment
    put_str(&mut obj, tags::CONVERSION_TYPE, VR::CS, "WSD");
    // Encapsulated Document
    put_str(&mut obj, tags::CONTENT_DATE, VR::DA, content_date);
    put_str(&mut obj, tags::CONTENT_TIME, VR::TM, content_time);
    put_str(
        &mut obj,
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        &ctx.content_datetime,
    );
    put_str(&mut obj, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    put_str(&mut obj, tags::DOCUMENT_TITLE, VR::ST, &ctx.document_title);
    put_seq(&mut obj, tags::CONCEPT_NAME_CODE_SEQUENCE, Vec::new());
    put_str(
        &mut obj,
        tags::MIME_TYPE_OF_ENCAPSULATED_DOCUMENT,
        VR::LO,
        "application/pdf",
    );
    let mut doc = pdf.to_vec();
    if !doc.len().is_multiple_of(2) {
        doc.push(0);
    }
    obj.put(DataElement::new(
        tags::ENCAPSULATED_DOCUMENT,
        VR::OB,
        PrimitiveValue::from(doc),
    ));
    obj.put(DataElement::new(
        tags::ENCAPSULATED_DOCUMENT_LENGTH,
        VR::UL,
        PrimitiveValue::from(pdf_len),
    ));
    to_part10(obj)
}

/// A whole Basic Text SR Part 10 file (Explicit VR Little Endian): a root CONTAINER
/// "Diagnostic Imaging Report" with one CONTAINER per section, each holding a TEXT item.
pub fn basic_text_sr(ctx: &ReportContext, text: &TextReport) -> Result<Vec<u8>, Error> {
    check(ctx)?;
    if text.sections.is_empty() {
        return Err(Error::Invalid("report without sections".into()));
    }
    let (content_date, content_time) = split_dt(&ctx.content_datetime)?;
    split_dt(&ctx.verification_datetime)?;
    let mut obj = common(ctx, uids::BASIC_TEXT_SR_STORAGE, "SR");
    // SR Document Series
    put_seq(
        &mut obj,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        Vec::new(),
    );
    // SR Document General
    put_str(&mut obj, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put_str(&mut obj, tags::VERIFICATION_FLAG, VR::CS, "VERIFIED");
    put_str(&mut obj, tags::CONTENT_DATE, VR::DA, content_date);
    put_str(&mut obj, tags::CONTENT_TIME, VR::TM, content_time);
    let mut author = InMemDicomObject::new_empty();
    put_str(&mut author, tags::OBSERVER_TYPE, VR::CS, "PSN");
    put_str(&mut author, tags::PERSON_NAME, VR::PN, &ctx.author);
    // Identified Person or Device macro: no coded identity of the author nor of the centre
    put_seq(
        &mut author,
        tags::PERSON_IDENTIFICATION_CODE_SEQUENCE,
        Vec::new(),
    );
    put_seq(&mut author, tags::INSTITUTION_CODE_SEQUENCE, Vec::new());
    put_str(
        &mut author,
        tags::INSTITUTION_NAME,
        VR::LO,
        &lo(&ctx.institution_name),
    );
    put_seq(&mut obj, tags::AUTHOR_OBSERVER_SEQUENCE, vec![author]);
    let mut verifier = InMemDicomObject::new_empty();
    put_str(
        &mut verifier,
        tags::VERIFYING_ORGANIZATION,
        VR::LO,
        &lo(&ctx.verifier_organization),
    );
    put_str(
        &mut verifier,
        tags::VERIFICATION_DATE_TIME,
        VR::DT,
        &ctx.verification_datetime,
    );
    put_str(
        &mut verifier,
        tags::VERIFYING_OBSERVER_NAME,
        VR::PN,
        &ctx.verifier,
    );
    put_seq(
        &mut verifier,
        tags::VERIFYING_OBSERVER_IDENTIFICATION_CODE_SEQUENCE,
        Vec::new(),
    );
    put_seq(&mut obj, tags::VERIFYING_OBSERVER_SEQUENCE, vec![verifier]);
    put_seq(
        &mut obj,
        tags::PERFORMED_PROCEDURE_CODE_SEQUENCE,
        Vec::new(),
    );
    if !ctx.referenced.is_empty() {
        put_seq(
            &mut obj,
            tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![evidence(ctx)],
        );
    }
    // SR Document Content: the root content item
    put_str(&mut obj, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut obj,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code(
            REPORT_TITLE_CODE.0,
            REPORT_TITLE_CODE.1,
            REPORT_TITLE_CODE.2,
        )],
    );
    put_str(&mut obj, tags::CONTINUITY_OF_CONTENT, VR::CS, "CONTINUOUS");
    let sections = text
        .sections
        .iter()
        .map(|(heading, body)| section(heading, body))
        .collect();
    put_seq(&mut obj, tags::CONTENT_SEQUENCE, sections);
    to_part10(obj)
}

/// Section heading → (container code, TEXT concept code): the PS3.16 DCM codes of TID 2000
/// for the usual sections (English or Chinese headings), otherwise "Findings" with the
/// heading as Code Meaning.
fn section_codes(heading: &str) -> ((&'static str, String), (&'static str, String)) {
    let h = heading.trim();
    let lower = h.to_lowercase();
    let known = |code: &'static str, meaning: &str, text_code: &'static str, text: &str| {
        ((code, meaning.to_owned()), (text_code, text.to_owned()))
    };
    if matches!(lower.as_str(), "findings" | "finding")
        || matches!(h, "所见" | "影像所见" | "检查所见")
    {
        known("121070", "Findings", "121071", "Finding")
    } else if matches!(lower.as_str(), "impression" | "impressions" | "conclusion")
        || matches!(h, "印象" | "诊断意见" | "诊断" | "结论" | "影像诊断")
    {
        known("121073", "Impression", "121073", "Impression")
    } else if matches!(lower.as_str(), "recommendation" | "recommendations")
        || matches!(h, "建议" | "随访建议")
    {
        known("121075", "Recommendation", "121075", "Recommendation")
    } else {
        let meaning = lo(h);
        let meaning = if meaning.is_empty() {
            "Findings".to_owned()
        } else {
            meaning
        };
        (("121070", meaning.clone()), ("121071", meaning))
    }
}

fn section(heading: &str, body: &str) -> InMemDicomObject {
    let ((container_code, container_meaning), (text_code, text_meaning)) = section_codes(heading);
    let mut text = InMemDicomObject::new_empty();
    put_str(&mut text, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    put_str(&mut text, tags::VALUE_TYPE, VR::CS, "TEXT");
    put_seq(
        &mut text,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code(text_code, "DCM", &text_meaning)],
    );
    put_str(&mut text, tags::TEXT_VALUE, VR::UT, body);
    let mut container = InMemDicomObject::new_empty();
    put_str(&mut container, tags::RELATIONSHIP_TYPE, VR::CS, "CONTAINS");
    put_str(&mut container, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    put_seq(
        &mut container,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code(container_code, "DCM", &container_meaning)],
    );
    put_str(
        &mut container,
        tags::CONTINUITY_OF_CONTENT,
        VR::CS,
        "SEPARATE",
    );
    put_seq(&mut container, tags::CONTENT_SEQUENCE, vec![text]);
    container
}

/// Hierarchical SOP Instance Reference: the study, then the referenced instances grouped
/// by series in first-seen order.
fn evidence(ctx: &ReportContext) -> InMemDicomObject {
    let mut series: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for (series_uid, class_uid, instance_uid) in &ctx.referenced {
        let entry = match series.iter_mut().find(|(s, _)| *s == series_uid.as_str()) {
            Some(e) => e,
            None => {
                series.push((series_uid.as_str(), Vec::new()));
                let last = series.len() - 1;
                &mut series[last]
            }
        };
        if !entry.1.iter().any(|(_, i)| *i == instance_uid.as_str()) {
            entry.1.push((class_uid.as_str(), instance_uid.as_str()));
        }
    }
    let series_items = series
        .into_iter()
        .map(|(series_uid, instances)| {
            let sops = instances
                .into_iter()
                .map(|(class_uid, instance_uid)| {
                    let mut sop = InMemDicomObject::new_empty();
                    put_str(&mut sop, tags::REFERENCED_SOP_CLASS_UID, VR::UI, class_uid);
                    put_str(
                        &mut sop,
                        tags::REFERENCED_SOP_INSTANCE_UID,
                        VR::UI,
                        instance_uid,
                    );
                    sop
                })
                .collect();
            let mut item = InMemDicomObject::new_empty();
            put_seq(&mut item, tags::REFERENCED_SOP_SEQUENCE, sops);
            put_str(&mut item, tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
            item
        })
        .collect();
    let mut study = InMemDicomObject::new_empty();
    put_seq(&mut study, tags::REFERENCED_SERIES_SEQUENCE, series_items);
    put_str(
        &mut study,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &ctx.study_instance_uid,
    );
    study
}

/// Patient, General Study, the series, General Equipment and SOP Common modules, shared by
/// both instances.
fn common(ctx: &ReportContext, sop_class_uid: &str, modality: &str) -> InMemDicomObject {
    let opt = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").to_owned();
    let mut obj = InMemDicomObject::new_empty();
    // SOP Common
    put_str(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put_str(&mut obj, tags::SOP_CLASS_UID, VR::UI, sop_class_uid);
    put_str(
        &mut obj,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &ctx.sop_instance_uid,
    );
    if let Some(tz) = tz_of(&ctx.content_datetime) {
        put_str(&mut obj, tags::TIMEZONE_OFFSET_FROM_UTC, VR::SH, tz);
    }
    // Patient
    put_str(
        &mut obj,
        tags::PATIENT_NAME,
        VR::PN,
        &opt(&ctx.patient_name),
    );
    put_str(&mut obj, tags::PATIENT_ID, VR::LO, &opt(&ctx.patient_id));
    put_str(
        &mut obj,
        tags::PATIENT_BIRTH_DATE,
        VR::DA,
        &opt(&ctx.patient_birth_date),
    );
    let sex = opt(&ctx.patient_sex).to_uppercase();
    let sex = if matches!(sex.as_str(), "M" | "F" | "O") {
        sex
    } else {
        String::new()
    };
    put_str(&mut obj, tags::PATIENT_SEX, VR::CS, &sex);
    // General Study
    put_str(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &ctx.study_instance_uid,
    );
    put_str(&mut obj, tags::STUDY_DATE, VR::DA, &opt(&ctx.study_date));
    put_str(&mut obj, tags::STUDY_TIME, VR::TM, &opt(&ctx.study_time));
    put_str(
        &mut obj,
        tags::REFERRING_PHYSICIAN_NAME,
        VR::PN,
        &opt(&ctx.referring_physician),
    );
    put_str(&mut obj, tags::STUDY_ID, VR::SH, &opt(&ctx.study_id));
    put_str(
        &mut obj,
        tags::ACCESSION_NUMBER,
        VR::SH,
        &opt(&ctx.accession_number),
    );
    // Encapsulated Document Series / SR Document Series
    put_str(&mut obj, tags::MODALITY, VR::CS, modality);
    put_str(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &ctx.series_instance_uid,
    );
    obj.put(DataElement::new(
        tags::SERIES_NUMBER,
        VR::IS,
        PrimitiveValue::from(ctx.series_number.to_string()),
    ));
    obj.put(DataElement::new(
        tags::INSTANCE_NUMBER,
        VR::IS,
        PrimitiveValue::from(ctx.instance_number.to_string()),
    ));
    // General Equipment
    put_str(&mut obj, tags::MANUFACTURER, VR::LO, MANUFACTURER);
    put_str(
        &mut obj,
        tags::INSTITUTION_NAME,
        VR::LO,
        &lo(&ctx.institution_name),
    );
    put_str(
        &mut obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        IMPLEMENTATION_VERSION_NAME,
    );
    obj
}

fn check(ctx: &ReportContext) -> Result<(), Error> {
    for (name, uid) in [
        ("Study Instance UID", &ctx.study_instance_uid),
        ("Series Instance UID", &ctx.series_instance_uid),
        ("SOP Instance UID", &ctx.sop_instance_uid),
    ] {
        if !is_valid_uid(uid) {
            return Err(Error::Invalid(format!("{name} {uid:?} is not a valid UID")));
        }
    }
    for (s, c, i) in &ctx.referenced {
        if ![s, c, i].iter().all(|u| is_valid_uid(u)) {
            return Err(Error::Invalid(format!(
                "referenced instance ({s:?}, {c:?}, {i:?}) has an invalid UID"
            )));
        }
    }
    if ctx.document_title.trim().is_empty() {
        return Err(Error::Invalid("empty document title".into()));
    }
    Ok(())
}

/// DT `YYYYMMDDHHMMSS[.F][&ZZXX]` → (DA, TM without the offset).
fn split_dt(dt: &str) -> Result<(&str, &str), Error> {
    let end = dt.find(['+', '-']).unwrap_or(dt.len());
    let local = &dt[..end];
    let ok = local.len() >= 14
        && local.is_char_boundary(8)
        && local[..14].bytes().all(|b| b.is_ascii_digit())
        && local[14..]
            .strip_prefix('.')
            .is_none_or(|f| !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()))
        && (local.len() == 14 || local.as_bytes()[14] == b'.');
    let tz_ok = dt[end..].is_empty()
        || (dt.len() - end == 5 && dt[end + 1..].bytes().all(|b| b.is_ascii_digit()));
    if !ok || !tz_ok {
        return Err(Error::Invalid(format!(
            "{dt:?} is not a DICOM DT YYYYMMDDHHMMSS[+ZZZZ]"
        )));
    }
    Ok((&local[..8], &local[8..]))
}

fn tz_of(dt: &str) -> Option<&str> {
    let i = dt.find(['+', '-'])?;
    Some(&dt[i..])
}

/// At most 64 characters (LO, SH-sized code meanings).
fn lo(s: &str) -> String {
    s.trim().chars().take(64).collect()
}

fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut item = InMemDicomObject::new_empty();
    put_str(&mut item, tags::CODE_VALUE, VR::SH, value);
    put_str(&mut item, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put_str(&mut item, tags::CODE_MEANING, VR::LO, &lo(meaning));
    item
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    if value.is_empty() {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
    } else {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }
}

fn put_seq(obj: &mut InMemDicomObject, tag: Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

fn to_part10(obj: InMemDicomObject) -> Result<Vec<u8>, Error> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
                .implementation_version_name(IMPLEMENTATION_VERSION_NAME),
        )
        .map_err(|e| Error::Encode(e.to_string()))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| Error::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dt_split() {
        assert_eq!(
            split_dt("20260301083000+0800").unwrap(),
            ("20260301", "083000")
        );
        assert_eq!(
            split_dt("20260301083000.5").unwrap(),
            ("20260301", "083000.5")
        );
        assert!(split_dt("2026-03-01").is_err());
        assert!(split_dt("20260301083000+08").is_err());
        assert!(split_dt("二〇二六0301083000").is_err());
    }

    #[test]
    fn section_codes_map_usual_headings() {
        assert_eq!(section_codes("影像所见").0.0, "121070");
        assert_eq!(section_codes("诊断意见").0.0, "121073");
        assert_eq!(section_codes("Recommendation").0.0, "121075");
        let other = section_codes("技术说明");
        assert_eq!(other.0, ("121070", "技术说明".to_owned()));
    }
}
