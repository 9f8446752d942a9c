use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AssocLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub command: &'static str,
    pub status: String,
}

#[derive(Clone, Debug, Default)]
pub struct DimseMetrics {
    pub associations: Family<AssocLabels, Counter>,
    pub active: Gauge,
    pub commands: Family<CommandLabels, Counter>,
    pub bytes_received: Counter,
}

impl DimseMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "dxhub_dimse_associations",
            "DICOM associations, by result (accepted or the rejection reason)",
            self.associations.clone(),
        );
        registry.register(
            "dxhub_dimse_active_associations",
            "Associations open now",
            self.active.clone(),
        );
        registry.register(
            "dxhub_dimse_commands",
            "DIMSE requests answered, by command and status",
            self.commands.clone(),
        );
        registry.register(
            "dxhub_dimse_received_bytes",
            "Data set bytes received over DIMSE",
            self.bytes_received.clone(),
        );
    }

    pub(crate) fn association(&self, result: &'static str) {
        self.associations
            .get_or_create(&AssocLabels { result })
            .inc();
    }

    pub(crate) fn command(&self, command: &'static str, status: u16) {
        self.commands
            .get_or_create(&CommandLabels {
                command,
                status: format!("{status:04X}"),
            })
            .inc();
    }
}
