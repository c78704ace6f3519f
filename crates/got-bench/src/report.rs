//! Rows, the plain-text table and the JSON file.

use crate::sys::Machine;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::IsTerminal;

/// One engine's figure: a value, or why there is none.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Value(f64),
    Na {
        na: String,
    },
    /// Not applicable by the row's nature (printed as "—", no note).
    Blank,
}

impl Cell {
    pub fn na(reason: impl Into<String>) -> Cell {
        Cell::Na { na: reason.into() }
    }
    pub fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            Cell::Na { .. } | Cell::Blank => None,
        }
    }
}

/// What a row's numbers are.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub enum Unit {
    /// Events per second (higher is better): commits, entities, reads, records.
    #[serde(rename = "per_second")]
    PerSec(&'static str),
    /// Microseconds (lower is better).
    #[serde(rename = "microseconds")]
    Micros,
    /// A dimensionless ratio.
    #[serde(rename = "ratio")]
    Ratio,
    /// Mebibytes (lower is better).
    #[serde(rename = "mebibytes")]
    MiB,
}

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The workload's number ("1".."10", "scale", "mem") and variant letter.
    pub id: String,
    pub workload: String,
    pub unit: Unit,
    pub got: Cell,
    pub sqlite: Cell,
    pub redb: Cell,
    /// got ÷ SQLite and got ÷ redb, when both have a value.
    pub got_over_sqlite: Option<f64>,
    pub got_over_redb: Option<f64>,
    pub target: Option<String>,
    /// Whether got met the target (None: no target).
    pub met: Option<bool>,
    /// A durable rate above 1.1 × the disk's fsync rate: a sync is being skipped.
    pub flagged: bool,
    pub notes: Vec<String>,
}

impl Row {
    pub fn new(id: &str, workload: &str, unit: Unit, got: Cell, sqlite: Cell, redb: Cell) -> Row {
        let ratio = |p: &Cell| match (got.value(), p.value()) {
            (Some(g), Some(p)) if p > 0.0 => Some(g / p),
            _ => None,
        };
        Row {
            id: id.into(),
            workload: workload.into(),
            unit,
            got_over_sqlite: ratio(&sqlite),
            got_over_redb: ratio(&redb),
            got,
            sqlite,
            redb,
            target: None,
            met: None,
            flagged: false,
            notes: Vec::new(),
        }
    }

    pub fn target(mut self, text: impl Into<String>, met: bool) -> Row {
        self.target = Some(text.into());
        self.met = Some(met);
        self
    }

    pub fn note(mut self, n: impl Into<String>) -> Row {
        self.notes.push(n.into());
        self
    }
}

/// Three significant digits, with k/M for large counts.
pub fn fmt_value(v: f64, unit: Unit) -> String {
    let sig = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else if x >= 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    };
    match unit {
        Unit::PerSec(what) => {
            let s = if v >= 1e6 {
                format!("{}M", sig(v / 1e6))
            } else if v >= 1e4 {
                format!("{}k", sig(v / 1e3))
            } else {
                format!("{v:.0}")
            };
            format!("{s} {what}/s")
        }
        Unit::Micros => {
            if v >= 1000.0 {
                format!("{} ms", sig(v / 1000.0))
            } else {
                format!("{} µs", sig(v))
            }
        }
        Unit::Ratio => format!("{v:.2}"),
        Unit::MiB => format!("{} MiB", sig(v)),
    }
}

fn fmt_cell(c: &Cell, unit: Unit) -> String {
    match c {
        Cell::Value(v) => fmt_value(*v, unit),
        Cell::Na { .. } => "n/a".into(),
        Cell::Blank => "—".into(),
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.2}×"))
}

/// The whole run, as printed and as written to JSON.
#[derive(Debug, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    pub fdatasync_limit_per_sec: Option<f64>,
    pub rows: Vec<Row>,
    /// False when a durable rate was flagged: the run does not count.
    pub counts: bool,
    pub warnings: Vec<String>,
    pub wall_seconds: f64,
    /// Of which spent bringing the `got` binary up to date (cargo build).
    pub got_build_seconds: f64,
    pub commits_by_threads: Vec<CurvePoint>,
}

