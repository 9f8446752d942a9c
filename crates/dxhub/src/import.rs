//! `dxhub import PATH…`: bulk import through the same ingest pipeline as C-STORE.

use crate::config::Config;
use crate::serve::{open_blobs, open_migrated_catalog, open_spool};
use anyhow::Context;
use dxhub_ingest::{Ingest, IngestContext, IngestMetrics, OutcomeKind, Source};
use dxhub_store::NewAuditEntry;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

pub async fn run(
    cfg: &Config,
    paths: Vec<PathBuf>,
    institution: Option<String>,
    jobs: usize,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(cfg).await?;
    let institution_id = match institution {
        Some(name) => Some(
            catalog
                .find_institution(&name)
                .await?
                .with_context(|| format!("no institution named {name:?}"))?
                .id,
        ),
        None => None,
    };
    let ingest = Ingest::new(
        catalog.clone(),
        open_blobs(cfg)?,
        open_spool(cfg)?,
        IngestMetrics::default(),
    );

    let mut files = Vec::new();
    // what could not be read while walking (a dangling link, a link loop, a folder without
    // permission): reported with the refusals, the rest is imported
    let mut rejected: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut dicomdirs = 0u64;
    // one file reached by several paths (links) is imported once
    let mut seen = std::collections::HashSet::new();
    for p in &paths {
        anyhow::ensure!(p.exists(), "{} does not exist", p.display());
        for entry in walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().map(PathBuf::from).unwrap_or_default();
                    let why = if e.loop_ancestor().is_some() {
                        "cannot read: symbolic link loop".to_owned()
                    } else {
                        match e.io_error() {
                            Some(io) => format!("cannot read: {}", io.kind()),
                            None => format!("cannot read: {e}"),
                        }
                    };
                    rejected.entry(why).or_default().push(path);
                    continue;
                }
            };
            if !entry.file_type().is_file() {
                continue;
            }
            // a media directory (PS3.10 names it DICOMDIR): an index of the files beside
            // it, which are imported themselves
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
            {
                dicomdirs += 1;
                continue;
            }
            let path = entry.into_path();
            let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if seen.insert(key) {
                files.push(path);
            }
        }
    }

    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ctx = IngestContext::new(Source::Import, institution_id);
    let mut stored = 0u64;
    let mut duplicate = 0u64;
    let mut new_version = 0u64;
    let mut not_stored = 0u64;
    // per study: instances stored (new or new version) and duplicates, for the audit log
    let mut per_study: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut results = futures::stream::iter(files.into_iter().map(|path| {
        let ingest = ingest.clone();
        let ctx = ctx.clone();
        async move {
            let r = ingest.import_file(&path, &ctx).await;
            (path, r)
        }
    }))
    .buffer_unordered(jobs.max(1));
    while let Some((path, r)) = results.next().await {
        match r {
            Ok(o) => {
                let entry = per_study.entry(o.study_instance_uid.clone()).or_default();
                match o.kind {
                    OutcomeKind::Stored => {
                        stored += 1;
                        entry.0 += 1;
                    }
                    OutcomeKind::Duplicate => {
                        duplicate += 1;
                        entry.1 += 1;
                    }
                    OutcomeKind::NewVersion => {
                        new_version += 1;
                        entry.0 += 1;
                    }
                }
            }
            Err(e) => {
                // out of resources (storage, index): the file is fine, the hub could not
                // keep it now; a rerun stores it
                if e.status() == dxhub_core::status::OUT_OF_RESOURCES {
                    not_stored += 1;
                }
                rejected
                    .entry(format!("{:04X} {e}", e.status()))
                    .or_default()
                    .push(path)
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n_rejected: usize = rejected.values().map(Vec::len).sum();
    // Importing writes patient data: one audit entry per study, one for the refusals.
    let actor = crate::audit::CliAudit::from_env().actor;
    let entry = |object_id: Option<String>, outcome: String| NewAuditEntry {
        actor_kind: "cli".to_owned(),
        actor: actor.clone(),
        institution_id,
        action: "dicom-import".to_owned(),
        object_kind: object_id.as_ref().map(|_| "study".to_owned()),
        object_id,
        outcome,
        client: Some("cli".to_owned()),
        request_id: None,
    };
    for (study, (new, dup)) in &per_study {
        let e = entry(
            Some(study.clone()),
            format!("success: {new} instances stored, {dup} duplicates"),
        );
        catalog
            .append_audit(&e)
            .await
            .context("cannot write the audit log")?;
    }
    if n_rejected > 0 {
        let e = entry(None, format!("failure: {n_rejected} files rejected"));
        catalog
            .append_audit(&e)
            .await
            .context("cannot write the audit log")?;
    }
    println!("stored: {stored}");
    println!("duplicate: {duplicate}");
    if new_version > 0 {
        println!("new version: {new_version}");
    }
    if dicomdirs > 0 {
        println!("skipped: {dicomdirs} DICOMDIR file(s) (the files they list are imported)");
    }
    println!("rejected: {n_rejected}");
    for (reason, files) in &rejected {
        println!("  {} × {reason}", files.len());
        for f in files.iter().take(5) {
            println!("      {}", f.display());
        }
        if files.len() > 5 {
            println!("      … and {} more", files.len() - 5);
        }
    }
    if not_stored > 0 {
        println!("{not_stored} file(s) could not be stored now (A700): run the import again");
    }
    Ok(if not_stored > 0 || (strict && n_rejected > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
