//! SCP-ECG Huffman tables (section 2) and the bit-stream decoder of sections 5 and 6.
//!
//! A table is a list of code structures of 9 bytes: prefix length in bits, total length in
//! bits, table mode (1 = the code stands for a value, 0 = switch to the table numbered by the
//! base value), base value (signed 16 bits) and base code (32 bits, the first transmitted bit
//! of the prefix in the least significant bit). The data stream is read from the most
//! significant bit of each byte. When the total length exceeds the prefix length, the
//! `total - prefix` bits after the prefix are the value itself, two's complement, most
//! significant bit first (the default table's 8- and 16-bit escapes); otherwise the value is the
//! base value. A table switch holds for the following codes of the same lead; every lead starts
//! with table 1. Tables are numbered from 1 in switch codes, as SCP-AV (the decoder of the
//! standard's authors, in biosig) reads them; PixelMed and biosig's newer decoder take the base
//! value as a 0-based index instead. A base value of 0, meaningless when numbering from 1, is
//! read as table 1.

use super::ScpError;

/// Code count announcing the default table of the standard instead of stored tables.
pub const DEFAULT_TABLE_MARKER: u16 = 19999;

/// One code structure of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub prefix_bits: u8,
    pub total_bits: u8,
    /// 1: the code stands for a value; 0: switch to table `base_value`.
    pub mode: u8,
    pub base_value: i16,
    /// The prefix, first transmitted bit in bit 0.
    pub base_code: u32,
}

/// The default Huffman table of EN 1064 (annex): prefixes 0, 100, 101, 1100, 1101, … up to
/// 1111111101 for −8, then 1111111110 + 8 bits and 1111111111 + 16 bits of original value.
pub const DEFAULT_TABLE: [Code; 19] = {
    const fn c(prefix_bits: u8, total_bits: u8, base_value: i16, base_code: u32) -> Code {
        Code {
            prefix_bits,
            total_bits,
            mode: 1,
            base_value,
            base_code,
        }
    }
    [
        c(1, 1, 0, 0),
        c(3, 3, 1, 1),
        c(3, 3, -1, 5),
        c(4, 4, 2, 3),
        c(4, 4, -2, 11),
        c(5, 5, 3, 7),
        c(5, 5, -3, 23),
        c(6, 6, 4, 15),
        c(6, 6, -4, 47),
        c(7, 7, 5, 31),
        c(7, 7, -5, 95),
        c(8, 8, 6, 63),
        c(8, 8, -6, 191),
        c(9, 9, 7, 127),
        c(9, 9, -7, 383),
        c(10, 10, 8, 255),
        c(10, 10, -8, 767),
        c(10, 18, 0, 511),
        c(10, 26, 0, 1023),
    ]
};

const NONE: u32 = u32::MAX;

/// A table as a binary trie over the prefix bits.
#[derive(Debug, Clone)]
struct Trie {
    /// children[node] = [child for bit 0, child for bit 1] (NONE when absent).
    children: Vec<[u32; 2]>,
    /// leaf[node] = index of the code ending here (NONE for inner nodes).
    leaf: Vec<u32>,
    codes: Vec<Code>,
}

/// The tables of section 2, ready for decoding.
#[derive(Debug, Clone)]
pub struct Tables {
    tries: Vec<Trie>,
}

impl Tables {
    /// The default table alone (section 2 holding 19999).
    pub fn default_table() -> Result<Tables, ScpError> {
        Tables::build(vec![DEFAULT_TABLE.to_vec()])
    }

    /// Parse the body of section 2 (after its 16-byte header).
    pub fn parse(body: &[u8]) -> Result<Tables, ScpError> {
        let err = |detail: String| ScpError::Invalid { section: 2, detail };
        if body.len() < 2 {
            return Err(err("no table count".into()));
        }
        let n_tables = u16::from_le_bytes([body[0], body[1]]);
        if n_tables == DEFAULT_TABLE_MARKER {
            return Tables::default_table();
        }
        if n_tables == 0 {
            return Err(err("0 Huffman tables".into()));
        }
        let mut pos = 2usize;
        let mut tables = Vec::new();
        for t in 1..=usize::from(n_tables) {
            let Some(count) = body.get(pos..pos + 2) else {
                return Err(err(format!(
                    "Huffman table {t} of {n_tables}: the section ends before its code count"
                )));
            };
            let count = usize::from(u16::from_le_bytes([count[0], count[1]]));
            pos += 2;
            if count == 0 {
                return Err(err(format!("Huffman table {t} has no codes")));
            }
            let need = count * 9;
            let Some(raw) = body.get(pos..pos + need) else {
                return Err(err(format!(
                    "Huffman table {t} declares {count} codes ({need} bytes) but only {} bytes remain",
                    body.len() - pos
                )));
            };
            pos += need;
            let codes = raw
                .chunks_exact(9)
                .map(|c| Code {
                    prefix_bits: c[0],
                    total_bits: c[1],
                    mode: c[2],
                    base_value: i16::from_le_bytes([c[3], c[4]]),
                    base_code: u32::from_le_bytes([c[5], c[6], c[7], c[8]]),
                })
                .collect();
            tables.push(codes);
        }
        Tables::build(tables)
    }

