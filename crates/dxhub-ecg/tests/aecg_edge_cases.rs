//! `aecg::read_aecg` on hand-written aECG documents: the full FDA structure (patient,
//! device, filters, annotations, representative beats), units other than µV, GLIST_PQ time
//! in ms, namespace prefixes and shuffled element order, other encodings, and the errors.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::aecg::{AecgError, looks_like_aecg, read_aecg};
use dxhub_ecg::{Filters, LeadCode, Measurement};

const XSI: &str = r#"xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

/// A lead sequence component.
fn lead(code: &str, origin: &str, scale: &str, digits: &str) -> String {
    format!(
        r#"<component><sequence>
  <code code="{code}" codeSystem="2.16.840.1.113883.6.24" codeSystemName="MDC"/>
  <value xsi:type="SLIST_PQ">{origin}{scale}<digits>{digits}</digits></value>
</sequence></component>"#
    )
}

fn uv(v: &str) -> String {
    format!(r#"<origin value="0" unit="uV"/><scale value="{v}" unit="uV"/>"#)
}

fn time_ts(increment: &str, unit: &str) -> String {
    format!(
        r#"<component><sequence>
  <code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
  <value xsi:type="GLIST_TS"><head value="20261122081500.000"/><increment value="{increment}" unit="{unit}"/></value>
</sequence></component>"#
    )
}

/// A minimal document: one rhythm series with these sequences.
fn minimal(sequences: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<AnnotatedECG {XSI}>
  <id root="1.2.3"/>
  <component><series>
    <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
    <component><sequenceSet>{sequences}</sequenceSet></component>
  </series></component>
</AnnotatedECG>"#
    )
}

