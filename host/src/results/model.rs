//! The results model: one parsed HDF document with SAF semantics applied.
//! Built once by [`super::hdf`]; handed to plugins as WIT records.

use serde::Serialize;

/// Status of one test of a control, as the scanner reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// The test passed.
    Passed,
    /// The test failed.
    Failed,
    /// The test was skipped.
    Skipped,
    /// The test raised an error.
    Error,
}

/// Status of a control (SAF CLI semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ControlStatus {
    /// Every test passed (or passed alongside skips).
    Passed,
    /// At least one test failed.
    Failed,
    /// Impact 0 or waived.
    NotApplicable,
    /// Only skipped tests.
    NotReviewed,
    /// No results, an error, or an unknown status.
    ProfileError,
}

impl ControlStatus {
    /// The name SAF CLI prints.
    pub fn label(self) -> &'static str {
        match self {
            ControlStatus::Passed => "Passed",
            ControlStatus::Failed => "Failed",
            ControlStatus::NotApplicable => "Not Applicable",
            ControlStatus::NotReviewed => "Not Reviewed",
            ControlStatus::ProfileError => "Profile Error",
        }
    }
}

/// Severity of a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Impact below 0.1.
    None,
    /// Impact below 0.4.
    Low,
    /// Impact below 0.7.
    Medium,
    /// Impact below 0.9.
    High,
    /// Impact 0.9 and above.
    Critical,
}

impl Severity {
    /// Every severity from most to least severe.
    pub const DESCENDING: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::None,
    ];

    /// The lower-case name used in threshold keys.
    pub fn key(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One test (describe block) of a control.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// Status as reported.
    pub status: ResultStatus,
    /// What was tested.
    pub code_desc: String,
    /// Failure message.
    pub message: Option<String>,
    /// Why it was skipped.
    pub skip_message: Option<String>,
    /// Exception class, for errors.
    pub exception: Option<String>,
    /// Backtrace lines, for errors.
    pub backtrace: Option<Vec<String>>,
    /// Seconds.
    pub run_time: Option<f64>,
    /// Start timestamp as reported.
    pub start_time: Option<String>,
    /// The InSpec resource class.
    pub resource_class: Option<String>,
}

/// One `descriptions` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// `check`, `fix`, `default`…
    pub label: String,
    /// The text.
    pub data: String,
}

/// A control as it counts (overlays resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    /// Control id (`V-230221`).
    pub id: String,
    /// Title, from the overlay if it has one.
    pub title: Option<String>,
    /// The `desc` field.
    pub desc: Option<String>,
    /// Impact 0.0–1.0, from the root control.
    pub impact: f64,
    /// Computed severity (root control).
    pub severity: Severity,
    /// Computed status (root control).
    pub status: ControlStatus,
    /// Tags in document order (values as JSON).
    pub tags: Vec<(String, serde_json::Value)>,
    /// Descriptions in document order.
    pub descriptions: Vec<Description>,
    /// `waiver_data.skipped_due_to_waiver` was truthy.
    pub waived: bool,
    /// `waiver_data.justification`.
    pub waiver_justification: Option<String>,
    /// The control carries `attestation_data`.
    pub attested: bool,
    /// Results of the root control.
    pub results: Vec<TestResult>,
    /// Profile the results came from.
    pub source_profile: String,
    /// Fields not modelled above, as a JSON object.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Profile metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Profile {
    /// Profile name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Title.
    pub title: Option<String>,
    /// Maintainer.
    pub maintainer: Option<String>,
    /// Summary.
    pub summary: Option<String>,
    /// License.
    pub license: Option<String>,
    /// SHA-256 of the profile.
    pub sha256: Option<String>,
    /// The profile this one overlays.
    pub parent_profile: Option<String>,
    /// Status as reported (`loaded`, `skipped`…).
    pub status: Option<String>,
    /// Why the profile was skipped.
    pub skip_message: Option<String>,
    /// Number of controls the profile lists.
    pub control_count: usize,
}

/// The scanned platform.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Platform {
    /// OS name.
    pub name: String,
    /// OS release.
    pub release: String,
    /// Target identifier.
    pub target_id: Option<String>,
}

