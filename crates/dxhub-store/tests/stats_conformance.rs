#![allow(clippy::unwrap_used)]
//! The alliance indicators ([`dxhub_store::StatsStore`]) on every backend, as the other
//! conformance suites: SQLite always, PostgreSQL when `DXHUB_TEST_PG_URL` names a server.
//!
//! One known data set, built through the store's API with fixed times around two local
//! days D = 2026-11-20 and D+1 (UTC+8): two alliances, institutions of every level with
//! and without populations, studies, work items signed at chosen instants (some a
//! microsecond either side of local midnight), critical values raised and acknowledged,
//! recognition-lookup audit entries. The one thing the API cannot set is a study's
//! `received_at` (the wall clock when indexed): the test sets it behind the catalog's back.
//! Every figure is asserted exactly, for the alliance, for institution subtrees and for
//! one-day ranges on either side of midnight.

use std::sync::Arc;

use dxhub_core::stats::{day_start_us, local_day, parse_date};
use dxhub_core::worklist::{US_PER_MIN, US_PER_S, WorkState};
use dxhub_core::{InstitutionLevel, Role};
use dxhub_store::report::{DraftSpec, ReportDefaults, Signature, VersionBody};
use dxhub_store::stats::{StatsScope, TurnaroundFigures};
use dxhub_store::worklist::{Actor, Claim, MemberSpec, ReadySettings};
use dxhub_store::{
    Catalog, InstanceAttrs, Institution, NewAuditEntry, NewInstance, NewInstitution, NewUser,
    PatientAttrs, SeriesAttrs, SqlCatalog, StudyAttrs, User,
};
use sqlx::{AnyConnection, Connection, Executor};

mod common;
use common::{run_postgres, run_sqlite};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(|c, url| async move { super::$name(c, url).await })
                        .await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(|c, url| async move { super::$name(c, url).await })
                        .await;
                }
            )*
        }
    };
}

conformance!(indicators_of_a_known_data_set);

// ---------------------------------------------------------------- helpers

const LEASE_S: i64 = 300;
const CT_SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2";

/// Local day D (2026-11-20, UTC+8).
fn d() -> i64 {
    parse_date("2026-11-20").unwrap()
}

/// Local time `hh:mm:ss` of day `D + plus` (UTC+8), epoch µs.
fn at(plus: i64, h: i64, m: i64, s: i64) -> i64 {
    day_start_us(d() + plus) + ((h * 60 + m) * 60 + s) * US_PER_S
}

const fn mins(n: i64) -> i64 {
    n * US_PER_MIN
}

fn hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn uid(n: u32) -> String {
    format!("1.2.826.0.1.3680043.10.77.{n}")
}

fn actor(u: &User) -> Actor {
    Actor::user(u.id, &u.login)
}

