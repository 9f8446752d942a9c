//! Identity and audit records of the catalog: users, sessions, device tokens and the
//! hash-chained audit log. Secrets never reach this module in clear: passwords arrive as
//! argon2id PHC strings and tokens as their sha256 (see [`crate::secrets`]).

use std::time::Duration;

use dxhub_core::Role;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Consecutive failed logins that lock an account.
pub const LOCKOUT_THRESHOLD: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);
/// The `prev_hash` of the first audit entry.
pub const AUDIT_GENESIS_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

// ---- users ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    pub login: String,
    pub role: Role,
    /// argon2id PHC string.
    #[serde(skip_serializing)]
    pub password_hash: String,
    #[serde(skip_serializing)]
    pub totp_secret: Option<String>,
    /// Whether a TOTP secret is enrolled.
    pub totp_enrolled: bool,
    pub failed_logins: i64,
    /// Epoch µs until which logins are refused.
    pub locked_until: Option<i64>,
    pub disabled: bool,
    /// On-duty schedule of a clinic user ([`dxhub_core::worklist::Schedule`]): critical
    /// values alert the users on duty. `None`: always on duty.
    pub duty_schedule: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// Whether logins are refused at `now_us` because of repeated failures.
    pub fn is_locked(&self, now_us: i64) -> bool {
        self.locked_until.is_some_and(|t| t > now_us)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Name of the user's institution.
    pub institution: String,
    pub login: String,
    pub role: Role,
    /// argon2id PHC string (never a clear password).
    pub password_hash: String,
}

/// The state of an account after [`crate::Catalog::record_login_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct LoginFailures {
    /// Consecutive failures since the last success or lock (0 right after locking).
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

// ---- sessions ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub user_id: i64,
    /// sha256 (hex) of the bearer token.
    pub token_hash: String,
    /// Absolute lifetime.
    pub ttl: Duration,
    /// The session ends when unused for this long; `None` for tokens issued to scripts.
    pub idle_timeout: Option<Duration>,
    /// Client address (or `"cli"`).
    pub client: Option<String>,
    /// [`SESSION_ISSUED_BY_LOGIN`] or [`SESSION_ISSUED_BY_CLI`].
    pub issued_by: String,
}

/// `issued_by` of sessions created by an HTTP login.
pub const SESSION_ISSUED_BY_LOGIN: &str = "login";
/// `issued_by` of tokens issued by `dxhub admin token issue` (service accounts).
pub const SESSION_ISSUED_BY_CLI: &str = "cli";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: i64,
    pub user_id: i64,
    #[serde(skip_serializing)]
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_seen_at: i64,
    pub idle_timeout_us: Option<i64>,
    pub revoked_at: Option<i64>,
    pub client: Option<String>,
    pub issued_by: String,
}

// ---- devices ----

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Name of the institution the device is bound to.
    pub institution: String,
    pub serial: String,
    pub model: Option<String>,
    /// sha256 (hex) of the upload token.
    pub token_hash: String,
    /// `ecg` (an acquiring ECG device; the default) or `gateway` (a clinic gateway).
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Device {
    pub id: i64,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    pub serial: String,
    pub model: Option<String>,
    /// `ecg` or `gateway`.
    pub kind: String,
    #[serde(skip_serializing)]
    pub token_hash: String,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// ECGs received with this device's token.
    pub uploads: i64,
}

// ---- audit ----

/// One event to record. `at` is set by the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    /// `user`, `device`, `ae` or `cli`.
    pub actor_kind: String,
    /// Login, device serial, AE title or OS user.
    pub actor: String,
    pub institution_id: Option<i64>,
    /// What was done, e.g. `user.add`, `study.read`, `auth.login`.
    pub action: String,
    /// e.g. `study`, `report`, `user`, `device`.
    pub object_kind: Option<String>,
    /// e.g. a Study Instance UID, a report id, a login.
    pub object_id: Option<String>,
    /// `success`, `denied`, `failure` …
    pub outcome: String,
    pub client: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
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

impl AuditEntry {
    /// The hash this entry must carry: sha256(prev_hash ‖ canonical entry), hex.
    pub fn expected_hash(&self) -> String {
        audit_hash(&self.prev_hash, self.id, self.at, &self.fields())
    }

    pub(crate) fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            actor_kind: &self.actor_kind,
            actor: &self.actor,
            institution_id: self.institution_id,
            action: &self.action,
            object_kind: self.object_kind.as_deref(),
            object_id: self.object_id.as_deref(),
            outcome: &self.outcome,
            client: self.client.as_deref(),
            request_id: self.request_id.as_deref(),
        }
    }
}

impl NewAuditEntry {
    pub(crate) fn fields(&self) -> AuditFields<'_> {
        AuditFields {
            actor_kind: &self.actor_kind,
            actor: &self.actor,
            institution_id: self.institution_id,
            action: &self.action,
            object_kind: self.object_kind.as_deref(),
            object_id: self.object_id.as_deref(),
            outcome: &self.outcome,
            client: self.client.as_deref(),
            request_id: self.request_id.as_deref(),
        }
    }
}

pub(crate) struct AuditFields<'a> {
    pub actor_kind: &'a str,
    pub actor: &'a str,
    pub institution_id: Option<i64>,
    pub action: &'a str,
    pub object_kind: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub outcome: &'a str,
    pub client: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// sha256 over `prev_hash` and a canonical, unambiguous serialisation of the entry:
