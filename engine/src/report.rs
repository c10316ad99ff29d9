//! InSpec's JSON reporter shape.

use serde_json::{Map, Value as J, json};

use crate::dsl::{CheckResult, Control};
use crate::profile::Profile;

fn result_json(r: &CheckResult, start: &str) -> J {
    let mut m = Map::new();
    m.insert("status".into(), r.status.into());
    m.insert("code_desc".into(), r.code_desc.clone().into());
    m.insert("run_time".into(), r.run_time.into());
    m.insert("start_time".into(), start.into());
    if let Some(v) = &r.resource {
        m.insert("resource".into(), v.clone().into());
    }
    if let Some(v) = &r.skip_message {
        m.insert("skip_message".into(), v.clone().into());
    }
    if let Some(v) = &r.message {
        m.insert("message".into(), v.clone().into());
    }
    if let Some(v) = &r.exception {
        m.insert("exception".into(), v.clone().into());
    }
    if let Some(v) = &r.backtrace {
        m.insert("backtrace".into(), v.clone().into());
    }
    m.insert("resource_class".into(), r.resource_class.clone().into());
    m.insert("resource_params".into(), r.resource_params.clone().into());
    m.insert("resource_id".into(), r.resource_id.clone().into());
    J::Object(m)
}

fn control_json(c: &Control, profile_ref: &str, start: &str) -> J {
    let desc = c
        .descs
        .iter()
        .find(|d| d.0 == "default")
        .map(|d| d.1.clone());
    let impact = c.impact.unwrap_or(0.5).clamp(0.0, 1.0);
    json!({
        "id": c.id,
        "title": c.title,
        "desc": desc,
        "descriptions": c.descs.iter().map(|(l, d)| json!({"label": l, "data": d})).collect::<Vec<_>>(),
        "impact": impact,
        "refs": c.refs,
        "tags": c.tags,
        "code": c.code,
        "source_location": {"line": c.line, "ref": format!("{profile_ref}/{}", c.file)},
        "waiver_data": c.waiver_data.clone().unwrap_or_default(),
        "results": c.results.iter().map(|r| result_json(r, start)).collect::<Vec<_>>(),
    })
}

/// The whole report.
pub fn report(
    titles: &indexmap::IndexMap<String, String>,
    profile: &Profile,
    profile_ref: &str,
    controls: &[Control],
    inputs: Vec<J>,
    platform: (&str, &str),
    duration: f64,
) -> J {
    let start = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let mut groups: Vec<J> = Vec::new();
    for f in &profile.control_files {
        let ids: Vec<&str> = controls
            .iter()
            .filter(|c| &c.file == f)
            .map(|c| c.id.as_str())
            .collect();
        let mut g = json!({"id": f, "controls": ids});
        if let Some(t) = titles.get(f) {
            g["title"] = t.clone().into();
        }
        groups.push(g);
    }
    let mut p = Map::new();
    let meta = &profile.metadata;
    p.insert("name".into(), meta.name.clone().into());
    for (k, v) in [("version", &meta.version)] {
        if let Some(v) = v {
            p.insert(k.into(), v.clone().into());
        }
    }
    p.insert("sha256".into(), profile.sha256.clone().into());
    for (k, v) in [
        ("title", &meta.title),
        ("maintainer", &meta.maintainer),
        ("summary", &meta.summary),
        ("license", &meta.license),
        ("copyright", &meta.copyright),
        ("copyright_email", &meta.copyright_email),
    ] {
        if let Some(v) = v {
            p.insert(k.into(), v.clone().into());
        }
    }
    p.insert("supports".into(), J::Array(meta.supports.clone()));
    p.insert("attributes".into(), J::Array(inputs));
    p.insert("groups".into(), J::Array(groups));
    p.insert(
        "controls".into(),
        J::Array(
            controls
                .iter()
                .map(|c| control_json(c, profile_ref, &start))
                .collect(),
        ),
    );
    p.insert("status".into(), "loaded".into());
    p.insert("status_message".into(), "".into());
    json!({
        "platform": {"name": platform.0, "release": platform.1, "target_id": ""},
        "profiles": [J::Object(p)],
        "statistics": {"duration": duration},
        "version": "7.1.16",
    })
}
