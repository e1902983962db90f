#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod boxed;
mod election;
pub mod env;
mod error;
mod event;
pub mod layer;
mod memory;
pub mod metrics;
mod observer;
mod options;
pub mod pem;
pub mod priority;
mod runner;
mod state;
mod store;
mod token;
mod transition;

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use boxed::BoxLeaseStore;
pub use election::{Health, LeaderElection, TaskOutcome};
pub use error::{BoxError, ConfigError, Error, Operation, Result, SharedError, quoted};
pub use event::{ChangeReason, ElectionEvent};
pub use memory::MemoryLeaseStore;
pub use observer::LeaderObserver;
pub use options::{
    ENV_PREFIX, FieldSetter, LeaderElectionOptions, MAX_DURATION, MAX_INSTANCE_ID_LEN,
    MIN_DEADLINE_MARGIN, MIN_RETRY_INTERVAL, default_instance_id,
};
pub use priority::Candidate;
pub use state::{ElectionState, Leadership, Role};
pub use store::{
    AcquireOutcome, LeaderInfo, Lease, LeaseRequest, LeaseStore, ReleaseNotifier, ReleaseReceiver,
    RenewOutcome, WithholdReason, check_metadata_len, new_lease_id,
};
pub use token::FencingToken;

/// Implements, on a backend's builder whose options live in a field `options:
/// LeaderElectionOptions`, `options(LeaderElectionOptions)` and one chainable setter per option:
/// `instance_id(impl Into<String>)`, `metadata(impl Into<Vec<u8>>)`, `lease_duration(Duration)`,
/// `renew_interval(Duration)`, and so on for every field. For use
/// inside the builder's `impl` block:
///
/// ```
/// use leader_election::LeaderElectionOptions;
///
/// /// A builder of some backend.
/// #[derive(Default)]
/// pub struct MyBuilder {
///     options: LeaderElectionOptions,
/// }
///
/// impl MyBuilder {
///     leader_election::option_setters!();
/// }
///
/// let builder = MyBuilder::default()
///     .instance_id("worker-1")
///     .lease_duration(std::time::Duration::from_secs(15));
/// assert_eq!(builder.options.instance_id, "worker-1");
/// ```
#[macro_export]
macro_rules! option_setters {
    () => {
        /// Replaces every election option at once; setters called later change single fields.
        /// Default: [`LeaderElectionOptions::default`](leader_election::LeaderElectionOptions::default).
        pub fn options(mut self, options: $crate::LeaderElectionOptions) -> Self {
            self.options = options;
            self
        }

        /// Sets [`LeaderElectionOptions::instance_id`](leader_election::LeaderElectionOptions::instance_id):
        /// this contender's identity.
        pub fn instance_id(mut self, instance_id: impl Into<String>) -> Self {
            self.options.instance_id = instance_id.into();
            self
        }

        /// Sets [`LeaderElectionOptions::operation_timeout`](leader_election::LeaderElectionOptions::operation_timeout),
        /// replacing the default derived from the lease duration.
        pub fn operation_timeout(mut self, operation_timeout: ::std::time::Duration) -> Self {
            self.options.operation_timeout = ::std::option::Option::Some(operation_timeout);
            self
        }

        /// Sets [`LeaderElectionOptions::metadata`](leader_election::LeaderElectionOptions::metadata):
        /// what this contender publishes with its leadership (an empty value publishes none).
        pub fn metadata(mut self, metadata: impl ::std::convert::Into<::std::vec::Vec<u8>>) -> Self {
            self.options.metadata = ::std::option::Option::Some(metadata.into());
            self
        }

        /// Sets [`LeaderElectionOptions::priority`](leader_election::LeaderElectionOptions::priority):
        /// this contender takes part in preferred-leader handover with `priority` (higher is
        /// preferred; see [`leader_election::priority`]).
        pub fn priority(mut self, priority: u32) -> Self {
            self.options.priority = ::std::option::Option::Some(priority);
            self
        }

        /// Sets [`LeaderElectionOptions::min_tenure`](leader_election::LeaderElectionOptions::min_tenure):
        /// how long a leader keeps its term before handing over to a preferred contender.
        pub fn min_tenure(mut self, min_tenure: ::std::time::Duration) -> Self {
            self.options.min_tenure = ::std::option::Option::Some(min_tenure);
            self
        }
        $crate::option_setters!(@each
            lease_duration: ::std::time::Duration,
            renew_interval: ::std::time::Duration,
            retry_interval: ::std::time::Duration,
            max_retry_interval: ::std::time::Duration,
            retry_backoff_factor: f64,
            retry_jitter: f64,
            max_retry_attempts: u32,
            enable_graceful_shutdown: bool,
            clock_drift_rate: f64,
            deadline_slack: ::std::time::Duration,
            shutdown_timeout: ::std::time::Duration,
        );
    };
    (@each $($field:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!(
                "Sets [`LeaderElectionOptions::", stringify!($field),
                "`](leader_election::LeaderElectionOptions::", stringify!($field), ")."
            )]
            pub fn $field(mut self, $field: $ty) -> Self {
                self.options.$field = $field;
                self
            }
        )*
    };
}
