//! `dxhub fsck`: check the index against the object store and the spool.
//! - index rows whose blob is missing, or present with another size (corrupt);
//! - ECG records whose original bytes (an SCP-ECG, HL7 aECG or JSON upload, kept beside
//!   the DICOM instance made from it) are missing or have another size;
//! - orphan blobs (under `studies/`, not referenced by any row, or under `ecg/originals/`,
//!   not referenced by any ECG record), older than the grace period (younger ones may
//!   belong to an instance or upload being received right now);
//! - stray spool files (left by a crash), older than the grace period (younger ones may be
//!   instances a running hub or import is receiving).
//!
//! With `--repair`: rows whose blob is missing are removed (counts fixed) unless other
//! records (an ECG record, a work item, a report) refer to them, which are kept and
//! reported; orphans and stray spool files are deleted, each checked again just before.
//! A corrupt blob, or a missing or corrupt ECG original, is never repaired here: the row
//! and the bytes stay, for the operator to restore the blob from a backup (a re-send of the same instance is a duplicate of the
//! indexed one and would not replace it). Run repairs with the hub stopped; the grace
//! period and the checks before each deletion make a repair beside a running hub safe
//! for what is in flight, not for every race.

use crate::config::Config;
use crate::serve::{open_blobs, open_migrated_catalog, open_spool};
use dxhub_core::worklist::{Clock, SystemClock};
use futures::StreamExt;
use std::collections::HashSet;
use std::process::ExitCode;

