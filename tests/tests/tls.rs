//! HTTPS and DICOM TLS against a real spawned hub: certificates made at test time with the
//! `openssl` CLI (a CA, a server and a client certificate), reqwest trusting the CA, and
//! DCMTK's `echoscu` / `storescu` with `+tls`.

use dxhub_e2e::generate::{CtSpec, ct_file, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_store::Catalog;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate.
fn make_pki() -> Pki {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    openssl(d, &["genrsa", "-out", "ca.key", "2048"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=dxhub test CA",
            "-out",
            "ca.pem",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(d.join(format!("{name}.ext")), ext).expect("ext file");
        openssl(d, &["genrsa", "-out", &format!("{name}.key"), "2048"]);
        openssl(
            d,
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                &format!("/CN=dxhub test {name}"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-sha256",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
    Pki {
        ca: d.join("ca.pem"),
        server_cert: d.join("server.pem"),
        server_key: d.join("server.key"),
        client_cert: d.join("client.pem"),
        client_key: d.join("client.key"),
        _dir: tmp,
    }
}

fn peers_present() -> bool {
    peers::require("openssl", peers::tool("openssl").is_some())
        && peers::require("DCMTK echoscu", peers::dcmtk("echoscu").is_some())
        && peers::require("DCMTK storescu", peers::dcmtk("storescu").is_some())
}

fn tls_hub(pki: &Pki, client_ca: bool) -> TestHub {
    let s = |p: &Path| p.display().to_string();
    let mut opts = HubOptions::default()
        .env("DXHUB_HTTP__TLS__CERT", s(&pki.server_cert))
        .env("DXHUB_HTTP__TLS__KEY", s(&pki.server_key))
        .env("DXHUB_DICOM__TLS__LISTEN", "127.0.0.1:0")
        .env("DXHUB_DICOM__TLS__CERT", s(&pki.server_cert))
        .env("DXHUB_DICOM__TLS__KEY", s(&pki.server_key));
    if client_ca {
        opts = opts.env("DXHUB_DICOM__TLS__CA", s(&pki.ca));
    }
    TestHub::spawn(opts)
}

/// `echoscu`/`storescu` with TLS options; `client` = present our client certificate.
fn dcmtk_tls(tool: &str, hub: &TestHub, pki: &Pki, client: bool, extra: &[&str]) -> Output {
    let port = hub.dicom_tls.expect("ready line names dicom_tls").port();
    let mut c = Command::new(peers::dcmtk(tool).expect(tool));
    if client {
        c.arg("+tls").arg(&pki.client_key).arg(&pki.client_cert);
    } else {
        c.arg("+tla");
    }
    c.arg("+cf")
        .arg(&pki.ca)
        .args(["-aet", "CLINIC", "-aec", "DXHUB", "-to", "10", "-ta", "10"])
        .args(["127.0.0.1", &port.to_string()])
        .args(extra);
    c.output().expect("run DCMTK")
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_and_dicom_tls_with_dcmtk() {
    if !peers_present() {
        return;
    }
    let pki = make_pki();
    let hub = tls_hub(&pki, false);
    assert!(hub.dicom_tls.is_some(), "ready line has dicom_tls");

    // (a) HTTPS with the CA trusted works …
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).expect("ca")).expect("ca pem");
    let https = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("client");
    let url = format!("https://127.0.0.1:{}/healthz", hub.http.port());
    let r = https.get(&url).send().await.expect("HTTPS /healthz");
    assert!(r.status().is_success(), "HTTPS /healthz: {}", r.status());
    // … an untrusted client refuses the certificate, and plain HTTP gets no answer
    let untrusted = reqwest::Client::builder().build().expect("client");
    assert!(untrusted.get(&url).send().await.is_err());
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .expect("client");
    let r = plain.get(hub.http_url("/healthz")).send().await;
    assert!(
        r.is_err(),
        "plain HTTP must not be served on the HTTPS port: {:?}",
        r.map(|r| r.status())
    );

    // (b) DICOM TLS: C-ECHO and C-STORE from DCMTK with a client certificate
    let echo = dcmtk_tls("echoscu", &hub, &pki, true, &[]);
    assert!(echo.status.success(), "echoscu +tls: {}", describe(&echo));

    let file_dir = tempfile::tempdir().expect("tempdir");
    let file = file_dir.path().join("ct.dcm");
    let spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    ct_file(&spec, &file);
    let store = dcmtk_tls(
        "storescu",
        &hub,
        &pki,
        true,
        &[file.to_str().expect("utf-8 path")],
    );
    assert!(
        store.status.success(),
        "storescu +tls: {}",
        describe(&store)
    );
    let catalog = hub.catalog().await;
    let row = catalog
        .get_instance(&spec.sop_uid)
        .await
        .expect("index")
        .expect("instance stored over DICOM TLS is indexed");
    assert_eq!(row.sop_instance_uid, spec.sop_uid);

    // the plain DICOM listener stays, and does not speak TLS
    let plain_echo = Command::new(peers::dcmtk("echoscu").expect("echoscu"))
        .args(["-aet", "CLINIC", "-aec", "DXHUB", "-to", "10"])
        .args(["127.0.0.1", &hub.dicom.port().to_string()])
        .output()
        .expect("echoscu");
    assert!(
        plain_echo.status.success(),
        "plain echoscu: {}",
        describe(&plain_echo)
    );
    let tls_on_plain = Command::new(peers::dcmtk("echoscu").expect("echoscu"))
        .arg("+tls")
        .arg(&pki.client_key)
        .arg(&pki.client_cert)
        .arg("+cf")
        .arg(&pki.ca)
        .args(["-aet", "CLINIC", "-aec", "DXHUB", "-to", "10", "-ta", "10"])
        .args(["127.0.0.1", &hub.dicom.port().to_string()])
        .output()
        .expect("echoscu");
    assert!(
        !tls_on_plain.status.success(),
        "TLS to the plain DICOM port must fail"
    );
}

#[test]
fn dicom_tls_with_ca_requires_client_certificates() {
    if !peers_present() {
        return;
    }
    let pki = make_pki();
    let hub = tls_hub(&pki, true);
    // (c) no client certificate: refused
    let anon = dcmtk_tls("echoscu", &hub, &pki, false, &[]);
    assert!(
        !anon.status.success(),
        "a client without a certificate must be refused: {}",
        describe(&anon)
    );
    // a certificate issued by the configured CA: accepted
    let ok = dcmtk_tls("echoscu", &hub, &pki, true, &[]);
    assert!(
        ok.status.success(),
        "echoscu with client cert: {}",
        describe(&ok)
    );
}
