//! How X counts a post's length: a faithful port of the official twitter-text `parseTweet`
//! (v3 configuration): NFC, weighted code-point ranges, every URL counts 23, every emoji
//! sequence counts 2. The URL and emoji patterns are the official ones (see `patterns.rs` and
//! `tools/gen-twitter-text.js`); the loop below walks UTF-16 code units exactly as the
//! JavaScript implementation does, so that odd inputs count the same.

mod patterns;

use std::collections::HashMap;
use std::sync::LazyLock;

use fancy_regex::Regex;
use unicode_normalization::UnicodeNormalization;

/// `maxWeightedTweetLength` of the v3 configuration.
pub const MAX_WEIGHTED_LENGTH: usize = 280;
const SCALE: usize = 100;
const DEFAULT_WEIGHT: usize = 200;
const TRANSFORMED_URL_LENGTH: usize = 23;
/// (start, end, weight) of the v3 configuration's ranges.
const RANGES: [(u16, u16, usize); 4] = [(0, 4351, 100), (8192, 8205, 100), (8208, 8223, 100), (8242, 8247, 100)];
const MAX_URL_LENGTH: usize = 4096;
const MAX_TCO_SLUG_LENGTH: usize = 40;
const MAX_DOMAIN_LABEL_LENGTH: usize = 63;

struct Patterns {
    extract_url: Regex,
    valid_ascii_domain: Regex,
    valid_tco_url: Regex,
    invalid_preceding: Regex,
    emoji: Regex,
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(|| {
    let re = |p: &str| {
        fancy_regex::RegexBuilder::new(p)
            .backtrack_limit(10_000_000)
            .build()
            .expect("the generated twitter-text patterns compile")
    };
    Patterns {
        extract_url: re(patterns::EXTRACT_URL),
        valid_ascii_domain: re(patterns::VALID_ASCII_DOMAIN),
        valid_tco_url: re(patterns::VALID_TCO_URL),
        invalid_preceding: re(patterns::INVALID_URL_WITHOUT_PROTOCOL_PRECEDING_CHARS),
        emoji: re(patterns::EMOJI),
    }
});

/// The result of counting a text as X does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextLength {
    /// The weighted length (what X compares with 280).
    pub weighted_length: usize,
    /// Whether X accepts it: not empty, at most 280, and no invalid characters.
    pub valid: bool,
    /// Whether it contains a character X refuses (U+FFFE, U+FEFF, U+FFFF).
    pub has_invalid_characters: bool,
}

/// The length of `text` as X counts it (twitter-text v3).
///
/// ```
/// assert_eq!(konektly_twitter::weighted_length("Hi http://test.co"), 26);
/// assert_eq!(konektly_twitter::weighted_length("故人"), 4);
/// assert_eq!(konektly_twitter::weighted_length("👨‍👩‍👧‍👦"), 2);
/// ```
pub fn weighted_length(text: &str) -> usize {
    parse_text(text).weighted_length
}

