//! C-STORE SCU: push instances (signed report PDFs and SRs) back to a clinic's PACS.
//!
//! One association per [`store`] call over dicom-ul's blocking client, run in
//! `spawn_blocking` (the workspace builds dicom-ul without its `async` feature). Every socket
//! operation (connect, each read, each write) is bounded by [`ScuTarget::timeout`].
//! One presentation context is proposed per distinct SOP class, with the objects' transfer
//! syntaxes plus Explicit and Implicit VR Little Endian. Data sets are fragmented to the
//! peer's maximum PDU length. The association is released after the last response.

use crate::command::C_STORE_RQ;
use crate::command::C_STORE_RSP;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::association::Error as UlError;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu, PresentationContextNegotiated};
use dicom_ul::{ClientAssociation, ClientAssociationOptions};
use dxhub_core::uid::{is_valid_uid, trim_uid};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use tracing::{debug, warn};

pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// Status reported for an object that was not sent because the peer accepted no
/// presentation context usable for it (its SOP class was refused, or only a transfer
/// syntax it cannot be converted to was accepted): "Refused: SOP Class not supported".
pub const STATUS_NOT_SENT: u16 = 0x0122;

/// Largest PDU dxhub announces it can receive (responses are small).
const LOCAL_MAX_PDU: u32 = 64 * 1024;

/// Where to send: the clinic PACS AE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScuTarget {
    pub host: String,
    pub port: u16,
    pub called_ae: String,
    pub calling_ae: String,
    /// Bound of every connect, read and write on the association's socket.
    pub timeout: Duration,
}

/// One instance to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub transfer_syntax: String,
    /// The data set only, encoded in `transfer_syntax`, no file meta.
    pub dataset: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScuError {
    #[error("not a usable DICOM Part 10 file: {0}")]
    Part10(String),
    #[error("invalid store request: {0}")]
    Invalid(String),
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("association rejected by {called_ae} ({result}): {reason}")]
    Rejected {
        called_ae: String,
        /// "permanent" or "transient".
        result: String,
        reason: String,
    },
    #[error("{called_ae} accepted no proposed presentation context")]
    NoPresentationContext { called_ae: String },
    #[error("association aborted by the peer")]
    Aborted,
    #[error("connection closed by the peer")]
    Closed,
    #[error("timed out after {0:?} waiting for the peer")]
    Timeout(Duration),
    #[error("DIMSE protocol error: {0}")]
    Protocol(String),
    #[error("network error: {0}")]
    Network(String),
}

/// Split a Part 10 file into its meta (SOP class, instance, transfer syntax) and data set.
pub fn outgoing_from_part10(bytes: &[u8]) -> Result<Outgoing, ScuError> {
    let meta = dxhub_dicom::read_file_meta(bytes).map_err(|e| ScuError::Part10(e.to_string()))?;
    let offset = usize::try_from(meta.dataset_offset)
        .ok()
        .filter(|o| *o <= bytes.len())
        .ok_or_else(|| ScuError::Part10("file meta group runs past the end".into()))?;
    let out = Outgoing {
        sop_class_uid: trim_uid(&meta.media_storage_sop_class_uid).to_owned(),
        sop_instance_uid: trim_uid(&meta.media_storage_sop_instance_uid).to_owned(),
        transfer_syntax: trim_uid(&meta.transfer_syntax_uid).to_owned(),
        dataset: bytes[offset..].to_vec(),
    };
    check_outgoing(&out).map_err(ScuError::Part10)?;
    Ok(out)
}

/// Store `objects` on `target` in one association. Returns the DIMSE status of each object,
/// in order: 0x0000 success, warnings (0xB000, 0xB007, 0xB006) and failures as the peer
/// answered them; [`STATUS_NOT_SENT`] for an object no accepted presentation context fits.
/// Errors are for the association as a whole (connect, rejection, abort, timeout, protocol).
pub async fn store(target: &ScuTarget, objects: &[Outgoing]) -> Result<Vec<u16>, ScuError> {
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    check_target(target)?;
    for o in objects {
        check_outgoing(o).map_err(ScuError::Invalid)?;
    }
    let target = target.clone();
    let objects = objects.to_vec();
    tokio::task::spawn_blocking(move || store_blocking(&target, &objects))
        .await
        .map_err(|e| ScuError::Network(format!("C-STORE task failed: {e}")))?
}

fn check_target(t: &ScuTarget) -> Result<(), ScuError> {
    for (what, ae) in [("called", &t.called_ae), ("calling", &t.calling_ae)] {
        let trimmed = ae.trim();
        if trimmed.is_empty()
            || trimmed.len() > 16
            || !trimmed
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
        {
            return Err(ScuError::Invalid(format!("{what} AE title {ae:?}")));
        }
    }
    if t.host.trim().is_empty() || t.port == 0 {
        return Err(ScuError::Invalid(format!("address {}:{}", t.host, t.port)));
    }
    if t.timeout.is_zero() {
        return Err(ScuError::Invalid("zero timeout".into()));
    }
    Ok(())
}

