//! `dxhub import PATH…`: bulk import through the same ingest pipeline as C-STORE.

use crate::config::Config;
use crate::serve::{open_blobs, open_migrated_catalog, open_spool};
use anyhow::Context;
use dxhub_ingest::{Ingest, IngestContext, IngestMetrics, OutcomeKind, Source};
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
        catalog,
        open_blobs(cfg)?,
        open_spool(cfg)?,
        IngestMetrics::default(),
    );

    let mut files = Vec::new();
    for p in &paths {
        anyhow::ensure!(p.exists(), "{} does not exist", p.display());
        for entry in walkdir::WalkDir::new(p)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry?;
            if entry.file_type().is_file() {
                files.push(entry.into_path());
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
    let mut rejected: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
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
            Ok(o) => match o.kind {
                OutcomeKind::Stored => stored += 1,
                OutcomeKind::Duplicate => duplicate += 1,
                OutcomeKind::NewVersion => new_version += 1,
            },
            Err(e) => rejected
                .entry(format!("{:04X} {e}", e.status()))
                .or_default()
                .push(path),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let n_rejected: usize = rejected.values().map(Vec::len).sum();
    println!("stored: {stored}");
    println!("duplicate: {duplicate}");
    if new_version > 0 {
        println!("new version: {new_version}");
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
    Ok(if strict && n_rejected > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