    /// Build the tries of these tables, checking every code.
    pub fn build(tables: Vec<Vec<Code>>) -> Result<Tables, ScpError> {
        let n_tables = tables.len();
        let err = |detail: String| ScpError::Invalid { section: 2, detail };
        let mut tries = Vec::with_capacity(n_tables);
        for (t, codes) in tables.into_iter().enumerate() {
            let t = t + 1;
            let mut trie = Trie {
                children: vec![[NONE, NONE]],
                leaf: vec![NONE],
                codes: Vec::with_capacity(codes.len()),
            };
            for (i, code) in codes.into_iter().enumerate() {
                let i = i + 1;
                if code.prefix_bits == 0 {
                    return Err(err(format!(
                        "Huffman table {t}, code {i} has a prefix of 0 bits"
                    )));
                }
                if code.prefix_bits > 32 {
                    return Err(err(format!(
                        "Huffman table {t} has a code longer than 32 bits (code {i}: {} bits)",
                        code.prefix_bits
                    )));
                }
                if code.total_bits < code.prefix_bits {
                    return Err(err(format!(
                        "Huffman table {t}, code {i}: total length {} bits is shorter than its prefix of {} bits",
                        code.total_bits, code.prefix_bits
                    )));
                }
                if code.mode == 1 && code.total_bits - code.prefix_bits > 32 {
                    return Err(err(format!(
                        "Huffman table {t}, code {i}: {} bits of original value (at most 32)",
                        code.total_bits - code.prefix_bits
                    )));
                }
                if code.mode == 0 && (code.base_value < 1 || code.base_value as usize > n_tables) {
                    return Err(err(format!(
                        "Huffman table {t}, code {i} switches to table {} but there are {n_tables}",
                        code.base_value
                    )));
                }
                if code.mode > 1 {
                    return Err(err(format!(
                        "Huffman table {t}, code {i}: table mode {} (0 or 1 expected)",
                        code.mode
                    )));
                }
                // Walk the prefix, first transmitted bit = bit 0 of the base code.
                let mut node = 0usize;
                for b in 0..code.prefix_bits {
                    if trie.leaf[node] != NONE {
                        return Err(err(format!(
                            "Huffman table {t}: code {} is a prefix of code {i}",
                            trie.leaf[node] + 1
                        )));
                    }
                    let bit = ((code.base_code >> b) & 1) as usize;
                    let next = trie.children[node][bit];
                    node = if next == NONE {
                        let id = trie.children.len();
                        trie.children.push([NONE, NONE]);
                        trie.leaf.push(NONE);
                        trie.children[node][bit] = id as u32;
                        id
                    } else {
                        next as usize
                    };
                }
                if trie.leaf[node] != NONE || trie.children[node] != [NONE, NONE] {
                    return Err(err(format!(
                        "Huffman table {t}: code {i} is equal to or a prefix of another code"
                    )));
                }
                trie.leaf[node] = trie.codes.len() as u32;
                trie.codes.push(code);
            }
            tries.push(trie);
        }
        Ok(Tables { tries })
    }

