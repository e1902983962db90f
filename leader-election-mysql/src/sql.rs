//! The SQL: each operation is one round trip, a batch of statements sent as one query (a
//! transaction when it writes), with every value as a literal made here (numbers, and bytes as
//! hexadecimal literals: nothing a caller gives is ever parsed as SQL).
//!
//! MySQL has no `UPDATE … RETURNING` and no data-modifying common table expressions, and
//! neither lets a statement that updates a table read the same table in a subquery: so where
//! the PostgreSQL backend's operations are one statement each, here they are one transaction of
//! a few statements, run by the server back to back from one batch, whose decisions are kept in
//! the session's user variables (`@le_…`, set afresh by every batch).
//!
//! Each election has up to four rows, keyed by its name and, for all but the lease row, the unit
//! separator (U+001F) and a kind:
//! - the lease row (the name): holder, lease id, token, expiry (µs since the epoch on the
//!   server's clock), metadata;
//! - the guard row (`guard`), which records the last lease granted with the same holder, lease
//!   id, token and expiry; acquire and renew write both rows, and only a release (or the
//!   operator's [`force_election`] SQL) clears the guard. A lease row deleted or overwritten by
//!   anybody else leaves the guard, so the lease stays withheld until the lease it records could
//!   have expired (design rule 9), and its token keeps tokens growing;
//! - the candidate row (`candidate`) of preferred leaders: the candidate in `holder`, its
//!   priority in `token`, the record's expiry in `expires_at`;
//! - the record row (`record`): the election record's data in `metadata`, its version in
//!   `token`.
//!
//! Every batch that writes the lease row locks the guard row first, with an upsert that creates
//! it (cleared) when missing: an exclusive lock taken at once, never a shared lock upgraded, so
//! that two contenders never deadlock, and every decision is taken on the latest committed
//! rows.

use crate::names::{hex, hex_or_null, quote_literal, quote_table, row_key};

/// The server's time in µs since the epoch, whatever the session's time zone.
pub(crate) const NOW_US: &str =
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))";

/// The keys of one election's rows, as literals.
#[derive(Debug)]
pub(crate) struct Keys {
    pub(crate) lease: String,
    pub(crate) guard: String,
    pub(crate) candidate: String,
    pub(crate) record: String,
}

impl Keys {
    pub(crate) fn new(election: &str) -> Self {
        Self {
            lease: hex(election.as_bytes()),
            guard: hex(row_key(election, "guard").as_bytes()),
            candidate: hex(row_key(election, "candidate").as_bytes()),
            record: hex(row_key(election, "record").as_bytes()),
        }
    }
}

/// A lease as a batch names it: holder and lease id as literals.
#[derive(Debug)]
pub(crate) struct Holder {
    pub(crate) instance: String,
    pub(crate) lease_id: String,
}

impl Holder {
    pub(crate) fn new(instance: &str, lease_id: &str) -> Self {
        Self {
            instance: hex(instance.as_bytes()),
            lease_id: hex(lease_id.as_bytes()),
        }
    }
}

/// The statements of one table.
#[derive(Debug)]
pub(crate) struct Sql {
    /// The table, quoted.
    table: String,
}

impl Sql {
    pub(crate) fn new(table: &str) -> Self {
        Self {
            table: quote_table(table),
        }
    }

    /// Locks the row `key`, creating it (free, token 0) if missing.
    fn lock(&self, key: &str) -> String {
        let t = &self.table;
        format!(
            "INSERT INTO {t} (election, token) VALUES ({key}, 0) \
             ON DUPLICATE KEY UPDATE election = election;\n"
        )
    }

