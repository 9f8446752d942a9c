//! Two dxhub processes on one PostgreSQL, with 8 readers calling `POST /api/v1/worklist/next`
//! concurrently over 2,000 items: every item is claimed exactly once and none is lost
//! (issue #6). Readers alternate between the two processes, so the claims of one reader
//! and of one item race across replicas; the exactly-once guarantee rests on the store's
//! conditional updates and `FOR UPDATE SKIP LOCKED`, not on anything in one process.
//! And an event committed after a later one (ids are drawn at insert) still reaches the
//! open event streams of both processes, once; a stream resumed with `Last-Event-ID`
//! replays its backlog, or asks for a reload past 1000 events.
//!
//! SQLite is not run here: two processes cannot share one SQLite index the way replicas
//! share PostgreSQL (the store's conformance suite covers SQLite's single writer).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dxhub_e2e::api::{
    Api, PASSWORD, add_user, collect_sse, database_url, issue_token, postgres_options,
};
use dxhub_e2e::hub::{TestHub, dxhub_bin};
use dxhub_store::worklist::{MemberSpec, ReadySettings};
use dxhub_store::{
    Catalog, CatalogOptions, InstanceAttrs, NewInstance, PatientAttrs, SeriesAttrs, SqlCatalog,
    StudyAttrs, WorklistStore,
};
use futures::StreamExt;

const ITEMS: usize = 2_000;
const READERS: usize = 8;

