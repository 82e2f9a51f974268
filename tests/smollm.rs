//! SmolLM2-135M from its GGUF: the tokenizer rebuilt from the metadata, and real generation.
mod common;

use campaign_studio::models::ModelFiles;
use campaign_studio::services::local::smollm::SmolLm;

#[test]
fn tokenizer_from_gguf_round_trips_and_knows_chatml() {
    let files = ModelFiles::new(common::models_cache().join("models"));
    let lm = SmolLm::load(&files.smollm2_gguf().unwrap()).unwrap();
    let tok = lm.tokenizer();
    for text in [
        "A red bicycle, golden hour — 35 mm, f/1.8!",
        "Café con leche para 2024",
        "  two  spaces\nnew line",
    ] {
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
    assert_eq!(
        tok.encode("<|im_start|>user<|im_end|>", false)
            .unwrap()
            .get_ids()[0],
        1
    );
    assert_eq!(
        *tok.encode("<|im_start|>user<|im_end|>", false)
            .unwrap()
            .get_ids()
            .last()
            .unwrap(),
        2
    );
    // Digits are split one by one, as SmolLM2's pre-tokenizer does.
    assert_eq!(tok.encode("2024", false).unwrap().get_ids().len(), 4);
    // Common words are single tokens.
    assert_eq!(tok.encode(" the", false).unwrap().get_ids().len(), 1);

    // Real, deterministic generation, streamed piece by piece.
    let mut streamed = String::new();
    let a = lm
        .chat(
            "You are a helpful assistant.",
            "What colour is the sky on a clear day? Answer in one word.",
            "",
            20,
            &mut |t| streamed.push_str(t),
        )
        .unwrap();
    assert_eq!(streamed.trim(), a);
    assert!(a.to_lowercase().contains("blue"), "{a}");
    let b = lm
        .chat(
            "You are a helpful assistant.",
            "What colour is the sky on a clear day? Answer in one word.",
            "",
            20,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(a, b);
}

/// Esc while SmolLM2 writes: generation stops at the next token and says cancelled.
#[test]
fn generation_stops_between_tokens_when_its_job_is_cancelled() {
    let files = ModelFiles::new(common::models_cache().join("models"));
    let lm = SmolLm::load(&files.smollm2_gguf().unwrap()).unwrap();
    let token = campaign_studio::services::cancel::CancelToken::new();
    let mut pieces = 0;
    let r = campaign_studio::services::cancel::scoped(&token, || {
        lm.chat(
            "You are a helpful assistant.",
            "Count from one to fifty in words.",
            "",
            200,
            &mut |_| {
                pieces += 1;
                if pieces == 3 {
                    token.cancel();
                }
            },
        )
    });
    assert!(matches!(r, Err(campaign_studio::Error::Cancelled)), "{r:?}");
    assert_eq!(pieces, 3, "no token after the cancel");
}

/// `--rephrase` wraps the composer: the draft is still the composer's, so the wrapper asks for
/// the references' element fit as the composer does (else the gate would silently turn off).
#[test]
fn a_rephrased_composer_still_asks_for_the_element_fit() {
    use campaign_studio::services::PromptWriter;
    use campaign_studio::services::local::composer::Composer;
    use campaign_studio::services::local::rephrase::Rephrased;
    let files = ModelFiles::new(common::models_cache().join("models"));
    let lm = SmolLm::load(&files.smollm2_gguf().unwrap()).unwrap();
    assert!(Rephrased::new(&Composer, &lm).wants_element_fit());
}
