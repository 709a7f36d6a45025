//! Progress on stderr: accounts done / total, failing findings so far, accounts waiting on AWS, elapsed time. Hidden when stderr is not a
//! terminal or with --quiet; stdout is never touched. Log lines written while the bar is shown go through
//! [`LogWriter`], which lifts the bar for the line so the two never garble each other.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyaudit_core::eval::Verdict;
use keyaudit_scanner::AccountDone;

/// The bar currently shown, if any, for [`LogWriter`].
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// stderr for `tracing`, suspending the progress bar around each log line.
///
/// Each line is written inert (`keyaudit_core::text::shown`): a log line carries names from member accounts (users,
/// OU paths, AWS's messages about them), and a control character or a bidirectional override in one must not
/// clear, recolour, forge or reorder lines on the reader's terminal. Only the line's own end stays a line break, so
/// the log has no colours of its own either (see `init_logging`).
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // tracing-subscriber hands over one whole formatted event per call.
        let text = String::from_utf8_lossy(buf);
        let (line, end) = text.strip_suffix('\n').map_or((&*text, ""), |line| (line, "\n"));
        let inert = format!("{}{end}", keyaudit_core::text::shown(line));
        let shown = SHOWN.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let written = match shown {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(inert.as_bytes())),
            None => std::io::stderr().write_all(inert.as_bytes()),
        }
        .map(|()| buf.len());
        // A reader that went away (`2>&1 | head`) is not an error: tracing-subscriber would report it with
        // `eprintln!`, which panics on the very stderr that is closed.
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

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
        bar.set_message("0 failing findings");
        if visible {
            *SHOWN.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        }
        Self { bar, failing: AtomicUsize::new(0) }
    }

    /// One more account found by discovery (the total grows while the walk goes on).
    pub(crate) fn account_found(&self) {
        self.bar.inc_length(1);
    }

    pub(crate) fn account_done(&self, done: &AccountDone<'_>) {
        let failing = done.findings.iter().filter(|f| f.verdict == Verdict::Fail && f.suppression.is_none()).count();
        self.failing.fetch_add(failing, Ordering::Relaxed);
        self.bar.inc(1);
    }

    /// Drives `scan`, refreshing the message (failing findings, accounts waiting on AWS for their credential
    /// report) while it runs.
    pub(crate) async fn while_running<T>(&self, scan: impl Future<Output = T>, waiting: &AtomicUsize) -> T {
        let mut scan = std::pin::pin!(scan);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                out = &mut scan => return out,
                _ = tick.tick() => {
                    let failing = self.failing.load(Ordering::Relaxed);
                    let msg = match waiting.load(Ordering::Relaxed) {
                        0 => format!("{failing} failing findings"),
                        n => format!("{failing} failing findings, {n} waiting on AWS for a credential report"),
                    };
                    self.bar.set_message(msg);
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        SHOWN.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.bar.finish_and_clear();
    }
}
