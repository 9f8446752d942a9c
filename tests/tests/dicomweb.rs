#![allow(clippy::unwrap_used)]
//! DICOMweb over HTTP against a real hub (issue #4): QIDO-RS matching and paging on
//! Chinese and Latin names, scoping by institution, STOW-RS with good, duplicate and
//! broken parts (nothing half-stored), a large STOW streamed without growing memory,
//! series metadata cache invalidation, CORS and cross-origin isolation headers. On SQLite
//! and PostgreSQL where the matching SQL differs.

use std::collections::BTreeSet;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_dictionary_std::uids;
use dicom_object::FileMetaTableBuilder;
use dxhub_e2e::api::{add_device, add_user, issue_token, postgres_options, raw_sql};
use dxhub_e2e::generate::{CtSpec, ct_object, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use serde_json::Value;

const T1: &str = "城关镇卫生院";
const T2: &str = "南山乡卫生院";
const PASSWORD: &str = "Correct-Horse-9-Battery";

/// A Part 10 CT instance in memory.
fn ct(
    study: &str,
    series: &str,
    n: i32,
    patient_id: &str,
    name: &str,
    date: &str,
    time: &str,
) -> (String, Vec<u8>) {
    let mut spec = CtSpec::new(study, series, n);
    spec.patient_id = patient_id.into();
    spec.patient_name = name.into();
    let mut o = ct_object(&spec);
    o.put(DataElement::new(
        tags::STUDY_DATE,
        VR::DA,
        PrimitiveValue::from(date),
    ));
    o.put(DataElement::new(
        tags::STUDY_TIME,
        VR::TM,
        PrimitiveValue::from(time),
    ));
    let doctor = match patient_id {
        "P1" => Some("Zhou^Jian=周^健"),
        "P4" => Some("ＺＨＯＵ^Ｌｉ"),
        _ => None,
    };
    if let Some(doctor) = doctor {
        o.put(DataElement::new(
            tags::REFERRING_PHYSICIAN_NAME,
            VR::PN,
            PrimitiveValue::from(doctor),
        ));
    }
    let file = o
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(spec.sop_uid.as_str())
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .unwrap();
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    (spec.sop_uid, bytes)
}

fn stow_body(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "dxhub-test-boundary-7c1f";
    let mut body = Vec::new();
    for (ct, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        body,
    )
}

struct Web {
    client: reqwest::Client,
    base: String,
}

impl Web {
    fn new(hub: &TestHub) -> Self {
        Web {
            client: reqwest::Client::new(),
            base: hub.http_url("/dicomweb"),
        }
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str, token: &str) -> Vec<Value> {
        let r = self.get(path, token).await;
        assert_eq!(r.status(), 200, "GET {path}");
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "application/dicom+json"
        );
        r.json().await.unwrap()
    }

    async fn stow(&self, path: &str, token: &str, parts: &[(&str, &[u8])]) -> (u16, Value) {
        let (ct, body) = stow_body(parts);
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn value(item: &Value, tag: &str) -> Option<String> {
    let v = item.get(tag)?.get("Value")?.get(0)?;
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("Alphabetic")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        other => other.to_string(),
    })
}

fn uids_of(items: &[Value], tag: &str) -> BTreeSet<String> {
    items.iter().filter_map(|i| value(i, tag)).collect()
}

