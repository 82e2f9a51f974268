//! The offline prompt writer: a deterministic composer, not a language model. It builds the
//! prompt from the brief (subject), the chosen references (elements, light, colours), the
//! campaign objective and audience (composition), and the brand kit, and explains each choice
//! in its scratchpad, citing the references it used. It does not translate: a brief that is
//! not in English is flagged.
use std::collections::BTreeMap;

use crate::Result;
use crate::services::language::Reading;
use crate::services::local::imaging::colour_name;
use crate::services::{PromptEvent, PromptInput, PromptResult, PromptWriter};

pub const MODEL: &str = "local/composer-v1 (deterministic template composer, not a language model)";

const BASE_NEGATIVE: &str = "blurry, low resolution, distorted anatomy, extra fingers, watermark, garbled text, jpeg artifacts";

/// Leading words of a brief that ask for something rather than describe it.
const ASK_WORDS: [&str; 22] = [
    "launch",
    "promote",
    "announce",
    "introduce",
    "advertise",
    "campaign",
    "for",
    "show",
    "create",
    "make",
    "we",
    "want",
    "need",
    "a",
    "an",
    "the",
    "our",
    "to",
    "new",
    "please",
    "let's",
    "sell",
];

pub struct Composer;

/// An element and the references it appears in.
struct ElementTally {
    name: String,
    from: Vec<String>,
}

/// The brief's first sentence without the leading "launch our ..." words.
fn subject(brief: &str) -> String {
    let first = brief
        .split(['.', '!', '?', '\n'])
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(brief)
        .to_string();
    let words: Vec<&str> = first.split_whitespace().collect();
    let skip = words
        .iter()
        .take_while(|w| {
            ASK_WORDS.contains(
                &w.to_lowercase()
                    .trim_matches(|c: char| !c.is_alphanumeric()),
            )
        })
        .count();
    let rest = if skip < words.len() {
        &words[skip..]
    } else {
        &words[..]
    };
    let s = rest.join(" ");
    let s: String = s.chars().take(160).collect();
    s.trim_end_matches([',', ';', ':']).to_string()
}

fn composition(objective: &str, node: &str) -> (String, String) {
    let o = match objective {
        "clicks" => {
            "one bold focal point, clean negative space on one third for the call to action"
        }
        "conversions" => {
            "the product clearly visible and in sharp focus, uncluttered background, trustworthy look"
        }
        "likes" => "a warm, candid, shareable moment with genuine expressions",
        "awareness" => "a memorable wide establishing composition with a strong silhouette",
        _ => "a clear focal point",
    };
    let n = match node {
        "new_customers" => "approachable and easy to read at a glance",
        "customers" => "a familiar everyday setting that rewards loyalty",
        "followers" => "a community feel, on-brand and consistent",
        _ => "",
    };
    (o.to_string(), n.to_string())
}

impl PromptWriter for Composer {
    fn model(&self) -> &str {
        MODEL
    }

