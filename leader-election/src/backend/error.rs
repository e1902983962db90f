//! [`BuildError`]: why a backend's builder refused its configuration, the same for every backend.

use crate::error::{ConfigError, quoted};

/// Why a backend's builder ([`ElectionBuilder::build`](crate::ElectionBuilder::build) and
/// [`build_store`](crate::ElectionBuilder::build_store)) refused its configuration: one set of
/// variants for every backend, so that a service switching backends handles the same errors.
///
/// Never contains a secret: URLs and connection strings are shown with their passwords
/// replaced, names and values are quoted and cut by [`quoted`](crate::backend::quoted), and TLS
/// errors never contain a key's bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No way to reach the backend was given.
    #[error("no {backend} connection configured: {hint}")]
    MissingConnection {
        /// The backend: `Redis`, `PostgreSQL`, `etcd`, `Azure Blob`, `S3`.
        backend: &'static str,
        /// What to set.
        hint: &'static str,
    },
    /// More than one way to reach the backend was given.
    #[error("conflicting connection settings: {0}")]
    ConflictingConnection(String),
    /// A connection string cannot be used; the message names the part at fault, never a
    /// secret.
    #[error("invalid connection string: {0}")]
    InvalidConnectionString(String),
    /// A URL or endpoint cannot be used.
    #[error("invalid {field} {url}: {reason}")]
    InvalidUrl {
        /// The setting at fault: `url`, `endpoint`, `endpoints`, `sas_url` ...
        field: &'static str,
        /// The URL with its password redacted (or a placeholder if it could not be parsed),
        /// quoted and cut to its first 64 characters.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A name (key, table, container, blob, bucket ...) breaks its rule.
    #[error("invalid {field} {name}: {rule}")]
    InvalidName {
        /// The setting at fault.
        field: &'static str,
        /// The name as given, quoted and cut to its first 64 characters.
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A setting asks for TLS, but the backend crate was built without its `tls` feature.
    #[error("{setting} needs TLS, but {krate} was built without its `tls` feature")]
    TlsNotEnabled {
        /// The backend crate.
        krate: &'static str,
        /// The setting (or the URL, redacted and quoted) that asks for TLS.
        setting: String,
    },
    /// A TLS setting cannot be used: a CA or client certificate file is unreadable, PEM holds
    /// no certificate or no private key, a client key is set without its certificate (or the
    /// reverse), or TLS settings come with a connection that does not use TLS. Never contains
    /// a key's bytes.
    #[error("invalid TLS setting {setting}: {reason}")]
    Tls {
        /// The setting at fault: `tls_ca`, `tls_client_cert`, `tls_client_key`, or the
        /// connection setting they do not fit.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting breaks its rule: the election options fail
    /// [`LeaderElectionOptions::validate`](crate::LeaderElectionOptions::validate), or a
    /// backend setting is out of its range. The error names the field.
    #[error(transparent)]
    Options(#[from] ConfigError),
    /// The backend's client library refused to create a client.
    #[error("could not create the {backend} client: {reason}")]
    Client {
        /// The backend.
        backend: &'static str,
        /// The client library's message.
        reason: String,
    },
}

impl BuildError {
    /// [`InvalidName`](Self::InvalidName) for `field`, with `name` quoted and cut.
    #[must_use]
    pub fn invalid_name(field: &'static str, name: &str, rule: impl Into<String>) -> Self {
        Self::InvalidName {
            field,
            name: quoted(name),
            rule: rule.into(),
        }
    }

    /// [`Tls`](Self::Tls) for `setting`.
    #[must_use]
    pub fn tls(setting: &'static str, reason: impl Into<String>) -> Self {
        Self::Tls {
            setting,
            reason: reason.into(),
        }
    }

    /// [`Options`](Self::Options): `field` breaks `rule`.
    #[must_use]
    pub fn option(field: &'static str, rule: impl Into<String>) -> Self {
        Self::Options(ConfigError::new(field, rule))
    }
}
