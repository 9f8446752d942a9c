//! TLS for the HTTP and DICOM listeners: rustls server configurations built from PEM files
//! (ring provider), and [`HttpListener`], the axum listener serving either plain HTTP or
//! HTTPS only. TLS handshakes run in their own tasks under a timeout, so a slow or silent
//! peer never holds up the accept loop; `TCP_NODELAY` is set before the handshake.

use anyhow::Context;
use axum::serve::Listener;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// How long an HTTPS client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("bad PEM certificate in {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("cannot read a private key from {}", path.display()))
}

/// A rustls server configuration: our certificate chain and key; with `client_ca`, client
/// certificates are required and verified against those CAs.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots
                    .add(c)
                    .with_context(|| format!("bad CA certificate in {}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .context("cannot build the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("certificate and private key do not match")?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The TLS acceptor of `http.tls` (HTTP/1.1 only, as the server speaks).
pub fn http_acceptor(tls: &crate::config::TlsConfig) -> anyhow::Result<TlsAcceptor> {
    let config = server_config(&tls.cert, &tls.key, None, &[b"http/1.1"]).context("http.tls")?;
    Ok(TlsAcceptor::from(config))
}

/// The TLS acceptor of `dicom.tls`.
pub fn dicom_acceptor(tls: &dxhub_dimse::DimseTlsConfig) -> anyhow::Result<TlsAcceptor> {
    let config = server_config(&tls.cert, &tls.key, tls.ca.as_deref(), &[]).context("dicom.tls")?;
    Ok(TlsAcceptor::from(config))
}

/// A byte stream accepted by [`HttpListener`]: plain TCP or TLS over TCP.
pub trait HttpIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> HttpIo for T {}

/// The HTTP listener: plain, or TLS only. Wrap it in `.tap_io(|_| {})` to get
/// `ConnectInfo<SocketAddr>` from axum.
pub enum HttpListener {
    Plain(TcpListener),
    Tls {
        /// Handshaken streams, fed by a background accept task that stops when this
        /// listener is dropped.
        ready: mpsc::Receiver<(
            tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
            SocketAddr,
        )>,
        local: SocketAddr,
    },
}

impl HttpListener {
    pub fn new(listener: TcpListener, tls: Option<TlsAcceptor>) -> std::io::Result<Self> {
        let Some(acceptor) = tls else {
            return Ok(Self::Plain(listener));
        };
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = tx.closed() => break,
                    a = listener.accept() => a,
                };
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        warn!(error = %e, "HTTPS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(peer = %peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self::Tls { ready: rx, local })
    }
}

impl Listener for HttpListener {
    type Io = Box<dyn HttpIo>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(l) => loop {
                match TcpListener::accept(l).await {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        return (Box::new(tcp), peer);
                    }
                    Err(e) => {
                        warn!(error = %e, "HTTP accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            },
            Self::Tls { ready, .. } => match ready.recv().await {
                Some((stream, peer)) => (Box::new(stream), peer),
                // the accept task only ends when this receiver is gone
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match self {
            Self::Plain(l) => l.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}
