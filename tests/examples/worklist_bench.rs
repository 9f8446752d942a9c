//! Worklist benchmark for `bench/worklist/run.sh` (issue #6 targets: next-claim p99 < 10 ms
//! with 100,000 open items, the worklist query of a pool p99 < 20 ms).
//!
//!   worklist_bench seed DB_URL INSTITUTION ITEMS
//!       Bulk-insert ITEMS queued work items (one patient, one ready CT study each) of
//!       INSTITUTION's alliance into its `radiology` pool with plain SQL (INSERT … SELECT
//!       over generate_series on PostgreSQL, a recursive CTE on SQLite), make every reader
//!       of the alliance a member of that pool (max_open_claims 1000, the most allowed), ANALYZE; prints
//!       `{"pool_id", "items", "members", "seconds"}`. Run it before `dxhub serve` (SQLite)
//!       or while nothing else writes.
//!
//!   worklist_bench run URL TOKENS_FILE POOL_ID CLAIMS LISTS
//!       CLAIMS sequential `POST /api/v1/worklist/next`, the readers of TOKENS_FILE (one
//!       bearer token a line) taking turns, then LISTS sequential
//!       `GET /api/v1/worklist?tab=queue&pool_id=POOL_ID&limit=50`, likewise; prints the
//!       latencies (request sent → body read) as JSON. Any reply but 200 aborts.

use std::time::Instant;

use sqlx::Connection;

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    serde_json::json!({
        "n": v.len(),
        "mean_ms": mean,
        "p50_ms": pct(&v, 0.50),
        "p95_ms": pct(&v, 0.95),
        "p99_ms": pct(&v, 0.99),
        "max_ms": v.last().copied().unwrap_or(f64::NAN),
    })
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The seeding statements. `rows` is the SQL of a one-column (`g`, 1..=n) row source.
fn seed_sql(pg: bool, n: i64, inst: i64, alliance: i64, pool: i64, now: i64) -> Vec<String> {
    let series = if pg {
        format!("generate_series(1, {n}) AS t(g)")
    } else {
        "gen AS t".to_owned()
    };
    let with = if pg {
        String::new()
    } else {
        format!(
            "WITH RECURSIVE gen(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM gen WHERE g < {n}) "
        )
    };
    // spread due times over the next hours (never due during the run, so the sweep
    // raises no warnings), 5 % stat, 15 % urgent, the rest routine
    let rank = "(CASE WHEN g % 20 = 0 THEN 0 WHEN g % 20 < 4 THEN 1 ELSE 2 END)";
    let prio =
        "(CASE WHEN g % 20 = 0 THEN 'stat' WHEN g % 20 < 4 THEN 'urgent' ELSE 'routine' END)";
    let due = format!("({now} + 14400000000 + (g % 7200) * CAST(1000000 AS BIGINT))");
    vec![
        format!(
            "{with}INSERT INTO patients (patient_key, institution_id, patient_id, patient_name, \
             patient_birth_date, patient_sex, created_at, updated_at) \
             SELECT '{inst}||WLB' || g, {inst}, 'WLB' || g, 'BENCH^PATIENT' || g, '19700101', \
             CASE WHEN g % 2 = 0 THEN 'F' ELSE 'M' END, {now}, {now} FROM {series}"
        ),
        format!(
            "{with}INSERT INTO studies (study_instance_uid, patient_ref, institution_id, study_date, \
             study_time, accession_number, study_description, modalities_in_study, num_series, \
             num_instances, size_bytes, received_at, updated_at, ready_at, identity_hash) \
             SELECT '2.25.6006.' || g, p.id, {inst}, '20261122', '101500', 'WLB' || g, \
             'CT CHEST', 'CT', 1, 1, 1000, {now}, {now}, {now}, 'wlb-' || g \
             FROM {series} JOIN patients p ON p.patient_key = '{inst}||WLB' || g"
        ),
        format!(
            "{with}INSERT INTO work_items (alliance_id, study_id, study_instance_uid, institution_id, \
             identity_hash, modality, pool_id, rule_id, priority, priority_rank, state, critical, \
             sla_minutes, ready_at, warn_at, due_at, created_at, updated_at) \
             SELECT {alliance}, s.id, s.study_instance_uid, {inst}, 'wlb-' || g, 'CT', {pool}, \
             NULL, {prio}, {rank}, 'queued', 0, 240, {now}, {due} - 2880000000, {due}, {now}, {now} \
             FROM {series} JOIN studies s ON s.study_instance_uid = '2.25.6006.' || g"
        ),
        format!(
            "INSERT INTO pool_members (pool_id, user_id, max_open_claims, created_at) \
             SELECT {pool}, u.id, 1000, {now} FROM users u \
             JOIN institutions i ON i.id = u.institution_id \
             WHERE i.alliance_id = {alliance} AND u.role IN ('reader', 'senior_reader') \
             AND NOT EXISTS (SELECT 1 FROM pool_members m WHERE m.pool_id = {pool} \
               AND m.user_id = u.id)"
        ),
        "ANALYZE".to_owned(),
    ]
}

