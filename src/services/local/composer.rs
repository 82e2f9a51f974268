//! The offline prompt writer: a deterministic composer, not a language model. It builds the
//! prompt from the brief (subject), the chosen references (elements, light, colours), the
//! campaign objective and audience (composition), and the brand kit, and explains each choice
//! in its scratchpad, citing the references it used. It does not translate: a brief that is
//! not in English is flagged, or, where Apertium is installed, given to it as its English
//! translation (`PromptInput::translated_from`, said in the scratchpad and a flag).
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

/// Asks the way a translation words them, as nouns and gerunds ("Launching of the new coffee
/// maker", from "Lanzamiento de la nueva cafetera"): skipped in a translated brief only, where
/// they cannot be the subject ("Present wrapped in red ribbon" can, in an English one).
const TRANSLATED_ASK_WORDS: [&str; 8] = [
    "launching",
    "promoting",
    "announcing",
    "introducing",
    "advertising",
    "presenting",
    "presentation",
    "promotion",
];

pub struct Composer;

/// An element and the references it appears in.
struct ElementTally {
    name: String,
    from: Vec<String>,
}

/// A word's singular for comparing elements ("skis" -> "ski", "glasses" -> "glass", "boxes"
/// -> "box"): only the plural endings ImageNet and COCO labels use; anything else as it is.
fn singular(word: &str) -> &str {
    if ["sses", "xes", "ches", "shes"]
        .iter()
        .any(|end| word.ends_with(end))
    {
        return &word[..word.len() - 2]; // the endings are ASCII
    }
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') && !stem.ends_with("u") => stem,
        _ => word,
    }
}

/// An element's words, lower case and singular ("Tennis Rackets" -> ["tennis", "racket"]).
fn words_of(name: &str) -> Vec<String> {
    name.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| singular(w).to_string())
        .collect()
}

/// Why element `a` is dropped in favour of `b`, if it is: the same words in another number
/// ("ski" and "skis"), or a more general name inside a more specific one ("racket" in "tennis
/// racket": the longer name keeps, since it says more).
fn covered_by(a: &str, b: &str) -> Option<&'static str> {
    let (wa, wb) = (words_of(a), words_of(b));
    if wa.is_empty() || wb.is_empty() {
        return None;
    }
    if wa == wb {
        return Some("the same thing");
    }
    if wa.len() < wb.len() && wb.ends_with(&wa) {
        return Some("a more general name for it");
    }
    None
}

/// The references' elements with duplicates merged: each tally keeps every reference of the
/// elements it absorbed; an element is absorbed by an earlier one naming the same thing, and a
/// general name by a specific one wherever each stands. Returns the merged tallies (in their
/// order) and a line per absorbed element for the scratchpad.
fn merge_elements(tallies: Vec<ElementTally>) -> (Vec<ElementTally>, Vec<String>) {
    let mut kept: Vec<ElementTally> = Vec::new();
    let mut notes = Vec::new();
    for t in tallies {
        if let Some((k, why)) = kept
            .iter_mut()
            .find_map(|k| covered_by(&t.name, &k.name).map(|why| (k, why)))
        {
            notes.push(format!("\"{}\" merged into \"{}\" ({why})", t.name, k.name));
            for f in t.from {
                if !k.from.contains(&f) {
                    k.from.push(f);
                }
            }
            continue;
        }
        // A specific name arriving after a general one takes its place.
        if let Some(i) = kept
            .iter()
            .position(|k| covered_by(&k.name, &t.name).is_some())
        {
            let general = kept.remove(i);
            notes.push(format!(
                "\"{}\" merged into \"{}\" (a more general name for it)",
                general.name, t.name
            ));
            let mut t = t;
            for f in general.from {
                if !t.from.contains(&f) {
                    t.from.push(f);
                }
            }
            kept.insert(i, t);
            continue;
        }
        kept.push(t);
    }
    (kept, notes)
}

/// A colour name and its share of the references' colour, in percent.
type Shade = (String, f32);

/// A colour's family: its hue without "dark"/"light", and every grey one family.
fn colour_family(name: &str) -> &str {
    name.strip_prefix("dark ")
        .or_else(|| name.strip_prefix("light "))
        .unwrap_or(name)
}

