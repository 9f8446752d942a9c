//! `dxhub verify` (issue #7, offline verification): a report signed with SM2 verifies
//! against the exported public keys; changing one byte of the report, one instance hash,
//! or the key makes it fail, with a non-zero exit status.

use std::collections::BTreeMap;
use std::process::Command;

use dxhub_core::report::{SignedContent, SignedReport, SigningKey, TrustedKey, TrustedKeys};
use dxhub_e2e::hub::dxhub_bin;

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn content() -> SignedContent {
    SignedContent {
        report_id: 41,
        version: 1,
        study_instance_uid: "2.25.1234".into(),
        source_institution: "东风村卫生室".into(),
        patient_identity_hash: "9f".repeat(32),
        author: "r1".into(),
        verifier: "senior".into(),
        written_at: 1_795_380_000_000_000,
        signed_at: 1_795_380_600_000_000,
        body: BTreeMap::from([
            (
                "findings".into(),
                "窦性心律，II、III、aVF导联ST段抬高0.2 mV".into(),
            ),
            ("impression".into(), "急性下壁心肌梗死".into()),
        ]),
        instances: vec![("2.25.1234.1.1".into(), "ab".repeat(32))],
    }
}

/// Run `dxhub verify` on `report` with `keys`: (exit success, stdout).
fn verify(report: &SignedReport, keys: &TrustedKeys) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("report.json");
    let k = dir.path().join("keys.json");
    std::fs::write(&r, serde_json::to_vec_pretty(report).unwrap()).unwrap();
    std::fs::write(&k, serde_json::to_vec_pretty(keys).unwrap()).unwrap();
    let out = Command::new(dxhub_bin())
        .arg("--data-dir")
        .arg(dir.path().join("unused"))
        .arg("verify")
        .arg(&r)
        .arg("--keys")
        .arg(&k)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn offline_verification_detects_every_change() {
    let mut rng = rand_core::OsRng;
    let key = SigningKey::generate(&mut rng);
    let keys = TrustedKeys {
        keys: vec![TrustedKey {
            login: "senior".into(),
            public_key: hexs(&key.public_key()),
            fingerprint: None,
            revoked_at: None,
        }],
    };
    let signed = SignedReport::sign(content(), &key);
    let (ok, out) = verify(&signed, &keys);
    assert!(ok, "{out}");
    assert!(out.starts_with("VALID: report 41 version 1"), "{out}");

    let mut body = signed.clone();
    body.content
        .body
        .insert("impression".into(), "急性下壁心肌梗死?".into());
    let (ok, out) = verify(&body, &keys);
    assert!(!ok && out.contains("does not match"), "{out}");

    let mut inst = signed.clone();
    inst.content.instances[0].1 = "ac".repeat(32);
    let (ok, out) = verify(&inst, &keys);
    assert!(!ok && out.contains("does not match"), "{out}");

    // the report re-signed with another key is not trusted; the trusted key replaced by
    // another is no longer the report's
    let other = SigningKey::generate(&mut rng);
    let (ok, out) = verify(&SignedReport::sign(content(), &other), &keys);
    assert!(!ok && out.contains("not among the trusted keys"), "{out}");
    let swapped = TrustedKeys {
        keys: vec![TrustedKey {
            login: "senior".into(),
            public_key: hexs(&other.public_key()),
            fingerprint: None,
            revoked_at: None,
        }],
    };
    let (ok, out) = verify(&signed, &swapped);
    assert!(!ok, "{out}");

    // a key revoked before the signing time (as the hub's key export carries it)
    let mut revoked = keys.clone();
    revoked.keys[0].revoked_at = Some(signed.content.signed_at - 1);
    let (ok, out) = verify(&signed, &revoked);
    assert!(!ok && out.contains("revoked"), "{out}");

    // instances that arrived after signing are a note, not a change
    let mut late = signed.clone();
    late.instances_added = vec![("1.2.3.9".into(), "ab".repeat(32))];
    let (ok, out) = verify(&late, &keys);
    assert!(
        ok && out.contains("1 instance arrived after signing"),
        "{out}"
    );

    // not a report at all
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, b"{}").unwrap();
    let k = dir.path().join("keys.json");
    std::fs::write(&k, serde_json::to_vec(&keys).unwrap()).unwrap();
    let out = Command::new(dxhub_bin())
        .args(["--data-dir"])
        .arg(dir.path().join("unused"))
        .arg("verify")
        .arg(&junk)
        .arg("--keys")
        .arg(&k)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
