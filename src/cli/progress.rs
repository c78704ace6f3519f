//! A progress bar on stderr for long work (import, export, backup, verify):
//! drawn only when stderr is a terminal and neither `--json` nor `--quiet` is
//! given, at most about 20 times a second, and ended with a newline.

use super::ctx::Ctx;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

pub struct Bar {
    enabled: bool,
    drawn: bool,
    last: Option<Instant>,
}

impl Bar {
    pub fn new(ctx: &Ctx) -> Bar {
        Bar {
            enabled: std::io::stderr().is_terminal() && !ctx.json && !ctx.quiet,
            drawn: false,
            last: None,
        }
    }

    /// Shows `done` of `total` for `what` (a phase name such as "runs").
    pub fn update(&mut self, what: &str, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let finished = done >= total;
        if !finished
            && self
                .last
                .is_some_and(|t| now - t < Duration::from_millis(50))
        {
            return;
        }
        self.last = Some(now);
        self.drawn = true;
        eprint!("\r\x1b[2K{}", line(what, done, total));
    }

    /// Ends the bar's line (if one was drawn), so that output starts afresh.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `what [#####.....] done/total`, 30 cells wide; a zero total reads as done.
fn line(what: &str, done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done.min(total) * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH);
    format!(
        "{what:<10} [{}{}] {done}/{total}",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    )
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn the_bar_fills_in_proportion_and_never_overflows() {
        assert_eq!(
            line("runs", 0, 10),
            format!("runs       [{}] 0/10", ".".repeat(30))
        );
        assert_eq!(
            line("runs", 5, 10),
            format!("runs       [{}{}] 5/10", "#".repeat(15), ".".repeat(15))
        );
        assert_eq!(
            line("x", 12, 10),
            format!("x          [{}] 12/10", "#".repeat(30))
        );
        assert_eq!(
            line("x", 0, 0),
            format!("x          [{}] 0/0", "#".repeat(30))
        );
    }
}
