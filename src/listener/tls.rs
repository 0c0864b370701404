//! The API's TLS settings as rustls wants them: certificate chain and key from PEM files,
//! and, for mTLS, the CA that client certificates must chain to. `TlsFiles::load` reads and
//! checks everything (a reload is refused unless the new files load); `ServerTls` is the
//! running configuration, swapped whole on reload so new connections get the new
//! certificates while open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Where the server's TLS material lives (`-tls-*` flags, `tls {}` block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA bundle client certificates are checked against.
    pub ca_file: Option<PathBuf>,
    /// Require a client certificate signed by `ca_file` (mTLS).
    pub verify_clients: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: cannot read certificates: {reason}", path.display())]
    Certificates { path: PathBuf, reason: String },
    #[error("{}: no certificate in the file (expected PEM \"-----BEGIN CERTIFICATE-----\")", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: cannot read the private key: {reason} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("{}: the CA file holds no usable certificate: {reason}", path.display())]
    Ca { path: PathBuf, reason: String },
    #[error("verifying clients (tls.verify_https_client / -tls-verify-clients) needs a CA file (tls.ca_file / -tls-ca-file)")]
    VerifyWithoutCa,
    #[error("the certificate and key do not go together: {0}")]
    Mismatch(String),
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Certificates {
            path: path.into(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificates {
            path: path.into(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

/// A root store from a CA bundle (PEM), for verifying peers.
pub fn root_store(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = certificates(path).map_err(|e| TlsError::Ca {
        path: path.into(),
        reason: e.to_string(),
    })?;
    let (_, ignored) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(TlsError::Ca {
            path: path.into(),
            reason: format!("{ignored} certificate(s) could not be parsed"),
        });
    }
    Ok(roots)
}

impl TlsFiles {
    /// Read the files and build the rustls server configuration (HTTP/1.1 only, as the API
    /// is served).
    pub fn load(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = certificates(&self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| TlsError::Key {
            path: self.key_file.clone(),
            reason: e.to_string(),
        })?;
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Mismatch(e.to_string()))?;
        let builder = match (&self.ca_file, self.verify_clients) {
            (Some(ca), true) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(
                    Arc::new(root_store(ca)?),
                    provider,
                )
                .build()
                .map_err(|e| TlsError::Ca {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            (None, true) => return Err(TlsError::VerifyWithoutCa),
            (Some(ca), false) => {
                // checked anyway, so a broken CA file is found before clients need it
                root_store(ca)?;
                builder.with_no_client_auth()
            }
            (None, false) => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::Mismatch(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The running TLS configuration of a listener; `replace` swaps it for new connections.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
    files: Arc<RwLock<TlsFiles>>,
}

impl ServerTls {
    pub fn new(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let config = files.load()?;
        Ok(ServerTls {
            current: Arc::new(RwLock::new(config)),
            files: Arc::new(RwLock::new(files)),
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }

    /// The configuration new connections get now (a reload replaces it with another).
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    pub fn verifies_clients(&self) -> bool {
        self.files.read().verify_clients
    }

    /// The files the listener serves with now.
    pub fn files(&self) -> TlsFiles {
        self.files.read().clone()
    }

    /// Use `files` (already checked with `TlsFiles::load`) for every new connection.
    pub fn replace(&self, files: TlsFiles, config: Arc<ServerConfig>) {
        *self.current.write() = config;
        *self.files.write() = files;
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ServerTls")
            .field(&*self.files.read())
            .finish()
    }
}