    /// Decode `count` values from `data`, lead number `lead` of section `section` (for errors):
    /// every lead starts with table 1.
    pub fn decode(
        &self,
        data: &[u8],
        count: usize,
        section: u16,
        lead: usize,
    ) -> Result<Vec<i64>, ScpError> {
        let bits_total = data.len() * 8;
        if count > bits_total {
            return Err(ScpError::Invalid {
                section,
                detail: format!(
                    "lead {lead}: {count} samples cannot fit in {} bytes of Huffman-coded data",
                    data.len()
                ),
            });
        }
        let mut out = Vec::with_capacity(count);
        let mut reader = BitReader { data, pos: 0 };
        let mut table = 0usize;
        while out.len() < count {
            let trie = &self.tries[table];
            let mut node = 0usize;
            let code = loop {
                let Some(bit) = reader.bit() else {
                    return Err(ScpError::Invalid {
                        section,
                        detail: format!(
                            "lead {lead}: Huffman data end after {} of {count} samples",
                            out.len()
                        ),
                    });
                };
                let next = trie.children[node][usize::from(bit)];
                if next == NONE {
                    return Err(ScpError::Invalid {
                        section,
                        detail: format!(
                            "lead {lead}: bit pattern at bit {} is not a code of Huffman table {}",
                            reader.pos - 1,
                            table + 1
                        ),
                    });
                }
                node = next as usize;
                if trie.leaf[node] != NONE {
                    break trie.codes[trie.leaf[node] as usize];
                }
            };
            if code.mode == 0 {
                // Checked in `build`: 0 ≤ base value ≤ number of tables.
                table = (code.base_value as usize).saturating_sub(1);
                continue;
            }
            let extra = code.total_bits - code.prefix_bits;
            if extra == 0 {
                out.push(i64::from(code.base_value));
            } else {
                let Some(raw) = reader.bits(extra) else {
                    return Err(ScpError::Invalid {
                        section,
                        detail: format!(
                            "lead {lead}: Huffman data end inside a {extra}-bit value after {} of {count} samples",
                            out.len()
                        ),
                    });
                };
                // Two's complement of `extra` bits.
                let v = if raw >> (extra - 1) & 1 == 1 {
                    raw as i64 - (1i64 << extra)
                } else {
                    raw as i64
                };
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// Most-significant-bit-first reader.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<u8> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit)
    }

    fn bits(&mut self, n: u8) -> Option<u64> {
        if self.pos + usize::from(n) > self.data.len() * 8 {
            return None;
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Pack a string of '0'/'1' (spaces ignored) MSB first, padding with zeros.
    fn bits(s: &str) -> Vec<u8> {
        let bits: Vec<u8> = s.bytes().filter(|b| *b != b' ').map(|b| b - b'0').collect();
        bits.chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |acc, (i, b)| acc | (b << (7 - i)))
            })
            .collect()
    }

    #[test]
    fn default_table_builds() {
        assert_eq!(Tables::default_table().unwrap().tries.len(), 1);
        assert_eq!(Tables::default_table().unwrap().tries[0].codes.len(), 19);
    }

    #[test]
    fn default_table_short_codes_worked_by_hand() {
        // EN 1064 default table: 0 → 0, 100 → +1, 101 → −1, 1100 → +2, 1101 → −2,
        // 11100 → +3, 11101 → −3, 111100 → +4, 1111111100 → +8, 1111111101 → −8.
        let t = Tables::default_table().unwrap();
        let data = bits("0 100 101 1100 1101 11100 11101 111100 1111111100 1111111101");
        let v = t.decode(&data, 10, 6, 1).unwrap();
        assert_eq!(v, [0, 1, -1, 2, -2, 3, -3, 4, 8, -8]);
    }

    #[test]
    fn default_table_escapes_carry_8_and_16_bit_values() {
        // 1111111110 + 8 bits (two's complement): 00001001 = 9, 11110111 = −9;
        // 1111111111 + 16 bits: 0000001111101000 = 1000, 1111110000011000 = −1000.
        let t = Tables::default_table().unwrap();
        let data = bits(
            "1111111110 00001001 1111111110 11110111 1111111111 0000001111101000 1111111111 1111110000011000 0",
        );
        let v = t.decode(&data, 5, 6, 1).unwrap();
        assert_eq!(v, [9, -9, 1000, -1000, 0]);
    }

    #[test]
    fn worked_example_of_the_standard() {
        // The default-table example of prEN 1064:2002 (as transcribed by PixelMed's
        // HuffmanDecoder: the sixth byte is F1, the printed F5 contradicting the binary table,
        // and one more zero byte), second differences.
        let data = [
            0xFF, 0x83, 0x7F, 0xE0, 0xE6, 0xF1, 0x53, 0x65, 0x59, 0xB6, 0x5B, 0x96, 0x4B, 0x96,
            0x00,
        ];
        let t = Tables::default_table().unwrap();
        let mut v = t.decode(&data, 28, 6, 1).unwrap();
        crate::scp::reconstruct::undo_differences(&mut v, 2);
        assert_eq!(
            v,
            [
                13, 14, 15, 14, 16, 18, 19, 20, 22, 22, 23, 23, 23, 22, 22, 20, 17, 15, 12, 8, 6,
                3, 1, 0, -2, -2, -3, -3
            ]
        );
    }

    #[test]
    fn padding_after_the_last_sample_is_ignored() {
        let t = Tables::default_table().unwrap();
        // 101 (−1) then five padding bits that would decode as more zeros.
        assert_eq!(t.decode(&bits("10100000"), 1, 6, 1).unwrap(), [-1]);
    }

    #[test]
    fn running_out_of_bits_is_an_error() {
        let t = Tables::default_table().unwrap();
        // 100 100 100 10|0 0000 (padding): four +1 then four zeros, then nothing.
        let e = t
            .decode(&bits("100 100 100 10"), 9, 6, 2)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "section 6: lead 2: Huffman data end after 8 of 9 samples"
        );
        let e = t
            .decode(&bits("1111111110 0000"), 1, 6, 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("inside a 8-bit value"), "{e}");
    }