    /// Takes the lease row if it is free, expired or already the caller's, the guard lets the
    /// caller in, and it has not vanished (`expects_record`: the caller saw the lease held and
    /// no release since; no lease row now means it was deleted under a holder who may still
    /// trust it); writes the guard with the same lease. Answers one row: taken (0/1), the
    /// token (ours, or the holder's), the holder, the holder's remaining µs, the µs the guard
    /// withholds the lease for, vanished (0/1), the holder's metadata.
    ///
    /// Tokens: `max(lease row's token + 1, guard's token + 1, server time in µs, floor)`, the
    /// floor being one more than the highest token the caller has seen (it keeps tokens growing
    /// when both rows are gone and the server's clock is behind the last token); the caller's
    /// own lease keeps its token. A token at the largest `BIGINT` fails the batch (out of
    /// range) rather than give a smaller one.
    pub(crate) fn acquire(
        &self,
        keys: &Keys,
        holder: &Holder,
        ttl_us: i64,
        expects_record: bool,
        metadata: Option<&[u8]>,
        floor: i64,
    ) -> String {
        let t = &self.table;
        let (e, g) = (&keys.lease, &keys.guard);
        let (h, l) = (&holder.instance, &holder.lease_id);
        let m = hex_or_null(metadata);
        let expects = i32::from(expects_record);
        format!(
            "START TRANSACTION;\n\
             SET @le_now = {NOW_US}, @le_gh = NULL, @le_gl = NULL, @le_gt = NULL, @le_ge = NULL, \
               @le_found = 0, @le_lh = NULL, @le_ll = NULL, @le_lt = NULL, @le_le = NULL, @le_lm = NULL;\n\
             {lock}\
             SELECT holder, lease_id, token, expires_at INTO @le_gh, @le_gl, @le_gt, @le_ge \
               FROM {t} WHERE election = {g} FOR UPDATE;\n\
             SELECT 1, holder, lease_id, token, expires_at, metadata \
               INTO @le_found, @le_lh, @le_ll, @le_lt, @le_le, @le_lm \
               FROM {t} WHERE election = {e} FOR UPDATE;\n\
             SET @le_blocked = COALESCE(@le_ge > @le_now AND NOT COALESCE(@le_gh = {h} AND @le_gl = {l}, FALSE), FALSE), \
               @le_mine = COALESCE(@le_lh = {h} AND @le_ll = {l}, FALSE), \
               @le_vanished = ({expects} AND @le_found = 0);\n\
             SET @le_take = NOT @le_vanished AND (@le_mine OR (NOT @le_blocked AND \
               (@le_lh IS NULL OR @le_le IS NULL OR @le_le <= @le_now)));\n\
             SET @le_token = IF(@le_mine, CAST(@le_lt AS SIGNED), GREATEST(@le_now, {floor}, \
               IF(@le_lt IS NULL, 0, CAST(@le_lt AS SIGNED) + 1), \
               IF(@le_gt IS NULL, 0, CAST(@le_gt AS SIGNED) + 1))), \
               @le_expires = @le_now + {ttl_us};\n\
             INSERT INTO {t} (election, holder, lease_id, token, expires_at, metadata) \
               SELECT {e}, {h}, {l}, @le_token, @le_expires, {m} FROM DUAL WHERE @le_take \
               ON DUPLICATE KEY UPDATE holder = {h}, lease_id = {l}, token = @le_token, \
               expires_at = @le_expires, metadata = {m};\n\
             INSERT INTO {t} (election, holder, lease_id, token, expires_at) \
               SELECT {g}, {h}, {l}, @le_token, @le_expires FROM DUAL WHERE @le_take \
               ON DUPLICATE KEY UPDATE holder = {h}, lease_id = {l}, token = @le_token, \
               expires_at = @le_expires;\n\
             SELECT CAST(@le_take AS SIGNED), CAST(IF(@le_take, @le_token, @le_lt) AS SIGNED), \
               IF(@le_take, NULL, @le_lh), \
               CAST(IF(NOT @le_take AND @le_le > @le_now, @le_le - @le_now, NULL) AS SIGNED), \
               CAST(IF(NOT @le_take AND @le_blocked, GREATEST(@le_ge - @le_now, 1), NULL) AS SIGNED), \
               CAST(@le_vanished AS SIGNED), IF(@le_take, NULL, @le_lm);\n\
             COMMIT",
            lock = self.lock(g),
        )
    }

    /// Extends the caller's unexpired lease (and sets its metadata), and writes the guard with
    /// it (recreated if somebody deleted it). Answers one row: renewed (0/1).
    pub(crate) fn renew(
        &self,
        keys: &Keys,
        holder: &Holder,
        token: i64,
        ttl_us: i64,
        metadata: Option<&[u8]>,
    ) -> String {
        let t = &self.table;
        let (e, g) = (&keys.lease, &keys.guard);
        let (h, l) = (&holder.instance, &holder.lease_id);
        let m = hex_or_null(metadata);
        format!(
            "START TRANSACTION;\n\
             SET @le_now = {NOW_US}, @le_ok = 0;\n\
             {lock}\
             SELECT COUNT(*) INTO @le_ok FROM {t} WHERE election = {e} AND holder = {h} \
               AND lease_id = {l} AND token = {token} AND expires_at > @le_now FOR UPDATE;\n\
             SET @le_expires = @le_now + {ttl_us};\n\
             UPDATE {t} SET expires_at = @le_expires, metadata = {m} \
               WHERE election = {e} AND @le_ok > 0;\n\
             INSERT INTO {t} (election, holder, lease_id, token, expires_at) \
               SELECT {g}, {h}, {l}, {token}, @le_expires FROM DUAL WHERE @le_ok > 0 \
               ON DUPLICATE KEY UPDATE holder = {h}, lease_id = {l}, token = {token}, \
               expires_at = @le_expires;\n\
             SELECT CAST(@le_ok AS SIGNED);\n\
             COMMIT",
            lock = self.lock(g),
        )
    }

