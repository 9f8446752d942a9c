//! Response bodies of `/api/v1`: serializable mirrors of the store rows with OpenAPI
//! schemas. Each is field for field (name, order, type) what serializing the store row
//! produced, so the JSON on the wire is unchanged; secrets the rows skip (password hashes,
//! TOTP secrets, token hashes) have no field here at all.

use dxhub_core::InstitutionLevel;
use dxhub_core::roles::Role;
use dxhub_store as store;
use serde::Serialize;
use utoipa::ToSchema;

/// An alliance (medical community).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Alliance {
    pub id: i64,
    pub name: String,
    /// Epoch µs.
    pub created_at: i64,
}

impl From<store::Alliance> for Alliance {
    fn from(a: store::Alliance) -> Self {
        Self {
            id: a.id,
            name: a.name,
            created_at: a.created_at,
        }
    }
}

/// An institution of an alliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Institution {
    pub id: i64,
    pub alliance_id: i64,
    pub alliance_name: String,
    pub name: String,
    /// `county`, `township` or `village`.
    #[schema(value_type = String)]
    pub level: InstitutionLevel,
    pub parent_id: Option<i64>,
    pub parent_name: Option<String>,
    pub population: Option<i64>,
    /// Epoch µs.
    pub created_at: i64,
}

impl From<store::Institution> for Institution {
    fn from(i: store::Institution) -> Self {
        Self {
            id: i.id,
            alliance_id: i.alliance_id,
            alliance_name: i.alliance_name,
            name: i.name,
            level: i.level,
            parent_id: i.parent_id,
            parent_name: i.parent_name,
            population: i.population,
            created_at: i.created_at,
        }
    }
}

/// A calling AE title registered for an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AeTitle {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub ae_title: String,
    pub host: Option<String>,
    /// Epoch µs.
    pub created_at: i64,
}

impl From<store::AeTitle> for AeTitle {
    fn from(a: store::AeTitle) -> Self {
        Self {
            id: a.id,
            institution_id: a.institution_id,
            institution_name: a.institution_name,
            ae_title: a.ae_title,
            host: a.host,
            created_at: a.created_at,
        }
    }
}

/// A user (never its password hash or TOTP secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct User {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    pub login: String,
    /// clinic_tech, clinic_doctor, reader, senior_reader, group_admin, auditor, superadmin
    #[schema(value_type = String)]
    pub role: Role,
    /// Whether a TOTP secret is enrolled.
    pub totp_enrolled: bool,
    pub failed_logins: i64,
    /// Epoch µs until which logins are refused.
    pub locked_until: Option<i64>,
    pub disabled: bool,
    /// A clinic user's on-duty schedule (China Standard Time, e.g. `mon-fri 08:00-17:30;
    /// sat,sun 08:00-12:00`): critical values alert the users on duty. `null`: always.
    pub duty_schedule: Option<String>,
    /// Epoch µs.
    pub created_at: i64,
    /// Epoch µs.
    pub updated_at: i64,
}

