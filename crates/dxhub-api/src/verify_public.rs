//! The public verification page a signed report's PDF QR code opens
//! (`GET /api/v1/verify/{code}`): whoever holds the printout — a doctor at another member
//! hospital recognising the result (结果互认), the patient — checks it without an account.
//! The code is a random 128-bit value per signed version (made when its PDF is first
//! rendered), so the page cannot be reached by guessing report numbers. It runs the same
//! verification as `GET /api/v1/reports/{id}/verify` and shows only what the printout
//! already carries, with the patient's name masked (张*丰); no instance UIDs, no problem
//! texts. Every view is audited (actor kind `public`); answers are rate limited per client
//! address. HTML for a browser (Simplified Chinese and English), JSON otherwise.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dxhub_store::identity::NewAuditEntry;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{RequestMeta, rfc3339};
use crate::worklist::shanghai;
use crate::{ApiError, AppState};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(public_verify))
}

/// A fresh verification code: 16 random bytes, lower-case hex.
pub fn fresh_code() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    hex::encode(bytes)
}

/// The URL a signed version's QR code carries (its code made and stored on first use).
pub async fn verify_url(
    state: &AppState,
    root: &str,
    report_id: i64,
    version: i64,
) -> Result<String, ApiError> {
    let code = state
        .catalog
        .report_verify_code(report_id, version, &fresh_code(), state.worklist.now())
        .await?;
    Ok(format!("{root}/api/v1/verify/{code}"))
}

