//! Names: the table and election names a user gives, the SQL made from them, and the keys of an
//! election's rows.

use leader_election::BuildError;

/// MySQL's and MariaDB's longest identifier, in characters (bytes, for the ASCII names allowed
/// here).
const MAX_IDENTIFIER: usize = 64;

/// The longest election name, in bytes. The row keys add at most 10 bytes (`\u{1f}candidate`),
/// within the key column's 600.
pub(crate) const MAX_ELECTION: usize = 512;

/// Checks a table name: one or two parts (`database.table`), each of ASCII letters, digits, `_`
/// and `$`, not only digits, at most 64 bytes.
pub(crate) fn validate_table(name: &str) -> Result<(), BuildError> {
    let invalid = |rule: &str| BuildError::invalid_name("table", name, rule);
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(invalid("at most one dot, between database and table"));
    }
    for part in parts {
        if part.is_empty() || part.len() > MAX_IDENTIFIER {
            return Err(invalid("each part is 1 to 64 bytes"));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        {
            return Err(invalid("only ASCII letters, digits, `_` and `$`"));
        }
        if part.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("not only digits"));
        }
    }
    Ok(())
}

/// Checks an election name: not blank, at most 512 bytes, no control characters (the rules
/// every backend shares).
pub(crate) fn validate_election(name: &str) -> Result<(), BuildError> {
    leader_election::backend::check_name("election", name, MAX_ELECTION)
}

/// Backquotes each part of a (possibly database-qualified) validated table name.
pub(crate) fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(|part| format!("`{part}`"))
        .collect::<Vec<_>>()
        .join(".")
}

/// Any bytes as a hexadecimal literal (`X'…'`): a binary string, whatever the connection's
/// character set and SQL mode, with nothing in it to escape.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2 + 3);
    out.push_str("X'");
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out.push('\'');
    out
}

/// Optional bytes as a literal: `NULL` or [`hex`].
pub(crate) fn hex_or_null(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(|| "NULL".to_owned(), hex)
}

/// Any string as one single-quoted SQL string literal for an operator's SQL: backslashes and
/// quotes doubled (right whether or not `NO_BACKSLASH_ESCAPES` is set).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The key of an election's row of `kind`: its name, the unit separator (U+001F) and `kind`.
/// Election names may not hold control characters, so no election's lease row has such a key.
pub(crate) fn row_key(election: &str, kind: &str) -> String {
    format!("{election}\u{1f}{kind}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked() {
        for good in ["leader_election_leases", "ops.leases", "T$1", "a"] {
            assert!(validate_table(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a.b.c",
            "lea ses",
            "x;drop",
            "123",
            &"x".repeat(65),
            "a.",
            "`a`",
        ] {
            assert!(validate_table(bad).is_err(), "{bad}");
        }
        assert_eq!(quote_table("ops.leases"), "`ops`.`leases`");
    }

    #[test]
    fn literals_escape_everything() {
        assert_eq!(hex(b"a'\\"), "X'61275c'");
        assert_eq!(hex(b""), "X''");
        assert_eq!(hex_or_null(None), "NULL");
        assert_eq!(quote_literal("it's a \\"), "'it''s a \\\\'");
        assert_eq!(row_key("e", "guard"), "e\u{1f}guard");
    }
}
