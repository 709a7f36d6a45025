//! Progress on stderr: accounts done / total, failing keys so far, elapsed time. Hidden when stderr is not a
//! terminal or with --quiet; stdout is never touched.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyaudit_core::eval::Verdict;
use keyaudit_scanner::AccountDone;

pub(crate) struct Progress {
    bar: ProgressBar,
    failing: AtomicUsize,
}

impl Progress {
    pub(crate) fn new(total: usize, quiet: bool) -> Self {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(total as u64), target);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} accounts  {msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message("0 failing keys");
        Self { bar, failing: AtomicUsize::new(0) }
    }

    pub(crate) fn account_done(&self, done: &AccountDone<'_>) {
        let failing = done.findings.iter().filter(|f| f.verdict == Verdict::Fail).count();
        let total = self.failing.fetch_add(failing, Ordering::Relaxed) + failing;
        self.bar.set_message(format!("{total} failing keys"));
        self.bar.inc(1);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
