//! "Calls at a glance": the agent's calls per day as a server-rendered SVG bar chart,
//! each bar stacked by how the calls ended, with the period's figures beside it. The
//! SVG scales to its panel (a 320-unit-wide drawing, so at a 390 px phone width its
//! labels stay at about their 10 px size); the legend and the figures are HTML, which
//! wraps.

use agent_spec::api::CallStats;
use leptos::prelude::*;

/// How calls ended, grouped for the chart, in stacking order (bottom first). The
/// legend's swatches take the same colours from the stylesheet (`.swatch.{name}`:
/// the content security policy allows no inline style).
pub const GROUPS: [Group; 5] = [
    Group { name: "answered", label: "Answered", color: "#2f6fde", reasons: &["end_call", "caller_hung_up"] },
    Group { name: "transferred", label: "Transferred", color: "#7b4fd6", reasons: &["transferred"] },
    Group { name: "voicemail", label: "Voicemail", color: "#c98512", reasons: &["voicemail", "answering_machine"] },
    Group {
        name: "failed",
        label: "Failed or cut off",
        color: "#c93c3c",
        reasons: &["provider_unavailable", "provider_error", "stream_dropped", "shutdown"],
    },
    // Everything else: idle, max_duration, max_turns, guardrail, and reasons newer than this list.
    Group { name: "limit", label: "Ended by a limit", color: "#8a94a3", reasons: &[] },
];

pub struct Group {
    pub name: &'static str,
    pub label: &'static str,
    pub color: &'static str,
    pub reasons: &'static [&'static str],
}

fn group_of(reason: &str) -> usize {
    GROUPS.iter().position(|g| g.reasons.contains(&reason)).unwrap_or(GROUPS.len() - 1)
}

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 132.0;
const LEFT: f64 = 26.0;
const RIGHT: f64 = 4.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 18.0;

/// The chart as SVG markup: numbers and fixed words only, nothing from a tenant.
pub fn svg(stats: &CallStats) -> String {
    use std::fmt::Write as _;
    let days = &stats.days;
    let max = days.iter().map(|d| d.calls).max().unwrap_or(0).max(1);
    // A round top for the scale: 1, 2, 5, 10, 20, 50, …
    let top = {
        let mut step = 1u64;
        loop {
            if let Some(t) = [1, 2, 5].iter().map(|m| m * step).find(|t| *t >= max) {
                break t;
            }
            step *= 10;
        }
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / days.len().max(1) as f64;
    let bar = (slot * 0.72).max(1.0);
    let y = |v: f64| TOP + plot_h * (1.0 - v / top as f64);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="calls-chart-title" xmlns="http://www.w3.org/2000/svg"><title id="calls-chart-title">Calls per day, last {} days: {} in all</title>"##,
        days.len(),
        stats.calls
    );
    // Grid: the top, the middle and zero.
    for v in [top, top / 2, 0] {
        if v == top / 2 && top < 2 {
            continue;
        }
        let yy = y(v as f64);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#dfe3ea" stroke-width="1"/><text x="{}" y="{:.1}" font-size="10" text-anchor="end" fill="#5b6472">{v}</text>"##,
            WIDTH - RIGHT,
            LEFT - 4.0,
            yy + 3.5
        );
    }
    for (i, day) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut counts = [0u64; GROUPS.len()];
        for (reason, n) in &day.by_end_reason {
            counts[group_of(reason)] += n;
        }
        let mut below = 0u64;
        let mut parts = Vec::new();
        for (g, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let (y1, y0) = (y((below + n) as f64), y(below as f64));
            let _ = write!(
                out,
                r##"<rect class="{}" x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.1}" fill="{}"/>"##,
                GROUPS[g].name,
                (y0 - y1).max(0.5),
                GROUPS[g].color
            );
            below += n;
            parts.push(format!("{n} {}", GROUPS[g].label.to_lowercase()));
        }
        // The whole slot answers a hover or a tap with the day's figures.
        let what = if parts.is_empty() { "no calls".to_owned() } else { parts.join(", ") };
        let _ = write!(
            out,
            r##"<rect x="{:.1}" y="{TOP}" width="{slot:.1}" height="{plot_h:.1}" fill="transparent"><title>{}: {} calls ({what})</title></rect>"##,
            LEFT + slot * i as f64,
            day.date,
            day.calls
        );
    }
    // Dates under the first, the middle and the last bar.
    let label_at = |i: usize, anchor: &str, out: &mut String| {
        if let Some(day) = days.get(i) {
            let x = LEFT + slot * i as f64 + slot / 2.0;
            let text = day.date.get(5..).unwrap_or(&day.date);
            let _ = write!(
                out,
                r##"<text x="{x:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#5b6472">{text}</text>"##,
                HEIGHT - 4.0
            );
        }
    };
    if !days.is_empty() {
        label_at(0, "start", &mut out);
        if days.len() > 8 {
            label_at(days.len() / 2, "middle", &mut out);
        }
        label_at(days.len() - 1, "end", &mut out);
    }
    out.push_str("</svg>");
    out
}

