//! Transfer syntaxes the hub accepts, and the choice among those a sender proposes.
//!
//! dxhub never transcodes at ingest: it stores what the sender sends. Among the syntaxes a
//! sender proposes for one presentation context it prefers the sender's compressed syntax
//! (the first compressed one in the sender's order), then Explicit VR Little Endian, then
//! any other uncompressed one, then Implicit VR Little Endian. Deflated Explicit VR Little
//! Endian is not a pixel compression: it is chosen first only when the sender proposes it
//! first (its file is deflated); listed after native syntaxes (pynetdicom's default list),
//! accepting it would make the sender deflate a native file.

pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// Every transfer syntax accepted for storage: (uid, compressed?).
pub const ACCEPTED: &[(&str, bool)] = &[
    (IMPLICIT_VR_LE, false),
    (EXPLICIT_VR_LE, false),
    (EXPLICIT_VR_BE, false),
    (DEFLATED_EXPLICIT_VR_LE, false),
    ("1.2.840.10008.1.2.4.50", true),    // JPEG Baseline (Process 1)
    ("1.2.840.10008.1.2.4.51", true),    // JPEG Extended (Process 2 & 4)
    ("1.2.840.10008.1.2.4.57", true),    // JPEG Lossless, Non-Hierarchical (Process 14)
    ("1.2.840.10008.1.2.4.70", true),    // JPEG Lossless SV1
    ("1.2.840.10008.1.2.4.80", true),    // JPEG-LS Lossless
    ("1.2.840.10008.1.2.4.81", true),    // JPEG-LS Near-Lossless
    ("1.2.840.10008.1.2.4.90", true),    // JPEG 2000 Lossless Only
    ("1.2.840.10008.1.2.4.91", true),    // JPEG 2000
    ("1.2.840.10008.1.2.4.92", true),    // JPEG 2000 Part 2 Multi-component Lossless Only
    ("1.2.840.10008.1.2.4.93", true),    // JPEG 2000 Part 2 Multi-component
    ("1.2.840.10008.1.2.4.201", true),   // HTJ2K Lossless
    ("1.2.840.10008.1.2.4.202", true),   // HTJ2K Lossless RPCL
    ("1.2.840.10008.1.2.4.203", true),   // HTJ2K
    ("1.2.840.10008.1.2.5", true),       // RLE Lossless
    ("1.2.840.10008.1.2.4.100", true),   // MPEG2 Main Profile / Main Level
    ("1.2.840.10008.1.2.4.101", true),   // MPEG2 Main Profile / High Level
    ("1.2.840.10008.1.2.4.102", true),   // MPEG-4 AVC/H.264 High Profile / Level 4.1
    ("1.2.840.10008.1.2.4.103", true),   // MPEG-4 AVC/H.264 BD-compatible
    ("1.2.840.10008.1.2.4.104", true),   // MPEG-4 AVC/H.264 High Profile For 2D Video
    ("1.2.840.10008.1.2.4.105", true),   // MPEG-4 AVC/H.264 High Profile For 3D Video
    ("1.2.840.10008.1.2.4.106", true),   // MPEG-4 AVC/H.264 Stereo High Profile
    ("1.2.840.10008.1.2.4.107", true),   // HEVC/H.265 Main Profile / Level 5.1
    ("1.2.840.10008.1.2.4.108", true),   // HEVC/H.265 Main 10 Profile / Level 5.1
    ("1.2.840.10008.1.2.4.100.1", true), // MPEG2 fragmentable
    ("1.2.840.10008.1.2.4.101.1", true),
    ("1.2.840.10008.1.2.4.102.1", true),
    ("1.2.840.10008.1.2.4.103.1", true),
    ("1.2.840.10008.1.2.4.104.1", true),
    ("1.2.840.10008.1.2.4.105.1", true),
    ("1.2.840.10008.1.2.4.106.1", true),
];