/// The references' colours as a designer names a palette: the families (hues, greys as one)
/// by total share, each named by its largest member ("light grey" for a light-grey-led grey
/// family), the first the dominant colour and the next two with at least 5 % of the total as
/// accents; families the brand kit's colours already name are left to the brand. Returns
/// (dominant, accents) with their shares of the total, in percent.
fn palette_of(
    references: &[crate::services::ReferenceForPrompt],
    brand: &[String],
) -> Option<(Shade, Vec<Shade>)> {
    // family -> (share, member -> share)
    let mut families: BTreeMap<String, (f32, BTreeMap<String, f32>)> = BTreeMap::new();
    let mut total = 0f32;
    for r in references {
        for c in &r.palette {
            if !(c.share.is_finite() && c.share > 0.0) {
                continue;
            }
            total += c.share;
            let f = families
                .entry(colour_family(&c.name).to_string())
                .or_default();
            f.0 += c.share;
            *f.1.entry(c.name.clone()).or_default() += c.share;
        }
    }
    let brand_families: Vec<&str> = brand.iter().map(|b| colour_family(b)).collect();
    let mut named: Vec<(String, f32)> = families
        .into_iter()
        .filter(|(f, _)| !brand_families.contains(&f.as_str()))
        .map(|(_, (share, members))| {
            let lead = members
                .into_iter()
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                .map(|(m, _)| m)
                .unwrap_or_default();
            (lead, share)
        })
        .collect();
    if total <= 0.0 || named.is_empty() {
        return None;
    }
    named.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let pct = |s: f32| 100.0 * s / total;
    let mut it = named.into_iter();
    let (dominant, share) = it.next()?;
    let accents = it
        .filter(|(_, s)| pct(*s) >= 5.0)
        .take(2)
        .map(|(n, s)| (n, pct(s)))
        .collect();
    Some(((dominant, pct(share)), accents))
}

/// "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Last words of a heading that names the campaign rather than the picture ("Summer cycling
/// campaign: ...").
const CAMPAIGN_NOUNS: [&str; 10] = [
    "campaign",
    "campaigns",
    "ad",
    "ads",
    "advert",
    "advertisement",
    "promo",
    "promotion",
    "teaser",
    "announcement",
];

/// Words that join a leading campaign noun to its theme ("Campaign of summer cycling").
const THEME_JOINS: [&str; 6] = ["of", "for", "the", "a", "an", "to"];

/// A first sentence "HEADING: picture" whose heading (at most six words) ends in a campaign
/// noun ("Summer cycling campaign"): (the heading, its theme words, the picture). In a brief
/// translated from Spanish (`translated`) the noun comes first, as Spanish puts it ("Campaign
/// of cycling of summer", from "Campaña de ciclismo de verano"); an English heading that starts
/// with one ("Campaign for Instagram: three square posts") says what the picture is for, and
/// stays.
fn campaign_heading(first: &str, translated: bool) -> Option<(&str, String, &str)> {
    let (head, rest) = first.split_once(':')?;
    let words: Vec<&str> = head.split_whitespace().collect();
    if words.len() > 6 || rest.trim().is_empty() {
        return None;
    }
    let noun = |w: &&str| CAMPAIGN_NOUNS.contains(&w.to_lowercase().as_str());
    let join = |w: &&str| THEME_JOINS.contains(&w.to_lowercase().as_str());
    let theme: Vec<&str> = match words.as_slice() {
        [first, next, ..] if translated && noun(first) && join(next) => {
            // The words between the noun and the colon, without joining words or a second
            // campaign noun at either end ("of the summer promotion" → "summer").
            let mut t = &words[1..];
            while let [w, tail @ ..] = t
                && (join(w) || noun(w))
            {
                t = tail;
            }
            while let [init @ .., w] = t
                && (join(w) || noun(w))
            {
                t = init;
            }
            t.to_vec()
        }
        [init @ .., last] if noun(last) => init.to_vec(),
        _ => return None,
    };
    Some((head.trim(), theme.join(" ").to_lowercase(), rest.trim()))
}

