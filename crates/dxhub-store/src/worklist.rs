//! The worklist's records: reader pools and members, routing rules, work items with claim
//! leases and turnaround clocks, worklist events, notifications, webhooks and their
//! deliveries, and leases of periodic jobs. The rules themselves (priorities, the state
//! machine, rule matching, duty schedules) are pure functions in
//! [`dxhub_core::worklist`]; [`WorklistStore`] applies them atomically in SQL, so N
//! replicas on one PostgreSQL claim, escalate and detect readiness exactly once.
//!
//! Every method that depends on time takes `now` (epoch µs UTC) from the caller's
//! [`dxhub_core::worklist::Clock`].

use async_trait::async_trait;
use dxhub_core::worklist::{Priority, RuleMatch, StudyFacts, WorkState};
use serde::Serialize;

use crate::catalog::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub id: i64,
    pub alliance_id: i64,
    /// Short name, unique in the alliance (`ecg`, `radiology` …).
    pub name: String,
    /// Display name (`心电诊断组`).
    pub label: String,
    /// Items that breach their SLA move to this pool.
    pub escalation_pool_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPool {
    pub alliance_id: i64,
    pub name: String,
    pub label: String,
    pub escalation_pool_id: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolUpdate {
    pub label: Option<String>,
    /// `Some(None)` clears it.
    pub escalation_pool_id: Option<Option<i64>>,
}

/// A reader's membership of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolMember {
    pub pool_id: i64,
    pub user_id: i64,
    pub login: String,
    pub role: String,
    pub subspecialty: Option<String>,
    pub max_open_claims: i64,
    /// On-duty schedule ([`dxhub_core::worklist::Schedule`]); `None`: always.
    pub schedule: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    pub subspecialty: Option<String>,
    pub max_open_claims: i64,
    pub schedule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutingRule {
    pub id: i64,
    pub alliance_id: i64,
    pub position: i64,
    pub name: String,
    pub enabled: bool,
    pub conditions: RuleMatch,
    pub pool_id: i64,
    pub priority: Priority,
    pub sla_minutes: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RoutingRule {
    pub fn as_core(&self) -> dxhub_core::worklist::Rule {
        dxhub_core::worklist::Rule {
            id: self.id,
            position: self.position,
            enabled: self.enabled,
            matches: self.conditions.clone(),
            pool_id: self.pool_id,
            priority: self.priority,
            sla_minutes: self.sla_minutes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub position: i64,
    pub name: String,
    pub enabled: bool,
    pub conditions: RuleMatch,
    pub pool_id: i64,
    pub priority: Priority,
    pub sla_minutes: i64,
}

/// A study on the worklist, with what the worklist shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkItem {
    pub id: i64,
    pub alliance_id: i64,
    pub study_id: i64,
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    #[serde(skip_serializing)]
    pub identity_hash: Option<String>,
    pub modality: Option<String>,
    pub pool_id: Option<i64>,
    pub rule_id: Option<i64>,
    pub priority: Priority,
    pub state: WorkState,
    pub claimed_by: Option<i64>,
    pub claimed_by_login: Option<String>,
    pub claimed_at: Option<i64>,
    pub lease_expires_at: Option<i64>,
    pub critical: bool,
    pub sla_minutes: i64,
    pub ready_at: i64,
    pub warn_at: i64,
    pub due_at: i64,
    pub warned_at: Option<i64>,
    pub breached_at: Option<i64>,
    pub escalated_from: Option<i64>,
    pub reported_at: Option<i64>,
    pub new_images: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub done_at: Option<i64>,
    // of the study
    pub patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_birth_date: Option<String>,
    pub study_date: Option<String>,
    pub study_description: Option<String>,
    pub accession_number: Option<String>,
    pub body_part_examined: Option<String>,
    pub num_instances: i64,
}

/// Which work items to list. Ordered by priority, then due time, then id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkFilter {
    pub alliance_id: Option<i64>,
    /// Only these pools (empty list: none).
    pub pool_ids: Option<Vec<i64>>,
    /// Only items of these source institutions.
    pub institution_ids: Option<Vec<i64>>,
    /// Empty: every open state.
    pub states: Vec<WorkState>,
    pub claimed_by: Option<i64>,
    /// Only items due before this time (overdue: `now`).
    pub due_before: Option<i64>,
    pub priority: Option<Priority>,
    pub modality: Option<String>,
    pub study_instance_uid: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Refusal {
    /// The reader holds `max` items already.
    LimitReached { max: i64 },
    /// Another reader holds it, or it is not queued.
    NotClaimable { state: WorkState },
    /// Another reader holds a study of the same patient.
    PatientHeld,
    /// The reader is not a member of the item's pool (or of any pool).
    NotMember,
    /// The reader is a member of pools, but on duty in none of them now.
    NotOnDuty,
    /// No queued item the reader may take.
    NothingQueued,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed(Box<WorkItem>),
    Refused(Refusal),
}

/// Who did something to a work item (recorded in its events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<i64>,
    /// `user:login`, `system`.
    pub name: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            user_id: None,
            name: "system".to_owned(),
        }
    }
    pub fn user(id: i64, login: &str) -> Self {
        Self {
            user_id: Some(id),
            name: format!("user:{login}"),
        }
    }
}

