//! The results phase: thresholds judged by every evaluator plugin, reports
//! rendered by reporter plugins with the gate's verdict. One module serves
//! `scan`, `exec`, `report` and `validate`; [`Gate::prepare`] checks
//! everything a user can get wrong (threshold syntax, option names and
//! keys, report formats) before any scan runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::plugin::{EvaluationRequest, PluginError, PluginKind, PluginSet};
use crate::results::{self, HdfError, ParseOptions, Scan};

/// An empty HDF report: plugins judge and render it at preparation, so a
/// malformed threshold or a refused option stops the run before it starts.
const EMPTY_RESULTS: &[u8] = br#"{"platform":{"name":"none","release":"none"},"profiles":[{"name":"dscan-threshold-check","version":"0","sha256":"","title":"","supports":[],"attributes":[],"groups":[],"controls":[],"status":"loaded"}],"statistics":{"duration":0},"version":"dscan"}"#;

/// The threshold dscan applies when none is given (as the reference
/// workflow does).
pub const DEFAULT_THRESHOLD: &str = "{compliance.min: 70}";

/// Options only the host sets (a user's are dropped): the verdict, and a
/// fleet's per-target rows.
const HOST_KEYS: [&str; 3] = ["verdict", "verdict-detail", "target"];

/// What went wrong in the results phase.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Bad input: an option, a threshold source, a report target.
    #[error("{0}")]
    Usage(String),
    /// A plugin failed or refused its input.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// A results document is unusable.
    #[error(transparent)]
    Results(#[from] HdfError),
    /// Reading a threshold file or writing a report failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl GateError {
    /// The exit code this error ends a run with.
    pub fn exit_code(&self) -> u8 {
        match self {
            GateError::Usage(_) | GateError::Results(_) => crate::exit::USAGE,
            GateError::Plugin(p) => p.exit_code(),
            GateError::Io { .. } => crate::exit::IO,
        }
    }
}

/// `--plugin-opt NAME:KEY=VALUE` options, parsed once.
#[derive(Debug, Clone, Default)]
pub struct PluginOptions {
    entries: Vec<(String, String, String)>,
}

impl PluginOptions {
    /// Parses the raw flags; each must be `NAME:KEY=VALUE`.
    pub fn parse(raw: &[String]) -> Result<PluginOptions, GateError> {
        let mut entries = Vec::with_capacity(raw.len());
        for r in raw {
            let parsed = r
                .split_once(':')
                .and_then(|(name, kv)| kv.split_once('=').map(|(k, v)| (name, k, v)));
            let Some((name, key, value)) = parsed else {
                return Err(GateError::Usage(format!(
                    "--plugin-opt `{r}` is not NAME:KEY=VALUE (e.g. nist-gate:families=AC,SC)"
                )));
            };
            entries.push((name.to_string(), key.to_string(), value.to_string()));
        }
        Ok(PluginOptions { entries })
    }

