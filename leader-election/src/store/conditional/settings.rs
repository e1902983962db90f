//! What the builders of conditional backends share: the service's connection settings
//! (endpoint, region, static credentials, or a client of the caller's), and the rules of an
//! election key.

use std::fmt;

use super::CANDIDATE_SUFFIX;
use crate::backend::{BuildError, quoted};

/// A conditional backend's connection settings, as its builder collects them: the service's
/// URL, the region requests are signed for, and an access key instead of the SDK's credential
/// chain. The secret never appears in `Debug` output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The service's URL, replacing the SDK's endpoint for the region.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: Option<String>,
    /// An access key id and its secret.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for ServiceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "access_key_id",
                &self.credentials.as_ref().map(|(id, _)| id),
            )
            .field(
                "secret_access_key",
                &self.credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How a store reaches its service: a client built by the caller, or one to build from the
/// SDK's configuration and these settings at the first operation.
#[derive(Debug)]
pub enum Connection<C> {
    /// A client built by the caller.
    Client(C),
    /// A client to build from these settings.
    Settings(ServiceSettings),
}

impl<C> Connection<C> {
    /// The service's endpoint and container, for messages: "`<endpoint>` (`<kind>`
    /// `<name>`)", `service` when no endpoint is set (the SDK's own), or the client given's.
    #[must_use]
    pub fn describe(&self, service: &str, kind: &str, name: &str) -> String {
        let name = quoted(name);
        match self {
            Connection::Settings(ServiceSettings {
                endpoint: Some(endpoint),
                ..
            }) => format!("{endpoint} ({kind} {name})"),
            Connection::Settings(_) => format!("{service} ({kind} {name})"),
            Connection::Client(_) => format!("the endpoint of the client given ({kind} {name})"),
        }
    }

    /// The endpoint set, if any (none for a client given).
    #[must_use]
    pub fn endpoint(&self) -> Option<&str> {
        match self {
            Connection::Settings(settings) => settings.endpoint.as_deref(),
            Connection::Client(_) => None,
        }
    }
}

impl ServiceSettings {
    /// The settings of a backend's configuration (serde, the environment): static credentials
    /// only when both the access key id and its secret are given.
    #[must_use]
    pub fn from_config(
        endpoint: Option<String>,
        region: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
    ) -> Self {
        Self {
            endpoint,
            region,
            credentials: access_key_id.zip(secret_access_key),
        }
    }

    /// Whether any setting is set.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.endpoint.is_some() || self.region.is_some() || self.credentials.is_some()
    }

    /// The connection: `client` when one is given (then no setting may be set, nor
    /// `others_set`, the backend's own settings of the client; `names` lists them all for the
    /// error), else these settings, their endpoint checked.
    ///
    /// # Errors
    /// [`BuildError::InvalidUrl`]: the endpoint is not an `http://` or `https://` URL with a
    /// host and no query; [`BuildError::ConflictingConnection`]: a setting is set together
    /// with `client`.
    pub fn connection<C>(
        self,
        client: Option<C>,
        others_set: bool,
        names: &str,
    ) -> Result<Connection<C>, BuildError> {
        if let Some(endpoint) = &self.endpoint {
            check_endpoint(endpoint)?;
        }
        match client {
            Some(_) if self.is_set() || others_set => Err(BuildError::ConflictingConnection(
                format!("{names} belong to the client given; set them there"),
            )),
            Some(client) => Ok(Connection::Client(client)),
            None => Ok(Connection::Settings(self)),
        }
    }
}

fn check_endpoint(endpoint: &str) -> Result<(), BuildError> {
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains('?') => Ok(()),
        _ => Err(BuildError::InvalidUrl {
            field: "endpoint",
            url: quoted(endpoint),
            reason: "must be an http:// or https:// URL with a host and no query".to_owned(),
        }),
    }
}

/// Checks an election key: 1 to `service_max` bytes less the `.candidate` suffix of the
/// candidate record's sibling object (`service` and `object` name them in the error), without
/// control characters.
///
/// # Errors
/// [`BuildError::InvalidName`] for the field `key`, saying which rule it breaks.
pub fn check_key(
    key: &str,
    service_max: usize,
    service: &str,
    object: &str,
) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("key", key, rule);
    let max = service_max - CANDIDATE_SUFFIX.len();
    if key.is_empty() || key.len() > max {
        return Err(invalid(&format!(
            "must be 1 to {max} bytes long ({service}'s {service_max}, less `.candidate` for \
             the sibling {object})"
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_conflict_with_a_client_and_hide_the_secret() {
        let settings = ServiceSettings {
            credentials: Some(("id".to_owned(), "SECRET".to_owned())),
            ..ServiceSettings::default()
        };
        assert!(!format!("{settings:?}").contains("SECRET"));
        assert!(matches!(
            settings.clone().connection(Some(()), false, "x"),
            Err(BuildError::ConflictingConnection(_))
        ));
        assert!(matches!(
            ServiceSettings::default().connection(Some(()), true, "x"),
            Err(BuildError::ConflictingConnection(_))
        ));
        assert!(matches!(
            ServiceSettings::default().connection(Some(()), false, "x"),
            Ok(Connection::Client(()))
        ));
        let bad = ServiceSettings {
            endpoint: Some("ftp://h".to_owned()),
            ..ServiceSettings::default()
        };
        assert!(matches!(
            bad.connection::<()>(None, false, "x"),
            Err(BuildError::InvalidUrl { .. })
        ));
        assert!(check_key("k", 1024, "S3", "object").is_ok());
        let err = check_key(&"k".repeat(1015), 1024, "S3", "object").unwrap_err();
        assert!(err.to_string().contains("1 to 1014 bytes"), "{err}");
    }
}
