//! Pixel data services for WADO-RS: where each frame lives in a stored Part 10 file, a
//! frame's original bytes, a frame decoded to native form, and the whole file transcoded
//! to Explicit VR Little Endian.
//!
//! Frame locations come from a small walk over the data set written here (the parser of
//! dicom-object does not report byte offsets); decoding goes through dicom-pixeldata.

use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, OpenFileOptions, file::ReadPreamble};
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation, Rescale,
    Transcode, VoiLutFunction, WindowLevel,
};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use std::io::Read;
use std::ops::Range;

use crate::ts::{DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_BE, EXPLICIT_VR_LE, IMPLICIT_VR_LE};

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error("the instance has no pixel data")]
    NoPixelData,
    #[error("frame {0} out of range (1..={1})")]
    FrameOutOfRange(u32, u32),
    /// The pixel data cannot be decoded (or located) for this transfer syntax or pixel
    /// layout: HTTP 406 for a WADO-RS request asking for it.
    #[error("cannot decode transfer syntax {0}")]
    Unsupported(String),
    /// The file or its pixel data is malformed.
    #[error("malformed pixel data: {0}")]
    Invalid(String),
}

/// Where each frame's bytes live inside the Part 10 file, as stored (no decoding):
/// encapsulated: the fragment value ranges of each frame (Basic or Extended Offset Table,
/// or one fragment per frame, or all fragments = 1 frame when Number of Frames is 1, or
/// frame starts found from the codestream markers of JPEG, JPEG-LS and JPEG 2000);
/// native: one range per frame (rows × columns × samples × bits allocated / 8).
///
/// Deflated files have no addressable frames ([`PixelError::Unsupported`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameIndex {
    pub transfer_syntax_uid: String,
    pub encapsulated: bool,
    pub frames: Vec<Vec<Range<u64>>>,
}

/// The image attributes of the data set that the pixel services need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Layout {
    rows: u32,
    columns: u32,
    samples_per_pixel: u32,
    bits_allocated: u32,
    planar_configuration: u32,
    number_of_frames: u32,
    photometric_interpretation: String,
}

impl Layout {
    /// Bits of one native frame. Native YBR_FULL_422 carries two samples per pixel on
    /// average (Y Y Cb Cr for each pair of pixels, PS3.3 C.7.6.3.1.2).
    fn frame_bits(&self) -> u64 {
        let samples = if self.is_native_422() {
            2
        } else {
            u64::from(self.samples_per_pixel)
        };
        u64::from(self.rows) * u64::from(self.columns) * samples * u64::from(self.bits_allocated)
    }
    fn is_native_422(&self) -> bool {
        self.samples_per_pixel == 3 && self.photometric_interpretation == "YBR_FULL_422"
    }
}

/// The Pixel Data element found at the top level of the data set.
#[derive(Debug, Clone)]
struct PixelDataElement {
    vr: Option<[u8; 2]>,
    /// Offset of the first value byte.
    value_start: usize,
    /// `None` for undefined length (encapsulated).
    length: Option<usize>,
}

struct Parsed {
    layout: Layout,
    pixel: PixelDataElement,
    extended_offsets: Option<Vec<u64>>,
    big_endian: bool,
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);

fn invalid(what: impl Into<String>) -> PixelError {
    PixelError::Invalid(what.into())
}

#[derive(Clone, Copy)]
struct Walker<'a> {
    buf: &'a [u8],
    explicit: bool,
    big: bool,
}

struct Header {
    tag: (u16, u16),
    vr: Option<[u8; 2]>,
    length: u32,
    value_start: usize,
}

impl Walker<'_> {
    fn bytes(&self, at: usize, n: usize) -> Result<&[u8], PixelError> {
        self.buf
            .get(
                at..at
                    .checked_add(n)
                    .ok_or_else(|| invalid("offset overflow"))?,
            )
            .ok_or_else(|| invalid("unexpected end of data set"))
    }
    fn u16_at(&self, at: usize) -> Result<u16, PixelError> {
        let b: [u8; 2] = self
            .bytes(at, 2)?
            .try_into()
            .map_err(|_| invalid("short read"))?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32_at(&self, at: usize) -> Result<u32, PixelError> {
        let b: [u8; 4] = self
            .bytes(at, 4)?
            .try_into()
            .map_err(|_| invalid("short read"))?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn header(&self, at: usize) -> Result<Header, PixelError> {
        let tag = (self.u16_at(at)?, self.u16_at(at + 2)?);
        if tag.0 == 0xFFFE || !self.explicit {
            return Ok(Header {
                tag,
                vr: None,
                length: self.u32_at(at + 4)?,
                value_start: at + 8,
            });
        }
        let vr: [u8; 2] = self
            .bytes(at + 4, 2)?
            .try_into()
            .map_err(|_| invalid("short read"))?;
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
        if long {
            Ok(Header {
                tag,
                vr: Some(vr),
                length: self.u32_at(at + 8)?,
                value_start: at + 12,
            })
        } else {
            Ok(Header {
                tag,
                vr: Some(vr),
                length: u32::from(self.u16_at(at + 6)?),
                value_start: at + 8,
            })
        }
    }

    /// Skip the value of an element of undefined length starting at `at`; returns the
    /// offset after its Sequence Delimitation Item. Items of undefined length hold data
    /// sets; items of defined length (sequence items or encapsulated fragments) are
    /// skipped whole.
    fn skip_undefined(&self, mut at: usize, depth: u32) -> Result<usize, PixelError> {
        if depth > 64 {
            return Err(invalid("sequences nested too deep"));
        }
        loop {
            let h = self.header(at)?;
            match h.tag {
                SEQ_END => return Ok(h.value_start),
                ITEM if h.length == UNDEFINED => {
                    at = self.skip_dataset(h.value_start, depth + 1)?;
                }
                ITEM => at = advance(h.value_start, h.length)?,
                _ => return Err(invalid("expected an item in a sequence")),
            }
        }
    }

    /// Skip a nested data set up to and including its Item Delimitation Item.
    fn skip_dataset(&self, mut at: usize, depth: u32) -> Result<usize, PixelError> {
        loop {
            let h = self.header(at)?;
            if h.tag == ITEM_END {
                return Ok(h.value_start);
            }
            at = self.skip_value(&h, depth)?;
        }
    }

    fn skip_value(&self, h: &Header, depth: u32) -> Result<usize, PixelError> {
        if h.length != UNDEFINED {
            return advance(h.value_start, h.length);
        }
        // UN of undefined length holds Implicit VR Little Endian (PS3.5 6.2.2)
        let inner = if h.vr == Some(*b"UN") {
            Walker {
                explicit: false,
                big: false,
                ..*self
            }
        } else {
            *self
        };
        inner.skip_undefined(h.value_start, depth)
    }
}

fn advance(at: usize, len: u32) -> Result<usize, PixelError> {
    at.checked_add(len as usize)
        .ok_or_else(|| invalid("length overflow"))
}

fn to_uint(w: &Walker<'_>, h: &Header) -> Result<u32, PixelError> {
    match (h.vr.as_ref(), h.length) {
        (Some(b"IS"), _) | (Some(b"DS"), _) => text_uint(w, h),
        (_, 2) => Ok(u32::from(w.u16_at(h.value_start)?)),
        (_, 4) => w.u32_at(h.value_start),
        (None, _) => text_uint(w, h),
        _ => Err(invalid(format!(
            "unexpected value length {} for ({:04X},{:04X})",
            h.length, h.tag.0, h.tag.1
        ))),
    }
}

fn text_uint(w: &Walker<'_>, h: &Header) -> Result<u32, PixelError> {
    let raw = w.bytes(h.value_start, h.length as usize)?;
    let s = String::from_utf8_lossy(raw);
    let first = s.split('\\').next().unwrap_or_default();
    first
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .parse::<u32>()
        .map_err(|_| {
            invalid(format!(
                "({:04X},{:04X}) is not a number: {s:?}",
                h.tag.0, h.tag.1
            ))
        })
}

/// Split a stored file into its transfer syntax and the data set bytes (inflated for
/// Deflated Explicit VR Little Endian).
fn dataset(file: &[u8]) -> Result<(String, usize, Option<Vec<u8>>), PixelError> {
    let meta = crate::meta::read_file_meta(file).map_err(|e| invalid(e.to_string()))?;
    let offset = usize::try_from(meta.dataset_offset).map_err(|_| invalid("offset"))?;
    if offset > file.len() {
        return Err(invalid("file meta longer than the file"));
    }
    if meta.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LE {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&file[offset..])
            .read_to_end(&mut out)
            .map_err(|e| invalid(format!("cannot inflate the data set: {e}")))?;
        return Ok((meta.transfer_syntax_uid, 0, Some(out)));
    }
    Ok((meta.transfer_syntax_uid, offset, None))
}

