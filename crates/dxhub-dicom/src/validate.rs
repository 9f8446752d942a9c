//! Structural check of a whole data set without loading its values: every element header
//! is read and every value skipped by its length, recursing into sequences and items of
//! undefined length, so that a data set cut short (a truncated Pixel Data value, a length
//! running past the end) is refused instead of stored. Attribute extraction reads only up
//! to Pixel Data; this pass covers the rest at the cost of a sequential read of headers.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StructureError {
    #[error("data set truncated: {0}")]
    Truncated(String),
    #[error("malformed data set: {0}")]
    Malformed(String),
}

#[derive(Clone, Copy)]
struct Syntax {
    explicit: bool,
    big_endian: bool,
}

struct Walker<R> {
    r: R,
    pos: u64,
    end: u64,
}

const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_DELIM: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_DELIM: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: usize = 64;

impl<R: Read + Seek> Walker<R> {
    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), StructureError> {
        if self.pos + buf.len() as u64 > self.end {
            return Err(StructureError::Truncated(format!(
                "{what} at offset {} runs past the end",
                self.pos
            )));
        }
        self.r
            .read_exact(buf)
            .map_err(|e| StructureError::Truncated(format!("{what}: {e}")))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip_bytes(&mut self, n: u64, what: &str) -> Result<(), StructureError> {
        if self.pos + n > self.end {
            return Err(StructureError::Truncated(format!(
                "{what} of {n} bytes at offset {} runs past the end of the data set ({} bytes left)",
                self.pos,
                self.end - self.pos
            )));
        }
        let n =
            i64::try_from(n).map_err(|_| StructureError::Malformed("length overflow".into()))?;
        self.r
            .seek_relative(n)
            .map_err(|e| StructureError::Truncated(e.to_string()))?;
        self.pos += n as u64;
        Ok(())
    }

    fn u16(b: [u8; 2], s: Syntax) -> u16 {
        if s.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(b: [u8; 4], s: Syntax) -> u32 {
        if s.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn tag(&mut self, s: Syntax) -> Result<(u16, u16), StructureError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, "element tag")?;
        Ok((Self::u16([b[0], b[1]], s), Self::u16([b[2], b[3]], s)))
    }

    fn len32(&mut self, s: Syntax) -> Result<u32, StructureError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, "length")?;
        Ok(Self::u32(b, s))
    }

    /// Elements until the end (`until` = None) or until the given delimiter.
    fn dataset(
        &mut self,
        s: Syntax,
        until: Option<(u16, u16)>,
        depth: usize,
    ) -> Result<(), StructureError> {
        if depth > MAX_DEPTH {
            return Err(StructureError::Malformed(
                "sequences nested too deeply".into(),
            ));
        }
        loop {
            if until.is_none() && self.pos == self.end {
                return Ok(());
            }
            let tag = self.tag(s)?;
            if Some(tag) == until {
                let _ = self.len32(s)?;
                return Ok(());
            }
            if tag.0 == 0xFFFE {
                return Err(StructureError::Malformed(format!(
                    "unexpected delimiter ({:04X},{:04X}) at offset {}",
                    tag.0,
                    tag.1,
                    self.pos - 4
                )));
            }
            let (vr, len) = if s.explicit {
                let mut vr = [0u8; 2];
                self.read_exact(&mut vr, "VR")?;
                let long = matches!(
                    &vr,
                    b"OB"
                        | b"OD"
                        | b"OF"
                        | b"OL"
                        | b"OV"
                        | b"OW"
                        | b"SQ"
                        | b"SV"
                        | b"UC"
                        | b"UN"
                        | b"UR"
                        | b"UT"
                        | b"UV"
                );
                let len = if long {
                    self.skip_bytes(2, "reserved bytes")?;
                    self.len32(s)?
                } else {
                    let mut b = [0u8; 2];
                    self.read_exact(&mut b, "length")?;
                    u32::from(Self::u16(b, s))
                };
                (Some(vr), len)
            } else {
                (None, self.len32(s)?)
            };
            if len == UNDEFINED {
                let is_pixel = tag == (0x7FE0, 0x0010);
                // an explicit UN of undefined length holds an implicit VR LE sequence
                let inner = if vr.as_ref() == Some(b"UN") {
                    Syntax {
                        explicit: false,
                        big_endian: false,
                    }
                } else {
                    s
                };
                self.sequence(inner, is_pixel, depth + 1)?;
            } else {
                self.skip_bytes(
                    u64::from(len),
                    &format!("value of ({:04X},{:04X})", tag.0, tag.1),
                )?;
            }
        }
    }

    /// Items until the sequence delimiter. Encapsulated pixel data items are opaque.
    fn sequence(
        &mut self,
        s: Syntax,
        encapsulated: bool,
        depth: usize,
    ) -> Result<(), StructureError> {
        loop {
            let tag = self.tag(s)?;
            let len = self.len32(s)?;
            if tag == SEQ_DELIM {
                return Ok(());
            }
            if tag != ITEM {
                return Err(StructureError::Malformed(format!(
                    "expected an item, found ({:04X},{:04X}) at offset {}",
                    tag.0,
                    tag.1,
                    self.pos - 8
                )));
            }
            if len == UNDEFINED {
                if encapsulated {
                    return Err(StructureError::Malformed(
                        "encapsulated fragment of undefined length".into(),
                    ));
                }
                self.dataset(s, Some(ITEM_DELIM), depth + 1)?;
            } else {
                self.skip_bytes(u64::from(len), "item")?;
            }
        }
    }
}

