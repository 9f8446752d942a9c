//! DIMSE behaviour against a real spawned hub, driven by the project's own SCU.

use dicom_dictionary_std::uids;
use dxhub_e2e::generate::{CtSpec, ct_dataset, dataset_of_file, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::scu::{ConnectError, Scu, ct_context, verification_context};
use dxhub_store::Catalog;

const CT: &str = uids::CT_IMAGE_STORAGE;

fn connect(hub: &TestHub, calling: &str) -> Result<Scu, ConnectError> {
    Scu::connect(
        hub.dicom,
        calling,
        "DXHUB",
        &[ct_context(), verification_context()],
        1 << 20,
    )
}

#[test]
fn association_acceptance_rules() {
    let hub = TestHub::spawn(HubOptions::default());
    // registered calling AE: accepted, C-ECHO works
    let mut scu = connect(&hub, "CLINIC").expect("CLINIC is registered");
    let (pc, _) = scu
        .context_for("1.2.840.10008.1.1")
        .expect("verification accepted");
    assert_eq!(scu.echo(pc).unwrap(), 0);
    scu.release().unwrap();

    // unknown calling AE: rejected-permanent, service-user, calling AE title not recognized
    assert_eq!(
        connect(&hub, "STRANGER").err(),
        Some(ConnectError::Rejected {
            result: 1,
            source: 1,
            reason: 3
        })
    );
    // wrong called AE: reason 7
    assert_eq!(
        Scu::connect(hub.dicom, "CLINIC", "NOTDXHUB", &[ct_context()], 1 << 20).err(),
        Some(ConnectError::Rejected {
            result: 1,
            source: 1,
            reason: 7
        })
    );
    // registered with another host: rejected; with ours: accepted
    hub.admin_ok(&[
        "ae",
        "add",
        "--institution",
        "城关镇卫生院",
        "--ae-title",
        "FARHOST",
        "--host",
        "10.9.9.9",
    ]);
    hub.admin_ok(&[
        "ae",
        "add",
        "--institution",
        "城关镇卫生院",
        "--ae-title",
        "NEARHOST",
        "--host",
        "127.0.0.1",
    ]);
    assert_eq!(
        connect(&hub, "FARHOST").err(),
        Some(ConnectError::Rejected {
            result: 1,
            source: 1,
            reason: 3
        })
    );
    connect(&hub, "NEARHOST")
        .expect("host matches")
        .release()
        .unwrap();
}

#[test]
fn unknown_callers_only_with_the_dev_switch() {
    let hub =
        TestHub::spawn(HubOptions::default().env("DXHUB_DICOM__ACCEPT_UNKNOWN_CALLERS", "true"));
    connect(&hub, "ANYONE")
        .expect("dev switch accepts unknown AEs")
        .release()
        .unwrap();
}

#[test]
fn unsupported_abstract_syntax_is_refused_in_negotiation() {
    let hub = TestHub::spawn(HubOptions::default());
    let contexts = vec![
        (
            "1.2.840.10008.5.1.4.31".to_owned(),
            vec![uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned()],
        ), // MWL FIND
        (CT.to_owned(), vec!["1.2.3.4.5.6".to_owned()]), // unknown TS
        ct_context(),
    ];
    let scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &contexts, 1 << 20).unwrap();
    assert_eq!(scu.results[&1], 3, "abstract syntax not supported");
    assert_eq!(scu.results[&3], 4, "transfer syntaxes not supported");
    assert_eq!(scu.results[&5], 0, "CT accepted");
    // the sender's compressed syntax is preferred over uncompressed ones
    let jpeg_ls = "1.2.840.10008.1.2.4.80";
    let scu2 = Scu::connect(
        hub.dicom,
        "CLINIC",
        "DXHUB",
        &[(
            CT.to_owned(),
            vec![
                uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned(),
                uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
                jpeg_ls.to_owned(),
            ],
        )],
        1 << 20,
    )
    .unwrap();
    assert_eq!(scu2.accepted[&1].1, jpeg_ls);
    scu.release().unwrap();
    scu2.release().unwrap();
}

