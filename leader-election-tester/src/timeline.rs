//! The SVG timeline: one row per contender with its leadership terms (labelled with their
//! tokens), the faults as markers, overlaps in red, and a time axis.

use std::fmt::Write as _;

use crate::faults::FaultKind;
use crate::report::{RunData, overlap_details, terms};

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 78.0;
const ROW: f64 = 44.0;
const BAR: f64 = 24.0;

/// Colours of the contenders' terms, by slot.
const PALETTE: [&str; 8] = [
    "#4e79a7", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
];

fn fault_colour(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Graceful => "#2e7d32",
        FaultKind::Crash => "#c62828",
        FaultKind::Partition => "#6a1b9a",
        FaultKind::DropReplies => "#8e24aa",
        FaultKind::DropRequests => "#5e35b1",
        FaultKind::Loss => "#7986cb",
        FaultKind::ClockStep => "#0277bd",
        FaultKind::Latency => "#9575cd",
        FaultKind::ServerRestart => "#e65100",
        FaultKind::ServerPause => "#37474f",
        FaultKind::Operator => "#00838f",
        FaultKind::Resign => "#558b2f",
        FaultKind::ServerFailover => "#ad1457",
        FaultKind::ServerHandover => "#f9a825",
        FaultKind::ServerPartition => "#6d4c41",
    }
}

/// The label of a fault marker.
fn fault_label(kind: FaultKind, contender: usize) -> String {
    match kind {
        FaultKind::ServerRestart => "server restart".to_owned(),
        FaultKind::ServerPause => "redis pause".to_owned(),
        FaultKind::ServerFailover => "redis failover".to_owned(),
        FaultKind::ServerHandover => "redis handover".to_owned(),
        FaultKind::ServerPartition => "member cut off".to_owned(),
        FaultKind::Operator => "operator".to_owned(),
        _ => format!("{} c{contender}", kind.as_str()),
    }
}

/// The fill of a victim's time down (light grey) or cut off (stripes of the partition colour,
/// which stay readable over a leadership bar and never look like an overlap).
fn shade(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::Partition
        | FaultKind::DropReplies
        | FaultKind::DropRequests
        | FaultKind::Loss
        | FaultKind::Latency
        | FaultKind::ServerPause => "url(#cut)",
        FaultKind::ServerRestart
        | FaultKind::ServerFailover
        | FaultKind::ServerHandover
        | FaultKind::ServerPartition
        | FaultKind::Operator
        | FaultKind::Resign
        | FaultKind::ClockStep => "none",
        _ => "#e3e3e3",
    }
}

/// Patterns used by the shading.
const DEFS: &str = r##"<defs><pattern id="cut" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#6a1b9a" fill-opacity="0.10"/><line x1="1" y1="0" x2="1" y2="6" stroke="#6a1b9a" stroke-width="2" stroke-opacity="0.75"/></pattern></defs>"##;

