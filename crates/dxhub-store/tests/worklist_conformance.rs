#![allow(clippy::unwrap_used)]
//! The worklist part of the catalog conformance suite (reader pools, routing rules, ready
//! detection, claims and leases, turnaround clocks and escalation, webhooks, job leases,
//! priors), run on every backend exactly as `catalog_conformance.rs`: SQLite always,
//! PostgreSQL when `DXHUB_TEST_PG_URL` names a server. Each test gets a fresh database.
//!
//! Nothing sleeps: every time-dependent call takes an explicit `now` (epoch µs). Studies
//! get `updated_at` from the wall clock when their instances are indexed, so the times
//! passed here are based on the real clock (`SystemClock`) read after the inserts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dxhub_core::worklist::{
    Clock, DEFAULT_ROUTES, Priority, RuleMatch, SystemClock, TimeWindow, US_PER_MIN, US_PER_S,
    WorkState, is_cn_resident_id,
};
use dxhub_core::{InstitutionLevel, Role};
use dxhub_store::catalog::Error;
use dxhub_store::report::{
    CriticalFilter, DraftSpec, PacsTarget, PushResult, ReportDefaults, ReportFilter, Signature,
    VersionBody,
};
use dxhub_store::worklist::{
    Actor, AttemptResult, Claim, MemberSpec, NewPool, NewWebhook, Pool, PoolUpdate, ReadySettings,
    Refusal, RuleSpec, WorkFilter, WorkItem,
};
use dxhub_store::{
    Alliance, Catalog, InstanceAttrs, Institution, NewEcg, NewInstance, NewInstitution, NewUser,
    PatientAttrs, SeriesAttrs, SqlCatalog, StudyAttrs, User, WorklistStore,
};

mod common;
use common::{run_postgres, run_sqlite};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(|c, _url| async move { super::suite::$name(c).await })
                        .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(|c, _url| async move { super::suite::$name(c).await })
                        .await;
                }
            )*
        }
    };
}

conformance!(
    defaults_route_by_modality,
    rule_ordering_and_conditions,
    stable_study_detection,
    lease_expiry_and_renewal,
    expiry_races_the_holders_claim,
    next_orders_by_priority_then_due,
    per_reader_maximum,
    patient_kept_with_one_reader,
    escalation_fires_once,
    ecg_stemi_is_stat,
    concurrent_claims_exactly_once,
    concurrent_claims_keep_patients_together,
    one_readers_tabs_stay_within_the_maximum,
    webhooks_deliveries,
    priors_match_identity,
    readers_reach_routed_studies_and_priors,
    report_transitions_and_new_images,
    report_lifecycle_moves_the_work_item,
    autosave_races_submit_and_return,
    critical_values_escalate_at_the_limit,
    critical_values_alert_the_clinic_users_on_duty,
    recognition_and_pushes,
);

// ---------------------------------------------------------------- helpers

/// A valid PRC resident identity number (GB 11643 check character `X`).
const RID: &str = "11010519491231002X";
/// 2026-11-23 02:00 UTC: Monday 10:00 in Asia/Shanghai.
const MON_10H: i64 = 1_795_399_200 * US_PER_S;
const CT_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2";
const ECG_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
const LEASE_S: i64 = 300;

fn wall() -> i64 {
    SystemClock.now_us()
}

const fn secs(n: i64) -> i64 {
    n * US_PER_S
}

const fn mins(n: i64) -> i64 {
    n * US_PER_MIN
}

fn settings() -> ReadySettings {
    ReadySettings::default()
}

fn uid(n: u32) -> String {
    format!("1.2.826.0.1.3680043.10.9.{n}")
}

fn hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn actor(u: &User) -> Actor {
    Actor::user(u.id, &u.login)
}

/// One alliance "A" (county → township → village), its default pools, three readers who
/// are members of every default pool (max 5 open claims each) and a group admin.
struct Fx {
    alliance: Alliance,
    county: Institution,
    town: Institution,
    village: Institution,
    ecg: Pool,
    radiology: Pool,
    ultrasound: Pool,
    /// Readers.
    ra: User,
    rb: User,
    /// A senior reader.
    sr: User,
    /// The alliance's group admin.
    ga: User,
}

impl Fx {
    fn pools(&self) -> [&Pool; 3] {
        [&self.ecg, &self.radiology, &self.ultrasound]
    }
}

fn institution(
    alliance: &str,
    name: &str,
    level: InstitutionLevel,
    parent: Option<&str>,
) -> NewInstitution {
    NewInstitution {
        alliance: alliance.into(),
        name: name.into(),
        level,
        parent: parent.map(Into::into),
        population: None,
    }
}

async fn add_user(c: &dyn Catalog, institution: &str, login: &str, role: Role) -> User {
    c.add_user(&NewUser {
        institution: institution.into(),
        login: login.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${login}"),
    })
    .await
    .expect("user")
}

async fn pool_named(c: &dyn Catalog, alliance_id: i64, name: &str) -> Pool {
    c.list_pools(Some(alliance_id))
        .await
        .expect("pools")
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("pool {name} of alliance {alliance_id}"))
}

async fn member(c: &dyn Catalog, pool: &Pool, user: &User, max: i64) {
    c.set_pool_member(
        pool.id,
        user.id,
        &MemberSpec {
            max_open_claims: max,
            ..MemberSpec::default()
        },
    )
    .await
    .expect("pool member");
}

async fn fixture(c: &dyn Catalog) -> Fx {
    let alliance = c.add_alliance("A").await.expect("alliance");
    let county = c
        .add_institution(&institution("A", "County", InstitutionLevel::County, None))
        .await
        .expect("county");
    let town = c
        .add_institution(&institution(
            "A",
            "Town",
            InstitutionLevel::Township,
            Some("County"),
        ))
        .await
        .expect("town");
    let village = c
        .add_institution(&institution(
            "A",
            "Village",
            InstitutionLevel::Village,
            Some("Town"),
        ))
        .await
        .expect("village");
    let ra = add_user(c, "County", "ra", Role::Reader).await;
    let rb = add_user(c, "County", "rb", Role::Reader).await;
    let sr = add_user(c, "County", "sr", Role::SeniorReader).await;
    let ga = add_user(c, "County", "ga", Role::GroupAdmin).await;
    let fx = Fx {
        ecg: pool_named(c, alliance.id, "ecg").await,
        radiology: pool_named(c, alliance.id, "radiology").await,
        ultrasound: pool_named(c, alliance.id, "ultrasound").await,
        alliance,
        county,
        town,
        village,
        ra,
        rb,
        sr,
        ga,
    };
    for pool in fx.pools() {
        for user in [&fx.ra, &fx.rb, &fx.sr] {
            member(c, pool, user, 5).await;
        }
    }
    fx
}

/// A second alliance "B" with one county hospital: `(alliance, institution, radiology pool)`.
async fn other_alliance(c: &dyn Catalog) -> (Alliance, Institution, Pool) {
    let b = c.add_alliance("B").await.expect("alliance B");
    let inst = c
        .add_institution(&institution(
            "B",
            "B County",
            InstitutionLevel::County,
            None,
        ))
        .await
        .expect("B county");
    let pool = pool_named(c, b.id, "radiology").await;
    (b, inst, pool)
}

/// What a study looks like: one series with one instance.
struct StudySpec<'a> {
    institution_id: i64,
    uid: String,
    modality: &'a str,
    patient_id: &'a str,
    body_part: Option<&'a str>,
}

fn study<'a>(
    institution_id: i64,
    uid: String,
    modality: &'a str,
    patient_id: &'a str,
) -> StudySpec<'a> {
    StudySpec {
        institution_id,
        uid,
        modality,
        patient_id,
        body_part: None,
    }
}

/// Index the study's instance (its `updated_at` is the wall clock now); the instance id.
async fn add_study(c: &dyn Catalog, s: &StudySpec<'_>) -> i64 {
    add_instance(c, s, 1).await
}

/// Index instance `n` of the study's series.
async fn add_instance(c: &dyn Catalog, s: &StudySpec<'_>, n: u32) -> i64 {
    let sop = format!("{}.1.{n}", s.uid);
    let series = format!("{}.1", s.uid);
    let sha256 = hash(&format!("file:{sop}"));
    let sop_class = if s.modality == "ECG" {
        ECG_SOP_CLASS
    } else {
        CT_SOP_CLASS
    };
    c.insert_instance(&NewInstance {
        institution_id: Some(s.institution_id),
        patient: PatientAttrs {
            patient_id: s.patient_id.into(),
            issuer_of_patient_id: None,
            patient_name: Some("DOE^JOHN".into()),
            patient_birth_date: Some("19491231".into()),
            patient_sex: Some("M".into()),
        },
        study: StudyAttrs {
            study_instance_uid: s.uid.clone(),
            study_date: Some("20261122".into()),
            study_time: Some("101500".into()),
            accession_number: Some(format!("ACC{}", &s.uid[s.uid.len() - 3..])),
            body_part_examined: s.body_part.map(Into::into),
            ..Default::default()
        },
        series: SeriesAttrs {
            series_instance_uid: series,
            modality: Some(s.modality.into()),
            series_number: Some(1),
            body_part_examined: s.body_part.map(Into::into),
            ..Default::default()
        },
        instance: InstanceAttrs {
            sop_instance_uid: sop.clone(),
            sop_class_uid: sop_class.into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            instance_number: Some(i64::from(n)),
            number_of_frames: None,
            size_bytes: 1000,
            blob_key: format!("studies/{}/{}.dcm", s.uid, &sha256[..16]),
            dataset_hash: hash(&format!("{sop}#0")),
            sha256,
            source_ae: Some("MOD01".into()),
            received_at: wall(),
            metadata: None,
        },
    })
    .await
    .expect("insert instance")
    .instance_id()
}

