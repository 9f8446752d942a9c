#![allow(clippy::unwrap_used)]
//! One blob-store conformance suite, run on every backend: a local directory (always)
//! and S3 when `DXHUB_TEST_S3_ENDPOINT` is set (bucket `DXHUB_TEST_S3_BUCKET`, default
//! `dxhub-test`, which must exist; keys `DXHUB_TEST_S3_ACCESS_KEY` /
//! `DXHUB_TEST_S3_SECRET_KEY`, default `test` / `testsecret`). Each S3 test works under a
//! fresh key prefix and removes what it wrote. With `CI=true` a missing
//! `DXHUB_TEST_S3_ENDPOINT` fails the S3 tests instead of skipping them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use dxhub_store::blob::Error;
use dxhub_store::{Blobs, S3Config};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- backends

/// What a suite function gets: the store, and a spool directory for source files (on the
/// same filesystem as a local store, as the ingest pipeline arranges it).
pub struct Env {
    pub blobs: Blobs,
    pub spool: PathBuf,
}

async fn run_local<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("blobs/root");
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).expect("spool dir");
    let blobs = Blobs::local(&root).expect("local store");
    assert!(root.is_dir(), "the root is created");
    test(Env { blobs, spool }).await;
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn s3_config() -> Option<S3Config> {
    let Some(endpoint) = std::env::var("DXHUB_TEST_S3_ENDPOINT")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true but DXHUB_TEST_S3_ENDPOINT is not set: the S3 blob conformance \
                 suite must run in CI"
            );
        }
        eprintln!("DXHUB_TEST_S3_ENDPOINT not set: skipping the S3 blob suite");
        return None;
    };
    Some(S3Config {
        allow_http: endpoint.starts_with("http://"),
        endpoint: Some(endpoint),
        bucket: env_or("DXHUB_TEST_S3_BUCKET", "dxhub-test"),
        region: env_or("DXHUB_TEST_S3_REGION", "us-east-1"),
        access_key_id: Some(env_or("DXHUB_TEST_S3_ACCESS_KEY", "test")),
        secret_access_key: Some(env_or("DXHUB_TEST_S3_SECRET_KEY", "testsecret")),
        prefix: Some(format!("dxhub-tests/{}", unique("run"))),
    })
}

async fn run_s3<F, Fut>(test: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(cfg) = s3_config() else {
        return;
    };
    let blobs = Blobs::s3(&cfg).expect("s3 store");
    let dir = tempfile::tempdir().expect("tempdir");
    let outcome = tokio::spawn(test(Env {
        blobs: blobs.clone(),
        spool: dir.path().to_owned(),
    }))
    .await;
    // remove what the test left under its prefix
    let left: Vec<_> = blobs
        .list(None)
        .try_collect()
        .await
        .expect("list for cleanup");
    for meta in left {
        blobs.delete(&meta.key).await.expect("cleanup delete");
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_local(|env| async move { super::suite::$name(&env).await }).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_s3(|env| async move { super::suite::$name(&env).await }).await;
                }
            )*
        }
    };
}

conformance!(
    put_file_moves_and_keeps_bytes,
    large_file_round_trips,
    get_range_is_exact,
    list_by_prefix,
    delete_is_idempotent,
    re_put_is_idempotent,
    put_bytes_overwrites,
    missing_key_is_not_found,
    missing_source_is_an_error,
    invalid_keys_are_rejected,
);

// ---------------------------------------------------------------- helpers

/// Deterministic pseudo-random bytes (xorshift), so content errors cannot hide in zeros.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn spool_file(env: &Env, name: &str, content: &[u8]) -> PathBuf {
    let path = env.spool.join(name);
    std::fs::write(&path, content).expect("write spool file");
    path
}

async fn read_all(blobs: &Blobs, key: &str) -> (u64, Vec<u8>) {
    let (size, stream) = blobs.get_stream(key).await.expect("get_stream");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("stream");
    (size, chunks.concat())
}

async fn keys(blobs: &Blobs, prefix: Option<&str>) -> Vec<String> {
    let mut keys: Vec<String> = blobs
        .list(prefix)
        .map_ok(|m| m.key)
        .try_collect()
        .await
        .expect("list");
    keys.sort();
    keys
}

