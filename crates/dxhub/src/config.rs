//! Configuration: defaults → optional TOML file (`--config` / `DXHUB_CONFIG`) → `DXHUB_*`
//! environment variables (`__` separates nesting: `DXHUB_DICOM__AE_TITLE=HUB1`) → flags.

use anyhow::Context;
use dxhub_dimse::DimseConfig;
use dxhub_store::S3Config;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite index, the local object store and the spool live.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub dicom: DimseConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub worklist: WorklistConfig,
    pub reports: ReportsConfig,
}

/// Reports: signing-key custody, critical values, push-back, PDF.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// Key-encryption key (64 hex digits) sealing readers' private SM2 keys. Secret:
    /// printed as `***`. Unset: generated once into `{data_dir}/report-kek` (mode 0600);
    /// production sets it from a secret store (`DXHUB_REPORTS__KEK`).
    pub kek: Option<String>,
    /// Earlier KEKs, kept until `dxhub admin signing-keys reseal` has re-sealed every key
    /// under the current one. Secret.
    pub previous_keks: Vec<String>,
    /// A critical value nobody acknowledged escalates after this long.
    pub critical_ack_limit_secs: i64,
    /// Our AE title when pushing reports to clinics' PACS (default: `dicom.ae_title`).
    pub push_calling_ae: Option<String>,
    pub push_timeout_secs: u64,
    /// Attempts before a push-back is dead-lettered.
    pub push_max_attempts: i64,
    /// Delay before the first retry of a failed push-back; doubled per attempt.
    pub push_retry_secs: u64,
    /// A TrueType/OpenType CJK font for PDFs (`path` or `path#index`); default: found
    /// among installed fonts (WenQuanYi Micro Hei, Noto Sans CJK).
    pub pdf_font: Option<PathBuf>,
    /// The reading centre printed on PDFs, e.g. `县人民医院 医学影像中心`.
    pub centre_name: Option<String>,
    /// Lookups of the public verification page (`/api/v1/verify/{code}`, the PDF's QR
    /// code) per client address and minute, beyond which it answers 429. A bucket of its
    /// own, apart from logins: a clinic behind one NAT address checks many printouts.
    pub verify_per_minute: u32,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            kek: None,
            previous_keks: Vec::new(),
            critical_ack_limit_secs: 600,
            push_calling_ae: None,
            push_timeout_secs: 30,
            push_max_attempts: 8,
            push_retry_secs: 30,
            pdf_font: None,
            centre_name: None,
            verify_per_minute: 60,
        }
    }
}

impl ReportsConfig {
    /// The KEK ring: the configured KEK, else the one in `{data_dir}/report-kek`
    /// (created on first use).
    pub fn kek_ring(&self, data_dir: &Path) -> anyhow::Result<dxhub_core::report::KekRing> {
        use dxhub_core::report::{Kek, KekRing};
        let current = match &self.kek {
            Some(hex) => Kek::from_hex(hex).context("reports.kek")?,
            None => {
                let path = data_dir.join("report-kek");
                let hex = match std::fs::read_to_string(&path) {
                    Ok(s) => s,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        use rand::RngCore;
                        let mut key = [0u8; 32];
                        rand::rngs::OsRng.fill_bytes(&mut key);
                        let hex = hex::encode(key);
                        std::fs::create_dir_all(data_dir)?;
                        let mut opts = std::fs::OpenOptions::new();
                        opts.write(true).create_new(true);
                        #[cfg(unix)]
                        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                        match opts.open(&path) {
                            Ok(mut f) => {
                                use std::io::Write;
                                f.write_all(hex.as_bytes())?;
                                f.sync_all()?;
                                hex
                            }
                            // another process made it first
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                                std::fs::read_to_string(&path)?
                            }
                            Err(e) => {
                                return Err(e).context(format!("creating {}", path.display()));
                            }
                        }
                    }
                    Err(e) => return Err(e).context(format!("reading {}", path.display())),
                };
                Kek::from_hex(&hex).with_context(|| format!("{}", path.display()))?
            }
        };
        let previous = self
            .previous_keks
            .iter()
            .map(|h| Kek::from_hex(h).context("reports.previous_keks"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(KekRing { current, previous })
    }
}

/// The worklist: ready detection, claim leases, turnaround warnings, webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorklistConfig {
    /// A study is ready when no instance arrived for this long (institutions may set
    /// their own; Orthanc's StableAge).
    pub stable_after_secs: i64,
    /// A claim's lease; the viewer's heartbeat renews it.
    pub lease_ttl_secs: i64,
    /// Warn at this fraction of the SLA.
    pub warn_fraction: f64,
    /// How often the sweep (ready, leases, escalation) runs.
    pub tick_ms: u64,
    /// Attempts before a webhook delivery is dead-lettered.
    pub webhook_max_attempts: i64,
    pub webhook_timeout_secs: u64,
    /// Internal hosts webhooks may reach: names, addresses, CIDR networks. Loopback,
    /// private, link-local and other internal addresses are refused otherwise (SSRF).
    pub webhook_allowed_hosts: Vec<String>,
}

