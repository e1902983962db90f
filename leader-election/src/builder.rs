//! The one election builder: [`ElectionBuilder`], whose option setters and `build` every
//! backend's builder gets by implementing two methods, [`TlsBuilder`] for the TLS setters, and
//! [`Builder`] for any store ([`LeaderElection::builder`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::BuildError;
use crate::backend::tls::{Ca, Pem, TlsFiles, TlsSettings};
use crate::election::LeaderElection;
use crate::error::ConfigError;
use crate::options::LeaderElectionOptions;
use crate::store::LeaseStore;

macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!(
                "Sets [`LeaderElectionOptions::", stringify!($field),
                "`](crate::LeaderElectionOptions::", stringify!($field), ")."
            )]
            fn $field(mut self, $field: $ty) -> Self {
                self.election_options().$field = $field;
                self
            }
        )*
    };
}

/// A builder of an election: the election's options with a setter for each, and
/// [`build`](Self::build). Every backend's builder implements it (`RedisLeaderElection::builder()`
/// and the others), as does [`Builder`] for any store; bring it into scope with
/// `use leader_election::prelude::*` (or `use leader_election::ElectionBuilder`).
///
/// Setters never fail; [`build`](Self::build) and [`build_store`](Self::build_store) check
/// everything.
///
/// A backend implements [`election_options`](Self::election_options) (where its builder keeps
/// the options) and [`build_store`](Self::build_store); the setters and `build` come with it.
///
/// ```
/// use std::time::Duration;
/// use leader_election::{ElectionBuilder, LeaderElection, MemoryLeaseStore};
///
/// let election = LeaderElection::builder(MemoryLeaseStore::new())
///     .instance_id("worker-1")
///     .lease_duration(Duration::from_secs(15))
///     .renew_interval(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// assert_eq!(election.options().instance_id, "worker-1");
/// ```
pub trait ElectionBuilder: Sized {
    /// The store the builder makes.
    type Store: LeaseStore;
    /// Why the builder refuses its configuration.
    type Error: From<ConfigError>;

    /// The election options being built.
    fn election_options(&mut self) -> &mut LeaderElectionOptions;

    /// Checks everything like [`build`](Self::build) and returns only the store, for sharing
    /// or wrapping it before [`LeaderElection::new`]; give that the same options, since a
    /// store's timeouts and guard come from them. Makes no connection: the election connects
    /// when started, and retries while the backend is down.
    ///
    /// # Errors
    /// The options fail [`LeaderElectionOptions::validate`], or a backend setting breaks its
    /// rule (each backend lists its own).
    fn build_store(self) -> Result<Self::Store, Self::Error>;

    /// Builds the election: [`build_store`](Self::build_store), then [`LeaderElection::new`]
    /// with the options.
    ///
    /// # Errors
    /// As for [`build_store`](Self::build_store); also metadata the store cannot publish, or a
    /// priority on a store without candidates.
    fn build(mut self) -> Result<LeaderElection<Self::Store>, Self::Error> {
        let options = self.election_options().clone();
        let store = self.build_store()?;
        Ok(LeaderElection::new(store, options)?)
    }

    /// Replaces every election option at once; setters called later change single fields.
    /// Default: [`LeaderElectionOptions::default`].
    fn options(mut self, options: LeaderElectionOptions) -> Self {
        *self.election_options() = options;
        self
    }

    /// Sets [`LeaderElectionOptions::instance_id`]: this contender's identity.
    fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
        self.election_options().instance_id = instance_id.into();
        self
    }

    /// Sets [`LeaderElectionOptions::operation_timeout`], replacing the default derived from
    /// the lease duration.
    fn operation_timeout(mut self, operation_timeout: Duration) -> Self {
        self.election_options().operation_timeout = Some(operation_timeout);
        self
    }

    /// Sets [`LeaderElectionOptions::metadata`]: what this contender publishes with its
    /// leadership (an empty value publishes none).
    fn metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.election_options().metadata = Some(metadata.into());
        self
    }

    /// Sets [`LeaderElectionOptions::priority`]: this contender takes part in
    /// preferred-leader handover with `priority` (higher is preferred; see
    /// [`priority`](crate::priority)).
    fn priority(mut self, priority: u32) -> Self {
        self.election_options().priority = Some(priority);
        self
    }

    /// Sets [`LeaderElectionOptions::min_tenure`]: how long a leader keeps its term before
    /// handing over to a preferred contender.
    fn min_tenure(mut self, min_tenure: Duration) -> Self {
        self.election_options().min_tenure = Some(min_tenure);
        self
    }

    setters!(
        lease_duration: Duration,
        renew_interval: Duration,
        retry_interval: Duration,
        max_retry_interval: Duration,
        retry_backoff_factor: f64,
        retry_jitter: f64,
        max_retry_attempts: u32,
        enable_graceful_shutdown: bool,
        clock_drift_rate: f64,
        deadline_slack: Duration,
        shutdown_timeout: Duration,
    );
}

/// The TLS setters of a backend's builder: the CAs to trust and a client certificate, kept in
/// [`TlsSettings`] and checked when the store is built. A backend whose connections may use
/// TLS implements [`tls_settings`](Self::tls_settings); bring it into scope with
/// `use leader_election::prelude::*`.
pub trait TlsBuilder: Sized {
    /// The TLS settings being built.
    fn tls_settings(&mut self) -> &mut TlsSettings;

