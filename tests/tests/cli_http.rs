//! The command line (config layering, admin, migrate) and the HTTP operational endpoints.

use dxhub_e2e::hub::{HubOptions, TestHub, dxhub_bin};
use dxhub_e2e::scu::{Scu, verification_context};
use std::process::Command;

fn dxhub(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(dxhub_bin());
    c.arg("--data-dir").arg(data_dir);
    c.env_remove("DXHUB_CONFIG");
    c
}

#[test]
fn config_layers_defaults_file_env_and_flags_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    // defaults: ./dxhub-data, HTTP 8080, DICOM 11112, AE DXHUB, SQLite, local store
    let out = Command::new(dxhub_bin())
        .arg("config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let v: toml::Value = toml::from_str(&text).expect("config prints TOML");
    assert_eq!(v["data_dir"].as_str(), Some("./dxhub-data"));
    assert_eq!(v["http"]["listen"].as_str(), Some("0.0.0.0:8080"));
    assert_eq!(v["dicom"]["listen"].as_str(), Some("0.0.0.0:11112"));
    assert_eq!(v["dicom"]["ae_title"].as_str(), Some("DXHUB"));
    assert_eq!(v["dicom"]["accept_unknown_callers"].as_bool(), Some(false));
    assert_eq!(v["storage"]["backend"].as_str(), Some("local"));
    assert!(
        v["database"]["url"]
            .as_str()
            .unwrap()
            .starts_with("sqlite://")
    );

    // file → env → flags, secrets masked
    let file = dir.path().join("dxhub.toml");
    std::fs::write(
        &file,
        "[dicom]\nae_title = \"COUNTYHUB\"\nmax_associations = 7\n[storage.s3]\nsecret_access_key = \"s3-secret-value\"\n",
    )
    .unwrap();
    let out = dxhub(dir.path())
        .args(["--config"])
        .arg(&file)
        .arg("config")
        .env("DXHUB_DICOM__MAX_ASSOCIATIONS", "9")
        .env(
            "DXHUB_DATABASE__URL",
            "postgres://hub:pg-secret-value@db.example:5432/dxhub",
        )
        .env("DXHUB_TEST_SOMETHING_ELSE", "ignored")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("pg-secret-value") && !text.contains("s3-secret-value"),
        "secrets leaked:\n{text}"
    );
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(
        v["dicom"]["ae_title"].as_str(),
        Some("COUNTYHUB"),
        "from the file"
    );
    assert_eq!(
        v["dicom"]["max_associations"].as_integer(),
        Some(9),
        "env overrides the file"
    );
    assert_eq!(
        v["database"]["url"].as_str(),
        Some("postgres://hub:***@db.example:5432/dxhub")
    );
    assert_eq!(
        v["storage"]["s3"]["secret_access_key"].as_str(),
        Some("***")
    );

    // unknown keys are refused
    std::fs::write(&file, "[dicom]\nae_titel = \"typo\"\n").unwrap();
    let out = dxhub(dir.path())
        .arg("--config")
        .arg(&file)
        .arg("config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ae_titel"));
}

