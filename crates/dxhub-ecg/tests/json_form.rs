//! The JSON ECG form: round trip `to_json_form` → JSON → `read_json`, every documented
//! error, the sniff, a Chinese patient name, and the OpenAPI schema of the form.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::json::{
    JsonEcg, JsonEcgError, MAX_LEADS, MAX_SAMPLES_PER_LEAD, looks_like_json_ecg, read_json,
    to_json_form,
};
use dxhub_ecg::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use serde_json::{Value, json};

/// A 12-lead-like ECG with distinct, non-trivial samples per lead (not on the 1.25 µV grid,
/// so quantisation is exercised).
fn sample_ecg() -> Ecg {
    let codes = [
        LeadCode::I,
        LeadCode::II,
        LeadCode::V1,
        LeadCode::V2,
        LeadCode::V3,
        LeadCode::V4,
        LeadCode::V5,
        LeadCode::V6,
        LeadCode::Other("V4R".into()),
    ];
    let leads = codes
        .into_iter()
        .enumerate()
        .map(|(k, code)| Lead {
            code,
            samples_uv: (0..2500)
                .map(|i| {
                    let t = i as f32 / 500.0;
                    (k as f32 + 1.0) * 150.0 * (t * 7.3 + k as f32).sin() - 37.3
                })
                .collect(),
        })
        .collect();
    Ecg {
        leads,
        sample_rate_hz: 500.0,
        filters: Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: Some(50.0),
        },
        device_measurements: vec![
            Measurement {
                code: "PR".into(),
                scheme: String::new(),
                meaning: "PR".into(),
                value: 160.0,
                unit: "ms".into(),
            },
            Measurement {
                code: "QRS_axis".into(),
                scheme: String::new(),
                meaning: "QRS_axis".into(),
                value: -30.0,
                unit: "deg".into(),
            },
        ],
        statements: vec!["窦性心律".into(), "正常心电图".into()],
        patient: Patient {
            id: Some("0012345".into()),
            name: Some("张三".into()),
            birth_date: Some("1958-03-14".into()),
            sex: Some("M".into()),
        },
        device: Device {
            serial: Some("SN20261122".into()),
            model: Some("ECG-12A".into()),
            manufacturer: Some("Acme Medical".into()),
        },
        acquired_at: Some("2026-11-22T08:15:00+08:00".into()),
        has_median_beats: false,
    }
}

#[test]
fn round_trip_keeps_samples_order_and_metadata() {
    let ecg = sample_ecg();
    let step = 1.25;
    let form = to_json_form(&ecg, step);
    let bytes = serde_json::to_vec(&form).unwrap();
    assert!(looks_like_json_ecg(&bytes));
    let back = read_json(&bytes).unwrap();

    let order: Vec<&LeadCode> = back.leads.iter().map(|l| &l.code).collect();
    let want: Vec<&LeadCode> = ecg.leads.iter().map(|l| &l.code).collect();
    assert_eq!(order, want, "lead order is the order of the object");
    let mut compared = 0;
    for (a, b) in ecg.leads.iter().zip(&back.leads) {
        assert_eq!(a.samples_uv.len(), b.samples_uv.len());
        for (i, (x, y)) in a.samples_uv.iter().zip(&b.samples_uv).enumerate() {
            assert!(
                (x - y).abs() <= step as f32 / 2.0 + 1e-3,
                "lead {} sample {i}: {x} → {y}",
                a.code
            );
            // On the grid: an integer number of steps.
            let steps = f64::from(*y) / step;
            assert!((steps - steps.round()).abs() < 1e-3);
            compared += 1;
        }
    }
    assert_eq!(compared, 9 * 2500);
    assert_eq!(back.sample_rate_hz, 500.0);
    assert_eq!(back.patient, ecg.patient);
    assert_eq!(back.device, ecg.device);
    assert_eq!(back.filters, ecg.filters);
    assert_eq!(back.acquired_at, ecg.acquired_at);
    assert_eq!(back.statements, ecg.statements);
    assert_eq!(back.device_measurements, ecg.device_measurements);
    // Idempotent once on the grid.
    assert_eq!(to_json_form(&back, step), form);
}