    fn write(
        &self,
        input: &PromptInput,
        on_event: &mut dyn FnMut(PromptEvent),
    ) -> Result<PromptResult> {
        let mut reasoning: Vec<String> = Vec::new();
        let mut flags = Vec::new();
        let mut say = |line: String, on_event: &mut dyn FnMut(PromptEvent)| {
            on_event(PromptEvent::Reasoning(format!("{line}\n")));
            reasoning.push(line);
        };

        let subj = subject(&input.brief);
        say(
            format!("Subject, from the brief's first sentence: \"{subj}\"."),
            on_event,
        );
        if let Reading::Other(language) = crate::services::language::reading(&input.brief) {
            let language = language
                .map(|l| format!(" (it reads as {l})"))
                .unwrap_or_default();
            flags.push(format!("the brief is not in English{language}; the offline composer does not translate, so the subject keeps the brief's words"));
            say(
                format!(
                    "The brief does not read as English{language}; I cannot translate offline, so the subject keeps its words."
                ),
                on_event,
            );
        }

        // Elements shared by the references, most frequent first (ties: first seen).
        let mut tallies: Vec<ElementTally> = Vec::new();
        for r in &input.references {
            for e in &r.elements {
                match tallies.iter_mut().find(|t| t.name == *e) {
                    Some(t) => t.from.push(r.label.clone()),
                    None => tallies.push(ElementTally {
                        name: e.clone(),
                        from: vec![r.label.clone()],
                    }),
                }
            }
        }
        // A stable sort keeps first-seen order among equal counts.
        tallies.sort_by_key(|t| std::cmp::Reverse(t.from.len()));
        let subj_lower = subj.to_lowercase();
        let chosen: Vec<&ElementTally> = tallies
            .iter()
            .filter(|t| !subj_lower.contains(t.name.as_str()))
            .take(4)
            .collect();
        if input.references.is_empty() {
            say("No references were chosen, so elements, light and colours come from the brief and the objective alone.".into(), on_event);
        } else if chosen.is_empty() {
            say(
                "The references share no elements beyond the subject.".into(),
                on_event,
            );
        } else {
            for t in &chosen {
                say(
                    format!(
                        "Element \"{}\": in {} of {} references ({}).",
                        t.name,
                        t.from.len(),
                        input.references.len(),
                        t.from.join(", ")
                    ),
                    on_event,
                );
            }
        }

        // Brightness 0 means "not recorded" (assets described before it was stored).
        let known: Vec<f32> = input
            .references
            .iter()
            .map(|r| r.brightness)
            .filter(|b| *b > 0.0)
            .collect();
        let lighting = if known.is_empty() {
            "soft natural light".to_string()
        } else {
            let b = known.iter().sum::<f32>() / known.len() as f32;
            let l = if b > 0.62 {
                "bright natural daylight"
            } else if b < 0.32 {
                "low-key, moody lighting"
            } else {
                "soft natural light"
            };
            say(
                format!(
                    "Light: the references average {:.0} % brightness, so \"{l}\".",
                    b * 100.0
                ),
                on_event,
            );
            l.to_string()
        };

        // Colours: the brand's first, then the references' by total share.
        let mut colours: Vec<String> = Vec::new();
        if let Some(b) = &input.brand {
            for hex in &b.palette {
                let h = hex.trim_start_matches('#');
                if let (Ok(r), Ok(g), Ok(bl)) = (
                    u8::from_str_radix(h.get(0..2).unwrap_or("00"), 16),
                    u8::from_str_radix(h.get(2..4).unwrap_or("00"), 16),
                    u8::from_str_radix(h.get(4..6).unwrap_or("00"), 16),
                ) {
                    let name = colour_name([r, g, bl]);
                    if !colours.contains(&name) {
                        colours.push(name);
                    }
                }
            }
            if !colours.is_empty() {
                say(
                    format!(
                        "Colours from the brand kit {}: {}.",
                        b.name,
                        colours.join(", ")
                    ),
                    on_event,
                );
            }
        }
        let mut shares: BTreeMap<String, f32> = BTreeMap::new();
        for r in &input.references {
            for c in &r.palette {
                *shares.entry(c.name.clone()).or_default() += c.share;
            }
        }
        let mut by_share: Vec<(String, f32)> = shares.into_iter().collect();
        by_share.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let from_refs: Vec<String> = by_share
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| !colours.contains(n))
            .take(3usize.saturating_sub(colours.len().min(3)))
            .collect();
        if !from_refs.is_empty() {
            say(
                format!(
                    "Colours the references share most: {}.",
                    from_refs.join(", ")
                ),
                on_event,
            );
            colours.extend(from_refs);
        }

        let (comp, audience) = composition(&input.objective, &input.node);
        say(
            format!(
                "Composition for the objective \"{}\": {comp}.",
                input.objective
            ),
            on_event,
        );
        if !audience.is_empty() {
            say(
                format!("For the audience \"{}\": {audience}.", input.node),
                on_event,
            );
        }

