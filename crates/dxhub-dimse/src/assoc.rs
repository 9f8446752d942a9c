//! One association: negotiation, then a loop of PDUs until release or abort.

use crate::DimseService;
use crate::audit::{self, StoreTally};
use crate::command::{
    self, C_CANCEL_RQ, C_ECHO_RQ, C_ECHO_RSP, C_STORE_RQ, C_STORE_RSP, RESPONSE_BIT,
};
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationAC, AssociationRJ, AssociationRJResult,
    AssociationRJServiceProviderPresentationReason, AssociationRJServiceUserReason,
    AssociationRJSource, AssociationRQ, PDataValue, PDataValueType, Pdu, PresentationContextResult,
    PresentationContextResultReason, UserVariableItem,
};
use dxhub_core::status;
use dxhub_dicom::{build_file_meta, sop, ts};
use dxhub_ingest::{IngestContext, Source, Spool, SpoolWriter, extract_file};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
/// Refuse PDUs larger than this whatever the peer thinks (memory bound per association).
pub(crate) const HARD_PDU_CAP: u32 = 64 << 20;
/// Any PDU but P-DATA-TF (an A-ASSOCIATE-RQ with its presentation contexts and user
/// identity is a few KiB): more is refused before the buffer is allocated.
const CONTROL_PDU_CAP: u32 = 256 << 10;
/// How long a new connection may take to send its A-ASSOCIATE-RQ (the ARTIM timer).
const ARTIM: std::time::Duration = std::time::Duration::from_secs(30);
/// Flush received data to the spool file in chunks of about this size.
const SPOOL_CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
enum AssocError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed PDU: {0}")]
    Pdu(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("peer idle for too long")]
    Idle,
    #[error("hub shutting down")]
    Shutdown,
}

/// The reading half of an association's transport (TCP or TLS).
pub(crate) type BoxRead = Box<dyn AsyncRead + Unpin + Send>;
/// The writing half of an association's transport (TCP or TLS).
pub(crate) type BoxWrite = Box<dyn AsyncWrite + Unpin + Send>;

struct Conn {
    reader: BufReader<BoxRead>,
    writer: BoxWrite,
    max_receive: u32,
}

