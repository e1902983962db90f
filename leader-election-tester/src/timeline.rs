//! The SVG timeline.

use crate::report::RunData;

/// Draws the run.
pub(crate) fn render(_data: &RunData) -> String {
    String::new()
}
