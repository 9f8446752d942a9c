//! The SQL index: tenancy (alliances, institutions, AE titles) and the patient → study →
//! series → instance hierarchy of stored objects. One [`Catalog`] trait; the
//! implementation is [`crate::SqlCatalog`] (SQLite or PostgreSQL).

use async_trait::async_trait;
use dxhub_core::{InstitutionLevel, Role};
use serde::{Deserialize, Serialize};

use crate::ecg::{EcgCoverageRow, EcgInsert, EcgRow, EcgUpload, NewEcg};
use crate::identity::{
    AuditEntry, AuditFilter, AuditVerification, Device, LoginFailures, NewAuditEntry, NewDevice,
    NewSession, NewUser, Session, StudyFilter, StudyWorkflowRow, User,
};

/// Errors of the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid: {0}")]
    Invalid(String),
    /// The write would touch data of an institution outside the caller's reach.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound("row not found".to_owned()),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                Self::Conflict(db.message().to_owned())
            }
            sqlx::Error::Database(ref db) if is_transient(db.code().as_deref()) => {
                Self::Unavailable(e)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            other => Self::Other(other),
        }
    }
}

/// Database error codes that mean "try again later" rather than "bad request or bug".
fn is_transient(code: Option<&str>) -> bool {
    matches!(
        code,
        // SQLite: SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
        Some("5" | "6" | "261" | "262" | "517" | "773")
        // PostgreSQL: serialization failure, deadlock, too many connections, shutdown
            | Some("40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03")
    )
}

/// Which SQL database a catalog talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::Invalid(
                "database URL must start with sqlite: or postgres://".to_owned(),
            ))
        }
    }
}

/// Connection settings of [`crate::SqlCatalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogOptions {
    /// Size of the (read) pool; SQLite writes always go through one connection.
    pub max_connections: u32,
    /// SQLite `synchronous=FULL` (durable commits) rather than `NORMAL`.
    pub sqlite_synchronous_full: bool,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_synchronous_full: true,
        }
    }
}

// ---- tenancy ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Alliance {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Institution {
    pub id: i64,
    pub alliance_id: i64,
    pub alliance_name: String,
    pub name: String,
    pub level: InstitutionLevel,
    pub parent_id: Option<i64>,
    pub parent_name: Option<String>,
    pub population: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstitution {
    /// Name of the alliance.
    pub alliance: String,
    pub name: String,
    pub level: InstitutionLevel,
    /// Name of the parent institution (same alliance, a level that may head this one).
    pub parent: Option<String>,
    pub population: Option<i64>,
}

/// A change to an institution: `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstitutionUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the population.
    pub population: Option<Option<i64>>,
    /// Move the institution under this one (by name): same alliance, and a level that may
    /// head it (county → township/village, township → village).
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AeTitle {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub ae_title: String,
    pub host: Option<String>,
    pub created_at: i64,
}

// ---- ingest ----

/// Patient attributes of an instance. `patient_id` may be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientAttrs {
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyAttrs {
    pub study_instance_uid: String,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub study_id: Option<String>,
    pub body_part_examined: Option<String>,
    /// DICOM JSON of the study-level attributes (QIDO `includefield`).
    pub attrs: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesAttrs {
    pub series_instance_uid: String,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub body_part_examined: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    /// DICOM JSON of the series-level attributes (QIDO `includefield`).
    pub attrs: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAttrs {
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub size_bytes: i64,
    /// sha256 (hex) of the stored bytes.
    pub sha256: String,
    /// sha256 (hex) of the data set without its file meta group: identifies a version.
    pub dataset_hash: String,
    pub blob_key: String,
    pub source_ae: Option<String>,
    /// Epoch microseconds.
    pub received_at: i64,
    /// DICOM JSON of the instance with bulk data as `dxhub-bulk:` placeholders
    /// (WADO-RS `/metadata`).
    pub metadata: Option<String>,
}

/// Everything the index records about one received instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstance {
    pub institution_id: Option<i64>,
    pub patient: PatientAttrs,
    pub study: StudyAttrs,
    pub series: SeriesAttrs,
    pub instance: InstanceAttrs,
}

/// What [`Catalog::insert_instance`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InsertOutcome {
    /// A new SOP Instance UID.
    Inserted { instance_id: i64 },
    /// This exact version (SOP Instance UID + data set hash) is already indexed; nothing
    /// changed. `blob_key` is where the existing copy lives.
    Duplicate { instance_id: i64, blob_key: String },
    /// A different data set under a known SOP Instance UID: kept as a new version.
    NewVersion {
        instance_id: i64,
        previous_instance_id: i64,
    },
}

