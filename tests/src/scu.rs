//! A small synchronous DICOM SCU over dicom-ul's PDU codec. It writes each command and
//! its data set back to back in one write (the pattern of dicom-rs #589), and can also
//! misbehave on purpose: abort in the middle of an instance, send broken data sets.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::pdu::{
    AbortRQSource, AssociationRJResult, AssociationRJSource, AssociationRQ, PDataValue,
    PDataValueType, Pdu, PresentationContextProposed, PresentationContextResultReason,
    UserVariableItem,
};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// A-ASSOCIATE-RJ: (result, source, reason) as on the wire.
    Rejected {
        result: u8,
        source: u8,
        reason: u8,
    },
    Aborted,
    Other(String),
}

pub struct Scu {
    stream: TcpStream,
    peer_max_pdu: u32,
    /// accepted presentation contexts: id → (abstract syntax, transfer syntax)
    pub accepted: HashMap<u8, (String, String)>,
    /// every proposed context id → result reason code
    pub results: HashMap<u8, u8>,
    pub proposed: Vec<(u8, String)>,
    next_message_id: u16,
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn rj_codes(result: &AssociationRJResult, source: &AssociationRJSource) -> (u8, u8, u8) {
    use dicom_ul::pdu::{
        AssociationRJServiceProviderASCEReason as A,
        AssociationRJServiceProviderPresentationReason as P, AssociationRJServiceUserReason as U,
    };
    let r = match result {
        AssociationRJResult::Permanent => 1,
        AssociationRJResult::Transient => 2,
    };
    let (s, reason) = match source {
        AssociationRJSource::ServiceUser(u) => (
            1,
            match u {
                U::NoReasonGiven => 1,
                U::ApplicationContextNameNotSupported => 2,
                U::CallingAETitleNotRecognized => 3,
                U::CalledAETitleNotRecognized => 7,
                U::Reserved(x) => *x,
            },
        ),
        AssociationRJSource::ServiceProviderASCE(a) => (
            2,
            match a {
                A::NoReasonGiven => 1,
                A::ProtocolVersionNotSupported => 2,
            },
        ),
        AssociationRJSource::ServiceProviderPresentation(p) => (
            3,
            match p {
                P::TemporaryCongestion => 1,
                P::LocalLimitExceeded => 2,
                P::Reserved(x) => *x,
            },
        ),
    };
    (r, s, reason)
}

pub fn read_pdu(stream: &mut TcpStream) -> io::Result<Pdu> {
    let mut header = [0u8; 6];
    stream.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    let mut buf = vec![0u8; 6 + len];
    buf[..6].copy_from_slice(&header);
    stream.read_exact(&mut buf[6..])?;
    dicom_ul::read_pdu(&buf[..], dicom_ul::pdu::MAXIMUM_PDU_SIZE, false)
        .map_err(io_err)?
        .ok_or_else(|| io_err("incomplete PDU"))
}

fn encode_pdu(pdu: &Pdu, out: &mut Vec<u8>) -> io::Result<()> {
    dicom_ul::write_pdu(out, pdu).map_err(io_err)
}

impl Scu {
    /// Open an association proposing `contexts` (abstract syntax, transfer syntaxes).
    pub fn connect(
        addr: SocketAddr,
        calling: &str,
        called: &str,
        contexts: &[(String, Vec<String>)],
        max_pdu: u32,
    ) -> Result<Scu, ConnectError> {
        let mut stream =
            TcpStream::connect(addr).map_err(|e| ConnectError::Other(e.to_string()))?;
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let proposed: Vec<(u8, String)> = contexts
            .iter()
            .enumerate()
            .map(|(i, (a, _))| ((i * 2 + 1) as u8, a.clone()))
            .collect();
        let rq = AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling.into(),
            called_ae_title: called.into(),
            application_context_name: "1.2.840.10008.3.1.1.1".into(),
            presentation_contexts: contexts
                .iter()
                .enumerate()
                .map(|(i, (a, ts))| PresentationContextProposed {
                    id: (i * 2 + 1) as u8,
                    abstract_syntax: a.clone(),
                    transfer_syntaxes: ts.clone(),
                })
                .collect(),
            user_variables: vec![
                UserVariableItem::MaxLength(max_pdu),
                UserVariableItem::ImplementationClassUID("1.2.826.0.1.3680043.10.1.1".into()),
            ],
        };
        let mut buf = Vec::new();
        encode_pdu(&Pdu::AssociationRQ(rq), &mut buf)
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        stream
            .write_all(&buf)
            .map_err(|e| ConnectError::Other(e.to_string()))?;
        match read_pdu(&mut stream).map_err(|e| ConnectError::Other(e.to_string()))? {
            Pdu::AssociationAC(ac) => {
                let mut accepted = HashMap::new();
                let mut results = HashMap::new();
                for r in &ac.presentation_contexts {
                    results.insert(r.id, r.reason.clone() as u8);
                    if r.reason == PresentationContextResultReason::Acceptance {
                        let a = proposed
                            .iter()
                            .find(|(id, _)| *id == r.id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                        accepted.insert(r.id, (a, r.transfer_syntax.clone()));
                    }
                }
                let peer_max_pdu = ac
                    .user_variables
                    .iter()
                    .find_map(|u| {
                        if let UserVariableItem::MaxLength(m) = u {
                            Some(*m)
                        } else {
                            None
                        }
                    })
                    .filter(|m| *m > 0)
                    .unwrap_or(1 << 20);
                Ok(Scu {
                    stream,
                    peer_max_pdu,
                    accepted,
                    results,
                    proposed,
                    next_message_id: 1,
                })
            }
            Pdu::AssociationRJ(rj) => {
                let (result, source, reason) = rj_codes(&rj.result, &rj.source);
                Err(ConnectError::Rejected {
                    result,
                    source,
                    reason,
                })
            }
            Pdu::AbortRQ { .. } => Err(ConnectError::Aborted),
            other => Err(ConnectError::Other(format!(
                "unexpected {}",
                other.short_description()
            ))),
        }
    }

