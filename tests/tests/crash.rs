//! Crash consistency of the ingest path: SIGKILL during concurrent ingest, associations
//! that die in the middle of an instance, and `dxhub fsck` detecting and repairing what a
//! crash (or an operator) can leave behind.
//!
//! The durability contract under test: a C-STORE-RSP with status 0 is only sent after the
//! spool file is fsynced, the blob is durable in the object store and the index row is
//! committed. So whatever was acknowledged before a `kill -9` is there afterwards, byte for
//! byte, and nothing the hub left half-done is visible as an instance.

use dicom_dictionary_std::uids::{CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN};
use dxhub_e2e::generate::{self, CtSpec};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::scu::{self, Scu};
use dxhub_store::{Blobs, Catalog, SqlCatalog};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// helpers (private to this test file)

/// One synthetic instance as the SCU sends it.
#[derive(Clone)]
struct Inst {
    study: String,
    series: String,
    sop: String,
    dataset: Arc<Vec<u8>>,
}

impl Inst {
    fn new(spec: &CtSpec) -> Inst {
        Inst {
            study: spec.study_uid.clone(),
            series: spec.series_uid.clone(),
            sop: spec.sop_uid.clone(),
            dataset: Arc::new(generate::ct_dataset(spec)),
        }
    }

    fn sized(study: &str, series: &str, n: i32, rows: u16, cols: u16) -> Inst {
        let mut spec = CtSpec::new(study, series, n);
        spec.rows = rows;
        spec.cols = cols;
        Inst::new(&spec)
    }