/// Check the structure of the data set of a Part 10 file, starting at `dataset_offset`,
/// encoded in `transfer_syntax`. Deflated data sets are not walked (they were inflated
/// and parsed up to Pixel Data by the extraction already).
pub fn check_structure(
    path: &Path,
    dataset_offset: u64,
    transfer_syntax: &str,
) -> Result<(), StructureError> {
    let io = |e: std::io::Error| StructureError::Truncated(e.to_string());
    let mut f = File::open(path).map_err(io)?;
    let end = f.metadata().map_err(io)?.len();
    f.seek(std::io::SeekFrom::Start(dataset_offset))
        .map_err(io)?;
    let r = BufReader::with_capacity(64 * 1024, f);
    walk(r, dataset_offset, end, transfer_syntax)
}

/// As [`check_structure`], for a Part 10 object in memory.
pub fn check_structure_bytes(
    bytes: &[u8],
    dataset_offset: u64,
    transfer_syntax: &str,
) -> Result<(), StructureError> {
    let mut r = std::io::Cursor::new(bytes);
    r.set_position(dataset_offset);
    walk(r, dataset_offset, bytes.len() as u64, transfer_syntax)
}

/// Walk the data set from `pos` (where `r` stands) to `end`.
fn walk<R: Read + Seek>(
    r: R,
    pos: u64,
    end: u64,
    transfer_syntax: &str,
) -> Result<(), StructureError> {
    if transfer_syntax == crate::ts::DEFLATED_EXPLICIT_VR_LE {
        return Ok(());
    }
    let s = Syntax {
        explicit: transfer_syntax != crate::ts::IMPLICIT_VR_LE,
        big_endian: transfer_syntax == crate::ts::EXPLICIT_VR_BE,
    };
    Walker { r, pos, end }.dataset(s, None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The file check and the in-memory check agree on every input.
    fn both(f: &tempfile::NamedTempFile, offset: u64, ts: &str) -> Result<(), StructureError> {
        let on_disk = check_structure(f.path(), offset, ts);
        let bytes = std::fs::read(f.path()).unwrap();
        assert_eq!(check_structure_bytes(&bytes, offset, ts), on_disk);
        on_disk
    }

    fn file_with(dataset: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(dataset).unwrap();
        f
    }

    fn el(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.0.to_le_bytes());
        v.extend_from_slice(&tag.1.to_le_bytes());
        v.extend_from_slice(vr);
        if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        v.extend_from_slice(value);
        v
    }

    #[test]
    fn accepts_complete_and_refuses_truncated() {
        let mut ds = el((0x0008, 0x0060), b"CS", b"CT");
        // a sequence of undefined length with one item of undefined length
        ds.extend_from_slice(&[
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend(el((0x0008, 0x1150), b"UI", b"1.2\0"));
        ds.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        // encapsulated pixel data: offset table + one fragment
        ds.extend_from_slice(&[
            0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 4, 0, 0, 0, 1, 2, 3, 4]);
        ds.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let f = file_with(&ds);
        assert_eq!(both(&f, 0, "1.2.840.10008.1.2.4.50"), Ok(()));

        for cut in [ds.len() - 1, ds.len() - 9, 20, 3] {
            let f = file_with(&ds[..cut]);
            assert!(
                both(&f, 0, "1.2.840.10008.1.2.4.50").is_err(),
                "cut at {cut}"
            );
        }

        let mut native = el((0x0028, 0x0010), b"US", &[4, 0]);
        native.extend(el((0x7FE0, 0x0010), b"OW", &[0u8; 32]));
        let f = file_with(&native);
        assert_eq!(both(&f, 0, "1.2.840.10008.1.2.1"), Ok(()));
        let f = file_with(&native[..native.len() - 16]);
        assert!(matches!(
            both(&f, 0, "1.2.840.10008.1.2.1"),
            Err(StructureError::Truncated(_))
        ));
    }
}
