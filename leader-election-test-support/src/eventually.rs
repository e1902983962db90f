//! Bounded polling for tests: [`eventually`] and its async forms, which panic naming what they
//! waited for.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// What [`eventually`] waited for, in its panic message: a `&str`, a `String`, or a
/// [`lazy`] description computed only on failure (to show the state at that moment).
pub trait Describe {
    /// The description.
    fn describe(&self) -> String;
}

impl Describe for &str {
    fn describe(&self) -> String {
        (*self).to_owned()
    }
}

impl Describe for String {
    fn describe(&self) -> String {
        self.clone()
    }
}

/// A description computed when [`eventually`] gives up; see [`lazy`].
#[derive(Debug)]
pub struct Lazy<F>(F);

impl<F: Fn() -> String> Describe for Lazy<F> {
    fn describe(&self) -> String {
        (self.0)()
    }
}

/// A description for [`eventually`] computed only if it gives up.
pub fn lazy<F: Fn() -> String>(describe: F) -> Lazy<F> {
    Lazy(describe)
}

/// Waits until `check` holds, polling every 10 ms; panics naming `what` after `within`.
///
/// # Panics
/// When `check` still does not hold after `within`.
pub async fn eventually(within: Duration, what: impl Describe, mut check: impl FnMut() -> bool) {
    eventually_async(within, what, || std::future::ready(check())).await;
}

/// [`eventually`] with an async check.
///
/// # Panics
/// When `check` still does not hold after `within`.
pub async fn eventually_async<F, Fut>(within: Duration, what: impl Describe, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(within, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await;
}

/// [`eventually`] with an async check that gives a value once it holds: polls every 10 ms
/// until `check` returns `Some`, and returns its value. The one polling loop of the crate.
///
/// # Panics
/// When `check` still gives `None` after `within`.
pub async fn eventually_some<T, F, Fut>(within: Duration, what: impl Describe, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {}",
            what.describe()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Watches `check` hold for the whole of `window`, polling every 10 ms: for a test that observes
/// a span of time (nobody takes over within a lease, a follower never writes), so that it
/// checks throughout the span rather than once at its end.
///
/// # Panics
/// As soon as `check` does not hold, naming `what`.
pub async fn throughout(window: Duration, what: impl Describe, mut check: impl FnMut() -> bool) {
    let until = Instant::now() + window;
    loop {
        assert!(
            check(),
            "{} stopped holding within the {window:?} it must hold",
            what.describe()
        );
        if Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
