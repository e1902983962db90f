//! How the MySQL backend's runtime errors are told. Its configuration errors are the core's
//! [`BuildError`](leader_election::BuildError).

use leader_election::{Error, Operation};

/// The server's error codes that only an operator can fix: no such table, a privilege
/// missing on it, an unknown database, access denied.
const NOT_RETRYABLE: [u16; 5] = [
    1146, // ER_NO_SUCH_TABLE
    1142, // ER_TABLEACCESS_DENIED_ERROR
    1044, // ER_DBACCESS_DENIED_ERROR
    1049, // ER_BAD_DB_ERROR
    1045, // ER_ACCESS_DENIED_ERROR
];

/// A failed batch of `operation`, classified: a connection broken mid-batch leaves the outcome
/// unknown (the server may have run it to its `COMMIT`); an error the server answered with
/// means the transaction did not take effect (the next batch on the connection rolls back what
/// it left open), retryable unless only an operator can fix it. The message carries the
/// server's own (`ERROR 42S02 (1146): Table 'app.leases' doesn't exist`).
pub(crate) fn failed(operation: Operation, err: mysql_async::Error) -> Error {
    match &err {
        mysql_async::Error::Server(server) => {
            let retryable = !NOT_RETRYABLE.contains(&server.code);
            Error::backend(operation, retryable, err)
        }
        _ if err.is_fatal() => Error::outcome_unknown(operation, err),
        _ => Error::backend(operation, true, err),
    }
}

/// No connection for `operation` (the server refused or could not be reached, or the login
/// failed): nothing was sent. Retryable, unless the server refused the account or database.
pub(crate) fn connect_failed(operation: Operation, err: mysql_async::Error) -> Error {
    let retryable = match &err {
        mysql_async::Error::Server(server) => !NOT_RETRYABLE.contains(&server.code),
        _ => true,
    };
    Error::backend(operation, retryable, err)
}

/// The server's error code, when `err` is the server's answer.
pub(crate) fn server_code(err: &mysql_async::Error) -> Option<u16> {
    match err {
        mysql_async::Error::Server(server) => Some(server.code),
        _ => None,
    }
}