#[test]
fn chinese_patient_name_survives() {
    let text = r#"{"sample_rate_hz": 500, "uv_per_lsb": 4.88,
        "leads": {"I": [1, 2], "II": [3, 4]},
        "patient": {"name": "欧阳娜娜", "id": "门诊-001"},
        "statements": ["窦性心律，正常心电图"]}"#;
    let ecg = read_json(text.as_bytes()).unwrap();
    assert_eq!(ecg.patient.name.as_deref(), Some("欧阳娜娜"));
    assert_eq!(ecg.patient.id.as_deref(), Some("门诊-001"));
    assert_eq!(ecg.statements, ["窦性心律，正常心电图"]);
    let again = serde_json::to_string(&to_json_form(&ecg, 4.88)).unwrap();
    assert!(again.contains("欧阳娜娜"));
    assert_eq!(read_json(again.as_bytes()).unwrap().patient, ecg.patient);
    // With a UTF-8 BOM too.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(text.as_bytes());
    assert!(looks_like_json_ecg(&bom));
    assert_eq!(
        read_json(&bom).unwrap().patient.name.as_deref(),
        Some("欧阳娜娜")
    );
}

#[test]
fn minimal_form_and_scaling() {
    let ecg = read_json(
        br#"{"sample_rate_hz":250,"uv_per_lsb":2.5,"leads":{"ii":[-4,0,4],"V1":[1,2,3]}}"#,
    )
    .unwrap();
    assert_eq!(ecg.sample_rate_hz, 250.0);
    assert_eq!(ecg.leads[0].code, LeadCode::II);
    assert_eq!(ecg.leads[0].samples_uv, [-10.0, 0.0, 10.0]);
    assert_eq!(ecg.leads[1].samples_uv, [2.5, 5.0, 7.5]);
    assert_eq!(ecg.patient, Patient::default());
    assert_eq!(ecg.filters, Filters::default());
    assert_eq!(ecg.acquired_at, None);
    // Integral floats are integers; a DICOM date of birth is accepted.
    let ecg = read_json(
        br#"{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{"I":[1.0,-2e0]},"patient":{"birth_date":"19580314","sex":"f"}}"#,
    )
    .unwrap();
    assert_eq!(ecg.leads[0].samples_uv, [1.0, -2.0]);
    assert_eq!(ecg.patient.sex.as_deref(), Some("F"));
    assert_eq!(ecg.patient.birth_date.as_deref(), Some("19580314"));
}