impl From<store::User> for User {
    fn from(u: store::User) -> Self {
        Self {
            id: u.id,
            institution_id: u.institution_id,
            institution_name: u.institution_name,
            alliance_id: u.alliance_id,
            login: u.login,
            role: u.role,
            totp_enrolled: u.totp_enrolled,
            failed_logins: u.failed_logins,
            locked_until: u.locked_until,
            disabled: u.disabled,
            duty_schedule: u.duty_schedule,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A device (never its token hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Device {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    pub serial: String,
    pub model: Option<String>,
    /// `ecg` or `gateway`.
    pub kind: String,
    /// Epoch µs.
    pub created_at: i64,
    /// Epoch µs.
    pub last_seen_at: Option<i64>,
    /// Epoch µs.
    pub revoked_at: Option<i64>,
    /// ECGs received with the device's token.
    pub uploads: i64,
}

impl From<store::Device> for Device {
    fn from(d: store::Device) -> Self {
        Self {
            id: d.id,
            institution_id: d.institution_id,
            institution_name: d.institution_name,
            alliance_id: d.alliance_id,
            serial: d.serial,
            model: d.model,
            kind: d.kind,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
            uploads: d.uploads,
        }
    }
}

/// A device just registered, with its upload token (shown only this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceCreated {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    pub serial: String,
    pub model: Option<String>,
    /// `ecg` or `gateway`.
    pub kind: String,
    /// Epoch µs.
    pub created_at: i64,
    /// Epoch µs.
    pub last_seen_at: Option<i64>,
    /// Epoch µs.
    pub revoked_at: Option<i64>,
    /// ECGs received with the device's token.
    pub uploads: i64,
    /// The device's upload token (`Authorization: Bearer …`).
    pub token: String,
}

impl DeviceCreated {
    pub fn new(d: store::Device, token: String) -> Self {
        let d = Device::from(d);
        Self {
            id: d.id,
            institution_id: d.institution_id,
            institution_name: d.institution_name,
            alliance_id: d.alliance_id,
            serial: d.serial,
            model: d.model,
            kind: d.kind,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
            uploads: d.uploads,
            token,
        }
    }
}

/// A study with its patient's attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Study {
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
    /// Epoch µs.
    pub received_at: i64,
    /// Epoch µs.
    pub updated_at: i64,
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
}

impl From<store::StudyRow> for Study {
    fn from(s: store::StudyRow) -> Self {
        Self {
            id: s.id,
            study_instance_uid: s.study_instance_uid,
            patient_ref: s.patient_ref,
            institution_id: s.institution_id,
            study_date: s.study_date,
            study_time: s.study_time,
            accession_number: s.accession_number,
            study_description: s.study_description,
            referring_physician_name: s.referring_physician_name,
            study_id: s.study_id,
            body_part_examined: s.body_part_examined,
            modalities_in_study: s.modalities_in_study,
            num_series: s.num_series,
            num_instances: s.num_instances,
            size_bytes: s.size_bytes,
            received_at: s.received_at,
            updated_at: s.updated_at,
            patient_id: s.patient_id,
            issuer_of_patient_id: s.issuer_of_patient_id,
            patient_name: s.patient_name,
            patient_birth_date: s.patient_birth_date,
            patient_sex: s.patient_sex,
        }
    }
}

/// A series of a study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Series {
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
    /// Epoch µs.
    pub received_at: i64,
    /// Epoch µs.
    pub updated_at: i64,
    pub study_instance_uid: String,
}

impl From<store::SeriesRow> for Series {
    fn from(s: store::SeriesRow) -> Self {
        Self {
            id: s.id,
            study_ref: s.study_ref,
            series_instance_uid: s.series_instance_uid,
            modality: s.modality,
            series_number: s.series_number,
            series_description: s.series_description,
            body_part_examined: s.body_part_examined,
            series_date: s.series_date,
            series_time: s.series_time,
            num_instances: s.num_instances,
            size_bytes: s.size_bytes,
            received_at: s.received_at,
            updated_at: s.updated_at,
            study_instance_uid: s.study_instance_uid,
        }
    }
}

/// One entry of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Epoch µs.
    pub at: i64,
    pub actor_kind: String,
    pub actor: String,
    pub institution_id: Option<i64>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub outcome: String,
    pub client: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl From<store::AuditEntry> for AuditEntry {
    fn from(e: store::AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor_kind: e.actor_kind,
            actor: e.actor,
            institution_id: e.institution_id,
            action: e.action,
            object_kind: e.object_kind,
            object_id: e.object_id,
            outcome: e.outcome,
            client: e.client,
            request_id: e.request_id,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// `GET /api/v1/alliances`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllianceList {
    pub alliances: Vec<Alliance>,
}

/// `GET /api/v1/institutions`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InstitutionList {
    pub institutions: Vec<Institution>,
}

/// `GET /api/v1/ae-titles`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AeTitleList {
    pub ae_titles: Vec<AeTitle>,
}

/// `GET /api/v1/users`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
}

