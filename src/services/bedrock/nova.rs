//! Amazon Nova Pro as the prompt writer, through ConverseStream: the same templates as the
//! offline composer's inputs (`engine::prompt::render`). Nova Pro streams no reasoning content,
//! so the scratchpad is prompted (it thinks inside `<thinking>` tags) and parsed out of the text
//! deltas as they arrive; reasoning-content deltas, from models that send them, go to the
//! scratchpad too. The answer is a JSON object `{prompt, negative_prompt}`, validated.
use std::sync::Arc;

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput,
    InferenceConfiguration, Message, ReasoningContentBlockDelta, SystemContentBlock,
};

use crate::services::bedrock::Bedrock;
use crate::services::{PromptEvent, PromptInput, PromptResult, PromptWriter};
use crate::{Error, Result};

const OPEN: &str = "<thinking>";
const CLOSE: &str = "</thinking>";

/// Splits streamed text into scratchpad (inside `<thinking>`) and answer (after it), even when
/// a tag is cut across deltas: text that could be the start of a tag waits for the next delta.
#[derive(Debug, Default)]
pub struct ThinkingSplitter {
    pending: String,
    inside: bool,
    seen_close: bool,
    pub reasoning: String,
    pub answer: String,
}

impl ThinkingSplitter {
    /// Feeds one delta; returns the events it completes, in order.
    pub fn push(&mut self, delta: &str) -> Vec<PromptEvent> {
        self.pending.push_str(delta);
        let mut out = Vec::new();
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            if !self.inside && self.seen_close {
                // After the scratchpad everything is answer.
                let t = std::mem::take(&mut self.pending);
                self.emit(&mut out, t, false);
                break;
            }
            if let Some(i) = self.pending.find(tag) {
                let before: String = self.pending[..i].to_string();
                self.pending = self.pending[i + tag.len()..].to_string();
                let inside = self.inside;
                self.emit(&mut out, before, inside);
                if self.inside {
                    self.seen_close = true;
                }
                self.inside = !self.inside;
                continue;
            }
            // Keep back what could be the start of the tag.
            let keep = (1..tag.len())
                .rev()
                .find(|n| self.pending.ends_with(&tag[..*n]))
                .unwrap_or(0);
            let cut = self.pending.len() - keep;
            let ready: String = self.pending[..cut].to_string();
            self.pending = self.pending[cut..].to_string();
            let inside = self.inside;
            self.emit(&mut out, ready, inside);
            break;
        }
        out
    }

    /// The stream ended: whatever waited is flushed.
    pub fn finish(&mut self) -> Vec<PromptEvent> {
        let mut out = Vec::new();
        let t = std::mem::take(&mut self.pending);
        let inside = self.inside;
        self.emit(&mut out, t, inside);
        out
    }

    fn emit(&mut self, out: &mut Vec<PromptEvent>, text: String, reasoning: bool) {
        if text.is_empty() {
            return;
        }
        if reasoning {
            self.reasoning.push_str(&text);
            out.push(PromptEvent::Reasoning(text));
        } else {
            self.answer.push_str(&text);
            out.push(PromptEvent::Answer(text));
        }
    }
}

/// `{prompt, negative_prompt}` from the answer text (a JSON object, possibly in a code fence).
pub fn parse_answer(model: &str, answer: &str) -> Result<(String, String)> {
    let start = answer.find('{');
    let end = answer.rfind('}');
    let (Some(s), Some(e)) = (start, end) else {
        return Err(Error::Cloud(format!(
            "{model}: the answer has no JSON object with the prompt"
        )));
    };
    let v: serde_json::Value = serde_json::from_str(&answer[s..=e])
        .map_err(|err| Error::Cloud(format!("{model}: the answer's JSON does not parse: {err}")))?;
    let prompt = v["prompt"].as_str().unwrap_or("").trim().to_string();
    if prompt.is_empty() {
        return Err(Error::Cloud(format!(
            "{model}: the answer's JSON has no \"prompt\""
        )));
    }
    let negative = v["negative_prompt"]
        .as_str()
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((prompt, negative))
}

pub struct NovaWriter {
    bedrock: Arc<Bedrock>,
    /// The Bedrock model id.
    model_id: String,
    /// What the writer says it is ("bedrock/<id> (language model)").
    label: String,
}

