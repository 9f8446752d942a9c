#![allow(clippy::unwrap_used)]
//! One catalog conformance suite, run on every backend: SQLite (always) and PostgreSQL
//! when `DXHUB_TEST_PG_URL` names a server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//! Each test gets a fresh database. With `CI=true` a missing `DXHUB_TEST_PG_URL` fails the
//! PostgreSQL tests instead of skipping them.

use dxhub_core::InstitutionLevel;
use dxhub_store::catalog::Error;
use dxhub_store::{
    Catalog, Counts, Dialect, EcgInsert, InsertOutcome, InstanceAttrs, InstanceExtras,
    InstanceScope, InstitutionUpdate, NewEcg, NewInstance, NewInstitution, PatientAttrs, QidoKey,
    QidoLevel, QidoMatch, QidoQuery, SeriesAttrs, StudyAttrs,
};

mod common;
use common::{run_postgres, run_sqlite};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(|c, _url| async move { super::suite::$name(&*c).await }).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(|c, _url| async move { super::suite::$name(&*c).await }).await;
                }
            )*
        }
    };
}

conformance!(
    migrate_is_idempotent,
    tenancy_add_list_find,
    tenancy_errors,
    insert_and_counts,
    duplicate_changes_nothing,
    new_version,
    modalities_and_attribute_fill,
    patients_are_scoped_by_institution,
    studies_without_patient_id_are_not_merged,
    series_of_another_study_is_a_conflict,
    concurrent_inserts_keep_exact_counts,
    chinese_text_round_trips,
    delete_instance_row_fixes_counts,
    list_instance_rows_paginates,
    list_studies_filters_and_paginates,
    institution_update_and_ae_title_delete,
    qido_matching,
    wado_instances_newest_versions,
    concurrent_failures_are_isolated,
    mixed_writes_commit_together_and_fail_alone,
    ecg_records_commit_together_and_fail_alone,
    ingest_lookup_is_version_and_owners,
    instance_with_ecg_and_audit_is_one_write,
    study_of_another_institution_is_not_joined,
);

/// The start-up question "which studies still lack their name keys" (asked at every start)
/// is answered by the partial index of migration 14, not by a pass over every study.
mod name_key_fill {
    use sqlx::{Connection, Executor, Row};

    /// The plan of the fill's question (`$explain` its prefix, `$col` the column of the
    /// plan's text) names the partial index.
    macro_rules! assert_plan_uses_index {
        ($conn:expr, $explain:literal, $col:expr) => {
            let sql = format!(
                "{} {}",
                $explain,
                dxhub_store::SqlCatalog::UNFILLED_NAME_KEYS
            );
            let rows = sqlx::query(&sql).bind(0i64).fetch_all($conn).await.unwrap();
            let plan: Vec<String> = rows.iter().map(|r| r.get::<String, _>($col)).collect();
            assert!(
                plan.iter()
                    .any(|d| d.contains("studies_name_keys_unfilled")),
                "{plan:?}"
            );
        };
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_probes_the_partial_index() {
        super::run_sqlite(|_c, url| async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            assert_plan_uses_index!(&mut conn, "EXPLAIN QUERY PLAN", "detail");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_probes_the_partial_index() {
        super::run_postgres(|_c, url| async move {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            // an empty table: without this the planner may rightly prefer a sequential scan
            conn.execute("SET enable_seqscan = off").await.unwrap();
            assert_plan_uses_index!(&mut conn, "EXPLAIN", 0);
        })
        .await;
    }
}

// ---------------------------------------------------------------- helpers

fn hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// An instance with plausible attributes; `version` changes the data set hash.
fn instance(study: &str, series: &str, sop: &str, number: i64, version: u32) -> NewInstance {
    let dataset_hash = format!("blake3:{}", hash(&format!("{sop}#{version}")));
    let sha256 = hash(&format!("file:{sop}#{version}"));
    NewInstance {
        institution_id: None,
        patient: PatientAttrs {
            patient_id: "P001".into(),
            issuer_of_patient_id: None,
            patient_name: Some("DOE^JOHN".into()),
            patient_birth_date: Some("19700101".into()),
            patient_sex: Some("M".into()),
        },
        study: StudyAttrs {
            study_instance_uid: study.into(),
            study_date: Some("20261122".into()),
            study_time: Some("101500".into()),
            accession_number: Some("A1".into()),
            ..Default::default()
        },
        series: SeriesAttrs {
            series_instance_uid: series.into(),
            modality: Some("CT".into()),
            series_number: Some(1),
            ..Default::default()
        },
        instance: InstanceAttrs {
            sop_instance_uid: sop.into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            transfer_syntax_uid: "1.2.840.10008.1.2.1".into(),
            instance_number: Some(number),
            number_of_frames: None,
            size_bytes: 1000 + number,
            blob_key: format!("studies/{study}/{series}/{sop}/{}.dcm", &sha256[..16]),
            sha256,
            dataset_hash,
            source_ae: Some("CT01".into()),
            received_at: 1_700_000_000_000_000 + number,
            metadata: Some(format!(
                "{{\"00080018\":{{\"vr\":\"UI\",\"Value\":[\"{sop}\"]}}}}"
            )),
        },
    }
}

fn counts(patients: i64, studies: i64, series: i64, instances: i64, versions: i64) -> Counts {
    Counts {
        patients,
        studies,
        series,
        instances,
        instance_versions: versions,
    }
}

fn institution(
    alliance: &str,
    name: &str,
    level: InstitutionLevel,
    parent: Option<&str>,
) -> NewInstitution {
    NewInstitution {
        alliance: alliance.into(),
        name: name.into(),
        level,
        parent: parent.map(Into::into),
        population: None,
    }
}

// ---------------------------------------------------------------- the suite

mod suite {
    use super::*;

    pub async fn migrate_is_idempotent(c: &dyn Catalog) {
        c.migrate().await.expect("second migrate is a no-op");
        c.ping().await.expect("ping");
        assert!(matches!(c.dialect(), Dialect::Sqlite | Dialect::Postgres));
        assert_eq!(c.counts().await.expect("counts"), Counts::default());
    }

    pub async fn tenancy_add_list_find(c: &dyn Catalog) {
        let a = c.add_alliance("东阳市医共体").await.expect("alliance");
        assert_eq!(a.name, "东阳市医共体");
        assert!(a.id > 0 && a.created_at > 0);
        let b = c.add_alliance("Other Group").await.expect("alliance 2");
        let names: Vec<_> = c
            .list_alliances()
            .await
            .expect("list")
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&a.name) && names.contains(&b.name));

        let county = c
            .add_institution(&NewInstitution {
                population: Some(820_000),
                ..institution(
                    "东阳市医共体",
                    "东阳市人民医院",
                    InstitutionLevel::County,
                    None,
                )
            })
            .await
            .expect("county");
        assert_eq!(county.alliance_id, a.id);
        assert_eq!(county.alliance_name, "东阳市医共体");
        assert_eq!(county.level, InstitutionLevel::County);
        assert_eq!(county.population, Some(820_000));
        assert_eq!(
            (county.parent_id, county.parent_name.as_deref()),
            (None, None)
        );

        let town = c
            .add_institution(&institution(
                "东阳市医共体",
                "横店镇卫生院",
                InstitutionLevel::Township,
                Some("东阳市人民医院"),
            ))
            .await
            .expect("township");
        assert_eq!(town.parent_id, Some(county.id));
        assert_eq!(town.parent_name.as_deref(), Some("东阳市人民医院"));
        let village = c
            .add_institution(&institution(
                "东阳市医共体",
                "南上湖村卫生室",
                InstitutionLevel::Village,
                Some("横店镇卫生院"),
            ))
            .await
            .expect("village");
        assert_eq!(village.parent_id, Some(town.id));
        // a county may head a village directly
        c.add_institution(&institution(
            "东阳市医共体",
            "城东村卫生室",
            InstitutionLevel::Village,
            Some("东阳市人民医院"),
        ))
        .await
        .expect("village under county");

        let all = c.list_institutions().await.expect("list institutions");
        assert_eq!(all.len(), 4);
        let found = all
            .iter()
            .find(|i| i.name == "南上湖村卫生室")
            .expect("listed");
        assert_eq!(found, &village);

        let f = c
            .find_institution("横店镇卫生院")
            .await
            .expect("find")
            .expect("present");
        assert_eq!(f, town);
        assert!(c.find_institution("nowhere").await.expect("find").is_none());

        let ae = c
            .add_ae_title("横店镇卫生院", " DR01 ", Some("10.0.0.5"))
            .await
            .expect("ae title");
        assert_eq!(ae.ae_title, "DR01", "AE titles are normalised");
        assert_eq!(ae.institution_id, town.id);
        assert_eq!(ae.institution_name, "横店镇卫生院");
        assert_eq!(ae.host.as_deref(), Some("10.0.0.5"));
        c.add_ae_title("东阳市人民医院", "CT01", None)
            .await
            .expect("ae 2");
        let found = c
            .find_ae_title("DR01  ")
            .await
            .expect("find ae")
            .expect("present");
        assert_eq!(found, ae);
        assert!(c.find_ae_title("NOPE").await.expect("find ae").is_none());
        let titles: Vec<_> = c
            .list_ae_titles()
            .await
            .expect("list ae")
            .into_iter()
            .map(|t| t.ae_title)
            .collect();
        assert_eq!(titles, ["CT01", "DR01"]);
    }

    pub async fn tenancy_errors(c: &dyn Catalog) {
        c.add_alliance("A").await.expect("A");
        c.add_alliance("B").await.expect("B");
        assert!(matches!(c.add_alliance("A").await, Err(Error::Conflict(_))));
        assert!(matches!(c.add_alliance("  ").await, Err(Error::Invalid(_))));

        c.add_institution(&institution(
            "A",
            "A County",
            InstitutionLevel::County,
            None,
        ))
        .await
        .expect("county");
        c.add_institution(&institution(
            "A",
            "A Town",
            InstitutionLevel::Township,
            Some("A County"),
        ))
        .await
        .expect("town");
        c.add_institution(&institution(
            "A",
            "A Village",
            InstitutionLevel::Village,
            Some("A Town"),
        ))
        .await
        .expect("village");
        c.add_institution(&institution(
            "B",
            "B County",
            InstitutionLevel::County,
            None,
        ))
        .await
        .expect("B county");

        let err = c
            .add_institution(&institution(
                "A",
                "A County",
                InstitutionLevel::County,
                None,
            ))
            .await;
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
        let err = c
            .add_institution(&institution(
                "Z",
                "Z County",
                InstitutionLevel::County,
                None,
            ))
            .await;
        assert!(
            matches!(err, Err(Error::NotFound(_))),
            "unknown alliance: {err:?}"
        );
        let err = c
            .add_institution(&institution(
                "A",
                "X",
                InstitutionLevel::Village,
                Some("Nobody"),
            ))
            .await;
        assert!(
            matches!(err, Err(Error::NotFound(_))),
            "unknown parent: {err:?}"
        );
        let err = c
            .add_institution(&institution(
                "A",
                "X",
                InstitutionLevel::Township,
                Some("A Village"),
            ))
            .await;
        assert!(
            matches!(err, Err(Error::Invalid(_))),
            "village heads township: {err:?}"
        );
        let err = c
            .add_institution(&institution(
                "A",
                "X",
                InstitutionLevel::County,
                Some("A Town"),
            ))
            .await;
        assert!(
            matches!(err, Err(Error::Invalid(_))),
            "township heads county: {err:?}"
        );
        let err = c
            .add_institution(&institution(
                "A",
                "X",
                InstitutionLevel::Township,
                Some("A Town"),
            ))
            .await;
        assert!(
            matches!(err, Err(Error::Invalid(_))),
            "township heads township: {err:?}"
        );
        let err = c
            .add_institution(&institution(
                "B",
                "X",
                InstitutionLevel::Township,
                Some("A County"),
            ))
            .await;
        assert!(
            matches!(err, Err(Error::Invalid(_))),
            "parent in another alliance: {err:?}"
        );
        assert_eq!(
            c.list_institutions().await.expect("list").len(),
            4,
            "failures add nothing"
        );
        assert!(c.find_institution("X").await.expect("find").is_none());

        c.add_ae_title("A Town", "US01", None).await.expect("ae");
        let err = c.add_ae_title("B County", "US01", None).await;
        assert!(
            matches!(err, Err(Error::Conflict(_))),
            "AE title taken: {err:?}"
        );
        let err = c.add_ae_title("B County", " US01", None).await;
        assert!(
            matches!(err, Err(Error::Conflict(_))),
            "AE title taken after trim: {err:?}"
        );
        let err = c.add_ae_title("A Town", "ABCDEFGHIJKLMNOPQ", None).await;
        assert!(matches!(err, Err(Error::Invalid(_))), "17 chars: {err:?}");
        let err = c.add_ae_title("A Town", "A\\B", None).await;
        assert!(matches!(err, Err(Error::Invalid(_))), "backslash: {err:?}");
        let err = c.add_ae_title("Nowhere", "MR01", None).await;
        assert!(
            matches!(err, Err(Error::NotFound(_))),
            "unknown institution: {err:?}"
        );
        assert_eq!(c.list_ae_titles().await.expect("list").len(), 1);
    }

    pub async fn insert_and_counts(c: &dyn Catalog) {
        let (st, se) = ("1.2.3", "1.2.3.1");
        let mut ids = Vec::new();
        for n in [3, 1, 2] {
            let new = instance(st, se, &format!("1.2.3.1.{n}"), n, 0);
            match c.insert_instance(&new).await.expect("insert") {
                InsertOutcome::Inserted { instance_id } => ids.push(instance_id),
                other => panic!("expected Inserted, got {other:?}"),
            }
        }
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 1, 3, 3));

        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(study.study_instance_uid, st);
        assert_eq!((study.num_series, study.num_instances), (1, 3));
        assert_eq!(study.size_bytes, 1001 + 1002 + 1003);
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT"));
        assert_eq!(study.study_date.as_deref(), Some("20261122"));
        assert_eq!(study.accession_number.as_deref(), Some("A1"));
        assert_eq!(study.patient_id, "P001");
        assert_eq!(study.patient_name.as_deref(), Some("DOE^JOHN"));
        assert_eq!(study.patient_sex.as_deref(), Some("M"));
        let patient = c
            .get_patient(study.patient_ref)
            .await
            .expect("patient")
            .expect("present");
        assert_eq!(patient.patient_id, "P001");
        assert_eq!(patient.patient_key, "0||P001");

