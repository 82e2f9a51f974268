//! The real Apertium (`services::translate`), where it is installed: CI installs Debian's
//! apertium-eng-spa and requires these (CAMPAIGN_STUDIO_REQUIRE_SERVERS names apertium);
//! elsewhere they print `skipped:`. The plumbing around it is tested with a stand-in program
//! (tests/match_strength.rs, the unit tests of `services::translate`).
mod common;

use campaign_studio::services::local::composer::Composer;
use campaign_studio::services::translate::{Apertium, Translation};
use campaign_studio::services::{PromptInput, PromptWriter};

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

#[test]
fn the_composer_writes_an_english_prompt_from_a_translated_spanish_brief() {
    if !common::apertium_installed() {
        return;
    }
    let text = translated(CYCLING_ES);
    let out = Composer
        .write(
            &PromptInput {
                brief: text.clone(),
                objective: "clicks".into(),
                node: "followers".into(),
                max_chars: 512,
                translated_from: Some(Translation {
                    from: "Spanish".into(),
                    by: "Apertium spa-eng".into(),
                    text,
                }),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
    assert!(
        out.prompt.contains("bicycle") && !out.prompt.contains("bicicleta"),
        "{}",
        out.prompt
    );
}
