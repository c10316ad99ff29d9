//! Parsing InSpec exec JSON ("HDF") into a [`Scan`].
//!
//! The rules (checked against SAF CLI 1.5.3 / inspecjs):
//! - a result's status is `error` when it carries a truthy `backtrace`;
//! - control status, first rule wins: any error → Profile Error; waived or
//!   impact 0 → Not Applicable; no results → Profile Error; any failed →
//!   Failed; any passed → Passed; any skipped → Not Reviewed; else Profile
//!   Error;
//! - severity: `tags.severityoverride`, else `tags.severity`, when it names a
//!   severity (case-insensitively; dscan lower-cases it, SAF keeps the case and
//!   then counts `"High"` nowhere), else from the impact;
//! - overlays: a profile naming a `parent_profile` is linked under the first
//!   profile of that name, and its controls to the same id in the profiles it
//!   extends; controls of unlinked profiles link to the first control with the
//!   same id that has results. Only the first profile's controls that nothing
//!   extends are counted, each with its deepest ("root") control's data.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::model::{
    Control, ControlStatus, Counts, Description, Platform, Profile, ResultStatus, Scan, Severity,
    TestResult,
};

/// Why a results document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HdfError {
    /// The file could not be read.
    #[error("cannot read results file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON at all (binary data, a YAML file…).
    #[error(
        "{source_name} is not JSON results: it starts with {found}; expected InSpec / CINC Auditor JSON (`--reporter json`)"
    )]
    NotJson {
        /// File name.
        source_name: String,
        /// What it starts with.
        found: String,
    },
    /// Malformed or wrongly typed JSON.
    #[error("{source_name} is not valid InSpec JSON: {detail}")]
    Invalid {
        /// File name.
        source_name: String,
        /// serde_json's explanation with line and column.
        detail: String,
    },
    /// json-min output, which lacks profiles and impacts.
    #[error(
        "{source_name} is InSpec's json-min output, which has no profiles or impacts to compute \
         status and severity from; re-run the scan with `--reporter json`"
    )]
    JsonMin {
        /// File name.
        source_name: String,
    },
    /// JSON, but not results.
    #[error(
        "{source_name} is not InSpec / HDF results: it has no `profiles` list (top-level keys: {keys})"
    )]
    NotHdf {
        /// File name.
        source_name: String,
        /// What is there.
        keys: String,
    },
    /// Results with no profiles.
    #[error(
        "{source_name} contains no profiles, so there is nothing to evaluate (did the scan run?)"
    )]
    NoProfiles {
        /// File name.
        source_name: String,
    },
    /// Overlay links that loop.
    #[error(
        "{source_name}: the overlay links of control `{control}` form a cycle (profile `{profile}` extends itself)"
    )]
    OverlayCycle {
        /// File name.
        source_name: String,
        /// The control.
        control: String,
        /// A profile on the cycle.
        profile: String,
    },
}

/// Options for [`parse`].
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Keep the original text in [`Scan::raw_json`] (for plugins that ask).
    pub keep_raw: bool,
}

/// Reads and parses a results file. Non-JSON input is rejected after reading
/// only its first bytes, so a huge binary file costs no memory.
pub fn read_file(path: &Path, options: &ParseOptions) -> Result<Scan, HdfError> {
    let display = path.display().to_string();
    let read_err = |e| HdfError::Read {
        path: display.clone(),
        source: e,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut head = vec![0u8; 4096];
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..]).map_err(read_err)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    head.truncate(filled);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| display.clone());
    sniff(&head, &name)?;
    let mut bytes = head;
    file.read_to_end(&mut bytes).map_err(read_err)?;
    parse(&bytes, &name, options)
}

/// Checks the first bytes look like a JSON object.
fn sniff(head: &[u8], name: &str) -> Result<(), HdfError> {
    let body = head
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(head);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        Some(_) => {
            let shown: String = String::from_utf8_lossy(&body[..body.len().min(16)])
                .chars()
                .map(|c| {
                    if c.is_control() || c == '\u{fffd}' {
                        '.'
                    } else {
                        c
                    }
                })
                .collect();
            Err(HdfError::NotJson {
                source_name: name.to_string(),
                found: format!("`{}`", shown.trim()),
            })
        }
        None => Err(HdfError::NotJson {
            source_name: name.to_string(),
            found: "nothing (the file is empty)".into(),
        }),
    }
}

