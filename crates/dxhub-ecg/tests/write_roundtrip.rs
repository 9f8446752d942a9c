//! `write::to_dicom` → `read_dicom`: the synthetic 12-lead ECG of `write_common` comes back
//! with the same leads (codes and order), sample rate, samples within half an LSB of the
//! stored Channel Sensitivity, patient (Chinese name included), device, filters, measurements
//! and statements; the file is Part 10 Explicit VR Little Endian with dxhub's File Meta and
//! the attributes the 12-lead ECG IOD requires. And the IOD choice of `write::sop_class_for`
//! at the limits of PS3.3 A.34.3.4 / A.34.4.4 / A.34.5.4, with its errors.

#![allow(clippy::unwrap_used)]

mod write_common;

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dxhub_ecg::dicom::{AMBULATORY_ECG, GENERAL_ECG, TWELVE_LEAD_ECG};
use dxhub_ecg::write::{WriteError, sop_class_for, to_dicom};
use dxhub_ecg::{Ecg, Lead, LeadCode, read_dicom};
use write_common::*;

fn s(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .unwrap_or_else(|| panic!("{tag} missing"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_owned()
}

fn items(obj: &InMemDicomObject, tag: dicom_core::Tag) -> &[InMemDicomObject] {
    obj.get(tag)
        .unwrap_or_else(|| panic!("{tag} missing"))
        .items()
        .unwrap()
}

#[test]
fn synthetic_twelve_lead_round_trip() {
    let ecg = synthetic_ecg();
    let bytes = to_dicom(&ecg, &ids()).unwrap();
    let back = read_dicom(&bytes).unwrap();

    let codes: Vec<&LeadCode> = back.leads.iter().map(|l| &l.code).collect();
    let expected: Vec<&LeadCode> = LeadCode::STANDARD_12.iter().collect();
    assert_eq!(codes, expected);
    assert_eq!(back.sample_rate_hz, 500.0);
    let lsb = sensitivities(&bytes);
    assert_within_half_lsb(&ecg, &back, &lsb, "round trip");
    // The sensitivities follow the amplitudes (1 mV leads at 0.1 µV, V2 3.9 mV at 0.125,
    // V3 6 mV at 0.25), and aVR, on a 2.5 µV grid, is stored losslessly at 2.5.
    assert_eq!(lsb[0], 0.1);
    assert_eq!(lsb[7], 0.125);
    assert_eq!(lsb[8], 0.25);
    assert_eq!(lsb[3], 2.5);
    assert_eq!(back.leads[3].samples_uv, ecg.leads[3].samples_uv);

    assert_eq!(back.patient.name.as_deref(), Some(CHINESE_NAME));
    assert_eq!(back.patient.id.as_deref(), Some("P-0042"));
    assert_eq!(back.patient.birth_date.as_deref(), Some("19700506"));
    assert_eq!(back.patient.sex.as_deref(), Some("F"));
    assert_eq!(back.device, ecg.device);
    assert_eq!(back.filters, ecg.filters);
    assert_eq!(back.device_measurements, ecg.device_measurements);
    assert_eq!(back.statements, ecg.statements);
    assert_eq!(back.acquired_at.as_deref(), Some("20240305080910.5+0800"));
    assert!(!back.has_median_beats);
}

#[test]
fn part10_file_with_the_attributes_the_iod_requires() {
    let bytes = to_dicom(&synthetic_ecg(), &ids()).unwrap();
    assert_eq!(&bytes[128..132], b"DICM");
    let file = open(&bytes);
    let meta = file.meta();
    assert_eq!(meta.transfer_syntax(), "1.2.840.10008.1.2.1");
    assert_eq!(
        meta.media_storage_sop_class_uid.trim_end_matches('\0'),
        TWELVE_LEAD_ECG
    );
    assert_eq!(
        meta.media_storage_sop_instance_uid.trim_end_matches('\0'),
        ids().sop_instance_uid
    );
    assert_eq!(
        meta.implementation_class_uid.trim_end_matches('\0'),
        dxhub_ecg::write::IMPLEMENTATION_CLASS_UID
    );

    let ds: &InMemDicomObject = &file;
    assert_eq!(s(ds, tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    assert_eq!(s(ds, tags::SOP_CLASS_UID), TWELVE_LEAD_ECG);
    assert_eq!(s(ds, tags::SOP_INSTANCE_UID), ids().sop_instance_uid);
    assert_eq!(s(ds, tags::STUDY_INSTANCE_UID), ids().study_instance_uid);
    assert_eq!(s(ds, tags::SERIES_INSTANCE_UID), ids().series_instance_uid);
    assert_eq!(s(ds, tags::MODALITY), "ECG");
    assert_eq!(s(ds, tags::SERIES_NUMBER), "7");
    assert_eq!(s(ds, tags::INSTANCE_NUMBER), "3");
    assert_eq!(s(ds, tags::ACCESSION_NUMBER), "ACC-77");
    assert_eq!(s(ds, tags::INSTITUTION_NAME), "北京协和医院");
    assert_eq!(s(ds, tags::STUDY_DESCRIPTION), "Resting ECG");
    assert_eq!(s(ds, tags::SERIES_DESCRIPTION), "ECG from SCP-ECG");
    assert_eq!(s(ds, tags::STUDY_DATE), "20240305");
    assert_eq!(s(ds, tags::STUDY_TIME), "080910.5");
    assert_eq!(s(ds, tags::CONTENT_DATE), "20240305");
    assert_eq!(s(ds, tags::CONTENT_TIME), "080910.5");
    assert_eq!(s(ds, tags::ACQUISITION_DATE_TIME), "20240305080910.5+0800");
    assert_eq!(s(ds, tags::TIMEZONE_OFFSET_FROM_UTC), "+0800");
    assert_eq!(s(ds, tags::MANUFACTURER), "Acme Medical");
    assert_eq!(s(ds, tags::MANUFACTURER_MODEL_NAME), "CardioPro 12");
    assert_eq!(s(ds, tags::DEVICE_SERIAL_NUMBER), "SN-2024-0001");
    // Type 2 attributes without a value are present, empty.
    for tag in [tags::REFERRING_PHYSICIAN_NAME, tags::STUDY_ID] {
        assert_eq!(s(ds, tag), "", "{tag}");
    }
    assert!(items(ds, tags::ACQUISITION_CONTEXT_SEQUENCE).is_empty());

    let groups = items(ds, tags::WAVEFORM_SEQUENCE);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(s(g, tags::MULTIPLEX_GROUP_LABEL), "RHYTHM");
    assert_eq!(s(g, tags::WAVEFORM_ORIGINALITY), "ORIGINAL");
    assert_eq!(s(g, tags::WAVEFORM_SAMPLE_INTERPRETATION), "SS");
    assert_eq!(s(g, tags::NUMBER_OF_WAVEFORM_CHANNELS), "12");
    assert_eq!(s(g, tags::NUMBER_OF_WAVEFORM_SAMPLES), "5000");
    assert_eq!(s(g, tags::WAVEFORM_BITS_ALLOCATED), "16");
    let data = g.get(tags::WAVEFORM_DATA).unwrap();
    assert_eq!(data.vr(), VR::OW);
    assert_eq!(data.to_bytes().unwrap().len(), 12 * 5000 * 2);
    let channels = items(g, tags::CHANNEL_DEFINITION_SEQUENCE);
    assert_eq!(channels.len(), 12);
    let expected = [
        ("5.6.3-9-1", "Lead I"),
        ("5.6.3-9-2", "Lead II"),
        ("5.6.3-9-61", "Lead III"),
        ("5.6.3-9-62", "Lead aVR"),
        ("5.6.3-9-63", "Lead aVL"),
        ("5.6.3-9-64", "Lead aVF"),
        ("5.6.3-9-3", "Lead V1"),
        ("5.6.3-9-4", "Lead V2"),
        ("5.6.3-9-5", "Lead V3"),
        ("5.6.3-9-6", "Lead V4"),
        ("5.6.3-9-7", "Lead V5"),
        ("5.6.3-9-8", "Lead V6"),
    ];
    for (ch, (value, meaning)) in channels.iter().zip(expected) {
        let src = &items(ch, tags::CHANNEL_SOURCE_SEQUENCE)[0];
        assert_eq!(s(src, tags::CODE_VALUE), value);
        assert_eq!(s(src, tags::CODING_SCHEME_DESIGNATOR), "SCPECG");
        assert_eq!(s(src, tags::CODE_MEANING), meaning);
        let unit = &items(ch, tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE)[0];
        assert_eq!(
            (
                s(unit, tags::CODE_VALUE),
                s(unit, tags::CODING_SCHEME_DESIGNATOR),
                s(unit, tags::CODE_MEANING)
            ),
            ("uV".into(), "UCUM".into(), "microvolt".into())
        );
        assert_eq!(s(ch, tags::CHANNEL_SENSITIVITY_CORRECTION_FACTOR), "1");
        assert_eq!(s(ch, tags::CHANNEL_BASELINE), "0");
        assert_eq!(s(ch, tags::CHANNEL_SAMPLE_SKEW), "0");
        assert_eq!(s(ch, tags::WAVEFORM_BITS_STORED), "16");
        assert_eq!(s(ch, tags::FILTER_LOW_FREQUENCY), "0.05");
        assert_eq!(s(ch, tags::FILTER_HIGH_FREQUENCY), "150");
        assert_eq!(s(ch, tags::NOTCH_FILTER_FREQUENCY), "50");
    }

    let annotations = items(ds, tags::WAVEFORM_ANNOTATION_SEQUENCE);
    assert_eq!(annotations.len(), 5 + 2);
    for a in annotations {
        let refs: Vec<u16> = a
            .get(tags::REFERENCED_WAVEFORM_CHANNELS)
            .unwrap()
            .to_multi_int()
            .unwrap();
        assert_eq!(refs, vec![1, 0], "annotations reference the rhythm group");
    }
    let pr = &annotations[0];
    assert_eq!(s(pr, tags::NUMERIC_VALUE), "161");
    let unit = &items(pr, tags::MEASUREMENT_UNITS_CODE_SEQUENCE)[0];
    assert_eq!(s(unit, tags::CODING_SCHEME_DESIGNATOR), "UCUM");
    assert_eq!(s(unit, tags::CODE_MEANING), "millisecond");
    assert_eq!(s(&annotations[5], tags::UNFORMATTED_TEXT_VALUE), "窦性心律");
}

#[test]
fn other_leads_and_sparse_metadata_round_trip() {
    let codes = [
        LeadCode::Other("V4R".into()),
        LeadCode::Other("X".into()),
        LeadCode::Other("ECG1".into()),
    ];
    let ecg = Ecg {
        leads: codes
            .iter()
            .map(|code| Lead {
                code: code.clone(),
                samples_uv: (0..256).map(|i| (i as f32 - 128.0) * 3.75).collect(),
            })
            .collect(),
        sample_rate_hz: 128.0,
        acquired_at: Some("20231224183000".into()),
        ..Ecg::default()
    };
    assert_eq!(sop_class_for(&ecg).unwrap(), AMBULATORY_ECG);
    let bytes = to_dicom(&ecg, &ids()).unwrap();
    let back = read_dicom(&bytes).unwrap();
    let back_codes: Vec<LeadCode> = back.leads.iter().map(|l| l.code.clone()).collect();
    assert_eq!(back_codes, codes);
    assert_within_half_lsb(&ecg, &back, &sensitivities(&bytes), "other leads");
    assert_eq!(back.acquired_at.as_deref(), Some("20231224183000"));
    assert_eq!(back.patient, Default::default());
    assert_eq!(back.device, Default::default());
    assert_eq!(back.filters, Default::default());
    assert!(back.device_measurements.is_empty() && back.statements.is_empty());
    let file = open(&bytes);
    assert!(file.get(tags::WAVEFORM_ANNOTATION_SEQUENCE).is_none());
    for tag in [
        tags::PATIENT_NAME,
        tags::PATIENT_ID,
        tags::PATIENT_BIRTH_DATE,
        tags::PATIENT_SEX,
        tags::MANUFACTURER,
    ] {
        assert_eq!(s(&file, tag), "", "Type 2 {tag} present and empty");
    }
}

#[test]
fn without_acquisition_time_content_time_is_the_writing_time() {
    let mut ecg = synthetic_ecg();
    ecg.acquired_at = None;
    let bytes = to_dicom(&ecg, &ids()).unwrap();
    let file = open(&bytes);
    assert_eq!(s(&file, tags::STUDY_DATE), "");
    assert_eq!(s(&file, tags::STUDY_TIME), "");
    let dt = s(&file, tags::ACQUISITION_DATE_TIME);
    assert_eq!(dt.len(), 14 + 5, "{dt}");
    assert!(dt.ends_with("+0000"), "{dt}");
    assert_eq!(&dt[..8], s(&file, tags::CONTENT_DATE));
    assert!(dt.as_str() >= "2024", "{dt}");

    ecg.acquired_at = Some("last tuesday".into());
    assert!(matches!(
        to_dicom(&ecg, &ids()),
        Err(WriteError::BadAcquisitionTime(_))
    ));
    let mut bad = ids();
    bad.sop_instance_uid = "1.2.abc".into();
    ecg.acquired_at = None;
    assert!(matches!(
        to_dicom(&ecg, &bad),
        Err(WriteError::BadUid {
            attr: "SOP Instance UID",
            ..
        })
    ));
}

fn flat(channels: usize, rate: f64, samples: usize) -> Ecg {
    Ecg {
        leads: (0..channels)
            .map(|i| Lead {
                code: LeadCode::from_mdc_index(i as u32 + 1),
                samples_uv: vec![0.0; samples],
            })
            .collect(),
        sample_rate_hz: rate,
        ..Ecg::default()
    }
}

#[test]
fn iod_choice() {
    let cases: &[(usize, f64, usize, &str)] = &[
        // 12-lead: ≤ 13 channels, 200–1000 Hz, ≤ 16384 samples.
        (12, 500.0, 5000, TWELVE_LEAD_ECG),
        (13, 200.0, 16384, TWELVE_LEAD_ECG),
        (1, 1000.0, 10, TWELVE_LEAD_ECG),
        // General: more samples, or 14–24 channels, still 200–1000 Hz.
        (12, 500.0, 16385, GENERAL_ECG),
        (14, 500.0, 5000, GENERAL_ECG),
        (24, 1000.0, 60_000, GENERAL_ECG),
        // Ambulatory: ≤ 12 channels, 50–1000 Hz.
        (3, 128.0, 1000, AMBULATORY_ECG),
        (12, 50.0, 100, AMBULATORY_ECG),
        (2, 199.9, 100, AMBULATORY_ECG),
    ];
    for &(channels, rate, samples, sop) in cases {
        let ecg = flat(channels, rate, samples);
        assert_eq!(
            sop_class_for(&ecg).unwrap(),
            sop,
            "{channels} channels, {rate} Hz, {samples} samples"
        );
        // And it is what gets written.
        let back = open(&to_dicom(&ecg, &ids()).unwrap());
        assert_eq!(s(&back, tags::SOP_CLASS_UID), sop);
    }

    let none: &[(usize, f64, usize)] = &[
        (25, 500.0, 100),  // too many channels for any
        (13, 100.0, 100),  // too many for Ambulatory, too slow for the others
        (12, 49.0, 100),   // too slow
        (12, 1000.5, 100), // too fast
        (3, 2000.0, 100),
    ];
    for &(channels, rate, samples) in none {
        let err = sop_class_for(&flat(channels, rate, samples)).unwrap_err();
        assert!(
            matches!(err, WriteError::NoIod { channels: c, samples: n, .. } if c == channels && n == samples),
            "{channels} channels, {rate} Hz: {err}"
        );
        assert!(err.to_string().contains("A.34.5.4"), "{err}");
    }
}

#[test]
fn unwritable_ecgs_are_precise_errors() {
    assert!(matches!(
        sop_class_for(&Ecg::default()),
        Err(WriteError::NoLeads)
    ));
    assert!(matches!(
        sop_class_for(&flat(2, 500.0, 0)),
        Err(WriteError::NoSamples)
    ));
    assert!(matches!(
        sop_class_for(&flat(2, 0.0, 10)),
        Err(WriteError::BadSampleRate(_))
    ));
    assert!(matches!(
        sop_class_for(&flat(2, f64::NAN, 10)),
        Err(WriteError::BadSampleRate(_))
    ));
    let mut e = flat(3, 500.0, 10);
    e.leads[2].samples_uv.pop();
    let err = sop_class_for(&e).unwrap_err();
    assert_eq!(
        err.to_string(),
        "lead V1 has 9 samples, the first lead has 10"
    );
    let mut e = flat(3, 500.0, 10);
    e.leads[1].samples_uv[4] = f32::NAN;
    assert!(matches!(
        to_dicom(&e, &ids()),
        Err(WriteError::NonFiniteSample { index: 4, .. })
    ));
}