/// Counts `text` as X does and says whether it is a valid post text.
pub fn parse_text(text: &str) -> TextLength {
    let normalized: String = text.nfc().collect();
    let units: Vec<u16> = normalized.encode_utf16().collect();
    // Byte offset → UTF-16 offset, for the entities the patterns find.
    let mut to_utf16 = HashMap::with_capacity(normalized.len());
    let mut u = 0usize;
    for (b, c) in normalized.char_indices() {
        to_utf16.insert(b, u);
        u += c.len_utf16();
    }
    let urls: HashMap<usize, usize> =
        extract_urls(&normalized).into_iter().filter_map(|u| Some((*to_utf16.get(&u.start)?, u.len16))).collect();
    let emojis: HashMap<usize, usize> = PATTERNS
        .emoji
        .find_iter(&normalized)
        .filter_map(|m| m.ok())
        .filter_map(|m| Some((*to_utf16.get(&m.start())?, utf16_len(m.as_str()))))
        .collect();

    let mut weight = 0usize;
    let mut invalid = false;
    let mut i = 0usize;
    while i < units.len() {
        if let Some(len) = urls.get(&i) {
            weight += TRANSFORMED_URL_LENGTH * SCALE;
            i += len.saturating_sub(1);
        } else if let Some(len) = emojis.get(&i) {
            weight += DEFAULT_WEIGHT;
            i += len.saturating_sub(1);
        } else {
            if is_surrogate_pair(&units, i) {
                i += 1;
            }
            weight += char_weight(units[i]);
        }
        // Like the reference, only the last code unit of an entity is checked.
        if !invalid && units.get(i).is_some_and(|&c| matches!(c, 0xFFFE | 0xFEFF | 0xFFFF)) {
            invalid = true;
        }
        i += 1;
    }
    let weighted_length = weight / SCALE;
    TextLength {
        weighted_length,
        valid: !invalid && weighted_length > 0 && weighted_length <= MAX_WEIGHTED_LENGTH,
        has_invalid_characters: invalid,
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn is_surrogate_pair(units: &[u16], i: usize) -> bool {
    i + 1 < units.len() && (0xD800..=0xDBFF).contains(&units[i]) && (0xDC00..=0xDFFF).contains(&units[i + 1])
}

fn char_weight(unit: u16) -> usize {
    RANGES.iter().find(|(s, e, _)| (*s..=*e).contains(&unit)).map_or(DEFAULT_WEIGHT, |r| r.2)
}

/// A URL found in a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UrlEntity {
    /// Byte offset of its start.
    start: usize,
    /// Byte offset of its end.
    end: usize,
    /// The UTF-16 length of its text (what the reference skips).
    len16: usize,
}

/// `text` without its URLs, with whitespace collapsed: what survives X's rewriting of links
/// into t.co links (and the media link it appends), for matching a post by its text.
pub(crate) fn text_without_urls(text: &str) -> String {
    let normalized: String = text.nfc().collect();
    let mut out = String::with_capacity(normalized.len());
    let mut at = 0;
    for u in extract_urls(&normalized) {
        if u.start >= at {
            out.push_str(&normalized[at..u.start]);
            out.push(' ');
            at = u.end;
        }
    }
    out.push_str(&normalized[at..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// twitter-text `extractUrlsWithIndices` (URLs without a protocol included).
fn extract_urls(text: &str) -> Vec<UrlEntity> {
    let p = &*PATTERNS;
    let mut out = Vec::new();
    if !text.contains('.') {
        return out;
    }
    let mut pos = 0;
    while pos <= text.len() {
        let Ok(Some(caps)) = p.extract_url.captures_from_pos(text, pos) else { break };
        let whole = caps.get(0).expect("group 0");
        pos = if whole.end() > whole.start() { whole.end() } else { next_char(text, whole.end()) };
        let group = |n: usize| caps.get(n).map_or("", |m| m.as_str());
        let Some(url_m) = caps.get(3) else { continue };
        let (before, protocol, domain, path) = (group(2), group(4), group(5), group(7));
        let url = url_m.as_str();
        let start = url_m.start();
        if !is_valid_url(url, if protocol.is_empty() { "https://" } else { protocol }, domain) {
            continue;
        }
        if protocol.is_empty() {
            if p.invalid_preceding.is_match(before).unwrap_or(false) {
                continue;
            }
            let mut last: Option<(usize, String)> = None;
            for m in p.valid_ascii_domain.find_iter(domain).filter_map(|m| m.ok()) {
                if let Some((at, s)) = last.take() {
                    out.push(UrlEntity { start: at, end: at + s.len(), len16: utf16_len(&s) });
                }
                last = Some((start + m.start(), m.as_str().to_owned()));
            }
            let Some((at, mut ascii)) = last else { continue };
            let mut end = at + ascii.len();
            if !path.is_empty() {
                ascii = url.replacen(domain, &ascii, 1);
                end = whole.end();
            }
            out.push(UrlEntity { start: at, end, len16: utf16_len(&ascii) });
        } else {
            let mut url = url;
            if let Ok(Some(c)) = p.valid_tco_url.captures(url) {
                if c.get(1).is_some_and(|s| utf16_len(s.as_str()) > MAX_TCO_SLUG_LENGTH) {
                    continue;
                }
                url = c.get(0).map_or(url, |m| m.as_str());
            }
            out.push(UrlEntity { start, end: start + url.len(), len16: utf16_len(url) });
        }
    }
    out
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(text.len() + 1, |c| at + c.len_utf8())
}

fn is_valid_url(url: &str, protocol: &str, domain: &str) -> bool {
    if !domain_to_ascii_is_valid(domain) {
        return false;
    }
    // The reference adds the punycode length and subtracts the domain's; it returns the domain
    // itself, so the length is the URL's.
    utf16_len(protocol) + utf16_len(url) <= MAX_URL_LENGTH
}

/// twitter-text's `idna.toAscii`: every label, punycode-encoded, is 1–63 characters long.
fn domain_to_ascii_is_valid(domain: &str) -> bool {
    if domain.starts_with("xn--") && !PATTERNS.valid_ascii_domain.is_match(domain).unwrap_or(false) {
        return false;
    }
    domain.split('.').all(|label| {
        let len = punycode_to_ascii_len(label);
        (1..=MAX_DOMAIN_LABEL_LENGTH).contains(&len)
    })
}

/// The length of punycode.js `toASCII(label)`.
fn punycode_to_ascii_len(label: &str) -> usize {
    let parts: Vec<&str> = label.split(['.', '\u{3002}', '\u{FF0E}', '\u{FF61}']).collect();
    let encoded: usize = parts.iter().map(|p| if p.is_ascii() { p.len() } else { 4 + punycode_encode(p).len() }).sum();
    encoded + parts.len() - 1
}

/// RFC 3492 punycode encoding (as punycode.js `encode`).
fn punycode_encode(input: &str) -> String {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;
    const INITIAL_BIAS: u32 = 72;
    const INITIAL_N: u32 = 128;
    fn adapt(mut delta: u32, num_points: u32, first: bool) -> u32 {
        delta = if first { delta / DAMP } else { delta / 2 };
        delta += delta / num_points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }
    fn digit(d: u32) -> char {
        char::from_u32(if d < 26 { d + 97 } else { d + 22 }).unwrap_or('a')
    }
    let cps: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    let mut handled = basic;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias) = (INITIAL_N, 0u32, INITIAL_BIAS);
    while (handled as usize) < cps.len() {
        let m = cps.iter().copied().filter(|&c| c >= n).min().unwrap_or(n);
        delta = delta.saturating_add((m - n).saturating_mul(handled + 1));
        n = m;
        for &c in &cps {
            if c < n {
                delta = delta.saturating_add(1);
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.saturating_add(1);
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punycode_matches_rfc3492_samples() {
        assert_eq!(punycode_encode("bücher"), "bcher-kva");
        assert_eq!(punycode_encode("他们为什么不说中文"), "ihqwcrb4cv8a8dqg056pqjye");
    }

    #[test]
    fn urls_without_protocol_count_23() {
        assert_eq!(weighted_length("konektly.app"), 23);
        assert_eq!(weighted_length("see example.com now"), 31);
    }

    #[test]
    fn preceding_characters_follow_the_reference() {
        // A URL right after a letter is not a URL.
        assert_eq!(weighted_length("ahttp://x.com"), 13);
        // After a slash, a URL without protocol is not one.
        assert_eq!(weighted_length("/example.com"), 12);
    }

    #[test]
    fn symbols_count_like_the_reference() {
        assert_eq!(weighted_length("©"), 1);
        assert_eq!(weighted_length("©\u{FE0F}"), 2);
        assert_eq!(weighted_length("\u{FE0F}"), 2);
        assert_eq!(weighted_length("🇫🇷"), 2);
        assert_eq!(weighted_length("#\u{FE0F}\u{20E3}"), 2);
    }

    #[test]
    fn urls_are_left_out_for_matching() {
        assert_eq!(text_without_urls("Look  at https://example.com/a?b=1 now"), "Look at now");
        assert_eq!(text_without_urls("Look at https://t.co/abc now https://t.co/xyz"), "Look at now");
        assert_eq!(text_without_urls("plain"), "plain");
    }

    #[test]
    fn invalid_characters_make_a_text_invalid() {
        let r = parse_text("abc\u{FEFF}");
        assert!(r.has_invalid_characters && !r.valid);
        assert!(!parse_text("").valid);
    }
}
