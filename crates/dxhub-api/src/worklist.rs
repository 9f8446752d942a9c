//! The worklist API (issue #6): reader pools and members, routing rules with a dry run,
//! "study complete", work items (list, claim, `next`, heartbeat, release, reassign,
//! break-lock, cancel, priority), priors, the server-sent-events stream of worklist
//! changes, notifications, and webhooks with their deliveries. Plus the periodic jobs:
//! the sweep (ready detection, lease expiry, SLA warnings and breaches, new images after
//! a report), the event fan-out to SSE streams, and webhook delivery (HMAC-signed, with
//! retries and a dead-letter list).
//!
//! Who sees what: readers and senior readers work on the items of the pools they are
//! members of (plus items they hold); group admins see and supervise the whole alliance;
//! senior readers supervise the items of their pools.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dxhub_core::policy::{Action, TargetScope};
use dxhub_core::roles::Role;
use dxhub_core::worklist::{Clock, Priority, RuleMatch, SystemClock, WorkState};
use dxhub_store::NewAuditEntry;
use dxhub_store::worklist::{
    Actor, AttemptResult, Claim, MemberSpec, NewPool, NewWebhook, PoolUpdate, ReadySettings,
    Refusal, RuleSpec, Sweep, WorkEvent, WorkFilter, WorkItem,
};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::v1::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

/// Settings of the worklist (from the binary's `[worklist]` configuration).
#[derive(Debug, Clone)]
pub struct WorklistSettings {
    /// A claim's lease; the viewer's heartbeat renews it.
    pub lease_ttl_s: i64,
    pub ready: ReadySettings,
    /// How often the sweep runs.
    pub tick: Duration,
    /// Webhook attempts before a delivery is dead-lettered.
    pub webhook_max_attempts: i64,
    /// Timeout of one webhook request.
    pub webhook_timeout: Duration,
    /// Internal hosts webhooks may reach (all others are refused: SSRF).
    pub webhook_allow: Arc<crate::outbound::OutboundAllow>,
}

impl Default for WorklistSettings {
    fn default() -> Self {
        Self {
            lease_ttl_s: 120,
            ready: ReadySettings::default(),
            tick: Duration::from_secs(1),
            webhook_max_attempts: 8,
            webhook_timeout: Duration::from_secs(10),
            webhook_allow: Arc::default(),
        }
    }
}

/// A worklist event as this process's fan-out publishes it to its SSE streams.
#[derive(Debug, Clone)]
pub struct Published {
    pub event: WorkEvent,
    /// Committed after a higher id was published ([`EventCursor`]): a stream passes it on
    /// although it has sent higher ids. Events in order are each published once, in id
    /// order, so a stream drops those at or below the highest id it has sent.
    pub late: bool,
}

/// Shared worklist state: the clock, settings, and the fan-out of worklist events to
/// SSE streams.
pub struct WorklistState {
    pub clock: Arc<dyn Clock>,
    pub settings: WorklistSettings,
    pub events: tokio::sync::broadcast::Sender<Published>,
    /// Names this process as a job-lease holder.
    pub holder: String,
    /// Set when the server shuts down: event streams end, so graceful shutdown does not
    /// wait for clients that never hang up.
    closing: tokio::sync::watch::Sender<bool>,
    /// New ECG studies waiting to be routed (see [`route_ecg`]); the task that routes them
    /// starts with the first.
    ecg_routing: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<String>>,
    /// ECG uploads being stored right now ([`ecg_upload_started`]).
    ecg_uploads: tokio::sync::watch::Sender<usize>,
}

impl std::fmt::Debug for WorklistState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorklistState")
            .field("settings", &self.settings)
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl Default for WorklistState {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock), WorklistSettings::default())
    }
}

impl WorklistState {
    pub fn new(clock: Arc<dyn Clock>, settings: WorklistSettings) -> Self {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let holder = format!(
            "{}-{}-{:016x}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "dxhub".to_owned()),
            std::process::id(),
            rand::random::<u64>()
        );
        Self {
            clock,
            settings,
            events,
            holder,
            closing: tokio::sync::watch::channel(false).0,
            ecg_routing: std::sync::OnceLock::new(),
            ecg_uploads: tokio::sync::watch::channel(0).0,
        }
    }