impl Default for WorklistConfig {
    fn default() -> Self {
        Self {
            stable_after_secs: 60,
            lease_ttl_secs: 120,
            warn_fraction: 0.8,
            tick_ms: 1000,
            webhook_max_attempts: 8,
            webhook_timeout_secs: 10,
            webhook_allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    /// HTTPS: when set, the HTTP listener serves TLS only.
    pub tls: Option<TlsConfig>,
    /// Absolute lifetime of a login session.
    pub session_ttl_secs: u64,
    /// A login session ends when unused this long.
    pub session_idle_secs: u64,
    /// Bearer token that may read `/metrics` (besides group_admin/superadmin sessions).
    /// Secret: printed as `***`.
    pub metrics_token: Option<String>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Requests taking longer are answered 408 (not DICOMweb: studies are large and
    /// clinic links slow).
    pub request_timeout_secs: u64,
    /// Origins (e.g. `https://viewer.example`) allowed to call `/dicomweb` from a browser;
    /// `["*"]` allows any origin without credentials. Empty: same-origin only.
    pub cors_origins: Vec<String>,
    /// Largest STOW-RS request body.
    pub stow_max_bytes: u64,
    /// The URL clients reach the hub at, for RetrieveURL and BulkDataURI (behind a
    /// reverse proxy); default: taken from each request's Host.
    pub public_url: Option<String>,
    /// The web app's build output, served at `/`. Default: `viewer/dist` of the working
    /// directory when it holds an `index.html` (what `scripts/run.sh` builds).
    pub viewer_dir: Option<PathBuf>,
}

/// `http.tls = { cert, key }`: PEM files of the server certificate chain (leaf first) and
/// its private key (PKCS#8, PKCS#1 or SEC1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl HttpConfig {
    /// Whether the HTTP listener serves HTTPS (cookies then get `Secure`).
    pub fn https(&self) -> bool {
        self.tls.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://{data_dir}/index.sqlite`.
    pub url: String,
    pub max_connections: u32,
    /// SQLite `synchronous=FULL` (true) or `NORMAL` (false). FULL keeps every acknowledged
    /// instance across power loss.
    pub sqlite_synchronous_full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    /// Root of the local object store; empty means `{data_dir}/blobs`.
    pub path: String,
    pub s3: S3Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// `tracing` EnvFilter directives (`RUST_LOG` overrides).
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./dxhub-data"),
            http: HttpConfig::default(),
            dicom: DimseConfig::default(),
            database: DatabaseConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            worklist: WorklistConfig::default(),
            reports: ReportsConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".into(),
            tls: None,
            session_ttl_secs: 43_200,
            session_idle_secs: 1_800,
            metrics_token: None,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 60,
            cors_origins: Vec::new(),
            stow_max_bytes: 4 * 1024 * 1024 * 1024,
            public_url: None,
            viewer_dir: None,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            sqlite_synchronous_full: true,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            path: String::new(),
            s3: S3Config::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Top-level keys an environment variable may set (other `DXHUB_*` variables, such as
/// `DXHUB_CONFIG` or the test suite's, are not configuration).
const ENV_SECTIONS: &[&str] = &[
    "data_dir", "http", "dicom", "database", "storage", "log", "worklist", "reports",
];

/// Overrides given as command-line flags.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub http: Option<String>,
    pub dicom: Option<String>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("DXHUB_").split("__").filter(|k| {
            // keys are uncased and arrive in upper case: compare in lower case
            let k = k.as_str().to_ascii_lowercase();
            ENV_SECTIONS
                .iter()
                .any(|s| k == *s || k.starts_with(&format!("{s}.")))
        }));
        let mut cfg: Config = fig.extract().context("invalid configuration")?;
        if let Some(d) = &overrides.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(h) = &overrides.http {
            cfg.http.listen = h.clone();
        }
        if let Some(d) = &overrides.dicom {
            cfg.dicom.listen = d.clone();
        }
        cfg.dicom.ae_title = dxhub_core::tenancy::validate_ae_title(&cfg.dicom.ae_title)
            .map_err(|e| anyhow::anyhow!("dicom.ae_title: {e}"))?;
        Ok(cfg)
    }

    pub fn database_url(&self) -> String {
        if self.database.url.trim().is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("index.sqlite").display()
            )
        } else {
            self.database.url.clone()
        }
    }