/// A token short enough for a bar: Redis tokens are microsecond timestamps.
fn short_token(token: u64) -> String {
    let text = token.to_string();
    if text.len() > 6 {
        format!("…{}", &text[text.len() - 5..])
    } else {
        text
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A tick spacing of 1, 2 or 5 × 10^k ms giving about `target` ticks over `span_ms`.
fn tick_step(span_ms: f64, target: f64) -> f64 {
    let raw = (span_ms / target).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Draws `data` as a standalone SVG document.
pub(crate) fn render(data: &RunData) -> String {
    let end_ms = data
        .intervals
        .iter()
        .map(|i| i.end_ms)
        .fold(data.duration_ms, f64::max)
        .max(1.0);
    let rows = data.contenders.max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let axis_y = TOP + ROW * rows as f64 + 6.0;
    let height = axis_y + 96.0;
    let x = |ms: f64| LEFT + (ms.clamp(0.0, end_ms) / end_ms) * plot_w;
    let row_y = |slot: usize| TOP + ROW * slot as f64;
    let found = overlap_details(&terms(&data.intervals));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    svg.push_str(DEFS);
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );

    // Title.
    let verdict = if found.is_empty() {
        "never two leaders".to_owned()
    } else {
        format!("{} OVERLAPS", found.len())
    };
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="24" font-size="16" font-weight="bold" fill="#222">Leadership timeline: {} backend, {} contenders{}, lease {} ms: {}</text>"##,
        escape(&data.backend),
        data.contenders,
        if data.processes { " (processes)" } else { "" },
        data.lease_duration_ms,
        verdict
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="42" fill="#555">Bars: leadership terms, labelled with their fencing token. Markers: faults injected on the leader; shaded: victim down or cut off.</text>"##
    );

    // Rows and their labels.
    for slot in 0..rows {
        let y = row_y(slot);
        let fill = if slot % 2 == 0 { "#f6f7f9" } else { "#ffffff" };
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{y}" width="{plot_w}" height="{ROW}" fill="{fill}"/><text x="{}" y="{}" text-anchor="end" font-weight="bold" fill="#333">c{slot}</text>"##,
            LEFT - 10.0,
            y + ROW / 2.0 + 4.0
        );
    }

    // Grid and time axis.
    let step = tick_step(end_ms, 12.0);
    let mut tick = 0.0;
    while tick <= end_ms + 0.5 {
        let tx = x(tick);
        let label = if step >= 1000.0 {
            format!("{:.0}s", tick / 1000.0)
        } else {
            format!("{:.1}s", tick / 1000.0)
        };
        let _ = write!(
            svg,
            r##"<line x1="{tx}" y1="{TOP}" x2="{tx}" y2="{axis_y}" stroke="#dde1e6" stroke-width="1"/><line x1="{tx}" y1="{axis_y}" x2="{tx}" y2="{}" stroke="#555"/><text x="{tx}" y="{}" text-anchor="middle" fill="#444">{label}</text>"##,
            axis_y + 5.0,
            axis_y + 18.0
        );
        tick += step;
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="#555"/>"##,
        LEFT + plot_w
    );

    // Leadership terms.
    let mut labels = String::new();
    for interval in &data.intervals {
        let (x0, x1) = (x(interval.start_ms), x(interval.end_ms));
        let w = (x1 - x0).max(1.5);
        let y = row_y(interval.contender) + (ROW - BAR) / 2.0;
        let colour = PALETTE[interval.contender % PALETTE.len()];
        let _ = write!(
            svg,
            r##"<rect x="{x0}" y="{y}" width="{w}" height="{BAR}" rx="3" fill="{colour}"><title>c{} token {}: {:.1} ms to {:.1} ms ({})</title></rect>"##,
            interval.contender,
            interval.token,
            interval.start_ms,
            interval.end_ms,
            escape(&interval.end_reason)
        );
        let label = short_token(interval.token);
        if w > 6.5 * label.chars().count() as f64 + 6.0 {
            // Written after the shading, so stripes never hide a token.
            let _ = write!(
                labels,
                r##"<text x="{}" y="{}" fill="#fff" font-size="11" font-weight="bold" stroke="#000" stroke-opacity="0.35" stroke-width="2" paint-order="stroke">{}</text>"##,
                x0 + 5.0,
                y + BAR / 2.0 + 4.0,
                escape(&label)
            );
        }
    }

    // Down / cut-off periods of fault victims, over the bars (a cut-off leader leads on
    // until its deadline).
    for fault in &data.faults {
        let until = fault.restored_at_ms.unwrap_or(end_ms);
        let y = row_y(fault.contender) + (ROW - BAR) / 2.0;
        let (x0, x1) = (x(fault.at_ms), x(until));
        let _ = write!(
            svg,
            r##"<rect x="{x0}" y="{y}" width="{}" height="{BAR}" fill="{}" stroke="{}" stroke-opacity="0.8" stroke-dasharray="3 2"><title>c{} {} from {:.0} ms to {:.0} ms</title></rect>"##,
            (x1 - x0).max(1.0),
            shade(fault.kind),
            fault_colour(fault.kind),
            fault.contender,
            match fault.kind {
                FaultKind::Partition => "cut off",
                FaultKind::DropReplies => "hearing no replies",
                FaultKind::DropRequests => "with its requests dropped",
                FaultKind::Loss => "losing packets",
                FaultKind::Latency => "slowed past its operation_timeout",
                FaultKind::ClockStep => "with its wall clock stepped",
                FaultKind::ServerRestart => "under a restarted server",
                FaultKind::ServerPause => "under a paused server",
                FaultKind::Operator => "leading while an operator touched the lease",
                FaultKind::Resign => "cooling down after resigning",
                _ => "down",
            },
            fault.at_ms,
            until
        );
    }

    svg.push_str(&labels);

    // Overlaps, if any: red bands across the rows.
    for overlap in &found {
        let (x0, x1) = (x(overlap.from_ms), x(overlap.from_ms + overlap.overlap_ms));
        let _ = write!(
            svg,
            r##"<rect x="{x0}" y="{TOP}" width="{}" height="{}" fill="#ff0000" fill-opacity="0.6" stroke="#b00000"><title>overlap c{} / c{}: {} ms</title></rect>"##,
            (x1 - x0).max(2.0),
            ROW * rows as f64,
            overlap.a.0,
            overlap.b.0,
            overlap.overlap_ms
        );
    }

    // Fault markers: a line across the rows, a triangle on the victim, a label above.
    for (n, fault) in data.faults.iter().enumerate() {
        let fx = x(fault.at_ms);
        let colour = fault_colour(fault.kind);
        let vy = row_y(fault.contender);
        let label_y = TOP - 8.0 - 13.0 * (n % 2) as f64;
        let _ = write!(
            svg,
            r##"<line x1="{fx}" y1="{}" x2="{fx}" y2="{axis_y}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 3"/><path d="M {} {} L {} {} L {fx} {} Z" fill="{colour}"/><text x="{fx}" y="{label_y}" text-anchor="middle" font-size="11" fill="{colour}" font-weight="bold">{}</text>"##,
            label_y + 3.0,
            fx - 6.0,
            vy + 1.0,
            fx + 6.0,
            vy + 1.0,
            vy + 11.0,
            fault_label(fault.kind, fault.contender)
        );
        if let Some(restored) = fault.restored_at_ms {
            let _ = write!(
                svg,
                r##"<circle cx="{}" cy="{}" r="4" fill="#fff" stroke="{colour}" stroke-width="2"><title>c{} {}</title></circle>"##,
                x(restored),
                vy + ROW / 2.0,
                fault.contender,
                match fault.kind {
                    kind if kind.is_network() => "reconnected",
                    FaultKind::ClockStep => "wall clock back",
                    FaultKind::ServerPause => "server resumed",
                    FaultKind::ServerRestart => "server back",
                    FaultKind::Operator => "operator done",
                    FaultKind::Resign => "back in the election",
                    _ => "restarted",
                }
            );
        }
    }

    // Legend.
    let ly = axis_y + 42.0;
    let mut lx = LEFT;
    let mut legend = vec![
        (FaultKind::Graceful, "graceful stop"),
        (FaultKind::Crash, "crash (no release)"),
        (FaultKind::Partition, "partition"),
    ];
    for (kind, text) in [
        (FaultKind::DropReplies, "replies dropped"),
        (FaultKind::DropRequests, "requests dropped"),
        (FaultKind::Loss, "packet loss"),
        (FaultKind::Latency, "latency"),
        (FaultKind::ClockStep, "wall clock stepped"),
        (FaultKind::ServerRestart, "server restart"),
        (FaultKind::ServerPause, "redis pause"),
        (FaultKind::Operator, "operator on the lease record"),
        (FaultKind::Resign, "resign"),
    ] {
        if data.faults.iter().any(|f| f.kind == kind) {
            legend.push((kind, text));
        }
    }
    for (kind, text) in legend {
        let colour = fault_colour(kind);
        let _ = write!(
            svg,
            r##"<path d="M {} {} L {} {} L {lx} {} Z" fill="{colour}"/><text x="{}" y="{}" fill="#333">{text}</text>"##,
            lx - 6.0,
            ly - 5.0,
            lx + 6.0,
            ly - 5.0,
            ly + 5.0,
            lx + 12.0,
            ly + 4.0
        );
        lx += 36.0 + 7.0 * text.len() as f64;
    }
    // Second row: what the shapes and shades mean.
    let ly = ly + 22.0;
    let mut lx = LEFT - 4.0;
    let _ = write!(
        svg,
        r##"<circle cx="{lx}" cy="{ly}" r="4" fill="#fff" stroke="#555" stroke-width="2"/><text x="{}" y="{}" fill="#333">restarted / reconnected</text>"##,
        lx + 10.0,
        ly + 4.0
    );
    lx += 36.0 + 7.0 * "restarted / reconnected".len() as f64;
    let _ = write!(
        svg,
        r##"<rect x="{lx}" y="{}" width="18" height="10" fill="#e3e3e3" stroke="#9e9e9e" stroke-dasharray="3 2"/><text x="{}" y="{}" fill="#333">down</text><rect x="{}" y="{}" width="18" height="10" fill="url(#cut)" stroke="#6a1b9a" stroke-dasharray="3 2"/><text x="{}" y="{}" fill="#333">cut off</text>"##,
        ly - 5.0,
        lx + 24.0,
        ly + 4.0,
        lx + 70.0,
        ly - 5.0,
        lx + 94.0,
        ly + 4.0
    );
    lx += 160.0;
    let _ = write!(
        svg,
        r##"<rect x="{lx}" y="{}" width="18" height="10" fill="#ff0000" fill-opacity="0.6" stroke="#b00000"/><text x="{}" y="{}" fill="#333">two leaders (overlap)</text>"##,
        ly - 5.0,
        lx + 24.0,
        ly + 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Fault, Interval};

    fn data() -> RunData {
        let iv = |contender, token, start_ms, end_ms| Interval {
            contender,
            generation: 0,
            token,
            start_ms,
            end_ms,
            end_reason: "stopped".into(),
        };
        RunData {
            backend: "memory".into(),
            contenders: 3,
            duration_ms: 10_000.0,
            lease_duration_ms: 1000.0,
            intervals: vec![
                iv(0, 1, 0.0, 3000.0),
                iv(1, 2, 3000.0, 6000.0),
                iv(2, 1_795_685_940_343_981, 5500.0, 9000.0),
            ],
            faults: vec![Fault {
                kind: FaultKind::Crash,
                contender: 0,
                token: Some(1),
                at_ms: 3000.0,
                last_confirmed_ms: Some(2900.0),
                last_sent_ms: Some(2900.0),
                restored_at_ms: Some(4000.0),
                action: None,
                term_confirmed_ms: None,
                may_keep_term: false,
            }],
            ..RunData::default()
        }
    }

    #[test]
    fn draws_rows_terms_tokens_faults_and_overlaps() {
        let svg = render(&data());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for text in [
            "c0",
            "c1",
            "c2",
            ">1<",
            "…43981",
            "crash c0",
            "1 OVERLAPS",
            "10s",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert_eq!(svg.matches("<title>overlap").count(), 1);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(30_000.0, 12.0), 5000.0);
        assert_eq!(tick_step(8_000.0, 12.0), 1000.0);
        assert_eq!(tick_step(2_000.0, 12.0), 200.0);
    }
}
