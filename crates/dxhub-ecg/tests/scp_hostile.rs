//! `scp::read_scp` on damaged records: precise errors, never a panic. The record is built
//! here (no peer needed): sections 0, 1, 2 (default Huffman table), 3 and 6, two leads of 50
//! samples.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::LeadCode;
use dxhub_ecg::scp::{ScpError, crc_ccitt, looks_like_scp, read_scp};

/// Default-table code of a value in −8..=8, else the 8-bit escape.
fn code(v: i32) -> String {
    match v {
        0 => "0".into(),
        1..=8 => format!("{}00", "1".repeat(v as usize)),
        -8..=-1 => format!("{}01", "1".repeat((-v) as usize)),
        _ => format!("1111111110{:08b}", (v as i8) as u8),
    }
}

fn pack(bits: &str) -> Vec<u8> {
    let b: Vec<u8> = bits.bytes().map(|c| c - b'0').collect();
    b.chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |acc, (i, x)| acc | (x << (7 - i)))
        })
        .collect()
}

fn section(id: u16, mut body: Vec<u8>) -> Vec<u8> {
    if body.len() % 2 == 1 {
        body.push(0);
    }
    let mut s = vec![0u8, 0];
    s.extend(id.to_le_bytes());
    s.extend(((16 + body.len()) as u32).to_le_bytes());
    s.extend([20, 20]);
    s.extend(if id == 0 { *b"SCPECG" } else { [0; 6] });
    s.extend(body);
    let crc = crc_ccitt(&s[2..]);
    s[..2].copy_from_slice(&crc.to_le_bytes());
    s
}

fn lead_values(lead: usize) -> Vec<i32> {
    (0..50)
        .map(|i: i32| ((i * 7 + lead as i32 * 3) % 41) - 20)
        .collect()
}

/// sections: 1 (patient ID), 2 (19999), 3 (I, II: samples 1..=50), 6 (AVM 5000 nV, 2 ms, no
/// differences, Huffman).
fn record() -> Vec<u8> {
    let mut s1 = vec![2u8, 7, 0];
    s1.extend(b"P-0042\0");
    s1.extend([255, 0, 0]);
    let s2 = 19999u16.to_le_bytes().to_vec();
    let mut s3 = vec![2u8, 0x04 | (2 << 3)];
    for code in [1u8, 2] {
        s3.extend(1u32.to_le_bytes());
        s3.extend(50u32.to_le_bytes());
        s3.push(code);
    }
    let data: Vec<Vec<u8>> = (0..2)
        .map(|l| pack(&lead_values(l).into_iter().map(code).collect::<String>()))
        .collect();
    let mut s6 = Vec::new();
    s6.extend(5000u16.to_le_bytes());
    s6.extend(2000u16.to_le_bytes());
    s6.extend([0, 0]);
    for d in &data {
        s6.extend((d.len() as u16).to_le_bytes());
    }
    for d in &data {
        s6.extend(d);
    }
    let bodies = [(1u16, s1), (2, s2), (3, s3), (6, s6)];
    let n_pointers = 12;
    let s0_len = 16 + 10 * n_pointers;
    let mut pos = 6 + s0_len;
    let mut pointers = Vec::new();
    let mut rest = Vec::new();
    pointers.extend([0u8, 0]);
    pointers.extend((s0_len as u32).to_le_bytes());
    pointers.extend(7u32.to_le_bytes());
    for id in 1..12u16 {
        pointers.extend(id.to_le_bytes());
        if let Some((_, body)) = bodies.iter().find(|(i, _)| *i == id) {
            let s = section(id, body.clone());
            pointers.extend((s.len() as u32).to_le_bytes());
            pointers.extend(((pos + 1) as u32).to_le_bytes());
            pos += s.len();
            rest.extend(s);
        } else {
            pointers.extend([0; 8]);
        }
    }
    let mut rec = vec![0u8; 6];
    rec.extend(section(0, pointers));
    rec.extend(rest);
    let total = rec.len() as u32;
    rec[2..6].copy_from_slice(&total.to_le_bytes());
    fix_crcs(&mut rec);
    rec
}

