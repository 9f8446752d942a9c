//! `dxhub fsck`: check the index against the object store and the spool.
//! - index rows whose blob is missing, or present with another size (corrupt);
//! - ECG records whose original bytes (an SCP-ECG, HL7 aECG or JSON upload, kept beside
//!   the DICOM instance made from it) are missing or have another size;
//! - with `--verify-hashes`, also blobs and originals of the right size whose SHA-256 is
//!   not the one recorded at ingest (every byte is read: a long run on a large archive);
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
use dxhub_store::Blobs;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::process::ExitCode;

/// Blobs checked at once (object-store round trips, and hashing on several cores).
const PARALLEL_CHECKS: usize = 8;

/// What the object store holds for a key the index names.
enum Found {
    Good,
    Missing,
    /// Present with this many bytes, not the recorded size.
    Size(u64),
    /// The recorded size, but this SHA-256.
    Hash(String),
}

/// Check the object at `key` against its recorded size and, when given, its SHA-256.
async fn check(
    blobs: Blobs,
    key: String,
    size: i64,
    sha256: Option<String>,
) -> anyhow::Result<Found> {
    let Some(meta) = blobs.head(&key).await? else {
        return Ok(Found::Missing);
    };
    if meta.size as i64 != size {
        return Ok(Found::Size(meta.size));
    }
    let Some(expected) = sha256 else {
        return Ok(Found::Good);
    };
    let mut stream = match blobs.get_stream(&key).await {
        Ok((_, stream)) => stream,
        Err(e) if e.is_not_found() => return Ok(Found::Missing),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    let got = hex::encode(hasher.finalize());
    Ok(if got.eq_ignore_ascii_case(&expected) {
        Found::Good
    } else {
        Found::Hash(got)
    })
}

/// [`check`] each item, [`PARALLEL_CHECKS`] at once (each a task of its own, so hashing
/// spreads over the runtime's threads), answers in the items' order.
async fn check_all<T>(
    blobs: &Blobs,
    items: Vec<T>,
    what: impl Fn(&T) -> (String, i64, Option<String>),
) -> anyhow::Result<Vec<(T, Found)>> {
    let mut checks = futures::stream::iter(items.into_iter().map(|item| {
        let (key, size, sha256) = what(&item);
        let task = tokio::spawn(check(blobs.clone(), key, size, sha256));
        async move { (item, task.await) }
    }))
    .buffered(PARALLEL_CHECKS);
    let mut out = Vec::new();
    while let Some((item, found)) = checks.next().await {
        out.push((item, found??));
    }
    Ok(out)
}

pub async fn run(
    cfg: &Config,
    repair: bool,
    grace_secs: u64,
    verify_hashes: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(cfg).await?;
    let blobs = open_blobs(cfg)?;
    let spool = open_spool(cfg)?;

    let mut referenced = HashSet::new();
    let mut missing = Vec::new();
    let mut corrupt = Vec::new();
    let mut rows = 0u64;
    let mut hashed = 0u64;
    let mut after = 0i64;
    loop {
        let page = catalog.list_instance_rows(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let checked = check_all(&blobs, page, |row| {
            let sha256 = verify_hashes.then(|| row.sha256.clone());
            (row.blob_key.clone(), row.size_bytes, sha256)
        })
        .await?;
        for (row, found) in checked {
            rows += 1;
            match found {
                Found::Good => hashed += u64::from(verify_hashes),
                Found::Size(size) => corrupt.push(format!(
                    "{} has {size} bytes, index says {}",
                    row.blob_key, row.size_bytes
                )),
                Found::Hash(got) => corrupt.push(format!(
                    "{} has SHA-256 {got}, index says {}",
                    row.blob_key, row.sha256
                )),
                Found::Missing => missing.push((row.id, row.blob_key.clone())),
            }
            referenced.insert(row.blob_key);
        }
    }

    // ECG originals: one check per key (records of the same content share one), none for
    // a DICOM upload, whose original is its instance's blob (checked above)
    let mut originals: std::collections::BTreeMap<String, (i64, String, Vec<i64>)> =
        Default::default();
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
                .or_insert_with(|| (o.original_size, o.content_sha256, Vec::new()))
                .2
                .push(o.id);
        }
    }
    let mut missing_originals = Vec::new();
    let checked = check_all(
        &blobs,
        originals.iter().collect(),
        |(key, (size, sha256, _))| ((*key).clone(), *size, verify_hashes.then(|| sha256.clone())),
    )
    .await?;
    for ((key, (size, sha256, ecgs)), found) in checked {
        let ecgs = ecgs
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match found {
            Found::Good => hashed += u64::from(verify_hashes),
            Found::Size(got) => corrupt.push(format!(
                "{key} (original of ECG {ecgs}) has {got} bytes, index says {size}"
            )),
            Found::Hash(got) => corrupt.push(format!(
                "{key} (original of ECG {ecgs}) has SHA-256 {got}, index says {sha256}"
            )),
            Found::Missing => missing_originals.push(format!("{key} (original of ECG {ecgs})")),
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
    if verify_hashes {
        println!("objects whose SHA-256 matched: {hashed}");
    }
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