        let series = c.get_series(se).await.expect("series").expect("present");
        assert_eq!(series.study_instance_uid, st);
        assert_eq!(series.study_ref, study.id);
        assert_eq!(series.modality.as_deref(), Some("CT"));
        assert_eq!((series.num_instances, series.size_bytes), (3, 3006));
        let listed = c.list_series_of_study(st).await.expect("series list");
        assert_eq!(listed, vec![series.clone()]);

        let instances = c.list_instances_of_series(se).await.expect("instances");
        let numbers: Vec<_> = instances.iter().map(|i| i.instance_number).collect();
        assert_eq!(
            numbers,
            [Some(1), Some(2), Some(3)],
            "ordered by instance number"
        );

        let one = c
            .get_instance("1.2.3.1.2")
            .await
            .expect("get")
            .expect("present");
        let expected = instance(st, se, "1.2.3.1.2", 2, 0);
        assert_eq!(one.id, ids[2]);
        assert_eq!(one.series_ref, series.id);
        assert_eq!(one.series_instance_uid, se);
        assert_eq!(one.study_instance_uid, st);
        assert_eq!(one.sop_class_uid, expected.instance.sop_class_uid);
        assert_eq!(
            one.transfer_syntax_uid,
            expected.instance.transfer_syntax_uid
        );
        assert_eq!(one.sha256, expected.instance.sha256);
        assert_eq!(one.dataset_hash, expected.instance.dataset_hash);
        assert_eq!(one.blob_key, expected.instance.blob_key);
        assert_eq!(one.size_bytes, 1002);
        assert_eq!(one.source_ae.as_deref(), Some("CT01"));
        assert_eq!(one.received_at, expected.instance.received_at);
        assert_eq!(one.number_of_frames, None);

        let v = c
            .find_instance_version("1.2.3.1.2", &expected.instance.dataset_hash)
            .await
            .expect("find version")
            .expect("present");
        assert_eq!(v, one);
        assert!(
            c.find_instance_version("1.2.3.1.2", &hash("other"))
                .await
                .expect("find")
                .is_none()
        );
        assert!(c.get_instance("9.9.9").await.expect("get").is_none());
        assert!(c.get_study("9.9.9").await.expect("get").is_none());
        assert!(c.get_series("9.9.9").await.expect("get").is_none());
        assert!(
            c.list_series_of_study("9.9.9")
                .await
                .expect("list")
                .is_empty()
        );