/// every field in column order as `i<decimal>;`, `s<byte length>:<utf-8>` or `n;` for
/// NULL. Changing this changes every hash: never do so once entries exist.
pub(crate) fn audit_hash(prev_hash: &str, id: i64, at: i64, f: &AuditFields<'_>) -> String {
    fn s(h: &mut Sha256, v: Option<&str>) {
        match v {
            Some(v) => {
                h.update(format!("s{}:", v.len()).as_bytes());
                h.update(v.as_bytes());
            }
            None => h.update(b"n;"),
        }
    }
    fn i(h: &mut Sha256, v: Option<i64>) {
        match v {
            Some(v) => h.update(format!("i{v};").as_bytes()),
            None => h.update(b"n;"),
        }
    }
    let mut h = Sha256::new();
    s(&mut h, Some(prev_hash));
    i(&mut h, Some(id));
    i(&mut h, Some(at));
    s(&mut h, Some(f.actor_kind));
    s(&mut h, Some(f.actor));
    i(&mut h, f.institution_id);
    s(&mut h, Some(f.action));
    s(&mut h, f.object_kind);
    s(&mut h, f.object_id);
    s(&mut h, Some(f.outcome));
    s(&mut h, f.client);
    s(&mut h, f.request_id);
    hex::encode(h.finalize())
}

/// Filters of [`crate::Catalog::list_studies`]. Results are ordered by id ascending; page
/// with `after_id` = the last id of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyFilter {
    /// Only studies of these institutions; `None`: every study (including those without
    /// an institution). `Some(vec![])` matches nothing.
    pub institution_ids: Option<Vec<i64>>,
    /// Only studies routed to this reader (user id) and those patients' priors.
    #[serde(default)]
    pub routed_to: Option<i64>,
    /// Keyset cursor: only studies with `id > after_id` (oldest first) or, with
    /// `newest_first`, `id < after_id`.
    pub after_id: Option<i64>,
    /// Order by id descending (the most recently received first).
    #[serde(default)]
    pub newest_first: bool,
    /// At most this many (default 100, cap 1000).
    pub limit: Option<i64>,
}

/// Where a study is in the reading workflow ([`crate::Catalog::study_workflows`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StudyWorkflowRow {
    pub study_id: i64,
    pub work_item_id: Option<i64>,
    /// The work item's state (`queued`, `claimed`, … `signed`, `cancelled`).
    pub work_item_state: Option<String>,
    pub priority: Option<String>,
    pub critical: Option<i64>,
    /// Epoch µs.
    pub due_at: Option<i64>,
    pub done_at: Option<i64>,
    pub report_id: Option<i64>,
    pub report_state: Option<String>,
    /// Epoch µs of the version in force.
    pub signed_at: Option<i64>,
}

/// Filters of [`crate::Catalog::list_audit`]; every set field must match. Results are
/// newest first; page with `before_id` = the last id of the previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditFilter {
    pub actor_kind: Option<String>,
    pub actor: Option<String>,
    pub institution_id: Option<i64>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub outcome: Option<String>,
    /// `at >= since` (epoch µs).
    pub since: Option<i64>,
    /// `at < until` (epoch µs).
    pub until: Option<i64>,
    /// Keyset cursor: only entries with `id < before_id`.
    pub before_id: Option<i64>,
    /// At most this many (default and cap 1000).
    pub limit: Option<i64>,
    /// Only entries of these institutions (an auditor's alliance); `Some(vec![])` matches
    /// nothing.
    pub institution_ids: Option<Vec<i64>>,
}

/// The result of [`crate::Catalog::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: i64,
    /// The first entry that breaks the chain, if any.
    pub first_bad_id: Option<i64>,
    pub problem: Option<String>,
}

impl AuditVerification {
    pub fn is_intact(&self) -> bool {
        self.first_bad_id.is_none() && self.problem.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            id: 1,
            at: 1_700_000_000_000_000,
            actor_kind: "cli".into(),
            actor: "root".into(),
            institution_id: Some(3),
            action: "user.add".into(),
            object_kind: Some("user".into()),
            object_id: Some("li.wei".into()),
            outcome: "success".into(),
            client: None,
            request_id: None,
            prev_hash: AUDIT_GENESIS_HASH.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn audit_hash_covers_every_field_and_is_unambiguous() {
        let base = entry().expected_hash();
        assert_eq!(base.len(), 64);
        assert_eq!(base, entry().expected_hash(), "deterministic");
        let variants: [fn(&mut AuditEntry); 13] = [
            |e| e.id = 2,
            |e| e.at += 1,
            |e| e.actor_kind = "user".into(),
            |e| e.actor = "roo".into(),
            |e| e.institution_id = None,
            |e| e.action = "user.del".into(),
            |e| e.object_kind = None,
            |e| e.object_id = Some("li.we".into()),
            |e| e.outcome = "failure".into(),
            |e| e.client = Some(String::new()),
            |e| e.request_id = Some("r".into()),
            |e| e.prev_hash = "1".repeat(64),
            // moving text between adjacent fields changes the hash
            |e| {
                e.actor_kind = "clir".into();
                e.actor = "oot".into();
            },
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut e = entry();
            change(&mut e);
            assert_ne!(e.expected_hash(), base, "variant {i}");
        }
    }

    #[test]
    fn lock_state() {
        let mut u = User {
            id: 1,
            institution_id: 1,
            institution_name: "x".into(),
            alliance_id: 1,
            login: "l".into(),
            role: Role::Reader,
            password_hash: String::new(),
            totp_secret: None,
            totp_enrolled: false,
            failed_logins: 0,
            locked_until: None,
            disabled: false,
            duty_schedule: None,
            created_at: 0,
            updated_at: 0,
        };
        assert!(!u.is_locked(10));
        u.locked_until = Some(20);
        assert!(u.is_locked(10));
        assert!(!u.is_locked(20));
    }
}