const KEY: &str = "studies/1.2.3/1.2.3.4/1.2.3.4.5/0123456789abcdef.dcm";

// ---------------------------------------------------------------- the suite

mod suite {
    use super::*;

    pub async fn put_file_moves_and_keeps_bytes(env: &Env) {
        let b = &env.blobs;
        let content = pattern(100 * 1024 + 3, 1);
        let src = spool_file(env, "a.part", &content);
        let key = Blobs::instance_key("1.2.3", "1.2.3.4.5", &hex::encode(Sha256::digest(&content)));
        b.put_file(&key, &src).await.expect("put_file");
        assert!(!src.exists(), "the spool file is gone after put_file");

        let meta = b.head(&key).await.expect("head").expect("present");
        assert_eq!(meta.key, key);
        assert_eq!(meta.size, content.len() as u64);
        assert!(
            meta.last_modified_us > 1_600_000_000_000_000,
            "epoch microseconds"
        );
        let (size, got) = read_all(b, &key).await;
        assert_eq!(size, content.len() as u64);
        assert!(got == content, "streamed bytes are exactly the file");
        assert!(b.get_bytes(&key).await.expect("get_bytes") == content);

        if b.is_local() {
            let path = b.local_path(&key).expect("local path");
            assert!(path.starts_with(b.local_root().expect("root")));
            assert_eq!(std::fs::read(&path).expect("read blob file"), content);
            let dir = path.parent().expect("parent");
            let names: Vec<_> = std::fs::read_dir(dir)
                .expect("read_dir")
                .map(|e| e.expect("entry").file_name())
                .collect();
            assert_eq!(names.len(), 1, "no staging leftovers: {names:?}");
        } else {
            assert!(b.local_path(&key).is_none());
            assert!(b.local_root().is_none());
        }
    }

    pub async fn large_file_round_trips(env: &Env) {
        let b = &env.blobs;
        // 20 MiB + a bit: several multipart parts on S3
        let content = pattern(20 * 1024 * 1024 + 12345, 2);
        let src = spool_file(env, "big.part", &content);
        b.put_file(KEY, &src).await.expect("put_file 20 MiB");
        assert!(!src.exists());
        let (size, stream) = b.get_stream(KEY).await.expect("get_stream");
        assert_eq!(size, content.len() as u64);
        let mut hasher = Sha256::new();
        let mut total = 0usize;
        let mut stream = stream;
        while let Some(chunk) = stream.try_next().await.expect("chunk") {
            total += chunk.len();
            hasher.update(&chunk);
        }
        assert_eq!(total, content.len());
        assert_eq!(
            hasher.finalize().as_slice(),
            Sha256::digest(&content).as_slice()
        );
        // a range across the 10 MiB part boundary
        let boundary = 10 * 1024 * 1024u64;
        let got = b
            .get_range(KEY, boundary - 7..boundary + 9)
            .await
            .expect("range");
        assert_eq!(
            &got[..],
            &content[(boundary - 7) as usize..(boundary + 9) as usize]
        );
    }

    pub async fn get_range_is_exact(env: &Env) {
        let b = &env.blobs;
        let content = pattern(4096, 3);
        b.put_bytes("derived/x.bin", Bytes::from(content.clone()))
            .await
            .expect("put");
        let got = b.get_range("derived/x.bin", 10..20).await.expect("range");
        assert_eq!(&got[..], &content[10..20]);
        let got = b.get_range("derived/x.bin", 0..4096).await.expect("whole");
        assert_eq!(&got[..], &content[..]);
        let got = b
            .get_range("derived/x.bin", 4000..4096)
            .await
            .expect("tail");
        assert_eq!(&got[..], &content[4000..]);
    }

