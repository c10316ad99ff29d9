//! `html` reporter: one self-contained HTML file. No network fetches (a
//! Content-Security-Policy forbids them), readable without JavaScript
//! (controls are native `<details>`), a chart of results by status and
//! severity (inline SVG), and a search box and status filter that a small
//! inline script enables.

use std::fmt::Write;

use dscan_plugin_sdk::reporter::{
    Control, ControlStatus, Detail, FormatInfo, Guest, OptionPair, PluginInfo, ResultStatus, Scan,
    SeverityCounts,
};
use dscan_report_kit::controls::{
    description, result_label, severity_label, severity_rank, status_label, tag_list,
};
use dscan_report_kit::escape::html;
use dscan_report_kit::{target_rows, verdict};

struct Html;

const STYLE: &str = r#"
:root{--pass:#2e7d32;--fail:#c62828;--nr:#ef6c00;--na:#757575;--err:#6a1b9a;--bg:#fafafa;--fg:#212121;--muted:#616161;--line:#e0e0e0}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#263238;color:#fff;padding:20px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#cfd8dc}
main{max-width:1200px;margin:0 auto;padding:24px 32px}
section.scan{background:#fff;border:1px solid var(--line);border-radius:8px;padding:20px 24px;margin-bottom:24px}
h2{margin:0 0 4px;font-size:20px}.meta{color:var(--muted);margin:0 0 16px}
.verdict{padding:12px 16px;border-radius:6px;font-weight:600;margin-bottom:20px}
.verdict.pass{background:#e8f5e9;color:var(--pass)}.verdict.fail{background:#ffebee;color:var(--fail)}.verdict.none{background:#eceff1;color:var(--muted)}
.overview{display:flex;gap:32px;flex-wrap:wrap;align-items:center}
.score{font-size:48px;font-weight:700;line-height:1}.score small{display:block;font-size:14px;font-weight:400;color:var(--muted)}
table.counts{border-collapse:collapse;font-variant-numeric:tabular-nums}table.counts th,table.counts td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:right}table.counts th:first-child,table.counts td:first-child{text-align:left}
.legend span{display:inline-block;margin-right:14px;font-size:13px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.s-passed{background:var(--pass)}.s-failed{background:var(--fail)}.s-not-reviewed{background:var(--nr)}.s-not-applicable{background:var(--na)}.s-profile-error{background:var(--err)}
.filters{display:flex;gap:12px;flex-wrap:wrap;margin:20px 0 12px;align-items:center}
.filters input[type=search]{flex:1;min-width:240px;padding:8px 10px;border:1px solid #bdbdbd;border-radius:6px;font:inherit}
details.control{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:#fff}
details.control>summary{cursor:pointer;padding:8px 12px;display:flex;gap:10px;align-items:baseline;list-style:none}
details.control>summary::-webkit-details-marker{display:none}
.badge{color:#fff;border-radius:4px;padding:1px 7px;font-size:12px;font-weight:600;white-space:nowrap}
.sev{font-size:12px;color:var(--muted);text-transform:uppercase;min-width:64px}.cid{font-family:ui-monospace,monospace;font-size:13px;white-space:nowrap}
.body{padding:4px 16px 14px;border-top:1px solid var(--line)}.body pre{white-space:pre-wrap;word-break:break-word;background:#f5f5f5;padding:8px;border-radius:4px;font-size:13px}
.result{margin:6px 0}.result b{text-transform:uppercase;font-size:12px}
.r-passed{color:var(--pass)}.r-failed{color:var(--fail)}.r-skipped{color:var(--nr)}.r-error{color:var(--err)}
.hidden{display:none}footer{color:var(--muted);font-size:13px;text-align:center;padding:16px}
"#;

const SCRIPT: &str = r#"
for(const s of document.querySelectorAll('section.scan')){
 const q=s.querySelector('input[type=search]'),boxes=[...s.querySelectorAll('input[type=checkbox]')],items=[...s.querySelectorAll('details.control')],n=s.querySelector('.shown');
 const apply=()=>{const t=q.value.trim().toLowerCase(),on=new Set(boxes.filter(b=>b.checked).map(b=>b.value));let k=0;
  for(const d of items){const ok=on.has(d.dataset.status)&&(!t||d.dataset.text.includes(t));d.classList.toggle('hidden',!ok);if(ok)k++}n.textContent=k};
 q.addEventListener('input',apply);boxes.forEach(b=>b.addEventListener('change',apply));s.querySelector('.filters').classList.remove('hidden');apply();
}
"#;

const STATUSES: [(ControlStatus, &str); 5] = [
    (ControlStatus::Failed, "failed"),
    (ControlStatus::ProfileError, "profile-error"),
    (ControlStatus::NotReviewed, "not-reviewed"),
    (ControlStatus::Passed, "passed"),
    (ControlStatus::NotApplicable, "not-applicable"),
];

fn status_class(s: ControlStatus) -> &'static str {
    STATUSES
        .iter()
        .find(|(x, _)| *x == s)
        .map(|(_, c)| *c)
        .unwrap_or("profile-error")
}

fn bucket(counts: &dscan_plugin_sdk::reporter::Counts, s: ControlStatus) -> &SeverityCounts {
    match s {
        ControlStatus::Passed => &counts.passed,
        ControlStatus::Failed => &counts.failed,
        ControlStatus::NotReviewed => &counts.not_reviewed,
        ControlStatus::NotApplicable => &counts.not_applicable,
        ControlStatus::ProfileError => &counts.profile_error,
    }
}

fn by_severity(c: &SeverityCounts) -> [(&'static str, u32); 5] {
    [
        ("critical", c.critical),
        ("high", c.high),
        ("medium", c.medium),
        ("low", c.low),
        ("none", c.none),
    ]
}

/// Horizontal stacked bars: one per severity, split by status.
fn chart(out: &mut String, scan: &Scan) {
    let (w, bar, gap, label) = (640.0f64, 22.0f64, 10.0f64, 80.0f64);
    let rows = ["critical", "high", "medium", "low", "none"];
    let max = rows
        .iter()
        .enumerate()
        .map(|(i, _)| {
            STATUSES
                .iter()
                .map(|(s, _)| by_severity(bucket(&scan.counts, *s))[i].1)
                .sum::<u32>()
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let h = rows.len() as f64 * (bar + gap);
    let _ = write!(
        out,
        r#"<svg role="img" aria-label="Controls by severity and status" width="{}" height="{h}" viewBox="0 0 {} {h}" xmlns="http://www.w3.org/2000/svg">"#,
        w + label + 60.0,
        w + label + 60.0
    );
    for (i, sev) in rows.iter().enumerate() {
        let y = i as f64 * (bar + gap);
        let _ = write!(
            out,
            r##"<text x="0" y="{}" font-size="13" fill="#424242">{sev}</text>"##,
            y + bar * 0.72
        );
        let mut x = label;
        let mut total = 0;
        for (status, class) in STATUSES {
            let n = by_severity(bucket(&scan.counts, status))[i].1;
            if n == 0 {
                continue;
            }
            total += n;
            let width = w * f64::from(n) / f64::from(max);
            let _ = write!(
                out,
                r#"<rect class="s-{class}" x="{x:.1}" y="{y}" width="{width:.1}" height="{bar}" style="fill:var(--{})"><title>{}: {n} {} {sev}</title></rect>"#,
                match status {
                    ControlStatus::Passed => "pass",
                    ControlStatus::Failed => "fail",
                    ControlStatus::NotReviewed => "nr",
                    ControlStatus::NotApplicable => "na",
                    ControlStatus::ProfileError => "err",
                },
                status_label(status),
                if n == 1 { "control" } else { "controls" }
            );
            x += width;
        }
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" font-size="13" fill="#424242">{total}</text>"##,
            x + 6.0,
            y + bar * 0.72
        );
    }
    out.push_str("</svg>");
    out.push_str(r#"<div class="legend">"#);
    for (status, class) in STATUSES {
        let _ = write!(
            out,
            r#"<span><i class="s-{class}"></i>{}</span>"#,
            status_label(status)
        );
    }
    out.push_str("</div>");
}

fn control(out: &mut String, c: &Control) {
    let title = c.title.as_deref().unwrap_or("");
    let search = format!("{} {} {}", c.id, title, tag_list(c, "nist").join(" ")).to_lowercase();
    let class = status_class(c.status);
    let _ = write!(
        out,
        r#"<details class="control" data-status="{class}" data-text="{}"><summary><span class="badge s-{class}">{}</span><span class="sev">{}</span><span class="cid">{}</span><span>{}</span></summary><div class="body">"#,
        html(&search),
        status_label(c.status),
        severity_label(c.severity),
        html(&c.id),
        html(title)
    );
    if let Some(d) = c.desc.as_deref().or_else(|| description(c, "default")) {
        let _ = write!(out, "<p>{}</p>", html(d));
    }
    let _ = write!(
        out,
        "<p><b>Impact</b> {} · <b>Profile</b> {}",
        c.impact,
        html(&c.source_profile)
    );
    let nist = tag_list(c, "nist");
    if !nist.is_empty() {
        let _ = write!(out, " · <b>NIST</b> {}", html(&nist.join(", ")));
    }
    if c.waived {
        let _ = write!(
            out,
            " · <b>Waived</b> {}",
            html(c.waiver_justification.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</p>");
    for r in &c.results {
        let label = result_label(r.status);
        let _ = write!(
            out,
            r#"<div class="result"><b class="r-{label}">{label}</b> {}"#,
            html(&r.code_desc)
        );
        let detail = match r.status {
            ResultStatus::Skipped => r.skip_message.clone(),
            ResultStatus::Error => r.exception.clone().or_else(|| r.message.clone()),
            _ => r.message.clone(),
        };
        if let Some(d) = detail {
            let _ = write!(out, "<pre>{}</pre>", html(&d));
        }
        out.push_str("</div>");
    }
    if c.results.is_empty() {
        out.push_str("<p><i>No results were reported for this control.</i></p>");
    }
    for label in ["check", "fix"] {
        if let Some(text) = description(c, label) {
            let _ = write!(out, "<p><b>{label}</b></p><pre>{}</pre>", html(text));
        }
    }
    out.push_str("</div></details>\n");
}

fn section(out: &mut String, scan: &Scan) {
    let profile = scan.profiles.first();
    let name = profile.map(|p| p.name.as_str()).unwrap_or("results");
    let c = &scan.counts;
    let _ = write!(
        out,
        r#"<section class="scan"><h2>{}</h2><p class="meta">{}"#,
        html(name),
        html(&scan.source)
    );
    if let Some(v) = profile.and_then(|p| p.version.as_deref()) {
        let _ = write!(out, " · profile {}", html(v));
    }
    let _ = write!(
        out,
        " · {} {}",
        html(&scan.platform.name),
        html(&scan.platform.release)
    );
    if let Some(v) = &scan.tool_version {
        let _ = write!(out, " · scanner {}", html(v));
    }
    out.push_str("</p>");
    let _ = write!(
        out,
        r#"<div class="overview"><div class="score">{}%<small>compliance</small></div>"#,
        c.compliance
    );
    out.push_str(r#"<table class="counts"><tr><th>Status</th><th>Critical</th><th>High</th><th>Medium</th><th>Low</th><th>None</th><th>Total</th></tr>"#);
    for (status, class) in STATUSES {
        let b = bucket(c, status);
        let _ = write!(
            out,
            r#"<tr><td><i class="badge s-{class}">&nbsp;</i> {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td></tr>"#,
            status_label(status),
            b.critical,
            b.high,
            b.medium,
            b.low,
            b.none,
            b.total
        );
    }
    out.push_str("</table><div>");
    chart(out, scan);
    out.push_str("</div></div>");
    let _ = write!(
        out,
        r#"<div class="filters hidden"><input type="search" placeholder="Filter by id, title or NIST control…" aria-label="Filter controls">"#
    );
    for (status, class) in STATUSES {
        let _ = write!(
            out,
            r#"<label><input type="checkbox" value="{class}" checked> {}</label>"#,
            status_label(status)
        );
    }
    let _ = write!(
        out,
        r#"<span><span class="shown">{}</span> shown</span></div>"#,
        scan.controls.len()
    );
    let mut controls: Vec<&Control> = scan.controls.iter().collect();
    // Problems first, most severe first; the document order otherwise.
    controls.sort_by_key(|c| {
        (
            STATUSES
                .iter()
                .position(|(s, _)| *s == c.status)
                .unwrap_or(0),
            severity_rank(c.severity),
        )
    });
    for ctl in controls {
        control(out, ctl);
    }
    out.push_str("</section>\n");
}

impl Guest for Html {
    fn info() -> PluginInfo {
        dscan_plugin_sdk::info!(
            "html",
            "a self-contained HTML report with a chart and a searchable control list"
        )
    }

    fn format() -> FormatInfo {
        FormatInfo {
            name: "html".into(),
            extension: "html".into(),
            media_type: "text/html".into(),
        }
    }

    fn needs(_options: Vec<OptionPair>) -> Detail {
        Detail::Full
    }

    fn render(scans: Vec<Scan>, options: Vec<OptionPair>) -> Result<Vec<u8>, String> {
        dscan_report_kit::check_options(&options, &[])?;
        let title = scans
            .iter()
            .filter_map(|s| s.profiles.first().map(|p| p.name.clone()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut out = String::with_capacity(64 * 1024);
        let _ = write!(
            out,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"><title>dscan report — {}</title><style>{STYLE}</style></head><body><header><h1>dscan compliance report</h1><p>{}</p></header><main>"#,
            html(&title),
            html(&title)
        );
        match verdict(&options)? {
            Some(v) if v.passed => {
                out.push_str(r#"<div class="verdict pass">Verdict: thresholds passed</div>"#)
            }
            Some(v) => {
                let _ = write!(
                    out,
                    r#"<div class="verdict fail">Verdict: thresholds not met{}</div>"#,
                    v.detail
                        .map(|d| format!(" — {}", html(&d)))
                        .unwrap_or_default()
                );
            }
            None => {
                out.push_str(r#"<div class="verdict none">No thresholds were evaluated.</div>"#)
            }
        }
        let targets = target_rows(&options)?;
        if !targets.is_empty() {
            out.push_str(
                "<section><h2>Targets</h2><table><thead><tr><th>Namespace</th><th>Pod</th><th>Container</th><th>Image</th><th>Verdict</th><th>Compliance</th></tr></thead><tbody>",
            );
            for t in &targets {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html(&t.namespace),
                    html(&t.pod),
                    html(&t.container),
                    html(&t.image_id),
                    html(&t.verdict),
                    html(&t.compliance)
                );
            }
            out.push_str("</tbody></table></section>");
        }
        for scan in &scans {
            section(&mut out, scan);
        }
        let _ = writeln!(
            out,
            "</main><footer>Generated by dscan {}</footer><script>{SCRIPT}</script></body></html>",
            env!("CARGO_PKG_VERSION")
        );
        Ok(out.into_bytes())
    }
}

dscan_plugin_sdk::reporter::export!(Html);
