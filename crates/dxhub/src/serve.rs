//! `dxhub serve`: wire store, ingest, DIMSE and HTTP; stop cleanly on SIGINT/SIGTERM.

use crate::config::{Config, LogFormat, StorageBackend};
use anyhow::Context;
use axum::serve::ListenerExt;
use dxhub_ingest::{Ingest, IngestMetrics, Spool};
use dxhub_store::{Blobs, Catalog, CatalogOptions, SqlCatalog};
use prometheus_client::registry::Registry;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

pub fn init_tracing(cfg: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub async fn open_catalog(cfg: &Config) -> anyhow::Result<Arc<dyn Catalog>> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create {}", cfg.data_dir.display()))?;
    let opts = CatalogOptions {
        max_connections: cfg.database.max_connections,
        sqlite_synchronous_full: cfg.database.sqlite_synchronous_full,
    };
    let catalog = SqlCatalog::connect(&cfg.database_url(), opts)
        .await
        .context("cannot open the index database")?;
    Ok(Arc::new(catalog))
}

/// Open the catalog and run migrations (every command that touches data does this).
pub async fn open_migrated_catalog(cfg: &Config) -> anyhow::Result<Arc<dyn Catalog>> {
    let catalog = open_catalog(cfg).await?;
    catalog.migrate().await.context("index migration failed")?;
    // report templates, exam catalogue, critical categories: every alliance has defaults
    for a in catalog.list_alliances().await? {
        dxhub_api::reports::seed_defaults(&*catalog, a.id)
            .await
            .context("seeding report defaults")?;
    }
    Ok(catalog)
}

pub fn open_blobs(cfg: &Config) -> anyhow::Result<Blobs> {
    Ok(match cfg.storage.backend {
        StorageBackend::Local => {
            Blobs::local(&cfg.blob_root()).context("cannot open the local object store")?
        }
        StorageBackend::S3 => {
            Blobs::s3(&cfg.storage.s3).context("cannot configure the S3 object store")?
        }
    })
}

pub fn open_spool(cfg: &Config) -> anyhow::Result<Spool> {
    Spool::new(cfg.spool_dir())
        .with_context(|| format!("cannot create spool dir {}", cfg.spool_dir().display()))
}

