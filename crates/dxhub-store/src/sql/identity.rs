//! Identity and audit on [`SqlCatalog`]: the bodies behind the identity methods of
//! [`crate::Catalog`] (which `sql.rs` delegates here).

use std::time::Duration;

use dxhub_core::Role;

use super::{SqlCatalog, conflict_as, now_us, required};
use crate::catalog::{Dialect, Error, Result};
use crate::identity::{
    AUDIT_GENESIS_HASH, AuditEntry, AuditFilter, AuditVerification, Device, LOCKOUT_DURATION,
    LOCKOUT_THRESHOLD, LoginFailures, NewAuditEntry, NewDevice, NewSession, NewUser, Session, User,
    audit_hash,
};

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

// ---- users ----

#[derive(sqlx::FromRow)]
struct UserDbRow {
    id: i64,
    institution_id: i64,
    institution_name: String,
    alliance_id: i64,
    login: String,
    role: String,
    password_hash: String,
    totp_secret: Option<String>,
    failed_logins: i64,
    locked_until: Option<i64>,
    disabled: i64,
    duty_schedule: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<UserDbRow> for User {
    type Error = Error;
    fn try_from(r: UserDbRow) -> Result<Self> {
        let role = r
            .role
            .parse::<Role>()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(User {
            id: r.id,
            institution_id: r.institution_id,
            institution_name: r.institution_name,
            alliance_id: r.alliance_id,
            login: r.login,
            role,
            password_hash: r.password_hash,
            totp_enrolled: r.totp_secret.is_some(),
            totp_secret: r.totp_secret,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until,
            disabled: r.disabled != 0,
            duty_schedule: r.duty_schedule,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

macro_rules! user_select {
    () => {
        "SELECT u.id, u.institution_id, i.name AS institution_name, i.alliance_id, u.login, \
         u.role, u.password_hash, u.totp_secret, u.failed_logins, u.locked_until, u.disabled, \
         u.duty_schedule, u.created_at, u.updated_at \
         FROM users u JOIN institutions i ON i.id = u.institution_id "
    };
}
const LIST_USERS: &str = concat!(user_select!(), "ORDER BY u.login");
const FIND_USER_BY_LOGIN: &str = concat!(user_select!(), "WHERE u.login = $1");
const GET_USER: &str = concat!(user_select!(), "WHERE u.id = $1");
const FIND_INSTITUTION_ID: &str = "SELECT id FROM institutions WHERE name = $1";
const INSERT_USER: &str = "INSERT INTO users \
     (institution_id, login, role, password_hash, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";

/// The threshold-th consecutive failure locks until `$3` and restarts the count. Every
/// `SET` expression sees the row as it was before the update (SQLite and PostgreSQL).
const RECORD_LOGIN_FAILURE: &str = "UPDATE users SET \
      failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END, \
      locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
      updated_at = $4 \
     WHERE id = $1 RETURNING failed_logins, locked_until";
const RESET_LOGIN_FAILURES: &str = "UPDATE users SET failed_logins = 0, locked_until = NULL, \
     updated_at = $2 WHERE id = $1";

// ---- sessions ----

const SESSION_COLUMNS: &str = "s.id, s.user_id, s.token_hash, s.created_at, s.expires_at, \
     s.last_seen_at, s.idle_timeout_us, s.revoked_at, s.client, s.issued_by";
const INSERT_SESSION: &str = "INSERT INTO sessions \
     (user_id, token_hash, created_at, expires_at, last_seen_at, idle_timeout_us, client, \
      issued_by) \
     VALUES ($1, $2, $3, $4, $3, $5, $6, $7) \
     RETURNING id, user_id, token_hash, created_at, expires_at, last_seen_at, idle_timeout_us, \
      revoked_at, client, issued_by";
const USER_EXISTS: &str = "SELECT id FROM users WHERE id = $1";
const FIND_SESSION: &str = "SELECT s.id, s.user_id, s.token_hash, s.created_at, s.expires_at, \
     s.last_seen_at, s.idle_timeout_us, s.revoked_at, s.client, s.issued_by \
     FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
      AND (s.idle_timeout_us IS NULL OR s.last_seen_at + s.idle_timeout_us > $2) \
      AND u.disabled = 0";
const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $2 WHERE id = $1";
const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";

const SET_TOTP_PENDING: &str =
    "UPDATE users SET totp_pending_secret = $2, updated_at = $3 WHERE id = $1";
const GET_TOTP_PENDING: &str = "SELECT totp_pending_secret FROM users WHERE id = $1";
const CONFIRM_TOTP: &str = "UPDATE users SET totp_secret = totp_pending_secret, \
     totp_pending_secret = NULL, updated_at = $2 WHERE id = $1 AND totp_pending_secret IS NOT NULL";
const DISABLE_USER: &str = "UPDATE users SET disabled = 1, updated_at = $2 WHERE id = $1";
const SET_USER_ROLE: &str = "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1";
const SET_USER_PASSWORD: &str = "UPDATE users SET password_hash = $2, failed_logins = 0, \
     locked_until = NULL, updated_at = $3 WHERE id = $1";
const RESET_TOTP: &str = "UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, \
     updated_at = $2 WHERE id = $1";
const REVOKE_USER_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";

// ---- devices ----

macro_rules! device_select {
    () => {
        "SELECT d.id, d.institution_id, i.name AS institution_name, i.alliance_id, d.serial, \
         d.model, d.kind, d.token_hash, d.created_at, d.last_seen_at, d.revoked_at, \
         (SELECT COUNT(*) FROM ecgs e WHERE e.device_id = d.id) AS uploads \
         FROM devices d JOIN institutions i ON i.id = d.institution_id "
    };
}
const LIST_DEVICES: &str = concat!(device_select!(), "ORDER BY d.serial");
const GET_DEVICE: &str = concat!(device_select!(), "WHERE d.id = $1");
const FIND_DEVICE_BY_TOKEN_HASH: &str = concat!(
    device_select!(),
    "WHERE d.token_hash = $1 AND d.revoked_at IS NULL"
);
const INSERT_DEVICE: &str = "INSERT INTO devices \
     (institution_id, serial, model, token_hash, created_at, kind) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
const TOUCH_DEVICE: &str = "UPDATE devices SET last_seen_at = $2 WHERE id = $1";
const REVOKE_DEVICE: &str =
    "UPDATE devices SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";

// ---- audit ----

const AUDIT_COLUMNS: &str = "id, at, actor_kind, actor, institution_id, action, object_kind, \
     object_id, outcome, client, request_id, prev_hash, hash";
/// Appenders queue here on PostgreSQL; readers are not blocked. (On SQLite the
/// `BEGIN IMMEDIATE` of every write transaction already serialises appenders.)
const LOCK_AUDIT_LOG: &str = "LOCK TABLE audit_log IN EXCLUSIVE MODE";
#[derive(sqlx::FromRow)]
struct ChainHead {
    id: i64,
    hash: String,
}
pub(super) const AUDIT_HEAD: &str = "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1";
pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (id, at, actor_kind, actor, institution_id, action, object_kind, object_id, outcome, \
      client, request_id, prev_hash, hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     RETURNING id, at, actor_kind, actor, institution_id, action, object_kind, object_id, \
      outcome, client, request_id, prev_hash, hash";
const AUDIT_PAGE: &str = "SELECT id, at, actor_kind, actor, institution_id, action, \
     object_kind, object_id, outcome, client, request_id, prev_hash, hash \
     FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2";
const VERIFY_PAGE: i64 = 1000;
const AUDIT_LIST_MAX: i64 = 1000;

/// A NULL-or-value bind of the dynamic audit query.
enum Bind<'a> {
    Text(&'a str),
    Int(i64),
}

impl SqlCatalog {
    async fn institution_id(&self, tx: &mut super::Tx, institution: &str) -> Result<i64> {
        sqlx::query_scalar(FIND_INSTITUTION_ID)
            .bind(institution.trim())
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("institution {institution:?}")))
    }

    pub(super) async fn id_add_user(&self, new: &NewUser) -> Result<User> {
        let login = required("login", &new.login)?;
        if new.password_hash.trim().is_empty() {
            return Err(Error::Invalid("password hash is empty".to_owned()));
        }
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let institution_id = self.institution_id(&mut tx, &new.institution).await?;
        let id: i64 = sqlx::query_scalar(INSERT_USER)
            .bind(institution_id)
            .bind(&login)
            .bind(new.role.as_str())
            .bind(&new.password_hash)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_as(e, || format!("login {login:?} is taken")))?;
        let row = sqlx::query_as::<_, UserDbRow>(GET_USER)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    pub(super) async fn id_list_users(&self) -> Result<Vec<User>> {
        sqlx::query_as::<_, UserDbRow>(LIST_USERS)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    pub(super) async fn id_find_user_by_login(&self, login: &str) -> Result<Option<User>> {
        sqlx::query_as::<_, UserDbRow>(FIND_USER_BY_LOGIN)
            .bind(login.trim())
            .fetch_optional(&self.read)
            .await?
            .map(User::try_from)
            .transpose()
    }

    pub(super) async fn id_get_user(&self, id: i64) -> Result<Option<User>> {
        sqlx::query_as::<_, UserDbRow>(GET_USER)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .map(User::try_from)
            .transpose()
    }

    pub(super) async fn id_record_login_failure(&self, user_id: i64) -> Result<LoginFailures> {
        let now = now_us();
        sqlx::query_as::<_, LoginFailures>(RECORD_LOGIN_FAILURE)
            .bind(user_id)
            .bind(LOCKOUT_THRESHOLD)
            .bind(now.saturating_add(micros(LOCKOUT_DURATION)))
            .bind(now)
            .fetch_optional(&self.write)
            .await?
            .ok_or_else(|| Error::NotFound(format!("user {user_id}")))
    }

    pub(super) async fn id_reset_login_failures(&self, user_id: i64) -> Result<()> {
        let done = sqlx::query(RESET_LOGIN_FAILURES)
            .bind(user_id)
            .bind(now_us())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        Ok(())
    }

    pub(super) async fn id_create_session(&self, new: &NewSession) -> Result<Session> {
        if new.token_hash.trim().is_empty() {
            return Err(Error::Invalid("token hash is empty".to_owned()));
        }
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar(USER_EXISTS)
            .bind(new.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound(format!("user {}", new.user_id)));
        }
        let session = sqlx::query_as::<_, Session>(INSERT_SESSION)
            .bind(new.user_id)
            .bind(&new.token_hash)
            .bind(now)
            .bind(now.saturating_add(micros(new.ttl)))
            .bind(new.idle_timeout.map(micros))
            .bind(&new.client)
            .bind(new.issued_by.trim())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_as(e, || "token hash already exists".to_owned()))?;
        tx.commit().await?;
        Ok(session)
    }

    pub(super) async fn id_find_session(&self, token_hash: &str) -> Result<Option<Session>> {
        debug_assert!(FIND_SESSION.contains(SESSION_COLUMNS));
        Ok(sqlx::query_as::<_, Session>(FIND_SESSION)
            .bind(token_hash)
            .bind(now_us())
            .fetch_optional(&self.read)
            .await?)
    }

    async fn update_by_id(&self, sql: &str, id: i64, what: &str) -> Result<()> {
        let done = sqlx::query(sql)
            .bind(id)
            .bind(now_us())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("{what} {id}")));
        }
        Ok(())
    }

