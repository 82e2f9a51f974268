//! The meta-prompt step: templates from `prompts/`, references escaped inside tags, the length
//! limit (re-ask once, then cut at a clause boundary and flag), and prompt versions (AI and
//! user, append-only).
use crate::domain::{Campaign, CampaignStep, PromptSource, PromptVersion};
use crate::engine::Library;
use crate::services::cancel;
use crate::services::{PromptEvent, PromptInput, PromptResult, PromptWriter, ReferenceForPrompt};
use crate::store::now;
use crate::{Error, Result};

pub use crate::services::templates::{RenderedPrompt, escape, render};

/// Cuts `text` to at most `max` characters at the last clause boundary (", ", "; ", ". ").
pub fn cut_at_clause(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    let cut = [", ", "; ", ". "]
        .iter()
        .filter_map(|sep| head.rfind(sep))
        .max()
        .filter(|&i| i > max / 3)
        .unwrap_or_else(|| head.rfind(' ').unwrap_or(head.len()));
    head[..cut]
        .trim_end_matches([',', ';', '.', ' '])
        .to_string()
}

/// Runs the writer; an answer over the limit is re-asked once with a shortening instruction,
/// then cut at a clause boundary and flagged.
pub fn write_within_limit(
    writer: &dyn PromptWriter,
    input: &PromptInput,
    on_event: &mut dyn FnMut(PromptEvent),
) -> Result<PromptResult> {
    let first = writer.write(input, on_event)?;
    if first.prompt.chars().count() <= input.max_chars {
        return Ok(first);
    }
    let mut again = input.clone();
    again.previous_prompt = Some(first.prompt.clone());
    again.instruction = Some(format!(
        "Shorten the prompt to at most {} characters; keep the subject, setting and light.",
        input.max_chars
    ));
    let mut second = writer.write(&again, on_event)?;
    // Both calls were paid for.
    second.usage = match (first.usage, second.usage) {
        (Some(a), Some(b)) => Some(crate::domain::TokenUsage {
            input: a.input.saturating_add(b.input),
            output: a.output.saturating_add(b.output),
        }),
        (a, b) => a.or(b),
    };
    second.flags.push(format!(
        "re-asked once: the first answer had {} characters (limit {})",
        first.prompt.chars().count(),
        input.max_chars
    ));
    if second.prompt.chars().count() > input.max_chars {
        let n = second.prompt.chars().count();
        second.prompt = cut_at_clause(&second.prompt, input.max_chars);
        second.flags.push(format!(
            "cut at a clause boundary from {n} to {} characters",
            second.prompt.chars().count()
        ));
    }
    Ok(second)
}

/// The selected references of a campaign, as a prompt writer sees them.
pub fn references_for(lib: &Library, campaign: &Campaign) -> Result<Vec<ReferenceForPrompt>> {
    campaign
        .selected
        .iter()
        .map(|id| {
            let a = lib.store.asset(id)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "selected reference {id} is no longer in the library"
                ))
            })?;
            Ok(ReferenceForPrompt {
                asset_id: a.id.clone(),
                label: a.external_id.clone().unwrap_or_else(|| a.file.clone()),
                description: a.description.description.clone(),
                elements: a.description.elements.clone(),
                inferred: a
                    .description
                    .inferred
                    .as_ref()
                    .map(|i| i.words.clone())
                    .unwrap_or_default(),
                palette: a.description.palette.clone(),
                brightness: a.description.brightness,
                kpi: a.kpi,
            })
        })
        .collect()
}

/// How well the references' elements fit the brief, by the library's text embedder; `None`
/// (logged) when it cannot be measured: the composer then says it could not judge them.
fn element_fit_of(
    lib: &Library,
    brief: &str,
    references: &[ReferenceForPrompt],
) -> Option<crate::services::element_fit::ElementFit> {
    if references.iter().all(|r| r.elements.is_empty()) {
        return None;
    }
    let elements: Vec<String> = references
        .iter()
        .flat_map(|r| r.elements.iter().cloned())
        .collect();
    let measured = lib
        .text_embedder()
        .and_then(|e| crate::services::element_fit::measure(e.as_ref(), brief, &elements));
    match measured {
        Ok(fit) => fit,
        Err(e) => {
            tracing::warn!(error = %e, "could not measure how the references' elements fit the brief");
            None
        }
    }
}

/// The current prompt of a campaign: its latest version.
pub fn current(lib: &Library, campaign: &Campaign) -> Result<Option<PromptVersion>> {
    Ok(lib.store.prompt_versions(&campaign.id)?.pop())
}

