//! LinkedIn's "little text" format, which the Posts API's `commentary` is written in.
//!
//! The characters `\ | { } @ [ ] ( ) < > # * _ ~` are reserved: unescaped, LinkedIn answers
//! `201 Created` and silently cuts the text at the first one it cannot read. [`escape`] puts a
//! backslash before each of them, except inside URLs (an escaped `_` breaks `utm_source` links)
//! and in the `#` of a hashtag (`#rust` stays a hashtag). Only `commentary` is little text:
//! comments and article titles are plain and must not be escaped.

/// The reserved characters of little text.
pub const RESERVED: [char; 15] = ['\\', '|', '{', '}', '@', '[', ']', '(', ')', '<', '>', '#', '*', '_', '~'];

fn is_reserved(c: char) -> bool {
    RESERVED.contains(&c)
}

/// Characters that end a URL when they come last (`(see https://x.com).`).
fn trailing_punct(c: char) -> bool {
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '>' | '\'' | '"' | '*' | '_' | '~')
}

/// The length in bytes of the URL at the start of `s`, if one starts there.
fn url_len(s: &str) -> Option<usize> {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return None;
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    let mut url = &s[..end];
    while let Some(c) = url.chars().last() {
        if !trailing_punct(c) {
            break;
        }
        url = &url[..url.len() - c.len_utf8()];
    }
    let scheme = if lower.starts_with("https://") { 8 } else { 7 };
    (url.len() > scheme).then_some(url.len())
}

/// `text` as little text that reads as written: every reserved character escaped, except in
/// URLs and the `#` that starts a hashtag.
///
/// ```
/// use konektly_linkedin::text::escape;
///
/// assert_eq!(escape("Rust (2024) is *great*"), r"Rust \(2024\) is \*great\*");
/// assert_eq!(escape("see https://x.com/a_b?utm_source=li #rust"), "see https://x.com/a_b?utm_source=li #rust");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut i = 0;
    let mut prev: Option<char> = None;
    while i < text.len() {
        let rest = &text[i..];
        let at_word_start = prev.is_none_or(|p| !p.is_alphanumeric() && p != '_' && p != '/');
        if at_word_start && let Some(n) = url_len(rest) {
            out.push_str(&rest[..n]);
            i += n;
            prev = rest[..n].chars().last();
            continue;
        }
        let c = rest.chars().next().expect("not at the end");
        let hashtag = c == '#' && at_word_start && rest[1..].chars().next().is_some_and(|n| n.is_alphanumeric());
        if is_reserved(c) && !hashtag {
            out.push('\\');
        }
        out.push(c);
        i += c.len_utf8();
        prev = Some(c);
    }
    out
}

/// Little text back to what it reads as: a backslash before any character is dropped.
/// Templates (mentions, hashtag templates) are left as they are.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_character_is_escaped() {
        assert_eq!(escape(r"\|{}@[]()<>*_~"), r"\\\|\{\}\@\[\]\(\)\<\>\*\_\~");
        assert_eq!(escape("a # b"), r"a \# b");
        assert_eq!(escape("C# and F#"), r"C\# and F\#");
    }

    #[test]
    fn a_parenthesis_no_longer_cuts_the_post() {
        let e = escape("Launch (finally) today: https://example.com/x_(y) and more");
        assert_eq!(e, r"Launch \(finally\) today: https://example.com/x_(y\) and more");
    }

    #[test]
    fn urls_and_hashtags_stay_as_they_are() {
        assert_eq!(escape("https://a.io/?utm_source=li_x."), "https://a.io/?utm_source=li_x.");
        assert_eq!(escape("(https://a.io/p_q)"), r"\(https://a.io/p_q\)");
        assert_eq!(escape("#rust #日本 #"), r"#rust #日本 \#");
        assert_eq!(escape("a@b.com"), r"a\@b.com");
        assert_eq!(escape("x https:// y"), "x https:// y");
    }

    #[test]
    fn unescape_reverses_escape() {
        for s in ["plain", r"a\b", "(x) [y] {z} <w> *v* _u_ ~t~ |s| @r #q", "😀 (é) #tag https://a.io/_x_"] {
            assert_eq!(unescape(&escape(s)), s, "{s}");
        }
    }
}