    pub(super) async fn id_touch_session(&self, id: i64) -> Result<()> {
        self.update_by_id(TOUCH_SESSION, id, "session").await
    }

    pub(super) async fn id_revoke_session(&self, id: i64) -> Result<()> {
        self.update_by_id(REVOKE_SESSION, id, "session").await
    }

    pub(super) async fn id_set_totp_secret(&self, user_id: i64, secret: &str) -> Result<()> {
        if secret.trim().is_empty() {
            return Err(Error::Invalid("TOTP secret is empty".to_owned()));
        }
        let done = sqlx::query(SET_TOTP_PENDING)
            .bind(user_id)
            .bind(secret.trim())
            .bind(now_us())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        Ok(())
    }

    pub(super) async fn id_pending_totp_secret(&self, user_id: i64) -> Result<Option<String>> {
        let row: Option<Option<String>> = sqlx::query_scalar(GET_TOTP_PENDING)
            .bind(user_id)
            .fetch_optional(&self.read)
            .await?;
        row.ok_or_else(|| Error::NotFound(format!("user {user_id}")))
    }

    pub(super) async fn id_confirm_totp(&self, user_id: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar(USER_EXISTS)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        let done = sqlx::query(CONFIRM_TOTP)
            .bind(user_id)
            .bind(now_us())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Invalid(format!(
                "user {user_id} has no pending TOTP secret"
            )));
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn id_reset_totp(&self, user_id: i64) -> Result<()> {
        self.update_user_revoking_sessions(RESET_TOTP, user_id)
            .await
    }

