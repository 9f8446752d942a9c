//! DICOM upper layer service of dxhub over dicom-ul's PDU codec: association negotiation
//! (registered calling AE titles → institution, host allowlist, called AE check), C-ECHO and
//! the C-STORE SCP for every storage SOP class, streaming each instance to a spool file and
//! answering only after the ingest pipeline has made it durable and indexed.
//!
//! PDUs are framed here (6-byte header, then exactly the announced length) and decoded
//! with `dicom_ul::read_pdu`, so PDUs arriving back to back are never lost (dicom-rs #589).
//! Depends on ingest/store/dicom/core; must not depend on axum or the binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod assoc;
pub mod command;
mod metrics;

pub use metrics::DimseMetrics;

use dxhub_ingest::Ingest;
use dxhub_store::Catalog;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

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
        }
    }
}

/// Everything an association needs.
pub struct DimseService {
    pub config: DimseConfig,
    pub catalog: Arc<dyn Catalog>,
    pub ingest: Ingest,
    pub metrics: DimseMetrics,
}

impl DimseService {
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
    let slots = Arc::new(Semaphore::new(service.config.max_associations.max(1)));
    let local: Option<SocketAddr> = listener.local_addr().ok();
    info!(addr = ?local, ae_title = %service.config.ae_title, "DICOM listener ready");
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
        let permit = slots.clone().try_acquire_owned().ok();
        let service = service.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            assoc::run(stream, peer, service, permit, cancel).await;
        });
    }
    info!("DICOM listener stopped");
}
