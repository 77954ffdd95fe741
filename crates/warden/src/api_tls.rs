//! TLS for the API (`[api] tls_cert`, `tls_key`): the daemon's side (a rustls acceptor from
//! PEM files) and the CLI's (a client that trusts exactly the daemon's certificate, by the
//! SHA-256 of its DER, its pin). The daemon writes the pin to `<data_dir>/api.pin` and gives
//! it to its agents as `WARDEN_API_PIN`, so the CLI on the machine needs no CA: it checks that
//! it talks to the daemon whose data dir it reads, whatever names the certificate carries.

use std::path::Path;
use std::sync::Arc;

use crate::check::tls::provider;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The API's TLS: the acceptor and the pin of its certificate.
#[derive(Clone)]
pub struct ApiTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `sha256:` and the hex SHA-256 of the certificate's DER.
    pub pin: String,
}

impl std::fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTls").field("pin", &self.pin).finish()
    }
}

/// The pin of a certificate (its DER).
pub fn pin_of(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Loads the certificate chain (the server's first) and its private key, PEM; the error says
/// which file and why.
pub fn load(cert: &Path, key: &Path) -> Result<ApiTls, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read tls_cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
    let Some(first) = certs.first() else {
        return Err(format!("no certificate in {}", cert.display()));
    };
    let pin = pin_of(first.as_ref());
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "cannot read a private key from tls_key {}: {e}",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    Ok(ApiTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        pin,
    })
}

/// A client configuration that accepts only the certificate of `pin` (and checks that the
/// server holds its key: the handshake's signatures are verified).
pub fn client_config(pin: &str) -> Result<rustls::ClientConfig, String> {
    let want = pin
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("bad pin {pin:?}: expected sha256: and 64 hex digits"))?
        .to_ascii_lowercase();
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            pin: format!("sha256:{want}"),
            algorithms,
        }))
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    pin: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if pin_of(end_entity.as_ref()) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the API's certificate is not the one pinned ({}): another daemon, or its certificate changed",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_checked_for_shape() {
        assert!(client_config("md5:00").is_err());
        assert!(client_config("sha256:xyz").is_err());
        let pin = pin_of(b"x");
        assert!(pin.starts_with("sha256:") && pin.len() == 71, "{pin}");
        assert!(client_config(&pin.to_ascii_uppercase().replace("SHA256", "sha256")).is_ok());
    }

    #[test]
    fn files_that_do_not_serve_are_named() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("none.pem");
        let e = load(&missing, &missing).expect_err("missing");
        assert!(e.starts_with("cannot read tls_cert"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let e = load(&empty, &empty).expect_err("empty");
        assert!(e.starts_with("no certificate in"), "{e}");
    }
}
