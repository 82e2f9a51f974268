//! The real Apertium (`services::translate`), where it is installed: CI installs Debian's
//! apertium-eng-spa and requires these (CAMPAIGN_STUDIO_REQUIRE_SERVERS names apertium);
//! elsewhere they print `skipped:`. The plumbing around it is tested with a stand-in program
//! (tests/match_strength.rs, the unit tests of `services::translate`); the prompt of a Spanish
//! brief with the real one, in tests/match_strength.rs.
mod common;

use campaign_studio::services::translate::Apertium;

/// The cycling brief, in Spanish.
const CYCLING_ES: &str =
    "Campaña de ciclismo de verano: jóvenes montando en bicicleta por la ciudad en un día soleado";

fn translated(text: &str) -> String {
    Apertium::open("apertium")
        .unwrap()
        .translate("spa-eng", text)
        .unwrap()
}

#[test]
fn a_spanish_brief_is_translated_into_english_words() {
    if !common::apertium_installed() {
        return;
    }
    let t = translated(CYCLING_ES);
    assert!(t.contains("bicycle") && t.contains("city"), "{t}");
}

#[test]
fn an_unknown_word_is_kept_without_apertium_s_mark() {
    if !common::apertium_installed() {
        return;
    }
    // "zorblax" is in no dictionary: kept as written, without the '*' Apertium marks it with.
    let t = translated("un perro zorblax");
    assert!(t.contains("zorblax") && !t.contains('*'), "{t}");
}