/// Walk the top level of the data set in `buf` from `start` up to Pixel Data.
fn parse(buf: &[u8], start: usize, ts: &str) -> Result<Parsed, PixelError> {
    let explicit = ts != IMPLICIT_VR_LE;
    let big = ts == EXPLICIT_VR_BE;
    let w = Walker { buf, explicit, big };
    let mut layout = Layout {
        samples_per_pixel: 1,
        number_of_frames: 1,
        ..Layout::default()
    };
    let mut extended_offsets = None;
    let mut at = start;
    while at < buf.len() {
        let h = w.header(at)?;
        let tag = h.tag;
        match (tag.0, tag.1) {
            (0x0028, 0x0002) => layout.samples_per_pixel = to_uint(&w, &h)?,
            (0x0028, 0x0004) => {
                let raw = w.bytes(h.value_start, h.length as usize)?;
                layout.photometric_interpretation = String::from_utf8_lossy(raw)
                    .trim_matches(|c: char| c == ' ' || c == '\0')
                    .to_owned();
            }
            (0x0028, 0x0006) => layout.planar_configuration = to_uint(&w, &h)?,
            (0x0028, 0x0008) => {
                layout.number_of_frames = if h.length == 0 {
                    1
                } else {
                    text_uint(&w, &h)?.max(1)
                }
            }
            (0x0028, 0x0010) => layout.rows = to_uint(&w, &h)?,
            (0x0028, 0x0011) => layout.columns = to_uint(&w, &h)?,
            (0x0028, 0x0100) => layout.bits_allocated = to_uint(&w, &h)?,
            (0x7FE0, 0x0001) if h.length != UNDEFINED => {
                let raw = w.bytes(h.value_start, h.length as usize)?;
                extended_offsets = Some(
                    raw.chunks_exact(8)
                        .map(|c| {
                            let b: [u8; 8] = c.try_into().unwrap_or_default();
                            if big {
                                u64::from_be_bytes(b)
                            } else {
                                u64::from_le_bytes(b)
                            }
                        })
                        .collect(),
                );
            }
            (0x7FE0, 0x0010) => {
                return Ok(Parsed {
                    layout,
                    pixel: PixelDataElement {
                        vr: h.vr,
                        value_start: h.value_start,
                        length: (h.length != UNDEFINED).then_some(h.length as usize),
                    },
                    extended_offsets,
                    big_endian: big,
                });
            }
            _ => {}
        }
        if tag.0 > 0x7FE0 {
            break;
        }
        at = w.skip_value(&h, 0)?;
    }
    Err(PixelError::NoPixelData)
}

/// The value ranges (relative to `buf`) of the fragments of encapsulated pixel data and
/// the offset of each fragment's item tag relative to the first fragment's item tag.
struct Fragments {
    basic_offsets: Vec<u64>,
    ranges: Vec<Range<usize>>,
    item_offsets: Vec<u64>,
}

fn fragments(buf: &[u8], value_start: usize) -> Result<Fragments, PixelError> {
    // encapsulated pixel data only exists in little-endian transfer syntaxes
    let w = Walker {
        buf,
        explicit: true,
        big: false,
    };
    let bot = w.header(value_start)?;
    if bot.tag != ITEM || bot.length == UNDEFINED {
        return Err(invalid(
            "encapsulated pixel data does not start with an item",
        ));
    }
    let raw = w.bytes(bot.value_start, bot.length as usize)?;
    let basic_offsets = raw
        .chunks_exact(4)
        .map(|c| u64::from(u32::from_le_bytes(c.try_into().unwrap_or_default())))
        .collect();
    let first = advance(bot.value_start, bot.length)?;
    let mut at = first;
    let mut ranges = Vec::new();
    let mut item_offsets = Vec::new();
    // a file cut right after its last fragment (no Sequence Delimitation Item) is taken
    // as complete, as pydicom and dicom-object do
    while at < buf.len() {
        let h = w.header(at)?;
        match h.tag {
            SEQ_END => break,
            ITEM if h.length != UNDEFINED => {
                let end = advance(h.value_start, h.length)?;
                if end > buf.len() {
                    return Err(invalid("fragment runs past the end of the file"));
                }
                item_offsets.push((at - first) as u64);
                ranges.push(h.value_start..end);
                at = end;
            }
            _ => return Err(invalid("unexpected element in encapsulated pixel data")),
        }
    }
    Ok(Fragments {
        basic_offsets,
        ranges,
        item_offsets,
    })
}

/// Group fragments into frames by the item-tag offsets of each frame's first fragment.
fn group_by_offsets(f: &Fragments, offsets: &[u64]) -> Result<Vec<Vec<Range<usize>>>, PixelError> {
    let mut frames = Vec::with_capacity(offsets.len());
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(u64::MAX);
        if end <= start {
            return Err(invalid("offset table is not increasing"));
        }
        let frame: Vec<Range<usize>> = f
            .item_offsets
            .iter()
            .zip(&f.ranges)
            .filter(|(o, _)| **o >= start && **o < end)
            .map(|(_, r)| r.clone())
            .collect();
        if frame.is_empty() || !f.item_offsets.contains(&start) {
            return Err(invalid(format!(
                "offset table entry {start} does not point at a fragment"
            )));
        }
        frames.push(frame);
    }
    Ok(frames)
}

/// Whether a fragment starts a JPEG, JPEG-LS (SOI) or JPEG 2000 (SOC + SIZ, or a JP2
/// signature box) codestream.
fn starts_codestream(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        || bytes.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
        || bytes.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' '])
}

