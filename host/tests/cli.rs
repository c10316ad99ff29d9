//! The CLI end to end: SAF deviations (fail closed), bad inputs, the example
//! third-party plugin loaded with --plugin, file outputs.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::{dscan, dscan_in, fixtures, guest, stderr, stdout};

/// `dscan validate threshold -i INPUT -I THRESHOLDS`.
fn validate_inline(input: &str, thresholds: &str) -> std::process::Output {
    dscan(&["validate", "threshold", "-i", input, "-I", thresholds])
}

fn hdf_path(name: &str) -> String {
    fixtures().join("hdf").join(name).display().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

/// A results document with one profile and the given controls.
fn doc(controls: serde_json::Value) -> String {
    json!({
        "platform": {"name": "debian", "release": "12"},
        "version": "6.6.0",
        "profiles": [{"name": "p", "version": "1.0.0", "controls": controls}],
        "statistics": {"duration": 1.0}
    })
    .to_string()
}

fn control(id: &str, impact: f64, statuses: &[&str]) -> serde_json::Value {
    json!({
        "id": id, "title": format!("control {id}"), "impact": impact, "tags": {},
        "results": statuses.iter().map(|s| json!({"status": s, "code_desc": format!("{id} test")})).collect::<Vec<_>>()
    })
}

#[test]
fn validate_without_a_threshold_is_a_usage_error_not_a_pass() {
    // SAF prints a hint and exits 0.
    let o = dscan(&["validate", "threshold", "-i", "hdf/minimal-hdf.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("-T") || stderr(&o).contains("template"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_and_invalid_inputs_fail_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let truncated = write(
        d,
        "truncated.json",
        &doc(json!([control("a", 0.5, &["passed"])]))[..60],
    );
    let wrong_types = write(
        d,
        "types.json",
        &doc(json!([{"id": "a", "impact": "high", "results": []}])),
    );
    let not_hdf = write(d, "other.json", r#"{"kind": "Pod", "apiVersion": "v1"}"#);
    let json_min = write(
        d,
        "min.json",
        r#"{"controls": [{"id": "a", "status": "passed"}], "statistics": {}, "version": "6"}"#,
    );
    let no_profiles = write(d, "empty.json", r#"{"profiles": [], "platform": {}}"#);
    let binary = d.join("binary.json");
    std::fs::write(&binary, [0u8, 159, 146, 150, 255, 1, 2, 3]).expect("write");
    let empty_file = write(d, "zero.json", "");
    let good_threshold = write(d, "t.yml", "compliance.min: 0\n");
    let cases: Vec<(PathBuf, &str)> = vec![
        (d.join("does-not-exist.json"), "cannot read results file"),
        (truncated, "not valid InSpec JSON: EOF while parsing"),
        (
            wrong_types,
            "not valid InSpec JSON: invalid type: string \"high\", expected f64",
        ),
        (
            not_hdf,
            "no `profiles` list (top-level keys: `apiVersion`, `kind`)",
        ),
        (json_min, "json-min output"),
        (no_profiles, "contains no profiles"),
        (binary, "is not JSON results"),
        (empty_file, "the file is empty"),
    ];
    for (input, needle) in cases {
        let input = input.display().to_string();
        for args in [
            vec![
                "validate",
                "threshold",
                "-i",
                &input,
                "-T",
                good_threshold.to_str().expect("utf8"),
            ],
            vec!["view", "summary", "-i", &input],
            vec!["generate", "threshold", "-i", &input],
        ] {
            let o = dscan(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
            assert!(
                stderr(&o).contains(needle),
                "{args:?}: want {needle:?} in {}",
                stderr(&o)
            );
            assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        }
    }
}

#[test]
fn bad_threshold_files_fail_closed_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='i' {
        bomb.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
        prev = name;
    }
    let cases = [
        ("empty.yml", "", "the threshold file is empty"),
        (
            "typo.yml",
            "complaince.min: 80\n",
            "`complaince.min` is not a threshold key",
        ),
        (
            "word.yml",
            "compliance:\n  min: eighty\n",
            "`compliance.min` must be a number",
        ),
        ("bomb.yml", bomb.as_str(), "not valid YAML"),
    ];
    for (name, text, needle) in cases {
        let path = write(d, name, text);
        let started = std::time::Instant::now();
        let o = dscan(&[
            "validate",
            "threshold",
            "-i",
            "hdf/minimal-hdf.json",
            "-T",
            path.to_str().expect("utf8"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{name}: want {needle:?} in {}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains("saf-thresholds"),
            "{name}: error names the evaluator: {}",
            stderr(&o)
        );
        assert!(
            started.elapsed().as_secs() < 20,
            "{name} took {:?}",
            started.elapsed()
        );
    }
    let o = validate_inline("hdf/minimal-hdf.json", "{compliance.min: lots}");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("`lots` is not a number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn compliance_max_zero_is_honoured() {
    // SAF never checks a maximum of 0 (it is falsy); dscan does.
    let o = validate_inline("hdf/rhel-8_hardened.json", "{compliance.max: 0}");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Overall compliance maximum was not satisfied\n"
    );
}

#[test]
fn every_flattened_key_is_kept() {
    // SAF keeps only the last flattened key per bucket (here: the max), so
    // its min would never be checked. rhel-8_hardened has 11 passed high.
    let dir = tempfile::tempdir().expect("tempdir");
    let t = write(
        dir.path(),
        "flat.yml",
        "passed.high.min: 12\npassed.high.max: 20\n",
    );
    let o = dscan(&[
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-T",
        t.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("Error: passed.high.min: Threshold not met."),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_impact_total_bounds_are_checked() {
    // rhel-8_hardened has 33 Not Applicable controls; SAF ignores these keys.
    let o = validate_inline("hdf/rhel-8_hardened.json", "{no_impact.total.max: 10}");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: no_impact.total.max: Threshold not met. Number of received total no_impact controls (33) is greater than your set threshold for the number of no_impact controls (10)\n"
    );
    let o = validate_inline("hdf/rhel-8_hardened.json", "{no_impact.total.min: 34}");
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn capitalised_severity_tags_count_in_their_bucket() {
    // SAF keeps "High" as written and then counts it in no bucket.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = control("c1", 0.5, &["failed"]);
    c["tags"] = json!({"severity": "High"});
    let input = write(dir.path(), "high.json", &doc(json!([c])));
    let input = input.to_str().expect("utf8");
    let o = dscan(&[
        "validate",
        "threshold",
        "-i",
        input,
        "-I",
        "{failed.high.max: 0}",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("failed.high.max"), "{}", stderr(&o));
    let o = dscan(&["view", "summary", "-i", input, "-f", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v[0]["failed"]["high"], 1);
    assert_eq!(v[0]["failed"]["medium"], 0);
}

#[test]
fn missing_control_buckets_print_empty_not_undefined() {
    let o = dscan(&[
        "validate",
        "threshold",
        "-i",
        "hdf/minimal-hdf.json",
        "-T",
        "/dev/stdin",
    ]);
    // /dev/stdin is empty here: an empty threshold file.
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let t = write(
        dir.path(),
        "ids.yml",
        "passed:\n  critical:\n    controls:\n      - V-1\n",
    );
    let o = dscan(&[
        "validate",
        "threshold",
        "-i",
        "hdf/minimal-hdf.json",
        "-T",
        t.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Expected passed.critical.controls to contain V-1 controls but it only contained []\n"
    );
}

#[test]
fn generated_thresholds_validate_their_own_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "rhel-8_hardened.json",
        "triple_overlay_profile_example.json",
        "red_hat_good.json",
        "minimal-hdf.json",
    ] {
        for flags in [&[][..], &["-e"][..], &["-e", "-c"][..]] {
            let out = dir.path().join(format!("{name}.yml"));
            let input = hdf_path(name);
            let mut args = vec![
                "generate",
                "threshold",
                "-i",
                &input,
                "-o",
                out.to_str().expect("utf8"),
            ];
            args.extend_from_slice(flags);
            let o = dscan(&args);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            assert!(stdout(&o).is_empty());
            let o = dscan(&[
                "validate",
                "threshold",
                "-i",
                &input,
                "-T",
                out.to_str().expect("utf8"),
            ]);
            assert_eq!(o.status.code(), Some(0), "{name} {flags:?}: {}", stderr(&o));
            assert_eq!(stdout(&o), "All validation tests passed\n");
        }
    }
}

#[test]
fn summary_writes_files_and_can_skip_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("summary.md");
    let o = dscan(&[
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "markdown",
        "--no-title-table",
        "--no-stdout",
        "-o",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let written = std::fs::read_to_string(&out).expect("written");
    let expected = std::fs::read_to_string(fixtures().join("expected/rhel-8_hardened_output.md"))
        .expect("golden");
    assert_eq!(written.trim_end(), expected.trim_end());

    let o = dscan(&[
        "view",
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "json",
        "--no-print-pretty",
    ]);
    assert_eq!(stdout(&o).lines().count(), 1);
    let compact: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("expected/rhel-8_hardened_output.json"))
            .expect("golden"),
    )
    .expect("json");
    assert_eq!(compact, golden);

    let o = dscan(&[
        "view",
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no reporter plugin named `nope`"),
        "{}",
        stderr(&o)
    );

    let o = dscan(&[
        "view",
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-o",
        "/nonexistent/dir/x.yml",
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "SAF logs and exits 0; dscan must not"
    );
}

#[test]
fn summary_of_two_files_with_one_profile_averages_compliance_and_sums_counts() {
    let o = dscan(&[
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "hdf/red_hat_good.json",
        "hdf/rhel-8_hardened.json",
        "-f",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(
        v[0]["resultSets"],
        json!(["rhel-8_hardened.json", "rhel-8_hardened.json"])
    );
    assert_eq!(v[0]["passed"]["total"], 454);
    assert_eq!(v[0]["compliance"], 66);
}

#[test]
fn the_example_policy_plugin_loads_with_dash_dash_plugin_and_decides() {
    let nist = guest("nist_gate");
    let nist = nist.to_str().expect("utf8");
    // rhel-8_hardened has failed controls mapped to AC, IA and SC.
    let o = dscan(&[
        "--plugin",
        nist,
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-I",
        "{compliance.min: 0}",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(
            "Error: nist-gate: 45 failed control(s) map to blocking NIST families: SV-230223 (AC)"
        ),
        "{}",
        stderr(&o)
    );

    // A family nothing fails in, and a compliance floor it meets: pass.
    let o = dscan(&[
        "--plugin",
        nist,
        "--plugin-opt",
        "nist-gate:families=PE",
        "--plugin-opt",
        "nist-gate:min-compliance=60",
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-I",
        "{compliance.min: 0}",
        "--all",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("[nist-gate] PASS compliance 66% (minimum 60%)"),
        "{}",
        stdout(&o)
    );

    // The compliance floor alone fails.
    let o = dscan(&[
        "--plugin",
        nist,
        "--plugin-opt",
        "nist-gate:families=PE",
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-I",
        "{compliance.min: 0}",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: nist-gate: compliance 66% (minimum 80%)\n"
    );

    // Both evaluators fail: both are reported, the SAF one first, unprefixed.
    let o = dscan(&[
        "--plugin",
        nist,
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-I",
        "{compliance.min: 90}",
    ]);
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[0],
        "Error: Overall compliance minimum was not satisfied"
    );
    assert!(lines[1].starts_with("Error: nist-gate: "), "{err}");

    // A bad option is the plugin's clear rejection, a usage error.
    let o = dscan(&[
        "--plugin",
        nist,
        "--plugin-opt",
        "nist-gate:min-compliance=120",
        "validate",
        "threshold",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-I",
        "{compliance.min: 0}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("min-compliance: `120` is not a number from 0 to 100"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plugins_list_and_inspect() {
    let o = dscan(&["plugins", "list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let names: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "saf-thresholds",
            "markdown",
            "json",
            "yaml",
            "junit",
            "sarif",
            "csv",
            "github",
            "html",
            "chroot-wrapper",
            "graft",
            "same-user",
            "node-debug"
        ]
    );
    let contracts: Vec<&str> = v
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["contract"].as_str().expect("contract"))
        .collect();
    assert_eq!(
        contracts.iter().filter(|c| **c == "0.2.0").count(),
        1,
        "node-debug is the built-in of contract 0.2.0: {contracts:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("saf.wasm");
    std::fs::copy(guest("saf_thresholds"), &copy).expect("copy");
    let o = dscan(&["--plugin", copy.to_str().expect("utf8"), "plugins", "list"]);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with("saf-thresholds"))
        .expect("listed");
    assert!(line.contains("saf.wasm (overrides built-in)"), "{text}");
    // Replacing a built-in is a visible warning, not an info-level log line.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("WARN")
            && err.contains("replaces `saf-thresholds`")
            && err.contains("a built-in"),
        "{err}"
    );

    let o = dscan(&[
        "plugins",
        "inspect",
        guest("nist_gate").to_str().expect("utf8"),
    ]);
    let text = stdout(&o);
    for needle in [
        "kind:        threshold-evaluator",
        "name:        nist-gate",
        "version:     1.0.0",
        "contract:    dscan:plugin@0.1.0",
        "wasi:cli/environment@0.2",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let o = dscan(&[
        "plugins",
        "inspect",
        guest("not_a_plugin").to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("implements no dscan plugin world"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_and_completions() {
    let o = dscan(&["--version"]);
    assert_eq!(stdout(&o), format!("dscan {}\n", env!("CARGO_PKG_VERSION")));
    let o = dscan(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("_dscan()"), "{}", stdout(&o));
    let o = dscan(&["validate", "threshold", "--bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_user_plugin_dir_is_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(guest("nist_gate"), dir.path().join("nist.wasm")).expect("copy");
    let o = dscan_in(&fixtures())
        .env("DSCAN_PLUGIN_DIR", dir.path())
        .args(["plugins", "list"])
        .output()
        .expect("run");
    assert!(stdout(&o).contains("nist-gate"), "{}", stdout(&o));
    assert!(stdout(&o).contains("(plugin dir)"), "{}", stdout(&o));
}

#[test]
fn the_plugin_cache_survives_a_process_restart() {
    let cache = tempfile::tempdir().expect("tempdir");
    let run = || {
        dscan_in(&fixtures())
            .env("DSCAN_PLUGIN_CACHE", cache.path())
            .args(["-vv", "plugins", "list"])
            .output()
            .expect("run")
    };
    let first = stderr(&run());
    assert!(
        first.contains("plugin=`saf-thresholds` 0.1.0 (built-in) cache=Miss"),
        "{first}"
    );
    let second = stderr(&run());
    assert!(
        second.contains("plugin=`saf-thresholds` 0.1.0 (built-in) cache=Hit"),
        "{second}"
    );
    assert!(!second.contains("cache=Miss"), "{second}");
}

#[test]
fn logs_are_plain_text_when_not_on_a_terminal() {
    let o = dscan(&["-vv", "plugins", "list"]);
    assert!(
        !stderr(&o).contains('\u{1b}'),
        "no ANSI escapes in captured logs"
    );
}

#[test]
fn a_bad_threshold_stops_a_scan_before_the_cluster_is_contacted() {
    // The kubeconfig points at a port nothing listens on: reaching the
    // cluster would be exit 3 ("read the server version failed").
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n\
         contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: x}\n",
    )
    .expect("write");
    let bad_file = dir.path().join("bad.yml");
    std::fs::write(&bad_file, "compliance:\n  min: lots\n").expect("write");
    let k = kubeconfig.to_str().expect("utf8");
    let base = [
        "scan",
        "-n",
        "apps",
        "-p",
        "web",
        "--runner",
        "standin",
        "--kubeconfig",
        k,
    ];
    for (extra, says) in [
        (vec!["-I", "{compliance.min: abc}"], "`abc` is not a number"),
        (vec!["-I", "{compliance: {min: 80}}"], "write dotted keys"),
        (
            vec!["-T", bad_file.to_str().expect("utf8")],
            "compliance.min",
        ),
    ] {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let o = dscan(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(
            !err.contains("server version"),
            "{extra:?}: the cluster was contacted: {err}"
        );
    }
}

#[test]
fn plugin_options_must_name_a_plugin_and_a_key_it_takes() {
    let v = |extra: &[&str]| {
        let mut args = vec![
            "validate",
            "threshold",
            "-i",
            "hdf/minimal-hdf.json",
            "-I",
            "{compliance.min: 0}",
        ];
        args.extend_from_slice(extra);
        dscan(&args)
    };
    assert_eq!(v(&[]).status.code(), Some(0));
    let o = v(&["--plugin-opt", "saf-thresholds:strict=yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown option `strict`"),
        "{}",
        stderr(&o)
    );
    let o = v(&["--plugin-opt", "saf-treshold:x=1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no plugin named saf-treshold"),
        "{}",
        stderr(&o)
    );
    // A misspelt reporter key is refused; a shared one another format
    // takes is accepted and ignored.
    let r = |opt: &str| {
        dscan(&[
            "report",
            "-i",
            "hdf/minimal-hdf.json",
            "-f",
            "markdown",
            "--plugin-opt",
            opt,
        ])
    };
    let o = r("markdown:titel-table=false");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("titel-table"), "{}", stderr(&o));
    assert_eq!(r("markdown:pretty=false").status.code(), Some(0));
}

#[test]
fn a_report_shows_the_hosts_verdict_whatever_the_options_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("report.md");
    let input = support::fixtures().join("hdf/minimal-hdf.json");
    let o = dscan(&[
        "--plugin-opt",
        "markdown:verdict=passed",
        "report",
        "-i",
        input.to_str().expect("utf8"),
        "-f",
        "markdown",
        "-o",
        out.to_str().expect("utf8"),
        "-I",
        "{compliance.min: 100}",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("report");
    assert!(
        text.contains("Verdict: thresholds not met") || text.contains("Verdict: thresholds failed"),
        "{text}"
    );
    assert!(!text.contains("Verdict: thresholds passed"), "{text}");
    let o = dscan(&[
        "report",
        "-i",
        input.to_str().expect("utf8"),
        "-f",
        "markdown",
        "--option",
        "verdict=passed",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("comes from thresholds"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_file_that_is_not_webassembly_is_named_in_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.wasm");
    std::fs::write(&path, "hello").expect("write");
    let o = dscan(&["--plugin", path.to_str().expect("utf8"), "plugins", "list"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("it is not WebAssembly"), "{err}");
}

/// `dscan exec`: InSpec's exit codes (0 passed, 100 failures, 101 skips
/// only), the json reporter, inputs, and clear errors for bad arguments.
/// `dscan exec PROFILE --target-root ROOT EXTRA…`.
fn exec_on(profile: &Path, root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "exec",
        profile.to_str().expect("utf8"),
        "--target-root",
        root.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    dscan(&args)
}

#[test]
fn exec_runs_a_profile_on_a_root_filesystem_with_inspecs_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    write(&root, "etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n");
    write(&root, "etc/debian_version", "12.11\n");
    let profile = dir.path().join("profile");
    std::fs::create_dir_all(profile.join("controls")).expect("mkdir");
    write(
        &profile,
        "inspec.yml",
        "name: p\nversion: 1.0.0\ninputs:\n  - name: who\n    value: root\n",
    );
    let control = |body: &str| {
        write(
            &profile,
            "controls/c.rb",
            &format!("control 'c' do\n  {body}\nend\n"),
        );
    };
    let exec = |extra: &[&str]| exec_on(&profile, &root, extra);

    control("describe passwd do\n    its('users') { should include input('who') }\n  end");
    let out = exec(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("✔"), "{}", stdout(&out));
    // An input from the command line overrides inspec.yml.
    let report = dir.path().join("r.json");
    let json_arg = format!("json:{}", report.display());
    let out = exec(&["--input", "who=nobody", "--reporter", &json_arg]);
    assert_eq!(out.status.code(), Some(100), "{}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(
        doc["profiles"][0]["controls"][0]["results"][0]["message"],
        "expected [\"root\"] to include \"nobody\""
    );
    control("describe command('id') do\n    its('stdout') { should_not match(/root/) }\n  end");
    assert_eq!(exec(&[]).status.code(), Some(101));

    let out = exec(&["--input", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected NAME=VALUE"),
        "{}",
        stderr(&out)
    );
    let out = exec(&["--reporter", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("knows cli, json and json:PATH"),
        "{}",
        stderr(&out)
    );
    let out = dscan(&[
        "exec",
        "/nonexistent-profile",
        "--target-root",
        root.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(102));
    assert!(stderr(&out).contains("inspec.yml"), "{}", stderr(&out));
}

#[test]
fn exec_applies_waiver_files_and_gates_on_thresholds_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    write(&root, "etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\n");
    let profile = dir.path().join("profile");
    write(&profile, "inspec.yml", "name: p\nversion: 1.0.0\n");
    write(
        &profile,
        "controls/c.rb",
        "control 'ok' do\n  describe file('/etc/passwd') do\n    it { should exist }\n  end\nend\n\
         control 'bad' do\n  describe file('/etc/passwd') do\n    it { should_not exist }\n  end\nend\n",
    );
    let exec = |extra: &[&str]| exec_on(&profile, &root, extra);
    assert_eq!(exec(&[]).status.code(), Some(100));
    // The failing control waived with run: false is skipped, with the
    // justification, and is not evaluated.
    let waivers = write(
        dir.path(),
        "w.yml",
        "bad:\n  justification: accepted until rebuild\n  run: false\n",
    );
    let report = dir.path().join("r.json");
    let json_arg = format!("json:{}", report.display());
    let out = exec(&[
        "--waiver-file",
        waivers.to_str().unwrap(),
        "--reporter",
        &json_arg,
    ]);
    assert_eq!(out.status.code(), Some(101), "skips only: {}", stderr(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let bad = &doc["profiles"][0]["controls"][1];
    assert_eq!(
        bad["results"][0]["skip_message"],
        "Skipped control due to waiver condition: accepted until rebuild"
    );
    assert_eq!(bad["waiver_data"]["skipped_due_to_waiver"], true);
    // A waiver without justification is refused, as InSpec refuses it.
    let no_why = write(dir.path(), "w2.yml", "bad:\n  run: false\n");
    let out = exec(&["--waiver-file", no_why.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("justification"), "{}", stderr(&out));

    // Thresholds: the gate's exit code replaces InSpec's.
    let out = exec(&["-I", "{compliance.min: 40}"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "50% passes 40: {}",
        stderr(&out)
    );
    let out = exec(&["-I", "{compliance.min: 80}"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A bad threshold or an unknown report format stops before the profile
    // runs: no report file appears.
    let junit = dir.path().join("junit.xml");
    let junit_arg = format!("junit={}", junit.display());
    let out = exec(&["-I", "{compliance.min: eighty}", "--report", &junit_arg]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!junit.exists());
    let out = exec(&["--report", "no-such-format"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A report carries the gate's verdict.
    let out = exec(&["-I", "{compliance.min: 80}", "--report", &junit_arg]);
    assert_eq!(out.status.code(), Some(1));
    let xml = std::fs::read_to_string(&junit).expect("junit report");
    assert!(xml.contains("bad"), "{xml}");
}
