//! The statements, with the table name filled in, and the SQL an operator runs to set up the
//! table when the application's role may not, or to force an election.

use crate::names::{quote_identifier, quote_literal, quote_table, release_channel};

/// The statements for one table.
///
/// Each election has two rows: the lease row (its key is the election's name) and the guard
/// row (its key is [`guard_key`] of the name), which records the last lease granted with the
/// same holder, lease id, token and expiry. Acquire and renew write both; only a release (or the
/// operator's [`force_election`] SQL) clears the guard. A lease row deleted or overwritten by
/// anybody else leaves the guard in place, so the lease stays withheld until the lease the
/// guard records could have expired (design rule 9), and the guard's token keeps tokens growing.
///
/// Every statement that writes both rows locks the guard row first (`FOR UPDATE`), then the
/// lease row, so that they never deadlock with each other, and so that the guard is read at its
/// latest committed version, not at the statement's snapshot.
pub(crate) struct Sql {
    /// The table, quoted for SQL.
    pub(crate) table: String,
    /// Whether the table exists, the role's name, and the privileges on the table it lacks.
    pub(crate) check: String,
    pub(crate) create: String,
    /// Acquire, renew and current.
    pub(crate) statements: Statements,
    pub(crate) release: String,
    pub(crate) channel: String,
    /// Writes the candidate row of preferred leaders: see [`announce_candidate`].
    pub(crate) announce_candidate: String,
    /// Reads and writes the election's record row: see [`RecordSql`].
    pub(crate) record: RecordSql,
}

/// The statements of an election's record row (its key is [`record_key`] of the name): one
/// more row of the lease table, its data in `metadata` and its version in `token`, with
/// `holder`, `lease_id` and `expires_at` NULL. No lease statement names that key, so none reads
/// or writes it, and the lease statements' own keys are never it.
///
/// Versions are minted as `max(previous version + 1, server time in µs, highest version the
/// caller has seen + 1)`, as tokens are: a counter starting at 1 would give a version again to
/// other data once an operator deleted the row (`DELETE FROM` the whole table), while the
/// server's clock has moved past every version minted from it (unless more than one per µs
/// were), and the caller's floor covers a clock that came back behind a version it saw.
pub(crate) struct RecordSql {
    /// `$1` record key: the version and the data.
    pub(crate) read: String,
    /// `$1` record key, `$2` data, `$3` the caller's floor: writes the row only if there is none
    /// (`ON CONFLICT DO NOTHING`, which needs only `INSERT`), answering the version.
    pub(crate) insert: String,
    /// `$1` record key, `$2` data, `$3` the caller's floor, `$4` the version expected, as text
    /// (versions are compared as the caller got them, never parsed): rewrites the row only if it
    /// is at that version, answering the new one. An `UPDATE` re-checks its
    /// `WHERE` on the row's latest version after waiting for a concurrent writer, so of two
    /// writers expecting one version exactly one succeeds.
    pub(crate) update: String,
}

/// The server's time in µs, at least `$3 + 1` (the caller's floor): the least version a write
/// mints. `$3 + 1` is NULL (ignored by `greatest`) at the largest `bigint`.
const RECORD_VERSION_FLOOR: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint, \
     CASE WHEN $3::bigint < 9223372036854775807 THEN $3::bigint + 1 END";

impl RecordSql {
    fn new(t: &str) -> Self {
        Self {
            read: format!("SELECT token, metadata FROM {t} WHERE election = $1"),
            insert: format!(
                "INSERT INTO {t} (election, holder, lease_id, token, expires_at, metadata) \
                 VALUES ($1, NULL, NULL, greatest({RECORD_VERSION_FLOOR}), NULL, $2::bytea) \
                 ON CONFLICT (election) DO NOTHING \
                 RETURNING token"
            ),
            update: format!(
                "UPDATE {t} SET metadata = $2::bytea, token = greatest({RECORD_VERSION_FLOOR}, \
                   CASE WHEN token < 9223372036854775807 THEN token + 1 END) \
                 WHERE election = $1 AND token::text = $4 AND metadata IS NOT NULL \
                 RETURNING token"
            ),
        }
    }
}