impl Conn {
    /// Read exactly one PDU: the 6-byte header, then exactly its announced length.
    async fn read_pdu(&mut self) -> Result<Option<Pdu>, AssocError> {
        let mut header = [0u8; 6];
        match self.reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        // PDU types are 0x01–0x07; anything else (say, a TLS ClientHello on the plain
        // port) is not DICOM: fail now rather than wait for a bogus length.
        if !(0x01..=0x07).contains(&header[0]) {
            return Err(AssocError::Pdu(format!(
                "unknown PDU type 0x{:02X}",
                header[0]
            )));
        }
        let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        if len > HARD_PDU_CAP || (header[0] != 0x04 && len > CONTROL_PDU_CAP) {
            return Err(AssocError::Pdu(format!(
                "PDU of type 0x{:02X} and {len} bytes exceeds the cap",
                header[0]
            )));
        }
        if header[0] == 0x04 {
            // P-DATA-TF carries the instances: decode its PDV items here, moving the
            // payload of the common single-item PDU instead of copying it twice more.
            let mut body = vec![0u8; len as usize];
            self.reader.read_exact(&mut body).await?;
            return parse_pdata(body).map(Some);
        }
        let mut buf = vec![0u8; 6 + len as usize];
        buf[..6].copy_from_slice(&header);
        self.reader.read_exact(&mut buf[6..]).await?;
        match dicom_ul::read_pdu(&buf[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false) {
            Ok(Some(pdu)) => Ok(Some(pdu)),
            Ok(None) => Err(AssocError::Pdu("incomplete PDU".into())),
            Err(e) => Err(AssocError::Pdu(e.to_string())),
        }
    }

    async fn write_pdu(&mut self, pdu: &Pdu) -> Result<(), AssocError> {
        let mut buf = Vec::with_capacity(512);
        dicom_ul::write_pdu(&mut buf, pdu).map_err(|e| AssocError::Pdu(e.to_string()))?;
        self.writer.write_all(&buf).await?;
        self.writer.flush().await?;
        Ok(())
    }

    async fn abort(&mut self) {
        let _ = self
            .write_pdu(&Pdu::AbortRQ {
                source: AbortRQSource::ServiceProvider(
                    AbortRQServiceProviderReason::ReasonNotSpecified,
                ),
            })
            .await;
        let _ = self.writer.shutdown().await;
    }
}

/// Decode the body of a P-DATA-TF PDU (PS3.8 §9.3.5): a sequence of PDV items, each a
/// 4-byte length, the presentation context id, a control header (bit 0: command, bit 1:
/// last fragment) and the fragment.
fn parse_pdata(mut body: Vec<u8>) -> Result<Pdu, AssocError> {
    let bad = |m: &str| AssocError::Pdu(format!("malformed P-DATA-TF: {m}"));
    let mut items = Vec::new();
    let mut pos = 0usize;
    while pos < body.len() {
        if body.len() - pos < 6 {
            return Err(bad("truncated PDV item header"));
        }
        let item_len =
            u32::from_be_bytes([body[pos], body[pos + 1], body[pos + 2], body[pos + 3]]) as usize;
        if item_len < 2 || item_len > body.len() - pos - 4 {
            return Err(bad("PDV item length out of range"));
        }
        items.push((body[pos + 4], body[pos + 5], pos + 6, pos + 4 + item_len));
        pos += 4 + item_len;
    }
    if items.is_empty() {
        return Err(bad("no PDV item"));
    }
    let single = items.len() == 1;
    let mut data = Vec::with_capacity(items.len());
    for (pc, control, start, end) in items {
        let fragment = if single {
            // move the buffer: drop the 6-byte item header in place
            body.truncate(end);
            body.drain(..start);
            std::mem::take(&mut body)
        } else {
            body[start..end].to_vec()
        };
        data.push(PDataValue {
            presentation_context_id: pc,
            value_type: if control & 0x01 != 0 {
                PDataValueType::Command
            } else {
                PDataValueType::Data
            },
            is_last: control & 0x02 != 0,
            data: fragment,
        });
    }
    Ok(Pdu::PData { data })
}

/// Entry point of an association task, over any transport split in two halves (plain TCP:
/// `into_split`; TLS: `tokio::io::split`).
pub(crate) async fn run(
    reader: BoxRead,
    writer: BoxWrite,
    peer: SocketAddr,
    service: Arc<DimseService>,
    pending: OwnedSemaphorePermit,
    cancel: CancellationToken,
) {
    let span = info_span!("association", peer = %peer, calling_ae = tracing::field::Empty);
    async move {
        let mut conn = Conn {
            reader: BufReader::with_capacity(256 * 1024, reader),
            writer,
            max_receive: service.max_pdu(),
        };
        let first = ARTIM.min(service.idle_timeout());
        let rq = match tokio::time::timeout(first, conn.read_pdu()).await {
            Ok(Ok(Some(Pdu::AssociationRQ(rq)))) => rq,
            Ok(Ok(Some(other))) => {
                debug!(pdu = %other.short_description(), "expected A-ASSOCIATE-RQ");
                conn.abort().await;
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                debug!(error = %e, "bad first PDU");
                conn.abort().await;
                return;
            }
            Err(_) => {
                conn.abort().await;
                return;
            }
        };
        tracing::Span::current().record("calling_ae", rq.calling_ae_title.trim());
        drop(pending);
        let permit = service.open_slots().try_acquire_owned().ok();
        let Some(permit) = permit else {
            reject(
                &mut conn,
                &service,
                (rq.calling_ae_title.trim(), None, peer),
                AssociationRJResult::Transient,
                AssociationRJSource::ServiceProviderPresentation(
                    AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
                ),
                "rejected_busy",
            )
            .await;
            return;
        };
        let accepted = match negotiate(&mut conn, &service, &rq, peer).await {
            Some(a) => a,
            None => return,
        };
        service.metrics.active.inc();
        let mut tally = StoreTally::default();
        let result = serve_association(&mut conn, &service, &accepted, &mut tally, &cancel).await;
        service.metrics.active.dec();
        match result {
            Ok(()) => debug!("association released"),
            Err(AssocError::Shutdown) => {
                info!("aborting association: hub shutting down");
                conn.abort().await;
            }
            Err(e) => {
                warn!(error = %e, "association aborted");
                service.metrics.association("aborted");
                conn.abort().await;
            }
        }
        // The peer has its answers; now record per study what was stored.
        let entries = tally.take_entries(&accepted.calling_ae, accepted.institution_id, peer);
        audit::append(service.catalog.as_ref(), &entries).await;
        drop(permit);
    }
    .instrument(span)
    .await
}

/// Calling AE title, its institution when known, and the peer address of an association.
type Who<'a> = (&'a str, Option<i64>, SocketAddr);

