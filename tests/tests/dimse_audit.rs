//! DIMSE auditing against a real spawned hub: one `dicom-store` entry per association and
//! study (with the count of distinct instances), a `dicom-associate` failure for every
//! rejected association, never patient data, and an intact hash chain.

use dicom_dictionary_std::uids;
use dxhub_e2e::generate::{CtSpec, ct_dataset, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::scu::{ConnectError, Scu, ct_context};

const PATIENT_NAME: &str = "Audit^Secretname";
const PATIENT_ID: &str = "PID-SECRET-4711";

fn spec(study: &str, series: &str, n: i32) -> CtSpec {
    let mut s = CtSpec::new(study, series, n);
    s.patient_name = PATIENT_NAME.into();
    s.patient_id = PATIENT_ID.into();
    s
}

fn audit_list(hub: &TestHub, action: &str) -> Vec<serde_json::Value> {
    let out = hub.cli(&["audit", "list", "--json", "--action", action]);
    assert!(
        out.status.success(),
        "dxhub audit list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("audit list --json is a JSON array")
}

#[test]
fn stores_and_rejections_are_audited_without_patient_data() {
    let hub = TestHub::spawn(HubOptions::default());
    let study_a = new_uid();
    let study_b = new_uid();
    let series_a = new_uid();
    let series_b = new_uid();

    // one association: 2 instances of study A (one sent twice), 1 of study B
    let mut scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &[ct_context()], 1 << 20)
        .expect("CLINIC is registered");
    let (pc, _) = scu
        .context_for(uids::CT_IMAGE_STORAGE)
        .expect("CT accepted");
    let a1 = spec(&study_a, &series_a, 1);
    let a2 = spec(&study_a, &series_a, 2);
    let b1 = spec(&study_b, &series_b, 1);
    for s in [&a1, &a2, &a1, &b1] {
        let (status, comment) = scu
            .store(pc, uids::CT_IMAGE_STORAGE, &s.sop_uid, &ct_dataset(s))
            .expect("C-STORE");
        assert_eq!(status, 0, "C-STORE status {status:04X} {comment:?}");
    }
    scu.release().expect("release");

    // a stranger is rejected
    assert!(matches!(
        Scu::connect(hub.dicom, "STRANGER", "DXHUB", &[ct_context()], 1 << 20),
        Err(ConnectError::Rejected { reason: 3, .. })
    ));

    let stores = audit_list(&hub, "dicom-store");
    assert_eq!(
        stores.len(),
        2,
        "one dicom-store entry per study: {stores:#?}"
    );
    for (study, count) in [(&study_a, 2), (&study_b, 1)] {
        let e = stores
            .iter()
            .find(|e| e["object_id"] == study.as_str())
            .unwrap_or_else(|| panic!("no dicom-store entry for study {study}: {stores:#?}"));
        assert_eq!(e["object_kind"], "study");
        assert_eq!(e["outcome"], format!("success: {count} instances"));
        assert_eq!(e["actor_kind"], "ae");
        assert_eq!(e["actor"], "CLINIC");
        assert!(e["institution_id"].is_i64(), "institution recorded: {e}");
        assert_eq!(e["client"], "127.0.0.1");
    }

    let associates = audit_list(&hub, "dicom-associate");
    assert_eq!(associates.len(), 1, "one rejection: {associates:#?}");
    let r = &associates[0];
    assert_eq!(r["actor_kind"], "ae");
    assert_eq!(r["actor"], "STRANGER");
    assert_eq!(r["outcome"], "failure: calling-ae-not-recognized");
    assert_eq!(r["client"], "127.0.0.1");

    // never patient data, in any entry
    let all = hub.cli(&["audit", "list", "--json", "--limit", "1000"]);
    assert!(all.status.success());
    let text = String::from_utf8_lossy(&all.stdout);
    for secret in [PATIENT_NAME, "Secretname", PATIENT_ID] {
        assert!(
            !text.contains(secret),
            "patient data {secret:?} in the audit log"
        );
    }

    let verify = hub.cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
