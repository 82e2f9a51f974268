use serde::{Deserialize, Serialize};

/// Which model (and which input recipe) produced a vector. Vectors from different embedders are
/// never compared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmbedderId(pub String);

impl EmbedderId {
    pub fn new(s: impl Into<String>) -> Self {
        EmbedderId(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmbedderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One dominant colour of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaletteColor {
    pub hex: String,
    /// Share of the image's pixels closest to this colour, 0..1.
    pub share: f32,
    /// A plain colour name ("dark blue"), so descriptions and searches can use it.
    pub name: String,
}

/// A model label with its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub prob: f32,
}

/// Where each part of a description came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DescriptionSources {
    /// e.g. "manifest caption", "manifest description", "campaign name"; empty when none.
    pub text: Vec<String>,
    /// e.g. "manifest labels", "EfficientNet-Lite0 ImageNet labels".
    pub elements: Vec<String>,
    pub palette: String,
    /// Where `Description::people` comes from; empty when there is no score.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub people: String,
}

/// What the library knows an image shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Description {
    pub description: String,
    pub elements: Vec<String>,
    pub palette: Vec<PaletteColor>,
    /// Mean luma 0..1, kept so a metadata-only update can re-describe without decoding.
    #[serde(default)]
    pub brightness: f32,
    /// The image analyser's calibrated probability that the image shows people (None: no
    /// score, e.g. ingested before there was one, or another analyser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people: Option<f32>,
    pub sources: DescriptionSources,
    /// For a photo nobody described: the described library photos that look most like it,
    /// and the words they share (`engine::inferred`). Never a caption: what similar images
    /// say, marked as such wherever it shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<Inferred>,
}

/// What a photo nobody described borrows from the described photos nearest to it by the image
/// classifier's features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Inferred {
    /// The nearest described photos, most similar first.
    pub from: Vec<InferredFrom>,
    /// Labels people gave those photos, held by neighbours with at least half of the
    /// similarity weight, most weight first; empty when they agree on none.
    pub words: Vec<String>,
    /// How they were found, for the reader ("inferred from similar images: ...").
    pub source: String,
    /// The text embedders whose vector of this photo carries these neighbours.
    #[serde(default)]
    pub vectors: Vec<String>,
}

impl Inferred {
    /// One line for the reader: "Similar described images show: person, dog (inferred from
    /// coco-1 0.71, coco-2 0.66; not a caption)".
    pub fn summary(&self) -> String {
        let from: Vec<String> = self
            .from
            .iter()
            .map(|f| format!("{} {:.2}", f.name, f.similarity))
            .collect();
        format!(
            "{} (inferred from {}; not a caption)",
            self.head(),
            from.join(", ")
        )
    }

    /// The words without the lenders, for what leaves the library (exports): "Similar
    /// described images show: person, dog (inferred; not a caption)".
    pub fn words_line(&self) -> String {
        format!("{} (inferred; not a caption)", self.head())
    }

    /// What both lines open with: the words, or that the neighbours agree on none.
    fn head(&self) -> String {
        if self.words.is_empty() {
            "Similar described images agree on no label".into()
        } else {
            format!("Similar described images show: {}", self.words.join(", "))
        }
    }
}

/// One described photo an undescribed one borrows from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferredFrom {
    /// Its asset id (content hash).
    pub asset: String,
    /// How people know it: its manifest id, else the start of its hash.
    pub name: String,
    /// Cosine similarity of the two photos' classifier features.
    pub similarity: f32,
    /// A short hash of the document whose vector was borrowed (a new caption changes it).
    pub text: String,
}

