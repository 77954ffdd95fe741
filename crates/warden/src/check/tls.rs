//! TLS for `https` checks (rustls with the ring provider): the server name sent (SNI), and
//! certificate verification against the public roots plus an optional CA file, or none.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The TLS settings of an `https` check, as the configuration gives them. Two are equal when
/// their settings are (and, once both are built, their CA files' contents), so a reload that
/// changes nothing leaves the check alone. The client is built on first use ([`Tls::client`]):
/// reading the configuration does no I/O; the shell builds it once after reading, to report a
/// bad CA file at its place, and the checks reuse it.
#[derive(Clone)]
pub struct Tls {
    /// The name sent in SNI and checked against the certificate.
    pub sni: String,
    /// Check the certificate against the public roots plus `ca`.
    pub verify: bool,
    /// A PEM file of extra trusted certificates.
    pub ca: Option<PathBuf>,
    built: Arc<OnceLock<Result<TlsClient, String>>>,
}

impl Tls {
    pub fn new(sni: String, verify: bool, ca: Option<PathBuf>) -> Tls {
        Tls {
            sni,
            verify,
            ca,
            built: Arc::new(OnceLock::new()),
        }
    }

    /// The client, built (reading `ca`) the first time it is asked for.
    pub fn client(&self) -> Result<&TlsClient, &str> {
        self.built
            .get_or_init(|| client(&self.sni, self.verify, self.ca.as_deref()))
            .as_ref()
            .map_err(String::as_str)
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Self) -> bool {
        let same_ca = match (self.built.get(), other.built.get()) {
            (Some(Ok(a)), Some(Ok(b))) => a.ca_digest == b.ca_digest,
            _ => true,
        };
        self.sni == other.sni && self.verify == other.verify && self.ca == other.ca && same_ca
    }
}

impl Eq for Tls {}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tls(sni {:?}, verify {}, ca {:?})",
            self.sni, self.verify, self.ca
        )
    }
}

/// A built client configuration.
#[derive(Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    /// The name sent in SNI and checked against the certificate.
    pub server_name: ServerName<'static>,
    /// A digest of the CA file's contents (0 without one): a changed file is a changed check.
    ca_digest: u64,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TlsClient({:?})", self.server_name)
    }
}

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the TLS client of a check: `sni` is the server name; `verify` checks the certificate
/// against the public roots and those of `ca` (a PEM file).
pub fn client(sni: &str, verify: bool, ca: Option<&Path>) -> Result<TlsClient, String> {
    let server_name = ServerName::try_from(sni.to_owned())
        .map_err(|_| format!("bad sni {sni:?}: a host name or an IP address"))?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut ca_digest = 0;
    let config = if verify {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(ca) = ca {
            let bytes =
                std::fs::read(ca).map_err(|e| format!("cannot read ca {}: {e}", ca.display()))?;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            ca_digest = h.finish();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
            if certs.is_empty() {
                return Err(format!("no certificate in {}", ca.display()));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth()
    };
    Ok(TlsClient {
        config: Arc::new(config),
        server_name,
        ca_digest,
    })
}

/// `verify = false`: any certificate is accepted, X.509 v1 ones included (as nginx and
/// lua-resty accept them unverified). The handshake's signature is not checked either: it
/// would prove only that the peer holds the key of a certificate nobody vouches for, and
/// checking it means parsing the certificate as webpki does, which refuses v1.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
