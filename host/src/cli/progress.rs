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

/// A fleet run on a terminal: one live line per running scan (its target
/// and what it is doing) above a total bar.
#[derive(Debug)]
pub struct FleetBars {
    multi: indicatif::MultiProgress,
    total: ProgressBar,
    lines: Mutex<std::collections::BTreeMap<String, ProgressBar>>,
}

impl crate::fleet::FleetObserver for FleetBars {
    fn planned(&self, total: usize) {
        self.total.set_length(total as u64);
    }

    fn started(&self, target: &str) {
        let line = self.multi.insert_before(
            &self.total,
            ProgressBar::new_spinner()
                .with_style(
                    ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                )
                .with_prefix(target.to_string()),
        );
        line.enable_steady_tick(Duration::from_millis(120));
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(target.to_string(), line);
    }

    fn step(&self, target: &str, what: &str) {
        if let Some(line) = self
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(target)
        {
            line.set_message(what.to_string());
        }
    }

    fn ended(&self, target: &str, ok: bool) {
        if let Some(line) = self
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(target)
        {
            line.finish_and_clear();
        }
        let _ = self.multi.println(format!(
            "{} {target}",
            if ok { "scanned" } else { "FAILED " }
        ));
        self.total.inc(1);
    }
}

impl Drop for FleetBars {
    fn drop(&mut self) {
        self.total.finish_and_clear();
    }
}

/// Live fleet progress for human output on a terminal; `None` otherwise.
pub fn fleet_progress(
    output: super::cluster_args::OutputFormat,
) -> Option<Arc<dyn crate::fleet::FleetObserver>> {
    use std::io::IsTerminal;
    if output != super::cluster_args::OutputFormat::Human || !std::io::stderr().is_terminal() {
        return None;
    }
    let multi = indicatif::MultiProgress::new();
    let total = multi.add(
        ProgressBar::new(0).with_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} scans, {elapsed} ")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
    );
    Some(Arc::new(FleetBars {
        multi,
        total,
        lines: Mutex::new(Default::default()),
    }))
}
