//! DICOM upper layer service of dxhub over dicom-ul's PDU codec: association negotiation
//! (registered calling AE titles → institution, host allowlist, called AE check), C-ECHO and
//! the C-STORE SCP for every storage SOP class, streaming each instance to a spool file and
//! answering only after the ingest pipeline has made it durable and indexed.
//!
//! PDUs are framed here (6-byte header, then exactly the announced length) and decoded
//! with `dicom_ul::read_pdu`, so PDUs arriving back to back are never lost (dicom-rs #589).
//! Associations arrive over plain TCP ([`serve`]) or DICOM TLS ([`serve_tls`], a rustls
//! acceptor built by the binary) and run through the same association code. Association
//! rejections and, per association and study, the instances stored are appended to the
//! audit log (never patient data).
//! Depends on ingest/store/dicom/core; must not depend on axum or the binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod assoc;
mod audit;
pub mod command;
mod metrics;
pub mod scu;

pub use metrics::DimseMetrics;

use dxhub_ingest::Ingest;
use dxhub_store::Catalog;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// How long a peer may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// DIMSE listener settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DimseConfig {
    /// Listen address.
    pub listen: String,
    /// The hub's AE title (the called AE title peers must use).
    pub ae_title: String,
    /// Maximum concurrent associations; more are rejected (transient, local limit exceeded).
    pub max_associations: usize,
    /// Maximum PDU length dxhub receives (announced in A-ASSOCIATE-AC).
    pub max_pdu_length: u32,
    /// Accept associations from calling AE titles that are not registered (development only).
    pub accept_unknown_callers: bool,
    /// Seconds without a PDU after which an association is aborted.
    pub idle_timeout_secs: u64,
    /// DICOM TLS (a second listener; the plain one stays). Off when absent.
    pub tls: Option<DimseTlsConfig>,
}

/// The DICOM TLS listener: `dicom.tls = { listen, cert, key, ca }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimseTlsConfig {
    /// Listen address of the TLS listener (DICOM's registered TLS port is 2762).
    #[serde(default = "default_tls_listen")]
    pub listen: String,
    /// PEM file: the hub's certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file: the private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file of CA certificates. When set, peers must present a client certificate
    /// issued by one of them; when absent, no client certificate is asked for.
    #[serde(default)]
    pub ca: Option<PathBuf>,
}

fn default_tls_listen() -> String {
    "0.0.0.0:2762".into()
}

impl Default for DimseConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:11112".into(),
            ae_title: "DXHUB".into(),
            max_associations: 64,
            max_pdu_length: 1 << 20,
            accept_unknown_callers: false,
            idle_timeout_secs: 120,
            tls: None,
        }
    }
}

/// Everything an association needs.
pub struct DimseService {
    pub config: DimseConfig,
    pub catalog: Arc<dyn Catalog>,
    pub ingest: Ingest,
    pub metrics: DimseMetrics,
    /// Association slots, shared by the plain and the TLS listener.
    pub slots: AssociationSlots,
}

/// `dicom.max_associations` slots for associations, taken once a peer's A-ASSOCIATE-RQ
/// has arrived (not at TCP accept: a connection that sends nothing must not hold one),
/// and a larger number for connections still before their A-ASSOCIATE-RQ; both listeners
/// share them.
#[derive(Default)]
pub struct AssociationSlots {
    open: std::sync::OnceLock<Arc<Semaphore>>,
    pending: std::sync::OnceLock<Arc<Semaphore>>,
}

impl DimseService {
    pub(crate) fn open_slots(&self) -> Arc<Semaphore> {
        self.slots
            .open
            .get_or_init(|| Arc::new(Semaphore::new(self.config.max_associations.max(1))))
            .clone()
    }

    /// Connections that have not yet sent their A-ASSOCIATE-RQ: four times the
    /// associations (at least 64); more are closed at once.
    pub(crate) fn pending_slots(&self) -> Arc<Semaphore> {
        self.slots
            .pending
            .get_or_init(|| Arc::new(Semaphore::new((4 * self.config.max_associations).max(64))))
            .clone()
    }

    /// The maximum PDU length announced: `dicom.max_pdu_length`, within what the hub
    /// reads (0, "unlimited", and anything above the hard cap become the cap).
    pub(crate) fn max_pdu(&self) -> u32 {
        match self.config.max_pdu_length {
            0 => assoc::HARD_PDU_CAP,
            n => n.min(assoc::HARD_PDU_CAP),
        }
    }

    fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.config.idle_timeout_secs.max(1))
    }
}

/// Accept associations until `cancel` fires. Each association runs in its own task,
/// tracked by `tracker` so shutdown can wait for in-flight instances.
pub async fn serve(
    listener: TcpListener,
    service: Arc<DimseService>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    accept_loop(listener, None, service, cancel, tracker).await
}

/// Like [`serve`], for DICOM TLS: `TCP_NODELAY` is set before the handshake, which must
/// complete within [`TLS_HANDSHAKE_TIMEOUT`]; then the association runs as over plain TCP.
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    service: Arc<DimseService>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    accept_loop(listener, Some(acceptor), service, cancel, tracker).await
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: Arc<DimseService>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let pending = service.pending_slots();
    let local: Option<SocketAddr> = listener.local_addr().ok();
    let kind = if tls.is_some() { "DICOM TLS" } else { "DICOM" };
    info!(addr = ?local, ae_title = %service.config.ae_title, listener = kind, "DICOM listener ready");
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            warn!(error = %e, "cannot set TCP_NODELAY");
        }
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            // more connections waiting to associate than any real load makes
            debug!(peer = %peer, "too many connections before association: closed");
            service.metrics.association("rejected_busy");
            continue;
        };
        let service = service.clone();
        let cancel = cancel.clone();
        match &tls {
            None => {
                tracker.spawn(async move {
                    let (r, w) = stream.into_split();
                    assoc::run(Box::new(r), Box::new(w), peer, service, permit, cancel).await;
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tracker.spawn(async move {
                    let handshake = tokio::select! {
                        _ = cancel.cancelled() => return,
                        h = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => h,
                    };
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            info!(peer = %peer, error = %e, "DICOM TLS handshake failed");
                            service.metrics.association("rejected_tls");
                            return;
                        }
                        Err(_) => {
                            info!(peer = %peer, "DICOM TLS handshake timed out");
                            service.metrics.association("rejected_tls");
                            return;
                        }
                    };
                    debug!(peer = %peer, "DICOM TLS handshake complete");
                    let (r, w) = tokio::io::split(stream);
                    assoc::run(Box::new(r), Box::new(w), peer, service, permit, cancel).await;
                });
            }
        }
    }
    info!(listener = kind, "DICOM listener stopped");
}
