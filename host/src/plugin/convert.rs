//! Conversions between the domain model and the generated WIT types.

use super::bindings::evaluator::dscan::plugin::meta::Detail as WitDetail;
use super::bindings::evaluator::exports::dscan::plugin::evaluator as wit_eval;
use super::bindings::{self, types as wit};
use super::{Check, Detail, EvaluationRequest, PluginInfo, Verdict};
use crate::results::{self, ControlStatus, ResultStatus, Severity};

pub(super) fn plugin_info(i: bindings::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: i.name,
        version: i.version,
        contract: i.contract,
        description: i.description,
        wants_raw_json: i.wants_raw_json,
    }
}

pub(super) fn detail(d: WitDetail) -> Detail {
    match d {
        WitDetail::Summary => Detail::Summary,
        WitDetail::Controls => Detail::Controls,
        WitDetail::Full => Detail::Full,
    }
}

pub(super) fn options(options: &[(String, String)]) -> Vec<bindings::OptionPair> {
    options
        .iter()
        .map(|(k, v)| bindings::OptionPair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

pub(super) fn request(r: &EvaluationRequest) -> wit_eval::Request {
    wit_eval::Request {
        threshold: r.threshold.clone(),
        inline: r.inline,
        options: options(&r.options),
    }
}

pub(super) fn verdict(v: wit_eval::Verdict) -> Verdict {
    Verdict {
        passed: v.passed,
        checks: v
            .checks
            .into_iter()
            .map(|c| Check {
                name: c.name,
                passed: c.passed,
                message: c.message,
            })
            .collect(),
    }
}

fn severity(s: Severity) -> wit::Severity {
    match s {
        Severity::None => wit::Severity::None,
        Severity::Low => wit::Severity::Low,
        Severity::Medium => wit::Severity::Medium,
        Severity::High => wit::Severity::High,
        Severity::Critical => wit::Severity::Critical,
    }
}

fn control_status(s: ControlStatus) -> wit::ControlStatus {
    match s {
        ControlStatus::Passed => wit::ControlStatus::Passed,
        ControlStatus::Failed => wit::ControlStatus::Failed,
        ControlStatus::NotApplicable => wit::ControlStatus::NotApplicable,
        ControlStatus::NotReviewed => wit::ControlStatus::NotReviewed,
        ControlStatus::ProfileError => wit::ControlStatus::ProfileError,
    }
}

fn result_status(s: ResultStatus) -> wit::ResultStatus {
    match s {
        ResultStatus::Passed => wit::ResultStatus::Passed,
        ResultStatus::Failed => wit::ResultStatus::Failed,
        ResultStatus::Skipped => wit::ResultStatus::Skipped,
        ResultStatus::Error => wit::ResultStatus::Error,
    }
}

fn severity_counts(c: &results::SeverityCounts) -> wit::SeverityCounts {
    wit::SeverityCounts {
        critical: c.critical,
        high: c.high,
        medium: c.medium,
        low: c.low,
        none: c.none,
        total: c.total,
    }
}

/// A control as WIT; without results, descriptions and extras unless `full`.
fn control(c: &results::Control, full: bool) -> wit::Control {
    wit::Control {
        id: c.id.clone(),
        title: c.title.clone(),
        desc: c.desc.clone(),
        impact: c.impact,
        severity: severity(c.severity),
        status: control_status(c.status),
        tags: c
            .tags
            .iter()
            .map(|(name, value)| wit::Tag {
                name: name.clone(),
                value_json: value.to_string(),
            })
            .collect(),
        descriptions: if !full {
            Vec::new()
        } else {
            c.descriptions
                .iter()
                .map(|d| wit::Description {
                    label: d.label.clone(),
                    data: d.data.clone(),
                })
                .collect()
        },
        waived: c.waived,
        waiver_justification: c.waiver_justification.clone(),
        attested: c.attested,
        results: if !full {
            Vec::new()
        } else {
            c.results
                .iter()
                .map(|r| wit::TestResult {
                    status: result_status(r.status),
                    code_desc: r.code_desc.clone(),
                    message: r.message.clone(),
                    skip_message: r.skip_message.clone(),
                    exception: r.exception.clone(),
                    backtrace: r.backtrace.clone(),
                    run_time: r.run_time,
                    start_time: r.start_time.clone(),
                    resource_class: r.resource_class.clone(),
                })
                .collect()
        },
        source_profile: c.source_profile.clone(),
        extra_json: if full {
            serde_json::Value::Object(c.extra.clone()).to_string()
        } else {
            "{}".to_string()
        },
    }
}

/// The scan as WIT records, with as much detail as the plugin asked for.
pub(super) fn scan(s: &results::Scan, detail: Detail, with_raw: bool) -> wit::Scan {
    wit::Scan {
        source: s.source.clone(),
        tool_version: s.tool_version.clone(),
        platform: wit::Platform {
            name: s.platform.name.clone(),
            release: s.platform.release.clone(),
            target_id: s.platform.target_id.clone(),
        },
        profiles: s
            .profiles
            .iter()
            .map(|p| wit::Profile {
                name: p.name.clone(),
                version: p.version.clone(),
                title: p.title.clone(),
                maintainer: p.maintainer.clone(),
                summary: p.summary.clone(),
                license: p.license.clone(),
                sha256: p.sha256.clone(),
                parent_profile: p.parent_profile.clone(),
                status: p.status.clone(),
                skip_message: p.skip_message.clone(),
                control_count: u32::try_from(p.control_count).unwrap_or(u32::MAX),
            })
            .collect(),
        controls: match detail {
            Detail::Summary => Vec::new(),
            Detail::Controls => s.controls.iter().map(|c| control(c, false)).collect(),
            Detail::Full => s.controls.iter().map(|c| control(c, true)).collect(),
        },
        counts: wit::Counts {
            passed: severity_counts(&s.counts.passed),
            failed: severity_counts(&s.counts.failed),
            not_reviewed: severity_counts(&s.counts.not_reviewed),
            not_applicable: severity_counts(&s.counts.not_applicable),
            profile_error: severity_counts(&s.counts.profile_error),
            compliance: s.counts.compliance,
        },
        raw_json: if with_raw {
            s.raw_json.as_deref().map(str::to_string)
        } else {
            None
        },
    }
}