/// The full structure of an FDA aECG, as an ECG cart exports it.
fn full() -> String {
    let sequences = [
        r#"<component><sequence>
  <code code="TIME_RELATIVE" codeSystem="2.16.840.1.113883.5.4"/>
  <value xsi:type="GLIST_PQ"><head value="0" unit="ms"/><increment value="2" unit="ms"/></value>
</sequence></component>"#
            .to_owned(),
        lead("MDC_ECG_LEAD_I", &uv("5"), "", "10 20 -30 40 0 1"),
        // mV scale with a µV origin
        lead(
            "MDC_ECG_LEAD_II",
            r#"<origin value="-100" unit="uV"/>"#,
            r#"<scale value="0.005" unit="mV"/>"#,
            "1 2 3 4 5 6",
        ),
        // value before code: element order varies between writers
        r#"<component><sequence>
  <value xsi:type="SLIST_PQ"><digits>
     7 8
     9 10 11 12
  </digits><scale unit="uV" value="2.5"/><origin unit="uV" value="0"/></value>
  <code codeSystem="2.16.840.1.113883.6.24" code="MDC_ECG_LEAD_V1"/>
</sequence></component>"#
            .to_owned(),
    ]
    .concat();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- exported by a test -->
<AnnotatedECG {XSI} classCode="OBS" moodCode="EVN">
  <id root="2.16.840.1.113883.3.1" extension="ECG-1"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12"/>
  <effectiveTime><low value="20261122081500+0800" inclusive="true"/><high value="20261122081510+0800"/></effectiveTime>
  <componentOf><timepointEvent><componentOf><subjectAssignment>
    <subject><trialSubject>
      <id root="2.16.840.1.113883.3.999" extension="P-0012345"/>
      <subjectDemographicPerson>
        <name><given>三</given><family>张</family></name>
        <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="19580314"/>
      </subjectDemographicPerson>
    </trialSubject></subject>
  </subjectAssignment></componentOf></timepointEvent></componentOf>
  <component><series>
    <id root="1.2.3.4"/>
    <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="20261122081501"/></effectiveTime>
    <author><seriesAuthor>
      <manufacturedSeriesDevice>
        <id root="1.3.6.1.4.1.99" extension="SN-778"/>
        <manufacturerModelName>CardioTest 12</manufacturerModelName>
        <softwareName>1.0</softwareName>
      </manufacturedSeriesDevice>
      <manufacturerOrganization><name>Acme Medical</name></manufacturerOrganization>
    </seriesAuthor></author>
    <controlVariable><controlVariable>
      <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_LOW_PASS" codeSystem="2.16.840.1.113883.6.24"/>
      <component><controlVariable>
        <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="150" unit="Hz"/>
      </controlVariable></component>
    </controlVariable></controlVariable>
    <controlVariable><controlVariable>
      <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_HIGH_PASS" codeSystem="2.16.840.1.113883.6.24"/>
      <component><controlVariable>
        <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_CUTOFF_FREQ" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="0.05" unit="Hz"/>
      </controlVariable></component>
    </controlVariable></controlVariable>
    <controlVariable><controlVariable>
      <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_NOTCH" codeSystem="2.16.840.1.113883.6.24"/>
      <component><controlVariable>
        <code code="MDC_ECG_CTL_VBL_ATTR_FILTER_NOTCH_FREQ" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="50" unit="Hz"/>
      </controlVariable></component>
    </controlVariable></controlVariable>
    <component><sequenceSet>{sequences}</sequenceSet></component>
    <derivation><derivedSeries>
      <code code="REPRESENTATIVE_BEAT" codeSystem="2.16.840.1.113883.5.4"/>
      <component><sequenceSet>
        <component><sequence><code code="TIME_RELATIVE"/><value xsi:type="GLIST_PQ"><head value="0" unit="ms"/><increment value="2" unit="ms"/></value></sequence></component>
        {beat}
      </sequenceSet></component>
      <subjectOf><annotationSet>
        <component><annotation>
          <code code="MDC_ECG_TIME_PD_QT" codeSystem="2.16.840.1.113883.6.24"/>
          <value xsi:type="PQ" value="380" unit="ms"/>
        </annotation></component>
        <component><annotation>
          <code code="MDC_ECG_TIME_PD_PR" codeSystem="2.16.840.1.113883.6.24"/>
          <value xsi:type="PQ" value="999" unit="ms"/>
        </annotation></component>
      </annotationSet></subjectOf>
    </derivedSeries></derivation>
    <subjectOf><annotationSet>
      <activityTime value="20261122081600"/>
      <component><annotation>
        <code code="MDC_ECG_INTERPRETATION" codeSystem="2.16.840.1.113883.6.24"/>
        <component><annotation>
          <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
          <value xsi:type="ST">窦性心律</value>
        </annotation></component>
        <component><annotation>
          <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
          <value xsi:type="ST">  Normal
             ECG </value>
        </annotation></component>
      </annotation></component>
      <component><annotation>
        <code code="MDC_ECG_HEART_RATE" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="72" unit="bpm"/>
      </annotation></component>
      <component><annotation>
        <code code="MDC_ECG_TIME_PD_PR" codeSystem="2.16.840.1.113883.6.24" displayName="PR interval"/>
        <value xsi:type="PQ" value="160" unit="ms"/>
      </annotation></component>
      <component><annotation>
        <code code="MDC_ECG_ANGLE_QRS_FRONT" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="-15" unit="deg"/>
      </annotation></component>
      <component><annotation>
        <code code="MDC_ECG_BEAT" codeSystem="2.16.840.1.113883.6.24"/>
        <component><annotation>
          <code code="MDC_ECG_TIME_PD_RR" codeSystem="2.16.840.1.113883.6.24"/>
          <value xsi:type="PQ" value="812" unit="ms"/>
        </annotation></component>
      </annotation></component>
      <component><annotation>
        <code code="MDC_ECG_AMPL_ST" codeSystem="2.16.840.1.113883.6.24"/>
        <value xsi:type="PQ" value="55" unit="uV"/>
        <support><supportingROI><code code="ROIPS"/><component><boundary>
          <code code="MDC_ECG_LEAD_V2" codeSystem="2.16.840.1.113883.6.24"/>
        </boundary></component></supportingROI></support>
      </annotation></component>
    </annotationSet></subjectOf>
  </series></component>
</AnnotatedECG>"#,
        beat = lead("MDC_ECG_LEAD_I", &uv("5"), "", "1 2 3"),
    )
}

