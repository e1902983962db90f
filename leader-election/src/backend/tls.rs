//! TLS settings shared by every backend: [`TlsSettings`] (the CAs to trust and a client
//! certificate), set through [`TlsBuilder`](crate::TlsBuilder) or a configuration's file paths,
//! and read when the store is built; with feature `rustls`, the rustls client configuration
//! made from them.
//!
//! PEM text is given in memory or as a file ([`Pem`]); neither is ever shown, since it may be a
//! private key.

use std::fmt;
use std::path::PathBuf;

use crate::backend::BuildError;

/// PEM text given in memory, or the path of a file read by the backend's `build_store()`.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// The PEM text itself.
    Bytes(Vec<u8>),
    /// A file holding the PEM text, read when the store is built.
    File(PathBuf),
}

impl Pem {
    /// What `Debug` and error messages show: a file's path, or only the length of PEM given in
    /// memory.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Pem::Bytes(bytes) => format!("<{} PEM bytes>", bytes.len()),
            Pem::File(path) => path.display().to_string(),
        }
    }

    /// The PEM text: the bytes given, or the file's contents.
    ///
    /// # Errors
    /// A message naming the file that cannot be read, and why.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.clone()),
            Pem::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A client certificate's PEM text and its private key's.
pub type Identity = (Vec<u8>, Vec<u8>);

/// A CA to trust: the system's root certificates, or PEM text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ca {
    /// The system's root certificates (as when no CA is given at all).
    System,
    /// The CA certificate(s) in this PEM text.
    Pem(Pem),
}

/// A configuration's TLS files: a backend configuration's `tls` field, written in a file as
/// `"tls": {"ca_file": "...", "cert_file": "...", "key_file": "..."}` and in the environment
/// as `LEADER_ELECTION_<SECTION>_TLS_CA_FILE` (`_TLS_CERT_FILE`, `_TLS_KEY_FILE`). The files
/// are read when the store is built ([`TlsBuilder::tls_files`](crate::TlsBuilder::tls_files)).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsFiles {
    /// A PEM file with the CA certificates to verify the server with, instead of the system's
    /// roots. Default: none.
    pub ca_file: Option<PathBuf>,
    /// A PEM file with the client certificate, for mutual TLS; needs
    /// [`key_file`](Self::key_file). Default: none.
    pub cert_file: Option<PathBuf>,
    /// A PEM file with the client certificate's private key. Default: none.
    pub key_file: Option<PathBuf>,
}

impl From<TlsFiles> for TlsSettings {
    fn from(files: TlsFiles) -> Self {
        Self {
            ca: files
                .ca_file
                .map(|p| Ca::Pem(Pem::File(p)))
                .into_iter()
                .collect(),
            client_cert: files.cert_file.map(Pem::File),
            client_key: files.key_file.map(Pem::File),
        }
    }
}

/// A backend's TLS settings: the CAs to trust (the system's roots when none is given) and a
/// client certificate with its key for mutual TLS. Files are read, and everything checked,
/// when the store is built. `Debug` shows file paths and byte counts, never PEM text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// The CAs to trust; empty means the system's root certificates.
    pub ca: Vec<Ca>,
    /// The client certificate (PEM, the chain's leaf first), for mutual TLS.
    pub client_cert: Option<Pem>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<Pem>,
}

impl TlsSettings {
    /// Whether nothing is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ca.is_empty() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// Adds settings from `other` (a configuration's files) to these.
    pub fn merge(&mut self, other: TlsSettings) {
        self.ca.extend(other.ca);
        if other.client_cert.is_some() {
            self.client_cert = other.client_cert;
        }
        if other.client_key.is_some() {
            self.client_key = other.client_key;
        }
    }

    /// Refuses a client certificate without its key, or a key without its certificate,
    /// before any file is read.
    ///
    /// # Errors
    /// [`BuildError::Tls`] naming the half that is set.
    pub fn check_pair(&self) -> Result<(), BuildError> {
        match (&self.client_cert, &self.client_key) {
            (None, Some(_)) => Err(BuildError::tls(
                "tls_client_key",
                "a client key without a client certificate: set both",
            )),
            (Some(_), None) => Err(BuildError::tls(
                "tls_client_cert",
                "a client certificate without its private key: set both",
            )),
            _ => Ok(()),
        }
    }

    /// The PEM text of every CA given (files read now); empty for the system's roots.
    ///
    /// # Errors
    /// [`BuildError::Tls`] for `tls_ca` naming a file that cannot be read.
    pub fn ca_pems(&self) -> Result<Vec<Vec<u8>>, BuildError> {
        self.ca
            .iter()
            .filter_map(|ca| match ca {
                Ca::Pem(pem) => Some(pem.read().map_err(|r| BuildError::tls("tls_ca", r))),
                Ca::System => None,
            })
            .collect()
    }

    /// The client certificate and key PEM texts (files read now), if set; checks the pair.
    ///
    /// # Errors
    /// As [`check_pair`](Self::check_pair), or [`BuildError::Tls`] naming a file that cannot
    /// be read.
    pub fn identity_pems(&self) -> Result<Option<Identity>, BuildError> {
        self.check_pair()?;
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Ok(Some((
                cert.read()
                    .map_err(|r| BuildError::tls("tls_client_cert", r))?,
                key.read()
                    .map_err(|r| BuildError::tls("tls_client_key", r))?,
            ))),
            _ => Ok(None),
        }
    }

    /// Whether the system's root certificates are trusted: no CA given, or [`Ca::System`].
    #[must_use]
    pub fn trusts_system_roots(&self) -> bool {
        self.ca.is_empty() || self.ca.contains(&Ca::System)
    }
}

