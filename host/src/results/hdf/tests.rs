//! The SAF rules for status, severity and overlays, one at a time.

use serde_json::{Value, json};

use super::*;

fn parse_doc(doc: Value) -> Scan {
    parse(
        doc.to_string().as_bytes(),
        "t.json",
        &ParseOptions::default(),
    )
    .expect("parses")
}

fn one(control: Value) -> Control {
    let scan = parse_doc(json!({"profiles": [{"name": "p", "controls": [control]}]}));
    assert_eq!(scan.controls.len(), 1);
    scan.controls.into_iter().next().expect("one control")
}

fn with_results(impact: f64, results: Value) -> Value {
    json!({"id": "c", "impact": impact, "tags": {}, "results": results})
}

fn r(status: &str) -> Value {
    json!({"status": status, "code_desc": "x"})
}

#[test]
fn status_rules_first_match_wins() {
    use ControlStatus::*;
    let cases: Vec<(Value, ControlStatus, &str)> = vec![
        (
            with_results(0.5, json!([r("passed"), r("error")])),
            ProfileError,
            "any error",
        ),
        (
            with_results(
                0.5,
                json!([r("passed"), {"status": "passed", "backtrace": ["boom"]}]),
            ),
            ProfileError,
            "truthy backtrace",
        ),
        (
            with_results(
                0.5,
                json!([r("passed"), {"status": "passed", "backtrace": []}]),
            ),
            ProfileError,
            "empty backtrace is truthy in JS",
        ),
        (
            with_results(
                0.5,
                json!([r("passed"), {"status": "passed", "backtrace": null}]),
            ),
            Passed,
            "null backtrace is falsy",
        ),
        (
            with_results(0.0, json!([r("failed"), r("error")])),
            ProfileError,
            "error beats impact 0",
        ),
        (
            with_results(0.0, json!([r("failed")])),
            NotApplicable,
            "impact 0",
        ),
        (
            with_results(0.0, json!([])),
            NotApplicable,
            "impact 0 beats no results",
        ),
        (
            json!({"id": "c", "impact": 0.7, "tags": {}, "results": [r("failed")], "waiver_data": {"skipped_due_to_waiver": true}}),
            NotApplicable,
            "waived",
        ),
        (
            json!({"id": "c", "impact": 0.7, "tags": {}, "results": [r("failed")], "waiver_data": {"skipped_due_to_waiver": false}}),
            Failed,
            "waiver not applied",
        ),
        (with_results(0.5, json!([])), ProfileError, "no results"),
        (
            json!({"id": "c", "impact": 0.5, "tags": {}}),
            ProfileError,
            "results missing",
        ),
        (
            with_results(0.5, json!([r("passed"), r("failed"), r("skipped")])),
            Failed,
            "failed beats passed",
        ),
        (
            with_results(0.5, json!([r("skipped"), r("passed")])),
            Passed,
            "passed beats skipped",
        ),
        (
            with_results(0.5, json!([r("skipped")])),
            NotReviewed,
            "only skipped",
        ),
        (
            with_results(0.5, json!([{"code_desc": "no status"}])),
            ProfileError,
            "no status at all",
        ),
        (
            with_results(0.5, json!([r("weird")])),
            ProfileError,
            "unknown status",
        ),
    ];
    for (control, want, why) in cases {
        assert_eq!(one(control).status, want, "{why}");
    }
}

#[test]
fn severity_rules() {
    use Severity::*;
    let tagged = |tags: Value, impact: f64| json!({"id": "c", "impact": impact, "tags": tags, "results": [r("passed")]});
    let cases: Vec<(Value, Severity, &str)> = vec![
        (tagged(json!({}), 0.0), None, "impact 0"),
        (tagged(json!({}), 0.09), None, "below 0.1"),
        (tagged(json!({}), 0.1), Low, "0.1"),
        (tagged(json!({}), 0.39), Low, "below 0.4"),
        (tagged(json!({}), 0.4), Medium, "0.4"),
        (tagged(json!({}), 0.69), Medium, "below 0.7"),
        (tagged(json!({}), 0.7), High, "0.7"),
        (tagged(json!({}), 0.89), High, "below 0.9"),
        (tagged(json!({}), 0.9), Critical, "0.9"),
        (tagged(json!({}), 1.0), Critical, "1.0"),
        (
            tagged(json!({"severity": "low"}), 1.0),
            Low,
            "tag beats impact",
        ),
        (
            tagged(
                json!({"severity": "low", "severityoverride": "critical"}),
                0.5,
            ),
            Critical,
            "override beats tag",
        ),
        (
            tagged(json!({"severity": "bogus"}), 0.5),
            Medium,
            "unknown tag falls back to impact",
        ),
        (
            tagged(
                json!({"severityoverride": "bogus", "severity": "high"}),
                0.1,
            ),
            High,
            "unknown override falls back to tag",
        ),
        (
            tagged(json!({"severity": "High"}), 0.1),
            High,
            "capitalised tag: dscan lower-cases (SAF drops it)",
        ),
        (
            tagged(json!({"severity": 3}), 0.5),
            Medium,
            "non-string tag ignored",
        ),
    ];
    for (control, want, why) in cases {
        assert_eq!(one(control).severity, want, "{why}");
    }
}