    fn dataset_hash(&self) -> String {
        format!("blake3:{}", blake3::hash(&self.dataset[..]).to_hex())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A new association proposing CT Image Storage; returns the SCU and the accepted context.
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
    // the data sets are generated in Explicit VR Little Endian
    assert_eq!(
        ts, EXPLICIT_VR_LITTLE_ENDIAN,
        "hub chose an unexpected transfer syntax"
    );
    (scu, pc)
}

fn store_all_ok(hub: &TestHub, insts: &[Inst]) {
    let (mut scu, pc) = associate(hub);
    for inst in insts {
        let (status, comment) = scu
            .store(pc, CT_IMAGE_STORAGE, &inst.sop, &inst.dataset)
            .expect("C-STORE");
        assert_eq!(
            status, 0,
            "C-STORE of {} returned {status:04X} ({comment:?})",
            inst.sop
        );
    }
    scu.release().expect("release");
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fsck(hub: &TestHub, args: &[&str]) -> (i32, String) {
    let mut full = vec!["fsck"];
    full.extend_from_slice(args);
    let out = hub.cli(&full);
    let stdout = stdout_of(&out);
    eprintln!(
        "$ dxhub {}\n{stdout}{}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), stdout)
}

fn spool_files(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot list {}: {e}", dir.display()),
    }
}

/// Poll (20 ms steps, bounded) until `cond` holds; panics with `what` on timeout.
fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The instance is indexed (current version), its blob exists with the indexed size, and
/// the data set inside the stored Part 10 object is byte-identical to what was sent.
async fn assert_stored_exactly(catalog: &SqlCatalog, blobs: &Blobs, inst: &Inst) {
    let row = catalog
        .get_instance(&inst.sop)
        .await
        .expect("get_instance")
        .unwrap_or_else(|| panic!("instance {} is not in the index", inst.sop));
    assert_eq!(row.study_instance_uid, inst.study);
    assert_eq!(row.series_instance_uid, inst.series);
    assert_eq!(
        row.dataset_hash,
        inst.dataset_hash(),
        "indexed data set hash of {}",
        inst.sop
    );
    let meta = blobs
        .head(&row.blob_key)
        .await
        .expect("head blob")
        .unwrap_or_else(|| {
            panic!(
                "blob {} of indexed instance {} is missing",
                row.blob_key, inst.sop
            )
        });
    assert_eq!(
        meta.size as i64, row.size_bytes,
        "blob size of {}",
        row.blob_key
    );
    let bytes = blobs.get_bytes(&row.blob_key).await.expect("read blob");
    assert_eq!(bytes.len() as i64, row.size_bytes);
    assert_eq!(
        hex::encode(Sha256::digest(&bytes[..])),
        row.sha256,
        "sha256 of blob {} differs from the index",
        row.blob_key
    );
    let ds = generate::dataset_of_file(&bytes);
    assert!(
        ds == &inst.dataset[..],
        "stored data set of {} differs from what was sent",
        inst.sop
    );
}

/// Every index row (every version) points to an existing blob of the indexed size.
async fn assert_no_dangling_rows(catalog: &SqlCatalog, blobs: &Blobs) -> usize {
    let mut after = 0i64;
    let mut n = 0usize;
    loop {
        let page = catalog
            .list_instance_rows(after, 500)
            .await
            .expect("list_instance_rows");
        let Some(last) = page.last() else { break };
        after = last.id;
        for row in page {
            n += 1;
            let meta = blobs
                .head(&row.blob_key)
                .await
                .expect("head blob")
                .unwrap_or_else(|| {
                    panic!(
                        "index row {} ({}) points to missing blob {}",
                        row.id, row.sop_instance_uid, row.blob_key
                    )
                });
            assert_eq!(
                meta.size as i64, row.size_bytes,
                "size of blob {}",
                row.blob_key
            );
        }
    }
    n
}

async fn blob_keys_under(blobs: &Blobs, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = blobs.list(Some(prefix));
    while let Some(m) = s.next().await {
        out.push(m.expect("list blobs").key);
    }
    out
}

// ---------------------------------------------------------------------------------------
// 1. kill -9 in the middle of concurrent ingest

const THREADS: usize = 4;
const PER_THREAD: usize = 300;

/// Acks observed so far, and a condition variable the main thread waits on (no sleeps).
struct Progress {
    acked: AtomicUsize,
    finished: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Progress {
    fn bump(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::SeqCst);
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }
}

/// What one sender thread saw before the hub died.
struct SenderReport {
    /// per instance: Some(status) if a response arrived
    statuses: Vec<Option<u16>>,
    error: Option<std::io::Error>,
}

#[test]
fn kill9_during_concurrent_ingest_loses_nothing_acknowledged() {
    let started = Instant::now();
    let rt = runtime();
    let mut hub = TestHub::spawn(HubOptions::default());

    // The instances, kept to check and re-send later: mostly 64×64, every 25th 512×512
    // (~512 KiB, several PDUs) so that the kill sometimes lands in the middle of one.
    let slices: Vec<Arc<Vec<Inst>>> = (0..THREADS)
        .map(|_| {
            let study = generate::new_uid();
            let series = generate::new_uid();
            Arc::new(
                (0..PER_THREAD)
                    .map(|i| {
                        let big = i % 25 == 7;
                        let (r, c) = if big { (512, 512) } else { (64, 64) };
                        Inst::sized(&study, &series, i as i32 + 1, r, c)
                    })
                    .collect(),
            )
        })
        .collect();
    let total = THREADS * PER_THREAD;
    let target = total / 3;

    let progress = Arc::new(Progress {
        acked: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        lock: Mutex::new(()),
        cv: Condvar::new(),
    });
    let handles: Vec<_> = slices
        .iter()
        .map(|slice| {
            let slice = slice.clone();
            let progress = progress.clone();
            let (mut scu, pc) = associate(&hub);
            std::thread::spawn(move || {
                struct Finish(Arc<Progress>);
                impl Drop for Finish {
                    fn drop(&mut self) {
                        self.0.bump(&self.0.finished);
                    }
                }
                let _finish = Finish(progress.clone());
                let mut report = SenderReport {
                    statuses: vec![None; slice.len()],
                    error: None,
                };
                for (i, inst) in slice.iter().enumerate() {
                    match scu.store(pc, CT_IMAGE_STORAGE, &inst.sop, &inst.dataset) {
                        Ok((status, _comment)) => {
                            report.statuses[i] = Some(status);
                            if status == 0 {
                                progress.bump(&progress.acked);
                            }
                        }
                        Err(e) => {
                            report.error = Some(e);
                            break;
                        }
                    }
                }
                if report.error.is_none() {
                    let _ = scu.release();
                }
                report
            })
        })
        .collect();

    // Wait (no sleeping) for a third of the acks, then pull the plug.
    {
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut g = progress.lock.lock().unwrap_or_else(|e| e.into_inner());
        while progress.acked.load(Ordering::SeqCst) < target {
            assert!(
                progress.finished.load(Ordering::SeqCst) < THREADS,
                "all senders finished before {target} acks ({} acks); hub log:\n{}",
                progress.acked.load(Ordering::SeqCst),
                hub.log()
            );
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| {
                    panic!(
                        "only {} acks after 300 s; hub log:\n{}",
                        progress.acked.load(Ordering::SeqCst),
                        hub.log()
                    )
                });
            g = progress
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
    hub.kill9();
    let killed_at = progress.acked.load(Ordering::SeqCst);

    let reports: Vec<SenderReport> = handles
        .into_iter()
        .map(|h| h.join().expect("sender thread panicked"))
        .collect();
    let mut acked: Vec<&Inst> = Vec::new();
    let mut errors = 0;
    for (slice, report) in slices.iter().zip(&reports) {
        for (inst, status) in slice.iter().zip(&report.statuses) {
            match status {
                Some(0) => acked.push(inst),
                Some(other) => panic!(
                    "C-STORE of {} returned {other:04X} before the kill",
                    inst.sop
                ),
                None => {}
            }
        }
        if let Some(e) = &report.error {
            errors += 1;
            eprintln!("sender ended with (expected) I/O error: {e}");
        }
    }
    eprintln!(
        "killed after {killed_at} acks observed; {} acked in total; {errors} of {THREADS} senders cut off",
        acked.len()
    );
    assert!(
        acked.len() >= target,
        "fewer acks ({}) than observed before the kill ({target})",
        acked.len()
    );
    assert!(
        acked.len() < total,
        "everything was acknowledged before the kill: the test did not crash anything"
    );
    assert_eq!(
        errors, THREADS,
        "every sender must have been cut off by the kill"
    );
    let blobs = hub.blobs();

    // What the dead hub left in its spool (instances in the middle of being received). One
    // more stray file is planted so that the clean-up at start is always exercised.
    let left_in_spool = spool_files(&hub.spool_dir()).len();
    std::fs::write(
        hub.spool_dir().join("1-1-1.part"),
        b"planted stray spool file",
    )
    .expect("plant spool file");
    let orphans_after_kill = rt.block_on(async {
        let catalog = hub.catalog().await;
        let mut n = 0;
        for key in blob_keys_under(&blobs, "studies/").await {
            // `studies/{study}/{sop}.{hash}.dcm`: the SOP Instance UID is the file name
            // without its hash and extension
            let name = key.rsplit('/').next().expect("instance key");
            let sop = name
                .strip_suffix(".dcm")
                .and_then(|n| n.rsplit_once('.'))
                .map(|(sop, _hash)| sop.to_owned())
                .expect("instance key");
            if catalog
                .get_instance(&sop)
                .await
                .expect("get_instance")
                .is_none()
            {
                n += 1;
            }
        }
        n
    });
    eprintln!(
        "after the kill: {left_in_spool} spool file(s), {orphans_after_kill} blob(s) without an index row"
    );

    // Restart on the same data dir: stray spool files of the dead run are gone.
    hub.start();
    let stray = spool_files(&hub.spool_dir());
    assert!(stray.is_empty(), "spool not cleaned at start: {stray:?}");

    rt.block_on(async {
        let catalog = hub.catalog().await;
        for inst in &acked {
            assert_stored_exactly(&catalog, &blobs, inst).await;
        }
        let rows = assert_no_dangling_rows(&catalog, &blobs).await;
        eprintln!(
            "after restart: {rows} index rows, {} acknowledged",
            acked.len()
        );
        assert!(
            rows >= acked.len(),
            "fewer index rows ({rows}) than acknowledged instances ({})",
            acked.len()
        );
        let c = catalog.counts().await.expect("counts");
        assert_eq!(
            c.instances as usize, rows,
            "distinct instances vs rows: {c:?}"
        );
    });

    // Re-send everything, acknowledged or not, on new associations: all succeed.
    let resend: Vec<_> = slices
        .iter()
        .map(|slice| {
            let slice = slice.clone();
            let (mut scu, pc) = associate(&hub);
            std::thread::spawn(move || {
                let mut bad = Vec::new();
                for inst in slice.iter() {
                    let (status, comment) = scu
                        .store(pc, CT_IMAGE_STORAGE, &inst.sop, &inst.dataset)
                        .expect("C-STORE on re-send");
                    if status != 0 {
                        bad.push(format!("{}: {status:04X} {comment:?}", inst.sop));
                    }
                }
                scu.release().expect("release");
                bad
            })
        })
        .collect();
    let bad: Vec<String> = resend
        .into_iter()
        .flat_map(|h| h.join().expect("re-send thread panicked"))
        .collect();
    assert!(
        bad.is_empty(),
        "re-sent instances not stored with status 0: {bad:?}"
    );

    rt.block_on(async {
        let catalog = hub.catalog().await;
        for inst in slices.iter().flat_map(|s| s.iter()) {
            assert_stored_exactly(&catalog, &blobs, inst).await;
        }
        let rows = assert_no_dangling_rows(&catalog, &blobs).await;
        let c = catalog.counts().await.expect("counts");
        assert_eq!(c.instances as usize, total, "{c:?}");
        assert_eq!(
            c.instance_versions as usize, total,
            "identical re-sends must not create versions: {c:?}"
        );
        assert_eq!(rows, total);
        assert_eq!(c.studies as usize, THREADS, "{c:?}");
        assert_eq!(c.series as usize, THREADS, "{c:?}");
    });

    // Offline check: repair whatever the crash left (orphan blobs), then it is clean.
    hub.stop();
    let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0"]);
    assert_eq!(code, 0, "fsck --repair failed:\n{out}");
    assert!(
        !out.contains("missing blob"),
        "fsck found index rows without blobs:\n{out}"
    );
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "fsck after repair is not clean:\n{out}");
    assert!(
        out.lines().any(|l| l.trim() == "clean"),
        "fsck after repair is not clean:\n{out}"
    );
    rt.block_on(async {
        let c = hub.catalog().await.counts().await.expect("counts");
        assert_eq!(
            c.instances as usize, total,
            "fsck --repair removed instances: {c:?}"
        );
    });
    eprintln!("kill9 test took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// 2. an association that dies in the middle of an instance

#[derive(Debug, Clone, Copy)]
enum Death {
    /// A-ABORT, then close.
    Abort,
    /// Close the TCP connection without any PDU.
    Drop,
}

#[test]
fn aborted_association_mid_instance_leaves_nothing() {
    let started = Instant::now();
    let rt = runtime();
    let hub = TestHub::spawn(HubOptions::default());
    let blobs = hub.blobs();
    let spool = hub.spool_dir();

    for death in [Death::Abort, Death::Drop] {
        // ~3 MiB of pixels: half of it is more than a PDU and more than the hub's spool
        // chunk, so part of the data set reaches the spool file before the association dies
        let study = generate::new_uid();
        let series = generate::new_uid();
        let inst = Inst::sized(&study, &series, 1, 1536, 1024);
        let half = &inst.dataset[..inst.dataset.len() / 2];

        let (mut scu, pc) = associate(&hub);
        scu.store_partial(pc, CT_IMAGE_STORAGE, &inst.sop, half)
            .expect("send partial instance");
        // the hub has started spooling this instance
        wait_until(
            &format!("{death:?}: the hub spools the partial instance"),
            Duration::from_secs(10),
            || !spool_files(&spool).is_empty(),
        );
        match death {
            Death::Abort => scu.abort(),
            Death::Drop => scu.drop_connection(),
        }
        wait_until(
            &format!("{death:?}: the spool is empty again"),
            Duration::from_secs(10),
            || spool_files(&spool).is_empty(),
        );

        rt.block_on(async {
            let catalog = hub.catalog().await;
            assert!(
                catalog
                    .get_instance(&inst.sop)
                    .await
                    .expect("get_instance")
                    .is_none(),
                "{death:?}: a half-received instance is in the index"
            );
            let keys = blob_keys_under(&blobs, &format!("studies/{study}")).await;
            assert!(
                keys.is_empty(),
                "{death:?}: blobs of a half-received instance: {keys:?}"
            );
            assert_eq!(
                catalog.counts().await.expect("counts").instances,
                0,
                "{death:?}"
            );
        });

        // the same instance, sent in full on a new association, is stored normally
        store_all_ok(&hub, std::slice::from_ref(&inst));
        rt.block_on(async {
            let catalog = hub.catalog().await;
            assert_stored_exactly(&catalog, &blobs, &inst).await;
            let keys = blob_keys_under(&blobs, &format!("studies/{study}")).await;
            assert_eq!(keys.len(), 1, "{death:?}: {keys:?}");
            // clean up for the next variant's "nothing in the index" check
            let row = catalog
                .get_instance(&inst.sop)
                .await
                .expect("get_instance")
                .expect("row");
            catalog
                .delete_instance_row(row.id)
                .await
                .expect("delete row");
            blobs.delete(&row.blob_key).await.expect("delete blob");
        });
        assert!(
            spool_files(&spool).is_empty(),
            "{death:?}: spool not empty after a full store"
        );
    }
    eprintln!("abort test took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------
// 3. fsck

#[test]
fn fsck_detects_and_repairs() {
    let started = Instant::now();
    let rt = runtime();
    let mut hub = TestHub::spawn(HubOptions::default());
    let study = generate::new_uid();
    let series = generate::new_uid();
    let insts: Vec<Inst> = (1..=5)
        .map(|n| Inst::sized(&study, &series, n, 64, 64))
        .collect();
    store_all_ok(&hub, &insts);
    hub.stop();

    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "fsck of a fresh hub:\n{out}");
    assert!(out.lines().any(|l| l.trim() == "clean"), "{out}");

    let blobs = hub.blobs();
    let victim = &insts[2];
    let (before, victim_key) = rt.block_on(async {
        let catalog = hub.catalog().await;
        let c = catalog.counts().await.expect("counts");
        let row = catalog
            .get_instance(&victim.sop)
            .await
            .expect("get_instance")
            .expect("victim indexed");
        (c, row.blob_key)
    });
    assert_eq!(before.instances, 5);

    // 1. a stored blob deleted by hand
    let victim_file = hub.data_dir.join("blobs").join(&victim_key);
    assert!(
        victim_file.is_file(),
        "{} is not where the local backend keeps it",
        victim_file.display()
    );
    std::fs::remove_file(&victim_file).expect("delete blob file");
    // 2. an orphan blob (no index row)
    let orphan = "studies/1.2.3/1.2.3.4/1.2.3.4.5/deadbeefdeadbeef.dcm";
    rt.block_on(blobs.put_bytes(orphan, b"not referenced by any index row".to_vec().into()))
        .expect("put orphan");
    // 3. a stray spool file (as a crash leaves it: older than the grace period)
    let stray_name = "4242-1700000000000000000-0.part";
    write_aged(&hub.spool_dir().join(stray_name), b"half an instance", 7200);

    // With the default grace period the fresh orphan is in flight, not an orphan.
    let (code, out) = fsck(&hub, &[]);
    assert_eq!(code, 1, "fsck must fail with problems:\n{out}");
    assert!(
        out.contains(&format!("missing blob: {victim_key} is missing")),
        "{out}"
    );
    assert!(
        out.contains("stray spool file:") && out.contains(stray_name),
        "{out}"
    );
    assert!(
        !out.contains("orphan blob:"),
        "a fresh blob must not be called an orphan within the grace period:\n{out}"
    );
    assert!(out.contains("(in flight, not touched): 1"), "{out}");
    assert!(out.contains("2 problem(s) found"), "{out}");

    // Without grace: all three, exit status 1, nothing changed.
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 1, "fsck must fail with problems:\n{out}");
    assert!(
        out.contains(&format!("missing blob: {victim_key} is missing")),
        "{out}"
    );
    assert!(out.contains(&format!("orphan blob: {orphan}")), "{out}");
    assert!(
        out.contains("stray spool file:") && out.contains(stray_name),
        "{out}"
    );
    assert!(out.contains("3 problem(s) found"), "{out}");
    assert!(
        hub.spool_dir().join(stray_name).exists(),
        "fsck without --repair removed a spool file"
    );
    assert!(
        rt.block_on(blobs.head(orphan)).expect("head").is_some(),
        "fsck without --repair removed a blob"
    );

    // Repair, then clean.
    let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0"]);
    assert_eq!(code, 0, "fsck --repair failed:\n{out}");
    assert!(
        out.contains(
            "repaired: 1 index row(s) removed, 1 orphan blob(s) deleted, 1 spool file(s) removed"
        ),
        "{out}"
    );
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "fsck after repair:\n{out}");
    assert!(out.lines().any(|l| l.trim() == "clean"), "{out}");

    rt.block_on(async {
        let catalog = hub.catalog().await;
        let after = catalog.counts().await.expect("counts");
        assert_eq!(
            after.instances,
            before.instances - 1,
            "{before:?} → {after:?}"
        );
        assert_eq!(
            after.instance_versions,
            before.instance_versions - 1,
            "{before:?} → {after:?}"
        );
        assert!(
            catalog
                .get_instance(&victim.sop)
                .await
                .expect("get_instance")
                .is_none()
        );
        for inst in insts.iter().filter(|i| i.sop != victim.sop) {
            assert_stored_exactly(&catalog, &blobs, inst).await;
        }
        assert!(
            blobs.head(orphan).await.expect("head").is_none(),
            "orphan not deleted"
        );
        let series_row = catalog
            .get_series(&series)
            .await
            .expect("get_series")
            .expect("series");
        assert_eq!(series_row.num_instances, 4, "series count not fixed");
    });
    assert!(
        spool_files(&hub.spool_dir()).is_empty(),
        "stray spool file not removed"
    );

    // A repair with the default grace period leaves a fresh orphan alone, and a fresh
    // spool file (an instance a running hub or import is receiving).
    let fresh = "studies/1.2.3/1.2.3.4/1.2.3.4.6/0123456789abcdef.dcm";
    rt.block_on(blobs.put_bytes(fresh, b"being ingested right now".to_vec().into()))
        .expect("put fresh orphan");
    let receiving = hub.spool_dir().join("4242-1800000000000000000-0.part");
    std::fs::write(&receiving, b"arriving").expect("write a fresh spool file");
    let (code, out) = fsck(&hub, &["--repair"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("unreferenced blobs younger than 600 s (in flight, not touched): 1"),
        "{out}"
    );
    assert!(
        out.contains("spool files younger than 600 s (in flight, not touched): 1"),
        "{out}"
    );
    assert!(
        receiving.exists(),
        "fsck --repair removed a fresh spool file"
    );
    std::fs::remove_file(&receiving).expect("remove the fresh spool file");
    assert!(!out.contains("orphan blob:"), "{out}");
    assert!(
        rt.block_on(blobs.head(fresh)).expect("head").is_some(),
        "fsck --repair deleted a blob within the grace period"
    );
    let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(rt.block_on(blobs.head(fresh)).expect("head").is_none());
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().any(|l| l.trim() == "clean"), "{out}");

    // A blob of another size than indexed (corrupt): reported, never repaired by deleting
    // (the row and the bytes stay, however often repair runs); restored, it is clean.
    let damaged = &insts[0];
    let damaged_key = rt
        .block_on(async { hub.catalog().await.get_instance(&damaged.sop).await })
        .expect("get_instance")
        .expect("indexed")
        .blob_key;
    let damaged_file = hub.data_dir.join("blobs").join(&damaged_key);
    let intact = std::fs::read(&damaged_file).expect("read blob");
    std::fs::write(&damaged_file, &intact[..intact.len() / 2]).expect("truncate blob");
    for _ in 0..2 {
        let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0"]);
        assert_eq!(code, 1, "a corrupt blob is a problem left:\n{out}");
        assert!(
            out.contains(&format!(
                "not repaired (restore the blob from a backup): {damaged_key} has {} bytes",
                intact.len() / 2
            )),
            "{out}"
        );
        assert!(!out.contains("orphan blob:"), "{out}");
        assert_eq!(
            std::fs::metadata(&damaged_file).expect("blob kept").len() as usize,
            intact.len() / 2
        );
        rt.block_on(async {
            let catalog = hub.catalog().await;
            assert!(catalog.get_instance(&damaged.sop).await.unwrap().is_some());
        });
    }
    std::fs::write(&damaged_file, &intact).expect("restore blob");
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "{out}");

    // The same size, one byte changed (a bad disk sector, a partial overwrite): only
    // `--verify-hashes` sees it, which reads every blob; never repaired either.
    let (code, out) = fsck(&hub, &["--grace-secs", "0", "--verify-hashes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("objects whose SHA-256 matched: 4"), "{out}");
    let mut flipped = intact.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(&damaged_file, &flipped).expect("flip a byte");
    let (code, out) = fsck(&hub, &["--grace-secs", "0"]);
    assert_eq!(code, 0, "sizes alone cannot see it:\n{out}");
    let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0", "--verify-hashes"]);
    assert_eq!(code, 1, "a changed byte is a problem left:\n{out}");
    let sha = rt
        .block_on(async { hub.catalog().await.get_instance(&damaged.sop).await })
        .expect("get_instance")
        .expect("indexed")
        .sha256;
    assert!(
        out.contains(&format!(
            "not repaired (restore the blob from a backup): {damaged_key} has SHA-256 "
        )) && out.contains(&format!(", index says {sha}")),
        "{out}"
    );
    assert!(out.contains("objects whose SHA-256 matched: 3"), "{out}");
    assert_eq!(std::fs::read(&damaged_file).expect("blob kept"), flipped);
    std::fs::write(&damaged_file, &intact).expect("restore blob");
    let (code, out) = fsck(&hub, &["--grace-secs", "0", "--verify-hashes"]);
    assert_eq!(code, 0, "{out}");

    // The repaired hub starts and takes the lost instance again.
    hub.start();
    store_all_ok(&hub, std::slice::from_ref(victim));
    rt.block_on(async {
        let catalog = hub.catalog().await;
        assert_stored_exactly(&catalog, &blobs, victim).await;
        assert_eq!(catalog.counts().await.expect("counts").instances, 5);
    });
    eprintln!("fsck test took {:?}", started.elapsed());
}

/// Write `bytes` to `path` with a modification time `age_secs` in the past.
fn write_aged(path: &Path, bytes: &[u8], age_secs: u64) {
    std::fs::write(path, bytes).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(age_secs))
        .expect("set mtime");
}

/// A lost blob whose row other records refer to (here the study's work item, once the
/// worklist routed it): repair keeps the row, says so, goes on with the rest and records
/// what it did in the audit log.
#[test]
fn fsck_repair_keeps_rows_other_records_refer_to() {
    let rt = runtime();
    let mut hub = TestHub::spawn(
        HubOptions::default()
            .env("DXHUB_WORKLIST__STABLE_AFTER_SECS", "1")
            .env("DXHUB_WORKLIST__TICK_MS", "200"),
    );
    let study = generate::new_uid();
    let series = generate::new_uid();
    let inst = Inst::sized(&study, &series, 1, 32, 32);
    store_all_ok(&hub, std::slice::from_ref(&inst));
    let deadline = Instant::now() + Duration::from_secs(30);
    while rt.block_on(dxhub_e2e::api::index_scalar(
        &hub,
        "SELECT COUNT(*) FROM work_items",
    )) == 0
    {
        assert!(Instant::now() < deadline, "the study was never routed");
        std::thread::sleep(Duration::from_millis(200));
    }
    hub.stop();
    let key = rt
        .block_on(async { hub.catalog().await.get_instance(&inst.sop).await })
        .expect("get_instance")
        .expect("indexed")
        .blob_key;
    std::fs::remove_file(hub.data_dir.join("blobs").join(&key)).expect("delete blob");
    // and an orphan, which the same repair deletes
    let orphan = "studies/1.2.3/9.9.9.aaaaaaaaaaaaaaaa.dcm";
    rt.block_on(hub.blobs().put_bytes(orphan, b"orphan".to_vec().into()))
        .expect("put orphan");
    let (code, out) = fsck(&hub, &["--repair", "--grace-secs", "0"]);
    assert_eq!(code, 1, "a kept row is a problem left:\n{out}");
    assert!(
        out.contains("repaired: 0 index row(s) removed, 1 orphan blob(s) deleted"),
        "{out}"
    );
    assert!(out.contains(&format!("not repaired: {key}: ")), "{out}");
    assert!(out.contains("1 problem(s) left"), "{out}");
    assert!(rt.block_on(hub.blobs().head(orphan)).unwrap().is_none());
    assert!(
        rt.block_on(async { hub.catalog().await.get_instance(&inst.sop).await })
            .unwrap()
            .is_some(),
        "the referenced row is kept"
    );
    assert_eq!(
        rt.block_on(dxhub_e2e::api::index_scalar(
            &hub,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'fsck-repair' \
             AND outcome LIKE 'partial: 0 rows removed, 1 orphan blobs deleted%'",
        )),
        1,
        "the repair is audited"
    );
}
