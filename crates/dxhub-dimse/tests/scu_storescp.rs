//! `scu::store` against DCMTK's `storescp`: the report push-back instances (Encapsulated
//! PDF and Basic Text SR built by `dxhub_dicom::report_sop`) arrive with status 0x0000 and
//! the SOP Instance UIDs sent, also re-encoded when the SCP accepts Implicit VR LE only; a
//! wrong called AE title is a clear association rejection (against `dcmqrscp`: `storescp`
//! accepts any called AE title); a closed port is a connect error and a silent peer a
//! timeout, neither hanging.
//!
//! Without `storescp` (or `dcmqrscp`) a test is skipped, or fails under `CI=true` (the pattern of
//! `tests/src/peers.rs`).

#![allow(clippy::unwrap_used)]

use dicom_dictionary_std::{tags, uids};
use dicom_object::OpenFileOptions;
use dxhub_dicom::report_sop::{ReportContext, TextReport, basic_text_sr, encapsulated_pdf};
use dxhub_dimse::scu::{Outgoing, ScuError, ScuTarget, outgoing_from_part10, store};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (the test returns early) when a peer is missing outside CI; panics in CI.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if ci() {
        panic!(
            "peer {what} is missing (CI=true: a missing peer is a failure); run the tests with scripts/test.sh"
        );
    }
    eprintln!("SKIPPING: peer {what} is missing; run the tests with scripts/test.sh");
    false
}

/// DCMTK tool by name: /usr/bin first, then PATH.
fn dcmtk(name: &str) -> Option<PathBuf> {
    let usr = PathBuf::from("/usr/bin").join(name);
    if usr.exists() {
        return Some(usr);
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// A TCP port that was free a moment ago (bind :0, read it, close).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("addr")
        .port()
}

const PACS_AE: &str = "CLINICPACS";

/// DCMTK `storescp` writing what it receives to a tempdir; killed on drop.
struct Scp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Scp {
    /// `extra`: transfer syntax preference options (`+xa`, `+xi`, …).
    fn start(exe: &Path, extra: &[&str]) -> Scp {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir out");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("storescp.log")).expect("log");
        let mut child = Command::new(exe)
            .arg("-od")
            .arg(&out)
            .args(["-aet", PACS_AE, "-ta", "10", "-v"])
            .args(extra)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn storescp");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("storescp exited early: {status:?}");
            }
            assert!(
                Instant::now() < deadline,
                "storescp did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Scp { child, port, dir }
    }

    fn target(&self, called_ae: &str) -> ScuTarget {
        ScuTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            called_ae: called_ae.into(),
            calling_ae: "DXHUB".into(),
            timeout: Duration::from_secs(10),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("storescp.log")).unwrap_or_default()
    }

    /// The files storescp wrote.
    fn received(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("out"))
            .expect("read storescp out dir")
            .filter_map(|d| d.ok().map(|d| d.path()))
            .collect()
    }
}

impl Drop for Scp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn context(series: &str, instance: &str) -> ReportContext {
    ReportContext {
        patient_name: Some("张三".into()),
        patient_id: Some("XC0001234".into()),
        patient_birth_date: Some("19650412".into()),
        patient_sex: Some("M".into()),
        study_instance_uid: "1.2.826.0.1.3680043.8.498.1001".into(),
        study_date: Some("20261120".into()),
        study_time: Some("093015".into()),
        accession_number: Some("A20261120007".into()),
        study_id: Some("7".into()),
        referring_physician: Some("李医生".into()),
        institution_name: "县人民医院影像诊断中心".into(),
        series_instance_uid: series.into(),
        sop_instance_uid: instance.into(),
        series_number: 9901,
        instance_number: 1,
        content_datetime: "20261122103000+0800".into(),
        document_title: "胸部正位片 诊断报告".into(),
        author: "王医生".into(),
        verifier: "赵主任".into(),
        verifier_organization: "县人民医院影像诊断中心".into(),
        verification_datetime: "20261122104500+0800".into(),
        referenced: vec![(
            "1.2.826.0.1.3680043.8.498.2001".into(),
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION.into(),
            "1.2.826.0.1.3680043.8.498.3001".into(),
        )],
    }
}

const PDF_UID: &str = "2.25.9876543210987654321001";
const SR_UID: &str = "2.25.9876543210987654321002";

fn objects() -> Vec<Outgoing> {
    // a PDF of odd length, larger than one 16 KiB PDU so that the data set is fragmented
    let mut pdf = b"%PDF-1.4\n".to_vec();
    while pdf.len() < 100_000 {
        pdf.extend_from_slice(b"% padding comment line of the test PDF\n");
    }
    pdf.extend_from_slice(b"%%EOF\n");
    if pdf.len().is_multiple_of(2) {
        pdf.push(b'\n');
    }
    let pdf_file = encapsulated_pdf(&context("2.25.9876543210987654321000", PDF_UID), &pdf)
        .expect("encapsulated PDF");
    let sr_file = basic_text_sr(
        &context("2.25.9876543210987654321003", SR_UID),
        &TextReport {
            sections: vec![
                ("影像所见".into(), "双肺纹理清晰。".into()),
                ("诊断意见".into(), "未见明显异常。".into()),
            ],
        },
    )
    .expect("basic text SR");
    vec![
        outgoing_from_part10(&pdf_file).expect("split PDF"),
        outgoing_from_part10(&sr_file).expect("split SR"),
    ]
}

fn storescp() -> Option<PathBuf> {
    let exe = dcmtk("storescp");
    if !require("storescp (DCMTK)", exe.is_some()) {
        return None;
    }
    exe
}