#[test]
fn busy_hub_rejects_with_transient_local_limit() {
    let hub = TestHub::spawn(HubOptions::default().env("DXHUB_DICOM__MAX_ASSOCIATIONS", "1"));
    let first = connect(&hub, "CLINIC").unwrap();
    assert_eq!(
        connect(&hub, "CLINIC").err(),
        Some(ConnectError::Rejected {
            result: 2,
            source: 3,
            reason: 2
        })
    );
    first.release().unwrap();
    // the slot is free again once the first association is gone (bounded retry: the
    // server releases the permit when the association task ends)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match connect(&hub, "CLINIC") {
            Ok(s) => {
                s.release().unwrap();
                break;
            }
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(
                    e,
                    ConnectError::Rejected {
                        result: 2,
                        source: 3,
                        reason: 2
                    }
                );
                std::thread::yield_now();
            }
            Err(e) => panic!("slot never freed: {e:?}"),
        }
    }
}

/// Connections that never send an A-ASSOCIATE-RQ (a port scanner, a hostile host) hold no
/// association slot: a clinic still associates while they wait. Past the pending limit
/// they are closed at once; an oversized A-ASSOCIATE-RQ is refused before it is read.
#[test]
fn silent_connections_do_not_take_association_slots() {
    use std::io::{Read as _, Write as _};
    let hub = TestHub::spawn(HubOptions::default().env("DXHUB_DICOM__MAX_ASSOCIATIONS", "2"));
    // more silent connections than association slots (2)
    let silent: Vec<std::net::TcpStream> = (0..10)
        .map(|_| std::net::TcpStream::connect(hub.dicom).expect("connect"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let a = connect(&hub, "CLINIC").expect("a clinic associates beside silent connections");
    let b = connect(&hub, "CLINIC").expect("and a second one");
    a.release().unwrap();
    b.release().unwrap();
    // past the pending limit (here 64: 4 × 2, at least 64) the hub closes them at once
    let more: Vec<std::net::TcpStream> = (0..70)
        .map(|_| std::net::TcpStream::connect(hub.dicom).expect("connect"))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut closed = 0;
    for mut s in silent.into_iter().chain(more) {
        s.set_read_timeout(Some(std::time::Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 1];
        match s.read(&mut buf) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            _ => {} // still open, waiting for its A-ASSOCIATE-RQ
        }
    }
    assert!((16..=20).contains(&closed), "{closed} of 80 closed");
    // an A-ASSOCIATE-RQ announcing 100 MB: refused (aborted) without waiting for it
    let mut s = std::net::TcpStream::connect(hub.dicom).expect("connect");
    s.write_all(&[0x01, 0x00, 0x05, 0xF5, 0xE1, 0x00]).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        n == 0 || buf[0] == 0x07,
        "closed or A-ABORT, got {:?}",
        &buf[..n]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_a_status_and_the_association_stays_usable() {
    let hub = TestHub::spawn(HubOptions::default());
    let study = new_uid();
    let series = new_uid();
    let addr = hub.dicom;
    let (statuses, good_uid, mismatch_uid) = tokio::task::spawn_blocking(move || {
        let mut scu = Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).unwrap();
        let (pc, _) = scu.context_for(CT).unwrap();
        let mut statuses = Vec::new();

        // 1. malformed: a valid start, then an element whose length runs past the end
        let spec = CtSpec::new(&study, &series, 1);
        let mut broken = ct_dataset(&spec)[..200].to_vec();
        broken.extend_from_slice(&[0x10, 0x00, 0x20, 0x00, b'L', b'O', 0xF0, 0x00, b'X']);
        statuses.push(scu.store(pc, CT, &spec.sop_uid, &broken).unwrap());

        // 2. garbage that is not a data set at all
        statuses.push(
            scu.store(pc, CT, &new_uid(), b"\xff\xff\xff\xff garbage")
                .unwrap(),
        );

        // 3. the data set's SOP Instance UID differs from the command's
        let spec3 = CtSpec::new(&study, &series, 3);
        statuses.push(scu.store(pc, CT, &new_uid(), &ct_dataset(&spec3)).unwrap());
        let mismatch_uid = spec3.sop_uid.clone();

        // 4. the data set's SOP Class differs from the command's (MR data set on CT context)
        let spec4 = CtSpec::new(&study, &series, 4);
        let ds4 = ct_dataset(&spec4);
        let ds4 = replace_once(&ds4, CT.as_bytes(), uids::MR_IMAGE_STORAGE.as_bytes());
        statuses.push(scu.store(pc, CT, &spec4.sop_uid, &ds4).unwrap());

        // 5. a good instance on the same association
        let good = CtSpec::new(&study, &series, 5);
        statuses.push(
            scu.store(pc, CT, &good.sop_uid, &ct_dataset(&good))
                .unwrap(),
        );
        scu.release().unwrap();
        (statuses, good.sop_uid, mismatch_uid)
    })
    .await
    .unwrap();

    assert_eq!(statuses[0].0, 0xC000, "malformed: {statuses:?}");
    assert_eq!(statuses[1].0, 0xC000, "garbage: {statuses:?}");
    assert_eq!(statuses[2].0, 0xA900, "instance UID mismatch: {statuses:?}");
    assert_eq!(statuses[3].0, 0xA900, "class mismatch: {statuses:?}");
    assert!(statuses[0].1.is_some(), "failures carry an error comment");
    assert_eq!(
        statuses[4].0, 0x0000,
        "the association stays usable: {statuses:?}"
    );

    let catalog = hub.catalog().await;
    assert!(catalog.get_instance(&good_uid).await.unwrap().is_some());
    assert!(catalog.get_instance(&mismatch_uid).await.unwrap().is_none());
    assert_eq!(
        catalog.counts().await.unwrap().instances,
        1,
        "nothing of the refused instances was indexed"
    );
    let mut blobs = hub.blobs().list(Some("studies/"));
    let mut n = 0;
    while let Some(b) = futures::StreamExt::next(&mut blobs).await {
        b.unwrap();
        n += 1;
    }
    assert_eq!(n, 1, "nothing of the refused instances was stored");
    assert_eq!(
        std::fs::read_dir(hub.spool_dir()).unwrap().count(),
        0,
        "spool is empty"
    );
}

/// A C-FIND, C-GET, N-ACTION or C-CANCEL sent to a storage SCP gets what PS3.7 asks
/// (Unrecognized Operation, or nothing for C-CANCEL) and the association goes on; a
/// response the hub never asked for aborts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_the_hub_does_not_provide_are_answered_0211() {
    let hub = TestHub::spawn(HubOptions::default());
    let study = new_uid();
    let series = new_uid();
    let addr = hub.dicom;
    let (answers, echo, stored, aborted) = tokio::task::spawn_blocking(move || {
        let mut scu = Scu::connect(
            addr,
            "CLINIC",
            "DXHUB",
            &[ct_context(), verification_context()],
            1 << 20,
        )
        .unwrap();
        let (ct, _) = scu.context_for(CT).unwrap();
        let (ver, _) = scu.context_for(uids::VERIFICATION).unwrap();
        let identifier = ct_dataset(&CtSpec::new(&study, &series, 9));
        let mut answers = Vec::new();
        // C-FIND with an identifier in three fragments
        answers.push(
            scu.request(ct, 0x0020, CT, Some(&identifier[..300]), 128)
                .unwrap(),
        );
        // N-ACTION without a data set, on the verification context
        answers.push(
            scu.request(ver, 0x0130, uids::VERIFICATION, None, 0)
                .unwrap(),
        );
        // C-CANCEL: no answer is due, and none may come before the next one
        assert!(scu.request(ct, 0x0FFF, CT, None, 0).unwrap().is_none());
        // C-GET with its identifier in one fragment
        answers.push(
            scu.request(ct, 0x0010, CT, Some(&identifier[..64]), 1 << 16)
                .unwrap(),
        );
        let echo = scu.echo(ver).unwrap();
        let spec = CtSpec::new(&study, &series, 1);
        let stored = scu
            .store(ct, CT, &spec.sop_uid, &ct_dataset(&spec))
            .unwrap();
        scu.release().unwrap();

        let mut scu = Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).unwrap();
        let (ct, _) = scu.context_for(CT).unwrap();
        let aborted = scu.request(ct, 0x8001, CT, None, 0);
        (answers, echo, stored, aborted)
    })
    .await
    .unwrap();

    let answers: Vec<_> = answers.into_iter().map(Option::unwrap).collect();
    let fields: Vec<u16> = answers.iter().map(|a| a.command_field).collect();
    assert_eq!(fields, [0x8020, 0x8130, 0x8010], "{answers:?}");
    assert!(
        answers.iter().all(|a| a.status == 0x0211),
        "Unrecognized Operation: {answers:?}"
    );
    assert_eq!(echo, 0x0000);
    assert_eq!(stored.0, 0x0000, "the association stays usable: {stored:?}");
    assert_eq!(hub.catalog().await.counts().await.unwrap().instances, 1);
    assert!(
        aborted.is_err(),
        "an unsolicited response ends the association: {aborted:?}"
    );
}