    /// Frees the lease row if it is the caller's, and clears the guard if it records the
    /// caller's lease (even when the lease row was deleted or overwritten meanwhile: the holder
    /// says it no longer trusts that lease). Tokens stay, so the next one is still greater.
    /// Answers one row: whether the lease row was the caller's (0/1).
    pub(crate) fn release(&self, keys: &Keys, holder: &Holder, token: i64) -> String {
        let t = &self.table;
        let (e, g) = (&keys.lease, &keys.guard);
        let (h, l) = (&holder.instance, &holder.lease_id);
        format!(
            "START TRANSACTION;\n\
             {lock}\
             UPDATE {t} SET holder = NULL, lease_id = NULL, expires_at = NULL \
               WHERE election = {e} AND holder = {h} AND lease_id = {l} AND token = {token};\n\
             SET @le_released = ROW_COUNT();\n\
             UPDATE {t} SET holder = NULL, lease_id = NULL, expires_at = NULL \
               WHERE election = {g} AND holder = {h} AND lease_id = {l} AND token = {token};\n\
             SELECT CAST(@le_released AS SIGNED);\n\
             COMMIT",
            lock = self.lock(g),
        )
    }

    /// The unexpired holder of the row `key`: holder, token, metadata; no row when free. The
    /// lease row's read, and the candidate row's.
    pub(crate) fn current(&self, key: &str) -> String {
        let t = &self.table;
        format!(
            "SELECT holder, token, metadata FROM {t} \
             WHERE election = {key} AND holder IS NOT NULL AND expires_at > {NOW_US}"
        )
    }

    /// Writes the candidate row unless an unexpired one holds another contender with a higher
    /// priority; the row is locked before it is compared, so comparison and write are one
    /// step.
    pub(crate) fn announce_candidate(
        &self,
        keys: &Keys,
        instance: &str,
        priority: u32,
        ttl_us: i64,
    ) -> String {
        let t = &self.table;
        let c = &keys.candidate;
        let h = hex(instance.as_bytes());
        format!(
            "START TRANSACTION;\n\
             SET @le_now = {NOW_US}, @le_write = 0;\n\
             {lock}\
             SELECT holder IS NULL OR expires_at IS NULL OR expires_at <= @le_now \
                 OR {priority} >= token OR holder = {h} \
               INTO @le_write FROM {t} WHERE election = {c} FOR UPDATE;\n\
             UPDATE {t} SET holder = {h}, lease_id = NULL, token = {priority}, \
               expires_at = @le_now + {ttl_us} WHERE election = {c} AND @le_write;\n\
             COMMIT",
            lock = self.lock(c),
        )
    }

    /// The election record: version and data.
    pub(crate) fn read_record(&self, keys: &Keys) -> String {
        let t = &self.table;
        format!(
            "SELECT token, metadata FROM {t} WHERE election = {}",
            keys.record
        )
    }

    /// Writes the record row only if there is none; answers the new version, or NULL. Versions
    /// are `max(server time in µs, floor)`: a counter starting at 1 would give a version again
    /// to other data once an operator deleted the row, while the server's clock has moved past
    /// every version minted from it, and the floor (one more than the highest version the
    /// caller has seen) covers a clock that came back behind one.
    pub(crate) fn insert_record(&self, keys: &Keys, data: &[u8], floor: i64) -> String {
        let t = &self.table;
        let (r, d) = (&keys.record, hex(data));
        format!(
            "START TRANSACTION;\n\
             SET @le_version = GREATEST({NOW_US}, {floor});\n\
             INSERT INTO {t} (election, holder, lease_id, token, expires_at, metadata) \
               VALUES ({r}, NULL, NULL, @le_version, NULL, {d}) \
               ON DUPLICATE KEY UPDATE election = election;\n\
             SET @le_written = ROW_COUNT();\n\
             SELECT CAST(IF(@le_written = 1, @le_version, NULL) AS SIGNED);\n\
             COMMIT"
        )
    }

    /// Rewrites the record row only if it is at version `expected`; answers the new version
    /// (`max(version + 1, server time in µs, floor)`), or NULL.
    pub(crate) fn update_record(
        &self,
        keys: &Keys,
        data: &[u8],
        floor: i64,
        expected: i64,
    ) -> String {
        let t = &self.table;
        let (r, d) = (&keys.record, hex(data));
        format!(
            "START TRANSACTION;\n\
             SET @le_version = NULL;\n\
             SELECT GREATEST({NOW_US}, {floor}, token + 1) INTO @le_version FROM {t} \
               WHERE election = {r} AND token = {expected} AND metadata IS NOT NULL FOR UPDATE;\n\
             UPDATE {t} SET metadata = {d}, token = @le_version \
               WHERE election = {r} AND @le_version IS NOT NULL;\n\
             SELECT CAST(@le_version AS SIGNED);\n\
             COMMIT"
        )
    }

