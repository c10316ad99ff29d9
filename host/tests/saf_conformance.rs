//! Every case SAF CLI 1.5.3 was recorded on (`tests/fixtures/saf/cases.json`)
//! must give the same exit code, stderr and stdout with dscan. Outputs are
//! compared byte for byte (the SAF layout is reproduced exactly), with a
//! structural fallback message for JSON/YAML to make a diff readable.

mod support;

use serde_json::Value;
use support::{dscan_in, fixtures};

/// Cases where dscan deliberately differs from SAF, with dscan's expected
/// (exit, stdout, stderr). Empty: none of the recorded cases hits a
/// deviation; the deviations are tested in tests/cli.rs.
const DEVIATIONS: &[(&str, i32, &str, &str)] = &[];

fn structural(text: &str, yaml: bool) -> Option<Value> {
    if yaml {
        serde_saphyr::from_str(text).ok()
    } else {
        serde_json::from_str(text).ok()
    }
}

#[test]
fn every_recorded_saf_case_matches() {
    let cases: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json"),
    )
    .expect("json");
    let cases = cases["cases"].as_array().expect("cases array");
    assert!(
        cases.len() >= 19,
        "expected the recorded SAF cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let args: Vec<&str> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("arg"))
            .collect();
        let (exit, out, err) = match DEVIATIONS.iter().find(|d| d.0 == name) {
            Some(&(_, exit, out, err)) => (exit, out.to_string(), err.to_string()),
            None => (
                case["exit"].as_i64().expect("exit") as i32,
                case["stdout"].as_str().expect("stdout").to_string(),
                case["stderr"].as_str().expect("stderr").to_string(),
            ),
        };
        let output = dscan_in(&fixtures())
            .args(&args)
            .output()
            .expect("run dscan");
        let got_out = String::from_utf8_lossy(&output.stdout);
        let got_err = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(exit) {
            failures.push(format!(
                "{name}: exit {:?}, SAF {exit}; stderr: {got_err}",
                output.status.code()
            ));
            continue;
        }
        if got_err != err {
            failures.push(format!(
                "{name}: stderr\n  got:  {got_err:?}\n  want: {err:?}"
            ));
        }
        if got_out != out {
            let yaml = args.contains(&"yaml") || args[0] == "generate";
            let same_structure = match (structural(&got_out, yaml), structural(&out, yaml)) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            };
            failures.push(format!(
                "{name}: stdout differs ({})\n--- got ---\n{got_out}\n--- want ---\n{out}",
                if same_structure {
                    "same structure, different bytes"
                } else {
                    "different content"
                }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ from SAF CLI:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