/// A change to the worklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WorkEvent {
    pub id: i64,
    pub alliance_id: i64,
    pub work_item_id: i64,
    pub pool_id: Option<i64>,
    /// `queued`, `claimed`, `released`, `lease-expired`, `reassigned`, `lock-broken`,
    /// `cancelled`, `priority-changed`, `drafted`, `submitted`, `signed`, `returned`,
    /// `sla-warning`, `sla-breach`, `escalated`, `new-images`.
    pub kind: String,
    pub actor: Option<String>,
    /// JSON.
    pub detail: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    pub work_item_id: i64,
    pub event_id: i64,
    pub kind: String,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub alliance_id: i64,
    pub url: String,
    #[serde(skip_serializing)]
    pub secret: String,
    /// Event kinds, or `["*"]`.
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub alliance_id: i64,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub kind: String,
    /// The JSON body sent.
    pub payload: String,
    /// `pending`, `delivered`, `dead`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered {
        status: i64,
    },
    /// Try again at `retry_at`, or give up (dead letter) when `None`.
    Failed {
        status: Option<i64>,
        error: String,
        retry_at: Option<i64>,
    },
}

/// An earlier (or later) study of the same patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Prior {
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub institution_name: Option<String>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub study_description: Option<String>,
    pub modalities_in_study: Option<String>,
    pub accession_number: Option<String>,
    pub num_instances: i64,
    pub ready_at: Option<i64>,
    pub work_item_id: Option<i64>,
    pub work_state: Option<String>,
    pub reported_at: Option<i64>,
}

/// Settings of ready detection and turnaround.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadySettings {
    /// Seconds without a new instance before a study is ready (institutions may override).
    pub stable_after_s: i64,
    /// Warn at this fraction of the SLA.
    pub warn_fraction: f64,
}

impl Default for ReadySettings {
    fn default() -> Self {
        Self {
            stable_after_s: 60,
            warn_fraction: 0.8,
        }
    }
}

/// What the router would do with a study (the dry run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRun {
    pub study_instance_uid: String,
    pub alliance_id: Option<i64>,
    pub facts: StudyFacts,
    pub ecg_critical: bool,
    pub rule: Option<RoutingRule>,
    pub priority: Option<Priority>,
}

/// Changes the periodic jobs made (for audit and metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweep {
    pub ready: Vec<WorkItem>,
    pub expired: Vec<WorkItem>,
    pub warned: Vec<WorkItem>,
    pub breached: Vec<WorkItem>,
    pub new_images: Vec<WorkItem>,
}

