//! Label and field selectors (the subset clients use: `=`, `==`, `!=`,
//! existence, and `metadata.name`/`metadata.namespace` fields).

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    Absent(String),
}

/// A parsed selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Req>);

impl Selector {
    /// Parses a label selector.
    pub fn labels(s: &str) -> Result<Self, ApiError> {
        let mut reqs = vec![];
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            reqs.push(parse_term(term).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found {term:?}, expected: =, ==, !=, or a key"
                ))
            })?);
        }
        Ok(Self(reqs))
    }

    /// Parses a field selector; only `metadata.name` and `metadata.namespace` are known.
    pub fn fields(s: &str) -> Result<Self, ApiError> {
        let sel = Self::labels(s)?;
        for r in &sel.0 {
            let key = match r {
                Req::Eq(k, _) | Req::Ne(k, _) => k,
                Req::Exists(k) | Req::Absent(k) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid selector: {k:?}: field selectors need a value"
                    )));
                }
            };
            if key != "metadata.name" && key != "metadata.namespace" {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {key}"
                )));
            }
        }
        Ok(sel)
    }

    /// Whether labels match.
    pub fn matches_labels(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => labels[k].as_str() == Some(v),
            Req::Ne(k, v) => labels[k].as_str() != Some(v),
            Req::Exists(k) => labels.get(k).is_some(),
            Req::Absent(k) => labels.get(k).is_none(),
        })
    }

    /// Whether fields match.
    pub fn matches_fields(&self, object: &Value) -> bool {
        let field = |k: &str| match k {
            "metadata.name" => object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            _ => object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        self.0.iter().all(|r| match r {
            Req::Eq(k, v) => field(k) == *v,
            Req::Ne(k, v) => field(k) != *v,
            _ => false,
        })
    }
}

fn parse_term(term: &str) -> Option<Req> {
    if let Some((k, v)) = term.split_once("!=") {
        return Some(Req::Ne(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Some(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some(k) = term.strip_prefix('!') {
        return Some(Req::Absent(k.trim().into()));
    }
    if term.contains(char::is_whitespace) || term.contains('(') {
        return None;
    }
    Some(Req::Exists(term.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_and_fields() {
        let o = json!({"metadata": {"name": "web", "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "dscan", "run": "r1"}}});
        assert!(
            Selector::labels("app.kubernetes.io/managed-by=dscan,run")
                .unwrap()
                .matches_labels(&o)
        );
        assert!(!Selector::labels("run!=r1").unwrap().matches_labels(&o));
        assert!(Selector::labels("!other").unwrap().matches_labels(&o));
        assert!(
            Selector::fields("metadata.name=web")
                .unwrap()
                .matches_fields(&o)
        );
        assert!(
            !Selector::fields("metadata.name==db")
                .unwrap()
                .matches_fields(&o)
        );
        assert_eq!(Selector::fields("spec.nodeName=x").unwrap_err().code, 400);
    }
}