pub fn is_accepted(ts: &str) -> bool {
    ACCEPTED.iter().any(|(uid, _)| *uid == ts)
}

pub fn is_compressed(ts: &str) -> bool {
    ACCEPTED.iter().any(|(uid, c)| *uid == ts && *c)
}

/// Pick the transfer syntax to accept for one storage presentation context.
pub fn choose_for_storage<'a>(proposed: &'a [String]) -> Option<&'a str> {
    let clean = |s: &'a String| s.trim_end_matches(['\0', ' ']);
    proposed
        .iter()
        .map(clean)
        .find(|ts| is_compressed(ts))
        .or_else(|| {
            proposed
                .first()
                .map(clean)
                .filter(|ts| *ts == DEFLATED_EXPLICIT_VR_LE)
        })
        .or_else(|| proposed.iter().map(clean).find(|ts| *ts == EXPLICIT_VR_LE))
        .or_else(|| {
            proposed.iter().map(clean).find(|ts| {
                is_accepted(ts) && *ts != IMPLICIT_VR_LE && *ts != DEFLATED_EXPLICIT_VR_LE
            })
        })
        .or_else(|| proposed.iter().map(clean).find(|ts| *ts == IMPLICIT_VR_LE))
        .or_else(|| {
            proposed
                .iter()
                .map(clean)
                .find(|ts| *ts == DEFLATED_EXPLICIT_VR_LE)
        })
}

/// Pick the transfer syntax for a Verification context (any uncompressed one).
pub fn choose_for_verification<'a>(proposed: &'a [String]) -> Option<&'a str> {
    let clean = |s: &'a String| s.trim_end_matches(['\0', ' ']);
    proposed
        .iter()
        .map(clean)
        .find(|ts| *ts == IMPLICIT_VR_LE)
        .or_else(|| proposed.iter().map(clean).find(|ts| *ts == EXPLICIT_VR_LE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefers_the_senders_compressed_syntax() {
        let p = v(&[
            IMPLICIT_VR_LE,
            EXPLICIT_VR_LE,
            "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.90",
        ]);
        assert_eq!(choose_for_storage(&p), Some("1.2.840.10008.1.2.4.80"));
        assert_eq!(
            choose_for_storage(&v(&[IMPLICIT_VR_LE, EXPLICIT_VR_LE])),
            Some(EXPLICIT_VR_LE)
        );
        assert_eq!(
            choose_for_storage(&v(&[IMPLICIT_VR_LE, EXPLICIT_VR_BE])),
            Some(EXPLICIT_VR_BE)
        );
        assert_eq!(
            choose_for_storage(&v(&[IMPLICIT_VR_LE])),
            Some(IMPLICIT_VR_LE)
        );
        assert_eq!(choose_for_storage(&v(&["1.2.3.4.5"])), None);
        // Deflated: the sender's own syntax when proposed first, else not made to deflate
        assert_eq!(
            choose_for_storage(&v(&[DEFLATED_EXPLICIT_VR_LE, EXPLICIT_VR_LE])),
            Some(DEFLATED_EXPLICIT_VR_LE)
        );
        assert_eq!(
            choose_for_storage(&v(&[
                IMPLICIT_VR_LE,
                EXPLICIT_VR_LE,
                DEFLATED_EXPLICIT_VR_LE,
                EXPLICIT_VR_BE
            ])),
            Some(EXPLICIT_VR_LE)
        );
        assert_eq!(
            choose_for_storage(&v(&[IMPLICIT_VR_LE, DEFLATED_EXPLICIT_VR_LE])),
            Some(IMPLICIT_VR_LE)
        );
        assert_eq!(
            choose_for_storage(&v(&["1.2.3", DEFLATED_EXPLICIT_VR_LE])),
            Some(DEFLATED_EXPLICIT_VR_LE)
        );
        assert_eq!(
            choose_for_storage(&v(&["1.2.840.10008.1.2.4.201\0"])),
            Some("1.2.840.10008.1.2.4.201")
        );
    }
}