/// The prefix of the data set keys indexed before they became BLAKE3 (`blake3:…`): the
/// data set's SHA-256 (migration 20261124000010 tagged them).
pub const LEGACY_DATASET_KEY_PREFIX: &str = "sha256:";

/// What the ingest looks up before it stores an instance ([`Catalog::ingest_lookup`]).
#[derive(Debug, Clone)]
pub struct IngestLookup {
    /// The version indexed under this data set key, if any.
    pub version: Option<InstanceRow>,
    /// The institutions of the study and of the SOP instance ([`Catalog::owners`]).
    pub owners: (Option<i64>, Option<i64>),
    /// Whether a version of the SOP instance has a [`LEGACY_DATASET_KEY_PREFIX`] key (a
    /// re-send of it is recognised by the data set's SHA-256).
    pub legacy_keyed: bool,
}

/// Written with an instance once it is inserted (a new instance or a new version; nothing
/// of it for a duplicate): see [`Catalog::insert_instance_with`].
#[derive(Debug, Clone, Default)]
pub struct InstanceExtras {
    /// The ECG record the instance carries (its `instance_id` is set at the insert) and
    /// the upload's Idempotency-Key.
    pub ecg: Option<(NewEcg, Option<String>)>,
    /// The audit entry of the write.
    pub audit: Option<NewAuditEntry>,
    /// The institutions whose studies the instance may join (`None`: any). A study held
    /// by another institution when the insert runs refuses it with [`Error::Forbidden`]:
    /// checked under the study's write lock, so a study created by another institution
    /// after the ingest's look-up is not joined.
    pub writable_institutions: Option<Vec<i64>>,
}

/// What [`Catalog::insert_instance_with`] did.
#[derive(Debug, Clone)]
pub struct InsertedWith {
    pub outcome: InsertOutcome,
    /// The ECG record; `None` for a duplicate or without one to record.
    pub ecg: Option<EcgInsert>,
    /// The audit entry; `None` for a duplicate or without one to append.
    pub audit: Option<AuditEntry>,
}

impl InsertOutcome {
    pub fn instance_id(&self) -> i64 {
        match self {
            Self::Inserted { instance_id }
            | Self::Duplicate { instance_id, .. }
            | Self::NewVersion { instance_id, .. } => *instance_id,
        }
    }
}

/// The index key of a patient: `"{institution_id or 0}|{issuer}|{patient_id}"`, with `\`
/// and `|` inside issuer and patient ID escaped by `\` so distinct inputs never collide.
pub fn patient_key(institution_id: Option<i64>, issuer: Option<&str>, patient_id: &str) -> String {
    fn esc(s: &str) -> String {
        s.replace('\\', "\\\\").replace('|', "\\|")
    }
    format!(
        "{}|{}|{}",
        institution_id.unwrap_or(0),
        esc(issuer.unwrap_or("")),
        esc(patient_id)
    )
}

