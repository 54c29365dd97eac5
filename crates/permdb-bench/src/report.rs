//! The runner's output: a markdown table per data set and profile, the figures as
//! JSON, and an SVG chart of first-page latency against N.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

/// Systems, in column order: permdb's on sled, then on redb, then the peers.
pub const SYSTEMS: [&str; 8] = [
    "permdb user",
    "permdb key",
    "fetch floor",
    "permdb user (redb)",
    "permdb key (redb)",
    "fetch floor (redb)",
    "sqlite",
    "sled scan",
];

/// The system name of permdb's `base` on `engine`: sled's as before, redb's marked.
pub fn system(base: &str, engine: permdb::StorageEngine) -> String {
    match engine {
        permdb::StorageEngine::Redb => format!("{base} (redb)"),
        _ => base.to_string(),
    }
}

#[derive(Default)]
pub struct Report {
    /// (docs, profile, operation, system) -> median microseconds
    pub cells: BTreeMap<(u32, String, String, String), f64>,
    /// free-form figures: inserts, opens, sizes
    pub extra: Vec<Value>,
}

impl Report {
    pub fn put(&mut self, docs: u32, profile: &str, op: &str, system: &str, micros: f64) {
        self.cells
            .insert((docs, profile.into(), op.into(), system.into()), micros);
    }

    fn get(&self, docs: u32, profile: &str, op: &str, system: &str) -> Option<f64> {
        self.cells
            .get(&(
                docs,
                profile.to_string(),
                op.to_string(),
                system.to_string(),
            ))
            .copied()
    }

    pub fn markdown(&self, docs: u32, profile: &str) -> String {
        let ops: Vec<String> = {
            let mut seen = Vec::new();
            for (d, p, op, _) in self.cells.keys() {
                if *d == docs && p == profile && !seen.contains(op) {
                    seen.push(op.clone());
                }
            }
            seen
        };
        let mut out = format!(
            "\n{profile}, {docs} documents (median µs; permdb on sled, then on redb)\n\n| operation | {} | permdb / sqlite | permdb / floor | redb / sled |\n|---|",
            SYSTEMS.join(" | ")
        );
        out += &"---|".repeat(SYSTEMS.len() + 3);
        out.push('\n');
        for op in ops {
            let _ = write!(out, "| {op} |");
            for s in SYSTEMS {
                match self.get(docs, profile, &op, s) {
                    Some(v) => {
                        let _ = write!(out, " {} |", fmt(v));
                    }
                    None => out += " |",
                }
            }
            let ratio = |a: &str, b: &str| match (
                self.get(docs, profile, &op, a),
                self.get(docs, profile, &op, b),
            ) {
                (Some(u), Some(p)) if p > 0.0 => format!("{:.3}", u / p),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                " {} | {} | {} |",
                ratio("permdb user", "sqlite"),
                ratio("permdb user", "fetch floor"),
                ratio("permdb user (redb)", "permdb user")
            );
        }
        out
    }

    /// The cells of a `results.json` written by [`Report::json`] (to draw its charts again).
    pub fn from_json(results: &Value) -> Report {
        let mut report = Report::default();
        for c in results["results"].as_array().into_iter().flatten() {
            if let (Some(d), Some(p), Some(op), Some(s), Some(v)) = (
                c["docs"].as_u64().and_then(|d| u32::try_from(d).ok()),
                c["profile"].as_str(),
                c["operation"].as_str(),
                c["system"].as_str(),
                c["median_us"].as_f64(),
            ) {
                report.put(d, p, op, s, v);
            }
        }
        report
    }

    pub fn json(&self, command: &str) -> Value {
        let cells: Vec<Value> = self
            .cells
            .iter()
            .map(|((d, p, op, s), v)| json!({"docs": d, "profile": p, "operation": op, "system": s, "median_us": v}))
            .collect();
        json!({"command": command, "results": cells, "other": self.extra})
    }

