//! The official twitter-text conformance suite (`tests/conformance/validate.yml`, vendored with its
//! Apache-2.0 licence; see `tests/conformance/README.md`):
//! every case of `WeightedTweetsWithDiscountedEmojiCounterTest` and
//! `UnicodeDirectionalMarkerCounterTest` must count and validate as X does.

use konektly_twitter::{parse_text, weighted_length};
use serde::Deserialize;

#[derive(Deserialize)]
struct Suite {
    tests: std::collections::HashMap<String, serde_yaml::Value>,
}

#[derive(Deserialize)]
struct Case {
    description: String,
    text: String,
    expected: Expected,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expected {
    weighted_length: usize,
    valid: bool,
}

/// The suite, compiled into the test binary: a missing file fails the build, not a run.
const VALIDATE_YML: &str = include_str!("conformance/validate.yml");

fn cases(group: &str) -> Vec<Case> {
    let suite: Suite = serde_yaml::from_str(VALIDATE_YML).expect("validate.yml parses");
    let value = suite.tests.get(group).unwrap_or_else(|| panic!("no group {group}")).clone();
    serde_yaml::from_value(value).expect("cases parse")
}

fn check(group: &str, min_cases: usize) {
    let cases = cases(group);
    assert!(cases.len() >= min_cases, "{group}: expected at least {min_cases} cases, found {}", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = parse_text(&c.text);
        assert_eq!(weighted_length(&c.text), got.weighted_length);
        if got.weighted_length != c.expected.weighted_length || got.valid != c.expected.valid {
            failures.push(format!(
                "{}: got length {} valid {}, expected {} {}",
                c.description, got.weighted_length, got.valid, c.expected.weighted_length, c.expected.valid
            ));
        }
    }
    assert!(failures.is_empty(), "{group}: {} of {} cases fail:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn weighted_tweets_with_discounted_emoji() {
    check("WeightedTweetsWithDiscountedEmojiCounterTest", 20);
}

#[test]
fn unicode_directional_markers() {
    check("UnicodeDirectionalMarkerCounterTest", 2);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    text: String,
    weighted_length: usize,
    valid: bool,
}

/// Beyond the suite: generated texts (URLs with and without protocol, the characters around
/// them, flags, keycaps, `©`, variation selectors…) counted by the official JavaScript
/// implementation (`tools/gen-reference-lengths.js`).
#[test]
fn agrees_with_the_official_implementation_on_generated_texts() {
    let raw = include_str!("fixtures/reference_lengths.json");
    let refs: Vec<Reference> = serde_json::from_str(raw).expect("fixture parses");
    assert!(refs.len() > 1000);
    let failures: Vec<String> = refs
        .iter()
        .filter_map(|r| {
            let got = parse_text(&r.text);
            (got.weighted_length != r.weighted_length || got.valid != r.valid).then(|| {
                format!(
                    "{:?}: got {} {}, reference {} {}",
                    r.text, got.weighted_length, got.valid, r.weighted_length, r.valid
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), refs.len(), failures.join("\n"));
}
