//! "Is this text English?", asked wherever a brief or a query may need translating: before
//! Titan's English-only text side (engine::campaign) and by the offline composer, which cannot
//! translate and says so.
//!
//! lingua (n-gram models of English and 11 other Latin-script languages) decides among texts
//! written in Latin letters; a text whose letters are mostly of another script (kana, han, hangul, Cyrillic,
//! Arabic, Devanagari, Greek, Hebrew, Thai...) is not English whatever its words, so those
//! scripts need no model. Chosen over whatlang after measuring both on short briefs and
//! queries (tests/fixtures/language/, docs/ARCHITECTURE.md).
use std::sync::OnceLock;

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

/// The languages the detector chooses among: every one compiled in (Cargo.toml's features).
fn detector() -> &'static LanguageDetector {
    static DETECTOR: OnceLock<LanguageDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| LanguageDetectorBuilder::from_all_languages().build())
}

/// Latin letters: ASCII, Latin-1 Supplement, Latin Extended-A/B, IPA and Latin Extended
/// Additional (Vietnamese).
fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c as u32, 0x00C0..=0x024F | 0x0250..=0x02AF | 0x1E00..=0x1EFF)
}

/// What a text reads as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    English,
    /// Another language, named when the detector knows it.
    Other(Option<String>),
}

/// What `text` reads as. Text without letters, or that the detector cannot place, reads as
/// English: there is nothing a translation would change.
pub fn reading(text: &str) -> Reading {
    let (mut letters, mut latin) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        latin += usize::from(is_latin(c));
    }
    if letters == 0 {
        return Reading::English;
    }
    // Mostly another script: not English (brand names in Latin letters inside a Japanese
    // brief do not make it English).
    if latin * 2 < letters {
        return Reading::Other(None);
    }
    match detector().detect_language_of(text) {
        None | Some(Language::English) => Reading::English,
        Some(other) => Reading::Other(Some(other.to_string())),
    }
}

/// How sure the detector is (0 to 1) that `text` is in the language it names `language` (as
/// `Reading::Other` names it); 0 for a language it has no model of.
pub fn confidence(text: &str, language: &str) -> f64 {
    match language.parse::<Language>() {
        Ok(l) => detector().compute_language_confidence(text, l),
        Err(_) => 0.0,
    }
}

/// True when `text` reads as English (see `reading`).
pub fn is_english(text: &str) -> bool {
    reading(text) == Reading::English
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_letters_reads_as_english() {
        assert!(is_english("2025 — 50 % !"));
    }

    #[test]
    fn a_japanese_brief_with_a_latin_brand_name_is_not_english() {
        assert_eq!(
            reading("Espresso Pro を忙しい家族に届けるキャンペーン"),
            Reading::Other(None)
        );
    }

    #[test]
    fn a_german_brief_is_named_german() {
        assert_eq!(
            reading("Stellen Sie unsere neue Espressomaschine für vielbeschäftigte Familien vor."),
            Reading::Other(Some("German".into()))
        );
    }

    #[test]
    fn a_spanish_brief_is_read_as_spanish_with_high_confidence() {
        assert!(
            confidence(
                "Muestra a los seguidores la alegría de un pícnic en el parque.",
                "Spanish"
            ) > 0.8
        );
    }

    #[test]
    fn a_language_without_a_model_has_no_confidence() {
        assert_eq!(confidence("hello", "Klingon"), 0.0);
    }

    #[test]
    fn an_english_brief_reads_as_english() {
        assert!(is_english(
            "Launch our new espresso machine for busy families who want café quality at home."
        ));
    }
}