fn seq<'a>(v: &'a Value, tag: &str) -> Vec<&'a Value> {
    v.get(tag)
        .and_then(|s| s.get("Value"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

struct Fixture {
    hub: TestHub,
    gadmin: String,
    clinic1: String,
    clinic2: String,
    /// study UID per label
    studies: Vec<(&'static str, String)>,
}

impl Fixture {
    fn study(&self, label: &str) -> String {
        self.studies
            .iter()
            .find(|(l, _)| *l == label)
            .unwrap()
            .1
            .clone()
    }
}

/// Patients, stored by STOW as the clinic users of two townships.
async fn fixture(opts: HubOptions) -> Fixture {
    let hub = TestHub::spawn(opts);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "测试医共体",
        "--name",
        T2,
        "--level",
        "township",
        "--parent",
        "县人民医院",
    ]);
    add_user(&hub, "县人民医院", "gadmin1", "group_admin", PASSWORD);
    add_user(&hub, T1, "clinic1", "clinic_doctor", PASSWORD);
    add_user(&hub, T2, "clinic2", "clinic_doctor", PASSWORD);
    let gadmin = issue_token(&hub, "gadmin1", "1h");
    let clinic1 = issue_token(&hub, "clinic1", "1h");
    let clinic2 = issue_token(&hub, "clinic2", "1h");
    let web = Web::new(&hub);
    let people: [(&str, &str, &str, &str, &str, &str); 5] = [
        (
            "wang",
            T1,
            "P1",
            "Wang^XiaoMing=王^小明=wang^xiao ming",
            "20240105",
            "083000",
        ),
        ("wang2", T1, "P2", "WANG^Li", "20240210", "131500.5"),
        ("li", T2, "P3", "Li^Lei=李^雷", "20231231", "235959"),
        ("zhao", T2, "P4", "ＺＨＡＯ^ＹＵＮ", "20240301", "120000"),
        ("doe", T1, "P5", "Doe^John", "20240302", "070000"),
    ];
    let mut studies = Vec::new();
    for (label, inst, pid, name, date, time) in people {
        let study = new_uid();
        let series = new_uid();
        let token = if inst == T1 { &clinic1 } else { &clinic2 };
        let (_, a) = ct(&study, &series, 1, pid, name, date, time);
        let (_, b) = ct(&study, &series, 2, pid, name, date, time);
        let (status, body) = web
            .stow(
                "/studies",
                token,
                &[("application/dicom", &a), ("application/dicom", &b)],
            )
            .await;
        assert_eq!(status, 200, "STOW {label}: {body}");
        assert_eq!(seq(&body, "00081199").len(), 2);
        studies.push((label, study));
    }
    Fixture {
        hub,
        gadmin,
        clinic1,
        clinic2,
        studies,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qido_sqlite() {
    qido(HubOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qido_postgres() {
    if let Some(opts) = postgres_options("qido").await {
        qido(opts).await;
    }
}

async fn qido(opts: HubOptions) {
    let f = fixture(opts).await;
    let web = Web::new(&f.hub);
    let s = |labels: &[&str]| -> BTreeSet<String> { labels.iter().map(|l| f.study(l)).collect() };
    let uid_list = format!("StudyInstanceUID={},{}", f.study("li"), f.study("doe"));
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("", s(&["wang", "wang2", "li", "zhao", "doe"])),
        ("PatientID=P2", s(&["wang2"])),
        ("00100020=P2", s(&["wang2"])),
        ("PatientName=王^小明", s(&["wang"])),
        ("PatientName=wang^xiaoming", s(&[])),
        ("PatientName=W*", s(&["wang", "wang2"])),
        ("PatientName=WANG*", s(&["wang2"])),
        ("PatientName=?i^Lei", s(&["li"])),
        ("PatientName=李*", s(&["li"])),
        ("PatientName=wang&fuzzymatching=true", s(&["wang", "wang2"])),
        ("PatientName=xiao&fuzzymatching=true", s(&["wang"])),
        ("PatientName=小明&fuzzymatching=true", s(&["wang"])),
        ("PatientName=zhao&fuzzymatching=true", s(&["zhao"])),
        ("PatientName=ＤＯＥ&fuzzymatching=true", s(&["doe"])),
        ("StudyDate=20240101-20240228", s(&["wang", "wang2"])),
        ("StudyDate=-20231231", s(&["li"])),
        ("StudyDate=20240301-", s(&["zhao", "doe"])),
        ("StudyDate=20240105", s(&["wang"])),
        ("StudyTime=1200-1315", s(&["wang2", "zhao"])),
        (&uid_list, s(&["li", "doe"])),
        (
            "ModalitiesInStudy=CT",
            s(&["wang", "wang2", "li", "zhao", "doe"]),
        ),
        ("ModalitiesInStudy=MR", s(&[])),
        ("Modality=CT&PatientName=Doe*", s(&["doe"])),
        (
            "AccessionNumber=ACC-?",
            s(&["wang", "wang2", "li", "zhao", "doe"]),
        ),
    ];
    // Referring Physician Name matches as Patient Name does
    let doctors = doctor_cases(&f);
    for (q, expected) in cases.iter().chain(&doctors) {
        let got = web.json(&format!("/studies?{q}"), &f.gadmin).await;
        assert_eq!(
            &uids_of(&got, "0020000D"),
            expected,
            "group admin: /studies?{q}"
        );
    }

    // what OHIF reads is there
    let one = web
        .json(
            &format!("/studies?StudyInstanceUID={}", f.study("wang")),
            &f.gadmin,
        )
        .await;
    let r = &one[0];
    for tag in [
        "0020000D", "00080020", "00080030", "00080050", "00100020", "00100010", "00100030",
        "00201206", "00201208", "00081030", "00080061", "00080090", "00081190",
    ] {
        assert!(r.get(tag).is_some(), "study result lacks {tag}: {r}");
    }
    assert_eq!(r["00100010"]["Value"][0]["Ideographic"], "王^小明");
    assert_eq!(r["00100010"]["Value"][0]["Phonetic"], "wang^xiao ming");
    assert_eq!(value(r, "00201208").as_deref(), Some("2"));
    assert_eq!(value(r, "00081030").as_deref(), Some("头颅CT平扫"));

    // includefield: a keyword adds an attribute the defaults lack; `all` adds more
    assert!(r.get("00101010").is_none());
    let inc = web
        .json(
            &format!(
                "/studies?StudyInstanceUID={}&includefield=PatientBirthDate,00081030",
                f.study("wang")
            ),
            &f.gadmin,
        )
        .await;
    assert_eq!(value(&inc[0], "00100030").as_deref(), Some("19600101"));
    let all = web
        .json(
            &format!(
                "/studies?StudyInstanceUID={}&includefield=all",
                f.study("wang")
            ),
            &f.gadmin,
        )
        .await;
    assert!(all[0].as_object().unwrap().len() >= r.as_object().unwrap().len());

    // paging: limit/offset pages concatenate to the whole ordered list
    let whole: Vec<String> = web
        .json("/studies", &f.gadmin)
        .await
        .iter()
        .filter_map(|i| value(i, "0020000D"))
        .collect();
    let mut paged = Vec::new();
    for offset in [0, 2, 4, 6] {
        let page = web
            .json(&format!("/studies?limit=2&offset={offset}"), &f.gadmin)
            .await;
        assert!(page.len() <= 2);
        paged.extend(page.iter().filter_map(|i| value(i, "0020000D")));
    }
    assert_eq!(paged, whole);
    // a page with more after it says so (PS3.18 8.3.4.4.1); the last page does not
    let more = |r: &reqwest::Response| {
        r.headers()
            .get_all("warning")
            .iter()
            .any(|v| v.to_str().unwrap_or("").contains("additional results"))
    };
    let n = whole.len();
    assert!(n >= 3, "{whole:?}");
    let r = web
        .get(&format!("/studies?limit={}", n - 1), &f.gadmin)
        .await;
    assert_eq!(r.status(), 200);
    assert!(more(&r), "{:?}", r.headers());
    let r = web.get(&format!("/studies?limit={n}"), &f.gadmin).await;
    assert!(!more(&r), "{:?}", r.headers());
    let r = web
        .get(&format!("/studies?limit=2&offset={}", n - 2), &f.gadmin)
        .await;
    assert!(!more(&r), "{:?}", r.headers());

    // scoping: each township sees its own studies only, whatever it asks
    let own1: BTreeSet<String> = s(&["wang", "wang2", "doe"]);
    assert_eq!(
        uids_of(&web.json("/studies", &f.clinic1).await, "0020000D"),
        own1
    );
    assert_eq!(
        uids_of(
            &web.json(
                &format!("/studies?StudyInstanceUID={}", f.study("li")),
                &f.clinic1
            )
            .await,
            "0020000D"
        ),
        BTreeSet::new()
    );
    assert_eq!(
        uids_of(&web.json("/studies", &f.clinic2).await, "0020000D"),
        s(&["li", "zhao"])
    );
    assert!(
        web.json("/series?Modality=CT", &f.clinic2)
            .await
            .iter()
            .all(|i| {
                let st = value(i, "0020000D").unwrap();
                st == f.study("li") || st == f.study("zhao")
            })
    );
    // and cannot retrieve the other's study: told, as for a UID that does not exist,
    // that there is none
    let r = web
        .get(&format!("/studies/{}/metadata", f.study("li")), &f.clinic1)
        .await;
    assert_eq!(r.status(), 404);
    let unknown = web
        .get(
            "/studies/1.2.826.0.1.3680043.2.1143.999/metadata",
            &f.clinic1,
        )
        .await;
    assert_eq!(unknown.status(), 404);

    // series and instance levels
    let series = web
        .json(&format!("/studies/{}/series", f.study("wang")), &f.gadmin)
        .await;
    assert_eq!(series.len(), 1);
    assert_eq!(value(&series[0], "00080060").as_deref(), Some("CT"));
    assert_eq!(value(&series[0], "00201209").as_deref(), Some("2"));
    let series_uid = value(&series[0], "0020000E").unwrap();
    let inst = web
        .json(
            &format!("/studies/{}/series/{series_uid}/instances", f.study("wang")),
            &f.gadmin,
        )
        .await;
    assert_eq!(inst.len(), 2);
    assert_eq!(value(&inst[0], "00200013").as_deref(), Some("1"));
    assert_eq!(
        value(&inst[0], "00280010").as_deref(),
        Some("16"),
        "Rows from the index"
    );
    assert_eq!(
        value(&inst[0], "00080016").as_deref(),
        Some(uids::CT_IMAGE_STORAGE)
    );
    let by_number = web
        .json("/instances?InstanceNumber=2&PatientID=P5", &f.gadmin)
        .await;
    assert_eq!(by_number.len(), 1);
    // a search not under one study carries each result's study attributes (PS3.18
    // 10.6.3.3.2/3), the matched PatientID among them
    let i = &by_number[0];
    assert_eq!(value(i, "00100020").as_deref(), Some("P5"), "{i}");
    assert_eq!(value(i, "0020000D"), Some(f.study("doe")));
    for tag in ["00100010", "00080020", "00080050", "00080061", "00201208"] {
        assert!(
            i.get(tag).and_then(|e| e.get("Value")).is_some(),
            "/instances result lacks {tag}: {i}"
        );
    }
    let all_series = web.json("/series?PatientID=P2", &f.gadmin).await;
    assert_eq!(all_series.len(), 1);
    assert_eq!(value(&all_series[0], "00100020").as_deref(), Some("P2"));
    assert_eq!(
        value(&all_series[0], "00080020").as_deref(),
        Some("20240210")
    );
    assert_eq!(value(&all_series[0], "00201206").as_deref(), Some("1"));
    // under one study the study attributes are left to the study, unless matched on
    let in_study = web
        .json(
            &format!("/studies/{}/series?PatientID=P2", f.study("wang2")),
            &f.gadmin,
        )
        .await;
    assert_eq!(in_study.len(), 1);
    assert_eq!(value(&in_study[0], "00100020").as_deref(), Some("P2"));
    assert!(in_study[0].get("00100010").is_none(), "{}", in_study[0]);
    assert_eq!(
        web.json(&format!("/studies/{}/instances", f.study("doe")), &f.gadmin)
            .await
            .len(),
        2
    );

    // an attribute the index cannot match is reported, not silently applied
    let r = web.get("/studies?InstitutionName=X", &f.gadmin).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["warning"]
            .to_str()
            .unwrap()
            .contains("InstitutionName")
    );
    // bad requests
    assert_eq!(
        web.get("/studies?NoSuchKeyword=1", &f.gadmin)
            .await
            .status(),
        400
    );
    assert_eq!(
        web.get("/studies?limit=many", &f.gadmin).await.status(),
        400
    );
    let r = web
        .client
        .get(format!("{}/studies", web.base))
        .bearer_auth(&f.gadmin)
        .header("accept", "application/dicom+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    // no token
    let r = web
        .client
        .get(format!("{}/studies", web.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    qido_name_keys_are_filled_at_start(f).await;
}

/// Referring Physician Name matches as Patient Name does: a component group, a wildcard,
/// fuzzy (case, width, any component).
fn doctor_cases(f: &Fixture) -> Vec<(&'static str, BTreeSet<String>)> {
    let s = |labels: &[&str]| -> BTreeSet<String> { labels.iter().map(|l| f.study(l)).collect() };
    vec![
        ("ReferringPhysicianName=周^健", s(&["wang"])),
        ("ReferringPhysicianName=Z*", s(&["wang"])),
        (
            "ReferringPhysicianName=zhou&fuzzymatching=true",
            s(&["wang", "zhao"]),
        ),
        ("ReferringPhysicianName=健&fuzzymatching=true", s(&["wang"])),
    ]
}

/// Studies indexed before the name keys existed (migration 13) get them when the hub
/// starts.
async fn qido_name_keys_are_filled_at_start(mut f: Fixture) {
    raw_sql(
        &f.hub,
        &["UPDATE studies SET referring_physician_groups = NULL, referring_physician_fuzzy = NULL"],
    )
    .await;
    {
        let web = Web::new(&f.hub);
        let got = web
            .json("/studies?ReferringPhysicianName=周^健", &f.gadmin)
            .await;
        assert!(uids_of(&got, "0020000D").is_empty(), "keys cleared");
    }
    f.hub.stop();
    f.hub.start();
    let web = Web::new(&f.hub);
    for (q, expected) in &doctor_cases(&f) {
        let got = web.json(&format!("/studies?{q}"), &f.gadmin).await;
        assert_eq!(
            &uids_of(&got, "0020000D"),
            expected,
            "after the start-up fill: /studies?{q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_mixed_parts_and_metadata_cache() {
    let f = fixture(HubOptions::default()).await;
    let web = Web::new(&f.hub);
    let catalog = f.hub.catalog().await;
    use dxhub_store::Catalog;
    let before = catalog.counts().await.unwrap();

    let study = f.study("doe");
    let series = web
        .json(&format!("/studies/{study}/series"), &f.gadmin)
        .await;
    let series_uid = value(&series[0], "0020000E").unwrap();
    let meta_path = format!("/studies/{study}/series/{series_uid}/metadata");
    let m1 = web.json(&meta_path, &f.gadmin).await;
    assert_eq!(m1.len(), 2);
    // warm: the same answer
    assert_eq!(web.json(&meta_path, &f.gadmin).await, m1);

    // one new, one identical re-send, one truncated, one not DICOM
    let (new_sop, new) = ct(
        &study,
        &series_uid,
        3,
        "P5",
        "Doe^John",
        "20240302",
        "070000",
    );
    let existing = web
        .json(
            &format!("/studies/{study}/series/{series_uid}/instances?InstanceNumber=1"),
            &f.gadmin,
        )
        .await;
    let existing_sop = value(&existing[0], "00080018").unwrap();
    let original = web
        .client
        .get(format!(
            "{}/studies/{study}/series/{series_uid}/instances/{existing_sop}",
            web.base
        ))
        .bearer_auth(&f.gadmin)
        .header(
            "accept",
            "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), 200);
    let ctype = original.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let boundary = ctype
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let body = original.bytes().await.unwrap();
    let dup = multipart_first_part(&body, &boundary);
    let (_, mut truncated) = ct(
        &study,
        &series_uid,
        4,
        "P5",
        "Doe^John",
        "20240302",
        "070000",
    );
    truncated.truncate(truncated.len() - 100);
    let not_dicom = b"this is not DICOM".to_vec();

    let (status, resp) = web
        .stow(
            &format!("/studies/{study}"),
            &f.clinic1,
            &[
                ("application/dicom", &new),
                ("application/dicom", &dup),
                ("application/dicom", &truncated),
                ("application/dicom", &not_dicom),
            ],
        )
        .await;
    assert_eq!(status, 202, "{resp}");
    let referenced = seq(&resp, "00081199");
    let failed = seq(&resp, "00081198");
    assert_eq!(referenced.len(), 2, "{resp}");
    assert_eq!(failed.len(), 2, "{resp}");
    let referenced_sops: BTreeSet<String> = referenced
        .iter()
        .filter_map(|i| value(i, "00081155"))
        .collect();
    assert_eq!(
        referenced_sops,
        BTreeSet::from([new_sop.clone(), existing_sop.clone()])
    );
    for i in &referenced {
        assert!(value(i, "00081190").unwrap().contains("/dicomweb/studies/"));
    }
    for i in &failed {
        assert_eq!(value(i, "00081197").as_deref(), Some("49152"), "C000: {i}");
    }
    assert!(value(&resp, "00081190").unwrap().ends_with(&study));

    // exactly one new instance in the index; nothing left in the spool
    let after = catalog.counts().await.unwrap();
    assert_eq!(after.instances, before.instances + 1);
    assert_eq!(after.instance_versions, before.instance_versions + 1);
    let spool: Vec<_> = std::fs::read_dir(f.hub.spool_dir()).unwrap().collect();
    assert!(spool.is_empty(), "spool not empty: {spool:?}");

    // the series metadata reflects the new instance (cache invalidated)
    let m2 = web.json(&meta_path, &f.gadmin).await;
    assert_eq!(m2.len(), 3);
    assert!(uids_of(&m2, "00080018").contains(&new_sop));
    // bulk data URIs point back at this hub
    let bulk = m2[0]["7FE00010"]["BulkDataURI"].as_str().unwrap();
    assert!(
        bulk.starts_with(&web.base) && bulk.ends_with("/bulk/7FE00010"),
        "{bulk}"
    );

    // the body breaks off after a stored part (no close delimiter): 202 with what was
    // stored and the break as a failed entry, the store audited; broken off before
    // anything was stored: 400
    let audited = || {
        dxhub_e2e::api::index_scalar(
            &f.hub,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'study-store' AND outcome = 'success'",
        )
    };
    let stores_before = audited().await;
    let (kept_sop, kept) = ct(
        &study,
        &series_uid,
        5,
        "P5",
        "Doe^John",
        "20240302",
        "070000",
    );
    let (ctype, whole) = stow_body(&[("application/dicom", &kept), ("application/dicom", &kept)]);
    let cut = &whole[..whole.len() - kept.len() / 2];
    let post = |body: Vec<u8>| {
        web.client
            .post(format!("{}/studies/{study}", web.base))
            .bearer_auth(&f.clinic1)
            .header("content-type", ctype.clone())
            .body(body)
            .send()
    };
    let r = post(cut.to_vec()).await.unwrap();
    let status = r.status().as_u16();
    let resp: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(status, 202, "{resp}");
    let referenced = seq(&resp, "00081199");
    assert_eq!(referenced.len(), 1, "{resp}");
    assert_eq!(value(referenced[0], "00081155"), Some(kept_sop.clone()));
    let failed = seq(&resp, "00081198");
    assert_eq!(failed.len(), 1, "{resp}");
    assert_eq!(value(failed[0], "00081197").as_deref(), Some("49152"));
    assert_eq!(
        audited().await,
        stores_before + 1,
        "the stored part is audited"
    );
    let boundary_at = whole
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("first line");
    let r = post(whole[..boundary_at + 2 + 100].to_vec()).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(audited().await, stores_before + 1);
    let spool: Vec<_> = std::fs::read_dir(f.hub.spool_dir()).unwrap().collect();
    assert!(spool.is_empty(), "spool not empty: {spool:?}");
    let after = catalog.counts().await.unwrap();

    // a part of another study into /studies/{study}: A900; nothing stored → 409
    let (_, other) = ct(
        &new_uid(),
        &new_uid(),
        1,
        "P5",
        "Doe^John",
        "20240302",
        "070000",
    );
    let (status, resp) = web
        .stow(
            &format!("/studies/{study}"),
            &f.clinic1,
            &[("application/dicom", &other)],
        )
        .await;
    assert_eq!(status, 409, "{resp}");
    assert_eq!(
        value(seq(&resp, "00081198")[0], "00081197").as_deref(),
        Some("43264")
    );
    // a clinic may not add to a study of another township: 0124
    let (_, intrude) = ct(
        &f.study("li"),
        &new_uid(),
        9,
        "P3",
        "Li^Lei",
        "20231231",
        "235959",
    );
    let (status, resp) = web
        .stow("/studies", &f.clinic1, &[("application/dicom", &intrude)])
        .await;
    assert_eq!(status, 409, "{resp}");
    assert_eq!(
        value(seq(&resp, "00081198")[0], "00081197").as_deref(),
        Some("292")
    );
    assert_eq!(catalog.counts().await.unwrap().instances, after.instances);

    // a gateway (device token) may STOW into its institution
    let device = add_device(&f.hub, T1, "GW-T1-01");
    let (_, gw) = ct(
        &new_uid(),
        &new_uid(),
        1,
        "P9",
        "Gateway^Sent",
        "20240401",
        "090000",
    );
    let (status, resp) = web
        .stow("/studies", &device, &[("application/dicom", &gw)])
        .await;
    assert_eq!(status, 200, "{resp}");
    // but not read
    assert_eq!(web.get("/studies", &device).await.status(), 403);

    // wrong media types
    let r = web
        .client
        .post(format!("{}/studies", web.base))
        .bearer_auth(&f.clinic1)
        .header("content-type", "application/dicom")
        .body(new.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = web
        .client
        .post(format!("{}/studies", web.base))
        .bearer_auth(&f.clinic1)
        .header(
            "content-type",
            "multipart/related; type=\"application/dicom\"; boundary=x",
        )
        .body("garbage without boundaries")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 400, "{}", r.status());
    let _ = &f.clinic2;
}

/// The first part's body of a multipart/related response.
fn multipart_first_part(body: &[u8], boundary: &str) -> Vec<u8> {
    let delim = format!("--{boundary}");
    let start = find(body, delim.as_bytes()).unwrap() + delim.len();
    let headers_end = find(&body[start..], b"\r\n\r\n").unwrap() + start + 4;
    let next = find(&body[headers_end..], format!("\r\n{delim}").as_bytes()).unwrap() + headers_end;
    body[headers_end..next].to_vec()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_stow_is_streamed() {
    // A 300 MB instance: the hub's resident memory must not grow with it.
    let hub = TestHub::spawn(HubOptions::default());
    add_user(&hub, T1, "clinic1", "clinic_doctor", PASSWORD);
    let token = issue_token(&hub, "clinic1", "1h");
    let dir = tempfile::tempdir().unwrap();
    let body_path = dir.path().join("body.bin");
    let boundary = "big-boundary-3f9a";
    let (rows, cols, frames) = (1024u16, 1024u16, 150usize);
    {
        use std::io::Write;
        let mut spec = CtSpec::new(&new_uid(), &new_uid(), 1);
        spec.rows = 16;
        spec.cols = 16;
        let mut o = ct_object(&spec);
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(rows),
        ));
        o.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(cols),
        ));
        o.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from(frames.to_string().as_str()),
        ));
        o.remove_element(tags::PIXEL_DATA);
        let file = o
            .with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                    .media_storage_sop_instance_uid(spec.sop_uid.as_str())
                    .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
            )
            .unwrap();
        let mut head = Vec::new();
        file.write_all(&mut head).unwrap();
        let pixel_len = rows as usize * cols as usize * 2 * frames;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&body_path).unwrap());
        write!(w, "--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").unwrap();
        w.write_all(&head).unwrap();
        // (7FE0,0010) OW, explicit length
        w.write_all(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0])
            .unwrap();
        w.write_all(&(pixel_len as u32).to_le_bytes()).unwrap();
        let chunk = vec![0x5Au8; 1 << 20];
        let mut left = pixel_len;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        write!(w, "\r\n--{boundary}--\r\n").unwrap();
    }
    let size = std::fs::metadata(&body_path).unwrap().len();
    assert!(size > 300_000_000);
    let url = hub.http_url("/dicomweb/studies");
    let out = std::process::Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", &url])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "-H",
            &format!(
                "Content-Type: multipart/related; type=\"application/dicom\"; boundary={boundary}"
            ),
        ])
        .args(["--data-binary", &format!("@{}", body_path.display())])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end().ends_with("200"),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // peak resident memory of the hub stays far below the request size
    let status = std::fs::read_to_string(format!("/proc/{}/status", hub.pid())).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kb < 150 * 1024,
        "peak RSS {hwm_kb} kB for a {size}-byte STOW"
    );
    use dxhub_store::Catalog;
    assert_eq!(hub.catalog().await.counts().await.unwrap().instances, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_and_isolation_headers() {
    let hub = TestHub::spawn(
        HubOptions::default().env("DXHUB_HTTP__CORS_ORIGINS", "[\"http://viewer.test:3000\"]"),
    );
    add_user(&hub, "县人民医院", "gadmin1", "group_admin", PASSWORD);
    let token = issue_token(&hub, "gadmin1", "1h");
    let client = reqwest::Client::new();
    let url = hub.http_url("/dicomweb/studies");
    // preflight from the configured origin
    let r = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://viewer.test:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://viewer.test:3000"
    );
    assert!(
        r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    // a request from another origin gets no CORS grant
    let r = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://evil.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // actual request: CORS and cross-origin isolation headers
    let r = client
        .get(&url)
        .bearer_auth(&token)
        .header("origin", "http://viewer.test:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "http://viewer.test:3000");
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    // capabilities for viewer configuration
    let caps: Value = client
        .get(hub.http_url("/dicomweb"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(caps["ohif"]["qidoSupportsIncludeField"], true);
    assert_eq!(caps["ohif"]["supportsWildcard"], true);
    assert_eq!(caps["ohif"]["supportsFuzzyMatching"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stow_dicom_json_with_bulk_data() {
    let hub = TestHub::spawn(HubOptions::default());
    add_user(&hub, T1, "clinic1", "clinic_doctor", PASSWORD);
    add_user(&hub, "县人民医院", "gadmin1", "group_admin", PASSWORD);
    let clinic = issue_token(&hub, "clinic1", "1h");
    let gadmin = issue_token(&hub, "gadmin1", "1h");
    let web = Web::new(&hub);
    let (study, series) = (new_uid(), new_uid());
    let (sop, file) = ct(
        &study,
        &series,
        1,
        "PJ1",
        "Json^Sent=张^三",
        "20240501",
        "101010",
    );
    // the JSON a client would send: bulk data by URI, the pixels in a part of their own
    let opts = dxhub_dicom::json::JsonOptions {
        inline_binary_max: 64,
        bulk_prefix: "http://client.example/bulk/".into(),
    };
    let meta = dxhub_dicom::json::file_to_json(&file, &opts).unwrap();
    let uri = meta["7FE00010"]["BulkDataURI"].as_str().unwrap().to_owned();
    let obj = dicom_object::OpenFileOptions::new()
        .from_reader(&file[..])
        .unwrap();
    let pixels = obj
        .element(tags::PIXEL_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .into_owned();
    let metadata = serde_json::to_vec(&Value::Array(vec![Value::Object(meta.clone())])).unwrap();

    /// (content type, extra headers, body)
    type Part = (String, Vec<(String, String)>, Vec<u8>);
    let send = |parts: Vec<Part>| {
        let boundary = "json-stow-boundary";
        let mut body = Vec::new();
        for (ct, extra, bytes) in parts {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n").as_bytes());
            for (k, v) in extra {
                body.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(&bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        web.client
            .post(format!("{}/studies", web.base))
            .bearer_auth(&clinic)
            .header(
                "content-type",
                format!("multipart/related; type=\"application/dicom+json\"; boundary={boundary}"),
            )
            .body(body)
            .send()
    };
    // the bulk part missing: the data set fails, nothing stored
    let r = send(vec![(
        "application/dicom+json".into(),
        vec![],
        metadata.clone(),
    )])
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    let resp: Value = r.json().await.unwrap();
    assert_eq!(
        value(seq(&resp, "00081198")[0], "00081197").as_deref(),
        Some("49152")
    );

    let r = send(vec![
        ("application/dicom+json".into(), vec![], metadata),
        (
            "application/octet-stream".into(),
            vec![("Content-Location".into(), uri)],
            pixels.clone(),
        ),
    ])
    .await
    .unwrap();
    let status = r.status();
    let resp: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        value(seq(&resp, "00081199")[0], "00081155").as_deref(),
        Some(sop.as_str())
    );

    // what the hub stored reads back with the same attributes and pixels
    let got = web
        .json(
            &format!("/studies/{study}/series/{series}/instances/{sop}/metadata"),
            &gadmin,
        )
        .await;
    let got = got[0].as_object().unwrap();
    for (tag, v) in &meta {
        if v.get("BulkDataURI").is_some() || v.get("InlineBinary").is_some() {
            continue;
        }
        assert_eq!(got.get(tag), Some(v), "{tag}");
    }
    assert_eq!(got["00100010"]["Value"][0]["Ideographic"], "张^三");
    let r = web
        .client
        .get(format!(
            "{}/studies/{study}/series/{series}/instances/{sop}/frames/1",
            web.base
        ))
        .bearer_auth(&gadmin)
        .header(
            "accept",
            "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
    let boundary = ctype
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let body = r.bytes().await.unwrap();
    assert_eq!(multipart_first_part(&body, &boundary), pixels);
}

/// The DICOM JSON the index keeps is derived data: an instance without it (indexed before
/// the index kept it, or cleared) gets it back from its blob on the first /metadata
/// request, identical to what ingest wrote, and the row is filled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_metadata_is_rebuilt_from_the_blob() {
    let f = fixture(HubOptions::default()).await;
    let web = Web::new(&f.hub);
    let study = f.study("wang");
    let before = web
        .json(&format!("/studies/{study}/metadata"), &f.gadmin)
        .await;
    assert_eq!(before.len(), 2);
    raw_sql(&f.hub, &["UPDATE instances SET metadata = NULL"]).await;
    use dxhub_store::Catalog;
    let catalog = f.hub.catalog().await;
    let scope = dxhub_store::InstanceScope {
        study_instance_uid: study.clone(),
        series_instance_uid: None,
        sop_instance_uid: None,
    };
    assert!(
        catalog
            .wado_instances(&scope, true)
            .await
            .unwrap()
            .iter()
            .all(|i| i.metadata.is_none())
    );
    let after = web
        .json(&format!("/studies/{study}/metadata"), &f.gadmin)
        .await;
    assert_eq!(after, before);
    assert!(
        catalog
            .wado_instances(&scope, true)
            .await
            .unwrap()
            .iter()
            .all(|i| i.metadata.is_some())
    );
}