#[test]
fn admin_commands_validate_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| dxhub(d).args(args).output().unwrap();
    assert!(run(&["migrate"]).status.success());
    assert!(
        run(&["admin", "alliance", "add", "青山县医共体"])
            .status
            .success()
    );
    assert!(
        !run(&["admin", "alliance", "add", "青山县医共体"])
            .status
            .success(),
        "duplicate alliance"
    );
    assert!(
        run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "青山县医共体",
            "--name",
            "青山县人民医院",
            "--level",
            "county",
            "--population",
            "380000"
        ])
        .status
        .success()
    );
    assert!(
        run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "青山县医共体",
            "--name",
            "石桥镇卫生院",
            "--level",
            "township",
            "--parent",
            "青山县人民医院",
            "--population",
            "42000"
        ])
        .status
        .success()
    );
    assert!(
        run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "青山县医共体",
            "--name",
            "石桥村卫生室",
            "--level",
            "village",
            "--parent",
            "石桥镇卫生院",
            "--population",
            "1800"
        ])
        .status
        .success()
    );
    // a village cannot head a township; unknown alliance; bad level
    assert!(
        !run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "青山县医共体",
            "--name",
            "X",
            "--level",
            "township",
            "--parent",
            "石桥村卫生室"
        ])
        .status
        .success()
    );
    assert!(
        !run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "无此医共体",
            "--name",
            "Y",
            "--level",
            "county"
        ])
        .status
        .success()
    );
    assert!(
        !run(&[
            "admin",
            "institution",
            "add",
            "--alliance",
            "青山县医共体",
            "--name",
            "Z",
            "--level",
            "city"
        ])
        .status
        .success()
    );
    assert!(
        run(&[
            "admin",
            "ae",
            "add",
            "--institution",
            "石桥镇卫生院",
            "--ae-title",
            "SQ_DR01",
            "--host",
            "127.0.0.1"
        ])
        .status
        .success()
    );
    assert!(
        !run(&[
            "admin",
            "ae",
            "add",
            "--institution",
            "石桥镇卫生院",
            "--ae-title",
            "SQ_DR01"
        ])
        .status
        .success(),
        "AE taken"
    );
    assert!(
        !run(&[
            "admin",
            "ae",
            "add",
            "--institution",
            "石桥镇卫生院",
            "--ae-title",
            "MUCH_TOO_LONG_AE_TITLE"
        ])
        .status
        .success()
    );

    let out = run(&["admin", "institution", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let village = list.iter().find(|i| i["name"] == "石桥村卫生室").unwrap();
    assert_eq!(village["level"], "village");
    assert_eq!(village["parent_name"], "石桥镇卫生院");
    assert_eq!(village["population"], 1800);
    let out = run(&["admin", "ae", "list", "--json"]);
    let aes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(aes[0]["ae_title"], "SQ_DR01");
    assert_eq!(aes[0]["host"], "127.0.0.1");
    assert_eq!(aes[0]["institution_name"], "石桥镇卫生院");
    let out = run(&["admin", "alliance", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("青山县医共体"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_json_errors() {
    let hub = TestHub::spawn(HubOptions::default());
    let http = reqwest::Client::new();
    let r = http.get(hub.http_url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(hub.http_url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(hub.http_url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not-found");
    assert!(body["error"]["message"].is_string());

    // one accepted and one rejected association, one echo: the counters move
    let addr = hub.dicom;
    tokio::task::spawn_blocking(move || {
        let mut scu =
            Scu::connect(addr, "CLINIC", "DXHUB", &[verification_context()], 1 << 20).unwrap();
        let (pc, _) = scu.context_for("1.2.840.10008.1.1").unwrap();
        assert_eq!(scu.echo(pc).unwrap(), 0);
        scu.release().unwrap();
        assert!(
            Scu::connect(
                addr,
                "STRANGER",
                "DXHUB",
                &[verification_context()],
                1 << 20
            )
            .is_err()
        );
    })
    .await
    .unwrap();
    // /metrics needs a group_admin (or superadmin) session or the metrics token
    let r = http.get(hub.http_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    add_user_with_password(
        &hub,
        "县人民医院",
        "ops.admin",
        "group_admin",
        "Metrics-Admin-2026",
    );
    let token = issue_token(&hub, "ops.admin");
    let r = http
        .get(hub.http_url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let text = r.text().await.unwrap();
    assert!(
        text.contains("dxhub_dimse_associations_total{result=\"accepted\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("dxhub_dimse_associations_total{result=\"rejected_calling_ae\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("dxhub_dimse_commands_total{command=\"C-ECHO\",status=\"0000\"} 1"),
        "{text}"
    );
    assert!(text.contains("dxhub_ingest_duration_seconds"), "{text}");
}

#[test]
fn logs_carry_no_patient_data() {
    use dxhub_e2e::generate::{CtSpec, ct_dataset, new_uid};
    let mut hub = TestHub::spawn(
        HubOptions::default().env("DXHUB_LOG__FILTER", "debug,dicom_parser=error,sqlx=warn"),
    );
    let mut spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    spec.patient_name = "Secretname^Patient=秘密^病人".into();
    spec.patient_id = "ID-4711-SECRET".into();
    let mut scu = Scu::connect(
        hub.dicom,
        "CLINIC",
        "DXHUB",
        &[dxhub_e2e::scu::ct_context()],
        1 << 20,
    )
    .unwrap();
    let (pc, _) = scu
        .context_for(dicom_dictionary_std::uids::CT_IMAGE_STORAGE)
        .unwrap();
    assert_eq!(
        scu.store(
            pc,
            dicom_dictionary_std::uids::CT_IMAGE_STORAGE,
            &spec.sop_uid,
            &ct_dataset(&spec)
        )
        .unwrap()
        .0,
        0
    );
    scu.release().unwrap();
    hub.stop();
    let log = hub.log();
    assert!(
        log.contains(&spec.sop_uid),
        "debug log should mention the SOP Instance UID"
    );
    for secret in ["Secretname", "秘密", "ID-4711-SECRET", "19600101"] {
        assert!(!log.contains(secret), "patient data {secret:?} in the log");
    }
}

/// `dxhub admin user add … --password-stdin` with the password on standard input
/// (`TestHub::cli` has no stdin).
fn add_user_with_password(
    hub: &TestHub,
    institution: &str,
    login: &str,
    role: &str,
    password: &str,
) {
    use std::io::Write;
    let mut child = dxhub(&hub.data_dir)
        .args([
            "admin",
            "user",
            "add",
            "--institution",
            institution,
            "--login",
            login,
            "--role",
            role,
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bearer token from `dxhub admin token issue` (exempt from TOTP enrolment).
fn issue_token(hub: &TestHub, login: &str) -> String {
    let out = hub.cli(&["admin", "token", "issue", "--login", login]);
    assert!(
        out.status.success(),
        "token issue: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
