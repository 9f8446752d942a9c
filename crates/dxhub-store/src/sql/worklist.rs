//! SQL of the worklist ([`crate::worklist`]).
//!
//! Exactly-once with several replicas: every state change is a conditional `UPDATE …
//! WHERE <the state it changes from>` whose affected-row count says who won; candidate
//! rows for claims and sweeps are picked with `FOR UPDATE SKIP LOCKED` on PostgreSQL
//! (SQLite has one writer: `BEGIN IMMEDIATE` serialises). A reader's own claims are
//! serialised by a lock on the reader's user row, and one patient's claims by a
//! transaction-scoped advisory lock on the patient's identity hash (PostgreSQL).

use async_trait::async_trait;
use dxhub_core::InstitutionLevel;
use dxhub_core::worklist::{
    self as wl, DEFAULT_ROUTES, Priority, RuleMatch, StudyFacts, WorkState,
};

use super::{SqlCatalog, Tx, in_list, routed_sql};
use crate::catalog::{Dialect, Error, Result};
use crate::worklist::{
    Actor, AttemptResult, Claim, Delivery, DryRun, MemberSpec, NewPool, NewWebhook, Notification,
    Pool, PoolMember, PoolUpdate, Prior, ReadySettings, Refusal, RoutingRule, RuleSpec, Sweep,
    Webhook, WorkEvent, WorkFilter, WorkItem, WorklistStore, check_schedule, identity_hash,
};

const LEASED: &str = "('claimed', 'drafted', 'returned')";
const OPEN: &str = "('queued', 'claimed', 'drafted', 'submitted', 'returned')";

