//! What the studio knows about each Bedrock model it can use: its family (which request shape
//! it takes), the jobs it can do, where AWS serves it, and its lifecycle. Used to validate the
//! config before any call, to route ids, and to say which id or region to use when Bedrock
//! refuses one. Facts come from the AWS documentation pages cited in
//! `docs/bedrock-models.md`; where AWS documents no region list, the list holds the regions its
//! own examples use and says so.

/// Request shape a model takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Converse / ConverseStream; no reasoning content: the scratchpad is prompted.
    NovaPro,
    /// Converse / ConverseStream with extended thinking (`reasoningConfig`).
    Nova2Lite,
    /// InvokeModel `{inputText | inputImage, embeddingConfig}`.
    TitanMultimodal,
    /// InvokeModel `{schemaVersion: nova-multimodal-embed-v1, taskType: SINGLE_EMBEDDING, ...}`.
    NovaMultimodalEmbeddings,
    /// InvokeModel `{taskType, textToImageParams, imageGenerationConfig}`.
    NovaCanvas,
    /// InvokeModel `{prompt, negative_prompt, aspect_ratio, seed, output_format}`.
    StableImageUltra,
    StableImageCore,
    /// As the Stable Image models, plus `mode`.
    Sd35Large,
}

/// One model the studio knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownModel {
    pub base: &'static str,
    pub name: &'static str,
    pub family: Family,
    /// Config keys under `[bedrock.models]` this model can fill.
    pub jobs: &'static [&'static str],
    /// Regions where the plain model id is served on demand.
    pub regions: &'static [&'static str],
    /// Cross-region inference profile prefixes that carry it ("us", "eu", "apac", "global").
    pub profiles: &'static [&'static str],
    /// Legacy / end-of-life note, shown wherever the model is offered.
    pub lifecycle: Option<&'static str>,
    /// Whether its text side is documented as English only (briefs in other languages are
    /// then searched as an English description).
    pub english_only_text: bool,
}

pub const NOVA_CANVAS_EOL: &str = "legacy: end-of-life on Bedrock on 2026-09-30 (requests fail after it unless your account still serves it, e.g. through provisioned throughput)";

pub const MODELS: &[KnownModel] = &[
    KnownModel {
        base: "amazon.nova-pro-v1:0",
        name: "Amazon Nova Pro",
        family: Family::NovaPro,
        jobs: &["writer", "describer"],
        regions: &["us-east-1", "us-gov-west-1"],
        profiles: &["us", "eu", "apac"],
        lifecycle: None,
        english_only_text: false,
    },
    KnownModel {
        base: "amazon.nova-2-lite-v1:0",
        name: "Amazon Nova 2 Lite",
        family: Family::Nova2Lite,
        jobs: &["writer", "describer"],
        regions: &[],
        profiles: &["us", "global"],
        lifecycle: None,
        english_only_text: false,
    },
    KnownModel {
        base: "amazon.titan-embed-image-v1",
        name: "Amazon Titan Multimodal Embeddings G1",
        family: Family::TitanMultimodal,
        jobs: &["embeddings"],
        regions: &[
            "us-east-1",
            "us-west-2",
            "ap-south-1",
            "ap-southeast-2",
            "eu-west-1",
            "eu-west-3",
        ],
        profiles: &[],
        lifecycle: None,
        english_only_text: true,
    },
    KnownModel {
        base: "amazon.nova-2-multimodal-embeddings-v1:0",
        name: "Amazon Nova Multimodal Embeddings",
        family: Family::NovaMultimodalEmbeddings,
        jobs: &["embeddings"],
        regions: &["us-east-1"],
        profiles: &[],
        lifecycle: None,
        // Its documentation lists no languages; briefs not in English are rewritten as for
        // Titan until AWS documents which languages it supports.
        english_only_text: true,
    },
    KnownModel {
        base: "amazon.nova-canvas-v1:0",
        name: "Amazon Nova Canvas",
        family: Family::NovaCanvas,
        jobs: &["canvas"],
        regions: &["us-east-1", "eu-west-1", "ap-northeast-1"],
        profiles: &[],
        lifecycle: Some(NOVA_CANVAS_EOL),
        english_only_text: false,
    },
    KnownModel {
        base: "stability.stable-image-ultra-v1:1",
        name: "Stability AI Stable Image Ultra",
        family: Family::StableImageUltra,
        jobs: &["stability"],
        regions: &["us-west-2"],
        profiles: &[],
        lifecycle: None,
        english_only_text: false,
    },
    KnownModel {
        base: "stability.stable-image-core-v1:1",
        name: "Stability AI Stable Image Core",
        family: Family::StableImageCore,
        jobs: &["stability"],
        regions: &["us-west-2"],
        profiles: &[],
        lifecycle: None,
        english_only_text: false,
    },
    KnownModel {
        base: "stability.sd3-5-large-v1:0",
        name: "Stability AI Stable Diffusion 3.5 Large",
        family: Family::Sd35Large,
        jobs: &["stability"],
        regions: &["us-west-2"],
        profiles: &[],
        lifecycle: None,
        english_only_text: false,
    },
];

