//! DICOM Part 10 file meta information: building it for instances received over DIMSE
//! (which carry no meta) and reading it from files, with the offset where the data set
//! starts (so that "the dataset" can be hashed and compared byte for byte).

use dicom_object::meta::{FileMetaTable, FileMetaTableBuilder};
use std::io::Read;

/// dxhub's implementation class UID (2.25 form, derived from a random UUID once).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.136589714826316547891093512370968224971";
/// dxhub's implementation version name (≤ 16 chars).
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("DXHUB_", env!("CARGO_PKG_VERSION"));

pub(crate) const PREAMBLE_LEN: u64 = 128;
const MAGIC: &[u8; 4] = b"DICM";
/// (0002,0000) UL element: tag 4 + VR 2 + length 2 + value 4.
const GROUP_LENGTH_ELEMENT_LEN: u64 = 12;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("not a DICOM Part 10 file (no DICM prefix at offset 128)")]
    NotPart10,
    #[error("unreadable file meta information: {0}")]
    Invalid(String),
    #[error("I/O error reading file meta: {0}")]
    Io(#[from] std::io::Error),
}

/// The parts of a file meta group dxhub relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub transfer_syntax_uid: String,
    pub media_storage_sop_class_uid: String,
    pub media_storage_sop_instance_uid: String,
    /// Offset of the first byte of the data set (after preamble, magic and meta group).
    pub dataset_offset: u64,
}

/// Build a complete Part 10 header (preamble, `DICM`, meta group) for a data set received
/// over the network. Deterministic: the same inputs give the same bytes, so re-sends of an
/// identical data set give an identical object.
pub fn build_file_meta(
    transfer_syntax: &str,
    sop_class_uid: &str,
    sop_instance_uid: &str,
) -> Result<Vec<u8>, MetaError> {
    let table = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| MetaError::Invalid(e.to_string()))?;
    let mut out = vec![0u8; PREAMBLE_LEN as usize];
    out.extend_from_slice(MAGIC);
    table
        .write(&mut out)
        .map_err(|e| MetaError::Invalid(e.to_string()))?;
    Ok(out)
}

/// Read the file meta of a Part 10 file from its first byte (preamble included).
pub fn read_file_meta(mut reader: impl Read) -> Result<FileMeta, MetaError> {
    let mut preamble = [0u8; PREAMBLE_LEN as usize];
    reader.read_exact(&mut preamble).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            MetaError::NotPart10
        } else {
            MetaError::Io(e)
        }
    })?;
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|_| MetaError::NotPart10)?;
    if &magic != MAGIC {
        return Err(MetaError::NotPart10);
    }
    let chained = std::io::Cursor::new(*MAGIC).chain(reader);
    let table =
        FileMetaTable::from_reader(chained).map_err(|e| MetaError::Invalid(e.to_string()))?;
    Ok(FileMeta {
        transfer_syntax_uid: table.transfer_syntax().to_owned(),
        media_storage_sop_class_uid: table.media_storage_sop_class_uid().to_owned(),
        media_storage_sop_instance_uid: table.media_storage_sop_instance_uid().to_owned(),
        dataset_offset: PREAMBLE_LEN
            + MAGIC.len() as u64
            + GROUP_LENGTH_ELEMENT_LEN
            + u64::from(table.information_group_length),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_meta_reads_back_with_exact_offset() {
        let bytes = build_file_meta(
            "1.2.840.10008.1.2.4.50",
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4.5",
        )
        .unwrap();
        let mut file = bytes.clone();
        file.extend_from_slice(b"\x08\x00\x16\x00");
        let meta = read_file_meta(&file[..]).unwrap();
        assert_eq!(meta.transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
        assert_eq!(meta.media_storage_sop_instance_uid, "1.2.3.4.5");
        assert_eq!(meta.dataset_offset as usize, bytes.len());
        // deterministic
        assert_eq!(
            bytes,
            build_file_meta(
                "1.2.840.10008.1.2.4.50",
                "1.2.840.10008.5.1.4.1.1.2",
                "1.2.3.4.5"
            )
            .unwrap()
        );
    }

    #[test]
    fn rejects_non_part10() {
        assert!(matches!(
            read_file_meta(&[0u8; 10][..]),
            Err(MetaError::NotPart10)
        ));
        assert!(matches!(
            read_file_meta(&[0u8; 200][..]),
            Err(MetaError::NotPart10)
        ));
    }
}