#[derive(Deserialize)]
struct RawDoc {
    #[serde(default)]
    platform: Option<RawPlatform>,
    #[serde(default)]
    profiles: Option<Vec<RawProfile>>,
    #[serde(default)]
    version: Option<String>,
    // Only to recognise json-min and non-HDF JSON in errors.
    #[serde(default)]
    controls: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    statistics: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct RawPlatform {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    target_id: Option<String>,
}

#[derive(Deserialize)]
struct RawProfile {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    maintainer: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    parent_profile: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    skip_message: Option<String>,
    #[serde(default)]
    controls: Vec<RawControl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDescriptions {
    List(Vec<RawDescription>),
    Map(Map<String, Value>),
}

#[derive(Deserialize)]
struct RawDescription {
    label: String,
    #[serde(default)]
    data: Option<String>,
}

#[derive(Deserialize)]
struct RawControl {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    desc: Option<String>,
    impact: f64,
    #[serde(default)]
    tags: Map<String, Value>,
    #[serde(default)]
    descriptions: Option<RawDescriptions>,
    #[serde(default)]
    results: Option<Vec<RawResult>>,
    #[serde(default)]
    waiver_data: Option<Value>,
    #[serde(default)]
    attestation_data: Option<Value>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    refs: Option<Value>,
    #[serde(default)]
    source_location: Option<Value>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    code_desc: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    skip_message: Option<String>,
    #[serde(default)]
    exception: Option<String>,
    #[serde(default)]
    backtrace: Option<Value>,
    #[serde(default)]
    run_time: Option<f64>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    resource_class: Option<String>,
}

/// JavaScript truthiness, as SAF tests `backtrace` and waiver flags.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn severity_from_impact(impact: f64) -> Severity {
    if impact < 0.1 {
        Severity::None
    } else if impact < 0.4 {
        Severity::Low
    } else if impact < 0.7 {
        Severity::Medium
    } else if impact < 0.9 {
        Severity::High
    } else {
        Severity::Critical
    }
}

fn severity_tag(tags: &Map<String, Value>, key: &str) -> Option<Severity> {
    match tags.get(key)?.as_str()?.to_ascii_lowercase().as_str() {
        "none" => Some(Severity::None),
        "low" => Some(Severity::Low),
        "medium" => Some(Severity::Medium),
        "high" => Some(Severity::High),
        "critical" => Some(Severity::Critical),
        _ => None,
    }
}

fn severity(c: &RawControl) -> Severity {
    severity_tag(&c.tags, "severityoverride")
        .or_else(|| severity_tag(&c.tags, "severity"))
        .unwrap_or_else(|| severity_from_impact(c.impact))
}

/// The status of one result as SAF sees it ("segment" status).
fn segment_status(r: &RawResult) -> &str {
    if r.backtrace.as_ref().is_some_and(truthy) {
        "error"
    } else {
        r.status
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("no_status")
    }
}

fn waived(c: &RawControl) -> bool {
    c.waiver_data
        .as_ref()
        .and_then(|w| w.get("skipped_due_to_waiver"))
        .is_some_and(truthy)
}

fn status(c: &RawControl) -> ControlStatus {
    let Some(results) = &c.results else {
        return ControlStatus::ProfileError;
    };
    let has = |s: &str| results.iter().any(|r| segment_status(r) == s);
    if has("error") {
        ControlStatus::ProfileError
    } else if waived(c) || c.impact == 0.0 {
        ControlStatus::NotApplicable
    } else if results.is_empty() {
        ControlStatus::ProfileError
    } else if has("failed") {
        ControlStatus::Failed
    } else if has("passed") {
        ControlStatus::Passed
    } else if has("skipped") {
        ControlStatus::NotReviewed
    } else {
        ControlStatus::ProfileError
    }
}

fn result_status(s: &str) -> ResultStatus {
    match s {
        "passed" => ResultStatus::Passed,
        "failed" => ResultStatus::Failed,
        "skipped" => ResultStatus::Skipped,
        // `error`, a missing status or an unknown one: not a clean outcome.
        _ => ResultStatus::Error,
    }
}

fn backtrace_lines(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect(),
        Value::String(s) => s.lines().map(str::to_string).collect(),
        other => vec![other.to_string()],
    }
}

