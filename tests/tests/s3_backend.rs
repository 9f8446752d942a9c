//! The hub on an S3-compatible object store (moto, MinIO…; `scripts/test.sh` starts one):
//! C-STORE → blob uploaded (multipart for large instances) under the configured prefix →
//! index row; identical re-sends are idempotent; fsck sees a clean store.

use dicom_dictionary_std::uids::{CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN};
use dxhub_e2e::generate::{self, CtSpec};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_e2e::scu::{self, Scu};
use dxhub_store::Catalog;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Instant;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn associate(hub: &TestHub) -> (Scu, u8) {
    let scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &[scu::ct_context()], 1 << 20)
        .unwrap_or_else(|e| {
            panic!(
                "association with the hub failed: {e:?}\nhub log:\n{}",
                hub.log()
            )
        });
    let (pc, ts) = scu
        .context_for(CT_IMAGE_STORAGE)
        .expect("CT Image Storage accepted");
    assert_eq!(
        ts, EXPLICIT_VR_LITTLE_ENDIAN,
        "hub chose an unexpected transfer syntax"
    );
    (scu, pc)
}

fn unique_prefix() -> String {
    // a fresh 2.25 UID is unique per process and call; keep the key short
    let uid = generate::new_uid();
    format!("e2e/{}-{}", std::process::id(), &uid[uid.len() - 12..])
}

#[test]
fn s3_backend_end_to_end() {
    let Some(s3) = peers::s3() else {
        peers::require("S3 server", false);
        return;
    };
    let started = Instant::now();
    let rt = runtime();
    let prefix = unique_prefix();
    let hub = TestHub::spawn(HubOptions::default().s3(&s3, &prefix));

    // 19 small instances and one of ~20 MiB (2560×4096, 16 bit): more than the hub's
    // multipart part size, so it is uploaded in several parts.
    let study = generate::new_uid();
    let series = generate::new_uid();
    let insts: Vec<(CtSpec, Vec<u8>)> = (1..=20)
        .map(|n| {
            let mut spec = CtSpec::new(&study, &series, n);
            if n == 10 {
                spec.rows = 2560;
                spec.cols = 4096;
            } else {
                spec.rows = 64;
                spec.cols = 64;
            }
            let ds = generate::ct_dataset(&spec);
            (spec, ds)
        })
        .collect();
    assert!(
        insts[9].1.len() > 20 << 20,
        "the large instance is {} bytes",
        insts[9].1.len()
    );

    let (mut scu, pc) = associate(&hub);
    for (spec, ds) in &insts {
        let (status, comment) = scu
            .store(pc, CT_IMAGE_STORAGE, &spec.sop_uid, ds)
            .unwrap_or_else(|e| {
                panic!(
                    "C-STORE of {} ({} bytes): {e}\nhub log:\n{}",
                    spec.sop_uid,
                    ds.len(),
                    hub.log()
                )
            });
        assert_eq!(
            status,
            0,
            "C-STORE of {} returned {status:04X} ({comment:?})\nhub log:\n{}",
            spec.sop_uid,
            hub.log()
        );
    }
    scu.release().expect("release");

    let blobs = hub.blobs();
    let before = rt.block_on(async {
        let catalog = hub.catalog().await;
        let c = catalog.counts().await.expect("counts");
        assert_eq!(c.instances, 20, "{c:?}");
        assert_eq!(c.instance_versions, 20, "{c:?}");
        c
    });

    // An identical re-send (of the large one: the most work to get wrong) is a no-op.
    let (mut scu, pc) = associate(&hub);
    let (spec, ds) = &insts[9];
    let (status, comment) = scu
        .store(pc, CT_IMAGE_STORAGE, &spec.sop_uid, ds)
        .expect("re-send");
    assert_eq!(
        status, 0,
        "identical re-send returned {status:04X} ({comment:?})"
    );
    scu.release().expect("release");

    rt.block_on(async {
        let catalog = hub.catalog().await;
        let c = catalog.counts().await.expect("counts");
        assert_eq!(c, before, "an identical re-send changed the counts");
        for (spec, ds) in &insts {
            let row = catalog
                .get_instance(&spec.sop_uid)
                .await
                .expect("get_instance")
                .unwrap_or_else(|| panic!("{} not indexed", spec.sop_uid));
            assert!(row.blob_key.starts_with("studies/"), "{}", row.blob_key);
            assert_eq!(
                row.dataset_hash,
                format!("blake3:{}", blake3::hash(ds).to_hex())
            );
            let meta = blobs
                .head(&row.blob_key)
                .await
                .expect("head")
                .unwrap_or_else(|| panic!("blob {} missing from S3", row.blob_key));
            assert_eq!(meta.size as i64, row.size_bytes, "{}", row.blob_key);
            let bytes = blobs.get_bytes(&row.blob_key).await.expect("get blob");
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                row.sha256,
                "{}",
                row.blob_key
            );
            assert!(
                generate::dataset_of_file(&bytes) == &ds[..],
                "data set of {} in S3 differs from what was sent ({} bytes sent, blob {} bytes)",
                spec.sop_uid,
                ds.len(),
                bytes.len()
            );
        }
        // exactly one object per instance under the hub's prefix
        let mut listed = Vec::new();
        let mut s = blobs.list(Some("studies/"));
        while let Some(m) = s.next().await {
            listed.push(m.expect("list").key);
        }
        assert_eq!(listed.len(), 20, "{listed:?}");
    });
    // the spool is local and empty once every upload is done
    let spool: Vec<_> = std::fs::read_dir(hub.spool_dir())
        .expect("spool dir")
        .collect();
    assert!(spool.is_empty(), "spool not empty: {spool:?}");

    let out = hub.cli(&["fsck", "--grace-secs", "0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "$ dxhub fsck --grace-secs 0\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "fsck on S3 failed:\n{stdout}");
    assert!(stdout.contains("index rows checked: 20"), "{stdout}");
    assert!(stdout.lines().any(|l| l.trim() == "clean"), "{stdout}");

    eprintln!("s3 test took {:?}", started.elapsed());
}
