//! `aecg::read_aecg` on hostile input: truncated documents, DTDs with entities (billion
//! laughs, external entities), huge digit lists, too many nodes, deep nesting, oversized and
//! malformed bytes. Each must be an error (or a bounded reading), never a panic, a hang or
//! an unbounded allocation.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::aecg::{AecgError, MAX_AECG_BYTES, MAX_SAMPLES_PER_LEAD, read_aecg};

fn doc(digits: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <effectiveTime><low value="20261122081500"/></effectiveTime>
  <component><series>
    <code code="RHYTHM"/>
    <component><sequenceSet>
      <component><sequence><code code="TIME_ABSOLUTE"/>
        <value xsi:type="GLIST_TS"><head value="20261122081500"/><increment value="0.002" unit="s"/></value>
      </sequence></component>
      <component><sequence><code code="MDC_ECG_LEAD_I" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="SLIST_PQ"><origin value="0" unit="uV"/><scale value="5" unit="uV"/><digits>{digits}</digits></value>
      </sequence></component>
      <component><sequence><code code="MDC_ECG_LEAD_II" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="SLIST_PQ"><origin value="0" unit="uV"/><scale value="5" unit="uV"/><digits>{digits}</digits></value>
      </sequence></component>
    </sequenceSet></component>
    <subjectOf><annotationSet><component><annotation>
      <code code="MDC_ECG_TIME_PD_PR" codeSystem="2.16.840.1.113883.6.24"/>
      <value xsi:type="PQ" value="160" unit="ms"/>
    </annotation></component></annotationSet></subjectOf>
  </series></component>
</AnnotatedECG>
"#
    )
}

#[test]
fn the_base_document_reads() {
    let ecg = read_aecg(doc("1 2 3 4").as_bytes()).unwrap();
    assert_eq!(ecg.leads.len(), 2);
    assert_eq!(ecg.leads[1].samples_uv, [5.0, 10.0, 15.0, 20.0]);
    assert_eq!(ecg.device_measurements.len(), 1);
}

#[test]
fn every_truncation_is_an_error() {
    let full = doc("10 -20 30 -40 50 -60");
    let bytes = full.as_bytes();
    let mut errors = 0;
    for cut in 0..bytes.len() - 1 {
        // Cut inside a UTF-8 character or not: the reader must just say no.
        match read_aecg(&bytes[..cut]) {
            Err(_) => errors += 1,
            Ok(ecg) => panic!("a document cut at byte {cut} was read: {ecg:?}"),
        }
    }
    assert_eq!(errors, bytes.len() - 1);
    let e = read_aecg(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(e, AecgError::Xml(_)), "{e}");
}

#[test]
fn billion_laughs_is_refused() {
    let mut dtd = String::from("<!DOCTYPE AnnotatedECG [\n<!ENTITY lol \"lol\">\n");
    dtd.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for i in 2..10 {
        let prev = format!("&lol{};", i - 1);
        dtd.push_str(&format!("<!ENTITY lol{i} \"{}\">\n", prev.repeat(10)));
    }
    dtd.push_str("]>\n");
    let text = doc("&lol9;").replacen("<AnnotatedECG", &format!("{dtd}<AnnotatedECG"), 1);
    let e = read_aecg(text.as_bytes()).unwrap_err();
    assert!(matches!(e, AecgError::Dtd), "{e}");
    assert!(e.to_string().contains("DOCTYPE"), "{e}");
}

#[test]
fn external_entities_are_refused() {
    for dtd in [
        "<!DOCTYPE AnnotatedECG [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
        "<!DOCTYPE AnnotatedECG SYSTEM \"http://example.invalid/aecg.dtd\">",
        "<!DOCTYPE AnnotatedECG>",
        "<!-- c --><!doctype AnnotatedECG [<!ENTITY % p SYSTEM \"file:///etc/hostname\"> %p;]>",
    ] {
        let text = doc("&xxe;").replacen("<AnnotatedECG", &format!("{dtd}\n<AnnotatedECG"), 1);
        let e = read_aecg(text.as_bytes()).unwrap_err();
        assert!(matches!(e, AecgError::Dtd), "{dtd}: {e}");
    }
    // An entity reference without any DTD is simply unknown.
    let e = read_aecg(doc("&xxe;").as_bytes()).unwrap_err();
    assert!(matches!(e, AecgError::Xml(_)), "{e}");
    assert!(e.to_string().contains("xxe"), "{e}");
}

#[test]
fn a_dtd_after_the_root_is_not_xml() {
    let text = doc("1").replace(
        "<component><series>",
        "<!DOCTYPE x [<!ENTITY a \"b\">]><component><series>",
    );
    assert!(read_aecg(text.as_bytes()).is_err());
}

