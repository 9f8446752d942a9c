//! 4 concurrent associations × 500 instances into one study: every instance stored, every
//! count exact — on SQLite and on PostgreSQL.

use dicom_dictionary_std::uids;
use dxhub_e2e::generate::{CtSpec, ct_dataset, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_e2e::scu::{Scu, ct_context};
use dxhub_store::Catalog;

const ASSOCIATIONS: usize = 4;
const PER_ASSOCIATION: usize = 500;

async fn run(hub: TestHub) {
    let study = new_uid();
    let series = [new_uid(), new_uid()];
    let mut threads = Vec::new();
    for t in 0..ASSOCIATIONS {
        let addr = hub.dicom;
        let study = study.clone();
        let series = series[t % 2].clone();
        threads.push(std::thread::spawn(move || {
            let mut scu =
                Scu::connect(addr, "CLINIC", "DXHUB", &[ct_context()], 1 << 20).expect("associate");
            let (pc, _) = scu.context_for(uids::CT_IMAGE_STORAGE).expect("CT context");
            let mut bytes = 0u64;
            for i in 0..PER_ASSOCIATION {
                let spec = CtSpec::new(&study, &series, (t * PER_ASSOCIATION + i) as i32);
                let ds = ct_dataset(&spec);
                let (status, comment) = scu
                    .store(pc, uids::CT_IMAGE_STORAGE, &spec.sop_uid, &ds)
                    .expect("store");
                assert_eq!(status, 0, "instance {i} of association {t}: {comment:?}");
                bytes += ds.len() as u64;
            }
            scu.release().expect("release");
            bytes
        }));
    }
    let dataset_bytes: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .sum();

    let catalog = hub.catalog().await;
    let total = (ASSOCIATIONS * PER_ASSOCIATION) as i64;
    let counts = catalog.counts().await.unwrap();
    assert_eq!(counts.instances, total);
    assert_eq!(counts.instance_versions, total);
    assert_eq!(counts.studies, 1);
    assert_eq!(counts.series, 2);
    let st = catalog.get_study(&study).await.unwrap().expect("study");
    assert_eq!(st.num_instances, total);
    assert_eq!(st.num_series, 2);
    for s in &series {
        let row = catalog.get_series(s).await.unwrap().expect("series");
        assert_eq!(row.num_instances, total / 2);
    }
    // sizes: every blob is meta + data set; the study size is the sum of blob sizes
    let mut sum = 0i64;
    for s in &series {
        for i in catalog.list_instances_of_series(s).await.unwrap() {
            sum += i.size_bytes;
        }
    }
    assert_eq!(st.size_bytes, sum);
    assert!(sum as u64 > dataset_bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_associations_500_instances_sqlite() {
    run(TestHub::spawn(HubOptions::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_associations_500_instances_postgres() {
    let url = peers::pg_url();
    if !peers::require("PostgreSQL (DXHUB_TEST_PG_URL)", url.is_some()) {
        return;
    }
    let db = peers::fresh_pg_database(&url.unwrap_or_default(), "conc").await;
    run(TestHub::spawn(HubOptions::default().postgres(&db))).await;
}
