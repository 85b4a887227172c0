//! Text from the wire, made safe to show.
//!
//! Every string in a sample, a subject, a command or a dead letter comes
//! from a client nobody vouches for. Printed raw, a newline forges a log
//! line (`\n… ERROR vigia_sink: …`), an ANSI sequence clears an operator's
//! screen or sets the terminal's title, and a bidirectional override
//! (U+202E) makes `evil<U+202E>gpj.sh` read as `evilhs.jpg`. One rule, used by
//! every log line and every CLI output that carries such text:
//!
//! - control characters (C0, DEL, C1) and the Unicode bidirectional
//!   controls (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069) are
//!   written as Rust escapes (`\n`, `\u{1b}`, `\u{202e}`);
//! - a backslash is written `\\`, so an escaped text cannot be mistaken for
//!   one that arrived already escaped;
//! - everything else, printable Unicode included, is left as it is.
//!
//! Text with nothing to escape is borrowed, not copied: the common case
//! costs one scan.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a log or a terminal as itself.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every unsafe character (and the backslash) escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(Escaped(text).to_string())
}

/// Displays its text escaped as [`escape`] does, without allocating: for
/// log fields, `tracing::warn!(subject = %Escaped(&subject), …)`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        for c in self.0.chars() {
            if c == '\\' {
                f.write_str("\\\\")?;
            } else if is_unsafe(c) {
                for e in c.escape_unicode() {
                    f.write_char(e)?;
                }
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, with `…`
/// appended when something was cut: what a reply, an audit row or a log
/// line echoes of a client's string never grows with what the client sent.
pub fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("web-1 nginx: worker"), Cow::Borrowed(_)));
        assert!(matches!(escape("café ☕"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_forged_log_line_stays_on_one_line() {
        let forged = "x\n2026-12-02T00:00:00Z ERROR vigia_sink: fake";
        let shown = escape(forged);
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("x\\u{a}2026"), "{shown}");
    }

    #[test]
    fn terminal_escapes_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(
            escape("\u{1b}[2J\u{1b}]0;pwn\u{7}"),
            "\\u{1b}[2J\\u{1b}]0;pwn\\u{7}"
        );
        assert_eq!(escape("evil\u{202e}gpj.sh"), "evil\\u{202e}gpj.sh");
        assert_eq!(
            escape("a\u{2066}b\u{200f}c\u{061c}"),
            "a\\u{2066}b\\u{200f}c\\u{61c}"
        );
        assert_eq!(escape("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(escape("del\u{7f}"), "del\\u{7f}");
    }

    #[test]
    fn a_backslash_is_doubled_so_escapes_cannot_be_faked() {
        assert_eq!(escape("a\\u{a}b"), "a\\\\u{a}b");
    }

    #[test]
    fn truncation_cuts_at_a_character_boundary() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it moves back.
        assert_eq!(truncate("aé", 2), "a…");
        assert_eq!(
            truncate(&"x".repeat(1 << 20), 64).len(),
            64 + '…'.len_utf8()
        );
    }

    proptest! {
        #[test]
        fn escaped_text_holds_no_unsafe_character(s in any::<String>()) {
            let shown = escape(&s);
            prop_assert!(!shown.chars().any(is_unsafe), "{:?}", shown);
            prop_assert_eq!(shown.as_ref(), Escaped(&s).to_string());
        }
    }
}