async fn raw(url: &str, sql: &str) {
    let mut conn = AnyConnection::connect(url).await.expect("connect");
    conn.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn institution(
    c: &dyn Catalog,
    alliance: &str,
    name: &str,
    level: InstitutionLevel,
    parent: Option<&str>,
    population: Option<i64>,
) -> Institution {
    c.add_institution(&NewInstitution {
        alliance: alliance.into(),
        name: name.into(),
        level,
        parent: parent.map(Into::into),
        population,
    })
    .await
    .expect("institution")
}

async fn user(c: &dyn Catalog, institution: &str, login: &str, role: Role) -> User {
    c.add_user(&NewUser {
        institution: institution.into(),
        login: login.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${login}"),
    })
    .await
    .expect("user")
}

/// Index a study of `instances` instances (one series of `modality`, if any) and set its
/// `received_at`.
#[allow(clippy::too_many_arguments)]
async fn study(
    c: &dyn Catalog,
    url: &str,
    institution_id: i64,
    n: u32,
    modality: Option<&str>,
    patient_id: &str,
    instances: u32,
    received_at: i64,
) -> String {
    let uid = uid(n);
    for i in 1..=instances {
        let sop = format!("{uid}.1.{i}");
        let sha256 = hash(&format!("file:{sop}"));
        c.insert_instance(&NewInstance {
            institution_id: Some(institution_id),
            patient: PatientAttrs {
                patient_id: patient_id.into(),
                issuer_of_patient_id: None,
                patient_name: Some("DOE^JOHN".into()),
                patient_birth_date: None,
                patient_sex: None,
            },
            study: StudyAttrs {
                study_instance_uid: uid.clone(),
                study_date: Some("20261120".into()),
                ..Default::default()
            },
            series: SeriesAttrs {
                series_instance_uid: format!("{uid}.1"),
                modality: modality.map(Into::into),
                series_number: Some(1),
                ..Default::default()
            },
            instance: InstanceAttrs {
                sop_instance_uid: sop.clone(),
                sop_class_uid: CT_SOP_CLASS.into(),
                transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
                instance_number: Some(i64::from(i)),
                number_of_frames: None,
                size_bytes: 1000,
                blob_key: format!("studies/{uid}/{}.dcm", &sha256[..16]),
                dataset_hash: hash(&format!("{sop}#0")),
                sha256,
                source_ae: None,
                received_at,
                metadata: None,
            },
        })
        .await
        .expect("insert instance");
    }
    raw(
        url,
        &format!(
            "UPDATE studies SET received_at = {received_at} WHERE study_instance_uid = '{uid}'"
        ),
    )
    .await;
    uid
}

/// Make the study ready at `ready` (its work item); the work item's id.
async fn ready(c: &dyn Catalog, uid: &str, ready: i64) -> i64 {
    match c
        .make_ready(uid, ready, &ReadySettings::default())
        .await
        .unwrap()
    {
        Some(Some(item)) => item.id,
        other => panic!("no work item for {uid}: {other:?}"),
    }
}

async fn claim(c: &dyn Catalog, item: i64, reader: &User, now: i64) {
    match c.claim(item, &actor(reader), now, LEASE_S).await.unwrap() {
        Claim::Claimed(_) => {}
        Claim::Refused(r) => panic!("claim refused: {r:?}"),
    }
}

/// Ready at `ready_at`, signed at `done_at` through the worklist's transitions.
async fn signed_item(c: &dyn Catalog, uid: &str, reader: &User, ready_at: i64, done_at: i64) {
    let id = ready(c, uid, ready_at).await;
    claim(c, id, reader, done_at - 3 * US_PER_S).await;
    for (to, t) in [
        (WorkState::Drafted, done_at - 2 * US_PER_S),
        (WorkState::Submitted, done_at - US_PER_S),
        (WorkState::Signed, done_at),
    ] {
        c.transition(id, to, &actor(reader), t, LEASE_S)
            .await
            .unwrap_or_else(|e| panic!("{uid} → {to}: {e}"));
    }
}

/// Ready at `ready_at`, reported by `reader` and signed by `senior` at `done_at`; the
/// report's id.
async fn signed_report(
    c: &dyn Catalog,
    uid: &str,
    reader: &User,
    senior: &User,
    key_id: i64,
    ready_at: i64,
    done_at: i64,
) -> i64 {
    let id = ready(c, uid, ready_at).await;
    claim(c, id, reader, done_at - 3 * US_PER_S).await;
    let (r, _) = c
        .save_draft(
            &DraftSpec {
                work_item_id: id,
                template_code: "ct_head_plain".into(),
                exam_code: Some("ct_head_plain".into()),
                kind: "imaging".into(),
                content: VersionBody {
                    body: serde_json::json!({"sections": {"impression": "未见异常"}, "fields": {}}),
                    qc_grade: Some("jia".into()),
                    ..Default::default()
                },
                base_version: None,
            },
            &actor(reader),
            done_at - 2 * US_PER_S,
            LEASE_S,
        )
        .await
        .unwrap();
    c.submit_report(r.id, 1, &actor(reader), done_at - US_PER_S, LEASE_S)
        .await
        .unwrap();
    c.sign_report(
        r.id,
        1,
        &Signature {
            signer_id: senior.id,
            key_id,
            content: "{}".into(),
            signature: "ab".repeat(64),
        },
        &actor(senior),
        done_at,
        LEASE_S,
    )
    .await
    .unwrap();
    r.id
}

fn scope(from: i64, to: i64, alliance_id: i64, institutions: Option<Vec<i64>>) -> StatsScope {
    StatsScope {
        from_day: from,
        to_day: to,
        alliance_id: Some(alliance_id),
        institution_ids: institutions,
    }
}

fn figures(
    signed: i64,
    p: [Option<f64>; 3],
    breached: i64,
    breach_rate: Option<f64>,
) -> TurnaroundFigures {
    TurnaroundFigures {
        signed,
        p50_minutes: p[0],
        p90_minutes: p[1],
        p95_minutes: p[2],
        breached,
        breach_rate,
    }
}

/// `(institution_id, level, population, remote_reads, per_10k)`.
type RemoteReadCells<'a> = (i64, &'a str, Option<i64>, i64, Option<f64>);
/// `(category, raised, acknowledged, unacknowledged, ack_p50, ack_p90)`.
type CriticalCells<'a> = (&'a str, i64, i64, i64, Option<f64>, Option<f64>);