// ---- rows ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PatientRow {
    pub id: i64,
    pub patient_key: String,
    pub institution_id: Option<i64>,
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StudyRow {
    pub id: i64,
    pub study_instance_uid: String,
    pub patient_ref: i64,
    pub institution_id: Option<i64>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub study_id: Option<String>,
    pub body_part_examined: Option<String>,
    /// Backslash-joined, sorted, distinct.
    pub modalities_in_study: Option<String>,
    pub num_series: i64,
    /// Distinct SOP Instance UIDs.
    pub num_instances: i64,
    /// All stored versions.
    pub size_bytes: i64,
    pub received_at: i64,
    pub updated_at: i64,
    // from patients
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SeriesRow {
    pub id: i64,
    pub study_ref: i64,
    pub series_instance_uid: String,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub body_part_examined: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    pub num_instances: i64,
    pub size_bytes: i64,
    pub received_at: i64,
    pub updated_at: i64,
    // from studies
    pub study_instance_uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: i64,
    pub series_ref: i64,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub size_bytes: i64,
    pub sha256: String,
    pub dataset_hash: String,
    pub blob_key: String,
    pub source_ae: Option<String>,
    pub institution_id: Option<i64>,
    pub received_at: i64,
    // from series and studies
    pub series_instance_uid: String,
    pub study_instance_uid: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Counts {
    pub patients: i64,
    pub studies: i64,
    pub series: i64,
    /// Distinct SOP Instance UIDs.
    pub instances: i64,
    /// Instance rows (all versions).
    pub instance_versions: i64,
}

/// The SQL index.
#[async_trait]
pub trait Catalog:
    crate::worklist::WorklistStore + crate::report::ReportStore + crate::stats::StatsStore + Send + Sync
{
    /// Apply the embedded migrations of this dialect.
    async fn migrate(&self) -> Result<()>;
    async fn ping(&self) -> Result<()>;
    fn dialect(&self) -> Dialect;

    // tenancy

    /// `Conflict` if an alliance of that name exists.
    async fn add_alliance(&self, name: &str) -> Result<Alliance>;
    async fn list_alliances(&self) -> Result<Vec<Alliance>>;
    /// `NotFound` for an unknown alliance or parent; `Invalid` for a parent in another
    /// alliance or a level that may not head this one; `Conflict` if the name is taken.
    async fn add_institution(&self, new: &NewInstitution) -> Result<Institution>;
    async fn list_institutions(&self) -> Result<Vec<Institution>>;
    async fn find_institution(&self, name: &str) -> Result<Option<Institution>>;
    /// The AE title is validated and normalised; `Conflict` if it is taken.
    async fn add_ae_title(
        &self,
        institution: &str,
        ae_title: &str,
        host: Option<&str>,
    ) -> Result<AeTitle>;
    async fn list_ae_titles(&self) -> Result<Vec<AeTitle>>;
    async fn find_ae_title(&self, ae_title: &str) -> Result<Option<AeTitle>>;
    /// Rename an institution and/or set its population. `NotFound` for an unknown id;
    /// `Conflict` if the new name is taken; `Invalid` for an empty name or a negative
    /// population. A rename keeps the former name ([`Catalog::institution_former_names`]).
    async fn update_institution(&self, id: i64, update: &InstitutionUpdate) -> Result<Institution>;
    /// The names the institution had before it was renamed (oldest first): a report signed
    /// under a former name still names its institution truly.
    async fn institution_former_names(&self, id: i64) -> Result<Vec<String>>;
    async fn get_ae_title(&self, id: i64) -> Result<Option<AeTitle>>;
    /// `NotFound` if there is no such AE title.
    async fn delete_ae_title(&self, id: i64) -> Result<()>;

    // instances

    async fn find_instance_version(
        &self,
        sop_instance_uid: &str,
        dataset_hash: &str,
    ) -> Result<Option<InstanceRow>>;
    /// Index one received instance in one transaction.
    async fn insert_instance(&self, new: &NewInstance) -> Result<InsertOutcome>;
    /// [`Catalog::insert_instance`], then, when the instance was inserted, its ECG record
    /// ([`Catalog::insert_ecg`]) and its audit entry ([`Catalog::append_audit`]). An index
    /// that can does all of it in one transaction (an ECG upload then waits for one commit,
    /// not three); this default writes them one after the other.
    async fn insert_instance_with(
        &self,
        new: &NewInstance,
        extras: &InstanceExtras,
    ) -> Result<InsertedWith> {
        let outcome = self.insert_instance(new).await?;
        let instance_id = match &outcome {
            InsertOutcome::Inserted { instance_id }
            | InsertOutcome::NewVersion { instance_id, .. } => *instance_id,
            InsertOutcome::Duplicate { .. } => {
                return Ok(InsertedWith {
                    outcome,
                    ecg: None,
                    audit: None,
                });
            }
        };
        let ecg = match &extras.ecg {
            Some((e, key)) => {
                let e = NewEcg {
                    instance_id,
                    ..e.clone()
                };
                Some(self.insert_ecg(&e, key.as_deref()).await?)
            }
            None => None,
        };
        let audit = match &extras.audit {
            Some(a) => Some(self.append_audit(a).await?),
            None => None,
        };
        Ok(InsertedWith {
            outcome,
            ecg,
            audit,
        })
    }
    /// The newest version of an instance.
    async fn get_instance(&self, sop_instance_uid: &str) -> Result<Option<InstanceRow>>;
    /// All versions, oldest first.
    async fn instance_versions(&self, sop_instance_uid: &str) -> Result<Vec<InstanceRow>>;
    async fn get_patient(&self, id: i64) -> Result<Option<PatientRow>>;
    async fn get_study(&self, study_instance_uid: &str) -> Result<Option<StudyRow>>;
    /// One keyset page of studies by id (ascending, or descending with `newest_first`),
    /// optionally only of some institutions.
    async fn list_studies(&self, filter: &StudyFilter) -> Result<Vec<StudyRow>>;
    /// The work item and report of each of these studies (a row per study; `None`s
    /// where there is no work item or report yet).
    async fn study_workflows(&self, study_ids: &[i64]) -> Result<Vec<StudyWorkflowRow>>;
    async fn get_series(&self, series_instance_uid: &str) -> Result<Option<SeriesRow>>;
    /// Ordered by series number (missing last), then creation.
    async fn list_series_of_study(&self, study_instance_uid: &str) -> Result<Vec<SeriesRow>>;
    /// Current versions only; ordered by instance number (missing last), then creation.
    async fn list_instances_of_series(&self, series_instance_uid: &str)
    -> Result<Vec<InstanceRow>>;
    /// Store the derived DICOM JSON of an instance row (rebuilt from its blob).
    async fn set_instance_metadata(&self, instance_id: i64, metadata: &str) -> Result<()>;
    async fn counts(&self) -> Result<Counts>;
    /// The institutions holding a study and (the newest version of) a SOP instance, when
    /// they exist and belong to one.
    async fn owners(
        &self,
        study_instance_uid: &str,
        sop_instance_uid: &str,
    ) -> Result<(Option<i64>, Option<i64>)>;
    /// What the ingest looks up before it stores an instance, in one round trip where the
    /// index allows: [`Catalog::find_instance_version`], [`Catalog::owners`], and whether
    /// a version of the SOP instance has a [`LEGACY_DATASET_KEY_PREFIX`] key.
    async fn ingest_lookup(
        &self,
        study_instance_uid: &str,
        sop_instance_uid: &str,
        dataset_hash: &str,
    ) -> Result<IngestLookup> {
        let version = self
            .find_instance_version(sop_instance_uid, dataset_hash)
            .await?;
        let owners = self.owners(study_instance_uid, sop_instance_uid).await?;
        let legacy_keyed = self
            .instance_versions(sop_instance_uid)
            .await?
            .iter()
            .any(|v| v.dataset_hash.starts_with(LEGACY_DATASET_KEY_PREFIX));
        Ok(IngestLookup {
            version,
            owners,
            legacy_keyed,
        })
    }
    /// A QIDO-RS search (see [`crate::qido`]).
    async fn qido(&self, query: &crate::QidoQuery) -> Result<Vec<crate::QidoRow>>;
    /// The newest version of each SOP instance a WADO-RS request names, in series and
    /// instance number order; `with_metadata` also loads the instance's DICOM JSON.
    async fn wado_instances(
        &self,
        scope: &crate::InstanceScope,
        with_metadata: bool,
    ) -> Result<Vec<crate::WadoInstance>>;
    /// All instance rows (every version) with `id > after_id`, by id, at most `limit`.
    async fn list_instance_rows(&self, after_id: i64, limit: i64) -> Result<Vec<InstanceRow>>;
    /// Remove one instance row, fixing series/study counts and sizes; series and studies
    /// left empty are removed. `NotFound` if there is no such row.
    async fn delete_instance_row(&self, id: i64) -> Result<()>;

    // identity (see `crate::identity`)

    /// `NotFound` for an unknown institution; `Conflict` if the login is taken; `Invalid`
    /// for an empty login or password hash.
    async fn add_user(&self, new: &NewUser) -> Result<User>;
    /// By login.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>>;
    async fn get_user(&self, id: i64) -> Result<Option<User>>;
    /// Count a failed login. The [`crate::identity::LOCKOUT_THRESHOLD`]-th consecutive
    /// failure locks the account for [`crate::identity::LOCKOUT_DURATION`] (and restarts
    /// the count). `NotFound` for an unknown user.
    async fn record_login_failure(&self, user_id: i64) -> Result<LoginFailures>;
    /// After a successful login: no failures, no lock. `NotFound` for an unknown user.
    async fn reset_login_failures(&self, user_id: i64) -> Result<()>;

    /// `Conflict` if the token hash exists; `NotFound` for an unknown user.
    async fn create_session(&self, new: &NewSession) -> Result<Session>;
    /// The session with this token hash if it is active: not revoked, not expired, not
    /// idle for longer than its idle timeout, and its user not disabled.
    async fn find_session(&self, token_hash: &str) -> Result<Option<Session>>;
    /// Record use now (resets the idle timer). `NotFound` if there is no such session.
    async fn touch_session(&self, id: i64) -> Result<()>;
    /// `NotFound` if there is no such session; revoking twice keeps the first time.
    async fn revoke_session(&self, id: i64) -> Result<()>;

    /// Store a pending TOTP secret (base32); it counts as enrolled only after
    /// [`Catalog::confirm_totp`]. `NotFound` for an unknown user.
    async fn set_totp_secret(&self, user_id: i64, secret: &str) -> Result<()>;
    /// The pending (not yet confirmed) TOTP secret. `NotFound` for an unknown user.
    async fn pending_totp_secret(&self, user_id: i64) -> Result<Option<String>>;
    /// Make the pending secret the enrolled one. `NotFound` for an unknown user, `Invalid`
    /// when nothing is pending.
    async fn confirm_totp(&self, user_id: i64) -> Result<()>;
    /// Forget the enrolled and any pending TOTP secret (a lost phone) and revoke all the
    /// user's sessions: the next login enrols again. `NotFound` for an unknown user.
    async fn reset_totp(&self, user_id: i64) -> Result<()>;
    /// Disable the account and revoke all its sessions. `NotFound` for an unknown user.
    async fn disable_user(&self, user_id: i64) -> Result<()>;
    /// Change the role and revoke all the user's sessions. `NotFound` for an unknown user.
    async fn set_user_role(&self, user_id: i64, role: Role) -> Result<User>;
    /// Replace the password hash, clear failed logins and any lock-out, and revoke all the
    /// user's sessions. `NotFound` for an unknown user; `Invalid` for an empty hash.
    async fn set_user_password(&self, user_id: i64, password_hash: &str) -> Result<()>;

    /// `NotFound` for an unknown institution; `Conflict` if the serial or token hash is
    /// taken.
    async fn add_device(&self, new: &NewDevice) -> Result<Device>;
    /// By serial.
    async fn list_devices(&self) -> Result<Vec<Device>>;
    /// The device holding this token, unless revoked.
    async fn find_device_by_token_hash(&self, token_hash: &str) -> Result<Option<Device>>;
    /// Record last-seen now. `NotFound` if there is no such device.
    async fn touch_device(&self, id: i64) -> Result<()>;
    /// `NotFound` if there is no such device; revoking twice keeps the first time.
    async fn revoke_device(&self, id: i64) -> Result<()>;

    /// Record an ECG (its instance already indexed). An institution's second ECG with the
    /// same content is not recorded: the first is returned as `Existing`. With an
    /// Idempotency-Key, the key is bound to the record (a key already bound stays as it was).
    async fn insert_ecg(&self, new: &NewEcg, idempotency_key: Option<&str>) -> Result<EcgInsert>;
    async fn find_ecg(&self, id: i64) -> Result<Option<EcgRow>>;
    /// The newest ECG carried by this SOP instance.
    async fn find_ecg_by_sop_instance(&self, sop_instance_uid: &str) -> Result<Option<EcgRow>>;
    /// The ECGs of a study, oldest first.
    async fn find_ecgs_by_study(&self, study_instance_uid: &str) -> Result<Vec<EcgRow>>;
    async fn find_ecg_by_content(
        &self,
        institution_id: Option<i64>,
        content_sha256: &str,
    ) -> Result<Option<EcgRow>>;
    /// The content hash the key was first used with, and its ECG.
    async fn find_ecg_by_idempotency_key(
        &self,
        institution_id: i64,
        key: &str,
    ) -> Result<Option<(String, EcgRow)>>;
    async fn create_ecg_upload(&self, upload: &EcgUpload) -> Result<()>;
    async fn find_ecg_upload(&self, id: &str) -> Result<Option<EcgUpload>>;
    /// Move the offset from `from` to `to`; false (nothing changed) when the stored offset
    /// is not `from` (a concurrent PATCH won).
    async fn set_ecg_upload_offset(&self, id: &str, from: i64, to: i64) -> Result<bool>;
    async fn finish_ecg_upload(
        &self,
        id: &str,
        ecg_id: Option<i64>,
        error: Option<&str>,
    ) -> Result<()>;
    /// Delete uploads that expired before `now_us`; their ids (to remove their bytes).
    async fn delete_expired_ecg_uploads(&self, now_us: i64) -> Result<Vec<String>>;
    /// Per institution: active ECG devices, their newest last-seen, ECGs received.
    async fn ecg_coverage(&self) -> Result<Vec<EcgCoverageRow>>;
    /// The ECG records with `id > after_id`, by id, at most `limit`: where each keeps its
    /// original bytes and how many there are.
    async fn list_ecg_originals(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<crate::ecg::EcgOriginal>>;

    /// Append one entry to the hash chain, in one write transaction that serialises
    /// appenders (so the chain stays linear across processes and replicas).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry>;
    /// Newest first, filtered, one keyset page.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
    /// Walk the whole chain: ids must run 1, 2, 3 … without holes, each `prev_hash` must
    /// equal the previous entry's `hash` and each `hash` must match its content. Finds
    /// modified and deleted entries, except the removal of the newest entries (which
    /// needs an anchor kept outside the database).
    async fn verify_audit_chain(&self) -> Result<AuditVerification>;
}
