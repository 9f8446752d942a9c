"""Our own SCP-ECG 2.x encoder (independent of the Rust reader) for testing Huffman coding,
difference encoding, reference-beat subtraction and bimodal compression.

Usage: scp_encode.py IN.dcm OUT_DIR

No third-party producer of such records is packaged (PyPI, npm, Debian: biosig's writer only
writes uncompressed data and crashes for versions 1.x/2.x), so this script writes them, from
the EN 1064 record layout: CRC-CCITT (0x1021, init 0xFFFF) of the record and of each section,
section 0 pointers (1-based indices), section 1 tags, section 2 Huffman tables (the standard's
default table, 19999, or our own tables with table switching), section 3 leads, section 4 QRS
subtraction and protected zones, section 5 reference beat, section 6 rhythm data, section 7
global measurements, sections 8 and 11 statements.

The samples are the 12-lead rhythm of a DICOM ECG (raw 16-bit values, AVM = the channel
sensitivity in nV, 1 ms interval). OUT_DIR gets, each with the same section 1/7/8/11 content:

- ``default_d2.scp``: default Huffman table, second differences.
- ``gb2312.scp``: the same with the patient's name and the statements in GB 2312, as the
  language support code of section 1 says (0x27).
- ``custom_d1.scp``: two stored Huffman tables, switching every 250 samples, first differences.
- ``raw_v13.scp``: no section 2 (16-bit samples), no differences, protocol version 1.3.
- ``refbeat.scp``: reference beat (section 5) subtracted in the subtraction zone of every QRS
  (QRS fiducials: peaks of lead II; reference beat: the mean of the beats, 600 ms, fiducial at
  its sample 251), default Huffman table, second differences; lossless.
- ``bimodal.scp``: as refbeat.scp, with the reference beat's AVM half the rhythm's, plus
  bimodal compression: outside the protected zones the residual is averaged over blocks of 4
  samples (section 6 interval 4 ms); lossy there, exact inside the protected zones.

and ``small_*.scp``: the same records of leads I, II and III over 2.5 s (for damage tests); and
``truth.json`` (of the full records): ``{"avm_nv", "interval_us", "leads": [{"name", "code", "raw": [...]}],
"protected": [[qb, qe], ...] (1-based), "beats": [[sb, fc, se], ...]}``.
"""

import json
import os
import struct
import sys

import numpy as np
import pydicom

SCP_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8,
             "III": 61, "aVR": 62, "aVL": 63, "aVF": 64}


