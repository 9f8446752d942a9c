//! Outputs of a report: the A4 PDF (`dxhub-pdf`), the DICOM push-back objects
//! (Encapsulated PDF and Basic Text SR, `dxhub_dicom::report_sop`, sent with
//! `dxhub_dimse::scu`) and the FHIR R4 `DiagnosticReport` (`dxhub_core::fhir`).

use std::sync::OnceLock;

use dxhub_store::report::{Report, ReportPush, ReportVersion};
use serde_json::Value;

use crate::auth::rfc3339;
use crate::worklist::shanghai;
use crate::{ApiError, AppState};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The CJK font, loaded once (a missing font is an error of PDF routes only).
fn font(state: &AppState) -> Result<&'static dxhub_pdf::FontData, ApiError> {
    static FONT: OnceLock<Result<dxhub_pdf::FontData, String>> = OnceLock::new();
    let configured = state.settings.reports.pdf_font.clone();
    FONT.get_or_init(|| match configured {
        Some(p) => {
            // `path` or `path#index` (a face of a font collection)
            let text = p.to_string_lossy().into_owned();
            let (path, index) = match text.rsplit_once('#') {
                Some((path, i)) if i.parse::<u32>().is_ok() => {
                    (path.to_owned(), i.parse::<u32>().unwrap_or(0))
                }
                _ => (text, 0),
            };
            dxhub_pdf::FontData::from_path(std::path::Path::new(&path), index)
                .map_err(|e| e.to_string())
        }
        None => dxhub_pdf::find_font().map_err(|e| e.to_string()),
    })
    .as_ref()
    .map_err(|e| {
        ApiError::Unavailable(format!(
            "no CJK font for PDFs ({e}); install fonts-wqy-microhei"
        ))
    })
}

fn section_label(key: &str) -> &str {
    match key {
        "findings" => "检查所见",
        "impression" => "诊断意见",
        "recommendation" => "建议",
        other => other,
    }
}

fn sex_zh(s: Option<&str>) -> String {
    match s {
        Some("M") => "男".into(),
        Some("F") => "女".into(),
        Some("O") => "其他".into(),
        Some(other) => other.into(),
        None => String::new(),
    }
}

pub(crate) fn ymd(da: Option<&str>) -> String {
    match da {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..])
        }
        Some(d) => d.to_owned(),
        None => String::new(),
    }
}

fn pn(name: Option<&str>) -> String {
    // DICOM PN: family^given…; ideographic after '='
    let n = name.unwrap_or("");
    let ideographic = n.split('=').nth(1).filter(|s| !s.is_empty());
    ideographic
        .unwrap_or_else(|| n.split('=').next().unwrap_or(""))
        .replace('^', " ")
        .trim()
        .to_owned()
}

/// The hub's root URL for links in documents: `http.public_url`, else the one the request
/// came in on (`None` in background jobs: then `http://localhost:8080`, so set
/// `http.public_url` where PDFs are pushed to clinics).
pub fn root_url(state: &AppState, headers: Option<&axum::http::HeaderMap>) -> String {
    match headers {
        Some(h) => crate::dicomweb::base_url(state, h)
            .trim_end_matches("/dicomweb")
            .to_owned(),
        None => state
            .settings
            .public_url
            .clone()
            .unwrap_or_else(|| "http://localhost:8080".to_owned())
            .trim_end_matches('/')
            .to_owned(),
    }
}