        let bad = NewInstance {
            study: StudyAttrs::default(),
            ..instance(st, se, "1.2.3.1.9", 9, 0)
        };
        assert!(matches!(
            c.insert_instance(&bad).await,
            Err(Error::Invalid(_))
        ));
    }

    pub async fn duplicate_changes_nothing(c: &dyn Catalog) {
        let first = instance("1.2.4", "1.2.4.1", "1.2.4.1.1", 1, 0);
        let InsertOutcome::Inserted { instance_id } =
            c.insert_instance(&first).await.expect("insert")
        else {
            panic!("expected Inserted");
        };
        let before = c.get_study("1.2.4").await.expect("study").expect("present");

        // same SOP, same data set: a re-send, even if it names another file or adds attributes
        let mut again = first.clone();
        again.instance.blob_key = "studies/elsewhere.dcm".into();
        again.study.study_description = Some("added later".into());
        let outcome = c.insert_instance(&again).await.expect("insert again");
        assert_eq!(
            outcome,
            InsertOutcome::Duplicate {
                instance_id,
                blob_key: first.instance.blob_key.clone()
            }
        );
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 1, 1, 1));
        let after = c.get_study("1.2.4").await.expect("study").expect("present");
        assert_eq!(after, before, "a duplicate changes nothing");
    }

    /// `ingest_lookup` (one statement) answers as `find_instance_version` and `owners` do.
    pub async fn ingest_lookup_is_version_and_owners(c: &dyn Catalog) {
        c.add_alliance("L").await.expect("alliance");
        let inst = c
            .add_institution(&institution("L", "L1", InstitutionLevel::County, None))
            .await
            .expect("institution");
        let (st, se, sop) = ("1.2.9", "1.2.9.1", "1.2.9.1.1");
        let mut v0 = instance(st, se, sop, 1, 0);
        v0.institution_id = Some(inst.id);
        let v1 = instance(st, se, sop, 1, 1);

        let check = |study: &'static str, sop: &'static str, sha: String| async move {
            let found = c.ingest_lookup(study, sop, &sha).await.expect("lookup");
            let (version, owners) = (found.version, found.owners);
            let want_legacy = c
                .instance_versions(sop)
                .await
                .expect("versions")
                .iter()
                .any(|v| v.dataset_hash.starts_with("sha256:"));
            assert_eq!(found.legacy_keyed, want_legacy, "{study} {sop}");
            let want_version = c.find_instance_version(sop, &sha).await.expect("version");
            let want_owners = c.owners(study, sop).await.expect("owners");
            assert_eq!(
                version
                    .as_ref()
                    .map(|v| (v.id, v.blob_key.clone(), v.sha256.clone())),
                want_version
                    .as_ref()
                    .map(|v| (v.id, v.blob_key.clone(), v.sha256.clone())),
                "{study} {sop}"
            );
            assert_eq!(owners, want_owners, "{study} {sop}");
            (version, owners)
        };

        // nothing stored yet
        let (v, o) = check(st, sop, v0.instance.dataset_hash.clone()).await;
        assert!(v.is_none());
        assert_eq!(o, (None, None));

        c.insert_instance(&v0).await.expect("v0");
        // the identical data set: the stored version, with the owners
        let (v, o) = check(st, sop, v0.instance.dataset_hash.clone()).await;
        let v = v.expect("the stored version");
        assert_eq!(v.sop_instance_uid, sop);
        assert_eq!(v.series_instance_uid, se);
        assert_eq!(v.study_instance_uid, st);
        assert_eq!(v.dataset_hash, v0.instance.dataset_hash);
        assert_eq!(o, (Some(inst.id), Some(inst.id)));
        // another data set of the same SOP instance: no version, the same owners
        let (v, o) = check(st, sop, v1.instance.dataset_hash.clone()).await;
        assert!(v.is_none());
        assert_eq!(o, (Some(inst.id), Some(inst.id)));
        // a new SOP instance of the known study
        let (v, o) = check(st, "1.2.9.1.2", hash("x")).await;
        assert!(v.is_none());
        assert_eq!(o, (Some(inst.id), None));
        // a SOP instance indexed before BLAKE3 keys (its key the data set's SHA-256)
        let mut old = instance(st, se, "1.2.9.1.3", 3, 0);
        old.instance.dataset_hash = format!("sha256:{}", hash("old"));
        c.insert_instance(&old).await.expect("old");
        let found = c
            .ingest_lookup(st, "1.2.9.1.3", &format!("blake3:{}", hash("new")))
            .await
            .expect("lookup");
        assert!(found.version.is_none() && found.legacy_keyed, "{found:?}");
        let found = c
            .ingest_lookup(st, "1.2.9.1.3", &old.instance.dataset_hash)
            .await
            .expect("lookup");
        assert_eq!(
            found.version.map(|v| v.sop_instance_uid),
            Some("1.2.9.1.3".to_owned())
        );
        assert!(
            !c.ingest_lookup(st, sop, &hash("y"))
                .await
                .expect("lookup")
                .legacy_keyed
        );
    }

    pub async fn new_version(c: &dyn Catalog) {
        let (st, se, sop) = ("1.2.5", "1.2.5.1", "1.2.5.1.1");
        let v0 = instance(st, se, sop, 1, 0);
        let InsertOutcome::Inserted { instance_id: first } =
            c.insert_instance(&v0).await.expect("v0")
        else {
            panic!("expected Inserted");
        };
        c.insert_instance(&instance(st, se, "1.2.5.1.2", 2, 0))
            .await
            .expect("other");

        let mut v1 = instance(st, se, sop, 1, 1);
        v1.instance.size_bytes = 5000;
        let outcome = c.insert_instance(&v1).await.expect("v1");
        let InsertOutcome::NewVersion {
            instance_id,
            previous_instance_id,
        } = outcome
        else {
            panic!("expected NewVersion, got {outcome:?}");
        };
        assert_eq!(previous_instance_id, first);
        assert!(instance_id > first);

        let current = c.get_instance(sop).await.expect("get").expect("present");
        assert_eq!(
            current.id, instance_id,
            "get_instance returns the newest version"
        );
        assert_eq!(current.dataset_hash, v1.instance.dataset_hash);
        assert_eq!(current.blob_key, v1.instance.blob_key);
        let versions = c.instance_versions(sop).await.expect("versions");
        assert_eq!(
            versions.iter().map(|v| v.id).collect::<Vec<_>>(),
            [first, instance_id]
        );

        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 1, 2, 3));
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            study.num_instances, 2,
            "a new version is not a new instance"
        );
        assert_eq!(
            study.size_bytes,
            1001 + 1002 + 5000,
            "but its bytes are stored"
        );
        let series = c.get_series(se).await.expect("series").expect("present");
        assert_eq!((series.num_instances, series.size_bytes), (2, 7003));

        let listed = c.list_instances_of_series(se).await.expect("list");
        assert_eq!(listed.len(), 2, "current versions only");
        assert!(listed.iter().any(|i| i.id == instance_id));
        assert!(!listed.iter().any(|i| i.id == first));

        // re-sending the old version is a duplicate of the old row
        let outcome = c.insert_instance(&v0).await.expect("v0 again");
        assert!(
            matches!(outcome, InsertOutcome::Duplicate { instance_id, .. } if instance_id == first)
        );
        // a third version points at the newest previous one
        let outcome = c
            .insert_instance(&instance(st, se, sop, 1, 2))
            .await
            .expect("v2");
        assert!(
            matches!(outcome, InsertOutcome::NewVersion { previous_instance_id, .. } if previous_instance_id == instance_id),
            "{outcome:?}"
        );
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 1, 2, 4));
    }

    pub async fn modalities_and_attribute_fill(c: &dyn Catalog) {
        let st = "1.2.6";
        let mut first = instance(st, "1.2.6.1", "1.2.6.1.1", 1, 0);
        first.study.study_description = None;
        first.patient.patient_name = None;
        c.insert_instance(&first).await.expect("ct");
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT"));
        assert_eq!(study.study_description, None);
        assert_eq!(study.patient_name, None);

        let mut mr = instance(st, "1.2.6.2", "1.2.6.2.1", 1, 0);
        mr.series.modality = Some("MR".into());
        mr.series.series_number = Some(2);
        mr.study.study_description = Some("HEAD".into());
        mr.study.accession_number = Some("SHOULD-NOT-REPLACE".into());
        mr.patient.patient_name = Some("DOE^JANE".into());
        c.insert_instance(&mr).await.expect("mr");
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT\\MR"));
        assert_eq!(study.num_series, 2);
        assert_eq!(
            study.study_description.as_deref(),
            Some("HEAD"),
            "missing attributes are filled"
        );
        assert_eq!(
            study.accession_number.as_deref(),
            Some("A1"),
            "present attributes are kept"
        );
        assert_eq!(study.patient_name.as_deref(), Some("DOE^JANE"));

        // a series that got its modality only with a later instance
        let mut sr = instance(st, "1.2.6.3", "1.2.6.3.1", 1, 0);
        sr.series.modality = None;
        sr.series.series_number = Some(3);
        c.insert_instance(&sr).await.expect("no modality");
        assert_eq!(
            c.get_study(st)
                .await
                .expect("study")
                .expect("present")
                .modalities_in_study
                .as_deref(),
            Some("CT\\MR")
        );
        let mut sr2 = instance(st, "1.2.6.3", "1.2.6.3.2", 2, 0);
        sr2.series.modality = Some("AU".into());
        c.insert_instance(&sr2).await.expect("late modality");
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            study.modalities_in_study.as_deref(),
            Some("AU\\CT\\MR"),
            "sorted"
        );
        assert_eq!(study.num_series, 3);
        // another CT series does not repeat CT
        let mut ct2 = instance(st, "1.2.6.4", "1.2.6.4.1", 1, 0);
        ct2.series.series_number = None;
        c.insert_instance(&ct2).await.expect("ct 2");
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(study.modalities_in_study.as_deref(), Some("AU\\CT\\MR"));
        assert_eq!((study.num_series, study.num_instances), (4, 5));

        let order: Vec<_> = c
            .list_series_of_study(st)
            .await
            .expect("series")
            .into_iter()
            .map(|s| s.series_instance_uid)
            .collect();
        assert_eq!(
            order,
            ["1.2.6.1", "1.2.6.2", "1.2.6.3", "1.2.6.4"],
            "by number, missing last"
        );
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 4, 5, 5));
    }

    /// An empty Patient ID identifies nobody: two such studies must not share a patient
    /// (and so must not show each other's names).
    pub async fn studies_without_patient_id_are_not_merged(c: &dyn Catalog) {
        let mut a = instance("1.2.900.1", "1.2.900.1.1", "1.2.900.1.1.1", 1, 0);
        a.patient.patient_id = String::new();
        a.patient.patient_name = Some("ANON^A".into());
        let mut b = instance("1.2.900.2", "1.2.900.2.1", "1.2.900.2.1.1", 1, 0);
        b.patient.patient_id = "  ".into();
        b.patient.patient_name = Some("ANON^B".into());
        c.insert_instance(&a).await.unwrap();
        c.insert_instance(&b).await.unwrap();
        assert_eq!(c.counts().await.unwrap().patients, 2);
        let sa = c.get_study("1.2.900.1").await.unwrap().unwrap();
        let sb = c.get_study("1.2.900.2").await.unwrap().unwrap();
        assert_eq!(sa.patient_name.as_deref(), Some("ANON^A"));
        assert_eq!(sb.patient_name.as_deref(), Some("ANON^B"));
        // a second instance of the same anonymous study joins its patient
        let a2 = NewInstance {
            instance: instance("1.2.900.1", "1.2.900.1.1", "1.2.900.1.1.2", 2, 0).instance,
            ..a
        };
        c.insert_instance(&a2).await.unwrap();
        assert_eq!(c.counts().await.unwrap().patients, 2);
    }

    pub async fn patients_are_scoped_by_institution(c: &dyn Catalog) {
        c.add_alliance("G").await.expect("alliance");
        let a = c
            .add_institution(&institution(
                "G",
                "Clinic A",
                InstitutionLevel::County,
                None,
            ))
            .await
            .expect("A");
        let b = c
            .add_institution(&institution(
                "G",
                "Clinic B",
                InstitutionLevel::Township,
                Some("Clinic A"),
            ))
            .await
            .expect("B");
        let mut x = instance("1.2.7.1", "1.2.7.1.1", "1.2.7.1.1.1", 1, 0);
        x.institution_id = Some(a.id);
        let mut y = instance("1.2.7.2", "1.2.7.2.1", "1.2.7.2.1.1", 1, 0);
        y.institution_id = Some(b.id);
        let mut z = instance("1.2.7.3", "1.2.7.3.1", "1.2.7.3.1.1", 1, 0);
        z.institution_id = Some(a.id);
        z.patient.patient_name = Some("OTHER^NAME".into());
        for new in [&x, &y, &z] {
            assert!(matches!(
                c.insert_instance(new).await.expect("insert"),
                InsertOutcome::Inserted { .. }
            ));
        }
        // P001 at A (two studies) and P001 at B are two patients
        assert_eq!(c.counts().await.expect("counts"), counts(2, 3, 3, 3, 3));
        let sx = c.get_study("1.2.7.1").await.expect("x").expect("present");
        let sy = c.get_study("1.2.7.2").await.expect("y").expect("present");
        let sz = c.get_study("1.2.7.3").await.expect("z").expect("present");
        assert_eq!(sx.patient_ref, sz.patient_ref);
        assert_ne!(sx.patient_ref, sy.patient_ref);
        assert_eq!(sx.institution_id, Some(a.id));
        assert_eq!(
            sz.patient_name.as_deref(),
            Some("DOE^JOHN"),
            "a known name is not replaced"
        );
        let inst = c
            .get_instance("1.2.7.2.1.1")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(inst.institution_id, Some(b.id));
        let patient = c
            .get_patient(sy.patient_ref)
            .await
            .expect("patient")
            .expect("present");
        assert_eq!(patient.institution_id, Some(b.id));
        assert_eq!(patient.patient_key, format!("{}||P001", b.id));

        // an empty Patient ID is still a patient (per institution)
        let mut anon = instance("1.2.7.4", "1.2.7.4.1", "1.2.7.4.1.1", 1, 0);
        anon.patient = PatientAttrs::default();
        c.insert_instance(&anon).await.expect("anonymous");
        let s = c
            .get_study("1.2.7.4")
            .await
            .expect("study")
            .expect("present");
        assert_eq!(s.patient_id, "");
        assert_eq!(c.counts().await.expect("counts").patients, 3);
    }

    pub async fn series_of_another_study_is_a_conflict(c: &dyn Catalog) {
        c.insert_instance(&instance("1.2.8", "1.2.8.1", "1.2.8.1.1", 1, 0))
            .await
            .expect("first");
        let before = c.counts().await.expect("counts");
        let err = c
            .insert_instance(&instance("1.2.9", "1.2.8.1", "1.2.8.1.2", 2, 0))
            .await;
        assert!(matches!(err, Err(Error::Conflict(_))), "{err:?}");
        assert_eq!(
            c.counts().await.expect("counts"),
            before,
            "the transaction rolled back"
        );
        assert!(c.get_study("1.2.9").await.expect("get").is_none());
    }

    pub async fn concurrent_inserts_keep_exact_counts(c: &dyn Catalog) {
        const TASKS: usize = 4;
        const PER_TASK: usize = 100;
        let st = "1.2.10";
        let shared = instance(st, "1.2.10.1", "1.2.10.shared", 0, 0);
        let tasks = (0..TASKS).map(|t| {
            let shared = shared.clone();
            async move {
                let mut outcomes = Vec::new();
                for k in 0..PER_TASK {
                    let series = if k % 2 == 0 { "1.2.10.1" } else { "1.2.10.2" };
                    let n = (t * PER_TASK + k) as i64;
                    let mut new = instance(st, series, &format!("1.2.10.{t}.{k}"), n, 0);
                    new.series.modality = Some(if k % 2 == 0 { "CT" } else { "SR" }.into());
                    new.series.series_number = Some(if k % 2 == 0 { 1 } else { 2 });
                    new.instance.size_bytes = 10;
                    outcomes.push(c.insert_instance(&new).await.expect("concurrent insert"));
                    if k == PER_TASK / 2 {
                        outcomes.push(c.insert_instance(&shared).await.expect("shared insert"));
                    }
                }
                outcomes
            }
        });
        let outcomes: Vec<InsertOutcome> = futures::future::join_all(tasks)
            .await
            .into_iter()
            .flatten()
            .collect();
        let inserted = outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Inserted { .. }))
            .count();
        let duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, InsertOutcome::Duplicate { .. }))
            .count();
        assert_eq!(inserted, TASKS * PER_TASK + 1);
        assert_eq!(
            duplicates,
            TASKS - 1,
            "the shared instance is inserted exactly once"
        );

        let total = (TASKS * PER_TASK + 1) as i64;
        assert_eq!(
            c.counts().await.expect("counts"),
            counts(1, 1, 2, total, total)
        );
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!((study.num_series, study.num_instances), (2, total));
        assert_eq!(
            study.size_bytes,
            10 * (total - 1) + shared.instance.size_bytes
        );
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT\\SR"));
        let s1 = c
            .get_series("1.2.10.1")
            .await
            .expect("s1")
            .expect("present");
        let s2 = c
            .get_series("1.2.10.2")
            .await
            .expect("s2")
            .expect("present");
        assert_eq!(s1.num_instances, (TASKS * PER_TASK / 2) as i64 + 1);
        assert_eq!(s2.num_instances, (TASKS * PER_TASK / 2) as i64);
        assert_eq!(s1.size_bytes + s2.size_bytes, study.size_bytes);
        assert_eq!(
            c.list_instances_of_series("1.2.10.1")
                .await
                .expect("list")
                .len() as i64,
            s1.num_instances
        );
    }

    pub async fn chinese_text_round_trips(c: &dyn Catalog) {
        let mut a = instance("1.2.11", "1.2.11.1", "1.2.11.1.1", 1, 0);
        a.patient.patient_id = "身份证-330724".into();
        a.patient.patient_name = Some("张三".into());
        a.study.study_description = Some("胸部CT平扫".into());
        a.study.referring_physician_name = Some("李^医生".into());
        a.series.series_description = Some("肺窗 1.25mm".into());
        c.insert_instance(&a).await.expect("insert");
        let study = c
            .get_study("1.2.11")
            .await
            .expect("study")
            .expect("present");
        assert_eq!(study.patient_name.as_deref(), Some("张三"));
        assert_eq!(study.patient_id, "身份证-330724");
        assert_eq!(study.study_description.as_deref(), Some("胸部CT平扫"));
        assert_eq!(study.referring_physician_name.as_deref(), Some("李^医生"));
        let series = c
            .get_series("1.2.11.1")
            .await
            .expect("series")
            .expect("present");
        assert_eq!(series.series_description.as_deref(), Some("肺窗 1.25mm"));

        let mut b = instance("1.2.12", "1.2.12.1", "1.2.12.1.1", 1, 0);
        b.patient.patient_id = "P-王".into();
        b.patient.patient_name = Some("王^小东=王^小東".into());
        c.insert_instance(&b).await.expect("insert");
        let study = c
            .get_study("1.2.12")
            .await
            .expect("study")
            .expect("present");
        assert_eq!(study.patient_name.as_deref(), Some("王^小东=王^小東"));
        let patient = c
            .get_patient(study.patient_ref)
            .await
            .expect("patient")
            .expect("present");
        assert_eq!(patient.patient_name.as_deref(), Some("王^小东=王^小東"));
        assert_eq!(patient.patient_key, "0||P-王");
    }

    pub async fn delete_instance_row_fixes_counts(c: &dyn Catalog) {
        let st = "1.2.13";
        let a1 = c
            .insert_instance(&instance(st, "1.2.13.1", "1.2.13.1.1", 1, 0))
            .await
            .expect("a1")
            .instance_id();
        let a2 = c
            .insert_instance(&instance(st, "1.2.13.1", "1.2.13.1.2", 2, 0))
            .await
            .expect("a2")
            .instance_id();
        let a1v2 = c
            .insert_instance(&instance(st, "1.2.13.1", "1.2.13.1.1", 1, 1))
            .await
            .expect("a1 v2");
        assert!(matches!(a1v2, InsertOutcome::NewVersion { .. }));
        let a1v2 = a1v2.instance_id();
        let mut b = instance(st, "1.2.13.2", "1.2.13.2.1", 1, 0);
        b.series.modality = Some("MR".into());
        let b1 = c.insert_instance(&b).await.expect("b1").instance_id();
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 2, 3, 4));
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            (study.num_series, study.num_instances, study.size_bytes),
            (2, 3, 1001 + 1002 + 1001 + 1001)
        );
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT\\MR"));

        // the old version of a1: instance count stays, bytes go
        c.delete_instance_row(a1).await.expect("delete old version");
        assert_eq!(c.counts().await.expect("counts"), counts(1, 1, 2, 3, 3));
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            (study.num_series, study.num_instances, study.size_bytes),
            (2, 3, 1002 + 1001 + 1001)
        );
        let series = c
            .get_series("1.2.13.1")
            .await
            .expect("series")
            .expect("present");
        assert_eq!((series.num_instances, series.size_bytes), (2, 2003));
        assert_eq!(
            c.get_instance("1.2.13.1.1")
                .await
                .expect("get")
                .map(|i| i.id),
            Some(a1v2)
        );

        // the only instance of the MR series: the series goes, and MR with it
        c.delete_instance_row(b1).await.expect("delete b1");
        assert!(c.get_series("1.2.13.2").await.expect("get").is_none());
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            (study.num_series, study.num_instances, study.size_bytes),
            (1, 2, 2003)
        );
        assert_eq!(study.modalities_in_study.as_deref(), Some("CT"));

        c.delete_instance_row(a2).await.expect("delete a2");
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!(
            (study.num_series, study.num_instances, study.size_bytes),
            (1, 1, 1001)
        );

        // the last row: series and study go
        c.delete_instance_row(a1v2).await.expect("delete last");
        assert!(c.get_study(st).await.expect("get").is_none());
        assert!(c.get_series("1.2.13.1").await.expect("get").is_none());
        assert!(c.get_instance("1.2.13.1.1").await.expect("get").is_none());
        let left = c.counts().await.expect("counts");
        assert_eq!(
            (
                left.studies,
                left.series,
                left.instances,
                left.instance_versions
            ),
            (0, 0, 0, 0)
        );

        assert!(matches!(
            c.delete_instance_row(a1v2).await,
            Err(Error::NotFound(_))
        ));
        // the study can be received again from scratch
        let again = c
            .insert_instance(&instance(st, "1.2.13.1", "1.2.13.1.1", 1, 0))
            .await
            .expect("again");
        assert!(matches!(again, InsertOutcome::Inserted { .. }));
        let study = c.get_study(st).await.expect("study").expect("present");
        assert_eq!((study.num_series, study.num_instances), (1, 1));
    }

    pub async fn list_instance_rows_paginates(c: &dyn Catalog) {
        for n in 0..25 {
            let series = format!("1.2.14.{}", n % 3);
            c.insert_instance(&instance("1.2.14", &series, &format!("1.2.14.9.{n}"), n, 0))
                .await
                .expect("insert");
        }
        // a second version is listed too
        c.insert_instance(&instance("1.2.14", "1.2.14.0", "1.2.14.9.0", 0, 1))
            .await
            .expect("v2");

        let mut seen = Vec::new();
        let mut after = 0;
        let mut pages = 0;
        loop {
            let page = c.list_instance_rows(after, 10).await.expect("page");
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 10);
            pages += 1;
            after = page.last().map(|r| r.id).unwrap_or(after);
            seen.extend(page.into_iter().map(|r| r.id));
        }
        assert_eq!(pages, 3);
        assert_eq!(seen.len(), 26);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing ids"
        );
        assert!(c.list_instance_rows(0, 0).await.expect("empty").is_empty());
        let tail = c.list_instance_rows(seen[23], 10).await.expect("tail");
        assert_eq!(tail.iter().map(|r| r.id).collect::<Vec<_>>(), &seen[24..]);
    }

    pub async fn list_studies_filters_and_paginates(c: &dyn Catalog) {
        c.add_alliance("A").await.expect("alliance");
        let a = c
            .add_institution(&institution("A", "A1", InstitutionLevel::County, None))
            .await
            .expect("a1");
        let b = c
            .add_institution(&institution("A", "B1", InstitutionLevel::County, None))
            .await
            .expect("b1");
        for (n, inst) in [(1, Some(a.id)), (2, Some(b.id)), (3, Some(a.id)), (4, None)] {
            let mut i = instance(
                &format!("9.{n}"),
                &format!("9.{n}.1"),
                &format!("9.{n}.1.1"),
                1,
                0,
            );
            i.institution_id = inst;
            c.insert_instance(&i).await.expect("insert");
        }
        let uids = |rows: Vec<dxhub_store::StudyRow>| {
            rows.into_iter()
                .map(|r| r.study_instance_uid)
                .collect::<Vec<_>>()
        };
        let all = c
            .list_studies(&dxhub_store::StudyFilter::default())
            .await
            .expect("all");
        assert_eq!(uids(all.clone()), ["9.1", "9.2", "9.3", "9.4"]);
        assert_eq!(all[0].patient_id, "P001");
        let only_a = c
            .list_studies(&dxhub_store::StudyFilter {
                institution_ids: Some(vec![a.id]),
                ..Default::default()
            })
            .await
            .expect("a");
        assert_eq!(uids(only_a), ["9.1", "9.3"]);
        let both = dxhub_store::StudyFilter {
            institution_ids: Some(vec![a.id, b.id]),
            limit: Some(2),
            ..Default::default()
        };
        let page1 = c.list_studies(&both).await.expect("page 1");
        assert_eq!(uids(page1.clone()), ["9.1", "9.2"]);
        let page2 = c
            .list_studies(&dxhub_store::StudyFilter {
                after_id: Some(page1[1].id),
                ..both.clone()
            })
            .await
            .expect("page 2");
        assert_eq!(uids(page2), ["9.3"]);
        let newest = dxhub_store::StudyFilter {
            newest_first: true,
            limit: Some(3),
            ..Default::default()
        };
        let recent = c.list_studies(&newest).await.expect("newest first");
        assert_eq!(uids(recent.clone()), ["9.4", "9.3", "9.2"]);
        let older = c
            .list_studies(&dxhub_store::StudyFilter {
                after_id: Some(recent[2].id),
                ..newest.clone()
            })
            .await
            .expect("older page");
        assert_eq!(uids(older), ["9.1"]);
        // no work item or report yet: one row per study, nothing else set
        let ids: Vec<i64> = all.iter().map(|r| r.id).collect();
        let flows = c.study_workflows(&ids).await.expect("workflows");
        assert_eq!(flows.len(), 4);
        assert!(flows.iter().all(|w| ids.contains(&w.study_id)
            && w.work_item_id.is_none()
            && w.report_id.is_none()));
        assert!(c.study_workflows(&[]).await.expect("none").is_empty());
        let none = c
            .list_studies(&dxhub_store::StudyFilter {
                institution_ids: Some(vec![]),
                ..Default::default()
            })
            .await
            .expect("none");
        assert!(none.is_empty());
    }

    pub async fn institution_update_and_ae_title_delete(c: &dyn Catalog) {
        c.add_alliance("UA").await.unwrap();
        let mut ids = Vec::new();
        for name in ["U1", "U2"] {
            let i = c
                .add_institution(&NewInstitution {
                    alliance: "UA".into(),
                    name: name.into(),
                    level: InstitutionLevel::County,
                    parent: None,
                    population: Some(10),
                })
                .await
                .unwrap();
            ids.push(i.id);
        }
        // population only
        let i = c
            .update_institution(
                ids[0],
                &InstitutionUpdate {
                    name: None,
                    population: Some(Some(42)),
                    parent: None,
                },
            )
            .await
            .unwrap();
        assert_eq!((i.name.as_str(), i.population), ("U1", Some(42)));
        // rename and clear the population
        let i = c
            .update_institution(
                ids[0],
                &InstitutionUpdate {
                    name: Some(" U1b ".into()),
                    population: Some(None),
                    parent: None,
                },
            )
            .await
            .unwrap();
        assert_eq!((i.name.as_str(), i.population), ("U1b", None));
        assert!(c.find_institution("U1b").await.unwrap().is_some());
        assert!(c.find_institution("U1").await.unwrap().is_none());
        // the former name is kept (what a report signed under it still names)
        assert_eq!(c.institution_former_names(ids[0]).await.unwrap(), ["U1"]);
        assert!(c.institution_former_names(ids[1]).await.unwrap().is_empty());
        // nothing to change: unchanged
        let same = c
            .update_institution(ids[0], &InstitutionUpdate::default())
            .await
            .unwrap();
        assert_eq!(same, i);
        assert!(matches!(
            c.update_institution(
                ids[0],
                &InstitutionUpdate {
                    name: Some("U2".into()),
                    population: None,
                    parent: None,
                },
            )
            .await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            c.update_institution(
                ids[0],
                &InstitutionUpdate {
                    name: None,
                    population: Some(Some(-1)),
                    parent: None,
                },
            )
            .await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.update_institution(
                ids[0],
                &InstitutionUpdate {
                    name: Some("  ".into()),
                    population: None,
                    parent: None,
                },
            )
            .await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            c.update_institution(99_999, &InstitutionUpdate::default())
                .await,
            Err(Error::NotFound(_))
        ));
        // a failed update changes nothing
        assert_eq!(c.find_institution("U1b").await.unwrap(), Some(i));
        assert_eq!(c.institution_former_names(ids[0]).await.unwrap(), ["U1"]);

        // moving: a village to another township, to a county; never below its own level
        for (name, level, parent) in [
            ("UT1", InstitutionLevel::Township, "U1b"),
            ("UT2", InstitutionLevel::Township, "U2"),
            ("UV", InstitutionLevel::Village, "UT1"),
        ] {
            c.add_institution(&NewInstitution {
                alliance: "UA".into(),
                name: name.into(),
                level,
                parent: Some(parent.into()),
                population: None,
            })
            .await
            .unwrap();
        }
        let uv = c.find_institution("UV").await.unwrap().unwrap();
        let ut1 = c.find_institution("UT1").await.unwrap().unwrap();
        let move_to = |parent: &str| InstitutionUpdate {
            parent: Some(parent.into()),
            ..InstitutionUpdate::default()
        };
        let moved = c.update_institution(uv.id, &move_to("UT2")).await.unwrap();
        assert_eq!(moved.parent_name.as_deref(), Some("UT2"));
        let moved = c.update_institution(uv.id, &move_to("U1b")).await.unwrap();
        assert_eq!(moved.parent_name.as_deref(), Some("U1b"));
        for (who, parent) in [(ut1.id, "UV"), (uv.id, "UV"), (ut1.id, "UT2")] {
            assert!(
                matches!(
                    c.update_institution(who, &move_to(parent)).await,
                    Err(Error::Invalid(_))
                ),
                "{who} under {parent}"
            );
        }
        assert!(matches!(
            c.update_institution(uv.id, &move_to("no such place")).await,
            Err(Error::NotFound(_))
        ));
        c.add_alliance("UB").await.unwrap();
        c.add_institution(&NewInstitution {
            alliance: "UB".into(),
            name: "UB-H".into(),
            level: InstitutionLevel::County,
            parent: None,
            population: None,
        })
        .await
        .unwrap();
        assert!(matches!(
            c.update_institution(uv.id, &move_to("UB-H")).await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(
            c.find_institution("UV")
                .await
                .unwrap()
                .unwrap()
                .parent_name
                .as_deref(),
            Some("U1b")
        );

        // AE titles: get by id, delete
        let ae = c
            .add_ae_title("U2", "UAE1", Some("10.0.0.1"))
            .await
            .unwrap();
        assert_eq!(c.get_ae_title(ae.id).await.unwrap(), Some(ae.clone()));
        assert_eq!(c.get_ae_title(99_999).await.unwrap(), None);
        c.delete_ae_title(ae.id).await.unwrap();
        assert_eq!(c.get_ae_title(ae.id).await.unwrap(), None);
        assert!(c.find_ae_title("UAE1").await.unwrap().is_none());
        assert!(matches!(
            c.delete_ae_title(ae.id).await,
            Err(Error::NotFound(_))
        ));
        // the title may be registered again
        c.add_ae_title("U1b", "UAE1", None).await.unwrap();
    }

    fn q(level: QidoLevel, conditions: Vec<(QidoKey, QidoMatch)>) -> QidoQuery {
        QidoQuery {
            level,
            conditions,
            institution_ids: None,
            routed_to: None,
            limit: 100,
            offset: 0,
            with_attrs: true,
        }
    }

    async fn uids(c: &dyn Catalog, query: QidoQuery) -> Vec<String> {
        c.qido(&query)
            .await
            .unwrap()
            .into_iter()
            .map(|r| match query.level {
                QidoLevel::Study => r.study_instance_uid,
                QidoLevel::Series => r.series_instance_uid.unwrap(),
                QidoLevel::Instance => r.sop_instance_uid.unwrap(),
            })
            .collect()
    }

    pub async fn qido_matching(c: &dyn Catalog) {
        use QidoKey as K;
        use QidoLevel::*;
        use QidoMatch as M;
        let people = [
            (
                "1.9.1",
                "P1",
                "Wang^XiaoMing=王^小明",
                "20240105",
                "083000",
                "CT",
            ),
            ("1.9.2", "P2", "WANG^Li", "20240210", "131500.5", "MR"),
            ("1.9.3", "P3", "Li^Lei=李^雷", "20231231", "235959", "CT"),
            ("1.9.4", "P4", "ｚｈａｏ^ｙｕｎ", "20240301", "120000", "US"),
        ];
        for (i, (study, pid, name, date, time, modality)) in people.iter().enumerate() {
            let mut x = instance(study, &format!("{study}.1"), &format!("{study}.1.1"), 1, 0);
            x.patient.patient_id = (*pid).into();
            x.patient.patient_name = Some((*name).into());
            x.study.study_date = Some((*date).into());
            x.study.study_time = Some((*time).into());
            x.study.accession_number = Some(format!("ACC{i}"));
            x.study.referring_physician_name = match i {
                0 => Some("Zhou^Jian=周^健".into()),
                3 => Some("ＺＨＯＵ^Ｌｉ".into()),
                _ => None,
            };
            x.series.modality = Some((*modality).into());
            c.insert_instance(&x).await.unwrap();
        }
        // a second series (SR) in study 1 and a second instance
        let mut x = instance("1.9.1", "1.9.1.2", "1.9.1.2.1", 1, 0);
        x.patient.patient_id = "P1".into();
        x.series.modality = Some("SR".into());
        x.series.series_number = Some(2);
        c.insert_instance(&x).await.unwrap();
        c.insert_instance(&instance("1.9.1", "1.9.1.1", "1.9.1.1.2", 2, 0))
            .await
            .unwrap();

        type Case = (QidoLevel, Vec<(QidoKey, QidoMatch)>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (Study, vec![], vec!["1.9.1", "1.9.2", "1.9.3", "1.9.4"]),
            (
                Study,
                vec![(K::PatientId, M::Single("P2".into()))],
                vec!["1.9.2"],
            ),
            // single value: the whole name or one group, case-sensitive
            (
                Study,
                vec![(K::PatientName, M::Single("王^小明".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Single("wang^xiaoming".into()))],
                vec![],
            ),
            (
                Study,
                vec![(K::PatientName, M::Wildcard("W*".into()))],
                vec!["1.9.1", "1.9.2"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Wildcard("WANG*".into()))],
                vec!["1.9.2"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Wildcard("?i^Lei".into()))],
                vec!["1.9.3"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Wildcard("李*".into()))],
                vec!["1.9.3"],
            ),
            // fuzzy: case, width, any group, any component, prefix
            (
                Study,
                vec![(K::PatientName, M::Fuzzy("wang".into()))],
                vec!["1.9.1", "1.9.2"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Fuzzy("ＸＩＡＯ".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Fuzzy("小明".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Fuzzy("zhao".into()))],
                vec!["1.9.4"],
            ),
            (
                Study,
                vec![(K::PatientName, M::Fuzzy("l*i".into()))],
                vec!["1.9.2", "1.9.3"],
            ),
            // Referring Physician Name: as Patient Name
            (
                Study,
                vec![(K::ReferringPhysicianName, M::Single("周^健".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(
                    K::ReferringPhysicianName,
                    M::Single("Zhou^Jian=周^健".into()),
                )],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(K::ReferringPhysicianName, M::Wildcard("Z*".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(K::ReferringPhysicianName, M::Fuzzy("zhou".into()))],
                vec!["1.9.1", "1.9.4"],
            ),
            (
                Study,
                vec![(K::ReferringPhysicianName, M::Fuzzy("健".into()))],
                vec!["1.9.1"],
            ),
            // ranges
            (
                Study,
                vec![(
                    K::StudyDate,
                    M::Range {
                        from: Some("20240101".into()),
                        to: Some("20240228".into()),
                    },
                )],
                vec!["1.9.1", "1.9.2"],
            ),
            (
                Study,
                vec![(
                    K::StudyDate,
                    M::Range {
                        from: None,
                        to: Some("20231231".into()),
                    },
                )],
                vec!["1.9.3"],
            ),
            (
                Study,
                vec![(
                    K::StudyDate,
                    M::Range {
                        from: Some("20240210".into()),
                        to: None,
                    },
                )],
                vec!["1.9.2", "1.9.4"],
            ),
            (
                Study,
                vec![(
                    K::StudyTime,
                    M::Range {
                        from: Some("1200".into()),
                        to: Some("1315".into()),
                    },
                )],
                vec!["1.9.2", "1.9.4"],
            ),
            // UID lists, wildcards on CS, ModalitiesInStudy
            (
                Study,
                vec![(
                    K::StudyInstanceUid,
                    M::List(vec!["1.9.3".into(), "1.9.4".into(), "9.9".into()]),
                )],
                vec!["1.9.3", "1.9.4"],
            ),
            (
                Study,
                vec![(K::AccessionNumber, M::Wildcard("ACC?".into()))],
                vec!["1.9.1", "1.9.2", "1.9.3", "1.9.4"],
            ),
            (
                Study,
                vec![(K::ModalitiesInStudy, M::Single("SR".into()))],
                vec!["1.9.1"],
            ),
            (
                Study,
                vec![(
                    K::ModalitiesInStudy,
                    M::List(vec!["MR".into(), "US".into()]),
                )],
                vec!["1.9.2", "1.9.4"],
            ),
            (
                Study,
                vec![
                    (K::PatientName, M::Fuzzy("wang".into())),
                    (K::StudyDate, M::Single("20240210".into())),
                ],
                vec!["1.9.2"],
            ),
            // a literal % or _ is not a wildcard
            (
                Study,
                vec![(K::AccessionNumber, M::Wildcard("ACC%".into()))],
                vec![],
            ),
            // series and instance level
            (
                Series,
                vec![(K::StudyInstanceUid, M::Single("1.9.1".into()))],
                vec!["1.9.1.1", "1.9.1.2"],
            ),
            (
                Series,
                vec![(K::Modality, M::Single("CT".into()))],
                vec!["1.9.1.1", "1.9.3.1"],
            ),
            (
                Series,
                vec![(K::SeriesNumber, M::Single("2".into()))],
                vec!["1.9.1.2"],
            ),
            (
                Instance,
                vec![(K::SeriesInstanceUid, M::Single("1.9.1.1".into()))],
                vec!["1.9.1.1.1", "1.9.1.1.2"],
            ),
            (
                Instance,
                vec![(K::InstanceNumber, M::Single("2".into()))],
                vec!["1.9.1.1.2"],
            ),
            (
                Instance,
                vec![(K::PatientName, M::Fuzzy("li".into()))],
                vec!["1.9.2.1.1", "1.9.3.1.1"],
            ),
        ];
        for (level, conditions, expected) in cases {
            let got = uids(c, q(level, conditions.clone())).await;
            assert_eq!(got, expected, "{level:?} {conditions:?}");
        }

        // paging is stable: pages concatenate to the whole list
        let mut paged = Vec::new();
        for offset in [0, 2, 4] {
            let mut query = q(Study, vec![]);
            query.limit = 2;
            query.offset = offset;
            paged.extend(uids(c, query).await);
        }
        assert_eq!(paged, ["1.9.1", "1.9.2", "1.9.3", "1.9.4"]);

        // scoping by institution: the instances have none, so an institution list matches
        // nothing, and an empty list matches nothing
        let mut scoped = q(Study, vec![]);
        scoped.institution_ids = Some(vec![1]);
        assert!(uids(c, scoped.clone()).await.is_empty());
        scoped.institution_ids = Some(vec![]);
        assert!(uids(c, scoped).await.is_empty());

        // counts and attributes come back with the rows
        let rows = c
            .qido(&q(
                Study,
                vec![(K::StudyInstanceUid, M::Single("1.9.1".into()))],
            ))
            .await
            .unwrap();
        assert_eq!(rows[0].num_series, 2);
        assert_eq!(rows[0].num_study_instances, 3);
        assert_eq!(rows[0].modalities_in_study.as_deref(), Some("CT\\SR"));
        assert_eq!(
            rows[0].patient_name.as_deref(),
            Some("Wang^XiaoMing=王^小明")
        );
    }

    pub async fn wado_instances_newest_versions(c: &dyn Catalog) {
        c.insert_instance(&instance("1.8.1", "1.8.1.1", "1.8.1.1.1", 1, 0))
            .await
            .unwrap();
        c.insert_instance(&instance("1.8.1", "1.8.1.1", "1.8.1.1.2", 2, 0))
            .await
            .unwrap();
        c.insert_instance(&instance("1.8.1", "1.8.1.2", "1.8.1.2.1", 1, 0))
            .await
            .unwrap();
        // a new version of the first instance
        let v1 = instance("1.8.1", "1.8.1.1", "1.8.1.1.1", 1, 1);
        c.insert_instance(&v1).await.unwrap();
        let scope = |series: Option<&str>, sop: Option<&str>| InstanceScope {
            study_instance_uid: "1.8.1".into(),
            series_instance_uid: series.map(Into::into),
            sop_instance_uid: sop.map(Into::into),
        };
        let all = c.wado_instances(&scope(None, None), false).await.unwrap();
        let sops: Vec<&str> = all.iter().map(|w| w.sop_instance_uid.as_str()).collect();
        assert_eq!(sops, ["1.8.1.1.1", "1.8.1.1.2", "1.8.1.2.1"]);
        assert_eq!(
            all[0].blob_key, v1.instance.blob_key,
            "newest version served"
        );
        assert!(all[0].metadata.is_none());
        let one = c
            .wado_instances(&scope(Some("1.8.1.1"), Some("1.8.1.1.2")), true)
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].metadata.as_deref().unwrap().contains("1.8.1.1.2"));
        let series = c
            .wado_instances(&scope(Some("1.8.1.2"), None), true)
            .await
            .unwrap();
        assert_eq!(series.len(), 1);
        assert!(
            c.wado_instances(&scope(Some("9.9"), None), false)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Inserts that arrive together (SQLite commits them in one transaction): a conflict
    /// fails alone, an identical pair is stored once, the rest are all stored.
    pub async fn concurrent_failures_are_isolated(c: &dyn Catalog) {
        let a = instance("1.7.1", "1.7.1.1", "1.7.1.1.1", 1, 0);
        let mut jobs = vec![a.clone(), a.clone()];
        for n in 2..30 {
            jobs.push(instance("1.7.1", "1.7.1.1", &format!("1.7.1.1.{n}"), n, 0));
        }
        // the same series UID under another study: a conflict
        jobs.push(instance("1.7.2", "1.7.1.1", "1.7.2.1.1", 1, 0));
        let results = futures::future::join_all(jobs.iter().map(|j| c.insert_instance(j))).await;
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict(_))))
            .count();
        let inserted = results
            .iter()
            .filter(|r| matches!(r, Ok(InsertOutcome::Inserted { .. })))
            .count();
        let duplicates = results
            .iter()
            .filter(|r| matches!(r, Ok(InsertOutcome::Duplicate { .. })))
            .count();
        assert_eq!((conflicts, inserted, duplicates), (1, 29, 1), "{results:?}");
        assert_eq!(c.counts().await.unwrap(), counts(1, 1, 1, 29, 29));
        assert!(
            c.get_study("1.7.2").await.unwrap().is_none(),
            "the conflict left nothing"
        );
        let st = c.get_study("1.7.1").await.unwrap().unwrap();
        assert_eq!((st.num_series, st.num_instances), (1, 29));
    }

    /// Instance inserts and audit appends at once on the one writer, one append invalid:
    /// it alone fails, every instance is indexed, the chain stays linear and complete.
    pub async fn mixed_writes_commit_together_and_fail_alone(c: &dyn Catalog) {
        let news: Vec<_> = (1..20)
            .map(|n| instance("1.8.1", "1.8.1.1", &format!("1.8.1.1.{n}"), n, 0))
            .collect();
        let entries: Vec<_> = (0..20)
            .map(|i| dxhub_store::NewAuditEntry {
                actor_kind: "cli".into(),
                actor: "conformance".into(),
                // no action: refused
                action: if i == 7 {
                    String::new()
                } else {
                    "study-read".into()
                },
                object_kind: Some("study".into()),
                object_id: Some(format!("1.8.1.{i}")),
                outcome: "success".into(),
                ..Default::default()
            })
            .collect();
        let (ri, ra) = tokio::join!(
            futures::future::join_all(news.iter().map(|n| c.insert_instance(n))),
            futures::future::join_all(entries.iter().map(|e| c.append_audit(e)))
        );
        assert!(
            ri.iter()
                .all(|r| matches!(r, Ok(InsertOutcome::Inserted { .. }))),
            "{ri:?}"
        );
        let failed: Vec<usize> = ra
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, [7], "{ra:?}");
        let v = c.verify_audit_chain().await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 19);
        let st = c.get_study("1.8.1").await.unwrap().unwrap();
        assert_eq!(st.num_instances, 19);
    }

    /// ECG records arriving together with instance inserts and audit appends (SQLite
    /// commits them in one transaction): a re-sent content gets the first record, one the
    /// database refuses (its instance does not exist) fails alone, the rest are stored,
    /// idempotency keys bound, the audit chain linear.
    pub async fn ecg_records_commit_together_and_fail_alone(c: &dyn Catalog) {
        c.add_alliance("ECG Group").await.expect("alliance");
        let clinic = c
            .add_institution(&institution(
                "ECG Group",
                "ECG Clinic",
                InstitutionLevel::Township,
                None,
            ))
            .await
            .expect("institution");
        let mut ids = Vec::new();
        for n in 1..=10 {
            let new = instance("1.9.1", "1.9.1.1", &format!("1.9.1.1.{n}"), n, 0);
            ids.push(c.insert_instance(&new).await.unwrap().instance_id());
        }
        let ecg = |n: usize, instance_id: i64, content: &str| NewEcg {
            institution_id: Some(clinic.id),
            device_id: None,
            instance_id,
            study_instance_uid: "1.9.1".into(),
            sop_instance_uid: format!("1.9.1.1.{n}"),
            format: "json".into(),
            content_sha256: hash(content),
            original_key: format!("ecg/originals/{n}"),
            original_size: 100,
            leads: r#"["I","II"]"#.into(),
            sample_rate_hz: 500.0,
            samples_per_lead: 5000,
            acquired_at: None,
            analysis: "{}".into(),
            critical: false,
        };
        // 0–7 distinct, 8 the content of 0 again, 9 of an instance that does not exist
        let mut ecgs: Vec<NewEcg> = (0..8)
            .map(|n| ecg(n, ids[n], &format!("ecg {n}")))
            .collect();
        ecgs.push(ecg(8, ids[8], "ecg 0"));
        ecgs.push(ecg(9, 9_999_999, "ecg 9"));
        let keys: Vec<Option<String>> = (0..10)
            .map(|n| (n % 2 == 1).then(|| format!("key-{n}")))
            .collect();
        let news: Vec<NewInstance> = (11..20)
            .map(|n| instance("1.9.1", "1.9.1.1", &format!("1.9.1.1.{n}"), n, 0))
            .collect();
        let entries: Vec<dxhub_store::NewAuditEntry> = (0..10)
            .map(|i| dxhub_store::NewAuditEntry {
                actor_kind: "device".into(),
                actor: "ecg".into(),
                action: "ecg-upload".into(),
                object_kind: Some("study".into()),
                object_id: Some(format!("1.9.1.{i}")),
                outcome: "success".into(),
                ..Default::default()
            })
            .collect();
        let (re, ri, ra) = tokio::join!(
            futures::future::join_all(
                ecgs.iter()
                    .zip(&keys)
                    .map(|(e, k)| c.insert_ecg(e, k.as_deref()))
            ),
            futures::future::join_all(news.iter().map(|n| c.insert_instance(n))),
            futures::future::join_all(entries.iter().map(|e| c.append_audit(e)))
        );
        assert!(
            ri.iter()
                .all(|r| matches!(r, Ok(InsertOutcome::Inserted { .. }))),
            "{ri:?}"
        );
        assert!(ra.iter().all(Result::is_ok), "{ra:?}");
        assert!(re[9].is_err(), "{:?}", re[9]);
        let row = |r: &Result<EcgInsert, Error>| match r {
            Ok(EcgInsert::Inserted(row) | EcgInsert::Existing(row)) => row.clone(),
            Err(e) => panic!("{e}"),
        };
        let inserted = re[..9]
            .iter()
            .filter(|r| matches!(r, Ok(EcgInsert::Inserted(_))))
            .count();
        assert_eq!(inserted, 8, "{re:?}");
        // the re-sent content and its first record are one record, whichever came first
        assert_eq!(row(&re[8]).id, row(&re[0]).id);
        for (n, r) in re[..8].iter().enumerate() {
            let r = row(r);
            assert_eq!(r.content_sha256, hash(&format!("ecg {n}")));
            assert_eq!(c.find_ecg(r.id).await.unwrap().unwrap().id, r.id);
        }
        let (sha, keyed) = c
            .find_ecg_by_idempotency_key(clinic.id, "key-3")
            .await
            .unwrap()
            .expect("key-3 bound");
        assert_eq!((sha, keyed.id), (hash("ecg 3"), row(&re[3]).id));
        assert!(
            c.find_ecg_by_idempotency_key(clinic.id, "key-9")
                .await
                .unwrap()
                .is_none(),
            "the refused record bound no key"
        );
        let v = c.verify_audit_chain().await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 10);
        assert_eq!(
            c.get_study("1.9.1").await.unwrap().unwrap().num_instances,
            19
        );
        // where each record keeps its original (for fsck), page by page in id order
        let first = c.list_ecg_originals(0, 5).await.unwrap();
        assert_eq!(first.len(), 5);
        let rest = c.list_ecg_originals(first[4].id, 100).await.unwrap();
        let listed: Vec<_> = first.iter().chain(&rest).cloned().collect();
        assert!(listed.windows(2).all(|w| w[0].id < w[1].id), "{listed:?}");
        let mut expected: Vec<_> = re[..8]
            .iter()
            .map(|r| {
                let r = row(r);
                dxhub_store::EcgOriginal {
                    id: r.id,
                    original_key: r.original_key,
                    original_size: 100,
                    content_sha256: r.content_sha256,
                }
            })
            .collect();
        expected.sort_by_key(|o| o.id);
        assert_eq!(listed, expected);
        assert!(c.list_ecg_originals(0, 0).await.unwrap().is_empty());
    }

    /// `insert_instance_with` with writable institutions: a study held by another
    /// institution at the insert (created after the ingest's look-up, say) is refused and
    /// nothing is written; one of the writable institutions is joined; `None` joins any.
    pub async fn study_of_another_institution_is_not_joined(c: &dyn Catalog) {
        c.add_alliance("Reach").await.expect("alliance");
        let mut ids = Vec::new();
        for name in ["Reach A", "Reach B"] {
            let i = c
                .add_institution(&institution(
                    "Reach",
                    name,
                    InstitutionLevel::Township,
                    None,
                ))
                .await
                .expect("institution");
            ids.push(i.id);
        }
        let (a, b) = (ids[0], ids[1]);
        let from = |inst: i64, sop: &str| NewInstance {
            institution_id: Some(inst),
            ..instance("1.11.1", "1.11.1.1", sop, 1, 0)
        };
        let only = |inst: i64| InstanceExtras {
            writable_institutions: Some(vec![inst]),
            ..InstanceExtras::default()
        };
        // A creates the study (its own, so allowed)
        c.insert_instance_with(&from(a, "1.11.1.1.1"), &only(a))
            .await
            .expect("A's own new study");
        let before = c.counts().await.unwrap();
        // B may not join it, and nothing of B's instance is written
        let refused = c
            .insert_instance_with(&from(b, "1.11.1.1.2"), &only(b))
            .await;
        assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
        assert_eq!(c.counts().await.unwrap(), before);
        assert!(c.get_instance("1.11.1.1.2").await.unwrap().is_none());
        assert_eq!(
            c.get_study("1.11.1").await.unwrap().unwrap().num_instances,
            1
        );
        // with A among the writable institutions it may; with no limit, anyone may
        let both = InstanceExtras {
            writable_institutions: Some(vec![b, a]),
            ..InstanceExtras::default()
        };
        c.insert_instance_with(&from(b, "1.11.1.1.3"), &both)
            .await
            .expect("writable includes the owner");
        c.insert_instance_with(&from(b, "1.11.1.1.4"), &InstanceExtras::default())
            .await
            .expect("no limit");
        let study = c.get_study("1.11.1").await.unwrap().unwrap();
        assert_eq!((study.num_instances, study.institution_id), (3, Some(a)));
    }

    /// `insert_instance_with`: an instance with its ECG record and audit entry. Stored
    /// together (the record returned is the one the index reads back), all of it or none
    /// of it (an invalid audit entry leaves no instance and no record), alongside plain
    /// writes; a new version gets its own record; a duplicate writes nothing.
    pub async fn instance_with_ecg_and_audit_is_one_write(c: &dyn Catalog) {
        c.add_alliance("With Group").await.expect("alliance");
        let clinic = c
            .add_institution(&institution(
                "With Group",
                "With Clinic",
                InstitutionLevel::Village,
                None,
            ))
            .await
            .expect("institution");
        let sop = |n: usize| format!("1.10.1.1.{n}");
        let extras = |n: usize, content: &str, action: &str| InstanceExtras {
            ecg: Some((
                NewEcg {
                    institution_id: Some(clinic.id),
                    device_id: None,
                    instance_id: 0, // set at the insert
                    study_instance_uid: "1.10.1".into(),
                    sop_instance_uid: sop(n),
                    format: "json".into(),
                    content_sha256: hash(content),
                    original_key: format!("ecg/originals/{n}"),
                    original_size: 100 + n as i64,
                    leads: r#"["I","II","V1"]"#.into(),
                    sample_rate_hz: 499.5,
                    samples_per_lead: 4995,
                    acquired_at: n.is_multiple_of(2).then(|| "20261123101500".to_owned()),
                    analysis: format!(r#"{{"hr":{n}}}"#),
                    critical: n == 3,
                },
                Some(format!("with-key-{n}")),
            )),
            audit: Some(dxhub_store::NewAuditEntry {
                actor_kind: "device".into(),
                actor: "ecg".into(),
                institution_id: Some(clinic.id),
                action: action.into(),
                object_kind: Some("study".into()),
                object_id: Some("1.10.1".into()),
                outcome: "success".into(),
                ..Default::default()
            }),
            writable_institutions: None,
        };
        let news: Vec<NewInstance> = (0..8)
            .map(|n| instance("1.10.1", "1.10.1.1", &sop(n), n as i64, 0))
            .collect();
        // 5 carries an invalid audit entry (no action): none of its writes may stay
        let all: Vec<InstanceExtras> = (0..8)
            .map(|n| {
                extras(
                    n,
                    &format!("with {n}"),
                    if n == 5 { "" } else { "ecg-upload" },
                )
            })
            .collect();
        let plain: Vec<NewInstance> = (20..26)
            .map(|n| instance("1.10.1", "1.10.1.1", &sop(n), n as i64, 0))
            .collect();
        let (rw, rp) = tokio::join!(
            futures::future::join_all(
                news.iter()
                    .zip(&all)
                    .map(|(n, e)| c.insert_instance_with(n, e))
            ),
            futures::future::join_all(plain.iter().map(|n| c.insert_instance(n)))
        );
        assert!(rp.iter().all(Result::is_ok), "{rp:?}");
        for (n, r) in rw.iter().enumerate() {
            if n == 5 {
                assert!(r.is_err(), "{r:?}");
                assert!(c.get_instance(&sop(5)).await.unwrap().is_none());
                assert!(c.find_ecg_by_sop_instance(&sop(5)).await.unwrap().is_none());
                assert!(
                    c.find_ecg_by_idempotency_key(clinic.id, "with-key-5")
                        .await
                        .unwrap()
                        .is_none()
                );
                continue;
            }
            let w = r.as_ref().unwrap();
            let InsertOutcome::Inserted { instance_id } = w.outcome else {
                panic!("{n}: {:?}", w.outcome);
            };
            let Some(EcgInsert::Inserted(row)) = &w.ecg else {
                panic!("{n}: {:?}", w.ecg);
            };
            assert_eq!(row.instance_id, instance_id);
            assert_eq!(row.critical, i32::from(n == 3));
            assert_eq!(row.instance_blob_key, news[n].instance.blob_key);
            let back = c.find_ecg(row.id).await.unwrap().expect("record stored");
            assert_eq!(&back, row, "{n}: the returned record is the stored one");
            let (sha, keyed) = c
                .find_ecg_by_idempotency_key(clinic.id, &format!("with-key-{n}"))
                .await
                .unwrap()
                .expect("key bound");
            assert_eq!((sha, keyed.id), (hash(&format!("with {n}")), row.id));
            let a = w.audit.as_ref().expect("audit entry");
            assert_eq!(
                (a.action.as_str(), a.object_id.as_deref()),
                ("ecg-upload", Some("1.10.1"))
            );
        }
        let v = c.verify_audit_chain().await.unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 7);
        assert_eq!(
            c.get_study("1.10.1").await.unwrap().unwrap().num_instances,
            13
        );

        // an identical re-send: nothing written, neither record nor entry
        let again = c.insert_instance_with(&news[0], &all[0]).await.unwrap();
        assert!(
            matches!(again.outcome, InsertOutcome::Duplicate { .. }),
            "{again:?}"
        );
        assert!(again.ecg.is_none() && again.audit.is_none(), "{again:?}");
        assert_eq!(c.verify_audit_chain().await.unwrap().entries, 7);

        // a new version of 0 with other content: its own record
        let v1 = instance("1.10.1", "1.10.1.1", &sop(0), 0, 1);
        let w = c
            .insert_instance_with(&v1, &extras(0, "with 0, v1", "ecg-upload"))
            .await
            .unwrap();
        let InsertOutcome::NewVersion { instance_id, .. } = w.outcome else {
            panic!("{:?}", w.outcome);
        };
        let Some(EcgInsert::Inserted(row)) = &w.ecg else {
            panic!("{:?}", w.ecg);
        };
        assert_eq!(row.instance_id, instance_id);
        assert_eq!(
            c.find_ecg_by_sop_instance(&sop(0)).await.unwrap().as_ref(),
            Some(row)
        );
        assert_eq!(c.verify_audit_chain().await.unwrap().entries, 8);
        assert_eq!(
            c.get_study("1.10.1").await.unwrap().unwrap().num_instances,
            13
        );

        // another version of 1 carrying content the institution already has recorded (the
        // same upload converted again by another replica, at another time): a duplicate of
        // the recorded instance; no version, record, key or entry is written
        let first = c.get_instance(&sop(1)).await.unwrap().expect("1 stored");
        let v1 = instance("1.10.1", "1.10.1.1", &sop(1), 1, 1);
        let mut same_content = extras(1, "with 1", "ecg-upload");
        if let Some((_, key)) = &mut same_content.ecg {
            *key = Some("with-key-1-again".into());
        }
        let w = c.insert_instance_with(&v1, &same_content).await.unwrap();
        let InsertOutcome::Duplicate {
            instance_id,
            blob_key,
        } = &w.outcome
        else {
            panic!("{:?}", w.outcome);
        };
        assert_eq!(
            (*instance_id, blob_key.as_str()),
            (first.id, news[1].instance.blob_key.as_str())
        );
        let Some(EcgInsert::Existing(row)) = &w.ecg else {
            panic!("{:?}", w.ecg);
        };
        assert_eq!(row.instance_id, first.id);
        assert!(w.audit.is_none(), "{w:?}");
        assert_eq!(c.instance_versions(&sop(1)).await.unwrap().len(), 1);
        assert!(
            c.find_ecg_by_idempotency_key(clinic.id, "with-key-1-again")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(c.verify_audit_chain().await.unwrap().entries, 8);
        assert_eq!(
            c.get_study("1.10.1").await.unwrap().unwrap().num_instances,
            13
        );
    }
}
