//! A progress bar on stderr for long work (import, export, backup, verify),
//! drawn by indicatif: only when stderr is a terminal (indicatif hides it
//! otherwise) and neither `--json` nor `--quiet` is given, at most 20 times a
//! second, and left on its line when the work ends.

use super::ctx::Ctx;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar {
    bar: ProgressBar,
    what: String,
}

impl Bar {
    pub fn new(ctx: &Ctx) -> Bar {
        let target = if ctx.json || ctx.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr_with_hz(20)
        };
        let style = ProgressStyle::with_template("{msg:<10} [{bar:30}] {pos}/{len}")
            .expect("a valid template")
            .progress_chars("##.");
        Bar {
            bar: ProgressBar::with_draw_target(None, target).with_style(style),
            what: String::new(),
        }
    }

    /// Shows `done` of `total` for `what` (a phase name such as "runs").
    pub fn update(&mut self, what: &str, done: u64, total: u64) {
        if self.what != what {
            self.what = what.to_string();
            self.bar.set_message(self.what.clone());
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    /// Ends the bar, leaving its last state on its line.
    pub fn finish(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish();
        }
    }
}
