//! Live progress on a terminal: a spinner names the running phase and its
//! elapsed time; each phase that ends leaves its timing line behind.
//!
//! Log lines written while a spinner is drawn would land on the spinner's
//! line and be overwritten by its next tick, so the log writer
//! ([`StderrWriter`]) hides the spinner while it writes.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cluster::session::{PhaseObserver, PhaseTiming};

/// The spinner being drawn, if any (shared with the log writer).
static CURRENT: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Shows phases live on stderr.
#[derive(Debug, Default)]
pub struct PhaseSpinner;

impl PhaseSpinner {
    /// A spinner observer to hand to the session.
    pub fn shared() -> Arc<dyn PhaseObserver> {
        Arc::new(PhaseSpinner)
    }
}

impl PhaseObserver for PhaseSpinner {
    fn started(&self, phase: &'static str) {
        let bar = ProgressBar::new_spinner()
            .with_style(
                ProgressStyle::with_template("{spinner} {prefix:<10} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            )
            .with_prefix(phase);
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Some(old) = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(bar)
        {
            old.finish_and_clear();
        }
    }

    fn ended(&self, timing: &PhaseTiming) {
        if let Some(bar) = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
        eprintln!("{}", timing.line());
    }

    fn step(&self, what: &str) {
        if let Some(bar) = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            bar.set_message(what.to_string());
        }
    }
}

impl Drop for PhaseSpinner {
    fn drop(&mut self) {
        if let Some(bar) = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Stderr for the log subscriber: writes with the spinner hidden.
#[derive(Debug, Default)]
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
