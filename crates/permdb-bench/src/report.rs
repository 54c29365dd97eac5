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
    pub fn svg(&self, profile: &str) -> String {
        // The plot, and the legend in a column of its own at the right.
        let (w, h, pad, legend) = (900.0, 420.0, 60.0, 180.0);
        let points: Vec<(u32, &str, f64)> = self
            .cells
            .iter()
            .filter(|((_, p, op, _), _)| p == profile && op == "first page")
            .map(|((d, _, _, s), v)| (*d, s.as_str(), *v))
            .collect();
        let (min_n, max_n) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), (d, _, _)| {
                (a.min(f64::from(*d)), b.max(f64::from(*d)))
            });
        let (min_t, max_t) = points
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), (_, _, t)| {
                (a.min(*t), b.max(*t))
            });
        let lx = |n: f64| {
            let span = (max_n.log10() - min_n.log10()).max(1e-9);
            pad + (n.log10() - min_n.log10()) / span * (w - legend - 2.0 * pad)
        };
        let ly = |t: f64| {
            let (lo, hi) = ((min_t * 0.8).log10(), (max_t * 1.25).log10());
            h - pad - (t.log10() - lo) / (hi - lo).max(1e-9) * (h - 2.0 * pad)
        };
        // permdb on sled solid, on redb dashed in the same colour per row kind.
        let colors = [
            "#1b9e77", "#7570b3", "#666666", "#1b9e77", "#7570b3", "#666666", "#d95f02", "#e7298a",
        ];
        let mut svg = format!(
            "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>\
             <rect width='100%' height='100%' fill='white'/>\
             <text x='{pad}' y='24' font-size='15'>{profile}: first page (limit 25) latency vs documents, log-log (median µs)</text>\
             <line x1='{pad}' y1='{}' x2='{}' y2='{}' stroke='black'/><line x1='{pad}' y1='{pad}' x2='{pad}' y2='{}' stroke='black'/>",
            h - pad,
            w - legend - pad,
            h - pad,
            h - pad
        );
        let mut ns: Vec<u32> = points.iter().map(|p| p.0).collect();
        ns.sort_unstable();
        ns.dedup();
        for n in &ns {
            let _ = write!(
                svg,
                "<text x='{}' y='{}' text-anchor='middle'>{n}</text>",
                lx(f64::from(*n)),
                h - pad + 18.0
            );
        }
        for t in [1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0] {
            if t >= min_t * 0.8 && t <= max_t * 1.25 {
                let _ = write!(
                    svg,
                    "<text x='{}' y='{}' text-anchor='end'>{}</text><line x1='{pad}' y1='{y}' x2='{}' y2='{y}' stroke='#eee'/>",
                    pad - 6.0,
                    ly(t) + 4.0,
                    fmt(t),
                    w - legend - pad,
                    y = ly(t)
                );
            }
        }
        for (i, system) in SYSTEMS.iter().enumerate() {
            let mut line: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.1 == *system)
                .map(|p| (lx(f64::from(p.0)), ly(p.2)))
                .collect();
            if line.is_empty() {
                continue;
            }
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = line.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let color = colors[i % colors.len()];
            let dash = if system.contains("(redb)") {
                " stroke-dasharray='6 4'"
            } else {
                ""
            };
            let _ = write!(
                svg,
                "<polyline fill='none' stroke='{color}' stroke-width='2'{dash} points='{}'/>",
                path.join(" ")
            );
            for (x, y) in &line {
                let _ = write!(
                    svg,
                    "<circle cx='{x:.1}' cy='{y:.1}' r='3' fill='{color}'/>"
                );
            }
            let y = pad + 18.0 * i as f64;
            let _ = write!(
                svg,
                "<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='{color}' stroke-width='2'{dash}/>\
                 <text x='{}' y='{}' fill='{color}'>{system}</text>",
                w - legend + 5.0,
                y - 4.0,
                w - legend + 30.0,
                y - 4.0,
                w - legend + 36.0,
                y
            );
        }
        svg + "</svg>"
    }
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
