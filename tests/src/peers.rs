//! Third-party peers. `scripts/test.sh` installs and starts them and exports where they
//! are; under `CI=true` a missing peer fails the test instead of skipping it.

use std::path::PathBuf;
use std::process::Command;

pub fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (test should return early) when a peer is missing outside CI; panics in CI.
pub fn require(what: &str, present: bool) -> bool {
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

pub fn tool(name: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!p.is_empty()).then(|| PathBuf::from(p))
}

/// DCMTK tool by name (storescu, dcmsend, echoscu, storescp): the test script puts DCMTK
/// first on PATH; fall back to /usr/bin.
pub fn dcmtk(name: &str) -> Option<PathBuf> {
    let usr = PathBuf::from("/usr/bin").join(name);
    if usr.exists() {
        return Some(usr);
    }
    tool(name)
}

pub fn python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

pub fn py_dir() -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py"))
}

pub fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("manifest.json").exists())
}

pub fn pg_url() -> Option<String> {
    std::env::var("DXHUB_TEST_PG_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

pub fn s3() -> Option<S3Env> {
    let endpoint = std::env::var("DXHUB_TEST_S3_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())?;
    Some(S3Env {
        endpoint,
        bucket: std::env::var("DXHUB_TEST_S3_BUCKET").unwrap_or_else(|_| "dxhub-test".into()),
        access_key: std::env::var("DXHUB_TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into()),
        secret_key: std::env::var("DXHUB_TEST_S3_SECRET_KEY")
            .unwrap_or_else(|_| "testsecret".into()),
    })
}

/// Create a fresh PostgreSQL database for one test and return its URL.
pub async fn fresh_pg_database(server_url: &str, tag: &str) -> String {
    use sqlx::Connection;
    let name = format!("dxhub_{}_{}_{}", tag, std::process::id(), rand_suffix());
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .expect("connect to PostgreSQL");
    // a language collation, as production databases have (the test cluster is
    // initialised without a locale)
    sqlx::query(&format!(
        "CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu \
         ICU_LOCALE 'en-US' LOCALE 'C'"
    ))
    .execute(&mut conn)
    .await
    .expect("create database");
    let base = server_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(server_url);
    format!("{base}/{name}")
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    n ^ (std::process::id() as u64).rotate_left(17)
}

/// A peer process (a `storescp`, say) killed and reaped when dropped, so that a failing
/// test does not leave it running (holding the test's output pipe open).
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
