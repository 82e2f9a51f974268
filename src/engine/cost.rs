//! The cost meter: every paid model call a campaign (or the library) made, as recorded when it
//! returned (`model_calls`), priced from `[bedrock.prices]` by base model (whatever inference
//! profile or region carried the call). Local models cost nothing and are not listed; a cloud
//! model without a price is counted and marked unpriced, never guessed.
use serde::Serialize;

use crate::Result;
use crate::config::Price;
use crate::domain::{Campaign, ModelCall};
use crate::engine::Library;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    /// "prompt version 3", "generation 2", "search".
    pub what: String,
    /// The id the calls sent.
    pub model: String,
    /// The base model that prices them.
    pub base_model: String,
    pub calls: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub images: u64,
    /// Images the content filter withheld (counted apart, not priced: AWS's pricing pages do
    /// not say whether they are billed).
    pub withheld: u64,
    /// None when the model has no price in the config.
    pub usd: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub lines: Vec<CostLine>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub images: u64,
    pub withheld: u64,
    /// The sum of the priced lines.
    pub usd: f64,
    /// Models that were used but have no price.
    pub unpriced: Vec<String>,
}

/// What one call costs at `price`.
pub fn call_usd(p: &Price, c: &ModelCall) -> f64 {
    p.tokens(c.input_tokens as u64, c.output_tokens as u64)
        + c.images as f64 * p.image(c.image_pixels, c.premium)
}

/// The report of a list of labelled calls.
pub fn report(
    prices: &std::collections::BTreeMap<String, Price>,
    calls: &[(String, ModelCall)],
) -> CostReport {
    let mut lines: Vec<CostLine> = Vec::new();
    for (what, c) in calls {
        let usd = prices.get(&c.base_model).map(|p| call_usd(p, c));
        let line = match lines
            .iter_mut()
            .find(|l| l.what == *what && l.model == c.model)
        {
            Some(l) => l,
            None => {
                lines.push(CostLine {
                    what: what.clone(),
                    model: c.model.clone(),
                    base_model: c.base_model.clone(),
                    calls: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    images: 0,
                    withheld: 0,
                    usd: Some(0.0),
                });
                let last = lines.len() - 1;
                &mut lines[last]
            }
        };
        line.calls = line.calls.saturating_add(1);
        line.input_tokens += c.input_tokens as u64;
        line.output_tokens += c.output_tokens as u64;
        line.images += c.images as u64;
        line.withheld += c.withheld as u64;
        line.usd = match (line.usd, usd) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
    let mut unpriced: Vec<String> = lines
        .iter()
        .filter(|l| l.usd.is_none())
        .map(|l| l.base_model.clone())
        .collect();
    unpriced.sort();
    unpriced.dedup();
    CostReport {
        input_tokens: lines.iter().map(|l| l.input_tokens).sum(),
        output_tokens: lines.iter().map(|l| l.output_tokens).sum(),
        images: lines.iter().map(|l| l.images).sum(),
        withheld: lines.iter().map(|l| l.withheld).sum(),
        usd: lines.iter().filter_map(|l| l.usd).sum(),
        unpriced,
        lines,
    }
}

pub fn campaign_cost(lib: &Library, campaign: &Campaign) -> Result<CostReport> {
    Ok(report(
        &lib.config.bedrock.prices,
        &lib.store.model_calls(Some(&campaign.id))?,
    ))
}

/// What building the library cost (cloud describers and embedders at ingest and reindex).
pub fn library_cost(lib: &Library) -> Result<CostReport> {
    Ok(report(
        &lib.config.bedrock.prices,
        &lib.store.model_calls(None)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas_price() -> Price {
        Price {
            per_image: 0.04,
            per_image_premium: Some(0.06),
            large_above_pixels: Some(1_048_576),
            per_image_large: Some(0.06),
            per_image_large_premium: Some(0.08),
            ..Default::default()
        }
    }

    fn image_call(pixels: u64, premium: bool) -> ModelCall {
        ModelCall {
            job: "generate".into(),
            base_model: "amazon.nova-canvas-v1:0".into(),
            images: 1,
            image_pixels: pixels,
            premium,
            ..Default::default()
        }
    }

    #[test]
    fn tokens_are_priced_per_thousand() {
        let p = Price {
            input_per_1k_tokens: 0.0008,
            output_per_1k_tokens: 0.0032,
            ..Default::default()
        };
        let c = ModelCall {
            input_tokens: 812,
            output_tokens: 143,
            ..Default::default()
        };
        assert!((call_usd(&p, &c) - 0.0011072).abs() < 1e-12);
    }

    #[test]
    fn canvas_images_up_to_1024_squared_take_the_small_tier() {
        let p = canvas_price();
        assert_eq!(call_usd(&p, &image_call(1024 * 1024, false)), 0.04);
        assert_eq!(call_usd(&p, &image_call(1024 * 1024, true)), 0.06);
    }

    #[test]
    fn canvas_images_above_1024_squared_take_the_large_tier() {
        let p = canvas_price();
        assert_eq!(call_usd(&p, &image_call(1280 * 1024, false)), 0.06);
        assert_eq!(call_usd(&p, &image_call(2048 * 2048, true)), 0.08);
    }

    #[test]
    fn profiles_are_priced_by_their_base_model_and_unknown_ones_are_listed() {
        let mut prices = std::collections::BTreeMap::new();
        prices.insert("amazon.nova-canvas-v1:0".to_string(), canvas_price());
        let mut a = image_call(512 * 512, false);
        a.model = "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0".into();
        let b = ModelCall {
            model: "us.amazon.nova-2-lite-v1:0".into(),
            base_model: "amazon.nova-2-lite-v1:0".into(),
            input_tokens: 10,
            ..Default::default()
        };
        let r = report(&prices, &[("g".into(), a), ("p".into(), b)]);
        assert_eq!(r.usd, 0.04);
        assert_eq!(r.unpriced, vec!["amazon.nova-2-lite-v1:0".to_string()]);
        assert_eq!(r.lines.len(), 2);
    }
}