fn convert_control(c: RawControl, profile: &str) -> Control {
    let severity = severity(&c);
    let status = status(&c);
    let waived = waived(&c);
    let waiver_justification = c
        .waiver_data
        .as_ref()
        .and_then(|w| w.get("justification"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let attested = c.attestation_data.as_ref().is_some_and(truthy);
    let descriptions = match c.descriptions {
        Some(RawDescriptions::List(list)) => list
            .into_iter()
            .map(|d| Description {
                label: d.label,
                data: d.data.unwrap_or_default(),
            })
            .collect(),
        Some(RawDescriptions::Map(map)) => map
            .into_iter()
            .filter_map(|(label, data)| {
                data.as_str().map(|d| Description {
                    label,
                    data: d.to_string(),
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let results = c
        .results
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let status = result_status(segment_status(&r));
            TestResult {
                status,
                code_desc: r.code_desc.unwrap_or_default(),
                message: r.message,
                skip_message: r.skip_message,
                exception: r.exception,
                backtrace: r
                    .backtrace
                    .as_ref()
                    .filter(|b| truthy(b))
                    .map(backtrace_lines),
                run_time: r.run_time,
                start_time: r.start_time,
                resource_class: r.resource_class,
            }
        })
        .collect();
    let mut extra = Map::new();
    if let Some(code) = c.code {
        extra.insert("code".into(), Value::String(code));
    }
    for (key, value) in [
        ("refs", c.refs),
        ("source_location", c.source_location),
        ("waiver_data", c.waiver_data),
        ("attestation_data", c.attestation_data),
    ] {
        if let Some(v) = value {
            extra.insert(key.into(), v);
        }
    }
    Control {
        id: c.id,
        title: c.title,
        desc: c.desc,
        impact: c.impact,
        severity,
        status,
        tags: c.tags.into_iter().collect(),
        descriptions,
        waived,
        waiver_justification,
        attested,
        results,
        source_profile: profile.to_string(),
        extra,
    }
}

/// Parses a results document. `source_name` names it in errors and reports.
pub fn parse(bytes: &[u8], source_name: &str, options: &ParseOptions) -> Result<Scan, HdfError> {
    sniff(&bytes[..bytes.len().min(4096)], source_name)?;
    let doc: RawDoc = serde_json::from_slice(bytes).map_err(|e| HdfError::Invalid {
        source_name: source_name.to_string(),
        detail: e.to_string(),
    })?;
    let Some(profiles) = doc.profiles else {
        if doc.controls.is_some() && doc.statistics.is_some() {
            return Err(HdfError::JsonMin {
                source_name: source_name.to_string(),
            });
        }
        let keys: Vec<String> = match serde_json::from_slice::<Map<String, Value>>(bytes) {
            // Sorted, so the message does not depend on the map's order.
            Ok(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                keys.into_iter().take(8).map(|k| format!("`{k}`")).collect()
            }
            Err(_) => Vec::new(),
        };
        return Err(HdfError::NotHdf {
            source_name: source_name.to_string(),
            keys: if keys.is_empty() {
                "none".into()
            } else {
                keys.join(", ")
            },
        });
    };
    if profiles.is_empty() {
        return Err(HdfError::NoProfiles {
            source_name: source_name.to_string(),
        });
    }
    let platform = doc.platform.unwrap_or_default();
    let mut scan = Scan {
        source: source_name.to_string(),
        tool_version: doc.version,
        platform: Platform {
            name: platform.name.unwrap_or_default(),
            release: platform.release.unwrap_or_default(),
            target_id: platform.target_id,
        },
        profiles: Vec::with_capacity(profiles.len()),
        controls: Vec::new(),
        counts: Counts::default(),
        raw_json: None,
    };
    let counted = contextualize(&profiles, source_name)?;
    // Move each counted root control out of its profile, in counting order.
    let mut slots: Vec<Vec<Option<RawControl>>> = Vec::with_capacity(profiles.len());
    let mut names = Vec::with_capacity(profiles.len());
    for p in profiles {
        scan.profiles.push(Profile {
            name: p.name.clone(),
            version: p.version,
            title: p.title,
            maintainer: p.maintainer,
            summary: p.summary,
            license: p.license,
            sha256: p.sha256,
            parent_profile: p.parent_profile,
            status: p.status,
            skip_message: p.skip_message,
            control_count: p.controls.len(),
        });
        names.push(p.name);
        slots.push(p.controls.into_iter().map(Some).collect());
    }
    scan.controls.reserve(counted.len());
    // Two counted controls can share a root (duplicate ids in an overlay):
    // convert each root once and clone it for the repeats.
    let mut converted: HashMap<(usize, usize), usize> = HashMap::new();
    for (pi, ci) in counted {
        if let Some(&at) = converted.get(&(pi, ci)) {
            let again = scan.controls[at].clone();
            scan.controls.push(again);
        } else if let Some(raw) = slots[pi][ci].take() {
            converted.insert((pi, ci), scan.controls.len());
            scan.controls.push(convert_control(raw, &names[pi]));
        }
    }
    scan.counts = Counts::of(&scan.controls);
    if options.keep_raw {
        scan.raw_json = Some(Arc::from(String::from_utf8_lossy(bytes).as_ref()));
    }
    Ok(scan)
}

/// Links overlays and duplicates like inspecjs' `contextualizeEvaluation` and
/// returns, for each counted control of the first profile, the (profile,
/// control) index of its root.
fn contextualize(
    profiles: &[RawProfile],
    source_name: &str,
) -> Result<Vec<(usize, usize)>, HdfError> {
    let n = profiles.len();
    let mut extends_from: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut extended_by: Vec<usize> = vec![0; n];
    for (p, profile) in profiles.iter().enumerate() {
        if let Some(parent) = &profile.parent_profile
            && let Some(q) = profiles.iter().position(|x| &x.name == parent)
        {
            extends_from[q].push(p);
            extended_by[p] += 1;
        }
    }
    // Global control list, in document order.
    let mut index: Vec<(usize, usize)> = Vec::new();
    let mut first_of_profile: Vec<usize> = Vec::with_capacity(n);
    for (p, profile) in profiles.iter().enumerate() {
        first_of_profile.push(index.len());
        index.extend((0..profile.controls.len()).map(|c| (p, c)));
    }
    let control = |g: usize| &profiles[index[g].0].controls[index[g].1];
    let total = index.len();
    let mut parent: Vec<Option<usize>> = vec![None; total];
    let mut extenders: Vec<u32> = vec![0; total];

    // Per-profile id lookup (first control with the id), built on demand.
    let mut by_profile: HashMap<usize, HashMap<&str, usize>> = HashMap::new();
    // File-wide id lookup: all controls with the id, in order.
    let mut by_id: Option<HashMap<&str, Vec<usize>>> = None;

    for g in 0..total {
        let (p, _) = index[g];
        let linked = !extends_from[p].is_empty() || extended_by[p] > 0;
        if linked {
            for &ep in &extends_from[p] {
                let ids = by_profile.entry(ep).or_insert_with(|| {
                    let mut m = HashMap::new();
                    for (i, c) in profiles[ep].controls.iter().enumerate() {
                        m.entry(c.id.as_str()).or_insert(first_of_profile[ep] + i);
                    }
                    m
                });
                if let Some(&ancestor) = ids.get(control(g).id.as_str()) {
                    extenders[ancestor] += 1;
                    parent[g] = Some(ancestor);
                    break;
                }
            }
        } else {
            let ids = by_id.get_or_insert_with(|| {
                let mut m: HashMap<&str, Vec<usize>> = HashMap::new();
                for i in 0..total {
                    m.entry(control(i).id.as_str()).or_default().push(i);
                }
                m
            });
            let same = &ids[control(g).id.as_str()];
            let populated = same
                .iter()
                .copied()
                .find(|&i| control(i).results.as_ref().is_some_and(|r| !r.is_empty()))
                .unwrap_or(same[0]);
            if populated != g {
                extenders[populated] += 1;
                parent[g] = Some(populated);
            }
        }
    }

    let mut counted = Vec::new();
    let first_profile = first_of_profile[0]..first_of_profile.get(1).copied().unwrap_or(total);
    for (g, &extended) in extenders
        .iter()
        .enumerate()
        .take(first_profile.end)
        .skip(first_profile.start)
    {
        if extended > 0 {
            continue;
        }
        let mut root = g;
        let mut steps = 0usize;
        while let Some(next) = parent[root] {
            root = next;
            steps += 1;
            if steps > total {
                return Err(HdfError::OverlayCycle {
                    source_name: source_name.to_string(),
                    control: control(g).id.clone(),
                    profile: profiles[index[root].0].name.clone(),
                });
            }
        }
        counted.push(index[root]);
    }
    Ok(counted)
}

#[cfg(test)]
mod tests;