    pub(super) async fn id_disable_user(&self, user_id: i64) -> Result<()> {
        self.update_user_revoking_sessions(DISABLE_USER, user_id)
            .await
    }

    /// Run `sql` (binds: user id, now) on the user and revoke all the user's sessions, in
    /// one transaction. `NotFound` for an unknown user.
    async fn update_user_revoking_sessions(&self, sql: &str, user_id: i64) -> Result<()> {
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(sql)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        sqlx::query(REVOKE_USER_SESSIONS)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn id_set_user_role(&self, user_id: i64, role: Role) -> Result<User> {
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(SET_USER_ROLE)
            .bind(user_id)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        sqlx::query(REVOKE_USER_SESSIONS)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query_as::<_, UserDbRow>(GET_USER)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        User::try_from(row)
    }

    pub(super) async fn id_set_user_password(
        &self,
        user_id: i64,
        password_hash: &str,
    ) -> Result<()> {
        if password_hash.trim().is_empty() {
            return Err(Error::Invalid("password hash is empty".to_owned()));
        }
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(SET_USER_PASSWORD)
            .bind(user_id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {user_id}")));
        }
        sqlx::query(REVOKE_USER_SESSIONS)
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn id_add_device(&self, new: &NewDevice) -> Result<Device> {
        let serial = required("serial", &new.serial)?;
        if new.token_hash.trim().is_empty() {
            return Err(Error::Invalid("token hash is empty".to_owned()));
        }
        let model = new
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let kind = new.kind.as_deref().map(str::trim).unwrap_or("ecg");
        if !matches!(kind, "ecg" | "gateway") {
            return Err(Error::Invalid(format!(
                "device kind {kind:?} is neither \"ecg\" nor \"gateway\""
            )));
        }
        let mut tx = self.begin_write().await?;
        let institution_id = self.institution_id(&mut tx, &new.institution).await?;
        let id: i64 = sqlx::query_scalar(INSERT_DEVICE)
            .bind(institution_id)
            .bind(&serial)
            .bind(model)
            .bind(&new.token_hash)
            .bind(now_us())
            .bind(kind)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| {
                conflict_as(e, || {
                    format!("device {serial:?} (or its token) is already registered")
                })
            })?;
        let row = sqlx::query_as::<_, Device>(GET_DEVICE)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub(super) async fn id_list_devices(&self) -> Result<Vec<Device>> {
        Ok(sqlx::query_as::<_, Device>(LIST_DEVICES)
            .fetch_all(&self.read)
            .await?)
    }

    pub(super) async fn id_find_device_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Device>> {
        Ok(sqlx::query_as::<_, Device>(FIND_DEVICE_BY_TOKEN_HASH)
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?)
    }

    pub(super) async fn id_touch_device(&self, id: i64) -> Result<()> {
        self.update_by_id(TOUCH_DEVICE, id, "device").await
    }

    pub(super) async fn id_revoke_device(&self, id: i64) -> Result<()> {
        self.update_by_id(REVOKE_DEVICE, id, "device").await
    }

    pub(super) async fn id_append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry> {
        let entry = checked_audit_entry(e)?;
        let mut tx = self.begin_write().await?;
        let mut head = self.audit_head(&mut tx).await?;
        let row = append_audit_in(&mut tx, &mut head, &entry).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The id and hash the next entry chains to (PostgreSQL: with the log locked).
    pub(super) async fn audit_head(&self, tx: &mut super::Tx) -> Result<(i64, String)> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(LOCK_AUDIT_LOG).execute(&mut **tx).await?;
        }
        let head = sqlx::query_as::<_, ChainHead>(AUDIT_HEAD)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(match head {
            Some(h) => (h.id + 1, h.hash),
            None => (1, AUDIT_GENESIS_HASH.to_owned()),
        })
    }

    pub(super) async fn id_list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let limit = f.limit.unwrap_or(AUDIT_LIST_MAX).clamp(0, AUDIT_LIST_MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<Bind<'_>> = Vec::new();
        let text = [
            ("actor_kind =", f.actor_kind.as_deref()),
            ("actor =", f.actor.as_deref()),
            ("action =", f.action.as_deref()),
            ("object_id =", f.object_id.as_deref()),
            ("outcome =", f.outcome.as_deref()),
        ];
        for (cond, v) in text {
            if let Some(v) = v {
                binds.push(Bind::Text(v));
                conds.push(format!("{cond} ${}", binds.len()));
            }
        }
        let ints = [
            ("institution_id =", f.institution_id),
            ("at >=", f.since),
            ("at <", f.until),
            ("id <", f.before_id),
        ];
        for (cond, v) in ints {
            if let Some(v) = v {
                binds.push(Bind::Int(v));
                conds.push(format!("{cond} ${}", binds.len()));
            }
        }
        if let Some(ids) = &f.institution_ids {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut marks = Vec::with_capacity(ids.len());
            for id in ids {
                binds.push(Bind::Int(*id));
                marks.push(format!("${}", binds.len()));
            }
            conds.push(format!("institution_id IN ({})", marks.join(", ")));
        }
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log");
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", binds.len() + 1));
        let mut q = sqlx::query_as::<_, AuditEntry>(&sql);
        for b in binds {
            q = match b {
                Bind::Text(v) => q.bind(v),
                Bind::Int(v) => q.bind(v),
            };
        }
        Ok(q.bind(limit).fetch_all(&self.read).await?)
    }

    pub(super) async fn id_verify_audit_chain(&self) -> Result<AuditVerification> {
        let mut entries = 0i64;
        let mut expected_id = 1i64;
        let mut prev_hash = AUDIT_GENESIS_HASH.to_owned();
        let bad = |entries, id, problem: String| AuditVerification {
            entries,
            first_bad_id: Some(id),
            problem: Some(problem),
        };
        loop {
            let page = sqlx::query_as::<_, AuditEntry>(AUDIT_PAGE)
                .bind(expected_id - 1)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.read)
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            let last_id = last.id;
            for e in &page {
                entries += 1;
                if e.id != expected_id {
                    let missing = if e.id - expected_id == 1 {
                        format!("entry {expected_id} is missing")
                    } else {
                        format!("entries {expected_id}–{} are missing", e.id - 1)
                    };
                    return Ok(bad(entries, e.id, missing));
                }
                if e.prev_hash != prev_hash {
                    return Ok(bad(
                        entries,
                        e.id,
                        format!(
                            "prev_hash does not match the hash of entry {} (that entry was \
                             altered or replaced)",
                            e.id - 1
                        ),
                    ));
                }
                if e.expected_hash() != e.hash {
                    return Ok(bad(
                        entries,
                        e.id,
                        "hash does not match the entry's content (the entry was altered)"
                            .to_owned(),
                    ));
                }
                prev_hash.clone_from(&e.hash);
                expected_id = e.id + 1;
            }
            if page.len() < usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX) {
                break;
            }
            debug_assert_eq!(expected_id, last_id + 1);
        }
        Ok(AuditVerification {
            entries,
            first_bad_id: None,
            problem: None,
        })
    }
}

