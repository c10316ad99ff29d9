//! RSpec's "Diff:" block for failed diffable matchers (`eq`, `match`,
//! `include`…): a unified diff, expected lines as `-`, actual as `+`, with
//! three lines of context, shown only when one side spans several lines.

use crate::value::{Key, Value};

/// How RSpec prints a value for diffing, or `None` when it does not diff
/// (nil, numbers).
fn object_to_string(v: &Value) -> Option<String> {
    Some(match v {
        Value::Nil | Value::Int(_) | Value::Float(_) => return None,
        Value::Str(s) => {
            if s.contains('\n') {
                s.to_string()
            } else {
                v.inspect()
            }
        }
        Value::Hash(h) => {
            let h = h.borrow();
            let mut keys: Vec<&Key> = h.keys().collect();
            keys.sort_by_key(|k| k.to_value().to_s());
            keys.iter()
                .map(|k| format!("{} => {},", k.to_value().inspect(), h[*k].inspect()))
                .collect::<Vec<_>>()
                .join("\n")
        }
        other => other.inspect(),
    })
}

/// Ruby's `split("\n")`: trailing empty lines are dropped.
fn lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.split('\n').collect();
    while v.last() == Some(&"") {
        v.pop();
    }
    v
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Keep,
    Del,
    Add,
}

/// The edit script turning `old` into `new` (longest common subsequence).
fn script<'a>(old: &[&'a str], new: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (old.len(), new.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push((Op::Keep, old[i]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] > lcs[i + 1][j]) {
            out.push((Op::Add, new[j]));
            j += 1;
        } else {
            out.push((Op::Del, old[i]));
            i += 1;
        }
    }
    // Within a change, removals come before additions.
    let mut k = 0;
    while k < out.len() {
        if out[k].0 == Op::Keep {
            k += 1;
            continue;
        }
        let start = k;
        while k < out.len() && out[k].0 != Op::Keep {
            k += 1;
        }
        out[start..k].sort_by_key(|(op, _)| if *op == Op::Del { 0 } else { 1 });
    }
    out
}

fn range(start: usize, len: usize) -> String {
    // diff-lcs prints a one-line range without its length.
    if len == 0 {
        format!("{start},0")
    } else if len == 1 {
        format!("{}", start + 1)
    } else {
        format!("{},{len}", start + 1)
    }
}

const CONTEXT: usize = 3;

fn unified(old: &str, new: &str) -> String {
    let (o, n) = (lines(old), lines(new));
    if o.len() * n.len() > 4_000_000 {
        return String::new();
    }
    let ops = script(&o, &n);
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, (op, _))| *op != Op::Keep)
        .map(|(i, _)| i)
        .collect();
    if changed.is_empty() {
        return String::new();
    }
    // Group changes whose context windows touch.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &c in &changed {
        let lo = c.saturating_sub(CONTEXT);
        let hi = (c + CONTEXT + 1).min(ops.len());
        match hunks.last_mut() {
            Some(last) if lo <= last.1 => last.1 = hi,
            _ => hunks.push((lo, hi)),
        }
    }
    let mut out = String::new();
    for (lo, hi) in hunks {
        let old_start = ops[..lo].iter().filter(|(op, _)| *op != Op::Add).count();
        let new_start = ops[..lo].iter().filter(|(op, _)| *op != Op::Del).count();
        let old_len = ops[lo..hi].iter().filter(|(op, _)| *op != Op::Add).count();
        let new_len = ops[lo..hi].iter().filter(|(op, _)| *op != Op::Del).count();
        out.push_str(&format!(
            "\n@@ -{} +{} @@\n",
            range(old_start, old_len),
            range(new_start, new_len)
        ));
        for (op, line) in &ops[lo..hi] {
            let mark = match op {
                Op::Keep => ' ',
                Op::Del => '-',
                Op::Add => '+',
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `"\nDiff:…"` for a failure message, or `""` when RSpec shows none.
///
/// RSpec flattens both values: all strings diff only when one spans
/// several lines; otherwise values without numbers diff as printed.
pub fn diff_block(expected: &Value, actual: &Value) -> String {
    if matches!(expected, Value::Nil) || matches!(actual, Value::Nil) {
        return String::new();
    }
    let flat: Vec<Value> = crate::builtins::flatten(&[expected.clone(), actual.clone()]);
    let (e, a) = if flat.iter().all(|v| matches!(v, Value::Str(_))) {
        let joined = |v: &Value| match v {
            Value::Array(_) => crate::builtins::flatten(std::slice::from_ref(v))
                .iter()
                .map(Value::to_s)
                .collect::<Vec<_>>()
                .join("\n"),
            v => v.to_s(),
        };
        if !flat.iter().any(|v| v.to_s().contains('\n')) {
            return String::new();
        }
        (joined(expected), joined(actual))
    } else if flat
        .iter()
        .any(|v| matches!(v, Value::Int(_) | Value::Float(_) | Value::Proc(_)))
    {
        return String::new();
    } else {
        match (object_to_string(expected), object_to_string(actual)) {
            (Some(e), Some(a)) => (e, a),
            _ => return String::new(),
        }
    };
    let d = unified(&e, &a);
    if d.is_empty() {
        String::new()
    } else {
        // The hunks' leading newline follows "Diff:" directly.
        format!("\nDiff:{}", d.trim_end_matches('\n').to_string() + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_read_as_rspec_prints_them() {
        assert_eq!(
            diff_block(&Value::str("multi\nline"), &Value::str("multi")),
            "\nDiff:\n@@ -1,2 +1 @@\n multi\n-line\n"
        );
        assert_eq!(
            diff_block(
                &Value::str("line one\nline 2\n"),
                &Value::str("line one\nline two\n")
            ),
            "\nDiff:\n@@ -1,2 +1,2 @@\n line one\n-line 2\n+line two\n"
        );
        assert_eq!(diff_block(&Value::str("a"), &Value::str("b")), "");
        assert_eq!(
            diff_block(&Value::Bool(true), &Value::Bool(false)),
            "\nDiff:\n@@ -1 +1 @@\n-true\n+false\n"
        );
        let names = |v: &[&str]| Value::array(v.iter().map(|s| Value::str(s)).collect());
        assert_eq!(diff_block(&names(&["root"]), &names(&["nobody"])), "");
        assert_eq!(diff_block(&Value::Int(1), &Value::str("a\nb")), "");
    }
}