#[test]
fn huge_digit_lists_are_capped() {
    let mut digits = String::with_capacity(2 * (MAX_SAMPLES_PER_LEAD + 1));
    for _ in 0..=MAX_SAMPLES_PER_LEAD {
        digits.push_str("7 ");
    }
    let e = read_aecg(doc(&digits).as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("sequence MDC_ECG_LEAD_I: more than {MAX_SAMPLES_PER_LEAD} samples")
    );
    // One huge token is an error with a short message.
    let token = "9".repeat(1 << 20) + "x";
    let e = read_aecg(doc(&token).as_bytes()).unwrap_err();
    assert!(matches!(e, AecgError::BadDigit { .. }), "{e}");
    assert!(e.to_string().len() < 200, "{e}");
    // A long number that does not fit in 64 bits is still a number; beyond f32 an error.
    let e = read_aecg(doc(&"9".repeat(400)).as_bytes()).unwrap_err();
    assert!(e.to_string().contains("out of range"), "{e}");
}

#[test]
fn huge_attribute_values_make_short_messages() {
    let long = "X".repeat(1 << 20);
    let cases = [
        doc("1 x").replace("MDC_ECG_LEAD_I", &long),
        doc("1").replace(
            "value=\"0.002\" unit=\"s\"",
            &format!("value=\"{long}\" unit=\"s\""),
        ),
        doc("1").replace(
            "value=\"0.002\" unit=\"s\"",
            &format!("value=\"0.002\" unit=\"{long}\""),
        ),
        doc("1").replace(
            "<scale value=\"5\" unit=\"uV\"/>",
            &format!("<scale value=\"{long}\" unit=\"uV\"/>"),
        ),
        doc("1").replace(
            "<scale value=\"5\" unit=\"uV\"/>",
            &format!("<scale value=\"5\" unit=\"{long}\"/>"),
        ),
        doc("1").replace("AnnotatedECG", &long),
    ];
    for (i, text) in cases.iter().enumerate() {
        let e = read_aecg(text.as_bytes()).unwrap_err();
        assert!(
            e.to_string().len() < 300,
            "case {i}: {} bytes",
            e.to_string().len()
        );
    }
}

#[test]
fn oversized_input_is_refused_before_parsing() {
    let big = vec![b' '; MAX_AECG_BYTES + 1];
    let e = read_aecg(&big).unwrap_err();
    assert!(matches!(e, AecgError::TooLarge { .. }), "{e}");
}

#[test]
fn too_many_nodes() {
    let many = "<x/>".repeat(2_100_000);
    let text = doc("1").replace(
        "<code code=\"RHYTHM\"/>",
        &format!("<code code=\"RHYTHM\"/>{many}"),
    );
    let e = read_aecg(text.as_bytes()).unwrap_err();
    assert!(matches!(e, AecgError::TooManyNodes { .. }), "{e}");
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // Nested annotations: the walker stops at its depth limit.
    let depth = 50_000;
    let open = "<component><annotation><code code=\"MDC_ECG_X\"/><value value=\"1\" unit=\"ms\"/>"
        .repeat(depth);
    let close = "</annotation></component>".repeat(depth);
    let text = doc("1 2").replace(
        "<subjectOf><annotationSet>",
        &format!("<subjectOf><annotationSet>{open}{close}"),
    );
    let ecg = read_aecg(text.as_bytes()).unwrap();
    assert_eq!(ecg.leads[0].samples_uv, [5.0, 10.0]);
    assert!(
        ecg.device_measurements
            .iter()
            .any(|m| m.code == "MDC_ECG_X")
    );
    // Deeply nested plain elements.
    let text = doc("1").replace(
        "<code code=\"RHYTHM\"/>",
        &format!(
            "<code code=\"RHYTHM\"/>{}{}",
            "<a>".repeat(100_000),
            "</a>".repeat(100_000)
        ),
    );
    let _ = read_aecg(text.as_bytes());
}

#[test]
fn malformed_bytes() {
    let mut bad = doc("1 2").into_bytes();
    let at = bad.len() - 40;
    bad[at] = 0xFF;
    let e = read_aecg(&bad).unwrap_err();
    assert!(matches!(e, AecgError::Encoding { .. }), "{e}");
    assert!(e.to_string().contains("UTF-8"), "{e}");
    for junk in [
        &b""[..],
        b"\0\0\0\0",
        b"<",
        b"<AnnotatedECG",
        b"\xFF\xFE<\0",
        b"<?xml",
    ] {
        assert!(read_aecg(junk).is_err(), "{junk:?}");
    }
    // Well-formed but empty.
    let e = read_aecg(b"<AnnotatedECG/>").unwrap_err();
    assert!(matches!(e, AecgError::NoRhythmSeries), "{e}");
}

#[test]
fn pseudo_random_corruption_never_panics() {
    let base = doc("10 -20 30 -40").into_bytes();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut b = base.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() % b.len() as u64) as usize;
            let alphabet = b"<>/\"'=& 0-9azAZ\xFF";
            b[i] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        let _ = read_aecg(&b);
    }
}