    /// Trusts the CA certificate(s) in this PEM text instead of the system's root
    /// certificates. May be called again, and with [`tls_ca_file`](Self::tls_ca_file), to
    /// trust several.
    fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_settings().ca.push(Ca::Pem(Pem::Bytes(pem.into())));
        self
    }

    /// [`tls_ca_pem`](Self::tls_ca_pem) with the PEM read from a file when the store is built.
    fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_settings().ca.push(Ca::Pem(Pem::File(path.into())));
        self
    }

    /// For mutual TLS: presents this client certificate (PEM, the chain's leaf first) with its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1) to a server that asks for one. The key never
    /// appears in `Debug` output or errors. Replaces a certificate set before.
    fn tls_client_cert_pem(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        let tls = self.tls_settings();
        tls.client_cert = Some(Pem::Bytes(cert_pem.into()));
        tls.client_key = Some(Pem::Bytes(key_pem.into()));
        self
    }

    /// [`tls_client_cert_pem`](Self::tls_client_cert_pem)'s certificate, read from a PEM file
    /// when the store is built; set the key with
    /// [`tls_client_key_file`](Self::tls_client_key_file).
    fn tls_client_cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_settings().client_cert = Some(Pem::File(path.into()));
        self
    }

    /// [`tls_client_cert_pem`](Self::tls_client_cert_pem)'s private key, read from a PEM file
    /// when the store is built.
    fn tls_client_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_settings().client_key = Some(Pem::File(path.into()));
        self
    }

    /// Adds a configuration's TLS files: its CA file to the CAs trusted, and its client
    /// certificate and key files in place of any set before.
    fn tls_files(mut self, files: TlsFiles) -> Self {
        self.tls_settings().merge(files.into());
        self
    }
}

/// An [`ElectionBuilder`] for a store made by the caller: [`LeaderElection::builder`].
#[derive(Debug)]
#[must_use]
pub struct Builder<S> {
    store: S,
    options: LeaderElectionOptions,
}

impl<S: LeaseStore> Builder<S> {
    /// A builder for an election on `store`, with default options.
    pub fn new(store: S) -> Self {
        Self {
            store,
            options: LeaderElectionOptions::default(),
        }
    }
}

impl<S: LeaseStore> ElectionBuilder for Builder<S> {
    type Store = S;
    type Error = BuildError;

    fn election_options(&mut self) -> &mut LeaderElectionOptions {
        &mut self.options
    }

    /// Checks the options and returns the store.
    ///
    /// # Errors
    /// [`BuildError::Options`] when the options fail [`LeaderElectionOptions::validate`].
    fn build_store(self) -> Result<S, BuildError> {
        self.options.validate()?;
        Ok(self.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryLeaseStore;

    #[test]
    fn every_option_has_a_setter() {
        let election = LeaderElection::builder(MemoryLeaseStore::new())
            .instance_id("node-1")
            .lease_duration(Duration::from_secs(10))
            .renew_interval(Duration::from_secs(3))
            .retry_interval(Duration::from_secs(1))
            .max_retry_interval(Duration::from_secs(8))
            .retry_backoff_factor(1.5)
            .retry_jitter(0.2)
            .max_retry_attempts(4)
            .enable_graceful_shutdown(false)
            .operation_timeout(Duration::from_millis(500))
            .clock_drift_rate(0.02)
            .deadline_slack(Duration::from_millis(50))
            .shutdown_timeout(Duration::from_secs(1))
            .metadata("10.0.0.1:80")
            .priority(3)
            .min_tenure(Duration::from_secs(20))
            .build()
            .expect("valid");
        let o = election.options();
        let expected = LeaderElectionOptions {
            instance_id: "node-1".into(),
            lease_duration: Duration::from_secs(10),
            renew_interval: Duration::from_secs(3),
            retry_interval: Duration::from_secs(1),
            max_retry_interval: Duration::from_secs(8),
            retry_backoff_factor: 1.5,
            retry_jitter: 0.2,
            max_retry_attempts: 4,
            enable_graceful_shutdown: false,
            operation_timeout: Some(Duration::from_millis(500)),
            clock_drift_rate: 0.02,
            deadline_slack: Duration::from_millis(50),
            shutdown_timeout: Duration::from_secs(1),
            metadata: Some(b"10.0.0.1:80".to_vec()),
            priority: Some(3),
            min_tenure: Some(Duration::from_secs(20)),
        };
        assert_eq!(o, &expected);
    }

    #[test]
    fn build_checks_the_options() {
        let err = LeaderElection::builder(MemoryLeaseStore::new())
            .renew_interval(Duration::from_secs(60))
            .build()
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::Options(e) if e.field == "renew_interval"),
            "{err}"
        );
    }

    #[derive(Default)]
    struct Tls(TlsSettings);

    impl TlsBuilder for Tls {
        fn tls_settings(&mut self) -> &mut TlsSettings {
            &mut self.0
        }
    }

    #[test]
    fn tls_setters_fill_the_settings_and_never_show_a_key() {
        let tls = Tls::default()
            .tls_ca_pem("ca")
            .tls_ca_file("/ca2.pem")
            .tls_client_cert_pem("cert", "-----BEGIN PRIVATE KEY-----secret")
            .0;
        assert_eq!(tls.ca.len(), 2);
        assert_eq!(tls.identity_pems().unwrap().unwrap().0, b"cert");
        let debug = format!("{tls:?}");
        assert!(!debug.contains("secret"), "{debug}");
        let half = Tls::default().tls_client_key_file("/k.pem").0;
        assert!(matches!(
            half.check_pair(),
            Err(BuildError::Tls {
                setting: "tls_client_key",
                ..
            })
        ));
        let half = Tls::default().tls_client_cert_file("/c.pem").0;
        assert!(matches!(
            half.check_pair(),
            Err(BuildError::Tls {
                setting: "tls_client_cert",
                ..
            })
        ));
    }
}