fn replace_once(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let pos = hay
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    let mut v = hay[..pos].to_vec();
    v.extend_from_slice(to);
    v.extend_from_slice(&hay[pos + from.len()..]);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_idempotent_and_changed_content_is_versioned() {
    let hub = TestHub::spawn(HubOptions::default());
    let spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    let first = ct_dataset(&spec);
    let mut changed_spec = spec.clone();
    changed_spec.patient_name = "Test^Corrected".into();
    let changed = ct_dataset(&changed_spec);
    assert_ne!(first, changed);
    let addr = hub.dicom;
    let (uid, a, b) = (spec.sop_uid.clone(), first.clone(), changed.clone());
    let statuses = tokio::task::spawn_blocking(move || {
        let mut scu = Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).unwrap();
        let (pc, _) = scu.context_for(CT).unwrap();
        let s = vec![
            scu.store(pc, CT, &uid, &a).unwrap().0,
            scu.store(pc, CT, &uid, &a).unwrap().0,
            scu.store(pc, CT, &uid, &b).unwrap().0,
            scu.store(pc, CT, &uid, &b).unwrap().0,
        ];
        scu.release().unwrap();
        s
    })
    .await
    .unwrap();
    assert_eq!(statuses, vec![0x0000, 0x0000, 0xB000, 0x0000]);

    let catalog = hub.catalog().await;
    let versions = catalog.instance_versions(&spec.sop_uid).await.unwrap();
    assert_eq!(versions.len(), 2, "both versions kept");
    let current = catalog.get_instance(&spec.sop_uid).await.unwrap().unwrap();
    let blob = hub.blobs().get_bytes(&current.blob_key).await.unwrap();
    assert_eq!(
        dataset_of_file(&blob),
        &changed[..],
        "the newest version is served"
    );
    let counts = catalog.counts().await.unwrap();
    assert_eq!(counts.instances, 1);
    assert_eq!(counts.instance_versions, 2);
    let study = catalog.get_study(&spec.study_uid).await.unwrap().unwrap();
    assert_eq!(study.num_instances, 1);
}

