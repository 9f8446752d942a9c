//! DIMSE command sets (PS3.7 §9.3, §E): always Implicit VR Little Endian, group 0000.

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;
pub const C_CANCEL_RQ: u16 = 0x0FFF;
pub const NO_DATA_SET: u16 = 0x0101;
/// The bit that makes a command field a response (PS3.7 E.1).
pub const RESPONSE_BIT: u16 = 0x8000;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("cannot parse command set: {0}")]
    Parse(String),
    #[error("command set lacks {0}")]
    Missing(&'static str),
}

/// The fields of a request command dxhub looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command_field: u16,
    pub message_id: u16,
    pub affected_sop_class_uid: Option<String>,
    pub affected_sop_instance_uid: Option<String>,
    /// N-SET, N-ACTION, N-GET and N-DELETE name their class and instance here instead.
    pub requested_sop_class_uid: Option<String>,
    pub requested_sop_instance_uid: Option<String>,
    pub has_data_set: bool,
}

fn str_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let s = e.to_str().ok()?;
    let s = s.trim_end_matches(['\0', ' ']).trim_start().to_owned();
    (!s.is_empty()).then_some(s)
}

pub fn parse_request(bytes: &[u8]) -> Result<Request, CommandError> {
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &ts)
        .map_err(|e| CommandError::Parse(e.to_string()))?;
    let u16_of = |tag: Tag, name: &'static str| -> Result<u16, CommandError> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u16>().ok())
            .ok_or(CommandError::Missing(name))
    };
    let command_field = u16_of(tags::COMMAND_FIELD, "CommandField")?;
    // a C-CANCEL names the request it cancels instead of having an ID of its own
    let message_id = if command_field == C_CANCEL_RQ {
        u16_of(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            "MessageIDBeingRespondedTo",
        )?
    } else {
        u16_of(tags::MESSAGE_ID, "MessageID")?
    };
    Ok(Request {
        command_field,
        message_id,
        affected_sop_class_uid: str_of(&obj, tags::AFFECTED_SOP_CLASS_UID),
        affected_sop_instance_uid: str_of(&obj, tags::AFFECTED_SOP_INSTANCE_UID),
        requested_sop_class_uid: str_of(&obj, tags::REQUESTED_SOP_CLASS_UID),
        requested_sop_instance_uid: str_of(&obj, tags::REQUESTED_SOP_INSTANCE_UID),
        has_data_set: u16_of(tags::COMMAND_DATA_SET_TYPE, "CommandDataSetType")? != NO_DATA_SET,
    })
}

/// Encode a response command set (with its Command Group Length).
pub fn response(
    command_field: u16,
    message_id_being_responded_to: u16,
    affected_sop_class_uid: &str,
    affected_sop_instance_uid: Option<&str>,
    status: u16,
    error_comment: Option<&str>,
) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(affected_sop_class_uid),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(command_field),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(message_id_being_responded_to),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATA_SET),
    ));
    obj.put(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    if let Some(c) = error_comment {
        // LO: at most 64 characters of the default repertoire
        let c: String = c
            .chars()
            // (a backslash would make it two values)
            .filter(|c| c.is_ascii() && !c.is_ascii_control() && *c != '\\')
            .take(64)
            .collect();
        obj.put(DataElement::new(
            tags::ERROR_COMMENT,
            VR::LO,
            PrimitiveValue::from(c),
        ));
    }
    if let Some(uid) = affected_sop_instance_uid {
        obj.put(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(uid),
        ));
    }
    let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::with_capacity(256);
    // writing an in-memory command set to a Vec cannot fail
    if let Err(e) = obj.write_dataset_with_ts(&mut body, &ts) {
        tracing::error!(error = %e, "encoding a DIMSE response failed");
    }
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_round_trips_with_group_length() {
        let bytes = response(
            C_STORE_RSP,
            7,
            "1.2.840.10008.5.1.4.1.1.2",
            Some("1.2.3"),
            0xA900,
            Some("mismatch"),
        );
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!(len, bytes.len() - 12);
        let ts = IMPLICIT_VR_LITTLE_ENDIAN.erased();
        let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], &ts).unwrap();
        assert_eq!(
            obj.element(tags::STATUS).unwrap().to_int::<u16>().unwrap(),
            0xA900
        );
        assert_eq!(
            obj.element(tags::MESSAGE_ID_BEING_RESPONDED_TO)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            7
        );
        assert_eq!(
            obj.element(tags::COMMAND_FIELD)
                .unwrap()
                .to_int::<u16>()
                .unwrap(),
            C_STORE_RSP
        );
    }
}
