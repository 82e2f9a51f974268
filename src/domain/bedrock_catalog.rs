//! What the studio knows about each Bedrock model it can use: its family (which request shape
//! it takes), the jobs it can do, where AWS serves it, and its lifecycle. Plain data, no I/O:
//! the config is validated against it when it loads, the Bedrock client routes ids with it,
//! and error messages take their advice from it. Facts and their sources are in
//! `docs/bedrock-models.md`; where AWS's pages list no regions, the list holds the regions its
//! own examples use, and says so there.

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
    /// Whether `regions` is the whole list (the model is served nowhere else on demand): a plain
    /// id configured without a region is then called in the first of them.
    pub regions_complete: bool,
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
        regions_complete: false,
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
        regions_complete: false,
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
        regions_complete: false,
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
        regions_complete: false,
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
        regions_complete: false,
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
        regions_complete: true,
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
        regions_complete: true,
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
        regions_complete: true,
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
/// by its last part. None for an application inference profile or provisioned-model ARN, whose
/// text does not name the model (the config's `base` must then say it).
pub fn base_of(id: &str) -> Option<String> {
    let id = id.trim();
    let tail = if id.starts_with("arn:") {
        let (kind, name) = arn_resource(id)?;
        match kind {
            "foundation-model" | "inference-profile" => name,
            _ => return None,
        }
    } else {
        id
    };
    Some(strip_profile(tail).to_string())
}

/// An id without its system inference profile prefix ("us.", "global.", ...).
pub fn strip_profile(id: &str) -> &str {
    match id.split_once('.') {
        Some((prefix, rest)) if PROFILE_PREFIXES.contains(&prefix) && rest.contains('.') => rest,
        _ => id,
    }
}

/// The system inference profile prefix of an id ("us" of "us.amazon.nova-pro-v1:0").
pub fn profile_of(id: &str) -> Option<&str> {
    let tail = if id.starts_with("arn:") {
        arn_resource(id)?.1
    } else {
        id
    };
    let (prefix, rest) = tail.split_once('.')?;
    (PROFILE_PREFIXES.contains(&prefix) && rest.contains('.')).then_some(prefix)
}

/// (resource kind, name) of a Bedrock ARN: `arn:aws:bedrock:REGION:ACCOUNT:KIND/NAME`.
fn arn_resource(arn: &str) -> Option<(&str, &str)> {
    arn.splitn(6, ':').nth(5)?.split_once('/')
}

/// The region an ARN names ("" in a foundation-model ARN's account-less form is still given).
pub fn arn_region(id: &str) -> Option<&str> {
    if !id.starts_with("arn:") {
        return None;
    }
    id.split(':').nth(3).filter(|r| !r.is_empty())
}

fn models_for(key: &str) -> String {
    MODELS
        .iter()
        .filter(|m| m.jobs.contains(&key))
        .map(|m| m.base)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one `[bedrock.models]` entry (id, region, base): a known model that can do that job,
/// a region of the right shape, a base model for ARNs that do not name one. The error names
/// the key and what to write.
pub fn check_model(
    key: &str,
    id: &str,
    region: &str,
    base: &str,
) -> std::result::Result<&'static KnownModel, String> {
    let id = id.trim();
    if id.is_empty() || id.chars().any(char::is_whitespace) {
        return Err(format!(
            "key 'bedrock.models.{key}': '{id}' is not a model id (like amazon.nova-pro-v1:0, us.amazon.nova-pro-v1:0 or an ARN)"
        ));
    }
    if !region.is_empty() && !valid_region(region) {
        return Err(format!(
            "key 'bedrock.models.{key}.region': '{region}' is not an AWS region (like us-east-1)"
        ));
    }
    let base = if base.is_empty() {
        base_of(id).ok_or_else(|| {
            format!(
                "key 'bedrock.models.{key}': '{id}' does not name its model (an application inference profile or provisioned model); add the base model, e.g. {key} = {{ id = \"{id}\", base = \"amazon.nova-pro-v1:0\" }}"
            )
        })?
    } else {
        base.to_string()
    };
    let known = known(&base).ok_or_else(|| {
        format!(
            "key 'bedrock.models.{key}': unknown model '{base}' (known for this job: {})",
            models_for(key)
        )
    })?;
    if !known.jobs.contains(&key) {
        return Err(format!(
            "key 'bedrock.models.{key}': {} cannot do this job (models for it: {})",
            known.name,
            models_for(key)
        ));
    }
    Ok(known)
}

