//! Escaping for each output format. Control text comes from profiles and
//! scanners, so it is treated as hostile: markup, quotes, separators,
//! newlines and characters a format cannot carry at all.

/// Characters XML 1.0 cannot contain even escaped are replaced with U+FFFD.
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Text content of an XML element.
pub fn xml_text(s: &str) -> String {
    xml_escape(s, false)
}

/// A double-quoted XML attribute value (newlines kept as character
/// references so parsers do not normalise them away).
pub fn xml_attr(s: &str) -> String {
    xml_escape(s, true)
}

fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            c if xml_allowed(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// HTML text or attribute value.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One CSV field (RFC 4180): quoted when it holds a separator, quote or
/// line break, or could be read as a spreadsheet formula.
pub fn csv(s: &str) -> String {
    // A leading =, +, -, @ (or tab/CR) makes spreadsheets evaluate the cell;
    // prefixing a quote keeps the text inert (OWASP CSV injection advice).
    let inert = match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    };
    if inert.contains([',', '"', '\n', '\r']) || inert != inert.trim() {
        format!("\"{}\"", inert.replace('"', "\"\""))
    } else {
        inert
    }
}

/// Markdown table cell text: pipes, markup and line breaks neutralised.
pub fn markdown_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Markdown heading's text: one line, no HTML. Unlike table cells it
/// keeps Markdown punctuation (`_`, `*`) as SAF CLI prints it, so ordinary
/// profile names render byte for byte like `saf view summary`.
pub fn markdown_heading(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(\"x\")</script>, 'q' & \"d\"\nline2|pipe \u{1} =cmd";

    #[test]
    fn xml_escapes_markup_and_drops_forbidden_characters() {
        let t = xml_text(HOSTILE);
        assert!(!t.contains('<') && !t.contains('\u{1}'));
        assert!(t.contains("&lt;script&gt;") && t.contains("&amp;"));
        let a = xml_attr(HOSTILE);
        assert!(
            !a.contains('"') && !a.contains('\n') && a.contains("&quot;") && a.contains("&#10;")
        );
    }

    #[test]
    fn html_escapes_everything_that_could_open_markup() {
        let h = html(HOSTILE);
        assert!(!h.contains('<') && !h.contains('"') && !h.contains('\''));
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("=1+1"), "'=1+1");
        assert_eq!(csv("-2,3"), "\"'-2,3\"");
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        let m = markdown_cell(HOSTILE);
        assert!(!m.contains('\n') && !m.contains('<'));
        // Every pipe is escaped.
        assert_eq!(m.matches('|').count(), m.matches("\\|").count());
    }
}