/// A name with all but its first (and, from three characters, last) character of each
/// word masked: `张^三丰` → `张*丰`, `李四` → `李*`, `ZHANG^SAN` → `Z***G S*N`.
pub fn mask_name(dicom_pn: &str) -> String {
    // the ideographic group when there is one
    let name = dicom_pn
        .split('=')
        .nth(1)
        .filter(|s| !s.trim_matches('^').is_empty())
        .unwrap_or_else(|| dicom_pn.split('=').next().unwrap_or(""));
    // a Chinese name is masked as one word (张^三丰 → 张*丰), others word by word
    let cjk = name
        .chars()
        .filter(|c| *c != '^' && !c.is_whitespace())
        .all(|c| c >= '\u{2E80}');
    let words: Vec<String> = if cjk {
        vec![
            name.chars()
                .filter(|c| *c != '^' && !c.is_whitespace())
                .collect(),
        ]
    } else {
        name.split(['^', ' ']).map(str::to_owned).collect()
    };
    words
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| {
            let c: Vec<char> = w.chars().collect();
            match c.len() {
                1 => w.to_owned(),
                2 => format!("{}*", c[0]),
                n => format!("{}{}{}", c[0], "*".repeat(n - 2), c[n - 1]),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Check a printed report by the code in its QR code (no login).
#[utoipa::path(get, path = "/api/v1/verify/{code}", tag = "reports", params(("code" = String, Path)),
    responses((status = 200, description = "{valid, report_id, version, current_version, superseded, signer, signed_at, fingerprint, institution, study_date, modalities, patient (masked), checks, instances_added (count), addenda (count)}; text/html for browsers"),
        (status = 404, description = "unknown code", body = crate::dto::ErrorBody), (status = 429, body = crate::dto::ErrorBody)))]
async fn public_verify(
    State(state): State<AppState>,
    meta: RequestMeta,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let audit = |outcome: &str, report: Option<(i64, Option<i64>)>| NewAuditEntry {
        actor_kind: "public".into(),
        actor: "verify-code".into(),
        institution_id: report.and_then(|(_, i)| i),
        action: "report-verify-public".into(),
        object_kind: Some("report".into()),
        object_id: report.map(|(id, _)| id.to_string()),
        outcome: outcome.into(),
        client: meta.client.clone(),
        request_id: meta.request_id.clone(),
    };
    let key = meta.client.clone().unwrap_or_else(|| "unknown".into());
    if !state.verify_limiter.try_acquire(&key) {
        state
            .catalog
            .append_audit(&audit("rate-limited", None))
            .await?;
        return Err(ApiError::TooManyRequests);
    }
    let unknown = || ApiError::Coded {
        status: StatusCode::NOT_FOUND,
        code: "unknown-verify-code",
        message: "no signed report has this verification code".into(),
    };
    let well_formed = code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit());
    let found = match well_formed {
        true => state.catalog.report_by_verify_code(&code).await?,
        false => None,
    };
    let Some((report_id, version)) = found else {
        state
            .catalog
            .append_audit(&audit("not-found", None))
            .await?;
        return Err(unknown());
    };
    let r = state
        .catalog
        .get_report(report_id)
        .await?
        .ok_or_else(unknown)?;
    let v = crate::reports::signed_version_of(&state, &r, Some(version)).await?;
    let full = crate::reports::verify_version(&state, &r, &v).await?;
    let valid = full["all_valid"].as_bool() == Some(true);
    state
        .catalog
        .append_audit(&audit(
            if valid { "success" } else { "failure" },
            Some((r.id, r.institution_id)),
        ))
        .await?;
    let out = json!({
        "valid": valid,
        "report_id": r.id,
        "version": v.version,
        "current_version": r.signed_version,
        "superseded": full["superseded"],
        "kind": r.kind,
        "signer": full["signer"],
        "signed_at": v.signed_at.map(rfc3339),
        "fingerprint": full["fingerprint"],
        "institution": r.institution_name,
        "study_date": r.study_date.as_deref().map(|d| crate::report_pdf::ymd(Some(d))),
        "modalities": r.modalities_in_study,
        "patient": r.patient_name.as_deref().map(mask_name),
        "checks": full["checks"],
        "instances_added": full["instances_added"].as_array().map_or(0, Vec::len),
        "addenda": full["addenda"].as_array().map_or(0, Vec::len),
    });
    let html = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let no_store = (header::CACHE_CONTROL, "no-store");
    Ok(if html {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8"), no_store],
            page(&out, v.signed_at),
        )
            .into_response()
    } else {
        ([no_store], axum::Json(out)).into_response()
    })
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The phone-sized page (no scripts, no external resources).
fn page(v: &Value, signed_at: Option<i64>) -> String {
    let s = |k: &str| match &v[k] {
        Value::String(s) => esc(s),
        Value::Null => String::new(),
        other => esc(&other.to_string()),
    };
    let valid = v["valid"].as_bool() == Some(true);
    let (class, verdict) = if valid {
        ("ok", "报告真实有效 · Authentic signed report")
    } else {
        (
            "bad",
            "验证未通过：报告或其影像与签名不符 · Verification failed: the report or its images differ from what was signed",
        )
    };
    let mut notes = String::new();
    if let (Some(cur), Some(ver)) = (v["current_version"].as_i64(), v["version"].as_i64())
        && cur != ver
    {
        notes.push_str(&format!(
            "<p class=\"warn\">此版本（第 {ver} 版）已被更正，现行版本为第 {cur} 版。· Version {ver} was corrected: version {cur} is in force.</p>"
        ));
    }
    if let Some(n) = v["instances_added"].as_u64().filter(|n| *n > 0) {
        notes.push_str(&format!(
            "<p class=\"note\">签名后又收到 {n} 幅影像，不在本报告签名范围内。· {n} image(s) arrived after signing and are not covered.</p>"
        ));
    }
    let row = |zh: &str, en: &str, val: String| {
        format!("<tr><th>{zh}<br><small>{en}</small></th><td>{val}</td></tr>")
    };
    let rows = [
        row(
            "报告编号",
            "Report",
            format!("{}-v{}", s("report_id"), s("version")),
        ),
        row("患者", "Patient", s("patient")),
        row("检查日期", "Exam date", s("study_date")),
        row("检查类型", "Modality", s("modalities")),
        row("检查机构", "Examined at", s("institution")),
        row("签发医师", "Signed by", s("signer")),
        row(
            "签发时间",
            "Signed at",
            signed_at.map(|t| esc(&shanghai(t))).unwrap_or_default(),
        ),
        row(
            "签名公钥 SM3 指纹",
            "Key fingerprint (SM3)",
            format!("<code>{}</code>", s("fingerprint")),
        ),
    ]
    .concat();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>报告核验 · Report verification</title>\
<style>body{{font-family:sans-serif;margin:1em;max-width:40em}}\
.ok{{background:#e6f4ea;color:#137333}}.bad{{background:#fce8e6;color:#a50e0e}}\
.verdict{{padding:.8em;border-radius:6px;font-weight:bold}}.warn{{color:#a50e0e}}\
th{{text-align:left;vertical-align:top;padding:.3em .8em .3em 0}}td{{padding:.3em 0}}\
code{{word-break:break-all}}</style></head><body>\
<h1>报告核验 <small>Report verification</small></h1>\
<p class=\"verdict {class}\" id=\"verdict\" data-valid=\"{valid}\">{verdict}</p>{notes}\
<table>{rows}</table>\
<p><small>请核对纸质报告上的内容与本页一致。· Check that the printout matches this page.</small></p>\
</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_masked_per_word() {
        assert_eq!(mask_name("张三丰"), "张*丰");
        assert_eq!(mask_name("李四"), "李*");
        assert_eq!(mask_name("王"), "王");
        assert_eq!(mask_name("张^三丰"), "张*丰");
        assert_eq!(mask_name("欧阳^娜娜"), "欧**娜");
        assert_eq!(mask_name("ZHANG^SAN"), "Z***G S*N");
        assert_eq!(mask_name("Zhang^San=张^三"), "张*");
        assert_eq!(mask_name("Zhang^San=^"), "Z***g S*n");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn codes_are_128_bit_hex() {
        let a = fresh_code();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, fresh_code());
    }

    #[test]
    fn page_escapes_and_says_superseded() {
        let p = page(
            &json!({"valid": true, "report_id": 7, "version": 1, "current_version": 2,
                    "institution": "<b>卫生院</b>", "instances_added": 1}),
            Some(0),
        );
        assert!(p.contains("&lt;b&gt;卫生院"), "{p}");
        assert!(p.contains("现行版本为第 2 版"), "{p}");
        assert!(p.contains("data-valid=\"true\""), "{p}");
        assert!(p.contains("签名后又收到 1 幅影像"), "{p}");
    }
}