#[test]
fn full_fda_structure() {
    let doc = full();
    assert!(looks_like_aecg(doc.as_bytes()));
    let ecg = read_aecg(doc.as_bytes()).unwrap();
    assert_eq!(ecg.sample_rate_hz, 500.0);
    let codes: Vec<&LeadCode> = ecg.leads.iter().map(|l| &l.code).collect();
    assert_eq!(codes, [&LeadCode::I, &LeadCode::II, &LeadCode::V1]);
    assert_eq!(
        ecg.leads[0].samples_uv,
        [50.0, 100.0, -150.0, 200.0, 0.0, 5.0]
    );
    // -100 µV + 0.005 mV × digit
    assert_eq!(
        ecg.leads[1].samples_uv,
        [-95.0, -90.0, -85.0, -80.0, -75.0, -70.0]
    );
    assert_eq!(
        ecg.leads[2].samples_uv,
        [17.5, 20.0, 22.5, 25.0, 27.5, 30.0]
    );
    assert!(ecg.has_median_beats);

    assert_eq!(ecg.patient.id.as_deref(), Some("P-0012345"));
    assert_eq!(ecg.patient.name.as_deref(), Some("张^三"));
    assert_eq!(ecg.patient.sex.as_deref(), Some("M"));
    assert_eq!(ecg.patient.birth_date.as_deref(), Some("19580314"));
    assert_eq!(ecg.acquired_at.as_deref(), Some("20261122081500+0800"));
    assert_eq!(ecg.device.serial.as_deref(), Some("SN-778"));
    assert_eq!(ecg.device.model.as_deref(), Some("CardioTest 12"));
    assert_eq!(ecg.device.manufacturer.as_deref(), Some("Acme Medical"));
    assert_eq!(
        ecg.filters,
        Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: Some(50.0)
        }
    );
    assert_eq!(ecg.statements, ["窦性心律", "Normal ECG"]);
    let m = |code: &str, meaning: &str, value: f64, unit: &str| Measurement {
        code: code.into(),
        scheme: "MDC".into(),
        meaning: meaning.into(),
        value,
        unit: unit.into(),
    };
    // Rhythm-series annotations first, then the representative beat's; the beat's PR (999)
    // comes after the rhythm's (160) and is not taken; per-beat RR and the per-lead ST
    // amplitude are skipped.
    assert_eq!(
        ecg.device_measurements,
        [
            m("MDC_ECG_HEART_RATE", "Heart Rate", 72.0, "bpm"),
            m("MDC_ECG_TIME_PD_PR", "PR interval", 160.0, "ms"),
            m("MDC_ECG_ANGLE_QRS_FRONT", "QRS Axis", -15.0, "deg"),
            m("MDC_ECG_TIME_PD_QT", "QT Interval", 380.0, "ms"),
        ]
    );
}

#[test]
fn namespace_prefixes_give_the_same_reading() {
    let plain = full();
    // Every element in a prefixed namespace: <v3:AnnotatedECG xmlns:v3="urn:hl7-org:v3">.
    let mut prefixed = String::new();
    let mut rest = plain.as_str();
    while let Some(i) = rest.find('<') {
        prefixed.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let c = rest.chars().next().unwrap();
        if c == '/' {
            prefixed.push_str("/v3:");
            rest = &rest[1..];
        } else if c.is_ascii_alphabetic() {
            prefixed.push_str("v3:");
        }
    }
    prefixed.push_str(rest);
    let prefixed = prefixed.replace(r#"xmlns="urn:hl7-org:v3""#, r#"xmlns:v3="urn:hl7-org:v3""#);
    assert!(prefixed.contains("<v3:AnnotatedECG xmlns:v3="));
    assert!(prefixed.contains("</v3:digits>"));
    assert!(looks_like_aecg(prefixed.as_bytes()));
    assert_eq!(
        read_aecg(prefixed.as_bytes()).unwrap(),
        read_aecg(plain.as_bytes()).unwrap()
    );
}

#[test]
fn mv_and_v_units() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead(
                "MDC_ECG_LEAD_I",
                r#"<origin value="0" unit="mV"/>"#,
                r#"<scale value="0.0049" unit="mV"/>"#,
                "100 -100",
            ),
            lead(
                "MDC_ECG_LEAD_II",
                r#"<origin value="0.001"/>"#,
                r#"<scale value="0.000001" unit="V"/>"#,
                "3 4",
            ),
        ]
        .concat(),
    );
    let ecg = read_aecg(doc.as_bytes()).unwrap();
    let i = &ecg.lead(&LeadCode::I).unwrap().samples_uv;
    assert!(
        (i[0] - 490.0).abs() < 1e-3 && (i[1] + 490.0).abs() < 1e-3,
        "{i:?}"
    );
    // An origin without a unit takes the scale's (V): 1000 µV + 1 µV × digit.
    assert_eq!(
        ecg.lead(&LeadCode::II).unwrap().samples_uv,
        [1003.0, 1004.0]
    );
    assert_eq!(ecg.sample_rate_hz, 500.0);
    assert_eq!(ecg.acquired_at.as_deref(), Some("20261122081500.000"));
}

