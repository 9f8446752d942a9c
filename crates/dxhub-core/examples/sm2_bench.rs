//! SM2 signing benchmark for `bench/reports/run.sh`: signs and verifies the canonical
//! bytes of a typical report signature (sections, ECG fields, 200 instance hashes) with
//! dxhub's SM2 (RustCrypto `sm2`, SM3, ID `1234567812345678`).
//!
//!   sm2_bench [SECONDS]    (default 3 per operation)
//!
//! Prints `{"sign_per_s", "verify_per_s", "message_bytes"}`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dxhub_core::report::{SignedContent, SigningKey, canonical_bytes, verify};

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let mut body = BTreeMap::new();
    body.insert(
        "section.findings".to_owned(),
        "两肺纹理清晰，未见明显实质性病变。心影大小、形态未见异常。".repeat(4),
    );
    body.insert(
        "section.impression".to_owned(),
        "胸部正位片未见明显异常。".to_owned(),
    );
    for (k, v) in [
        ("heart_rate", "72"),
        ("pr_interval", "160"),
        ("qrs_duration", "92"),
    ] {
        body.insert(format!("field.{k}"), v.to_owned());
    }
    let content = SignedContent {
        report_id: 42,
        version: 3,
        study_instance_uid: "1.2.156.112605.14.20261122.1".into(),
        source_institution: "城关镇卫生院".into(),
        patient_identity_hash: "ab".repeat(32),
        author: "reader".into(),
        verifier: "senior".into(),
        written_at: 1_795_399_200_000_000,
        signed_at: 1_795_399_260_000_000,
        body,
        instances: (0..200)
            .map(|i| {
                (
                    format!("1.2.156.112605.14.20261122.1.1.{i}"),
                    "cd".repeat(32),
                )
            })
            .collect(),
    };
    let msg = canonical_bytes(&content);
    let key = SigningKey::generate(&mut rand_core::OsRng);
    let public = key.public_key();
    let limit = Duration::from_secs_f64(secs);
    let (mut n, start) = (0u64, Instant::now());
    let mut sig = Vec::new();
    while start.elapsed() < limit {
        sig = key.sign(&msg);
        n += 1;
    }
    let sign_per_s = n as f64 / start.elapsed().as_secs_f64();
    let (mut m, start) = (0u64, Instant::now());
    while start.elapsed() < limit {
        assert!(verify(&public, &msg, &sig).is_ok(), "verify");
        m += 1;
    }
    let verify_per_s = m as f64 / start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"sign_per_s": sign_per_s, "verify_per_s": verify_per_s, "message_bytes": msg.len()})
    );
}
