//! `dxhub fsck`: check the index against the object store and the spool.
//! - index rows whose blob is missing or has the wrong size;
//! - orphan blobs (under `studies/`, not referenced by any row), older than the grace
//!   period (younger ones may belong to an instance being ingested right now);
//! - stray spool files (left by a crash).
//!
//! With `--repair`: rows with missing blobs are removed (counts fixed), orphans and stray
//! spool files are deleted. Stray spool files are only removed when no hub is running on
//! this data dir (run fsck with the hub stopped).

use crate::config::Config;
use crate::serve::{open_blobs, open_migrated_catalog, open_spool};
use futures::StreamExt;
use std::collections::HashSet;
use std::process::ExitCode;

pub async fn run(cfg: &Config, repair: bool, grace_secs: u64) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(cfg).await?;
    let blobs = open_blobs(cfg)?;
    let spool = open_spool(cfg)?;

    let mut referenced = HashSet::new();
    let mut missing = Vec::new();
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
                Some(meta) => missing.push((
                    row.id,
                    format!(
                        "{} has {} bytes, index says {}",
                        row.blob_key, meta.size, row.size_bytes
                    ),
                )),
                None => missing.push((row.id, format!("{} is missing", row.blob_key))),
            }
            referenced.insert(row.blob_key);
        }
    }

    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let grace_us = (grace_secs as i64) * 1_000_000;
    let mut orphans = Vec::new();
    let mut in_flight = 0u64;
    let mut listing = blobs.list(Some("studies/"));
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        if referenced.contains(&meta.key) {
            continue;
        }
        if now_us - meta.last_modified_us < grace_us {
            in_flight += 1;
        } else {
            orphans.push(meta.key);
        }
    }
    let stray = spool.stray_files()?;

    println!("index rows checked: {rows}");
    for (_, why) in &missing {
        println!("missing blob: {why}");
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
    let problems = missing.len() + orphans.len() + stray.len();
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
    for (id, _) in &missing {
        catalog.delete_instance_row(*id).await?;
    }
    for key in &orphans {
        blobs.delete(key).await?;
    }
    let removed = spool.remove_stray()?;
    // Repair deletes index rows and blobs of patient data: record it.
    catalog
        .append_audit(&dxhub_store::NewAuditEntry {
            actor_kind: "cli".to_owned(),
            actor: crate::audit::CliAudit::from_env().actor,
            institution_id: None,
            action: "fsck-repair".to_owned(),
            object_kind: None,
            object_id: None,
            outcome: format!(
                "success: {} rows removed, {} orphan blobs deleted, {} spool files removed",
                missing.len(),
                orphans.len(),
                removed
            ),
            client: Some("cli".to_owned()),
            request_id: None,
        })
        .await?;
    println!(
        "repaired: {} index row(s) removed, {} orphan blob(s) deleted, {} spool file(s) removed",
        missing.len(),
        orphans.len(),
        removed
    );
    Ok(ExitCode::SUCCESS)
}
