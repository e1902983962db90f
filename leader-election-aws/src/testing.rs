//! For the tests of an AWS backend (feature `testing`): builders, stores, elections and a
//! client of the SDK itself on moto's server ([`S3Emulator`], which serves S3 and DynamoDB on
//! one endpoint), made the same way for every backend; the checks every backend's builder
//! and configuration pass ([`check_builder`], [`check_config_secret`]); and the record
//! every backend encodes and reads back in its unit tests ([`held_record`], [`assert_held_record`]).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use leader_election::store::LeaseRequest;
use leader_election::store::conditional::{
    CANDIDATE_SUFFIX, ConditionalObjects, ConditionalStore, LeaseRecord,
};
use leader_election::{
    BackendConfig, BuildError, ElectionBuilder, FencingToken, LeaderElection, LeaderElectionOptions,
};
use leader_election_fixtures::s3::S3Emulator;

use crate::{DEFAULT_KEY, Target};

/// The store a backend's builder makes.
pub type StoreOf<B> = <<B as MotoBackend>::Builder as ElectionBuilder>::Store;

/// An AWS backend, as its tests use it on moto's server.
pub trait MotoBackend: Send + Sync + 'static {
    /// The backend's builder.
    type Builder: ElectionBuilder<Error = BuildError>;
    /// Its SDK's client, for operator actions.
    type Client;

    /// A builder of contender `instance_id` of the election `key` on the service at
    /// `endpoint`, with the tests' short timings and credentials.
    fn builder_at(endpoint: &str, key: &str, instance_id: &str) -> Self::Builder;

    /// The client of `store` (the client of the SDK itself, built from the store's settings).
    fn client(store: StoreOf<Self>) -> impl Future<Output = Self::Client> + Send;

    /// Makes the emulator ready for timed checks after it started or restarted (moto loads a
    /// service at its first request). Default: nothing.
    fn warm_up(emulator: &S3Emulator) -> impl Future<Output = ()> + Send {
        let _ = emulator;
        async {}
    }
}

/// The short timings of the AWS backends' tests, for contender `instance_id`: a 4 s lease
/// renewed every second, followers polling every 250 ms (backing off to a second), 2 s per
/// operation.
#[must_use]
pub fn options(instance_id: &str) -> LeaderElectionOptions {
    let mut options = LeaderElectionOptions::default();
    options.instance_id = instance_id.to_owned();
    options.lease_duration = Duration::from_secs(4);
    options.renew_interval = Duration::from_secs(1);
    options.retry_interval = Duration::from_millis(250);
    options.max_retry_interval = Duration::from_secs(1);
    options.operation_timeout = Some(Duration::from_secs(2));
    options
}

/// moto's server as the tests of backend `B` use it: what [`S3Emulator`] has (it dereferences
/// to it), and builders, elections and stores of `B` on it.
pub struct Moto<'a, B> {
    emulator: &'a S3Emulator,
    backend: PhantomData<fn() -> B>,
}

impl<B> Clone for Moto<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B> Copy for Moto<'_, B> {}

impl<B> fmt::Debug for Moto<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Moto")
            .field(&self.emulator.endpoint())
            .finish()
    }
}

impl<B> Deref for Moto<'_, B> {
    type Target = S3Emulator;

    fn deref(&self) -> &S3Emulator {
        self.emulator
    }
}

impl<'a, B: MotoBackend> Moto<'a, B> {
    /// `emulator`, for backend `B`.
    #[must_use]
    pub fn new(emulator: &'a S3Emulator) -> Self {
        Self {
            emulator,
            backend: PhantomData,
        }
    }

    /// [`MotoBackend::builder_at`] this emulator.
    pub fn builder(&self, key: &str, instance_id: &str) -> B::Builder {
        B::builder_at(&self.emulator.endpoint(), key, instance_id)
    }

    /// [`builder`](Self::builder), but reaching the emulator through a proxy listening on
    /// `port` of 127.0.0.1.
    pub fn builder_via(&self, port: u16, key: &str, instance_id: &str) -> B::Builder {
        B::builder_at(&format!("http://127.0.0.1:{port}"), key, instance_id)
    }

    /// An election built by [`builder`](Self::builder).
    ///
    /// # Panics
    /// When the builder refuses its settings.
    pub fn election(&self, key: &str, instance_id: &str) -> LeaderElection<StoreOf<B>> {
        self.builder(key, instance_id)
            .build()
            .expect("build the election")
    }

    /// A store built by [`builder`](Self::builder).
    ///
    /// # Panics
    /// When the builder refuses its settings.
    pub fn store(&self, key: &str) -> StoreOf<B> {
        self.builder(key, "store")
            .build_store()
            .expect("build the store")
    }

    /// A client of the SDK itself, for operator actions on the lease objects or items
    /// (delete, overwrite) and for probing the emulator.
    pub fn operator(&self) -> impl Future<Output = B::Client> + Send + use<'a, B> {
        B::client(self.store("operator"))
    }
}

// === Builders ===