fn check_outgoing(o: &Outgoing) -> Result<(), String> {
    for (what, uid) in [
        ("SOP Class UID", &o.sop_class_uid),
        ("SOP Instance UID", &o.sop_instance_uid),
        ("Transfer Syntax UID", &o.transfer_syntax),
    ] {
        if !is_valid_uid(uid) {
            return Err(format!("{what} {uid:?} is not a valid UID"));
        }
    }
    if o.dataset.is_empty() {
        return Err(format!("{}: empty data set", o.sop_instance_uid));
    }
    Ok(())
}

/// Per SOP class, in first-seen order: the objects' transfer syntaxes, then Explicit and
/// Implicit VR Little Endian.
fn proposed_contexts(objects: &[Outgoing]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for o in objects {
        let idx = match out.iter().position(|(c, _)| *c == o.sop_class_uid) {
            Some(i) => i,
            None => {
                out.push((o.sop_class_uid.clone(), Vec::new()));
                out.len() - 1
            }
        };
        let ts = &mut out[idx].1;
        if !ts.contains(&o.transfer_syntax) {
            ts.push(o.transfer_syntax.clone());
        }
    }
    for (_, ts) in &mut out {
        for t in [EXPLICIT_VR_LE, IMPLICIT_VR_LE] {
            if !ts.iter().any(|x| x == t) {
                ts.push(t.to_owned());
            }
        }
    }
    out
}

fn is_native(ts: &str) -> bool {
    matches!(ts, IMPLICIT_VR_LE | EXPLICIT_VR_LE | EXPLICIT_VR_BE)
}

/// The accepted presentation context to send `o` on: its SOP class, with its own transfer
/// syntax if accepted, otherwise a native one it can be re-encoded to (when it is native).
fn choose_context<'a>(
    accepted: &'a [PresentationContextNegotiated],
    o: &Outgoing,
) -> Option<&'a PresentationContextNegotiated> {
    let of_class = || {
        accepted
            .iter()
            .filter(move |pc| trim_uid(&pc.abstract_syntax) == o.sop_class_uid)
    };
    of_class()
        .find(|pc| trim_uid(&pc.transfer_syntax) == o.transfer_syntax)
        .or_else(|| {
            is_native(&o.transfer_syntax)
                .then(|| of_class().find(|pc| is_native(trim_uid(&pc.transfer_syntax))))
                .flatten()
        })
}

/// Re-encode a native (uncompressed) data set in another native transfer syntax.
fn transcode(dataset: &[u8], from: &str, to: &str) -> Result<Vec<u8>, String> {
    let from_ts = TransferSyntaxRegistry
        .get(from)
        .ok_or_else(|| format!("unknown transfer syntax {from}"))?;
    let to_ts = TransferSyntaxRegistry
        .get(to)
        .ok_or_else(|| format!("unknown transfer syntax {to}"))?;
    let obj = InMemDicomObject::read_dataset_with_ts(dataset, from_ts)
        .map_err(|e| format!("cannot read data set: {e}"))?;
    let mut out = Vec::with_capacity(dataset.len());
    obj.write_dataset_with_ts(&mut out, to_ts)
        .map_err(|e| format!("cannot re-encode data set: {e}"))?;
    Ok(out)
}

fn store_blocking(target: &ScuTarget, objects: &[Outgoing]) -> Result<Vec<u16>, ScuError> {
    let addr = format!("{}:{}", target.host.trim(), target.port);
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(target.calling_ae.trim().to_owned())
        .called_ae_title(target.called_ae.trim().to_owned())
        .max_pdu_length(LOCAL_MAX_PDU)
        .connection_timeout(target.timeout)
        .read_timeout(target.timeout)
        .write_timeout(target.timeout);
    for (class, ts) in proposed_contexts(objects) {
        options = options.with_presentation_context(class, ts);
    }
    let mut assoc = options
        .establish(addr.as_str())
        .map_err(|e| map_ul_error(e, target, &addr))?;
    debug!(
        peer = %addr,
        max_pdu = assoc.acceptor_max_pdu_length(),
        contexts = assoc.presentation_contexts().len(),
        "C-STORE association established"
    );
    let mut statuses = Vec::with_capacity(objects.len());
    for (i, o) in objects.iter().enumerate() {
        // message IDs 1, 2, … (u16 wraps only after 65535 objects in one association)
        let message_id = (i % usize::from(u16::MAX)) as u16 + 1;
        match store_one(&mut assoc, o, message_id) {
            Ok(status) => statuses.push(status),
            Err(e) => {
                // a broken association: abort it (best effort) and report the cause
                if !matches!(e, ScuError::Aborted | ScuError::Closed) {
                    let _ = assoc.abort();
                }
                return Err(e);
            }
        }
    }
    if let Err(e) = assoc.release() {
        // every object has its status already; a failed release does not change them
        warn!(peer = %addr, error = %e, "C-STORE association release failed");
    }
    Ok(statuses)
}

