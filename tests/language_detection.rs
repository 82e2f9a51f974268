//! "Is this English?" on labelled short briefs and queries it was not chosen or tuned on
//! (tests/fixtures/language/test.tsv: 25 English, 35 in 19 other languages, six of them with
//! no model compiled in; written after lingua was chosen over whatlang on dev.tsv and
//! heldout.tsv, and never used to change the detector).
//!
//! Thresholds, fixed before test.tsv was first measured (with lingua over 23 languages; the set
//! was then cut to 12 for binary size, judged on dev + heldout, test.tsv printed in that run):
//! - other languages caught >= 34 of 35: on dev + heldout (70 non-English texts) lingua let
//!   none through; one slip is allowed. A slip is the costly error: that text reaches Titan's
//!   English-only text side untranslated.
//! - English kept >= 20 of 25 (80 %): on dev + heldout lingua kept 35 of 40 (87.5 %; the misses
//!   are two-word queries of loanwords, "latte art", "tacos and salsa"), less a margin. A miss
//!   costs one describer call that rewrites an English query as English.
use std::path::Path;

use campaign_studio::services::language::is_english;

fn labelled(file: &str) -> Vec<(bool, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/language")
        .join(file);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(lang, text)| (lang == "en", text.to_string()))
        .collect()
}

#[test]
fn other_languages_are_not_taken_for_english() {
    let rows = labelled("test.tsv");
    let slipped: Vec<&String> = rows
        .iter()
        .filter(|(english, text)| !english && is_english(text))
        .map(|(_, t)| t)
        .collect();
    let others = rows.iter().filter(|(english, _)| !english).count();
    assert_eq!(others, 35);
    assert!(slipped.len() <= 1, "taken for English: {slipped:?}");
}

#[test]
fn english_briefs_and_queries_are_kept_english() {
    let rows = labelled("test.tsv");
    let missed: Vec<&String> = rows
        .iter()
        .filter(|(english, text)| *english && !is_english(text))
        .map(|(_, t)| t)
        .collect();
    let english = rows.iter().filter(|(english, _)| *english).count();
    assert_eq!(english, 25);
    assert!(
        missed.len() <= 5,
        "English taken for another language: {missed:?}"
    );
}
