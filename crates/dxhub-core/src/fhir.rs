//! HL7 FHIR R4 (4.0.1) `DiagnosticReport` of a dxhub report version, as JSON.
//!
//! The patient and the imaging study travel as `contained` resources (`#patient`,
//! `#study`) referenced from the report, as R4 requires of contained resources (dom-3);
//! the performing institution and the verifying reader are display-only references. The
//! signed PDF, when there is one, is the `presentedForm`. The mapping is checked against
//! the official R4 JSON schema by `tests/fhir_schema.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::report_template::ReportKind;

/// FHIR code system of HL7 v2 table 0074 (diagnostic service section).
pub const V2_0074: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
/// FHIR code system of HL7 v2 table 0203 (identifier type).
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// The identifier system of DICOM UIDs (values are `urn:oid:…`).
pub const DICOM_UID_SYSTEM: &str = "urn:dicom:uid";
/// The time zone assumed for local times without one (China Standard Time).
pub const LOCAL_OFFSET: &str = "+08:00";

/// What a DiagnosticReport is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirReportInput {
    pub report_id: i64,
    pub version: i64,
    /// The dxhub state of this version (`draft`, `submitted`, `signed`, `returned`,
    /// `superseded`), or `corrected` / `amended` / `appended` / `cancelled` /
    /// `entered-in-error` (see [`fhir_status`]).
    pub status: String,
    /// Imaging or ECG: chooses the v2-0074 category (RAD or EC).
    pub kind: ReportKind,
    /// The exam type: (code, name).
    pub code: (String, String),
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    /// The patient-identity hash (hex) the worklist matches priors on.
    pub identity_hash: String,
    /// Study Instance UID; empty: no ImagingStudy.
    pub study_instance_uid: String,
    pub accession_number: Option<String>,
    /// Study date/time: ISO 8601 (`2024-01-15`, `2024-01-15T09:30:00+08:00`) or DICOM
    /// (`20240115`, `20240115093000`); a time without zone is taken as +08:00.
    pub effective: Option<String>,
    /// Sign time, ISO 8601 with seconds (`2024-01-15T10:02:03+08:00`); a time without
    /// zone is taken as +08:00; a date alone is not an instant and is left out.
    pub issued: Option<String>,
    /// The institution that performed the examination (empty: left out).
    pub performer: String,
    /// The verifying reader's name (None until signed).
    pub results_interpreter: Option<String>,
    /// The impression.
    pub conclusion: Option<String>,
    pub presented_form_pdf_url: Option<String>,
    /// The hub's public base URL (`https://dxhub.example.cn`): identifier and code
    /// systems are made under `{base_url}/fhir/`.
    pub base_url: String,
}

