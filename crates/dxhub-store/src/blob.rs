//! The blob store: original objects exactly as received, and derived data that can be
//! rebuilt from them, over `object_store` (a local directory or an S3-compatible store).
//!
//! Writes are durable when they return: on the local backend files are fsynced and
//! renamed into place and their directories fsynced; on S3 the upload has completed.

use std::fmt;
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, WriteMultipart};
use serde::{Deserialize, Serialize};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob {key:?} not found")]
    NotFound { key: String },
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("object store error")]
    Store(#[source] object_store::Error),
    #[error("invalid blob store configuration: {0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    fn store(key: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound {
                key: key.to_owned(),
            },
            other => Self::Store(other),
        }
    }

    /// An I/O error from `BufWriter` may carry an `object_store::Error`: unwrap it.
    fn from_writer(key: &str, path: &Path, e: io::Error) -> Self {
        if !e
            .get_ref()
            .is_some_and(|inner| inner.is::<object_store::Error>())
        {
            return Self::io(path, e);
        }
        match e
            .into_inner()
            .map(|inner| inner.downcast::<object_store::Error>())
        {
            Some(Ok(store_err)) => Self::store(key, *store_err),
            _ => Self::io(path, io::Error::other("object store write failed")),
        }
    }

    /// Whether this error means the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Where an S3-compatible object store lives. Path-style requests are used so that
/// MinIO, moto, s3s and the like work without DNS tricks.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://127.0.0.1:9000`; `None` means AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Allow plain `http://` endpoints.
    pub allow_http: bool,
    /// Prepended (as whole path segments) to every key.
    pub prefix: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            bucket: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            prefix: None,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Size and modification time of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub last_modified_us: i64,
}

impl From<ObjectMeta> for BlobMeta {
    fn from(meta: ObjectMeta) -> Self {
        Self {
            key: meta.location.to_string(),
            size: meta.size,
            last_modified_us: meta.last_modified.timestamp_micros(),
        }
    }
}

/// Handle on the blob store; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    local: Option<Arc<LocalFileSystem>>,
    local_root: Option<PathBuf>,
}

impl fmt::Debug for Blobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blobs")
            .field("store", &self.store.to_string())
            .field("local_root", &self.local_root)
            .finish()
    }
}

/// Part size and parallelism of S3 multipart uploads: bounds memory per upload to about
/// `UPLOAD_CHUNK * (UPLOAD_CONCURRENCY + 1)`.
const UPLOAD_CHUNK: usize = 10 * 1024 * 1024;
const UPLOAD_CONCURRENCY: usize = 2;
const READ_BUFFER: usize = 1024 * 1024;

impl Blobs {
    /// A blob store under a local directory (created if missing).
    pub fn local(root: &Path) -> Result<Blobs> {
        let existed = root.is_dir();
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let root = std::fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        // the root's own entry: synced when created here; directories below it are made
        // durable level by level up to it (not above: those are the operator's)
        if !existed && let Some(parent) = root.parent() {
            sync_dir(parent)?;
        }
        durable_dirs().insert(&root);
        let fs = Arc::new(LocalFileSystem::new_with_prefix(&root).map_err(Error::Store)?);
        Ok(Blobs {
            store: fs.clone(),
            local: Some(fs),
            local_root: Some(root),
        })
    }

