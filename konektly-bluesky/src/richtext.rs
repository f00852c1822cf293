//! Bluesky's text: graphemes (UAX #29, how the lexicon's `maxGraphemes` counts) and facets —
//! links, mentions and hashtags found in the text, located by **UTF-8 byte** offsets (end
//! exclusive), as `app.bsky.richtext.facet` wants them. The rules follow the reference client's
//! detection: a link starts with `http://` or `https://` at the start of the text, after a space
//! or `(`, and loses a trailing `.,;:!?` or an unbalanced `)`; a mention is `@` and a domain-like
//! handle; a hashtag is `#` (or `＃`) after a space or at the start, not only digits, without
//! trailing punctuation, at most 64 graphemes. Bare domains are not linked.

use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

/// Graphemes in `s` (extended grapheme clusters: one emoji with its modifiers and joiners is
/// one).
pub fn graphemes(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Longest hashtag, in graphemes.
pub const MAX_TAG_GRAPHEMES: usize = 64;

/// What a facet marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feature {
    /// A link to this URI.
    Link(String),
    /// A mention of this handle (resolved to a DID before posting; left as text when it does
    /// not resolve).
    Mention(String),
    /// A hashtag (without `#`).
    Tag(String),
}

/// A facet found in a text: bytes `start..end` of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// First byte (UTF-8).
    pub start: usize,
    /// Byte after the last.
    pub end: usize,
    /// What it marks.
    pub feature: Feature,
}

fn is_tag_break(c: char) -> bool {
    c.is_whitespace()
        || matches!(c, '\u{00AD}' | '\u{2060}' | '\u{200A}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{20E2}')
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '。' | '、'
                | '！'
                | '？'
                | '，'
                | '；'
                | '：'
                | '…'
                | '«'
                | '»'
                | '“'
                | '”'
                | '‘'
                | '’'
                | '·'
                | '¡'
                | '¿'
        )
}

/// Whether `h` is a syntactically valid handle (a domain name with at least two labels, the
/// last not starting with a digit).
pub fn is_handle(h: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    h.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels.last().is_some_and(|l| l.as_bytes()[0].is_ascii_alphabetic())
}

/// Every facet in `text`, in order, not overlapping.
pub fn detect(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    let mut skip_to = 0usize;
    for (i, c) in text.char_indices() {
        let before = prev;
        prev = Some(c);
        if i < skip_to {
            continue;
        }
        let starts_word = before.is_none_or(char::is_whitespace);
        let after_paren = before == Some('(');
        let rest = &text[i..];
        if starts_word || after_paren {
            if let Some(span) = link_at(text, i) {
                skip_to = span.end;
                out.push(span);
                continue;
            }
            if c == '@'
                && let Some(span) = mention_at(rest, i)
            {
                skip_to = span.end;
                out.push(span);
                continue;
            }
        }
        if starts_word
            && (c == '#' || c == '＃')
            && let Some(span) = tag_at(rest, i, c.len_utf8())
        {
            skip_to = span.end;
            out.push(span);
        }
    }
    out
}

fn link_at(text: &str, i: usize) -> Option<Span> {
    let rest = &text[i..];
    let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return None;
    }
    let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let mut uri = &rest[..len];
    loop {
        if let Some(t) = uri.strip_suffix(['.', ',', ';', ':', '!', '?', '"', '\'']) {
            uri = t;
        } else if uri.ends_with(')') && uri.matches('(').count() < uri.matches(')').count() {
            uri = &uri[..uri.len() - 1];
        } else {
            break;
        }
    }
    let parsed = url::Url::parse(uri).ok()?;
    parsed.host_str().filter(|h| h.contains('.') || *h == "localhost" || h.parse::<std::net::IpAddr>().is_ok())?;
    Some(Span { start: i, end: i + uri.len(), feature: Feature::Link(uri.to_owned()) })
}

fn mention_at(rest: &str, i: usize) -> Option<Span> {
    let body = &rest[1..];
    let len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-')).unwrap_or(body.len());
    let mut handle = &body[..len];
    // A word character right after (`_`) means no word boundary: not a mention.
    if body[len..].starts_with('_') {
        return None;
    }
    handle = handle.trim_end_matches(['.', '-']);
    if !is_handle(handle) {
        return None;
    }
    Some(Span { start: i, end: i + 1 + handle.len(), feature: Feature::Mention(handle.to_ascii_lowercase()) })
}

fn tag_at(rest: &str, i: usize, hash_len: usize) -> Option<Span> {
    let body = &rest[hash_len..];
    if body.starts_with('\u{FE0F}') {
        // `#️⃣`, the keycap emoji.
        return None;
    }
    let len = body.find(is_tag_break).unwrap_or(body.len());
    let tag = body[..len].trim_end_matches(is_punct);
    if tag.is_empty() || graphemes(tag) > MAX_TAG_GRAPHEMES {
        return None;
    }
    if !tag.chars().any(|c| !(c.is_ascii_digit() || is_punct(c))) {
        return None;
    }
    Some(Span { start: i, end: i + hash_len + tag.len(), feature: Feature::Tag(tag.to_owned()) })
}

/// The `app.bsky.richtext.facet` of a span, with a mention's DID (`None` for a mention that did
/// not resolve: no facet).
pub(crate) fn facet(span: &Span, did: Option<&str>) -> Option<Value> {
    let feature = match &span.feature {
        Feature::Link(uri) => json!({"$type": "app.bsky.richtext.facet#link", "uri": uri}),
        Feature::Mention(_) => json!({"$type": "app.bsky.richtext.facet#mention", "did": did?}),
        Feature::Tag(tag) => json!({"$type": "app.bsky.richtext.facet#tag", "tag": tag}),
    };
    Some(json!({
        "$type": "app.bsky.richtext.facet",
        "index": {"byteStart": span.start, "byteEnd": span.end},
        "features": [feature],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(t: &str) -> Vec<(usize, usize, Feature)> {
        detect(t).into_iter().map(|s| (s.start, s.end, s.feature)).collect()
    }

    #[test]
    fn links_lose_trailing_punctuation() {
        assert_eq!(spans("see https://example.com/a."), vec![(4, 25, Feature::Link("https://example.com/a".into()))]);
        assert_eq!(
            spans("(https://en.wikipedia.org/wiki/Rust_(language))"),
            vec![(1, 46, Feature::Link("https://en.wikipedia.org/wiki/Rust_(language)".into()))]
        );
        assert_eq!(spans("(https://example.com)"), vec![(1, 20, Feature::Link("https://example.com".into()))]);
        assert!(spans("nohttps://example.com").is_empty());
        assert!(spans("https://").is_empty());
    }

    #[test]
    fn hashtags_inside_links_are_not_tags() {
        let t = "https://example.com/#frag #real";
        assert_eq!(
            spans(t),
            vec![(0, 25, Feature::Link("https://example.com/#frag".into())), (26, 31, Feature::Tag("real".into()))]
        );
        assert!(spans("#123 #️⃣ a#b").is_empty());
        assert_eq!(spans("#tag!"), vec![(0, 4, Feature::Tag("tag".into()))]);
    }

    #[test]
    fn mentions_need_a_domain() {
        assert_eq!(spans("hi @alice.bsky.social."), vec![(3, 21, Feature::Mention("alice.bsky.social".into()))]);
        assert!(spans("hi @alice and a@b.com").is_empty());
    }
}