/// The audit outcome reason of a rejection metric label.
fn rejection_reason(label: &str) -> &'static str {
    match label {
        "rejected_busy" => "too-many-associations",
        "rejected_context" => "application-context-not-supported",
        "rejected_called_ae" => "called-ae-not-recognized",
        "rejected_host" => "host-not-allowed",
        "rejected_calling_ae" => "calling-ae-not-recognized",
        "rejected_unavailable" => "catalog-unavailable",
        _ => "rejected",
    }
}

async fn reject(
    conn: &mut Conn,
    service: &DimseService,
    who: Who<'_>,
    result: AssociationRJResult,
    source: AssociationRJSource,
    label: &'static str,
) {
    info!(reason = label, "association rejected");
    service.metrics.association(label);
    let (calling_ae, institution_id, peer) = who;
    let entry = audit::rejection(calling_ae, institution_id, peer, rejection_reason(label));
    // Recorded before the peer hears of it, except when the catalog is what failed (its
    // audit write would only delay the answer).
    let audit_first = label != "rejected_unavailable";
    if audit_first {
        audit::append(service.catalog.as_ref(), std::slice::from_ref(&entry)).await;
    }
    let _ = conn
        .write_pdu(&Pdu::AssociationRJ(AssociationRJ { result, source }))
        .await;
    let _ = conn.writer.shutdown().await;
    if !audit_first {
        audit::append(service.catalog.as_ref(), &[entry]).await;
    }
}

struct Accepted {
    calling_ae: String,
    peer: SocketAddr,
    institution_id: Option<i64>,
    /// presentation context id → (abstract syntax, transfer syntax)
    contexts: HashMap<u8, (String, String)>,
}

async fn host_matches(registered: &str, peer: IpAddr) -> bool {
    let registered = registered.trim();
    if let Ok(ip) = registered.parse::<IpAddr>() {
        return ip == peer || ip.to_canonical() == peer.to_canonical();
    }
    match tokio::net::lookup_host((registered, 0)).await {
        Ok(addrs) => addrs
            .into_iter()
            .any(|a| a.ip().to_canonical() == peer.to_canonical()),
        Err(_) => false,
    }
}

/// The User Identity server response (PS3.7 D.3.3.7.2) for a peer that asked for a
/// positive one with a user name (with or without password): the association is
/// accepted (by AE title and host), so the answer is positive, with the empty server
/// response these identity types carry. DCMTK's SCUs refuse an association that lacks it.
/// Kerberos, SAML and JWT identities would need a server response the hub does not make:
/// none is sent for them.
fn user_identity_response(rq: &AssociationRQ) -> Option<UserVariableItem> {
    rq.user_variables.iter().find_map(|v| match v {
        UserVariableItem::UserIdentityItem(id)
            if id.positive_response_requested()
                && matches!(
                    id.identity_type(),
                    dicom_ul::pdu::UserIdentityType::Username
                        | dicom_ul::pdu::UserIdentityType::UsernamePassword
                ) =>
        {
            Some(UserVariableItem::Unknown(0x59, vec![0, 0]))
        }
        _ => None,
    })
}

