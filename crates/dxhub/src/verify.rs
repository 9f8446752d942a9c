//! `dxhub verify REPORT.json --keys KEYS.json`: verify an exported signed report offline,
//! with the public keys the hub exported (no hub, no database). Exit status 0 when the
//! signature is valid and made by the trusted key of the report's verifier (not revoked
//! before the signing time), 1 otherwise. Instances the study received after signing are
//! named in a note: the signature covers what was there when it was made.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use dxhub_core::report::{SignedReport, TrustedKeys, fingerprint, from_hex, late_instances_note};

pub fn run(report: &Path, keys: &Path) -> anyhow::Result<ExitCode> {
    let report: SignedReport = serde_json::from_slice(
        &std::fs::read(report).with_context(|| format!("reading {}", report.display()))?,
    )
    .with_context(|| format!("{} is not a signed report export", report.display()))?;
    let keys: TrustedKeys = serde_json::from_slice(
        &std::fs::read(keys).with_context(|| format!("reading {}", keys.display()))?,
    )
    .with_context(|| format!("{} is not a key export", keys.display()))?;
    let c = &report.content;
    match report.verify(&keys) {
        Ok(key) => {
            let fp = from_hex(&key.public_key)
                .map(|k| fingerprint(&k))
                .unwrap_or_default();
            println!(
                "VALID: report {} version {} of study {} ({} instances), signed by {} at {} (key SM3 {})",
                c.report_id,
                c.version,
                c.study_instance_uid,
                c.instances.len(),
                key.login,
                c.signed_at,
                fp
            );
            if let Some(note) = late_instances_note(&report.instances_added) {
                println!("note: {note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("INVALID: report {} version {}: {e}", c.report_id, c.version);
            Ok(ExitCode::FAILURE)
        }
    }
}
