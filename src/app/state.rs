use std::collections::HashMap;
use std::sync::Arc;

use ratatui_textarea::TextArea;
use serde::{Deserialize, Serialize};

use crate::app::JobId;
use crate::domain::{
    Asset, BrandKit, Campaign, GeneratedImage, PromptVersion, Quality, ReferenceHit, TaskType,
};
use crate::services::GeneratorCaps;
use crate::store::LibraryStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Pane {
    #[default]
    Sessions,
    Brief,
    References,
    Prompt,
    Generate,
    Library,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Sessions,
        Pane::Brief,
        Pane::References,
        Pane::Prompt,
        Pane::Generate,
        Pane::Library,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Pane::Sessions => "Sessions",
            Pane::Brief => "Brief",
            Pane::References => "References",
            Pane::Prompt => "Prompt",
            Pane::Generate => "Generate",
            Pane::Library => "Library",
        }
    }
    /// The name used in `[studio.keys]` overrides.
    pub fn key_name(self) -> &'static str {
        match self {
            Pane::Sessions => "sessions",
            Pane::Brief => "brief",
            Pane::References => "references",
            Pane::Prompt => "prompt",
            Pane::Generate => "generate",
            Pane::Library => "library",
        }
    }
    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
    pub fn next(self) -> Pane {
        Pane::ALL[(self.index() + 1) % Pane::ALL.len()]
    }
    pub fn prev(self) -> Pane {
        Pane::ALL[(self.index() + Pane::ALL.len() - 1) % Pane::ALL.len()]
    }
}

/// The focused field of the Brief pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BriefField {
    Name,
    #[default]
    Brief,
    Query,
}

/// The focused field of the Prompt pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PromptField {
    #[default]
    Prompt,
    Negative,
    Instruction,
    Versions,
}

pub const ASPECTS: [&str; 7] = ["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"];
pub const GEN_FIELDS: [&str; 6] = ["Count", "Aspect", "Seed", "CFG scale", "Quality", "Task"];

/// The Generate pane's parameters form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenForm {
    pub count: u32,
    pub aspect: usize,
    /// None: a random seed, drawn and recorded at generation time.
    pub seed: Option<u32>,
    pub cfg: f32,
    pub quality: Quality,
    pub task: TaskType,
    /// Index into `GEN_FIELDS`.
    pub field: usize,
}

impl Default for GenForm {
    fn default() -> Self {
        GenForm {
            count: 1,
            aspect: 0,
            seed: None,
            cfg: 6.5,
            quality: Quality::Standard,
            task: TaskType::Text,
            field: 0,
        }
    }
}

/// What a session remembers beyond the engine's records: saved with the campaign on every
/// change (by the persistence actor) and applied on reopen, so every pane comes back as left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionView {
    pub pane: Pane,
    pub name_draft: String,
    pub brief_draft: String,
    pub brief_field: BriefField,
    pub query: String,
    pub brand: Option<String>,
    pub k: usize,
    pub kpi_weight: f32,
    pub refs_cursor: usize,
    pub prompt_field: PromptField,
    /// The prompt version shown (None: the latest).
    pub prompt_version: Option<i64>,
    pub prompt_draft: String,
    pub negative_draft: String,
    pub instruction: String,
    pub versions_cursor: usize,
    pub gen_form: GenForm,
    pub gallery_cursor: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToastKind {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub kind: ToastKind,
    pub text: String,
}

/// An image drawn into a rectangle of `cols` x `rows` cells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageKey {
    pub path: String,
    pub cols: u16,
    pub rows: u16,
}

/// An encoded image, ready to draw (encoded off the UI thread by the runtime).
#[derive(Clone)]
pub struct Encoded(pub Arc<ratatui_image::protocol::Protocol>);

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Encoded")
    }
}

impl PartialEq for Encoded {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSlot {
    Ready(Encoded),
    Failed(String),
}

/// A large view of one image over the focused pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub path: String,
    pub title: String,
    pub lines: Vec<String>,
}

