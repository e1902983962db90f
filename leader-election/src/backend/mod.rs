//! What backend crates reuse, so that a backend crate holds only what is specific to its store:
//! the one [`BuildError`], the configuration loader ([`BackendConfig`]) and the types a
//! configuration holds ([`Secret`], [`tls::TlsFiles`]), the TLS settings ([`tls`]), the
//! environment loader ([`env`](mod@env)), and
//! the checks every backend's names and echoed values go through ([`quoted`],
//! [`check_name`]), and the macros that write a backend's builder and configuration wiring
//! ([`config_setters!`], [`election_builder!`], [`backend_config!`], [`builder_with_tls!`]).
//!
//! A service author does not need this module; a backend author implements
//! [`LeaseStore`](crate::LeaseStore) (see [`store`](crate::store)), and
//! [`ElectionBuilder`](crate::ElectionBuilder) for its builder.

mod config;
pub mod env;
mod error;
mod secret;
mod setters;
pub mod tls;

#[doc(inline)]
pub use crate::__backend_config as backend_config;
#[doc(inline)]
pub use crate::__builder_with_tls as builder_with_tls;
#[doc(inline)]
pub use crate::__config_setters as config_setters;
#[doc(inline)]
pub use crate::__election_builder as election_builder;
pub use crate::error::quoted;
pub use config::BackendConfig;
pub use error::BuildError;
pub use secret::Secret;

/// Checks a backend's name setting (a key, a table, a blob name) against the rules every
/// backend shares: not empty or blank, at most `max_len` bytes, no control characters. The
/// backend adds its own rules after it.
///
/// # Errors
/// [`BuildError::InvalidName`] for `field`, quoting the name with [`quoted`] (a huge name is
/// never repeated whole) and saying the rule it breaks.
///
/// ```
/// use leader_election::backend::check_name;
///
/// check_name("key", "jobs", 512).unwrap();
/// assert!(check_name("key", " ", 512).is_err());
/// assert!(check_name("key", &"k".repeat(513), 512).unwrap_err().to_string().contains("513 bytes"));
/// ```
pub fn check_name(field: &'static str, name: &str, max_len: usize) -> Result<(), BuildError> {
    let rule = if name.trim().is_empty() {
        "must not be empty".to_owned()
    } else if name.len() > max_len {
        format!("must be at most {max_len} bytes, got {} bytes", name.len())
    } else if name.chars().any(char::is_control) {
        "must not contain control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(BuildError::invalid_name(field, name, rule))
}

/// Where the scheme of `text` ends when it is a URL: when it starts with a scheme (a letter,
/// then letters, digits, `+`, `-` or `.`) followed by `://`. Text holding `://` further on (a
/// connection string naming an endpoint after its key) is not a URL.
pub(crate) fn url_scheme_end(text: &str) -> Option<usize> {
    let end = text.find("://")?;
    let scheme = &text[..end];
    let mut chars = scheme.chars();
    let starts = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (starts && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(end)
}

/// `url` fit for an error message or a log: the password of its user info and the value of any
/// query parameter whose name holds `password`, `secret`, `token`, `key` or `signature`, or is
/// `sig` (a shared access signature), replaced by `***`. Text that does not start with
/// `scheme://` is not shown at all, since it may still hold a secret.
///
/// ```
/// use leader_election::backend::redact_url;
///
/// assert_eq!(redact_url("mysql://app:hunter2@db:3306/app"), "mysql://app:***@db:3306/app");
/// assert_eq!(redact_url("redis://h?password=x&db=1"), "redis://h?password=***&db=1");
/// assert_eq!(redact_url("https://a.blob/c?sv=1&sig=abc"), "https://a.blob/c?sv=1&sig=***");
/// assert_eq!(redact_url("hunter2"), "<not a URL>");
/// ```
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url_scheme_end(url) else {
        return "<not a URL>".to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let (query, fragment) = query
                .split_once('#')
                .map_or((query, None), |(q, f)| (q, Some(f)));
            let secret = |name: &str| {
                let name = name.to_ascii_lowercase();
                name == "sig"
                    || ["password", "secret", "token", "key", "signature"]
                        .iter()
                        .any(|word| name.contains(word))
            };
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if secret(name) => format!("{name}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
            format!("{path}?{}{fragment}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{}://{authority}{tail}", &url[..scheme_end])
}
