//! [`Secret`]: a configuration's text that may hold a password.

use std::fmt;

use super::redact_url;

/// Text of a configuration that may hold a secret: a connection string, a URL with a
/// password, a key. `Debug` never shows it: a URL (text starting with `scheme://`) is shown with its password
/// and secret parameters replaced by `***` ([`redact_url`]), anything else as `(redacted)`.
/// Deserializes from a string.
///
/// ```
/// use leader_election::backend::Secret;
///
/// let url = Secret::from("redis://app:hunter2@cache:6379");
/// assert_eq!(format!("{url:?}"), r#""redis://app:***@cache:6379""#);
/// assert_eq!(format!("{:?}", Secret::from("host=db password=hunter2")), "(redacted)");
/// assert_eq!(url.expose(), "redis://app:hunter2@cache:6379");
/// ```
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The text itself, secret included.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The text itself, secret included.
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if super::url_scheme_end(&self.0).is_some() {
            fmt::Debug::fmt(&redact_url(&self.0), f)
        } else {
            f.write_str("(redacted)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_holding_a_url_after_a_secret_is_not_shown() {
        // An Azure connection string: the account key comes before the endpoint's `://`.
        let secret = Secret::from(
            "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=hunter2;\
             BlobEndpoint=http://127.0.0.1:10000/a;",
        );
        assert_eq!(format!("{secret:?}"), "(redacted)");
        let secret = Secret::from("host=db password=hunter2 sslrootcert=file://ca.pem");
        assert_eq!(format!("{secret:?}"), "(redacted)");
        assert_eq!(redact_url("password=hunter2 http://h"), "<not a URL>");
        assert_eq!(redact_url("://hunter2@h"), "<not a URL>");
    }
}
