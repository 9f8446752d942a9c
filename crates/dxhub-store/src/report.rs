//! Reports in the catalog: per-alliance templates, exam catalogue and critical-value
//! categories; readers' sealed SM2 signing keys; reports with every version kept, signed
//! addenda; critical values with their communication log; DICOM push-back deliveries; the
//! mutual-recognition lookup.
//!
//! The store enforces the *conditions* of each step (the version is the one the caller saw,
//! it is in the state the step starts from, the work item is held), atomically with the
//! work item's own transition. Who may take a step (roles, authorship, signing authority)
//! is `dxhub_core::report::apply`, asked by the API first; what is signed, and the
//! signature, come from the caller: the store never sees a private key in clear.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::catalog::Result;
use crate::worklist::Actor;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateRow {
    pub id: i64,
    pub alliance_id: i64,
    pub code: String,
    pub name: String,
    /// `dxhub_core::report_template::Template`
    pub definition: Value,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExamTypeRow {
    pub id: i64,
    pub alliance_id: i64,
    pub code: String,
    /// `dxhub_core::recognition::ExamType`
    pub definition: Value,
    pub recognition_eligible: bool,
    pub validity_days: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoryRow {
    pub code: String,
    /// `dxhub_core::report_template::CriticalCategory`
    pub definition: Value,
    pub position: i64,
}

/// Defaults a new alliance starts with (existing rows are left alone).
#[derive(Debug, Clone, Default)]
pub struct ReportDefaults {
    /// (code, name, definition)
    pub templates: Vec<(String, String, Value)>,
    /// (code, definition, recognition eligible, validity days)
    pub exam_types: Vec<(String, Value, bool, Option<i64>)>,
    /// (code, definition)
    pub categories: Vec<(String, Value)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyRow {
    pub id: i64,
    pub user_id: i64,
    pub login: String,
    pub alliance_id: i64,
    pub public_key: String,
    pub fingerprint: String,
    #[serde(skip_serializing)]
    pub sealed_secret: String,
    pub kek_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A clinic's own PACS, for push-back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PacsTarget {
    pub ae_title: String,
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct InstitutionReportSettings {
    pub head_user_id: Option<i64>,
    pub pacs: Option<PacsTarget>,
}

/// A report (one per study) with the study facts lists and views need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Report {
    pub id: i64,
    pub alliance_id: i64,
    pub study_id: i64,
    pub study_instance_uid: String,
    pub work_item_id: i64,
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    #[serde(skip_serializing)]
    pub identity_hash: Option<String>,
    /// `imaging` or `ecg`
    pub kind: String,
    pub template_code: String,
    pub exam_code: Option<String>,
    /// The state of the current version.
    pub state: String,
    pub current_version: i64,
    /// The version in force (signed and not superseded).
    pub signed_version: Option<i64>,
    pub author_id: i64,
    pub author_login: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub signed_at: Option<i64>,
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_birth_date: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub study_description: Option<String>,
    pub accession_number: Option<String>,
    pub modalities_in_study: Option<String>,
    pub referring_physician_name: Option<String>,
    pub study_id_attr: Option<String>,
    pub open_critical: i64,
}

/// One version of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportVersion {
    pub report_id: i64,
    pub version: i64,
    /// `report` or `correction`
    pub kind: String,
    pub state: String,
    /// `{"sections":{…},"fields":{…}}`
    pub body: Value,
    pub machine: Option<Value>,
    pub confirmations: Option<Value>,
    pub key_images: Option<Value>,
    pub qc_grade: Option<String>,
    pub critical: bool,
    pub critical_category: Option<String>,
    pub author_id: i64,
    pub author_login: String,
    pub written_at: i64,
    pub submitted_at: Option<i64>,
    pub reason: Option<String>,
    pub returned_by: Option<i64>,
    /// The login of `returned_by`.
    pub returned_by_login: Option<String>,
    pub returned_at: Option<i64>,
    pub verifier_id: Option<i64>,
    pub verifier_login: Option<String>,
    pub signed_at: Option<i64>,
    /// `dxhub_core::report::SignedContent` as JSON, exactly as signed.
    pub signed_content: Option<String>,
    pub signature: Option<String>,
    pub key_id: Option<i64>,
    pub superseded_at: Option<i64>,
}

/// The content of a new version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionBody {
    pub body: Value,
    pub machine: Option<Value>,
    pub confirmations: Option<Value>,
    pub key_images: Option<Value>,
    pub qc_grade: Option<String>,
    pub critical: bool,
    pub critical_category: Option<String>,
}

/// Save a draft of the report of the study of `work_item_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct DraftSpec {
    pub work_item_id: i64,
    pub template_code: String,
    pub exam_code: Option<String>,
    /// `imaging` or `ecg`
    pub kind: String,
    pub content: VersionBody,
    /// The current version the author saw (`None` for a new report): a stale autosave
    /// from another tab gets `Conflict` instead of overwriting.
    pub base_version: Option<i64>,
}