/// Writes a new AI prompt version from the brief and the selected references.
pub fn write_prompt(
    lib: &Library,
    campaign: &Campaign,
    writer: &dyn PromptWriter,
    instruction: Option<String>,
    max_chars: usize,
    on_event: &mut dyn FnMut(PromptEvent),
) -> Result<PromptVersion> {
    let references = references_for(lib, campaign)?;
    let previous = current(lib, campaign)?.map(|p| p.prompt);
    // A writer that cannot translate gets a brief in another language as its English
    // translation, where Apertium is installed; the elements are then judged against it.
    let (translated_from, not_translated) = if writer.wants_english_brief() {
        match crate::services::translate::translate_brief(&campaign.brief) {
            Ok(t) => (t, None),
            Err(why) => (None, Some(why)),
        }
    } else {
        (None, None)
    };
    let brief = translated_from
        .as_ref()
        .map_or_else(|| campaign.brief.clone(), |t| t.text.clone());
    let element_fit = if writer.wants_element_fit() {
        element_fit_of(lib, &brief, &references)
    } else {
        None
    };
    let input = PromptInput {
        brief,
        translated_from,
        not_translated,
        objective: campaign.objective.clone(),
        node: campaign.node.clone(),
        references,
        brand: campaign.brand.clone(),
        previous_prompt: instruction.as_ref().and(previous),
        instruction: instruction.clone(),
        max_chars,
        element_fit,
    };
    // A job cancelled while the writer ran saves nothing, even when the writer finished.
    let written =
        write_within_limit(writer, &input, on_event).and_then(|r| cancel::check().map(|()| r));
    let r = match written {
        Ok(r) => r,
        Err(e) => {
            let job = match e {
                Error::Cancelled => "prompt (cancelled, not saved)",
                _ => "prompt (not saved)",
            };
            lib.store_model_calls(Some(&campaign.id), job)?;
            return Err(e);
        }
    };
    let mut v = PromptVersion {
        id: 0,
        campaign_id: campaign.id.clone(),
        source: PromptSource::Ai,
        model: r.model,
        reasoning: r.reasoning,
        prompt: r.prompt,
        negative_prompt: r.negative_prompt,
        instruction,
        references: campaign.selected.clone(),
        flags: r.flags,
        created_at: now(),
        usage: r.usage,
    };
    v.id = lib.store.insert_prompt_version(&v)?;
    lib.store_model_calls(Some(&campaign.id), &format!("prompt version {}", v.id))?;
    lib.store.advance_step(&campaign.id, CampaignStep::Prompt)?;
    Ok(v)
}

/// Stores the user's own version of the prompt (and negative prompt, when given).
pub fn edit(
    lib: &Library,
    campaign: &Campaign,
    text: &str,
    negative: Option<&str>,
) -> Result<PromptVersion> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Invalid("the prompt is empty".into()));
    }
    let base = current(lib, campaign)?;
    let mut v = PromptVersion {
        id: 0,
        campaign_id: campaign.id.clone(),
        source: PromptSource::User,
        model: "user".into(),
        reasoning: String::new(),
        prompt: text.to_string(),
        negative_prompt: negative
            .map(str::to_string)
            .or_else(|| base.as_ref().map(|b| b.negative_prompt.clone()))
            .unwrap_or_default(),
        instruction: None,
        references: base
            .map(|b| b.references)
            .unwrap_or_else(|| campaign.selected.clone()),
        flags: Vec::new(),
        created_at: now(),
        usage: None,
    };
    v.id = lib.store.insert_prompt_version(&v)?;
    lib.store_model_calls(Some(&campaign.id), &format!("prompt version {}", v.id))?;
    lib.store.advance_step(&campaign.id, CampaignStep::Prompt)?;
    Ok(v)
}

/// Makes the last AI version current again (as a new version, so history stays intact).
pub fn restore(lib: &Library, campaign: &Campaign) -> Result<PromptVersion> {
    let versions = lib.store.prompt_versions(&campaign.id)?;
    let ai = versions
        .iter()
        .rev()
        .find(|v| v.source == PromptSource::Ai)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "campaign '{}' has no AI prompt yet; run `campaign prompt` first",
                campaign.name
            ))
        })?;
    let mut v = ai.clone();
    v.usage = None; // restoring calls nothing
    v.flags.push(format!("restored from version {}", ai.id));
    v.created_at = now();
    v.id = lib.store.insert_prompt_version(&v)?;
    lib.store.touch_campaign(&campaign.id)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::templates::tests::input_with;

    #[test]
    fn cuts_at_clause_boundaries() {
        let t = "a red bicycle on a bridge, golden hour light, wide shot, film grain";
        assert_eq!(cut_at_clause(t, 200), t);
        assert_eq!(
            cut_at_clause(t, 50),
            "a red bicycle on a bridge, golden hour light"
        );
        assert!(cut_at_clause(&"word ".repeat(200), 100).chars().count() <= 100);
    }

    struct Wordy(std::sync::atomic::AtomicUsize);
    impl PromptWriter for Wordy {
        fn model(&self) -> &str {
            "test/wordy"
        }
        fn write(
            &self,
            input: &PromptInput,
            on_event: &mut dyn FnMut(PromptEvent),
        ) -> Result<PromptResult> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            on_event(PromptEvent::Reasoning("thinking".into()));
            let shorten = input.instruction.is_some();
            Ok(PromptResult {
                prompt: if shorten {
                    "short, but, still, too, long, ".repeat(30)
                } else {
                    "x, ".repeat(400)
                },
                model: self.model().into(),
                ..Default::default()
            })
        }
    }

    #[test]
    fn over_long_answers_are_reasked_once_then_cut_and_flagged() {
        let w = Wordy(Default::default());
        let mut events = 0;
        let r = write_within_limit(&w, &input_with("d"), &mut |_| events += 1).unwrap();
        assert_eq!(w.0.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(events, 2);
        assert!(r.prompt.chars().count() <= 512);
        assert_eq!(r.flags.len(), 2, "{:?}", r.flags);
        assert!(r.flags[1].starts_with("cut at a clause boundary"));
    }
}
