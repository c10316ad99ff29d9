//! Every reporter: golden outputs on the vendored SAF fixtures, well-formed output
//! on hostile control text, the same counts as the summary.

mod support;

use std::path::PathBuf;

use serde_json::json;
use sha2::{Digest, Sha256};
use support::{dscan, fixtures, stderr, stdout};

const FORMATS: [&str; 8] = [
    "markdown", "json", "yaml", "junit", "sarif", "csv", "github", "html",
];
/// Small fixtures get full golden files; large ones a SHA-256 of the output.
const SMALL: [&str; 3] = [
    "minimal-hdf.json",
    "RHEL7_overrides_hdf.json",
    "triple_overlay_profile_sample.json",
];
const LARGE: [&str; 3] = [
    "rhel-8_hardened.json",
    "red_hat_good.json",
    "triple_overlay_profile_example.json",
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn render(input: &str, format: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["report", "-i", input, "-f", format];
    args.extend_from_slice(extra);
    let o = dscan(&args);
    // With thresholds (-I) a failed verdict still writes the report, exit 1.
    let ok = o.status.code() == Some(0) || (extra.contains(&"-I") && o.status.code() == Some(1));
    assert!(ok, "{format} {input}: {:?} {}", o.status.code(), stderr(&o));
    o.stdout
}

/// `UPDATE_GOLDEN=1 cargo test --test reports` rewrites the goldens.
fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

#[test]
fn golden_outputs_for_every_format() {
    let mut failures = Vec::new();
    for fixture in SMALL {
        let input = format!("hdf/{fixture}");
        for format in FORMATS {
            let got = render(&input, format, &["--option", "failures=true"]);
            let path = golden_dir().join(format!("{fixture}.{format}"));
            if updating() {
                std::fs::create_dir_all(golden_dir()).expect("golden dir");
                std::fs::write(&path, &got).expect("write golden");
                continue;
            }
            let want = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
            if got != want {
                failures.push(format!(
                    "{}: output differs from the golden file",
                    path.display()
                ));
            }
        }
    }
    let digests_path = golden_dir().join("digests.txt");
    let mut digests = String::new();
    for fixture in LARGE {
        for format in FORMATS {
            let got = render(
                &format!("hdf/{fixture}"),
                format,
                &["--option", "failures=true"],
            );
            digests.push_str(&format!(
                "{fixture}.{format} {}\n",
                hex::encode(Sha256::digest(&got))
            ));
        }
    }
    if updating() {
        std::fs::write(&digests_path, &digests).expect("write digests");
    } else {
        let want = std::fs::read_to_string(&digests_path).expect("digests.txt");
        for (g, w) in digests.lines().zip(want.lines()) {
            if g != w {
                failures.push(format!("large fixture output changed: {g} (golden {w})"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_markdown_summary_is_unchanged_by_the_report_command() {
    let report = render("hdf/rhel-8_hardened.json", "markdown", &[]);
    let summary = dscan(&[
        "view",
        "summary",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "markdown",
    ]);
    assert_eq!(String::from_utf8_lossy(&report), stdout(&summary));
}

/// Control text a hostile or careless profile could contain.
const HOSTILE: &str = "<script>alert('x')</script> \"quoted\", comma; a|pipe\nnew line & ampersand \u{1}\u{7} =cmd|' /C calc'!A0 ]]> --> ünïcödé 🚀";

fn hostile_results(dir: &std::path::Path) -> String {
    let control = |id: &str, status: &str, impact: f64| {
        json!({
            "id": format!("{id}{HOSTILE}"),
            "title": HOSTILE,
            "desc": HOSTILE,
            "impact": impact,
            "tags": {"nist": [HOSTILE, "AC-6"], "cci": [HOSTILE]},
            "descriptions": [{"label": "check", "data": HOSTILE}, {"label": "fix", "data": HOSTILE}],
            "code": HOSTILE,
            "source_location": {"ref": format!("controls/{HOSTILE}.rb"), "line": 3},
            "results": [{"status": status, "code_desc": HOSTILE, "message": HOSTILE, "skip_message": HOSTILE, "exception": HOSTILE}]
        })
    };
    let doc = json!({
        "platform": {"name": HOSTILE, "release": "1"},
        "version": HOSTILE,
        "profiles": [{"name": HOSTILE, "version": HOSTILE, "controls": [
            control("f", "failed", 0.7),
            control("p", "passed", 0.5),
            control("s", "skipped", 0.3),
            control("e", "error", 0.9),
            control("n", "passed", 0.0),
        ]}]
    });
    let path = dir.join("hostile.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    path.display().to_string()
}

/// What survives of HOSTILE in formats that cannot carry control characters.
fn without_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn hostile_control_text_is_rendered_safely_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = hostile_results(dir.path());
    let verdict = ["-I", "{compliance.min: 100}"];

    // JUnit: well-formed XML; attributes and text round-trip.
    let xml = String::from_utf8(render(&input, "junit", &[])).expect("utf8");
    let doc = roxmltree::Document::parse(&xml).expect("JUnit output is well-formed XML");
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .expect("testcase");
    assert_eq!(
        case.attribute("name"),
        Some(format!("f{h}: {h}", h = without_controls(HOSTILE)).as_str())
    );
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .expect("failure");
    assert!(
        failure
            .text()
            .expect("text")
            .contains(&without_controls(HOSTILE))
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count(),
        5
    );

    // SARIF: valid JSON; strings round-trip exactly.
    let sarif: serde_json::Value =
        serde_json::from_slice(&render(&input, "sarif", &[])).expect("SARIF is JSON");
    let rule = &sarif["runs"][0]["tool"]["driver"]["rules"][0];
    assert_eq!(rule["shortDescription"]["text"], HOSTILE);
    let uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .expect("uri");
    assert!(
        uri.chars().all(|c| c.is_ascii_graphic()),
        "uri is percent-encoded: {uri}"
    );

    // CSV: parses back into the same fields (formula-like cells made inert).
    let csv_bytes = render(&input, "csv", &[]);
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_bytes.as_slice());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(headers.len(), 16);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row parses")).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.len() == 16));
    let title = headers
        .iter()
        .position(|h| h == "Title")
        .expect("Title column");
    assert_eq!(&rows[0][title], HOSTILE);

    // HTML: the only script is ours; the hostile text appears escaped.
    let page = String::from_utf8(render(&input, "html", &verdict)).expect("utf8");
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only dscan's own script"
    );
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(page.contains("Verdict: thresholds not met"));
    assert!(
        page.contains("default-src 'none'"),
        "CSP forbids network fetches"
    );

    // Markdown and GitHub: no raw markup, table rows keep their columns.
    for format in ["markdown", "github"] {
        let text = String::from_utf8(render(&input, format, &["--option", "failures=true"]))
            .expect("utf8");
        assert!(!text.contains("<script>"), "{format}: {text}");
        for line in text
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains("alert"))
        {
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(cells, 5, "{format}: a row with 4 cells: {line}");
        }
    }

    // JSON and YAML summaries: valid documents naming the hostile profile.
    let json: serde_json::Value =
        serde_json::from_slice(&render(&input, "json", &[])).expect("json");
    assert_eq!(json[0]["profileName"], HOSTILE);
    let yaml: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8(render(&input, "yaml", &[])).expect("utf8"))
            .expect("yaml");
    assert_eq!(yaml[0]["profileName"], HOSTILE);
}

#[test]
fn every_format_shows_the_same_counts_and_verdict() {
    let input = "hdf/rhel-8_hardened.json";
    // rhel-8_hardened: 227 passed, 112 failed, 3 not reviewed, 33 N/A, 66%.
    let junit = String::from_utf8(render(input, "junit", &[])).expect("utf8");
    assert!(
        junit.contains(r#"tests="375" failures="112" errors="0" skipped="36""#),
        "{}",
        &junit[..400]
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&render(input, "sarif", &[])).expect("json");
    assert_eq!(
        sarif["runs"][0]["results"].as_array().map(Vec::len),
        Some(112)
    );
    assert_eq!(sarif["runs"][0]["properties"]["compliance"], 66);
    let csv_rows = String::from_utf8(render(input, "csv", &[])).expect("utf8");
    let mut reader = csv::Reader::from_reader(csv_rows.as_bytes());
    let statuses: Vec<String> = reader
        .records()
        .map(|r| r.expect("row")[1].to_string())
        .collect();
    assert_eq!(statuses.len(), 375);
    assert_eq!(statuses.iter().filter(|s| *s == "Failed").count(), 112);
    let github =
        String::from_utf8(render(input, "github", &["-I", "{compliance.min: 70}"])).expect("utf8");
    assert!(
        github.contains("**Compliance: 66%** · 227 passed · 112 failed"),
        "{github}"
    );
    assert!(
        github.contains(
            "**Verdict: :x: thresholds not met** — Overall compliance minimum was not satisfied"
        ),
        "{github}"
    );
    let failing = ["-I", "{compliance.min: 70}"];
    let junit = String::from_utf8(render(input, "junit", &failing)).expect("utf8");
    assert!(
        junit.contains(r#"<property name="verdict" value="failed"/>"#),
        "{}",
        &junit[..900]
    );
    let sarif: serde_json::Value =
        serde_json::from_slice(&render(input, "sarif", &failing)).expect("json");
    assert_eq!(sarif["runs"][0]["properties"]["verdict"]["passed"], false);
    let md = String::from_utf8(render(input, "markdown", &failing)).expect("utf8");
    assert!(
        md.trim_end().ends_with(
            "**Verdict: thresholds not met** — Overall compliance minimum was not satisfied"
        ),
        "{md}"
    );
    let html =
        String::from_utf8(render(input, "html", &["-I", "{compliance.min: 60}"])).expect("utf8");
    assert!(
        html.contains("66%<small>compliance</small>")
            && html.contains("Verdict: thresholds passed")
    );
}

#[test]
fn report_with_failed_thresholds_writes_the_report_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("r.html");
    let o = dscan(&[
        "report",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "html",
        "-o",
        out.to_str().expect("utf8"),
        "-I",
        "{compliance.min: 90}",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: Overall compliance minimum was not satisfied\n"
    );
    assert!(
        std::fs::read_to_string(&out)
            .expect("written")
            .contains("thresholds not met")
    );
    let o = dscan(&[
        "report",
        "-i",
        "hdf/rhel-8_hardened.json",
        "-f",
        "github",
        "--option",
        "top=lots",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("option top: `lots` is not a number"),
        "{}",
        stderr(&o)
    );
    let _ = fixtures();
}
