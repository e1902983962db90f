//! What backend crates reuse, so that a backend crate holds only what is specific to its store:
//! the one [`BuildError`], the configuration loader ([`BackendConfig`]), the TLS settings ([`tls`]), the environment loader ([`env`](mod@env)), and
//! the checks every backend's names and echoed values go through ([`quoted`],
//! [`check_name`]).
//!
//! A service author does not need this module; a backend author implements
//! [`LeaseStore`](crate::LeaseStore) (see [`store`](crate::store)), and
//! [`ElectionBuilder`](crate::ElectionBuilder) for its builder.

mod config;
pub mod env;
mod error;
pub mod tls;

pub use crate::error::quoted;
pub use config::BackendConfig;
pub use error::BuildError;

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