/// The FHIR `DiagnosticReport.status` of a dxhub report state.
///
/// | dxhub | FHIR |
/// |---|---|
/// | draft, returned | registered (nothing released) |
/// | submitted | preliminary (complete, awaiting verification) |
/// | signed | final |
/// | corrected (a signed correction) | corrected |
/// | amended | amended |
/// | appended (signed with an addendum) | appended |
/// | cancelled | cancelled |
/// | entered-in-error | entered-in-error |
/// | superseded, anything else | unknown (a superseded version is history: export the current one) |
pub fn fhir_status(state: &str) -> &'static str {
    match state.trim().to_ascii_lowercase().replace('_', "-").as_str() {
        "draft" | "returned" => "registered",
        "submitted" => "preliminary",
        "signed" | "final" => "final",
        "corrected" => "corrected",
        "amended" => "amended",
        "appended" | "addended" => "appended",
        "cancelled" | "canceled" => "cancelled",
        "entered-in-error" => "entered-in-error",
        _ => "unknown",
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn is_digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn has_zone(time: &str) -> bool {
    time.ends_with('Z') || time.contains('+') || time.contains('-')
}

/// ISO 8601 from DICOM DA / DA+TM, and +08:00 on a time without zone.
fn normalise_datetime(s: &str) -> String {
    let s = s.trim();
    if is_digits(s) && s.len() == 8 {
        return format!("{}-{}-{}", &s[0..4], &s[4..6], &s[6..8]);
    }
    if is_digits(s) && s.len() == 14 {
        return format!(
            "{}-{}-{}T{}:{}:{}{LOCAL_OFFSET}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[8..10],
            &s[10..12],
            &s[12..14]
        );
    }
    match s.split_once('T') {
        Some((_, time)) if !has_zone(time) => format!("{s}{LOCAL_OFFSET}"),
        _ => s.to_owned(),
    }
}

/// The R4 DiagnosticReport of one report version.
pub fn diagnostic_report(input: &FhirReportInput) -> Value {
    let base = input.base_url.trim().trim_end_matches('/');
    let sid = |name: &str| format!("{base}/fhir/sid/{name}");

    // contained Patient
    let mut identifiers = Vec::new();
    if let Some(id) = non_empty(input.patient_id.as_deref()) {
        identifiers.push(json!({"system": sid("patient-id"), "value": id}));
    }
    if let Some(h) = non_empty(Some(&input.identity_hash)) {
        identifiers.push(json!({"system": sid("patient-identity-hash"), "value": h}));
    }
    let mut patient = Map::new();
    patient.insert("resourceType".into(), json!("Patient"));
    patient.insert("id".into(), json!("patient"));
    if !identifiers.is_empty() {
        patient.insert("identifier".into(), Value::Array(identifiers));
    }
    if let Some(name) = non_empty(input.patient_name.as_deref()) {
        patient.insert("name".into(), json!([{"use": "official", "text": name}]));
    }
    let mut contained = vec![Value::Object(patient)];

    // contained ImagingStudy
    let uid = input.study_instance_uid.trim();
    if !uid.is_empty() {
        let mut ids = vec![json!({"system": DICOM_UID_SYSTEM, "value": format!("urn:oid:{uid}")})];
        if let Some(acc) = non_empty(input.accession_number.as_deref()) {
            ids.push(json!({
                "type": {"coding": [{"system": V2_0203, "code": "ACSN"}]},
                "value": acc
            }));
        }
        contained.push(json!({
            "resourceType": "ImagingStudy",
            "id": "study",
            "identifier": ids,
            "status": "available",
            "subject": {"reference": "#patient"}
        }));
    }

    let mut r = Map::new();
    r.insert("resourceType".into(), json!("DiagnosticReport"));
    r.insert("id".into(), json!(input.report_id.to_string()));
    r.insert(
        "meta".into(),
        json!({"versionId": input.version.to_string()}),
    );
    r.insert("language".into(), json!("zh-CN"));
    r.insert("contained".into(), Value::Array(contained));
    r.insert(
        "identifier".into(),
        json!([{"system": sid("report"), "value": input.report_id.to_string()}]),
    );
    r.insert("status".into(), json!(fhir_status(&input.status)));
    let (cat_code, cat_display) = match input.kind {
        ReportKind::Imaging => ("RAD", "Radiology"),
        ReportKind::Ecg => ("EC", "Electrocardiac"),
    };
    r.insert(
        "category".into(),
        json!([{"coding": [{"system": V2_0074, "code": cat_code, "display": cat_display}]}]),
    );
    let (exam_code, exam_name) = (input.code.0.trim(), input.code.1.trim());
    let mut coding = Map::new();
    coding.insert(
        "system".into(),
        json!(format!("{base}/fhir/CodeSystem/exam-type")),
    );
    if !exam_code.is_empty() {
        coding.insert("code".into(), json!(exam_code));
    }
    if !exam_name.is_empty() {
        coding.insert("display".into(), json!(exam_name));
    }
    let mut code = Map::new();
    code.insert("coding".into(), json!([coding]));
    if !exam_name.is_empty() {
        code.insert("text".into(), json!(exam_name));
    }
    r.insert("code".into(), Value::Object(code));
    r.insert("subject".into(), json!({"reference": "#patient"}));
    if let Some(e) = non_empty(input.effective.as_deref()) {
        r.insert("effectiveDateTime".into(), json!(normalise_datetime(e)));
    }
    if let Some(i) = non_empty(input.issued.as_deref()) {
        let i = normalise_datetime(i);
        if i.contains('T') {
            r.insert("issued".into(), json!(i));
        }
    }
    if let Some(p) = non_empty(Some(&input.performer)) {
        r.insert(
            "performer".into(),
            json!([{"type": "Organization", "display": p}]),
        );
    }
    if let Some(v) = non_empty(input.results_interpreter.as_deref()) {
        r.insert(
            "resultsInterpreter".into(),
            json!([{"type": "Practitioner", "display": v}]),
        );
    }
    if !uid.is_empty() {
        r.insert("imagingStudy".into(), json!([{"reference": "#study"}]));
    }
    if let Some(c) = non_empty(input.conclusion.as_deref()) {
        r.insert("conclusion".into(), json!(c));
    }
    if let Some(url) = non_empty(input.presented_form_pdf_url.as_deref()) {
        let title = if exam_name.is_empty() {
            "诊断报告".to_owned()
        } else {
            format!("{exam_name}报告")
        };
        r.insert(
            "presentedForm".into(),
            json!([{
                "contentType": "application/pdf",
                "language": "zh-CN",
                "url": url,
                "title": title
            }]),
        );
    }
    Value::Object(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> FhirReportInput {
        FhirReportInput {
            report_id: 42,
            version: 3,
            status: "signed".into(),
            kind: ReportKind::Imaging,
            code: ("dx_chest_pa".into(), "胸部正位片".into()),
            patient_id: Some("MZ20240001".into()),
            patient_name: Some("张三".into()),
            identity_hash: "ab12".into(),
            study_instance_uid: "1.2.156.112605.1.2".into(),
            accession_number: Some("A123".into()),
            effective: Some("20240115".into()),
            issued: Some("2024-01-15T10:02:03".into()),
            performer: "某某镇卫生院".into(),
            results_interpreter: Some("李四".into()),
            conclusion: Some("胸部正位片未见明显异常。".into()),
            presented_form_pdf_url: Some("https://dxhub.example.cn/api/reports/42/pdf".into()),
            base_url: "https://dxhub.example.cn/".into(),
        }
    }

    #[test]
    fn status_mapping() {
        for (s, f) in [
            ("draft", "registered"),
            ("returned", "registered"),
            ("submitted", "preliminary"),
            ("signed", "final"),
            ("corrected", "corrected"),
            ("amended", "amended"),
            ("appended", "appended"),
            ("cancelled", "cancelled"),
            ("entered_in_error", "entered-in-error"),
            ("superseded", "unknown"),
            ("bogus", "unknown"),
        ] {
            assert_eq!(fhir_status(s), f, "{s}");
        }
    }

    #[test]
    fn maps_a_signed_report() {
        let r = diagnostic_report(&input());
        assert_eq!(r["resourceType"], "DiagnosticReport");
        assert_eq!(r["id"], "42");
        assert_eq!(r["meta"]["versionId"], "3");
        assert_eq!(r["status"], "final");
        assert_eq!(r["category"][0]["coding"][0]["code"], "RAD");
        assert_eq!(
            r["code"]["coding"][0]["system"],
            "https://dxhub.example.cn/fhir/CodeSystem/exam-type"
        );
        assert_eq!(r["subject"]["reference"], "#patient");
        assert_eq!(r["contained"][0]["id"], "patient");
        assert_eq!(r["contained"][1]["resourceType"], "ImagingStudy");
        assert_eq!(
            r["contained"][1]["identifier"][0]["value"],
            "urn:oid:1.2.156.112605.1.2"
        );
        assert_eq!(r["imagingStudy"][0]["reference"], "#study");
        assert_eq!(r["effectiveDateTime"], "2024-01-15");
        assert_eq!(r["issued"], "2024-01-15T10:02:03+08:00");
        assert_eq!(r["presentedForm"][0]["title"], "胸部正位片报告");
        assert_eq!(r["resultsInterpreter"][0]["display"], "李四");
    }

    #[test]
    fn minimal_and_ecg() {
        let mut i = input();
        i.kind = ReportKind::Ecg;
        i.status = "draft".into();
        i.patient_id = None;
        i.patient_name = None;
        i.study_instance_uid = String::new();
        i.effective = Some("20240115093000".into());
        i.issued = Some("2024-01-15".into());
        i.results_interpreter = None;
        i.conclusion = Some("  ".into());
        i.presented_form_pdf_url = None;
        i.performer = String::new();
        let r = diagnostic_report(&i);
        assert_eq!(r["status"], "registered");
        assert_eq!(r["category"][0]["coding"][0]["code"], "EC");
        assert_eq!(r["effectiveDateTime"], "2024-01-15T09:30:00+08:00");
        for absent in [
            "issued",
            "imagingStudy",
            "resultsInterpreter",
            "conclusion",
            "presentedForm",
            "performer",
        ] {
            assert!(r.get(absent).is_none(), "{absent}");
        }
        assert_eq!(r["contained"].as_array().map(Vec::len), Some(1));
        assert!(r["contained"][0].get("name").is_none());
    }

    #[test]
    fn zones_are_kept() {
        assert_eq!(
            normalise_datetime("2024-01-15T10:02:03Z"),
            "2024-01-15T10:02:03Z"
        );
        assert_eq!(
            normalise_datetime("2024-01-15T10:02:03-05:00"),
            "2024-01-15T10:02:03-05:00"
        );
        assert_eq!(
            normalise_datetime("2024-01-15T10:02:03.5+08:00"),
            "2024-01-15T10:02:03.5+08:00"
        );
    }
}