/// The statements that carry leader metadata: acquire and renew take it as `$7` (NULL: none),
/// and acquire and current answer it as their last column.
pub(crate) struct Statements {
    pub(crate) acquire: String,
    pub(crate) renew: String,
    pub(crate) current: String,
}

/// Whether the guard row (`g`) shows a lease that may still be trusted by a holder other than
/// the caller (`$2`, `$3`), at `now`. An expiry of NULL is a cleared guard; a holder or lease id
/// overwritten with anything, NULL included, is not the caller's and so still guards.
const GUARD_HOLDS: &str = "(g.expires_at > now.ts \
     AND NOT coalesce(g.holder = $2 AND g.lease_id = $3, false))";

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
            statements: Statements::new(&t),
            // $1 election, $2 holder, $3 lease id, $4 token, $5 channel, $6 guard key. Frees
            // the lease row if it is ours and clears the guard if it records our lease (even
            // when the lease row was deleted or overwritten meanwhile: the holder says it no
            // longer trusts that lease). Tokens stay, so the next one is still greater. Notifies
            // when either was ours; answers whether the lease row was.
            release: format!(
                "WITH g AS (SELECT 1 FROM {t} WHERE election = $6 FOR UPDATE), \
                 r AS ( \
                   UPDATE {t} SET holder = NULL, lease_id = NULL, expires_at = NULL \
                   WHERE election = $1 AND holder = $2 AND lease_id = $3 AND token = $4 \
                     AND (SELECT count(*) FROM g) >= 0 \
                   RETURNING 1), \
                 c AS ( \
                   UPDATE {t} SET holder = NULL, lease_id = NULL, expires_at = NULL \
                   WHERE election = $6 AND holder = $2 AND lease_id = $3 AND token = $4 \
                   RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM r), pg_notify($5, $1) \
                 WHERE EXISTS (SELECT 1 FROM r) OR EXISTS (SELECT 1 FROM c)"
            ),
            channel: release_channel(table),
            announce_candidate: announce_candidate(&t),
            record: RecordSql::new(&t),
            table: t,
        }
    }
}

/// `$1` candidate key, `$2` instance id, `$3` priority, `$4` ttl in µs: writes the record
/// unless an unexpired one holds another contender with a higher priority. The upsert locks
/// the row, so the comparison and the write are one atomic step.
fn announce_candidate(table: &str) -> String {
    format!(
        "INSERT INTO {table} AS c (election, holder, lease_id, token, expires_at) \
         VALUES ($1, $2, NULL, $3, clock_timestamp() + $4::bigint * interval '1 microsecond') \
         ON CONFLICT (election) DO UPDATE SET \
           holder = EXCLUDED.holder, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at \
         WHERE c.holder IS NULL OR c.expires_at IS NULL OR c.expires_at <= clock_timestamp() \
            OR EXCLUDED.token >= c.token OR c.holder = EXCLUDED.holder"
    )
}