fn check_received(scp: &Scp, expected_ts: &str) {
    let files = scp.received();
    assert_eq!(files.len(), 2, "files: {files:?}; log:\n{}", scp.log());
    let mut got: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let obj = OpenFileOptions::new().open_file(f).expect("open received");
            let uid = obj
                .element(tags::SOP_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches(['\0', ' '])
                .to_owned();
            let ts = obj
                .meta()
                .transfer_syntax()
                .trim_end_matches('\0')
                .to_owned();
            let name = obj.element(tags::PATIENT_NAME).unwrap().to_str().unwrap();
            assert_eq!(name.trim_end(), "张三", "{}", f.display());
            (uid, ts)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (PDF_UID.to_owned(), expected_ts.to_owned()),
            (SR_UID.to_owned(), expected_ts.to_owned())
        ]
    );
}

#[tokio::test]
async fn stores_report_instances_on_storescp() {
    let Some(exe) = storescp() else { return };
    let scp = Scp::start(&exe, &["+xa"]);
    let objects = objects();
    assert_eq!(objects[0].sop_class_uid, uids::ENCAPSULATED_PDF_STORAGE);
    assert_eq!(objects[1].sop_class_uid, uids::BASIC_TEXT_SR_STORAGE);
    assert_eq!(objects[0].transfer_syntax, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    let statuses = store(&scp.target(PACS_AE), &objects)
        .await
        .unwrap_or_else(|e| panic!("store failed: {e}; log:\n{}", scp.log()));
    assert_eq!(statuses, vec![0x0000, 0x0000], "log:\n{}", scp.log());
    check_received(&scp, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    // the association was released, not aborted
    let log = scp.log();
    assert!(log.contains("Association Release"), "log:\n{log}");
    assert!(!log.contains("Association Aborted"), "log:\n{log}");
}

#[tokio::test]
async fn reencodes_when_only_implicit_le_is_accepted() {
    let Some(exe) = storescp() else { return };
    let scp = Scp::start(&exe, &["+xi"]);
    let statuses = store(&scp.target(PACS_AE), &objects())
        .await
        .unwrap_or_else(|e| panic!("store failed: {e}; log:\n{}", scp.log()));
    assert_eq!(statuses, vec![0x0000, 0x0000], "log:\n{}", scp.log());
    check_received(&scp, uids::IMPLICIT_VR_LITTLE_ENDIAN);
}

/// DCMTK `dcmqrscp` serving one AE title: unlike `storescp` (which accepts any called AE
/// title), it rejects an association whose called AE title it does not serve.
fn start_dcmqrscp(exe: &Path, dir: &Path) -> (Child, u16) {
    let db = dir.join("db");
    std::fs::create_dir(&db).expect("mkdir db");
    let port = free_port();
    let cfg = format!(
        "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n\
         HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n\
         AETable BEGIN\n{PACS_AE} {} RW (10, 100mb) ANY\nAETable END\n",
        db.display()
    );
    let cfg_path = dir.join("dcmqrscp.cfg");
    std::fs::write(&cfg_path, cfg).expect("write dcmqrscp config");
    let log = std::fs::File::create(dir.join("dcmqrscp.log")).expect("log");
    let mut child = Command::new(exe)
        .arg("-c")
        .arg(&cfg_path)
        .arg("--single-process")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn dcmqrscp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "dcmqrscp exited early: {status:?}: {}",
                std::fs::read_to_string(dir.join("dcmqrscp.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "dcmqrscp did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

#[tokio::test]
async fn wrong_called_ae_is_rejected() {
    let exe = dcmtk("dcmqrscp");
    if !require("dcmqrscp (DCMTK)", exe.is_some()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, port) = start_dcmqrscp(&exe.unwrap(), dir.path());
    let target = ScuTarget {
        host: "127.0.0.1".into(),
        port,
        called_ae: "NOTTHEPACS".into(),
        calling_ae: "DXHUB".into(),
        timeout: Duration::from_secs(10),
    };
    let result = store(&target, &objects()).await;
    let _ = child.kill();
    let _ = child.wait();
    let err = result.expect_err("a wrong called AE title must not be accepted");
    match &err {
        ScuError::Rejected {
            called_ae,
            result,
            reason,
        } => {
            assert_eq!(called_ae, "NOTTHEPACS");
            assert_eq!(result, "permanent");
            assert!(reason.contains("called AE title not recognized"), "{err}");
        }
        other => panic!("expected an association rejection, got {other:?}"),
    }
    eprintln!("rejection as reported: {err}");
}

#[tokio::test]
async fn closed_port_is_a_connect_error_without_hanging() {
    let target = ScuTarget {
        host: "127.0.0.1".into(),
        port: free_port(),
        called_ae: PACS_AE.into(),
        calling_ae: "DXHUB".into(),
        timeout: Duration::from_secs(3),
    };
    let started = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), store(&target, &objects()))
        .await
        .expect("store hung on a closed port")
        .expect_err("nothing listens there");
    assert!(
        matches!(err, ScuError::Connect { .. }),
        "expected a connect error, got {err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn silent_peer_times_out() {
    // accepts the TCP connection but never answers the A-ASSOCIATE-RQ
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = ScuTarget {
        host: "127.0.0.1".into(),
        port,
        called_ae: PACS_AE.into(),
        calling_ae: "DXHUB".into(),
        timeout: Duration::from_millis(500),
    };
    let err = tokio::time::timeout(Duration::from_secs(10), store(&target, &objects()))
        .await
        .expect("store hung on a silent peer")
        .expect_err("the peer never answers");
    drop(listener);
    assert!(
        matches!(err, ScuError::Timeout(_)),
        "expected a timeout, got {err:?}"
    );
}