/// Checks what every AWS backend's builder does, on `local`: a builder of the backend of
/// `target` with its container set, an endpoint, and the static credentials `test` and
/// `SECRETKEY`; `key` and `endpoint` are its setters of those names, and `client` its setter
/// of a client given (with a client of the caller's).
///
/// - It builds, with the key [`DEFAULT_KEY`] and the default options.
/// - A key is 1 to [`max_key`](Target::max_key) bytes, less `.candidate`, without control
///   characters; anything else is [`BuildError::InvalidName`] for the field `key`.
/// - An endpoint is an `http://` or `https://` URL with a host and no query; anything else is
///   [`BuildError::InvalidUrl`] for the field `endpoint`.
/// - A client given goes alone: with an endpoint or credentials it is
///   [`BuildError::ConflictingConnection`], naming [`client_settings`](Target::client_settings).
/// - The election options are validated ([`BuildError::Options`]).
/// - The secret shows in the `Debug` of neither the builder, the election nor its store.
///
/// # Panics
/// When one of them does not hold.
pub fn check_builder<B, O>(
    target: &Target,
    local: impl Fn() -> B,
    key: impl Fn(B, String) -> B,
    endpoint: impl Fn(B, &str) -> B,
    client: impl Fn(B) -> B,
) where
    B: ElectionBuilder<Store = ConditionalStore<O>, Error = BuildError> + fmt::Debug,
    O: ConditionalObjects,
    ConditionalStore<O>: fmt::Debug,
{
    let store = local().build_store().expect("the defaults build");
    assert_eq!(store.key(), DEFAULT_KEY);
    let election = local()
        .instance_id("me")
        .build()
        .expect("the defaults build");
    assert_eq!(election.instance_id(), "me");
    assert_eq!(election.options().lease_duration, Duration::from_secs(30));

    let longest = target.max_key - CANDIDATE_SUFFIX.len();
    for bad in [
        String::new(),
        "ctl\u{1}".to_owned(),
        "k".repeat(longest + 1),
    ] {
        let err = key(local(), bad.clone()).build_store().unwrap_err();
        assert!(
            matches!(err, BuildError::InvalidName { field: "key", .. }),
            "{bad:?}: {err}"
        );
    }
    for good in ["elections/orders lock".to_owned(), "k".repeat(longest)] {
        key(local(), good).build_store().expect("a good key");
    }

    for bad in ["127.0.0.1:8000", "ftp://host", "http://", "https://h/?x=1"] {
        let err = endpoint(local(), bad).build_store().unwrap_err();
        assert!(
            matches!(
                err,
                BuildError::InvalidUrl {
                    field: "endpoint",
                    ..
                }
            ),
            "{bad}: {err}"
        );
    }

    let err = client(local()).build_store().unwrap_err();
    assert!(
        matches!(err, BuildError::ConflictingConnection(ref message)
            if message.contains(target.client_settings)),
        "{err}"
    );

    let err = local()
        .renew_interval(Duration::from_secs(40))
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::Options(ref e) if e.field == "renew_interval"),
        "{err}"
    );

    let builder = local();
    assert!(!format!("{builder:?}").contains("SECRETKEY"));
    let election = builder.build().expect("the defaults build");
    assert!(!format!("{election:?}").contains("SECRETKEY"));
    assert!(!format!("{:?}", election.store()).contains("SECRETKEY"));
}

/// Checks that the secret access key of a backend's configuration `C` shows in the `Debug` of
/// neither the configuration, its builder nor its store: `C` loaded with its container (the
/// field named `container`), an access key id and the secret `TOPSECRET`.
///
/// # Panics
/// When the configuration does not load or build, or the secret shows.
pub fn check_config_secret<C>(container: &str)
where
    C: BackendConfig + fmt::Debug,
    C::Builder: fmt::Debug,
    <C::Builder as ElectionBuilder>::Store: fmt::Debug,
{
    let var = |field: &str| format!("LEADER_ELECTION_{}_{field}", C::SECTION);
    let config = C::from_vars([
        (var(container), "b-1".to_owned()),
        (var("ACCESS_KEY_ID"), "id".to_owned()),
        (var("SECRET_ACCESS_KEY"), "TOPSECRET".to_owned()),
    ])
    .expect("the configuration loads");
    assert!(!format!("{config:?}").contains("TOPSECRET"));
    let builder = config.into_builder();
    assert!(!format!("{builder:?}").contains("TOPSECRET"));
    let Ok(store) = builder.build_store() else {
        panic!("the configuration builds");
    };
    assert!(!format!("{store:?}").contains("TOPSECRET"));
}

// === Records ===

/// A record held by contender `a` with token 7, a lease of 5 s and metadata that needs
/// escaping in most formats (a zero byte, a 255 and a quote), and the request it holds: what a
/// backend encodes and reads back in its record tests ([`assert_held_record`]).
#[must_use]
pub fn held_record() -> (LeaseRequest, LeaseRecord) {
    let request =
        LeaseRequest::new("a", Duration::from_secs(5)).with_metadata(Some(vec![0, 255, b'"']));
    let record = LeaseRecord::held(&request, FencingToken::new(7));
    (request, record)
}

/// Checks that `read`, the `record` of [`held_record`] encoded by a backend and read back,
/// is that record: owned by its `request` and not by another request of the same contender (a
/// lease id of its own), naming its holder, token and metadata, with its lease.
///
/// # Panics
/// When it is not.
pub fn assert_held_record(read: &LeaseRecord, request: &LeaseRequest, record: &LeaseRecord) {
    assert_eq!(read, record);
    assert!(read.is_owned_by(request));
    assert!(!read.is_owned_by(&LeaseRequest::new("a", Duration::from_secs(5))));
    let leader = read.leader().expect("a holder");
    assert_eq!(leader.instance_id, "a");
    assert_eq!(leader.token, Some(FencingToken::new(7)));
    assert_eq!(leader.metadata, Some(vec![0, 255, b'"']));
    assert_eq!(read.lease(), Duration::from_secs(5));
}
