//! Writes a synthetic InSpec JSON (HDF) results file with N controls, for the
//! scaling benchmark: `synth_hdf N OUT.json [SEED]`.
//!
//! Controls look like real STIG results (tags, descriptions, code, one to
//! three results, a mix of statuses and impacts) so parse costs are realistic.

use std::io::{BufWriter, Write};

use serde_json::json;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .ok_or("usage: synth_hdf N OUT.json [SEED]")?
        .parse()?;
    let out = args.next().ok_or("usage: synth_hdf N OUT.json [SEED]")?;
    let seed: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(0x5eed);
    let mut rng = Rng(seed | 1);
    let mut w = BufWriter::new(std::fs::File::create(&out)?);
    write!(
        w,
        r#"{{"platform":{{"name":"debian","release":"12","target_id":"synthetic"}},"version":"6.8.24","statistics":{{"duration":{n}.0}},"profiles":[{{"name":"synthetic-baseline","version":"1.0.0","title":"Synthetic baseline","maintainer":"dscan","summary":"generated","license":"Apache-2.0","sha256":"{}","status":"loaded","supports":[],"attributes":[],"groups":[],"depends":[],"controls":["#,
        "0".repeat(64)
    )?;
    let impacts = [0.0, 0.3, 0.5, 0.5, 0.5, 0.7, 0.7, 1.0];
    let families = ["AC", "AU", "CM", "IA", "SC", "SI"];
    for i in 0..n {
        if i > 0 {
            w.write_all(b",")?;
        }
        let impact = impacts[rng.below(impacts.len() as u64) as usize];
        let results: Vec<serde_json::Value> = (0..1 + rng.below(3))
            .map(|k| {
                let roll = rng.below(100);
                let status = if roll < 70 { "passed" } else if roll < 92 { "failed" } else { "skipped" };
                let mut r = json!({
                    "status": status,
                    "code_desc": format!("File /etc/app/config-{i}-{k} mode is expected not to be more permissive than \"0644\""),
                    "run_time": 0.000123 * (k + 1) as f64,
                    "start_time": "2026-11-29T10:00:00+00:00",
                    "resource_class": "file"
                });
                if status == "failed" {
                    r["message"] = json!(format!("expected File /etc/app/config-{i}-{k} not to be more permissive than \"0644\"\n got 0666"));
                }
                if status == "skipped" {
                    r["skip_message"] = json!("Skipped control due to only_if condition");
                }
                r
            })
            .collect();
        let family = families[rng.below(families.len() as u64) as usize];
        let control = json!({
            "id": format!("SV-{:06}", 200000 + i),
            "title": format!("The application configuration file {i} must not be world-writable"),
            "desc": "Configuration files that are writable by any user can be modified to change the behaviour of the application.",
            "descriptions": [
                {"label": "default", "data": "Configuration files that are writable by any user can be modified to change the behaviour of the application."},
                {"label": "check", "data": format!("Verify the mode of /etc/app/config-{i} with: stat -c %a /etc/app/config-{i}")},
                {"label": "fix", "data": format!("Run: chmod 0644 /etc/app/config-{i}")}
            ],
            "impact": impact,
            "refs": [],
            "tags": {
                "gid": format!("V-{}", 200000 + i), "rid": format!("SV-{}r1_rule", 200000 + i),
                "stig_id": format!("APP-00-{:06}", i), "cci": [format!("CCI-{:06}", 1000 + i % 500)],
                "nist": [format!("{family}-{}", 1 + i % 20)]
            },
            "code": format!("control 'SV-{:06}' do\n  impact {impact}\n  describe file('/etc/app/config-{i}') do\n    it {{ should_not be_more_permissive_than('0644') }}\n  end\nend\n", 200000 + i),
            "source_location": {"ref": "controls/app.rb", "line": 1 + i * 7},
            "waiver_data": {},
            "results": results
        });
        serde_json::to_writer(&mut w, &control)?;
    }
    w.write_all(b"]}]}")?;
    w.flush()?;
    Ok(())
}