/// Counts for one status, by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SeverityCounts {
    /// Critical.
    pub critical: u32,
    /// High.
    pub high: u32,
    /// Medium.
    pub medium: u32,
    /// Low.
    pub low: u32,
    /// None (only meaningful for Not Applicable).
    pub none: u32,
    /// All severities.
    pub total: u32,
}

impl SeverityCounts {
    /// The count for one severity.
    pub fn get(&self, severity: Severity) -> u32 {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::None => self.none,
        }
    }

    pub(crate) fn add(&mut self, severity: Severity) {
        match severity {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::None => self.none += 1,
        }
        self.total += 1;
    }
}

/// The counts SAF reports and thresholds check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counts {
    /// Passed.
    pub passed: SeverityCounts,
    /// Failed.
    pub failed: SeverityCounts,
    /// Not Reviewed (`skipped`).
    pub not_reviewed: SeverityCounts,
    /// Not Applicable (`no_impact`).
    pub not_applicable: SeverityCounts,
    /// Profile Error (`error`).
    pub profile_error: SeverityCounts,
    /// Compliance percentage, rounded half up.
    pub compliance: u32,
}

impl Counts {
    /// Counts for a set of controls.
    pub fn of<'a>(controls: impl IntoIterator<Item = &'a Control>) -> Counts {
        let mut counts = Counts::default();
        for control in controls {
            let bucket = match control.status {
                ControlStatus::Passed => &mut counts.passed,
                ControlStatus::Failed => &mut counts.failed,
                ControlStatus::NotReviewed => &mut counts.not_reviewed,
                ControlStatus::NotApplicable => &mut counts.not_applicable,
                ControlStatus::ProfileError => &mut counts.profile_error,
            };
            bucket.add(control.severity);
        }
        counts.compliance = compliance(&counts);
        counts
    }

    /// Passed + Failed + Not Reviewed + Profile Error (Not Applicable excluded).
    pub fn total(&self) -> u32 {
        self.passed.total + self.failed.total + self.not_reviewed.total + self.profile_error.total
    }
}

/// `round_half_up(100 * passed / total)`, 0 when nothing counts.
fn compliance(c: &Counts) -> u32 {
    let total = c.total();
    if total == 0 {
        return 0;
    }
    // Integer form of floor(100 * p / t + 0.5): exact, no float rounding.
    (200 * c.passed.total + total) / (2 * total)
}

/// One results document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scan {
    /// Where it came from (file name), for display.
    pub source: String,
    /// Scanner version.
    pub tool_version: Option<String>,
    /// The scanned platform.
    pub platform: Platform,
    /// Every profile, in document order.
    pub profiles: Vec<Profile>,
    /// The controls that count, in document order.
    pub controls: Vec<Control>,
    /// Counts over `controls`.
    pub counts: Counts,
    /// The original document, kept only when a plugin asked for it.
    pub raw_json: Option<std::sync::Arc<str>>,
}

impl Scan {
    /// Name of the counted profile (the first).
    pub fn profile_name(&self) -> &str {
        self.profiles.first().map(|p| p.name.as_str()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(passed: u32, failed: u32, nr: u32, err: u32) -> Counts {
        let mut c = Counts::default();
        c.passed.total = passed;
        c.failed.total = failed;
        c.not_reviewed.total = nr;
        c.profile_error.total = err;
        c
    }

    #[test]
    fn compliance_rounds_half_up_and_zero_total_is_zero() {
        assert_eq!(compliance(&counts(0, 0, 0, 0)), 0);
        assert_eq!(compliance(&counts(1, 1, 0, 0)), 50);
        // 2/3 = 66.67 -> 67; 1/3 = 33.33 -> 33
        assert_eq!(compliance(&counts(2, 1, 0, 0)), 67);
        assert_eq!(compliance(&counts(1, 2, 0, 0)), 33);
        // 1/8 = 12.5 -> 13 (half up)
        assert_eq!(compliance(&counts(1, 7, 0, 0)), 13);
        // Not Reviewed and Profile Error count against compliance.
        assert_eq!(compliance(&counts(1, 0, 1, 2)), 25);
        assert_eq!(compliance(&counts(5, 0, 0, 0)), 100);
    }
}