/// The worklist half of the catalog.
#[async_trait]
pub trait WorklistStore: Send + Sync {
    // pools
    async fn list_pools(&self, alliance_id: Option<i64>) -> Result<Vec<Pool>>;
    async fn get_pool(&self, id: i64) -> Result<Option<Pool>>;
    async fn add_pool(&self, new: &NewPool) -> Result<Pool>;
    async fn update_pool(&self, id: i64, update: &PoolUpdate) -> Result<Pool>;
    async fn list_pool_members(&self, pool_id: i64) -> Result<Vec<PoolMember>>;
    /// The pools a user is a member of.
    async fn memberships(&self, user_id: i64) -> Result<Vec<PoolMember>>;
    async fn set_pool_member(
        &self,
        pool_id: i64,
        user_id: i64,
        spec: &MemberSpec,
    ) -> Result<PoolMember>;
    async fn remove_pool_member(&self, pool_id: i64, user_id: i64) -> Result<()>;

    // rules
    async fn list_rules(&self, alliance_id: i64) -> Result<Vec<RoutingRule>>;
    async fn get_rule(&self, id: i64) -> Result<Option<RoutingRule>>;
    async fn add_rule(&self, alliance_id: i64, spec: &RuleSpec) -> Result<RoutingRule>;
    async fn update_rule(&self, id: i64, spec: &RuleSpec) -> Result<RoutingRule>;
    async fn delete_rule(&self, id: i64) -> Result<()>;
    /// Which rule a study would match at `at_us` (nothing is changed).
    async fn dry_run(&self, study_instance_uid: &str, at_us: i64) -> Result<Option<DryRun>>;

    // readiness
    /// The sender says the study is complete (and may set its priority and exam code).
    /// `false` when there is no such study.
    async fn mark_study_complete(
        &self,
        study_instance_uid: &str,
        priority: Option<Priority>,
        exam_code: Option<&str>,
        now: i64,
    ) -> Result<bool>;
    /// Institutions' own stable-after (seconds), `None`: the default.
    async fn set_stable_after(&self, institution_id: i64, seconds: Option<i64>) -> Result<()>;
    /// The priority a DICOM sender's studies start with.
    async fn set_ae_priority(&self, ae_title_id: i64, priority: Option<Priority>) -> Result<()>;
    /// Route a study now if it is not ready yet: marks it ready and creates its work item
    /// (none when no rule matches or the study has no alliance). `None` when it was ready
    /// already (another replica, or an earlier call, did it).
    async fn make_ready(
        &self,
        study_instance_uid: &str,
        now: i64,
        settings: &ReadySettings,
    ) -> Result<Option<Option<WorkItem>>>;
    /// The periodic sweep: stable studies become ready, expired leases return to the
    /// queue, SLA warnings and breaches fire (once each), new images after a report are
    /// flagged. Each change is its own conditional update, so concurrent sweeps by
    /// several replicas never do anything twice.
    async fn sweep(&self, now: i64, settings: &ReadySettings, limit: i64) -> Result<Sweep>;