    pub async fn list_by_prefix(env: &Env) {
        let b = &env.blobs;
        for (key, n) in [
            ("studies/1.2.3/1.1/a.dcm", 10),
            ("studies/1.2.3/1.2/b.dcm", 20),
            ("studies/1.2.34/1.1/c.dcm", 30),
            ("derived/1.2.3/thumb.png", 40),
        ] {
            let src = spool_file(env, &format!("{n}.part"), &pattern(n, n as u64));
            b.put_file(key, &src).await.expect("put");
        }
        assert_eq!(
            keys(b, Some("studies/1.2.3")).await,
            ["studies/1.2.3/1.1/a.dcm", "studies/1.2.3/1.2/b.dcm"],
            "whole path segments: 1.2.3 does not match 1.2.34"
        );
        assert_eq!(keys(b, Some("studies/1.2.3/")).await.len(), 2);
        assert_eq!(keys(b, Some("studies")).await.len(), 3);
        assert_eq!(keys(b, None).await.len(), 4);
        assert_eq!(keys(b, Some("")).await.len(), 4);
        assert!(keys(b, Some("nothing/here")).await.is_empty());
        let metas: Vec<_> = b.list(Some("derived")).try_collect().await.expect("list");
        assert_eq!(metas.len(), 1);
        assert_eq!(metas[0].key, "derived/1.2.3/thumb.png");
        assert_eq!(metas[0].size, 40);
    }

    pub async fn delete_is_idempotent(env: &Env) {
        let b = &env.blobs;
        b.put_bytes(KEY, Bytes::from_static(b"abc"))
            .await
            .expect("put");
        b.put_bytes("studies/other.dcm", Bytes::from_static(b"keep"))
            .await
            .expect("put");
        b.delete(KEY).await.expect("delete");
        assert!(b.head(KEY).await.expect("head").is_none());
        assert!(matches!(
            b.get_bytes(KEY).await,
            Err(Error::NotFound { .. })
        ));
        b.delete(KEY).await.expect("deleting a missing key is fine");
        assert_eq!(
            keys(b, None).await,
            ["studies/other.dcm"],
            "only the key is deleted"
        );
    }

    pub async fn re_put_is_idempotent(env: &Env) {
        let b = &env.blobs;
        let content = pattern(5000, 4);
        let first = spool_file(env, "1.part", &content);
        b.put_file(KEY, &first).await.expect("first put");
        // the same object received again (e.g. a retried ingest)
        let second = spool_file(env, "2.part", &content);
        b.put_file(KEY, &second).await.expect("second put");
        assert!(!second.exists());
        assert_eq!(keys(b, None).await, [KEY]);
        assert!(b.get_bytes(KEY).await.expect("get") == content);
        assert_eq!(b.head(KEY).await.expect("head").map(|m| m.size), Some(5000));
    }

    pub async fn put_bytes_overwrites(env: &Env) {
        let b = &env.blobs;
        let key = "derived/1.2.3/metadata.json";
        b.put_bytes(key, Bytes::from("{\"v\":1,\"名\":\"张三\"}"))
            .await
            .expect("put");
        assert_eq!(
            b.get_bytes(key).await.expect("get"),
            Bytes::from("{\"v\":1,\"名\":\"张三\"}")
        );
        b.put_bytes(key, Bytes::from_static(b"{\"v\":2}"))
            .await
            .expect("overwrite");
        assert_eq!(
            b.get_bytes(key).await.expect("get"),
            Bytes::from_static(b"{\"v\":2}")
        );
        b.put_bytes("derived/empty", Bytes::new())
            .await
            .expect("empty object");
        assert_eq!(
            b.head("derived/empty").await.expect("head").map(|m| m.size),
            Some(0)
        );
        assert_eq!(
            keys(b, Some("derived")).await,
            ["derived/1.2.3/metadata.json", "derived/empty"]
        );
    }

    pub async fn missing_key_is_not_found(env: &Env) {
        let b = &env.blobs;
        let missing = "studies/9/9/9/0000000000000000.dcm";
        assert!(b.head(missing).await.expect("head").is_none());
        let err = b.get_bytes(missing).await.expect_err("get_bytes");
        assert!(
            matches!(&err, Error::NotFound { key } if key == missing),
            "{err:?}"
        );
        assert!(err.is_not_found());
        let err = b.get_stream(missing).await.err().expect("get_stream fails");
        assert!(err.is_not_found(), "{err:?}");
        let err = b.get_range(missing, 0..10).await.expect_err("get_range");
        assert!(err.is_not_found(), "{err:?}");
        b.delete(missing).await.expect("delete missing");
    }