/// A second `dxhub serve` on the first hub's database: its own data dir, no admin set-up
/// (the alliance, institutions and users are the first hub's rows).
struct Replica {
    child: Child,
    http: SocketAddr,
    log: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl Replica {
    fn spawn(first: &TestHub) -> Replica {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("replica.log");
        let mut c = Command::new(dxhub_bin());
        c.arg("--data-dir").arg(tmp.path().join("data"));
        c.env("DXHUB_LOG__FILTER", "info,dicom_parser=error");
        for (k, v) in &first.opts.env {
            c.env(k, v);
        }
        let mut child = c
            .args(["serve", "--http", "127.0.0.1:0", "--dicom", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
            .spawn()
            .expect("spawn the second dxhub serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!(
                "the second dxhub did not become ready; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        assert_eq!(v["event"], "ready");
        let http = v["http"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("http addr");
        Replica {
            child,
            http,
            log,
            _tmp: tmp,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// One single-instance CT study of patient `n` at `institution`.
fn ct_study(n: usize, institution: i64) -> NewInstance {
    let study = format!("2.25.6006.{n}");
    let series = format!("{study}.1");
    let sop = format!("{series}.1");
    NewInstance {
        institution_id: Some(institution),
        patient: PatientAttrs {
            patient_id: format!("WL{n:05}"),
            issuer_of_patient_id: None,
            patient_name: Some(format!("READ^PATIENT{n}")),
            patient_birth_date: Some("19700101".into()),
            patient_sex: Some(if n.is_multiple_of(2) { "F" } else { "M" }.into()),
        },
        study: StudyAttrs {
            study_instance_uid: study.clone(),
            study_date: Some("20261122".into()),
            study_time: Some("101500".into()),
            accession_number: Some(format!("ACC{n}")),
            ..Default::default()
        },
        series: SeriesAttrs {
            series_instance_uid: series.clone(),
            modality: Some("CT".into()),
            series_number: Some(1),
            ..Default::default()
        },
        instance: InstanceAttrs {
            sop_instance_uid: sop.clone(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            instance_number: Some(1),
            number_of_frames: None,
            size_bytes: 1000,
            blob_key: format!("studies/{study}/{series}/{sop}/0.dcm"),
            sha256: format!("{n:064x}"),
            dataset_hash: format!("{:064x}", n + 1_000_000),
            source_ae: Some("CT01".into()),
            received_at: now_us(),
            metadata: None,
        },
    }
}

#[derive(Debug, Default)]
struct ReaderLog {
    /// work-item ids this reader was given, in order
    claimed: Vec<i64>,
    /// replies other than 200 and the final 404 nothing-queued
    unexpected: Vec<String>,
    per_hub: [usize; 2],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_eight_readers_claim_every_item_exactly_once() {
    let Some(opts) = postgres_options("wl_replicas").await else {
        return;
    };
    let hub1 = TestHub::spawn(opts);
    // the second process migrates the same database (sqlx: already applied, nothing to do)
    // and creates nothing
    let hub2 = Replica::spawn(&hub1);

    let url = database_url(&hub1);
    let catalog = SqlCatalog::connect(
        &url,
        CatalogOptions {
            max_connections: 8,
            sqlite_synchronous_full: true,
        },
    )
    .await
    .expect("open catalog");
    let county = catalog
        .find_institution("县人民医院")
        .await
        .expect("find institution")
        .expect("the county hospital");
    let pool = catalog
        .list_pools(Some(county.alliance_id))
        .await
        .expect("pools")
        .into_iter()
        .find(|p| p.name == "radiology")
        .expect("the alliance's radiology pool");

    // 8 readers, members of the radiology pool with room for every item
    let mut readers: Vec<(i64, String, String)> = Vec::new();
    for r in 0..READERS {
        let login = format!("reader{r}");
        let id = add_user(&hub1, "县人民医院", &login, "reader", PASSWORD);
        catalog
            .set_pool_member(
                pool.id,
                id,
                &MemberSpec {
                    max_open_claims: 1_000,
                    ..MemberSpec::default()
                },
            )
            .await
            .expect("pool member");
        let token = issue_token(&hub1, &login, "2h");
        readers.push((id, login, token));
    }

    // 2,000 single-instance CT studies of distinct patients, each made ready (routed to
    // the radiology pool by the alliance's default rule)
    let settings = ReadySettings::default();
    let county_id = county.id;
    let made: Vec<bool> = futures::stream::iter(0..ITEMS)
        .map(|n| {
            let catalog = &catalog;
            let settings = &settings;
            async move {
                let new = ct_study(n, county_id);
                catalog
                    .insert_instance(&new)
                    .await
                    .expect("insert instance");
                // None: the hub's sweep made it ready first (also fine)
                catalog
                    .make_ready(&new.study.study_instance_uid, now_us(), settings)
                    .await
                    .expect("make ready")
                    .is_some()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    eprintln!(
        "{ITEMS} studies inserted; {} made ready here, the rest by a hub's sweep",
        made.iter().filter(|m| **m).count()
    );
    let queued: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM work_items WHERE state = 'queued' AND pool_id = $1",
    )
    .bind(pool.id)
    .fetch_one(&pg(&url).await)
    .await
    .expect("count queued");
    assert_eq!(queued as usize, ITEMS, "every study has a queued work item");

    // every reader calls next, alternately on hub 1 and hub 2, until nothing is queued
    let apis = [
        Api::new(&hub1),
        Api {
            base: format!("http://{}", hub2.http),
            ..Api::new(&hub1)
        },
    ];
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for (r, (_, login, token)) in readers.iter().enumerate() {
        let apis = apis.clone();
        let token = token.clone();
        let login = login.clone();
        tasks.push(tokio::spawn(async move {
            let mut log = ReaderLog::default();
            let mut turn = r % 2;
            loop {
                let reply = apis[turn]
                    .post(
                        "/api/v1/worklist/next",
                        Some(&token),
                        &serde_json::json!({}),
                    )
                    .await;
                log.per_hub[turn] += 1;
                match reply.status {
                    200 => {
                        let id = reply.json()["id"]
                            .as_i64()
                            .unwrap_or_else(|| panic!("{login}: no id in {reply}"));
                        log.claimed.push(id);
                    }
                    404 if reply.code() == "nothing-queued" => break,
                    _ => {
                        log.unexpected.push(format!("hub {}: {reply}", turn + 1));
                        if log.unexpected.len() > 20 {
                            break;
                        }
                    }
                }
                turn = 1 - turn;
            }
            log
        }));
    }
    let mut logs: Vec<ReaderLog> = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("reader task"));
    }
    let elapsed = started.elapsed();

    let unexpected: Vec<&String> = logs.iter().flat_map(|l| &l.unexpected).collect();
    assert!(
        unexpected.is_empty(),
        "replies other than 200 and the final 404 nothing-queued: {unexpected:#?}\n\
         hub 1 log:\n{}\nhub 2 log:\n{}",
        tail(&hub1.log()),
        tail(&hub2.log())
    );

    // exactly once: 2,000 distinct ids over all readers, none twice
    let mut owner: HashMap<i64, i64> = HashMap::new();
    let mut duplicates = Vec::new();
    for (log, (user, _, _)) in logs.iter().zip(&readers) {
        for id in &log.claimed {
            if let Some(first) = owner.insert(*id, *user) {
                duplicates.push((*id, first, *user));
            }
        }
    }
    assert!(
        duplicates.is_empty(),
        "claimed twice (id, first reader, second reader): {duplicates:?}"
    );
    let total: usize = logs.iter().map(|l| l.claimed.len()).sum();
    assert_eq!(total, ITEMS, "claims handed out");
    assert_eq!(owner.len(), ITEMS, "distinct items claimed");
    let per_reader: Vec<usize> = logs.iter().map(|l| l.claimed.len()).collect();
    let per_hub = logs.iter().fold([0usize; 2], |acc, l| {
        [acc[0] + l.per_hub[0], acc[1] + l.per_hub[1]]
    });
    eprintln!(
        "{ITEMS} claims in {:.1} s by {READERS} readers: per reader {per_reader:?}, \
         requests per hub {per_hub:?}",
        elapsed.as_secs_f64()
    );
    assert!(per_hub[0] > 0 && per_hub[1] > 0, "both replicas served");

    // none lost: in the database every item is claimed, by the reader it was given to
    let rows: Vec<(i64, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, state, claimed_by FROM work_items WHERE pool_id = $1 ORDER BY id",
    )
    .bind(pool.id)
    .fetch_all(&pg(&url).await)
    .await
    .expect("work items");
    assert_eq!(rows.len(), ITEMS, "work items in the database");
    let mut wrong = Vec::new();
    for (id, state, claimed_by) in &rows {
        let expected = owner.get(id).copied();
        if state != "claimed" || *claimed_by != expected || expected.is_none() {
            wrong.push((*id, state.clone(), *claimed_by, expected));
        }
    }
    assert!(
        wrong.is_empty(),
        "items not claimed by the reader the API gave them to (id, state, claimed_by, \
         expected): {:?}",
        &wrong[..wrong.len().min(20)]
    );
    // one `claimed` event per item
    let events: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT work_item_id, COUNT(*) FROM worklist_events WHERE kind = 'claimed' \
         GROUP BY work_item_id",
    )
    .fetch_all(&pg(&url).await)
    .await
    .expect("claimed events");
    let events: BTreeMap<i64, i64> = events.into_iter().collect();
    let ids: HashSet<i64> = owner.keys().copied().collect();
    assert_eq!(events.len(), ITEMS, "items with a claimed event");
    assert!(
        events.iter().all(|(id, n)| *n == 1 && ids.contains(id)),
        "one claimed event per item"
    );
}

/// PostgreSQL draws an event's id at insert, not at commit: a transaction can commit an
/// event after a later one was already read and sent. The open streams of both replicas
/// still get it (the pollers ask again for such holes), each event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_late_reaches_the_open_streams_of_both_replicas() {
    let Some(opts) = postgres_options("wl_late_event").await else {
        return;
    };
    let hub1 = TestHub::spawn(opts);
    let hub2 = Replica::spawn(&hub1);
    let url = database_url(&hub1);
    let db = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .expect("connect PostgreSQL");
    let alliance_id: i64 =
        sqlx::query_scalar("SELECT alliance_id FROM institutions WHERE name = '县人民医院'")
            .fetch_one(&db)
            .await
            .expect("the county hospital");
    add_user(&hub1, "县人民医院", "watcher", "reader", PASSWORD);
    let token = issue_token(&hub1, "watcher", "1h");
    let api = Api::new(&hub1);
    let mut streams = Vec::new();
    for base in [
        format!("http://{}", hub1.http),
        format!("http://{}", hub2.http),
    ] {
        let r = api
            .http
            .get(format!("{base}/api/v1/worklist/events"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("open the stream");
        assert_eq!(r.status(), 200, "{base}");
        streams.push(collect_sse(r));
    }
    let insert = "INSERT INTO worklist_events (alliance_id, work_item_id, pool_id, kind, actor, \
                  detail, created_at) VALUES ($1, 0, NULL, $2, 'test', NULL, $3) RETURNING id";
    // the first event's transaction stays open while a second one commits and is sent
    let mut slow = db.begin().await.expect("begin");
    let late_id: i64 = sqlx::query_scalar(insert)
        .bind(alliance_id)
        .bind("committed-late")
        .bind(now_us())
        .fetch_one(&mut *slow)
        .await
        .expect("insert the first event");
    let early_id: i64 = sqlx::query_scalar(insert)
        .bind(alliance_id)
        .bind("committed-first")
        .bind(now_us())
        .fetch_one(&db)
        .await
        .expect("insert the second event");
    assert!(early_id > late_id);
    let count = |s: &std::sync::Mutex<String>, kind: &str| {
        s.lock()
            .unwrap()
            .matches(&format!("event: {kind}\n"))
            .count()
    };
    let wait_for = |kind: &'static str| {
        let streams = streams.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while streams.iter().any(|s| count(s, kind) == 0) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{kind} not on every stream: {:?}",
                    streams
                        .iter()
                        .map(|s| s.lock().unwrap().clone())
                        .collect::<Vec<_>>()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait_for("committed-first").await;
    slow.commit().await.expect("commit the first event");
    wait_for("committed-late").await;
    // a moment for any repeat to show
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (n, s) in streams.iter().enumerate() {
        for kind in ["committed-first", "committed-late"] {
            assert_eq!(count(s, kind), 1, "replica {n}: {kind} once");
        }
        assert!(
            s.lock().unwrap().contains(&format!("id: {late_id}\n")),
            "replica {n}: the late event keeps its id"
        );
    }
}

/// A stream resumed with `Last-Event-ID` replays what came after it; when more came than
/// the hub replays (1000 events), the replay ends with `resync` (reload) instead of
/// resuming as if nothing had been missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_replays_its_backlog_or_asks_for_a_reload() {
    let Some(opts) = postgres_options("wl_resume").await else {
        return;
    };
    let hub = TestHub::spawn(opts);
    let db = pg(&database_url(&hub)).await;
    add_user(&hub, "县人民医院", "watcher", "reader", PASSWORD);
    let token = issue_token(&hub, "watcher", "1h");
    let api = Api::new(&hub);
    // a stream open before the events (it shows when the fan-out has published them)
    let plain = {
        let r = api
            .http
            .get(api.url("/api/v1/worklist/events"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("open the stream");
        collect_sse(r)
    };
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO worklist_events (alliance_id, work_item_id, pool_id, kind, actor, detail, \
         created_at) SELECT i.alliance_id, 0, NULL, 'replayed', 'test', NULL, $1 \
         FROM institutions i, generate_series(1, 1005) WHERE i.name = '县人民医院' RETURNING id",
    )
    .bind(now_us())
    .fetch_all(&db)
    .await
    .expect("insert events");
    assert_eq!(ids.len(), 1005);
    let first = *ids.iter().min().unwrap();
    let last = *ids.iter().max().unwrap();
    let resume = |after: i64| {
        let r = api
            .http
            .get(api.url("/api/v1/worklist/events"))
            .bearer_auth(&token)
            .header("Last-Event-ID", after.to_string())
            .send();
        async move {
            let r = r.await.expect("open the stream");
            assert_eq!(r.status(), 200);
            collect_sse(r)
        }
    };
    // (once the hub's fan-out has published them all to a stream opened before: a resumed
    // stream then gets them from its replay alone)
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !plain.lock().unwrap().contains(&format!("id: {last}\n")) {
        assert!(std::time::Instant::now() < deadline, "events not published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // three behind: those three, no reload
    let short = resume(last - 3).await;
    // from before the first: 1000 of the 1005, then the request to reload
    let long = resume(first - 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, l) = (short.lock().unwrap().clone(), long.lock().unwrap().clone());
        if s.matches("event: replayed\n").count() == 3 && l.contains("event: resync\n") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "short: {s}\nlong (last 400 bytes): {}",
            &l[l.len().saturating_sub(400)..]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, l) = (short.lock().unwrap().clone(), long.lock().unwrap().clone());
    assert!(!s.contains("resync"), "{s}");
    assert_eq!(s.matches("event: replayed\n").count(), 3);
    assert_eq!(l.matches("event: replayed\n").count(), 1000);
    assert_eq!(
        plain.lock().unwrap().matches("event: replayed\n").count(),
        1005,
        "the open stream got each event once"
    );
    assert!(
        l.trim_end().ends_with("event: resync\ndata: {}"),
        "the reload request comes after the replay"
    );
}

async fn pg(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connect PostgreSQL")
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