/// The brief's first sentence without the leading "launch our ..." words; a heading that names
/// the campaign ("Summer cycling campaign: ...") gives way to the picture it introduces, with
/// its theme words after it ("..., summer cycling"). Returns the subject and the heading, if
/// one was moved.
fn subject(brief: &str, translated: bool) -> (String, Option<String>) {
    let first = brief
        .split(['.', '!', '?', '\n'])
        .map(str::trim)
        .find(|s| !s.is_empty())
        .unwrap_or(brief)
        .to_string();
    let (first, theme, heading) = match campaign_heading(&first, translated) {
        Some((heading, theme, rest)) => (rest.to_string(), theme, Some(heading.to_string())),
        None => (first.clone(), String::new(), None),
    };
    let words: Vec<&str> = first.split_whitespace().collect();
    // "of" joins an ask to what it asks for ("Launch of our new shoe"), so it is skipped only
    // after one ("Of course, ..." keeps its words).
    let skip = words
        .iter()
        .enumerate()
        .take_while(|(i, w)| {
            let w = w.to_lowercase();
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            ASK_WORDS.contains(&w)
                || (translated && TRANSLATED_ASK_WORDS.contains(&w))
                || (*i > 0 && w == "of")
        })
        .count();
    let rest = if skip < words.len() {
        &words[skip..]
    } else {
        &words[..]
    };
    let s = rest.join(" ");
    let s: String = s.chars().take(160).collect();
    let s = s.trim_end_matches([',', ';', ':']).to_string();
    if theme.is_empty() {
        (s, heading)
    } else {
        (format!("{s}, {theme}"), heading)
    }
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

    fn wants_element_fit(&self) -> bool {
        true
    }

    /// It cannot translate: a brief in another language is better given as its translation.
    fn wants_english_brief(&self) -> bool {
        true
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

        if let Some(t) = &input.translated_from {
            flags.push(format!(
                "the brief was translated from {} by {} (a rule-based translator): check the subject",
                t.from, t.by
            ));
            say(
                format!(
                    "The brief reads as {}; {} translated it, and the subject comes from the translation: \"{}\".",
                    t.from, t.by, t.text
                ),
                on_event,
            );
        }
        let (subj, heading) = subject(&input.brief, input.translated_from.is_some());
        say(
            format!("Subject, from the brief's first sentence: \"{subj}\"."),
            on_event,
        );
        if let Some(h) = heading {
            say(
                format!(
                    "The heading \"{h}\" names the campaign, not the picture: the picture leads and the heading's theme words follow it."
                ),
                on_event,
            );
        }
        if input.translated_from.is_none()
            && let Reading::Other(language) = crate::services::language::reading(&input.brief)
        {
            let language = language
                .map(|l| format!(" (it reads as {l})"))
                .unwrap_or_default();
            // Why a wanted translation was not made, when one was wanted.
            let (flag, said) = match &input.not_translated {
                Some(why) => {
                    let why = format!(" and was not translated ({why})");
                    (why.clone(), why)
                }
                None => (
                    "; the offline composer does not translate".to_string(),
                    "; I cannot translate offline".to_string(),
                ),
            };
            flags.push(format!(
                "the brief is not in English{language}{flag}, so the subject keeps the brief's words"
            ));
            say(
                format!(
                    "The brief does not read as English{language}{said}, so the subject keeps its words."
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
        let (mut tallies, merged) = merge_elements(tallies);
        if !merged.is_empty() {
            say(
                format!("Reference elements merged: {}.", merged.join("; ")),
                on_event,
            );
        }
        // A stable sort keeps first-seen order among equal counts.
        tallies.sort_by_key(|t| std::cmp::Reverse(t.from.len()));
        let subj_lower = subj.to_lowercase();
        // Objects come from the brief; a reference's element joins only when the brief's
        // meaning supports it (its fit, by the text embedder, reaches the measured threshold).
        let mut chosen: Vec<&ElementTally> = Vec::new();
        let mut left_out: Vec<String> = Vec::new();
        for t in tallies
            .iter()
            .filter(|t| !subj_lower.contains(t.name.as_str()))
        {
            match &input.element_fit {
                None => chosen.push(t),
                Some(fit) => match fit.score(&t.name) {
                    Some(z) if z >= fit.threshold => chosen.push(t),
                    Some(z) => left_out.push(format!(
                        "\"{}\" ({}; fit {z:.2})",
                        t.name,
                        t.from.join(", ")
                    )),
                    None => left_out.push(format!(
                        "\"{}\" ({}; not measured)",
                        t.name,
                        t.from.join(", ")
                    )),
                },
            }
        }
        chosen.truncate(4);
        if let Some(fit) = &input.element_fit {
            if !left_out.is_empty() {
                say(
                    format!(
                        "Left out reference elements the brief does not call for (fit below {:.1}, by {}): {}. From those references I keep what carries across subjects: light, palette and composition.",
                        fit.threshold,
                        fit.embedder,
                        left_out.join(", ")
                    ),
                    on_event,
                );
            }
        } else if tallies
            .iter()
            .any(|t| !subj_lower.contains(t.name.as_str()))
        {
            say(
                "I could not check the references' elements against the brief (the library's text embedder has no measured threshold for it, or could not judge this brief), so they are kept as the references show them.".into(),
                on_event,
            );
        }
        if input.references.is_empty() {
            say("No references were chosen, so elements, light and colours come from the brief and the objective alone.".into(), on_event);
        } else if chosen.is_empty() && !left_out.is_empty() {
            say(
                "No reference element fits the brief beyond its subject, so the objects are the brief's alone.".into(),
                on_event,
            );
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
        let palette = palette_of(&input.references, &colours);
        if let Some(((dominant, share), accents)) = &palette {
            let accents_said = if accents.is_empty() {
                "no other colour over 5 %".to_string()
            } else {
                accents
                    .iter()
                    .map(|(n, p)| format!("{n} ({p:.0} %)"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + " as accents"
            };
            say(
                format!(
                    "Palette of the references: mostly {dominant} ({share:.0} % of their colour, shades of one hue counted together), {accents_said}."
                ),
                on_event,
            );
        }
        let palette_clause = {
            let refs = palette.map(|((dominant, _), accents)| {
                let accents: Vec<String> = accents.into_iter().map(|(n, _)| n).collect();
                if accents.is_empty() {
                    format!("{dominant} palette")
                } else {
                    format!("{dominant} palette with {} accents", and_list(&accents))
                }
            });
            match (colours.is_empty(), refs) {
                (true, None) => None,
                (true, Some(r)) => Some(r),
                (false, refs) => {
                    let noun = if colours.len() == 1 {
                        "colour"
                    } else {
                        "colours"
                    };
                    let brand = format!("{} brand {noun}", and_list(&colours));
                    Some(match refs {
                        Some(r) => format!("{brand} over a {r}"),
                        None => brand,
                    })
                }
            }
        };

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
        if let Some(p) = palette_clause {
            parts.push((3, p));
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
            out.prompt
                .contains("orange brand colour over a blue palette"),
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

    fn compose(references: Vec<ReferenceForPrompt>) -> PromptResult {
        Composer
            .write(
                &PromptInput {
                    brief: "A cheerful summer scene in the city".into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    references,
                    max_chars: 512,
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap()
    }

    /// The elements the prompt's "with ..." clause lists.
    fn listed(prompt: &str) -> Vec<String> {
        prompt
            .split(", ")
            .skip_while(|p| !p.starts_with("with "))
            .take_while(|p| !p.contains("light") && !p.contains("palette"))
            .map(|p| p.trim_start_matches("with ").to_string())
            .collect()
    }

    #[test]
    fn words_borrowed_from_similar_photos_never_reach_the_composed_prompt() {
        let mut raw = r("ref-raw", &["bicycle"], "blue", 0.5);
        raw.inferred = vec!["zebra".into(), "giraffe".into()];
        let out = compose(vec![raw]);
        assert!(
            !out.prompt.contains("zebra") && !out.prompt.contains("giraffe"),
            "{}",
            out.prompt
        );
    }

    #[test]
    fn an_element_and_its_plural_are_listed_once() {
        let out = compose(vec![
            r("ref-a", &["ski", "person"], "blue", 0.5),
            r("ref-b", &["skis"], "blue", 0.5),
        ]);
        let l = listed(&out.prompt);
        assert_eq!(
            l.iter().filter(|e| e.starts_with("ski")).count(),
            1,
            "{}",
            out.prompt
        );
        assert!(
            out.reasoning.contains("\"skis\" merged into \"ski\""),
            "{}",
            out.reasoning
        );
    }

    #[test]
    fn a_general_name_gives_way_to_the_specific_one_in_either_order() {
        for order in [["racket", "tennis racket"], ["tennis racket", "racket"]] {
            let out = compose(vec![
                r("ref-a", &[order[0]], "green", 0.5),
                r("ref-b", &[order[1]], "green", 0.5),
            ]);
            assert_eq!(listed(&out.prompt), vec!["tennis racket"], "{}", out.prompt);
            assert!(
                out.reasoning.contains("(a more general name for it)"),
                "{}",
                out.reasoning
            );
        }
    }

    fn fit(scores: &[(&str, f32)]) -> crate::services::element_fit::ElementFit {
        crate::services::element_fit::ElementFit {
            embedder: "test/embedder".into(),
            threshold: 2.4,
            scores: scores.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    fn cycling(
        references: Vec<ReferenceForPrompt>,
        element_fit: Option<crate::services::element_fit::ElementFit>,
    ) -> PromptResult {
        Composer
            .write(
                &PromptInput {
                    brief: "Summer cycling campaign: young people riding bikes in the city on a sunny day".into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    references,
                    max_chars: 512,
                    element_fit,
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap()
    }

    #[test]
    fn reference_elements_below_the_fit_threshold_stay_out_of_the_prompt() {
        let out = cycling(
            vec![r("skier-1", &["person", "skis", "alp"], "white", 0.8)],
            Some(fit(&[("person", 2.6), ("skis", 0.4), ("alp", -0.3)])),
        );
        assert_eq!(listed(&out.prompt), vec!["person"], "{}", out.prompt);
    }

    #[test]
    fn the_scratchpad_names_each_element_left_out_with_its_reference_and_fit() {
        let out = cycling(
            vec![r("skier-1", &["skis", "alp"], "white", 0.8)],
            Some(fit(&[("skis", 0.4), ("alp", -0.3)])),
        );
        assert!(
            out.reasoning.contains(
                "Left out reference elements the brief does not call for (fit below 2.4, by test/embedder): \"skis\" (skier-1; fit 0.40), \"alp\" (skier-1; fit -0.30)"
            ),
            "{}",
            out.reasoning
        );
        assert!(listed(&out.prompt).is_empty(), "{}", out.prompt);
    }

    #[test]
    fn an_element_without_a_measured_fit_is_left_out_when_fits_were_measured() {
        let out = cycling(
            vec![r("ref-a", &["bicycle", "helmet"], "red", 0.7)],
            Some(fit(&[("bicycle", 4.0)])),
        );
        assert_eq!(listed(&out.prompt), vec!["bicycle"], "{}", out.prompt);
        assert!(out.reasoning.contains("\"helmet\" (ref-a; not measured)"));
    }

    #[test]
    fn without_a_fit_the_scratchpad_says_elements_were_not_checked() {
        let out = cycling(vec![r("skier-1", &["skis"], "white", 0.8)], None);
        assert_eq!(listed(&out.prompt), vec!["skis"], "{}", out.prompt);
        assert!(
            out.reasoning
                .contains("I could not check the references' elements against the brief"),
            "{}",
            out.reasoning
        );
    }

    #[test]
    fn a_campaign_heading_gives_way_to_the_picture_with_its_theme_after() {
        let (s, heading) = subject(
            "Summer cycling campaign: young people riding bikes in the city on a sunny day. More text.",
            false,
        );
        assert_eq!(
            s,
            "young people riding bikes in the city on a sunny day, summer cycling"
        );
        assert_eq!(heading.as_deref(), Some("Summer cycling campaign"));
    }

    #[test]
    fn a_heading_that_names_the_picture_stays() {
        let (s, heading) = subject("Coffee shop: a cosy morning espresso by the window", false);
        assert_eq!(s, "Coffee shop: a cosy morning espresso by the window");
        assert_eq!(heading, None);
    }

    #[test]
    fn a_translated_heading_that_starts_with_the_campaign_noun_gives_way_to_the_picture() {
        let (s, heading) = subject(
            "Campaign of cycling of summer: youngsters mounting in bicycle by the city in a sunny day",
            true,
        );
        assert_eq!(
            s,
            "youngsters mounting in bicycle by the city in a sunny day, cycling of summer"
        );
        assert_eq!(heading.as_deref(), Some("Campaign of cycling of summer"));
    }

    #[test]
    fn a_translated_heading_drops_joining_words_and_a_second_campaign_noun_from_its_theme() {
        let (s, _) = subject("Campaign of the summer promotion: a beach at noon", true);
        // The leading "a" goes with the ask words, as in any subject.
        assert_eq!(s, "beach at noon, summer");
    }

    #[test]
    fn an_english_heading_that_starts_with_a_campaign_noun_is_not_moved_after_the_picture() {
        // Only the leading ask words go ("Campaign for"), as before headings were moved.
        let (s, heading) = subject("Campaign for Instagram: three square posts", false);
        assert_eq!(s, "Instagram: three square posts");
        assert_eq!(heading, None);
    }

    #[test]
    fn a_heading_that_starts_with_a_campaign_noun_but_no_joining_word_stays() {
        let (s, heading) = subject("Ad agency life: a team around a table", true);
        assert_eq!(s, "Ad agency life: a team around a table");
        assert_eq!(heading, None);
    }

    #[test]
    fn a_translated_launch_gives_way_to_what_is_launched() {
        let (s, _) = subject("Launching of the new coffee maker for the families", true);
        assert_eq!(s, "coffee maker for the families");
    }

    #[test]
    fn an_english_brief_opening_with_of_keeps_its_words() {
        let (s, _) = subject("Of course, families love picnics", false);
        assert_eq!(s, "Of course, families love picnics");
    }

    #[test]
    fn an_english_present_is_a_subject_not_an_ask() {
        let (s, _) = subject("Present wrapped in red ribbon under the tree", false);
        assert_eq!(s, "Present wrapped in red ribbon under the tree");
    }

    #[test]
    fn an_english_launch_of_gives_way_to_what_is_launched() {
        let (s, _) = subject("Launch of our new trail running shoe", false);
        assert_eq!(s, "trail running shoe");
    }

    #[test]
    fn a_bare_campaign_heading_leaves_no_theme() {
        let (s, _) = subject("Campaign: launch our new trail running shoe", false);
        assert_eq!(s, "trail running shoe");
    }

    #[test]
    fn merged_elements_count_every_reference_they_came_from() {
        let out = compose(vec![
            r("ref-a", &["dog"], "green", 0.5),
            r("ref-b", &["dogs"], "green", 0.5),
        ]);
        assert!(
            out.reasoning
                .contains("in 2 of 2 references (ref-a, ref-b)"),
            "{}",
            out.reasoning
        );
    }

    #[test]
    fn no_prompt_lists_a_duplicate_or_a_general_name_beside_a_specific_one() {
        // Every pair of reference sets drawn from names with plurals and compounds.
        let names = [
            "ski",
            "skis",
            "racket",
            "tennis racket",
            "tennis rackets",
            "ball",
            "tennis ball",
            "balls",
            "glass",
            "wine glass",
            "glasses",
            "bench",
            "benches",
            "dog",
            "dogs",
            "box",
            "boxes",
            "bus",
            "person",
        ];
        // An independent check: lower case, a trailing "es"/"s" dropped from each word.
        let norm = |n: &str| -> Vec<String> {
            n.split(' ')
                .map(|w| {
                    let w = if w.ends_with("ches") || w.ends_with("xes") || w.ends_with("sses") {
                        &w[..w.len() - 2]
                    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") && w != "bus" {
                        &w[..w.len() - 1]
                    } else {
                        w
                    };
                    w.to_string()
                })
                .collect()
        };
        for (i, a) in names.iter().enumerate() {
            for b in names.iter().skip(i + 1) {
                for c in names.iter().rev().take(4) {
                    let out = compose(vec![
                        r("ref-a", &[*a, *c], "red", 0.5),
                        r("ref-b", &[*b], "red", 0.5),
                    ]);
                    let l = listed(&out.prompt);
                    for (x, ex) in l.iter().enumerate() {
                        for ey in l.iter().skip(x + 1) {
                            let (nx, ny) = (norm(ex), norm(ey));
                            let clash = nx == ny
                                || (nx.len() < ny.len() && ny.ends_with(&nx))
                                || (ny.len() < nx.len() && nx.ends_with(&ny));
                            assert!(!clash, "\"{ex}\" beside \"{ey}\" in {}", out.prompt);
                        }
                    }
                }
            }
        }
    }

    fn with_palette(label: &str, colours: &[(&str, f32)]) -> ReferenceForPrompt {
        ReferenceForPrompt {
            label: label.into(),
            palette: colours
                .iter()
                .map(|(n, s)| PaletteColor {
                    hex: "#000000".into(),
                    share: *s,
                    name: (*n).into(),
                })
                .collect(),
            brightness: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn shades_of_grey_make_one_dominant_colour_not_a_list_of_greys() {
        let out = compose(vec![
            with_palette(
                "a",
                &[("light grey", 0.35), ("dark grey", 0.2), ("blue", 0.1)],
            ),
            with_palette("b", &[("grey", 0.15), ("light grey", 0.1), ("orange", 0.1)]),
        ]);
        assert!(
            out.prompt
                .contains("light grey palette with blue and orange accents"),
            "{}",
            out.prompt
        );
        assert!(!out.prompt.contains("dark grey"), "{}", out.prompt);
        assert!(
            out.reasoning.contains("mostly light grey (80 %"),
            "{}",
            out.reasoning
        );
    }

    #[test]
    fn colours_under_five_percent_are_not_accents() {
        let out = compose(vec![with_palette(
            "a",
            &[("teal", 0.7), ("yellow", 0.27), ("pink", 0.03)],
        )]);
        assert!(
            out.prompt.contains("teal palette with yellow accents"),
            "{}",
            out.prompt
        );
        assert!(!out.prompt.contains("pink"), "{}", out.prompt);
    }

    #[test]
    fn brand_colours_come_first_and_are_not_repeated_as_accents() {
        let out = Composer
            .write(
                &PromptInput {
                    brief: "A cheerful summer scene in the city".into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    references: vec![with_palette(
                        "a",
                        &[("blue", 0.5), ("dark orange", 0.3), ("white", 0.2)],
                    )],
                    brand: Some(BrandKit {
                        name: "Acme".into(),
                        palette: vec!["#ff6600".into()],
                        ..Default::default()
                    }),
                    max_chars: 512,
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap();
        assert!(
            out.prompt
                .contains("orange brand colour over a blue palette with white accents"),
            "{}",
            out.prompt
        );
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

    #[test]
    fn a_spanish_brief_left_untranslated_says_why() {
        let out = Composer
            .write(
                &PromptInput {
                    brief: "Lanzamiento de la nueva cafetera para las familias".into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    max_chars: 512,
                    not_translated: Some(
                        "Apertium is not installed: apt-get install apertium apertium-eng-spa"
                            .into(),
                    ),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap();
        assert!(
            out.flags[0].contains("was not translated (Apertium is not installed"),
            "{:?}",
            out.flags
        );
    }

    /// The composer's answer for `brief`, translated from Spanish (`PromptInput::translated_from`).
    fn translated(brief: &str) -> PromptResult {
        Composer
            .write(
                &PromptInput {
                    brief: brief.into(),
                    objective: "likes".into(),
                    node: "followers".into(),
                    max_chars: 512,
                    translated_from: Some(crate::services::translate::Translation {
                        from: "Spanish".into(),
                        by: "Apertium spa-eng".into(),
                        text: brief.into(),
                    }),
                    ..Default::default()
                },
                &mut |_| {},
            )
            .unwrap()
    }

    #[test]
    fn a_translated_brief_is_said_in_the_scratchpad_before_its_subject() {
        let out = translated("Launch of the new coffee maker for families");
        let said = out.reasoning.find("Apertium spa-eng translated it");
        let subject = out.reasoning.find("Subject, from the brief");
        assert!(said.is_some() && said < subject, "{}", out.reasoning);
    }

    #[test]
    fn a_translated_brief_is_flagged_for_checking() {
        let out = translated("Launch of the new coffee maker for families");
        assert_eq!(out.flags.len(), 1, "{:?}", out.flags);
        assert!(
            out.flags[0].contains("translated from Spanish") && out.flags[0].contains("check"),
            "{:?}",
            out.flags
        );
    }

    #[test]
    fn a_translated_brief_s_heading_gives_way_to_the_picture_in_the_prompt() {
        let out =
            translated("Campaign of cycling of summer: youngsters riding bicycles in the city");
        assert!(
            out.prompt
                .starts_with("youngsters riding bicycles in the city, cycling of summer"),
            "{}",
            out.prompt
        );
    }
}