    pub async fn missing_source_is_an_error(env: &Env) {
        let b = &env.blobs;
        let err = b
            .put_file(KEY, &env.spool.join("never-written"))
            .await
            .expect_err("missing source");
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(b.head(KEY).await.expect("head").is_none(), "nothing stored");
    }

    pub async fn invalid_keys_are_rejected(env: &Env) {
        let b = &env.blobs;
        for key in ["studies//x.dcm", "studies/../x.dcm", "/abs.dcm", ""] {
            let src = spool_file(env, "bad.part", b"x");
            let err = b.put_file(key, &src).await.expect_err(key);
            assert!(matches!(err, Error::InvalidKey { .. }), "{key:?}: {err:?}");
            let err = b.get_bytes(key).await.expect_err(key);
            assert!(matches!(err, Error::InvalidKey { .. }), "{key:?}: {err:?}");
        }
        assert!(keys(b, None).await.is_empty());
        let err = b
            .list(Some("a//b"))
            .try_collect::<Vec<_>>()
            .await
            .expect_err("bad prefix");
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    }
}

// ---------------------------------------------------------------- local only

/// A spool on another filesystem (here tmpfs) cannot be renamed: the file is copied.
#[tokio::test]
async fn local_put_file_across_filesystems() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let dir = tempfile::tempdir().expect("tempdir");
    let other = match tempfile::tempdir_in(shm) {
        Ok(d) => d,
        Err(_) => {
            eprintln!("no /dev/shm: cross-filesystem put_file not tested");
            return;
        }
    };
    let same_fs = std::fs::metadata(dir.path()).expect("meta").dev()
        == std::fs::metadata(other.path()).expect("meta").dev();
    if same_fs {
        eprintln!("/dev/shm is on the same filesystem: cross-filesystem put_file not tested");
        return;
    }
    let blobs = Blobs::local(&dir.path().join("blobs")).expect("store");
    let content = pattern(300_000, 9);
    let src = other.path().join("x.part");
    std::fs::write(&src, &content).expect("write");
    blobs
        .put_file(KEY, &src)
        .await
        .expect("put across filesystems");
    assert!(!src.exists(), "source removed after the copy");
    assert!(blobs.get_bytes(KEY).await.expect("get") == content);
    assert_eq!(
        keys(&blobs, None).await,
        [KEY],
        "no staging leftovers listed"
    );
    let path = blobs.local_path(KEY).expect("path");
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

/// The multipart uploads the S3 server holds under `prefix` (ListMultipartUploads, a raw
/// HTTP request: the test server does not check signatures).
async fn unfinished_uploads(cfg: &S3Config, prefix: &str) -> usize {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let endpoint = cfg.endpoint.as_deref().expect("endpoint");
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect S3");
    let req = format!(
        "GET /{}?uploads&prefix={prefix} HTTP/1.1\r\nHost: {host}\r\nAuthorization: \
         AWS4-HMAC-SHA256 Credential=test/20261124/us-east-1/s3/aws4_request, \
         SignedHeaders=host, Signature=0\r\nConnection: close\r\n\r\n",
        cfg.bucket
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(out.contains("ListMultipartUploadsResult"), "{out}");
    out.matches("<Upload>").count()
}

/// A `put_file` whose caller goes away half-way (a STOW-RS client gone) leaves no
/// multipart upload behind on the S3 server: the upload's own task aborts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_put_file_dropped_half_way_leaves_no_multipart_upload() {
    let Some(cfg) = s3_config() else {
        return;
    };
    if !cfg
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        eprintln!("not a local S3 test server: not tested");
        return;
    }
    let prefix = cfg.prefix.clone().expect("prefix");
    let blobs = Blobs::s3(&cfg).expect("s3 store");
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("big.part");
    std::fs::write(&src, pattern(80 << 20, 5)).expect("write");
    let put = blobs.put_file("studies/1.2.3/big.dcm", &src);
    let cut = tokio::time::timeout(std::time::Duration::from_millis(400), put).await;
    assert!(cut.is_err(), "the upload finished before it could be cut");
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = unfinished_uploads(&cfg, &prefix).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "unfinished multipart uploads under {prefix}");
}