fn encapsulated_frames(buf: &[u8], p: &Parsed) -> Result<Vec<Vec<Range<usize>>>, PixelError> {
    let f = fragments(buf, p.pixel.value_start)?;
    let n = p.layout.number_of_frames as usize;
    if f.ranges.is_empty() {
        return Err(invalid("encapsulated pixel data has no fragments"));
    }
    let frames = if let Some(eot) = p.extended_offsets.as_deref().filter(|o| !o.is_empty()) {
        group_by_offsets(&f, eot)?
    } else if !f.basic_offsets.is_empty() {
        group_by_offsets(&f, &f.basic_offsets)?
    } else if n == 1 {
        vec![f.ranges.clone()]
    } else if f.ranges.len() == n {
        f.ranges.iter().map(|r| vec![r.clone()]).collect()
    } else {
        let mut frames: Vec<Vec<Range<usize>>> = Vec::new();
        for r in &f.ranges {
            match frames.last_mut() {
                Some(cur) if !starts_codestream(&buf[r.clone()]) => cur.push(r.clone()),
                _ => frames.push(vec![r.clone()]),
            }
        }
        frames
    };
    if frames.len() != n {
        return Err(invalid(format!(
            "found {} frames in the encapsulated pixel data, Number of Frames is {n}",
            frames.len()
        )));
    }
    Ok(frames)
}

/// Byte length of one native frame.
fn native_frame_len(l: &Layout) -> Result<usize, PixelError> {
    if l.rows == 0 || l.columns == 0 || l.bits_allocated == 0 {
        return Err(invalid("Rows, Columns or Bits Allocated missing or zero"));
    }
    let bits = l.frame_bits();
    if bits & 7 != 0 {
        if l.number_of_frames > 1 {
            return Err(PixelError::Unsupported(format!(
                "{} bit-packed frames that do not end on a byte boundary",
                l.number_of_frames
            )));
        }
        return usize::try_from(bits.div_ceil(8)).map_err(|_| invalid("frame too large"));
    }
    usize::try_from(bits / 8).map_err(|_| invalid("frame too large"))
}

fn native_frames(p: &Parsed, buf_len: usize) -> Result<Vec<Range<usize>>, PixelError> {
    let len = native_frame_len(&p.layout)?;
    let total = p.pixel.length.unwrap_or_default();
    let n = p.layout.number_of_frames as usize;
    let needed = len
        .checked_mul(n)
        .ok_or_else(|| invalid("pixel data too large"))?;
    if total < needed || p.pixel.value_start + needed > buf_len {
        return Err(invalid(format!(
            "Pixel Data holds {total} bytes, {n} frames of {len} bytes need {needed}"
        )));
    }
    Ok((0..n)
        .map(|i| p.pixel.value_start + i * len..p.pixel.value_start + (i + 1) * len)
        .collect())
}

fn is_encapsulated(p: &Parsed) -> bool {
    p.pixel.length.is_none()
}

/// Locate every frame of a stored Part 10 file.
pub fn frame_index(file: &[u8]) -> Result<FrameIndex, PixelError> {
    let (ts, start, inflated) = dataset(file)?;
    if inflated.is_some() {
        return Err(PixelError::Unsupported(format!(
            "{ts} (deflated: frames are not addressable in the stored file)"
        )));
    }
    let p = parse(file, start, &ts)?;
    let to_u64 = |r: &Range<usize>| r.start as u64..r.end as u64;
    let frames = if is_encapsulated(&p) {
        encapsulated_frames(file, &p)?
            .iter()
            .map(|f| f.iter().map(to_u64).collect())
            .collect()
    } else {
        native_frames(&p, file.len())?
            .iter()
            .map(|r| vec![to_u64(r)])
            .collect()
    };
    Ok(FrameIndex {
        transfer_syntax_uid: ts,
        encapsulated: is_encapsulated(&p),
        frames,
    })
}

/// The number of frames of the instance (Deflated files included).
pub fn frame_count(file: &[u8]) -> Result<u32, PixelError> {
    let (ts, start, inflated) = dataset(file)?;
    let buf = inflated.as_deref().unwrap_or(file);
    let p = parse(buf, start, &ts)?;
    let n = if is_encapsulated(&p) {
        encapsulated_frames(buf, &p)?.len()
    } else {
        native_frames(&p, buf.len())?.len()
    };
    u32::try_from(n).map_err(|_| invalid("too many frames"))
}

fn check_frame(frame: u32, n: usize) -> Result<usize, PixelError> {
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    if frame == 0 || frame > n32 {
        return Err(PixelError::FrameOutOfRange(frame, n32));
    }
    Ok(frame as usize - 1)
}

/// Bytes swapped per value when reading Big Endian pixel data: by the VR's word size,
/// and by the sample size for samples wider than a word (as pydicom reads them).
fn swap_unit(vr: Option<[u8; 2]>, bits_allocated: u32) -> usize {
    let word = match vr.as_ref() {
        Some(b"OB") => 1,
        Some(b"OL") | Some(b"OF") => 4,
        Some(b"OD") | Some(b"OV") => 8,
        _ => 2,
    };
    let sample = (bits_allocated / 8) as usize;
    if word == 1 { 1 } else { word.max(sample) }
}

fn swap_in_place(bytes: &mut [u8], unit: usize) {
    if unit > 1 {
        for c in bytes.chunks_exact_mut(unit) {
            c.reverse();
        }
    }
}

struct Native {
    bytes: Vec<u8>,
    layout: Layout,
}

/// A native frame's bytes, little endian.
fn native_frame(buf: &[u8], p: &Parsed, frame: u32) -> Result<Native, PixelError> {
    let frames = native_frames(p, buf.len())?;
    let r = frames[check_frame(frame, frames.len())?].clone();
    let mut bytes = buf[r].to_vec();
    if p.big_endian {
        swap_in_place(&mut bytes, swap_unit(p.pixel.vr, p.layout.bits_allocated));
    }
    Ok(Native {
        bytes,
        layout: p.layout.clone(),
    })
}

/// The frame's original bytes (concatenated fragments for encapsulated pixel data) and
/// the transfer syntax to label them with. Native frames are returned little endian and
/// labelled Explicit VR Little Endian, whatever the file's native transfer syntax.
pub fn original_frame(file: &[u8], frame: u32) -> Result<(Vec<u8>, String), PixelError> {
    let (ts, start, inflated) = dataset(file)?;
    let buf = inflated.as_deref().unwrap_or(file);
    let p = parse(buf, start, &ts)?;
    if is_encapsulated(&p) {
        let frames = encapsulated_frames(buf, &p)?;
        let i = check_frame(frame, frames.len())?;
        let mut out = Vec::with_capacity(frames[i].iter().map(|r| r.len()).sum());
        for r in &frames[i] {
            out.extend_from_slice(&buf[r.clone()]);
        }
        return Ok((out, ts));
    }
    let native = native_frame(buf, &p, frame)?;
    Ok((native.bytes, EXPLICIT_VR_LE.to_owned()))
}

