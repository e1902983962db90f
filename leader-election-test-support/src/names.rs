//! Names of their own for blob containers and SQL tables, and the workspace's folder.

use std::path::PathBuf;

use leader_election_fixtures::unique_name;

/// A name for an Azure blob container of its own: [`unique_name`], lower-case, `_` as `-`, at
/// most 63 characters.
pub fn unique_container(test: &str) -> String {
    let mut name = unique_name(&format!("le-{test}"))
        .to_lowercase()
        .replace('_', "-");
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    if name.len() > 63 {
        name = name.split_off(name.len() - 63);
        name = name.trim_start_matches('-').to_owned();
    }
    name
}

/// A name for an SQL table or election of its own: [`unique_name`] with `_` for `-`.
pub fn unique_table(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}

/// The workspace's root folder (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate folder has a parent")
        .to_path_buf()
}
