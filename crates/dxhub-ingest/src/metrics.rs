//! Prometheus metrics of the ingest pipeline.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub source: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub source: &'static str,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub instances: Family<OutcomeLabels, Counter>,
    pub failures: Family<FailureLabels, Counter>,
    pub bytes: Counter,
    pub duration: Histogram,
    /// DICOM ECG instances stored whose waveform could not be read.
    pub ecg_unreadable: Counter,
    /// ECGs recorded with a critical flag.
    pub ecg_critical: Counter,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            instances: Family::default(),
            failures: Family::default(),
            bytes: Counter::default(),
            duration: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            ecg_unreadable: Counter::default(),
            ecg_critical: Counter::default(),
        }
    }
}

impl IngestMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dxhub_ingest_instances",
            "Instances ingested, by source and outcome",
            self.instances.clone(),
        );
        registry.register(
            "dxhub_ingest_failures",
            "Instances refused, by source and DICOM status",
            self.failures.clone(),
        );
        registry.register(
            "dxhub_ingest_bytes",
            "Bytes of instances stored",
            self.bytes.clone(),
        );
        registry.register(
            "dxhub_ingest_duration_seconds",
            "Time from a complete spool file to a committed index row",
            self.duration.clone(),
        );
        registry.register(
            "dxhub_ecg_unreadable",
            "DICOM ECG instances stored whose waveform could not be read",
            self.ecg_unreadable.clone(),
        );
        registry.register(
            "dxhub_ecg_critical",
            "ECGs recorded with a critical flag",
            self.ecg_critical.clone(),
        );
    }
}