/// An instance indexed before data set keys became BLAKE3 (its key the data set's
/// SHA-256, tagged `sha256:` by the migration) is still recognised when it is sent again:
/// Success, no new version, no new blob. A changed data set is still a new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_send_of_an_instance_keyed_before_blake3_is_a_duplicate() {
    use sha2::{Digest, Sha256};
    use sqlx::Connection;
    let hub = TestHub::spawn(HubOptions::default());
    let spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    let first = ct_dataset(&spec);
    let mut changed_spec = spec.clone();
    changed_spec.patient_name = "Test^Changed".into();
    let changed = ct_dataset(&changed_spec);
    let addr = hub.dicom;
    let send = move |datasets: Vec<Vec<u8>>, uid: String| {
        tokio::task::spawn_blocking(move || {
            let mut scu = Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).unwrap();
            let (pc, _) = scu.context_for(CT).unwrap();
            let s: Vec<u16> = datasets
                .iter()
                .map(|d| scu.store(pc, CT, &uid, d).unwrap().0)
                .collect();
            scu.release().unwrap();
            s
        })
    };
    assert_eq!(
        send(vec![first.clone()], spec.sop_uid.clone())
            .await
            .unwrap(),
        [0]
    );
    let catalog = hub.catalog().await;
    let stored = catalog.get_instance(&spec.sop_uid).await.unwrap().unwrap();
    assert_eq!(
        stored.dataset_hash,
        format!("blake3:{}", blake3::hash(&first).to_hex())
    );
    // as a hub before BLAKE3 keys had indexed it (what the migration leaves)
    let legacy = format!("sha256:{}", hex::encode(Sha256::digest(&first)));
    let url = format!("sqlite://{}", hub.data_dir.join("index.sqlite").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE instances SET dataset_hash = $1 WHERE id = $2")
        .bind(&legacy)
        .bind(stored.id)
        .execute(&mut db)
        .await
        .unwrap();
    drop(db);

    let statuses = send(vec![first.clone(), changed], spec.sop_uid.clone())
        .await
        .unwrap();
    assert_eq!(statuses, [0x0000, 0xB000], "re-send, then changed content");
    let versions = catalog.instance_versions(&spec.sop_uid).await.unwrap();
    assert_eq!(
        versions.len(),
        2,
        "the re-send added no version: {versions:?}"
    );
    assert_eq!(versions[0].dataset_hash, legacy);
    assert_eq!(versions[0].blob_key, stored.blob_key);
    use futures::StreamExt;
    let blobs: Vec<String> = hub
        .blobs()
        .list(Some("studies"))
        .map(|m| m.unwrap().key)
        .collect()
        .await;
    assert_eq!(blobs.len(), 2, "one blob per version: {blobs:?}");
}

