//! Spool files: where an instance is written while it arrives and hashed on the way,
//! before it goes to the object store. A spool file that is dropped before it is
//! consumed is removed, so an aborted transfer leaves nothing behind.

use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The duplicate key of a data set: `blake3:` and its BLAKE3 hash in hex. Two received
/// instances with the same SOP Instance UID and this key are the same version, whatever
/// their file meta. (BLAKE3, not a second SHA-256: the sha256 of the stored object is
/// computed anyway, and a second SHA-256 pass over every instance was a tenth of the
/// C-STORE CPU; BLAKE3 is collision-resistant too, several times faster.)
pub fn dataset_key(dataset: &[u8]) -> String {
    blake3_key(&blake3::hash(dataset))
}

fn blake3_key(hash: &blake3::Hash) -> String {
    format!("blake3:{}", hash.to_hex())
}

/// The duplicate key of instances indexed before BLAKE3 (`sha256:` and the data set's
/// SHA-256): computed only to recognise a re-send of such an instance.
pub fn legacy_dataset_key(dataset: &[u8]) -> String {
    sha256_key(Sha256::digest(dataset).as_slice())
}

fn sha256_key(digest: &[u8]) -> String {
    format!("sha256:{}", hex::encode(digest))
}

/// [`legacy_dataset_key`] of the data set of a Part 10 file (from `dataset_offset` to
/// the end). Blocking.
pub fn legacy_dataset_key_of_file(path: &Path, dataset_offset: u64) -> io::Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(dataset_offset))?;
    let mut hasher = Sha256::new();
    io::copy(&mut f, &mut hasher)?;
    Ok(sha256_key(hasher.finalize().as_slice()))
}

/// The spool directory (under the data dir, on the same filesystem as a local blob store).
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Start a new spool file.
    pub fn create(&self) -> io::Result<SpoolWriter> {
        let name = format!(
            "{}-{}-{}.part",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(SpoolWriter {
            file: Some(io::BufWriter::with_capacity(256 * 1024, file)),
            path,
            size: 0,
            dataset_offset: 0,
            hasher: Sha256::new(),
            dataset_hasher: blake3::Hasher::new(),
        })
    }

    /// Files left in the spool (by a crash: a running hub removes its own).
    pub fn stray_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove every stray spool file; returns how many. Only safe when no hub is receiving
    /// into this spool (start-up, `dxhub fsck --repair` with the hub stopped).
    pub fn remove_stray(&self) -> io::Result<usize> {
        let files = self.stray_files()?;
        for f in &files {
            fs::remove_file(f)?;
        }
        Ok(files.len())
    }

    /// Copy a Part 10 file into the spool, hashing it (used by `import` and STOW-RS parts
    /// written to temporary files).
    pub fn copy_from_file(&self, src: &Path) -> Result<SpoolFile, crate::IngestError> {
        let meta = dxhub_dicom::read_file_meta(io::BufReader::new(File::open(src)?))
            .map_err(|e| crate::IngestError::NotDicom(e.to_string()))?;
        let mut w = self.create()?;
        let mut f = File::open(src)?;
        let mut head = vec![0u8; meta.dataset_offset as usize];
        f.read_exact(&mut head)?;
        w.write_header(&head)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            w.write_dataset(&buf[..n])?;
        }
        Ok(w.finish()?)
    }
}

/// A spool file being written.
#[derive(Debug)]
pub struct SpoolWriter {
    file: Option<io::BufWriter<File>>,
    path: PathBuf,
    size: u64,
    dataset_offset: u64,
    hasher: Sha256,
    dataset_hasher: blake3::Hasher,
}

impl SpoolWriter {
    /// Write bytes of the Part 10 header (preamble, magic, meta group).
    pub fn write_header(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes)?;
        self.dataset_offset = self.size;
        Ok(())
    }

    /// Write bytes of the data set.
    pub fn write_dataset(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write(bytes)?;
        self.dataset_hasher.update(bytes);
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("spool file already finished"))?;
        f.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flush: the file is complete (the blob store makes it durable).
    pub fn finish(mut self) -> io::Result<SpoolFile> {
        let f = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("spool file already finished"))?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        // No fsync here: the blob store makes the object durable (local: fsync, rename,
        // directory fsync; S3: a completed upload), and nothing is acknowledged before.
        drop(f);
        let path = std::mem::take(&mut self.path);
        Ok(SpoolFile {
            path,
            size: self.size,
            dataset_offset: self.dataset_offset,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
            dataset_hash: blake3_key(&self.dataset_hasher.finalize()),
        })
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            drop(self.file.take());
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A complete spool file with its hashes. Removed on drop unless handed to the
/// blob store with [`SpoolFile::into_path`].
#[derive(Debug)]
pub struct SpoolFile {
    path: PathBuf,
    pub size: u64,
    pub dataset_offset: u64,
    /// sha256 of the whole Part 10 object as stored.
    pub sha256: String,
    /// [`dataset_key`] of the data set bytes (what a sender sent over DIMSE).
    pub dataset_hash: String,
}