/// Interleave the samples of a Planar Configuration 1 frame (`spp` planes).
fn interleave(planar: &[u8], spp: usize, sample_bytes: usize) -> Vec<u8> {
    let plane = planar.len() / spp;
    let pixels = plane / sample_bytes;
    let mut out = Vec::with_capacity(planar.len());
    for px in 0..pixels {
        for s in 0..spp {
            let at = s * plane + px * sample_bytes;
            out.extend_from_slice(&planar[at..at + sample_bytes]);
        }
    }
    out
}

/// Open a stored Part 10 file with dicom-object.
pub(crate) fn open(file: &[u8]) -> Result<DefaultDicomObject, PixelError> {
    let body = file
        .get(128..)
        .filter(|b| b.starts_with(b"DICM"))
        .ok_or_else(|| invalid("not a Part 10 file"))?;
    OpenFileOptions::new()
        .read_preamble(ReadPreamble::Never)
        .from_reader(body)
        .map_err(|e| invalid(e.to_string()))
}

/// Whether dicom-pixeldata can decode this transfer syntax.
fn check_decodable(ts: &str) -> Result<(), PixelError> {
    match TransferSyntaxRegistry.get(ts) {
        Some(t) if t.can_decode_all() => Ok(()),
        _ => Err(PixelError::Unsupported(ts.to_owned())),
    }
}

/// Native sample bytes to little endian (decoders hand them over in machine order).
fn ne_to_le(mut bytes: Vec<u8>, bits_allocated: u32) -> Vec<u8> {
    if cfg!(target_endian = "big") {
        swap_in_place(&mut bytes, (bits_allocated / 8) as usize);
    }
    bytes
}

/// What rendering needs to know about a decoded frame, as dicom-pixeldata reports it
/// (per-frame functional groups included).
pub(crate) struct FrameMeta {
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    /// After decoding: colour decoded from an encapsulated syntax is RGB.
    pub photometric: PhotometricInterpretation,
    pub rescale: Rescale,
    pub window: Option<WindowLevel>,
    pub voi_lut_function: VoiLutFunction,
    /// For PALETTE COLOR: the red, green and blue LUTs.
    pub palette: Option<Palette>,
}

/// A PALETTE COLOR lookup table (PS3.3 C.7.6.3.1.5), entries narrowed to 8 bits.
pub(crate) struct Palette {
    pub first_mapped: i64,
    pub red: Vec<u8>,
    pub green: Vec<u8>,
    pub blue: Vec<u8>,
}

/// The palette of a PALETTE COLOR image; `None` when it has none that can be read
/// (segmented palettes are not supported).
fn palette_from_obj(obj: &DefaultDicomObject, signed: bool) -> Option<Palette> {
    let lut = |descriptor, data| -> Option<(i64, Vec<u8>)> {
        let d: Vec<i64> = obj.element(descriptor).ok()?.to_multi_int::<i64>().ok()?;
        let (entries, first, bits) = (*d.first()?, *d.get(1)?, *d.get(2)?);
        let entries = if entries <= 0 {
            65536
        } else {
            entries as usize
        };
        let first = if signed && first > 0x7FFF {
            first - 0x1_0000
        } else {
            first
        };
        let e = obj.element(data).ok()?;
        let words: Vec<u16> = match e.value().primitive()? {
            dicom_core::PrimitiveValue::U8(b) => b.iter().map(|&v| u16::from(v)).collect(),
            other => other.to_multi_int::<u16>().ok()?,
        };
        let values: Vec<u8> = if bits <= 8 && words.len() * 2 == entries {
            // 8-bit entries packed two to a word, first entry in the low byte
            words
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect::<Vec<u8>>()
        } else if words.len() >= entries {
            words[..entries]
                .iter()
                .map(|&w| {
                    if bits > 8 {
                        (w >> 8) as u8
                    } else {
                        (w & 0xFF) as u8
                    }
                })
                .collect()
        } else {
            return None;
        };
        Some((first, values))
    };
    let (first_mapped, red) = lut(
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, green) = lut(
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    let (_, blue) = lut(
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
    )?;
    (!red.is_empty() && red.len() == green.len() && red.len() == blue.len()).then_some(Palette {
        first_mapped,
        red,
        green,
        blue,
    })
}

fn with_palette(meta: Option<FrameMeta>, obj: &DefaultDicomObject) -> Option<FrameMeta> {
    meta.map(|mut m| {
        if m.photometric == PhotometricInterpretation::PaletteColor {
            m.palette = palette_from_obj(obj, m.signed);
        }
        m
    })
}

fn frame_meta(d: &DecodedPixelData<'_>) -> Result<FrameMeta, PixelError> {
    let bad = |e: dicom_pixeldata::Error| invalid(e.to_string());
    Ok(FrameMeta {
        rows: d.rows(),
        columns: d.columns(),
        samples_per_pixel: d.samples_per_pixel(),
        bits_allocated: d.bits_allocated(),
        bits_stored: d.bits_stored(),
        signed: d.pixel_representation() == PixelRepresentation::Signed,
        photometric: d.photometric_interpretation().clone(),
        rescale: d
            .rescale()
            .map_err(bad)?
            .first()
            .copied()
            .unwrap_or(Rescale {
                slope: 1.0,
                intercept: 0.0,
            }),
        window: d.window().map_err(bad)?.and_then(|w| w.first().copied()),
        voi_lut_function: d
            .voi_lut_function()
            .map_err(bad)?
            .and_then(|f| f.first().copied())
            .unwrap_or_default(),
        palette: None,
    })
}

/// Decode one frame (1-based) to the bytes [`decoded_frame`] returns, and when asked,
/// the attributes that rendering needs.
pub(crate) fn decode(
    file: &[u8],
    frame: u32,
    with_meta: bool,
) -> Result<(Vec<u8>, Option<FrameMeta>), PixelError> {
    let (ts, start, inflated) = dataset(file)?;
    let buf = inflated.as_deref().unwrap_or(file);
    let p = parse(buf, start, &ts)?;
    if !is_encapsulated(&p) {
        let Native { bytes, layout } = native_frame(buf, &p, frame)?;
        let bytes = if layout.samples_per_pixel > 1
            && layout.planar_configuration == 1
            && layout.bits_allocated >= 8
            && !layout.is_native_422()
        {
            interleave(
                &bytes,
                layout.samples_per_pixel as usize,
                (layout.bits_allocated / 8) as usize,
            )
        } else {
            bytes
        };
        let meta = if with_meta {
            let obj = open(file)?;
            // dicom-pixeldata reads per-frame functional groups; it cannot size native
            // YBR_FULL_422 frames, where the top-level attributes are read instead
            let meta = match obj.decode_pixel_data_frame(frame - 1) {
                Ok(d) if !layout.is_native_422() => frame_meta(&d)?,
                _ => frame_meta_from_obj(&obj)?,
            };
            with_palette(Some(meta), &obj)
        } else {
            None
        };
        return Ok((bytes, meta));
    }
    check_decodable(&ts)?;
    let frames = encapsulated_frames(buf, &p)?;
    let i = check_frame(frame, frames.len())?;
    let first_fragment = frames[i]
        .first()
        .map(|r| &buf[r.clone()])
        .unwrap_or_default();
    check_codestream(&ts, first_fragment)?;
    if ts == RLE_LOSSLESS && !matches!(p.layout.bits_allocated, 8 | 16) {
        // dicom-pixeldata's RLE decoder takes 8 and 16 bits only
        let mut data = Vec::new();
        for r in &frames[i] {
            data.extend_from_slice(&buf[r.clone()]);
        }
        let bytes = rle_decode(&data, &p.layout)?;
        let meta = if with_meta {
            let obj = open(file)?;
            with_palette(Some(frame_meta_from_obj(&obj)?), &obj)
        } else {
            None
        };
        return Ok((bytes, meta));
    }
    let obj = open(file)?;
    let decoded = obj
        .decode_pixel_data_frame(i as u32)
        .map_err(|e| invalid(format!("cannot decode frame {frame}: {e}")))?;
    let meta = if with_meta {
        with_palette(Some(frame_meta(&decoded)?), &obj)
    } else {
        None
    };
    // decoders hand back every sample of every pixel (YBR_FULL_422 upsampled)
    let expected = native_frame_len(&Layout {
        photometric_interpretation: String::new(),
        ..p.layout.clone()
    })?;
    let mut bytes = ne_to_le(decoded.into_data(), p.layout.bits_allocated);
    if bytes.len() < expected {
        return Err(invalid(format!(
            "frame {frame} decoded to {} bytes, expected {expected}",
            bytes.len()
        )));
    }
    bytes.truncate(expected);
    Ok((bytes, meta))
}

const RLE_LOSSLESS: &str = "1.2.840.10008.1.2.5";

/// Refuse codestreams the decoders cannot read: JPEG DCT with 12-bit samples
/// (jpeg-decoder implements 8-bit DCT only).
fn check_codestream(ts: &str, first_fragment: &[u8]) -> Result<(), PixelError> {
    if is_jpeg_dct(ts) && jpeg_precision(first_fragment).is_some_and(|bits| bits > 8) {
        return Err(PixelError::Unsupported(format!(
            "{ts} (JPEG with 12-bit DCT precision)"
        )));
    }
    Ok(())
}

/// JPEG Baseline, Extended and the retired DCT processes (not the lossless ones).
fn is_jpeg_dct(ts: &str) -> bool {
    ts.strip_prefix("1.2.840.10008.1.2.4.")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| (50..=56).contains(&n) || (59..=64).contains(&n))
}