fn store_one(
    assoc: &mut ClientAssociation<TcpStream>,
    o: &Outgoing,
    message_id: u16,
) -> Result<u16, ScuError> {
    let Some(pc) = choose_context(assoc.presentation_contexts(), o).cloned() else {
        warn!(
            sop_class = %o.sop_class_uid,
            transfer_syntax = %o.transfer_syntax,
            "no accepted presentation context for the object; not sent"
        );
        return Ok(STATUS_NOT_SENT);
    };
    let pc_ts = trim_uid(&pc.transfer_syntax).to_owned();
    let transcoded;
    let dataset: &[u8] = if pc_ts == o.transfer_syntax {
        &o.dataset
    } else {
        transcoded = match transcode(&o.dataset, &o.transfer_syntax, &pc_ts) {
            Ok(d) => d,
            Err(e) => {
                warn!(sop_instance = %o.sop_instance_uid, error = %e, "cannot re-encode; not sent");
                return Ok(STATUS_NOT_SENT);
            }
        };
        &transcoded
    };
    let command = store_rq(message_id, &o.sop_class_uid, &o.sop_instance_uid)?;
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc.id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .map_err(|e| ul_io_error(e, assoc.write_timeout()))?;
    {
        let mut writer = assoc.send_pdata(pc.id);
        writer
            .write_all(dataset)
            .and_then(|()| writer.finish())
            .map_err(|e| io_error(e, None))?;
    }
    let timeout = assoc.read_timeout();
    // the response command, possibly in several fragments
    let mut response = Vec::new();
    loop {
        match assoc.receive().map_err(|e| ul_io_error(e, timeout))? {
            Pdu::PData { data } => {
                let mut last = false;
                for pdv in data {
                    if pdv.value_type != PDataValueType::Command {
                        return Err(ScuError::Protocol(
                            "data set fragment in a C-STORE response".into(),
                        ));
                    }
                    response.extend_from_slice(&pdv.data);
                    last |= pdv.is_last;
                }
                if last {
                    break;
                }
            }
            Pdu::AbortRQ { .. } => return Err(ScuError::Aborted),
            other => {
                return Err(ScuError::Protocol(format!(
                    "unexpected {} while waiting for C-STORE-RSP",
                    other.short_description()
                )));
            }
        }
    }
    parse_store_rsp(&response, message_id)
}

/// C-STORE-RQ command set (PS3.7 9.3.1.1), Implicit VR Little Endian with its Command Group
/// Length.
fn store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Result<Vec<u8>, ScuError> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(sop_class),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(C_STORE_RQ),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID,
        VR::US,
        PrimitiveValue::from(message_id),
    ));
    // medium priority
    obj.put(DataElement::new(
        tags::PRIORITY,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    // anything but 0x0101: a data set follows
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0000u16),
    ));
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop_instance),
    ));
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut body, &ts)
        .map_err(|e| ScuError::Protocol(format!("cannot encode C-STORE-RQ: {e}")))?;
    let len =
        u32::try_from(body.len()).map_err(|_| ScuError::Protocol("C-STORE-RQ too long".into()))?;
    obj.put(DataElement::new(
        tags::COMMAND_GROUP_LENGTH,
        VR::UL,
        PrimitiveValue::from(len),
    ));
    let mut out = Vec::with_capacity(body.len() + 12);
    obj.write_dataset_with_ts(&mut out, &ts)
        .map_err(|e| ScuError::Protocol(format!("cannot encode C-STORE-RQ: {e}")))?;
    Ok(out)
}

fn parse_store_rsp(bytes: &[u8], message_id: u16) -> Result<u16, ScuError> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts)
        .map_err(|e| ScuError::Protocol(format!("cannot parse C-STORE-RSP: {e}")))?;
    let u16_of = |tag: Tag| -> Option<u16> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u16>().ok())
    };
    let field = u16_of(tags::COMMAND_FIELD)
        .ok_or_else(|| ScuError::Protocol("response lacks CommandField".into()))?;
    if field != C_STORE_RSP {
        return Err(ScuError::Protocol(format!(
            "expected C-STORE-RSP, got command 0x{field:04X}"
        )));
    }
    match u16_of(tags::MESSAGE_ID_BEING_RESPONDED_TO) {
        Some(id) if id == message_id => {}
        other => {
            return Err(ScuError::Protocol(format!(
                "C-STORE-RSP answers message {other:?}, expected {message_id}"
            )));
        }
    }
    u16_of(tags::STATUS).ok_or_else(|| ScuError::Protocol("C-STORE-RSP lacks Status".into()))
}