// ---------------------------------------------------------------- the suite

async fn indicators_of_a_known_data_set(c: Arc<SqlCatalog>, url: String) {
    let c: &dyn Catalog = &*c;
    let url = url.as_str();
    // Alliance A: county C (population 400 000) → township T (40 000) → village V
    // (2 000); C → township T2 (no population) → village V2 (1 500).
    // Alliance B: county BC (100 000) → village BV (1 000).
    let a = c.add_alliance("A").await.unwrap();
    let b = c.add_alliance("B").await.unwrap();
    use InstitutionLevel::{County, Township, Village};
    let cc = institution(c, "A", "C", County, None, Some(400_000)).await;
    let t = institution(c, "A", "T", Township, Some("C"), Some(40_000)).await;
    let v = institution(c, "A", "V", Village, Some("T"), Some(2_000)).await;
    let t2 = institution(c, "A", "T2", Township, Some("C"), None).await;
    let v2 = institution(c, "A", "V2", Village, Some("T2"), Some(1_500)).await;
    institution(c, "B", "BC", County, None, Some(100_000)).await;
    let bv = institution(c, "B", "BV", Village, Some("BC"), Some(1_000)).await;

    let ra = user(c, "C", "ra", Role::Reader).await;
    let sr = user(c, "C", "sr", Role::SeniorReader).await;
    let rb = user(c, "BC", "rb", Role::Reader).await;
    for (alliance, readers) in [(a.id, vec![&ra, &sr]), (b.id, vec![&rb])] {
        for pool in c.list_pools(Some(alliance)).await.unwrap() {
            for u in &readers {
                c.set_pool_member(
                    pool.id,
                    u.id,
                    &MemberSpec {
                        max_open_claims: 50,
                        ..MemberSpec::default()
                    },
                )
                .await
                .unwrap();
            }
        }
    }
    let pools = c.list_pools(Some(a.id)).await.unwrap();
    let pool = |name: &str| pools.iter().find(|p| p.name == name).unwrap().clone();
    let (ecg, radiology, ultrasound) = (pool("ecg"), pool("radiology"), pool("ultrasound"));
    c.seed_report_defaults(a.id, &ReportDefaults::default(), at(-5, 0, 0, 0))
        .await
        .unwrap();
    let pk = format!("04{}", hash("sr").repeat(2));
    let key = c
        .add_signing_key(sr.id, &pk, &hash(&pk), "sealed", "kek1", at(-5, 0, 0, 0))
        .await
        .unwrap()
        .id;

    // ---- studies (received_at) and their work items (ready → signed)
    let last_us_of_d = at(1, 0, 0, 0) - 1;
    // s1: V, CT, patient P1, received and signed in the last µs of D (60 min)
    let s1 = study(c, url, v.id, 1, Some("CT"), "P1", 1, last_us_of_d).await;
    let r1 = signed_report(c, &s1, &ra, &sr, key, last_us_of_d - mins(60), last_us_of_d).await;
    // s2: V, CT, P1 again, received at D+1 00:00:00, signed 300 min later (breached: the
    // radiology SLA is 240 min)
    let s2 = study(c, url, v.id, 2, Some("CT"), "P1", 1, at(1, 0, 0, 0)).await;
    signed_item(c, &s2, &ra, at(1, 0, 0, 0), at(1, 5, 0, 0)).await;
    // s3: T, US, P2, two instances; signed in 30 min
    let s3 = study(c, url, t.id, 3, Some("US"), "P2", 2, at(0, 9, 0, 0)).await;
    signed_item(c, &s3, &ra, at(0, 9, 0, 0), at(0, 9, 30, 0)).await;
    // s4: C (county), CT, P3; signed in 120 min
    let s4 = study(c, url, cc.id, 4, Some("CT"), "P3", 1, at(0, 10, 0, 0)).await;
    let r4 = signed_report(c, &s4, &ra, &sr, key, at(0, 10, 0, 0), at(0, 12, 0, 0)).await;
    // s5: V2, ECG, P4; signed in 20 min
    let s5 = study(c, url, v2.id, 5, Some("ECG"), "P4", 1, at(1, 8, 0, 0)).await;
    signed_item(c, &s5, &ra, at(1, 8, 0, 0), at(1, 8, 20, 0)).await;
    // s6: C, no modality; s7: C, MR, never ready (the study's modality counts)
    study(c, url, cc.id, 6, None, "P5", 1, at(0, 11, 0, 0)).await;
    study(c, url, cc.id, 7, Some("MR"), "P5", 1, at(0, 11, 30, 0)).await;
    // s9: T, CT, P6: claimed, never signed
    let s9 = study(c, url, t.id, 9, Some("CT"), "P6", 1, at(0, 11, 0, 0)).await;
    let i9 = ready(c, &s9, at(0, 11, 0, 0)).await;
    claim(c, i9, &ra, at(0, 11, 1, 0)).await;
    // s10: V, CT, P7, received on D, never ready
    study(c, url, v.id, 10, Some("CT"), "P7", 1, at(0, 8, 0, 0)).await;
    // outside the range: s11 received and signed on D−1 (the last µs), at V
    let s11 = study(c, url, v.id, 11, Some("CT"), "P1", 1, at(0, 0, 0, 0) - 1).await;
    signed_item(c, &s11, &ra, at(-1, 22, 0, 0), at(0, 0, 0, 0) - 1).await;
    // alliance B: sb at BV on D, signed in 45 min
    let sb = study(c, url, bv.id, 12, Some("CT"), "PB", 1, at(0, 10, 0, 0)).await;
    signed_item(c, &sb, &rb, at(0, 10, 0, 0), at(0, 10, 45, 0)).await;

    // ---- critical values: X on r1 (V), Y on r4 (C)
    const X: &str = "ct_intracranial_haemorrhage";
    const Y: &str = "ct_aortic_dissection";
    let raise = |rid: i64, cat: &'static str, when: i64| {
        let sr = sr.clone();
        async move {
            c.raise_critical(rid, cat, None, &actor(&sr), when, 600)
                .await
                .unwrap()
                .id
        }
    };
    let ack = |id: i64, when: i64| {
        let sr = sr.clone();
        async move {
            c.acknowledge_critical(id, "王医生", "已通知", &actor(&sr), when)
                .await
                .unwrap();
        }
    };
    let c1 = raise(r1, X, last_us_of_d).await; // D, acked in 10 min
    ack(c1, last_us_of_d + mins(10)).await;
    let c2 = raise(r1, X, at(1, 0, 0, 0)).await; // D+1, acked in 40 min
    ack(c2, at(1, 0, 40, 0)).await;
    raise(r1, X, at(1, 1, 0, 0)).await; // D+1, never acknowledged
    let c4 = raise(r4, Y, at(1, 2, 0, 0)).await; // D+1, acked in 5 min
    ack(c4, at(1, 2, 5, 0)).await;
    let c5 = raise(r4, Y, at(2, 0, 0, 0)).await; // D+2: outside
    ack(c5, at(2, 0, 1, 0)).await;

    // ---- recognition lookups (audit entries carry the wall clock)
    let lookup = |institution_id: i64, outcome: &'static str| NewAuditEntry {
        actor_kind: "user".into(),
        actor: "doc".into(),
        institution_id: Some(institution_id),
        action: "recognition-lookup".into(),
        object_kind: Some("patient_identity".into()),
        object_id: Some(hash("someone")),
        outcome: outcome.into(),
        client: None,
        request_id: None,
    };
    let mut lookups = Vec::new();
    for (inst, outcome) in [
        (v.id, "success"),
        (v.id, "success"),
        (t.id, "success"),
        (v.id, "denied"),
        (bv.id, "success"),
    ] {
        lookups.push(c.append_audit(&lookup(inst, outcome)).await.unwrap().at);
    }
    let mut other = lookup(v.id, "success");
    other.action = "study-read".into();
    c.append_audit(&other).await.unwrap();

    let dd = d();
    let all_a = scope(dd, dd + 1, a.id, None);
    let sub_t = Some(vec![t.id, v.id]);
    let sub_t2 = Some(vec![t2.id, v2.id]);

    // ================================================================ volumes
    let vol = c.stats_volumes(&all_a).await.unwrap();
    let got: Vec<(String, i64, String, Option<String>, i64, i64)> = vol
        .rows
        .iter()
        .map(|r| {
            (
                r.day.clone(),
                r.institution_id,
                r.institution.clone(),
                r.modality.clone(),
                r.studies,
                r.instances,
            )
        })
        .collect();
    let row = |day: &str, i: &Institution, m: Option<&str>, n: i64, k: i64| {
        (
            day.to_owned(),
            i.id,
            i.name.clone(),
            m.map(Into::into),
            n,
            k,
        )
    };
    assert_eq!(
        got,
        vec![
            row("2026-11-20", &cc, Some("CT"), 1, 1),
            row("2026-11-20", &cc, Some("MR"), 1, 1),
            row("2026-11-20", &cc, None, 1, 1),
            row("2026-11-20", &t, Some("CT"), 1, 1),
            row("2026-11-20", &t, Some("US"), 1, 2),
            row("2026-11-20", &v, Some("CT"), 2, 2),
            row("2026-11-21", &v, Some("CT"), 1, 1),
            row("2026-11-21", &v2, Some("ECG"), 1, 1),
        ]
    );
    assert_eq!((vol.totals.studies, vol.totals.instances), (9, 10));
    // either side of midnight: D alone, D+1 alone
    let d_only = c.stats_volumes(&scope(dd, dd, a.id, None)).await.unwrap();
    assert_eq!((d_only.totals.studies, d_only.totals.instances), (7, 8));
    let d1_only = c
        .stats_volumes(&scope(dd + 1, dd + 1, a.id, None))
        .await
        .unwrap();
    assert_eq!(d1_only.totals.studies, 2);
    // D−1 has the study received in its last microsecond
    let before = c
        .stats_volumes(&scope(dd - 1, dd - 1, a.id, None))
        .await
        .unwrap();
    assert_eq!(before.totals.studies, 1);
    assert_eq!(before.rows[0].day, "2026-11-19");
    // the township's subtree
    let vt = c
        .stats_volumes(&scope(dd, dd + 1, a.id, sub_t.clone()))
        .await
        .unwrap();
    assert_eq!((vt.totals.studies, vt.totals.instances), (5, 6));
    assert!(
        vt.rows
            .iter()
            .all(|r| r.institution_id == t.id || r.institution_id == v.id)
    );
    // alliance B sees only its study
    let vb = c
        .stats_volumes(&scope(dd, dd + 1, b.id, None))
        .await
        .unwrap();
    assert_eq!(
        vb.rows
            .iter()
            .map(|r| (r.institution_id, r.studies))
            .collect::<Vec<_>>(),
        vec![(bv.id, 1)]
    );
    // every alliance
    let every = c
        .stats_volumes(&StatsScope {
            alliance_id: None,
            ..all_a.clone()
        })
        .await
        .unwrap();
    assert_eq!(every.totals.studies, 10);

    // ================================================================ turnaround
    let ta = c.stats_turnaround(&all_a).await.unwrap();
    let by_pool = |id: i64| {
        ta.rows
            .iter()
            .find(|r| r.pool_id == Some(id))
            .unwrap_or_else(|| panic!("pool {id} missing"))
            .clone()
    };
    assert_eq!(ta.rows.len(), 3, "every pool of A, nothing unrouted");
    let rad = by_pool(radiology.id);
    assert_eq!(rad.pool.as_deref(), Some(radiology.label.as_str()));
    // radiology: 60 (s1), 300 (s2, breached), 120 (s4)
    assert_eq!(
        rad.figures,
        figures(
            3,
            [Some(120.0), Some(300.0), Some(300.0)],
            1,
            Some(1.0 / 3.0)
        )
    );
    assert_eq!(
        by_pool(ultrasound.id).figures,
        figures(1, [Some(30.0); 3], 0, Some(0.0))
    );
    assert_eq!(
        by_pool(ecg.id).figures,
        figures(1, [Some(20.0); 3], 0, Some(0.0))
    );
    // overall: 20, 30, 60, 120, 300
    assert_eq!(
        ta.overall,
        figures(5, [Some(60.0), Some(300.0), Some(300.0)], 1, Some(0.2))
    );
    // D alone: s1 (signed in the last µs of D), s3, s4
    let ta_d = c
        .stats_turnaround(&scope(dd, dd, a.id, None))
        .await
        .unwrap();
    assert_eq!(
        ta_d.overall,
        figures(3, [Some(60.0), Some(120.0), Some(120.0)], 0, Some(0.0))
    );
    // T2's subtree: the ECG of V2 only; empty pools have no figures
    let ta_t2 = c
        .stats_turnaround(&scope(dd, dd + 1, a.id, sub_t2.clone()))
        .await
        .unwrap();
    assert_eq!(ta_t2.overall.signed, 1);
    let rad_t2 = ta_t2
        .rows
        .iter()
        .find(|r| r.pool_id == Some(radiology.id))
        .unwrap();
    assert_eq!(rad_t2.figures, figures(0, [None; 3], 0, None));
    // nothing in range
    let empty = c
        .stats_turnaround(&scope(dd + 10, dd + 11, a.id, None))
        .await
        .unwrap();
    assert_eq!(empty.overall, figures(0, [None; 3], 0, None));

    // ================================================================ remote reads
    let rr = c.stats_remote_reads(&all_a).await.unwrap();
    let got: Vec<RemoteReadCells<'_>> = rr
        .rows
        .iter()
        .map(|r| {
            (
                r.institution_id,
                r.level.as_str(),
                r.population,
                r.remote_reads,
                r.per_10k,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (t.id, "township", Some(40_000), 1, Some(0.25)),
            (v.id, "village", Some(2_000), 2, Some(10.0)),
            (t2.id, "township", None, 0, None),
            (v2.id, "village", Some(1_500), 1, Some(10_000.0 / 1_500.0)),
        ]
    );
    // the county's population covers everything below it
    assert_eq!(rr.alliance.population, Some(400_000));
    assert_eq!(rr.alliance.remote_reads, 4);
    assert_eq!(rr.alliance.per_10k, Some(0.1));
    // T's subtree: T's population (V's is part of it)
    let rr_t = c
        .stats_remote_reads(&scope(dd, dd + 1, a.id, sub_t.clone()))
        .await
        .unwrap();
    assert_eq!(rr_t.rows.len(), 2);
    assert_eq!(
        (
            rr_t.alliance.population,
            rr_t.alliance.remote_reads,
            rr_t.alliance.per_10k
        ),
        (Some(40_000), 3, Some(0.75))
    );
    // T2 has no population: its villages' populations count
    let rr_t2 = c
        .stats_remote_reads(&scope(dd, dd + 1, a.id, sub_t2.clone()))
        .await
        .unwrap();
    assert_eq!(
        (rr_t2.alliance.population, rr_t2.alliance.remote_reads),
        (Some(1_500), 1)
    );
    // D+1 alone: s2 (V) and s5 (V2)
    let rr_d1 = c
        .stats_remote_reads(&scope(dd + 1, dd + 1, a.id, None))
        .await
        .unwrap();
    assert_eq!(rr_d1.alliance.remote_reads, 2);
    // alliance B
    let rr_b = c
        .stats_remote_reads(&scope(dd, dd + 1, b.id, None))
        .await
        .unwrap();
    assert_eq!(
        (
            rr_b.rows.len(),
            rr_b.alliance.population,
            rr_b.alliance.remote_reads
        ),
        (1, Some(100_000), 1)
    );

    // ================================================================ grassroots
    let g = c.stats_grassroots(&all_a).await.unwrap();
    let days: Vec<(&str, i64, i64)> = g
        .rows
        .iter()
        .map(|r| (r.day.as_str(), r.patients, r.studies))
        .collect();
    // D: s1 (P1@V), s3 (P2@T); D+1: s2 (P1@V), s5 (P4@V2); P1 counted once overall
    assert_eq!(days, vec![("2026-11-20", 2, 2), ("2026-11-21", 2, 2)]);
    assert_eq!((g.totals.patients, g.totals.studies), (3, 4));
    let g_t = c
        .stats_grassroots(&scope(dd, dd + 2, a.id, sub_t.clone()))
        .await
        .unwrap();
    let days: Vec<(&str, i64, i64)> = g_t
        .rows
        .iter()
        .map(|r| (r.day.as_str(), r.patients, r.studies))
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-11-20", 2, 2),
            ("2026-11-21", 1, 1),
            ("2026-11-22", 0, 0)
        ]
    );
    assert_eq!((g_t.totals.patients, g_t.totals.studies), (2, 3));
    // D−1: s11 signed in its last µs
    let g_before = c
        .stats_grassroots(&scope(dd - 1, dd - 1, a.id, None))
        .await
        .unwrap();
    assert_eq!((g_before.totals.patients, g_before.totals.studies), (1, 1));

    // ================================================================ criticals
    let cr = c.stats_criticals(&all_a).await.unwrap();
    let got: Vec<CriticalCells<'_>> = cr
        .rows
        .iter()
        .map(|r| {
            (
                r.category.as_str(),
                r.figures.raised,
                r.figures.acknowledged,
                r.figures.unacknowledged,
                r.figures.ack_p50_minutes,
                r.figures.ack_p90_minutes,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Y, 1, 1, 0, Some(5.0), Some(5.0)),
            (X, 3, 2, 1, Some(10.0), Some(40.0)),
        ]
    );
    let o = &cr.overall;
    assert_eq!(
        (
            o.raised,
            o.acknowledged,
            o.unacknowledged,
            o.ack_p50_minutes,
            o.ack_p90_minutes
        ),
        (4, 3, 1, Some(10.0), Some(40.0))
    );
    // D alone: c1 (raised in the last µs of D)
    let cr_d = c.stats_criticals(&scope(dd, dd, a.id, None)).await.unwrap();
    assert_eq!((cr_d.overall.raised, cr_d.overall.acknowledged), (1, 1));
    assert_eq!(cr_d.rows.len(), 1);
    // T's subtree: V's values only (X)
    let cr_t = c
        .stats_criticals(&scope(dd, dd + 1, a.id, sub_t.clone()))
        .await
        .unwrap();
    assert_eq!(
        cr_t.rows
            .iter()
            .map(|r| r.category.as_str())
            .collect::<Vec<_>>(),
        vec![X]
    );
    assert_eq!(cr_t.overall.raised, 3);
    // B has none
    let cr_b = c
        .stats_criticals(&scope(dd, dd + 1, b.id, None))
        .await
        .unwrap();
    assert_eq!(cr_b.overall.raised, 0);
    assert_eq!(cr_b.overall.ack_p50_minutes, None);

    // ================================================================ recognition
    let (first, last) = (
        local_day(*lookups.iter().min().unwrap()),
        local_day(*lookups.iter().max().unwrap()),
    );
    let rec = c
        .stats_recognition(&scope(first, last, a.id, None))
        .await
        .unwrap();
    assert_eq!(rec.lookups, 3, "successful lookups of A only: {rec:?}");
    let per_inst = |rows: &[dxhub_store::stats::RecognitionRow], id: i64| -> i64 {
        rows.iter()
            .filter(|r| r.institution_id == id)
            .map(|r| r.lookups)
            .sum()
    };
    assert_eq!(per_inst(&rec.rows, v.id), 2);
    assert_eq!(per_inst(&rec.rows, t.id), 1);
    if first == last {
        assert_eq!(rec.rows.len(), 2);
        assert!(
            rec.rows
                .iter()
                .all(|r| r.day == dxhub_core::stats::format_date(first))
        );
    }
    let rec_v = c
        .stats_recognition(&scope(first, last, a.id, Some(vec![v.id])))
        .await
        .unwrap();
    assert_eq!(rec_v.lookups, 2);
    let rec_b = c
        .stats_recognition(&scope(first, last, b.id, None))
        .await
        .unwrap();
    assert_eq!(rec_b.lookups, 1);
    // the range ends before the lookups
    let rec_none = c
        .stats_recognition(&scope(first - 3, first - 1, a.id, None))
        .await
        .unwrap();
    assert_eq!(rec_none.lookups, 0);
    assert!(rec_none.rows.is_empty());
}