/// The sample precision of the first frame header (SOFn) of a JPEG codestream.
fn jpeg_precision(bytes: &[u8]) -> Option<u8> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    loop {
        while *bytes.get(at)? != 0xFF {
            at += 1;
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            0xFF => at += 1,
            0xD0..=0xD9 | 0x01 => at += 2,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return bytes.get(at + 4).copied();
            }
            _ => {
                let len = u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]);
                at += 2 + len as usize;
            }
        }
    }
}

/// PackBits-decode one RLE segment into `out` (PS3.5 G.3.1).
fn packbits(seg: &[u8], out: &mut Vec<u8>, want: usize) {
    let mut i = 0;
    while i < seg.len() && out.len() < want {
        let n = seg[i] as i8;
        i += 1;
        if n >= 0 {
            let end = (i + n as usize + 1).min(seg.len());
            out.extend_from_slice(&seg[i..end]);
            i = end;
        } else if n != -128 {
            if let Some(&b) = seg.get(i) {
                out.extend(std::iter::repeat_n(b, (1 - i32::from(n)) as usize));
            }
            i += 1;
        }
    }
    out.truncate(want);
}

/// Decode one RLE Lossless frame (PS3.5 Annex G) to interleaved little-endian samples.
fn rle_decode(frame: &[u8], l: &Layout) -> Result<Vec<u8>, PixelError> {
    let header = frame
        .get(..64)
        .ok_or_else(|| invalid("RLE frame shorter than its header"))?;
    let word = |i: usize| {
        u32::from_le_bytes([
            header[i * 4],
            header[i * 4 + 1],
            header[i * 4 + 2],
            header[i * 4 + 3],
        ]) as usize
    };
    let bps = (l.bits_allocated / 8) as usize;
    let spp = l.samples_per_pixel as usize;
    let segments = word(0);
    if bps == 0 || segments != spp * bps || segments > 15 {
        return Err(invalid(format!(
            "RLE frame has {segments} segments, expected {}",
            spp * bps
        )));
    }
    let pixels = l.rows as usize * l.columns as usize;
    let mut out = vec![0u8; pixels * spp * bps];
    for s in 0..segments {
        let start = word(s + 1);
        let end = if s + 1 < segments {
            word(s + 2)
        } else {
            frame.len()
        };
        let seg = frame
            .get(start..end)
            .ok_or_else(|| invalid("RLE segment offsets out of range"))?;
        let mut plane = Vec::with_capacity(pixels);
        packbits(seg, &mut plane, pixels);
        if plane.len() < pixels {
            return Err(invalid("RLE segment decodes to too few bytes"));
        }
        // segment s: sample s / bps, byte (bps - 1 - s % bps) of it (most significant first)
        let (sample, byte) = (s / bps, bps - 1 - s % bps);
        for (px, v) in plane.iter().enumerate() {
            out[(px * spp + sample) * bps + byte] = *v;
        }
    }
    Ok(out)
}

/// Frame attributes read from the top level of the data set (used where dicom-pixeldata
/// does not decode the frame itself).
fn frame_meta_from_obj(obj: &DefaultDicomObject) -> Result<FrameMeta, PixelError> {
    let int = |tag| -> Option<u32> { obj.element(tag).ok()?.to_int::<u32>().ok() };
    let float = |tag| -> Option<f64> { obj.element(tag).ok()?.to_float64().ok() };
    let text =
        |tag| -> Option<String> { Some(obj.element(tag).ok()?.to_str().ok()?.trim().to_owned()) };
    let window = match (float(tags::WINDOW_CENTER), float(tags::WINDOW_WIDTH)) {
        (Some(center), Some(width)) => Some(WindowLevel { center, width }),
        _ => None,
    };
    let narrow = |v: Option<u32>, what: &str| {
        v.and_then(|v| u16::try_from(v).ok())
            .ok_or_else(|| invalid(format!("{what} missing")))
    };
    Ok(FrameMeta {
        rows: int(tags::ROWS).ok_or_else(|| invalid("Rows missing"))?,
        columns: int(tags::COLUMNS).ok_or_else(|| invalid("Columns missing"))?,
        samples_per_pixel: narrow(
            int(tags::SAMPLES_PER_PIXEL).or(Some(1)),
            "Samples per Pixel",
        )?,
        bits_allocated: narrow(int(tags::BITS_ALLOCATED), "Bits Allocated")?,
        bits_stored: narrow(
            int(tags::BITS_STORED).or(int(tags::BITS_ALLOCATED)),
            "Bits Stored",
        )?,
        signed: int(tags::PIXEL_REPRESENTATION) == Some(1),
        photometric: PhotometricInterpretation::from(
            text(tags::PHOTOMETRIC_INTERPRETATION)
                .unwrap_or_else(|| "MONOCHROME2".to_owned())
                .as_str(),
        ),
        rescale: Rescale {
            slope: float(tags::RESCALE_SLOPE).unwrap_or(1.0),
            intercept: float(tags::RESCALE_INTERCEPT).unwrap_or(0.0),
        },
        window,
        voi_lut_function: text(tags::VOILUT_FUNCTION)
            .and_then(|f| VoiLutFunction::try_from(f.as_str()).ok())
            .unwrap_or_default(),
        palette: None,
    })
}