pub async fn serve(cfg: Config) -> anyhow::Result<ExitCode> {
    let catalog = open_migrated_catalog(&cfg).await?;
    let blobs = open_blobs(&cfg)?;
    let spool = open_spool(&cfg)?;
    // Nothing in the spool was acknowledged: a previous run died while receiving it.
    let stray = spool.remove_stray().context("cannot clean the spool")?;
    if stray > 0 {
        warn!(
            files = stray,
            "removed stray spool files left by an earlier run"
        );
    }

    let mut registry = Registry::default();
    let ingest_metrics = IngestMetrics::default();
    ingest_metrics.register(&mut registry);
    let dimse_metrics = dxhub_dimse::DimseMetrics::default();
    dimse_metrics.register(&mut registry);
    let ingest = Ingest::new(catalog.clone(), blobs.clone(), spool, ingest_metrics);

    let http_listener = TcpListener::bind(&cfg.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
    let dicom_listener = TcpListener::bind(&cfg.dicom.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.dicom.listen))?;
    let http_addr = http_listener.local_addr()?;
    let dicom_addr = dicom_listener.local_addr()?;
    // TLS: certificates and keys are read before serving; a bad file fails the start.
    let http_tls = cfg
        .http
        .tls
        .as_ref()
        .map(crate::tls::http_acceptor)
        .transpose()?;
    let dicom_tls = match &cfg.dicom.tls {
        None => None,
        Some(t) => {
            let acceptor = crate::tls::dicom_acceptor(t)?;
            let listener = TcpListener::bind(&t.listen)
                .await
                .with_context(|| format!("cannot listen on {} (dicom.tls)", t.listen))?;
            Some((listener, acceptor))
        }
    };
    let dicom_tls_addr = match &dicom_tls {
        Some((l, _)) => Some(l.local_addr()?),
        None => None,
    };

    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    let service = Arc::new(dxhub_dimse::DimseService {
        config: cfg.dicom.clone(),
        catalog: catalog.clone(),
        ingest: ingest.clone(),
        metrics: dimse_metrics,
        slots: Default::default(),
    });
    let dimse_tls_task = dicom_tls.map(|(listener, acceptor)| {
        tokio::spawn(dxhub_dimse::serve_tls(
            listener,
            acceptor,
            service.clone(),
            cancel.clone(),
            tracker.clone(),
        ))
    });
    let dimse_task = tokio::spawn(dxhub_dimse::serve(
        dicom_listener,
        service,
        cancel.clone(),
        tracker.clone(),
    ));

    let api_settings = dxhub_api::ApiSettings {
        session_ttl: std::time::Duration::from_secs(cfg.http.session_ttl_secs),
        session_idle: std::time::Duration::from_secs(cfg.http.session_idle_secs),
        metrics_token: cfg.http.metrics_token.clone(),
        max_body_bytes: cfg.http.max_body_bytes,
        request_timeout: std::time::Duration::from_secs(cfg.http.request_timeout_secs),
        secure_cookies: cfg.http.https(),
        cors_origins: cfg.http.cors_origins.clone(),
        stow_max_bytes: cfg.http.stow_max_bytes,
        public_url: cfg.http.public_url.clone(),
        viewer_dir: cfg.http.viewer_dir.clone().or_else(|| {
            let d = std::path::PathBuf::from("viewer/dist");
            d.join("index.html").is_file().then_some(d)
        }),
        reports: dxhub_api::reports::ReportSettings {
            keks: Some(cfg.reports.kek_ring(&cfg.data_dir)?),
            critical_ack_limit_s: cfg.reports.critical_ack_limit_secs.max(1),
            push_calling_ae: cfg
                .reports
                .push_calling_ae
                .clone()
                .unwrap_or_else(|| cfg.dicom.ae_title.clone()),
            push_timeout: Duration::from_secs(cfg.reports.push_timeout_secs.max(1)),
            push_max_attempts: cfg.reports.push_max_attempts.max(1),
            push_retry: Duration::from_secs(cfg.reports.push_retry_secs.max(1)),
            pdf_font: cfg.reports.pdf_font.clone(),
            centre_name: cfg.reports.centre_name.clone(),
            verify_per_minute: cfg.reports.verify_per_minute.max(1),
        },
    };
    let w = &cfg.worklist;
    let worklist = dxhub_api::worklist::WorklistState::new(
        Arc::new(dxhub_core::worklist::SystemClock),
        dxhub_api::worklist::WorklistSettings {
            lease_ttl_s: w.lease_ttl_secs.max(10),
            ready: dxhub_store::worklist::ReadySettings {
                stable_after_s: w.stable_after_secs.max(0),
                warn_fraction: w.warn_fraction,
            },
            tick: Duration::from_millis(w.tick_ms.max(50)),
            webhook_max_attempts: w.webhook_max_attempts.max(1),
            webhook_timeout: Duration::from_secs(w.webhook_timeout_secs.max(1)),
            webhook_allow: Arc::new(
                dxhub_api::outbound::OutboundAllow::parse(&w.webhook_allowed_hosts)
                    .map_err(anyhow::Error::msg)?,
            ),
        },
    );
    let state = dxhub_api::AppState::new(catalog, blobs, Arc::new(registry), api_settings)
        .with_ingest(Arc::new(ingest))
        .with_worklist(worklist);
    // the worklist's periodic jobs: sweep (ready, leases, escalation), SSE fan-out, webhooks
    let jobs_state = state.clone();
    let jobs_cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = jobs_cancel.cancelled() => {}
            _ = dxhub_api::worklist::run_jobs(jobs_state) => {}
        }
    });
    // resumable ECG uploads not completed within their TTL are removed hourly
    let sweep_state = state.clone();
    let sweep_cancel = cancel.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = sweep_cancel.cancelled() => break,
                _ = every.tick() => {
                    if let Err(e) = dxhub_api::ecg::sweep_uploads(&sweep_state).await {
                        tracing::warn!(error = %e, "sweeping expired ECG uploads failed");
                    }
                }
            }
        }
    });
    let worklist_state = state.worklist.clone();
    let app =
        dxhub_api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let http_cancel = cancel.clone();
    // plain HTTP, or HTTPS only; TCP_NODELAY set by the listener
    let listener = crate::tls::HttpListener::new(http_listener, http_tls)?.tap_io(|_| {});
    let http_task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_cancel.cancelled().await })
            .await
    });

    info!(http = %http_addr, https = cfg.http.https(), dicom = %dicom_addr, dicom_tls = ?dicom_tls_addr, ae_title = %cfg.dicom.ae_title, "dxhub ready");
    // machine-readable readiness line on stdout (tests and scripts wait for it)
    let mut ready = serde_json::json!({ "event": "ready", "http": http_addr.to_string(), "dicom": dicom_addr.to_string() });
    if let Some(a) = dicom_tls_addr {
        ready["dicom_tls"] = a.to_string().into();
    }
    println!("{ready}");

    shutdown_signal().await;
    info!("shutting down");
    worklist_state.close_streams();
    cancel.cancel();
    let _ = dimse_task.await;
    if let Some(t) = dimse_tls_task {
        let _ = t.await;
    }
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(30), tracker.wait())
        .await
        .is_err()
    {
        warn!("associations still open after 30 s; exiting");
    }
    match http_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "HTTP server error"),
        Err(e) => warn!(error = %e, "HTTP task failed"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