    pub fn peer_max_pdu(&self) -> u32 {
        self.peer_max_pdu
    }

    /// Send PDUs no larger than `n` bytes (forces many small PDUs per instance).
    pub fn set_send_pdu_max(&mut self, n: u32) {
        self.peer_max_pdu = n.min(self.peer_max_pdu);
    }

    /// Write several C-STOREs back to back without waiting, then read their responses in
    /// order: the peer sees PDUs arriving while it is still busy with earlier instances.
    pub fn store_pipelined(
        &mut self,
        pc: u8,
        sop_class: &str,
        items: &[(String, Vec<u8>)],
    ) -> io::Result<Vec<u16>> {
        let mut buf = Vec::new();
        for (uid, ds) in items {
            buf.extend(self.encode_store(pc, sop_class, uid, ds, true));
        }
        self.stream.write_all(&buf)?;
        let mut out = Vec::with_capacity(items.len());
        for _ in items {
            out.push(self.read_response()?.0);
        }
        Ok(out)
    }

    /// Accepted context id for an abstract syntax.
    pub fn context_for(&self, abstract_syntax: &str) -> Option<(u8, String)> {
        self.accepted
            .iter()
            .find(|(_, (a, _))| a == abstract_syntax)
            .map(|(id, (_, ts))| (*id, ts.clone()))
    }