impl Statements {
    /// The statements for the quoted table `t`.
    fn new(t: &str) -> Self {
        let (column, value, set, answer, renewed) = (
            ", metadata",
            ", $7::bytea",
            ", metadata = EXCLUDED.metadata",
            ", cur.metadata",
            ", metadata = $7::bytea",
        );
        Self {
            // One statement ($1 election, $2 holder, $3 lease id, $4 ttl in µs, $5 guard key,
            // $6 whether the caller expects a lease row: it saw the lease held and no release
            // since, $7 the metadata, $8 the highest token the caller has seen): take the lease row if it is free, expired or already ours, the guard lets
            // us, and it has not vanished (the caller expects a row and there is none: it was
            // deleted under its holder, who may still trust it; the caller times the wait);
            // write the guard with the same lease; otherwise report who holds it and for how
            // long, or for how long the guard withholds it. Ttls are in microseconds, rounded
            // up, so a lease never lasts less on the server than the caller asked for.
            //
            // The guard is locked and read first, then the lease row (`cur`, after the guard:
            // every statement locks the guard first). Both are read at their latest version:
            // the statement's snapshot may predate an operator's DELETE that committed while
            // it waited for these locks, and a lease row seen only in the snapshot would let
            // the upsert below insert into the space the DELETE left instead of finding the
            // row vanished. The lease row is then taken by the upsert, whose WHERE is evaluated
            // on its latest version. Should the guard row have been
            // created by a concurrent statement after this one's snapshot (so that it could not
            // be locked above) and hold a lease that is not ours, the guard's upsert skips it
            // and the last line fails the whole statement: nothing is changed, and the caller
            // retries. Tokens: max(largest stored token + 1, server time in µs, $8 + 1), the
            // stored tokens being the lease row's and the guard's: the caller's floor keeps them
            // growing when both rows are gone and the server's clock is behind the last token.
            acquire: format!(
                "WITH now AS (SELECT clock_timestamp() AS ts), \
             g AS (SELECT holder, lease_id, token, expires_at FROM {t} \
                   WHERE election = $5 FOR UPDATE), \
             blocked AS ( \
               SELECT greatest(ceil(extract(epoch FROM (g.expires_at - now.ts)) * 1000000)::bigint, 1) AS wait \
               FROM g, now WHERE {GUARD_HOLDS}), \
             cur AS MATERIALIZED (SELECT holder, lease_id, token, expires_at{column} FROM {t} \
                     WHERE election = $1 AND (SELECT count(*) FROM g) >= 0 FOR UPDATE), \
             mine AS (SELECT 1 FROM cur WHERE cur.holder = $2 AND cur.lease_id = $3), \
             vanished AS (SELECT 1 WHERE $6::boolean AND NOT EXISTS (SELECT 1 FROM cur)), \
             up AS ( \
               INSERT INTO {t} AS l (election, holder, lease_id, token, expires_at{column}) \
               SELECT $1, $2, $3, \
                      greatest((extract(epoch FROM now.ts) * 1000000)::bigint, \
                               (SELECT g.token + 1 FROM g WHERE g.token < 9223372036854775807), \
                               CASE WHEN $8::bigint < 9223372036854775807 THEN $8::bigint + 1 END), \
                      now.ts + $4::bigint * interval '1 microsecond'{value} FROM now \
               WHERE (NOT EXISTS (SELECT 1 FROM blocked) OR EXISTS (SELECT 1 FROM mine)) \
                 AND NOT EXISTS (SELECT 1 FROM vanished) \
               ON CONFLICT (election) DO UPDATE SET \
                 holder = EXCLUDED.holder, \
                 lease_id = EXCLUDED.lease_id, \
                 token = CASE WHEN l.holder = EXCLUDED.holder AND l.lease_id = EXCLUDED.lease_id \
                              THEN l.token ELSE greatest(l.token + 1, EXCLUDED.token) END, \
                 expires_at = EXCLUDED.expires_at{set} \
               WHERE ((l.holder IS NULL OR l.expires_at IS NULL \
                       OR l.expires_at <= clock_timestamp()) \
                      AND NOT EXISTS (SELECT 1 FROM blocked)) \
                  OR (l.holder = EXCLUDED.holder AND l.lease_id = EXCLUDED.lease_id) \
               RETURNING l.token, l.expires_at), \
             guarded AS ( \
               INSERT INTO {t} AS g (election, holder, lease_id, token, expires_at) \
               SELECT $5, $2, $3, up.token, up.expires_at FROM up \
               ON CONFLICT (election) DO UPDATE SET \
                 holder = EXCLUDED.holder, lease_id = EXCLUDED.lease_id, \
                 token = EXCLUDED.token, expires_at = EXCLUDED.expires_at \
               WHERE g.expires_at IS NULL OR g.expires_at <= clock_timestamp() \
                  OR (g.holder = EXCLUDED.holder AND g.lease_id = EXCLUDED.lease_id) \
                  OR EXISTS (SELECT 1 FROM mine) \
               RETURNING 1) \
             SELECT (up.token IS NOT NULL), coalesce(up.token, cur.token), cur.holder, \
                    CASE WHEN cur.expires_at > now.ts THEN \
                      ceil(extract(epoch FROM (cur.expires_at - now.ts)) * 1000000)::bigint END, \
                    blocked.wait, \
                    CASE WHEN up.token IS NULL OR EXISTS (SELECT 1 FROM guarded) THEN 0 \
                    ELSE ('the guard row of this election changed during the acquisition; \
                           nothing was changed: ' || (SELECT count(*) FROM guarded))::int END, \
                    EXISTS (SELECT 1 FROM vanished){answer} \
             FROM now \
             LEFT JOIN up ON true \
             LEFT JOIN blocked ON true \
             LEFT JOIN cur ON true"
            ),
            // $1 election, $2 holder, $3 lease id, $4 token, $5 ttl in µs, $6 guard key. The
            // guard is locked first (the lease row's condition needs it), and then written with
            // the renewed lease: recreated if somebody deleted it.
            renew: format!(
                "WITH g AS (SELECT 1 FROM {t} WHERE election = $6 FOR UPDATE), \
             r AS ( \
               UPDATE {t} SET expires_at = clock_timestamp() + $5::bigint * interval '1 microsecond'{renewed} \
               WHERE election = $1 AND holder = $2 AND lease_id = $3 AND token = $4 \
                 AND expires_at > clock_timestamp() AND (SELECT count(*) FROM g) >= 0 \
               RETURNING token, expires_at) \
             INSERT INTO {t} AS g (election, holder, lease_id, token, expires_at) \
             SELECT $6, $2, $3, r.token, r.expires_at FROM r \
             ON CONFLICT (election) DO UPDATE SET \
               holder = EXCLUDED.holder, lease_id = EXCLUDED.lease_id, \
               token = EXCLUDED.token, expires_at = EXCLUDED.expires_at"
            ),
            current: format!(
                "SELECT holder, token{column} FROM {t} \
                 WHERE election = $1 AND holder IS NOT NULL AND expires_at > clock_timestamp()"
            ),
        }
    }
}