const POOL_COLUMNS: &str =
    "id, alliance_id, name, label, escalation_pool_id, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct PoolRow {
    id: i64,
    alliance_id: i64,
    name: String,
    label: String,
    escalation_pool_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl From<PoolRow> for Pool {
    fn from(r: PoolRow) -> Self {
        Self {
            id: r.id,
            alliance_id: r.alliance_id,
            name: r.name,
            label: r.label,
            escalation_pool_id: r.escalation_pool_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const MEMBER_SELECT: &str = "SELECT m.pool_id, m.user_id, u.login, u.role, m.subspecialty, \
     m.max_open_claims, m.schedule, m.created_at FROM pool_members m \
     JOIN users u ON u.id = m.user_id";

#[derive(sqlx::FromRow)]
struct MemberRow {
    pool_id: i64,
    user_id: i64,
    login: String,
    role: String,
    subspecialty: Option<String>,
    max_open_claims: i64,
    schedule: Option<String>,
    created_at: i64,
}

impl From<MemberRow> for PoolMember {
    fn from(r: MemberRow) -> Self {
        Self {
            pool_id: r.pool_id,
            user_id: r.user_id,
            login: r.login,
            role: r.role,
            subspecialty: r.subspecialty,
            max_open_claims: r.max_open_claims,
            schedule: r.schedule,
            created_at: r.created_at,
        }
    }
}

const RULE_COLUMNS: &str = "id, alliance_id, position, name, enabled, conditions, pool_id, \
     priority, sla_minutes, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    alliance_id: i64,
    position: i64,
    name: String,
    enabled: i64,
    conditions: String,
    pool_id: i64,
    priority: String,
    sla_minutes: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RuleRow> for RoutingRule {
    type Error = Error;
    fn try_from(r: RuleRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            alliance_id: r.alliance_id,
            position: r.position,
            name: r.name,
            enabled: r.enabled != 0,
            conditions: serde_json::from_str(&r.conditions)
                .map_err(|e| Error::Invalid(format!("rule {}: conditions: {e}", r.id)))?,
            pool_id: r.pool_id,
            priority: r
                .priority
                .parse()
                .map_err(|e| Error::Invalid(format!("{e}")))?,
            sla_minutes: r.sla_minutes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

const WORK_SELECT: &str = "SELECT w.id, w.alliance_id, w.study_id, w.study_instance_uid, \
     w.institution_id, inst.name AS institution_name, w.identity_hash, w.modality, w.pool_id, \
     w.rule_id, w.priority, w.state, w.claimed_by, u.login AS claimed_by_login, w.claimed_at, \
     w.lease_expires_at, w.critical, w.sla_minutes, w.ready_at, w.warn_at, w.due_at, \
     w.warned_at, w.breached_at, w.escalated_from, w.reported_at, w.new_images, w.version, \
     w.created_at, w.updated_at, w.done_at, p.patient_id, p.patient_name, p.patient_sex, \
     p.patient_birth_date, s.study_date, s.study_description, s.accession_number, \
     s.body_part_examined, s.num_instances \
     FROM work_items w JOIN studies s ON s.id = w.study_id \
     JOIN patients p ON p.id = s.patient_ref \
     LEFT JOIN institutions inst ON inst.id = w.institution_id \
     LEFT JOIN users u ON u.id = w.claimed_by";

#[derive(sqlx::FromRow)]
struct WorkRow {
    id: i64,
    alliance_id: i64,
    study_id: i64,
    study_instance_uid: String,
    institution_id: Option<i64>,
    institution_name: Option<String>,
    identity_hash: Option<String>,
    modality: Option<String>,
    pool_id: Option<i64>,
    rule_id: Option<i64>,
    priority: String,
    state: String,
    claimed_by: Option<i64>,
    claimed_by_login: Option<String>,
    claimed_at: Option<i64>,
    lease_expires_at: Option<i64>,
    critical: i64,
    sla_minutes: i64,
    ready_at: i64,
    warn_at: i64,
    due_at: i64,
    warned_at: Option<i64>,
    breached_at: Option<i64>,
    escalated_from: Option<i64>,
    reported_at: Option<i64>,
    new_images: i64,
    version: i64,
    created_at: i64,
    updated_at: i64,
    done_at: Option<i64>,
    patient_id: Option<String>,
    patient_name: Option<String>,
    patient_sex: Option<String>,
    patient_birth_date: Option<String>,
    study_date: Option<String>,
    study_description: Option<String>,
    accession_number: Option<String>,
    body_part_examined: Option<String>,
    num_instances: i64,
}

impl TryFrom<WorkRow> for WorkItem {
    type Error = Error;
    fn try_from(r: WorkRow) -> Result<Self> {
        Ok(Self {
            id: r.id,
            alliance_id: r.alliance_id,
            study_id: r.study_id,
            study_instance_uid: r.study_instance_uid,
            institution_id: r.institution_id,
            institution_name: r.institution_name,
            identity_hash: r.identity_hash,
            modality: r.modality,
            pool_id: r.pool_id,
            rule_id: r.rule_id,
            priority: r
                .priority
                .parse()
                .map_err(|e| Error::Invalid(format!("{e}")))?,
            state: r.state.parse().map_err(Error::Invalid)?,
            claimed_by: r.claimed_by,
            claimed_by_login: r.claimed_by_login,
            claimed_at: r.claimed_at,
            lease_expires_at: r.lease_expires_at,
            critical: r.critical != 0,
            sla_minutes: r.sla_minutes,
            ready_at: r.ready_at,
            warn_at: r.warn_at,
            due_at: r.due_at,
            warned_at: r.warned_at,
            breached_at: r.breached_at,
            escalated_from: r.escalated_from,
            reported_at: r.reported_at,
            new_images: r.new_images != 0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            done_at: r.done_at,
            patient_id: r.patient_id,
            patient_name: r.patient_name,
            patient_sex: r.patient_sex,
            patient_birth_date: r.patient_birth_date,
            study_date: r.study_date,
            study_description: r.study_description,
            accession_number: r.accession_number,
            body_part_examined: r.body_part_examined,
            num_instances: r.num_instances,
        })
    }
}

const WEBHOOK_COLUMNS: &str = "id, alliance_id, url, secret, events, enabled, created_at";

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    alliance_id: i64,
    url: String,
    secret: String,
    events: String,
    enabled: i64,
    created_at: i64,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Self {
            id: r.id,
            alliance_id: r.alliance_id,
            url: r.url,
            secret: r.secret,
            events: r
                .events
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            enabled: r.enabled != 0,
            created_at: r.created_at,
        }
    }
}

const DELIVERY_COLUMNS: &str = "id, webhook_id, event_id, kind, payload, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at";

fn trimmed(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn check_rule(spec: &RuleSpec) -> Result<()> {
    let mut problems = spec.conditions.problems();
    if spec.name.trim().is_empty() {
        problems.push("name is empty".to_owned());
    }
    if !(1..=wl::MAX_SLA_MINUTES).contains(&spec.sla_minutes) {
        problems.push(format!(
            "sla_minutes must be 1 … {} (30 days)",
            wl::MAX_SLA_MINUTES
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems.join("; ")))
    }
}

// ---- transaction helpers ----

async fn item_in(tx: &mut Tx, id: i64) -> Result<Option<WorkItem>> {
    let sql = format!("{WORK_SELECT} WHERE w.id = $1");
    sqlx::query_as::<_, WorkRow>(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .map(WorkItem::try_from)
        .transpose()
}

pub(super) async fn must_item(tx: &mut Tx, id: i64) -> Result<WorkItem> {
    item_in(tx, id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("work item {id}")))
}

/// Record an event of `item`, notify `notify` (user ids) and queue a delivery to every
/// enabled webhook of the alliance that wants this kind.
pub(super) async fn emit(
    tx: &mut Tx,
    item: &WorkItem,
    kind: &str,
    actor: &Actor,
    detail: serde_json::Value,
    notify: &[i64],
    now: i64,
) -> Result<i64> {
    let detail_s = detail.to_string();
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO worklist_events (alliance_id, work_item_id, pool_id, kind, actor, detail, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(item.alliance_id)
    .bind(item.id)
    .bind(item.pool_id)
    .bind(kind)
    .bind(&actor.name)
    .bind(&detail_s)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let mut users: Vec<i64> = notify.to_vec();
    users.sort_unstable();
    users.dedup();
    for user in users {
        sqlx::query(
            "INSERT INTO notifications (user_id, work_item_id, event_id, kind, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(user)
        .bind(item.id)
        .bind(event_id)
        .bind(kind)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    let hooks = sqlx::query_as::<_, WebhookRow>(&format!(
        "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE alliance_id = $1 AND enabled = 1"
    ))
    .bind(item.alliance_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut payload = None;
    for hook in hooks.into_iter().map(Webhook::from) {
        if !hook.events.iter().any(|e| e == "*" || e == kind) {
            continue;
        }
        // No patient names or IDs leave the hub by webhook: the receiver (an SMS gateway,
        // a chat bot) links back to the worklist.
        let body = payload.get_or_insert_with(|| {
            serde_json::json!({
                "id": event_id,
                "kind": kind,
                "at_us": now,
                "actor": actor.name,
                "detail": detail,
                "work_item": {
                    "id": item.id,
                    "study_instance_uid": item.study_instance_uid,
                    "institution": item.institution_name,
                    "modality": item.modality,
                    "pool_id": item.pool_id,
                    "priority": item.priority,
                    "state": item.state,
                    "due_at_us": item.due_at,
                    "critical": item.critical,
                },
            })
            .to_string()
        });
        sqlx::query(
            "INSERT INTO webhook_deliveries (webhook_id, event_id, kind, payload, state, \
             attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
             ON CONFLICT DO NOTHING",
        )
        .bind(hook.id)
        .bind(event_id)
        .bind(kind)
        .bind(body.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(event_id)
}

/// Users to tell about `item`: on-duty members of its pool (optionally seniors only), and
/// with `admins` the alliance's group admins.
pub(super) async fn recipients(
    tx: &mut Tx,
    item: &WorkItem,
    seniors_only: bool,
    admins: bool,
    now: i64,
) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    if let Some(pool) = item.pool_id {
        let sql =
            format!("{MEMBER_SELECT} WHERE m.pool_id = $1 AND u.disabled = 0 ORDER BY m.user_id");
        let members = sqlx::query_as::<_, MemberRow>(&sql)
            .bind(pool)
            .fetch_all(&mut **tx)
            .await?;
        for m in members {
            if seniors_only && m.role != "senior_reader" {
                continue;
            }
            if seniors_only || wl::on_duty(m.schedule.as_deref(), now) {
                out.push(m.user_id);
            }
        }
    }
    if admins {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT u.id FROM users u JOIN institutions i ON i.id = u.institution_id \
             WHERE i.alliance_id = $1 AND u.role = 'group_admin' AND u.disabled = 0",
        )
        .bind(item.alliance_id)
        .fetch_all(&mut **tx)
        .await?;
        out.extend(ids);
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct ReadyStudyRow {
    id: i64,
    study_instance_uid: String,
    institution_id: Option<i64>,
    body_part_examined: Option<String>,
    modalities_in_study: Option<String>,
    attrs: Option<String>,
    sender_priority: Option<String>,
    exam_code: Option<String>,
    ready_at: Option<i64>,
    patient_key: String,
    patient_id: String,
    issuer_of_patient_id: Option<String>,
    level: Option<String>,
    alliance_id: Option<i64>,
}

const READY_STUDY: &str = "SELECT s.id, s.study_instance_uid, s.institution_id, \
     s.body_part_examined, s.modalities_in_study, s.attrs, s.sender_priority, s.exam_code, \
     s.ready_at, p.patient_key, p.patient_id, p.issuer_of_patient_id, i.level, i.alliance_id \
     FROM studies s JOIN patients p ON p.id = s.patient_ref \
     LEFT JOIN institutions i ON i.id = s.institution_id";

/// Code values of the items of a DICOM JSON sequence attribute, and a nested string.
fn json_seq_values(attrs: &serde_json::Value, seq: &str, tag: &str) -> Vec<String> {
    attrs
        .get(seq)
        .and_then(|a| a.get("Value"))
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|it| it.get(tag)?.get("Value")?.get(0)?.as_str())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the router looks at, read inside `tx`.
async fn facts_of(tx: &mut Tx, s: &ReadyStudyRow, at: i64) -> Result<(StudyFacts, bool, String)> {
    // the facts of the study's series, instances and ECG records in one round trip:
    // (kind, value) rows — m: a series modality, b: a series body part, s: a SOP class,
    // p: a sending AE title's priority, c: the number of critical ECG records
    #[derive(sqlx::FromRow)]
    struct Fact {
        kind: String,
        value: Option<String>,
    }
    let rows = sqlx::query_as::<_, Fact>(
        "SELECT 'm' AS kind, modality AS value FROM series WHERE study_ref = $1 \
         UNION ALL SELECT 'b', body_part_examined FROM series WHERE study_ref = $1 \
         UNION ALL SELECT DISTINCT 's', i.sop_class_uid FROM instances i \
           JOIN series se ON se.id = i.series_ref WHERE se.study_ref = $1 \
         UNION ALL SELECT DISTINCT 'p', a.priority FROM instances i \
           JOIN series se ON se.id = i.series_ref JOIN ae_titles a ON a.ae_title = i.source_ae \
           WHERE se.study_ref = $1 AND a.priority IS NOT NULL \
         UNION ALL SELECT 'c', CAST(COUNT(*) AS TEXT) FROM ecgs \
           WHERE study_instance_uid = $2 AND critical <> 0",
    )
    .bind(s.id)
    .bind(&s.study_instance_uid)
    .fetch_all(&mut **tx)
    .await?;
    let of = |k: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.kind == k)
            .filter_map(|r| r.value.clone())
            .collect()
    };
    let series_modalities = of("m");
    let series_body_parts = of("b");
    let sop_classes = of("s");
    let ae_priorities = of("p");
    let critical: i64 = of("c").first().and_then(|n| n.parse().ok()).unwrap_or(0);

    let mut modalities: Vec<String> = s
        .modalities_in_study
        .as_deref()
        .unwrap_or("")
        .split('\\')
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let mut body_parts: Vec<String> = s.body_part_examined.iter().cloned().collect();
    for m in series_modalities {
        if !modalities.contains(&m) {
            modalities.push(m);
        }
    }
    for b in series_body_parts {
        if !body_parts.contains(&b) {
            body_parts.push(b);
        }
    }
    let attrs: serde_json::Value = s
        .attrs
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(serde_json::Value::Null);
    let mut procedure_codes = json_seq_values(&attrs, "00081032", "00080100");
    procedure_codes.extend(s.exam_code.iter().cloned());
    let sender_priority = s
        .sender_priority
        .iter()
        .chain(ae_priorities.iter())
        .filter_map(|p| p.parse::<Priority>().ok())
        .min();
    let others: Vec<(String, Option<String>)> = {
        let ids = json_seq_values(&attrs, "00101002", "00100020");
        let issuers = json_seq_values(&attrs, "00101002", "00100021");
        ids.into_iter()
            .enumerate()
            .map(|(i, id)| (id, issuers.get(i).cloned()))
            .collect()
    };
    let basis = wl::identity_basis(
        &s.patient_id,
        s.issuer_of_patient_id.as_deref(),
        &others,
        &s.patient_key,
    );
    let facts = StudyFacts {
        institution_id: s.institution_id,
        level: s
            .level
            .as_deref()
            .and_then(|l| l.parse::<InstitutionLevel>().ok()),
        modalities,
        body_parts,
        sop_classes,
        procedure_codes,
        sender_priority,
        at_us: at,
    };
    Ok((facts, critical > 0, identity_hash(&basis)))
}

async fn rules_in(tx: &mut Tx, alliance_id: i64) -> Result<Vec<RoutingRule>> {
    sqlx::query_as::<_, RuleRow>(&format!(
        "SELECT {RULE_COLUMNS} FROM routing_rules WHERE alliance_id = $1 ORDER BY position, id"
    ))
    .bind(alliance_id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(RoutingRule::try_from)
    .collect()
}

/// Create the default pools and routing rules of a new alliance.
pub(super) async fn create_default_routes(tx: &mut Tx, alliance_id: i64, now: i64) -> Result<()> {
    for (i, (pool, label, rule, modalities, priority, sla)) in DEFAULT_ROUTES.iter().enumerate() {
        let pool_id: i64 = sqlx::query_scalar(
            "INSERT INTO reader_pools (alliance_id, name, label, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(alliance_id)
        .bind(*pool)
        .bind(*label)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        let conditions = RuleMatch {
            modalities: modalities.iter().map(|m| (*m).to_owned()).collect(),
            ..RuleMatch::default()
        };
        sqlx::query(
            "INSERT INTO routing_rules (alliance_id, position, name, enabled, conditions, pool_id, \
             priority, sla_minutes, created_at, updated_at) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $8)",
        )
        .bind(alliance_id)
        .bind(i64::try_from(i + 1).unwrap_or(1) * 10)
        .bind(*rule)
        .bind(serde_json::to_string(&conditions).unwrap_or_default())
        .bind(pool_id)
        .bind(priority.as_str())
        .bind(*sla)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl SqlCatalog {
    async fn item(&self, id: i64) -> Result<Option<WorkItem>> {
        let sql = format!("{WORK_SELECT} WHERE w.id = $1");
        sqlx::query_as::<_, WorkRow>(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .map(WorkItem::try_from)
            .transpose()
    }

    fn skip_locked(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => " FOR UPDATE OF w SKIP LOCKED",
            Dialect::Sqlite => "",
        }
    }

    /// Serialise one reader's claims (PostgreSQL; SQLite has one writer anyway). `NO KEY`:
    /// a `FOR UPDATE` would also block the key-share locks that foreign keys to the user
    /// take (a notification for the user, `claimed_by`), and the lease sweep, which holds
    /// a work item while it notifies its reader, would deadlock with that reader's claim.
    async fn lock_user(&self, tx: &mut Tx, user_id: i64) -> Result<()> {
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE")
                .bind(user_id)
                .fetch_optional(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Serialise claims of one patient (PostgreSQL), then tell whether another reader
    /// holds a study of this patient.
    async fn patient_held_by_other(
        &self,
        tx: &mut Tx,
        identity: Option<&str>,
        user_id: i64,
    ) -> Result<bool> {
        let Some(identity) = identity else {
            return Ok(false);
        };
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) x")
                .bind(identity)
                .fetch_optional(&mut **tx)
                .await?;
        }
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM work_items WHERE identity_hash = $1 AND state IN {LEASED} \
             AND claimed_by <> $2"
        ))
        .bind(identity)
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?;
        Ok(n > 0)
    }

    /// Lock a queued item (PostgreSQL: skipping it if another transaction holds it);
    /// `false` when it is not queued or locked elsewhere.
    async fn lock_queued(&self, tx: &mut Tx, id: i64) -> Result<bool> {
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let found: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM work_items WHERE id = $1 AND state = 'queued'{lock}"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(found.is_some())
    }

    async fn open_claims(&self, tx: &mut Tx, user_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM work_items WHERE claimed_by = $1 AND state IN {LEASED}"
        ))
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?)
    }

    /// `queued → claimed` by `user` (conditional): the claimed item, or `None` if it was
    /// not queued any more.
    async fn take(
        &self,
        tx: &mut Tx,
        id: i64,
        actor: &Actor,
        user_id: i64,
        now: i64,
        lease_s: i64,
    ) -> Result<Option<WorkItem>> {
        let n = sqlx::query(
            "UPDATE work_items SET state = 'claimed', claimed_by = $2, claimed_at = $3, \
             lease_expires_at = $4, version = version + 1, updated_at = $3 \
             WHERE id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .bind(now + lease_s * wl::US_PER_S)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let item = must_item(tx, id).await?;
        emit(tx, &item, "claimed", actor, serde_json::json!({}), &[], now).await?;
        Ok(Some(item))
    }

    /// The highest-priority, earliest-due queued item of `pools` that no other reader's
    /// patient blocks; `affinity`: only patients `user_id` holds.
    async fn candidate(
        &self,
        tx: &mut Tx,
        pools: &[i64],
        user_id: i64,
        affinity: bool,
        lock: bool,
    ) -> Result<Option<(i64, i64, Option<String>)>> {
        // the preferred candidates are driven from the reader's own items (a few rows),
        // so the plan does not depend on table statistics (SQLite has none until ANALYZE)
        let (from, affinity_clause) = if affinity {
            (
                "work_items h CROSS JOIN work_items w",
                format!(
                    " AND h.claimed_by = $1 AND h.state IN {LEASED} \
                     AND h.identity_hash IS NOT NULL AND w.identity_hash = h.identity_hash"
                ),
            )
        } else {
            ("work_items w", String::new())
        };
        let sql = format!(
            "SELECT w.id, w.priority_rank, w.identity_hash FROM {from} \
             WHERE w.state = 'queued' AND w.pool_id IN {pools}{affinity_clause} \
             AND NOT EXISTS (SELECT 1 FROM work_items o WHERE o.identity_hash = w.identity_hash \
               AND o.state IN {LEASED} AND o.claimed_by <> $1) \
             ORDER BY w.priority_rank, w.due_at, w.id LIMIT 1{lock}",
            pools = in_list(pools),
            lock = if lock { self.skip_locked() } else { "" },
        );
        #[derive(sqlx::FromRow)]
        struct Cand {
            id: i64,
            priority_rank: i64,
            identity_hash: Option<String>,
        }
        Ok(sqlx::query_as::<_, Cand>(&sql)
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|c| (c.id, c.priority_rank, c.identity_hash)))
    }

    async fn sweep_ready(
        &self,
        now: i64,
        settings: &ReadySettings,
        limit: i64,
        out: &mut Sweep,
    ) -> Result<()> {
        let uids: Vec<String> = sqlx::query_scalar(
            "SELECT s.study_instance_uid FROM studies s \
             LEFT JOIN institutions i ON i.id = s.institution_id \
             WHERE s.ready_at IS NULL AND (s.complete_at IS NOT NULL \
               OR s.updated_at <= $1 - COALESCE(i.stable_after_s, $2) * 1000000 \
               OR EXISTS (SELECT 1 FROM ecgs e WHERE e.study_instance_uid = s.study_instance_uid)) \
             ORDER BY s.updated_at LIMIT $3",
        )
        .bind(now)
        .bind(settings.stable_after_s)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        for uid in uids {
            if let Some(Some(item)) = self.make_ready(&uid, now, settings).await? {
                out.ready.push(item);
            }
        }
        Ok(())
    }

    async fn sweep_leases(&self, now: i64, limit: i64, out: &mut Sweep) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT w.id, w.claimed_by FROM work_items w WHERE w.lease_expires_at < $1 \
             AND w.state IN {LEASED} ORDER BY w.lease_expires_at LIMIT $2{}",
            self.skip_locked()
        );
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        for (id, holder) in rows {
            let n = sqlx::query(&format!(
                "UPDATE work_items SET state = 'queued', claimed_by = NULL, claimed_at = NULL, \
                 lease_expires_at = NULL, version = version + 1, updated_at = $2 \
                 WHERE id = $1 AND lease_expires_at < $2 AND state IN {LEASED}"
            ))
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let item = must_item(&mut tx, id).await?;
                let notify: Vec<i64> = holder.into_iter().collect();
                emit(
                    &mut tx,
                    &item,
                    "lease-expired",
                    &Actor::system(),
                    serde_json::json!({ "previous_holder": holder }),
                    &notify,
                    now,
                )
                .await?;
                out.expired.push(item);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep_clocks(&self, now: i64, limit: i64, out: &mut Sweep) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // warnings
        let sql = format!(
            "SELECT w.id FROM work_items w WHERE w.warned_at IS NULL AND w.done_at IS NULL \
             AND w.warn_at <= $1 AND w.state IN {OPEN} ORDER BY w.warn_at LIMIT $2{}",
            self.skip_locked()
        );
        let ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        for id in ids {
            let n = sqlx::query(
                "UPDATE work_items SET warned_at = $2, updated_at = $2 \
                 WHERE id = $1 AND warned_at IS NULL AND done_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let item = must_item(&mut tx, id).await?;
                let notify = match item.claimed_by {
                    Some(u) if item.state.is_leased() => vec![u],
                    _ => {
                        recipients(
                            &mut tx,
                            &item,
                            item.state == WorkState::Submitted,
                            false,
                            now,
                        )
                        .await?
                    }
                };
                emit(
                    &mut tx,
                    &item,
                    "sla-warning",
                    &Actor::system(),
                    serde_json::json!({ "due_at_us": item.due_at }),
                    &notify,
                    now,
                )
                .await?;
                out.warned.push(item);
            }
        }
        // breaches
        let sql = format!(
            "SELECT w.id FROM work_items w WHERE w.breached_at IS NULL AND w.done_at IS NULL \
             AND w.due_at <= $1 AND w.state IN {OPEN} ORDER BY w.due_at LIMIT $2{}",
            self.skip_locked()
        );
        let ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        for id in ids {
            let n = sqlx::query(
                "UPDATE work_items SET breached_at = $2, updated_at = $2 \
                 WHERE id = $1 AND breached_at IS NULL AND done_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                continue;
            }
            let before = must_item(&mut tx, id).await?;
            // a queued item moves to the pool's escalation pool, if it has one
            let target: Option<i64> = match before.pool_id {
                Some(pool) if before.state == WorkState::Queued => {
                    sqlx::query_scalar("SELECT escalation_pool_id FROM reader_pools WHERE id = $1")
                        .bind(pool)
                        .fetch_optional(&mut *tx)
                        .await?
                        .flatten()
                }
                _ => None,
            };
            let mut notify = recipients(&mut tx, &before, true, true, now).await?;
            notify.extend(before.claimed_by);
            emit(
                &mut tx,
                &before,
                "sla-breach",
                &Actor::system(),
                serde_json::json!({ "due_at_us": before.due_at }),
                &notify,
                now,
            )
            .await?;
            let item = if let Some(to) = target.filter(|t| Some(*t) != before.pool_id) {
                sqlx::query(
                    "UPDATE work_items SET pool_id = $2, escalated_from = $3, \
                     version = version + 1, updated_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(to)
                .bind(before.pool_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let moved = must_item(&mut tx, id).await?;
                let members = recipients(&mut tx, &moved, false, false, now).await?;
                emit(
                    &mut tx,
                    &moved,
                    "escalated",
                    &Actor::system(),
                    serde_json::json!({ "from_pool": before.pool_id, "to_pool": to }),
                    &members,
                    now,
                )
                .await?;
                moved
            } else {
                before
            };
            out.breached.push(item);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sweep_new_images(&self, now: i64, limit: i64, out: &mut Sweep) -> Result<()> {
        // studies changed in the last day only: the scan stays small
        let since = now - 86_400 * wl::US_PER_S;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT w.id FROM studies s JOIN work_items w ON w.study_id = s.id \
             WHERE s.updated_at > $1 AND w.state IN ('submitted', 'signed') \
             AND w.new_images = 0 AND w.reported_at IS NOT NULL AND s.updated_at > w.reported_at \
             LIMIT $2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for id in ids {
            let n = sqlx::query(
                "UPDATE work_items SET new_images = 1, version = version + 1, updated_at = $2 \
                 WHERE id = $1 AND new_images = 0",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                let item = must_item(&mut tx, id).await?;
                let notify: Vec<i64> = item.claimed_by.into_iter().collect();
                emit(
                    &mut tx,
                    &item,
                    "new-images",
                    &Actor::system(),
                    serde_json::json!({ "num_instances": item.num_instances }),
                    &notify,
                    now,
                )
                .await?;
                out.new_images.push(item);
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Apply a supervisor's or holder's change under the item's row lock.
    async fn locked_item(&self, tx: &mut Tx, id: i64) -> Result<WorkItem> {
        locked_item_in(tx, self.dialect, id).await
    }
}

/// The work item, row-locked on PostgreSQL (SQLite's single writer serialises).
pub(super) async fn locked_item_in(tx: &mut Tx, dialect: Dialect, id: i64) -> Result<WorkItem> {
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let found: Option<i64> =
        sqlx::query_scalar(&format!("SELECT id FROM work_items WHERE id = $1{lock}"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    if found.is_none() {
        return Err(Error::NotFound(format!("work item {id}")));
    }
    must_item(tx, id).await
}

#[async_trait]
impl WorklistStore for SqlCatalog {
    async fn list_pools(&self, alliance_id: Option<i64>) -> Result<Vec<Pool>> {
        // NULL: every alliance (COALESCE keeps the parameter's type inferable on PostgreSQL)
        let rows = sqlx::query_as::<_, PoolRow>(&format!(
            "SELECT {POOL_COLUMNS} FROM reader_pools \
             WHERE alliance_id = COALESCE($1, alliance_id) ORDER BY id"
        ))
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Pool::from).collect())
    }

    async fn get_pool(&self, id: i64) -> Result<Option<Pool>> {
        Ok(sqlx::query_as::<_, PoolRow>(&format!(
            "SELECT {POOL_COLUMNS} FROM reader_pools WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .map(Pool::from))
    }

    async fn add_pool(&self, new: &NewPool) -> Result<Pool> {
        let name = new.name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::Invalid(
                "pool name: 1–64 of a-z, 0-9, '-', '_'".to_owned(),
            ));
        }
        if let Some(esc) = new.escalation_pool_id {
            self.get_pool(esc)
                .await?
                .filter(|p| p.alliance_id == new.alliance_id)
                .ok_or_else(|| Error::Invalid(format!("escalation pool {esc} of this alliance")))?;
        }
        let label = trimmed(Some(&new.label)).unwrap_or_else(|| name.to_owned());
        let now = super::now_us();
        sqlx::query_as::<_, PoolRow>(&format!(
            "INSERT INTO reader_pools (alliance_id, name, label, escalation_pool_id, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING {POOL_COLUMNS}"
        ))
        .bind(new.alliance_id)
        .bind(name)
        .bind(&label)
        .bind(new.escalation_pool_id)
        .bind(now)
        .fetch_one(&self.write)
        .await
        .map(Pool::from)
        .map_err(|e| super::conflict_as(e, || format!("pool {name:?} exists in this alliance")))
    }

    async fn update_pool(&self, id: i64, update: &PoolUpdate) -> Result<Pool> {
        let pool = self
            .get_pool(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("pool {id}")))?;
        let escalation = match update.escalation_pool_id {
            Some(Some(e)) if e == id => {
                return Err(Error::Invalid("a pool cannot escalate to itself".into()));
            }
            Some(Some(e)) => {
                self.get_pool(e)
                    .await?
                    .filter(|p| p.alliance_id == pool.alliance_id)
                    .ok_or_else(|| {
                        Error::Invalid(format!("escalation pool {e} of this alliance"))
                    })?;
                Some(e)
            }
            Some(None) => None,
            None => pool.escalation_pool_id,
        };
        let label = update
            .label
            .as_deref()
            .and_then(|l| trimmed(Some(l)))
            .unwrap_or(pool.label);
        Ok(sqlx::query_as::<_, PoolRow>(&format!(
            "UPDATE reader_pools SET label = $2, escalation_pool_id = $3, updated_at = $4 \
             WHERE id = $1 RETURNING {POOL_COLUMNS}"
        ))
        .bind(id)
        .bind(&label)
        .bind(escalation)
        .bind(super::now_us())
        .fetch_one(&self.write)
        .await?
        .into())
    }

    async fn list_pool_members(&self, pool_id: i64) -> Result<Vec<PoolMember>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.pool_id = $1 ORDER BY m.user_id");
        Ok(sqlx::query_as::<_, MemberRow>(&sql)
            .bind(pool_id)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(PoolMember::from)
            .collect())
    }

    async fn memberships(&self, user_id: i64) -> Result<Vec<PoolMember>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.user_id = $1 ORDER BY m.pool_id");
        Ok(sqlx::query_as::<_, MemberRow>(&sql)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(PoolMember::from)
            .collect())
    }

    async fn set_pool_member(
        &self,
        pool_id: i64,
        user_id: i64,
        spec: &MemberSpec,
    ) -> Result<PoolMember> {
        check_schedule(spec.schedule.as_deref())?;
        if !(1..=1000).contains(&spec.max_open_claims) {
            return Err(Error::Invalid("max_open_claims must be 1 … 1000".into()));
        }
        sqlx::query(
            "INSERT INTO pool_members (pool_id, user_id, subspecialty, max_open_claims, schedule, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (pool_id, user_id) DO UPDATE \
             SET subspecialty = excluded.subspecialty, max_open_claims = excluded.max_open_claims, \
             schedule = excluded.schedule",
        )
        .bind(pool_id)
        .bind(user_id)
        .bind(trimmed(spec.subspecialty.as_deref()))
        .bind(spec.max_open_claims)
        .bind(trimmed(spec.schedule.as_deref()))
        .bind(super::now_us())
        .execute(&self.write)
        .await?;
        let sql = format!("{MEMBER_SELECT} WHERE m.pool_id = $1 AND m.user_id = $2");
        Ok(sqlx::query_as::<_, MemberRow>(&sql)
            .bind(pool_id)
            .bind(user_id)
            .fetch_one(&self.write)
            .await?
            .into())
    }

    async fn remove_pool_member(&self, pool_id: i64, user_id: i64) -> Result<()> {
        let n = sqlx::query("DELETE FROM pool_members WHERE pool_id = $1 AND user_id = $2")
            .bind(pool_id)
            .bind(user_id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!(
                "member {user_id} of pool {pool_id}"
            )));
        }
        Ok(())
    }

    async fn list_rules(&self, alliance_id: i64) -> Result<Vec<RoutingRule>> {
        sqlx::query_as::<_, RuleRow>(&format!(
            "SELECT {RULE_COLUMNS} FROM routing_rules WHERE alliance_id = $1 ORDER BY position, id"
        ))
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?
        .into_iter()
        .map(RoutingRule::try_from)
        .collect()
    }

    async fn get_rule(&self, id: i64) -> Result<Option<RoutingRule>> {
        sqlx::query_as::<_, RuleRow>(&format!(
            "SELECT {RULE_COLUMNS} FROM routing_rules WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .map(RoutingRule::try_from)
        .transpose()
    }

    async fn add_rule(&self, alliance_id: i64, spec: &RuleSpec) -> Result<RoutingRule> {
        check_rule(spec)?;
        self.get_pool(spec.pool_id)
            .await?
            .filter(|p| p.alliance_id == alliance_id)
            .ok_or_else(|| Error::Invalid(format!("pool {} of this alliance", spec.pool_id)))?;
        let now = super::now_us();
        sqlx::query_as::<_, RuleRow>(&format!(
            "INSERT INTO routing_rules (alliance_id, position, name, enabled, conditions, \
             pool_id, priority, sla_minutes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {RULE_COLUMNS}"
        ))
        .bind(alliance_id)
        .bind(spec.position)
        .bind(spec.name.trim())
        .bind(i64::from(spec.enabled))
        .bind(serde_json::to_string(&spec.conditions).unwrap_or_default())
        .bind(spec.pool_id)
        .bind(spec.priority.as_str())
        .bind(spec.sla_minutes)
        .bind(now)
        .fetch_one(&self.write)
        .await?
        .try_into()
    }

    async fn update_rule(&self, id: i64, spec: &RuleSpec) -> Result<RoutingRule> {
        check_rule(spec)?;
        let rule = self
            .get_rule(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("rule {id}")))?;
        self.get_pool(spec.pool_id)
            .await?
            .filter(|p| p.alliance_id == rule.alliance_id)
            .ok_or_else(|| Error::Invalid(format!("pool {} of this alliance", spec.pool_id)))?;
        sqlx::query_as::<_, RuleRow>(&format!(
            "UPDATE routing_rules SET position = $2, name = $3, enabled = $4, conditions = $5, \
             pool_id = $6, priority = $7, sla_minutes = $8, updated_at = $9 WHERE id = $1 \
             RETURNING {RULE_COLUMNS}"
        ))
        .bind(id)
        .bind(spec.position)
        .bind(spec.name.trim())
        .bind(i64::from(spec.enabled))
        .bind(serde_json::to_string(&spec.conditions).unwrap_or_default())
        .bind(spec.pool_id)
        .bind(spec.priority.as_str())
        .bind(spec.sla_minutes)
        .bind(super::now_us())
        .fetch_one(&self.write)
        .await?
        .try_into()
    }

    async fn delete_rule(&self, id: i64) -> Result<()> {
        let n = sqlx::query("DELETE FROM routing_rules WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("rule {id}")));
        }
        Ok(())
    }

    async fn dry_run(&self, study_instance_uid: &str, at_us: i64) -> Result<Option<DryRun>> {
        // read-only, but the fact queries take a transaction: use a read connection
        let mut tx = self.read.begin().await?;
        let sql = format!("{READY_STUDY} WHERE s.study_instance_uid = $1");
        let Some(s) = sqlx::query_as::<_, ReadyStudyRow>(&sql)
            .bind(study_instance_uid)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let (facts, critical, _) = facts_of(&mut tx, &s, at_us).await?;
        let rules = match s.alliance_id {
            Some(a) => rules_in(&mut tx, a).await?,
            None => Vec::new(),
        };
        tx.rollback().await?;
        let core: Vec<wl::Rule> = rules.iter().map(RoutingRule::as_core).collect();
        let hit = wl::route(&core, &facts).map(|r| r.id);
        let rule = hit.and_then(|id| rules.into_iter().find(|r| r.id == id));
        let priority = rule
            .as_ref()
            .map(|r| wl::initial_priority(r.priority, facts.sender_priority, critical));
        Ok(Some(DryRun {
            study_instance_uid: s.study_instance_uid,
            alliance_id: s.alliance_id,
            facts,
            ecg_critical: critical,
            rule,
            priority,
        }))
    }

    async fn mark_study_complete(
        &self,
        study_instance_uid: &str,
        priority: Option<Priority>,
        exam_code: Option<&str>,
        now: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE studies SET complete_at = COALESCE(complete_at, $2), \
             sender_priority = COALESCE($3, sender_priority), \
             exam_code = COALESCE($4, exam_code) WHERE study_instance_uid = $1",
        )
        .bind(study_instance_uid)
        .bind(now)
        .bind(priority.map(Priority::as_str))
        .bind(trimmed(exam_code))
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn set_stable_after(&self, institution_id: i64, seconds: Option<i64>) -> Result<()> {
        if seconds.is_some_and(|s| !(0..=86_400).contains(&s)) {
            return Err(Error::Invalid("stable_after_s must be 0 … 86400".into()));
        }
        let n = sqlx::query("UPDATE institutions SET stable_after_s = $2 WHERE id = $1")
            .bind(institution_id)
            .bind(seconds)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("institution {institution_id}")));
        }
        Ok(())
    }

    async fn set_ae_priority(&self, ae_title_id: i64, priority: Option<Priority>) -> Result<()> {
        let n = sqlx::query("UPDATE ae_titles SET priority = $2 WHERE id = $1")
            .bind(ae_title_id)
            .bind(priority.map(Priority::as_str))
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("AE title {ae_title_id}")));
        }
        Ok(())
    }

    async fn make_ready(
        &self,
        study_instance_uid: &str,
        now: i64,
        settings: &ReadySettings,
    ) -> Result<Option<Option<WorkItem>>> {
        let mut tx = self.begin_write().await?;
        let sql = format!("{READY_STUDY} WHERE s.study_instance_uid = $1");
        let Some(s) = sqlx::query_as::<_, ReadyStudyRow>(&sql)
            .bind(study_instance_uid)
            .fetch_optional(&mut *tx)
            .await?
        else {
            tx.rollback().await?;
            return Err(Error::NotFound(format!("study {study_instance_uid}")));
        };
        if s.ready_at.is_some() {
            tx.rollback().await?;
            return Ok(None);
        }
        let (facts, critical, identity) = facts_of(&mut tx, &s, now).await?;
        let won = sqlx::query(
            "UPDATE studies SET ready_at = $2, identity_hash = $3 WHERE id = $1 AND ready_at IS NULL",
        )
        .bind(s.id)
        .bind(now)
        .bind(&identity)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if won == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let Some(alliance_id) = s.alliance_id else {
            tx.commit().await?;
            return Ok(Some(None));
        };
        let rules = rules_in(&mut tx, alliance_id).await?;
        let core: Vec<wl::Rule> = rules.iter().map(RoutingRule::as_core).collect();
        let Some(rule) = wl::route(&core, &facts).cloned() else {
            tx.commit().await?;
            return Ok(Some(None));
        };
        let priority = wl::initial_priority(rule.priority, facts.sender_priority, critical);
        let (warn_at, due_at) = wl::turnaround(now, rule.sla_minutes, settings.warn_fraction);
        let modality = facts
            .modalities
            .iter()
            .find(|m| !matches!(m.as_str(), "SR" | "KO" | "PR" | "OT" | "DOC"))
            .or(facts.modalities.first())
            .cloned();
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO work_items (alliance_id, study_id, study_instance_uid, institution_id, \
             identity_hash, modality, pool_id, rule_id, priority, priority_rank, state, critical, \
             sla_minutes, ready_at, warn_at, due_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', $11, $12, $13, $14, $15, \
             $13, $13) ON CONFLICT (study_id) DO NOTHING RETURNING id",
        )
        .bind(alliance_id)
        .bind(s.id)
        .bind(&s.study_instance_uid)
        .bind(s.institution_id)
        .bind(&identity)
        .bind(&modality)
        .bind(rule.pool_id)
        .bind(rule.id)
        .bind(priority.as_str())
        .bind(priority.rank())
        .bind(i64::from(critical))
        .bind(rule.sla_minutes)
        .bind(now)
        .bind(warn_at)
        .bind(due_at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.commit().await?;
            return Ok(None);
        };
        let item = must_item(&mut tx, id).await?;
        let notify = if priority == Priority::Stat {
            recipients(&mut tx, &item, false, false, now).await?
        } else {
            Vec::new()
        };
        emit(
            &mut tx,
            &item,
            "queued",
            &Actor::system(),
            serde_json::json!({ "rule_id": rule.id, "critical": critical }),
            &notify,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Some(item)))
    }

    async fn sweep(&self, now: i64, settings: &ReadySettings, limit: i64) -> Result<Sweep> {
        let mut out = Sweep::default();
        self.sweep_ready(now, settings, limit, &mut out).await?;
        self.sweep_leases(now, limit, &mut out).await?;
        self.sweep_clocks(now, limit, &mut out).await?;
        self.sweep_new_images(now, limit, &mut out).await?;
        Ok(out)
    }

    async fn get_work_item(&self, id: i64) -> Result<Option<WorkItem>> {
        self.item(id).await
    }

    async fn work_item_of_study(&self, study_instance_uid: &str) -> Result<Option<WorkItem>> {
        let sql = format!("{WORK_SELECT} WHERE w.study_instance_uid = $1");
        sqlx::query_as::<_, WorkRow>(&sql)
            .bind(study_instance_uid)
            .fetch_optional(&self.read)
            .await?
            .map(WorkItem::try_from)
            .transpose()
    }

    async fn list_work_items(&self, f: &WorkFilter) -> Result<Vec<WorkItem>> {
        let mut clauses: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        enum B {
            I(i64),
            S(String),
        }
        let mut binds: Vec<B> = Vec::new();
        if let Some(a) = f.alliance_id {
            clauses.push(format!("w.alliance_id = {}", next()));
            binds.push(B::I(a));
        }
        if let Some(pools) = &f.pool_ids {
            clauses.push(format!("w.pool_id IN {}", in_list(pools)));
        }
        if let Some(insts) = &f.institution_ids {
            clauses.push(format!("w.institution_id IN {}", in_list(insts)));
        }
        if f.states.is_empty() {
            clauses.push(format!("w.state IN {OPEN}"));
        } else {
            let states: Vec<String> = f
                .states
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            clauses.push(format!("w.state IN ({})", states.join(", ")));
        }
        if let Some(u) = f.claimed_by {
            clauses.push(format!("w.claimed_by = {}", next()));
            binds.push(B::I(u));
        }
        if let Some(t) = f.due_before {
            clauses.push(format!("w.due_at < {}", next()));
            binds.push(B::I(t));
        }
        if let Some(p) = f.priority {
            clauses.push(format!("w.priority_rank = {}", next()));
            binds.push(B::I(p.rank()));
        }
        if let Some(m) = &f.modality {
            clauses.push(format!("w.modality = {}", next()));
            binds.push(B::S(m.clone()));
        }
        if let Some(uid) = &f.study_instance_uid {
            clauses.push(format!("w.study_instance_uid = {}", next()));
            binds.push(B::S(uid.clone()));
        }
        let limit_p = next();
        let offset_p = next();
        let sql = format!(
            "{WORK_SELECT} WHERE {} ORDER BY w.priority_rank, w.due_at, w.id LIMIT {limit_p} OFFSET {offset_p}",
            clauses.join(" AND ")
        );
        let mut q = sqlx::query_as::<_, WorkRow>(&sql);
        for b in binds {
            q = match b {
                B::I(i) => q.bind(i),
                B::S(s) => q.bind(s),
            };
        }
        q.bind(f.limit.clamp(1, 1000))
            .bind(f.offset.max(0))
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(WorkItem::try_from)
            .collect()
    }

    async fn claim(&self, id: i64, actor: &Actor, now: i64, lease_s: i64) -> Result<Claim> {
        let user_id = actor
            .user_id
            .ok_or_else(|| Error::Invalid("a claim needs a user".into()))?;
        let mut tx = self.begin_write().await?;
        self.lock_user(&mut tx, user_id).await?;
        let item = self.locked_item(&mut tx, id).await?;
        if item.claimed_by == Some(user_id) && item.state.is_leased() {
            sqlx::query(
                "UPDATE work_items SET lease_expires_at = \
                 CASE WHEN state = 'returned' THEN NULL ELSE $2 END WHERE id = $1",
            )
            .bind(id)
            .bind(now + lease_s * wl::US_PER_S)
            .execute(&mut *tx)
            .await?;
            let item = must_item(&mut tx, id).await?;
            tx.commit().await?;
            return Ok(Claim::Claimed(Box::new(item)));
        }
        if item.state != WorkState::Queued {
            tx.rollback().await?;
            return Ok(Claim::Refused(Refusal::NotClaimable { state: item.state }));
        }
        let member = match item.pool_id {
            Some(pool) => sqlx::query_as::<_, (i64,)>(
                "SELECT max_open_claims FROM pool_members WHERE pool_id = $1 AND user_id = $2",
            )
            .bind(pool)
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.0),
            None => None,
        };
        let Some(max) = member else {
            tx.rollback().await?;
            return Ok(Claim::Refused(Refusal::NotMember));
        };
        if self.open_claims(&mut tx, user_id).await? >= max {
            tx.rollback().await?;
            return Ok(Claim::Refused(Refusal::LimitReached { max }));
        }
        if self
            .patient_held_by_other(&mut tx, item.identity_hash.as_deref(), user_id)
            .await?
        {
            tx.rollback().await?;
            return Ok(Claim::Refused(Refusal::PatientHeld));
        }
        match self.take(&mut tx, id, actor, user_id, now, lease_s).await? {
            Some(item) => {
                tx.commit().await?;
                Ok(Claim::Claimed(Box::new(item)))
            }
            None => Ok(Claim::Refused(Refusal::NotClaimable { state: item.state })),
        }
    }

    async fn claim_next(&self, actor: &Actor, now: i64, lease_s: i64) -> Result<Claim> {
        let user_id = actor
            .user_id
            .ok_or_else(|| Error::Invalid("a claim needs a user".into()))?;
        let memberships = self.memberships(user_id).await?;
        if memberships.is_empty() {
            return Ok(Claim::Refused(Refusal::NotMember));
        }
        let on_duty: Vec<&PoolMember> = memberships
            .iter()
            .filter(|m| wl::on_duty(m.schedule.as_deref(), now))
            .collect();
        if on_duty.is_empty() {
            return Ok(Claim::Refused(Refusal::NotOnDuty));
        }
        let max = on_duty.iter().map(|m| m.max_open_claims).max().unwrap_or(1);
        // a few attempts: a candidate whose patient another reader claimed meanwhile
        // (PostgreSQL), or a preferred candidate taken meanwhile, is skipped and the next
        // one tried
        for _ in 0..8 {
            let mut tx = self.begin_write().await?;
            self.lock_user(&mut tx, user_id).await?;
            // each pool's own maximum: only pools where the reader holds fewer items
            let open = self.open_claims(&mut tx, user_id).await?;
            let pools: Vec<i64> = on_duty
                .iter()
                .filter(|m| open < m.max_open_claims)
                .map(|m| m.pool_id)
                .collect();
            if pools.is_empty() {
                tx.rollback().await?;
                return Ok(Claim::Refused(Refusal::LimitReached { max }));
            }
            // a study of a patient this reader holds goes first at equal priority (looked
            // up without locking; locked below only if chosen)
            let mine = if open > 0 {
                self.candidate(&mut tx, &pools, user_id, true, false)
                    .await?
            } else {
                None
            };
            let general = self
                .candidate(&mut tx, &pools, user_id, false, true)
                .await?;
            let pick = match (mine, general) {
                (Some(m), Some(g)) if m.1 <= g.1 && m.0 != g.0 => {
                    // give the general candidate's lock back, lock the preferred one
                    tx.rollback().await?;
                    tx = self.begin_write().await?;
                    self.lock_user(&mut tx, user_id).await?;
                    // the reader's lock was given back too: a claim of theirs may have
                    // come in between (another tab), so count again
                    if self.open_claims(&mut tx, user_id).await? != open {
                        tx.rollback().await?;
                        continue;
                    }
                    if !self.lock_queued(&mut tx, m.0).await? {
                        tx.rollback().await?;
                        continue;
                    }
                    m
                }
                (Some(m), None) => {
                    if !self.lock_queued(&mut tx, m.0).await? {
                        tx.rollback().await?;
                        continue;
                    }
                    m
                }
                (_, Some(g)) => g,
                (None, None) => {
                    tx.rollback().await?;
                    return Ok(Claim::Refused(Refusal::NothingQueued));
                }
            };
            if self
                .patient_held_by_other(&mut tx, pick.2.as_deref(), user_id)
                .await?
            {
                tx.rollback().await?;
                continue;
            }
            if let Some(item) = self
                .take(&mut tx, pick.0, actor, user_id, now, lease_s)
                .await?
            {
                tx.commit().await?;
                return Ok(Claim::Claimed(Box::new(item)));
            }
            tx.rollback().await?;
        }
        Ok(Claim::Refused(Refusal::NothingQueued))
    }

    async fn renew_lease(&self, id: i64, user_id: i64, now: i64, lease_s: i64) -> Result<WorkItem> {
        let n = sqlx::query(&format!(
            "UPDATE work_items SET lease_expires_at = \
             CASE WHEN state = 'returned' THEN NULL ELSE $3 END \
             WHERE id = $1 AND claimed_by = $2 AND state IN {LEASED} \
             AND (lease_expires_at >= $4 OR (state = 'returned' AND lease_expires_at IS NULL))"
        ))
        .bind(id)
        .bind(user_id)
        .bind(now + lease_s * wl::US_PER_S)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return match self.item(id).await? {
                None => Err(Error::NotFound(format!("work item {id}"))),
                Some(_) => Err(Error::Conflict("lease-lost".into())),
            };
        }
        self.item(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("work item {id}")))
    }

    async fn release(&self, id: i64, actor: &Actor, now: i64) -> Result<WorkItem> {
        let user_id = actor.user_id.unwrap_or(-1);
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(&format!(
            "UPDATE work_items SET state = 'queued', claimed_by = NULL, claimed_at = NULL, \
             lease_expires_at = NULL, version = version + 1, updated_at = $3 \
             WHERE id = $1 AND claimed_by = $2 AND state IN {LEASED}"
        ))
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            let found = item_in(&mut tx, id).await?;
            tx.rollback().await?;
            return match found {
                None => Err(Error::NotFound(format!("work item {id}"))),
                Some(_) => Err(Error::Conflict("not-holder".into())),
            };
        }
        let item = must_item(&mut tx, id).await?;
        emit(
            &mut tx,
            &item,
            "released",
            actor,
            serde_json::json!({}),
            &[],
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(item)
    }

    async fn reassign(
        &self,
        id: i64,
        to_user: Option<i64>,
        reason: &str,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<WorkItem> {
        let reason =
            trimmed(Some(reason)).ok_or_else(|| Error::Invalid("a reason is required".into()))?;
        let mut tx = self.begin_write().await?;
        let item = self.locked_item(&mut tx, id).await?;
        let previous = item.claimed_by;
        match to_user {
            None => {
                if !item.state.is_leased() {
                    tx.rollback().await?;
                    return Err(Error::Conflict("not-locked".into()));
                }
                sqlx::query(
                    "UPDATE work_items SET state = 'queued', claimed_by = NULL, claimed_at = NULL, \
                     lease_expires_at = NULL, version = version + 1, updated_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let after = must_item(&mut tx, id).await?;
                let notify: Vec<i64> = previous.into_iter().collect();
                emit(
                    &mut tx,
                    &after,
                    "lock-broken",
                    actor,
                    serde_json::json!({ "reason": reason, "previous_holder": previous }),
                    &notify,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(after)
            }
            Some(to) => {
                if !(item.state == WorkState::Queued || item.state.is_leased()) {
                    tx.rollback().await?;
                    return Err(Error::Conflict(format!("not-reassignable: {}", item.state)));
                }
                let member: Option<i64> =
                    match item.pool_id {
                        Some(pool) => sqlx::query_scalar(
                            "SELECT user_id FROM pool_members WHERE pool_id = $1 AND user_id = $2",
                        )
                        .bind(pool)
                        .bind(to)
                        .fetch_optional(&mut *tx)
                        .await?,
                        None => None,
                    };
                if member.is_none() {
                    tx.rollback().await?;
                    return Err(Error::Invalid(format!(
                        "user {to} is not a member of the item's pool"
                    )));
                }
                let state = if item.state == WorkState::Queued {
                    WorkState::Claimed
                } else {
                    item.state
                };
                sqlx::query(
                    "UPDATE work_items SET state = $2, claimed_by = $3, claimed_at = $4, \
                     lease_expires_at = $5, version = version + 1, updated_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(state.as_str())
                .bind(to)
                .bind(now)
                .bind(now + lease_s * wl::US_PER_S)
                .execute(&mut *tx)
                .await?;
                let after = must_item(&mut tx, id).await?;
                let mut notify = vec![to];
                notify.extend(previous);
                emit(
                    &mut tx,
                    &after,
                    "reassigned",
                    actor,
                    serde_json::json!({ "reason": reason, "previous_holder": previous, "to": to }),
                    &notify,
                    now,
                )
                .await?;
                tx.commit().await?;
                Ok(after)
            }
        }
    }

    async fn cancel(&self, id: i64, reason: &str, actor: &Actor, now: i64) -> Result<WorkItem> {
        let reason =
            trimmed(Some(reason)).ok_or_else(|| Error::Invalid("a reason is required".into()))?;
        let mut tx = self.begin_write().await?;
        let item = self.locked_item(&mut tx, id).await?;
        if !item.state.can_become(WorkState::Cancelled) {
            tx.rollback().await?;
            return Err(Error::Conflict(format!("not-cancellable: {}", item.state)));
        }
        sqlx::query(
            "UPDATE work_items SET state = 'cancelled', lease_expires_at = NULL, done_at = $2, \
             version = version + 1, updated_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = must_item(&mut tx, id).await?;
        let notify: Vec<i64> = item.claimed_by.into_iter().collect();
        emit(
            &mut tx,
            &after,
            "cancelled",
            actor,
            serde_json::json!({ "reason": reason }),
            &notify,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn set_priority(
        &self,
        id: i64,
        priority: Priority,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<WorkItem> {
        let reason =
            trimmed(Some(reason)).ok_or_else(|| Error::Invalid("a reason is required".into()))?;
        let mut tx = self.begin_write().await?;
        let item = self.locked_item(&mut tx, id).await?;
        if !item.state.is_open() {
            tx.rollback().await?;
            return Err(Error::Conflict(format!("closed: {}", item.state)));
        }
        sqlx::query(
            "UPDATE work_items SET priority = $2, priority_rank = $3, version = version + 1, \
             updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(priority.as_str())
        .bind(priority.rank())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = must_item(&mut tx, id).await?;
        let notify = if priority == Priority::Stat {
            let mut n = recipients(&mut tx, &after, false, false, now).await?;
            n.extend(after.claimed_by);
            n
        } else {
            Vec::new()
        };
        emit(
            &mut tx,
            &after,
            "priority-changed",
            actor,
            serde_json::json!({ "from": item.priority, "to": priority, "reason": reason }),
            &notify,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    async fn transition(
        &self,
        id: i64,
        to: WorkState,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<WorkItem> {
        let mut tx = self.begin_write().await?;
        match transition_in(&mut tx, self.dialect, id, to, actor, now, lease_s).await {
            Ok(after) => {
                tx.commit().await?;
                Ok(after)
            }
            Err(e) => {
                tx.rollback().await?;
                Err(e)
            }
        }
    }

    async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<WorkEvent>> {
        Ok(sqlx::query_as::<_, WorkEvent>(
            "SELECT id, alliance_id, work_item_id, pool_id, kind, actor, detail, created_at \
             FROM worklist_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn events_in(&self, ids: &[i64]) -> Result<Vec<WorkEvent>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, alliance_id, work_item_id, pool_id, kind, actor, detail, created_at \
             FROM worklist_events WHERE id IN ({}) ORDER BY id",
            marks.join(", ")
        );
        let mut q = sqlx::query_as::<_, WorkEvent>(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(&self.read).await?)
    }

    async fn last_event_id(&self) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM worklist_events")
            .fetch_one(&self.read)
            .await?;
        Ok(id.unwrap_or(0))
    }

    async fn events_of_item(&self, work_item_id: i64) -> Result<Vec<WorkEvent>> {
        Ok(sqlx::query_as::<_, WorkEvent>(
            "SELECT id, alliance_id, work_item_id, pool_id, kind, actor, detail, created_at \
             FROM worklist_events WHERE work_item_id = $1 ORDER BY id",
        )
        .bind(work_item_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn list_notifications(
        &self,
        user_id: i64,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let unread = if unread_only {
            " AND read_at IS NULL"
        } else {
            ""
        };
        Ok(sqlx::query_as::<_, Notification>(&format!(
            "SELECT id, user_id, work_item_id, event_id, kind, created_at, read_at \
             FROM notifications WHERE user_id = $1{unread} ORDER BY id DESC LIMIT $2"
        ))
        .bind(user_id)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.read)
        .await?)
    }

    async fn mark_notification_read(&self, user_id: i64, id: i64, now: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("notification {id}")));
        }
        Ok(())
    }

    async fn list_webhooks(&self, alliance_id: Option<i64>) -> Result<Vec<Webhook>> {
        let rows = sqlx::query_as::<_, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks \
             WHERE alliance_id = COALESCE($1, alliance_id) ORDER BY id"
        ))
        .bind(alliance_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Webhook::from).collect())
    }

    async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
        Ok(sqlx::query_as::<_, WebhookRow>(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .map(Webhook::from))
    }

    async fn add_webhook(&self, new: &NewWebhook) -> Result<Webhook> {
        let url = new.url.trim();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
            return Err(Error::Invalid("url must be http:// or https://".into()));
        }
        if new.secret.len() < 16 {
            return Err(Error::Invalid(
                "secret must have at least 16 characters".into(),
            ));
        }
        let events: Vec<String> = new
            .events
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if events.is_empty() || events.iter().any(|e| e.contains(',')) {
            return Err(Error::Invalid(
                "events: a list of event kinds, or [\"*\"]".into(),
            ));
        }
        Ok(sqlx::query_as::<_, WebhookRow>(&format!(
            "INSERT INTO webhooks (alliance_id, url, secret, events, enabled, created_at) \
             VALUES ($1, $2, $3, $4, 1, $5) RETURNING {WEBHOOK_COLUMNS}"
        ))
        .bind(new.alliance_id)
        .bind(url)
        .bind(&new.secret)
        .bind(events.join(","))
        .bind(super::now_us())
        .fetch_one(&self.write)
        .await?
        .into())
    }

    async fn delete_webhook(&self, id: i64) -> Result<()> {
        // keep the deliveries (what was sent is history): disable instead of deleting
        let n = sqlx::query("UPDATE webhooks SET enabled = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::NotFound(format!("webhook {id}")));
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'dead', last_error = 'webhook deleted' \
             WHERE webhook_id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn list_deliveries(&self, webhook_id: i64, state: Option<&str>) -> Result<Vec<Delivery>> {
        let rows = sqlx::query_as::<_, Delivery>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
             AND state = COALESCE($2, state) ORDER BY id DESC LIMIT 500"
        ))
        .bind(webhook_id)
        .bind(state)
        .fetch_all(&self.read)
        .await?;
        Ok(rows)
    }

    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>> {
        Ok(sqlx::query_as::<_, Delivery>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn take_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        lock_s: i64,
    ) -> Result<Vec<(Delivery, Webhook)>> {
        let mut tx = self.begin_write().await?;
        let lock = match self.dialect {
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
             AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at, id \
             LIMIT $2{lock}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            sqlx::query("UPDATE webhook_deliveries SET locked_until = $2 WHERE id = $1")
                .bind(id)
                .bind(now + lock_s * wl::US_PER_S)
                .execute(&mut *tx)
                .await?;
            let d = sqlx::query_as::<_, Delivery>(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let h: Webhook = sqlx::query_as::<_, WebhookRow>(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
            ))
            .bind(d.webhook_id)
            .fetch_one(&mut *tx)
            .await?
            .into();
            out.push((d, h));
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn finish_delivery(&self, id: i64, result: &AttemptResult, now: i64) -> Result<()> {
        match result {
            AttemptResult::Delivered { status } => {
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, \
                     last_status = $2, last_error = NULL, delivered_at = $3, locked_until = NULL \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(*status)
                .bind(now)
                .execute(&self.write)
                .await?;
            }
            AttemptResult::Failed {
                status,
                error,
                retry_at,
            } => {
                let state = if retry_at.is_some() {
                    "pending"
                } else {
                    "dead"
                };
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, \
                     last_status = $3, last_error = $4, next_attempt_at = COALESCE($5, next_attempt_at), \
                     locked_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(state)
                .bind(*status)
                .bind(error.chars().take(500).collect::<String>())
                .bind(*retry_at)
                .execute(&self.write)
                .await?;
            }
        }
        Ok(())
    }

    async fn retry_delivery(&self, id: i64, now: i64) -> Result<()> {
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $2, \
             locked_until = NULL WHERE id = $1 AND state <> 'pending'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected();
        if n == 0 {
            return match self.get_delivery(id).await? {
                None => Err(Error::NotFound(format!("delivery {id}"))),
                Some(_) => Err(Error::Conflict("already pending".into())),
            };
        }
        Ok(())
    }

    async fn try_job_lease(&self, name: &str, holder: &str, now: i64, ttl_s: i64) -> Result<bool> {
        let got: Option<String> = sqlx::query_scalar(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE job_leases.expires_at < $4 OR job_leases.holder = excluded.holder \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_s * wl::US_PER_S)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        Ok(got.as_deref() == Some(holder))
    }

    async fn priors(&self, work_item_id: i64) -> Result<Vec<Prior>> {
        let Some(item) = self.item(work_item_id).await? else {
            return Err(Error::NotFound(format!("work item {work_item_id}")));
        };
        let Some(identity) = item.identity_hash else {
            return Ok(Vec::new());
        };
        Ok(sqlx::query_as::<_, Prior>(
            "SELECT s.study_instance_uid, s.institution_id, i.name AS institution_name, \
             s.study_date, s.study_time, s.study_description, s.modalities_in_study, \
             s.accession_number, s.num_instances, s.ready_at, w.id AS work_item_id, \
             w.state AS work_state, w.reported_at \
             FROM studies s JOIN institutions i ON i.id = s.institution_id \
             LEFT JOIN work_items w ON w.study_id = s.id \
             WHERE s.identity_hash = $1 AND i.alliance_id = $2 AND s.id <> $3 \
             ORDER BY s.study_date IS NULL, s.study_date DESC, s.study_time IS NULL, \
             s.study_time DESC, s.id DESC LIMIT 200",
        )
        .bind(&identity)
        .bind(item.alliance_id)
        .bind(item.study_id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn study_routed_to(&self, study_instance_uid: &str, user_id: i64) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM studies st WHERE st.study_instance_uid = $1 AND {}",
            routed_sql("st.id", "st.identity_hash", user_id)
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(study_instance_uid)
            .fetch_one(&self.read)
            .await?;
        Ok(n > 0)
    }
}

/// [`WorklistStore::transition`] inside the caller's write transaction (the report store
/// moves the work item with the report).
pub(super) async fn transition_in(
    tx: &mut Tx,
    dialect: Dialect,
    id: i64,
    to: WorkState,
    actor: &Actor,
    now: i64,
    lease_s: i64,
) -> Result<WorkItem> {
    let item = locked_item_in(tx, dialect, id).await?;
    if to == WorkState::Claimed || !item.state.can_become(to) {
        // claims go through claim()/claim_next() (membership, maximum, patient lock)
        return Err(Error::Invalid(format!(
            "a work item cannot go from {} to {to}",
            item.state
        )));
    }
    // the author's own steps need the author; verification (signed, returned) is the
    // verifier's, whose right to sign the caller checks
    let authors_step = matches!(to, WorkState::Drafted)
        || (to == WorkState::Submitted && item.state != WorkState::Submitted);
    if authors_step && (actor.user_id.is_none() || item.claimed_by != actor.user_id) {
        return Err(Error::Conflict("not-holder".into()));
    }
    // a returned report waits for its author without a lease running out (the author may
    // be off duty): it stays theirs until they act, release it, or a supervisor reassigns
    let leased = to.is_leased() && to != WorkState::Returned;
    let lease = leased.then_some(now + lease_s * wl::US_PER_S);
    let done = matches!(to, WorkState::Signed | WorkState::Cancelled).then_some(now);
    let reported = (to == WorkState::Submitted).then_some(now);
    let holder = if to == WorkState::Queued {
        None
    } else {
        item.claimed_by.or(actor.user_id)
    };
    sqlx::query(
        "UPDATE work_items SET state = $2, lease_expires_at = $3, done_at = COALESCE($4, done_at), \
             reported_at = COALESCE($5, reported_at), claimed_by = $6, version = version + 1, \
             updated_at = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(lease)
    .bind(done)
    .bind(reported)
    .bind(holder)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let after = must_item(tx, id).await?;
    let notify = match to {
        // seniors verify submitted reports; a returned report goes back to its author
        WorkState::Submitted => recipients(tx, &after, true, false, now).await?,
        WorkState::Returned => after.claimed_by.into_iter().collect(),
        _ => Vec::new(),
    };
    emit(
        tx,
        &after,
        to.as_str(),
        actor,
        serde_json::json!({}),
        &notify,
        now,
    )
    .await?;
    Ok(after)
}