        // Clauses with a priority (0 = kept whatever happens); lower-priority clauses are
        // dropped, last first, until the prompt fits the generator's limit.
        let mut parts: Vec<(u8, String)> = vec![(0, subj.clone())];
        if !chosen.is_empty() {
            parts.push((
                2,
                format!(
                    "with {}",
                    chosen
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        parts.push((3, lighting));
        if !colours.is_empty() {
            parts.push((3, format!("{} colour palette", colours.join(", "))));
        }
        parts.push((4, comp));
        if !audience.is_empty() {
            parts.push((6, audience));
        }
        let mut negative: Vec<String> = vec![BASE_NEGATIVE.to_string()];
        if let Some(b) = &input.brand {
            if !b.must_include.is_empty() {
                parts.push((1, format!("featuring {}", b.must_include.join(", "))));
                say(
                    format!(
                        "The brand kit asks to always show: {}.",
                        b.must_include.join(", ")
                    ),
                    on_event,
                );
            }
            if !b.tone.is_empty() {
                parts.push((5, format!("{} mood", b.tone.join(", "))));
            }
            negative.extend(b.must_avoid.iter().cloned());
            negative.extend(b.negative_terms.iter().cloned());
            if !b.must_avoid.is_empty() || !b.negative_terms.is_empty() {
                say(
                    "What the brand kit avoids goes to the negative prompt, never into the prompt."
                        .into(),
                    on_event,
                );
            }
        }
        if let Some(i) = input
            .instruction
            .as_deref()
            .filter(|i| !i.trim().is_empty())
        {
            parts.push((1, i.trim().trim_end_matches('.').to_string()));
            say(
                format!(
                    "The instruction \"{}\" is added as written (a composer cannot reinterpret it).",
                    i.trim()
                ),
                on_event,
            );
        }
        parts.push((
            7,
            "professional advertising photograph, sharp focus, high detail".into(),
        ));
        let length = |p: &[(u8, String)]| {
            p.iter()
                .map(|(_, t)| t.chars().count() + 2)
                .sum::<usize>()
                .saturating_sub(2)
        };
        let mut dropped = Vec::new();
        while length(&parts) > input.max_chars {
            let Some(i) = (0..parts.len())
                .filter(|&i| parts[i].0 > 0)
                .max_by_key(|&i| (parts[i].0, i))
            else {
                break;
            };
            dropped.push(parts.remove(i).1);
        }
        if !dropped.is_empty() {
            say(
                format!(
                    "To fit {} characters I left out: {}.",
                    input.max_chars,
                    dropped.join("; ")
                ),
                on_event,
            );
            flags.push(format!(
                "left out {} clause(s) to fit {} characters",
                dropped.len(),
                input.max_chars
            ));
        }
        let parts: Vec<String> = parts.into_iter().map(|(_, t)| t).collect();
        let prompt = parts.join(", ");
        for chunk in prompt.split_inclusive(' ') {
            on_event(PromptEvent::Answer(chunk.to_string()));
        }
        Ok(PromptResult {
            reasoning: reasoning.join("\n"),
            prompt,
            negative_prompt: negative.join(", "),
            model: MODEL.into(),
            flags,
            usage: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BrandKit, PaletteColor};
    use crate::services::ReferenceForPrompt;

    fn r(label: &str, elements: &[&str], colour: &str, brightness: f32) -> ReferenceForPrompt {
        ReferenceForPrompt {
            label: label.into(),
            elements: elements.iter().map(|s| s.to_string()).collect(),
            palette: vec![PaletteColor {
                hex: "#000000".into(),
                share: 0.6,
                name: colour.into(),
            }],
            brightness,
            ..Default::default()
        }
    }

    #[test]
    fn composes_from_brief_references_and_brand_with_reasons() {
        let input = PromptInput {
            brief:
                "Launch our new trail running shoe for weekend adventurers. Show mud and energy."
                    .into(),
            objective: "clicks".into(),
            node: "new_customers".into(),
            references: vec![
                r("ref-a", &["person", "dog", "beach"], "blue", 0.8),
                r("ref-b", &["dog", "frisbee"], "blue", 0.7),
            ],
            brand: Some(BrandKit {
                name: "Acme".into(),
                palette: vec!["#ff6600".into()],
                must_avoid: vec!["cigarettes".into()],
                negative_terms: vec!["clutter".into()],
                tone: vec!["energetic".into()],
                ..Default::default()
            }),
            max_chars: 512,
            ..Default::default()
        };
        let mut reasoning = String::new();
        let mut answer = String::new();
        let out = Composer
            .write(&input, &mut |e| match e {
                PromptEvent::Reasoning(t) => reasoning.push_str(&t),
                PromptEvent::Answer(t) => answer.push_str(&t),
            })
            .unwrap();
        assert_eq!(answer, out.prompt);
        assert_eq!(reasoning.trim_end(), out.reasoning);
        assert!(
            out.prompt
                .starts_with("trail running shoe for weekend adventurers, with dog, "),
            "{}",
            out.prompt
        );
        assert!(out.prompt.contains("bright natural daylight"));
        assert!(
            out.prompt.contains("orange, blue colour palette"),
            "{}",
            out.prompt
        );
        assert!(out.prompt.contains("negative space"));
        assert!(!out.prompt.contains("cigarettes"));
        assert!(
            out.negative_prompt.contains("cigarettes") && out.negative_prompt.contains("clutter")
        );
        assert!(
            out.reasoning
                .contains("in 2 of 2 references (ref-a, ref-b)")
        );
        assert!(out.flags.is_empty());
        assert!(out.model.contains("not a language model"));
    }

    #[test]
    fn drops_low_priority_clauses_to_fit_the_limit() {
        let input = PromptInput {
            brief: "A ceramic mug of hot cocoa on a wooden table by a frosty window".into(),
            objective: "clicks".into(),
            node: "followers".into(),
            references: vec![r("ref-a", &["cup", "table"], "brown", 0.5)],
            max_chars: 120,
            ..Default::default()
        };
        let out = Composer.write(&input, &mut |_| {}).unwrap();
        assert!(out.prompt.chars().count() <= 120, "{}", out.prompt);
        assert!(
            out.prompt.starts_with("ceramic mug of hot cocoa"),
            "{}",
            out.prompt
        );
        assert!(out.flags[0].starts_with("left out"), "{:?}", out.flags);
    }

    #[test]
    fn spanish_briefs_are_flagged_not_pretended() {
        let out = Composer
            .write(
                &PromptInput {
                    brief: "Lanzamiento de la nueva cafetera para las familias".into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    max_chars: 512,
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(out.flags.len(), 1);
        assert!(
            out.flags[0].contains("not in English (it reads as Spanish)"),
            "{:?}",
            out.flags
        );
    }
}
