//! What this store learns from the wire: the service's clock (`Date`) from every response,
//! and a count of the requests sent, by method.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The requests a store has sent, by HTTP method (every attempt counts; the store sets the
/// SDK to make one attempt per request). For measuring what an election costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// `HEAD` requests (a follower's poll).
    pub head: u64,
    /// `GET` requests (reading the lease record after it changed; reading the election
    /// record).
    pub get: u64,
    /// `PUT` requests (acquisitions, renewals, releases; writing the election record;
    /// creating a bucket).
    pub put: u64,
    /// Any other method.
    pub other: u64,
}

impl RequestCounts {
    /// All requests.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.head + self.get + self.put + self.other
    }
}

/// Shared between a store and the interceptor installed in its client.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// The latest `Date` received, in whole seconds since the Unix epoch (0: none yet). The
    /// highest one: the service's clock is assumed never to step back.
    latest_date: AtomicU64,
    head: AtomicU64,
    get: AtomicU64,
    put: AtomicU64,
    other: AtomicU64,
}

impl Wire {
    pub(crate) fn latest_date(&self) -> u64 {
        self.latest_date.load(Ordering::Acquire)
    }

    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            head: self.head.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }

    fn saw_date(&self, value: &str) {
        if let Ok(time) = httpdate::parse_http_date(value)
            && let Ok(since_epoch) = time.duration_since(UNIX_EPOCH)
        {
            self.latest_date
                .fetch_max(since_epoch.as_secs(), Ordering::AcqRel);
        }
    }
}

/// The SDK interceptor feeding a [`Wire`].
#[derive(Debug)]
pub(crate) struct WireInterceptor(pub(crate) Arc<Wire>);

impl Intercept for WireInterceptor {
    fn name(&self) -> &'static str {
        "leader-election-s3-wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let counter = match context.request().method() {
            "HEAD" => &self.0.head,
            "GET" => &self.0.get,
            "PUT" => &self.0.put,
            _ => &self.0.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.saw_date(date);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_only_move_forward() {
        let wire = Wire::default();
        wire.saw_date("Tue, 01 Dec 2026 19:37:21 GMT");
        assert_eq!(wire.latest_date(), 1_796_153_841);
        wire.saw_date("Tue, 01 Dec 2026 19:37:20 GMT");
        assert_eq!(wire.latest_date(), 1_796_153_841);
        wire.saw_date("not a date");
        assert_eq!(wire.latest_date(), 1_796_153_841);
    }
}
