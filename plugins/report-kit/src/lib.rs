//! Shared code for reporter plugins: the summary SAF CLI's `view summary`
//! prints ([`summarize`]), escaping for each format ([`escape`]) and control
//! helpers ([`controls`]).
//!
//! Scans are grouped by the name of their first profile, in order of first
//! appearance; counts are summed over a group's files and the compliance is
//! the mean of the files' compliance scores.

pub mod controls;
pub mod escape;

use dscan_plugin_sdk::reporter::{OptionPair, Scan, SeverityCounts};

/// Status keys in SAF's output order, with the severities each lists.
pub const STATUS_ORDER: [&str; 5] = ["passed", "failed", "skipped", "error", "no_impact"];

/// One profile's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSummary {
    pub profile_name: String,
    /// File names of the scans in this group.
    pub result_sets: Vec<String>,
    /// Mean compliance of the group's scans.
    pub compliance: f64,
    /// `(status, [(severity, count)…, ("total", n)])` in SAF's order.
    pub statuses: Vec<(&'static str, Vec<(&'static str, u64)>)>,
}

impl ProfileSummary {
    /// The count for `status` and `key` (a severity or `total`), 0 if absent.
    pub fn count(&self, status: &str, key: &str) -> u64 {
        self.statuses
            .iter()
            .find(|(s, _)| *s == status)
            .and_then(|(_, row)| row.iter().find(|(k, _)| *k == key))
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

fn row(c: &SeverityCounts, with_none: bool) -> Vec<(&'static str, u64)> {
    let mut r = vec![
        ("critical", u64::from(c.critical)),
        ("high", u64::from(c.high)),
        ("medium", u64::from(c.medium)),
        ("low", u64::from(c.low)),
    ];
    if with_none {
        r.push(("none", u64::from(c.none)));
    }
    let total = r.iter().map(|(_, n)| n).sum();
    r.push(("total", total));
    r
}

/// Summarises scans the way `saf view summary` does.
pub fn summarize(scans: &[Scan]) -> Vec<ProfileSummary> {
    let mut out: Vec<ProfileSummary> = Vec::new();
    let mut scores: Vec<Vec<u32>> = Vec::new();
    for scan in scans {
        let name = scan
            .profiles
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let c = &scan.counts;
        let rows = [
            row(&c.passed, false),
            row(&c.failed, false),
            row(&c.not_reviewed, false),
            row(&c.profile_error, false),
            row(&c.not_applicable, true),
        ];
        match out.iter().position(|s| s.profile_name == name) {
            Some(i) => {
                out[i].result_sets.push(scan.source.clone());
                scores[i].push(c.compliance);
                for (si, r) in rows.into_iter().enumerate() {
                    for (slot, (_, n)) in out[i].statuses[si].1.iter_mut().zip(r) {
                        slot.1 += n;
                    }
                }
            }
            None => {
                out.push(ProfileSummary {
                    profile_name: name,
                    result_sets: vec![scan.source.clone()],
                    compliance: 0.0,
                    statuses: STATUS_ORDER.iter().copied().zip(rows).collect(),
                });
                scores.push(vec![c.compliance]);
            }
        }
    }
    for (s, sc) in out.iter_mut().zip(&scores) {
        s.compliance = sc.iter().map(|&x| f64::from(x)).sum::<f64>() / sc.len().max(1) as f64;
    }
    out
}

/// A number as JavaScript prints it (`66`, `66.5`).
pub fn js_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A YAML scalar: plain when unambiguous, otherwise double-quoted.
pub fn yaml_string(s: &str) -> String {
    let plain_chars = s
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ' | '(' | ')'));
    let starts_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_');
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    if plain_chars && starts_ok && !reserved && !s.ends_with(' ') && !s.contains(" -") {
        s.to_string()
    } else {
        let mut q = String::from("\"");
        for ch in s.chars() {
            match ch {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                '\n' => q.push_str("\\n"),
                '\t' => q.push_str("\\t"),
                c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    }
}

/// Options every built-in reporter accepts: the host's verdict, and the
/// format options `dscan report --option` passes whatever the format (a
/// reporter ignores those that do not apply to it).
pub const SHARED_OPTIONS: [&str; 7] = [
    "verdict",
    "verdict-detail",
    "failures",
    "title-table",
    "pretty",
    "top",
    "target",
];

/// Refuses an option outside the shared vocabulary and the reporter's own
/// keys, so a misspelt `--plugin-opt` key is an error, not a no-op.
pub fn check_options(options: &[OptionPair], own: &[&str]) -> Result<(), String> {
    let mut known = SHARED_OPTIONS.to_vec();
    known.extend_from_slice(own);
    dscan_plugin_sdk::check_options(
        options.iter().map(|o| (o.key.as_str(), o.value.as_str())),
        &known,
    )
}

/// A boolean option (`true`/`false`), `default` when absent.
pub fn bool_option(options: &[OptionPair], key: &str, default: bool) -> Result<bool, String> {
    match dscan_plugin_sdk::option(
        options.iter().map(|o| (o.key.as_str(), o.value.as_str())),
        key,
    ) {
        None => Ok(default),
        Some("true" | "yes" | "1") => Ok(true),
        Some("false" | "no" | "0") => Ok(false),
        Some(other) => Err(format!("option {key}: `{other}` is not true or false")),
    }
}

/// A string option, `None` when absent.
pub fn str_option<'a>(options: &'a [OptionPair], key: &str) -> Option<&'a str> {
    dscan_plugin_sdk::option(
        options.iter().map(|o| (o.key.as_str(), o.value.as_str())),
        key,
    )
}

/// The threshold verdict the host passes to reporters (`verdict=passed` or
/// `failed`, `verdict-detail=<first failure>`), if thresholds were evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub passed: bool,
    pub detail: Option<String>,
}

/// Reads the verdict options; `Err` on a malformed value.
pub fn verdict(options: &[OptionPair]) -> Result<Option<Verdict>, String> {
    let detail = str_option(options, "verdict-detail").map(str::to_string);
    match str_option(options, "verdict") {
        None => Ok(None),
        Some("passed") => Ok(Some(Verdict {
            passed: true,
            detail,
        })),
        Some("failed") => Ok(Some(Verdict {
            passed: false,
            detail,
        })),
        Some(other) => Err(format!("option verdict: `{other}` is not passed or failed")),
    }
}

/// One row of a fleet's per-target table: the host passes one `target`
/// option per container, `namespace<TAB>pod<TAB>container<TAB>image
/// digest<TAB>verdict<TAB>compliance`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub image_id: String,
    pub verdict: String,
    pub compliance: String,
}

/// The fleet's per-target rows (none for a single scan); `Err` on a
/// malformed row.
pub fn target_rows(options: &[OptionPair]) -> Result<Vec<TargetRow>, String> {
    options
        .iter()
        .filter(|o| o.key == "target")
        .map(|o| {
            let f: Vec<&str> = o.value.split('\t').collect();
            match f.as_slice() {
                [ns, pod, container, image, verdict, compliance] => Ok(TargetRow {
                    namespace: ns.to_string(),
                    pod: pod.to_string(),
                    container: container.to_string(),
                    image_id: image.to_string(),
                    verdict: verdict.to_string(),
                    compliance: compliance.to_string(),
                }),
                _ => Err(format!(
                    "option target: `{}` is not six tab-separated fields",
                    o.value
                )),
            }
        })
        .collect()
}
