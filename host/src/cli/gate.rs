//! The gate: thresholds judged by every evaluator plugin, reports rendered
//! by reporter plugins, and the verdict. Shared by `dscan scan` and
//! `dscan exec`; everything a user can get wrong is checked by
//! [`Gate::prepare`], before any scan runs.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliError, GlobalOptions};
use crate::plugin::{PluginKind, PluginSet};
use crate::results::{self, ParseOptions, Scan};

/// An empty HDF report: evaluators judge it at preparation so a malformed
/// threshold or a refused option stops the run before it starts.
const EMPTY_RESULTS: &[u8] = br#"{"platform":{"name":"none","release":"none"},"profiles":[{"name":"dscan-threshold-check","version":"0","sha256":"","title":"","supports":[],"attributes":[],"groups":[],"controls":[],"status":"loaded"}],"statistics":{"duration":0},"version":"dscan"}"#;

/// Thresholds, reports and the plugins that serve them, validated.
pub(super) struct Gate {
    /// The loaded plugins (evaluators, reporters, and whatever else the
    /// caller asked for).
    pub plugins: Arc<PluginSet>,
    /// Threshold text and whether it is inline.
    pub threshold: (String, bool),
    /// `--report FORMAT[=PATH]` (no path: stdout).
    pub reports: Vec<(String, Option<PathBuf>)>,
}

/// What the gate decided.
pub(super) struct Verdict {
    /// Every evaluator passed.
    pub passed: bool,
    /// One line per failing evaluator.
    pub failures: Vec<String>,
}

impl Gate {
    /// Loads the plugins of `kinds` (evaluators and reporters always),
    /// checks every report format is served and every evaluator accepts
    /// the threshold and its options.
    pub fn prepare(
        global: &GlobalOptions,
        threshold: (String, bool),
        reports: &[String],
        kinds: &[PluginKind],
    ) -> Result<Gate, CliError> {
        let reports: Vec<(String, Option<PathBuf>)> = reports
            .iter()
            .map(|r| match r.split_once('=') {
                Some((f, p)) => (f.to_string(), Some(PathBuf::from(p))),
                None => (r.clone(), None),
            })
            .collect();
        let mut all = vec![PluginKind::ThresholdEvaluator, PluginKind::Reporter];
        for k in kinds {
            if !all.contains(k) {
                all.push(*k);
            }
        }
        let plugins = global.load_plugins(&all)?;
        for (format, _) in &reports {
            plugins.get(PluginKind::Reporter, format)?;
        }
        let empty = results::parse(
            EMPTY_RESULTS,
            "(threshold check)",
            &ParseOptions { keep_raw: false },
        )?;
        super::validate::judge(global, &plugins, &empty, &threshold.0, threshold.1)?;
        Ok(Gate {
            plugins: Arc::new(plugins),
            threshold,
            reports,
        })
    }

    /// Judges `scan` and renders every report. The verdict a report shows
    /// is the host's: a user's `verdict`/`verdict-detail` option never
    /// overrides it.
    pub fn apply(&self, global: &GlobalOptions, scan: &Scan) -> Result<Verdict, CliError> {
        let judgement = super::validate::judge(
            global,
            &self.plugins,
            scan,
            &self.threshold.0,
            self.threshold.1,
        )?;
        let passed = judgement.failures.is_empty();
        for (format, path) in &self.reports {
            let reporter = self.plugins.get(PluginKind::Reporter, format)?;
            let mut options: Vec<(String, String)> = global
                .options_for(&reporter.info().name)?
                .into_iter()
                .filter(|(k, _)| k != "verdict" && k != "verdict-detail")
                .collect();
            options.push((
                "verdict".to_string(),
                if passed { "passed" } else { "failed" }.to_string(),
            ));
            if let Some(first) = judgement.failures.first() {
                options.push(("verdict-detail".into(), first.clone()));
            }
            let bytes = reporter.render(std::slice::from_ref(scan), &options)?;
            match path {
                Some(p) => std::fs::write(p, &bytes).map_err(|source| CliError::Io {
                    what: "cannot write report",
                    path: p.display().to_string(),
                    source,
                })?,
                None => {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)
                        .and_then(|_| out.write_all(b"\n"))
                        .map_err(|source| CliError::Io {
                            what: "cannot write",
                            path: "stdout".into(),
                            source,
                        })?;
                }
            }
        }
        Ok(Verdict {
            passed,
            failures: judgement.failures,
        })
    }
}