    /// First-page latency against N for one profile, log-log, one line per system.
    /// The chart of `profile`'s first pages against N: every system on one log scale
    /// above, permdb's rows alone on their own scale below (on the first, permdb's lines
    /// sit on top of each other under the peers'), each line marked with its value at
    /// the largest N. Titled and labelled to be read without README.
    pub fn svg(&self, profile: &str) -> String {
        let (w, h, legend) = (960.0, 700.0, 200.0);
        let points: Vec<(u32, &str, f64)> = self
            .cells
            .iter()
            .filter(|((_, p, op, _), _)| p == profile && op == "first page")
            .map(|((d, _, _, s), v)| (*d, s.as_str(), *v))
            .collect();
        let mut svg = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
             <rect width='100%' height='100%' fill='white'/>\
             <text x='70' y='24' font-size='16' font-weight='bold'>{profile}: time to a first page of 25 documents, as the collection grows</text>\
             <text x='70' y='44' fill='#444'>{}</text>\
             <text x='70' y='62' fill='#444'>Median µs per call, in-process, warm; lower is better. Solid: permdb on sled; dashed: on redb.</text>",
            profile_text(profile)
        );
        let all: Vec<&str> = SYSTEMS.to_vec();
        let permdb_only: Vec<&str> = SYSTEMS
            .iter()
            .copied()
            .filter(|s| !matches!(*s, "sqlite" | "sled scan"))
            .collect();
        // Above, only the peers' ends are labelled: permdb's are below, apart.
        let peers = ["sqlite", "sled scan"];
        let (xs, top, bottom) = ((70.0, w - legend - 20.0), (95.0, 330.0), (410.0, 640.0));
        panel(&mut svg, &points, &all, &peers, xs, top, "every system");
        let title = "permdb alone (its own scale)";
        panel(
            &mut svg,
            &points,
            &permdb_only,
            &permdb_only,
            xs,
            bottom,
            title,
        );
        let _ = write!(
            svg,
            "<text x='{}' y='{}' text-anchor='middle'>documents in the collection (log scale)</text>",
            (70.0 + w - legend - 20.0) / 2.0,
            h - 20.0
        );
        let shown = SYSTEMS
            .iter()
            .enumerate()
            .filter(|(_, system)| points.iter().any(|p| p.1 == **system));
        for (row, (i, system)) in shown.enumerate() {
            let (color, dash, mark) = style(i, system);
            let (x, y) = (w - legend + 10.0, 110.0 + 22.0 * row as f64);
            let _ = write!(
                svg,
                "<line x1='{x}' y1='{}' x2='{}' y2='{}' stroke='{color}' stroke-width='2'{dash}/>{}\
                 <text x='{}' y='{y}' fill='{color}'>{}</text>",
                y - 4.0,
                x + 28.0,
                y - 4.0,
                marker(mark, x + 14.0, y - 4.0, color),
                x + 34.0,
                label(system)
            );
        }
        svg + "</svg>"
    }
}

/// What a profile's data and query are, for a chart's subtitle.
fn profile_text(profile: &str) -> &'static str {
    match profile {
        "P1" => "P1: 10,000 users; each document readable by one user.",
        "P2" => "P2: P1, plus 10% of documents readable by anyone and each by one of 100 teams.",
        "P3" => "P3: P2's data; the page filters on an indexed category matching 1%.",
        "P4" => "P4: P2's documents; each user in 50 teams (about 155 roles).",
        _ => "",
    }
}

/// A system's legend label.
fn label(system: &str) -> String {
    let engine = if system.contains("(redb)") {
        "redb"
    } else {
        "sled"
    };
    match system.trim_end_matches(" (redb)") {
        "permdb user" => format!("permdb as a user, {engine}"),
        "permdb key" => format!("permdb, API key, {engine}"),
        "fetch floor" => format!("fetch floor (25 gets), {engine}"),
        "sqlite" => "SQLite (Appwrite's schema)".into(),
        "sled scan" => "sled, full scan".into(),
        other => other.into(),
    }
}

/// Colour, dash and marker of system `i`: the same colour for a row kind on both
/// engines, dashed on redb; markers tell apart lines that meet.
fn style(i: usize, system: &str) -> (&'static str, &'static str, usize) {
    let colors = [
        "#1b9e77", "#7570b3", "#666666", "#1b9e77", "#7570b3", "#666666", "#d95f02", "#e7298a",
    ];
    let dash = if system.contains("(redb)") {
        " stroke-dasharray='6 4'"
    } else {
        ""
    };
    (colors[i % colors.len()], dash, i % 3)
}

/// A circle, square or triangle at (x, y).
fn marker(kind: usize, x: f64, y: f64, color: &str) -> String {
    match kind {
        0 => format!("<circle cx='{x:.1}' cy='{y:.1}' r='3.5' fill='{color}'/>"),
        1 => format!(
            "<rect x='{:.1}' y='{:.1}' width='7' height='7' fill='{color}'/>",
            x - 3.5,
            y - 3.5
        ),
        _ => format!(
            "<polygon points='{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}' fill='{color}'/>",
            x,
            y - 4.5,
            x - 4.5,
            y + 3.5,
            x + 4.5,
            y + 3.5
        ),
    }
}