#[test]
fn increments_in_s_ms_us() {
    for (inc, unit, hz) in [
        ("0.004", "s", 250.0),
        ("1", "ms", 1000.0),
        ("2", "ms", 500.0),
        ("3.90625", "ms", 256.0),
        ("125", "us", 8000.0),
    ] {
        let doc = minimal(
            &[
                time_ts(inc, unit),
                lead("MDC_ECG_LEAD_I", &uv("1"), "", "1"),
            ]
            .concat(),
        );
        assert_eq!(
            read_aecg(doc.as_bytes()).unwrap().sample_rate_hz,
            hz,
            "{inc} {unit}"
        );
    }
}

fn err(doc: &str) -> AecgError {
    read_aecg(doc.as_bytes()).unwrap_err()
}

#[test]
fn missing_time_sequence_is_an_error() {
    let e = err(&minimal(&lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 2")));
    assert!(matches!(e, AecgError::NoTimeSequence), "{e}");
    assert!(e.to_string().contains("TIME_ABSOLUTE"), "{e}");
}

#[test]
fn bad_increments() {
    let cases = [
        (time_ts("0", "s"), "\"0\" is not a positive number"),
        (time_ts("x", "s"), "\"x\" is not a positive number"),
        (time_ts("0.002", "min"), "unit \"min\" is not s, ms or us"),
        (time_ts("10", "s"), "outside 1–100000 Hz"),
    ];
    for (time, want) in cases {
        let e = err(&minimal(
            &[time, lead("MDC_ECG_LEAD_I", &uv("1"), "", "1")].concat(),
        ));
        assert!(matches!(e, AecgError::BadTime { .. }), "{e}");
        assert!(e.to_string().contains(want), "{e} (wanted {want})");
    }
    let no_inc = r#"<component><sequence><code code="TIME_ABSOLUTE"/><value xsi:type="GLIST_TS"><head value="2026"/></value></sequence></component>"#;
    let e = err(&minimal(
        &[no_inc, &lead("MDC_ECG_LEAD_I", &uv("1"), "", "1")].concat(),
    ));
    assert_eq!(
        e.to_string(),
        "time sequence TIME_ABSOLUTE: value GLIST_TS has no increment"
    );
}

#[test]
fn unequal_lead_lengths_name_the_odd_lead() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 2 3 4 5"),
            lead("MDC_ECG_LEAD_V1", &uv("1"), "", "1 2 3 4"),
            lead("MDC_ECG_LEAD_V2", &uv("1"), "", "1 2 3 4 5"),
        ]
        .concat(),
    );
    assert_eq!(
        err(&doc).to_string(),
        "sequence MDC_ECG_LEAD_V1: 4 samples, 5 in the other leads"
    );
    // The first lead can be the odd one too.
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 2 3"),
            lead("MDC_ECG_LEAD_II", &uv("1"), "", "1 2 3 4 5"),
            lead("MDC_ECG_LEAD_V2", &uv("1"), "", "1 2 3 4 5"),
        ]
        .concat(),
    );
    assert_eq!(
        err(&doc).to_string(),
        "sequence MDC_ECG_LEAD_I: 3 samples, 5 in the other leads"
    );
}