    /// A blob store in an S3-compatible bucket.
    pub fn s3(cfg: &S3Config) -> Result<Blobs> {
        if cfg.bucket.trim().is_empty() {
            return Err(Error::Config("S3 bucket name is empty".to_owned()));
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &cfg.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "S3 access_key_id and secret_access_key must be set together".to_owned(),
                ));
            }
        }
        let s3 = builder.build().map_err(Error::Store)?;
        let prefix = cfg
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty());
        let store: Arc<dyn ObjectStore> = match prefix {
            Some(p) => {
                let p = ObjectPath::parse(p).map_err(|e| invalid_key(p, e))?;
                Arc::new(PrefixStore::new(s3, p))
            }
            None => Arc::new(s3),
        };
        Ok(Blobs {
            store,
            local: None,
            local_root: None,
        })
    }

    /// The key of an original instance:
    /// `studies/{study}/{sop}.{first 16 hex digits of sha256}.dcm`. Versions of one SOP
    /// instance differ in the hash part. One directory per study, none per series or
    /// instance: on a local store a new instance of a known study creates no directory (no
    /// mkdir, no directory fsync), and a new study one. The index records every instance's
    /// own key, so the earlier layouts stay served: `…/{series}/{sop}.{hash}.dcm` (from
    /// 2026-11-22 18:45 UTC to 2026-11-23 22:10 UTC) and `…/{series}/{sop}/{hash}.dcm` (before).
    pub fn instance_key(study_uid: &str, sop_uid: &str, sha256_hex: &str) -> String {
        let short = sha256_hex.get(..16).unwrap_or(sha256_hex);
        format!("studies/{study_uid}/{sop_uid}.{short}.dcm")
    }

    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// The root directory of a local store.
    pub fn local_root(&self) -> Option<&Path> {
        self.local_root.as_deref()
    }

    /// The file that holds `key` on a local store (whether or not it exists).
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        let fs = self.local.as_ref()?;
        let loc = ObjectPath::parse(key).ok()?;
        fs.path_to_filesystem(&loc).ok()
    }

    /// Move a finished file (e.g. a spool file) into the store under `key`. The source
    /// file is gone afterwards and the object is durable when this returns. Putting the
    /// same key again replaces the object.
    ///
    /// On a local store the source should live on the same filesystem as the store (it is
    /// renamed; across filesystems it is copied).
    pub async fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        let loc = parse_key(key)?;
        if let Some(fs) = &self.local {
            let dest = fs_path(fs, key, &loc)?;
            let src = path.to_owned();
            return blocking(move || durable_move(&src, &dest)).await;
        }

        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| Error::io(path, e))?
            .len();
        if size <= UPLOAD_CHUNK as u64 {
            // one request: no multipart upload to leave behind
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| Error::io(path, e))?;
            self.store
                .put(&loc, Bytes::from(bytes).into())
                .await
                .map_err(|e| Error::store(key, e))?;
        } else {
            self.put_multipart_file(key, loc, path).await?;
        }
        tokio::fs::remove_file(path)
            .await
            .map_err(|e| Error::io(path, e))
    }

    /// A multipart upload of the file at `path`, on a task of its own: a caller dropped
    /// half-way (a STOW-RS client gone, the shutdown's deadline) makes the task abort the
    /// upload, which would otherwise stay on the server, unlisted, holding its parts.
    async fn put_multipart_file(&self, key: &str, loc: ObjectPath, path: &Path) -> Result<()> {
        use tokio::io::AsyncReadExt as _;
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io(path, e))?;
        let upload = self
            .store
            .put_multipart(&loc)
            .await
            .map_err(|e| Error::store(key, e))?;
        let (_cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let owned_key = key.to_owned();
        let sent = tokio::spawn(async move {
            let mut w = WriteMultipart::new_with_chunk_size(upload, UPLOAD_CHUNK);
            let sent: std::result::Result<(), io::Error> = tokio::select! {
                r = async {
                    let mut buf = vec![0u8; READ_BUFFER];
                    loop {
                        let n = file.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        w.wait_for_capacity(UPLOAD_CONCURRENCY).await.map_err(io::Error::other)?;
                        w.write(&buf[..n]);
                    }
                    // every part uploaded: only the completion is left
                    w.wait_for_capacity(0).await.map_err(io::Error::other)
                } => r,
                _ = cancelled => Err(io::Error::new(io::ErrorKind::Interrupted, "upload cancelled")),
            };
            match sent {
                Ok(()) => w.finish().await.map(|_| ()).map_err(io::Error::other),
                Err(e) => {
                    if let Err(abort_err) = w.abort().await {
                        tracing::warn!(key = owned_key, error = %abort_err, "could not abort an unfinished upload");
                    }
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| io::Error::other(format!("upload task: {e}")))
        .and_then(|r| r);
        sent.map_err(|e| Error::from_writer(key, path, e))
    }

    /// Store small data (e.g. derived data) under `key`, durably.
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let loc = parse_key(key)?;
        if let Some(fs) = &self.local {
            let dest = fs_path(fs, key, &loc)?;
            return blocking(move || durable_write(&dest, &bytes)).await;
        }
        self.store
            .put(&loc, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| Error::store(key, e))
    }

    /// The size of the object and a stream of its bytes.
    pub async fn get_stream(&self, key: &str) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let loc = parse_key(key)?;
        let got = self
            .store
            .get(&loc)
            .await
            .map_err(|e| Error::store(key, e))?;
        let size = got.meta.size;
        let owned_key = key.to_owned();
        let stream = got
            .into_stream()
            .map(move |r| r.map_err(|e| Error::store(&owned_key, e)))
            .boxed();
        Ok((size, stream))
    }

    /// The whole object in memory: for small objects only.
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        let loc = parse_key(key)?;
        let got = self
            .store
            .get(&loc)
            .await
            .map_err(|e| Error::store(key, e))?;
        got.bytes().await.map_err(|e| Error::store(key, e))
    }

    /// Bytes `range` of the object.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let loc = parse_key(key)?;
        self.store
            .get_range(&loc, range)
            .await
            .map_err(|e| Error::store(key, e))
    }

    /// Size and modification time, or `None` if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<BlobMeta>> {
        let loc = parse_key(key)?;
        match self.store.head(&loc).await {
            Ok(meta) => Ok(Some(meta.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Store(e)),
        }
    }

    /// Delete an object; deleting a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let loc = parse_key(key)?;
        match self.store.delete(&loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::Store(e)),
        }
    }

    /// All objects whose key starts with the path segments of `prefix` (e.g. `studies/1.2.3`
    /// lists `studies/1.2.3/…`, not `studies/1.2.34/…`), in no particular order. Keys are
    /// relative to the store (without a configured S3 prefix).
    pub fn list(&self, prefix: Option<&str>) -> BoxStream<'static, Result<BlobMeta>> {
        let prefix = match prefix.map(|p| p.trim_end_matches('/')) {
            None | Some("") => None,
            Some(p) => match parse_key(p) {
                Ok(p) => Some(p),
                Err(err) => return futures::stream::once(async move { Err(err) }).boxed(),
            },
        };
        self.store
            .list(prefix.as_ref())
            .map(|r| r.map(BlobMeta::from).map_err(Error::Store))
            .boxed()
    }
}