/// Prefixes of cross-region (system) inference profile ids.
pub const PROFILE_PREFIXES: [&str; 8] = ["us", "us-gov", "eu", "apac", "ca", "jp", "au", "global"];

pub fn known(base: &str) -> Option<&'static KnownModel> {
    MODELS.iter().find(|m| m.base == base)
}

/// The base model an id names: a plain model id as it is, a system inference profile id
/// (`us.amazon.nova-pro-v1:0`) without its prefix, a foundation-model or inference-profile ARN
/// by its last part. None for an application inference profile ARN, whose text does not name
/// the model (the config's `base` must then say it).
pub fn base_of(id: &str) -> Option<String> {
    let id = id.trim();
    let tail = if let Some(rest) = id.strip_prefix("arn:") {
        let resource = rest.splitn(5, ':').nth(4)?;
        let (kind, name) = resource.split_once('/')?;
        match kind {
            "foundation-model" | "inference-profile" | "provisioned-model" => name,
            _ => return None,
        }
    } else {
        id
    };
    if let Some((prefix, rest)) = tail.split_once('.')
        && PROFILE_PREFIXES.contains(&prefix)
        && rest.contains('.')
    {
        return Some(rest.to_string());
    }
    Some(tail.to_string())
}

/// The cross-region profile prefix that serves callers in `region`.
pub fn geo_of(region: &str) -> Option<&'static str> {
    if region.starts_with("us-gov-") {
        Some("us-gov")
    } else if region.starts_with("us-") {
        Some("us")
    } else if region.starts_with("eu-") {
        Some("eu")
    } else if region.starts_with("ap-") {
        Some("apac")
    } else if region.starts_with("ca-") {
        Some("ca")
    } else {
        None
    }
}

/// What to send instead of `id` from `region` for model `m`, in words: the profile id of the
/// caller's geography, else a region that serves the plain id.
pub fn advice(m: &KnownModel, region: &str, key: &str) -> String {
    if let Some(geo) = geo_of(region).filter(|g| m.profiles.contains(g)) {
        return format!(
            "set bedrock.models.{key} = \"{geo}.{}\" (the inference profile for {region})",
            m.base
        );
    }
    if m.profiles.contains(&"global") {
        return format!(
            "set bedrock.models.{key} = \"global.{}\" (the global inference profile)",
            m.base
        );
    }
    match m.regions.first() {
        Some(r) => format!(
            "set bedrock.models.{key} = {{ id = \"{}\", region = \"{r}\" }} ({} is served on demand in {})",
            m.base,
            m.name,
            m.regions.join(", ")
        ),
        None => format!("{} has no on-demand region listed", m.name),
    }
}

/// Whether `region` looks like an AWS region name ("us-east-1", "us-gov-west-1").
pub fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts[0].len() == 2
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_model_of_a_plain_id_is_itself() {
        assert_eq!(
            base_of("amazon.nova-pro-v1:0").as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
    }

    #[test]
    fn base_model_of_a_profile_id_drops_the_prefix() {
        assert_eq!(
            base_of("us.amazon.nova-pro-v1:0").as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
        assert_eq!(
            base_of("global.amazon.nova-2-lite-v1:0").as_deref(),
            Some("amazon.nova-2-lite-v1:0")
        );
        assert_eq!(
            base_of("apac.amazon.nova-pro-v1:0").as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
    }

    #[test]
    fn base_model_of_arns() {
        assert_eq!(
            base_of("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0")
                .as_deref(),
            Some("amazon.nova-canvas-v1:0")
        );
        assert_eq!(
            base_of(
                "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0"
            )
            .as_deref(),
            Some("amazon.nova-pro-v1:0")
        );
        assert_eq!(
            base_of("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3"),
            None
        );
    }

    #[test]
    fn advice_names_the_profile_of_the_callers_geography() {
        let nova = known("amazon.nova-pro-v1:0").unwrap();
        let a = advice(nova, "eu-west-1", "writer");
        assert!(a.contains("\"eu.amazon.nova-pro-v1:0\""), "{a}");
    }

    #[test]
    fn advice_names_a_serving_region_when_no_profile_fits() {
        let s = known("stability.stable-image-core-v1:1").unwrap();
        let a = advice(s, "eu-west-1", "stability");
        assert!(a.contains("region = \"us-west-2\""), "{a}");
    }

    #[test]
    fn regions_are_checked_by_shape() {
        assert!(valid_region("us-east-1"));
        assert!(valid_region("us-gov-west-1"));
        assert!(!valid_region("useast1"));
        assert!(!valid_region("US-EAST-1"));
        assert!(!valid_region("us-east-x"));
    }
}
