//! The `operator` fault: the tester's own hands on the lease record, as a person or a script
//! would act with the backend's own tools (deleting the record, overwriting it with garbage,
//! breaking a blob lease), through a connection of its own, never through a contender's. The
//! backend says which actions it has ([`Backend::operator_actions`]) and does them; the
//! schedule takes them in turn.
//!
//! [`Backend::operator_actions`]: crate::backends::Backend::operator_actions

use super::Injected;
use crate::backends::{BackendSpec, OperatorAction};

/// What the fault does, for the live output.
pub(super) const DESCRIPTION: &str = "act on the lease record as an operator";

/// Takes the `n`th action of the backend (in turn), reporting which in the live output.
pub(super) async fn act(spec: &BackendSpec, n: usize) -> Injected {
    let actions = spec.backend.operator_actions();
    let Some(&action) = actions.get(n % actions.len().max(1)) else {
        return Injected {
            notes: vec![format!("!! {} has no operator action", spec.backend.name())],
            ..Injected::default()
        };
    };
    let mut notes = vec![format!("operator: {}", action.describe())];
    if let Err(err) = spec.backend.act(spec, action).await {
        notes.push(format!("!! {err}"));
    }
    Injected {
        action: Some(action),
        notes,
        ..Injected::default()
    }
}

/// The second half of `action`, if it has one; returns the line saying the operator is done.
///
/// # Errors
/// When the backend cannot be reached or refuses the command.
pub(super) async fn follow_up(
    spec: &BackendSpec,
    action: Option<OperatorAction>,
) -> Result<String, String> {
    if let Some(action) = action {
        spec.backend.follow_up(spec, action).await?;
    }
    Ok("operator done".to_owned())
}