/// The frame decoded, as Explicit VR Little Endian pixel data with Planar Configuration 0
/// carries it: samples interleaved, little endian, 1-bit frames packed as stored. Colour
/// frames decoded from JPEG and JPEG 2000 are RGB (dicom-pixeldata converts YBR to RGB
/// while decoding, and sets Photometric Interpretation RGB when transcoding); RLE keeps
/// the stored colour space. Native YBR_FULL_422 comes back as stored (Y Y Cb Cr).
pub fn decoded_frame(file: &[u8], frame: u32) -> Result<Vec<u8>, PixelError> {
    decode(file, frame, false).map(|(bytes, _)| bytes)
}

/// The whole Part 10 file transcoded to Explicit VR Little Endian, pixel data decoded
/// (colour becomes RGB, Planar Configuration 0). Native input is re-encoded.
/// A file without pixel data (SR, key objects, encapsulated PDF, waveforms, presentation
/// states) is re-encoded as it is.
pub fn transcode_explicit_le(file: &[u8]) -> Result<Vec<u8>, PixelError> {
    let (ts, start, inflated) = dataset(file)?;
    let buf = inflated.as_deref().unwrap_or(file);
    let p = match parse(buf, start, &ts) {
        Ok(p) => p,
        Err(PixelError::NoPixelData) => return reencoded_explicit_le(file),
        Err(e) => return Err(e),
    };
    let encapsulated = is_encapsulated(&p);
    let mut obj = open(file)?;
    if encapsulated {
        check_decodable(&ts)?;
        let frames = encapsulated_frames(buf, &p)?;
        let first = frames
            .first()
            .and_then(|f| f.first())
            .map(|r| &buf[r.clone()])
            .unwrap_or_default();
        check_codestream(&ts, first)?;
    }
    if encapsulated && !matches!(p.layout.bits_allocated, 8 | 16) {
        // dicom-pixeldata's transcoder takes 8 and 16 bits only: decode frame by frame here
        let mut pixels = Vec::new();
        for frame in 1..=p.layout.number_of_frames {
            pixels.extend(decode(file, frame, false)?.0);
        }
        obj.put(dicom_core::DataElement::new(
            tags::PIXEL_DATA,
            dicom_core::VR::OB,
            dicom_core::PrimitiveValue::from(pixels),
        ));
        obj.update_meta(|meta| meta.set_transfer_syntax(&EXPLICIT_VR_LITTLE_ENDIAN));
    } else {
        obj.transcode(&EXPLICIT_VR_LITTLE_ENDIAN.erased())
            .map_err(|e| invalid(format!("cannot transcode: {e}")))?;
    }
    if encapsulated {
        for tag in [
            tags::EXTENDED_OFFSET_TABLE,
            tags::EXTENDED_OFFSET_TABLE_LENGTHS,
            tags::ENCAPSULATED_PIXEL_DATA_VALUE_TOTAL_LENGTH,
        ] {
            obj.remove_element(tag);
        }
        if p.layout.samples_per_pixel > 1 {
            obj.put(dicom_core::DataElement::new(
                tags::PLANAR_CONFIGURATION,
                dicom_core::VR::US,
                dicom_core::PrimitiveValue::from(0_u16),
            ));
        }
    }
    let mut out = Vec::new();
    obj.write_all(&mut out)
        .map_err(|e| invalid(format!("cannot write the transcoded file: {e}")))?;
    Ok(out)
}