    fn command(fields: &[(dicom_core::Tag, VR, PrimitiveValue)]) -> Vec<u8> {
        let mut o = InMemDicomObject::new_empty();
        for (t, vr, v) in fields {
            o.put(DataElement::new(*t, *vr, v.clone()));
        }
        let mut body = Vec::new();
        o.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .expect("encode command");
        let mut out = vec![0, 0, 0, 0, 4, 0, 0, 0];
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn store_command(&mut self, sop_class: &str, sop_instance: &str) -> (u16, Vec<u8>) {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let cmd = Self::command(&[
            (tags::AFFECTED_SOP_CLASS_UID, VR::UI, sop_class.into()),
            (tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(0x0001u16)),
            (tags::MESSAGE_ID, VR::US, PrimitiveValue::from(id)),
            (tags::PRIORITY, VR::US, PrimitiveValue::from(0u16)),
            (
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(0x0000u16),
            ),
            (tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, sop_instance.into()),
        ]);
        (id, cmd)
    }

    /// Encode the command PDU and the data PDUs of one instance into one buffer.
    fn encode_store(
        &mut self,
        pc: u8,
        sop_class: &str,
        sop_instance: &str,
        dataset: &[u8],
        last: bool,
    ) -> Vec<u8> {
        let (_, cmd) = self.store_command(sop_class, sop_instance);
        let mut out = Vec::with_capacity(dataset.len() + 1024);
        let cmd_pdu = Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: cmd,
            }],
        };
        encode_pdu(&cmd_pdu, &mut out).expect("encode");
        let chunk = (self.peer_max_pdu as usize).saturating_sub(6).max(16);
        let chunks: Vec<&[u8]> = if dataset.is_empty() {
            vec![&[][..]]
        } else {
            dataset.chunks(chunk).collect()
        };
        let n = chunks.len();
        for (i, c) in chunks.into_iter().enumerate() {
            let pdu = Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Data,
                    is_last: last && i + 1 == n,
                    data: c.to_vec(),
                }],
            };
            encode_pdu(&pdu, &mut out).expect("encode");
        }
        out
    }

    /// C-STORE one instance; returns (status, error comment).
    pub fn store(
        &mut self,
        pc: u8,
        sop_class: &str,
        sop_instance: &str,
        dataset: &[u8],
    ) -> io::Result<(u16, Option<String>)> {
        let buf = self.encode_store(pc, sop_class, sop_instance, dataset, true);
        self.stream.write_all(&buf)?;
        self.read_response()
    }

    /// Encode `obj` in Explicit VR Little Endian (the context's transfer syntax must be
    /// it) and C-STORE it as `sop_class` with its own SOP Instance UID; panics unless the
    /// answer is Success. `what` names it in the panic.
    pub fn store_object(&mut self, pc: u8, sop_class: &str, obj: &InMemDicomObject, what: &str) {
        use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
        let sop = obj
            .get(tags::SOP_INSTANCE_UID)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_owned())
            .unwrap_or_else(|| panic!("{what}: no SOP Instance UID"));
        let mut bytes = Vec::new();
        obj.write_dataset_with_ts(&mut bytes, &EXPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap_or_else(|e| panic!("{what}: encode: {e}"));
        let (status, comment) = self
            .store(pc, sop_class, &sop, &bytes)
            .unwrap_or_else(|e| panic!("{what}: C-STORE: {e}"));
        assert_eq!(status, 0, "C-STORE {what}: {comment:?}");
    }

    /// Send a command and only the first part of its data set (no last fragment).
    pub fn store_partial(
        &mut self,
        pc: u8,
        sop_class: &str,
        sop_instance: &str,
        partial: &[u8],
    ) -> io::Result<()> {
        let buf = self.encode_store(pc, sop_class, sop_instance, partial, false);
        self.stream.write_all(&buf)
    }

    pub fn echo(&mut self, pc: u8) -> io::Result<u16> {
        let r = self.request(pc, 0x0030, "1.2.840.10008.1.1", None, 0)?;
        Ok(r.map_or(0xFFFF, |r| r.status))
    }

    fn read_response(&mut self) -> io::Result<(u16, Option<String>)> {
        let r = self.read_response_command()?;
        Ok((r.status, r.comment))
    }

    fn read_response_command(&mut self) -> io::Result<Response> {
        let mut cmd = Vec::new();
        loop {
            match read_pdu(&mut self.stream)? {
                Pdu::PData { data } => {
                    for v in data {
                        cmd.extend_from_slice(&v.data);
                        if v.is_last && v.value_type == PDataValueType::Command {
                            let o = InMemDicomObject::read_dataset_with_ts(
                                &cmd[..],
                                &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
                            )
                            .map_err(io_err)?;
                            let int = |tag| -> io::Result<u16> {
                                o.element(tag)
                                    .map_err(io_err)?
                                    .to_int::<u16>()
                                    .map_err(io_err)
                            };
                            let comment = o
                                .element_opt(tags::ERROR_COMMENT)
                                .ok()
                                .flatten()
                                .and_then(|e| e.to_str().ok().map(|s| s.trim().to_owned()));
                            return Ok(Response {
                                command_field: int(tags::COMMAND_FIELD)?,
                                message_id_being_responded_to: int(
                                    tags::MESSAGE_ID_BEING_RESPONDED_TO,
                                )?,
                                status: int(tags::STATUS)?,
                                comment,
                            });
                        }
                    }
                }
                Pdu::AbortRQ { .. } => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "peer aborted",
                    ));
                }
                other => return Err(io_err(format!("unexpected {}", other.short_description()))),
            }
        }
    }

    /// Send any request command on `pc` (with a data set when `dataset` is given, in
    /// fragments of at most `fragment` bytes) and, unless it is a C-CANCEL, read the answer.
    pub fn request(
        &mut self,
        pc: u8,
        command_field: u16,
        sop_class: &str,
        dataset: Option<&[u8]>,
        fragment: usize,
    ) -> io::Result<Option<Response>> {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let class_tag = if matches!(command_field, 0x0110 | 0x0120 | 0x0130 | 0x0150) {
            tags::REQUESTED_SOP_CLASS_UID
        } else {
            tags::AFFECTED_SOP_CLASS_UID
        };
        let (id_tag, id_value) = if command_field == 0x0FFF {
            (tags::MESSAGE_ID_BEING_RESPONDED_TO, id.wrapping_sub(1))
        } else {
            (tags::MESSAGE_ID, id)
        };
        let cmd = Self::command(&[
            (class_tag, VR::UI, sop_class.into()),
            (
                tags::COMMAND_FIELD,
                VR::US,
                PrimitiveValue::from(command_field),
            ),
            (id_tag, VR::US, PrimitiveValue::from(id_value)),
            (
                tags::COMMAND_DATA_SET_TYPE,
                VR::US,
                PrimitiveValue::from(if dataset.is_some() { 0u16 } else { 0x0101 }),
            ),
        ]);
        let mut out = Vec::new();
        encode_pdu(
            &Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Command,
                    is_last: true,
                    data: cmd,
                }],
            },
            &mut out,
        )?;
        if let Some(ds) = dataset {
            let chunks: Vec<&[u8]> = ds.chunks(fragment.max(1)).collect();
            let n = chunks.len();
            for (i, c) in chunks.into_iter().enumerate() {
                encode_pdu(
                    &Pdu::PData {
                        data: vec![PDataValue {
                            presentation_context_id: pc,
                            value_type: PDataValueType::Data,
                            is_last: i + 1 == n,
                            data: c.to_vec(),
                        }],
                    },
                    &mut out,
                )?;
            }
        }
        self.stream.write_all(&out)?;
        if command_field == 0x0FFF {
            return Ok(None);
        }
        let r = self.read_response_command()?;
        if r.message_id_being_responded_to != id {
            return Err(io_err(format!(
                "answer to message {}, not {id}",
                r.message_id_being_responded_to
            )));
        }
        Ok(Some(r))
    }

    pub fn release(mut self) -> io::Result<()> {
        let mut out = Vec::new();
        encode_pdu(&Pdu::ReleaseRQ, &mut out)?;
        self.stream.write_all(&out)?;
        match read_pdu(&mut self.stream)? {
            Pdu::ReleaseRP => Ok(()),
            other => Err(io_err(format!(
                "expected A-RELEASE-RP, got {}",
                other.short_description()
            ))),
        }
    }

    pub fn abort(mut self) {
        let mut out = Vec::new();
        if encode_pdu(
            &Pdu::AbortRQ {
                source: AbortRQSource::ServiceUser,
            },
            &mut out,
        )
        .is_ok()
        {
            let _ = self.stream.write_all(&out);
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// Drop the TCP connection without any PDU (a cable pulled out).
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// A DIMSE response command, as far as tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub command_field: u16,
    pub message_id_being_responded_to: u16,
    pub status: u16,
    pub comment: Option<String>,
}

pub fn ct_context() -> (String, Vec<String>) {
    (
        dicom_dictionary_std::uids::CT_IMAGE_STORAGE.to_owned(),
        vec![
            dicom_dictionary_std::uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
            dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned(),
        ],
    )
}

pub fn verification_context() -> (String, Vec<String>) {
    (
        "1.2.840.10008.1.1".to_owned(),
        vec![dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned()],
    )
}