def crc_ccitt(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class Bits:
    """Most-significant-bit-first writer."""

    def __init__(self):
        self.bits = []

    def put(self, code):  # code: string of '0'/'1'
        self.bits.extend(int(c) for c in code)

    def put_int(self, value, n):
        if not -(1 << (n - 1)) <= value < (1 << (n - 1)):
            raise ValueError(f"{value} does not fit in {n} bits")
        self.put(format(value & ((1 << n) - 1), f"0{n}b"))

    def bytes(self):
        out = bytearray()
        for i in range(0, len(self.bits), 8):
            chunk = self.bits[i:i + 8] + [0] * (8 - len(self.bits[i:i + 8]))
            out.append(int("".join(map(str, chunk)), 2))
        return bytes(out)


# The default table of the standard (annex C): 0 -> 0, +v -> v ones then 00, -v -> v ones
# then 01 (v = 1..8), escapes 1111111110 + 8 bits and 1111111111 + 16 bits.
DEFAULT = {0: "0"}
for v in range(1, 9):
    DEFAULT[v] = "1" * v + "00"
    DEFAULT[-v] = "1" * v + "01"


def encode_default(values):
    w = Bits()
    for v in values:
        if v in DEFAULT:
            w.put(DEFAULT[v])
        elif -128 <= v <= 127:
            w.put("1111111110")
            w.put_int(v, 8)
        else:
            w.put("1111111111")
            w.put_int(v, 16)
    return w.bytes()


# Our two tables: (prefix, total bits, mode, base value).
TABLE1 = [("0", 1, 1, 0), ("100", 3, 1, 1), ("101", 3, 1, -1), ("1100", 4, 1, 2),
          ("1101", 4, 1, -2), ("1110", 20, 1, 0), ("11110", 5, 1, 3), ("11111", 5, 0, 2)]
TABLE2 = [("11", 2, 1, 0), ("01", 2, 1, 1), ("001", 3, 1, -1), ("0001", 12, 1, 0),
          ("00001", 21, 1, 0), ("00000", 5, 0, 1)]


def encode_custom(values, switch_every=250):
    w = Bits()
    table = 1
    for i, v in enumerate(values):
        if i and i % switch_every == 0:
            w.put("11111" if table == 1 else "00000")
            table = 2 if table == 1 else 1
        if table == 1:
            codes = {0: "0", 1: "100", -1: "101", 2: "1100", -2: "1101", 3: "11110"}
            if v in codes:
                w.put(codes[v])
            else:
                w.put("1110")
                w.put_int(v, 16)
        else:
            codes = {0: "11", 1: "01", -1: "001"}
            if v in codes:
                w.put(codes[v])
            elif -128 <= v <= 127:
                w.put("0001")
                w.put_int(v, 8)
            else:
                w.put("00001")
                w.put_int(v, 16)
    return w.bytes()


def table_bytes(table):
    out = struct.pack("<H", len(table))
    for prefix, total, mode, base in table:
        code = int(prefix[::-1], 2)  # first transmitted bit in bit 0
        out += struct.pack("<BBBhI", len(prefix), total, mode, base, code)
    return out


def differences(x, order):
    x = [int(v) for v in x]
    if order == 0:
        return x
    if order == 1:
        return [x[0]] + [x[i] - x[i - 1] for i in range(1, len(x))]
    return x[:2] + [x[i] - 2 * x[i - 1] + x[i - 2] for i in range(2, len(x))]


def section(sid, body, version):
    if len(body) % 2:
        body += b"\0"
    length = 16 + len(body)
    reserved = b"SCPECG" if sid == 0 else b"\0" * 6
    rest = struct.pack("<HIBB", sid, length, version, version) + reserved + body
    return struct.pack("<H", crc_ccitt(rest)) + rest


def record(bodies, version):
    """bodies: {section id: body}; sections 0..11 listed in section 0."""
    ids = list(range(12))
    s0_len = 16 + 10 * len(ids)
    pos = 6 + s0_len  # 0-based offset of the next section
    pointers = [(0, s0_len, 7)]
    blobs = []
    for sid in ids[1:]:
        if sid in bodies:
            blob = section(sid, bodies[sid], version)
            pointers.append((sid, len(blob), pos + 1))
            blobs.append(blob)
            pos += len(blob)
        else:
            pointers.append((sid, 0, 0))
    s0 = section(0, b"".join(struct.pack("<HII", *p) for p in pointers), version)
    assert len(s0) == s0_len
    rest = s0 + b"".join(blobs)
    total = 6 + len(rest)
    body = struct.pack("<I", total) + rest
    return struct.pack("<H", crc_ccitt(body)) + body


def tag(t, value):
    return struct.pack("<BH", t, len(value)) + value


def section1(version, last=b"Rossi\0", first=b"Maria\0", language=0x00):
    """``language``: the language support code (tag 14, byte 17; 0x27 = GB 2312)."""
    dev = struct.pack("<HHHBB", 1, 2, 3, 0, 8) + b"ELI250"
    dev += bytes([version, 0xA0, language, 0xD0, 1]) + b"\0" * 16
    dev += bytes([4]) + b"1.0\0" + b"SN-4711\0" + b"SYS\0" + b"dxhub test encoder\0" + b"Mortara Instrument\0"
    return b"".join([
        tag(0, last), tag(1, first), tag(2, b"642341\0"),
        tag(5, struct.pack("<HBB", 1971, 1, 23)), tag(8, bytes([2])),
        tag(14, dev),
        tag(25, struct.pack("<HBB", 2013, 1, 25)), tag(26, bytes([10, 59, 19])),
        tag(27, struct.pack("<H", 5)), tag(28, struct.pack("<H", 150)), tag(29, bytes([2])),
        tag(34, struct.pack("<hB", 60, 0) + b"\0\0"),
        tag(255, b""),
    ])


def section7():
    body = struct.pack("<BBHH", 1, 0, 982, 29999)
    body += struct.pack("<HHHHHhhh", 100, 210, 261, 336, 629, 74, 52, 57)
    body += struct.pack("<H", 0)
    body += struct.pack("<HHHBH", 61, 29999, 370, 1, 0)
    return body


def statements(texts, coded):
    body = struct.pack("<BHBBBBB", 0, 2013, 1, 25, 10, 59, 19) + bytes([len(texts)])
    for i, t in enumerate(texts):
        v = (b"\x01" + t) if coded else t
        body += struct.pack("<BH", i + 1, len(v)) + v
    return body


def main():
    src, out_dir = sys.argv[1:3]
    os.makedirs(out_dir, exist_ok=True)
    ds = pydicom.dcmread(src)
    item = next(g for g in ds.WaveformSequence
                if "MEDIAN" not in str(g.get("MultiplexGroupLabel", "")).upper())
    n_ch, n = int(item.NumberOfWaveformChannels), int(item.NumberOfWaveformSamples)
    raw = np.frombuffer(item.WaveformData, dtype="<i2").reshape(n, n_ch).T.astype(np.int64)
    names = []
    for ch in item.ChannelDefinitionSequence:
        m = str(ch.ChannelSourceSequence[0].CodeMeaning).strip()
        m = m[5:] if m.startswith("Lead ") else m
        names.append(m.split("(")[0].strip())
    step_nv = round(float(item.ChannelDefinitionSequence[0].ChannelSensitivity) * 1000)
    interval_us = round(1e6 / float(item.SamplingFrequency))
    encode_all(raw, names, step_nv, interval_us, out_dir, "", True)
    # Small records (leads I, II, III, 2.5 s) for the damage tests, which read them many times.
    encode_all(raw[:3, :2500], names[:3], step_nv, interval_us, out_dir, "small_", False)


def encode_all(raw, names, step_nv, interval_us, out_dir, prefix, with_truth):
    n_ch, n = raw.shape
    codes = [SCP_CODES[nm] for nm in names]

    def s3(flags):
        body = bytes([n_ch, flags])
        for c in codes:
            body += struct.pack("<IIB", 1, n, c)
        return body

    def s6(avm, interval, diff, bimodal, encoded):
        body = struct.pack("<HHBB", avm, interval, diff, bimodal)
        body += b"".join(struct.pack("<H", len(e)) for e in encoded) + b"".join(encoded)
        return body

    common = {1: section1(20), 7: section7(),
              8: statements([b"RITMO SINUSALE\0", b"ECG NORMALE\0"], False),
              11: statements([b"1\0SINUS RHYTHM\0"], True)}
    simultaneous = 0x04 | (n_ch << 3)

    def write(name, bodies, version=20):
        b = dict(common)
        if version != 20:
            b[1] = section1(version)
        b.update(bodies)
        with open(os.path.join(out_dir, prefix + name), "wb") as f:
            f.write(record(b, version))

    # 1. default table, second differences
    enc = [encode_default(differences(x, 2)) for x in raw]
    write("default_d2.scp", {2: struct.pack("<H", 19999), 3: s3(simultaneous),
                             6: s6(step_nv, interval_us, 2, 0, enc)})
    # 1b. the same, its text in GB 2312 as section 1 states (language support code 0x27)
    gb = lambda s: s.encode("gb2312") + b"\0"
    write("gb2312.scp", {1: section1(20, gb("欧阳"), gb("娜娜"), 0x27),
                         2: struct.pack("<H", 19999), 3: s3(simultaneous),
                         6: s6(step_nv, interval_us, 2, 0, enc),
                         8: statements([gb("窦性心律"), gb("正常心电图")], False),
                         11: statements([b"1\0" + gb("窦性心律")], True)})
    # 2. custom tables with switching, first differences
    enc = [encode_custom(differences(x, 1)) for x in raw]
    write("custom_d1.scp", {2: struct.pack("<H", 2) + table_bytes(TABLE1) + table_bytes(TABLE2),
                            3: s3(simultaneous), 6: s6(step_nv, interval_us, 1, 0, enc)})
    # 3. uncompressed, version 1.3
    enc = [struct.pack(f"<{n}h", *[int(v) for v in x]) for x in raw]
    write("raw_v13.scp", {3: s3(simultaneous), 6: s6(step_nv, interval_us, 0, 0, enc)}, 13)

    # 4. reference beat subtraction. QRS fiducials: peaks of lead II above half its maximum.
    ii = raw[names.index("II")]
    thr = ii.min() + 0.5 * (ii.max() - ii.min())
    peaks, last = [], -10**9
    for i in range(1, n - 1):
        if ii[i] >= thr and ii[i] >= ii[i - 1] and ii[i] > ii[i + 1] and i - last > 300:
            peaks.append(i)
            last = i
    pre, post = 250, 350  # reference beat window: 600 samples, fiducial at sample 251
    peaks = [p for p in peaks if p - pre >= 0 and p + post <= n]
    ref = np.rint(np.mean([raw[:, p - pre:p + post] for p in peaks], axis=0)).astype(np.int64)
    beats, protected = [], []
    residual = raw.copy()
    for p in peaks:
        fc = p + 1
        sb, se = fc - 100, fc + 300
        qb, qe = fc - 40, fc + 59
        beats.append((sb, fc, se))
        protected.append((qb, qe))
        for t in range(sb, se + 1):
            residual[:, t - 1] -= ref[:, pre + t - fc]
    s4 = struct.pack("<HHH", (pre + post) * interval_us // 1000, pre + 1, len(peaks))
    s4 += b"".join(struct.pack("<HIII", 0, sb, fc, se) for sb, fc, se in beats)
    s4 += b"".join(struct.pack("<II", qb, qe) for qb, qe in protected)
    # Section 5 with the rhythm's AVM, and with half of it (values doubled) for bimodal.scp.
    s5 = s6(step_nv, interval_us, 2, 0, [encode_default(differences(r, 2)) for r in ref])
    s5_half = s6(step_nv // 2, interval_us, 2, 0, [encode_default(differences(2 * r, 2)) for r in ref])
    enc = [encode_default(differences(x, 2)) for x in residual]
    write("refbeat.scp", {2: struct.pack("<H", 19999), 3: s3(simultaneous | 0x01), 4: s4, 5: s5,
                          6: s6(step_nv, interval_us, 2, 0, enc)})

    # 5. bimodal: outside the protected zones, means of 4 residual samples.
    k = 4
    stored = []
    for x in residual:
        out, cur = [], 1
        zones = protected + [(n + 1, n)]
        for qb, qe in zones:
            gap = x[cur - 1:qb - 1]
            m = len(gap) // k
            out += [int(np.floor(np.mean(gap[j * k:(j + 1) * k]) + 0.5)) for j in range(m)]
            out += [int(v) for v in gap[m * k:]]
            if qb <= n:
                out += [int(v) for v in x[qb - 1:qe]]
            cur = qe + 1
        stored.append(out)
    enc = [encode_default(differences(s, 2)) for s in stored]
    write("bimodal.scp", {2: struct.pack("<H", 19999), 3: s3(simultaneous | 0x01), 4: s4, 5: s5_half,
                          6: s6(step_nv, interval_us * k, 2, 1, enc)})

    if not with_truth:
        return
    with open(os.path.join(out_dir, "truth.json"), "w") as f:
        json.dump({"avm_nv": step_nv, "interval_us": interval_us,
                   "leads": [{"name": nm, "code": c, "raw": [int(v) for v in x]}
                             for nm, c, x in zip(names, codes, raw)],
                   "protected": protected, "beats": beats}, f)


if __name__ == "__main__":
    main()