#[test]
fn sequence_errors() {
    let t = time_ts("0.002", "s");
    let cases: Vec<(String, &str)> = vec![
        (
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 2 x3 4"),
            r#"sequence MDC_ECG_LEAD_I: sample 2 "x3" is not an integer"#,
        ),
        (
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 NaN"),
            r#"sequence MDC_ECG_LEAD_I: sample 1 "NaN" is not an integer"#,
        ),
        (
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "  "),
            "sequence MDC_ECG_LEAD_I: no samples (empty digits)",
        ),
        (
            lead(
                "MDC_ECG_LEAD_I",
                r#"<origin value="0" unit="uV"/>"#,
                "",
                "1",
            ),
            "sequence MDC_ECG_LEAD_I: SLIST_PQ value without scale",
        ),
        (
            lead(
                "MDC_ECG_LEAD_I",
                "",
                r#"<scale value="1" unit="mmHg"/>"#,
                "1",
            ),
            r#"sequence MDC_ECG_LEAD_I: scale unit "mmHg" is not a voltage (uV, mV, V, nV)"#,
        ),
        (
            lead("MDC_ECG_LEAD_I", "", r#"<scale value="1"/>"#, "1"),
            r#"sequence MDC_ECG_LEAD_I: scale unit "" is not a voltage (uV, mV, V, nV)"#,
        ),
        (
            lead(
                "MDC_ECG_LEAD_I",
                r#"<origin value="abc" unit="uV"/>"#,
                r#"<scale value="1" unit="uV"/>"#,
                "1",
            ),
            r#"sequence MDC_ECG_LEAD_I: origin value "abc" is not a number"#,
        ),
        (
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1e300 1e300"),
            "sequence MDC_ECG_LEAD_I: sample 0 (1e300) is 1e300 µV, out of range",
        ),
        (
            [
                lead("MDC_ECG_LEAD_I", &uv("1"), "", "1"),
                lead("MDC_ECG_LEAD_i", &uv("1"), "", "1"),
            ]
            .concat(),
            "sequence MDC_ECG_LEAD_i: lead I appears a second time",
        ),
    ];
    for (seqs, want) in cases {
        let e = err(&minimal(&[t.clone(), seqs].concat()));
        assert_eq!(e.to_string(), want);
    }
    // A time sequence alone: no leads.
    assert!(matches!(err(&minimal(&t)), AecgError::NoLeads));
}

#[test]
fn digits_split_by_comments_and_cdata() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead(
                "MDC_ECG_LEAD_I",
                &uv("1"),
                "",
                "1 2<!-- x -->3 4<![CDATA[ 5 6]]> 7",
            ),
        ]
        .concat(),
    );
    // "1 2" + "3 4" + " 5 6" + " 7": text nodes join without a separator.
    assert_eq!(
        read_aecg(doc.as_bytes()).unwrap().leads[0].samples_uv,
        [1.0, 23.0, 4.0, 5.0, 6.0, 7.0]
    );
}

#[test]
fn decimal_digits_are_accepted() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("2"), "", "1.5 -2.0 +3"),
        ]
        .concat(),
    );
    assert_eq!(
        read_aecg(doc.as_bytes()).unwrap().leads[0].samples_uv,
        [3.0, -4.0, 6.0]
    );
}

#[test]
fn lead_codes_of_other_writers() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_AVR", &uv("1"), "", "1"),
            lead("MDC_ECG_LEAD_AVRNEG", &uv("1"), "", "2"),
            lead("MINDRAY_ECG_LEAD_V3", &uv("1"), "", "3"),
            lead("MDC_ECG_LEAD_V4R", &uv("1"), "", "4"),
            lead("5.6.3-9-64", &uv("1"), "", "5"),
            lead("ECG I", &uv("1"), "", "6"),
        ]
        .concat(),
    );
    let ecg = read_aecg(doc.as_bytes()).unwrap();
    let names: Vec<&str> = ecg.leads.iter().map(|l| l.code.name()).collect();
    assert_eq!(names, ["aVR", "-aVR", "V3", "V4R", "aVF", "ECG I"]);
}

#[test]
fn rhythm_series_choice_and_errors() {
    // Only a representative-beat series: no rhythm.
    let beat_only = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1"),
        ]
        .concat(),
    )
    .replace(r#"code="RHYTHM""#, r#"code="REPRESENTATIVE_BEAT""#);
    let e = err(&beat_only);
    assert_eq!(
        e.to_string(),
        "no rhythm series: no component/series with sequenceSet"
    );
    // A series without a sequenceSet first, then the rhythm: the rhythm is found.
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "7"),
        ]
        .concat(),
    )
    .replace(
        "<component><series>",
        "<component><series><code code=\"RHYTHM\"/></series></component><component><series>",
    );
    assert_eq!(
        read_aecg(doc.as_bytes()).unwrap().leads[0].samples_uv,
        [7.0]
    );
    // No series at all.
    let e = err(&format!(
        "<AnnotatedECG {XSI}><id root=\"1\"/></AnnotatedECG>"
    ));
    assert!(matches!(e, AecgError::NoRhythmSeries), "{e}");
}

#[test]
fn other_roots_are_not_aecg() {
    let doc = "<?xml version=\"1.0\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>";
    assert!(!looks_like_aecg(doc.as_bytes()));
    assert_eq!(
        read_aecg(doc.as_bytes()).unwrap_err().to_string(),
        "not an HL7 aECG: the root element is <ClinicalDocument>, not <AnnotatedECG>"
    );
    assert!(!looks_like_aecg(b"{\"sample_rate_hz\": 500}"));
    assert!(!looks_like_aecg(b"DICM"));
}