fn ctl(id: &str, impact: f64, results: Value) -> Value {
    json!({"id": id, "impact": impact, "tags": {}, "results": results})
}

#[test]
fn overlays_count_the_first_profile_with_root_status_and_severity() {
    // The overlay (first) wraps a baseline (second, parent_profile = overlay).
    // The overlay's copies have no results; the baseline's have them.
    let scan = parse_doc(json!({"profiles": [
        {"name": "overlay", "controls": [ctl("a", 0.3, json!([])), ctl("b", 0.3, json!([]))]},
        {"name": "base", "parent_profile": "overlay", "controls": [
            ctl("a", 0.9, json!([r("failed")])),
            ctl("b", 0.5, json!([r("passed")])),
            ctl("z", 0.5, json!([r("failed")])),
        ]},
    ]}));
    let got: Vec<(&str, ControlStatus, Severity)> = scan
        .controls
        .iter()
        .map(|c| (c.id.as_str(), c.status, c.severity))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", ControlStatus::Failed, Severity::Critical),
            ("b", ControlStatus::Passed, Severity::Medium)
        ],
        "only the first profile's controls count, with the baseline's data; `z` is not counted"
    );
    assert_eq!(scan.controls[0].source_profile, "base");
    assert_eq!(scan.counts.compliance, 50);
}

#[test]
fn overlay_chains_resolve_to_the_deepest_control() {
    let scan = parse_doc(json!({"profiles": [
        {"name": "top", "controls": [ctl("a", 0.5, json!([]))]},
        {"name": "mid", "parent_profile": "top", "controls": [ctl("a", 0.5, json!([]))]},
        {"name": "deep", "parent_profile": "mid", "controls": [ctl("a", 0.0, json!([r("failed")]))]},
    ]}));
    assert_eq!(scan.controls.len(), 1);
    assert_eq!(scan.controls[0].status, ControlStatus::NotApplicable);
    assert_eq!(scan.controls[0].source_profile, "deep");
}

#[test]
fn parent_profile_links_to_the_first_profile_of_that_name() {
    let scan = parse_doc(json!({"profiles": [
        {"name": "top", "controls": [ctl("a", 0.5, json!([]))]},
        {"name": "top", "controls": [ctl("a", 0.5, json!([r("failed")]))]},
        {"name": "base", "parent_profile": "top", "controls": [ctl("a", 0.5, json!([r("passed")]))]},
    ]}));
    assert_eq!(scan.controls[0].status, ControlStatus::Passed);
}

#[test]
fn without_links_duplicate_ids_resolve_to_the_first_with_results() {
    // Unlinked: the first `a` has no results and links to the second, which
    // then has an extender and is not counted itself: `a` counts once.
    let scan = parse_doc(json!({"profiles": [
        {"name": "p", "controls": [ctl("a", 0.5, json!([])), ctl("a", 0.5, json!([r("passed")])), ctl("b", 0.5, json!([r("failed")]))]},
    ]}));
    let got: Vec<(&str, ControlStatus)> = scan
        .controls
        .iter()
        .map(|c| (c.id.as_str(), c.status))
        .collect();
    assert_eq!(
        got,
        vec![("a", ControlStatus::Passed), ("b", ControlStatus::Failed)]
    );

    // Two unlinked profiles both with results for `a`: the second links to
    // the first, which is then extended and not counted (as in SAF).
    let scan = parse_doc(json!({"profiles": [
        {"name": "p", "controls": [ctl("a", 0.5, json!([r("passed")])), ctl("b", 0.5, json!([r("passed")]))]},
        {"name": "q", "controls": [ctl("a", 0.5, json!([r("failed")]))]},
    ]}));
    let ids: Vec<&str> = scan.controls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["b"]);
}

