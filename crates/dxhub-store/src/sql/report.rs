//! SQL of reports ([`crate::report`]). Every step is one write transaction: the report row
//! is locked (PostgreSQL `FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` serialises), its state and
//! current version are checked against what the caller saw, and the work item moves in the
//! same transaction ([`super::worklist::transition_in`]), so a report and its work item
//! never disagree. Events go through the worklist's `emit` (SSE stream, notifications,
//! webhooks).

use async_trait::async_trait;
use dxhub_core::worklist::{self as wl, WorkState};
use serde_json::Value;

use super::worklist::{emit, locked_item_in, must_item, transition_in};
use super::{SqlCatalog, Tx, in_list, routed_sql};
use crate::catalog::{Dialect, Error, Result};
use crate::report::{
    Addendum, CategoryRow, CriticalFilter, CriticalLogEntry, CriticalValue, DraftSpec, ExamTypeRow,
    InstitutionReportSettings, PacsTarget, PushResult, RecognitionRow, Report, ReportDefaults,
    ReportFilter, ReportPush, ReportStore, ReportVersion, Signature, SigningKeyRow, TemplateRow,
    VersionBody,
};
use crate::worklist::{Actor, WorkItem};

const US_PER_S: i64 = 1_000_000;

/// Run `$body` in a write transaction: commit on `Ok`, roll back on `Err` (sqlx would only
/// roll a dropped transaction back when its connection is next used, keeping row locks).
macro_rules! write_tx {
    ($self:ident, $tx:ident, $body:block) => {{
        let mut $tx = $self.begin_write().await?;
        let out: Result<_> = async { $body }.await;
        match out {
            Ok(v) => {
                $tx.commit().await?;
                Ok(v)
            }
            Err(e) => {
                $tx.rollback().await?;
                Err(e)
            }
        }
    }};
}

const REPORT_SELECT: &str = "SELECT r.id, r.alliance_id, r.study_id, r.study_instance_uid, \
     r.work_item_id, r.institution_id, i.name AS institution_name, r.identity_hash, r.kind, \
     r.template_code, r.exam_code, r.state, r.current_version, r.signed_version, r.author_id, \
     u.login AS author_login, r.created_at, r.updated_at, r.signed_at, p.patient_id, \
     p.patient_name, p.patient_sex, p.patient_birth_date, s.study_date, s.study_time, \
     s.study_description, s.accession_number, s.modalities_in_study, \
     s.referring_physician_name, s.study_id AS study_id_attr, \
     (SELECT COUNT(*) FROM critical_values c WHERE c.report_id = r.id AND c.state = 'open') \
     AS open_critical \
     FROM reports r JOIN studies s ON s.id = r.study_id JOIN patients p ON p.id = s.patient_ref \
     JOIN users u ON u.id = r.author_id LEFT JOIN institutions i ON i.id = r.institution_id";

const VERSION_SELECT: &str = "SELECT v.report_id, v.version, v.kind, v.state, v.body, \
     v.machine, v.confirmations, v.key_images, v.qc_grade, v.critical, v.critical_category, \
     v.author_id, a.login AS author_login, v.written_at, v.submitted_at, v.reason, \
     v.returned_by, rb.login AS returned_by_login, v.returned_at, v.verifier_id, \
     ve.login AS verifier_login, v.signed_at, v.signed_content, v.signature, v.key_id, \
     v.superseded_at \
     FROM report_versions v JOIN users a ON a.id = v.author_id \
     LEFT JOIN users ve ON ve.id = v.verifier_id LEFT JOIN users rb ON rb.id = v.returned_by";

const KEY_SELECT: &str = "SELECT k.id, k.user_id, u.login, i.alliance_id, k.public_key, \
     k.fingerprint, k.sealed_secret, k.kek_id, k.created_at, k.revoked_at \
     FROM signing_keys k JOIN users u ON u.id = k.user_id \
     JOIN institutions i ON i.id = u.institution_id";

const CRITICAL_SELECT: &str = "SELECT c.id, c.alliance_id, c.report_id, c.work_item_id, \
     r.study_instance_uid, c.institution_id, i.name AS institution_name, c.category, c.note, \
     c.state, c.raised_by, u.login AS raised_by_login, c.raised_at, c.due_at, c.escalated_at, \
     c.ack_by, c.ack_name, c.ack_action, c.ack_at \
     FROM critical_values c JOIN reports r ON r.id = c.report_id \
     JOIN users u ON u.id = c.raised_by LEFT JOIN institutions i ON i.id = c.institution_id";

const PUSH_COLUMNS: &str = "id, report_id, version, institution_id, target, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at";

#[derive(sqlx::FromRow)]
struct VersionRow {
    report_id: i64,
    version: i64,
    kind: String,
    state: String,
    body: String,
    machine: Option<String>,
    confirmations: Option<String>,
    key_images: Option<String>,
    qc_grade: Option<String>,
    critical: i64,
    critical_category: Option<String>,
    author_id: i64,
    author_login: String,
    written_at: i64,
    submitted_at: Option<i64>,
    reason: Option<String>,
    returned_by: Option<i64>,
    returned_by_login: Option<String>,
    returned_at: Option<i64>,
    verifier_id: Option<i64>,
    verifier_login: Option<String>,
    signed_at: Option<i64>,
    signed_content: Option<String>,
    signature: Option<String>,
    key_id: Option<i64>,
    superseded_at: Option<i64>,
}

fn json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| Error::Invalid(format!("stored JSON: {e}")))
}

fn opt_json(s: Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(json).transpose()
}

fn opt_str(v: &Option<Value>) -> Option<String> {
    v.as_ref().map(Value::to_string)
}

