//! Faults on the deployment the tester started (`--spawn-redis`, `--spawn-etcd`,
//! `--spawn-s3`): a restart (empty), a pause (SIGSTOP until restored), a member cut off its
//! peers (until restored), a failover or a handover (completing in the background while the
//! run goes on). The deployment does each
//! ([`Server`]); a fault it does not offer was refused before the run.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::{FaultKind, Restored};
use crate::backends::{FailoverDone, Server};
use crate::contender::Clock;
use crate::report::Fault;

/// A failover under way.
type Failover = JoinHandle<Result<FailoverDone, String>>;

/// What a fault of `kind` does to the deployment, for the live output.
pub(super) fn describe(server: Option<&dyn Server>, kind: FaultKind) -> String {
    server.map_or_else(
        || format!("{} (no deployment started by the tester)", kind.as_str()),
        |server| server.fault_text(kind),
    )
}

/// Restarts or pauses the server, or starts its failover (returned, to be awaited when the
/// fault is restored).
///
/// # Errors
/// When a restarted server does not come back.
pub(super) async fn inject(
    server: &Arc<dyn Server>,
    kind: FaultKind,
) -> Result<Option<Failover>, String> {
    match kind {
        FaultKind::ServerRestart => Arc::clone(server).restart().await.map(|()| None),
        FaultKind::ServerPause => {
            server.set_paused(true).await;
            Ok(None)
        }
        FaultKind::ServerFailover => Ok(Some(tokio::spawn(Arc::clone(server).failover()))),
        FaultKind::ServerPartition => server.set_peers_cut(true).await.map(|()| None),
        _ => Ok(Some(tokio::spawn(Arc::clone(server).handover()))),
    }
}

/// Ends a restart (over when injected) or a pause (the server resumed); returns the line
/// saying so.
pub(super) async fn restore(server: Option<&dyn Server>, kind: FaultKind) -> String {
    let Some(server) = server else {
        return format!("{} over", kind.as_str());
    };
    if kind == FaultKind::ServerPause {
        server.set_paused(false).await;
    }
    if kind == FaultKind::ServerPartition
        && let Err(err) = server.set_peers_cut(false).await
    {
        return format!("!! {err}");
    }
    server.restored_text(kind)
}

/// Waits for the failover of `fault` to complete.
///
/// # Errors
/// When the failover task itself failed (panicked).
pub(super) async fn complete(
    server: Option<&dyn Server>,
    failover: Option<Failover>,
    fault: &Fault,
    clock: Clock,
) -> Result<Restored, String> {
    let done = match failover {
        Some(task) => task.await.map_err(|e| e.to_string())?,
        None => Err("no failover was started".to_owned()),
    };
    Ok(match (done, server) {
        (Ok(done), Some(server)) => {
            let text = server.failover_text(&done, &|at| clock.ms(at), fault.at_ms);
            Restored::Completed(done.completed, text)
        }
        (Ok(_), None) => Restored::Failed("!! a failover without a deployment".to_owned()),
        (Err(err), _) => Restored::Failed(format!("!! {err}")),
    })
}