/// A library asset as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    /// sha256 of the file's bytes.
    pub id: String,
    /// The manifest's id, when the asset came with one.
    pub external_id: Option<String>,
    /// The file name as given (relative to the ingested folder).
    pub file: String,
    /// Where the bytes are kept (a copy under the data dir, or the referenced original).
    pub stored_path: String,
    pub thumbnail_path: String,
    pub byte_size: u64,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub phash: String,
    pub objective: String,
    pub node: String,
    pub kpi: Option<f64>,
    pub caption: Option<String>,
    pub description: Description,
    pub model_labels: Vec<Label>,
    pub licence: Option<String>,
    pub attribution: Option<String>,
    /// Manifest fields we do not model, kept as given.
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
impl Asset {
    /// A minimal asset for unit tests: `id`.png, 1 x 1, in `objective` / `node`, KPI 0.5,
    /// nothing described, no dates.
    pub(crate) fn for_test(id: &str, objective: &str, node: &str) -> Asset {
        Asset {
            id: id.into(),
            external_id: None,
            file: format!("{id}.png"),
            stored_path: String::new(),
            thumbnail_path: String::new(),
            byte_size: 1,
            format: "png".into(),
            width: 1,
            height: 1,
            phash: String::new(),
            objective: objective.into(),
            node: node.into(),
            kpi: Some(0.5),
            caption: None,
            description: Default::default(),
            model_labels: Vec::new(),
            licence: None,
            attribution: None,
            metadata: serde_json::Value::Null,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }
}

/// The filter a k-NN search applies while it searches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchFilter {
    pub objective: Option<String>,
    pub node: Option<String>,
}

impl SearchFilter {
    /// Whether an asset of this objective and audience node passes the filter.
    pub fn admits(&self, objective: &str, node: &str) -> bool {
        self.objective.as_deref().is_none_or(|o| o == objective)
            && self.node.as_deref().is_none_or(|n| n == node)
    }
}

/// One search result: the asset and how it ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceHit {
    pub asset_id: String,
    pub external_id: Option<String>,
    pub file: String,
    pub stored_path: String,
    pub thumbnail_path: String,
    pub similarity: f32,
    pub kpi: Option<f64>,
    /// Percentile of the KPI within the filtered set, 0..1.
    pub kpi_percentile: f32,
    pub score: f32,
    pub objective: String,
    pub node: String,
    pub description: String,
    pub elements: Vec<String>,
    /// How this hit's similarity stands against the query's similarity to the library as a
    /// whole; `None` for runs saved before it was measured, image-to-image searches and
    /// libraries too small to judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<MatchStrength>,
    /// Found by a widened search: outside the campaign's objective or audience. Its KPI
    /// percentile is within its own objective and audience, never the campaign's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_filter: bool,
    /// For a photo nobody described: what similar described photos say (`Inferred::summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<String>,
}

impl ReferenceHit {
    /// This reference's match strength in words, for the studio's detail column and preview:
    /// "Match: strong (z 3.4, above 99.8 % of the library) · similarity 0.78", and where it
    /// came from when it is outside the campaign's filter.
    pub fn match_line(&self) -> String {
        let strength = self
            .strength
            .map(|s| s.describe())
            .unwrap_or_else(|| "not judged".into());
        let outside = if self.outside_filter {
            format!(
                " · outside the campaign's filter ({}/{}; KPI percentile within its own)",
                self.objective, self.node
            )
        } else {
            String::new()
        };
        format!(
            "Match: {strength} · similarity {:.2}{outside}",
            self.similarity
        )
    }
}

/// How good a match is, in words: judged by how far a hit's similarity stands above what the
/// same query scores against the library at large (most of which is unrelated to any one
/// query).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrengthLevel {
    Strong,
    Fair,
    Weak,
}

impl StrengthLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            StrengthLevel::Strong => "strong",
            StrengthLevel::Fair => "fair",
            StrengthLevel::Weak => "weak",
        }
    }
}

/// A hit's similarity against its query's background: the query's similarities to a fixed
/// sample of the library's vectors (the whole library, every objective and audience).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchStrength {
    /// `None` where the embedder's thresholds were never measured (then only `z` and
    /// `percentile` are said).
    pub level: Option<StrengthLevel>,
    /// Standard deviations above the query's mean similarity to the background.
    pub z: f32,
    /// Share of the background this hit's similarity is above, 0..1.
    pub percentile: f32,
}

impl MatchStrength {
    /// Its figures in short, as `campaign recommend` and the mood board print them after the
    /// level: "z3.4 p99.8".
    pub fn figures(&self) -> String {
        format!("z{:.1} p{:.1}", self.z, self.percentile * 100.0)
    }

    /// "strong (z 3.4, above 99.8 % of the library)"; "z 1.2, …" when unjudged.
    pub fn describe(&self) -> String {
        let pct = format!(
            "z {:.1}, above {:.1} % of the library",
            self.z,
            self.percentile * 100.0
        );
        match self.level {
            Some(l) => format!("{} ({pct})", l.as_str()),
            None => pct,
        }
    }
}
