//! Backends shared by the catalog conformance suites: a fresh SQLite database in a temp
//! dir, and a fresh PostgreSQL database on `DXHUB_TEST_PG_URL` (required when `CI=true`).
//! Each test gets the catalog and the database URL (to tamper with rows behind it).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dxhub_store::{Catalog, CatalogOptions, SqlCatalog};
use sqlx::{Connection, Executor, PgConnection};

// ---------------------------------------------------------------- backends

pub async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<SqlCatalog>, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/sub/dir/index.db", dir.path().display());
    let catalog = SqlCatalog::connect(&url, CatalogOptions::default())
        .await
        .expect("connect sqlite");
    catalog.migrate().await.expect("migrate sqlite");
    assert!(
        dir.path().join("sub/dir/index.db").exists(),
        "database file and its directory are created"
    );
    let catalog = Arc::new(catalog);
    let outcome = tokio::spawn(test(catalog.clone(), url)).await;
    catalog.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

pub fn pg_server_url() -> Option<String> {
    match std::env::var("DXHUB_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but DXHUB_TEST_PG_URL is not set: the PostgreSQL identity \
                     conformance suite must run in CI"
                );
            }
            eprintln!("DXHUB_TEST_PG_URL not set: skipping the PostgreSQL identity suite");
            None
        }
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..host_end])
}

pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<SqlCatalog>, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server) = pg_server_url() else {
        return;
    };
    let db = unique_name("dxhub_test");
    let mut admin = PgConnection::connect(&server)
        .await
        .expect("connect to DXHUB_TEST_PG_URL");
    admin
        // a language collation, as a production database has (the test cluster itself is
        // initialised without a locale): text comparisons must not rely on byte order
        .execute(
            format!(
                "CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu \
                 ICU_LOCALE 'en-US' LOCALE 'C'"
            )
            .as_str(),
        )
        .await
        .expect("create test database");

    let outcome = {
        let url = with_database(&server, &db);
        let catalog = SqlCatalog::connect(&url, CatalogOptions::default())
            .await
            .expect("connect postgres");
        catalog.migrate().await.expect("migrate postgres");
        let catalog = Arc::new(catalog);
        let outcome = tokio::spawn(test(catalog.clone(), url)).await;
        catalog.close().await;
        outcome
    };
    admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await
        .expect("drop test database");
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