/// Live progress of an ingest started from the Library pane.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IngestProgress {
    pub total: usize,
    pub to_process: usize,
    pub done: usize,
    pub ingested: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub last: String,
    pub last_error: Option<String>,
}

/// The one owner of the studio's state. Only `update` changes it.
pub struct State {
    pub pane: Pane,
    pub objectives: Vec<String>,
    pub nodes: Vec<String>,
    /// Terminal size in cells, from the runtime (the grid's columns depend on it).
    pub size: (u16, u16),
    pub campaigns: Vec<Campaign>,
    pub sessions_cursor: usize,
    pub confirm_delete: Option<String>,
    pub renaming: Option<TextArea<'static>>,
    /// The open campaign (None while a new brief is being written).
    pub campaign: Option<Campaign>,
    pub name: TextArea<'static>,
    pub brief: TextArea<'static>,
    pub query: TextArea<'static>,
    pub brief_field: BriefField,
    pub objective: usize,
    pub node: usize,
    pub brands: Vec<BrandKit>,
    /// Index into `brands`; None: no brand kit.
    pub brand: Option<usize>,
    pub k: usize,
    pub kpi_weight: f32,
    pub hits: Vec<ReferenceHit>,
    /// What the last search searched for (shown when it is not the brief).
    pub search_query: String,
    /// What widening the last search would add (`engine::campaign::widen_offer_of`).
    pub widen_offer: Option<String>,
    /// How the last search's query was brought to the library's English texts, in words, when
    /// it was not searched as written (`engine::search::SearchedAs::describe`).
    pub read_as: Option<String>,
    pub refs_cursor: usize,
    pub selected: Vec<String>,
    pub reasoning: String,
    pub answer: String,
    pub versions: Vec<PromptVersion>,
    pub versions_cursor: usize,
    /// The version shown in the editors.
    pub prompt: Option<PromptVersion>,
    pub prompt_editor: TextArea<'static>,
    pub negative_editor: TextArea<'static>,
    pub instruction: TextArea<'static>,
    pub prompt_field: PromptField,
    /// The configured image generator's capabilities; None: none configured.
    pub generator: Option<GeneratorCaps>,
    pub gen_form: GenForm,
    pub gallery: Vec<GeneratedImage>,
    pub gallery_cursor: usize,
    pub stats: Option<LibraryStats>,
    pub assets: Vec<Asset>,
    pub assets_cursor: usize,
    pub ingest_path: Option<TextArea<'static>>,
    pub ingest: Option<IngestProgress>,
    pub search_job: Option<JobId>,
    pub prompt_job: Option<JobId>,
    pub gen_job: Option<JobId>,
    pub ingest_job: Option<JobId>,
    pub next_job: JobId,
    pub preview: Option<Preview>,
    /// Inline images delivered by the runtime's encoder; None when images are off.
    pub images: HashMap<ImageKey, ImageSlot>,
    pub images_enabled: bool,
    /// The image protocol in use, for the status line ("kitty", "halfblocks", "off").
    pub image_protocol: String,
    /// Which index searches read, for the status line.
    pub index_status: Option<String>,
    /// The last view handed to the persistence actor, to save only changes.
    pub saved_view: Option<(String, SessionView)>,
    pub toast: Option<Toast>,
    pub show_help: bool,
    pub quitting: bool,
    /// What Ctrl-Y can do with the clipboard (set by the terminal layer at start).
    pub clipboard: ClipboardMode,
    /// The folder of the last export made in this session (Ctrl-Y in Sessions copies it).
    pub last_export: Option<String>,
}

/// Whether the studio can copy to the terminal's clipboard (OSC 52).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClipboardMode {
    /// `studio.clipboard = false`.
    #[default]
    Off,
    /// The terminal cannot take it; the reason says which and what to do.
    Unsupported(String),
    /// Sent as OSC 52; `via` names the path ("OSC 52", "OSC 52 through tmux").
    On { via: String },
}

