//! The name helpers.

use leader_election_test_support::{free_port, unique_container, unique_name, unique_table};

#[test]
fn names_are_unique_and_valid() {
    assert_ne!(unique_name("a"), unique_name("a"));
    let container = unique_container("Some_Test__name");
    assert!(
        container.len() <= 63 && !container.contains("--"),
        "{container}"
    );
    assert!(
        container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    assert!(!unique_table("t").contains('-'));
    assert_ne!(free_port(), 0);
}