async fn seed(url: &str, institution: &str, n: i64) {
    let started = Instant::now();
    let pg = url.starts_with("postgres");
    let lookup_inst = "SELECT id, alliance_id FROM institutions WHERE name = $1";
    let lookup_pool = "SELECT id FROM reader_pools WHERE alliance_id = $1 AND name = 'radiology'";
    let members = "SELECT COUNT(*) FROM pool_members WHERE pool_id = $1";
    let now = now_us();
    let (pool, count) = if pg {
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        let (inst, alliance): (i64, i64) = sqlx::query_as(lookup_inst)
            .bind(institution)
            .fetch_one(&mut c)
            .await
            .expect("institution");
        let pool: i64 = sqlx::query_scalar(lookup_pool)
            .bind(alliance)
            .fetch_one(&mut c)
            .await
            .expect("radiology pool");
        let mut tx = c.begin().await.expect("begin");
        for s in seed_sql(true, n, inst, alliance, pool, now) {
            if s == "ANALYZE" {
                continue;
            }
            sqlx::query(&s)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        tx.commit().await.expect("commit");
        sqlx::query("ANALYZE")
            .execute(&mut c)
            .await
            .expect("analyze");
        let m: i64 = sqlx::query_scalar(members)
            .bind(pool)
            .fetch_one(&mut c)
            .await
            .expect("members");
        (pool, m)
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("open");
        let (inst, alliance): (i64, i64) = sqlx::query_as(lookup_inst)
            .bind(institution)
            .fetch_one(&mut c)
            .await
            .expect("institution");
        let pool: i64 = sqlx::query_scalar(lookup_pool)
            .bind(alliance)
            .fetch_one(&mut c)
            .await
            .expect("radiology pool");
        let mut tx = c.begin().await.expect("begin");
        for s in seed_sql(false, n, inst, alliance, pool, now) {
            if s == "ANALYZE" {
                continue;
            }
            sqlx::query(&s)
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        tx.commit().await.expect("commit");
        if std::env::var("BENCH_SQLITE_ANALYZE").as_deref() == Ok("1") {
            sqlx::query("ANALYZE")
                .execute(&mut c)
                .await
                .expect("analyze");
        }
        let m: i64 = sqlx::query_scalar(members)
            .bind(pool)
            .fetch_one(&mut c)
            .await
            .expect("members");
        (pool, m)
    };
    println!(
        "{}",
        serde_json::json!({
            "pool_id": pool,
            "items": n,
            "members": count,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
}

async fn run(base: &str, tokens: &[String], pool: i64, claims: usize, lists: usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(tokens.len())
        .build()
        .expect("client");
    let time = |r: reqwest::RequestBuilder| async move {
        let t0 = Instant::now();
        let resp = r.send().await.expect("send");
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        (t0.elapsed().as_secs_f64() * 1000.0, status, body)
    };
    // warm-up: each reader once per endpoint (connections, prepared statements)
    let list_url = format!("{base}/api/v1/worklist?tab=queue&pool_id={pool}&limit=50");
    for t in tokens {
        let (_, s, b) = time(http.get(&list_url).bearer_auth(t)).await;
        assert_eq!(s, 200, "warm-up list: {b}");
    }
    let mut next = Vec::with_capacity(claims);
    let mut ids = std::collections::HashSet::new();
    for i in 0..claims {
        let t = &tokens[i % tokens.len()];
        let (ms, s, b) = time(
            http.post(format!("{base}/api/v1/worklist/next"))
                .bearer_auth(t)
                .json(&serde_json::json!({})),
        )
        .await;
        assert_eq!(s, 200, "claim {i}: {b}");
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        assert!(
            ids.insert(v["id"].as_i64().expect("id")),
            "item given twice: {b}"
        );
        next.push(ms);
    }
    let mut list = Vec::with_capacity(lists);
    let mut shown = 0;
    for i in 0..lists {
        let t = &tokens[i % tokens.len()];
        let (ms, s, b) = time(http.get(&list_url).bearer_auth(t)).await;
        assert_eq!(s, 200, "list {i}: {b}");
        let v: serde_json::Value = serde_json::from_str(&b).expect("json");
        shown = v["items"].as_array().map(Vec::len).unwrap_or(0);
        list.push(ms);
    }
    assert_eq!(shown, 50, "a full page of the queue");
    println!(
        "{}",
        serde_json::json!({
            "readers": tokens.len(),
            "next": summary(next),
            "list": summary(list),
        })
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: worklist_bench seed DB_URL INSTITUTION ITEMS | \
                 run URL TOKENS_FILE POOL_ID CLAIMS LISTS";
    match args.first().map(String::as_str) {
        Some("seed") if args.len() == 4 => {
            seed(&args[1], &args[2], args[3].parse().expect("ITEMS")).await;
        }
        Some("run") if args.len() == 6 => {
            let tokens: Vec<String> = std::fs::read_to_string(&args[2])
                .expect("tokens file")
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            assert!(!tokens.is_empty(), "no tokens in {}", args[2]);
            run(
                args[1].trim_end_matches('/'),
                &tokens,
                args[3].parse().expect("POOL_ID"),
                args[4].parse().expect("CLAIMS"),
                args[5].parse().expect("LISTS"),
            )
            .await;
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}