/// A signature made by the caller over a version's canonical content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub signer_id: i64,
    pub key_id: i64,
    /// `SignedContent` JSON.
    pub content: String,
    /// hex
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Addendum {
    pub id: i64,
    pub report_id: i64,
    pub version: i64,
    pub text: String,
    pub author_id: i64,
    pub author_login: String,
    pub signed_at: i64,
    pub signed_content: String,
    pub signature: String,
    pub key_id: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    pub alliance_id: Option<i64>,
    /// Only reports of studies routed to this reader (user id) and those patients' priors.
    pub routed_to: Option<i64>,
    /// `None`: any institution.
    pub institution_ids: Option<Vec<i64>>,
    pub patient_id: Option<String>,
    pub state: Option<String>,
    /// DICOM dates, inclusive.
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub study_instance_uid: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CriticalValue {
    pub id: i64,
    pub alliance_id: i64,
    pub report_id: i64,
    pub work_item_id: i64,
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    pub category: String,
    pub note: Option<String>,
    /// `open` or `acknowledged`
    pub state: String,
    pub raised_by: i64,
    pub raised_by_login: String,
    pub raised_at: i64,
    pub due_at: i64,
    pub escalated_at: Option<i64>,
    pub ack_by: Option<i64>,
    pub ack_name: Option<String>,
    pub ack_action: Option<String>,
    pub ack_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriticalFilter {
    pub alliance_id: Option<i64>,
    /// Only critical values of studies routed to this reader (user id) and their priors.
    pub routed_to: Option<i64>,
    pub institution_ids: Option<Vec<i64>>,
    pub state: Option<String>,
    pub report_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct CriticalLogEntry {
    pub id: i64,
    pub critical_id: i64,
    pub at: i64,
    pub kind: String,
    pub actor: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReportPush {
    pub id: i64,
    pub report_id: i64,
    pub version: i64,
    pub institution_id: i64,
    pub target: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    Delivered {
        status: String,
    },
    Failed {
        status: Option<String>,
        error: String,
        retry_at: Option<i64>,
    },
}

/// A signed result of one patient, for the recognition lookup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecognitionRow {
    pub report_id: i64,
    pub version: i64,
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    pub kind: String,
    pub exam_code: Option<String>,
    pub exam: Option<Value>,
    pub recognition_eligible: bool,
    pub validity_days: Option<i64>,
    pub qc_grade: Option<String>,
    pub body: Value,
    pub study_date: Option<String>,
    pub modalities_in_study: Option<String>,
    pub study_description: Option<String>,
    pub signed_at: Option<i64>,
}

#[async_trait]
pub trait ReportStore: Send + Sync {
    // catalogue
    async fn seed_report_defaults(
        &self,
        alliance_id: i64,
        defaults: &ReportDefaults,
        now: i64,
    ) -> Result<()>;
    async fn list_templates(&self, alliance_id: i64) -> Result<Vec<TemplateRow>>;
    async fn get_template(&self, alliance_id: i64, code: &str) -> Result<Option<TemplateRow>>;
    async fn put_template(
        &self,
        alliance_id: i64,
        code: &str,
        name: &str,
        definition: &Value,
        enabled: bool,
        now: i64,
    ) -> Result<TemplateRow>;
    async fn list_exam_types(&self, alliance_id: i64) -> Result<Vec<ExamTypeRow>>;
    async fn put_exam_type(
        &self,
        alliance_id: i64,
        code: &str,
        definition: &Value,
        eligible: bool,
        validity_days: Option<i64>,
        now: i64,
    ) -> Result<ExamTypeRow>;
    async fn list_critical_categories(&self, alliance_id: i64) -> Result<Vec<CategoryRow>>;
    async fn replace_critical_categories(
        &self,
        alliance_id: i64,
        categories: &[(String, Value)],
    ) -> Result<()>;

    // signing keys and per-institution settings
    async fn active_signing_key(&self, user_id: i64) -> Result<Option<SigningKeyRow>>;
    async fn get_signing_key(&self, id: i64) -> Result<Option<SigningKeyRow>>;
    /// A new active key for the user; the previous one is revoked (it still verifies the
    /// reports it signed).
    async fn add_signing_key(
        &self,
        user_id: i64,
        public_key: &str,
        fingerprint: &str,
        sealed_secret: &str,
        kek_id: &str,
        now: i64,
    ) -> Result<SigningKeyRow>;
    /// Every key (revoked ones too), optionally of one alliance.
    async fn list_signing_keys(&self, alliance_id: Option<i64>) -> Result<Vec<SigningKeyRow>>;
    /// Replace a key's sealed secret (KEK rotation); `false` when it was sealed under
    /// another KEK meanwhile.
    async fn reseal_signing_key(
        &self,
        id: i64,
        old_kek_id: &str,
        sealed_secret: &str,
        kek_id: &str,
    ) -> Result<bool>;
    async fn signing_authority(&self, user_id: i64) -> Result<bool>;
    async fn set_signing_authority(&self, user_id: i64, granted: bool) -> Result<()>;
    /// Set (or with `None` / blank clear) a clinic user's on-duty schedule, which decides
    /// who a critical value alerts. `Invalid` when the schedule does not parse.
    async fn set_duty_schedule(&self, user_id: i64, schedule: Option<&str>) -> Result<()>;
    async fn institution_report_settings(
        &self,
        institution_id: i64,
    ) -> Result<InstitutionReportSettings>;
    /// `Some(None)` clears a setting, `None` leaves it.
    async fn set_institution_report_settings(
        &self,
        institution_id: i64,
        head_user_id: Option<Option<i64>>,
        pacs: Option<Option<PacsTarget>>,
    ) -> Result<()>;

    // reports
    /// A new draft version (creating the report on the first save). The actor must hold
    /// the work item; its state moves to `drafted`.
    async fn save_draft(
        &self,
        spec: &DraftSpec,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)>;
    /// Submit `version` (the current one, a draft or returned); the work item moves to
    /// `submitted`.
    async fn submit_report(
        &self,
        report_id: i64,
        version: i64,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)>;
    async fn return_report(
        &self,
        report_id: i64,
        version: i64,
        reason: &str,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)>;
    /// Sign the submitted `version`; the work item is done. Queues the push-back when the
    /// institution has a PACS.
    async fn sign_report(
        &self,
        report_id: i64,
        version: i64,
        signature: &Signature,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<(Report, ReportVersion)>;
    /// A corrected version, signed at once, superseding the signed `version`.
    #[allow(clippy::too_many_arguments)] // the step's inputs, as the other steps take them
    async fn correct_report(
        &self,
        report_id: i64,
        version: i64,
        content: &VersionBody,
        reason: &str,
        signature: &Signature,
        actor: &Actor,
        now: i64,
    ) -> Result<(Report, ReportVersion)>;
    async fn add_addendum(
        &self,
        report_id: i64,
        version: i64,
        text: &str,
        signature: &Signature,
        actor: &Actor,
        now: i64,
    ) -> Result<Addendum>;
    async fn get_report(&self, id: i64) -> Result<Option<Report>>;
    async fn report_of_study(&self, study_instance_uid: &str) -> Result<Option<Report>>;
    async fn list_reports(&self, filter: &ReportFilter) -> Result<Vec<Report>>;
    async fn report_versions(&self, report_id: i64) -> Result<Vec<ReportVersion>>;
    async fn report_version(&self, report_id: i64, version: i64) -> Result<Option<ReportVersion>>;
    async fn report_addenda(&self, report_id: i64) -> Result<Vec<Addendum>>;
    /// The public verification code of a report version: the one it has, else `fresh`
    /// (stored for it).
    async fn report_verify_code(
        &self,
        report_id: i64,
        version: i64,
        fresh: &str,
        now: i64,
    ) -> Result<String>;
    /// `(report id, version)` of a public verification code.
    async fn report_by_verify_code(&self, code: &str) -> Result<Option<(i64, i64)>>;
    /// `(SOP Instance UID, sha256 of the stored file)` of every instance of the study
    /// (every stored version of an instance).
    async fn study_instance_hashes(&self, study_id: i64) -> Result<Vec<(String, String)>>;
    /// The exam (procedure) code the sender gave the study, if any.
    async fn study_exam_code(&self, study_id: i64) -> Result<Option<String>>;

    // critical values
    /// Flag a report critical: clinic users of the source institution are notified (and
    /// webhooks); unacknowledged at `now + ack_limit_s` it escalates.
    async fn raise_critical(
        &self,
        report_id: i64,
        category: &str,
        note: Option<&str>,
        actor: &Actor,
        now: i64,
        ack_limit_s: i64,
    ) -> Result<CriticalValue>;
    /// `Conflict` when acknowledged already.
    async fn acknowledge_critical(
        &self,
        id: i64,
        name: &str,
        action: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<CriticalValue>;
    /// Escalate open critical values past their limit (once each): the institution head
    /// and the alliance's group admins are notified.
    async fn escalate_due_criticals(&self, now: i64, limit: i64) -> Result<Vec<CriticalValue>>;
    async fn get_critical(&self, id: i64) -> Result<Option<CriticalValue>>;
    async fn list_criticals(&self, filter: &CriticalFilter) -> Result<Vec<CriticalValue>>;
    async fn critical_log(&self, critical_id: i64) -> Result<Vec<CriticalLogEntry>>;

    // push-back
    async fn take_due_pushes(&self, now: i64, limit: i64, lock_s: i64) -> Result<Vec<ReportPush>>;
    async fn finish_push(&self, id: i64, result: &PushResult, now: i64) -> Result<()>;
    async fn list_pushes(&self, report_id: i64) -> Result<Vec<ReportPush>>;
    async fn get_push(&self, id: i64) -> Result<Option<ReportPush>>;
    async fn retry_push(&self, id: i64, now: i64) -> Result<()>;

    // recognition
    /// Signed results (the version in force) of the patient across the alliance.
    async fn recognition(
        &self,
        alliance_id: i64,
        identity_hash: &str,
    ) -> Result<Vec<RecognitionRow>>;
    /// The signed results (the version in force) of one study of the alliance: whether
    /// one is recognised decides whether a clinic doctor of another institution may open it.
    async fn recognition_of_study(
        &self,
        alliance_id: i64,
        study_instance_uid: &str,
    ) -> Result<Vec<RecognitionRow>>;
}