async fn negotiate(
    conn: &mut Conn,
    service: &DimseService,
    rq: &AssociationRQ,
    peer: SocketAddr,
) -> Option<Accepted> {
    use AssociationRJResult::*;
    use AssociationRJServiceUserReason as U;
    let calling = rq.calling_ae_title.trim();
    if rq.application_context_name.trim_end_matches(['\0', ' ']) != APPLICATION_CONTEXT {
        reject(
            conn,
            service,
            (calling, None, peer),
            Permanent,
            AssociationRJSource::ServiceUser(U::ApplicationContextNameNotSupported),
            "rejected_context",
        )
        .await;
        return None;
    }
    if rq.called_ae_title.trim() != service.config.ae_title {
        reject(
            conn,
            service,
            (calling, None, peer),
            Permanent,
            AssociationRJSource::ServiceUser(U::CalledAETitleNotRecognized),
            "rejected_called_ae",
        )
        .await;
        return None;
    }
    let calling_ae = rq.calling_ae_title.trim().to_owned();
    let institution_id = match service.catalog.find_ae_title(&calling_ae).await {
        Ok(Some(ae)) => {
            if let Some(host) = ae.host.as_deref().filter(|h| !h.trim().is_empty())
                && !host_matches(host, peer.ip()).await
            {
                reject(
                    conn,
                    service,
                    (calling, Some(ae.institution_id), peer),
                    Permanent,
                    AssociationRJSource::ServiceUser(U::CallingAETitleNotRecognized),
                    "rejected_host",
                )
                .await;
                return None;
            }
            Some(ae.institution_id)
        }
        Ok(None) if service.config.accept_unknown_callers => None,
        Ok(None) => {
            reject(
                conn,
                service,
                (calling, None, peer),
                Permanent,
                AssociationRJSource::ServiceUser(U::CallingAETitleNotRecognized),
                "rejected_calling_ae",
            )
            .await;
            return None;
        }
        Err(e) => {
            warn!(error = %e, "catalog unavailable during association negotiation");
            reject(
                conn,
                service,
                (calling, None, peer),
                Transient,
                AssociationRJSource::ServiceProviderPresentation(
                    AssociationRJServiceProviderPresentationReason::TemporaryCongestion,
                ),
                "rejected_unavailable",
            )
            .await;
            return None;
        }
    };

    let mut contexts = HashMap::new();
    let mut results = Vec::with_capacity(rq.presentation_contexts.len());
    for pc in &rq.presentation_contexts {
        let abstract_syntax = pc.abstract_syntax.trim_end_matches(['\0', ' ']).to_owned();
        let (reason, chosen) = if abstract_syntax == sop::VERIFICATION {
            match ts::choose_for_verification(&pc.transfer_syntaxes) {
                Some(t) => (
                    PresentationContextResultReason::Acceptance,
                    Some(t.to_owned()),
                ),
                None => (
                    PresentationContextResultReason::TransferSyntaxesNotSupported,
                    None,
                ),
            }
        } else if sop::is_storage_sop_class(&abstract_syntax) {
            match ts::choose_for_storage(&pc.transfer_syntaxes) {
                Some(t) => (
                    PresentationContextResultReason::Acceptance,
                    Some(t.to_owned()),
                ),
                None => (
                    PresentationContextResultReason::TransferSyntaxesNotSupported,
                    None,
                ),
            }
        } else {
            (
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                None,
            )
        };
        if let Some(t) = &chosen {
            contexts.insert(pc.id, (abstract_syntax.clone(), t.clone()));
        }
        results.push(PresentationContextResult {
            id: pc.id,
            reason,
            transfer_syntax: chosen.unwrap_or_else(|| ts::IMPLICIT_VR_LE.to_owned()),
        });
    }
    let mut user_variables = vec![
        UserVariableItem::MaxLength(conn.max_receive),
        UserVariableItem::ImplementationClassUID(
            dxhub_dicom::meta::IMPLEMENTATION_CLASS_UID.to_owned(),
        ),
        UserVariableItem::ImplementationVersionName(
            dxhub_dicom::meta::IMPLEMENTATION_VERSION_NAME.to_owned(),
        ),
    ];
    if let Some(item) = user_identity_response(rq) {
        user_variables.push(item);
    }
    let ac = AssociationAC {
        protocol_version: 1,
        calling_ae_title: rq.calling_ae_title.clone(),
        called_ae_title: rq.called_ae_title.clone(),
        application_context_name: APPLICATION_CONTEXT.to_owned(),
        presentation_contexts: results,
        user_variables,
    };
    if let Err(e) = conn.write_pdu(&Pdu::AssociationAC(ac)).await {
        warn!(error = %e, "cannot send A-ASSOCIATE-AC");
        return None;
    }
    service.metrics.association("accepted");
    info!(contexts = contexts.len(), "association accepted");
    Some(Accepted {
        calling_ae,
        peer,
        institution_id,
        contexts,
    })
}