/// An ECG record of the study's instance (`critical`: STEMI …).
async fn add_ecg(c: &dyn Catalog, s: &StudySpec<'_>, instance_id: i64, critical: bool) {
    c.insert_ecg(
        &NewEcg {
            institution_id: Some(s.institution_id),
            device_id: None,
            instance_id,
            study_instance_uid: s.uid.clone(),
            sop_instance_uid: format!("{}.1.1", s.uid),
            format: "dicom".into(),
            content_sha256: hash(&format!("ecg:{}", s.uid)),
            original_key: format!("studies/{}/ecg.dcm", s.uid),
            original_size: 4096,
            leads: r#"["I","II","III","aVR","aVL","aVF","V1","V2","V3","V4","V5","V6"]"#.into(),
            sample_rate_hz: 500.0,
            samples_per_lead: 5000,
            acquired_at: None,
            analysis: format!(r#"{{"stemi":{critical}}}"#),
            critical,
        },
        None,
    )
    .await
    .expect("insert ecg");
}

/// Route the study now; it must create a work item.
async fn ready(c: &dyn Catalog, uid: &str, at: i64) -> WorkItem {
    match c
        .make_ready(uid, at, &settings())
        .await
        .expect("make_ready")
    {
        Some(Some(item)) => item,
        other => panic!("make_ready({uid}) created no work item: {other:?}"),
    }
}

async fn item(c: &dyn Catalog, id: i64) -> WorkItem {
    c.get_work_item(id).await.expect("get").expect("work item")
}

fn claimed(claim: Claim) -> WorkItem {
    match claim {
        Claim::Claimed(item) => *item,
        Claim::Refused(r) => panic!("expected a claim, refused: {r:?}"),
    }
}

async fn next(c: &dyn Catalog, u: &User, at: i64) -> WorkItem {
    claimed(
        c.claim_next(&actor(u), at, LEASE_S)
            .await
            .expect("claim_next"),
    )
}

async fn kinds(c: &dyn Catalog, item_id: i64) -> Vec<String> {
    c.events_of_item(item_id)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// `(work item, kind)` of the user's notifications.
async fn notes(c: &dyn Catalog, user: &User) -> Vec<(i64, String)> {
    c.list_notifications(user.id, false, 1000)
        .await
        .expect("notifications")
        .into_iter()
        .map(|n| (n.work_item_id, n.kind))
        .collect()
}

fn spec(
    name: &str,
    position: i64,
    conditions: RuleMatch,
    pool: &Pool,
    priority: Priority,
    sla: i64,
) -> RuleSpec {
    RuleSpec {
        position,
        name: name.into(),
        enabled: true,
        conditions,
        pool_id: pool.id,
        priority,
        sla_minutes: sla,
    }
}

async fn add_pool(c: &dyn Catalog, alliance_id: i64, name: &str) -> Pool {
    c.add_pool(&NewPool {
        alliance_id,
        name: name.into(),
        label: name.into(),
        escalation_pool_id: None,
    })
    .await
    .expect("add pool")
}

/// The id of the rule the study would match at `at` (dry run).
async fn routed(c: &dyn Catalog, uid: &str, at: i64) -> Option<i64> {
    c.dry_run(uid, at)
        .await
        .expect("dry run")
        .expect("study exists")
        .rule
        .map(|r| r.id)
}

// ---------------------------------------------------------------- the suite

mod suite {
    use super::*;

    /// A new alliance starts with the three default pools and rules; CT → radiology
    /// (routine, 240 min), US → ultrasound, OT → ready without a work item; the dry run
    /// changes nothing.
    pub async fn defaults_route_by_modality(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let names: Vec<String> = c
            .list_pools(Some(fx.alliance.id))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["ecg", "radiology", "ultrasound"]);
        let rules = c.list_rules(fx.alliance.id).await.unwrap();
        assert_eq!(rules.len(), DEFAULT_ROUTES.len());
        for (rule, (pool, _, name, modalities, priority, sla)) in rules.iter().zip(DEFAULT_ROUTES) {
            assert_eq!(rule.name, name);
            assert!(rule.enabled);
            assert_eq!(rule.alliance_id, fx.alliance.id);
            assert_eq!(rule.pool_id, pool_named(c, fx.alliance.id, pool).await.id);
            assert_eq!(rule.conditions.modalities, modalities.to_vec());
            assert_eq!((rule.priority, rule.sla_minutes), (priority, sla));
        }
        assert!(rules.windows(2).all(|w| w[0].position < w[1].position));
        assert_eq!(
            (rules[0].priority, rules[0].sla_minutes, rules[0].pool_id),
            (Priority::Urgent, 30, fx.ecg.id)
        );

        let ct = study(fx.village.id, uid(1), "CT", "P1");
        let us = study(fx.village.id, uid(2), "US", "P2");
        let ot = study(fx.village.id, uid(3), "OT", "P3");
        for s in [&ct, &us, &ot] {
            add_study(c, s).await;
        }
        let t = wall();

        // the dry run tells the matching rule and changes nothing
        let dry = c.dry_run(&ct.uid, t).await.unwrap().expect("study");
        assert_eq!(dry.alliance_id, Some(fx.alliance.id));
        assert_eq!(dry.rule.as_ref().map(|r| r.id), Some(rules[1].id));
        assert_eq!(dry.priority, Some(Priority::Routine));
        assert!(!dry.ecg_critical);
        assert_eq!(dry.facts.modalities, ["CT"]);
        assert_eq!(dry.facts.institution_id, Some(fx.village.id));
        assert_eq!(dry.facts.level, Some(InstitutionLevel::Village));
        assert_eq!(dry.facts.sop_classes, [CT_SOP_CLASS]);
        let ot_dry = c.dry_run(&ot.uid, t).await.unwrap().expect("study");
        assert!(ot_dry.rule.is_none() && ot_dry.priority.is_none());
        assert!(c.dry_run(&uid(999), t).await.unwrap().is_none());
        assert!(c.work_item_of_study(&ct.uid).await.unwrap().is_none());
        assert_eq!(c.last_event_id().await.unwrap(), 0);

        let at = t + secs(5);
        let item = ready(c, &ct.uid, at).await;
        assert_eq!(item.pool_id, Some(fx.radiology.id));
        assert_eq!(item.rule_id, Some(rules[1].id));
        assert_eq!(item.priority, Priority::Routine);
        assert_eq!(item.state, WorkState::Queued);
        assert_eq!(item.sla_minutes, 240);
        assert_eq!(item.ready_at, at);
        assert_eq!(item.due_at, at + mins(240));
        assert_eq!(item.warn_at, at + mins(240) * 8 / 10);
        assert_eq!(item.modality.as_deref(), Some("CT"));
        assert_eq!(item.alliance_id, fx.alliance.id);
        assert_eq!(item.institution_id, Some(fx.village.id));
        assert_eq!(item.institution_name.as_deref(), Some("Village"));
        assert_eq!(item.patient_id.as_deref(), Some("P1"));
        assert_eq!(item.num_instances, 1);
        assert!(item.claimed_by.is_none() && !item.critical && item.identity_hash.is_some());
        assert_eq!(kinds(c, item.id).await, ["queued"]);
        assert_eq!(
            c.work_item_of_study(&ct.uid).await.unwrap(),
            Some(item.clone())
        );
        // ready already: nothing more
        assert_eq!(
            c.make_ready(&ct.uid, at + secs(1), &settings())
                .await
                .unwrap(),
            None
        );

        let us_item = ready(c, &us.uid, at).await;
        assert_eq!(us_item.pool_id, Some(fx.ultrasound.id));
        assert_eq!(
            (us_item.priority, us_item.due_at),
            (Priority::Routine, at + mins(240))
        );

        assert_eq!(
            c.make_ready(&ot.uid, at, &settings()).await.unwrap(),
            Some(None)
        );
        assert!(c.work_item_of_study(&ot.uid).await.unwrap().is_none());
        assert_eq!(
            c.make_ready(&ot.uid, at + secs(1), &settings())
                .await
                .unwrap(),
            None
        );
        assert!(matches!(
            c.make_ready(&uid(999), at, &settings()).await,
            Err(Error::NotFound(_))
        ));

        let listed = c
            .list_work_items(&WorkFilter {
                alliance_id: Some(fx.alliance.id),
                limit: 100,
                ..WorkFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
    }

    /// Rules by position, first match wins; each condition kind; disabled rules are
    /// skipped; update and delete; invalid rules are refused.
    pub async fn rule_ordering_and_conditions(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let a = fx.alliance.id;
        let special = add_pool(c, a, "special").await;
        let default_ct = c.list_rules(a).await.unwrap()[1].id;

        let r_village = c
            .add_rule(
                a,
                &RuleSpec {
                    enabled: false,
                    ..spec(
                        "village",
                        1,
                        RuleMatch {
                            institutions: vec![fx.village.id],
                            ..RuleMatch::default()
                        },
                        &special,
                        Priority::Stat,
                        15,
                    )
                },
            )
            .await
            .unwrap();
        assert!(!r_village.enabled);
        let r_chest = c
            .add_rule(
                a,
                &spec(
                    "township chest",
                    2,
                    RuleMatch {
                        levels: vec![InstitutionLevel::Township],
                        body_parts: vec!["chest".into()],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Urgent,
                    60,
                ),
            )
            .await
            .unwrap();
        let r_exam = c
            .add_rule(
                a,
                &spec(
                    "exam code",
                    3,
                    RuleMatch {
                        procedure_codes: vec!["EX-HEAD".into()],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Routine,
                    90,
                ),
            )
            .await
            .unwrap();
        let r_stat = c
            .add_rule(
                a,
                &spec(
                    "sender stat",
                    4,
                    RuleMatch {
                        sender_priorities: vec![Priority::Stat],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Routine,
                    20,
                ),
            )
            .await
            .unwrap();
        let r_county = c
            .add_rule(
                a,
                &spec(
                    "county ct",
                    5,
                    RuleMatch {
                        institutions: vec![fx.county.id],
                        modalities: vec!["CT".into()],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Urgent,
                    45,
                ),
            )
            .await
            .unwrap();
        let r_morning = c
            .add_rule(
                a,
                &spec(
                    "monday morning MR",
                    6,
                    RuleMatch {
                        modalities: vec!["MR".into()],
                        time: Some(TimeWindow {
                            from: "09:00".into(),
                            to: "11:00".into(),
                        }),
                        weekdays: vec![1],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Urgent,
                    120,
                ),
            )
            .await
            .unwrap();
        let listed: Vec<i64> = c
            .list_rules(a)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(
            listed[..6],
            [
                r_village.id,
                r_chest.id,
                r_exam.id,
                r_stat.id,
                r_county.id,
                r_morning.id
            ]
        );
        assert_eq!(c.get_rule(r_chest.id).await.unwrap(), Some(r_chest.clone()));

        let village_ct = study(fx.village.id, uid(10), "CT", "V1");
        let town_chest = StudySpec {
            body_part: Some("CHEST"),
            ..study(fx.town.id, uid(11), "CT", "T1")
        };
        let town_head = StudySpec {
            body_part: Some("HEAD"),
            ..study(fx.town.id, uid(12), "CT", "T2")
        };
        let county_ct = study(fx.county.id, uid(13), "CT", "C1");
        let village_mr = study(fx.village.id, uid(14), "MR", "V2");
        for s in [
            &village_ct,
            &town_chest,
            &town_head,
            &county_ct,
            &village_mr,
        ] {
            add_study(c, s).await;
        }
        let t = wall();

        // the disabled rule is skipped: the default CT rule
        assert_eq!(routed(c, &village_ct.uid, t).await, Some(default_ct));
        // level and body part (case-insensitive)
        assert_eq!(routed(c, &town_chest.uid, t).await, Some(r_chest.id));
        // a township head CT matches neither until the sender gives its exam code
        assert_eq!(routed(c, &town_head.uid, t).await, Some(default_ct));
        assert!(
            c.mark_study_complete(&town_head.uid, None, Some(" EX-HEAD "), t)
                .await
                .unwrap()
        );
        assert_eq!(routed(c, &town_head.uid, t).await, Some(r_exam.id));
        // institution + modality
        assert_eq!(routed(c, &county_ct.uid, t).await, Some(r_county.id));
        // the sender's priority: an earlier rule wins over the county rule
        assert!(
            c.mark_study_complete(&county_ct.uid, Some(Priority::Stat), None, t)
                .await
                .unwrap()
        );
        let dry = c.dry_run(&county_ct.uid, t).await.unwrap().unwrap();
        assert_eq!(dry.rule.map(|r| r.id), Some(r_stat.id));
        assert_eq!(dry.facts.sender_priority, Some(Priority::Stat));
        assert_eq!(
            dry.priority,
            Some(Priority::Stat),
            "the sender's STAT raises the rule's"
        );
        // time window and weekday, in Shanghai time
        assert_eq!(
            routed(c, &village_mr.uid, MON_10H).await,
            Some(r_morning.id)
        );
        assert_eq!(
            routed(c, &village_mr.uid, MON_10H + mins(61)).await,
            Some(default_ct)
        );
        assert_eq!(
            routed(c, &village_mr.uid, MON_10H + 86_400 * US_PER_S).await,
            Some(default_ct)
        );

        // enabling the village rule: first match wins
        let enabled = c
            .update_rule(
                r_village.id,
                &spec(
                    "village",
                    1,
                    RuleMatch {
                        institutions: vec![fx.village.id],
                        ..RuleMatch::default()
                    },
                    &special,
                    Priority::Stat,
                    15,
                ),
            )
            .await
            .unwrap();
        assert!(enabled.enabled);
        assert_eq!(routed(c, &village_ct.uid, t).await, Some(r_village.id));
        assert_eq!(
            routed(c, &village_mr.uid, MON_10H).await,
            Some(r_village.id)
        );
        // the exam-code rule moved before the chest rule takes the chest study once it has
        // that exam code
        assert!(
            c.mark_study_complete(&town_chest.uid, None, Some("EX-HEAD"), t)
                .await
                .unwrap()
        );
        assert_eq!(routed(c, &town_chest.uid, t).await, Some(r_chest.id));
        let mut moved = spec(
            "exam code",
            0,
            RuleMatch {
                procedure_codes: vec!["EX-HEAD".into()],
                ..RuleMatch::default()
            },
            &special,
            Priority::Routine,
            90,
        );
        c.update_rule(r_exam.id, &moved).await.unwrap();
        assert_eq!(routed(c, &town_chest.uid, t).await, Some(r_exam.id));
        // deleted rules no longer match
        c.delete_rule(r_exam.id).await.unwrap();
        assert_eq!(routed(c, &town_chest.uid, t).await, Some(r_chest.id));
        assert!(c.get_rule(r_exam.id).await.unwrap().is_none());
        assert!(matches!(
            c.delete_rule(r_exam.id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            c.update_rule(r_exam.id, &moved).await,
            Err(Error::NotFound(_))
        ));

        // the work item follows the matched rule
        let item = ready(c, &town_chest.uid, t + secs(1)).await;
        assert_eq!(item.rule_id, Some(r_chest.id));
        assert_eq!(item.pool_id, Some(special.id));
        assert_eq!((item.priority, item.sla_minutes), (Priority::Urgent, 60));
        assert_eq!(item.due_at, t + secs(1) + mins(60));
        let item = ready(c, &county_ct.uid, t + secs(1)).await;
        assert_eq!(
            (item.rule_id, item.priority),
            (Some(r_stat.id), Priority::Stat)
        );

        // invalid rules
        let bad_time = spec(
            "bad time",
            7,
            RuleMatch {
                time: Some(TimeWindow {
                    from: "25:00".into(),
                    to: "08:00".into(),
                }),
                ..RuleMatch::default()
            },
            &special,
            Priority::Routine,
            60,
        );
        assert!(matches!(
            c.add_rule(a, &bad_time).await,
            Err(Error::Invalid(_))
        ));
        let bad_day = spec(
            "bad day",
            7,
            RuleMatch {
                weekdays: vec![8],
                ..RuleMatch::default()
            },
            &special,
            Priority::Routine,
            60,
        );
        assert!(matches!(
            c.add_rule(a, &bad_day).await,
            Err(Error::Invalid(_))
        ));
        let no_sla = spec(
            "no sla",
            7,
            RuleMatch::default(),
            &special,
            Priority::Routine,
            0,
        );
        assert!(matches!(
            c.add_rule(a, &no_sla).await,
            Err(Error::Invalid(_))
        ));
        let no_name = spec(
            " ",
            7,
            RuleMatch::default(),
            &special,
            Priority::Routine,
            60,
        );
        assert!(matches!(
            c.add_rule(a, &no_name).await,
            Err(Error::Invalid(_))
        ));
        let (_, _, b_pool) = other_alliance(c).await;
        let foreign = spec(
            "foreign",
            7,
            RuleMatch::default(),
            &b_pool,
            Priority::Routine,
            60,
        );
        assert!(matches!(
            c.add_rule(a, &foreign).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.update_rule(r_chest.id, &foreign).await,
            Err(Error::Invalid(_))
        ));
        moved.pool_id = 999_999;
        assert!(matches!(
            c.add_rule(a, &moved).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.update_rule(r_chest.id, &bad_time).await,
            Err(Error::Invalid(_))
        ));
        // nothing of the refused rules was stored
        assert_eq!(c.list_rules(a).await.unwrap().len(), 3 + 5);
        assert_eq!(
            c.get_rule(r_chest.id).await.unwrap().unwrap().pool_id,
            special.id
        );
    }

    /// A study is ready when no instance arrived for `stable_after` (per institution), or
    /// at once when its sender marks it complete; each once.
    pub async fn stable_study_detection(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let s1 = study(fx.village.id, uid(20), "CT", "P1");
        add_study(c, &s1).await;
        let t0 = wall();

        let sw = c.sweep(t0 + secs(30), &settings(), 100).await.unwrap();
        assert!(sw.ready.is_empty(), "not stable yet: {:?}", sw.ready);
        assert!(c.work_item_of_study(&s1.uid).await.unwrap().is_none());

        let sw = c.sweep(t0 + secs(61), &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1);
        assert_eq!(sw.ready[0].study_instance_uid, s1.uid);
        assert_eq!(sw.ready[0].ready_at, t0 + secs(61));
        assert_eq!(sw.ready[0].pool_id, Some(fx.radiology.id));
        let sw = c.sweep(t0 + secs(62), &settings(), 100).await.unwrap();
        assert!(sw.ready.is_empty(), "a second sweep does nothing");
        assert_eq!(
            kinds(c, c.work_item_of_study(&s1.uid).await.unwrap().unwrap().id).await,
            ["queued"]
        );

        // the township waits 5 minutes
        c.set_stable_after(fx.town.id, Some(300)).await.unwrap();
        let s2 = study(fx.town.id, uid(21), "CT", "P2");
        add_study(c, &s2).await;
        let t1 = wall();
        let sw = c.sweep(t1 + secs(61), &settings(), 100).await.unwrap();
        assert!(
            sw.ready.is_empty(),
            "the township's own stable-after applies"
        );
        let sw = c.sweep(t1 + secs(299 - 1), &settings(), 100).await.unwrap();
        assert!(sw.ready.is_empty());
        let sw = c.sweep(t1 + secs(301), &settings(), 100).await.unwrap();
        assert_eq!(
            sw.ready
                .iter()
                .map(|i| &i.study_instance_uid)
                .collect::<Vec<_>>(),
            [&s2.uid]
        );
        // back to the default
        c.set_stable_after(fx.town.id, None).await.unwrap();
        let s2b = study(fx.town.id, uid(24), "CT", "P2b");
        add_study(c, &s2b).await;
        let t1b = wall();
        let sw = c.sweep(t1b + secs(61), &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1);
        assert_eq!(sw.ready[0].study_instance_uid, s2b.uid);
        // a configured default applies to institutions without their own
        let s2c = study(fx.county.id, uid(25), "CT", "P2c");
        add_study(c, &s2c).await;
        let t1c = wall();
        let slow = ReadySettings {
            stable_after_s: 120,
            ..settings()
        };
        assert!(
            c.sweep(t1c + secs(61), &slow, 100)
                .await
                .unwrap()
                .ready
                .is_empty()
        );
        assert_eq!(
            c.sweep(t1c + secs(121), &slow, 100)
                .await
                .unwrap()
                .ready
                .len(),
            1
        );

        // the sender says it is complete: ready at the next sweep, with its priority
        let s3 = study(fx.county.id, uid(22), "CT", "P3");
        add_study(c, &s3).await;
        let t2 = wall();
        assert!(
            c.mark_study_complete(&s3.uid, Some(Priority::Stat), None, t2)
                .await
                .unwrap()
        );
        assert!(
            !c.mark_study_complete(&uid(998), None, None, t2)
                .await
                .unwrap()
        );
        let sw = c.sweep(t2 + secs(1), &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1);
        let it = &sw.ready[0];
        assert_eq!(it.study_instance_uid, s3.uid);
        assert_eq!(it.ready_at, t2 + secs(1));
        assert_eq!(
            it.priority,
            Priority::Stat,
            "the sender's STAT raises the routine rule"
        );
        assert_eq!(
            it.rule_id,
            Some(c.list_rules(fx.alliance.id).await.unwrap()[1].id)
        );
        // a complete study without a sender priority keeps the rule's
        let s4 = study(fx.county.id, uid(23), "US", "P4");
        add_study(c, &s4).await;
        let t3 = wall();
        assert!(
            c.mark_study_complete(&s4.uid, None, None, t3)
                .await
                .unwrap()
        );
        let sw = c.sweep(t3 + secs(1), &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1);
        assert_eq!(sw.ready[0].priority, Priority::Routine);

        assert!(matches!(
            c.set_stable_after(fx.town.id, Some(-1)).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.set_stable_after(999_999, Some(10)).await,
            Err(Error::NotFound(_))
        ));
    }

    /// A lease is renewed by its holder only; an expired one returns the item to the
    /// queue once, telling the former holder.
    /// The sweep expiring a lease (and notifying its holder) while the holder claims the
    /// item again: one of them wins, neither fails (PostgreSQL: the claim's lock on the
    /// reader's row does not block the notification's foreign key).
    pub async fn expiry_races_the_holders_claim(c: Arc<SqlCatalog>) {
        let cat: &dyn Catalog = &*c;
        let fx = fixture(cat).await;
        let s = study(fx.village.id, uid(31), "CT", "P-EXP");
        add_study(cat, &s).await;
        let t = wall();
        let queued = ready(cat, &s.uid, t).await;
        let mut at = t + secs(1);
        for round in 0..30 {
            // held by ra, the lease running out at `at + LEASE_S`
            let held = item(cat, queued.id).await;
            if held.claimed_by != Some(fx.ra.id) {
                claimed(
                    cat.claim(queued.id, &actor(&fx.ra), at, LEASE_S)
                        .await
                        .unwrap(),
                );
            }
            at += secs(LEASE_S + 1);
            let (a, b): (Arc<dyn Catalog>, Arc<dyn Catalog>) = (c.clone(), c.clone());
            let ra = actor(&fx.ra);
            let id = queued.id;
            let sweep =
                tokio::spawn(async move { b.sweep(at, &settings(), 100).await.map(|_| ()) });
            let claim =
                tokio::spawn(async move { a.claim(id, &ra, at, LEASE_S).await.map(|_| ()) });
            for (what, r) in [
                ("sweep", sweep.await.unwrap()),
                ("claim", claim.await.unwrap()),
            ] {
                if let Err(e) = r {
                    panic!("round {round}, {what}: {e:?}");
                }
            }
            at += secs(1);
        }
    }

    pub async fn lease_expiry_and_renewal(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let s = study(fx.village.id, uid(30), "CT", "P1");
        add_study(c, &s).await;
        let t = wall();
        let queued = ready(c, &s.uid, t).await;

        let it = next(c, &fx.ra, t + secs(1)).await;
        assert_eq!(it.id, queued.id);
        assert_eq!(it.state, WorkState::Claimed);
        assert_eq!(it.claimed_by, Some(fx.ra.id));
        assert_eq!(it.claimed_by_login.as_deref(), Some("ra"));
        assert_eq!(it.claimed_at, Some(t + secs(1)));
        assert_eq!(it.lease_expires_at, Some(t + secs(1 + LEASE_S)));

        let renewed = c
            .renew_lease(it.id, fx.ra.id, t + secs(200), LEASE_S)
            .await
            .unwrap();
        assert_eq!(renewed.lease_expires_at, Some(t + secs(200 + LEASE_S)));
        assert!(matches!(
            c.renew_lease(it.id, fx.rb.id, t + secs(201), LEASE_S).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.renew_lease(999_999, fx.ra.id, t + secs(201), LEASE_S)
                .await,
            Err(Error::NotFound(_))
        ));
        // another reader cannot take it meanwhile
        assert_eq!(
            c.claim(it.id, &actor(&fx.rb), t + secs(202), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::NotClaimable {
                state: WorkState::Claimed
            })
        );

        // the first lease would have expired: the renewal keeps it
        let sw = c.sweep(t + secs(400), &settings(), 100).await.unwrap();
        assert!(sw.expired.is_empty());
        assert_eq!(item(c, it.id).await.state, WorkState::Claimed);

        let sw = c.sweep(t + secs(501), &settings(), 100).await.unwrap();
        assert_eq!(sw.expired.iter().map(|i| i.id).collect::<Vec<_>>(), [it.id]);
        let back = item(c, it.id).await;
        assert_eq!(back.state, WorkState::Queued);
        assert_eq!(
            (back.claimed_by, back.claimed_at, back.lease_expires_at),
            (None, None, None)
        );
        let k = kinds(c, it.id).await;
        assert_eq!(k, ["queued", "claimed", "lease-expired"]);
        let ev = c.events_of_item(it.id).await.unwrap();
        let expired = ev.iter().find(|e| e.kind == "lease-expired").unwrap();
        assert_eq!(expired.actor.as_deref(), Some("system"));
        assert_eq!(expired.created_at, t + secs(501));
        let detail: serde_json::Value =
            serde_json::from_str(expired.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["previous_holder"], fx.ra.id);
        assert!(
            notes(c, &fx.ra)
                .await
                .contains(&(it.id, "lease-expired".into()))
        );
        assert!(
            !notes(c, &fx.rb)
                .await
                .iter()
                .any(|n| n.1 == "lease-expired")
        );

        // once only; the former holder lost it
        let sw = c.sweep(t + secs(600), &settings(), 100).await.unwrap();
        assert!(sw.expired.is_empty());
        assert_eq!(count(&kinds(c, it.id).await, "lease-expired"), 1);
        assert!(matches!(
            c.renew_lease(it.id, fx.ra.id, t + secs(601), LEASE_S).await,
            Err(Error::Conflict(_))
        ));
        let again = next(c, &fx.rb, t + secs(602)).await;
        assert_eq!((again.id, again.claimed_by), (it.id, Some(fx.rb.id)));
        // releasing: only the holder
        assert!(matches!(
            c.release(it.id, &actor(&fx.ra), t + secs(603)).await,
            Err(Error::Conflict(_))
        ));
        let released = c
            .release(it.id, &actor(&fx.rb), t + secs(604))
            .await
            .unwrap();
        assert_eq!(released.state, WorkState::Queued);
        assert_eq!(count(&kinds(c, it.id).await, "released"), 1);
    }

    /// `claim_next` takes STAT first, then the earliest due; a changed priority re-orders.
    pub async fn next_orders_by_priority_then_due(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let a = study(fx.village.id, uid(40), "CT", "PA");
        let b = study(fx.village.id, uid(41), "CT", "PB");
        let e = study(fx.town.id, uid(42), "ECG", "PC");
        let d = study(fx.county.id, uid(43), "CT", "PD");
        for s in [&a, &b, &e, &d] {
            add_study(c, s).await;
        }
        let t = wall();
        assert!(
            c.mark_study_complete(&d.uid, Some(Priority::Stat), None, t)
                .await
                .unwrap()
        );
        let ia = ready(c, &a.uid, t + secs(5)).await; // routine, due t+5s+240m
        let ib = ready(c, &b.uid, t).await; // routine, due t+240m
        let ic = ready(c, &e.uid, t + secs(10)).await; // urgent (ECG), due t+10s+30m
        let id = ready(c, &d.uid, t + secs(20)).await; // stat
        assert_eq!(
            (ia.priority, ib.priority, ic.priority, id.priority),
            (
                Priority::Routine,
                Priority::Routine,
                Priority::Urgent,
                Priority::Stat
            )
        );
        assert_eq!(ic.pool_id, Some(fx.ecg.id));

        // the listing has the same order
        let order: Vec<i64> = c
            .list_work_items(&WorkFilter {
                alliance_id: Some(fx.alliance.id),
                limit: 10,
                ..WorkFilter::default()
            })
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect();
        assert_eq!(order, [id.id, ic.id, ib.id, ia.id]);

        let now = t + secs(30);
        assert_eq!(next(c, &fx.ra, now).await.id, id.id, "stat first");
        // a group admin raises A: it goes before the urgent ECG and the earlier routine B
        assert!(matches!(
            c.set_priority(ia.id, Priority::Stat, "  ", &actor(&fx.ga), now)
                .await,
            Err(Error::Invalid(_))
        ));
        let raised = c
            .set_priority(
                ia.id,
                Priority::Stat,
                "clinician called",
                &actor(&fx.ga),
                now,
            )
            .await
            .unwrap();
        assert_eq!(raised.priority, Priority::Stat);
        assert_eq!(raised.version, ia.version + 1);
        let ev = c.events_of_item(ia.id).await.unwrap();
        let changed = ev
            .iter()
            .find(|e| e.kind == "priority-changed")
            .expect("event");
        assert_eq!(changed.actor.as_deref(), Some("user:ga"));
        // raised to STAT: the pool's on-duty members are told
        assert!(
            notes(c, &fx.rb)
                .await
                .contains(&(ia.id, "priority-changed".into()))
        );

        assert_eq!(next(c, &fx.ra, now).await.id, ia.id, "raised to stat");
        assert_eq!(
            next(c, &fx.ra, now).await.id,
            ic.id,
            "urgent before routine"
        );
        assert_eq!(next(c, &fx.ra, now).await.id, ib.id, "earliest due");
        assert_eq!(
            c.claim_next(&actor(&fx.ra), now, LEASE_S).await.unwrap(),
            Claim::Refused(Refusal::NothingQueued)
        );
        // other readers: nothing either; not a member at all
        let outsider = add_user(c, "County", "outsider", Role::Reader).await;
        assert_eq!(
            c.claim_next(&actor(&outsider), now, LEASE_S).await.unwrap(),
            Claim::Refused(Refusal::NotMember)
        );
        assert_eq!(
            c.claim(ib.id, &actor(&outsider), now, LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::NotClaimable {
                state: WorkState::Claimed
            })
        );
    }

    /// A reader holds at most `max_open_claims` items.
    pub async fn per_reader_maximum(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        for pool in fx.pools() {
            member(c, pool, &fx.ra, 2).await;
        }
        assert!(matches!(
            c.set_pool_member(
                fx.radiology.id,
                fx.ra.id,
                &MemberSpec {
                    max_open_claims: 0,
                    ..MemberSpec::default()
                }
            )
            .await,
            Err(Error::Invalid(_))
        ));
        let m = c.list_pool_members(fx.radiology.id).await.unwrap();
        assert_eq!(
            m.iter()
                .find(|m| m.user_id == fx.ra.id)
                .unwrap()
                .max_open_claims,
            2
        );

        let mut items = Vec::new();
        for n in 0..4 {
            let patient = format!("P{n}");
            let s = study(fx.village.id, uid(50 + n), "CT", &patient);
            add_study(c, &s).await;
            items.push(s.uid);
        }
        let t = wall();
        let mut ids = Vec::new();
        for (n, s) in items.iter().enumerate() {
            ids.push(ready(c, s, t + secs(n as i64)).await.id);
        }
        let first = next(c, &fx.ra, t + secs(10)).await;
        let second = next(c, &fx.ra, t + secs(10)).await;
        assert_eq!((first.id, second.id), (ids[0], ids[1]));
        assert_eq!(
            c.claim_next(&actor(&fx.ra), t + secs(11), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::LimitReached { max: 2 })
        );
        assert_eq!(
            c.claim(ids[2], &actor(&fx.ra), t + secs(11), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::LimitReached { max: 2 })
        );
        // re-claiming one held renews it and is not refused
        let again = claimed(
            c.claim(first.id, &actor(&fx.ra), t + secs(12), LEASE_S)
                .await
                .unwrap(),
        );
        assert_eq!(again.lease_expires_at, Some(t + secs(12 + LEASE_S)));
        // a drafted item still counts
        c.transition(
            first.id,
            WorkState::Drafted,
            &actor(&fx.ra),
            t + secs(13),
            LEASE_S,
        )
        .await
        .unwrap();
        assert_eq!(
            c.claim_next(&actor(&fx.ra), t + secs(14), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::LimitReached { max: 2 })
        );
        // another reader is not limited by ra's claims
        assert_eq!(next(c, &fx.rb, t + secs(14)).await.id, ids[2]);

        c.release(second.id, &actor(&fx.ra), t + secs(15))
            .await
            .unwrap();
        let third = next(c, &fx.ra, t + secs(16)).await;
        assert_eq!(third.id, second.id, "the released one is due earliest");
        assert_eq!(
            c.claim_next(&actor(&fx.ra), t + secs(17), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::LimitReached { max: 2 })
        );
        // submitting a report frees a place
        c.transition(
            first.id,
            WorkState::Submitted,
            &actor(&fx.ra),
            t + secs(18),
            LEASE_S,
        )
        .await
        .unwrap();
        assert_eq!(next(c, &fx.ra, t + secs(19)).await.id, ids[3]);

        // on-duty schedules (Asia/Shanghai): off duty → NotOnDuty, on duty → a claim
        let night = add_user(c, "County", "night", Role::Reader).await;
        assert!(matches!(
            c.set_pool_member(
                fx.radiology.id,
                night.id,
                &MemberSpec {
                    max_open_claims: 5,
                    schedule: Some("someday 25:00".into()),
                    ..MemberSpec::default()
                }
            )
            .await,
            Err(Error::Invalid(_))
        ));
        let m = c
            .set_pool_member(
                fx.radiology.id,
                night.id,
                &MemberSpec {
                    max_open_claims: 5,
                    schedule: Some("mon 02:00-03:00".into()),
                    ..MemberSpec::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(m.schedule.as_deref(), Some("mon 02:00-03:00"));
        assert_eq!(c.memberships(night.id).await.unwrap().len(), 1);
        let last = study(fx.village.id, uid(59), "CT", "P9");
        add_study(c, &last).await;
        let il = ready(c, &last.uid, wall()).await;
        assert_eq!(
            c.claim_next(&actor(&night), MON_10H, LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::NotOnDuty)
        );
        let on_duty = MON_10H - mins(7 * 60 + 30); // Monday 02:30 in Shanghai
        assert_eq!(next(c, &night, on_duty).await.id, il.id);
        c.remove_pool_member(fx.radiology.id, night.id)
            .await
            .unwrap();
        assert!(matches!(
            c.remove_pool_member(fx.radiology.id, night.id).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(
            c.claim_next(&actor(&night), on_duty, LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::NotMember)
        );
    }

    /// One patient's studies stay with the reader who holds one of them.
    pub async fn patient_kept_with_one_reader(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let s1 = study(fx.village.id, uid(60), "CT", "P1");
        let s2 = study(fx.village.id, uid(61), "CT", "P1");
        let s3 = study(fx.village.id, uid(62), "CT", "P2");
        let s4 = study(fx.village.id, uid(63), "CT", "P3");
        // same patient ID at another institution: another patient
        let s5 = study(fx.town.id, uid(64), "CT", "P1");
        for s in [&s1, &s2, &s3, &s4, &s5] {
            add_study(c, s).await;
        }
        let t = wall();
        let i1 = ready(c, &s1.uid, t).await;
        let i2 = ready(c, &s2.uid, t + secs(1)).await;
        let i3 = ready(c, &s3.uid, t + secs(2)).await;
        assert_eq!(i1.identity_hash, i2.identity_hash);
        assert_ne!(i1.identity_hash, i3.identity_hash);

        let now = t + secs(10);
        claimed(c.claim(i1.id, &actor(&fx.ra), now, LEASE_S).await.unwrap());
        // rb skips P1's other study (due earlier) and gets P2's
        assert_eq!(next(c, &fx.rb, now).await.id, i3.id);
        assert_eq!(
            c.claim(i2.id, &actor(&fx.rb), now, LEASE_S).await.unwrap(),
            Claim::Refused(Refusal::PatientHeld)
        );
        assert_eq!(
            c.claim_next(&actor(&fx.rb), now, LEASE_S).await.unwrap(),
            Claim::Refused(Refusal::NothingQueued)
        );
        assert_eq!(item(c, i2.id).await.state, WorkState::Queued);

        // ra's next: P1's study first at equal priority, although P3's and the other
        // institution's P1 are due earlier
        let i4 = ready(c, &s4.uid, t - secs(100)).await;
        let i5 = ready(c, &s5.uid, t - secs(50)).await;
        assert_ne!(i5.identity_hash, i1.identity_hash);
        assert_eq!(next(c, &fx.ra, now).await.id, i2.id);
        assert_eq!(next(c, &fx.ra, now).await.id, i4.id);
        // rb may take the other institution's "P1"
        assert_eq!(next(c, &fx.rb, now).await.id, i5.id);

        // affinity does not beat a more urgent item
        let s6 = study(fx.village.id, uid(65), "CT", "P1");
        let s7 = study(fx.village.id, uid(66), "CT", "P4");
        add_study(c, &s6).await;
        add_study(c, &s7).await;
        let t2 = wall();
        assert!(
            c.mark_study_complete(&s7.uid, Some(Priority::Stat), None, t2)
                .await
                .unwrap()
        );
        let i6 = ready(c, &s6.uid, t2).await;
        let i7 = ready(c, &s7.uid, t2 + secs(1)).await;
        assert_eq!(i7.priority, Priority::Stat);
        assert_eq!(next(c, &fx.ra, t2 + secs(2)).await.id, i7.id);

        // once ra gives P1 back, rb may take it
        for id in [i1.id, i2.id] {
            c.release(id, &actor(&fx.ra), t2 + secs(3)).await.unwrap();
        }
        claimed(
            c.claim(i6.id, &actor(&fx.rb), t2 + secs(4), LEASE_S)
                .await
                .unwrap(),
        );
        assert_eq!(
            c.claim(i1.id, &actor(&fx.ra), t2 + secs(5), LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::PatientHeld)
        );
    }

    /// The SLA warning and breach fire once each, with the right recipients; a breached
    /// queued item moves to the escalation pool.
    pub async fn escalation_fires_once(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let seniors = add_pool(c, fx.alliance.id, "seniors").await;
        member(c, &seniors, &fx.sr, 5).await;
        let (_, _, b_pool) = other_alliance(c).await;
        assert!(matches!(
            c.update_pool(
                fx.radiology.id,
                &PoolUpdate {
                    escalation_pool_id: Some(Some(fx.radiology.id)),
                    ..PoolUpdate::default()
                }
            )
            .await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.update_pool(
                fx.radiology.id,
                &PoolUpdate {
                    escalation_pool_id: Some(Some(b_pool.id)),
                    ..PoolUpdate::default()
                }
            )
            .await,
            Err(Error::Invalid(_))
        ));
        let updated = c
            .update_pool(
                fx.radiology.id,
                &PoolUpdate {
                    escalation_pool_id: Some(Some(seniors.id)),
                    ..PoolUpdate::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.escalation_pool_id, Some(seniors.id));
        assert_eq!(updated.label, fx.radiology.label);
        assert_eq!(
            c.get_pool(fx.radiology.id)
                .await
                .unwrap()
                .unwrap()
                .escalation_pool_id,
            Some(seniors.id)
        );

        let x = study(fx.village.id, uid(70), "US", "PX");
        let y = study(fx.village.id, uid(71), "CT", "PY");
        add_study(c, &x).await;
        add_study(c, &y).await;
        let t = wall();
        let ix = ready(c, &x.uid, t).await;
        let iy = ready(c, &y.uid, t).await;
        assert_eq!((ix.warn_at, ix.due_at), (t + mins(192), t + mins(240)));

        let sw = c.sweep(ix.warn_at - 1, &settings(), 100).await.unwrap();
        assert!(sw.warned.is_empty() && sw.breached.is_empty());
        let sw = c.sweep(ix.warn_at, &settings(), 100).await.unwrap();
        let warned: BTreeSet<i64> = sw.warned.iter().map(|i| i.id).collect();
        assert_eq!(warned, BTreeSet::from([ix.id, iy.id]));
        assert!(sw.breached.is_empty());
        assert_eq!(item(c, ix.id).await.warned_at, Some(ix.warn_at));
        for later in [ix.warn_at, ix.warn_at + secs(1), ix.due_at - 1] {
            let sw = c.sweep(later, &settings(), 100).await.unwrap();
            assert!(sw.warned.is_empty() && sw.breached.is_empty(), "at {later}");
        }
        for id in [ix.id, iy.id] {
            assert_eq!(count(&kinds(c, id).await, "sla-warning"), 1);
        }
        // queued: the pool's on-duty members are warned
        for u in [&fx.ra, &fx.rb, &fx.sr] {
            assert!(
                notes(c, u).await.contains(&(ix.id, "sla-warning".into())),
                "{}",
                u.login
            );
        }
        assert!(!notes(c, &fx.ga).await.iter().any(|n| n.1 == "sla-warning"));

        let sw = c.sweep(ix.due_at, &settings(), 100).await.unwrap();
        assert!(sw.warned.is_empty());
        let breached: HashMap<i64, &WorkItem> = sw.breached.iter().map(|i| (i.id, i)).collect();
        assert_eq!(breached.len(), 2);
        assert_eq!(breached[&ix.id].pool_id, Some(fx.ultrasound.id));
        assert_eq!(breached[&iy.id].pool_id, Some(seniors.id));
        let x_now = item(c, ix.id).await;
        assert_eq!(
            (x_now.breached_at, x_now.pool_id, x_now.escalated_from),
            (Some(ix.due_at), Some(fx.ultrasound.id), None)
        );
        let y_now = item(c, iy.id).await;
        assert_eq!(y_now.pool_id, Some(seniors.id));
        assert_eq!(y_now.escalated_from, Some(fx.radiology.id));
        assert_eq!(y_now.state, WorkState::Queued);
        assert_eq!(
            kinds(c, ix.id).await,
            ["queued", "sla-warning", "sla-breach"]
        );
        assert_eq!(
            kinds(c, iy.id).await,
            ["queued", "sla-warning", "sla-breach", "escalated"]
        );

        // more sweeps: nothing again
        for later in [ix.due_at, ix.due_at + mins(1), ix.due_at + mins(600)] {
            let sw = c.sweep(later, &settings(), 100).await.unwrap();
            assert!(sw.warned.is_empty() && sw.breached.is_empty(), "at {later}");
        }
        for id in [ix.id, iy.id] {
            let k = kinds(c, id).await;
            assert_eq!((count(&k, "sla-warning"), count(&k, "sla-breach")), (1, 1));
            assert!(count(&k, "escalated") <= 1);
        }

        // breach: the pool's senior readers and the alliance's group admins
        for id in [ix.id, iy.id] {
            assert!(notes(c, &fx.sr).await.contains(&(id, "sla-breach".into())));
            assert!(notes(c, &fx.ga).await.contains(&(id, "sla-breach".into())));
            assert!(!notes(c, &fx.ra).await.contains(&(id, "sla-breach".into())));
        }
        assert_eq!(
            notes(c, &fx.sr)
                .await
                .iter()
                .filter(|n| n.1 == "sla-breach")
                .count(),
            2
        );
        // the escalation pool's members hear of the move
        assert!(
            notes(c, &fx.sr)
                .await
                .contains(&(iy.id, "escalated".into()))
        );
        assert!(!notes(c, &fx.ra).await.iter().any(|n| n.1 == "escalated"));
        // now readers of the seniors pool (only) take it
        assert_eq!(next(c, &fx.ra, ix.due_at).await.id, ix.id);
        assert_eq!(
            c.claim(iy.id, &actor(&fx.rb), ix.due_at, LEASE_S)
                .await
                .unwrap(),
            Claim::Refused(Refusal::NotMember)
        );
        assert_eq!(next(c, &fx.sr, ix.due_at).await.id, iy.id);

        // the notifications can be marked read, by their user only
        let n = c.list_notifications(fx.ga.id, true, 10).await.unwrap();
        assert!(!n.is_empty());
        assert!(matches!(
            c.mark_notification_read(fx.ra.id, n[0].id, ix.due_at).await,
            Err(Error::NotFound(_))
        ));
        c.mark_notification_read(fx.ga.id, n[0].id, ix.due_at)
            .await
            .unwrap();
        assert_eq!(
            c.list_notifications(fx.ga.id, true, 10)
                .await
                .unwrap()
                .len(),
            n.len() - 1
        );
    }

    /// An ECG with a critical finding is ready at once, STAT, ahead of older urgent ECGs.
    pub async fn ecg_stemi_is_stat(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let e1 = study(fx.village.id, uid(80), "ECG", "PE1");
        let i1 = add_study(c, &e1).await;
        add_ecg(c, &e1, i1, false).await;
        let t = wall();
        let sw = c.sweep(t, &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1, "an ECG is ready without waiting");
        let w1 = &sw.ready[0];
        assert_eq!(w1.study_instance_uid, e1.uid);
        assert_eq!(
            (w1.pool_id, w1.priority, w1.critical),
            (Some(fx.ecg.id), Priority::Urgent, false)
        );
        assert_eq!(w1.due_at, t + mins(30));

        let e2 = study(fx.town.id, uid(81), "ECG", "PE2");
        let i2 = add_study(c, &e2).await;
        add_ecg(c, &e2, i2, true).await;
        let t2 = wall();
        let dry = c.dry_run(&e2.uid, t2).await.unwrap().unwrap();
        assert!(dry.ecg_critical);
        assert_eq!(dry.priority, Some(Priority::Stat));
        let sw = c.sweep(t2 + secs(5), &settings(), 100).await.unwrap();
        assert_eq!(sw.ready.len(), 1);
        let w2 = &sw.ready[0];
        assert_eq!(w2.study_instance_uid, e2.uid);
        assert_eq!(w2.ready_at, t2 + secs(5));
        assert_eq!(
            (w2.pool_id, w2.priority, w2.critical),
            (Some(fx.ecg.id), Priority::Stat, true)
        );
        let queued = c.events_of_item(w2.id).await.unwrap();
        let detail: serde_json::Value =
            serde_json::from_str(queued[0].detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["critical"], true);
        // a STAT item is announced to the pool's on-duty readers
        for u in [&fx.ra, &fx.rb, &fx.sr] {
            assert!(notes(c, u).await.contains(&(w2.id, "queued".into())));
            assert!(!notes(c, u).await.contains(&(w1.id, "queued".into())));
        }

        assert_eq!(
            next(c, &fx.ra, t2 + secs(6)).await.id,
            w2.id,
            "STAT before the older urgent ECG"
        );
        assert_eq!(next(c, &fx.ra, t2 + secs(6)).await.id, w1.id);
    }

    /// Eight readers claiming at once take every item exactly once; two sweeps at once
    /// make each study ready and warn each item once.
    pub async fn concurrent_claims_exactly_once(c: Arc<SqlCatalog>) {
        const ITEMS: u32 = 200;
        const READERS: usize = 8;
        const MORE: u32 = 20;
        let fx = fixture(&*c).await;
        let mut readers = Vec::new();
        for n in 0..READERS {
            let u = add_user(&*c, "County", &format!("c{n}"), Role::Reader).await;
            member(&*c, &fx.radiology, &u, 1000).await;
            readers.push(u);
        }
        let mut uids = Vec::new();
        for n in 0..ITEMS {
            let patient = format!("CP{n}");
            let s = study(fx.village.id, uid(1000 + n), "CT", &patient);
            add_study(&*c, &s).await;
            uids.push(s.uid);
        }
        let t = wall();
        let mut all = BTreeSet::new();
        for (n, u) in uids.iter().enumerate() {
            all.insert(ready(&*c, u, t + n as i64).await.id);
        }
        assert_eq!(all.len(), ITEMS as usize);

        let now = t + secs(60);
        let mut tasks = Vec::new();
        for u in readers.clone() {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match c
                        .claim_next(&actor(&u), now, 86_400)
                        .await
                        .expect("claim_next")
                    {
                        Claim::Claimed(it) => {
                            assert_eq!(it.claimed_by, Some(u.id));
                            got.push(it.id);
                        }
                        Claim::Refused(Refusal::NothingQueued) => break,
                        Claim::Refused(other) => panic!("{}: refused {other:?}", u.login),
                    }
                }
                (u.id, got)
            }));
        }
        let mut seen = BTreeSet::new();
        let mut holder = HashMap::new();
        for task in tasks {
            let (user, got) = task.await.expect("task");
            for id in got {
                assert!(seen.insert(id), "item {id} claimed twice");
                holder.insert(id, user);
            }
        }
        // none lost: everything claimed, nothing left queued
        assert_eq!(seen, all);
        let queued = c
            .list_work_items(&WorkFilter {
                states: vec![WorkState::Queued],
                limit: 1000,
                ..WorkFilter::default()
            })
            .await
            .unwrap();
        assert!(queued.is_empty());
        let claimed_items = c
            .list_work_items(&WorkFilter {
                states: vec![WorkState::Claimed],
                limit: 1000,
                ..WorkFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(claimed_items.len(), ITEMS as usize);
        for it in &claimed_items {
            assert_eq!(it.claimed_by, Some(holder[&it.id]));
        }
        let events = c.events_after(0, 100_000).await.unwrap();
        let mut claims: HashMap<i64, usize> = HashMap::new();
        for e in events.iter().filter(|e| e.kind == "claimed") {
            *claims.entry(e.work_item_id).or_default() += 1;
        }
        assert_eq!(claims.len(), ITEMS as usize);
        assert!(claims.values().all(|n| *n == 1));

        // two sweeps at once: each study ready once
        let mut more = BTreeSet::new();
        for n in 0..MORE {
            let patient = format!("SP{n}");
            let s = study(fx.town.id, uid(5000 + n), "CT", &patient);
            add_study(&*c, &s).await;
            more.insert(s.uid);
        }
        let t1 = wall();
        let sweep_at = |at: i64| {
            let c = c.clone();
            tokio::spawn(async move {
                c.sweep(at, &ReadySettings::default(), 1000)
                    .await
                    .expect("sweep")
            })
        };
        let (s1, s2) = (sweep_at(t1 + secs(61)), sweep_at(t1 + secs(61)));
        let (s1, s2) = (s1.await.unwrap(), s2.await.unwrap());
        let mut readied = Vec::new();
        readied.extend(s1.ready.iter().map(|i| i.study_instance_uid.clone()));
        readied.extend(s2.ready.iter().map(|i| i.study_instance_uid.clone()));
        assert_eq!(readied.len(), MORE as usize, "each study ready once");
        assert_eq!(readied.into_iter().collect::<BTreeSet<_>>(), more);
        let events = c.events_after(0, 100_000).await.unwrap();
        assert_eq!(
            events.iter().filter(|e| e.kind == "queued").count(),
            (ITEMS + MORE) as usize
        );
        // the fan-out's second look at ids it has not seen: those that exist, by id
        let some: Vec<i64> = events.iter().step_by(7).map(|e| e.id).collect();
        let mut asked = some.clone();
        asked.push(i64::MAX);
        let again = c.events_in(&asked).await.unwrap();
        assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), some);
        assert_eq!(again[0], events[0]);
        assert!(c.events_in(&[]).await.unwrap().is_empty());

        // two sweeps at once past every warning time: each item warned once
        let warn_time = t1 + secs(61) + mins(193);
        let (s1, s2) = (sweep_at(warn_time), sweep_at(warn_time));
        let (s1, s2) = (s1.await.unwrap(), s2.await.unwrap());
        let mut warned: Vec<i64> = s1.warned.iter().chain(&s2.warned).map(|i| i.id).collect();
        assert_eq!(
            warned.len(),
            (ITEMS + MORE) as usize,
            "each item warned once"
        );
        warned.sort_unstable();
        warned.dedup();
        assert_eq!(warned.len(), (ITEMS + MORE) as usize);
        assert!(s1.breached.is_empty() && s2.breached.is_empty());
        let events = c.events_after(0, 100_000).await.unwrap();
        let mut warnings: HashMap<i64, usize> = HashMap::new();
        for e in events.iter().filter(|e| e.kind == "sla-warning") {
            *warnings.entry(e.work_item_id).or_default() += 1;
        }
        assert_eq!(warnings.len(), (ITEMS + MORE) as usize);
        assert!(warnings.values().all(|n| *n == 1));
        // events are numbered in order
        assert!(events.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(c.last_event_id().await.unwrap(), events.last().unwrap().id);
    }

    /// Eight readers claiming at once over few patients: every item is claimed, and each
    /// patient's studies all end up with one reader.
    pub async fn concurrent_claims_keep_patients_together(c: Arc<SqlCatalog>) {
        const PATIENTS: u32 = 10;
        const PER_PATIENT: u32 = 6;
        let fx = fixture(&*c).await;
        let mut readers = Vec::new();
        for n in 0..8 {
            let u = add_user(&*c, "County", &format!("k{n}"), Role::Reader).await;
            member(&*c, &fx.radiology, &u, 1000).await;
            readers.push(u);
        }
        let mut uids = Vec::new();
        for n in 0..PATIENTS * PER_PATIENT {
            let patient = format!("KP{}", n % PATIENTS);
            let s = study(fx.village.id, uid(3000 + n), "CT", &patient);
            add_study(&*c, &s).await;
            uids.push((s.uid, patient));
        }
        let t = wall();
        let mut patient_of = HashMap::new();
        for (n, (u, patient)) in uids.iter().enumerate() {
            patient_of.insert(ready(&*c, u, t + n as i64).await.id, patient.clone());
        }
        let now = t + secs(60);
        let mut tasks = Vec::new();
        for u in readers {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    match c
                        .claim_next(&actor(&u), now, 86_400)
                        .await
                        .expect("claim_next")
                    {
                        Claim::Claimed(it) => got.push(it.id),
                        Claim::Refused(Refusal::NothingQueued) => break,
                        Claim::Refused(other) => panic!("{}: refused {other:?}", u.login),
                    }
                }
                (u.id, got)
            }));
        }
        let mut holders: HashMap<String, BTreeSet<i64>> = HashMap::new();
        let mut total = 0;
        for task in tasks {
            let (user, got) = task.await.expect("task");
            total += got.len();
            for id in got {
                holders
                    .entry(patient_of[&id].clone())
                    .or_default()
                    .insert(user);
            }
        }
        assert_eq!(
            total,
            (PATIENTS * PER_PATIENT) as usize,
            "every item claimed once"
        );
        assert_eq!(holders.len(), PATIENTS as usize);
        for (patient, who) in &holders {
            assert_eq!(who.len(), 1, "patient {patient} held by readers {who:?}");
        }
    }

    /// Readers with six tabs each, three pressing "next" and three opening items from the
    /// list, at once, over patients with several studies (so "next" prefers a study of a
    /// patient the reader already holds, and gives its locks back to take it, while a
    /// claim from another tab may come in): no reader ends up over their maximum.
    pub async fn one_readers_tabs_stay_within_the_maximum(c: Arc<SqlCatalog>) {
        const READERS: usize = 4;
        const TABS: usize = 6;
        const MAX: i64 = 3;
        const ROUNDS: usize = 5;
        let fx = fixture(&*c).await;
        let mut readers = Vec::new();
        for n in 0..READERS {
            let u = add_user(&*c, "County", &format!("t{n}"), Role::Reader).await;
            member(&*c, &fx.radiology, &u, MAX).await;
            readers.push(u);
        }
        let t = wall();
        let mut n_study = 0u32;
        for round in 0..ROUNDS {
            // 16 patients × 3 studies, interleaved in time so that the oldest item is
            // rarely of the patient a reader already holds
            let mut uids = Vec::new();
            for k in 0..48u32 {
                let patient = format!("TP{round}-{}", k % 16);
                let s = study(fx.village.id, uid(7000 + n_study), "CT", &patient);
                n_study += 1;
                add_study(&*c, &s).await;
                uids.push(s.uid);
            }
            let base = t + secs(1000 * round as i64);
            let mut ids = Vec::new();
            for (n, u) in uids.iter().enumerate() {
                ids.push(ready(&*c, u, base + n as i64).await.id);
            }
            let now = base + secs(60);
            let mut tasks = Vec::new();
            for (r, u) in readers.iter().enumerate() {
                for tab in 0..TABS {
                    let (c, u) = (c.clone(), u.clone());
                    let mut list = ids.clone();
                    list.rotate_left((r * TABS + tab) * 5 % ids.len());
                    tasks.push(tokio::spawn(async move {
                        if tab % 2 == 1 {
                            for id in list {
                                match c.claim(id, &actor(&u), now, 86_400).await.expect("claim") {
                                    Claim::Refused(Refusal::LimitReached { .. }) => break,
                                    Claim::Claimed(_)
                                    | Claim::Refused(
                                        Refusal::NotClaimable { .. } | Refusal::PatientHeld,
                                    ) => {}
                                    Claim::Refused(other) => {
                                        panic!("{}: refused {other:?}", u.login)
                                    }
                                }
                            }
                            return;
                        }
                        loop {
                            match c
                                .claim_next(&actor(&u), now, 86_400)
                                .await
                                .expect("claim_next")
                            {
                                Claim::Claimed(_) => {}
                                Claim::Refused(
                                    Refusal::LimitReached { .. } | Refusal::NothingQueued,
                                ) => break,
                                Claim::Refused(other) => {
                                    panic!("{}: refused {other:?}", u.login)
                                }
                            }
                        }
                    }));
                }
            }
            for task in tasks {
                task.await.expect("task");
            }
            let in_state = |state: WorkState| {
                let c = c.clone();
                async move {
                    c.list_work_items(&WorkFilter {
                        states: vec![state],
                        limit: 1000,
                        ..WorkFilter::default()
                    })
                    .await
                    .unwrap()
                }
            };
            let claimed = in_state(WorkState::Claimed).await;
            for u in &readers {
                let held: Vec<i64> = claimed
                    .iter()
                    .filter(|it| it.claimed_by == Some(u.id))
                    .map(|it| it.id)
                    .collect();
                assert_eq!(
                    held.len() as i64,
                    MAX,
                    "round {round}: {} holds {held:?}",
                    u.login
                );
            }
            // give everything back for the next round
            for it in &claimed {
                let holder = readers
                    .iter()
                    .find(|u| Some(u.id) == it.claimed_by)
                    .unwrap();
                c.release(it.id, &actor(holder), now).await.unwrap();
            }
            for it in &in_state(WorkState::Queued).await {
                c.cancel(it.id, "next round", &actor(&readers[0]), now)
                    .await
                    .unwrap();
            }
        }
    }

    /// Events become webhook deliveries; taking locks them; failures retry or go to the
    /// dead letters; a periodic job's lease has one holder at a time.
    pub async fn webhooks_deliveries(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let a = fx.alliance.id;
        let hook = |url: &str, secret: &str, events: &[&str]| NewWebhook {
            alliance_id: a,
            url: url.into(),
            secret: secret.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        };
        let secret = "0123456789abcdef0123";
        for bad in [
            hook("ftp://hooks.example/x", secret, &["*"]),
            hook("https://hooks.example/x", "short", &["*"]),
            hook("https://hooks.example/x", secret, &[]),
            hook("https://hooks.example/x", secret, &["a,b"]),
        ] {
            assert!(
                matches!(c.add_webhook(&bad).await, Err(Error::Invalid(_))),
                "{bad:?}"
            );
        }
        let h1 = c
            .add_webhook(&hook("https://hooks.example/all", secret, &["*"]))
            .await
            .unwrap();
        let h2 = c
            .add_webhook(&hook("https://hooks.example/claims", secret, &["claimed"]))
            .await
            .unwrap();
        assert_eq!(h1.events, ["*"]);
        assert!(h1.enabled);
        assert_eq!(c.list_webhooks(Some(a)).await.unwrap().len(), 2);
        assert_eq!(
            c.list_webhooks(None).await.unwrap().len(),
            2,
            "no filter: all"
        );
        assert!(c.list_pools(None).await.unwrap().len() >= 3);
        assert_eq!(
            c.get_webhook(h2.id).await.unwrap().unwrap().events,
            ["claimed"]
        );

        let s = study(fx.village.id, uid(90), "CT", "P-SECRET-ID");
        add_study(c, &s).await;
        let t = wall();
        let it = ready(c, &s.uid, t).await;
        let pending = c.list_deliveries(h1.id, Some("pending")).await.unwrap();
        assert_eq!(pending.len(), 1);
        let d = &pending[0];
        assert_eq!(
            (d.kind.as_str(), d.attempts, d.next_attempt_at),
            ("queued", 0, t)
        );
        let body: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(body["kind"], "queued");
        assert_eq!(body["work_item"]["id"], it.id);
        assert_eq!(body["work_item"]["study_instance_uid"], s.uid.as_str());
        assert!(
            !d.payload.contains("DOE") && !d.payload.contains("P-SECRET-ID"),
            "no patient data"
        );
        assert!(c.list_deliveries(h2.id, None).await.unwrap().is_empty());

        // take locks it
        let taken = c.take_due_deliveries(t, 10, 30).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0.id, taken[0].1.id), (d.id, h1.id));
        assert_eq!(taken[0].1.secret, secret);
        assert!(
            c.take_due_deliveries(t + secs(1), 10, 30)
                .await
                .unwrap()
                .is_empty()
        );

        // a failure with a retry time: pending again, due then
        c.finish_delivery(
            d.id,
            &AttemptResult::Failed {
                status: Some(500),
                error: "server error".into(),
                retry_at: Some(t + secs(60)),
            },
            t + secs(2),
        )
        .await
        .unwrap();
        let d1 = c.get_delivery(d.id).await.unwrap().unwrap();
        assert_eq!(
            (d1.state.as_str(), d1.attempts, d1.next_attempt_at),
            ("pending", 1, t + secs(60))
        );
        assert_eq!(
            (d1.last_status, d1.last_error.as_deref()),
            (Some(500), Some("server error"))
        );
        assert!(
            c.take_due_deliveries(t + secs(30), 10, 30)
                .await
                .unwrap()
                .is_empty()
        );
        let taken = c.take_due_deliveries(t + secs(60), 10, 30).await.unwrap();
        assert_eq!(taken.iter().map(|x| x.0.id).collect::<Vec<_>>(), [d.id]);

        // a failure without one: dead
        c.finish_delivery(
            d.id,
            &AttemptResult::Failed {
                status: None,
                error: "connection refused".into(),
                retry_at: None,
            },
            t + secs(61),
        )
        .await
        .unwrap();
        assert_eq!(c.get_delivery(d.id).await.unwrap().unwrap().state, "dead");
        assert_eq!(
            c.list_deliveries(h1.id, Some("dead")).await.unwrap().len(),
            1
        );
        assert!(
            c.take_due_deliveries(t + secs(100), 10, 30)
                .await
                .unwrap()
                .is_empty()
        );

        // sent again by hand
        c.retry_delivery(d.id, t + secs(120)).await.unwrap();
        assert!(matches!(
            c.retry_delivery(d.id, t + secs(120)).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.retry_delivery(999_999, t).await,
            Err(Error::NotFound(_))
        ));
        let taken = c.take_due_deliveries(t + secs(120), 10, 30).await.unwrap();
        assert_eq!(taken.iter().map(|x| x.0.id).collect::<Vec<_>>(), [d.id]);
        c.finish_delivery(
            d.id,
            &AttemptResult::Delivered { status: 204 },
            t + secs(121),
        )
        .await
        .unwrap();
        let done = c.get_delivery(d.id).await.unwrap().unwrap();
        assert_eq!(
            (done.state.as_str(), done.attempts, done.delivered_at),
            ("delivered", 3, Some(t + secs(121)))
        );
        assert_eq!(done.last_status, Some(204));
        assert!(
            c.take_due_deliveries(t + secs(200), 10, 30)
                .await
                .unwrap()
                .is_empty()
        );

        // a claim goes to both hooks; an expired lock is taken again
        next(c, &fx.ra, t + secs(130)).await;
        let taken = c.take_due_deliveries(t + secs(130), 10, 30).await.unwrap();
        let hooks: BTreeSet<i64> = taken.iter().map(|x| x.1.id).collect();
        assert_eq!(hooks, BTreeSet::from([h1.id, h2.id]));
        assert!(taken.iter().all(|x| x.0.kind == "claimed"));
        assert!(
            c.take_due_deliveries(t + secs(159), 10, 30)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            c.take_due_deliveries(t + secs(161), 10, 30)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            c.take_due_deliveries(t + secs(161), 1, 30)
                .await
                .unwrap()
                .len(),
            0
        );

        // a deleted hook: disabled, its pending deliveries dead, no new ones
        c.delete_webhook(h2.id).await.unwrap();
        assert!(!c.get_webhook(h2.id).await.unwrap().unwrap().enabled);
        assert_eq!(
            c.list_deliveries(h2.id, Some("dead")).await.unwrap().len(),
            1
        );
        c.release(it.id, &actor(&fx.ra), t + secs(170))
            .await
            .unwrap();
        next(c, &fx.rb, t + secs(171)).await;
        assert_eq!(c.list_deliveries(h2.id, None).await.unwrap().len(), 1);
        assert_eq!(c.list_deliveries(h1.id, None).await.unwrap().len(), 4);
        assert!(matches!(
            c.delete_webhook(999_999).await,
            Err(Error::NotFound(_))
        ));

        // job leases
        assert!(c.try_job_lease("sweep", "A", t, 30).await.unwrap());
        assert!(
            !c.try_job_lease("sweep", "B", t + secs(10), 30)
                .await
                .unwrap()
        );
        assert!(
            c.try_job_lease("sweep", "A", t + secs(20), 30)
                .await
                .unwrap(),
            "renewed"
        );
        assert!(
            !c.try_job_lease("sweep", "B", t + secs(40), 30)
                .await
                .unwrap()
        );
        assert!(
            c.try_job_lease("other-job", "B", t + secs(40), 30)
                .await
                .unwrap()
        );
        assert!(
            c.try_job_lease("sweep", "B", t + secs(51), 30)
                .await
                .unwrap(),
            "expired"
        );
        assert!(
            !c.try_job_lease("sweep", "A", t + secs(52), 30)
                .await
                .unwrap()
        );
    }

    /// Priors: the same resident ID across the alliance's institutions; not another
    /// patient, not another alliance.
    pub async fn priors_match_identity(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        assert!(is_cn_resident_id(RID));
        let fx = fixture(c).await;
        let (_, b_inst, _) = other_alliance(c).await;
        let p = study(fx.village.id, uid(100), "CT", RID);
        let q = study(fx.town.id, uid(101), "US", RID);
        let lower = RID.to_ascii_lowercase();
        let q2 = study(fx.county.id, uid(102), "CT", &lower);
        let other = study(fx.town.id, uid(103), "CT", "OTHER");
        let local_v = study(fx.village.id, uid(104), "CT", "LOCAL-7");
        let local_t = study(fx.town.id, uid(105), "CT", "LOCAL-7");
        let foreign = study(b_inst.id, uid(106), "CT", RID);
        for s in [&p, &q, &q2, &other, &local_v, &local_t, &foreign] {
            add_study(c, s).await;
        }
        let t = wall();
        let mut items = HashMap::new();
        for s in [&p, &q, &q2, &other, &local_v, &local_t, &foreign] {
            items.insert(s.uid.clone(), ready(c, &s.uid, t).await);
        }
        let ip = &items[&p.uid];
        assert_eq!(ip.identity_hash, items[&q.uid].identity_hash);
        assert_eq!(ip.identity_hash, items[&q2.uid].identity_hash);

        let uids = |v: Vec<dxhub_store::worklist::Prior>| -> BTreeSet<String> {
            v.into_iter().map(|p| p.study_instance_uid).collect()
        };
        let priors = c.priors(ip.id).await.unwrap();
        let q_prior = priors
            .iter()
            .find(|x| x.study_instance_uid == q.uid)
            .expect("q");
        assert_eq!(q_prior.institution_id, Some(fx.town.id));
        assert_eq!(q_prior.institution_name.as_deref(), Some("Town"));
        assert_eq!(q_prior.work_item_id, Some(items[&q.uid].id));
        assert_eq!(q_prior.work_state.as_deref(), Some("queued"));
        assert_eq!(q_prior.ready_at, Some(t));
        assert_eq!(
            uids(priors),
            BTreeSet::from([q.uid.clone(), q2.uid.clone()])
        );
        assert_eq!(
            uids(c.priors(items[&q.uid].id).await.unwrap()),
            BTreeSet::from([p.uid.clone(), q2.uid.clone()])
        );
        assert!(c.priors(items[&other.uid].id).await.unwrap().is_empty());
        // a local patient ID is only the same patient within its institution
        assert!(c.priors(items[&local_v.uid].id).await.unwrap().is_empty());
        assert!(c.priors(items[&foreign.uid].id).await.unwrap().is_empty());
        assert!(matches!(c.priors(999_999).await, Err(Error::NotFound(_))));
    }

    /// What a reader may read: the studies with a work item in one of the reader's pools
    /// or held by the reader, and every study of those patients (priors, also ones
    /// without a work item); nothing else. Single look-up, study list and QIDO agree.
    pub async fn readers_reach_routed_studies_and_priors(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        // ru: ultrasound pool only; rn: no pool at all
        let ru = add_user(c, "County", "ru", Role::Reader).await;
        let rn = add_user(c, "County", "rn", Role::Reader).await;
        member(c, &fx.ultrasound, &ru, 5).await;
        let us = study(fx.village.id, uid(300), "US", RID); // → ultrasound
        let prior = study(fx.town.id, uid(301), "CT", RID); // → radiology, same patient
        // ready, but no rule routes OT: a prior without a work item of its own
        let unrouted_prior = study(fx.county.id, uid(302), "OT", RID);
        let ct = study(fx.village.id, uid(303), "CT", "OTHER-1"); // → radiology
        let ct2 = study(fx.town.id, uid(304), "CT", "OTHER-2"); // → radiology
        for s in [&us, &prior, &unrouted_prior, &ct, &ct2] {
            add_study(c, s).await;
        }
        let t = wall();
        for s in [&us, &prior, &ct, &ct2] {
            ready(c, &s.uid, t).await;
        }
        let none = c
            .make_ready(&unrouted_prior.uid, t, &settings())
            .await
            .expect("make_ready");
        assert!(matches!(none, Some(None)), "OT gets no work item: {none:?}");
        let all = [&us, &prior, &unrouted_prior, &ct, &ct2];
        let reach = |u: i64| async move {
            let mut out = BTreeSet::new();
            for s in all {
                if c.study_routed_to(&s.uid, u).await.expect("routed") {
                    out.insert(s.uid.clone());
                }
            }
            out
        };
        let set = |v: &[&StudySpec<'_>]| -> BTreeSet<String> {
            v.iter().map(|s| s.uid.clone()).collect()
        };
        let listed = |u: i64| async move {
            let rows = c
                .list_studies(&dxhub_store::StudyFilter {
                    routed_to: Some(u),
                    ..Default::default()
                })
                .await
                .expect("list");
            rows.into_iter()
                .map(|r| r.study_instance_uid)
                .collect::<BTreeSet<_>>()
        };
        let searched = |u: i64| async move {
            let rows = c
                .qido(&dxhub_store::QidoQuery {
                    level: dxhub_store::QidoLevel::Study,
                    conditions: Vec::new(),
                    institution_ids: None,
                    routed_to: Some(u),
                    limit: 100,
                    offset: 0,
                    with_attrs: false,
                })
                .await
                .expect("qido");
            rows.into_iter()
                .map(|r| r.study_instance_uid)
                .collect::<BTreeSet<_>>()
        };
        // the ultrasound reader: the US study and its patient's priors, routed or not
        let want_ru = set(&[&us, &prior, &unrouted_prior]);
        assert_eq!(reach(ru.id).await, want_ru);
        assert_eq!(listed(ru.id).await, want_ru);
        assert_eq!(searched(ru.id).await, want_ru);
        // members of every pool see everything routed, and the unrouted prior
        assert_eq!(reach(fx.ra.id).await, set(&all));
        assert_eq!(listed(fx.sr.id).await, set(&all));
        // no pool, nothing held: nothing
        assert!(reach(rn.id).await.is_empty());
        assert!(listed(rn.id).await.is_empty());
        assert!(searched(rn.id).await.is_empty());
        assert!(!c.study_routed_to("1.2.3.unknown", fx.ra.id).await.unwrap());
        // an item held by a reader stays readable after they leave the pool; the rest
        // of the pool's studies do not
        member(c, &fx.radiology, &rn, 5).await;
        let held = claimed(
            c.claim_next(&actor(&rn), t + secs(1), LEASE_S)
                .await
                .expect("claim"),
        );
        c.remove_pool_member(fx.radiology.id, rn.id).await.unwrap();
        let held_uid = held.study_instance_uid.clone();
        let mut want_rn = BTreeSet::from([held_uid.clone()]);
        if held_uid == prior.uid {
            // the held study's patient has priors too
            want_rn.extend(set(&[&us, &unrouted_prior]));
        }
        assert_eq!(reach(rn.id).await, want_rn);
        assert_eq!(listed(rn.id).await, want_rn);
        assert_eq!(searched(rn.id).await, want_rn);
        // leaving the ultrasound pool takes its studies away
        c.remove_pool_member(fx.ultrasound.id, ru.id).await.unwrap();
        assert!(reach(ru.id).await.is_empty());
    }

    /// The report-driven transitions (by the holder only; claims only through claim()),
    /// and instances arriving after the report flag the item once and notify its reader.
    pub async fn report_transitions_and_new_images(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let s = study(fx.village.id, uid(90), "CT", "P-NEW");
        add_study(c, &s).await;
        // real times here: the index stamps instances with the wall clock, and the second
        // instance must arrive after the report
        let t = wall();
        let queued = ready(c, &s.uid, t).await;
        // a claim cannot be made by transition
        assert!(matches!(
            c.transition(queued.id, WorkState::Claimed, &actor(&fx.ra), t, LEASE_S)
                .await,
            Err(Error::Invalid(_))
        ));
        let it = next(c, &fx.ra, t + secs(1)).await;
        // another reader cannot draft or submit the holder's item
        assert!(matches!(
            c.transition(
                it.id,
                WorkState::Drafted,
                &actor(&fx.rb),
                t + secs(2),
                LEASE_S
            )
            .await,
            Err(Error::Conflict(_))
        ));
        let drafted = c
            .transition(
                it.id,
                WorkState::Drafted,
                &actor(&fx.ra),
                t + secs(2),
                LEASE_S,
            )
            .await
            .unwrap();
        assert_eq!(drafted.state, WorkState::Drafted);
        assert_eq!(drafted.lease_expires_at, Some(t + secs(2 + LEASE_S)));
        // a signed item cannot be reached without submitting
        assert!(matches!(
            c.transition(
                it.id,
                WorkState::Signed,
                &actor(&fx.sr),
                t + secs(3),
                LEASE_S
            )
            .await,
            Err(Error::Invalid(_))
        ));
        let ts = wall();
        let submitted = c
            .transition(it.id, WorkState::Submitted, &actor(&fx.ra), ts, LEASE_S)
            .await
            .unwrap();
        assert_eq!(submitted.state, WorkState::Submitted);
        assert_eq!(submitted.reported_at, Some(ts));
        assert_eq!(submitted.lease_expires_at, None);
        assert_eq!(
            submitted.claimed_by,
            Some(fx.ra.id),
            "the author stays recorded"
        );
        let signed = c
            .transition(it.id, WorkState::Signed, &actor(&fx.sr), ts + 1, LEASE_S)
            .await
            .unwrap();
        assert_eq!(signed.state, WorkState::Signed);
        assert_eq!(signed.done_at, Some(ts + 1));
        // a signed item is no longer on the clock: no warning, no breach
        let later = t + secs(240 * 60 + 5);
        let sweep = c.sweep(later, &settings(), 500).await.unwrap();
        assert!(sweep.warned.is_empty() && sweep.breached.is_empty());
        assert!(sweep.new_images.is_empty(), "no new instance yet");

        // a new instance after the report
        let again = c
            .transition(it.id, WorkState::Cancelled, &actor(&fx.sr), later, LEASE_S)
            .await;
        assert!(again.is_err(), "a signed item cannot be cancelled");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        add_instance(c, &s, 2).await;
        let sweep = c.sweep(wall() + secs(1), &settings(), 500).await.unwrap();
        assert_eq!(sweep.new_images.len(), 1, "{sweep:?}");
        let flagged = item(c, it.id).await;
        assert!(flagged.new_images);
        assert_eq!(flagged.num_instances, 2);
        let ks = kinds(c, it.id).await;
        assert_eq!(count(&ks, "new-images"), 1);
        assert!(
            notes(c, &fx.ra)
                .await
                .iter()
                .any(|(_, k)| k == "new-images"),
            "the report's author is told"
        );
        // once only
        let sweep = c.sweep(wall() + secs(2), &settings(), 500).await.unwrap();
        assert!(sweep.new_images.is_empty());
        assert_eq!(count(&kinds(c, it.id).await, "new-images"), 1);
    }

    // ---------------------------------------------------------------- reports

    fn draft(item_id: i64, base: Option<i64>, impression: &str) -> DraftSpec {
        DraftSpec {
            work_item_id: item_id,
            template_code: "ct_head_plain".into(),
            exam_code: Some("ct_head_plain".into()),
            kind: "imaging".into(),
            content: VersionBody {
                body: serde_json::json!({"sections": {"impression": impression}, "fields": {}}),
                qc_grade: Some("jia".into()),
                ..Default::default()
            },
            base_version: base,
        }
    }

    fn signature(u: &User, key_id: i64, content: &str) -> Signature {
        Signature {
            signer_id: u.id,
            key_id,
            content: content.into(),
            signature: "ab".repeat(64),
        }
    }

    async fn key_of(c: &dyn Catalog, u: &User) -> i64 {
        let pk = format!("04{}", hash(&u.login).repeat(2));
        c.add_signing_key(u.id, &pk, &hash(&pk), "sealed", "kek1", wall())
            .await
            .unwrap()
            .id
    }

    async fn signed_report(c: &dyn Catalog, fx: &Fx, n: u32, pid: &str) -> (i64, i64) {
        let s = study(fx.village.id, uid(n), "CT", pid);
        add_study(c, &s).await;
        let t = wall();
        ready(c, &s.uid, t).await;
        let it = next(c, &fx.ra, t).await;
        let (r, _) = c
            .save_draft(&draft(it.id, None, "未见异常"), &actor(&fx.ra), t, LEASE_S)
            .await
            .unwrap();
        c.submit_report(r.id, 1, &actor(&fx.ra), t, LEASE_S)
            .await
            .unwrap();
        let key = match c.active_signing_key(fx.sr.id).await.unwrap() {
            Some(k) => k.id,
            None => key_of(c, &fx.sr).await,
        };
        c.sign_report(
            r.id,
            1,
            &signature(&fx.sr, key, "{}"),
            &actor(&fx.sr),
            t,
            LEASE_S,
        )
        .await
        .unwrap();
        (r.id, it.id)
    }

    /// The editor's autosave and the author's submit (or a verifier's return) at the same
    /// moment: each either succeeds or is refused as stale or in the wrong state; neither
    /// fails otherwise (PostgreSQL: both take the report's lock before the work item's).
    pub async fn autosave_races_submit_and_return(c: Arc<SqlCatalog>) {
        let cat: &dyn Catalog = &*c;
        let fx = fixture(cat).await;
        cat.seed_report_defaults(fx.alliance.id, &ReportDefaults::default(), wall())
            .await
            .unwrap();
        let s = study(fx.village.id, uid(310), "CT", "P-RACE");
        add_study(cat, &s).await;
        let t = wall();
        ready(cat, &s.uid, t).await;
        let it = next(cat, &fx.ra, t).await;
        let (r, _) = cat
            .save_draft(&draft(it.id, None, "草稿"), &actor(&fx.ra), t, LEASE_S)
            .await
            .unwrap();
        let ok = |round: i64, what: &str, r: std::result::Result<(), Error>| match r {
            Ok(()) | Err(Error::Conflict(_)) | Err(Error::Invalid(_)) => {}
            Err(e) => panic!("round {round}, {what}: {e:?}"),
        };
        for round in 0..40 {
            let at = t + secs(round + 1);
            let head = cat.get_report(r.id).await.unwrap().unwrap();
            let v = head.current_version;
            let (a, b): (Arc<dyn Catalog>, Arc<dyn Catalog>) = (c.clone(), c.clone());
            let (author, author2, senior) = (actor(&fx.ra), actor(&fx.ra), actor(&fx.sr));
            let item_id = it.id;
            let save = tokio::spawn(async move {
                a.save_draft(&draft(item_id, Some(v), "自动保存"), &author, at, LEASE_S)
                    .await
                    .map(|_| ())
            });
            let other = if head.state == "submitted" {
                tokio::spawn(async move {
                    b.return_report(r.id, v, "再看", &senior, at, LEASE_S)
                        .await
                        .map(|_| ())
                })
            } else {
                tokio::spawn(async move {
                    b.submit_report(r.id, v, &author2, at, LEASE_S)
                        .await
                        .map(|_| ())
                })
            };
            ok(round, "autosave", save.await.unwrap());
            ok(round, "submit/return", other.await.unwrap());
        }
    }

    pub async fn report_lifecycle_moves_the_work_item(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        c.seed_report_defaults(fx.alliance.id, &ReportDefaults::default(), wall())
            .await
            .unwrap();
        let s = study(fx.village.id, uid(300), "CT", "P-REP");
        add_study(c, &s).await;
        let t = wall();
        ready(c, &s.uid, t).await;
        let it = next(c, &fx.ra, t).await;
        // only the holder drafts
        assert!(matches!(
            c.save_draft(&draft(it.id, None, "x"), &actor(&fx.rb), t, LEASE_S)
                .await,
            Err(Error::Conflict(m)) if m == "not-holder"
        ));
        let (r, v1) = c
            .save_draft(&draft(it.id, None, "草稿一"), &actor(&fx.ra), t, LEASE_S)
            .await
            .unwrap();
        assert_eq!(
            (r.state.as_str(), r.current_version, v1.version),
            ("draft", 1, 1)
        );
        assert_eq!(item(c, it.id).await.state, WorkState::Drafted);
        // autosave: a new version each time; a stale base is refused
        let (_, v2) = c
            .save_draft(
                &draft(it.id, Some(1), "草稿二"),
                &actor(&fx.ra),
                t + secs(1),
                LEASE_S,
            )
            .await
            .unwrap();
        assert_eq!(v2.version, 2);
        assert!(matches!(
            c.save_draft(&draft(it.id, Some(1), "旧"), &actor(&fx.ra), t + secs(2), LEASE_S)
                .await,
            Err(Error::Conflict(m)) if m.starts_with("stale-version")
        ));
        // submit needs the current version
        assert!(matches!(
            c.submit_report(r.id, 1, &actor(&fx.ra), t + secs(3), LEASE_S).await,
            Err(Error::Conflict(m)) if m.starts_with("stale-version")
        ));
        let (r2, _) = c
            .submit_report(r.id, 2, &actor(&fx.ra), t + secs(3), LEASE_S)
            .await
            .unwrap();
        assert_eq!(r2.state, "submitted");
        assert_eq!(item(c, it.id).await.state, WorkState::Submitted);
        // a submitted report is not edited
        assert!(matches!(
            c.save_draft(
                &draft(it.id, Some(2), "x"),
                &actor(&fx.ra),
                t + secs(4),
                LEASE_S
            )
            .await,
            Err(Error::Invalid(_) | Error::Conflict(_))
        ));
        // returned with a reason, redrafted, resubmitted
        let (r3, v) = c
            .return_report(r.id, 2, "请补充", &actor(&fx.sr), t + secs(5), LEASE_S)
            .await
            .unwrap();
        assert_eq!(
            (r3.state.as_str(), v.state.as_str(), v.reason.as_deref()),
            ("returned", "returned", Some("请补充"))
        );
        assert_eq!(item(c, it.id).await.state, WorkState::Returned);
        // it waits for its author: no lease runs out (the author may be off duty), and the
        // author's viewer keeps it without starting one
        let returned = item(c, it.id).await;
        assert_eq!(
            (returned.claimed_by, returned.lease_expires_at),
            (Some(fx.ra.id), None)
        );
        c.sweep(t + secs(5 + 10 * LEASE_S), &settings(), 100)
            .await
            .unwrap();
        let still = item(c, it.id).await;
        assert_eq!(
            (still.state, still.claimed_by),
            (WorkState::Returned, Some(fx.ra.id))
        );
        let kept = c
            .renew_lease(it.id, fx.ra.id, t + secs(5 + 10 * LEASE_S), LEASE_S)
            .await
            .unwrap();
        assert_eq!(kept.lease_expires_at, None);
        c.save_draft(
            &draft(it.id, Some(2), "定稿"),
            &actor(&fx.ra),
            t + secs(6),
            LEASE_S,
        )
        .await
        .unwrap();
        c.submit_report(r.id, 3, &actor(&fx.ra), t + secs(7), LEASE_S)
            .await
            .unwrap();
        let key = key_of(c, &fx.sr).await;
        let (r4, v) = c
            .sign_report(
                r.id,
                3,
                &signature(&fx.sr, key, "{\"v\":3}"),
                &actor(&fx.sr),
                t + secs(8),
                LEASE_S,
            )
            .await
            .unwrap();
        assert_eq!((r4.state.as_str(), r4.signed_version), ("signed", Some(3)));
        assert_eq!(
            (v.verifier_login.as_deref(), v.signed_content.as_deref()),
            (Some("sr"), Some("{\"v\":3}"))
        );
        let done = item(c, it.id).await;
        assert_eq!(done.state, WorkState::Signed);
        // signing twice is refused
        assert!(matches!(
            c.sign_report(r.id, 3, &signature(&fx.sr, key, "{}"), &actor(&fx.sr), t + secs(9), LEASE_S)
                .await,
            Err(Error::Conflict(m)) if m.starts_with("wrong-state")
        ));
        // an addendum on the signed version; a correction supersedes it
        c.add_addendum(
            r.id,
            3,
            "补充",
            &signature(&fx.sr, key, "{}"),
            &actor(&fx.sr),
            t + secs(10),
        )
        .await
        .unwrap();
        let (r5, v4) = c
            .correct_report(
                r.id,
                3,
                &draft(it.id, None, "更正").content,
                "复核",
                &signature(&fx.sr, key, "{\"v\":4}"),
                &actor(&fx.sr),
                t + secs(11),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                r5.signed_version,
                v4.version,
                v4.kind.as_str(),
                v4.state.as_str()
            ),
            (Some(4), 4, "correction", "signed")
        );
        let all = c.report_versions(r.id).await.unwrap();
        let states: Vec<&str> = all.iter().map(|v| v.state.as_str()).collect();
        assert_eq!(states, ["draft", "returned", "superseded", "signed"]);
        assert_eq!(all[1].reason.as_deref(), Some("请补充"));
        // an addendum goes to the version in force only
        assert!(
            c.add_addendum(
                r.id,
                3,
                "x",
                &signature(&fx.sr, key, "{}"),
                &actor(&fx.sr),
                t + secs(12)
            )
            .await
            .is_err()
        );
        assert_eq!(c.report_addenda(r.id).await.unwrap().len(), 1);
        // instance hashes of the study
        let hashes = c.study_instance_hashes(r.study_id).await.unwrap();
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[0].1, hash(&format!("file:{}.1.1", s.uid)));
        // the public verification code of a version: made once, then the same; found
        // by code; other versions have their own
        let code = c
            .report_verify_code(r.id, 3, &"a".repeat(32), t + secs(13))
            .await
            .unwrap();
        assert_eq!(code, "a".repeat(32));
        let again = c
            .report_verify_code(r.id, 3, &"b".repeat(32), t + secs(14))
            .await
            .unwrap();
        assert_eq!(again, code);
        let v4 = c
            .report_verify_code(r.id, 4, &"c".repeat(32), t + secs(14))
            .await
            .unwrap();
        assert_eq!(v4, "c".repeat(32));
        assert_eq!(
            c.report_by_verify_code(&code).await.unwrap(),
            Some((r.id, 3))
        );
        assert_eq!(
            c.report_by_verify_code(&"b".repeat(32)).await.unwrap(),
            None
        );
        // the clinic was told: signed, addendum, corrected
        let k = kinds(c, it.id).await;
        for want in ["report_signed", "report_addendum", "report_corrected"] {
            assert_eq!(count(&k, want), 1, "{want} in {k:?}");
        }
        // lists by institution and state
        let mine = c
            .list_reports(&ReportFilter {
                institution_ids: Some(vec![fx.village.id]),
                state: Some("signed".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.len(), 1);
        let other = c
            .list_reports(&ReportFilter {
                institution_ids: Some(vec![fx.county.id]),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(other.is_empty());
        // a new key revokes the old one, which still exists for verification
        let key2 = key_of(c, &fx.ra).await;
        assert_ne!(key, key2);
        let pk = format!("04{}", hash("another").repeat(2));
        let key3 = c
            .add_signing_key(fx.sr.id, &pk, &hash(&pk), "s", "kek1", wall())
            .await
            .unwrap();
        assert_eq!(
            c.active_signing_key(fx.sr.id).await.unwrap().map(|k| k.id),
            Some(key3.id)
        );
        assert!(
            c.get_signing_key(key)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        assert!(
            c.reseal_signing_key(key3.id, "kek1", "s2", "kek2")
                .await
                .unwrap()
        );
        assert!(
            !c.reseal_signing_key(key3.id, "kek1", "s3", "kek2")
                .await
                .unwrap()
        );
    }

    pub async fn critical_values_escalate_at_the_limit(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let doc = add_user(c, "Village", "vdoc", Role::ClinicDoctor).await;
        let head = add_user(c, "Village", "vhead", Role::ClinicDoctor).await;
        c.set_institution_report_settings(fx.village.id, Some(Some(head.id)), None)
            .await
            .unwrap();
        let (rid, item_id) = signed_report(c, &fx, 310, "P-CRIT").await;
        let t0 = wall() + secs(100);
        let limit = 600;
        let a = c
            .raise_critical(
                rid,
                "ct_intracranial_haemorrhage",
                Some("急性脑出血"),
                &actor(&fx.sr),
                t0,
                limit,
            )
            .await
            .unwrap();
        let b = c
            .raise_critical(
                rid,
                "ct_intracranial_haemorrhage",
                None,
                &actor(&fx.sr),
                t0,
                limit,
            )
            .await
            .unwrap();
        assert_eq!((a.state.as_str(), a.due_at), ("open", t0 + secs(limit)));
        // the clinic users were notified (both), not the readers
        for u in [&doc, &head] {
            assert!(
                notes(c, u)
                    .await
                    .iter()
                    .any(|(_, k)| k == "critical_raised")
            );
        }
        assert!(
            !notes(c, &fx.rb)
                .await
                .iter()
                .any(|(_, k)| k == "critical_raised")
        );
        // acknowledged once
        let acked = c
            .acknowledge_critical(
                a.id,
                "王医生",
                "已电话通知患者转诊",
                &actor(&doc),
                t0 + secs(60),
            )
            .await
            .unwrap();
        assert_eq!(
            (acked.state.as_str(), acked.ack_name.as_deref()),
            ("acknowledged", Some("王医生"))
        );
        assert!(matches!(
            c.acknowledge_critical(a.id, "x", "y", &actor(&doc), t0 + secs(61)).await,
            Err(Error::Conflict(m)) if m == "already-acknowledged"
        ));
        assert!(matches!(
            c.acknowledge_critical(999_999, "x", "y", &actor(&doc), t0)
                .await,
            Err(Error::NotFound(_))
        ));
        // not before the limit; at the limit once; never the acknowledged one
        assert!(
            c.escalate_due_criticals(t0 + secs(limit) - 1, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let up = c
            .escalate_due_criticals(t0 + secs(limit), 10)
            .await
            .unwrap();
        assert_eq!(up.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b.id]);
        assert!(
            c.escalate_due_criticals(t0 + secs(limit + 60), 10)
                .await
                .unwrap()
                .is_empty()
        );
        for u in [&head, &fx.ga] {
            assert!(
                notes(c, u)
                    .await
                    .iter()
                    .any(|(_, k)| k == "critical_escalated"),
                "{}",
                u.login
            );
        }
        assert!(
            !notes(c, &doc)
                .await
                .iter()
                .any(|(_, k)| k == "critical_escalated")
        );
        // the communication record
        let log_a: Vec<String> = c
            .critical_log(a.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.kind)
            .collect();
        assert_eq!(log_a, ["raised", "notified", "acknowledged"]);
        let log_b: Vec<String> = c
            .critical_log(b.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.kind)
            .collect();
        assert_eq!(log_b, ["raised", "notified", "escalated"]);
        let k = kinds(c, item_id).await;
        assert_eq!(count(&k, "critical_raised"), 2);
        assert_eq!(count(&k, "critical_escalated"), 1);
        assert_eq!(count(&k, "critical_acknowledged"), 1);
        let open = c
            .list_criticals(&CriticalFilter {
                institution_ids: Some(vec![fx.village.id]),
                state: Some("open".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(open.len(), 1);
    }

    pub async fn critical_values_alert_the_clinic_users_on_duty(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        let t0 = wall() + secs(100);
        // China Standard Time minute of day at t0, and daily windows around it
        let minute = (t0 / 1_000_000 + 8 * 3600).rem_euclid(86_400) / 60;
        let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(60));
        let on = format!("daily {}-{}", hhmm(minute - 5), hhmm(minute + 5));
        let off = format!("daily {}-{}", hhmm(minute + 60), hhmm(minute + 120));
        let day = add_user(c, "Village", "vday", Role::ClinicDoctor).await;
        let night = add_user(c, "Village", "vnight", Role::ClinicDoctor).await;
        let always = add_user(c, "Village", "valways", Role::ClinicTech).await;
        c.set_duty_schedule(day.id, Some(&on)).await.unwrap();
        c.set_duty_schedule(night.id, Some(&off)).await.unwrap();
        assert_eq!(
            c.get_user(night.id).await.unwrap().unwrap().duty_schedule,
            Some(off.clone())
        );
        // a schedule that does not parse, an unknown user
        assert!(matches!(
            c.set_duty_schedule(day.id, Some("mon 25:00-26:00")).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.set_duty_schedule(999_999, Some(&on)).await,
            Err(Error::NotFound(_))
        ));
        let (rid, _) = signed_report(c, &fx, 320, "P-DUTY").await;
        let alerted = |users: Vec<&User>| {
            let users: Vec<User> = users.into_iter().cloned().collect();
            async move {
                let mut out = Vec::new();
                for u in &users {
                    if notes(c, u)
                        .await
                        .iter()
                        .any(|(_, k)| k == "critical_raised")
                    {
                        out.push(u.login.clone());
                    }
                }
                out
            }
        };
        let a = c
            .raise_critical(rid, "ecg_stemi", None, &actor(&fx.sr), t0, 600)
            .await
            .unwrap();
        // on duty now by schedule, and without a schedule; not the one off duty
        assert_eq!(
            alerted(vec![&day, &night, &always]).await,
            ["vday", "valways"]
        );
        let log = c.critical_log(a.id).await.unwrap();
        let notified: serde_json::Value = serde_json::from_str(&log[1].detail).unwrap();
        assert_eq!(log[1].kind, "notified");
        assert_eq!(notified["users"], serde_json::json!(["vday", "valways"]));
        assert_eq!(notified.get("nobody_on_duty"), None);
        // nobody on duty: everybody is alerted, and the record says why
        for u in [&day, &always] {
            c.set_duty_schedule(u.id, Some(&off)).await.unwrap();
        }
        let b = c
            .raise_critical(rid, "ecg_stemi", None, &actor(&fx.sr), t0 + secs(1), 600)
            .await
            .unwrap();
        assert_eq!(
            alerted(vec![&day, &night, &always]).await,
            ["vday", "vnight", "valways"]
        );
        let log = c.critical_log(b.id).await.unwrap();
        let notified: serde_json::Value = serde_json::from_str(&log[1].detail).unwrap();
        assert_eq!(
            notified["users"],
            serde_json::json!(["vday", "vnight", "valways"])
        );
        assert_eq!(notified["nobody_on_duty"], serde_json::Value::Bool(true));
        // blank clears: always on duty again
        c.set_duty_schedule(night.id, Some("  ")).await.unwrap();
        assert_eq!(
            c.get_user(night.id).await.unwrap().unwrap().duty_schedule,
            None
        );
        let d = c
            .raise_critical(rid, "ecg_stemi", None, &actor(&fx.sr), t0 + secs(2), 600)
            .await
            .unwrap();
        let log = c.critical_log(d.id).await.unwrap();
        let notified: serde_json::Value = serde_json::from_str(&log[1].detail).unwrap();
        assert_eq!(notified["users"], serde_json::json!(["vnight"]));
    }

    pub async fn recognition_and_pushes(c: Arc<SqlCatalog>) {
        let c: &dyn Catalog = &*c;
        let fx = fixture(c).await;
        c.put_exam_type(
            fx.alliance.id,
            "ct_head_plain",
            &serde_json::json!({"code": "ct_head_plain"}),
            true,
            Some(180),
            wall(),
        )
        .await
        .unwrap();
        c.set_institution_report_settings(
            fx.village.id,
            None,
            Some(Some(PacsTarget {
                ae_title: "VPACS".into(),
                host: "127.0.0.1".into(),
                port: 11113,
            })),
        )
        .await
        .unwrap();
        let (rid, _) = signed_report(c, &fx, 320, RID).await;
        // recognition by the resident ID's identity hash, within the alliance only
        let basis = dxhub_core::worklist::identity_basis(RID, None, &[], "");
        let rows = c
            .recognition(
                fx.alliance.id,
                &dxhub_store::worklist::identity_hash(&basis),
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].recognition_eligible);
        assert_eq!(
            (rows[0].validity_days, rows[0].qc_grade.as_deref()),
            (Some(180), Some("jia"))
        );
        let (b, _, _) = other_alliance(c).await;
        assert!(
            c.recognition(b.id, &dxhub_store::worklist::identity_hash(&basis))
                .await
                .unwrap()
                .is_empty()
        );
        // the push-back was queued at signing, and is taken once while locked
        let pushes = c.list_pushes(rid).await.unwrap();
        assert_eq!(pushes.len(), 1);
        assert_eq!(
            (pushes[0].state.as_str(), pushes[0].target.as_str()),
            ("pending", "VPACS@127.0.0.1:11113")
        );
        let now = wall() + secs(10);
        let taken = c.take_due_pushes(now, 10, 60).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert!(c.take_due_pushes(now, 10, 60).await.unwrap().is_empty());
        c.finish_push(
            taken[0].id,
            &PushResult::Failed {
                status: None,
                error: "refused".into(),
                retry_at: Some(now + secs(30)),
            },
            now,
        )
        .await
        .unwrap();
        assert!(
            c.take_due_pushes(now + secs(29), 10, 60)
                .await
                .unwrap()
                .is_empty()
        );
        let again = c.take_due_pushes(now + secs(30), 10, 60).await.unwrap();
        assert_eq!(again[0].attempts, 2);
        c.finish_push(
            again[0].id,
            &PushResult::Failed {
                status: Some("A700".into()),
                error: "out of resources".into(),
                retry_at: None,
            },
            now,
        )
        .await
        .unwrap();
        assert_eq!(c.list_pushes(rid).await.unwrap()[0].state, "dead");
        c.retry_push(again[0].id, now).await.unwrap();
        let third = c.take_due_pushes(now, 10, 60).await.unwrap();
        c.finish_push(
            third[0].id,
            &PushResult::Delivered {
                status: "0000,0000".into(),
            },
            now,
        )
        .await
        .unwrap();
        let p = &c.list_pushes(rid).await.unwrap()[0];
        assert_eq!(
            (p.state.as_str(), p.last_status.as_deref()),
            ("delivered", Some("0000,0000"))
        );
        assert!(c.retry_push(999_999, now).await.is_err());
    }
}