    /// End every event stream (at shutdown).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    pub fn now(&self) -> i64 {
        self.clock.now_us()
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_pools, add_pool))
        .routes(routes!(update_pool))
        .routes(routes!(list_members))
        .routes(routes!(set_member, remove_member))
        .routes(routes!(list_rules, add_rule))
        .routes(routes!(update_rule, delete_rule))
        .routes(routes!(dry_run))
        .routes(routes!(complete_study))
        .routes(routes!(list_items))
        .routes(routes!(next_item))
        .routes(routes!(event_stream))
        .routes(routes!(get_item))
        .routes(routes!(claim_item))
        .routes(routes!(heartbeat))
        .routes(routes!(release_item))
        .routes(routes!(reassign_item))
        .routes(routes!(break_lock))
        .routes(routes!(cancel_item))
        .routes(routes!(set_item_priority))
        .routes(routes!(item_priors))
        .routes(routes!(list_notifications))
        .routes(routes!(read_notification))
        .routes(routes!(list_webhooks, add_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

fn alliance(alliance_id: i64) -> TargetScope {
    TargetScope::Alliance { alliance_id }
}

/// The route's action on a study, judged by the study's institution; refused, the caller
/// who may not read the study is told it does not exist (`not_found`), others 403.
async fn require_study(
    state: &AppState,
    caller: &Caller,
    study_uid: &str,
    institution_id: i64,
    alliance_id: i64,
    not_found: impl FnOnce() -> String,
) -> Result<(), ApiError> {
    let target = TargetScope::Institution {
        institution_id,
        alliance_id,
    };
    match caller.require(state, target).await {
        Err(ApiError::Forbidden(m)) => {
            let seen = caller
                .study_scope(
                    state,
                    Action::ReadStudy,
                    study_uid,
                    Some(institution_id),
                    alliance_id,
                )
                .await?;
            Err(if caller.sees(seen) {
                ApiError::Forbidden(m)
            } else {
                ApiError::NotFound(not_found())
            })
        }
        other => other,
    }
}

fn item_scope(item: &WorkItem) -> TargetScope {
    match item.institution_id {
        Some(institution_id) => TargetScope::Institution {
            institution_id,
            alliance_id: item.alliance_id,
        },
        None => alliance(item.alliance_id),
    }
}

pub(crate) fn actor_of(caller: &Caller) -> Actor {
    match caller.user() {
        Some(u) => Actor::user(u.id, &u.login),
        None => {
            let (kind, name) = caller.actor();
            Actor {
                user_id: None,
                name: format!("{kind}:{name}"),
            }
        }
    }
}

pub(crate) fn user_id(caller: &Caller) -> Result<i64, ApiError> {
    caller
        .user()
        .map(|u| u.id)
        .ok_or(ApiError::DeviceTokenUploadOnly)
}

/// Readers and senior readers act on items of their pools (and items they hold); group
/// admins and superadmins on the whole alliance (the policy checked that).
async fn pool_scoped(state: &AppState, caller: &Caller, item: &WorkItem) -> Result<(), ApiError> {
    if !matches!(caller.role(), Some(Role::Reader | Role::SeniorReader)) {
        return Ok(());
    }
    let me = user_id(caller)?;
    if item.claimed_by == Some(me) {
        return Ok(());
    }
    let member = match item.pool_id {
        Some(pool) => state
            .catalog
            .memberships(me)
            .await?
            .iter()
            .any(|m| m.pool_id == pool),
        None => false,
    };
    if member {
        Ok(())
    } else {
        if let Some(name) = caller.rule.patient_data {
            caller.audit(state, name, None, "denied").await?;
        }
        Err(ApiError::Forbidden(
            "out of scope: not a member of this item's pool".into(),
        ))
    }
}

/// The item, after the route's policy and pool membership allow the caller.
pub(crate) async fn item_for(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<WorkItem, ApiError> {
    let Some(item) = state.catalog.get_work_item(id).await? else {
        return Err(caller.unknown(state, format!("work item {id}")).await);
    };
    caller
        .require_found(state, item_scope(&item), || format!("work item {id}"))
        .await?;
    pool_scoped(state, caller, &item).await?;
    Ok(item)
}

fn item_json(item: &WorkItem, now: i64) -> Value {
    let mut v = serde_json::to_value(item).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "overdue".into(),
            json!(item.state.is_open() && item.due_at <= now),
        );
        o.insert(
            "due_in_s".into(),
            json!((item.due_at - now).div_euclid(1_000_000)),
        );
        o.insert("due_at_local".into(), json!(shanghai(item.due_at)));
        o.insert("ready_at_local".into(), json!(shanghai(item.ready_at)));
    }
    v
}

/// `2026-11-23T10:00:00+08:00`: the time shown to users (Asia/Shanghai).
pub fn shanghai(epoch_us: i64) -> String {
    let local = crate::auth::rfc3339(epoch_us + dxhub_core::worklist::SHANGHAI_OFFSET_US);
    // rfc3339 renders UTC with a trailing Z
    match local.strip_suffix('Z') {
        Some(s) => format!("{s}+08:00"),
        None => local,
    }
}

fn refusal(r: &Refusal) -> ApiError {
    let (status, code, message) = match r {
        Refusal::LimitReached { max } => (
            StatusCode::CONFLICT,
            "claim-limit-reached",
            format!("you already hold {max} items, the most your pool allows"),
        ),
        Refusal::NotClaimable { state } => (
            StatusCode::CONFLICT,
            "not-claimable",
            format!("the item is {state}, not queued"),
        ),
        Refusal::PatientHeld => (
            StatusCode::CONFLICT,
            "patient-held-by-other-reader",
            "another reader holds a study of this patient".to_owned(),
        ),
        Refusal::NotMember => (
            StatusCode::FORBIDDEN,
            "not-a-pool-member",
            "you are not a member of a reader pool for this item".to_owned(),
        ),
        Refusal::NotOnDuty => (
            StatusCode::CONFLICT,
            "not-on-duty",
            "you are on duty in none of your pools now".to_owned(),
        ),
        Refusal::NothingQueued => (
            StatusCode::NOT_FOUND,
            "nothing-queued",
            "no queued item you may take".to_owned(),
        ),
    };
    ApiError::Coded {
        status,
        code,
        message,
    }
}

fn coded_conflict(e: dxhub_store::catalog::Error) -> ApiError {
    match e {
        dxhub_store::catalog::Error::Conflict(m) if m == "lease-lost" => ApiError::Coded {
            status: StatusCode::CONFLICT,
            code: "lease-lost",
            message: "you no longer hold this item (the lease expired or was broken)".into(),
        },
        dxhub_store::catalog::Error::Conflict(m) if m == "not-holder" => ApiError::Coded {
            status: StatusCode::CONFLICT,
            code: "not-holder",
            message: "you do not hold this item".into(),
        },
        other => other.into(),
    }
}

/// Audit a change of work item `id` by the caller and answer with the item.
async fn item_change(
    state: &AppState,
    caller: &Caller,
    action: &str,
    id: i64,
    r: Result<WorkItem, impl Into<ApiError>>,
    now: i64,
) -> Result<Json<Value>, ApiError> {
    let r = r.map_err(Into::into);
    let item = caller
        .audited(state, action, Some(("work_item", &id.to_string())), r)
        .await?;
    Ok(Json(item_json(&item, now)))
}

// ---------------------------------------------------------------- pools

#[derive(Debug, Deserialize, IntoParams)]
pub struct AllianceQuery {
    /// Default: the caller's alliance.
    pub alliance_id: Option<i64>,
}

/// Reader pools of an alliance.
#[utoipa::path(get, path = "/api/v1/pools", tag = "worklist", params(AllianceQuery),
    responses((status = 200, description = "{pools:[{id, alliance_id, name, label, escalation_pool_id}]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_pools(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AllianceQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = q.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    let pools = state.catalog.list_pools(Some(a)).await?;
    Ok(Json(json!({ "pools": pools })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPoolRequest {
    /// Default: the caller's alliance.
    pub alliance_id: Option<i64>,
    /// `a-z0-9-_`, unique in the alliance.
    pub name: String,
    pub label: Option<String>,
    pub escalation_pool_id: Option<i64>,
}

/// Create a reader pool.
#[utoipa::path(post, path = "/api/v1/pools", tag = "worklist", request_body = NewPoolRequest,
    responses((status = 201, description = "The pool"), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn add_pool(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewPoolRequest>,
) -> Result<Response, ApiError> {
    let a = req.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    let r = state
        .catalog
        .add_pool(&NewPool {
            alliance_id: a,
            name: req.name.clone(),
            label: req.label.clone().unwrap_or_default(),
            escalation_pool_id: req.escalation_pool_id,
        })
        .await;
    let pool = caller
        .audited(&state, "pool.add", Some(("pool", req.name.trim())), r)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(pool))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPatch {
    pub label: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub escalation_pool_id: Option<Option<i64>>,
}

pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

async fn pool_for(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<dxhub_store::worklist::Pool, ApiError> {
    let pool = state
        .catalog
        .get_pool(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("pool {id}")))?;
    caller
        .require_found(state, alliance(pool.alliance_id), || format!("pool {id}"))
        .await?;
    Ok(pool)
}

/// Change a pool's label or escalation pool.
#[utoipa::path(patch, path = "/api/v1/pools/{id}", tag = "worklist", params(("id" = i64, Path)), request_body = PoolPatch,
    responses((status = 200, description = "The pool"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn update_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<PoolPatch>,
) -> Result<Json<Value>, ApiError> {
    pool_for(&state, &caller, id).await?;
    let r = state
        .catalog
        .update_pool(
            id,
            &PoolUpdate {
                label: req.label,
                escalation_pool_id: req.escalation_pool_id,
            },
        )
        .await;
    let pool = caller
        .audited(&state, "pool.update", Some(("pool", &id.to_string())), r)
        .await?;
    Ok(Json(json!(pool)))
}

/// Members of a pool.
#[utoipa::path(get, path = "/api/v1/pools/{id}/members", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "{members:[{user_id, login, role, subspecialty, max_open_claims, schedule, on_duty}]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    pool_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let members: Vec<Value> = state
        .catalog
        .list_pool_members(id)
        .await?
        .into_iter()
        .map(|m| {
            let on = dxhub_core::worklist::on_duty(m.schedule.as_deref(), now);
            let mut v = json!(m);
            v["on_duty"] = json!(on);
            v
        })
        .collect();
    Ok(Json(json!({ "members": members })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub subspecialty: Option<String>,
    /// Default 5.
    pub max_open_claims: Option<i64>,
    /// `mon-fri 08:00-17:30; sat 08:00-12:00` (Asia/Shanghai); absent: always on duty.
    pub schedule: Option<String>,
}

/// Add a reader to a pool, or change the membership.
#[utoipa::path(put, path = "/api/v1/pools/{id}/members/{user_id}", tag = "worklist", params(("id" = i64, Path), ("user_id" = i64, Path)), request_body = MemberRequest,
    responses((status = 200, description = "The membership"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn set_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member)): Path<(i64, i64)>,
    ApiJson(req): ApiJson<MemberRequest>,
) -> Result<Json<Value>, ApiError> {
    let pool = pool_for(&state, &caller, id).await?;
    let user = state
        .catalog
        .get_user(member)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {member}")))?;
    if user.alliance_id != pool.alliance_id {
        let seen = TargetScope::Institution {
            institution_id: user.institution_id,
            alliance_id: user.alliance_id,
        };
        // who may not know the user is not told it exists
        return Err(if caller.sees(seen) {
            ApiError::InvalidJson("the user belongs to another alliance".into())
        } else {
            ApiError::NotFound(format!("user {member}"))
        });
    }
    if !matches!(user.role, Role::Reader | Role::SeniorReader) {
        return Err(ApiError::InvalidJson(
            "only readers and senior readers are pool members".into(),
        ));
    }
    let r = state
        .catalog
        .set_pool_member(
            id,
            member,
            &MemberSpec {
                subspecialty: req.subspecialty,
                max_open_claims: req.max_open_claims.unwrap_or(5),
                schedule: req.schedule,
            },
        )
        .await;
    let m = caller
        .audited(
            &state,
            "pool.member.set",
            Some(("pool", &format!("{id}/{}", user.login))),
            r,
        )
        .await?;
    Ok(Json(json!(m)))
}

/// Remove a reader from a pool.
#[utoipa::path(delete, path = "/api/v1/pools/{id}/members/{user_id}", tag = "worklist", params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, member)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    pool_for(&state, &caller, id).await?;
    let r = state.catalog.remove_pool_member(id, member).await;
    caller
        .audited(
            &state,
            "pool.member.remove",
            Some(("pool", &format!("{id}/{member}"))),
            r,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- rules

/// Routing rules of an alliance, in matching order.
#[utoipa::path(get, path = "/api/v1/routing-rules", tag = "worklist", params(AllianceQuery),
    responses((status = 200, description = "{rules:[{id, position, name, enabled, conditions, pool_id, priority, sla_minutes}]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AllianceQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = q.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    Ok(Json(json!({ "rules": state.catalog.list_rules(a).await? })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// Default: the caller's alliance (creation only).
    pub alliance_id: Option<i64>,
    /// Ascending; the first matching enabled rule wins.
    pub position: i64,
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `{institutions:[id], levels:["village"], modalities:["CT"], body_parts:["CHEST"],
    /// sop_classes:[uid], procedure_codes:["…"], sender_priorities:["stat"],
    /// time:{from:"08:00", to:"18:00"}, weekdays:[1..7]}`; absent or empty lists match
    /// anything.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub conditions: RuleMatch,
    pub pool_id: i64,
    /// `stat`, `urgent` or `routine`.
    #[schema(value_type = String)]
    pub priority: Priority,
    pub sla_minutes: i64,
}

fn yes() -> bool {
    true
}

impl RuleRequest {
    fn spec(&self) -> RuleSpec {
        RuleSpec {
            position: self.position,
            name: self.name.clone(),
            enabled: self.enabled,
            conditions: self.conditions.clone(),
            pool_id: self.pool_id,
            priority: self.priority,
            sla_minutes: self.sla_minutes,
        }
    }
}

/// Add a routing rule (validated).
#[utoipa::path(post, path = "/api/v1/routing-rules", tag = "worklist", request_body = RuleRequest,
    responses((status = 201, description = "The rule"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn add_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RuleRequest>,
) -> Result<Response, ApiError> {
    let a = req.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    let r = state.catalog.add_rule(a, &req.spec()).await;
    let rule = caller
        .audited(
            &state,
            "routing-rule.add",
            Some(("routing_rule", req.name.trim())),
            r,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(rule))).into_response())
}

async fn rule_for(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let rule = state
        .catalog
        .get_rule(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("routing rule {id}")))?;
    caller
        .require_found(state, alliance(rule.alliance_id), || {
            format!("routing rule {id}")
        })
        .await
}

/// Replace a routing rule.
#[utoipa::path(put, path = "/api/v1/routing-rules/{id}", tag = "worklist", params(("id" = i64, Path)), request_body = RuleRequest,
    responses((status = 200, description = "The rule"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn update_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<RuleRequest>,
) -> Result<Json<Value>, ApiError> {
    rule_for(&state, &caller, id).await?;
    let r = state.catalog.update_rule(id, &req.spec()).await;
    let rule = caller
        .audited(
            &state,
            "routing-rule.update",
            Some(("routing_rule", &id.to_string())),
            r,
        )
        .await?;
    Ok(Json(json!(rule)))
}

/// Delete a routing rule.
#[utoipa::path(delete, path = "/api/v1/routing-rules/{id}", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    rule_for(&state, &caller, id).await?;
    let r = state.catalog.delete_rule(id).await;
    caller
        .audited(
            &state,
            "routing-rule.delete",
            Some(("routing_rule", &id.to_string())),
            r,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub study_instance_uid: String,
    /// Route as at this time (RFC 3339); default now.
    pub at: Option<String>,
}

/// Which rule a study would match (nothing changes).
#[utoipa::path(post, path = "/api/v1/routing-rules/dry-run", tag = "worklist", request_body = DryRunRequest,
    responses((status = 200, description = "{study_instance_uid, facts, ecg_critical, rule, priority}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn dry_run(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<DryRunRequest>,
) -> Result<Json<Value>, ApiError> {
    let at = match req.at.as_deref() {
        None => state.worklist.now(),
        Some(t) => parse_rfc3339(t)
            .ok_or_else(|| ApiError::InvalidJson(format!("at: {t:?} is not RFC 3339")))?,
    };
    let owners = state
        .catalog
        .get_study(&req.study_instance_uid)
        .await?
        .ok_or_else(|| ApiError::NotFound("study".into()))?;
    let inst = owners
        .institution_id
        .ok_or_else(|| ApiError::NotFound("study".into()))?;
    let alliance_id = state
        .catalog
        .list_institutions()
        .await?
        .into_iter()
        .find(|i| i.id == inst)
        .map(|i| i.alliance_id)
        .ok_or_else(|| ApiError::NotFound("study".into()))?;
    require_study(
        &state,
        &caller,
        &req.study_instance_uid,
        inst,
        alliance_id,
        || "study".into(),
    )
    .await?;
    let run = state
        .catalog
        .dry_run(&req.study_instance_uid, at)
        .await?
        .ok_or_else(|| ApiError::NotFound("study".into()))?;
    caller
        .audit(
            &state,
            "routing-rule.dry-run",
            Some(("study", &req.study_instance_uid)),
            "success",
        )
        .await?;
    Ok(Json(json!(run)))
}

/// Epoch µs of an RFC 3339 time (`2026-11-23T10:00:00+08:00`, `…Z`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() < 20 {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0, 4)?,
        n(5, 7)?,
        n(8, 10)?,
        n(11, 13)?,
        n(14, 16)?,
        n(17, 19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac_us = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        let padded = format!("{digits:0<6}");
        frac_us = padded.get(..6)?.parse::<i64>().ok()?;
        rest = &r[digits.len()..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = match &o[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            sign * (o.get(1..3)?.parse::<i64>().ok()? * 3600
                + o.get(4..6)?.parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) - offset_s) * 1_000_000 + frac_us)
}

// ---------------------------------------------------------------- study complete

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The sender's priority, `stat`, `urgent` or `routine` (raises, never lowers, the
    /// routing rule's).
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    /// An exam / procedure code the routing rules can match.
    pub exam_code: Option<String>,
}

/// The sender says a study is complete: it is ready to read at once (no stable-age wait).
#[utoipa::path(post, path = "/api/v1/studies/{study_uid}/complete", tag = "worklist", params(("study_uid" = String, Path)), request_body = CompleteRequest,
    responses((status = 200, description = "{study_instance_uid, work_item}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn complete_study(
    State(state): State<AppState>,
    caller: Caller,
    Path(study_uid): Path<String>,
    ApiJson(req): ApiJson<CompleteRequest>,
) -> Result<Json<Value>, ApiError> {
    let study = state
        .catalog
        .get_study(&study_uid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("study {study_uid}")))?;
    let inst = study
        .institution_id
        .ok_or_else(|| ApiError::NotFound(format!("study {study_uid}")))?;
    let alliance_id = state
        .catalog
        .list_institutions()
        .await?
        .into_iter()
        .find(|i| i.id == inst)
        .map(|i| i.alliance_id)
        .ok_or_else(|| ApiError::NotFound(format!("study {study_uid}")))?;
    require_study(&state, &caller, &study_uid, inst, alliance_id, || {
        format!("study {study_uid}")
    })
    .await?;
    let now = state.worklist.now();
    let r = state
        .catalog
        .mark_study_complete(&study_uid, req.priority, req.exam_code.as_deref(), now)
        .await;
    caller
        .audited(&state, "study-complete", Some(("study", &study_uid)), r)
        .await?;
    let made = state
        .catalog
        .make_ready(&study_uid, now, &state.worklist.settings.ready)
        .await?;
    if let Some(Some(item)) = &made {
        audit_system(&state, "work-queued", item).await;
    }
    let item = state.catalog.work_item_of_study(&study_uid).await?;
    Ok(Json(json!({
        "study_instance_uid": study_uid,
        "work_item": item.map(|i| json!({"id": i.id, "state": i.state, "priority": i.priority, "pool_id": i.pool_id, "due_at": crate::auth::rfc3339(i.due_at)})),
    })))
}

/// How long routing waits at most for ECG uploads to pause (see [`route_ecg`]).
const ECG_ROUTING_MAX_DELAY: Duration = Duration::from_millis(250);

/// Counts an ECG upload as in progress until dropped (see [`route_ecg`]).
pub struct EcgUpload<'a>(&'a WorklistState);

/// Note that an ECG upload is being stored, until the returned guard is dropped.
pub fn ecg_upload_started(state: &AppState) -> EcgUpload<'_> {
    state.worklist.ecg_uploads.send_modify(|n| *n += 1);
    EcgUpload(&state.worklist)
}

impl Drop for EcgUpload<'_> {
    fn drop(&mut self) {
        self.0.ecg_uploads.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Route a newly uploaded ECG's study (the upload API calls this once it is stored).
///
/// At once when it was the only upload; otherwise once no ECG upload is in progress, or
/// 250 ms later at the latest. When 20 village devices send together, routing the first
/// ECGs while the others are still being analysed and stored would only slow those down:
/// the burst is routed when it is through. Should the process stop before, the worklist
/// sweep routes them (every study not yet ready is found again).
pub fn route_ecg(state: &AppState, study_uid: String) {
    let tx = state.worklist.ecg_routing.get_or_init(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(route_ecgs(state.clone(), rx));
        tx
    });
    if let Err(e) = tx.send(study_uid) {
        // the routing task has ended (runtime shutting down): the sweep routes it later
        tracing::warn!(study_instance_uid = %e.0, "ECG routing queue closed; the sweep routes it");
    }
}

async fn route_ecgs(state: AppState, mut rx: tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut uploads = state.worklist.ecg_uploads.subscribe();
    while let Some(first) = rx.recv().await {
        let latest = tokio::time::Instant::now() + ECG_ROUTING_MAX_DELAY;
        // a closed channel cannot happen while `state` holds the sender; time out either way
        let _ = tokio::time::timeout_at(latest, uploads.wait_for(|n| *n == 0)).await;
        let mut batch = vec![first];
        while let Ok(uid) = rx.try_recv() {
            batch.push(uid);
        }
        for uid in batch {
            ecg_ready(&state, &uid).await;
        }
    }
}

/// Make an ECG's study ready at once.
pub async fn ecg_ready(state: &AppState, study_uid: &str) {
    let now = state.worklist.now();
    match state
        .catalog
        .make_ready(study_uid, now, &state.worklist.settings.ready)
        .await
    {
        Ok(Some(Some(item))) => audit_system(state, "work-queued", &item).await,
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "routing an ECG failed; the sweep retries"),
    }
}

// ---------------------------------------------------------------- work items

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `mine` (held by me), `queue` (queued in my pools; default for readers), `overdue`,
    /// `all` (open items I may see).
    pub tab: Option<String>,
    pub pool_id: Option<i64>,
    /// A work-item state.
    pub state: Option<String>,
    /// `stat`, `urgent` or `routine`.
    #[param(value_type = Option<String>)]
    pub priority: Option<Priority>,
    pub modality: Option<String>,
    pub study_instance_uid: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The worklist, most urgent first (priority, then due time).
#[utoipa::path(get, path = "/api/v1/worklist", tag = "worklist", params(ListQuery),
    responses((status = 200, description = "{items:[work item], now}"), (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_items(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    caller
        .require(&state, alliance(caller.principal.alliance_id))
        .await
        .or_else(|e| {
            if caller.is_superadmin() {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    let now = state.worklist.now();
    let me = user_id(&caller)?;
    let reader = matches!(caller.role(), Some(Role::Reader | Role::SeniorReader));
    let mut f = WorkFilter {
        alliance_id: (!caller.is_superadmin()).then_some(caller.principal.alliance_id),
        limit: q.limit.unwrap_or(200),
        offset: q.offset.unwrap_or(0),
        priority: q.priority,
        modality: q.modality.clone(),
        study_instance_uid: q.study_instance_uid.clone(),
        ..WorkFilter::default()
    };
    if let Some(s) = q.state.as_deref() {
        f.states = vec![s.parse::<WorkState>().map_err(ApiError::BadRequest)?];
    }
    let my_pools: Vec<i64> = if reader {
        state
            .catalog
            .memberships(me)
            .await?
            .into_iter()
            .map(|m| m.pool_id)
            .collect()
    } else {
        Vec::new()
    };
    let tab = q
        .tab
        .as_deref()
        .unwrap_or(if reader { "queue" } else { "all" });
    match tab {
        "mine" => {
            f.claimed_by = Some(me);
            if f.states.is_empty() {
                f.states = vec![
                    WorkState::Claimed,
                    WorkState::Drafted,
                    WorkState::Returned,
                    WorkState::Submitted,
                ];
            }
        }
        "queue" => {
            if f.states.is_empty() {
                f.states = vec![WorkState::Queued];
            }
            if reader {
                f.pool_ids = Some(my_pools.clone());
            }
        }
        "overdue" => {
            f.due_before = Some(now);
            if reader {
                f.pool_ids = Some(my_pools.clone());
            }
        }
        "all" => {
            if reader {
                f.pool_ids = Some(my_pools.clone());
            }
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "tab {other:?}: mine, queue, overdue or all"
            )));
        }
    }
    if let Some(p) = q.pool_id {
        if reader && !my_pools.contains(&p) {
            return Err(ApiError::Forbidden(
                "out of scope: not a member of this pool".into(),
            ));
        }
        f.pool_ids = Some(vec![p]);
    }
    let items = state.catalog.list_work_items(&f).await?;
    caller
        .audit(&state, "worklist-read", None, "success")
        .await?;
    let items: Vec<Value> = items.iter().map(|i| item_json(i, now)).collect();
    Ok(Json(
        json!({ "items": items, "now": crate::auth::rfc3339(now) }),
    ))
}

/// Claim the most urgent, earliest-due item the reader may take, in one call.
#[utoipa::path(post, path = "/api/v1/worklist/next", tag = "worklist",
    responses((status = 200, description = "The claimed work item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody, description = "nothing-queued"), (status = 409, body = crate::dto::ErrorBody, description = "claim-limit-reached, not-on-duty")))]
async fn next_item(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller
        .require(&state, alliance(caller.principal.alliance_id))
        .await?;
    let actor = actor_of(&caller);
    let now = state.worklist.now();
    let claim = state
        .catalog
        .claim_next(&actor, now, state.worklist.settings.lease_ttl_s)
        .await?;
    match claim {
        Claim::Claimed(item) => {
            caller
                .audit(
                    &state,
                    "work-claim",
                    Some(("work_item", &item.id.to_string())),
                    "success",
                )
                .await?;
            Ok(Json(item_json(&item, now)))
        }
        Claim::Refused(r) => {
            caller.audit(&state, "work-claim", None, "failure").await?;
            Err(refusal(&r))
        }
    }
}

/// One work item, with its history.
#[utoipa::path(get, path = "/api/v1/worklist/{id}", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "{item…, events:[…]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn get_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let item = item_for(&state, &caller, id).await?;
    let events = state.catalog.events_of_item(id).await?;
    caller
        .audit(
            &state,
            "worklist-read",
            Some(("work_item", &id.to_string())),
            "success",
        )
        .await?;
    let mut v = item_json(&item, state.worklist.now());
    v["events"] = json!(events);
    Ok(Json(v))
}

/// Claim this item.
#[utoipa::path(post, path = "/api/v1/worklist/{id}/claim", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "The claimed item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn claim_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let claim = state
        .catalog
        .claim(
            id,
            &actor_of(&caller),
            now,
            state.worklist.settings.lease_ttl_s,
        )
        .await?;
    let object = id.to_string();
    match claim {
        Claim::Claimed(item) => {
            caller
                .audit(
                    &state,
                    "work-claim",
                    Some(("work_item", &object)),
                    "success",
                )
                .await?;
            Ok(Json(item_json(&item, now)))
        }
        Claim::Refused(r) => {
            caller
                .audit(
                    &state,
                    "work-claim",
                    Some(("work_item", &object)),
                    "failure",
                )
                .await?;
            Err(refusal(&r))
        }
    }
}

/// Renew the lease (the viewer calls this while the item is open).
#[utoipa::path(post, path = "/api/v1/worklist/{id}/heartbeat", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "{id, lease_expires_at (null: a returned report, no lease), lease_ttl_s}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody, description = "lease-lost")))]
async fn heartbeat(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let item = state
        .catalog
        .renew_lease(
            id,
            user_id(&caller)?,
            state.worklist.now(),
            state.worklist.settings.lease_ttl_s,
        )
        .await
        .map_err(coded_conflict)?;
    Ok(Json(json!({
        "id": item.id,
        "lease_expires_at": item.lease_expires_at.map(crate::auth::rfc3339),
        // how often to come back: a third of this
        "lease_ttl_s": state.worklist.settings.lease_ttl_s,
    })))
}

/// Give the item back to the queue.
#[utoipa::path(post, path = "/api/v1/worklist/{id}/release", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "The item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn release_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let r = state.catalog.release(id, &actor_of(&caller), now).await;
    item_change(
        &state,
        &caller,
        "work-release",
        id,
        r.map_err(coded_conflict),
        now,
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// A member of the item's pool.
    pub user_id: i64,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityRequest {
    /// `stat`, `urgent` or `routine`.
    #[schema(value_type = String)]
    pub priority: Priority,
    pub reason: String,
}

/// Supervisor: give the item to another reader of its pool.
#[utoipa::path(post, path = "/api/v1/worklist/{id}/reassign", tag = "worklist", params(("id" = i64, Path)), request_body = ReassignRequest,
    responses((status = 200, description = "The item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn reassign_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReassignRequest>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let r = state
        .catalog
        .reassign(
            id,
            Some(req.user_id),
            &req.reason,
            &actor_of(&caller),
            now,
            state.worklist.settings.lease_ttl_s,
        )
        .await;
    item_change(&state, &caller, "work-reassign", id, r, now).await
}

/// Supervisor: break the lock (the item returns to the queue).
#[utoipa::path(post, path = "/api/v1/worklist/{id}/break-lock", tag = "worklist", params(("id" = i64, Path)), request_body = ReasonRequest,
    responses((status = 200, description = "The item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn break_lock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let r = state
        .catalog
        .reassign(id, None, &req.reason, &actor_of(&caller), now, 0)
        .await;
    item_change(&state, &caller, "work-break-lock", id, r, now).await
}

/// Supervisor: cancel the item (wrong patient, duplicate …).
#[utoipa::path(post, path = "/api/v1/worklist/{id}/cancel", tag = "worklist", params(("id" = i64, Path)), request_body = ReasonRequest,
    responses((status = 200, description = "The item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn cancel_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let r = state
        .catalog
        .cancel(id, &req.reason, &actor_of(&caller), now)
        .await;
    item_change(&state, &caller, "work-cancel", id, r, now).await
}

/// Supervisor or group admin: change the item's priority.
#[utoipa::path(post, path = "/api/v1/worklist/{id}/priority", tag = "worklist", params(("id" = i64, Path)), request_body = PriorityRequest,
    responses((status = 200, description = "The item"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn set_item_priority(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<PriorityRequest>,
) -> Result<Json<Value>, ApiError> {
    item_for(&state, &caller, id).await?;
    let now = state.worklist.now();
    let r = state
        .catalog
        .set_priority(id, req.priority, &req.reason, &actor_of(&caller), now)
        .await;
    item_change(&state, &caller, "work-priority", id, r, now).await
}

/// The same patient's other studies across the alliance (matched on the patient-identity
/// hash), newest first.
#[utoipa::path(get, path = "/api/v1/worklist/{id}/priors", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 200, description = "{priors:[{study_instance_uid, institution_name, study_date, study_description, modalities_in_study, work_item_id, work_state, reported_at}]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn item_priors(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let item = item_for(&state, &caller, id).await?;
    let priors = state.catalog.priors(id).await?;
    caller
        .audit(
            &state,
            "priors-read",
            Some(("study", &item.study_instance_uid)),
            "success",
        )
        .await?;
    Ok(Json(json!({ "priors": priors })))
}

// ---------------------------------------------------------------- SSE

/// Server-sent events of worklist changes the caller may see (`event:` the kind, `data:`
/// `{id, kind, work_item_id, pool_id, at, actor, detail}`, `id:` for `Last-Event-ID`).
#[utoipa::path(get, path = "/api/v1/worklist/events", tag = "worklist",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, content_type = "text/event-stream", description = "The stream"), (status = 403, body = crate::dto::ErrorBody)))]
async fn event_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller
        .require(&state, alliance(caller.principal.alliance_id))
        .await?;
    let me = user_id(&caller)?;
    let reader = matches!(caller.role(), Some(Role::Reader | Role::SeniorReader));
    let pools: Vec<i64> = state
        .catalog
        .memberships(me)
        .await?
        .into_iter()
        .map(|m| m.pool_id)
        .collect();
    let alliance_id = caller.principal.alliance_id;
    let all = caller.is_superadmin();
    caller
        .audit(&state, "worklist-stream", None, "success")
        .await?;
    let visible = move |e: WorkEvent| {
        let ok = all
            || (e.alliance_id == alliance_id
                && (!reader || e.pool_id.is_none_or(|p| pools.contains(&p))));
        std::future::ready(ok.then_some(e))
    };
    event_sse(&state, &headers, visible).await
}

/// A stream of worklist events for one client: the backlog after `Last-Event-ID`, then
/// live events, each passed through `visible` (which may look things up); `resync` when the
/// client lagged behind; it ends at shutdown.
pub(crate) async fn event_sse<V, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    mut visible: V,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + use<V, Fut>>, ApiError>
where
    V: FnMut(WorkEvent) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<WorkEvent>> + Send,
{
    let mut rx = state.worklist.events.subscribe();
    let mut closing = state.worklist.closing.subscribe();
    let last: Option<i64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    // a client away for longer than this many events is told to reload (`resync`) after
    // them rather than resuming with a hole
    const BACKLOG_MAX: i64 = 1000;
    let backlog = match last {
        Some(after) => state.catalog.events_after(after, BACKLOG_MAX).await?,
        None => Vec::new(),
    };
    let truncated = backlog.len() as i64 >= BACKLOG_MAX;
    let stream = async_stream(move |tx| async move {
        // The highest id sent (or resumed from): events published in order at or below it
        // were sent already, by the backlog or before the resume. A late event (committed
        // after higher ids, `EventCursor`) is passed on whatever its id, unless the backlog
        // had it (committed before the backlog was read).
        let mut seen = last.unwrap_or(0);
        let mut from_backlog: std::collections::HashSet<i64> =
            backlog.iter().map(|e| e.id).collect();
        for e in backlog {
            seen = seen.max(e.id);
            if let Some(e) = visible(e).await
                && tx.send(sse_event(&e)).await.is_err()
            {
                return;
            }
        }
        if truncated && tx.send(resync_event()).await.is_err() {
            return;
        }
        loop {
            let next = tokio::select! {
                e = rx.recv() => e,
                _ = closing.wait_for(|c| *c) => return,
            };
            match next {
                Ok(Published { event: e, late }) => {
                    if late {
                        if from_backlog.remove(&e.id) {
                            continue;
                        }
                    } else if e.id <= seen {
                        continue;
                    } else {
                        seen = e.id;
                    }
                    if let Some(e) = visible(e).await
                        && tx.send(sse_event(&e)).await.is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // tell the client to reload rather than silently missing events
                    if tx.send(resync_event()).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// "Reload: events were missed" (a lagging client, a backlog longer than is replayed).
fn resync_event() -> Event {
    Event::default().event("resync").data("{}")
}

fn sse_event(e: &WorkEvent) -> Event {
    let detail: Value = e
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .data(
            json!({
                "id": e.id,
                "kind": e.kind,
                "work_item_id": e.work_item_id,
                "pool_id": e.pool_id,
                "actor": e.actor,
                "detail": detail,
                "at": crate::auth::rfc3339(e.created_at),
            })
            .to_string(),
        )
}

/// A stream fed by a task through a bounded channel.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok)))
}

// ---------------------------------------------------------------- notifications

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct NotificationQuery {
    pub unread: Option<bool>,
    pub limit: Option<i64>,
}

/// The caller's notifications (SLA warnings and breaches, reassignments, new images …).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "worklist", params(NotificationQuery),
    responses((status = 200, description = "{notifications:[{id, work_item_id, event_id, kind, created_at, read_at}]}")))]
async fn list_notifications(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NotificationQuery>,
) -> Result<Json<Value>, ApiError> {
    let me = user_id(&caller)?;
    let list = state
        .catalog
        .list_notifications(me, q.unread.unwrap_or(false), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(json!({ "notifications": list })))
}

/// Mark a notification read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = crate::dto::ErrorBody)))]
async fn read_notification(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let me = user_id(&caller)?;
    state
        .catalog
        .mark_notification_read(me, id, state.worklist.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- webhooks

/// Webhooks of an alliance.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "worklist", params(AllianceQuery),
    responses((status = 200, description = "{webhooks:[{id, url, events, enabled}]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AllianceQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = q.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    Ok(Json(
        json!({ "webhooks": state.catalog.list_webhooks(Some(a)).await? }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    pub alliance_id: Option<i64>,
    pub url: String,
    /// The HMAC-SHA256 key (at least 16 characters), shared with the receiver.
    pub secret: String,
    /// Event kinds (`sla-breach`, `queued` …) or `["*"]`.
    pub events: Vec<String>,
}

/// Register a webhook (an SMS gateway, a WeCom/DingTalk bot relay …).
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "worklist", request_body = WebhookRequest,
    responses((status = 201, description = "The webhook"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn add_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<WebhookRequest>,
) -> Result<Response, ApiError> {
    let a = req.alliance_id.unwrap_or(caller.principal.alliance_id);
    caller.require(&state, alliance(a)).await?;
    let url = req.url.trim();
    if let Err(message) = state.worklist.settings.webhook_allow.check_url(url).await {
        return Err(ApiError::Coded {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "webhook-target-refused",
            message,
        });
    }
    let r = state
        .catalog
        .add_webhook(&NewWebhook {
            alliance_id: a,
            url: req.url.clone(),
            secret: req.secret.clone(),
            events: req.events.clone(),
        })
        .await;
    let hook = caller
        .audited(&state, "webhook.add", Some(("webhook", req.url.trim())), r)
        .await?;
    Ok((StatusCode::CREATED, Json(json!(hook))).into_response())
}

async fn webhook_for(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    let hook = state
        .catalog
        .get_webhook(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("webhook {id}")))?;
    caller
        .require_found(state, alliance(hook.alliance_id), || {
            format!("webhook {id}")
        })
        .await
}

/// Disable a webhook (its pending deliveries are dead-lettered; history is kept).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    webhook_for(&state, &caller, id).await?;
    let r = state.catalog.delete_webhook(id).await;
    caller
        .audited(
            &state,
            "webhook.delete",
            Some(("webhook", &id.to_string())),
            r,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead` (the dead-letter list).
    pub state: Option<String>,
}

/// Deliveries of a webhook, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "worklist", params(("id" = i64, Path), DeliveryQuery),
    responses((status = 200, description = "{deliveries:[{id, event_id, kind, state, attempts, next_attempt_at, last_status, last_error}]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<Value>, ApiError> {
    webhook_for(&state, &caller, id).await?;
    let list = state
        .catalog
        .list_deliveries(id, q.state.as_deref())
        .await?;
    Ok(Json(json!({ "deliveries": list })))
}

/// Send a dead-lettered delivery again.
#[utoipa::path(post, path = "/api/v1/webhooks/deliveries/{id}/retry", tag = "worklist", params(("id" = i64, Path)),
    responses((status = 202), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn retry_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let d = state
        .catalog
        .get_delivery(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("delivery {id}")))?;
    webhook_for(&state, &caller, d.webhook_id)
        .await
        .map_err(|e| match e {
            // the same answer as for no such delivery
            ApiError::NotFound(_) => ApiError::NotFound(format!("delivery {id}")),
            e => e,
        })?;
    let r = state.catalog.retry_delivery(id, state.worklist.now()).await;
    caller
        .audited(
            &state,
            "webhook.retry",
            Some(("delivery", &id.to_string())),
            r,
        )
        .await?;
    Ok(StatusCode::ACCEPTED)
}

// ---------------------------------------------------------------- jobs

/// An audit entry by the worklist itself.
async fn audit_system(state: &AppState, action: &str, item: &WorkItem) {
    let entry = NewAuditEntry {
        actor_kind: "system".to_owned(),
        actor: "worklist".to_owned(),
        institution_id: item.institution_id,
        action: action.to_owned(),
        object_kind: Some("work_item".to_owned()),
        object_id: Some(item.id.to_string()),
        outcome: "success".to_owned(),
        client: None,
        request_id: None,
    };
    if let Err(e) = state.catalog.append_audit(&entry).await {
        tracing::error!(error = %e, action, "audit of a worklist change failed");
    }
}

async fn audit_sweep(state: &AppState, sweep: &Sweep) {
    for (action, items) in [
        ("work-queued", &sweep.ready),
        ("work-lease-expired", &sweep.expired),
        ("work-sla-warning", &sweep.warned),
        ("work-sla-breach", &sweep.breached),
        ("work-new-images", &sweep.new_images),
    ] {
        for item in items {
            audit_system(state, action, item).await;
        }
    }
}

/// One sweep, if this process holds the sweep's job lease (so N replicas take turns; each
/// change is conditional anyway, so a lost lease never makes anything happen twice).
pub async fn sweep_once(state: &AppState) -> Result<Sweep, ApiError> {
    let now = state.worklist.now();
    let ttl = i64::try_from(state.worklist.settings.tick.as_secs().max(1) * 10).unwrap_or(10);
    if !state
        .catalog
        .try_job_lease("worklist-sweep", &state.worklist.holder, now, ttl)
        .await?
    {
        return Ok(Sweep::default());
    }
    let sweep = state
        .catalog
        .sweep(now, &state.worklist.settings.ready, 500)
        .await?;
    audit_sweep(state, &sweep).await;
    Ok(sweep)
}

/// Where the event fan-out is: the highest id read, and the ids below it not seen yet.
/// On PostgreSQL an event's id is drawn when its transaction inserts it, not when it
/// commits: a long transaction (a sweep's batch) can commit event 100 after a claim's 101
/// was read. Such holes are asked for again until they turn up or, after
/// [`EventCursor::PATIENCE`], are taken for rolled-back transactions (a sequence does not
/// give its numbers back). SQLite commits in id order and leaves none.
struct EventCursor {
    last: i64,
    gaps: std::collections::BTreeMap<i64, std::time::Instant>,
}

impl EventCursor {
    const PATIENCE: Duration = Duration::from_secs(30);
    /// A jump larger than this is not tracked id by id (a restore, a sequence reset).
    const MAX_GAP: i64 = 1000;

    fn new(last: i64) -> Self {
        Self {
            last,
            gaps: Default::default(),
        }
    }

    /// The holes still worth asking for (the expired ones are forgotten).
    fn missing(&mut self, now: std::time::Instant) -> Vec<i64> {
        self.gaps
            .retain(|_, since| now.saturating_duration_since(*since) < Self::PATIENCE);
        self.gaps.keys().copied().take(500).collect()
    }

    /// Events read (in id order, or late ones): those to pass on, each once.
    fn accept(&mut self, events: Vec<WorkEvent>, now: std::time::Instant) -> Vec<Published> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            if e.id > self.last {
                if e.id - self.last <= Self::MAX_GAP {
                    for hole in self.last + 1..e.id {
                        self.gaps.insert(hole, now);
                    }
                }
                self.last = e.id;
                out.push(Published {
                    event: e,
                    late: false,
                });
            } else if self.gaps.remove(&e.id).is_some() {
                out.push(Published {
                    event: e,
                    late: true,
                });
            }
        }
        out
    }
}

/// Run the worklist's periodic jobs until the future is dropped: the sweep, the event
/// fan-out to SSE streams, and webhook delivery.
pub async fn run_jobs(state: AppState) {
    let sweeper = {
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(state.worklist.settings.tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = sweep_once(&state).await {
                    tracing::warn!(error = %e, "worklist sweep failed");
                }
            }
        }
    };
    let fanout = {
        let state = state.clone();
        async move {
            let last = state.catalog.last_event_id().await.unwrap_or(0);
            let mut cursor = EventCursor::new(last);
            let mut every = tokio::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                let now = std::time::Instant::now();
                let missing = cursor.missing(now);
                if !missing.is_empty() {
                    match state.catalog.events_in(&missing).await {
                        Ok(late) => {
                            for e in cursor.accept(late, now) {
                                let _ = state.worklist.events.send(e);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "reading worklist events failed"),
                    }
                }
                match state.catalog.events_after(cursor.last, 500).await {
                    Ok(events) => {
                        for e in cursor.accept(events, now) {
                            let _ = state.worklist.events.send(e);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "reading worklist events failed"),
                }
            }
        }
    };
    let deliverer = {
        let state = state.clone();
        async move {
            let client = match reqwest::Client::builder()
                .timeout(state.worklist.settings.webhook_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .dns_resolver(Arc::new(crate::outbound::GuardedResolver {
                    allow: state.worklist.settings.webhook_allow.clone(),
                }))
                .build()
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "no HTTP client: webhooks are not delivered");
                    return;
                }
            };
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                if let Err(e) = deliver_due(&state, &client).await {
                    tracing::warn!(error = %e, "webhook delivery failed");
                }
            }
        }
    };
    // reports: critical-value escalation and DICOM push-back to clinics' PACS
    let reports = {
        let state = state.clone();
        async move {
            let mut every = tokio::time::interval(state.worklist.settings.tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(e) = crate::reports::escalate_once(&state).await {
                    tracing::warn!(error = %e, "critical-value escalation failed");
                }
                if let Err(e) = crate::reports::push_once(&state).await {
                    tracing::warn!(error = %e, "report push-back failed");
                }
            }
        }
    };
    tokio::join!(sweeper, fanout, deliverer, reports);
}

/// Seconds to wait before attempt `n + 1` after `n` failed attempts: 10 s, 30 s, 2 min,
/// 10 min, 30 min, 1 h, then every 2 h.
pub fn retry_delay_s(failed_attempts: i64) -> i64 {
    match failed_attempts {
        ..=1 => 10,
        2 => 30,
        3 => 120,
        4 => 600,
        5 => 1_800,
        6 => 3_600,
        _ => 7_200,
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (as Stripe's scheme):
/// the receiver recomputes it and rejects stale timestamps.
pub fn signature(secret: &str, unix_s: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(unix_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={unix_s},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Send the due webhook deliveries this process could lock.
pub async fn deliver_due(state: &AppState, client: &reqwest::Client) -> Result<usize, ApiError> {
    let now = state.worklist.now();
    let due = state.catalog.take_due_deliveries(now, 20, 60).await?;
    let n = due.len();
    for (d, hook) in due {
        let unix_s = now.div_euclid(1_000_000);
        let allow = &state.worklist.settings.webhook_allow;
        if let Err(refused) = crate::outbound::check_literal(allow, &hook.url) {
            // a literal internal address (registered before the guard, or the list
            // shrank): never sent, dead at once
            tracing::warn!(webhook = hook.id, delivery = d.id, "webhook target refused");
            let result = AttemptResult::Failed {
                status: None,
                error: refused,
                retry_at: None,
            };
            state
                .catalog
                .finish_delivery(d.id, &result, state.worklist.now())
                .await?;
            continue;
        }
        let sent = client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-dxhub-event", &d.kind)
            .header("x-dxhub-delivery", d.id.to_string())
            .header(
                "x-dxhub-signature",
                signature(&hook.secret, unix_s, &d.payload),
            )
            .body(d.payload.clone())
            .send()
            .await;
        let attempts = d.attempts + 1;
        let give_up = attempts >= state.worklist.settings.webhook_max_attempts;
        let retry_at = (!give_up).then(|| now + retry_delay_s(attempts) * 1_000_000);
        let result = match sent {
            Ok(r) if r.status().is_success() => AttemptResult::Delivered {
                status: i64::from(r.status().as_u16()),
            },
            Ok(r) => AttemptResult::Failed {
                status: Some(i64::from(r.status().as_u16())),
                error: format!("HTTP {}", r.status()),
                retry_at,
            },
            Err(e) => AttemptResult::Failed {
                status: None,
                error: e.to_string(),
                retry_at,
            },
        };
        if let AttemptResult::Failed {
            error, retry_at, ..
        } = &result
        {
            tracing::warn!(webhook = hook.id, delivery = d.id, attempts, %error, dead = retry_at.is_none(), "webhook delivery failed");
        }
        state
            .catalog
            .finish_delivery(d.id, &result, state.worklist.now())
            .await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64) -> WorkEvent {
        WorkEvent {
            id,
            alliance_id: 1,
            work_item_id: 1,
            pool_id: None,
            kind: "claimed".into(),
            actor: None,
            detail: None,
            created_at: 0,
        }
    }

    fn ids(v: &[Published]) -> Vec<i64> {
        v.iter().map(|p| p.event.id).collect()
    }

    /// An event committed after a higher id was read is passed on when it turns up, once;
    /// a hole that never fills (a rolled-back transaction) is given up after the patience.
    #[test]
    fn the_fan_out_passes_on_events_committed_out_of_order() {
        let t0 = std::time::Instant::now();
        let mut c = EventCursor::new(99);
        assert!(c.missing(t0).is_empty());
        // 101 and 103 committed, 100 and 102 still in their transactions
        let first = c.accept(vec![event(101), event(103)], t0);
        assert_eq!(ids(&first), [101, 103]);
        assert!(first.iter().all(|p| !p.late));
        assert_eq!(c.last, 103);
        assert_eq!(c.missing(t0), [100, 102]);
        // 100 commits; asked for again, it is passed on, once, marked late
        let late = c.accept(vec![event(100)], t0);
        assert_eq!(ids(&late), [100]);
        assert!(late[0].late);
        assert!(c.accept(vec![event(100), event(101)], t0).is_empty());
        assert_eq!(c.missing(t0), [102]);
        // 102 never comes
        let later = t0 + EventCursor::PATIENCE + Duration::from_secs(1);
        assert!(c.missing(later).is_empty());
        assert!(c.accept(vec![event(102)], later).is_empty());
        // a jump too large to track id by id
        assert_eq!(ids(&c.accept(vec![event(5000)], later)), [5000]);
        assert!(c.missing(later).is_empty());
    }

    #[test]
    fn rfc3339_round_trip() {
        let t = 1_795_399_200_000_000; // 2026-11-23T02:00:00Z
        assert_eq!(parse_rfc3339("2026-11-23T02:00:00Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-23T10:00:00+08:00"), Some(t));
        assert_eq!(
            parse_rfc3339("2026-11-23T10:00:00.5+08:00"),
            Some(t + 500_000)
        );
        assert_eq!(parse_rfc3339("2026-11-23"), None);
        assert_eq!(parse_rfc3339(&crate::auth::rfc3339(t)), Some(t));
        assert_eq!(shanghai(t), "2026-11-23T10:00:00+08:00");
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 shape: key "Jefe", data "what do ya want for nothing?"
        // here with our "t.body" framing: "1.what do ya want for nothing?"
        let sig = signature("Jefe", 1, "what do ya want for nothing?");
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1.what do ya want for nothing?");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(sig, format!("t=1,v1={want}"));
        assert_ne!(signature("Jefe", 2, "what do ya want for nothing?"), sig);
    }

    #[test]
    fn retries_back_off() {
        let delays: Vec<i64> = (1..=8).map(retry_delay_s).collect();
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[0], 10);
    }
}