/// The region a call of `id` goes to: the entry's own region, else an ARN's region, else (for
/// a plain id of a model served in listed regions only, when the default is not one of them)
/// the first region that serves it, else the client's default region. The flag says whether
/// the region was chosen for the user.
pub fn call_region(m: &KnownModel, id: &str, region: &str, default: &str) -> (String, bool) {
    if !region.is_empty() {
        return (region.to_string(), false);
    }
    if let Some(r) = arn_region(id) {
        return (r.to_string(), false);
    }
    if profile_of(id).is_none()
        && m.regions_complete
        && !m.regions.contains(&default)
        && let Some(r) = m.regions.first()
    {
        return (r.to_string(), true);
    }
    (default.to_string(), false)
}

/// Why calling `id` in `region` will certainly fail, before any call: a model served only
/// through inference profiles asked for by its plain id, or a geography's profile called from
/// another geography.
pub fn route_problem(m: &KnownModel, id: &str, region: &str, key: &str) -> Option<String> {
    if id.starts_with("arn:") {
        return None;
    }
    match profile_of(id) {
        None if m.regions.is_empty() && !m.profiles.is_empty() => Some(format!(
            "bedrock.models.{key}: {} is served only through inference profiles, not by its plain id '{id}'; {}",
            m.name,
            advice(m, region, key)
        )),
        Some(p) if p != "global" && geo_of(region).is_some_and(|g| g != p) => Some(format!(
            "bedrock.models.{key}: '{id}' is the {p} inference profile, which cannot be called from {region}; {}",
            advice(m, region, key)
        )),
        _ => None,
    }
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

/// What to send instead from `region` for model `m`, in words: the profile id of the caller's
/// geography, else the global profile, else another region that serves the plain id; and the
/// model's lifecycle when it has one.
pub fn advice(m: &KnownModel, region: &str, key: &str) -> String {
    let life = m
        .lifecycle
        .map(|l| format!(" (note: {} is {l})", m.name))
        .unwrap_or_default();
    if let Some(geo) = geo_of(region).filter(|g| m.profiles.contains(g)) {
        return format!(
            "set bedrock.models.{key} = \"{geo}.{}\" (the inference profile for {region}){life}",
            m.base
        );
    }
    if m.profiles.contains(&"global") {
        return format!(
            "set bedrock.models.{key} = \"global.{}\" (the global inference profile){life}",
            m.base
        );
    }
    match m.regions.iter().find(|r| **r != region) {
        Some(r) => format!(
            "set bedrock.models.{key} = {{ id = \"{}\", region = \"{r}\" }} ({} is served on demand in {}){life}",
            m.base,
            m.name,
            m.regions.join(", ")
        ),
        None if m.regions.contains(&region) => format!(
            "{} should be served in {region}; check that model access is enabled there{life}",
            m.name
        ),
        None => format!("{} has no on-demand region listed{life}", m.name),
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
    fn provisioned_model_arns_do_not_name_their_model() {
        assert_eq!(
            base_of("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abc123"),
            None
        );
    }

    #[test]
    fn an_arn_carries_its_region() {
        let m = known("amazon.nova-pro-v1:0").unwrap();
        let arn =
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-pro-v1:0";
        assert_eq!(
            call_region(m, arn, "", "us-east-1"),
            ("eu-west-1".into(), false)
        );
    }

    #[test]
    fn a_plain_stability_id_goes_where_stability_is_served() {
        let m = known("stability.stable-image-core-v1:1").unwrap();
        assert_eq!(
            call_region(m, "stability.stable-image-core-v1:1", "", "us-east-1"),
            ("us-west-2".into(), true)
        );
        assert_eq!(
            call_region(
                m,
                "stability.stable-image-core-v1:1",
                "us-east-1",
                "us-east-1"
            ),
            ("us-east-1".into(), false),
            "an explicit region is kept"
        );
    }

    #[test]
    fn a_plain_nova_2_lite_id_is_a_problem_before_any_call() {
        let m = known("amazon.nova-2-lite-v1:0").unwrap();
        let p = route_problem(m, "amazon.nova-2-lite-v1:0", "us-east-1", "writer").unwrap();
        assert!(p.contains("\"us.amazon.nova-2-lite-v1:0\""), "{p}");
    }

    #[test]
    fn a_us_profile_from_europe_is_a_problem_before_any_call() {
        let m = known("amazon.nova-pro-v1:0").unwrap();
        let p = route_problem(m, "us.amazon.nova-pro-v1:0", "eu-west-1", "writer").unwrap();
        assert!(p.contains("\"eu.amazon.nova-pro-v1:0\""), "{p}");
        assert!(route_problem(m, "eu.amazon.nova-pro-v1:0", "eu-west-1", "writer").is_none());
    }

    #[test]
    fn advice_never_names_the_region_already_in_use() {
        let m = known("amazon.nova-canvas-v1:0").unwrap();
        let a = advice(m, "us-east-1", "canvas");
        assert!(!a.contains("region = \"us-east-1\""), "{a}");
        assert!(a.contains("2026-09-30"), "{a}");
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
