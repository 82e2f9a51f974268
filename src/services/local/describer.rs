//! The offline describer. No captioning model exists in any registry package, so the
//! description is the asset's own human text (manifest caption or description, campaign name)
//! plus image-classifier labels, dominant colours and simple facts, and it says which part came
//! from where. It never invents a caption.
use crate::Result;
use crate::domain::{Description, DescriptionSources};
use crate::services::{DescribeInput, Describer};

pub struct LocalDescriber {
    /// Model labels below this probability are not used as elements.
    pub min_prob: f32,
}

fn sentence(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() || t.ends_with(['.', '!', '?']) {
        t.to_string()
    } else {
        format!("{t}.")
    }
}

/// Whether the description says "likely shows people": only for a photo without a human caption,
/// description or labels (their words say it better; a campaign name alone does not say who is
/// in the photo), and only at or above the score's threshold.
fn says_people(input: &DescribeInput) -> Option<f32> {
    let human = [&input.caption, &input.human_description]
        .iter()
        .any(|t| t.as_deref().is_some_and(|t| !t.trim().is_empty()))
        || !input.human_labels.is_empty();
    input
        .people
        .filter(|p| !human && *p >= crate::services::local::people::threshold())
}

impl LocalDescriber {
    fn confident_labels<'a>(&self, input: &'a DescribeInput) -> impl Iterator<Item = &'a str> {
        let min = self.min_prob;
        input
            .model_labels
            .iter()
            .filter(move |l| l.prob >= min)
            .map(|l| l.name.as_str())
    }

    /// The text the library's text embedder indexes for this asset (recipe "desc-v1+kinds+labels-v1",
    /// `engine::ingest::DOC_RECIPE`): human text
    /// first, then elements, the kinds of the classifier's labels and colours, so text search
    /// over descriptions finds it.
    pub fn document(&self, input: &DescribeInput, d: &Description) -> String {
        let mut parts = Vec::new();
        if let Some(c) = input.caption.as_deref().filter(|c| !c.trim().is_empty()) {
            parts.push(sentence(c));
        }
        if let Some(c) = input
            .human_description
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            parts.push(sentence(c));
        }
        if let Some(c) = input.campaign.as_deref().filter(|c| !c.trim().is_empty()) {
            parts.push(format!("Campaign: {}", sentence(c)));
        }
        if !d.elements.is_empty() {
            parts.push(format!("Shows {}.", d.elements.join(", ")));
        }
        let kinds = self.kinds(input, &d.elements);
        if !kinds.is_empty() {
            parts.push(format!("Kinds: {}.", kinds.join(", ")));
        }
        let colours = colour_names(&d.palette);
        if !colours.is_empty() {
            parts.push(format!("Colours: {}.", colours.join(", ")));
        }
        parts.join(" ")
    }

    /// The WordNet kinds of the confident classifier labels ("dog, domestic animal" for a
    /// golden retriever), most probable label first, each once, none that is already an element.
    pub fn kinds(&self, input: &DescribeInput, elements: &[String]) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for label in self.confident_labels(input) {
            for k in crate::services::local::kinds::kinds_of(label) {
                if !out.contains(&k.as_str()) && !elements.iter().any(|e| e == k) {
                    out.push(k);
                }
            }
        }
        out
    }
}

impl Describer for LocalDescriber {
    fn describe(&self, input: &DescribeInput) -> Result<Description> {
        let mut sources = DescriptionSources::default();
        let mut text = Vec::new();
        if let Some(c) = input.caption.as_deref().filter(|c| !c.trim().is_empty()) {
            text.push(sentence(c));
            sources.text.push("manifest caption".into());
        }
        if let Some(c) = input
            .human_description
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            text.push(sentence(c));
            sources.text.push(
                input
                    .description_source
                    .clone()
                    .unwrap_or_else(|| "manifest description".into()),
            );
        }
        if let Some(c) = input.campaign.as_deref().filter(|c| !c.trim().is_empty()) {
            text.push(format!("From the campaign {}", sentence(c)));
            sources.text.push("campaign name".into());
        }
        let labels: Vec<&str> = self.confident_labels(input).collect();
        if text.is_empty() && !input.human_labels.is_empty() {
            text.push(format!(
                "Labelled by people: {}.",
                input.human_labels.join(", ")
            ));
            sources.text.push("manifest labels".into());
        }
        if text.is_empty() || (sources.text == ["manifest labels"] && !labels.is_empty()) {
            if labels.is_empty() {
                text.push(
                    "No human description; the image classifier is unsure what it shows.".into(),
                );
            } else {
                text.push(format!("Image classifier labels: {}.", labels.join(", ")));
            }
        }
        if let Some(p) = says_people(input) {
            text.push(format!("Likely shows people (score {p:.2})."));
        }
        let orientation = match input.width.cmp(&input.height) {
            std::cmp::Ordering::Greater => "landscape",
            std::cmp::Ordering::Less => "portrait",
            std::cmp::Ordering::Equal => "square",
        };
        let light = match input.brightness {
            b if b < 0.3 => "dark",
            b if b > 0.65 => "bright",
            _ => "medium brightness",
        };
        let colours = colour_names(&input.palette);
        let mut facts = format!("{orientation}, {light}");
        if !colours.is_empty() {
            facts.push_str(&format!("; dominant colours {}", colours.join(", ")));
        }
        text.push(format!("{}.", upper_first(&facts)));