    // work items
    async fn get_work_item(&self, id: i64) -> Result<Option<WorkItem>>;
    async fn work_item_of_study(&self, study_instance_uid: &str) -> Result<Option<WorkItem>>;
    async fn list_work_items(&self, filter: &WorkFilter) -> Result<Vec<WorkItem>>;
    /// Claim this item (a member of its pool, within the reader's maximum, no other
    /// reader holding the same patient). Claiming an item one holds renews its lease.
    async fn claim(&self, id: i64, actor: &Actor, now: i64, lease_s: i64) -> Result<Claim>;
    /// Claim the most urgent, earliest-due queued item of the pools the reader is on duty
    /// in (a patient the reader already holds first, at equal priority).
    async fn claim_next(&self, actor: &Actor, now: i64, lease_s: i64) -> Result<Claim>;
    /// Renew the lease (the viewer's heartbeat). `Conflict` when the caller no longer
    /// holds it.
    async fn renew_lease(&self, id: i64, user_id: i64, now: i64, lease_s: i64) -> Result<WorkItem>;
    /// Give a held item back to the queue. `Conflict` unless the caller holds it.
    async fn release(&self, id: i64, actor: &Actor, now: i64) -> Result<WorkItem>;
    /// Supervisor: give the item to `to_user` (a member of its pool), or with `None`
    /// break the lock (back to the queue). `reason` is recorded.
    async fn reassign(
        &self,
        id: i64,
        to_user: Option<i64>,
        reason: &str,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<WorkItem>;
    async fn cancel(&self, id: i64, reason: &str, actor: &Actor, now: i64) -> Result<WorkItem>;
    async fn set_priority(
        &self,
        id: i64,
        priority: Priority,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<WorkItem>;
    /// A report-driven transition (drafted, submitted, signed, returned) by the holder;
    /// `Invalid` if the state machine does not allow it.
    async fn transition(
        &self,
        id: i64,
        to: WorkState,
        actor: &Actor,
        now: i64,
        lease_s: i64,
    ) -> Result<WorkItem>;

    // events, notifications
    async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<WorkEvent>>;
    /// The events among `ids` (at most a few hundred) that exist, by id.
    async fn events_in(&self, ids: &[i64]) -> Result<Vec<WorkEvent>>;
    async fn last_event_id(&self) -> Result<i64>;
    async fn events_of_item(&self, work_item_id: i64) -> Result<Vec<WorkEvent>>;
    async fn list_notifications(
        &self,
        user_id: i64,
        unread_only: bool,
        limit: i64,
    ) -> Result<Vec<Notification>>;
    /// `NotFound` unless it is this user's.
    async fn mark_notification_read(&self, user_id: i64, id: i64, now: i64) -> Result<()>;

    // webhooks
    async fn list_webhooks(&self, alliance_id: Option<i64>) -> Result<Vec<Webhook>>;
    async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>>;
    async fn add_webhook(&self, new: &NewWebhook) -> Result<Webhook>;
    async fn delete_webhook(&self, id: i64) -> Result<()>;
    async fn list_deliveries(&self, webhook_id: i64, state: Option<&str>) -> Result<Vec<Delivery>>;
    async fn get_delivery(&self, id: i64) -> Result<Option<Delivery>>;
    /// Lock up to `limit` due deliveries for `lock_s` seconds (skipping those another
    /// replica holds) and return them with their webhook.
    async fn take_due_deliveries(
        &self,
        now: i64,
        limit: i64,
        lock_s: i64,
    ) -> Result<Vec<(Delivery, Webhook)>>;
    async fn finish_delivery(&self, id: i64, result: &AttemptResult, now: i64) -> Result<()>;
    /// Send a dead (or delivered) delivery again.
    async fn retry_delivery(&self, id: i64, now: i64) -> Result<()>;

    // periodic jobs, priors
    /// Take or renew the lease of a periodic job; `true` when `holder` holds it.
    async fn try_job_lease(&self, name: &str, holder: &str, now: i64, ttl_s: i64) -> Result<bool>;
    /// The same patient's other studies within the alliance, newest first.
    async fn priors(&self, work_item_id: i64) -> Result<Vec<Prior>>;
    /// Whether the study is routed to reader `user_id`: a work item of it, or of another
    /// study of the same patient, is in a pool the reader is a member of or is held by the
    /// reader (what readers may read; `dxhub_core::policy::TargetScope::Study`). `false`
    /// for an unknown study.
    async fn study_routed_to(&self, study_instance_uid: &str, user_id: i64) -> Result<bool>;
}

/// The identity hash of a basis string ([`dxhub_core::worklist::identity_basis`]).
pub fn identity_hash(basis: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"dxhub-patient-identity-v1\0");
    h.update(basis.as_bytes());
    hex::encode(h.finalize())
}

/// Settings parsed from a member spec's schedule: validated before it is stored.
pub fn check_schedule(schedule: Option<&str>) -> Result<()> {
    if let Some(s) = schedule.map(str::trim).filter(|s| !s.is_empty()) {
        s.parse::<dxhub_core::worklist::Schedule>()
            .map_err(|e| crate::catalog::Error::Invalid(format!("schedule: {e}")))?;
    }
    Ok(())
}