fn invalid_key(key: &str, reason: impl ToString) -> Error {
    Error::InvalidKey {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

/// A key is a relative `/`-separated path of non-empty segments other than `.` and `..`.
fn parse_key(key: &str) -> Result<ObjectPath> {
    if key.is_empty() || key.starts_with('/') || key.ends_with('/') {
        return Err(invalid_key(
            key,
            "empty, or with a leading or trailing slash",
        ));
    }
    ObjectPath::parse(key).map_err(|e| invalid_key(key, e))
}

fn fs_path(fs: &LocalFileSystem, key: &str, loc: &ObjectPath) -> Result<PathBuf> {
    fs.path_to_filesystem(loc).map_err(|e| match e {
        object_store::Error::InvalidPath { source } => invalid_key(key, source),
        other => Error::Store(other),
    })
}

async fn blocking<F>(f: F) -> Result<()>
where
    F: FnOnce() -> Result<()> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io(PathBuf::new(), io::Error::other(e)))?
}

// ---- local durability helpers (blocking) ----

/// A temporary name beside `dest`. `object_store`'s local listing hides names ending in
/// `#<digits>`, so half-written files never show up in `list`.
fn staging_path(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut s = dest.as_os_str().to_owned();
    s.push(format!("#{}{:09}", std::process::id(), n % 1_000_000_000));
    PathBuf::from(s)
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir).and_then(|d| d.sync_all())
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// fsync `dir` so that the entries changed in it before this call are durable, sharing
/// the fsync with concurrent callers: see [`DirSyncs`].
fn sync_dir(dir: &Path) -> Result<()> {
    dir_syncs()
        .sync(dir, fsync_dir)
        .map_err(|e| Error::io(dir, e))
}

fn dir_syncs() -> &'static DirSyncs {
    static SYNCS: std::sync::OnceLock<DirSyncs> = std::sync::OnceLock::new();
    SYNCS.get_or_init(DirSyncs::default)
}

/// Directory fsyncs, coalesced (group commit for directory entries).
///
/// Writers of one directory (the instances of a study arriving on several associations;
/// new studies in `studies/`) each rename an entry into it and then need an fsync of it
/// that *starts after* their rename. One fsync covers every rename made before it started,
/// so a caller that finds an fsync of the directory under way waits for it to end and then
/// for the next one, which one of the waiters starts for all of them. One fsync runs per
/// directory at a time; callers get its outcome. An error is reported to every caller the
/// failed fsync covered (and, conservatively, to those of an earlier fsync still waking).
#[derive(Default)]
struct DirSyncs {
    dirs: std::sync::Mutex<std::collections::HashMap<PathBuf, (Arc<DirSync>, usize)>>,
}

#[derive(Default)]
struct DirSync {
    state: std::sync::Mutex<DirSyncState>,
    done: std::sync::Condvar,
}

