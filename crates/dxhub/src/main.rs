//! `dxhub`: the binary — configuration, tracing, wiring of store, ingest, DIMSE and HTTP,
//! and the command line (serve, migrate, config, admin, audit, import, fsck).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod admin;
mod audit;
mod config;
mod fsck;
mod import;
mod serve;
mod table;
mod tls;
mod users;
mod verify;

/// mimalloc: the HTTP paths (DICOM JSON, sqlx rows) allocate many small objects, where
/// glibc's allocator cost a fifth of a QIDO search's CPU. Built with `no_thp`: mimalloc
/// otherwise asks for transparent huge pages, and the first touch of each fresh region
/// then zeroes 2 MiB — 7% of the CPU of an ECG upload, whose buffers are a few 100 KB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use config::{Config, Overrides};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "dxhub",
    version,
    about = "Diagnostic hub of a county medical alliance (医共体影像/心电诊断中心)"
)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "DXHUB_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (SQLite index, local object store, spool).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub: DICOM listener and HTTP server.
    Serve {
        /// HTTP listen address (ADDR:PORT).
        #[arg(long)]
        http: Option<String>,
        /// DICOM listen address (ADDR:PORT).
        #[arg(long)]
        dicom: Option<String>,
    },
    /// Create or upgrade the index schema.
    Migrate,
    /// Print the effective configuration (secrets masked).
    Config,
    /// Manage the alliance, its institutions and DICOM senders.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Verify or read the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Import DICOM files or directories through the ingest pipeline.
    Import {
        /// Files or directories (searched recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Institution the imported studies belong to.
        #[arg(long)]
        institution: Option<String>,
        /// Concurrent files.
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Exit with status 1 if any file is rejected.
        #[arg(long)]
        strict: bool,
    },
    /// Check the index against the object store and the spool; repair with --repair.
    Fsck {
        /// Remove orphan blobs, stray spool files and index rows whose blob is missing.
        #[arg(long)]
        repair: bool,
        /// Blobs younger than this many seconds are in flight, not orphans.
        #[arg(long, default_value_t = 600)]
        grace_secs: u64,
        /// Also read every blob and ECG original of the right size and compare its SHA-256
        /// with the one recorded at ingest (finds same-size corruption; reads everything).
        #[arg(long)]
        verify_hashes: bool,
    },
    /// Verify an exported signed report offline against exported public keys.
    Verify {
        /// The signed report (JSON, format dxhub-signed-report-v1).
        report: PathBuf,
        /// The trusted public keys (JSON `{"keys":[{"login","public_key"}]}`).
        #[arg(long)]
        keys: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        ..Default::default()
    };
    if let Command::Serve { http, dicom } = &cli.command {
        overrides.http = http.clone();
        overrides.dicom = dicom.clone();
    }
    let cfg = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dxhub: {e:#}");
            return ExitCode::from(2);
        }
    };
    serve::init_tracing(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dxhub: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve::serve(cfg).await,
            Command::Migrate => {
                let catalog = serve::open_catalog(&cfg).await?;
                catalog.migrate().await?;
                println!("index schema is up to date");
                Ok(ExitCode::SUCCESS)
            }
            Command::Config => {
                print!("{}", cfg.to_masked_toml()?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Admin { command } => admin::run(&cfg, command).await,
            Command::Audit { command } => {
                let catalog = serve::open_migrated_catalog(&cfg).await?;
                audit::run(&*catalog, command).await
            }
            Command::Import {
                paths,
                institution,
                jobs,
                strict,
            } => import::run(&cfg, paths, institution, jobs, strict).await,
            Command::Fsck {
                repair,
                grace_secs,
                verify_hashes,
            } => fsck::run(&cfg, repair, grace_secs, verify_hashes).await,
            Command::Verify { report, keys } => verify::run(&report, &keys),
        }
    });
    // Do not wait without end for tasks still running at exit: a sqlx pool maintenance
    // task was seen spinning after its pool's last use, which kept a CLI command from ever
    // exiting (once, in CI). Its work is done; stop waiting after a few seconds.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dxhub: {e:#}");
            ExitCode::FAILURE
        }
    }
}