    pub fn blob_root(&self) -> PathBuf {
        if self.storage.path.trim().is_empty() {
            self.data_dir.join("blobs")
        } else {
            PathBuf::from(&self.storage.path)
        }
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> anyhow::Result<String> {
        let mut c = self.clone();
        c.database.url = mask_url_password(&self.database_url());
        if c.storage.s3.secret_access_key.is_some() {
            c.storage.s3.secret_access_key = Some("***".into());
        }
        if c.http.metrics_token.is_some() {
            c.http.metrics_token = Some("***".into());
        }
        if c.reports.kek.is_some() {
            c.reports.kek = Some("***".into());
        }
        for k in &mut c.reports.previous_keks {
            *k = "***".into();
        }
        Ok(toml::to_string_pretty(&c)?)
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let Some(at) = rest.find('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}://{}:***{}",
            &url[..scheme_end],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url_password("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(mask_url_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url_password("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn http_defaults_and_metrics_token_is_masked() {
        let mut cfg = Config::default();
        assert_eq!(cfg.http.session_ttl_secs, 43_200);
        assert_eq!(cfg.http.session_idle_secs, 1_800);
        assert_eq!(cfg.http.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(cfg.http.request_timeout_secs, 60);
        cfg.http.metrics_token = Some("s3cret-metrics".into());
        let shown = cfg.to_masked_toml().unwrap();
        assert!(!shown.contains("s3cret-metrics"), "{shown}");
        assert!(shown.contains("metrics_token = \"***\""), "{shown}");
    }

    #[test]
    fn report_keks_are_masked_and_generated_once() {
        let mut cfg = Config::default();
        cfg.reports.kek = Some("ab".repeat(32));
        cfg.reports.previous_keks = vec!["cd".repeat(32)];
        let shown = cfg.to_masked_toml().unwrap();
        assert!(
            !shown.contains(&"ab".repeat(32)) && !shown.contains(&"cd".repeat(32)),
            "{shown}"
        );
        let ring = cfg.reports.kek_ring(Path::new("/nonexistent")).unwrap();
        assert_eq!(ring.previous.len(), 1);
        cfg.reports.kek = Some("not hex".into());
        assert!(cfg.reports.kek_ring(Path::new("/nonexistent")).is_err());
        // unset: generated into the data dir (mode 0600), the same on the next start
        let dir = tempfile::tempdir().unwrap();
        cfg.reports.kek = None;
        cfg.reports.previous_keks.clear();
        let a = cfg.reports.kek_ring(dir.path()).unwrap();
        let b = cfg.reports.kek_ring(dir.path()).unwrap();
        assert_eq!(a.current.id(), b.current.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("report-kek"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Error is figment's
    fn layering_defaults_file_env_flags() {
        let dir = std::env::temp_dir().join(format!("dxhub-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[dicom]\nae_title = \"FROMFILE\"\nmax_associations = 3\n[http]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("DXHUB_DICOM__MAX_ASSOCIATIONS", "5");
            jail.set_env("DXHUB_TEST_UNRELATED", "x");
            let cfg = Config::load(
                Some(&file),
                &Overrides {
                    http: Some("127.0.0.1:2".into()),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(cfg.dicom.ae_title, "FROMFILE");
            assert_eq!(cfg.dicom.max_associations, 5);
            assert_eq!(cfg.http.listen, "127.0.0.1:2");
            assert_eq!(cfg.dicom.listen, "0.0.0.0:11112");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("DXHUB_HTTP__TLS__CERT", "/etc/dxhub/server.pem");
            jail.set_env("DXHUB_HTTP__TLS__KEY", "/etc/dxhub/server.key");
            jail.set_env("DXHUB_DICOM__TLS__CERT", "/etc/dxhub/dicom.pem");
            jail.set_env("DXHUB_DICOM__TLS__KEY", "/etc/dxhub/dicom.key");
            jail.set_env("DXHUB_DICOM__TLS__CA", "/etc/dxhub/ca.pem");
            let cfg = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            let http = cfg.http.tls.as_ref().expect("http.tls");
            assert!(cfg.http.https());
            assert_eq!(http.key, PathBuf::from("/etc/dxhub/server.key"));
            let dicom = cfg.dicom.tls.as_ref().expect("dicom.tls");
            assert_eq!(dicom.listen, "0.0.0.0:2762");
            assert_eq!(dicom.ca.as_deref(), Some(Path::new("/etc/dxhub/ca.pem")));
            Ok(())
        });
        figment::Jail::expect_with(|_| {
            let plain = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert!(plain.http.tls.is_none() && plain.dicom.tls.is_none());
            Ok(())
        });
        let bad = dir.join("bad.toml");
        std::fs::write(&bad, "[dicom]\nae_titel = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&bad), &Overrides::default()).is_err());
    }
}
