//! "Rephrase with the local model": the composer writes the prompt, then SmolLM2-135M (a small
//! local language model, labelled as such) rewrites it as fluent prose, streamed token by token.
//! A rephrase that loses the draft's details or breaks the limit is not used: the draft stays,
//! and a flag says why.
use crate::Result;
use crate::services::local::smollm::{self, SmolLm};
use crate::services::{PromptEvent, PromptInput, PromptResult, PromptWriter};

pub struct Rephrased<'a> {
    pub base: &'a dyn PromptWriter,
    pub lm: &'a SmolLm,
    model: String,
}

impl<'a> Rephrased<'a> {
    pub fn new(base: &'a dyn PromptWriter, lm: &'a SmolLm) -> Self {
        let model = format!("{} + rephrased by {}", base.model(), smollm::MODEL);
        Rephrased { base, lm, model }
    }
}

fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 3)
        .map(|w| w.to_lowercase())
        .collect()
}

/// Share of the draft's content words that the rewrite kept.
pub fn kept_share(draft: &str, rewrite: &str) -> f32 {
    let d = content_words(draft);
    if d.is_empty() {
        return 1.0;
    }
    let r = content_words(rewrite);
    d.iter().filter(|w| r.contains(w)).count() as f32 / d.len() as f32
}

impl PromptWriter for Rephrased<'_> {
    fn model(&self) -> &str {
        &self.model
    }

    /// The draft is the base writer's: it gets what the base asks for.
    fn wants_element_fit(&self) -> bool {
        self.base.wants_element_fit()
    }

    fn wants_english_brief(&self) -> bool {
        self.base.wants_english_brief()
    }

    fn write(
        &self,
        input: &PromptInput,
        on_event: &mut dyn FnMut(PromptEvent),
    ) -> Result<PromptResult> {
        let mut draft = self.base.write(input, &mut |e| {
            if let PromptEvent::Reasoning(t) = e {
                on_event(PromptEvent::Reasoning(t));
            }
        })?;
        on_event(PromptEvent::Reasoning(format!(
            "Draft: {}\nRephrasing it with SmolLM2-135M, a small local language model.\n",
            draft.prompt
        )));
        let system = "You are a helpful AI assistant that rewrites image descriptions.";
        let user = format!(
            "Rewrite the following image description as one clear, fluent sentence. Keep all the details \
             (subject, objects, light, colours, composition).\n\nDescription: {}",
            draft.prompt
        );
        // Starting the answer with "A photograph of" keeps a 135M model describing, not commenting.
        let text = self
            .lm
            .chat(system, &user, "A photograph of", 160, &mut |t| {
                on_event(PromptEvent::Answer(t.to_string()))
            })?;
        let text = text.trim().trim_matches('"').to_string();
        let kept = kept_share(&draft.prompt, &text);
        let reason = if text.is_empty() {
            Some("the small local model returned nothing".to_string())
        } else if text.chars().count() > input.max_chars {
            Some(format!(
                "the rephrase had {} characters (limit {})",
                text.chars().count(),
                input.max_chars
            ))
        } else if kept < 0.6 {
            Some(format!(
                "the rephrase kept only {:.0} % of the draft's details",
                kept * 100.0
            ))
        } else {
            None
        };
        draft.model = self.model.clone();
        match reason {
            Some(r) => {
                draft.flags.push(format!("kept the composer's prompt: {r}"));
                draft
                    .reasoning
                    .push_str(&format!("\nRephrase not used: {r}."));
            }
            None => {
                draft.reasoning.push_str(&format!(
                    "\nRephrased by SmolLM2-135M (small local model); it kept {:.0} % of the draft's details.",
                    kept * 100.0
                ));
                draft.prompt = text;
            }
        }
        Ok(draft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_kept_details() {
        assert_eq!(
            kept_share("red bicycle, golden light", "A red bicycle in golden light"),
            1.0
        );
        assert!(kept_share("red bicycle, golden light, wide shot", "a cat") < 0.2);
    }
}