/// An instance being received.
struct Incoming {
    pc_id: u8,
    message_id: u16,
    sop_class_uid: String,
    sop_instance_uid: String,
    /// Where the data set goes.
    sink: Sink,
    pending: Vec<u8>,
    refusal: Option<(u16, String)>,
    /// A request dxhub does not provide, whose data set is read and dropped: when it
    /// ends, the answer is this response command field with Unrecognized Operation.
    unrecognized: Option<u16>,
}

/// Where an instance's data set goes while it arrives.
enum Sink {
    /// Refused up front: the data is read and discarded.
    Discard,
    /// Nothing on disk yet: the Part 10 header waits for the first write, so an instance
    /// smaller than a spool chunk costs one hand-off to the blocking pool, not three.
    Pending {
        header: Vec<u8>,
    },
    Writing(Box<SpoolWriter>),
}

impl Sink {
    fn accepts_data(&self) -> bool {
        !matches!(self, Sink::Discard)
    }

    /// Blocking: the spool writer, created (with its header) on first use.
    fn open(self, spool: &Spool) -> std::io::Result<SpoolWriter> {
        match self {
            Sink::Writing(w) => Ok(*w),
            Sink::Pending { header } => {
                let mut w = spool.create()?;
                w.write_header(&header)?;
                Ok(w)
            }
            Sink::Discard => Err(std::io::Error::other(
                "no spool file for a refused instance",
            )),
        }
    }
}

async fn flush(spool: Spool, sink: Sink, data: Vec<u8>) -> std::io::Result<SpoolWriter> {
    tokio::task::spawn_blocking(move || {
        let mut writer = sink.open(&spool)?;
        writer.write_dataset(&data)?;
        Ok(writer)
    })
    .await
    .map_err(std::io::Error::other)?
}

