#![allow(clippy::unwrap_used)]
//! Moving an institution within its alliance (`PATCH /api/v1/institutions/{id}` with
//! `parent`, issue #3): a village clinic handed from one township to another is then seen
//! by its new township and no longer by the old one; moves across alliances or below an
//! institution's own level are refused; the move is audited.

use dxhub_e2e::api::{Api, PASSWORD, add_user, admin_list, issue_token, store_study};
use dxhub_e2e::hub::{HubOptions, TestHub};
use serde_json::json;

const T1: &str = "城关镇卫生院";
const T2: &str = "南山乡卫生院";
const V: &str = "东村卫生室";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_village_moved_to_another_township_changes_who_sees_its_studies() {
    let mut hub = TestHub::spawn(HubOptions::default());
    for (name, level, parent) in [(T2, "township", "县人民医院"), (V, "village", T1)] {
        hub.admin_ok(&[
            "institution",
            "add",
            "--alliance",
            "测试医共体",
            "--name",
            name,
            "--level",
            level,
            "--parent",
            parent,
        ]);
    }
    hub.admin_ok(&["alliance", "add", "邻县医共体"]);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "邻县医共体",
        "--name",
        "邻县人民医院",
        "--level",
        "county",
    ]);
    hub.admin_ok(&["ae", "add", "--institution", V, "--ae-title", "VILLAGE"]);
    hub.stop();
    hub.start();
    let study = store_study(&hub, "VILLAGE", "MOVE-1");
    add_user(&hub, T1, "doc.t1", "clinic_doctor", PASSWORD);
    add_user(&hub, T2, "doc.t2", "clinic_doctor", PASSWORD);
    add_user(&hub, "县人民医院", "gadmin", "group_admin", PASSWORD);
    add_user(&hub, "县人民医院", "auditor", "auditor", PASSWORD);
    let t1 = issue_token(&hub, "doc.t1", "1h");
    let t2 = issue_token(&hub, "doc.t2", "1h");
    let admin = issue_token(&hub, "gadmin", "1h");
    let auditor = issue_token(&hub, "auditor", "1h");
    let api = Api::new(&hub);
    let path = format!("/api/v1/studies/{study}");
    assert_eq!(api.get(&path, Some(&t1)).await.status, 200);
    // another township's study is, to its doctor, no study at all
    assert_eq!(api.get(&path, Some(&t2)).await.status, 404);

    let v_id = admin_list(&hub, "institution")
        .iter()
        .find(|i| i["name"] == V)
        .and_then(|i| i["id"].as_i64())
        .unwrap();
    let t1_id = admin_list(&hub, "institution")
        .iter()
        .find(|i| i["name"] == T1)
        .and_then(|i| i["id"].as_i64())
        .unwrap();
    let patch = |id: i64, body: serde_json::Value, token: String| {
        let api = api.clone();
        async move {
            dxhub_e2e::api::Reply::of(
                api.req(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/institutions/{id}"),
                    Some(&token),
                )
                .json(&body)
                .send()
                .await
                .unwrap(),
            )
            .await
        }
    };
    // a clinic doctor may not move institutions
    let r = patch(v_id, json!({ "parent": T2 }), t1.clone()).await;
    assert_eq!(r.status, 403, "{r}");
    // refused moves: below its own level, to another alliance, unknown parent
    let r = patch(t1_id, json!({ "parent": V }), admin.clone()).await;
    assert_eq!((r.status, r.code().as_str()), (422, "invalid-json"), "{r}");
    let r = patch(v_id, json!({ "parent": "邻县人民医院" }), admin.clone()).await;
    assert_eq!(r.status, 422, "{r}");
    let r = patch(v_id, json!({ "parent": "无此机构" }), admin.clone()).await;
    assert_eq!(r.status, 404, "{r}");
    assert_eq!(
        api.get(&path, Some(&t2)).await.status,
        404,
        "nothing moved yet"
    );

    let r = patch(v_id, json!({ "parent": T2 }), admin.clone()).await;
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.json()["parent_name"], T2);
    assert_eq!(api.get(&path, Some(&t2)).await.status, 200);
    assert_eq!(api.get(&path, Some(&t1)).await.status, 404);
    // the move is in the audit log
    let log = api
        .get("/api/v1/audit?action=institution.update", Some(&auditor))
        .await;
    assert!(
        log.json()["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object_id"] == V && e["outcome"] == "success"),
        "{log}"
    );
}
