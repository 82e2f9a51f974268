//! Amazon Nova Pro or Nova 2 Lite as the prompt writer, through ConverseStream, with the
//! templates every writer shares (`services::templates`). The scratchpad is prompted (the
//! model thinks inside `<thinking>` tags) and parsed out of the text deltas as they arrive.
//! Nova 2 Lite is also asked for extended thinking (`reasoningConfig`); its reasoning-content
//! deltas go to the scratchpad, and when AWS returns them redacted the scratchpad says so
//! once. The answer is a JSON object `{prompt, negative_prompt}`, validated; the call's tokens
//! are recorded.
use std::sync::Arc;

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput,
    InferenceConfiguration, Message, ReasoningContentBlockDelta, SystemContentBlock,
};

use crate::domain::ModelCall;
use crate::services::bedrock::{Bedrock, Family, Route};
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
    // A '}' before the first '{' (found by fuzzing: "} {" once sliced backwards and panicked).
    let (Some(s), Some(e)) = (start, end.filter(|e| Some(*e) > start)) else {
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

/// How much the writer reasons before answering, for models with extended thinking
/// (`bedrock.reasoning_effort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Off,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn parse(s: &str) -> Option<Effort> {
        match s {
            "off" => Some(Effort::Off),
            "low" => Some(Effort::Low),
            "medium" => Some(Effort::Medium),
            "high" => Some(Effort::High),
            _ => None,
        }
    }
}

/// What the scratchpad says when the model's reasoning comes back redacted.
pub const REDACTED_NOTE: &str = "(Nova 2 Lite reasoned before answering; AWS returns that reasoning redacted, so it cannot be shown here. Its tokens are billed as output.)\n";

/// The `additionalModelRequestFields` of a request, and whether `inferenceConfig` may be set
/// (Nova 2 Lite at high effort chooses its own temperature, top-p and length).
pub fn extra_fields(family: Family, effort: Effort) -> (Option<serde_json::Value>, bool) {
    match (family, effort) {
        (Family::Nova2Lite, Effort::Off) | (Family::NovaPro, _) => (None, true),
        (Family::Nova2Lite, e) => {
            let level = match e {
                Effort::Low => "low",
                Effort::Medium => "medium",
                _ => "high",
            };
            (
                Some(serde_json::json!({
                    "reasoningConfig": {"type": "enabled", "maxReasoningEffort": level}
                })),
                e != Effort::High,
            )
        }
        _ => (None, true),
    }
}

pub struct NovaWriter {
    bedrock: Arc<Bedrock>,
    route: Route,
    effort: Effort,
    /// What the writer says it is ("bedrock/<id> (language model)").
    label: String,
}

impl NovaWriter {
    pub fn new(bedrock: Arc<Bedrock>, route: Route, effort: Effort) -> Self {
        NovaWriter {
            label: format!("bedrock/{} (language model)", route.id),
            bedrock,
            route,
            effort,
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
        let rendered = crate::services::templates::render(input);
        let route = &self.route;
        let model = &route.id;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(rendered.user))
            .build()
            .map_err(|e| Error::Cloud(format!("{model}: {e}")))?;
        let b = &self.bedrock;
        let (extra, inference) = extra_fields(route.family(), self.effort);
        let mut split = ThinkingSplitter::default();
        let mut usage = (0, 0);
        let mut stop = String::new();
        let mut redacted_said = false;
        let streamed = b
            .run(async {
                let mut req = b
                    .client
                    .converse_stream()
                    .model_id(model)
                    .system(SystemContentBlock::Text(rendered.system))
                    .messages(message);
                if inference {
                    req = req.inference_config(
                        InferenceConfiguration::builder()
                            .max_tokens(2048)
                            .temperature(0.5)
                            .build(),
                    );
                }
                if let Some(x) = &extra {
                    req = req
                        .additional_model_request_fields(crate::services::aws::doc::from_json(x));
                }
                let mut out = req
                    .customize()
                    .config_override(b.override_for(route))
                    .send()
                    .await
                    .map_err(|e| b.error(route, e))?;
                loop {
                    let ev = out.stream.recv().await.map_err(|e| b.error(route, e))?;
                    let Some(ev) = ev else { break };
                    match ev {
                        ConverseStreamOutput::ContentBlockDelta(d) => match d.delta() {
                            Some(ContentBlockDelta::Text(t)) => {
                                for e in split.push(t) {
                                    on_event(e);
                                }
                            }
                            Some(ContentBlockDelta::ReasoningContent(r)) => match r {
                                ReasoningContentBlockDelta::Text(t) if t.trim() != "[REDACTED]" => {
                                    split.reasoning.push_str(t);
                                    on_event(PromptEvent::Reasoning(t.clone()));
                                }
                                ReasoningContentBlockDelta::Text(_)
                                | ReasoningContentBlockDelta::RedactedContent(_)
                                    if !redacted_said =>
                                {
                                    redacted_said = true;
                                    split.reasoning.push_str(REDACTED_NOTE);
                                    on_event(PromptEvent::Reasoning(REDACTED_NOTE.into()));
                                }
                                // The signature only matters to multi-turn conversations.
                                _ => {}
                            },
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
            })
            .and_then(|streamed| streamed);
        // Recorded whether or not the stream ended well: a call that failed midway was still
        // billed for what it used (the metadata event, when it came, says how much).
        let tokens = crate::services::TokenUsage {
            input: usage.0.max(0) as u32,
            output: usage.1.max(0) as u32,
        };
        b.record(
            route,
            ModelCall {
                job: "prompt".into(),
                input_tokens: tokens.input,
                output_tokens: tokens.output,
                ..Default::default()
            },
        );
        streamed?;
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
        // A stream that ends without messageStop was cut (a dropped connection, a proxy): what
        // arrived may parse and still be missing its end.
        if stop.is_empty() {
            return Err(Error::Cloud(format!(
                "{model}: the answer stream ended before the model finished (no messageStop); try again"
            )));
        }
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
            usage: Some(tokens),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_whose_braces_are_backwards_is_an_error_not_a_panic() {
        let e = parse_answer("m", "} no object {").unwrap_err().to_string();
        assert!(e.contains("no JSON object"), "{e}");
    }

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
