//! What a store learns from the wire: the service's clock (the `Date` of every response), and
//! a count of the requests it sent.

use std::fmt;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use leader_election::store::conditional::ServiceClock;

/// A backend's count of the requests its store sent (by method, by operation): every attempt
/// counts (the store makes one attempt per request).
pub trait Tally: fmt::Debug + Send + Sync + 'static {
    /// Counts `request`, about to be sent.
    fn sent(&self, request: &HttpRequest);
}

/// Shared between a store and the [`WireInterceptor`] installed in its client.
#[derive(Debug, Default)]
pub struct Wire<T> {
    /// The latest `Date` received, in whole seconds: the service's clock, which the engine
    /// mints tokens from.
    pub clock: ServiceClock,
    /// The requests sent.
    pub tally: T,
}

impl<T> Wire<T> {
    /// Notes the `Date` header `value` of a response (an unreadable one is passed over; the
    /// clock never moves back).
    pub fn saw_date(&self, value: &str) {
        if let Ok(time) = httpdate::parse_http_date(value)
            && let Ok(since_epoch) = time.duration_since(UNIX_EPOCH)
        {
            self.clock.saw(since_epoch.as_secs());
        }
    }
}

/// The SDK interceptor feeding a [`Wire`]: it counts every request before it is sent and
/// reads the `Date` of every response.
#[derive(Debug)]
pub struct WireInterceptor<T> {
    name: &'static str,
    wire: Arc<Wire<T>>,
}

impl<T> WireInterceptor<T> {
    /// An interceptor named `name` (in the SDK's logs) feeding `wire`.
    #[must_use]
    pub fn new(name: &'static str, wire: Arc<Wire<T>>) -> Self {
        Self { name, wire }
    }
}

impl<T: Tally> Intercept for WireInterceptor<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.wire.tally.sent(context.request());
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.wire.saw_date(date);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_only_move_forward() {
        let wire = Wire::<()>::default();
        wire.saw_date("Tue, 01 Dec 2026 19:37:21 GMT");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
        wire.saw_date("Tue, 01 Dec 2026 19:37:20 GMT");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
        wire.saw_date("not a date");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
    }
}
