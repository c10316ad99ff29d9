//! SAF CLI threshold semantics as plain Rust: parsing threshold files and
//! inline strings ([`threshold`]) and making every check `saf validate
//! threshold` makes, in SAF's order, with SAF's messages ([`evaluate`]).
//!
//! The deliberate differences from SAF (documented in the README): `compliance.max:
//! 0` is checked, `no_impact.total.{min,max}` are checked, an empty `controls`
//! list means "no controls", and a missing bucket prints `[]`/`0` rather than
//! `[undefined]`/`undefined`.

pub mod threshold;

use threshold::{Bound, NO_IMPACT, NONE, SEVERITY_NAMES, STATUS_NAMES, Thresholds};

/// One check, in the order SAF makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The threshold key checked (`failed.high.max`).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// SAF's message when it failed; a short statement when it held.
    pub message: String,
}

/// The numbers thresholds are checked against.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub compliance: u32,
    /// `[status][severity]`, plus totals, indexed like the name tables.
    pub counts: [[u32; 5]; 5],
    pub totals: [u32; 5],
    /// Control ids per `[status][severity]`, in document order.
    pub ids: [[Vec<String>; 5]; 5],
}

/// Formats a number the way JavaScript prints it (SAF's messages).
fn js(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn check(name: String, passed: bool, message: String) -> Check {
    Check {
        name,
        passed,
        message,
    }
}

/// SAF's count check message.
fn count_message(path: &str, status: &str, got: u32, relation: &str, want: f64) -> String {
    format!(
        "{path}: Threshold not met. Number of received total {status} controls ({got}) is {relation} \
         your set threshold for the number of {status} controls ({})",
        js(want)
    )
}

fn bound_checks(
    out: &mut Vec<Check>,
    path: &str,
    status: &str,
    got: u32,
    bound: &Bound,
    which: &[&str],
) {
    for &kind in which {
        let (limit, failed, relation) = match kind {
            "min" => match bound.min {
                Some(min) => (min, f64::from(got) < min, "less than"),
                None => continue,
            },
            _ => match bound.max {
                Some(max) => (max, f64::from(got) > max, "greater than"),
                None => continue,
            },
        };
        let name = format!("{path}.{kind}");
        let message = if failed {
            count_message(&name, status, got, relation, limit)
        } else {
            format!(
                "{name}: {got} {} {}",
                if kind == "min" { ">=" } else { "<=" },
                js(limit)
            )
        };
        out.push(check(name, !failed, message));
    }
}

/// Every check, in SAF CLI's order.
pub fn evaluate(t: &Thresholds, o: &Observed) -> Vec<Check> {
    let mut out = Vec::new();

    // 1. Compliance. SAF skips `max: 0` (a falsy value); dscan checks it.
    if let Some(min) = t.compliance.min {
        let ok = f64::from(o.compliance) >= min;
        let msg = if ok {
            format!("compliance.min: {} >= {}", o.compliance, js(min))
        } else {
            "Overall compliance minimum was not satisfied".to_string()
        };
        out.push(check("compliance.min".into(), ok, msg));
    }
    if let Some(max) = t.compliance.max {
        let ok = f64::from(o.compliance) <= max;
        let msg = if ok {
            format!("compliance.max: {} <= {}", o.compliance, js(max))
        } else {
            "Overall compliance maximum was not satisfied".to_string()
        };
        out.push(check("compliance.max".into(), ok, msg));
    }

    // 2. Exact totals, in SAF's order (no_impact before error here).
    for si in [0, 1, 2, NO_IMPACT, 3] {
        let status = STATUS_NAMES[si];
        if let Some(want) = t.status[si].total_exact {
            let got = o.totals[si];
            let ok = f64::from(got) == want;
            let path = format!("{status}.total");
            let msg = if ok {
                format!("{path}: {got} == {}", js(want))
            } else {
                count_message(&path, status, got, "not equal to", want)
            };
            out.push(check(path, ok, msg));
        }
    }

    // 3–4. Total minimums, then maximums. SAF never checks
    // no_impact.total.{min,max}; dscan checks them last.
    for kind in ["min", "max"] {
        for si in [0, 1, 2, 3, NO_IMPACT] {
            let status = STATUS_NAMES[si];
            bound_checks(
                &mut out,
                &format!("{status}.total"),
                status,
                o.totals[si],
                &t.status[si].total,
                &[kind],
            );
        }
    }

    // 5. Per severity: critical, high, medium, low, none; statuses in order.
    for (vi, severity) in SEVERITY_NAMES.iter().enumerate() {
        for (si, status) in STATUS_NAMES.iter().enumerate() {
            if vi == NONE && si != NO_IMPACT {
                continue;
            }
            let path = format!("{status}.{severity}");
            bound_checks(
                &mut out,
                &path,
                status,
                o.counts[si][vi],
                &t.status[si].severity[vi].bound,
                &["min", "max"],
            );
        }
    }

    // 6. Control ids per status and severity.
    for (vi, severity) in SEVERITY_NAMES.iter().enumerate() {
        for (si, status) in STATUS_NAMES.iter().enumerate() {
            let Some(expected) = &t.status[si].severity[vi].controls else {
                continue;
            };
            let path = format!("{status}.{severity}.controls");
            let actual = &o.ids[si][vi];
            for id in expected {
                let ok = actual.contains(id);
                let msg = if ok {
                    format!("{path} contains {id}")
                } else {
                    format!(
                        "Expected {path} to contain {id} controls but it only contained [{}]",
                        actual.join(", ")
                    )
                };
                out.push(check(path.clone(), ok, msg));
            }
            let ok = expected.len() == actual.len();
            let msg = if ok {
                format!("{path} has {} controls", actual.len())
            } else {
                format!(
                    "Expected {path} to contain {} controls but it contained {}",
                    expected.len(),
                    actual.len()
                )
            };
            out.push(check(path, ok, msg));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        let mut o = Observed {
            compliance: 50,
            counts: [[0; 5]; 5],
            totals: [0; 5],
            ids: Default::default(),
        };
        o.counts[1][1] = 2; // failed.high
        o.totals[1] = 2;
        o.counts[0][2] = 2; // passed.medium
        o.totals[0] = 2;
        o.ids[1][1] = vec!["V-1".into(), "V-2".into()];
        o
    }

    fn first_failure(threshold: &str) -> Option<String> {
        let t = threshold::parse_file(threshold).unwrap();
        evaluate(&t, &observed())
            .into_iter()
            .find(|c| !c.passed)
            .map(|c| c.message)
    }

    #[test]
    fn compliance_bounds_use_saf_messages_and_max_zero_is_checked() {
        assert_eq!(
            first_failure("compliance.min: 51"),
            Some("Overall compliance minimum was not satisfied".into())
        );
        assert_eq!(first_failure("compliance.min: 50"), None);
        assert_eq!(
            first_failure("compliance.max: 49"),
            Some("Overall compliance maximum was not satisfied".into())
        );
        // SAF never checks a max of 0; dscan does.
        assert_eq!(
            first_failure("compliance.max: 0"),
            Some("Overall compliance maximum was not satisfied".into())
        );
    }

    #[test]
    fn totals_exact_min_max() {
        assert_eq!(
            first_failure("failed.total: 3"),
            Some("failed.total: Threshold not met. Number of received total failed controls (2) is not equal to your set threshold for the number of failed controls (3)".into())
        );
        assert_eq!(
            first_failure("passed.total.max: 1"),
            Some("passed.total.max: Threshold not met. Number of received total passed controls (2) is greater than your set threshold for the number of passed controls (1)".into())
        );
        assert_eq!(
            first_failure("skipped.total.min: 1"),
            Some("skipped.total.min: Threshold not met. Number of received total skipped controls (0) is less than your set threshold for the number of skipped controls (1)".into())
        );
        // SAF skips these; dscan checks them.
        assert!(first_failure("no_impact.total.min: 1").is_some());
        assert_eq!(first_failure("no_impact.total.max: 0"), None);
    }

    #[test]
    fn order_is_safs_first_failure_wins() {
        // Both fail; SAF checks minimums of all totals before any maximum.
        let msg = first_failure("passed.total.max: 0\nerror.total.min: 1\n").unwrap();
        assert!(msg.starts_with("error.total.min"), "{msg}");
        // Exact totals come before min/max; compliance before everything.
        let msg = first_failure("failed.total.min: 9\npassed.total: 0\n").unwrap();
        assert!(msg.starts_with("passed.total:"), "{msg}");
        let msg = first_failure("failed.total: 0\ncompliance.min: 99\n").unwrap();
        assert_eq!(msg, "Overall compliance minimum was not satisfied");
        // Severities: critical before high; within one, status order.
        let msg = first_failure("failed.high.max: 1\npassed.critical.min: 1\n").unwrap();
        assert!(msg.starts_with("passed.critical.min"), "{msg}");
    }

    #[test]
    fn severity_counts() {
        assert_eq!(
            first_failure("failed.high.max: 1"),
            Some("failed.high.max: Threshold not met. Number of received total failed controls (2) is greater than your set threshold for the number of failed controls (1)".into())
        );
        assert_eq!(
            first_failure("failed.high.min: 2\nfailed.high.max: 2\npassed.medium.min: 2"),
            None
        );
        assert!(first_failure("no_impact.none.min: 1").is_some());
    }

    #[test]
    fn control_ids() {
        assert_eq!(first_failure("failed.high.controls: [V-1, V-2]"), None);
        assert_eq!(
            first_failure("failed.high.controls: [V-1, V-3]"),
            Some("Expected failed.high.controls to contain V-3 controls but it only contained [V-1, V-2]".into())
        );
        assert_eq!(
            first_failure("failed.high.controls: [V-1]"),
            Some("Expected failed.high.controls to contain 1 controls but it contained 2".into())
        );
        // An empty list means "none expected" (SAF fails it when none exist).
        assert_eq!(first_failure("failed.low.controls: []"), None);
        assert_eq!(
            first_failure("passed.low.controls: [V-9]"),
            Some(
                "Expected passed.low.controls to contain V-9 controls but it only contained []"
                    .into()
            )
        );
    }

    #[test]
    fn numbers_print_like_javascript() {
        assert_eq!(js(54.0), "54");
        assert_eq!(js(66.5), "66.5");
        assert_eq!(js(-1.0), "-1");
    }

    /// Every threshold key reads the right count: put 7 in one cell only
    /// and check that exactly that key's check sees it.
    #[test]
    fn every_key_reads_its_own_count() {
        for (si, status) in STATUS_NAMES.iter().enumerate() {
            for (vi, severity) in SEVERITY_NAMES.iter().enumerate() {
                if vi == NONE && si != NO_IMPACT {
                    continue;
                }
                let mut o = Observed::default();
                o.counts[si][vi] = 7;
                o.ids[si][vi] = vec!["V-7".into()];
                for (bound, limit, relation) in
                    [("min", 8, "less than"), ("max", 6, "greater than")]
                {
                    let key = format!("{status}.{severity}.{bound}");
                    let t = threshold::parse_file(&format!("{key}: {limit}")).unwrap();
                    let failed: Vec<Check> =
                        evaluate(&t, &o).into_iter().filter(|c| !c.passed).collect();
                    assert_eq!(failed.len(), 1, "{key}");
                    assert_eq!(failed[0].name, key);
                    assert_eq!(
                        failed[0].message,
                        format!(
                            "{key}: Threshold not met. Number of received total {status} controls (7) is {relation} your set threshold for the number of {status} controls ({limit})"
                        )
                    );
                }
                let key = format!("{status}.{severity}.controls");
                let t = threshold::parse_file(&format!("{key}: [V-7]")).unwrap();
                assert!(evaluate(&t, &o).iter().all(|c| c.passed), "{key}");
                let t = threshold::parse_file(&format!("{key}: [V-8]")).unwrap();
                assert!(evaluate(&t, &o).iter().any(|c| !c.passed), "{key}");
            }
            let mut o = Observed::default();
            o.totals[si] = 7;
            for (key, text) in [
                (format!("{status}.total"), format!("{status}.total: 8")),
                (
                    format!("{status}.total.min"),
                    format!("{status}.total.min: 8"),
                ),
                (
                    format!("{status}.total.max"),
                    format!("{status}.total.max: 6"),
                ),
            ] {
                let t = threshold::parse_file(&text).unwrap();
                let failed: Vec<Check> =
                    evaluate(&t, &o).into_iter().filter(|c| !c.passed).collect();
                assert_eq!(failed.len(), 1, "{key}");
                assert_eq!(failed[0].name, key);
                assert!(
                    failed[0].message.contains("controls (7)"),
                    "{}",
                    failed[0].message
                );
                // And the same value passes.
                let passing = text.replace(": 8", ": 7").replace(": 6", ": 7");
                let t = threshold::parse_file(&passing).unwrap();
                assert!(evaluate(&t, &o).iter().all(|c| c.passed), "{passing}");
            }
        }
    }
}