fn secs(v: Option<f64>) -> String {
    match v {
        None => "–".to_owned(),
        Some(s) if s < 60.0 => format!("{s:.0} s"),
        Some(s) => format!("{}:{:02}", (s / 60.0).floor() as u64, (s % 60.0).round() as u64 % 60),
    }
}

fn share(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |s| format!("{:.0} %", s * 100.0))
}

/// The panel: the chart, its legend and the period's figures.
pub fn panel(stats: Result<CallStats, String>) -> AnyView {
    let stats = match stats {
        Ok(s) => s,
        Err(e) => {
            return view! {
                <div class="panel" id="calls-at-a-glance">
                    <h2>"Calls, last 30 days"</h2>
                    <p class="error">"The call statistics could not be loaded: " {e}</p>
                </div>
            }
            .into_any();
        }
    };
    if stats.calls == 0 {
        return view! {
            <div class="panel" id="calls-at-a-glance">
                <h2>"Calls, last 30 days"</h2>
                <p class="muted">"No calls in the last 30 days. Each call shows here a few seconds after it ends."</p>
            </div>
        }
        .into_any();
    }
    let legend = GROUPS
        .iter()
        .map(|g| {
            let title = if g.reasons.is_empty() {
                "idle, max_duration, max_turns, guardrail".to_owned()
            } else {
                g.reasons.join(", ")
            };
            view! {
                <li title=title><span class=format!("swatch {}", g.name)></span>{g.label}</li>
            }
        })
        .collect_view();
    view! {
        <div class="panel" id="calls-at-a-glance">
            <h2>"Calls, last 30 days"</h2>
            <div class="chart" inner_html=svg(&stats)></div>
            <ul class="legend">{legend}</ul>
            <dl class="figures">
                <div><dt>"Calls"</dt><dd>{stats.calls}</dd></div>
                <div><dt>"Median length"</dt><dd>{secs(stats.median_duration_secs)}</dd></div>
                <div><dt>"90th percentile"</dt><dd>{secs(stats.p90_duration_secs)}</dd></div>
                <div><dt>"Transferred"</dt><dd>{share(stats.transferred_share)}</dd></div>
                <div><dt>"Voicemail"</dt><dd>{share(stats.voicemail_share)}</dd></div>
            </dl>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_spec::api::CallDay;

    #[test]
    fn bars_stack_by_group_on_a_round_scale() {
        let day = |date: &str, reasons: &[(&str, u64)]| CallDay {
            date: date.into(),
            calls: reasons.iter().map(|(_, n)| n).sum(),
            by_end_reason: reasons.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect(),
        };
        let stats = CallStats {
            days: vec![
                day("2026-11-27", &[]),
                day("2026-11-28", &[("end_call", 5), ("caller_hung_up", 2), ("transferred", 3), ("idle", 1)]),
            ],
            calls: 11,
            median_duration_secs: Some(75.0),
            p90_duration_secs: Some(300.0),
            transferred_share: Some(3.0 / 11.0),
            voicemail_share: Some(0.0),
        };
        let svg = svg(&stats);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="answered""#).count(), 1, "end_call and caller_hung_up in one part");
        assert_eq!(svg.matches(r#"class="limit""#).count(), 1);
        assert!(svg.contains(">20</text>"), "11 calls on a scale to 20: {svg}");
        assert!(svg.contains("2026-11-28: 11 calls (7 answered, 3 transferred, 1 ended by a limit)"));
        assert!(svg.contains("2026-11-27: 0 calls (no calls)"));
        assert_eq!(
            (secs(Some(75.0)), secs(Some(42.4)), share(Some(3.0 / 11.0))),
            ("1:15".into(), "42 s".into(), "27 %".into())
        );
    }
}
