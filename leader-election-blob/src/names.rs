//! Azure's naming rules for the container and the blob.

use leader_election::BuildError;

fn invalid(field: &'static str, name: &str, rule: &str) -> Result<(), BuildError> {
    Err(BuildError::invalid_name(field, name, rule))
}

/// Azure's container naming rules.
pub(crate) fn check_container_name(name: &str) -> Result<(), BuildError> {
    let fail = |rule| invalid("container_name", name, rule);
    if !(3..=63).contains(&name.len()) {
        return fail("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("may contain only lower-case letters, digits and hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return fail("must start and end with a letter or a digit");
    }
    if name.contains("--") {
        return fail("must not contain consecutive hyphens");
    }
    Ok(())
}

/// Azure's blob naming rules, plus what would not survive a URL path cleanly.
pub(crate) fn check_blob_name(name: &str) -> Result<(), BuildError> {
    let fail = |rule| invalid("blob_name", name, rule);
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.chars().count() > 1024 {
        return fail("must be at most 1024 characters long");
    }
    if name.chars().any(char::is_control) || name.contains('\\') {
        return fail("must not contain control characters or backslashes");
    }
    if name.ends_with('.') || name.ends_with('/') {
        return fail("must not end with a dot or a slash");
    }
    if name.split('/').count() > 254 {
        return fail("must have at most 254 path segments");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_setting_and_cut_a_huge_name() {
        let huge = "a".repeat(2000);
        let err = check_blob_name(&huge).unwrap_err();
        assert!(
            matches!(&err, BuildError::InvalidName { field: "blob_name", name, .. } if name.len() < 100),
            "{err}"
        );
        let err = check_container_name("UPPER").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid container_name \"UPPER\": may contain only lower-case letters, digits and hyphens"
        );
    }
}