    #[test]
    fn custom_tables_with_switching() {
        // Table 1: 0 → 5, 10 → −5, 11 → switch to table 2.
        // Table 2: 1 → 7, 01 → value in 4 bits, 00 → switch back to table 1.
        // base codes: first transmitted bit in bit 0, so "10" is stored as 0b01.
        let t1 = vec![
            Code {
                prefix_bits: 1,
                total_bits: 1,
                mode: 1,
                base_value: 5,
                base_code: 0,
            },
            Code {
                prefix_bits: 2,
                total_bits: 2,
                mode: 1,
                base_value: -5,
                base_code: 0b01,
            },
            Code {
                prefix_bits: 2,
                total_bits: 2,
                mode: 0,
                base_value: 2,
                base_code: 0b11,
            },
        ];
        let t2 = vec![
            Code {
                prefix_bits: 1,
                total_bits: 1,
                mode: 1,
                base_value: 7,
                base_code: 1,
            },
            Code {
                prefix_bits: 2,
                total_bits: 6,
                mode: 1,
                base_value: 0,
                base_code: 0b10,
            },
            Code {
                prefix_bits: 2,
                total_bits: 2,
                mode: 0,
                base_value: 1,
                base_code: 0b00,
            },
        ];
        let t = Tables::build(vec![t1, t2]).unwrap();
        // 0 (5) 10 (−5) 11 (→2) 1 (7) 1 (7) 01 1110 (−2) 00 (→1) 0 (5)
        let data = bits("0 10 11 1 1 01 1110 00 0");
        assert_eq!(t.decode(&data, 6, 6, 1).unwrap(), [5, -5, 7, 7, -2, 5]);
    }

    #[test]
    fn ambiguous_or_oversized_codes_are_rejected() {
        let c = |p, t, b| Code {
            prefix_bits: p,
            total_bits: t,
            mode: 1,
            base_value: 0,
            base_code: b,
        };
        let e = Tables::build(vec![vec![c(1, 1, 0), c(2, 2, 0)]])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "section 2: Huffman table 1: code 1 is a prefix of code 2"
        );
        let e = Tables::build(vec![vec![c(1, 1, 0)], vec![c(40, 40, 0)]])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "section 2: Huffman table 2 has a code longer than 32 bits (code 1: 40 bits)"
        );
        let mut sw = c(1, 1, 0);
        sw.mode = 0;
        sw.base_value = 3;
        let e = Tables::build(vec![vec![sw]]).unwrap_err().to_string();
        assert_eq!(
            e,
            "section 2: Huffman table 1, code 1 switches to table 3 but there are 1"
        );
    }

    #[test]
    fn unknown_bit_pattern_is_an_error() {
        // Table with only "0" → 1: a 1 bit matches nothing.
        let t = Tables::build(vec![vec![Code {
            prefix_bits: 1,
            total_bits: 1,
            mode: 1,
            base_value: 1,
            base_code: 0,
        }]])
        .unwrap();
        let e = t.decode(&bits("01"), 2, 5, 4).unwrap_err().to_string();
        assert_eq!(
            e,
            "section 5: lead 4: bit pattern at bit 1 is not a code of Huffman table 1"
        );
    }

    #[test]
    fn parse_section_body() {
        assert_eq!(
            Tables::parse(&19999u16.to_le_bytes()).unwrap().tries[0]
                .codes
                .len(),
            19
        );
        let mut body = vec![1, 0, 2, 0];
        body.extend([1, 1, 1, 3, 0, 0, 0, 0, 0]);
        body.extend([1, 1, 1, 0xfd, 0xff, 1, 0, 0, 0]);
        let t = Tables::parse(&body).unwrap();
        assert_eq!(t.decode(&bits("0110"), 4, 6, 1).unwrap(), [3, -3, -3, 3]);
        let e = Tables::parse(&[1, 0, 5, 0, 1]).unwrap_err().to_string();
        assert_eq!(
            e,
            "section 2: Huffman table 1 declares 5 codes (45 bytes) but only 1 bytes remain"
        );
    }
}
