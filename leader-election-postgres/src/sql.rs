//! The statements, with the table name filled in, and the SQL an operator runs to set up the
//! table when the application's role may not.

use crate::names::{quote_identifier, quote_table, release_channel};

/// The statements for one table.
pub(crate) struct Sql {
    /// The table, quoted for SQL.
    pub(crate) table: String,
    /// Whether the table exists, the role's name, and the privileges on the table it lacks.
    pub(crate) check: String,
    pub(crate) create: String,
    pub(crate) acquire: String,
    pub(crate) renew: String,
    pub(crate) release: String,
    pub(crate) current: String,
    pub(crate) channel: String,
}

impl Sql {
    pub(crate) fn new(table: &str) -> Self {
        let t = quote_table(table);
        Self {
            // `to_regclass` finds the table as the statements below will (through `search_path`
            // when unqualified) without needing any privilege on it, and is NULL when missing.
            check: "SELECT c IS NOT NULL, current_user::text, concat_ws(', ', \
                      CASE WHEN NOT has_table_privilege(c::oid, 'SELECT') THEN 'SELECT' END, \
                      CASE WHEN NOT has_table_privilege(c::oid, 'INSERT') THEN 'INSERT' END, \
                      CASE WHEN NOT has_table_privilege(c::oid, 'UPDATE') THEN 'UPDATE' END) \
                    FROM (SELECT to_regclass($1::text) AS c) s"
                .to_owned(),
            create: create_table(&t),
            // One statement: take the row if it is free, expired or already ours; otherwise
            // report who holds it and for how long. Ttls are in microseconds, rounded up, so a
            // lease never lasts less on the server than the caller asked for.
            acquire: format!(
                "WITH now AS (SELECT clock_timestamp() AS ts), \
                 up AS ( \
                   INSERT INTO {t} AS l (election, holder, lease_id, token, expires_at) \
                   SELECT $1, $2, $3, (extract(epoch FROM now.ts) * 1000000)::bigint, \
                          now.ts + $4::bigint * interval '1 microsecond' FROM now \
                   ON CONFLICT (election) DO UPDATE SET \
                     holder = EXCLUDED.holder, \
                     lease_id = EXCLUDED.lease_id, \
                     token = CASE WHEN l.holder = EXCLUDED.holder AND l.lease_id = EXCLUDED.lease_id \
                                  THEN l.token ELSE greatest(l.token + 1, EXCLUDED.token) END, \
                     expires_at = EXCLUDED.expires_at \
                   WHERE l.holder IS NULL OR l.expires_at IS NULL \
                      OR l.expires_at <= clock_timestamp() \
                      OR (l.holder = EXCLUDED.holder AND l.lease_id = EXCLUDED.lease_id) \
                   RETURNING l.token) \
                 SELECT true, token, NULL::text, NULL::bigint FROM up \
                 UNION ALL \
                 SELECT false, l.token, l.holder, \
                        greatest((extract(epoch FROM (l.expires_at - clock_timestamp())) * 1000000)::bigint, 0) \
                 FROM {t} l WHERE l.election = $1 AND NOT EXISTS (SELECT 1 FROM up)"
            ),
            renew: format!(
                "UPDATE {t} SET expires_at = clock_timestamp() + $5::bigint * interval '1 microsecond' \
                 WHERE election = $1 AND holder = $2 AND lease_id = $3 AND token = $4 \
                   AND expires_at > clock_timestamp()"
            ),
            release: format!(
                "WITH r AS ( \
                   UPDATE {t} SET holder = NULL, lease_id = NULL, expires_at = NULL \
                   WHERE election = $1 AND holder = $2 AND lease_id = $3 AND token = $4 \
                   RETURNING election) \
                 SELECT pg_notify($5, election) FROM r"
            ),
            current: format!(
                "SELECT holder, token FROM {t} \
                 WHERE election = $1 AND holder IS NOT NULL AND expires_at > clock_timestamp()"
            ),
            channel: release_channel(table),
            table: t,
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the lease table `quoted`.
fn create_table(quoted: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {quoted} (\n    \
             election text PRIMARY KEY,\n    \
             holder text,\n    \
             lease_id text,\n    \
             token bigint NOT NULL,\n    \
             expires_at timestamptz\n\
         )"
    )
}

/// What an owner runs once so that `role` can take part in elections in `table`: create the
/// table, and grant exactly what the statements need (`DELETE` is never used).
pub(crate) fn setup(table: &str, role: &str) -> String {
    let quoted = quote_table(table);
    let role = quote_identifier(role);
    let mut sql = format!("{};\n", create_table(&quoted));
    if let Some((schema, _)) = table.split_once('.') {
        sql.push_str(&format!(
            "GRANT USAGE ON SCHEMA {} TO {role};\n",
            quote_identifier(schema)
        ));
    }
    sql.push_str(&format!(
        "GRANT SELECT, INSERT, UPDATE ON {quoted} TO {role};\n"
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_sql_creates_and_grants() {
        assert_eq!(
            setup("leader_election_leases", "app"),
            "CREATE TABLE IF NOT EXISTS \"leader_election_leases\" (\n    \
                 election text PRIMARY KEY,\n    \
                 holder text,\n    \
                 lease_id text,\n    \
                 token bigint NOT NULL,\n    \
                 expires_at timestamptz\n\
             );\n\
             GRANT SELECT, INSERT, UPDATE ON \"leader_election_leases\" TO \"app\";\n"
        );
        let qualified = setup("ops.leases", "we\"ird");
        assert!(
            qualified.contains("GRANT USAGE ON SCHEMA \"ops\" TO \"we\"\"ird\";"),
            "{qualified}"
        );
        assert!(
            qualified.contains("ON \"ops\".\"leases\" TO"),
            "{qualified}"
        );
    }

    #[test]
    fn the_readme_shows_the_setup_sql() {
        let readme = include_str!("../README.md");
        let sql = setup("leader_election_leases", "app");
        assert!(
            readme.contains(&sql),
            "the README's migration differs from:\n{sql}"
        );
    }
}
