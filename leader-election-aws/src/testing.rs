//! For the tests of an AWS backend (feature `testing`): builders, stores, elections and a
//! client of the SDK itself on moto's server ([`S3Emulator`], which serves S3 and DynamoDB on
//! one endpoint), made the same way for every backend; and the record every backend encodes
//! and reads back in its unit tests ([`held_record`], [`assert_held_record`]).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use leader_election::store::LeaseRequest;
use leader_election::store::conditional::LeaseRecord;
use leader_election::{
    BuildError, ElectionBuilder, FencingToken, LeaderElection, LeaderElectionOptions,
};
use leader_election_fixtures::s3::S3Emulator;

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
