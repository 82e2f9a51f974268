use serde::{Deserialize, Serialize};

use crate::domain::ReferenceHit;

/// A brand kit (TOML): feeds the prompt and the negative prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrandKit {
    pub name: String,
    /// Hex colours, e.g. "#0a7cff".
    #[serde(default)]
    pub palette: Vec<String>,
    #[serde(default)]
    pub tone: Vec<String>,
    #[serde(default)]
    pub must_include: Vec<String>,
    #[serde(default)]
    pub must_avoid: Vec<String>,
    #[serde(default)]
    pub negative_terms: Vec<String>,
}

/// The furthest step a campaign has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStep {
    Brief,
    References,
    Prompt,
    Generated,
}

impl CampaignStep {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStep::Brief => "brief",
            CampaignStep::References => "references",
            CampaignStep::Prompt => "prompt",
            CampaignStep::Generated => "generated",
        }
    }
    pub fn parse(s: &str) -> CampaignStep {
        match s {
            "references" => CampaignStep::References,
            "prompt" => CampaignStep::Prompt,
            "generated" => CampaignStep::Generated,
            _ => CampaignStep::Brief,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub brief: String,
    pub objective: String,
    pub node: String,
    pub brand: Option<BrandKit>,
    /// Asset ids the user chose as references, in the order chosen.
    pub selected: Vec<String>,
    pub step: CampaignStep,
    pub created_at: String,
    pub updated_at: String,
}

/// One run of the recommender for a campaign, kept with its hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendationRun {
    pub id: i64,
    pub campaign_id: String,
    pub query: String,
    pub k: usize,
    pub kpi_weight: f32,
    pub embedder: String,
    pub hits: Vec<ReferenceHit>,
    pub created_at: String,
    /// How its text query was brought to the library's English texts (a translation or an
    /// offset changes the hits' order and strength, so a reopened run says it); `None` for a
    /// run stored before this was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searched_as: Option<SearchedAs>,
}

/// How a text query was brought to the English texts it is searched against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchedAs {
    /// As written (an English query, an image, or one nothing was known to help).
    Written,
    /// Its vector moved by its language's offset (`services::language_offset`).
    Moved {
        language: String,
        /// Why it was not translated, where a translator would have found more ("Apertium is
        /// not installed: …"; `services::translate::why_not_translated`, when it was searched).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_translated: Option<String>,
    },
    /// As its English translation (`services::translate`).
    Translated(Translation),
}

/// A query or brief used as its English translation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translation {
    /// The language it was read as.
    pub from: String,
    /// What translated it ("Apertium spa-eng").
    pub by: String,
    /// The English text used.
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptSource {
    Ai,
    User,
}

/// One version of the text-to-image prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptVersion {
    pub id: i64,
    pub campaign_id: String,
    pub source: PromptSource,
    /// What wrote it, e.g. "local/composer-v1"; "user" for edits.
    pub model: String,
    pub reasoning: String,
    pub prompt: String,
    pub negative_prompt: String,
    /// The extra instruction of a re-run, if any.
    pub instruction: Option<String>,
    /// Asset ids of the references it was written from.
    pub references: Vec<String>,
    /// Notes such as "cut at a clause boundary to 512 characters".
    pub flags: Vec<String>,
    pub created_at: String,
    /// Tokens the writing call used (cloud writers); None when nothing was called.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

/// Tokens one language-model call used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u32,
    pub output: u32,
}

/// One paid model call, recorded the moment it returns, whatever happens after (a later call
/// of the same job failing, a cancelled job, a filtered image): the cost meter sums these.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ModelCall {
    /// What the call was for: "prompt", "describe", "embed-text", "embed-image", "translate",
    /// "generate".
    pub job: String,
    /// The id the call sent (a base model id, an inference profile id or an ARN).
    pub model: String,
    /// The base model, which prices the call.
    pub base_model: String,
    pub region: String,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Images the model returned.
    pub images: u32,
    /// Images the call made but the model's content filter withheld (counted apart: AWS's
    /// pricing pages do not say whether they are billed).
    pub withheld: u32,
    /// Pixels of each image (the size tier of the price).
    pub image_pixels: u64,
    pub premium: bool,
}