async fn serve_association(
    conn: &mut Conn,
    service: &DimseService,
    accepted: &Accepted,
    tally: &mut StoreTally,
    cancel: &CancellationToken,
) -> Result<(), AssocError> {
    let mut command_buf: Vec<u8> = Vec::new();
    let mut incoming: Option<Incoming> = None;
    loop {
        let pdu = tokio::select! {
            biased;
            _ = cancel.cancelled(), if incoming.is_none() => return Err(AssocError::Shutdown),
            r = tokio::time::timeout(service.idle_timeout(), conn.read_pdu()) => match r {
                Ok(Ok(Some(pdu))) => pdu,
                Ok(Ok(None)) => return Err(AssocError::Protocol("peer closed the connection without release".into())),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(AssocError::Idle),
            },
        };
        match pdu {
            Pdu::PData { data } => {
                for pdv in data {
                    match pdv.value_type {
                        PDataValueType::Command => {
                            if incoming.is_some() {
                                return Err(AssocError::Protocol(
                                    "command fragment while a data set is in progress".into(),
                                ));
                            }
                            command_buf.extend_from_slice(&pdv.data);
                            if pdv.is_last {
                                let bytes = std::mem::take(&mut command_buf);
                                incoming = handle_command(
                                    conn,
                                    service,
                                    accepted,
                                    pdv.presentation_context_id,
                                    &bytes,
                                )
                                .await?;
                            }
                        }
                        PDataValueType::Data => {
                            let Some(inc) = incoming.as_mut() else {
                                return Err(AssocError::Protocol(
                                    "data fragment without a command".into(),
                                ));
                            };
                            if inc.pc_id != pdv.presentation_context_id {
                                return Err(AssocError::Protocol(
                                    "data fragment on another presentation context".into(),
                                ));
                            }
                            service.metrics.bytes_received.inc_by(pdv.data.len() as u64);
                            if inc.sink.accepts_data() {
                                if inc.pending.is_empty() {
                                    inc.pending = pdv.data;
                                } else {
                                    // room for a whole chunk at the second fragment: one
                                    // copy of the first, not a doubling per few fragments
                                    if inc.pending.capacity() < SPOOL_CHUNK {
                                        inc.pending.reserve(SPOOL_CHUNK);
                                    }
                                    inc.pending.extend_from_slice(&pdv.data);
                                }
                                if inc.pending.len() >= SPOOL_CHUNK {
                                    let data = std::mem::take(&mut inc.pending);
                                    let sink = std::mem::replace(&mut inc.sink, Sink::Discard);
                                    match flush(service.ingest.spool().clone(), sink, data).await {
                                        Ok(w) => inc.sink = Sink::Writing(Box::new(w)),
                                        Err(e) => {
                                            warn!(error = %e, "spool write failed");
                                            inc.refusal = Some((
                                                status::OUT_OF_RESOURCES,
                                                "cannot write spool file".into(),
                                            ));
                                        }
                                    }
                                }
                            }
                            if pdv.is_last
                                && let Some(inc) = incoming.take()
                            {
                                if let Some(field) = inc.unrecognized {
                                    refuse_operation(
                                        conn,
                                        service,
                                        inc.pc_id,
                                        field,
                                        inc.message_id,
                                        &inc.sop_class_uid,
                                        &inc.sop_instance_uid,
                                    )
                                    .await?;
                                } else {
                                    finish_store(conn, service, accepted, tally, inc).await?;
                                }
                            }
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                if incoming.is_some() {
                    return Err(AssocError::Protocol(
                        "release requested in the middle of a data set".into(),
                    ));
                }
                // Record what was stored before confirming the release: once the peer
                // has its A-RELEASE-RP, the audit log already tells what it sent.
                let entries = tally.take_entries(
                    &accepted.calling_ae,
                    accepted.institution_id,
                    accepted.peer,
                );
                audit::append(service.catalog.as_ref(), &entries).await;
                conn.write_pdu(&Pdu::ReleaseRP).await?;
                let _ = conn.writer.shutdown().await;
                return Ok(());
            }
            Pdu::AbortRQ { .. } => {
                debug!("peer aborted the association");
                // dropping `incoming` removes its spool file
                return Ok(());
            }
            other => {
                return Err(AssocError::Protocol(format!(
                    "unexpected PDU {}",
                    other.short_description()
                )));
            }
        }
    }
}

async fn send_response(conn: &mut Conn, pc_id: u8, bytes: Vec<u8>) -> Result<(), AssocError> {
    conn.write_pdu(&Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: pc_id,
            value_type: PDataValueType::Command,
            is_last: true,
            data: bytes,
        }],
    })
    .await
}