    /// Checks that the table exists and the account may do what the store does, changing
    /// nothing: locks the guard row as every write does (an upsert: `INSERT` and `UPDATE`),
    /// reads it (`SELECT`), and rolls back. Fails with the server's own message otherwise.
    pub(crate) fn probe(&self, keys: &Keys) -> String {
        let t = &self.table;
        format!(
            "START TRANSACTION;\n\
             {lock}\
             SELECT COUNT(*) INTO @le_probe FROM {t} WHERE election = {g} FOR UPDATE;\n\
             ROLLBACK",
            lock = self.lock(&keys.guard),
            g = keys.guard,
        )
    }

    /// `CREATE TABLE IF NOT EXISTS` for the lease table.
    pub(crate) fn create(&self) -> String {
        create_table(&self.table)
    }
}

/// `CREATE TABLE IF NOT EXISTS` for the quoted lease table: binary keys and holders (compared
/// byte for byte, whatever the server's collation), times in µs since the epoch.
fn create_table(quoted: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {quoted} (\n    \
             election VARBINARY(600) NOT NULL PRIMARY KEY,\n    \
             holder VARBINARY(1024) NULL,\n    \
             lease_id VARBINARY(255) NULL,\n    \
             token BIGINT NOT NULL,\n    \
             expires_at BIGINT NULL,\n    \
             metadata MEDIUMBLOB NULL\n\
         ) ENGINE=InnoDB"
    )
}

/// What an owner runs once so that `account` (`'user'@'host'`, as given) can take part in
/// elections in `table`: create the table, and grant exactly what the statements need (`DELETE`
/// is never used).
pub(crate) fn setup(table: &str, account: &str) -> String {
    let quoted = quote_table(table);
    format!(
        "{};\nGRANT SELECT, INSERT, UPDATE ON {quoted} TO {account};\n",
        create_table(&quoted)
    )
}

/// What an operator runs to force a new election of `election` in `table` at once, when its
/// holder is known to be gone: frees the lease row and clears the guard, keeping the tokens so
/// that the next one is still greater.
pub(crate) fn force_election(table: &str, election: &str) -> String {
    let quoted = quote_table(table);
    let name = quote_literal(election);
    format!(
        "UPDATE {quoted} SET holder = NULL, lease_id = NULL, expires_at = NULL\n    \
             WHERE election IN ({name}, CONCAT({name}, CHAR(31), 'guard'));\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_sql_creates_and_grants() {
        assert_eq!(
            setup("leader_election_leases", "'app'@'%'"),
            "CREATE TABLE IF NOT EXISTS `leader_election_leases` (\n    \
                 election VARBINARY(600) NOT NULL PRIMARY KEY,\n    \
                 holder VARBINARY(1024) NULL,\n    \
                 lease_id VARBINARY(255) NULL,\n    \
                 token BIGINT NOT NULL,\n    \
                 expires_at BIGINT NULL,\n    \
                 metadata MEDIUMBLOB NULL\n\
             ) ENGINE=InnoDB;\n\
             GRANT SELECT, INSERT, UPDATE ON `leader_election_leases` TO 'app'@'%';\n"
        );
    }

    #[test]
    fn forcing_an_election_clears_both_rows() {
        let sql = force_election("ops.leases", "it's");
        assert_eq!(
            sql,
            "UPDATE `ops`.`leases` SET holder = NULL, lease_id = NULL, expires_at = NULL\n    \
                 WHERE election IN ('it''s', CONCAT('it''s', CHAR(31), 'guard'));\n"
        );
    }

    #[test]
    fn the_readme_shows_the_setup_and_the_forced_election() {
        let readme = include_str!("../README.md");
        let setup = setup("leader_election_leases", "'app'@'%'");
        assert!(
            readme.contains(&setup),
            "the README's setup differs from:\n{setup}"
        );
        let force = force_election("leader_election_leases", "billing");
        assert!(
            readme.contains(&force),
            "the README's forced election differs from:\n{force}"
        );
    }

    #[test]
    fn values_are_literals_the_server_cannot_misread() {
        let sql = Sql::new("leases");
        let keys = Keys::new("e'; DROP TABLE leases; --");
        let holder = Holder::new("h'", "l");
        let batch = sql.acquire(&keys, &holder, 5, true, Some(b"'"), 7);
        assert!(!batch.contains("DROP TABLE"), "{batch}");
        assert!(batch.contains("X'27'"), "{batch}");
        assert!(batch.contains("@le_vanished = (1 AND"), "{batch}");
    }
}