#[derive(Default)]
struct DirSyncState {
    /// fsyncs started / completed (one runs at a time, so they complete in order).
    started: u64,
    completed: u64,
    running: bool,
    /// The newest failed fsync: its number and error.
    failed: Option<(u64, io::ErrorKind, String)>,
}

impl DirSyncs {
    fn sync(&self, dir: &Path, fsync: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
        let entry = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
            let e = dirs.entry(dir.to_owned()).or_default();
            e.1 += 1;
            e.0.clone()
        };
        let r = entry.sync(dir, fsync);
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = dirs.get_mut(dir) {
            e.1 -= 1;
            if e.1 == 0 {
                dirs.remove(dir);
            }
        }
        r
    }
}

impl DirSync {
    fn sync(&self, dir: &Path, fsync: impl Fn(&Path) -> io::Result<()>) -> io::Result<()> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // the first fsync to start from now on covers this caller's changes
        let needed = st.started + 1;
        loop {
            if st.completed >= needed {
                return match &st.failed {
                    Some((n, kind, msg)) if *n >= needed => {
                        Err(io::Error::new(*kind, format!("fsync: {msg}")))
                    }
                    _ => Ok(()),
                };
            }
            if !st.running {
                st.running = true;
                st.started += 1;
                let n = st.started;
                drop(st);
                let r = fsync(dir);
                st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                st.running = false;
                st.completed = n;
                if let Err(e) = &r {
                    st.failed = Some((n, e.kind(), e.to_string()));
                }
                self.done.notify_all();
                return r;
            }
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Create `dir` and its missing ancestors, and make sure each one's entry in its parent
/// is durable before returning. A directory this process has not yet seen made durable is
/// synced into its parent even when it already exists: another writer may have created it
/// a moment ago and still be waiting for that parent's fsync (two associations starting
/// one study). Directories known durable are remembered, so a study's directory costs its
/// parent's (shared) fsync once.
fn create_dirs_durably(dir: &Path) -> Result<()> {
    create_dirs_durably_with(dir, durable_dirs(), sync_dir)
}

fn create_dirs_durably_with(
    dir: &Path,
    known: &DurableDirs,
    sync: impl Fn(&Path) -> Result<()>,
) -> Result<()> {
    if known.contains(dir) {
        return Ok(());
    }
    // the levels, from `dir` up, not yet known durable
    let mut levels = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.as_os_str().is_empty() || known.contains(d) {
            break;
        }
        levels.push(d);
        cur = d.parent();
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // topmost first: each directory's entry lives in its parent
    for d in levels.iter().rev() {
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync(parent)?;
        }
        known.insert(d);
    }
    Ok(())
}

/// Directories whose entries this process has made (or seen made) durable.
#[derive(Default)]
struct DurableDirs(std::sync::Mutex<std::collections::HashSet<PathBuf>>);

impl DurableDirs {
    /// Beyond this many, start over (a few directory fsyncs again, no unbounded growth).
    const MAX: usize = 100_000;

    fn contains(&self, d: &Path) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).contains(d)
    }

    fn insert(&self, d: &Path) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= Self::MAX {
            set.clear();
        }
        set.insert(d.to_owned());
    }
}

fn durable_dirs() -> &'static DurableDirs {
    static DIRS: std::sync::OnceLock<DurableDirs> = std::sync::OnceLock::new();
    DIRS.get_or_init(DurableDirs::default)
}

fn parent_of(dest: &Path) -> Result<&Path> {
    dest.parent().ok_or_else(|| {
        Error::io(
            dest,
            io::Error::new(io::ErrorKind::InvalidInput, "destination has no parent"),
        )
    })
}

/// fsync `src`, rename it to `dest` (copying across filesystems), fsync `dest`'s directory.
fn durable_move(src: &Path, dest: &Path) -> Result<()> {
    std::fs::File::open(src)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(src, e))?;
    let parent = parent_of(dest)?;
    create_dirs_durably(parent)?;
    match std::fs::rename(src, dest) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let tmp = staging_path(dest);
            let copied = std::fs::copy(src, &tmp)
                .and_then(|_| std::fs::OpenOptions::new().write(true).open(&tmp))
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&tmp, dest));
            if let Err(e) = copied {
                let _ = std::fs::remove_file(&tmp);
                return Err(Error::io(dest, e));
            }
            sync_dir(parent)?;
            std::fs::remove_file(src).map_err(|e| Error::io(src, e))
        }
        Err(e) => Err(Error::io(src, e)),
    }
}