/// `GET /api/v1/devices`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// `GET /api/v1/studies`: one page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StudyList {
    pub studies: Vec<StudyListEntry>,
    /// Cursor of the next page (`after_id`); null on the last page.
    pub next_after_id: Option<i64>,
}

/// A study of `GET /api/v1/studies` with where it is in the reading workflow.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StudyListEntry {
    #[serde(flatten)]
    pub study: Study,
    pub workflow: StudyWorkflow,
}

/// Where a study is, as a clinic sees it: `received` (stored, not yet on a worklist),
/// `queued` (waiting for a reader), `reading` (claimed, drafted, submitted or returned to
/// the reader), `reported` (signed report), `cancelled`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StudyWorkflow {
    pub status: &'static str,
    pub work_item_id: Option<i64>,
    pub work_item_state: Option<String>,
    pub priority: Option<String>,
    pub critical: bool,
    /// Epoch µs.
    pub due_at: Option<i64>,
    /// `2026-11-23T10:00:00+08:00`.
    pub due_at_local: Option<String>,
    /// Still open and past its due time.
    pub overdue: bool,
    pub report_id: Option<i64>,
    pub report_state: Option<String>,
    /// Epoch µs of the signature in force.
    pub signed_at: Option<i64>,
}

impl StudyWorkflow {
    pub fn from_row(w: Option<store::StudyWorkflowRow>, now_us: i64) -> Self {
        let w = w.unwrap_or(store::StudyWorkflowRow {
            study_id: 0,
            work_item_id: None,
            work_item_state: None,
            priority: None,
            critical: None,
            due_at: None,
            done_at: None,
            report_id: None,
            report_state: None,
            signed_at: None,
        });
        let status = match (w.work_item_state.as_deref(), w.report_state.as_deref()) {
            (_, Some("signed")) | (Some("signed"), _) => "reported",
            (Some("cancelled"), _) => "cancelled",
            (Some("queued"), _) => "queued",
            (Some(_), _) => "reading",
            (None, _) => "received",
        };
        let open = !matches!(status, "reported" | "cancelled" | "received");
        Self {
            status,
            overdue: open && w.due_at.is_some_and(|d| d <= now_us),
            due_at_local: w.due_at.map(crate::worklist::shanghai),
            work_item_id: w.work_item_id,
            work_item_state: w.work_item_state,
            priority: w.priority,
            critical: w.critical.unwrap_or(0) != 0,
            due_at: w.due_at,
            report_id: w.report_id,
            report_state: w.report_state,
            signed_at: w.signed_at,
        }
    }
}

/// `GET /api/v1/studies/{study_uid}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StudyDetail {
    pub study: Study,
    pub series: Vec<Series>,
}

/// `GET /api/v1/audit` (JSON): one page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    /// Cursor of the next page (`before_id`); null on the last page.
    pub next_before_id: Option<i64>,
}