impl TryFrom<VersionRow> for ReportVersion {
    type Error = Error;
    fn try_from(r: VersionRow) -> Result<Self> {
        Ok(Self {
            report_id: r.report_id,
            version: r.version,
            kind: r.kind,
            state: r.state,
            body: json(&r.body)?,
            machine: opt_json(r.machine)?,
            confirmations: opt_json(r.confirmations)?,
            key_images: opt_json(r.key_images)?,
            qc_grade: r.qc_grade,
            critical: r.critical != 0,
            critical_category: r.critical_category,
            author_id: r.author_id,
            author_login: r.author_login,
            written_at: r.written_at,
            submitted_at: r.submitted_at,
            reason: r.reason,
            returned_by: r.returned_by,
            returned_by_login: r.returned_by_login,
            returned_at: r.returned_at,
            verifier_id: r.verifier_id,
            verifier_login: r.verifier_login,
            signed_at: r.signed_at,
            signed_content: r.signed_content,
            signature: r.signature,
            key_id: r.key_id,
            superseded_at: r.superseded_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TemplateDbRow {
    id: i64,
    alliance_id: i64,
    code: String,
    name: String,
    definition: String,
    enabled: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<TemplateDbRow> for TemplateRow {
    type Error = Error;
    fn try_from(r: TemplateDbRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            alliance_id: r.alliance_id,
            code: r.code,
            name: r.name,
            definition: json(&r.definition)?,
            enabled: r.enabled != 0,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ExamDbRow {
    id: i64,
    alliance_id: i64,
    code: String,
    definition: String,
    recognition_eligible: i64,
    validity_days: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ExamDbRow> for ExamTypeRow {
    type Error = Error;
    fn try_from(r: ExamDbRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            alliance_id: r.alliance_id,
            code: r.code,
            definition: json(&r.definition)?,
            recognition_eligible: r.recognition_eligible != 0,
            validity_days: r.validity_days,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyDbRow {
    id: i64,
    user_id: i64,
    login: String,
    alliance_id: i64,
    public_key: String,
    fingerprint: String,
    sealed_secret: String,
    kek_id: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<KeyDbRow> for SigningKeyRow {
    fn from(r: KeyDbRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            login: r.login,
            alliance_id: r.alliance_id,
            public_key: r.public_key,
            fingerprint: r.fingerprint,
            sealed_secret: r.sealed_secret,
            kek_id: r.kek_id,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// The report row's state, locked for the transaction.
#[derive(sqlx::FromRow)]
struct Head {
    id: i64,
    work_item_id: i64,
    institution_id: Option<i64>,
    state: String,
    current_version: i64,
    signed_version: Option<i64>,
}

async fn lock_head(tx: &mut Tx, dialect: Dialect, report_id: i64) -> Result<Head> {
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    sqlx::query_as::<_, Head>(&format!(
        "SELECT id, work_item_id, institution_id, state, current_version, signed_version \
         FROM reports WHERE id = $1{lock}"
    ))
    .bind(report_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| Error::NotFound(format!("report {report_id}")))
}

fn expect_current(head: &Head, version: i64) -> Result<()> {
    if head.current_version != version {
        return Err(Error::Conflict(format!(
            "stale-version: the report is at version {}, not {version}",
            head.current_version
        )));
    }
    Ok(())
}

fn wrong_state(head: &Head, what: &str) -> Error {
    Error::Conflict(format!(
        "wrong-state: a {} report cannot be {what}",
        head.state
    ))
}

async fn report_in(tx: &mut Tx, id: i64) -> Result<Report> {
    Ok(
        sqlx::query_as::<_, Report>(&format!("{REPORT_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

async fn version_in(tx: &mut Tx, id: i64, version: i64) -> Result<ReportVersion> {
    sqlx::query_as::<_, VersionRow>(&format!(
        "{VERSION_SELECT} WHERE v.report_id = $1 AND v.version = $2"
    ))
    .bind(id)
    .bind(version)
    .fetch_one(&mut **tx)
    .await?
    .try_into()
}

#[allow(clippy::too_many_arguments)] // one column each
async fn insert_version(
    tx: &mut Tx,
    report_id: i64,
    version: i64,
    kind: &str,
    state: &str,
    c: &VersionBody,
    author_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO report_versions (report_id, version, kind, state, body, machine, \
         confirmations, key_images, qc_grade, critical, critical_category, author_id, \
         written_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(report_id)
    .bind(version)
    .bind(kind)
    .bind(state)
    .bind(c.body.to_string())
    .bind(opt_str(&c.machine))
    .bind(opt_str(&c.confirmations))
    .bind(opt_str(&c.key_images))
    .bind(c.qc_grade.as_deref())
    .bind(i64::from(c.critical))
    .bind(c.critical_category.as_deref())
    .bind(author_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The institution and the ones above it that are not the county lead hospital (a
/// township heads its village clinics and sees their reports).
async fn clinic_chain(tx: &mut Tx, institution_id: Option<i64>) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut next = institution_id;
    while let Some(id) = next {
        if out.contains(&id) || out.len() > 8 {
            break;
        }
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT level, parent_id FROM institutions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some((level, parent)) = row else { break };
        if level == "county" && !out.is_empty() {
            break;
        }
        out.push(id);
        next = parent;
    }
    Ok(out)
}

/// An active clinic user who receives reports and critical values: id, login, on-duty
/// schedule.
type ClinicUser = (i64, String, Option<String>);

/// Active clinic users of an institution and of the township above a village clinic
/// (who receive reports and critical values).
async fn clinic_users(tx: &mut Tx, institution_id: Option<i64>) -> Result<Vec<ClinicUser>> {
    let chain = clinic_chain(tx, institution_id).await?;
    if chain.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as::<_, ClinicUser>(&format!(
        "SELECT id, login, duty_schedule FROM users WHERE institution_id IN {} \
         AND disabled = 0 AND role IN ('clinic_doctor', 'clinic_tech') ORDER BY id",
        in_list(&chain)
    ))
    .fetch_all(&mut **tx)
    .await?)
}

/// The clinic users a critical value raised at `now` alerts: those on duty by their
/// schedule (no schedule: always). When nobody is on duty, all of them — a critical
/// value is never left unannounced; the second value says so.
fn on_duty_users(users: Vec<ClinicUser>, now: i64) -> (Vec<ClinicUser>, bool) {
    let (on, off): (Vec<_>, Vec<_>) = users
        .into_iter()
        .partition(|(_, _, schedule)| wl::on_duty(schedule.as_deref(), now));
    if on.is_empty() && !off.is_empty() {
        (off, true)
    } else {
        (on, false)
    }
}

/// Queue the push-back of `version` when the institution has a PACS.
async fn queue_push(
    tx: &mut Tx,
    report_id: i64,
    version: i64,
    institution_id: Option<i64>,
    now: i64,
) -> Result<()> {
    // the nearest PACS: the source institution's, else its township's
    for inst in clinic_chain(tx, institution_id).await? {
        let row: Option<(Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT pacs_ae_title, pacs_host, pacs_port FROM institutions WHERE id = $1",
        )
        .bind(inst)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((Some(ae), Some(host), Some(port))) = row else {
            continue;
        };
        sqlx::query(
            "INSERT INTO report_pushes (report_id, version, institution_id, target, state, \
             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(report_id)
        .bind(version)
        .bind(inst)
        .bind(format!("{ae}@{host}:{port}"))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        break;
    }
    Ok(())
}

async fn log_critical(
    tx: &mut Tx,
    critical_id: i64,
    kind: &str,
    actor: &str,
    detail: &Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO critical_log (critical_id, at, kind, actor, detail) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(critical_id)
    .bind(now)
    .bind(kind)
    .bind(actor)
    .bind(detail.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn critical_in(tx: &mut Tx, id: i64) -> Result<CriticalValue> {
    Ok(
        sqlx::query_as::<_, CriticalValue>(&format!("{CRITICAL_SELECT} WHERE c.id = $1"))
            .bind(id)
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Tell the clinic about a report event (signed, corrected, addendum).
#[allow(clippy::too_many_arguments)]
async fn tell_clinic(
    tx: &mut Tx,
    item: &WorkItem,
    kind: &str,
    report_id: i64,
    version: i64,
    institution_id: Option<i64>,
    actor: &Actor,
    now: i64,
) -> Result<()> {
    let users: Vec<i64> = clinic_users(tx, institution_id)
        .await?
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    emit(
        tx,
        item,
        kind,
        actor,
        serde_json::json!({"report_id": report_id, "version": version}),
        &users,
        now,
    )
    .await?;
    Ok(())
}

impl SqlCatalog {
    fn lock_suffix(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }
}

#[async_trait]
impl ReportStore for SqlCatalog {
    async fn seed_report_defaults(
        &self,
        alliance_id: i64,
        defaults: &ReportDefaults,
        now: i64,
    ) -> Result<()> {
        write_tx!(self, tx, {
            for (code, name, def) in &defaults.templates {
                sqlx::query(
                    "INSERT INTO report_templates (alliance_id, code, name, definition, enabled, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $5) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(alliance_id)
                .bind(code)
                .bind(name)
                .bind(def.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for (code, def, eligible, validity) in &defaults.exam_types {
                sqlx::query(
                    "INSERT INTO exam_types (alliance_id, code, definition, \
                     recognition_eligible, validity_days, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
                )
                .bind(alliance_id)
                .bind(code)
                .bind(def.to_string())
                .bind(i64::from(*eligible))
                .bind(*validity)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let have: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM critical_categories WHERE alliance_id = $1",
            )
            .bind(alliance_id)
            .fetch_one(&mut *tx)
            .await?;
            if have == 0 {
                for (pos, (code, def)) in defaults.categories.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO critical_categories (alliance_id, code, definition, position) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(alliance_id)
                    .bind(code)
                    .bind(def.to_string())
                    .bind(pos as i64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Ok(())
        })
    }

    async fn list_templates(&self, alliance_id: i64) -> Result<Vec<TemplateRow>> {
        sqlx::query_as::<_, TemplateDbRow>(
            "SELECT id, alliance_id, code, name, definition, enabled, created_at, updated_at \
             FROM report_templates WHERE alliance_id = $1 ORDER BY id",
        )
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(TemplateRow::try_from)
        .collect()
    }

    async fn get_template(&self, alliance_id: i64, code: &str) -> Result<Option<TemplateRow>> {
        sqlx::query_as::<_, TemplateDbRow>(
            "SELECT id, alliance_id, code, name, definition, enabled, created_at, updated_at \
             FROM report_templates WHERE alliance_id = $1 AND code = $2",
        )
        .bind(alliance_id)
        .bind(code)
        .fetch_optional(&self.read)
        .await?
        .map(TemplateRow::try_from)
        .transpose()
    }

    async fn put_template(
        &self,
        alliance_id: i64,
        code: &str,
        name: &str,
        definition: &Value,
        enabled: bool,
        now: i64,
    ) -> Result<TemplateRow> {
        write_tx!(self, tx, {
            sqlx::query(
                "INSERT INTO report_templates (alliance_id, code, name, definition, enabled, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (alliance_id, code) DO UPDATE SET name = excluded.name, \
                 definition = excluded.definition, enabled = excluded.enabled, \
                 updated_at = excluded.updated_at",
            )
            .bind(alliance_id)
            .bind(code)
            .bind(name)
            .bind(definition.to_string())
            .bind(i64::from(enabled))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })?;
        self.get_template(alliance_id, code)
            .await?
            .ok_or_else(|| Error::NotFound(format!("template {code}")))
    }

    async fn list_exam_types(&self, alliance_id: i64) -> Result<Vec<ExamTypeRow>> {
        sqlx::query_as::<_, ExamDbRow>(
            "SELECT id, alliance_id, code, definition, recognition_eligible, validity_days, \
             created_at, updated_at FROM exam_types WHERE alliance_id = $1 ORDER BY id",
        )
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(ExamTypeRow::try_from)
        .collect()
    }

    async fn put_exam_type(
        &self,
        alliance_id: i64,
        code: &str,
        definition: &Value,
        eligible: bool,
        validity_days: Option<i64>,
        now: i64,
    ) -> Result<ExamTypeRow> {
        write_tx!(self, tx, {
            sqlx::query(
                "INSERT INTO exam_types (alliance_id, code, definition, recognition_eligible, \
                 validity_days, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (alliance_id, code) DO UPDATE SET definition = excluded.definition, \
                 recognition_eligible = excluded.recognition_eligible, \
                 validity_days = excluded.validity_days, updated_at = excluded.updated_at",
            )
            .bind(alliance_id)
            .bind(code)
            .bind(definition.to_string())
            .bind(i64::from(eligible))
            .bind(validity_days)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })?;
        self.list_exam_types(alliance_id)
            .await?
            .into_iter()
            .find(|e| e.code == code)
            .ok_or_else(|| Error::NotFound(format!("exam type {code}")))
    }

    async fn list_critical_categories(&self, alliance_id: i64) -> Result<Vec<CategoryRow>> {
        sqlx::query_as::<_, (String, String, i64)>(
            "SELECT code, definition, position FROM critical_categories \
             WHERE alliance_id = $1 ORDER BY position",
        )
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(|(code, def, position)| {
            Ok(CategoryRow {
                code,
                definition: json(&def)?,
                position,
            })
        })
        .collect()
    }

    async fn replace_critical_categories(
        &self,
        alliance_id: i64,
        categories: &[(String, Value)],
    ) -> Result<()> {
        write_tx!(self, tx, {
            sqlx::query("DELETE FROM critical_categories WHERE alliance_id = $1")
                .bind(alliance_id)
                .execute(&mut *tx)
                .await?;
            for (pos, (code, def)) in categories.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO critical_categories (alliance_id, code, definition, position) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(alliance_id)
                .bind(code)
                .bind(def.to_string())
                .bind(pos as i64)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })
    }

    async fn active_signing_key(&self, user_id: i64) -> Result<Option<SigningKeyRow>> {
        Ok(sqlx::query_as::<_, KeyDbRow>(&format!(
            "{KEY_SELECT} WHERE k.user_id = $1 AND k.revoked_at IS NULL"
        ))
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?
        .map(SigningKeyRow::from))
    }

    async fn get_signing_key(&self, id: i64) -> Result<Option<SigningKeyRow>> {
        Ok(
            sqlx::query_as::<_, KeyDbRow>(&format!("{KEY_SELECT} WHERE k.id = $1"))
                .bind(id)
                .fetch_optional(&self.read)
                .await?
                .map(SigningKeyRow::from),
        )
    }

    async fn add_signing_key(
        &self,
        user_id: i64,
        public_key: &str,
        fingerprint: &str,
        sealed_secret: &str,
        kek_id: &str,
        now: i64,
    ) -> Result<SigningKeyRow> {
        let id: i64 = write_tx!(self, tx, {
            sqlx::query(
                "UPDATE signing_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO signing_keys (user_id, public_key, fingerprint, sealed_secret, \
                 kek_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(user_id)
            .bind(public_key)
            .bind(fingerprint)
            .bind(sealed_secret)
            .bind(kek_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            Ok(id)
        })?;
        self.get_signing_key(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("signing key {id}")))
    }

    async fn list_signing_keys(&self, alliance_id: Option<i64>) -> Result<Vec<SigningKeyRow>> {
        Ok(sqlx::query_as::<_, KeyDbRow>(&format!(
            "{KEY_SELECT} WHERE i.alliance_id = COALESCE($1, i.alliance_id) ORDER BY k.id"
        ))
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(SigningKeyRow::from)
        .collect())
    }

    async fn reseal_signing_key(
        &self,
        id: i64,
        old_kek_id: &str,
        sealed_secret: &str,
        kek_id: &str,
    ) -> Result<bool> {
        write_tx!(self, tx, {
            let done = sqlx::query(
                "UPDATE signing_keys SET sealed_secret = $3, kek_id = $4 \
                 WHERE id = $1 AND kek_id = $2",
            )
            .bind(id)
            .bind(old_kek_id)
            .bind(sealed_secret)
            .bind(kek_id)
            .execute(&mut *tx)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn signing_authority(&self, user_id: i64) -> Result<bool> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT signing_authority FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(v.unwrap_or(0) != 0)
    }

    async fn set_signing_authority(&self, user_id: i64, granted: bool) -> Result<()> {
        write_tx!(self, tx, {
            let done = sqlx::query("UPDATE users SET signing_authority = $2 WHERE id = $1")
                .bind(user_id)
                .bind(i64::from(granted))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Error::NotFound(format!("user {user_id}")));
            }
            Ok(())
        })
    }

    async fn set_duty_schedule(&self, user_id: i64, schedule: Option<&str>) -> Result<()> {
        crate::worklist::check_schedule(schedule)?;
        let schedule = schedule.map(str::trim).filter(|s| !s.is_empty());
        write_tx!(self, tx, {
            let done = sqlx::query("UPDATE users SET duty_schedule = $2 WHERE id = $1")
                .bind(user_id)
                .bind(schedule)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(Error::NotFound(format!("user {user_id}")));
            }
            Ok(())
        })
    }

    async fn institution_report_settings(
        &self,
        institution_id: i64,
    ) -> Result<InstitutionReportSettings> {
        let row: Option<(Option<i64>, Option<String>, Option<String>, Option<i64>)> =
            sqlx::query_as(
                "SELECT head_user_id, pacs_ae_title, pacs_host, pacs_port FROM institutions \
                 WHERE id = $1",
            )
            .bind(institution_id)
            .fetch_optional(&self.read)
            .await?;
        let (head, ae, host, port) =
            row.ok_or_else(|| Error::NotFound(format!("institution {institution_id}")))?;
        let pacs = match (ae, host, port) {
            (Some(ae_title), Some(host), Some(port)) => Some(PacsTarget {
                ae_title,
                host,
                port: u16::try_from(port).unwrap_or(104),
            }),
            _ => None,
        };
        Ok(InstitutionReportSettings {
            head_user_id: head,
            pacs,
        })
    }

    async fn set_institution_report_settings(
        &self,
        institution_id: i64,
        head_user_id: Option<Option<i64>>,
        pacs: Option<Option<PacsTarget>>,
    ) -> Result<()> {
        write_tx!(self, tx, {
            if let Some(head) = head_user_id {
                sqlx::query("UPDATE institutions SET head_user_id = $2 WHERE id = $1")
                    .bind(institution_id)
                    .bind(head)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(pacs) = pacs {
                let (ae, host, port) = match pacs {
                    Some(p) => (Some(p.ae_title), Some(p.host), Some(i64::from(p.port))),
                    None => (None, None, None),
                };
                sqlx::query(
                    "UPDATE institutions SET pacs_ae_title = $2, pacs_host = $3, pacs_port = $4 \
                     WHERE id = $1",
                )
                .bind(institution_id)
                .bind(ae)
                .bind(host)
                .bind(port)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        })
    }

    async fn save_draft(
        &self,
        spec: &DraftSpec,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)> {
        let dialect = self.dialect;
        let user = actor
            .user_id
            .ok_or_else(|| Error::Invalid("a report needs a user".into()))?;
        let (id, version) = write_tx!(self, tx, {
            // the report before its work item, in the order submit, return and sign take
            // them (PostgreSQL would otherwise deadlock an autosave with a submit)
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT r.id FROM reports r JOIN work_items w ON w.study_id = r.study_id \
                 WHERE w.id = $1",
            )
            .bind(spec.work_item_id)
            .fetch_optional(&mut *tx)
            .await?;
            let mut head = match existing {
                Some(id) => Some(lock_head(&mut tx, dialect, id).await?),
                None => None,
            };
            let item = locked_item_in(&mut tx, dialect, spec.work_item_id).await?;
            if head.is_none() {
                // created meanwhile by another first draft (the item's lock orders those)
                let created: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM reports WHERE study_id = $1")
                        .bind(item.study_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                if let Some(id) = created {
                    head = Some(lock_head(&mut tx, dialect, id).await?);
                }
            }
            // the holder's step; a drafted item only renews its lease (no event per autosave)
            if item.state == WorkState::Drafted {
                if item.claimed_by != Some(user) {
                    return Err(Error::Conflict("not-holder".into()));
                }
                sqlx::query(
                    "UPDATE work_items SET lease_expires_at = $2, updated_at = $3 WHERE id = $1",
                )
                .bind(item.id)
                .bind(now + lease_s * US_PER_S)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            } else {
                transition_in(
                    &mut tx,
                    dialect,
                    item.id,
                    WorkState::Drafted,
                    actor,
                    now,
                    lease_s,
                )
                .await?;
            }
            let (id, version) = match head {
                Some(head) => {
                    if !matches!(head.state.as_str(), "draft" | "returned") {
                        return Err(wrong_state(
                            &head,
                            "edited (add an addendum or a correction)",
                        ));
                    }
                    if spec.base_version != Some(head.current_version) {
                        return Err(Error::Conflict(format!(
                            "stale-version: the report is at version {}",
                            head.current_version
                        )));
                    }
                    let v = head.current_version + 1;
                    sqlx::query(
                        "UPDATE reports SET state = 'draft', current_version = $2, author_id = $3, \
                         template_code = $4, exam_code = COALESCE($5, exam_code), kind = $6, \
                         updated_at = $7 WHERE id = $1",
                    )
                    .bind(head.id)
                    .bind(v)
                    .bind(user)
                    .bind(&spec.template_code)
                    .bind(spec.exam_code.as_deref())
                    .bind(&spec.kind)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    (head.id, v)
                }
                None => {
                    if spec.base_version.is_some() {
                        return Err(Error::Conflict(
                            "stale-version: the report does not exist yet".into(),
                        ));
                    }
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO reports (alliance_id, study_id, study_instance_uid, \
                         work_item_id, institution_id, identity_hash, kind, template_code, \
                         exam_code, state, current_version, author_id, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', 1, $10, $11, $11) \
                         RETURNING id",
                    )
                    .bind(item.alliance_id)
                    .bind(item.study_id)
                    .bind(&item.study_instance_uid)
                    .bind(item.id)
                    .bind(item.institution_id)
                    .bind(item.identity_hash.as_deref())
                    .bind(&spec.kind)
                    .bind(&spec.template_code)
                    .bind(spec.exam_code.as_deref())
                    .bind(user)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    (id, 1)
                }
            };
            insert_version(
                &mut tx,
                id,
                version,
                "report",
                "draft",
                &spec.content,
                user,
                now,
            )
            .await?;
            Ok((id, version))
        })?;
        self.pair(id, version).await
    }

    async fn submit_report(
        &self,
        report_id: i64,
        version: i64,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)> {
        let dialect = self.dialect;
        write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            expect_current(&head, version)?;
            if !matches!(head.state.as_str(), "draft" | "returned") {
                return Err(wrong_state(&head, "submitted"));
            }
            transition_in(
                &mut tx,
                dialect,
                head.work_item_id,
                WorkState::Submitted,
                actor,
                now,
                lease_s,
            )
            .await?;
            sqlx::query(
                "UPDATE report_versions SET state = 'submitted', submitted_at = $3 \
                 WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE reports SET state = 'submitted', updated_at = $2 WHERE id = $1")
                .bind(report_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })?;
        self.pair(report_id, version).await
    }

    async fn return_report(
        &self,
        report_id: i64,
        version: i64,
        reason: &str,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)> {
        let dialect = self.dialect;
        write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            expect_current(&head, version)?;
            if head.state != "submitted" {
                return Err(wrong_state(&head, "returned"));
            }
            transition_in(
                &mut tx,
                dialect,
                head.work_item_id,
                WorkState::Returned,
                actor,
                now,
                lease_s,
            )
            .await?;
            sqlx::query(
                "UPDATE report_versions SET state = 'returned', reason = $3, returned_by = $4, \
                 returned_at = $5 WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(version)
            .bind(reason)
            .bind(actor.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE reports SET state = 'returned', updated_at = $2 WHERE id = $1")
                .bind(report_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })?;
        self.pair(report_id, version).await
    }

    async fn sign_report(
        &self,
        report_id: i64,
        version: i64,
        signature: &Signature,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)> {
        let dialect = self.dialect;
        write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            expect_current(&head, version)?;
            if head.state != "submitted" {
                return Err(wrong_state(&head, "signed"));
            }
            let item = transition_in(
                &mut tx,
                dialect,
                head.work_item_id,
                WorkState::Signed,
                actor,
                now,
                lease_s,
            )
            .await?;
            sqlx::query(
                "UPDATE report_versions SET state = 'signed', verifier_id = $3, signed_at = $4, \
                 signed_content = $5, signature = $6, key_id = $7 \
                 WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(version)
            .bind(signature.signer_id)
            .bind(now)
            .bind(&signature.content)
            .bind(&signature.signature)
            .bind(signature.key_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE reports SET state = 'signed', signed_version = $2, signed_at = $3, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(report_id)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            queue_push(&mut tx, report_id, version, head.institution_id, now).await?;
            tell_clinic(
                &mut tx,
                &item,
                "report_signed",
                report_id,
                version,
                head.institution_id,
                actor,
                now,
            )
            .await?;
            Ok(())
        })?;
        self.pair(report_id, version).await
    }

    async fn correct_report(
        &self,
        report_id: i64,
        version: i64,
        content: &VersionBody,
        reason: &str,
        signature: &Signature,
        actor: &Actor,
        now: i64,
    ) -> Result<(Report, ReportVersion)> {
        let dialect = self.dialect;
        let user = actor
            .user_id
            .ok_or_else(|| Error::Invalid("a correction needs a user".into()))?;
        let new_version = write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            if head.state != "signed" || head.signed_version != Some(version) {
                return Err(wrong_state(&head, "corrected from this version"));
            }
            let v = head.current_version + 1;
            insert_version(
                &mut tx,
                report_id,
                v,
                "correction",
                "signed",
                content,
                user,
                now,
            )
            .await?;
            sqlx::query(
                "UPDATE report_versions SET reason = $3, submitted_at = $4, verifier_id = $5, \
                 signed_at = $4, signed_content = $6, signature = $7, key_id = $8 \
                 WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(v)
            .bind(reason)
            .bind(now)
            .bind(signature.signer_id)
            .bind(&signature.content)
            .bind(&signature.signature)
            .bind(signature.key_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE report_versions SET state = 'superseded', superseded_at = $3 \
                 WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE reports SET current_version = $2, signed_version = $2, signed_at = $3, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(report_id)
            .bind(v)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            queue_push(&mut tx, report_id, v, head.institution_id, now).await?;
            let item = must_item(&mut tx, head.work_item_id).await?;
            tell_clinic(
                &mut tx,
                &item,
                "report_corrected",
                report_id,
                v,
                head.institution_id,
                actor,
                now,
            )
            .await?;
            Ok(v)
        })?;
        self.pair(report_id, new_version).await
    }

    async fn add_addendum(
        &self,
        report_id: i64,
        version: i64,
        text: &str,
        signature: &Signature,
        actor: &Actor,
        now: i64,
    ) -> Result<Addendum> {
        let dialect = self.dialect;
        let user = actor
            .user_id
            .ok_or_else(|| Error::Invalid("an addendum needs a user".into()))?;
        let id: i64 = write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            if head.state != "signed" || head.signed_version != Some(version) {
                return Err(wrong_state(&head, "given an addendum on this version"));
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO report_addenda (report_id, version, text, author_id, signed_at, \
                 signed_content, signature, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 RETURNING id",
            )
            .bind(report_id)
            .bind(version)
            .bind(text)
            .bind(user)
            .bind(now)
            .bind(&signature.content)
            .bind(&signature.signature)
            .bind(signature.key_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE reports SET updated_at = $2 WHERE id = $1")
                .bind(report_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let item = must_item(&mut tx, head.work_item_id).await?;
            tell_clinic(
                &mut tx,
                &item,
                "report_addendum",
                report_id,
                version,
                head.institution_id,
                actor,
                now,
            )
            .await?;
            Ok(id)
        })?;
        self.report_addenda(report_id)
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| Error::NotFound(format!("addendum {id}")))
    }

    async fn get_report(&self, id: i64) -> Result<Option<Report>> {
        Ok(
            sqlx::query_as::<_, Report>(&format!("{REPORT_SELECT} WHERE r.id = $1"))
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn report_of_study(&self, study_instance_uid: &str) -> Result<Option<Report>> {
        Ok(
            sqlx::query_as::<_, Report>(&format!(
                "{REPORT_SELECT} WHERE r.study_instance_uid = $1"
            ))
            .bind(study_instance_uid)
            .fetch_optional(&self.read)
            .await?,
        )
    }

    async fn list_reports(&self, f: &ReportFilter) -> Result<Vec<Report>> {
        let mut inst = match &f.institution_ids {
            Some(ids) => format!(" AND r.institution_id IN {}", in_list(ids)),
            None => String::new(),
        };
        if let Some(user) = f.routed_to {
            inst.push_str(" AND ");
            inst.push_str(&routed_sql("r.study_id", "r.identity_hash", user));
        }
        let sql = format!(
            "{REPORT_SELECT} WHERE r.alliance_id = COALESCE($1, r.alliance_id){inst} \
             AND p.patient_id = COALESCE($2, p.patient_id) AND r.state = COALESCE($3, r.state) \
             AND COALESCE(s.study_date, '') >= COALESCE($4, COALESCE(s.study_date, '')) \
             AND COALESCE(s.study_date, '') <= COALESCE($5, COALESCE(s.study_date, '')) \
             AND r.study_instance_uid = COALESCE($6, r.study_instance_uid) \
             ORDER BY r.updated_at DESC, r.id DESC LIMIT $7 OFFSET $8"
        );
        Ok(sqlx::query_as::<_, Report>(&sql)
            .bind(f.alliance_id)
            .bind(f.patient_id.as_deref())
            .bind(f.state.as_deref())
            .bind(f.date_from.as_deref())
            .bind(f.date_to.as_deref())
            .bind(f.study_instance_uid.as_deref())
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(&self.read)
            .await?)
    }

    async fn report_versions(&self, report_id: i64) -> Result<Vec<ReportVersion>> {
        sqlx::query_as::<_, VersionRow>(&format!(
            "{VERSION_SELECT} WHERE v.report_id = $1 ORDER BY v.version"
        ))
        .bind(report_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(ReportVersion::try_from)
        .collect()
    }

    async fn report_version(&self, report_id: i64, version: i64) -> Result<Option<ReportVersion>> {
        sqlx::query_as::<_, VersionRow>(&format!(
            "{VERSION_SELECT} WHERE v.report_id = $1 AND v.version = $2"
        ))
        .bind(report_id)
        .bind(version)
        .fetch_optional(&self.read)
        .await?
        .map(ReportVersion::try_from)
        .transpose()
    }

    async fn report_addenda(&self, report_id: i64) -> Result<Vec<Addendum>> {
        Ok(sqlx::query_as::<_, Addendum>(
            "SELECT a.id, a.report_id, a.version, a.text, a.author_id, u.login AS author_login, \
             a.signed_at, a.signed_content, a.signature, a.key_id FROM report_addenda a \
             JOIN users u ON u.id = a.author_id WHERE a.report_id = $1 ORDER BY a.id",
        )
        .bind(report_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn report_verify_code(
        &self,
        report_id: i64,
        version: i64,
        fresh: &str,
        now: i64,
    ) -> Result<String> {
        write_tx!(self, tx, {
            sqlx::query(
                "INSERT INTO report_verify_codes (code, report_id, version, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (report_id, version) DO NOTHING",
            )
            .bind(fresh)
            .bind(report_id)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            Ok(sqlx::query_scalar::<_, String>(
                "SELECT code FROM report_verify_codes WHERE report_id = $1 AND version = $2",
            )
            .bind(report_id)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?)
        })
    }

    async fn report_by_verify_code(&self, code: &str) -> Result<Option<(i64, i64)>> {
        Ok(sqlx::query_as::<_, (i64, i64)>(
            "SELECT report_id, version FROM report_verify_codes WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn study_instance_hashes(&self, study_id: i64) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT i.sop_instance_uid, i.sha256 FROM instances i \
             JOIN series se ON se.id = i.series_ref WHERE se.study_ref = $1 \
             ORDER BY i.sop_instance_uid, i.sha256",
        )
        .bind(study_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn study_exam_code(&self, study_id: i64) -> Result<Option<String>> {
        let code: Option<Option<String>> =
            sqlx::query_scalar("SELECT exam_code FROM studies WHERE id = $1")
                .bind(study_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(code.flatten())
    }

    async fn raise_critical(
        &self,
        report_id: i64,
        category: &str,
        note: Option<&str>,
        actor: &Actor,
        now: i64,
        ack_limit_s: i64,
    ) -> Result<CriticalValue> {
        let dialect = self.dialect;
        let user = actor
            .user_id
            .ok_or_else(|| Error::Invalid("a critical value needs a user".into()))?;
        let id = write_tx!(self, tx, {
            let head = lock_head(&mut tx, dialect, report_id).await?;
            let item = must_item(&mut tx, head.work_item_id).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO critical_values (alliance_id, report_id, work_item_id, \
                 institution_id, category, note, state, raised_by, raised_at, due_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9) RETURNING id",
            )
            .bind(item.alliance_id)
            .bind(report_id)
            .bind(item.id)
            .bind(head.institution_id)
            .bind(category)
            .bind(note)
            .bind(user)
            .bind(now)
            .bind(now + ack_limit_s * US_PER_S)
            .fetch_one(&mut *tx)
            .await?;
            log_critical(
                &mut tx,
                id,
                "raised",
                &actor.name,
                &serde_json::json!({"category": category, "note": note}),
                now,
            )
            .await?;
            let (users, nobody_on_duty) =
                on_duty_users(clinic_users(&mut tx, head.institution_id).await?, now);
            let ids: Vec<i64> = users.iter().map(|(id, ..)| *id).collect();
            let logins: Vec<&str> = users.iter().map(|(_, l, _)| l.as_str()).collect();
            // `notify`: the on-duty clinic users, for a webhook receiver (an SMS gateway)
            // that reaches them outside the app
            emit(
                &mut tx,
                &item,
                "critical_raised",
                actor,
                serde_json::json!({
                    "critical_id": id,
                    "report_id": report_id,
                    "category": category,
                    "notify": logins,
                }),
                &ids,
                now,
            )
            .await?;
            let mut detail =
                serde_json::json!({"users": logins, "channels": ["in_app", "webhook"]});
            if nobody_on_duty {
                detail["nobody_on_duty"] = Value::Bool(true);
            }
            log_critical(&mut tx, id, "notified", "dxhub", &detail, now).await?;
            Ok(id)
        })?;
        self.get_critical(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("critical value {id}")))
    }

    async fn acknowledge_critical(
        &self,
        id: i64,
        name: &str,
        action: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<CriticalValue> {
        write_tx!(self, tx, {
            let done = sqlx::query(
                "UPDATE critical_values SET state = 'acknowledged', ack_by = $2, ack_name = $3, \
                 ack_action = $4, ack_at = $5 WHERE id = $1 AND state = 'open'",
            )
            .bind(id)
            .bind(actor.user_id)
            .bind(name)
            .bind(action)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let exists: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM critical_values WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                return Err(match exists {
                    Some(_) => Error::Conflict("already-acknowledged".into()),
                    None => Error::NotFound(format!("critical value {id}")),
                });
            }
            log_critical(
                &mut tx,
                id,
                "acknowledged",
                &actor.name,
                &serde_json::json!({"name": name, "action": action}),
                now,
            )
            .await?;
            let c = critical_in(&mut tx, id).await?;
            let item = must_item(&mut tx, c.work_item_id).await?;
            emit(
                &mut tx,
                &item,
                "critical_acknowledged",
                actor,
                serde_json::json!({"critical_id": id, "report_id": c.report_id}),
                &[c.raised_by],
                now,
            )
            .await?;
            Ok(c)
        })
    }

    async fn escalate_due_criticals(&self, now: i64, limit: i64) -> Result<Vec<CriticalValue>> {
        // a read first: the periodic job must not take the (SQLite) write lock for nothing
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM critical_values WHERE state = 'open' AND escalated_at IS NULL \
             AND due_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let lock = self.lock_suffix();
        write_tx!(self, tx, {
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM critical_values WHERE state = 'open' AND escalated_at IS NULL \
                 AND due_at <= $1 ORDER BY due_at LIMIT $2{lock}"
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::new();
            for id in ids {
                let done = sqlx::query(
                    "UPDATE critical_values SET escalated_at = $2 \
                     WHERE id = $1 AND state = 'open' AND escalated_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                let c = critical_in(&mut tx, id).await?;
                let item = must_item(&mut tx, c.work_item_id).await?;
                let chain = clinic_chain(&mut tx, c.institution_id).await?;
                let mut users: Vec<(i64, String)> = if chain.is_empty() {
                    Vec::new()
                } else {
                    sqlx::query_as(&format!(
                        "SELECT u.id, u.login FROM users u \
                         JOIN institutions i ON i.head_user_id = u.id \
                         WHERE i.id IN {} AND u.disabled = 0",
                        in_list(&chain)
                    ))
                    .fetch_all(&mut *tx)
                    .await?
                };
                let admins: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT u.id, u.login FROM users u JOIN institutions i ON i.id = u.institution_id \
                     WHERE i.alliance_id = $1 AND u.role = 'group_admin' AND u.disabled = 0 \
                     ORDER BY u.id",
                )
                .bind(c.alliance_id)
                .fetch_all(&mut *tx)
                .await?;
                users.extend(admins);
                let ids: Vec<i64> = users.iter().map(|(id, _)| *id).collect();
                let system = Actor::system();
                emit(
                    &mut tx,
                    &item,
                    "critical_escalated",
                    &system,
                    serde_json::json!({"critical_id": id, "report_id": c.report_id,
                                       "category": c.category}),
                    &ids,
                    now,
                )
                .await?;
                let logins: Vec<&str> = users.iter().map(|(_, l)| l.as_str()).collect();
                log_critical(
                    &mut tx,
                    id,
                    "escalated",
                    &system.name,
                    &serde_json::json!({"users": logins, "reason": "not acknowledged in time"}),
                    now,
                )
                .await?;
                out.push(critical_in(&mut tx, id).await?);
            }
            Ok(out)
        })
    }

    async fn get_critical(&self, id: i64) -> Result<Option<CriticalValue>> {
        Ok(
            sqlx::query_as::<_, CriticalValue>(&format!("{CRITICAL_SELECT} WHERE c.id = $1"))
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn list_criticals(&self, f: &CriticalFilter) -> Result<Vec<CriticalValue>> {
        let mut inst = match &f.institution_ids {
            Some(ids) => format!(" AND c.institution_id IN {}", in_list(ids)),
            None => String::new(),
        };
        if let Some(user) = f.routed_to {
            inst.push_str(" AND ");
            inst.push_str(&routed_sql("r.study_id", "r.identity_hash", user));
        }
        Ok(sqlx::query_as::<_, CriticalValue>(&format!(
            "{CRITICAL_SELECT} WHERE c.alliance_id = COALESCE($1, c.alliance_id){inst} \
             AND c.state = COALESCE($2, c.state) AND c.report_id = COALESCE($3, c.report_id) \
             ORDER BY c.raised_at DESC, c.id DESC LIMIT $4"
        ))
        .bind(f.alliance_id)
        .bind(f.state.as_deref())
        .bind(f.report_id)
        .bind(f.limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn critical_log(&self, critical_id: i64) -> Result<Vec<CriticalLogEntry>> {
        Ok(sqlx::query_as::<_, CriticalLogEntry>(
            "SELECT id, critical_id, at, kind, actor, detail FROM critical_log \
             WHERE critical_id = $1 ORDER BY id",
        )
        .bind(critical_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn take_due_pushes(&self, now: i64, limit: i64, lock_s: i64) -> Result<Vec<ReportPush>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM report_pushes WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until <= $1) LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let lock = self.lock_suffix();
        write_tx!(self, tx, {
            let ids: Vec<i64> = sqlx::query_scalar(&format!(
                "SELECT id FROM report_pushes WHERE state = 'pending' AND next_attempt_at <= $1 \
                 AND (locked_until IS NULL OR locked_until <= $1) ORDER BY next_attempt_at \
                 LIMIT $2{lock}"
            ))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::new();
            for id in ids {
                sqlx::query(
                    "UPDATE report_pushes SET locked_until = $2, attempts = attempts + 1 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(now + lock_s * US_PER_S)
                .execute(&mut *tx)
                .await?;
                out.push(
                    sqlx::query_as::<_, ReportPush>(&format!(
                        "SELECT {PUSH_COLUMNS} FROM report_pushes WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?,
                );
            }
            Ok(out)
        })
    }

    async fn finish_push(&self, id: i64, result: &PushResult, now: i64) -> Result<()> {
        write_tx!(self, tx, {
            match result {
                PushResult::Delivered { status } => {
                    sqlx::query(
                        "UPDATE report_pushes SET state = 'delivered', delivered_at = $2, \
                         last_status = $3, last_error = NULL, locked_until = NULL WHERE id = $1",
                    )
                    .bind(id)
                    .bind(now)
                    .bind(status)
                    .execute(&mut *tx)
                    .await?;
                }
                PushResult::Failed {
                    status,
                    error,
                    retry_at,
                } => {
                    sqlx::query(
                        "UPDATE report_pushes SET state = $2, next_attempt_at = COALESCE($3, \
                         next_attempt_at), last_status = $4, last_error = $5, locked_until = NULL \
                         WHERE id = $1",
                    )
                    .bind(id)
                    .bind(if retry_at.is_some() {
                        "pending"
                    } else {
                        "dead"
                    })
                    .bind(*retry_at)
                    .bind(status.as_deref())
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Ok(())
        })
    }

    async fn list_pushes(&self, report_id: i64) -> Result<Vec<ReportPush>> {
        Ok(sqlx::query_as::<_, ReportPush>(&format!(
            "SELECT {PUSH_COLUMNS} FROM report_pushes WHERE report_id = $1 ORDER BY id"
        ))
        .bind(report_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn get_push(&self, id: i64) -> Result<Option<ReportPush>> {
        Ok(sqlx::query_as::<_, ReportPush>(&format!(
            "SELECT {PUSH_COLUMNS} FROM report_pushes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn retry_push(&self, id: i64, now: i64) -> Result<()> {
        write_tx!(self, tx, {
            let done = sqlx::query(
                "UPDATE report_pushes SET state = 'pending', next_attempt_at = $2, \
                 locked_until = NULL WHERE id = $1 AND state <> 'pending'",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Error::Conflict(format!("push {id} is pending or unknown")));
            }
            Ok(())
        })
    }

    async fn recognition(
        &self,
        alliance_id: i64,
        identity_hash: &str,
    ) -> Result<Vec<RecognitionRow>> {
        self.recognition_where("r.identity_hash = $2", alliance_id, identity_hash)
            .await
    }

    async fn recognition_of_study(
        &self,
        alliance_id: i64,
        study_instance_uid: &str,
    ) -> Result<Vec<RecognitionRow>> {
        self.recognition_where("r.study_instance_uid = $2", alliance_id, study_instance_uid)
            .await
    }
}

impl SqlCatalog {
    /// Signed results (the version in force) of the alliance matching `condition` on `$2`.
    async fn recognition_where(
        &self,
        condition: &str,
        alliance_id: i64,
        value: &str,
    ) -> Result<Vec<RecognitionRow>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            report_id: i64,
            version: i64,
            study_instance_uid: String,
            institution_id: Option<i64>,
            institution_name: Option<String>,
            kind: String,
            exam_code: Option<String>,
            exam: Option<String>,
            recognition_eligible: Option<i64>,
            validity_days: Option<i64>,
            qc_grade: Option<String>,
            body: String,
            study_date: Option<String>,
            modalities_in_study: Option<String>,
            study_description: Option<String>,
            signed_at: Option<i64>,
        }
        let rows = sqlx::query_as::<_, Row>(&format!(
            "SELECT r.id AS report_id, v.version, r.study_instance_uid, r.institution_id, \
             i.name AS institution_name, r.kind, r.exam_code, e.definition AS exam, \
             e.recognition_eligible, e.validity_days, v.qc_grade, v.body, s.study_date, \
             s.modalities_in_study, s.study_description, v.signed_at \
             FROM reports r JOIN report_versions v ON v.report_id = r.id \
             AND v.version = r.signed_version JOIN studies s ON s.id = r.study_id \
             LEFT JOIN institutions i ON i.id = r.institution_id \
             LEFT JOIN exam_types e ON e.alliance_id = r.alliance_id AND e.code = r.exam_code \
             WHERE r.alliance_id = $1 AND {condition} AND r.signed_version IS NOT NULL \
             ORDER BY s.study_date IS NULL, s.study_date DESC, r.id DESC LIMIT 500"
        ))
        .bind(alliance_id)
        .bind(value)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RecognitionRow {
                    report_id: r.report_id,
                    version: r.version,
                    study_instance_uid: r.study_instance_uid,
                    institution_id: r.institution_id,
                    institution_name: r.institution_name,
                    kind: r.kind,
                    exam_code: r.exam_code,
                    exam: opt_json(r.exam)?,
                    recognition_eligible: r.recognition_eligible.unwrap_or(0) != 0,
                    validity_days: r.validity_days,
                    qc_grade: r.qc_grade,
                    body: json(&r.body)?,
                    study_date: r.study_date,
                    modalities_in_study: r.modalities_in_study,
                    study_description: r.study_description,
                    signed_at: r.signed_at,
                })
            })
            .collect()
    }
}

impl SqlCatalog {
    async fn pair(&self, report_id: i64, version: i64) -> Result<(Report, ReportVersion)> {
        let mut tx = self.read.begin().await?;
        let r = report_in(&mut tx, report_id).await;
        let v = version_in(&mut tx, report_id, version).await;
        tx.rollback().await?;
        Ok((r?, v?))
    }
}