/// Recompute the CRC of every section section 0 points to, then the record's.
fn fix_crcs(b: &mut [u8]) {
    let le32 = |b: &[u8], at: usize| {
        b.get(at..at + 4)
            .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]])) as usize
    };
    let s0_len = le32(b, 10);
    let mut sections = vec![(6usize, s0_len)];
    let mut p = 22;
    while p + 10 <= (6 + s0_len).min(b.len()) {
        let (len, index) = (le32(b, p + 2), le32(b, p + 6));
        if len >= 16 && index >= 1 {
            sections.push((index - 1, len));
        }
        p += 10;
    }
    for (start, len) in sections {
        if len >= 2 && start.saturating_add(len) <= b.len() {
            let crc = crc_ccitt(&b[start + 2..start + len]);
            b[start..start + 2].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let total = le32(b, 2).min(b.len());
    if total > 2 {
        let crc = crc_ccitt(&b[2..total]);
        b[..2].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Byte offset of section `id`'s header.
fn offset(b: &[u8], id: u16) -> usize {
    let p = 22 + 10 * usize::from(id);
    u32::from_le_bytes(b[p + 6..p + 10].try_into().unwrap()) as usize - 1
}

#[test]
fn the_built_record_reads() {
    let rec = record();
    assert!(looks_like_scp(&rec));
    let ecg = read_scp(&rec).unwrap();
    assert_eq!(ecg.sample_rate_hz, 500.0);
    assert_eq!(ecg.patient.id.as_deref(), Some("P-0042"));
    assert_eq!(ecg.leads.len(), 2);
    assert_eq!(ecg.leads[1].code, LeadCode::II);
    for (l, lead) in ecg.leads.iter().enumerate() {
        let expected: Vec<f32> = lead_values(l).iter().map(|v| *v as f32 * 5.0).collect();
        assert_eq!(lead.samples_uv, expected);
    }
}

#[test]
fn precise_errors() {
    let rec = record();
    let n = rec.len();
    let e = read_scp(&rec[..n - 10]).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("record length {n} exceeds the {} bytes received", n - 10)
    );
    assert!(matches!(
        read_scp(&rec[..3]),
        Err(ScpError::TooShort { len: 3, .. })
    ));

    let mut b = rec.clone();
    b[n - 1] ^= 1;
    assert!(
        read_scp(&b)
            .unwrap_err()
            .to_string()
            .starts_with("record CRC mismatch")
    );

    // Damage in section 6 with the record CRC right: section 6's CRC catches it.
    let mut b = rec.clone();
    b[n - 1] ^= 1;
    let crc = crc_ccitt(&b[2..]);
    b[..2].copy_from_slice(&crc.to_le_bytes());
    assert!(
        read_scp(&b)
            .unwrap_err()
            .to_string()
            .starts_with("section 6: CRC mismatch (stored ")
    );

    // 255 leads in section 3.
    let mut b = rec.clone();
    let s3 = offset(&b, 3);
    b[s3 + 16] = 255;
    fix_crcs(&mut b);
    let e = read_scp(&b).unwrap_err().to_string();
    assert!(
        e.starts_with("section 3: 255 leads need 2297 bytes, the section has "),
        "{e}"
    );

    // A lead of 4 000 000 000 samples in 20-odd bytes.
    let mut b = rec.clone();
    b[s3 + 16 + 2 + 4..s3 + 16 + 2 + 8].copy_from_slice(&4_000_000_000u32.to_le_bytes());
    fix_crcs(&mut b);
    let e = read_scp(&b).unwrap_err().to_string();
    assert!(
        e.starts_with("section 6: lead 1: section 3 declares 4000000000 samples but its "),
        "{e}"
    );

    // Lead 2 moved a million samples later: the common time axis is not justified.
    let mut b = rec.clone();
    let l2 = s3 + 16 + 2 + 9;
    b[l2..l2 + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    b[l2 + 4..l2 + 8].copy_from_slice(&1_000_049u32.to_le_bytes());
    fix_crcs(&mut b);
    let e = read_scp(&b).unwrap_err().to_string();
    assert_eq!(
        e,
        "section 3: 2 leads spanning samples 1..1000049 would need more than 4 times the 100 samples they hold"
    );

    // Section 0 points to a length that section 3's header does not state.
    let mut b = rec.clone();
    let p = 22 + 10 * 3 + 2;
    let len = u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
    b[p..p + 4].copy_from_slice(&(len + 2).to_le_bytes());
    fix_crcs(&mut b);
    let e = read_scp(&b).unwrap_err().to_string();
    assert!(e.starts_with("section 3: its header states "), "{e}");

    // Section 2 announcing 1 stored table, without room for it (the table checks themselves,
    // e.g. codes longer than 32 bits, are unit tests of scp::huffman).
    let mut b = rec.clone();
    let s2 = offset(&b, 2);
    b[s2 + 16..s2 + 18].copy_from_slice(&1u16.to_le_bytes());
    fix_crcs(&mut b);
    let e = read_scp(&b).unwrap_err().to_string();
    assert!(
        e.starts_with("section 2: Huffman table 1 of 1: the section ends before its code count"),
        "{e}"
    );

    // No rhythm section.
    let mut b = rec.clone();
    let p = 22 + 10 * 6 + 2;
    b[p..p + 8].fill(0);
    fix_crcs(&mut b);
    assert!(matches!(read_scp(&b), Err(ScpError::NoRhythm)));
}

#[test]
fn truncated_or_damaged_records_never_panic() {
    let rec = record();
    for len in 0..rec.len() {
        let mut b = rec[..len].to_vec();
        let _ = read_scp(&b);
        let _ = looks_like_scp(&b);
        if len >= 6 {
            b[2..6].copy_from_slice(&(len as u32).to_le_bytes());
            fix_crcs(&mut b);
            let _ = read_scp(&b);
        }
    }
    let mut read_ok = 0;
    for at in 0..rec.len() {
        for value in [
            0x00u8,
            0xFF,
            0x80,
            0x7F,
            rec[at] ^ 0x01,
            rec[at].wrapping_add(1),
        ] {
            let mut b = rec.clone();
            b[at] = value;
            let _ = read_scp(&b);
            fix_crcs(&mut b);
            if read_scp(&b).is_ok() {
                read_ok += 1;
            }
        }
    }
    // Damage to sample data still decodes (to other values); damage to structure does not.
    assert!(read_ok > 0 && read_ok < rec.len() * 6, "{read_ok}");
}
