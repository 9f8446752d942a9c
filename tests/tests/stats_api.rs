//! The alliance indicators over HTTP against a real `dxhub serve`: every
//! `/api/v1/stats/…` endpoint answers the contract's JSON fields for a group admin (and
//! the superadmin, for every alliance or one), `format=csv` downloads the rows as CSV,
//! readers and clinic users are refused, bad dates are 400, another alliance's
//! institution answers 404 as an unknown one does; a study stored by DIMSE and a recognition
//! lookup show up in the figures, filtered by institution subtree. On SQLite and on
//! PostgreSQL. (The exact figures are the store conformance suite's:
//! `crates/dxhub-store/tests/stats_conformance.rs`.)

use dxhub_core::stats::{format_date, local_day};
use dxhub_e2e::api::{Api, PASSWORD, Reply, add_user, issue_token, postgres_options, store_study};
use dxhub_e2e::hub::{HubOptions, TestHub};
use serde_json::Value;

const ALLIANCE: &str = "测试医共体";
const COUNTY: &str = "县人民医院";
const TOWN: &str = "城关镇卫生院";
const VILLAGE: &str = "城关村卫生室";
const OTHER_ALLIANCE: &str = "邻县医共体";
const OTHER_COUNTY: &str = "邻县人民医院";

const ENDPOINTS: [&str; 6] = [
    "volumes",
    "turnaround",
    "remote-reads",
    "grassroots",
    "criticals",
    "recognition",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_api_sqlite() {
    scenario(HubOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_api_postgres() {
    if let Some(opts) = postgres_options("stats").await {
        scenario(opts).await;
    }
}

/// The endpoint's own fields (besides the envelope and `rows`), and the fields of its
/// rows.
fn contract(endpoint: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match endpoint {
        "volumes" => (
            &["totals"],
            &[
                "day",
                "institution_id",
                "institution",
                "modality",
                "studies",
                "instances",
            ],
        ),
        "turnaround" => (
            &["overall"],
            &[
                "pool_id",
                "pool",
                "signed",
                "p50_minutes",
                "p90_minutes",
                "p95_minutes",
                "breached",
                "breach_rate",
            ],
        ),
        "remote-reads" => (
            &["alliance"],
            &[
                "institution_id",
                "institution",
                "level",
                "population",
                "remote_reads",
                "per_10k",
            ],
        ),
        "grassroots" => (&["totals"], &["day", "patients", "studies"]),
        "criticals" => (
            &["overall"],
            &[
                "category",
                "raised",
                "acknowledged",
                "unacknowledged",
                "ack_p50_minutes",
                "ack_p90_minutes",
            ],
        ),
        "recognition" => (
            &["totals"],
            &["day", "institution_id", "institution", "lookups"],
        ),
        other => panic!("unknown endpoint {other}"),
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    k.sort();
    k
}

fn ok_json(r: &Reply, what: &str) -> Value {
    assert_eq!(r.status, 200, "{what}: {r}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: {:?}",
        r.header("content-type")
    );
    r.json()
}

fn institution_id(list: &Value, name: &str) -> i64 {
    list["institutions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == name)
        .and_then(|i| i["id"].as_i64())
        .unwrap_or_else(|| panic!("no institution {name}: {list}"))
}

async fn scenario(opts: HubOptions) {
    let hub = TestHub::spawn(opts);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        ALLIANCE,
        "--name",
        VILLAGE,
        "--level",
        "village",
        "--parent",
        TOWN,
        "--population",
        "1800",
    ]);
    hub.admin_ok(&["alliance", "add", OTHER_ALLIANCE]);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        OTHER_ALLIANCE,
        "--name",
        OTHER_COUNTY,
        "--level",
        "county",
    ]);
    for (login, role, inst) in [
        ("gadmin", "group_admin", COUNTY),
        ("reader", "reader", COUNTY),
        ("clinic", "clinic_doctor", TOWN),
        ("root", "superadmin", COUNTY),
        ("gadmin2", "group_admin", OTHER_COUNTY),
    ] {
        add_user(&hub, inst, login, role, PASSWORD);
    }
    let admin = issue_token(&hub, "gadmin", "1h");
    let reader = issue_token(&hub, "reader", "1h");
    let clinic = issue_token(&hub, "clinic", "1h");
    let root = issue_token(&hub, "root", "1h");
    let admin2 = issue_token(&hub, "gadmin2", "1h");
    let api = Api::new(&hub);

    let all = api.get("/api/v1/institutions", Some(&root)).await.json();
    let (county, town, village, other) = (
        institution_id(&all, COUNTY),
        institution_id(&all, TOWN),
        institution_id(&all, VILLAGE),
        institution_id(&all, OTHER_COUNTY),
    );
    let alliance_of = |name: &str| {
        all["institutions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["name"] == name)
            .and_then(|i| i["alliance_id"].as_i64())
            .unwrap_or_else(|| panic!("alliance of {name}"))
    };
    let (alliance_a, alliance_b) = (alliance_of(COUNTY), alliance_of(OTHER_COUNTY));

    // a CT study of the township, stored now; a recognition lookup by its clinic doctor
    store_study(&hub, "CLINIC", "STATS-P1");
    let r = api
        .get("/api/v1/recognition?patient=STATS-P1", Some(&clinic))
        .await;
    assert_eq!(r.status, 200, "recognition lookup: {r}");
    let today = format_date(local_day(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros(),
        )
        .unwrap(),
    ));

    // ---- every endpoint: the contract's fields, the default range (30 days to today)
    for e in ENDPOINTS {
        let v = ok_json(
            &api.get(&format!("/api/v1/stats/{e}"), Some(&admin)).await,
            e,
        );
        let (own, row_fields) = contract(e);
        let mut expected = vec!["from", "to", "alliance_id", "institution_id", "rows"];
        expected.extend_from_slice(own);
        assert_eq!(keys(&v), sorted(&expected), "{e}: {v}");
        assert_eq!(v["to"], today.as_str(), "{e}");
        let from = v["from"].as_str().unwrap();
        assert_eq!(
            dxhub_core::stats::parse_date(&today).unwrap()
                - dxhub_core::stats::parse_date(from).unwrap(),
            29,
            "{e}: 30 days ending today"
        );
        assert_eq!(v["alliance_id"], alliance_a, "{e}");
        assert!(v["institution_id"].is_null(), "{e}");
        for row in v["rows"].as_array().expect("rows") {
            assert_eq!(keys(row), sorted(row_fields), "{e} row {row}");
        }
    }

    // ---- the figures the study and the lookup make
    let q = format!("from={today}&to={today}");
    let vol = ok_json(
        &api.get(&format!("/api/v1/stats/volumes?{q}"), Some(&admin))
            .await,
        "volumes",
    );
    let rows = vol["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{vol}");
    assert_eq!(rows[0]["day"], today.as_str());
    assert_eq!(rows[0]["institution_id"], town);
    assert_eq!(rows[0]["institution"], TOWN);
    assert_eq!(rows[0]["modality"], "CT");
    assert_eq!(rows[0]["studies"], 1);
    assert_eq!(rows[0]["instances"], 1);
    assert_eq!(vol["totals"]["studies"], 1);
    assert_eq!(vol["totals"]["instances"], 1);
    // the township's subtree and the county's hold it, the village's does not
    for (inst, n) in [(town, 1), (county, 1), (village, 0)] {
        let v = ok_json(
            &api.get(
                &format!("/api/v1/stats/volumes?{q}&institution_id={inst}"),
                Some(&admin),
            )
            .await,
            "volumes by institution",
        );
        assert_eq!(v["institution_id"], inst);
        assert_eq!(v["totals"]["studies"], n, "institution {inst}: {v}");
    }
    let rec = ok_json(
        &api.get(&format!("/api/v1/stats/recognition?{q}"), Some(&admin))
            .await,
        "recognition",
    );
    assert_eq!(rec["totals"]["lookups"], 1, "{rec}");
    assert_eq!(rec["rows"][0]["institution"], TOWN);
    let ta = ok_json(
        &api.get(&format!("/api/v1/stats/turnaround?{q}"), Some(&admin))
            .await,
        "turnaround",
    );
    assert_eq!(
        ta["rows"].as_array().unwrap().len(),
        3,
        "the default pools: {ta}"
    );
    assert_eq!(ta["overall"]["signed"], 0);
    assert!(ta["overall"]["p50_minutes"].is_null());
    let rr = ok_json(
        &api.get(&format!("/api/v1/stats/remote-reads?{q}"), Some(&admin))
            .await,
        "remote-reads",
    );
    // the county's population (420 000, see TestHub::spawn) covers the alliance
    assert_eq!(rr["alliance"]["population"], 420_000, "{rr}");
    assert_eq!(rr["alliance"]["remote_reads"], 0);
    assert_eq!(rr["alliance"]["per_10k"], 0.0);
    let names: Vec<&str> = rr["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["institution"].as_str())
        .collect();
    assert_eq!(names, vec![TOWN, VILLAGE]);
    let g = ok_json(
        &api.get(
            "/api/v1/stats/grassroots?from=2026-11-01&to=2026-11-03",
            Some(&admin),
        )
        .await,
        "grassroots",
    );
    let days: Vec<&str> = g["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["day"].as_str())
        .collect();
    assert_eq!(days, vec!["2026-11-01", "2026-11-02", "2026-11-03"]);
    assert_eq!(g["from"], "2026-11-01");
    assert_eq!(g["to"], "2026-11-03");

    // ---- CSV
    let r = api
        .get(
            &format!("/api/v1/stats/volumes?{q}&format=csv"),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        r.header("content-disposition"),
        Some(format!(
            "attachment; filename=\"dxhub-volumes-{today}-{today}.csv\""
        ))
    );
    let lines: Vec<&str> = r.body.lines().collect();
    assert_eq!(
        lines,
        vec![
            "day,institution_id,institution,modality,studies,instances".to_owned(),
            format!("{today},{town},{TOWN},CT,1,1"),
        ]
    );
    for e in ENDPOINTS {
        let r = api
            .get(&format!("/api/v1/stats/{e}?format=csv"), Some(&admin))
            .await;
        assert_eq!(r.status, 200, "{e}: {r}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/csv")),
            "{e}"
        );
        let header = r.body.lines().next().unwrap_or_default().to_owned();
        assert_eq!(header, contract(e).1.join(","), "{e}");
        assert!(
            r.header("content-disposition")
                .is_some_and(|d| d.contains(&format!("dxhub-{e}-"))),
            "{e}"
        );
    }

    // ---- refusals
    for e in ENDPOINTS {
        let path = format!("/api/v1/stats/{e}");
        for (who, token) in [("reader", &reader), ("clinic", &clinic)] {
            let r = api.get(&path, Some(token)).await;
            assert_eq!(
                (r.status, r.code()),
                (403, "forbidden".into()),
                "{e} {who}: {r}"
            );
        }
        let r = api.get(&path, None).await;
        assert_eq!(r.status, 401, "{e} anonymous: {r}");
        for bad in [
            "from=2026-11-31",
            "to=2026/11/01",
            "from=yesterday",
            "from=2026-11-20&to=2026-11-19",
            "format=xlsx",
            "institution_id=abc",
            "from=2020-01-01&to=2026-01-01",
        ] {
            let r = api.get(&format!("{path}?{bad}"), Some(&admin)).await;
            assert_eq!(
                (r.status, r.code()),
                (400, "bad-request".into()),
                "{e} {bad}: {r}"
            );
        }
        // another alliance's institution is, as an unknown one, not found; the other
        // alliance as such is refused
        let r = api
            .get(&format!("{path}?institution_id={other}"), Some(&admin))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (404, "not-found".into()),
            "{e} institution_id={other}: {r}"
        );
        let r = api
            .get(&format!("{path}?alliance_id={alliance_b}"), Some(&admin))
            .await;
        assert_eq!(
            (r.status, r.code()),
            (403, "forbidden".into()),
            "{e} alliance_id={alliance_b}: {r}"
        );
        let r = api
            .get(&format!("{path}?institution_id={county}"), Some(&admin2))
            .await;
        assert_eq!(r.status, 404, "{e}: B's admin on A's county: {r}");
        let r = api
            .get(&format!("{path}?institution_id=999999"), Some(&admin))
            .await;
        assert_eq!((r.status, r.code()), (404, "not-found".into()), "{e}: {r}");
    }

    // ---- the other alliance's admin sees nothing of A; the superadmin sees every
    // alliance by default, or the one asked for
    let v = ok_json(
        &api.get(&format!("/api/v1/stats/volumes?{q}"), Some(&admin2))
            .await,
        "volumes B",
    );
    assert_eq!(v["totals"]["studies"], 0, "{v}");
    assert!(!v.to_string().contains(TOWN));
    let v = ok_json(
        &api.get(&format!("/api/v1/stats/volumes?{q}"), Some(&root))
            .await,
        "volumes superadmin",
    );
    assert!(v["alliance_id"].is_null(), "{v}");
    assert_eq!(v["totals"]["studies"], 1);
    let v = ok_json(
        &api.get(
            &format!("/api/v1/stats/volumes?{q}&alliance_id={}", alliance_b),
            Some(&root),
        )
        .await,
        "volumes superadmin, alliance B",
    );
    assert_eq!(v["alliance_id"], alliance_b);
    assert_eq!(v["totals"]["studies"], 0);
    let v = ok_json(
        &api.get(
            &format!("/api/v1/stats/volumes?{q}&institution_id={town}"),
            Some(&root),
        )
        .await,
        "volumes superadmin, township",
    );
    assert_eq!(v["alliance_id"], alliance_a, "the institution's alliance");
    assert_eq!(v["totals"]["studies"], 1);
    let r = api
        .get("/api/v1/stats/volumes?alliance_id=999999", Some(&root))
        .await;
    assert_eq!(r.status, 404, "{r}");
}
