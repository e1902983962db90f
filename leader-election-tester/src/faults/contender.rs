//! Faults on the leader itself: a graceful stop, a crash, a resignation; each undone by
//! starting its next incarnation (a resignation's cool-down ends by itself).

use std::time::Duration;

use super::FaultKind;
use crate::contender::Slot;

/// What a fault of `kind` does to the leader, for the live output.
pub(super) fn describe(kind: FaultKind, processes: bool) -> &'static str {
    match kind {
        FaultKind::Graceful => "stop the leader gracefully",
        FaultKind::Crash if processes => "kill the leader with SIGKILL",
        FaultKind::Crash => "crash the leader (no release)",
        _ => "the leader resigns (hands over, stays out for one lease)",
    }
}

/// Stops (with two leases of grace), crashes or resigns (for one lease) the leader in `slot`.
/// Returns the incarnation that was killed when the victim is a process: whatever it led
/// ended when it died.
pub(super) async fn inject(
    slot: &mut Slot,
    kind: FaultKind,
    lease: Duration,
    processes: bool,
) -> Option<u32> {
    match kind {
        FaultKind::Graceful => slot.stop(lease * 2).await,
        FaultKind::Crash => {
            let generation = slot.generation();
            slot.crash().await;
            return processes.then_some(generation);
        }
        _ => slot.resign(lease).await,
    }
    None
}

/// Brings contender `n` back after a fault of `kind`; returns the line saying so.
///
/// # Errors
/// When its next incarnation cannot be started.
pub(super) async fn restore(slot: &mut Slot, kind: FaultKind, n: usize) -> Result<String, String> {
    if kind == FaultKind::Resign {
        // The cool-down ends by itself.
        return Ok(format!("c{n} back in the election"));
    }
    slot.restart().await?;
    Ok(format!("c{n} restarted"))
}
