//! Text from outside keyaudit (account, OU and user names, tag values, user agents, AWS's error messages) made
//! inert for a terminal, a log or a web page: every message that carries such a value goes through [`shown`], and
//! the binary's two sinks (the error line, the log) through [`shown_lines`], so that nothing from a member account
//! can recolour, clear, rewrite or reorder what a person reads.

/// Whether `c` may change what a terminal shows beyond its own glyph: control characters (an OU name may carry
/// escape sequences that clear the screen, CR and LF that forge lines) and the bidirectional-formatting characters
/// that reorder the text around them.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character (see above) written as a `\u{..}` escape; other text is unchanged.
pub fn shown(s: &str) -> String {
    escape(s, |_| false)
}

/// Like [`shown`], but line breaks stay: for keyaudit's own multi-line messages, whose outside values were
/// [`shown`] already where they were put in.
pub fn shown_lines(s: &str) -> String {
    escape(s, |c| c == '\n')
}

fn escape(s: &str, kept: impl Fn(char) -> bool) -> String {
    let escaped = |c: char| unsafe_char(c) && !kept(c);
    if !s.chars().any(escaped) {
        return s.to_owned();
    }
    s.chars().map(|c| if escaped(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped_and_line_breaks_kept_only_where_asked() {
        let cases = [
            ("Prod", "Prod", "Prod"),
            ("Evil\u{1b}[2J\u{1b}[31mRED", "Evil\\u{1b}[2J\\u{1b}[31mRED", "Evil\\u{1b}[2J\\u{1b}[31mRED"),
            ("a\r\nb", "a\\u{d}\\u{a}b", "a\\u{d}\nb"),
            ("abc\u{202e}fed", "abc\\u{202e}fed", "abc\\u{202e}fed"),
            ("ünïcödé ok", "ünïcödé ok", "ünïcödé ok"),
            ("tab\there", "tab\\u{9}here", "tab\\u{9}here"),
        ];
        for (raw, one_line, lines) in cases {
            assert_eq!(shown(raw), one_line, "{raw:?}");
            assert_eq!(shown_lines(raw), lines, "{raw:?}");
        }
    }
}