#[test]
fn other_encodings() {
    let body = |decl: &str, name: &str| {
        minimal(&[time_ts("0.002", "s"), lead("MDC_ECG_LEAD_I", &uv("1"), "", "1 2")].concat())
            .replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, decl)
            .replace(
                "<id root=\"1.2.3\"/>",
                &format!(
                    "<componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject><id extension=\"7\"/><subjectDemographicPerson><name>{name}</name></subjectDemographicPerson></trialSubject></subject></subjectAssignment></componentOf></timepointEvent></componentOf>"
                ),
            )
    };
    let name_of = |bytes: &[u8]| {
        assert!(looks_like_aecg(bytes));
        read_aecg(bytes).unwrap().patient.name.unwrap()
    };
    // GBK, as Chinese devices write it.
    let text = body(r#"<?xml version="1.0" encoding="GBK"?>"#, "王小明");
    let (gbk, _, bad) = encoding_rs::GBK.encode(&text);
    assert!(!bad && std::str::from_utf8(&gbk).is_err());
    assert_eq!(name_of(&gbk), "王小明");
    // ISO-8859-1 (decoded as windows-1252, its WHATWG superset).
    let text = body(r#"<?xml version='1.0' encoding='ISO-8859-1'?>"#, "Müller");
    let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    assert_eq!(name_of(&latin1), "Müller");
    // UTF-16 LE with a BOM.
    let text = body(r#"<?xml version="1.0" encoding="UTF-16"?>"#, "Żółć");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(name_of(&utf16), "Żółć");
    // UTF-8 with a BOM.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(body(r#"<?xml version="1.0"?>"#, "张三").as_bytes());
    assert_eq!(name_of(&bom), "张三");
    // An unknown encoding label.
    let text = body(r#"<?xml version="1.0" encoding="X-NONE"?>"#, "x");
    assert_eq!(
        read_aecg(text.as_bytes()).unwrap_err().to_string(),
        "the XML declaration names the encoding \"X-NONE\", which is not supported"
    );
}

#[test]
fn absolute_time_head_is_the_acquisition_time_without_effective_time() {
    let doc = minimal(
        &[
            time_ts("0.002", "s"),
            lead("MDC_ECG_LEAD_I", &uv("1"), "", "1"),
        ]
        .concat(),
    );
    assert_eq!(
        read_aecg(doc.as_bytes()).unwrap().acquired_at.as_deref(),
        Some("20261122081500.000")
    );
    // effectiveTime of the series wins over the head; that of the document over both.
    let full = read_aecg(full().as_bytes()).unwrap();
    assert_eq!(full.acquired_at.as_deref(), Some("20261122081500+0800"));
}

#[test]
fn patient_name_forms_and_gender_codes() {
    let doc = |person: &str| {
        minimal(&[time_ts("0.002", "s"), lead("MDC_ECG_LEAD_I", &uv("1"), "", "1")].concat())
            .replace(
                "<id root=\"1.2.3\"/>",
                &format!(
                    "<componentOf><timepointEvent><componentOf><subjectAssignment><subject><trialSubject><id root=\"1.2.840.99\"/><subjectDemographicPerson>{person}</subjectDemographicPerson></trialSubject></subject></subjectAssignment></componentOf></timepointEvent></componentOf>"
                ),
            )
    };
    let p = read_aecg(
        doc("<name>JD</name><administrativeGenderCode code=\"UN\"/><birthTime value=\"19700101120000\"/>")
            .as_bytes(),
    )
    .unwrap()
    .patient;
    assert_eq!(p.name.as_deref(), Some("JD"));
    assert_eq!(p.sex.as_deref(), Some("O"));
    assert_eq!(p.birth_date.as_deref(), Some("19700101"));
    // An id without extension is its root (an HL7 II of one part).
    assert_eq!(p.id.as_deref(), Some("1.2.840.99"));
    let p = read_aecg(
        doc("<name><given>John</given><given>Q</given><family>Doe</family></name><administrativeGenderCode code=\"F\"/>")
            .as_bytes(),
    )
    .unwrap()
    .patient;
    assert_eq!(p.name.as_deref(), Some("Doe^John Q"));
    assert_eq!(p.sex.as_deref(), Some("F"));
}
