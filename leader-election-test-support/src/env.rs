//! Environment variables for the tests of a configuration's `from_vars`.

/// `(name, value)` pairs as a configuration's `from_vars` takes them.
///
/// ```
/// let vars = leader_election_test_support::vars(&[("LEADER_ELECTION_REDIS_KEY", "jobs")]);
/// assert_eq!(vars, [("LEADER_ELECTION_REDIS_KEY".to_owned(), "jobs".to_owned())]);
/// ```
#[must_use]
pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}