async fn handle_command(
    conn: &mut Conn,
    service: &DimseService,
    accepted: &Accepted,
    pc_id: u8,
    bytes: &[u8],
) -> Result<Option<Incoming>, AssocError> {
    let rq = command::parse_request(bytes).map_err(|e| AssocError::Protocol(e.to_string()))?;
    let Some((abstract_syntax, transfer_syntax)) = accepted.contexts.get(&pc_id) else {
        return Err(AssocError::Protocol(format!(
            "presentation context {pc_id} was not accepted"
        )));
    };
    match rq.command_field {
        C_ECHO_RQ => {
            let resp = command::response(
                C_ECHO_RSP,
                rq.message_id,
                sop::VERIFICATION,
                None,
                status::SUCCESS,
                None,
            );
            send_response(conn, pc_id, resp).await?;
            service.metrics.command("C-ECHO", status::SUCCESS);
            if rq.has_data_set {
                return Err(AssocError::Protocol("C-ECHO with a data set".into()));
            }
            Ok(None)
        }
        C_STORE_RQ => {
            let sop_class_uid = rq.affected_sop_class_uid.clone().unwrap_or_default();
            let sop_instance_uid = rq.affected_sop_instance_uid.clone().unwrap_or_default();
            if !rq.has_data_set {
                let resp = command::response(
                    C_STORE_RSP,
                    rq.message_id,
                    &sop_class_uid,
                    Some(&sop_instance_uid),
                    status::CANNOT_UNDERSTAND,
                    Some("C-STORE without a data set"),
                );
                send_response(conn, pc_id, resp).await?;
                return Ok(None);
            }
            let mut refusal = None;
            if &sop_class_uid != abstract_syntax {
                refusal = Some((status::REFUSED_SOP_CLASS_NOT_SUPPORTED,
                    "Affected SOP Class UID differs from the presentation context's abstract syntax".to_owned()));
            } else if !dxhub_core::uid::is_key_safe_uid(&sop_instance_uid) {
                refusal = Some((
                    status::CANNOT_UNDERSTAND,
                    "missing or invalid Affected SOP Instance UID".to_owned(),
                ));
            }
            let sink = if refusal.is_none() {
                match build_file_meta(transfer_syntax, &sop_class_uid, &sop_instance_uid) {
                    Ok(header) => Sink::Pending { header },
                    Err(e) => {
                        warn!(error = %e, "cannot build the file meta");
                        refusal = Some((
                            status::CANNOT_UNDERSTAND,
                            "cannot build file meta information".to_owned(),
                        ));
                        Sink::Discard
                    }
                }
            } else {
                Sink::Discard
            };
            Ok(Some(Incoming {
                pc_id,
                message_id: rq.message_id,
                sop_class_uid,
                sop_instance_uid,
                sink,
                pending: Vec::new(),
                refusal,
                unrecognized: None,
            }))
        }
        // C-CANCEL has no response (PS3.7 9.3.2.3); nothing dxhub does can be cancelled
        C_CANCEL_RQ => Ok(None),
        // a response to a request dxhub never sent: the peer has lost track of the roles
        other if other & RESPONSE_BIT != 0 => Err(AssocError::Protocol(format!(
            "unexpected DIMSE response 0x{other:04X}"
        ))),
        // C-FIND, C-GET, C-MOVE, N-*: not provided on this association. Answer
        // Unrecognized Operation (PS3.7 C.5.4), after its data set if it has one, and keep
        // the association for what follows, as DCMTK's and pynetdicom's SCPs do.
        other => {
            let sop_class_uid = rq
                .affected_sop_class_uid
                .or(rq.requested_sop_class_uid)
                .unwrap_or_else(|| abstract_syntax.clone());
            let sop_instance_uid = rq
                .affected_sop_instance_uid
                .or(rq.requested_sop_instance_uid)
                .unwrap_or_default();
            let field = other | RESPONSE_BIT;
            if rq.has_data_set {
                return Ok(Some(Incoming {
                    pc_id,
                    message_id: rq.message_id,
                    sop_class_uid,
                    sop_instance_uid,
                    sink: Sink::Discard,
                    pending: Vec::new(),
                    refusal: None,
                    unrecognized: Some(field),
                }));
            }
            refuse_operation(
                conn,
                service,
                pc_id,
                field,
                rq.message_id,
                &sop_class_uid,
                &sop_instance_uid,
            )
            .await?;
            Ok(None)
        }
    }
}