/// An I/O error on the association's socket: timeouts apart.
fn io_error(e: std::io::Error, timeout: Option<Duration>) -> ScuError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            ScuError::Timeout(timeout.unwrap_or_default())
        }
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => ScuError::Closed,
        _ => ScuError::Network(e.to_string()),
    }
}

/// The first `std::io::Error` in an error's source chain.
fn io_source<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cur = err.source();
    }
    None
}

/// A dicom-ul error after the association was established.
fn ul_io_error(e: UlError, timeout: Option<Duration>) -> ScuError {
    match &e {
        UlError::Aborted { .. } => return ScuError::Aborted,
        UlError::ConnectionClosed { .. } => return ScuError::Closed,
        UlError::UnexpectedPdu { pdu, .. } if matches!(**pdu, Pdu::AbortRQ { .. }) => {
            return ScuError::Aborted;
        }
        _ => {}
    }
    if let Some(io) = io_source(&e) {
        let kind = io.kind();
        return io_error(std::io::Error::new(kind, io.to_string()), timeout);
    }
    ScuError::Protocol(e.to_string())
}

/// A dicom-ul error while establishing the association.
fn map_ul_error(e: UlError, target: &ScuTarget, addr: &str) -> ScuError {
    match &e {
        UlError::Connect { source, .. } | UlError::ToAddress { source, .. } => {
            if matches!(
                source.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return ScuError::Timeout(target.timeout);
            }
            ScuError::Connect {
                addr: addr.to_owned(),
                reason: source.to_string(),
            }
        }
        UlError::Rejected { association_rj, .. } => ScuError::Rejected {
            called_ae: target.called_ae.trim().to_owned(),
            result: format!("{:?}", association_rj.result).to_lowercase(),
            reason: association_rj.source.to_string(),
        },
        UlError::NoAcceptedPresentationContexts { .. } => ScuError::NoPresentationContext {
            called_ae: target.called_ae.trim().to_owned(),
        },
        _ => ul_io_error(e, Some(target.timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(class: &str, ts: &str) -> Outgoing {
        Outgoing {
            sop_class_uid: class.into(),
            sop_instance_uid: "1.2.3".into(),
            transfer_syntax: ts.into(),
            dataset: vec![0; 8],
        }
    }

    #[test]
    fn one_context_per_sop_class() {
        let pcs = proposed_contexts(&[
            outgoing("1.2.840.10008.5.1.4.1.1.104.1", EXPLICIT_VR_LE),
            outgoing("1.2.840.10008.5.1.4.1.1.88.11", EXPLICIT_VR_LE),
            outgoing("1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.1.2.1.99"),
        ]);
        assert_eq!(pcs.len(), 2);
        assert_eq!(
            pcs[0].1,
            vec![EXPLICIT_VR_LE, "1.2.840.10008.1.2.1.99", IMPLICIT_VR_LE]
        );
        assert_eq!(pcs[1].1, vec![EXPLICIT_VR_LE, IMPLICIT_VR_LE]);
    }

    #[test]
    fn store_rq_has_group_length_and_parses() {
        let bytes = store_rq(3, "1.2.840.10008.5.1.4.1.1.104.1", "1.2.3.4").unwrap();
        // (0000,0000) UL, value = length of the rest
        assert_eq!(&bytes[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!(len, bytes.len() - 12);
        let req = crate::command::parse_request(&bytes).unwrap();
        assert_eq!(req.command_field, C_STORE_RQ);
        assert_eq!(req.message_id, 3);
        assert!(req.has_data_set);
        assert_eq!(req.affected_sop_instance_uid.as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn parses_store_rsp_status() {
        let rsp = crate::command::response(C_STORE_RSP, 3, "1.2", Some("1.2.3"), 0xB000, None);
        assert_eq!(parse_store_rsp(&rsp, 3).unwrap(), 0xB000);
        assert!(matches!(
            parse_store_rsp(&rsp, 4),
            Err(ScuError::Protocol(_))
        ));
    }

    #[test]
    fn transcodes_explicit_to_implicit() {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("ABC"),
        ));
        let mut explicit = Vec::new();
        obj.write_dataset_with_ts(
            &mut explicit,
            &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .unwrap();
        let implicit = transcode(&explicit, EXPLICIT_VR_LE, IMPLICIT_VR_LE).unwrap();
        // tag (4) + length (4) + "ABC " (4)
        assert_eq!(implicit.len(), 12);
    }
}