/// Commits per second at a thread count, for the plot.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct CurvePoint {
    pub threads: usize,
    pub got: Option<f64>,
    pub sqlite: Option<f64>,
    pub redb: Option<f64>,
}

fn display_width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let mut out = s.to_string();
    for _ in display_width(s)..w {
        out.push(' ');
    }
    out
}

impl Report {
    /// The table: one row per workload, then its notes indented under it.
    pub fn table(&self, color: bool) -> String {
        let head = [
            "#",
            "workload",
            "got",
            "sqlite",
            "redb",
            "got÷sqlite",
            "got÷redb",
            "target",
            "result",
        ];
        let mut lines: Vec<[String; 9]> = Vec::new();
        for r in &self.rows {
            let result = if r.flagged {
                "FLAGGED".to_string()
            } else {
                match r.met {
                    Some(true) => "MET".into(),
                    Some(false) => "MISSED".into(),
                    None => "—".into(),
                }
            };
            lines.push([
                r.id.clone(),
                r.workload.clone(),
                fmt_cell(&r.got, r.unit),
                fmt_cell(&r.sqlite, r.unit),
                fmt_cell(&r.redb, r.unit),
                fmt_ratio(r.got_over_sqlite),
                fmt_ratio(r.got_over_redb),
                r.target.clone().unwrap_or_else(|| "—".into()),
                result,
            ]);
        }
        let mut w = head.map(display_width);
        for l in &lines {
            for (i, c) in l.iter().enumerate() {
                w[i] = w[i].max(display_width(c));
            }
        }
        let mut out = String::new();
        let fmt_line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| pad(c, w[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let _ = writeln!(out, "{}", fmt_line(&head.map(String::from)));
        let _ = writeln!(
            out,
            "{}",
            w.iter()
                .map(|n| "-".repeat(*n))
                .collect::<Vec<_>>()
                .join("  ")
        );
        for (r, l) in self.rows.iter().zip(&lines) {
            let line = fmt_line(l);
            if r.flagged && color {
                let _ = writeln!(out, "\x1b[31m{line}\x1b[0m");
            } else {
                let _ = writeln!(out, "{line}");
            }
            let indent = " ".repeat(w[0] + 2);
            for (name, c) in [("got", &r.got), ("sqlite", &r.sqlite), ("redb", &r.redb)] {
                if let Cell::Na { na } = c {
                    let _ = writeln!(out, "{indent}  {name}: n/a ({na})");
                }
            }
            for n in &r.notes {
                let _ = writeln!(out, "{indent}  {n}");
            }
        }
        out
    }

    pub fn print(&self) {
        let m = &self.machine;
        println!(
            "machine: {} cores ({}), {:.0} GiB, kernel {}, data dir on {} ({})",
            m.cores, m.cpu, m.memory_gib, m.kernel, m.filesystem, m.data_dir
        );
        if let Some(l) = self.fdatasync_limit_per_sec {
            println!(
                "disk's fdatasync limit (the faster loop of row 1, interleaved with row 2): {l:.0}/s"
            );
        }
        println!(
            "mode: {}; medians of interleaved rounds (got, sqlite, redb, got, ...)",
            if self.quick { "--quick" } else { "full" }
        );
        println!();
        print!("{}", self.table(std::io::stdout().is_terminal()));
        println!();
        for w in &self.warnings {
            println!("warning: {w}");
        }
        if !self.counts {
            let msg = "FLAGGED: a durable commit rate is above 1.1 × the disk's fdatasync rate \
                       (a sync is being skipped); this run does not count";
            if std::io::stdout().is_terminal() {
                println!("\x1b[31m{msg}\x1b[0m");
            } else {
                println!("{msg}");
            }
        }
        println!(
            "wall time: {:.1} s (of which {:.1} s bringing the got binary up to date)",
            self.wall_seconds, self.got_build_seconds
        );
    }
}