/// The key of an election's guard row: its name, the unit separator (U+001F) and `guard`.
/// Election names may not hold control characters, so no election's lease row has this key.
pub(crate) fn guard_key(election: &str) -> String {
    format!("{election}\u{1f}guard")
}

/// The key of an election's record row: its name, the unit separator (U+001F) and `record`.
/// Election names may not hold control characters, so no election's lease, guard or candidate
/// row has this key.
pub(crate) fn record_key(election: &str) -> String {
    format!("{election}\u{1f}record")
}

/// What an operator runs to force a new election of `election` in `table` at once, when its
/// holder is known to be gone: frees the lease row and clears the guard (keeping the tokens, so
/// that the next one is still greater), then wakes the followers.
pub(crate) fn force_election(table: &str, election: &str) -> String {
    let quoted = quote_table(table);
    let name = quote_literal(election);
    format!(
        "BEGIN;\n\
         UPDATE {quoted} SET holder = NULL, lease_id = NULL, expires_at = NULL\n    \
             WHERE election IN ({name}, {name} || chr(31) || 'guard');\n\
         SELECT pg_notify({}, {name});\n\
         COMMIT;\n",
        quote_literal(&release_channel(table))
    )
}

/// `CREATE TABLE IF NOT EXISTS` for the lease table `quoted`.
fn create_table(quoted: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {quoted} (\n    \
             election text PRIMARY KEY,\n    \
             holder text,\n    \
             lease_id text,\n    \
             token bigint NOT NULL,\n    \
             expires_at timestamptz,\n    \
             metadata bytea\n\
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
                 expires_at timestamptz,\n    \
                 metadata bytea\n\
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
    fn forcing_an_election_clears_both_rows_and_notifies() {
        let sql = force_election("ops.leases", "it's");
        assert!(
            sql.contains("UPDATE \"ops\".\"leases\" SET holder = NULL"),
            "{sql}"
        );
        assert!(
            sql.contains("WHERE election IN ('it''s', 'it''s' || chr(31) || 'guard')"),
            "{sql}"
        );
        assert!(
            sql.contains("pg_notify('ops_leases_released', 'it''s')"),
            "{sql}"
        );
        assert_eq!(guard_key("it's"), "it's\u{1f}guard");
    }

    #[test]
    fn the_readme_shows_how_to_force_an_election() {
        let readme = include_str!("../README.md");
        let sql = force_election("leader_election_leases", "billing");
        assert!(
            readme.contains(&sql),
            "the README's forced election differs from:\n{sql}"
        );
    }

    #[test]
    fn acquire_renew_and_current_carry_the_metadata() {
        let sql = Sql::new("leases");
        assert!(sql.statements.acquire.contains("$7::bytea"));
        assert!(sql.statements.renew.contains("metadata = $7::bytea"));
        assert!(sql.statements.current.contains("token, metadata FROM"));
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