impl SpoolFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Give up ownership of the file (it has been moved into the blob store).
    pub fn into_path(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A Part 10 object held in memory, with the same hashes as a [`SpoolFile`]: an object
/// the hub made itself and already holds (the DICOM ECG written from an upload) goes to
/// the blob store without a spool file written and read back.
#[derive(Debug, Clone)]
pub struct MemoryObject {
    pub bytes: bytes::Bytes,
    pub size: u64,
    pub dataset_offset: u64,
    /// sha256 of the whole Part 10 object.
    pub sha256: String,
    /// [`dataset_key`] of the data set bytes.
    pub dataset_hash: String,
}

impl MemoryObject {
    /// `dataset_offset`: where the data set starts (after preamble, magic and meta group).
    pub fn new(bytes: bytes::Bytes, dataset_offset: u64) -> io::Result<Self> {
        let start = usize::try_from(dataset_offset)
            .ok()
            .filter(|&o| o <= bytes.len())
            .ok_or_else(|| io::Error::other("data set offset beyond the object"))?;
        Ok(Self {
            size: bytes.len() as u64,
            dataset_offset,
            sha256: hex::encode(Sha256::digest(&bytes)),
            dataset_hash: dataset_key(&bytes[start..]),
            bytes,
        })
    }

    /// The data set bytes (the offset was checked by [`MemoryObject::new`]).
    pub fn dataset(&self) -> &[u8] {
        &self.bytes[self.dataset_offset as usize..]
    }
}

/// A finished object on its way into the blob store.
#[derive(Debug)]
pub enum Staged {
    Spool(SpoolFile),
    Memory(MemoryObject),
}

impl From<SpoolFile> for Staged {
    fn from(f: SpoolFile) -> Self {
        Staged::Spool(f)
    }
}

impl From<MemoryObject> for Staged {
    fn from(m: MemoryObject) -> Self {
        Staged::Memory(m)
    }
}

impl Staged {
    /// A job computing [`legacy_dataset_key`] of the data set, for the blocking pool (it
    /// reads a spool file).
    pub fn legacy_dataset_key_job(&self) -> impl FnOnce() -> io::Result<String> + Send + 'static {
        enum Source {
            File(PathBuf, u64),
            Memory(MemoryObject),
        }
        let source = match self {
            Staged::Spool(f) => Source::File(f.path().to_owned(), f.dataset_offset),
            Staged::Memory(m) => Source::Memory(m.clone()),
        };
        move || match source {
            Source::File(path, offset) => legacy_dataset_key_of_file(&path, offset),
            Source::Memory(m) => Ok(legacy_dataset_key(m.dataset())),
        }
    }

    pub fn size(&self) -> u64 {
        match self {
            Staged::Spool(f) => f.size,
            Staged::Memory(m) => m.size,
        }
    }
    pub fn dataset_offset(&self) -> u64 {
        match self {
            Staged::Spool(f) => f.dataset_offset,
            Staged::Memory(m) => m.dataset_offset,
        }
    }
    pub fn sha256(&self) -> &str {
        match self {
            Staged::Spool(f) => &f.sha256,
            Staged::Memory(m) => &m.sha256,
        }
    }
    pub fn dataset_hash(&self) -> &str {
        match self {
            Staged::Spool(f) => &f.dataset_hash,
            Staged::Memory(m) => &m.dataset_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        let mut w = spool.create().unwrap();
        w.write_header(b"HEAD").unwrap();
        w.write_dataset(b"da").unwrap();
        w.write_dataset(b"ta").unwrap();
        let f = w.finish().unwrap();
        assert_eq!(f.size, 8);
        assert_eq!(f.dataset_offset, 4);
        assert_eq!(f.sha256, hex::encode(Sha256::digest(b"HEADdata")));
        assert_eq!(
            f.dataset_hash,
            format!("blake3:{}", blake3::hash(b"data").to_hex())
        );
        assert_eq!(std::fs::read(f.path()).unwrap(), b"HEADdata");
        assert_eq!(spool.stray_files().unwrap().len(), 1);
        drop(f);
        assert!(spool.stray_files().unwrap().is_empty());

        let mut w = spool.create().unwrap();
        w.write_dataset(b"partial").unwrap();
        drop(w); // aborted transfer
        assert!(spool.stray_files().unwrap().is_empty());
    }

    #[test]
    fn dataset_keys_name_their_algorithm() {
        // BLAKE3's published test vector for the empty input
        assert_eq!(
            dataset_key(b""),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(
            legacy_dataset_key(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn memory_object_hashes_like_a_spool_file() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path()).unwrap();
        let mut w = spool.create().unwrap();
        w.write_header(b"HEAD").unwrap();
        w.write_dataset(b"data").unwrap();
        let f = w.finish().unwrap();
        let m = MemoryObject::new(bytes::Bytes::from_static(b"HEADdata"), 4).unwrap();
        assert_eq!(
            (m.size, m.dataset_offset, &m.sha256, &m.dataset_hash),
            (f.size, f.dataset_offset, &f.sha256, &f.dataset_hash)
        );
        assert!(MemoryObject::new(bytes::Bytes::from_static(b"HEAD"), 5).is_err());
    }
}