/// Render the PDF of one version.
pub async fn render(
    state: &AppState,
    r: &Report,
    v: &ReportVersion,
    root: &str,
) -> Result<Vec<u8>, ApiError> {
    let font = font(state)?;
    // the public verification page of a signed version (its code made on first render)
    let verify_url = match v.signature.is_some() && v.state != "superseded" {
        true => Some(crate::verify_public::verify_url(state, root, r.id, v.version).await?),
        false => None,
    };
    let alliance = state
        .catalog
        .list_alliances()
        .await?
        .into_iter()
        .find(|a| a.id == r.alliance_id)
        .map(|a| a.name)
        .unwrap_or_default();
    let template = state
        .catalog
        .get_template(r.alliance_id, &r.template_code)
        .await?;
    let exam_name = template
        .as_ref()
        .and_then(|t| t.definition.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(&r.template_code)
        .to_owned();
    let mut figures = Vec::new();
    if r.kind == "ecg" {
        if let Some(row) = state
            .catalog
            .find_ecgs_by_study(&r.study_instance_uid)
            .await?
            .into_iter()
            .next()
        {
            let ecg = crate::ecg::load_ecg(state, &row).await?;
            let png = tokio::task::spawn_blocking(move || {
                let header = crate::ecg::header_lines(&ecg, &row);
                dxhub_ecg::render::png(
                    &ecg,
                    &header,
                    &dxhub_ecg::render::RenderOptions::default(),
                    6.0,
                )
            })
            .await
            .map_err(internal)?
            .map_err(internal)?;
            figures.push(dxhub_pdf::Figure {
                caption: "心电图 25 mm/s 10 mm/mV".into(),
                image: png,
            });
        }
    } else if let Some(keys) = v.key_images.as_ref().and_then(Value::as_array) {
        for k in keys {
            let Some(uid) = k.get("sop_instance_uid").and_then(Value::as_str) else {
                continue;
            };
            let frame = k.get("frame").and_then(Value::as_u64).unwrap_or(1).max(1);
            let Some(inst) = state.catalog.get_instance(uid).await? else {
                continue;
            };
            if inst.study_instance_uid != r.study_instance_uid {
                continue;
            }
            let bytes = state
                .blobs
                .get_bytes(&inst.blob_key)
                .await
                .map_err(|e| ApiError::Unavailable(format!("object store: {e}")))?;
            let opts = dxhub_dicom::render::RenderOptions {
                frame: u32::try_from(frame).unwrap_or(1),
                viewport: Some((1024, 1024)),
                quality: 90,
                ..Default::default()
            };
            let img =
                tokio::task::spawn_blocking(move || dxhub_dicom::render::render(&bytes, &opts))
                    .await
                    .map_err(internal)?;
            match img {
                Ok(image) => figures.push(dxhub_pdf::Figure {
                    caption: format!("关键图像 {uid} 第 {frame} 帧"),
                    image,
                }),
                Err(e) => tracing::warn!(error = %e, "a key image could not be rendered"),
            }
        }
    }
    let sections: Vec<dxhub_pdf::Section> = ["findings", "impression", "recommendation"]
        .iter()
        .filter_map(|k| {
            let text = v.body.pointer(&format!("/sections/{k}"))?.as_str()?;
            (!text.trim().is_empty()).then(|| dxhub_pdf::Section {
                heading: section_label(k).to_owned(),
                text: text.to_owned(),
            })
        })
        .collect();
    let labels: Vec<(String, String)> = template
        .as_ref()
        .and_then(|t| t.definition.get("fields"))
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    Some((
                        f.get("key")?.as_str()?.to_owned(),
                        f.get("label")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut fields = Vec::new();
    if let Some(map) = v.body.get("fields").and_then(Value::as_object) {
        for (key, label) in &labels {
            if let Some(val) = map
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                fields.push((label.clone(), val.to_owned()));
            }
        }
    }
    if let Some(q) = &v.qc_grade {
        let label = match q.as_str() {
            "jia" => "甲级",
            "yi" => "乙级",
            "bing" => "丙级",
            "acceptable" => "合格",
            "unacceptable" => "不合格",
            other => other,
        };
        fields.push(("质控等级".into(), label.into()));
    }
    let signed = v.signature.is_some() && v.state != "superseded";
    let exam_type = match &r.exam_code {
        Some(code) => state
            .catalog
            .list_exam_types(r.alliance_id)
            .await?
            .into_iter()
            .find(|e| &e.code == code),
        None => None,
    };
    let qc = v
        .qc_grade
        .as_ref()
        .and_then(|g| serde_json::from_value(serde_json::json!(g)).ok());
    let hr = dxhub_core::recognition::hr_mark(
        exam_type.is_some_and(|e| e.recognition_eligible),
        signed,
        v.state == "superseded",
        qc,
    );
    let key = match v.key_id {
        Some(id) => state.catalog.get_signing_key(id).await?,
        None => None,
    };
    let addenda = state
        .catalog
        .report_addenda(r.id)
        .await?
        .into_iter()
        .filter(|a| a.version == v.version)
        .map(|a| dxhub_pdf::Section {
            heading: format!("补充报告（{}，{}）", a.author_login, shanghai(a.signed_at)),
            text: a.text,
        })
        .collect();
    let mut communications = Vec::new();
    for c in state
        .catalog
        .list_criticals(&dxhub_store::report::CriticalFilter {
            report_id: Some(r.id),
            limit: 50,
            ..Default::default()
        })
        .await?
    {
        communications.push(format!(
            "危急值（{}）由 {} 于 {} 报告",
            c.category,
            c.raised_by_login,
            shanghai(c.raised_at)
        ));
        if let Some(at) = c.escalated_at {
            communications.push(format!("  {} 超时未确认，已上报", shanghai(at)));
        }
        if let (Some(at), Some(name), Some(action)) = (c.ack_at, &c.ack_name, &c.ack_action) {
            communications.push(format!("  {} {} 已确认：{}", shanghai(at), name, action));
        }
    }
    let banner = match v.state.as_str() {
        "superseded" => Some(format!(
            "此版本已被更正版本取代（第 {} 版）",
            r.signed_version.unwrap_or(v.version)
        )),
        "signed" => None,
        _ => Some("草稿 未签名，不作诊断依据".to_owned()),
    };
    let title = if r.kind == "ecg" {
        "心电图诊断报告"
    } else {
        "医学影像诊断报告"
    };
    let doc = dxhub_pdf::ReportPdf {
        alliance,
        centre: state
            .settings
            .reports
            .centre_name
            .clone()
            .unwrap_or_else(|| "远程诊断中心".to_owned()),
        title: title.to_owned(),
        patient: vec![
            ("姓名".into(), pn(r.patient_name.as_deref())),
            ("性别".into(), sex_zh(r.patient_sex.as_deref())),
            ("出生日期".into(), ymd(r.patient_birth_date.as_deref())),
            ("患者ID".into(), r.patient_id.clone().unwrap_or_default()),
        ],
        exam: vec![
            ("检查项目".into(), exam_name),
            ("检查日期".into(), ymd(r.study_date.as_deref())),
            (
                "送检机构".into(),
                r.institution_name.clone().unwrap_or_default(),
            ),
            (
                "检查号".into(),
                r.accession_number.clone().unwrap_or_default(),
            ),
        ],
        banner,
        hr_mark: hr,
        sections,
        fields,
        figures,
        addenda,
        communications,
        signature: signed.then(|| dxhub_pdf::SignatureBlock {
            author: v.author_login.clone(),
            verifier: v.verifier_login.clone().unwrap_or_default(),
            signed_at: v.signed_at.map(shanghai).unwrap_or_default(),
            fingerprint: key.map(|k| k.fingerprint).unwrap_or_default(),
        }),
        verify_url,
        footer: format!(
            "报告编号 {}-v{}  ·  本报告经 SM2 电子签名，扫码或访问验证地址核验",
            r.id, v.version
        ),
    };
    tokio::task::spawn_blocking(move || dxhub_pdf::render(&doc, font))
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// The FHIR R4 `DiagnosticReport` of a version.
pub async fn fhir(
    state: &AppState,
    r: &Report,
    v: &ReportVersion,
    root: &str,
) -> Result<Value, ApiError> {
    let exam_name = state
        .catalog
        .get_template(r.alliance_id, &r.template_code)
        .await?
        .and_then(|t| {
            t.definition
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| r.template_code.clone());
    let base = root.to_owned();
    let status = if v.state == "signed" && v.kind == "correction" {
        "corrected".to_owned()
    } else {
        v.state.clone()
    };
    let effective = r.study_date.as_ref().map(|d| match &r.study_time {
        Some(t) if t.len() >= 6 => format!("{d}{}", &t[..6]),
        _ => d.clone(),
    });
    let input = dxhub_core::fhir::FhirReportInput {
        report_id: r.id,
        version: v.version,
        status,
        kind: if r.kind == "ecg" {
            dxhub_core::report_template::ReportKind::Ecg
        } else {
            dxhub_core::report_template::ReportKind::Imaging
        },
        code: (
            r.exam_code
                .clone()
                .unwrap_or_else(|| r.template_code.clone()),
            exam_name,
        ),
        patient_id: r.patient_id.clone(),
        patient_name: r.patient_name.as_deref().map(|n| pn(Some(n))),
        identity_hash: r.identity_hash.clone().unwrap_or_default(),
        study_instance_uid: r.study_instance_uid.clone(),
        accession_number: r.accession_number.clone(),
        effective,
        issued: v.signed_at.map(shanghai),
        performer: r.institution_name.clone().unwrap_or_default(),
        results_interpreter: v.verifier_login.clone(),
        conclusion: v
            .body
            .pointer("/sections/impression")
            .and_then(Value::as_str)
            .map(str::to_owned),
        presented_form_pdf_url: Some(format!(
            "{}/api/v1/reports/{}/pdf?version={}",
            base.trim_end_matches('/'),
            r.id,
            v.version
        )),
        base_url: base,
    };
    Ok(dxhub_core::fhir::diagnostic_report(&input))
}

/// Deliver one push-back: the PDF as an Encapsulated PDF and the text as a Basic Text SR,
/// by C-STORE to the institution's PACS. The DIMSE status of each.
pub async fn push(state: &AppState, p: &ReportPush) -> Result<Vec<u16>, ApiError> {
    let r = state
        .catalog
        .get_report(p.report_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {}", p.report_id)))?;
    let v = state
        .catalog
        .report_version(p.report_id, p.version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report version {}", p.version)))?;
    let settings = state
        .catalog
        .institution_report_settings(p.institution_id)
        .await?;
    let pacs = settings
        .pacs
        .ok_or_else(|| ApiError::Conflict("the institution has no PACS configured".into()))?;
    let pdf = render(state, &r, &v, &root_url(state, None)).await?;
    let study = state.catalog.get_study(&r.study_instance_uid).await?;
    let mut referenced = Vec::new();
    for se in state
        .catalog
        .list_series_of_study(&r.study_instance_uid)
        .await?
    {
        for i in state
            .catalog
            .list_instances_of_series(&se.series_instance_uid)
            .await?
        {
            referenced.push((
                se.series_instance_uid.clone(),
                i.sop_class_uid.clone(),
                i.sop_instance_uid.clone(),
            ));
        }
    }
    let signed_at = v.signed_at.unwrap_or(p.created_at);
    let dt = dicom_dt(signed_at);
    let uid_of =
        |what: &str| crate::ecg::uid_of(&format!("report-push|{}|{}|{what}", r.id, v.version));
    let mut ctx = dxhub_dicom::report_sop::ReportContext {
        patient_name: r.patient_name.clone(),
        patient_id: r.patient_id.clone(),
        patient_birth_date: r.patient_birth_date.clone(),
        patient_sex: r.patient_sex.clone(),
        study_instance_uid: r.study_instance_uid.clone(),
        study_date: r.study_date.clone(),
        study_time: r.study_time.clone(),
        accession_number: r.accession_number.clone(),
        study_id: r.study_id_attr.clone(),
        referring_physician: study.and_then(|s| s.referring_physician_name),
        institution_name: state
            .settings
            .reports
            .centre_name
            .clone()
            .unwrap_or_else(|| "dxhub".to_owned()),
        series_instance_uid: uid_of("pdf-series"),
        sop_instance_uid: uid_of("pdf"),
        series_number: 9901,
        instance_number: i32::try_from(v.version).unwrap_or(1),
        content_datetime: dt.clone(),
        document_title: format!(
            "{} 诊断报告",
            if r.kind == "ecg" {
                "心电图"
            } else {
                "影像"
            }
        ),
        author: v.author_login.clone(),
        verifier: v.verifier_login.clone().unwrap_or_default(),
        verifier_organization: r.institution_name.clone().unwrap_or_default(),
        verification_datetime: dt,
        referenced,
    };
    let pdf_obj = dxhub_dicom::report_sop::encapsulated_pdf(&ctx, &pdf).map_err(internal)?;
    ctx.series_instance_uid = uid_of("sr-series");
    ctx.sop_instance_uid = uid_of("sr");
    ctx.series_number = 9902;
    let sections = ["findings", "impression", "recommendation"]
        .iter()
        .filter_map(|k| {
            let text = v.body.pointer(&format!("/sections/{k}"))?.as_str()?;
            (!text.trim().is_empty()).then(|| (section_label(k).to_owned(), text.to_owned()))
        })
        .collect();
    let sr_obj = dxhub_dicom::report_sop::basic_text_sr(
        &ctx,
        &dxhub_dicom::report_sop::TextReport { sections },
    )
    .map_err(internal)?;
    let objects = vec![
        dxhub_dimse::scu::outgoing_from_part10(&pdf_obj).map_err(internal)?,
        dxhub_dimse::scu::outgoing_from_part10(&sr_obj).map_err(internal)?,
    ];
    let target = dxhub_dimse::scu::ScuTarget {
        host: pacs.host,
        port: pacs.port,
        called_ae: pacs.ae_title,
        calling_ae: state.settings.reports.push_calling_ae.clone(),
        timeout: state.settings.reports.push_timeout,
    };
    dxhub_dimse::scu::store(&target, &objects)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// DICOM DT in Asia/Shanghai: `YYYYMMDDHHMMSS+0800`.
fn dicom_dt(epoch_us: i64) -> String {
    // rfc3339 of the shifted instant: 2026-11-23T10:00:00Z
    let s = rfc3339(epoch_us + dxhub_core::worklist::SHANGHAI_OFFSET_US);
    let digits: String = s.chars().filter(char::is_ascii_digit).take(14).collect();
    format!("{digits}+0800")
}