impl NovaWriter {
    pub fn new(bedrock: Arc<Bedrock>, model: &str) -> Self {
        NovaWriter {
            bedrock,
            model_id: model.to_string(),
            label: format!("bedrock/{model} (language model)"),
        }
    }
}

impl PromptWriter for NovaWriter {
    fn model(&self) -> &str {
        &self.label
    }

    fn write(
        &self,
        input: &PromptInput,
        on_event: &mut dyn FnMut(PromptEvent),
    ) -> Result<PromptResult> {
        let rendered = crate::engine::prompt::render(input);
        let model = &self.model_id;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(rendered.user))
            .build()
            .map_err(|e| Error::Cloud(format!("{model}: {e}")))?;
        let b = &self.bedrock;
        let mut split = ThinkingSplitter::default();
        let mut usage = (0, 0);
        let mut stop = String::new();
        b.run(async {
            let mut out = b
                .client
                .converse_stream()
                .model_id(model)
                .system(SystemContentBlock::Text(rendered.system))
                .messages(message)
                .inference_config(
                    InferenceConfiguration::builder()
                        .max_tokens(2048)
                        .temperature(0.5)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| b.error(model, e))?;
            loop {
                let ev = out.stream.recv().await.map_err(|e| b.error(model, e))?;
                let Some(ev) = ev else { break };
                match ev {
                    ConverseStreamOutput::ContentBlockDelta(d) => match d.delta() {
                        Some(ContentBlockDelta::Text(t)) => {
                            for e in split.push(t) {
                                on_event(e);
                            }
                        }
                        Some(ContentBlockDelta::ReasoningContent(
                            ReasoningContentBlockDelta::Text(t),
                        )) => {
                            split.reasoning.push_str(t);
                            on_event(PromptEvent::Reasoning(t.clone()));
                        }
                        _ => {}
                    },
                    ConverseStreamOutput::MessageStop(s) => {
                        stop = s.stop_reason().as_str().to_string();
                    }
                    ConverseStreamOutput::Metadata(m) => {
                        if let Some(u) = m.usage() {
                            usage = (u.input_tokens(), u.output_tokens());
                        }
                    }
                    _ => {}
                }
            }
            Ok::<(), Error>(())
        })?;
        for e in split.finish() {
            on_event(e);
        }
        tracing::info!(
            model = %model,
            input_tokens = usage.0,
            output_tokens = usage.1,
            stop = %stop,
            "prompt written"
        );
        let (prompt, negative_prompt) = parse_answer(model, &split.answer)?;
        let mut flags = Vec::new();
        if stop == "max_tokens" {
            flags.push("the model stopped at its token limit".to_string());
        }
        Ok(PromptResult {
            reasoning: split.reasoning.trim().to_string(),
            prompt,
            negative_prompt,
            model: self.label.clone(),
            flags,
            usage: Some(crate::services::TokenUsage {
                input: usage.0.max(0) as u32,
                output: usage.1.max(0) as u32,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(deltas: &[&str]) -> (Vec<PromptEvent>, ThinkingSplitter) {
        let mut s = ThinkingSplitter::default();
        let mut ev = Vec::new();
        for d in deltas {
            ev.extend(s.push(d));
        }
        ev.extend(s.finish());
        (ev, s)
    }

    #[test]
    fn tags_cut_across_deltas_are_found() {
        let (ev, s) = run(&[
            "<thin",
            "king>The brief wants surf",
            "ers.</th",
            "inking>\n{\"prompt\": \"surfers\", ",
            "\"negative_prompt\": \"blur\"}",
        ]);
        assert_eq!(s.reasoning, "The brief wants surfers.");
        assert!(s.answer.contains("\"prompt\": \"surfers\""));
        assert_eq!(ev[0], PromptEvent::Reasoning("The brief wants surf".into()));
        assert!(matches!(ev.last(), Some(PromptEvent::Answer(_))));
        assert_eq!(
            parse_answer("m", &s.answer).unwrap(),
            ("surfers".to_string(), "blur".to_string())
        );
        // "<" that is not a tag is text.
        let (_, s) = run(&["a < b <thinking>x</thinking> {\"prompt\":\"p\"}"]);
        assert_eq!(s.reasoning, "x");
        assert!(s.answer.starts_with("a < b"));
        let e = parse_answer("m", "no json here").unwrap_err().to_string();
        assert!(e.contains("no JSON"), "{e}");
    }
}