/// An audit entry with its required fields present, the actor trimmed.
pub(super) fn checked_audit_entry(e: &NewAuditEntry) -> Result<NewAuditEntry> {
    let actor_kind = required("audit actor kind", &e.actor_kind)?;
    let action = required("audit action", &e.action)?;
    let outcome = required("audit outcome", &e.outcome)?;
    let mut entry = NewAuditEntry {
        actor_kind,
        action,
        outcome,
        ..e.clone()
    };
    entry.actor = entry.actor.trim().to_owned();
    Ok(entry)
}

/// Insert `entry` as the entry `head` names, chained to its hash; `head` moves on.
pub(super) async fn append_audit_in(
    tx: &mut super::Tx,
    head: &mut (i64, String),
    entry: &NewAuditEntry,
) -> Result<AuditEntry> {
    let (id, prev_hash) = (head.0, head.1.clone());
    let at = now_us();
    let hash = audit_hash(&prev_hash, id, at, &entry.fields());
    let row = sqlx::query_as::<_, AuditEntry>(INSERT_AUDIT)
        .bind(id)
        .bind(at)
        .bind(&entry.actor_kind)
        .bind(&entry.actor)
        .bind(entry.institution_id)
        .bind(&entry.action)
        .bind(&entry.object_kind)
        .bind(&entry.object_id)
        .bind(&entry.outcome)
        .bind(&entry.client)
        .bind(&entry.request_id)
        .bind(&prev_hash)
        .bind(&hash)
        .fetch_one(&mut **tx)
        .await?;
    *head = (id + 1, hash);
    Ok(row)
}