        let mut elements: Vec<String> = Vec::new();
        let mut push = |e: &str| {
            let e = e.trim().to_lowercase();
            if !e.is_empty() && !elements.contains(&e) {
                elements.push(e);
            }
        };
        if !input.human_labels.is_empty() {
            input.human_labels.iter().for_each(|l| push(l));
            sources.elements.push(
                input
                    .description_source
                    .clone()
                    .unwrap_or_else(|| "manifest labels".into()),
            );
        }
        if !labels.is_empty() {
            labels.iter().for_each(|l| push(l));
            sources
                .elements
                .push("EfficientNet-Lite0 ImageNet labels (image classifier)".into());
        }
        sources.palette = "k-means over the image's pixels".into();
        if input.people.is_some() {
            sources.people = crate::services::local::people::source();
        }
        Ok(Description {
            description: text.join(" "),
            elements,
            palette: input.palette.clone(),
            brightness: input.brightness,
            people: input.people,
            sources,
            inferred: None,
        })
    }
}

/// Up to three distinct colour names, most dominant first.
fn colour_names(palette: &[crate::domain::PaletteColor]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for c in palette {
        if !out.contains(&c.name.as_str()) && out.len() < 3 {
            out.push(&c.name);
        }
    }
    out
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Label, PaletteColor};

    fn input() -> DescribeInput {
        DescribeInput {
            caption: Some("A dog catches a frisbee on the beach".into()),
            campaign: None,
            human_labels: vec!["dog".into(), "Frisbee".into()],
            model_labels: vec![
                Label {
                    name: "golden retriever".into(),
                    prob: 0.6,
                },
                Label {
                    name: "seashore".into(),
                    prob: 0.05,
                },
            ],
            palette: vec![PaletteColor {
                hex: "#3050c0".into(),
                share: 0.5,
                name: "blue".into(),
            }],
            width: 640,
            height: 480,
            brightness: 0.7,
            ..Default::default()
        }
    }

    #[test]
    fn human_text_first_labels_as_elements_sources_named() {
        let d = LocalDescriber { min_prob: 0.15 }
            .describe(&input())
            .unwrap();
        assert!(
            d.description
                .starts_with("A dog catches a frisbee on the beach.")
        );
        assert!(
            d.description
                .contains("Landscape, bright; dominant colours blue.")
        );
        assert_eq!(d.elements, vec!["dog", "frisbee", "golden retriever"]);
        assert_eq!(d.sources.text, vec!["manifest caption"]);
        assert_eq!(d.sources.elements.len(), 2);
    }

    #[test]
    fn without_human_text_it_says_labels_not_caption() {
        let mut i = input();
        i.caption = None;
        i.human_labels.clear();
        let desc = LocalDescriber { min_prob: 0.15 };
        let d = desc.describe(&i).unwrap();
        assert!(
            d.description
                .starts_with("Image classifier labels: golden retriever."),
            "{}",
            d.description
        );
        assert!(d.sources.text.is_empty());
        let doc = desc.document(&i, &d);
        assert_eq!(
            doc,
            "Shows golden retriever. Kinds: dog, domestic animal, animal, mammal. Colours: blue."
        );
    }

    fn raw(people: Option<f32>) -> DescribeInput {
        let mut i = input();
        i.caption = None;
        i.human_labels.clear();
        i.people = people;
        i
    }

    #[test]
    fn a_photo_nobody_described_says_likely_people_with_its_score() {
        let t = crate::services::local::people::threshold();
        let desc = LocalDescriber { min_prob: 0.15 };
        let i = raw(Some(t));
        let d = desc.describe(&i).unwrap();
        assert!(
            d.description
                .contains(&format!("Likely shows people (score {t:.2}).")),
            "{}",
            d.description
        );
        assert_eq!(d.people, Some(t));
        assert!(d.sources.people.contains("held-out precision"));
    }

    #[test]
    fn a_score_below_the_threshold_is_kept_but_not_said() {
        let t = crate::services::local::people::threshold();
        let d = LocalDescriber { min_prob: 0.15 }
            .describe(&raw(Some(t - 0.01)))
            .unwrap();
        assert!(!d.description.contains("people"), "{}", d.description);
        assert_eq!(d.people, Some(t - 0.01));
    }

    #[test]
    fn a_captioned_photo_is_not_said_to_show_people_by_the_score() {
        let mut i = input();
        i.people = Some(0.99);
        let d = LocalDescriber { min_prob: 0.15 }.describe(&i).unwrap();
        assert!(!d.description.contains("Likely shows people"));
        assert_eq!(d.people, Some(0.99));
    }

    #[test]
    fn the_people_score_stays_out_of_the_indexed_document() {
        let desc = LocalDescriber { min_prob: 0.15 };
        let with = raw(Some(0.99));
        let without = raw(None);
        let d = desc.describe(&with).unwrap();
        assert_eq!(
            desc.document(&with, &d),
            desc.document(&without, &desc.describe(&without).unwrap())
        );
    }

    #[test]
    fn without_a_score_no_people_source_is_named() {
        let d = LocalDescriber { min_prob: 0.15 }
            .describe(&raw(None))
            .unwrap();
        assert_eq!(d.people, None);
        assert!(d.sources.people.is_empty());
    }
}