/// Write `bytes` to a staging file beside `dest`, fsync it, rename it into place, fsync
/// the directory.
fn durable_write(dest: &Path, bytes: &[u8]) -> Result<()> {
    let parent = parent_of(dest)?;
    create_dirs_durably(parent)?;
    let tmp = staging_path(dest);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, dest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(dest, e));
    }
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each caller "renames" (bumps `written`) and then syncs; an fsync makes durable what
    /// was written when it started. Every caller must return with its change durable,
    /// with fewer fsyncs than callers, and the registry left empty.
    #[test]
    fn dir_syncs_coalesce_and_cover_every_caller() {
        use std::sync::atomic::AtomicUsize;
        let syncs = DirSyncs::default();
        let written = AtomicU64::new(0);
        let durable = AtomicU64::new(0);
        let fsyncs = AtomicUsize::new(0);
        let dir = Path::new("/coalesce/test");
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        syncs
                            .sync(dir, |d| {
                                assert_eq!(d, dir);
                                let at_start = written.load(Ordering::SeqCst);
                                fsyncs.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(2));
                                durable.fetch_max(at_start, Ordering::SeqCst);
                                Ok(())
                            })
                            .unwrap();
                        assert!(durable.load(Ordering::SeqCst) >= mine);
                    }
                });
            }
        });
        let n = fsyncs.load(Ordering::SeqCst);
        assert!(n < 320 && n > 0, "{n} fsyncs for 320 callers");
        assert!(syncs.dirs.lock().unwrap().is_empty());
    }

    /// A failed fsync is the failure of the callers it was to cover; the next succeeds.
    #[test]
    fn dir_sync_failure_reaches_its_callers() {
        let syncs = DirSyncs::default();
        let dir = Path::new("/coalesce/fail");
        let e = syncs
            .sync(dir, |_| Err(io::Error::other("disk gone")))
            .unwrap_err();
        assert!(e.to_string().contains("disk gone"), "{e}");
        syncs.sync(dir, |_| Ok(())).unwrap();
        // a waiter covered by a failing fsync sees the error
        let entry = DirSync::default();
        let started = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| {
                entry.sync(dir, |_| {
                    started.wait();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    Ok(())
                })
            });
            started.wait();
            // an fsync is under way: this caller needs the next one, which fails
            let r = entry.sync(dir, |_| Err(io::Error::other("second failed")));
            assert!(r.is_err(), "{r:?}");
            assert!(slow.join().unwrap().is_ok());
        });
    }

    /// A directory another writer created is still synced into its parent before use
    /// (its creator may not have finished that fsync); once known durable, not again.
    #[test]
    fn existing_directories_are_made_durable_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("blobs");
        let study = root.join("studies").join("1.2.3");
        std::fs::create_dir_all(&study).unwrap(); // by "another writer"
        let known = DurableDirs::default();
        known.insert(tmp.path());
        let synced = std::sync::Mutex::new(Vec::new());
        let sync = |d: &Path| {
            synced.lock().unwrap().push(d.to_owned());
            Ok(())
        };
        create_dirs_durably_with(&study, &known, sync).unwrap();
        assert_eq!(
            *synced.lock().unwrap(),
            [tmp.path().to_owned(), root.clone(), root.join("studies")],
            "each level's parent, topmost first"
        );
        synced.lock().unwrap().clear();
        create_dirs_durably_with(&study, &known, sync).unwrap();
        // a new study: only its own entry in studies/
        let other = root.join("studies").join("1.2.4");
        create_dirs_durably_with(&other, &known, sync).unwrap();
        assert!(other.is_dir());
        assert_eq!(*synced.lock().unwrap(), [root.join("studies")]);
    }

    #[test]
    fn instance_key_layout() {
        let key = Blobs::instance_key("1.2.3", "1.2.3.4.5", &"ab".repeat(32));
        assert_eq!(key, "studies/1.2.3/1.2.3.4.5.abababababababab.dcm");
        assert!(ObjectPath::parse(&key).is_ok());
    }

    #[test]
    fn secret_is_masked() {
        let cfg = S3Config {
            bucket: "b".into(),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("very-secret".into()),
            ..Default::default()
        };
        let shown = format!("{cfg:?}");
        assert!(shown.contains("***"), "{shown}");
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn staging_names_are_hidden_from_listing() {
        let tmp = staging_path(Path::new("/x/y/abc.dcm"));
        let name = tmp.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let (_, suffix) = name.split_once('#').unwrap_or_default();
        assert!(
            !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
    }
}