#[test]
fn an_overlay_cycle_is_an_error_not_a_hang() {
    let doc = json!({"profiles": [
        {"name": "x", "controls": [ctl("a", 0.5, json!([]))]},
        {"name": "a1", "parent_profile": "b1", "controls": [ctl("a", 0.5, json!([]))]},
        {"name": "b1", "parent_profile": "a1", "controls": [ctl("a", 0.5, json!([]))]},
    ]});
    // `x` is unlinked and resolves `a` to the first populated/first control:
    // itself; nothing loops from the counted profile.
    parse(
        doc.to_string().as_bytes(),
        "t.json",
        &ParseOptions::default(),
    )
    .expect("no loop reachable");

    let doc = json!({"profiles": [
        {"name": "a1", "parent_profile": "b1", "controls": [ctl("k", 0.5, json!([]))]},
        {"name": "b1", "parent_profile": "a1", "controls": [ctl("k", 0.5, json!([]))]},
    ]});
    // Each links to the other: every control is extended, none counts.
    let scan = parse(
        doc.to_string().as_bytes(),
        "t.json",
        &ParseOptions::default(),
    )
    .expect("parses");
    assert!(scan.controls.is_empty());

    // A duplicate id in the counted profile reaches the loop (SAF recurses
    // until the stack overflows); dscan reports it.
    let doc = json!({"profiles": [
        {"name": "top", "parent_profile": "a", "controls": [ctl("k", 0.5, json!([])), ctl("k", 0.5, json!([]))]},
        {"name": "a", "parent_profile": "top", "controls": [ctl("k", 0.5, json!([r("passed")]))]},
    ]});
    let err = parse(
        doc.to_string().as_bytes(),
        "t.json",
        &ParseOptions::default(),
    )
    .expect_err("cycle");
    assert!(matches!(err, HdfError::OverlayCycle { .. }), "{err}");
    assert!(
        err.to_string().contains("control `k` form a cycle"),
        "{err}"
    );
}

#[test]
fn fields_are_carried_into_the_model() {
    let c = one(json!({
        "id": "V-1", "title": "T", "desc": "D", "impact": 0.5,
        "tags": {"nist": ["AC-6"], "severity": "medium"},
        "descriptions": [{"label": "check", "data": "look"}, {"label": "fix", "data": "do"}],
        "code": "control 'V-1' do end", "refs": [], "source_location": {"line": 3, "ref": "x.rb"},
        "waiver_data": {"justification": "accepted", "skipped_due_to_waiver": false},
        "attestation_data": {"status": "passed"},
        "results": [{"status": "failed", "code_desc": "cd", "message": "m", "run_time": 0.5, "start_time": "t", "resource_class": "file"}]
    }));
    assert_eq!(c.title.as_deref(), Some("T"));
    assert_eq!(c.desc.as_deref(), Some("D"));
    assert_eq!(c.descriptions.len(), 2);
    assert_eq!(c.descriptions[1].label, "fix");
    assert!(
        c.tags
            .iter()
            .any(|(k, v)| k == "nist" && v == &json!(["AC-6"]))
    );
    assert!(!c.waived);
    assert_eq!(c.waiver_justification.as_deref(), Some("accepted"));
    assert!(c.attested);
    assert_eq!(c.results[0].status, ResultStatus::Failed);
    assert_eq!(c.results[0].message.as_deref(), Some("m"));
    assert_eq!(c.results[0].resource_class.as_deref(), Some("file"));
    assert_eq!(c.extra["code"], json!("control 'V-1' do end"));
    assert_eq!(c.extra["source_location"]["line"], json!(3));
}

#[test]
fn raw_json_is_kept_only_on_request() {
    let text = json!({"profiles": [{"name": "p", "controls": []}]}).to_string();
    let scan = parse(text.as_bytes(), "t", &ParseOptions::default()).expect("parse");
    assert!(scan.raw_json.is_none());
    let scan = parse(text.as_bytes(), "t", &ParseOptions { keep_raw: true }).expect("parse");
    assert_eq!(scan.raw_json.as_deref(), Some(text.as_str()));
}

#[test]
fn counts_and_compliance_follow_saf() {
    let scan = parse_doc(json!({"profiles": [{"name": "p", "controls": [
        ctl("a", 0.5, json!([r("passed")])),
        ctl("b", 0.5, json!([r("failed")])),
        ctl("c", 0.5, json!([r("skipped")])),
        ctl("d", 0.5, json!([r("error")])),
        ctl("e", 0.0, json!([r("passed")])),
    ]}]}));
    let c = &scan.counts;
    assert_eq!(
        (
            c.passed.total,
            c.failed.total,
            c.not_reviewed.total,
            c.profile_error.total,
            c.not_applicable.total
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(c.not_applicable.none, 1);
    assert_eq!(c.compliance, 25, "N/A is excluded from the denominator");
}