impl State {
    pub fn new(objectives: Vec<String>, nodes: Vec<String>, k: usize) -> Self {
        State {
            pane: Pane::Sessions,
            objectives,
            nodes,
            size: (80, 24),
            campaigns: Vec::new(),
            sessions_cursor: 0,
            confirm_delete: None,
            renaming: None,
            campaign: None,
            name: TextArea::default(),
            brief: text_editor(""),
            query: TextArea::default(),
            brief_field: BriefField::Brief,
            objective: 0,
            node: 0,
            brands: Vec::new(),
            brand: None,
            k,
            kpi_weight: 0.25,
            hits: Vec::new(),
            search_query: String::new(),
            widen_offer: None,
            read_as: None,
            refs_cursor: 0,
            selected: Vec::new(),
            reasoning: String::new(),
            answer: String::new(),
            versions: Vec::new(),
            versions_cursor: 0,
            prompt: None,
            prompt_editor: text_editor(""),
            negative_editor: text_editor(""),
            instruction: TextArea::default(),
            prompt_field: PromptField::Prompt,
            generator: None,
            gen_form: GenForm::default(),
            gallery: Vec::new(),
            gallery_cursor: 0,
            stats: None,
            assets: Vec::new(),
            assets_cursor: 0,
            ingest_path: None,
            ingest: None,
            search_job: None,
            prompt_job: None,
            gen_job: None,
            ingest_job: None,
            next_job: 1,
            preview: None,
            images: HashMap::new(),
            images_enabled: false,
            image_protocol: "off".into(),
            index_status: None,
            saved_view: None,
            toast: None,
            show_help: false,
            quitting: false,
            clipboard: ClipboardMode::Off,
            last_export: None,
        }
    }

    pub fn brief_text(&self) -> String {
        self.brief.lines().join("\n")
    }

    pub fn busy(&self) -> bool {
        self.search_job.is_some()
            || self.prompt_job.is_some()
            || self.gen_job.is_some()
            || self.ingest_job.is_some()
    }

    /// Whether keys are text for a focused editor (then only control and function keys act).
    pub fn text_input(&self) -> bool {
        match self.pane {
            Pane::Brief => true,
            Pane::Prompt => self.prompt_field != PromptField::Versions,
            Pane::Sessions => self.renaming.is_some(),
            Pane::Library => self.ingest_path.is_some(),
            _ => false,
        }
    }

    pub fn brand_kit(&self) -> Option<&BrandKit> {
        self.brand.and_then(|i| self.brands.get(i))
    }

    /// The view to save for the open campaign.
    pub fn view(&self) -> SessionView {
        SessionView {
            pane: self.pane,
            name_draft: self.name.lines().join(" "),
            brief_draft: self.brief_text(),
            brief_field: self.brief_field,
            query: self.query.lines().join(" "),
            brand: self.brand_kit().map(|b| b.name.clone()),
            k: self.k,
            kpi_weight: self.kpi_weight,
            refs_cursor: self.refs_cursor,
            prompt_field: self.prompt_field,
            prompt_version: self.prompt.as_ref().map(|p| p.id),
            prompt_draft: self.prompt_editor.lines().join("\n"),
            negative_draft: self.negative_editor.lines().join("\n"),
            instruction: self.instruction.lines().join(" "),
            versions_cursor: self.versions_cursor,
            gen_form: self.gen_form.clone(),
            gallery_cursor: self.gallery_cursor,
        }
    }

    pub(crate) fn job(&mut self) -> JobId {
        let j = self.next_job;
        self.next_job += 1;
        j
    }
}

/// A one-line editor holding `text`.
pub fn line_editor(text: &str) -> TextArea<'static> {
    TextArea::from([text.to_string()])
}

/// A multi-line editor holding `text`, soft-wrapped at words (prompts are one long line).
pub fn text_editor(text: &str) -> TextArea<'static> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut t = if lines.is_empty() {
        TextArea::default()
    } else {
        TextArea::from(lines)
    };
    t.set_wrap_mode(ratatui_textarea::WrapMode::WordOrGlyph);
    t
}
