//! Waiver files (`--waiver-file`), with InSpec's semantics: a waived
//! control with `run: false` (and no expiry in the past) is not evaluated
//! and reports one skipped result giving the justification; any other
//! waiver is evaluated and carries its `waiver_data` into the report.

use indexmap::IndexMap;
use serde_json::{Map, Value as J};

/// Waivers by control id, as read from the files (later files win).
pub type Waivers = IndexMap<String, Map<String, J>>;

/// A waiver file that cannot be used; the message names the file's problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WaiverError(String);

/// Parses a YAML or JSON waiver file (`control_id: {justification, run,
/// expiration_date}`). InSpec refuses an entry without a justification;
/// so does dscan, and also an entry that is not a mapping (InSpec crashes
/// on one) and an expiration date it cannot read.
pub fn parse(text: &str) -> Result<Waivers, WaiverError> {
    if text.trim().is_empty() {
        return Ok(Waivers::new());
    }
    let doc: IndexMap<String, J> = serde_yaml_ng::from_str(text).map_err(|e| {
        WaiverError(format!(
            "not a mapping of control ids to waivers: {e} (expected `control-id: {{justification: …, run: false}}`)"
        ))
    })?;
    let mut out = Waivers::new();
    for (id, entry) in doc {
        let J::Object(map) = entry else {
            return Err(WaiverError(format!(
                "the waiver for control {id} is not a mapping (expected `{id}: {{justification: …, run: false}}`)"
            )));
        };
        if !map.contains_key("justification") {
            return Err(WaiverError(format!(
                "the waiver for control {id} has no justification (InSpec requires one)"
            )));
        }
        if let Some(d) = map.get("expiration_date") {
            expiry(d).map_err(|why| {
                WaiverError(format!(
                    "cannot read the waiver expiration date {d} of control {id}: {why} (use YYYY-MM-DD)"
                ))
            })?;
        }
        out.insert(id, map);
    }
    Ok(out)
}

/// An expiration date as an instant (a bare date is midnight UTC).
fn expiry(v: &J) -> Result<jiff::Timestamp, String> {
    let text = match v {
        J::String(s) => s.trim().to_string(),
        other => return Err(format!("{other} is not a date")),
    };
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    if let Ok(t) = text.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    text.parse::<jiff::civil::DateTime>()
        .map_err(|e| e.to_string())
        .and_then(|dt| {
            dt.to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| e.to_string())
        })
}

/// Ruby's `Converter.to_boolean`: `nil` for anything it does not know.
fn to_boolean(v: &J) -> J {
    match v {
        J::Bool(b) => J::Bool(*b),
        J::String(s) if ["true", "True", "TRUE", "yes", "y", "YES", "Y"].contains(&s.as_str()) => {
            J::Bool(true)
        }
        J::String(s) if ["false", "False", "FALSE", "no", "n", "NO", "N"].contains(&s.as_str()) => {
            J::Bool(false)
        }
        _ => J::Null,
    }
}

/// What a waiver does to one control.
pub struct Applied {
    /// The report's `waiver_data`.
    pub data: Map<String, J>,
    /// `Some(message)`: the control is not evaluated and is skipped.
    pub skip: Option<String>,
}

/// Applies `waiver` at `now`.
pub fn apply(waiver: &Map<String, J>, now: jiff::Timestamp) -> Applied {
    let mut data = waiver.clone();
    data.insert("skipped_due_to_waiver".into(), J::Bool(false));
    data.insert("message".into(), J::String(String::new()));
    if let Some(Ok(at)) = waiver.get("expiration_date").map(expiry)
        && at < now
    {
        // Ruby prints the instant as `2020-01-01 00:00:00 +0000`.
        let shown = at.strftime("%Y-%m-%d %H:%M:%S +0000").to_string();
        data.insert(
            "message".into(),
            J::String(format!(
                "Waiver expired on {shown}, evaluating control normally"
            )),
        );
        return Applied { data, skip: None };
    }
    let Some(run) = waiver.get("run").map(to_boolean) else {
        return Applied { data, skip: None };
    };
    data.insert("run".into(), run.clone());
    if run == J::Bool(true) {
        return Applied { data, skip: None };
    }
    data.insert("skipped_due_to_waiver".into(), J::Bool(true));
    let why = match waiver.get("justification") {
        Some(J::String(s)) => s.clone(),
        Some(J::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Applied {
        data,
        skip: Some(format!("Skipped control due to waiver condition: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_without_justification_or_not_mappings_are_refused() {
        let e = parse("c1:\n  run: false\n").unwrap_err().to_string();
        assert!(e.contains("c1") && e.contains("justification"), "{e}");
        let e = parse("c1: just a string\n").unwrap_err().to_string();
        assert!(e.contains("not a mapping"), "{e}");
        let e = parse("c1:\n  justification: x\n  expiration_date: someday\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expiration date"), "{e}");
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn run_false_skips_until_the_waiver_expires() {
        let w = parse(
            "a:\n  justification: risk accepted\n  run: false\n  expiration_date: 2030-06-01\n",
        )
        .unwrap();
        let before: jiff::Timestamp = "2030-05-31T23:59:59Z".parse().unwrap();
        let after: jiff::Timestamp = "2030-06-01T00:00:01Z".parse().unwrap();
        let a = apply(&w["a"], before);
        assert_eq!(
            a.skip.as_deref(),
            Some("Skipped control due to waiver condition: risk accepted")
        );
        assert_eq!(a.data["skipped_due_to_waiver"], J::Bool(true));
        let a = apply(&w["a"], after);
        assert!(a.skip.is_none());
        assert_eq!(
            a.data["message"],
            "Waiver expired on 2030-06-01 00:00:00 +0000, evaluating control normally"
        );
        let w = parse("b:\n  justification: x\n  run: 0\nc:\n  justification: y\n").unwrap();
        assert!(
            apply(&w["b"], before).skip.is_some(),
            "an unknown run value skips, as InSpec's to_boolean gives nil"
        );
        assert!(
            apply(&w["c"], before).skip.is_none(),
            "no run key: evaluated"
        );
    }
}
