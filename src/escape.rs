//! Escaping at the edge, for every renderer (plans, diagnostics, errors). Plans carry strings from outside the manifest — live
//! `bootScript`s, IAM tag values, records, API messages, server names from the listing — and
//! from the manifest too; none of them may reach a terminal or a Markdown comment raw.
//!
//! Owns: what counts as unsafe (control characters including CR, LF and ESC, DEL, C1
//! controls, bidi overrides and isolates, zero-width and other invisible characters, Unicode
//! line separators) and how it is shown (`\x1b`, `\r`, `\u{202e}`, …), plus the quoting of
//! values whose difference would be invisible (trailing space, CRLF). Must not touch: what a
//! plan says; only how its text is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters never written raw: they move the cursor, recolour or erase the screen, reorder
/// text (bidi), hide text (zero-width), or start a new line where none was meant.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                  // soft hyphen
            | '\u{061C}'                // Arabic letter mark
            | '\u{180E}'                // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}'..='\u{202E}'   // line/paragraph separators, bidi embeddings/overrides
            | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'   // bidi isolates, deprecated format characters
            | '\u{FEFF}'                // zero-width no-break space / BOM
            | '\u{FFF9}'..='\u{FFFB}'   // interlinear annotations
            | '\u{E000}'..='\u{F8FF}'   // private use: reserved for the renderers' own markup
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x1b' => out.push_str("\\x1b"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// One line of output: every unsafe character (LF and CR included, so a value can never
/// start a line of its own) shown as an escape. Borrowed when nothing needs escaping.
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A block of lines (a rendered plan, a diff): LF stays a line break, everything else unsafe
/// is escaped. The last line of defence; values are escaped with [`line`] where they are
/// interpolated.
pub fn block(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Start and end of the renderers' own colour markup (private-use characters, which [`line`]
/// escapes in any value, so a value cannot forge them).
pub const MARK_OPEN: char = '\u{E000}';
pub const MARK_CLOSE: char = '\u{E001}';

/// The final pass over a terminal rendering: the renderers' colour marks
/// (`MARK_OPEN digits;… MARK_CLOSE`) become SGR colour sequences — the only escape sequences
/// ever written — and anything else unsafe is escaped, whatever path it came by.
pub fn finish_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == MARK_OPEN {
            let rest = &s[i + c.len_utf8()..];
            if let Some(end) = rest.find(MARK_CLOSE) {
                let params = &rest[..end];
                if !params.is_empty() && params.chars().all(|p| p.is_ascii_digit() || p == ';') {
                    out.push_str("\x1b[");
                    out.push_str(params);
                    out.push('m');
                    // Skip the parameters and the closing mark.
                    let skip = params.chars().count() + 1;
                    for _ in 0..skip {
                        chars.next();
                    }
                    continue;
                }
            }
        }
        if c != '\n' && is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` with every unsafe character but LF, TAB and the CR of a CRLF replaced by `?` — one per
/// byte, so byte offsets into the text stay valid (diagnostic spans point into it).
pub fn mask_same_length(s: &str) -> std::borrow::Cow<'_, str> {
    let keep = |i: usize, c: char| {
        matches!(c, '\n' | '\t') || (c == '\r' && s.as_bytes().get(i + 1) == Some(&b'\n'))
    };
    if !s.char_indices().any(|(i, c)| is_unsafe(c) && !keep(i, c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.char_indices() {
        if is_unsafe(c) && !keep(i, c) {
            out.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A compared value (a setting, a drift's applied or live value): shown as is when what you
/// see is what it is, else quoted with escapes, so `"a "` and `"a"`, or CRLF and LF, look
/// different.
pub fn value(s: &str) -> Cow<'_, str> {
    let ambiguous = s.is_empty()
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
        || s.chars()
            .any(|c| is_unsafe(c) || (c.is_whitespace() && c != ' '));
    if !ambiguous {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) || (c.is_whitespace() && c != ' ') => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// Text inside Markdown (outside code): `line` plus the characters that would open HTML,
/// links, emphasis, tables or code.
pub fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in line(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' => out.push_str("\\|"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text inside HTML (`<summary>`): `line`, then `<`, `>`, `&` and quotes as entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in line(s).chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span holding `s` verbatim (escaped with `line`): the fence is longer than
/// any run of backticks inside, so the value cannot close it.
pub fn md_code(s: &str) -> String {
    let s = line(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    // A value starting or ending with a backtick needs a space inside the fence.
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bidi_and_newlines_are_escaped() {
        let evil = "ok\x1b[2J\x1b[1A\rPlan: no changes\u{202e}gnp.exe\u{2066}\n- fake";
        let l = line(evil);
        assert!(!l.chars().any(is_unsafe), "{l}");
        assert!(l.contains("\\x1b[2J") && l.contains("\\r") && l.contains("\\u{202e}"));
        assert!(l.contains("\\n- fake"), "{l}");
        let b = block(evil);
        assert!(!b.chars().any(|c| c != '\n' && is_unsafe(c)), "{b}");
        assert_eq!(b.lines().count(), 2);
        assert!(matches!(line("plain text"), Cow::Borrowed(_)));
    }

    #[test]
    fn only_the_renderers_marks_become_colour_sequences() {
        let ours = format!("{MARK_OPEN}1;31{MARK_CLOSE}WIPE{MARK_OPEN}0{MARK_CLOSE}\n");
        assert_eq!(finish_terminal(&ours), "\x1b[1;31mWIPE\x1b[0m\n");
        // A forged or raw mark that is not a colour is escaped, as is a raw ESC.
        let forged = format!("{MARK_OPEN}2J{MARK_CLOSE} \x1b[2J");
        let f = finish_terminal(&forged);
        assert!(!f.contains('\x1b'), "{f}");
    }

    #[test]
    fn masking_keeps_every_byte_offset() {
        let src = "a: 1\r\nb: \x1b[2J\u{202e}x\r\n";
        let m = mask_same_length(src);
        assert_eq!(m.len(), src.len());
        assert!(!m.contains('\x1b') && !m.contains('\u{202e}'));
        assert!(m.contains("\r\n"), "CRLF kept: {m:?}");
    }

    #[test]
    fn invisible_differences_are_made_visible() {
        assert_eq!(value("a"), "a");
        assert_eq!(value("a "), "\"a \"");
        assert_eq!(value("x\r\n"), "\"x\\r\\n\"");
        assert_eq!(value(""), "\"\"");
        assert_eq!(value("tab\there"), "\"tab\\there\"");
        assert_ne!(value("a "), value("a"));
    }

    #[test]
    fn markdown_cannot_open_html_code_or_new_lines() {
        let m = md("<img src=x onerror=alert(1)> | **bold** `code`\n## heading");
        assert!(!m.contains('<') && !m.contains('\n'), "{m}");
        assert!(
            m.contains("\\|") && m.contains("\\*\\*") && m.contains("\\`"),
            "{m}"
        );
        let c = md_code("a``b");
        assert_eq!(c, "```a``b```");
        assert_eq!(md_code("`x"), "`` `x ``");
    }
}