/// Collect store rows into response DTOs.
pub fn rows<R, T: From<R>>(rows: impl IntoIterator<Item = R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

#[cfg(test)]
mod tests {
    //! The DTOs serialize exactly as the store rows did, alone and inside the handlers'
    //! envelopes (which went through `serde_json::Value` before and still do).

    use serde::Serialize;
    use serde_json::json;

    use super::*;

    /// Serializing the row and its DTO gives the same bytes, directly and via `Value`.
    fn same<R: Serialize + Clone, T: From<R> + Serialize>(row: &R) -> String {
        let old = serde_json::to_string(row).unwrap();
        let new = serde_json::to_string(&T::from(row.clone())).unwrap();
        assert_eq!(old, new, "direct serialization differs");
        let old_v = serde_json::to_string(&serde_json::to_value(row).unwrap()).unwrap();
        let new_v =
            serde_json::to_string(&serde_json::to_value(T::from(row.clone())).unwrap()).unwrap();
        assert_eq!(old_v, new_v, "serialization via Value differs");
        new
    }

    fn user() -> store::User {
        store::User {
            id: 7,
            institution_id: 3,
            institution_name: "Village \"A\"".into(),
            alliance_id: 1,
            login: "ada".into(),
            role: Role::GroupAdmin,
            password_hash: "$argon2id$SECRET-HASH".into(),
            totp_secret: Some("TOTPSECRETBASE32".into()),
            totp_enrolled: true,
            failed_logins: 2,
            locked_until: None,
            disabled: false,
            duty_schedule: Some("mon-fri 08:00-17:30".into()),
            created_at: 1_700_000_000_000_000,
            updated_at: 1_700_000_000_000_001,
        }
    }

    fn device() -> store::Device {
        store::Device {
            id: 4,
            institution_id: 3,
            institution_name: "Village A".into(),
            alliance_id: 1,
            serial: "SN-1".into(),
            model: None,
            kind: "ecg".into(),
            token_hash: "TOKEN-HASH-SECRET".into(),
            created_at: 1,
            last_seen_at: Some(2),
            revoked_at: None,
            uploads: 0,
        }
    }

    fn study() -> store::StudyRow {
        store::StudyRow {
            id: 11,
            study_instance_uid: "1.2.3".into(),
            patient_ref: 5,
            institution_id: Some(3),
            study_date: Some("20240101".into()),
            study_time: None,
            accession_number: Some("ACC".into()),
            study_description: None,
            referring_physician_name: Some("Doe^J".into()),
            study_id: None,
            body_part_examined: Some("CHEST".into()),
            modalities_in_study: Some("CT\\DX".into()),
            num_series: 2,
            num_instances: 30,
            size_bytes: 123_456,
            received_at: 10,
            updated_at: 11,
            patient_id: "P1".into(),
            issuer_of_patient_id: None,
            patient_name: Some("Roe^Jane".into()),
            patient_birth_date: None,
            patient_sex: Some("F".into()),
        }
    }

    fn series() -> store::SeriesRow {
        store::SeriesRow {
            id: 12,
            study_ref: 11,
            series_instance_uid: "1.2.3.4".into(),
            modality: Some("CT".into()),
            series_number: Some(1),
            series_description: None,
            body_part_examined: None,
            series_date: Some("20240101".into()),
            series_time: None,
            num_instances: 30,
            size_bytes: 100,
            received_at: 10,
            updated_at: 11,
            study_instance_uid: "1.2.3".into(),
        }
    }

    fn institution(level: InstitutionLevel) -> store::Institution {
        store::Institution {
            id: 3,
            alliance_id: 1,
            alliance_name: "North".into(),
            name: "Village A".into(),
            level,
            parent_id: Some(2),
            parent_name: Some("Township B".into()),
            population: None,
            created_at: 5,
        }
    }

    fn audit_entry() -> store::AuditEntry {
        store::AuditEntry {
            id: 99,
            at: 1_700_000_000_000_000,
            actor_kind: "user".into(),
            actor: "ada".into(),
            institution_id: None,
            action: "auth.login".into(),
            object_kind: Some("user".into()),
            object_id: Some("ada".into()),
            outcome: "success".into(),
            client: Some("127.0.0.1".into()),
            request_id: None,
            prev_hash: "00".into(),
            hash: "ab".into(),
        }
    }

    #[test]
    fn rows_and_dtos_serialize_identically() {
        same::<_, Study>(&study());
        same::<_, Series>(&series());
        same::<_, Device>(&device());
        same::<_, AuditEntry>(&audit_entry());
        for level in [
            InstitutionLevel::County,
            InstitutionLevel::Township,
            InstitutionLevel::Village,
        ] {
            same::<_, Institution>(&institution(level));
        }
        for role in [
            Role::ClinicTech,
            Role::ClinicDoctor,
            Role::Reader,
            Role::SeniorReader,
            Role::GroupAdmin,
            Role::Auditor,
            Role::Superadmin,
        ] {
            same::<_, User>(&store::User { role, ..user() });
        }
        same::<_, User>(&store::User {
            locked_until: Some(42),
            totp_secret: None,
            disabled: true,
            ..user()
        });
        same::<_, Alliance>(&store::Alliance {
            id: 1,
            name: "North".into(),
            created_at: 2,
        });
        same::<_, AeTitle>(&store::AeTitle {
            id: 1,
            institution_id: 3,
            institution_name: "Village A".into(),
            ae_title: "MODALITY1".into(),
            host: None,
            created_at: 2,
        });
    }

    #[test]
    fn envelopes_serialize_as_the_handlers_did() {
        let s = |v: serde_json::Value| serde_json::to_string(&v).unwrap();
        // list_users
        assert_eq!(
            s(json!({ "users": [user()] })),
            s(serde_json::to_value(UserList {
                users: rows(vec![user()])
            })
            .unwrap())
        );
        // list_devices
        assert_eq!(
            s(json!({ "devices": [device()] })),
            s(serde_json::to_value(DeviceList {
                devices: rows(vec![device()])
            })
            .unwrap())
        );
        // add_device: the row plus its token
        let mut old = serde_json::to_value(device()).unwrap();
        old["token"] = serde_json::Value::String("dxd_tok".into());
        assert_eq!(
            s(old),
            s(serde_json::to_value(DeviceCreated::new(device(), "dxd_tok".into())).unwrap())
        );
        // list_institutions
        assert_eq!(
            s(json!({ "institutions": [institution(InstitutionLevel::Village)] })),
            s(serde_json::to_value(InstitutionList {
                institutions: rows(vec![institution(InstitutionLevel::Village)])
            })
            .unwrap())
        );
        // list_studies, both with and without a next page
        for next in [None, Some(11)] {
            // each study with its workflow (here: received, no work item)
            let mut entry = serde_json::to_value(study()).unwrap();
            entry["workflow"] = json!({
                "status": "received", "work_item_id": null, "work_item_state": null,
                "priority": null, "critical": false, "due_at": null, "due_at_local": null,
                "overdue": false, "report_id": null, "report_state": null, "signed_at": null,
            });
            assert_eq!(
                s(json!({ "studies": [entry], "next_after_id": next })),
                s(serde_json::to_value(StudyList {
                    studies: vec![StudyListEntry {
                        study: Study::from(study()),
                        workflow: StudyWorkflow::from_row(None, 0),
                    }],
                    next_after_id: next,
                })
                .unwrap())
            );
        }
        // get_study
        assert_eq!(
            s(json!({ "study": study(), "series": [series(), series()] })),
            s(serde_json::to_value(StudyDetail {
                study: study().into(),
                series: rows(vec![series(), series()]),
            })
            .unwrap())
        );
        // list_audit
        for next in [None, Some(99)] {
            assert_eq!(
                s(json!({ "entries": [audit_entry()], "next_before_id": next })),
                s(serde_json::to_value(AuditList {
                    entries: rows(vec![audit_entry()]),
                    next_before_id: next,
                })
                .unwrap())
            );
        }
        // empty lists
        assert_eq!(
            s(json!({ "users": Vec::<store::User>::new() })),
            s(serde_json::to_value(UserList { users: Vec::new() }).unwrap())
        );
    }

    #[test]
    fn secrets_never_serialize() {
        let u = serde_json::to_string(&User::from(user())).unwrap();
        assert!(!u.contains("SECRET-HASH") && !u.contains("password"), "{u}");
        assert!(
            !u.contains("TOTPSECRET") && !u.contains("totp_secret"),
            "{u}"
        );
        let d = serde_json::to_string(&Device::from(device())).unwrap();
        assert!(
            !d.contains("TOKEN-HASH") && !d.contains("token_hash"),
            "{d}"
        );
        let d = serde_json::to_string(&DeviceCreated::new(device(), "t".into())).unwrap();
        assert!(
            !d.contains("TOKEN-HASH") && !d.contains("token_hash"),
            "{d}"
        );
    }
}

/// Every error answer: `{"error":{"code","message"}}` (codes: see API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable kebab-case code, e.g. `forbidden`, `not-found`, `invalid-json`.
    pub code: String,
    /// Human-readable; not for parsing.
    pub message: String,
}
