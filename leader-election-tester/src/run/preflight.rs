//! Before the run: the backend must answer, so that a server that is not running gives one
//! clear error instead of a run without a leader.

use std::time::Duration;

use leader_election::LeaseStore;

use crate::schedule::RunConfig;

/// Checks that the backend answers before any contender starts, so that a server that is not
/// running gives one clear error instead of a run without a leader.
pub(super) async fn preflight(cfg: &RunConfig) -> Result<(), String> {
    let backend = cfg.backend.backend;
    let Some((what, hint)) = backend.reach(&cfg.backend) else {
        return Ok(());
    };
    let store = backend.open(&cfg.backend, &cfg.timing.options("preflight"))?;
    let limit = Duration::from_millis(cfg.timing.operation_timeout_ms).max(Duration::from_secs(3));
    let probe = async {
        store.connect().await?;
        store.current_leader().await
    };
    // The hint to start the server or point elsewhere fits only when nothing answered.
    let (failure, nothing_answered) = match tokio::time::timeout(limit, probe).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(err)) => (err.to_string(), refused(&err)),
        Err(_) => (
            format!("no answer within {}", humantime::format_duration(limit)),
            true,
        ),
    };
    Err(if nothing_answered {
        format!("cannot reach {what}: {failure}; {hint}")
    } else {
        format!("cannot use {what}: {failure}")
    })
}

/// Whether `err` says that nothing listens where the backend should be (connection refused):
/// the only case where "start it, or pass its URL" is the right hint. An error the server
/// answered with (TLS required, a password, `pg_hba.conf`) is shown alone.
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        // Some clients (fred) keep only the text of the I/O error.
        if err
            .to_string()
            .to_lowercase()
            .contains("connection refused")
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use leader_election::{Error, Operation};

    use super::refused;

    #[tokio::test]
    async fn only_a_refused_connection_gets_the_hint_to_start_the_server() {
        let closed = leader_election_fixtures::closed_port();
        let io = tokio::net::TcpStream::connect(("127.0.0.1", closed))
            .await
            .expect_err("nothing listens there");
        assert!(refused(&Error::backend(Operation::Connect, true, io)));
        // fred keeps the I/O error as text.
        let text = "IO Error: Connection refused (os error 111)";
        assert!(refused(&Error::backend(Operation::Connect, true, text)));
        // The server answered: its message is the whole story.
        let answered = "cannot open a connection: FATAL: pg_hba.conf rejects connection for \
                        host \"127.0.0.1\", user \"postgres\", database \"postgres\", no \
                        encryption (SQLSTATE 28000)";
        assert!(!refused(&Error::backend(
            Operation::Connect,
            true,
            answered
        )));
        assert!(!refused(&Error::backend(
            Operation::Connect,
            false,
            "WRONGPASS invalid username-password pair"
        )));
    }
}