/// Answer a request dxhub does not provide with Unrecognized Operation (0211H).
async fn refuse_operation(
    conn: &mut Conn,
    service: &DimseService,
    pc_id: u8,
    response_field: u16,
    message_id: u16,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<(), AssocError> {
    debug!(
        command = format_args!("0x{:04X}", response_field & !RESPONSE_BIT),
        "unrecognized DIMSE operation"
    );
    let resp = command::response(
        response_field,
        message_id,
        sop_class_uid,
        (!sop_instance_uid.is_empty()).then_some(sop_instance_uid),
        status::UNRECOGNIZED_OPERATION,
        Some("operation not provided by this SCP"),
    );
    send_response(conn, pc_id, resp).await?;
    service
        .metrics
        .command("unrecognized", status::UNRECOGNIZED_OPERATION);
    Ok(())
}

async fn finish_store(
    conn: &mut Conn,
    service: &DimseService,
    accepted: &Accepted,
    tally: &mut StoreTally,
    mut inc: Incoming,
) -> Result<(), AssocError> {
    let sink = std::mem::replace(&mut inc.sink, Sink::Discard);
    let (status, comment) = match (inc.refusal.take(), sink) {
        (Some(refusal), _) => (refusal.0, Some(refusal.1)),
        (None, Sink::Discard) => (status::OUT_OF_RESOURCES, Some("spool file lost".to_owned())),
        (None, sink) => {
            let data = std::mem::take(&mut inc.pending);
            let spool = service.ingest.spool().clone();
            // one blocking task: write what is pending, finish the file, parse it
            let finished = tokio::task::spawn_blocking(move || {
                let mut writer = sink.open(&spool)?;
                writer.write_dataset(&data)?;
                let file = writer.finish()?;
                let extracted = extract_file(file.path());
                Ok::<_, std::io::Error>((file, extracted))
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            match finished {
                Err(e) => {
                    warn!(error = %e, "spool finish failed");
                    (
                        status::OUT_OF_RESOURCES,
                        Some("cannot write spool file".to_owned()),
                    )
                }
                Ok((file, extracted)) => {
                    let mut ctx = IngestContext::new(
                        Source::Dimse {
                            calling_ae: accepted.calling_ae.clone(),
                        },
                        accepted.institution_id,
                    );
                    ctx.expected_sop_class_uid = Some(inc.sop_class_uid.clone());
                    ctx.expected_sop_instance_uid = Some(inc.sop_instance_uid.clone());
                    // an AE title stores into its own institution's studies only
                    ctx.writable_institutions = accepted.institution_id.map(|i| vec![i]);
                    match service.ingest.ingest_extracted(file, extracted, &ctx).await {
                        Ok(outcome) => {
                            tally.stored(&outcome.study_instance_uid, &outcome.sop_instance_uid);
                            (outcome.status(), outcome.comment().map(str::to_owned))
                        }
                        Err(e) => {
                            info!(sop_instance_uid = %inc.sop_instance_uid, status = format!("{:04X}", e.status()), error = %e, "C-STORE refused");
                            (e.status(), Some(e.to_string()))
                        }
                    }
                }
            }
        }
    };
    if status != status::SUCCESS && !status::is_warning(status) {
        tally.refused(None, status);
    }
    let resp = command::response(
        C_STORE_RSP,
        inc.message_id,
        &inc.sop_class_uid,
        Some(&inc.sop_instance_uid),
        status,
        comment.as_deref(),
    );
    debug!(
        message_id = inc.message_id,
        status = format!("{status:04X}"),
        "C-STORE response"
    );
    send_response(conn, inc.pc_id, resp).await?;
    service.metrics.command("C-STORE", status);
    Ok(())
}

#[cfg(test)]
mod pdata_tests {
    use super::*;

    fn item(pc: u8, control: u8, data: &[u8]) -> Vec<u8> {
        let mut v = ((data.len() + 2) as u32).to_be_bytes().to_vec();
        v.push(pc);
        v.push(control);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn decodes_like_dicom_ul() {
        for body in [
            item(1, 0x02, b"data-last"),
            [
                item(3, 0x03, b"cmd"),
                item(3, 0x00, b"frag"),
                item(3, 0x02, b""),
            ]
            .concat(),
        ] {
            let mut whole = vec![0x04, 0];
            whole.extend_from_slice(&(body.len() as u32).to_be_bytes());
            whole.extend_from_slice(&body);
            let reference = dicom_ul::read_pdu(&whole[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
                .unwrap()
                .unwrap();
            assert_eq!(parse_pdata(body).unwrap(), reference);
        }
        assert!(parse_pdata(vec![0, 0, 0, 9, 1, 2]).is_err());
        assert!(parse_pdata(vec![0, 0, 0]).is_err());
        assert!(parse_pdata(Vec::new()).is_err());
    }
}