    /// The options addressed to `plugin`, in the order given.
    pub fn for_plugin(&self, plugin: &str) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|(n, _, _)| n == plugin)
            .map(|(_, k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every option names a loaded plugin.
    pub fn check_names(&self, plugins: &PluginSet) -> Result<(), GateError> {
        let loaded: Vec<&str> = plugins
            .entries()
            .iter()
            .map(|e| e.plugin.info().name.as_str())
            .collect();
        for (name, key, _) in &self.entries {
            if !loaded.contains(&name.as_str()) {
                return Err(GateError::Usage(format!(
                    "--plugin-opt {name}:{key}=…: no plugin named {name} takes part in this command (these do: {})",
                    loaded.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Threshold text and where it came from.
#[derive(Debug, Clone)]
pub struct Thresholds {
    /// The text (a file's content or the inline string).
    pub text: String,
    /// It is an inline `-I` string.
    pub inline: bool,
    /// It is dscan's default (the user gave none).
    pub default: bool,
}

impl Thresholds {
    /// From `-T FILE` or `-I TEXT`; `None` when neither is given.
    pub fn from_flags(
        file: Option<&Path>,
        inline: Option<&str>,
    ) -> Result<Option<Thresholds>, GateError> {
        match (file, inline) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| GateError::Io {
                    what: "cannot read threshold file",
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(Some(Thresholds {
                    text,
                    inline: false,
                    default: false,
                }))
            }
            (None, Some(text)) => Ok(Some(Thresholds {
                text: text.to_string(),
                inline: true,
                default: false,
            })),
            (None, None) => Ok(None),
        }
    }

    /// dscan's default threshold.
    pub fn default_gate() -> Thresholds {
        Thresholds {
            text: DEFAULT_THRESHOLD.to_string(),
            inline: true,
            default: true,
        }
    }
}

/// The outcome of running every evaluator.
#[derive(Debug, Clone, Default)]
pub struct Judgement {
    /// One line per failing evaluator: SAF's message for the built-in one,
    /// `name: message` for others.
    pub failures: Vec<String>,
    /// Every check made, as `[evaluator] PASS|FAIL message`.
    pub checks: Vec<String>,
}

impl Judgement {
    /// Every evaluator passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every loaded threshold evaluator on `scan`, built-in first.
pub fn judge(
    plugins: &PluginSet,
    options: &PluginOptions,
    scan: &Scan,
    thresholds: &Thresholds,
) -> Result<Judgement, GateError> {
    let mut judgement = Judgement::default();
    for (i, evaluator) in plugins.of_kind(PluginKind::ThresholdEvaluator).enumerate() {
        let name = &evaluator.info().name;
        let request = EvaluationRequest {
            threshold: Some(thresholds.text.clone()),
            inline: thresholds.inline,
            options: options.for_plugin(name),
        };
        let verdict = evaluator.evaluate(scan, &request)?;
        for c in &verdict.checks {
            judgement.checks.push(format!(
                "[{name}] {} {}",
                if c.passed { "PASS" } else { "FAIL" },
                c.message
            ));
        }
        if !verdict.passed {
            let message = verdict
                .checks
                .iter()
                .find(|c| !c.passed)
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "verdict: failed".into());
            // The built-in evaluator's messages stay byte-identical to SAF's;
            // others are prefixed with their name.
            judgement
                .failures
                .push(if i == 0 && name == "saf-thresholds" {
                    message
                } else {
                    format!("{name}: {message}")
                });
        }
    }
    Ok(judgement)
}

/// The options a reporter gets: the user's, then the gate's verdict (a
/// user's `verdict` option never wins).
pub fn report_options(
    mut user: Vec<(String, String)>,
    judgement: Option<&Judgement>,
) -> Vec<(String, String)> {
    user.retain(|(k, _)| !HOST_KEYS.contains(&k.as_str()));
    if let Some(j) = judgement {
        user.push((
            "verdict".into(),
            if j.passed() { "passed" } else { "failed" }.into(),
        ));
        if let Some(first) = j.failures.first() {
            user.push(("verdict-detail".into(), first.clone()));
        }
    }
    user
}

/// Where a report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    /// The reporter's format name.
    pub format: String,
    /// The file; `None`: standard output.
    pub path: Option<PathBuf>,
}

impl ReportTarget {
    /// Parses `FORMAT` or `FORMAT=PATH`.
    pub fn parse(raw: &str) -> ReportTarget {
        match raw.split_once('=') {
            Some((f, p)) => ReportTarget {
                format: f.to_string(),
                path: Some(PathBuf::from(p)),
            },
            None => ReportTarget {
                format: raw.to_string(),
                path: None,
            },
        }
    }
}

/// Thresholds, reports, options and the plugins that serve them, checked.
pub struct Gate {
    /// The loaded plugins.
    pub plugins: Arc<PluginSet>,
    /// The `--plugin-opt` options.
    pub options: PluginOptions,
    /// The thresholds judged.
    pub thresholds: Thresholds,
    /// The reports rendered.
    pub reports: Vec<ReportTarget>,
}

/// What the gate decided, and the reports meant for standard output.
pub struct Verdict {
    /// The evaluators' judgement.
    pub judgement: Judgement,
    /// Rendered reports without a file, in order.
    pub stdout: Vec<Vec<u8>>,
}

impl Gate {
    /// Checks, before any scan: every option names a loaded plugin; every
    /// report format is served and its reporter accepts its options; every
    /// evaluator accepts the thresholds and its options.
    pub fn prepare(
        plugins: Arc<PluginSet>,
        options: PluginOptions,
        thresholds: Thresholds,
        reports: Vec<ReportTarget>,
    ) -> Result<Gate, GateError> {
        options.check_names(&plugins)?;
        let empty = results::parse(
            EMPTY_RESULTS,
            "(threshold check)",
            &ParseOptions { keep_raw: false },
        )?;
        let judgement = judge(&plugins, &options, &empty, &thresholds)?;
        for r in &reports {
            let reporter = plugins.get(PluginKind::Reporter, &r.format)?;
            let opts = report_options(options.for_plugin(&reporter.info().name), Some(&judgement));
            reporter.render(std::slice::from_ref(&empty), &opts)?;
        }
        Ok(Gate {
            plugins,
            options,
            thresholds,
            reports,
        })
    }

    /// Judges `scan` and renders every report (files are written here;
    /// standard-output reports are returned in order).
    pub fn apply(&self, scan: &Scan) -> Result<Verdict, GateError> {
        let judgement = self.judge(scan)?;
        let stdout = self.render(std::slice::from_ref(scan), &judgement, &[])?;
        Ok(Verdict { judgement, stdout })
    }

    /// Judges one scan against the thresholds.
    pub fn judge(&self, scan: &Scan) -> Result<Judgement, GateError> {
        judge(&self.plugins, &self.options, scan, &self.thresholds)
    }

    /// Renders every report over `scans` with the verdict `judgement` and
    /// the host's `extra` options (a fleet's per-target rows); files are
    /// written here, standard-output reports returned in order.
    pub fn render(
        &self,
        scans: &[Scan],
        judgement: &Judgement,
        extra: &[(String, String)],
    ) -> Result<Vec<Vec<u8>>, GateError> {
        let mut stdout = Vec::new();
        for r in &self.reports {
            let reporter = self.plugins.get(PluginKind::Reporter, &r.format)?;
            let mut opts = report_options(
                self.options.for_plugin(&reporter.info().name),
                Some(judgement),
            );
            opts.extend(extra.iter().cloned());
            let bytes = reporter.render(scans, &opts)?;
            match &r.path {
                Some(p) => std::fs::write(p, &bytes).map_err(|source| GateError::Io {
                    what: "cannot write report",
                    path: p.display().to_string(),
                    source,
                })?,
                None => stdout.push(bytes),
            }
        }
        Ok(stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_options_parse_and_route_by_name() {
        let o = PluginOptions::parse(&["a:k=v".into(), "b:x=1=2".into(), "a:k=w".into()]).unwrap();
        assert_eq!(
            o.for_plugin("a"),
            vec![
                ("k".to_string(), "v".to_string()),
                ("k".to_string(), "w".to_string())
            ]
        );
        assert_eq!(
            o.for_plugin("b"),
            vec![("x".to_string(), "1=2".to_string())]
        );
        assert!(PluginOptions::parse(&["no-colon".into()]).is_err());
        assert!(PluginOptions::parse(&["a:no-equals".into()]).is_err());
    }

    #[test]
    fn the_hosts_verdict_replaces_a_users() {
        let j = Judgement {
            failures: vec!["too few".into()],
            checks: vec![],
        };
        let opts = report_options(
            vec![
                ("verdict".into(), "passed".into()),
                ("top".into(), "3".into()),
            ],
            Some(&j),
        );
        assert_eq!(
            opts,
            vec![
                ("top".to_string(), "3".to_string()),
                ("verdict".to_string(), "failed".to_string()),
                ("verdict-detail".to_string(), "too few".to_string()),
            ]
        );
        assert_eq!(
            ReportTarget::parse("junit=a=b.xml").path,
            Some(PathBuf::from("a=b.xml"))
        );
    }
}