/// The base form with top-level fields replaced (`null` removes one). serde_json's `Map`
/// sorts keys, so lead order is not tested through this.
fn form(patch: Value) -> Vec<u8> {
    let mut base = json!({
        "sample_rate_hz": 500,
        "uv_per_lsb": 4.88,
        "leads": {"I": [1, 2, 3], "II": [4, 5, 6]}
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    serde_json::to_vec(&base).unwrap()
}

fn error(bytes: &[u8]) -> JsonEcgError {
    read_json(bytes).unwrap_err()
}

#[test]
fn unknown_lead_name() {
    let e = error(&form(json!({"leads": {"I": [1], "V13": [2]}})));
    assert!(
        matches!(&e, JsonEcgError::UnknownLead(n) if n == "V13"),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("unknown lead name \"V13\""),
        "{e}"
    );
    let e = error(&form(json!({"leads": {"": [1]}})));
    assert!(matches!(e, JsonEcgError::UnknownLead(_)), "{e}");
}

#[test]
fn unequal_lead_lengths() {
    let e = error(&form(
        json!({"leads": {"I": [1, 2, 3], "II": [1, 2, 3], "V1": [1, 2]}}),
    ));
    assert_eq!(
        e.to_string(),
        "lead \"V1\": 2 samples, lead \"I\" has 3: all leads must be equally long"
    );
}

#[test]
fn sample_rate_outside_50_to_10000() {
    let e = error(&form(json!({ "sample_rate_hz": 1e300 })));
    assert_eq!(e.to_string(), "sample_rate_hz 1e300 is outside 50–10000 Hz");
    for bad in [0.0, 49.9, 10000.5, -500.0] {
        let e = error(&form(json!({ "sample_rate_hz": bad })));
        assert!(matches!(e, JsonEcgError::SampleRate(r) if r == bad), "{e}");
        assert!(e.to_string().contains("outside 50–10000 Hz"), "{e}");
    }
    for ok in [50.0, 10000.0, 256.0] {
        assert_eq!(
            read_json(&form(json!({ "sample_rate_hz": ok })))
                .unwrap()
                .sample_rate_hz,
            ok
        );
    }
    let e = error(&form(json!({ "sample_rate_hz": "500" })));
    assert!(matches!(e, JsonEcgError::Json(_)), "{e}");
}

#[test]
fn sample_value_not_an_integer() {
    let cases = [
        (
            r#"[1, 1.5]"#,
            "lead \"II\", sample 1: 1.5 is not an integer",
        ),
        (
            r#"[1, "2"]"#,
            "lead \"II\", sample 1: the string \"2\" is not an integer",
        ),
        (r#"[null]"#, "lead \"II\", sample 0: null is not an integer"),
        (r#"[true]"#, "lead \"II\", sample 0: true is not an integer"),
        (
            r#"[[1]]"#,
            "lead \"II\", sample 0: an array is not an integer",
        ),
        (
            r#"[1, 2, 2147483648]"#,
            "lead \"II\", sample 2: 2147483648 is outside the 32-bit integer range",
        ),
    ];
    for (samples, want) in cases {
        let text = format!(
            r#"{{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{{"I":[1,2,3],"II":{samples}}}}}"#
        );
        let e = error(text.as_bytes());
        assert!(matches!(e, JsonEcgError::Json(_)), "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("invalid JSON: {want} at line 1 column ")),
            "{msg}"
        );
    }
    let e = error(br#"{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{"I":5}}"#);
    assert!(
        e.to_string()
            .contains("lead \"I\": an array of integer samples"),
        "{e}"
    );
}

#[test]
fn missing_or_empty_leads() {
    for patch in [json!({"leads": null}), json!({"leads": {}})] {
        let e = error(&form(patch));
        assert!(matches!(e, JsonEcgError::NoLeads), "{e}");
        assert_eq!(e.to_string(), "no leads: \"leads\" is missing or empty");
    }
    let e = error(&form(json!({"leads": {"I": [], "II": []}})));
    assert_eq!(e.to_string(), "lead \"I\" has no samples");
}

#[test]
fn more_than_4_000_000_samples_per_lead() {
    let mut text = String::from(r#"{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{"I":["#);
    text.push_str(&"0,".repeat(MAX_SAMPLES_PER_LEAD));
    text.push_str("0]}}");
    let e = error(text.as_bytes());
    assert!(
        e.to_string()
            .starts_with("invalid JSON: lead \"I\": more than 4000000 samples at line 1"),
        "{e}"
    );
    // Exactly the maximum is accepted.
    let ok = text.replacen("[0,", "[", 1);
    let ecg = read_json(ok.as_bytes()).unwrap();
    assert_eq!(ecg.samples_per_lead(), MAX_SAMPLES_PER_LEAD);
}

#[test]
fn duplicate_and_too_many_leads() {
    let e = error(br#"{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{"I":[1],"I":[2]}}"#);
    assert!(e.to_string().contains("lead \"I\" appears twice"), "{e}");
    let e = error(br#"{"sample_rate_hz":500,"uv_per_lsb":1,"leads":{"aVR":[1],"AVR":[2]}}"#);
    assert_eq!(e.to_string(), "lead \"AVR\" is lead \"aVR\" a second time");
    let many: serde_json::Map<String, Value> = (0..=MAX_LEADS)
        .map(|i| (format!("L{i}"), json!([1])))
        .collect();
    let e = error(&form(json!({ "leads": many })));
    assert!(e.to_string().contains("more than 64 leads"), "{e}");
}

#[test]
fn scale_and_metadata_errors() {
    let cases = [
        (
            json!({"uv_per_lsb": 0}),
            "uv_per_lsb 0 is not a positive number up to 1000000 µV",
        ),
        (
            json!({"uv_per_lsb": -1.5}),
            "uv_per_lsb -1.5 is not a positive number up to 1000000 µV",
        ),
        (
            json!({"uv_per_lsb": 1e300}),
            "uv_per_lsb 1e300 is not a positive number up to 1000000 µV",
        ),
        (
            json!({"patient": {"sex": "male"}}),
            "patient.sex \"male\" is not M, F or O",
        ),
        (
            json!({"patient": {"birth_date": "14/03/1958"}}),
            "patient.birth_date \"14/03/1958\" is not a date (YYYY-MM-DD or YYYYMMDD)",
        ),
        (
            json!({"acquired_at": "2026-11-22 8:15"}),
            "acquired_at \"2026-11-22 8:15\" is not an RFC 3339 date-time (2026-11-22T08:15:00+08:00)",
        ),
        (
            json!({"filters": {"notch_hz": 0}}),
            "filters.notch_hz 0 is not a positive number of Hz",
        ),
        (
            json!({"measurements": [{"name": "PR", "value": 160}, {"name": " ", "value": 1}]}),
            "measurements[1]: the name is empty",
        ),
    ];
    for (patch, want) in cases {
        assert_eq!(error(&form(patch)).to_string(), want);
    }
    for (patch, want) in [
        (json!({"sample_rate": 500}), "unknown field `sample_rate`"),
        (
            json!({"patient": {"gender": "M"}}),
            "unknown field `gender`",
        ),
        (json!({"uv_per_lsb": null}), "missing field `uv_per_lsb`"),
        (
            json!({"measurements": [{"name": "PR"}]}),
            "missing field `value`",
        ),
    ] {
        let e = error(&form(patch));
        assert!(matches!(e, JsonEcgError::Json(_)), "{e}");
        assert!(e.to_string().contains(want), "{e} (wanted {want})");
    }
    // Not JSON at all, trailing garbage, truncation.
    assert!(matches!(
        error(b"{\"sample_rate_hz\": 5"),
        JsonEcgError::Json(_)
    ));
    assert!(matches!(
        error(&[form(json!({})), b"x".to_vec()].concat()),
        JsonEcgError::Json(_)
    ));
    for not_object in [&b"[1,2]"[..], b"", b"  ", b"\"x\"", b"500"] {
        let e = error(not_object);
        assert!(matches!(e, JsonEcgError::NotAnObject), "{e}");
    }
}

#[test]
fn long_strings_make_short_messages() {
    let long = "V".repeat(100_000);
    let e = error(&form(json!({ "leads": { long.clone(): [1] } })));
    assert_eq!(
        e.to_string().split(" at line").next().unwrap(),
        "invalid JSON: a lead name of 100000 characters (lead names have at most 64)"
    );
    for patch in [
        json!({"patient": {"sex": long.clone()}}),
        json!({"patient": {"birth_date": long.clone()}}),
        json!({ "acquired_at": long.clone() }),
    ] {
        assert!(error(&form(patch)).to_string().len() < 200);
    }
}

#[test]
fn sniff() {
    assert!(looks_like_json_ecg(b"{}"));
    assert!(looks_like_json_ecg(b" \r\n\t{\"leads\":{}}"));
    assert!(!looks_like_json_ecg(b"[{}]"));
    assert!(!looks_like_json_ecg(b"<?xml version=\"1.0\"?>"));
    assert!(!looks_like_json_ecg(b""));
    assert!(!looks_like_json_ecg(b"   "));
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = serde_json::to_vec(&to_json_form(&sample_ecg(), 2.0)).unwrap();
    for cut in (0..bytes.len() - 1).step_by(97) {
        assert!(read_json(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn dicom_times_become_rfc3339_in_the_form() {
    let mut ecg = sample_ecg();
    ecg.acquired_at = Some("20130125105919.25+0100".into());
    let form = to_json_form(&ecg, 1.0);
    assert_eq!(
        form.acquired_at.as_deref(),
        Some("2013-01-25T10:59:19.25+01:00")
    );
    ecg.acquired_at = Some("2013".into());
    assert_eq!(to_json_form(&ecg, 1.0).acquired_at, None);
    // Meanings name the measurements.
    ecg.device_measurements[0].meaning = "PR Interval".into();
    ecg.device_measurements[0].code = "5.10.2.1-3".into();
    assert_eq!(to_json_form(&ecg, 1.0).measurements[0].name, "PR Interval");
}

#[test]
fn openapi_schema_documents_every_field() {
    use utoipa::PartialSchema;
    let schema = serde_json::to_value(JsonEcg::schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    for want in [
        "sample_rate_hz",
        "uv_per_lsb",
        "leads",
        "patient",
        "device",
        "acquired_at",
        "filters",
        "measurements",
        "statements",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for (name, p) in props {
        let text = p.to_string();
        assert!(
            text.contains("description"),
            "{name} has no description: {text}"
        );
    }
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["sample_rate_hz", "uv_per_lsb", "leads"]);
    let leads = props["leads"].to_string();
    assert!(leads.contains("additionalProperties"), "{leads}");
    assert!(leads.contains("integer"), "{leads}");
    assert!(
        schema.to_string().contains("窦性心律"),
        "the example is in the schema"
    );
}
