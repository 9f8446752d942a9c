//! A real `dxhub serve` process for one test: its own data dir, ephemeral ports, and the
//! readiness line it prints on stdout (no sleeps).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Path of the `dxhub` binary built by `cargo build --bins` (`DXHUB_BIN` overrides).
pub fn dxhub_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DXHUB_BIN") {
        return PathBuf::from(p);
    }
    // target/debug/deps/<test-exe> → target/debug/dxhub
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("dxhub");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bins` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Extra environment (e.g. `DXHUB_DATABASE__URL`, `DXHUB_STORAGE__BACKEND`).
    pub env: Vec<(String, String)>,
}

impl HubOptions {
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_owned(), v.into()));
        self
    }

    /// Let webhooks reach receivers on this host (`127.0.0.1`): the hub refuses internal
    /// addresses unless `worklist.webhook_allowed_hosts` lists them.
    pub fn local_webhooks(self) -> Self {
        self.env("DXHUB_WORKLIST__WEBHOOK_ALLOWED_HOSTS", "[\"127.0.0.1\"]")
    }

    pub fn postgres(self, url: &str) -> Self {
        self.env("DXHUB_DATABASE__URL", url)
    }

    pub fn s3(self, s3: &crate::peers::S3Env, prefix: &str) -> Self {
        self.env("DXHUB_STORAGE__BACKEND", "s3")
            .env("DXHUB_STORAGE__S3__ENDPOINT", s3.endpoint.clone())
            .env("DXHUB_STORAGE__S3__BUCKET", s3.bucket.clone())
            .env("DXHUB_STORAGE__S3__REGION", "us-east-1")
            .env("DXHUB_STORAGE__S3__ACCESS_KEY_ID", s3.access_key.clone())
            .env(
                "DXHUB_STORAGE__S3__SECRET_ACCESS_KEY",
                s3.secret_key.clone(),
            )
            .env("DXHUB_STORAGE__S3__ALLOW_HTTP", "true")
            .env("DXHUB_STORAGE__S3__PREFIX", prefix)
    }
}

pub struct TestHub {
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub opts: HubOptions,
    pub http: SocketAddr,
    pub dicom: SocketAddr,
    /// The DICOM TLS listener, when `dicom.tls` is configured.
    pub dicom_tls: Option<SocketAddr>,
    stderr_log: PathBuf,
}

impl TestHub {
    /// A hub with a fresh temporary data dir and an alliance, a county hospital, a
    /// township health centre and the calling AE title `CLINIC` registered (any host).
    pub fn spawn(opts: HubOptions) -> TestHub {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().to_owned();
        let mut hub = TestHub {
            child: None,
            _tmp: Some(tmp),
            data_dir,
            opts,
            http: "0.0.0.0:0".parse().expect("addr"),
            dicom: "0.0.0.0:0".parse().expect("addr"),
            dicom_tls: None,
            stderr_log: PathBuf::new(),
        };
        hub.admin_ok(&["alliance", "add", "测试医共体"]);
        hub.admin_ok(&[
            "institution",
            "add",
            "--alliance",
            "测试医共体",
            "--name",
            "县人民医院",
            "--level",
            "county",
            "--population",
            "420000",
        ]);
        hub.admin_ok(&[
            "institution",
            "add",
            "--alliance",
            "测试医共体",
            "--name",
            "城关镇卫生院",
            "--level",
            "township",
            "--parent",
            "县人民医院",
        ]);
        hub.admin_ok(&[
            "ae",
            "add",
            "--institution",
            "城关镇卫生院",
            "--ae-title",
            "CLINIC",
        ]);
        hub.start();
        hub
    }

    fn command(&self) -> Command {
        let mut c = Command::new(dxhub_bin());
        c.arg("--data-dir").arg(&self.data_dir);
        c.env("DXHUB_LOG__FILTER", "info,dicom_parser=error");
        for (k, v) in &self.opts.env {
            c.env(k, v);
        }
        c
    }

    /// Run `dxhub <args…>` against this hub's data dir and configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dxhub")
    }

    /// Run `dxhub <args…>` against this hub's data dir with other options (e.g. another
    /// configuration for one command).
    pub fn command_with(&self, opts: &HubOptions, args: &[&str]) -> Output {
        let mut c = Command::new(dxhub_bin());
        c.arg("--data-dir").arg(&self.data_dir);
        c.env("DXHUB_LOG__FILTER", "info,dicom_parser=error");
        for (k, v) in &opts.env {
            c.env(k, v);
        }
        c.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dxhub")
    }

    pub fn admin_ok(&self, args: &[&str]) -> String {
        let mut full = vec!["admin"];
        full.extend_from_slice(args);
        let out = self.cli(&full);
        assert!(
            out.status.success(),
            "dxhub admin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start (or restart) the server process and wait for its readiness line.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "hub already running");
        self.stderr_log = self.data_dir.join(format!(
            "hub-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let log = std::fs::File::create(&self.stderr_log).expect("log file");
        let mut child = self
            .command()
            .args(["serve", "--http", "127.0.0.1:0", "--dicom", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn dxhub serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // keep draining so the child never blocks on a full pipe
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "dxhub did not become ready; log:\n{}",
                    std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
                );
            }
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        assert_eq!(v["event"], "ready");
        self.http = v["http"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("http addr");
        self.dicom = v["dicom"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("dicom addr");
        self.dicom_tls = v["dicom_tls"].as_str().and_then(|s| s.parse().ok());
        self.child = Some(child);
    }

    /// SIGKILL: no chance to clean up (crash-consistency tests).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// The process id of the running hub.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("hub is running")
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// Open the hub's index (works while it runs: SQLite WAL or PostgreSQL).
    pub async fn catalog(&self) -> dxhub_store::SqlCatalog {
        let url = self
            .opts
            .env
            .iter()
            .find(|(k, _)| k == "DXHUB_DATABASE__URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    self.data_dir.join("index.sqlite").display()
                )
            });
        dxhub_store::SqlCatalog::connect(
            &url,
            dxhub_store::CatalogOptions {
                max_connections: 2,
                sqlite_synchronous_full: true,
            },
        )
        .await
        .expect("open catalog")
    }

    /// The hub's object store as configured.
    pub fn blobs(&self) -> dxhub_store::Blobs {
        let get = |k: &str| {
            self.opts
                .env
                .iter()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.clone())
        };
        if get("DXHUB_STORAGE__BACKEND").as_deref() == Some("s3") {
            dxhub_store::Blobs::s3(&dxhub_store::S3Config {
                endpoint: get("DXHUB_STORAGE__S3__ENDPOINT"),
                bucket: get("DXHUB_STORAGE__S3__BUCKET").unwrap_or_default(),
                region: "us-east-1".into(),
                access_key_id: get("DXHUB_STORAGE__S3__ACCESS_KEY_ID"),
                secret_access_key: get("DXHUB_STORAGE__S3__SECRET_ACCESS_KEY"),
                allow_http: true,
                prefix: get("DXHUB_STORAGE__S3__PREFIX"),
            })
            .expect("s3 blobs")
        } else {
            dxhub_store::Blobs::local(&self.data_dir.join("blobs")).expect("local blobs")
        }
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        self.stop();
        // a failing test shows what the hub logged (which side stopped, which status)
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            eprintln!(
                "--- dxhub log, last {} of {} lines ({}) ---\n{}\n--- end of dxhub log ---",
                tail.len(),
                lines.len(),
                self.stderr_log.display(),
                tail.join("\n")
            );
        }
    }
}
