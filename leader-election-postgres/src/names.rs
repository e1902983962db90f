//! Names: the table and election names a user gives, the SQL identifiers made from them, and
//! the release channel's name.

use leader_election::BuildError;

/// PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`). Longer names are cut short by
/// the server in SQL text and refused by `pg_notify`.
pub(crate) const MAX_IDENTIFIER: usize = 63;

/// What the release channel's readable name ends with.
const CHANNEL_SUFFIX: &str = "_released";

/// Checks a table name: one or two parts (`schema.table`), each a lower-case SQL identifier of
/// at most 63 bytes.
pub(crate) fn validate_table(name: &str) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("table", name, rule);
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(invalid("at most one dot, between schema and table"));
    }
    for part in parts {
        let mut chars = part.chars();
        match chars.next() {
            Some(c) if c.is_ascii_lowercase() || c == '_' => {}
            _ => return Err(invalid("each part starts with a lower-case letter or `_`")),
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(invalid("only lower-case letters, digits and `_`"));
        }
        if part.len() > MAX_IDENTIFIER {
            return Err(invalid(
                "each part is at most 63 bytes (PostgreSQL's identifier limit)",
            ));
        }
    }
    Ok(())
}

/// Checks an election name: not blank, at most 512 bytes, no control characters (the rules
/// every backend shares).
pub(crate) fn validate_election(name: &str) -> Result<(), BuildError> {
    leader_election::backend::check_name("election", name, 512)
}

/// Double-quotes each part of a (possibly schema-qualified) validated table name.
pub(crate) fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_identifier)
        .collect::<Vec<_>>()
        .join(".")
}

/// Any string as one double-quoted SQL identifier (a role name, say).
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Any string as one single-quoted SQL string literal (`standard_conforming_strings` is on by
/// default since PostgreSQL 9.1, so only the quote needs doubling).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The channel on which releases in `table` are announced.
///
/// `<table>_released`, with the dot of a schema-qualified name as `_`, when that fits in 63
/// bytes. Otherwise its first 46 bytes, `_`, and the
/// 64-bit FNV-1a hash of the table name as given, in 16 hex digits: 63 bytes, the same in every
/// process and version, and different for tables whose readable prefixes agree.
pub(crate) fn release_channel(table: &str) -> String {
    let readable = format!("{}{CHANNEL_SUFFIX}", table.replace('.', "_"));
    if readable.len() <= MAX_IDENTIFIER {
        return readable;
    }
    // Validated names are ASCII, so any byte index is a character boundary.
    let keep = MAX_IDENTIFIER - 17;
    format!("{}_{:016x}", &readable[..keep], fnv1a_64(table.as_bytes()))
}

/// 64-bit FNV-1a: a fixed hash (unlike `DefaultHasher`, which may change between Rust releases),
/// so every process derives the same channel from the same table.
fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        let longest = "x".repeat(63);
        for good in [
            "leases",
            "_x1",
            "app.leases",
            &longest,
            &format!("{longest}.{longest}"),
        ] {
            validate_table(good).unwrap();
        }
        for bad in [
            "",
            "Leases",
            "1x",
            "a.b.c",
            "x-y",
            "x;drop",
            "a.",
            &"x".repeat(64),
            &format!("a.{}", "x".repeat(64)),
        ] {
            assert!(validate_table(bad).is_err(), "{bad:?}");
        }
        assert_eq!(quote_table("app.leases"), "\"app\".\"leases\"");
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn a_huge_table_name_is_not_echoed_whole() {
        let huge = "X".repeat(1_000_000);
        let err = validate_table(&huge).unwrap_err();
        assert!(err.to_string().len() < 300, "{err}");
        assert!(format!("{err:?}").len() < 300);
    }

    #[test]
    fn election_names_are_checked() {
        validate_election("jobs").unwrap();
        for bad in ["", " ", "a\nb"] {
            assert!(validate_election(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn release_channels_always_fit_and_never_change() {
        // A short name is the table's name with `_released`.
        assert_eq!(
            release_channel("leader_election_leases"),
            "leader_election_leases_released"
        );
        assert_eq!(release_channel("app.leases"), "app_leases_released");
        let exactly = "x".repeat(MAX_IDENTIFIER - CHANNEL_SUFFIX.len());
        assert_eq!(release_channel(&exactly), format!("{exactly}_released"));
        // Long names: a readable prefix and a hash of the whole name.
        let longest = format!("s{}.t{}", "x".repeat(62), "y".repeat(62));
        let channel = release_channel(&longest);
        assert_eq!(channel.len(), MAX_IDENTIFIER);
        assert!(
            channel.starts_with(&format!("s{}", "x".repeat(45))),
            "{channel}"
        );
        assert_eq!(
            channel,
            format!("s{}_{:016x}", "x".repeat(45), fnv1a_64(longest.as_bytes()))
        );
        // Pinned, so that a change of rule (which would split a mixed-version deployment into
        // deaf halves) fails here.
        assert_eq!(
            release_channel(&"a".repeat(60)),
            format!("{}_895a07966195c431", "a".repeat(46))
        );
        assert!(channel.ends_with("_2be928e07b94f88a"), "{channel}");
        let other = format!("s{}.t{}z", "x".repeat(62), "y".repeat(61));
        assert_ne!(release_channel(&other), channel);
        for table in [longest.as_str(), other.as_str(), &"q".repeat(63)] {
            assert!(release_channel(table).len() <= MAX_IDENTIFIER, "{table}");
        }
    }
}
