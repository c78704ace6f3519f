//! How the CLI draws text that more than one command shows: tables of rows
//! (comfy-table, no borders), the dashboard, and the styles of its headings
//! and statuses (anstyle). Styled text goes out through [`super::ctx::Ctx::print`],
//! whose stream (anstream) drops the styles when stdout is not a terminal or
//! `NO_COLOR` is set, so nothing here decides whether colour is shown.

use anstyle::{AnsiColor, Style};
use comfy_table::{presets, Table};
use got::board::Dashboard;
use got::json::format_ms;
use got::tasks::{self, prop_str};
use got::{handoffs, Entity};

/// Section headings of the dashboard.
const HEAD: Style = Style::new().bold();

/// A status word in the colour of its state.
pub fn status(st: &str) -> String {
    let colour = match st {
        "completed" => AnsiColor::Green,
        "in_progress" => AnsiColor::Cyan,
        "blocked" => AnsiColor::Red,
        _ => AnsiColor::Yellow,
    };
    let s = Style::new().fg_color(Some(colour.into()));
    format!("{s}{st}{s:#}")
}

fn head(s: &str) -> String {
    format!("{HEAD}{s}{HEAD:#}")
}

/// Cuts `s` to `n` characters, marking the cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n.saturating_sub(1)).collect();
        c.push('…');
        c
    }
}

/// Rows as aligned columns two spaces apart, each line starting with `indent`
/// and without trailing blanks; `header` (if any) is the first line. Cells are
/// plain text: comfy-table measures them, so they carry no styles.
pub fn table<R: IntoIterator<Item = String>>(
    indent: &str,
    header: Option<&[&str]>,
    rows: impl IntoIterator<Item = R>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if let Some(h) = header {
        t.set_header(h.to_vec());
    }
    for r in rows {
        t.add_row(r.into_iter().collect::<Vec<_>>());
    }
    let columns = t.column_count();
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, if i + 1 == columns { 0 } else { 2 }));
    }
    t.lines()
        .map(|l| format!("{indent}{}", l.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A handoff as a row: id, status, `from -> to`, task (the lists add the
/// instructions).
pub fn handoff_cells(h: &Entity) -> Vec<String> {
    vec![
        h.id.clone(),
        handoffs::status(h).into(),
        format!(
            "{} -> {}",
            prop_str(h, "from").unwrap_or("?"),
            prop_str(h, "to").unwrap_or("?")
        ),
        prop_str(h, "task").unwrap_or("?").into(),
    ]
}

fn title(e: &Entity) -> &str {
    prop_str(e, "title").unwrap_or("")
}

/// A section of the dashboard: its heading, then its rows or `empty`.
fn section(out: &mut String, name: &str, empty: &str, rows: Vec<Vec<String>>) {
    out.push_str(&format!("\n\n{}\n", head(name)));
    if rows.is_empty() {
        out.push_str(&format!("  {empty}"));
    } else {
        out.push_str(&table("  ", None, rows));
    }
}

/// `got dashboard`'s text: the counts by status, then one section each for the
/// ready queue, the work in progress, what is blocked, pending handoffs, recent
/// decisions and open sprints.
pub fn dashboard(d: &Dashboard) -> String {
    let mut s = format!(
        "{}  {}",
        head("TASKS"),
        d.counts
            .iter()
            .map(|(st, n)| format!("{} {n}", status(st)))
            .collect::<Vec<_>>()
            .join("  ")
    );
    let ready = d.ready.iter().map(|t| {
        vec![
            t.id.clone(),
            prop_str(t, "priority").unwrap_or("-").into(),
            title(t).into(),
        ]
    });
    section(&mut s, "READY", "(nothing ready)", ready.collect());
    let wip = d.in_progress.iter().flat_map(|(agent, ts)| {
        ts.iter().map(move |t| {
            let lease = tasks::lease_expires_at(t)
                .map(|ms| format!("lease until {}", format_ms(ms)))
                .unwrap_or_default();
            vec![agent.clone(), t.id.clone(), title(t).into(), lease]
        })
    });
    section(&mut s, "IN PROGRESS", "(none)", wip.collect());
    let by_hand = d.blocked.by_hand.iter().map(|t| {
        let why = prop_str(t, "blocked_reason").unwrap_or("?");
        vec![t.id.clone(), title(t).into(), format!("— {why}")]
    });
    let waiting = d.blocked.waiting.iter().map(|(t, open)| {
        let on: Vec<&str> = open.iter().map(|d| d.id.as_str()).collect();
        vec![
            t.id.clone(),
            title(t).into(),
            format!("— waits on {}", on.join(", ")),
        ]
    });
    section(
        &mut s,
        "BLOCKED",
        "(none)",
        by_hand.chain(waiting).collect(),
    );
    let pending = d.handoffs.iter().map(handoff_cells);
    section(&mut s, "HANDOFFS", "(none pending)", pending.collect());
    let decisions = d
        .decisions
        .iter()
        .map(|x| vec![x.id.clone(), title(x).into()]);
    section(&mut s, "DECISIONS", "(none)", decisions.collect());
    let sprints = d.sprints.iter().map(|(sp, p)| {
        const CELLS: usize = 20;
        let filled = (p.percent() as usize).min(100) * CELLS / 100;
        vec![
            sp.id.clone(),
            prop_str(sp, "status").unwrap_or("-").into(),
            format!(
                "[{}{}] {:>3}%",
                "#".repeat(filled),
                ".".repeat(CELLS - filled),
                p.percent()
            ),
            title(sp).into(),
        ]
    });
    section(&mut s, "SPRINTS", "(none open)", sprints.collect());
    s
}

#[cfg(test)]
mod tests {
    use super::{clip, table};

    #[test]
    fn columns_align_two_spaces_apart_without_trailing_blanks() {
        let rows = vec![
            vec!["T-1".to_string(), "pending".into(), "a".into()],
            vec!["T-22".to_string(), "in_progress".into(), String::new()],
        ];
        assert_eq!(
            table("  ", Some(&["ID", "STATUS", "TITLE"]), rows),
            "  ID    STATUS       TITLE\n  T-1   pending      a\n  T-22  in_progress"
        );
    }

    #[test]
    fn clip_marks_the_cut_and_counts_characters() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
        assert_eq!(clip("ééé", 3), "ééé");
    }
}
