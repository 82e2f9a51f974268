//! The cost meter: tokens and images of every model call a campaign made, priced from
//! `[bedrock.prices]`. Local models cost nothing and are not listed; a cloud model without a
//! price is counted and marked unpriced, never guessed.
use serde::Serialize;

use crate::Result;
use crate::config::Price;
use crate::domain::{Campaign, Quality};
use crate::engine::Library;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    /// "prompt version 3", "generation 2".
    pub what: String,
    pub model: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub images: u32,
    /// None when the model has no price in the config.
    pub usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub lines: Vec<CostLine>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub images: u64,
    /// The sum of the priced lines.
    pub usd: f64,
    /// Models that were used but have no price.
    pub unpriced: Vec<String>,
}

/// The model id inside a writer label like "bedrock/amazon.nova-pro-v1:0 (language model)".
fn model_id(label: &str) -> &str {
    label
        .strip_prefix("bedrock/")
        .unwrap_or(label)
        .split(' ')
        .next()
        .unwrap_or(label)
}

fn price_tokens(p: &Price, input: u32, output: u32) -> f64 {
    input as f64 / 1000.0 * p.input_per_1k_tokens + output as f64 / 1000.0 * p.output_per_1k_tokens
}

pub fn campaign_cost(lib: &Library, campaign: &Campaign) -> Result<CostReport> {
    let prices = &lib.config.bedrock.prices;
    let mut lines = Vec::new();
    for v in lib.store.prompt_versions(&campaign.id)? {
        let Some(u) = v.usage else { continue };
        let model = model_id(&v.model).to_string();
        let usd = prices
            .get(&model)
            .map(|p| price_tokens(p, u.input, u.output));
        lines.push(CostLine {
            what: format!("prompt version {}", v.id),
            model,
            input_tokens: u.input,
            output_tokens: u.output,
            images: 0,
            usd,
        });
    }
    let images = lib.store.generated_images(&campaign.id)?;
    let mut generations: Vec<i64> = images.iter().map(|i| i.generation_id).collect();
    generations.sort_unstable();
    generations.dedup();
    for g in generations {
        let of: Vec<_> = images.iter().filter(|i| i.generation_id == g).collect();
        let first = of[0];
        let n = of.len() as u32;
        let usd = prices.get(&first.model).map(|p| {
            let each = match first.request.params.quality {
                Quality::Premium => p.per_image_premium.unwrap_or(p.per_image),
                Quality::Standard => p.per_image,
            };
            each * n as f64
        });
        lines.push(CostLine {
            what: format!("generation {g}"),
            model: first.model.clone(),
            input_tokens: 0,
            output_tokens: 0,
            images: n,
            usd,
        });
    }
    let mut unpriced: Vec<String> = lines
        .iter()
        .filter(|l| l.usd.is_none())
        .map(|l| l.model.clone())
        .collect();
    unpriced.sort();
    unpriced.dedup();
    Ok(CostReport {
        input_tokens: lines.iter().map(|l| l.input_tokens as u64).sum(),
        output_tokens: lines.iter().map(|l| l.output_tokens as u64).sum(),
        images: lines.iter().map(|l| l.images as u64).sum(),
        usd: lines.iter().filter_map(|l| l.usd).sum(),
        unpriced,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_prices() {
        assert_eq!(
            model_id("bedrock/amazon.nova-pro-v1:0 (language model)"),
            "amazon.nova-pro-v1:0"
        );
        let p = Price {
            input_per_1k_tokens: 0.0008,
            output_per_1k_tokens: 0.0032,
            ..Default::default()
        };
        assert!((price_tokens(&p, 812, 143) - 0.0011072).abs() < 1e-9);
    }
}