/// dicom-rs #589: PDUs arriving in quick succession must not be lost. Many small instances,
/// each cut into 4 KiB PDUs, written back to back in batches without waiting for responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_instances_back_to_back_on_one_association() {
    let hub = TestHub::spawn(HubOptions::default());
    let study = new_uid();
    let series = new_uid();
    let addr = hub.dicom;
    let n = 600;
    let items: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let mut s = CtSpec::new(&study, &series, i);
            s.rows = 40;
            s.cols = 40;
            (s.sop_uid.clone(), ct_dataset(&s))
        })
        .collect();
    let sent = items.clone();
    let statuses = tokio::task::spawn_blocking(move || {
        let mut scu = Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).unwrap();
        scu.set_send_pdu_max(4096);
        let (pc, _) = scu.context_for(CT).unwrap();
        let mut all = Vec::new();
        for batch in sent.chunks(20) {
            all.extend(scu.store_pipelined(pc, CT, batch).unwrap());
        }
        scu.release().unwrap();
        all
    })
    .await
    .unwrap();
    assert_eq!(statuses.len(), n as usize);
    assert!(
        statuses.iter().all(|s| *s == 0),
        "every instance acknowledged"
    );
    let catalog = hub.catalog().await;
    assert_eq!(catalog.counts().await.unwrap().instances, n as i64);
    let blobs = hub.blobs();
    for (uid, ds) in items.iter().step_by(7) {
        let row = catalog.get_instance(uid).await.unwrap().expect("indexed");
        let blob = blobs.get_bytes(&row.blob_key).await.unwrap();
        assert_eq!(dataset_of_file(&blob), &ds[..], "byte-exact");
    }
}

/// One member may not add to another member's study, nor hide another member's instance
/// behind a "new version" with the same SOP Instance UID: 0124 (not authorized).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_institutions_study_or_instance_is_refused() {
    let hub = TestHub::spawn(HubOptions::default());
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "测试医共体",
        "--name",
        "南山乡卫生院",
        "--level",
        "township",
        "--parent",
        "县人民医院",
    ]);
    hub.admin_ok(&[
        "ae",
        "add",
        "--institution",
        "南山乡卫生院",
        "--ae-title",
        "NANSHAN",
    ]);
    let spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    let original = ct_dataset(&spec);
    // the other township: its own new study is fine; the first township's study UID is not,
    // nor the first township's SOP Instance UID in a study of its own
    let mut into_study = CtSpec::new(&spec.study_uid, &new_uid(), 2);
    into_study.patient_id = "OTHER".into();
    let mut same_sop = CtSpec::new(&new_uid(), &new_uid(), 1);
    same_sop.sop_uid = spec.sop_uid.clone();
    same_sop.patient_id = "OTHER".into();
    let own = CtSpec::new(&new_uid(), &new_uid(), 1);
    let addr = hub.dicom;
    let jobs = (
        (spec.sop_uid.clone(), original),
        (into_study.sop_uid.clone(), ct_dataset(&into_study)),
        (same_sop.sop_uid.clone(), ct_dataset(&same_sop)),
        (own.sop_uid.clone(), ct_dataset(&own)),
    );
    let statuses = tokio::task::spawn_blocking(move || {
        let store = |calling: &str, (uid, ds): &(String, Vec<u8>)| {
            let mut scu = Scu::connect(addr, calling, "DXHUB", &[ct_context()], 1 << 20).unwrap();
            let (pc, _) = scu.context_for(CT).unwrap();
            let s = scu.store(pc, CT, uid, ds).unwrap().0;
            scu.release().unwrap();
            s
        };
        vec![
            store("CLINIC", &jobs.0),
            store("NANSHAN", &jobs.1),
            store("NANSHAN", &jobs.2),
            store("NANSHAN", &jobs.3),
            // the owner may still send a new version
            store("CLINIC", &jobs.0),
        ]
    })
    .await
    .unwrap();
    assert_eq!(statuses, vec![0x0000, 0x0124, 0x0124, 0x0000, 0x0000]);
    let catalog = hub.catalog().await;
    assert_eq!(
        catalog
            .instance_versions(&spec.sop_uid)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        catalog
            .get_study(&spec.study_uid)
            .await
            .unwrap()
            .unwrap()
            .num_instances,
        1
    );
    assert_eq!(catalog.counts().await.unwrap().instances, 2);
}
