//! What DIMSE writes to the audit log: association rejections, and per association and
//! study the instances stored or refused. Only AE titles, UIDs, counts, status codes and
//! the peer address — never patient data. A failed audit write is logged and does not undo
//! anything already acknowledged.

use dxhub_store::{Catalog, NewAuditEntry};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use tracing::warn;

pub(crate) const ACTION_ASSOCIATE: &str = "dicom-associate";
pub(crate) const ACTION_STORE: &str = "dicom-store";

/// Instances stored and refused on one association, per Study Instance UID (`None`: the
/// study of a refused instance could not be known).
#[derive(Debug, Default)]
pub(crate) struct StoreTally {
    studies: BTreeMap<Option<String>, StudyTally>,
}

#[derive(Debug, Default)]
struct StudyTally {
    /// Distinct SOP Instance UIDs stored (a re-send counts once).
    stored: BTreeSet<String>,
    refused: u64,
    /// Status codes of the refusals, e.g. `C000`.
    refusal_statuses: BTreeSet<String>,
}

impl StoreTally {
    pub(crate) fn stored(&mut self, study_instance_uid: &str, sop_instance_uid: &str) {
        self.studies
            .entry(Some(study_instance_uid.to_owned()))
            .or_default()
            .stored
            .insert(sop_instance_uid.to_owned());
    }

    pub(crate) fn refused(&mut self, study_instance_uid: Option<&str>, status: u16) {
        let t = self
            .studies
            .entry(study_instance_uid.map(str::to_owned))
            .or_default();
        t.refused += 1;
        t.refusal_statuses.insert(format!("{status:04X}"));
    }

    /// One entry per study: `success: N instances`, or `failure: …` when any was refused.
    /// Empties the tally, so nothing is recorded twice.
    pub(crate) fn take_entries(
        &mut self,
        calling_ae: &str,
        institution_id: Option<i64>,
        peer: SocketAddr,
    ) -> Vec<NewAuditEntry> {
        let entries = self.entries(calling_ae, institution_id, peer);
        self.studies.clear();
        entries
    }

    fn entries(
        &self,
        calling_ae: &str,
        institution_id: Option<i64>,
        peer: SocketAddr,
    ) -> Vec<NewAuditEntry> {
        self.studies
            .iter()
            .map(|(study, t)| {
                let stored = t.stored.len();
                let outcome = if t.refused == 0 {
                    format!("success: {stored} instances")
                } else {
                    let statuses = t
                        .refusal_statuses
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(",");
                    format!(
                        "failure: {} instances refused (status {statuses}), {stored} stored",
                        t.refused
                    )
                };
                NewAuditEntry {
                    actor_kind: "ae".to_owned(),
                    actor: calling_ae.to_owned(),
                    institution_id,
                    action: ACTION_STORE.to_owned(),
                    object_kind: study.as_ref().map(|_| "study".to_owned()),
                    object_id: study.clone(),
                    outcome,
                    client: Some(peer.ip().to_canonical().to_string()),
                    request_id: None,
                }
            })
            .collect()
    }
}

/// The audit entry of an association rejection.
pub(crate) fn rejection(
    calling_ae: &str,
    institution_id: Option<i64>,
    peer: SocketAddr,
    reason: &str,
) -> NewAuditEntry {
    NewAuditEntry {
        actor_kind: "ae".to_owned(),
        actor: calling_ae.to_owned(),
        institution_id,
        action: ACTION_ASSOCIATE.to_owned(),
        object_kind: None,
        object_id: None,
        outcome: format!("failure: {reason}"),
        client: Some(peer.ip().to_canonical().to_string()),
        request_id: None,
    }
}

/// Append entries; failures are logged (action and error only) and otherwise ignored.
pub(crate) async fn append(catalog: &dyn Catalog, entries: &[NewAuditEntry]) {
    for e in entries {
        if let Err(err) = catalog.append_audit(e).await {
            warn!(action = %e.action, error = %err, "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_study_counting_distinct_instances() {
        let peer: SocketAddr = "[::ffff:10.0.0.7]:4000".parse().unwrap();
        let mut t = StoreTally::default();
        t.stored("1.2.3", "1.2.3.1");
        t.stored("1.2.3", "1.2.3.1");
        t.stored("1.2.3", "1.2.3.2");
        t.stored("1.2.4", "1.2.4.1");
        t.refused(Some("1.2.4"), 0xA900);
        t.refused(None, 0xC000);
        let e = t.take_entries("CLINIC", Some(2), peer);
        assert_eq!(e.len(), 3);
        assert!(t.take_entries("CLINIC", Some(2), peer).is_empty());
        assert_eq!(e[0].object_id, None);
        assert_eq!(e[0].object_kind, None);
        assert_eq!(
            e[0].outcome,
            "failure: 1 instances refused (status C000), 0 stored"
        );
        assert_eq!(e[1].object_id.as_deref(), Some("1.2.3"));
        assert_eq!(e[1].object_kind.as_deref(), Some("study"));
        assert_eq!(e[1].outcome, "success: 2 instances");
        assert_eq!(e[1].action, "dicom-store");
        assert_eq!(e[1].actor_kind, "ae");
        assert_eq!(e[1].institution_id, Some(2));
        assert_eq!(e[1].client.as_deref(), Some("10.0.0.7"));
        assert_eq!(
            e[2].outcome,
            "failure: 1 instances refused (status A900), 1 stored"
        );
        let r = rejection("STRANGER", None, peer, "calling-ae-not-recognized");
        assert_eq!(r.action, "dicom-associate");
        assert_eq!(r.outcome, "failure: calling-ae-not-recognized");
    }
}