/// One panel: the `systems` lines of `points` on log-log axes spanning `xs` and `ys`
/// (pixels), with ticks at powers of ten (and 2 and 5 times them over a narrow range), a
/// y-axis title, and the `labelled` lines' values at the largest N written at their ends.
fn panel(
    svg: &mut String,
    points: &[(u32, &str, f64)],
    systems: &[&str],
    labelled: &[&str],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    title: &str,
) {
    let mine: Vec<&(u32, &str, f64)> = points.iter().filter(|p| systems.contains(&p.1)).collect();
    if mine.is_empty() {
        return;
    }
    let (min_n, max_n) = mine.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(f64::from(p.0)), b.max(f64::from(p.0)))
    });
    let (min_t, max_t) = mine
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (lo, hi) = ((min_t * 0.8).log10(), (max_t * 1.25).log10());
    // Room at the right for the end labels.
    let lx = |n: f64| {
        let span = (max_n.log10() - min_n.log10()).max(1e-9);
        x0 + (n.log10() - min_n.log10()) / span * (x1 - x0 - 50.0)
    };
    let ly = |t: f64| y1 - (t.log10() - lo) / (hi - lo).max(1e-9) * (y1 - y0);
    let _ = write!(
        svg,
        "<text x='{x0}' y='{}' font-weight='bold'>{title}</text>\
         <line x1='{x0}' y1='{y1}' x2='{x1}' y2='{y1}' stroke='black'/>\
         <line x1='{x0}' y1='{y0}' x2='{x0}' y2='{y1}' stroke='black'/>\
         <text transform='translate({},{}) rotate(-90)' text-anchor='middle'>median µs (log)</text>",
        y0 - 8.0,
        x0 - 52.0,
        (y0 + y1) / 2.0
    );
    let mut ns: Vec<u32> = mine.iter().map(|p| p.0).collect();
    ns.sort_unstable();
    ns.dedup();
    for n in &ns {
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>",
            lx(f64::from(*n)),
            y1 + 16.0,
            thousands(*n)
        );
    }
    let steps: &[f64] = if hi - lo > 2.5 {
        &[1.0]
    } else if hi - lo > 0.8 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    };
    let mut decade = 10f64.powf(lo.floor());
    while decade <= 10f64.powf(hi) {
        for t in steps.iter().map(|m| m * decade) {
            if t.log10() >= lo && t.log10() <= hi {
                let _ = write!(
                    svg,
                    "<text x='{}' y='{:.1}' text-anchor='end' fill='#444'>{}</text>\
                     <line x1='{x0}' y1='{y:.1}' x2='{x1}' y2='{y:.1}' stroke='#eee'/>",
                    x0 - 6.0,
                    ly(t) + 4.0,
                    fmt(t),
                    y = ly(t)
                );
            }
        }
        decade *= 10.0;
    }
    let mut ends: Vec<(f64, f64, f64, &str)> = Vec::new();
    for (i, system) in SYSTEMS.iter().enumerate() {
        if !systems.contains(system) {
            continue;
        }
        let mut line: Vec<(f64, f64, f64)> = mine
            .iter()
            .filter(|p| p.1 == *system)
            .map(|p| (lx(f64::from(p.0)), ly(p.2), p.2))
            .collect();
        if line.is_empty() {
            continue;
        }
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (color, dash, mark) = style(i, system);
        let path: Vec<String> = line
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill='none' stroke='{color}' stroke-width='2'{dash} points='{}'/>",
            path.join(" ")
        );
        for (x, y, _) in &line {
            svg.push_str(&marker(mark, *x, *y, color));
        }
        if let Some((x, y, t)) = line.last().filter(|_| labelled.contains(system)) {
            ends.push((*x, *y, *t, color));
        }
    }
    // End labels, moved apart where lines end close together (12 px a label at least).
    ends.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut last_y = f64::MIN;
    for (x, y, t, color) in ends {
        let y = y.max(last_y + 12.0);
        last_y = y;
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' fill='{color}' font-size='11'>{}</text>",
            x + 8.0,
            y + 4.0,
            fmt(t)
        );
    }
}

/// `n` with thousands separators.
fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn fmt(micros: f64) -> String {
    if micros >= 100.0 {
        format!("{micros:.0}")
    } else if micros >= 10.0 {
        format!("{micros:.1}")
    } else {
        format!("{micros:.2}")
    }
}