pub async fn run(cfg: &Config, repair: bool, grace_secs: u64) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(cfg).await?;
    let blobs = open_blobs(cfg)?;
    let spool = open_spool(cfg)?;

    let mut referenced = HashSet::new();
    let mut missing = Vec::new();
    let mut corrupt = Vec::new();
    let mut rows = 0u64;
    let mut after = 0i64;
    loop {
        let page = catalog.list_instance_rows(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in page {
            rows += 1;
            match blobs.head(&row.blob_key).await? {
                Some(meta) if meta.size as i64 == row.size_bytes => {}
                Some(meta) => corrupt.push(format!(
                    "{} has {} bytes, index says {}",
                    row.blob_key, meta.size, row.size_bytes
                )),
                None => missing.push((row.id, row.blob_key.clone())),
            }
            referenced.insert(row.blob_key);
        }
    }

    // ECG originals: one check per key (records of the same content share one), none for
    // a DICOM upload, whose original is its instance's blob (checked above)
    let mut originals: std::collections::BTreeMap<String, (i64, Vec<i64>)> = Default::default();
    let mut after = 0i64;
    loop {
        let page = catalog.list_ecg_originals(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for o in page {
            if referenced.contains(&o.original_key) {
                continue;
            }
            originals
                .entry(o.original_key)
                .or_insert_with(|| (o.original_size, Vec::new()))
                .1
                .push(o.id);
        }
    }
    let mut missing_originals = Vec::new();
    for (key, (size, ecgs)) in &originals {
        let ecgs = ecgs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match blobs.head(key).await? {
            Some(meta) if meta.size as i64 == *size => {}
            Some(meta) => corrupt.push(format!(
                "{key} (original of ECG {ecgs}) has {} bytes, index says {size}",
                meta.size
            )),
            None => missing_originals.push(format!("{key} (original of ECG {ecgs})")),
        }
    }

    let grace_us = (grace_secs as i64) * 1_000_000;
    let old_enough = |modified_us: i64| SystemClock.now_us() - modified_us >= grace_us;
    let mut orphans = Vec::new();
    let mut in_flight = 0u64;
    for prefix in ["studies/", "ecg/originals/"] {
        let mut listing = blobs.list(Some(prefix));
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if referenced.contains(&meta.key) || originals.contains_key(&meta.key) {
                continue;
            }
            if old_enough(meta.last_modified_us) {
                orphans.push(meta.key);
            } else {
                in_flight += 1;
            }
        }
    }
    let mut stray = Vec::new();
    let mut spool_in_flight = 0u64;
    for f in spool.stray_files()? {
        match modified_us(&f) {
            Some(m) if !old_enough(m) => spool_in_flight += 1,
            Some(_) => stray.push(f),
            None => {} // gone meanwhile: finished by whoever wrote it
        }
    }

    println!("index rows checked: {rows}");
    for (_, key) in &missing {
        println!("missing blob: {key} is missing");
    }
    for what in &missing_originals {
        println!("missing ECG original: {what} is missing");
    }
    for why in &corrupt {
        println!("corrupt blob: {why}");
    }
    for key in &orphans {
        println!("orphan blob: {key}");
    }
    for f in &stray {
        println!("stray spool file: {}", f.display());
    }
    if in_flight > 0 {
        println!(
            "unreferenced blobs younger than {grace_secs} s (in flight, not touched): {in_flight}"
        );
    }
    if spool_in_flight > 0 {
        println!(
            "spool files younger than {grace_secs} s (in flight, not touched): {spool_in_flight}"
        );
    }
    let problems =
        missing.len() + missing_originals.len() + corrupt.len() + orphans.len() + stray.len();
    if problems == 0 {
        println!("clean");
        return Ok(ExitCode::SUCCESS);
    }
    if !repair {
        println!(
            "{problems} problem(s) found; run `dxhub fsck --repair` with the hub stopped to repair"
        );
        return Ok(ExitCode::FAILURE);
    }

    // Each step goes on past a failure of one item, so the audit entry below is always
    // written for what was done.
    let mut removed_rows = 0usize;
    let mut kept = Vec::new();
    for (id, key) in &missing {
        // restored meanwhile (a re-send of the same bytes writes the same key)?
        if blobs.head(key).await?.is_some() {
            continue;
        }
        match catalog.delete_instance_row(*id).await {
            Ok(()) => removed_rows += 1,
            Err(e) => kept.push(format!("{key}: {e}")),
        }
    }
    let mut deleted_blobs = 0usize;
    for key in &orphans {
        // written again meanwhile (a re-send being indexed right now)?
        match blobs.head(key).await? {
            Some(meta) if old_enough(meta.last_modified_us) => {}
            _ => continue,
        }
        blobs.delete(key).await?;
        deleted_blobs += 1;
    }
    let mut removed_spool = 0usize;
    for f in &stray {
        if modified_us(f).is_some_and(|m| !old_enough(m)) {
            continue;
        }
        match std::fs::remove_file(f) {
            Ok(()) => removed_spool += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => kept.push(format!("{}: {e}", f.display())),
        }
    }
    // Repair deletes index rows and blobs of patient data: record it.
    let unrepaired = kept.len() + corrupt.len() + missing_originals.len();
    catalog
        .append_audit(&dxhub_store::NewAuditEntry {
            actor_kind: "cli".to_owned(),
            actor: crate::audit::CliAudit::from_env().actor,
            institution_id: None,
            action: "fsck-repair".to_owned(),
            object_kind: None,
            object_id: None,
            outcome: format!(
                "{}: {removed_rows} rows removed, {deleted_blobs} orphan blobs deleted, \
                 {removed_spool} spool files removed, {unrepaired} problems left",
                if unrepaired == 0 {
                    "success"
                } else {
                    "partial"
                }
            ),
            client: Some("cli".to_owned()),
            request_id: None,
        })
        .await?;
    println!(
        "repaired: {removed_rows} index row(s) removed, {deleted_blobs} orphan blob(s) \
         deleted, {removed_spool} spool file(s) removed"
    );
    for k in &kept {
        println!("not repaired: {k}");
    }
    for why in &corrupt {
        println!("not repaired (restore the blob from a backup): {why}");
    }
    for what in &missing_originals {
        println!(
            "not repaired (restore the original from a backup; the ECG's DICOM instance is \
             intact): {what}"
        );
    }
    Ok(if unrepaired == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{unrepaired} problem(s) left");
        ExitCode::FAILURE
    })
}

/// A file's modification time (µs since the epoch), `None` when it is gone.
fn modified_us(path: &std::path::Path) -> Option<i64> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(
        m.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0),
    )
}