#[cfg(feature = "rustls")]
#[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
mod rustls_config {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::{ClientConfig, RootCertStore};

    use super::{Ca, Pem, TlsSettings};
    use crate::backend::BuildError;

    /// The certificates in PEM text; an error when there are none or one does not parse.
    fn certificates(
        pem: &Pem,
        setting: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, BuildError> {
        let bytes = pem.read().map_err(|r| BuildError::tls(setting, r))?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                BuildError::tls(setting, format!("{}: not valid PEM: {e}", pem.describe()))
            })?;
        if certs.is_empty() {
            return Err(BuildError::tls(
                setting,
                format!(
                    "{}: no certificate (no -----BEGIN CERTIFICATE----- block)",
                    pem.describe()
                ),
            ));
        }
        Ok(certs)
    }

    impl TlsSettings {
        /// The trusted roots: the CAs given, and the system's when none is given or
        /// [`Ca::System`] is.
        ///
        /// # Errors
        /// [`BuildError::Tls`] for `tls_ca`: a file that cannot be read, PEM without a
        /// certificate or with one rustls cannot use, or no root at all.
        pub fn rustls_roots(&self) -> Result<RootCertStore, BuildError> {
            let mut roots = RootCertStore::empty();
            if self.trusts_system_roots() {
                for cert in rustls_native_certs::load_native_certs().certs {
                    // A certificate the system store holds but rustls cannot parse is skipped,
                    // as browsers do; the others still verify the server.
                    let _ = roots.add(cert);
                }
            }
            for ca in &self.ca {
                let Ca::Pem(pem) = ca else { continue };
                for cert in certificates(pem, "tls_ca")? {
                    roots.add(cert).map_err(|e| {
                        BuildError::tls(
                            "tls_ca",
                            format!("{}: not a usable CA certificate: {e}", pem.describe()),
                        )
                    })?;
                }
            }
            if roots.is_empty() {
                return Err(BuildError::tls(
                    "tls_ca",
                    "no CA to verify the server with: set a CA, or install the system's root \
                     certificates",
                ));
            }
            Ok(roots)
        }

        /// The rustls client configuration: the ring provider (chosen here rather than taken
        /// from rustls's process-wide default, which panics when a program links both rustls
        /// providers), [`rustls_roots`](Self::rustls_roots), and the client certificate if one
        /// is set.
        ///
        /// # Errors
        /// [`BuildError::Tls`]: a half-configured client certificate (before any file is
        /// read), an unusable CA, certificate or key, or a key that does not fit its
        /// certificate. Never contains a key's bytes.
        pub fn rustls_client_config(&self) -> Result<ClientConfig, BuildError> {
            self.check_pair()?;
            let roots = self.rustls_roots()?;
            let builder = self.rustls_builder()?.with_root_certificates(roots);
            match self.rustls_identity()? {
                Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                    BuildError::tls(
                        "tls_client_key",
                        format!("the client certificate and key do not fit: {e}"),
                    )
                }),
                None => Ok(builder.with_no_client_auth()),
            }
        }

        /// A rustls configuration builder with the ring provider and safe protocol versions,
        /// for a backend that verifies servers its own way.
        ///
        /// # Errors
        /// [`BuildError::Tls`] if the provider supports no safe protocol version.
        pub fn rustls_builder(
            &self,
        ) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, BuildError>
        {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| BuildError::tls("tls", format!("TLS setup: {e}")))
        }

        /// The client certificate chain and key, if set.
        ///
        /// # Errors
        /// As [`check_pair`](Self::check_pair); [`BuildError::Tls`] for an unreadable file, no
        /// certificate, or no usable private key (rustls's message names the section, never the
        /// key's bytes).
        #[allow(clippy::type_complexity)]
        pub fn rustls_identity(
            &self,
        ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, BuildError>
        {
            self.check_pair()?;
            let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) else {
                return Ok(None);
            };
            let chain = certificates(cert, "tls_client_cert")?;
            let bytes = key
                .read()
                .map_err(|r| BuildError::tls("tls_client_key", r))?;
            let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                BuildError::tls(
                    "tls_client_key",
                    format!("{}: no usable private key: {e}", key.describe()),
                )
            })?;
            Ok(Some((chain, key_der)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_never_shown() {
        let pem = Pem::Bytes(b"-----BEGIN PRIVATE KEY-----secret".to_vec());
        assert_eq!(format!("{pem:?}"), "<33 PEM bytes>");
        assert_eq!(pem.read().unwrap(), b"-----BEGIN PRIVATE KEY-----secret");
    }

    #[test]
    fn a_missing_file_is_named() {
        let pem = Pem::File(PathBuf::from("/nonexistent/ca.pem"));
        assert_eq!(pem.describe(), "/nonexistent/ca.pem");
        let err = pem.read().unwrap_err();
        assert!(
            err.starts_with("cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