/// The file's data set written again in Explicit VR Little Endian: only the encoding
/// changes (VRs of an Implicit VR data set from the dictionary, as dicom-rs reads them).
fn reencoded_explicit_le(file: &[u8]) -> Result<Vec<u8>, PixelError> {
    let mut obj = open(file)?;
    obj.update_meta(|meta| meta.set_transfer_syntax(&EXPLICIT_VR_LITTLE_ENDIAN));
    let mut out = Vec::new();
    obj.write_all(&mut out)
        .map_err(|e| invalid(format!("cannot write the re-encoded file: {e}")))?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An object without pixel data stored in Implicit VR LE (a structured report, a
    /// waveform as C-STORE's default syntax carries it) is served in Explicit VR LE with the
    /// same elements, not refused as "no pixel data".
    #[test]
    fn objects_without_pixel_data_are_re_encoded() {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
        let mut ds = InMemDicomObject::new_empty();
        for (tag, vr, v) in [
            (tags::SOP_CLASS_UID, VR::UI, "1.2.840.10008.5.1.4.1.1.88.11"),
            (tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5"),
            (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
            (tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4"),
            (tags::MODALITY, VR::CS, "SR"),
            (tags::PATIENT_NAME, VR::PN, "ZHANG^SAN"),
        ] {
            ds.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        }
        ds.put(DataElement::new(
            tags::WAVEFORM_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![1, 2, 0xFFFF, 4].into()),
        ));
        let obj = ds
            .with_meta(
                FileMetaTableBuilder::new()
                    .transfer_syntax(IMPLICIT_VR_LE)
                    .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.88.11")
                    .media_storage_sop_instance_uid("1.2.3.4.5"),
            )
            .unwrap();
        let mut file = Vec::new();
        obj.write_all(&mut file).unwrap();
        let out = transcode_explicit_le(&file).expect("re-encoded");
        let back = open(&out).unwrap();
        assert_eq!(back.meta().transfer_syntax(), EXPLICIT_VR_LE);
        for tag in [tags::SOP_INSTANCE_UID, tags::MODALITY, tags::PATIENT_NAME] {
            assert_eq!(
                back.element(tag).unwrap().to_str().unwrap(),
                obj.element(tag).unwrap().to_str().unwrap()
            );
        }
        assert_eq!(
            back.element(tags::WAVEFORM_DATA)
                .unwrap()
                .to_multi_int::<u16>()
                .unwrap(),
            [1, 2, 0xFFFF, 4]
        );
        // explicit: the VRs are on the wire
        // explicit: Modality's header carries its VR and a 16-bit length
        assert!(out.windows(8).any(|w| w == b"\x08\0\x60\0CS\x02\0"));
    }

    /// Hand-assembled data sets, so that every offset is known.
    pub(crate) struct Ds {
        pub bytes: Vec<u8>,
        big: bool,
        explicit: bool,
    }

    impl Ds {
        pub fn new(ts: &str) -> Self {
            let bytes =
                crate::meta::build_file_meta(ts, "1.2.840.10008.5.1.4.1.1.7", "1.2.3.4").unwrap();
            Ds {
                bytes,
                big: ts == EXPLICIT_VR_BE,
                explicit: ts != IMPLICIT_VR_LE,
            }
        }
        fn u16(&mut self, v: u16) {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        fn u32(&mut self, v: u32) {
            let b = if self.big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            self.bytes.extend_from_slice(&b);
        }
        fn header(&mut self, tag: (u16, u16), vr: &[u8; 2], len: u32) {
            self.u16(tag.0);
            self.u16(tag.1);
            if !self.explicit || tag.0 == 0xFFFE {
                self.u32(len);
            } else if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"OV") {
                self.bytes.extend_from_slice(vr);
                self.bytes.extend_from_slice(&[0, 0]);
                self.u32(len);
            } else {
                self.bytes.extend_from_slice(vr);
                self.u16(len as u16);
            }
        }
        pub fn us(mut self, tag: (u16, u16), v: u16) -> Self {
            self.header(tag, b"US", 2);
            self.u16(v);
            self
        }
        /// An element with the given value bytes (little endian files only).
        pub fn raw(mut self, tag: (u16, u16), vr: &[u8; 2], v: &[u8]) -> Self {
            self.header(tag, vr, v.len() as u32);
            self.bytes.extend_from_slice(v);
            self
        }
        pub fn text(mut self, tag: (u16, u16), vr: &[u8; 2], v: &str) -> Self {
            let mut v = v.as_bytes().to_vec();
            if v.len() % 2 == 1 {
                v.push(b' ');
            }
            self.header(tag, vr, v.len() as u32);
            self.bytes.extend_from_slice(&v);
            self
        }
        pub fn image(self, rows: u16, cols: u16, spp: u16, bits: u16, frames: u32) -> Self {
            let pi = if spp == 3 { "RGB" } else { "MONOCHROME2" };
            self.image_pi(rows, cols, spp, bits, frames, pi, 0)
        }
        #[allow(clippy::too_many_arguments)]
        pub fn image_pi(
            self,
            rows: u16,
            cols: u16,
            spp: u16,
            bits: u16,
            frames: u32,
            pi: &str,
            pr: u16,
        ) -> Self {
            let mut d = self
                .us((0x0028, 0x0002), spp)
                .text((0x0028, 0x0004), b"CS", pi);
            if spp > 1 {
                d = d.us((0x0028, 0x0006), 0);
            }
            d.text((0x0028, 0x0008), b"IS", &frames.to_string())
                .us((0x0028, 0x0010), rows)
                .us((0x0028, 0x0011), cols)
                .us((0x0028, 0x0100), bits)
                .us((0x0028, 0x0101), bits)
                .us((0x0028, 0x0102), bits.saturating_sub(1))
                .us((0x0028, 0x0103), pr)
        }
        /// A sequence of undefined length with one item of undefined length.
        pub fn undefined_sequence(mut self) -> Self {
            self.header((0x0008, 0x1140), b"SQ", UNDEFINED);
            self.header(ITEM, b"  ", UNDEFINED);
            self = self.text((0x0008, 0x1150), b"UI", "1.2.3");
            self.header(ITEM_END, b"  ", 0);
            self.header(SEQ_END, b"  ", 0);
            self
        }
        /// Native pixel data; returns the offset of its first value byte.
        pub fn native(mut self, vr: &[u8; 2], data: &[u8]) -> (Vec<u8>, usize) {
            self.header((0x7FE0, 0x0010), vr, data.len() as u32);
            let at = self.bytes.len();
            self.bytes.extend_from_slice(data);
            (self.bytes, at)
        }
        /// Encapsulated pixel data; returns the value range of every fragment.
        pub fn encapsulated(
            mut self,
            bot: &[u32],
            fragments: &[&[u8]],
        ) -> (Vec<u8>, Vec<Range<u64>>) {
            self.header((0x7FE0, 0x0010), b"OB", UNDEFINED);
            self.explicit = false; // item headers: tag + 4-byte length
            self.header(ITEM, b"  ", bot.len() as u32 * 4);
            for o in bot {
                self.u32(*o);
            }
            let mut ranges = Vec::new();
            for f in fragments {
                self.header(ITEM, b"  ", f.len() as u32);
                let at = self.bytes.len() as u64;
                self.bytes.extend_from_slice(f);
                ranges.push(at..at + f.len() as u64);
            }
            self.header(SEQ_END, b"  ", 0);
            (self.bytes, ranges)
        }
    }

    fn native_frames_file(ts: &str) -> (Vec<u8>, usize, Vec<u8>) {
        // 3 frames of 2 × 3 16-bit samples
        let data: Vec<u8> = (0..36u8).collect();
        let (file, at) = Ds::new(ts)
            .undefined_sequence()
            .image(2, 3, 1, 16, 3)
            .native(b"OW", &data);
        (file, at, data)
    }

    #[test]
    fn multi_frame_native_has_one_range_per_frame() {
        for ts in [EXPLICIT_VR_LE, IMPLICIT_VR_LE] {
            let (file, at, data) = native_frames_file(ts);
            let idx = frame_index(&file).unwrap();
            assert!(!idx.encapsulated);
            assert_eq!(idx.transfer_syntax_uid, ts);
            assert_eq!(frame_count(&file).unwrap(), 3);
            let at = at as u64;
            assert_eq!(
                idx.frames,
                vec![
                    vec![at..at + 12],
                    vec![at + 12..at + 24],
                    vec![at + 24..at + 36]
                ],
                "{ts}"
            );
            let (bytes, label) = original_frame(&file, 2).unwrap();
            assert_eq!(bytes, &data[12..24]);
            assert_eq!(label, EXPLICIT_VR_LE);
            assert_eq!(decoded_frame(&file, 3).unwrap(), &data[24..36]);
            assert!(matches!(
                original_frame(&file, 4),
                Err(PixelError::FrameOutOfRange(4, 3))
            ));
            assert!(matches!(
                decoded_frame(&file, 0),
                Err(PixelError::FrameOutOfRange(0, 3))
            ));
        }
    }

    #[test]
    fn big_endian_frames_come_back_little_endian() {
        let data = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];
        let (file, _) = Ds::new(EXPLICIT_VR_BE)
            .image(2, 2, 1, 16, 1)
            .native(b"OW", &data);
        let (bytes, label) = original_frame(&file, 1).unwrap();
        assert_eq!(bytes, [0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07]);
        assert_eq!(label, EXPLICIT_VR_LE);
    }

    #[test]
    fn short_native_pixel_data_is_invalid() {
        let (file, _) = Ds::new(EXPLICIT_VR_LE)
            .image(2, 3, 1, 16, 3)
            .native(b"OW", &[0; 30]);
        assert!(matches!(frame_index(&file), Err(PixelError::Invalid(_))));
    }

    #[test]
    fn bit_packed_frames_off_byte_boundaries_are_unsupported() {
        // 3 × 3 1-bit frames: 9 bits each
        let (file, _) = Ds::new(EXPLICIT_VR_LE)
            .image(3, 3, 1, 1, 2)
            .native(b"OW", &[0; 4]);
        assert!(matches!(
            frame_index(&file),
            Err(PixelError::Unsupported(_))
        ));
        // one such frame is fine: 2 bytes
        let (file, at) = Ds::new(EXPLICIT_VR_LE)
            .image(3, 3, 1, 1, 1)
            .native(b"OW", &[0xFF, 0x01]);
        let at = at as u64;
        assert_eq!(frame_index(&file).unwrap().frames, vec![vec![at..at + 2]]);
    }

    #[test]
    fn planar_colour_is_interleaved_when_decoded() {
        let mut d = Ds::new(EXPLICIT_VR_LE).image(1, 2, 3, 8, 1);
        // Planar Configuration 1: replace the 0 written by image()
        let n = d.bytes.len();
        let at = (0..n - 10)
            .rev()
            .find(|&i| d.bytes[i..i + 4] == [0x28, 0x00, 0x06, 0x00])
            .unwrap();
        d.bytes[at + 8] = 1;
        let (file, _) = d.native(b"OB", &[1, 2, 3, 4, 5, 6]);
        assert_eq!(original_frame(&file, 1).unwrap().0, [1, 2, 3, 4, 5, 6]);
        assert_eq!(decoded_frame(&file, 1).unwrap(), [1, 3, 5, 2, 4, 6]);
    }

    #[test]
    fn encapsulated_with_basic_offset_table() {
        let f1a = [0xFF, 0xD8, 0xFF, 0xE0];
        let f1b = [1, 2, 3, 4, 5, 6];
        let f2 = [0xFF, 0xD8, 0xFF, 0xDB, 9, 9];
        // item tag offsets: f1a at 0, f1b at 8 + 4 = 12, f2 at 12 + 8 + 6 = 26
        let (file, r) = Ds::new("1.2.840.10008.1.2.4.50")
            .image(8, 8, 1, 8, 2)
            .encapsulated(&[0, 26], &[&f1a, &f1b, &f2]);
        let idx = frame_index(&file).unwrap();
        assert!(idx.encapsulated);
        assert_eq!(idx.transfer_syntax_uid, "1.2.840.10008.1.2.4.50");
        assert_eq!(
            idx.frames,
            vec![vec![r[0].clone(), r[1].clone()], vec![r[2].clone()]]
        );
        let (bytes, label) = original_frame(&file, 1).unwrap();
        assert_eq!(bytes, [&f1a[..], &f1b[..]].concat());
        assert_eq!(label, "1.2.840.10008.1.2.4.50");
        assert_eq!(original_frame(&file, 2).unwrap().0, f2);

        // an offset that does not point at an item is malformed
        let (file, _) = Ds::new("1.2.840.10008.1.2.4.50")
            .image(8, 8, 1, 8, 2)
            .encapsulated(&[0, 20], &[&f1a, &f1b, &f2]);
        assert!(matches!(frame_index(&file), Err(PixelError::Invalid(_))));
    }

    #[test]
    fn encapsulated_without_offset_table_one_fragment_per_frame() {
        let frags: [&[u8]; 3] = [&[1, 2], &[3, 4, 5, 6], &[7, 8]];
        let (file, r) = Ds::new("1.2.840.10008.1.2.5")
            .image(2, 2, 1, 8, 3)
            .encapsulated(&[], &frags);
        let idx = frame_index(&file).unwrap();
        assert_eq!(
            idx.frames,
            r.iter().map(|r| vec![r.clone()]).collect::<Vec<_>>()
        );
        assert_eq!(original_frame(&file, 2).unwrap().0, [3, 4, 5, 6]);
    }

    #[test]
    fn encapsulated_without_sequence_delimiter_at_the_end_of_the_file() {
        let frags: [&[u8]; 2] = [&[1, 2], &[3, 4]];
        let (mut file, r) = Ds::new("1.2.840.10008.1.2.5")
            .image(2, 2, 1, 8, 2)
            .encapsulated(&[], &frags);
        file.truncate(file.len() - 8);
        assert_eq!(
            frame_index(&file).unwrap().frames,
            vec![vec![r[0].clone()], vec![r[1].clone()]]
        );
        // cut inside a fragment: malformed
        file.truncate(file.len() - 1);
        assert!(matches!(frame_index(&file), Err(PixelError::Invalid(_))));
    }

    #[test]
    fn encapsulated_single_frame_takes_all_fragments() {
        let frags: [&[u8]; 3] = [&[0xFF, 0xD8, 0xFF, 0xC0], &[1, 2], &[0xFF, 0xD8, 0xFF, 9]];
        let (file, r) = Ds::new("1.2.840.10008.1.2.4.50")
            .image(2, 2, 1, 8, 1)
            .encapsulated(&[], &frags);
        assert_eq!(frame_index(&file).unwrap().frames, vec![r]);
    }

    #[test]
    fn encapsulated_without_offset_table_split_at_codestream_starts() {
        let frags: [&[u8]; 4] = [
            &[0xFF, 0x4F, 0xFF, 0x51],
            &[1, 2],
            &[0xFF, 0x4F, 0xFF, 0x51],
            &[3, 4],
        ];
        let (file, r) = Ds::new("1.2.840.10008.1.2.4.90")
            .image(2, 2, 1, 8, 2)
            .encapsulated(&[], &frags);
        assert_eq!(
            frame_index(&file).unwrap().frames,
            vec![r[0..2].to_vec(), r[2..4].to_vec()]
        );
        // three frames cannot be found in two codestreams
        let (file, _) = Ds::new("1.2.840.10008.1.2.4.90")
            .image(2, 2, 1, 8, 3)
            .encapsulated(&[], &frags);
        assert!(matches!(frame_index(&file), Err(PixelError::Invalid(_))));
    }

    #[test]
    fn encapsulated_with_extended_offset_table() {
        let frags: [&[u8]; 3] = [&[1, 2], &[3, 4], &[5, 6]];
        let mut d = Ds::new("1.2.840.10008.1.2.4.90").image(2, 2, 1, 8, 2);
        d.header((0x7FE0, 0x0001), b"OV", 16);
        d.bytes.extend_from_slice(&0u64.to_le_bytes());
        d.bytes.extend_from_slice(&10u64.to_le_bytes());
        let (file, r) = d.encapsulated(&[], &frags);
        assert_eq!(
            frame_index(&file).unwrap().frames,
            vec![vec![r[0].clone()], vec![r[1].clone(), r[2].clone()]]
        );
    }

    #[test]
    fn no_pixel_data() {
        let d = Ds::new(EXPLICIT_VR_LE).text((0x0008, 0x0060), b"CS", "SR");
        assert!(matches!(
            frame_index(&d.bytes),
            Err(PixelError::NoPixelData)
        ));
        assert!(matches!(
            decoded_frame(&d.bytes, 1),
            Err(PixelError::NoPixelData)
        ));
    }

    #[test]
    fn undecodable_syntax_is_unsupported() {
        let (file, _) = Ds::new("1.2.840.10008.1.2.4.100")
            .image(2, 2, 1, 8, 1)
            .encapsulated(&[], &[&[0, 0, 1, 0xB3]]);
        assert!(matches!(
            decoded_frame(&file, 1),
            Err(PixelError::Unsupported(_))
        ));
        assert!(matches!(
            transcode_explicit_le(&file),
            Err(PixelError::Unsupported(_))
        ));
        // the original bytes are still served
        assert_eq!(original_frame(&file, 1).unwrap().0, [0, 0, 1, 0xB3]);
    }
}
