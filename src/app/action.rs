use crate::app::state::{ImageKey, ImageSlot, SessionView};
use crate::domain::{
    Asset, BrandKit, Campaign, GeneratedImage, PromptVersion, ReferenceHit, TaskType,
};
use crate::engine::ingest::{IngestEvent, IngestReport};
use crate::services::PromptEvent;
use crate::store::LibraryStats;

/// Identifies one background job; a result whose id is not the pane's current job is stale.
pub type JobId = u64;

/// Everything that can happen to the studio: user intents (from the keymap) and results.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Suspend,
    NextPane,
    PrevPane,
    /// Focus the next field within the pane (Brief, Prompt).
    NextField,
    ToggleHelp,
    Up,
    Down,
    Left,
    Right,
    /// Enter on a list: open the focused item (session, reference preview, version).
    Open,
    /// Space on references: toggle selection.
    Toggle,
    /// On references: search for the images that look most like the focused one.
    MoreLikeThis,
    /// Search again, adding references from other objectives and audiences.
    Widen,
    /// Ctrl-S: the focused pane's main action (save brief and search, write prompt, ...).
    Submit,
    /// Esc: close an overlay or editor, else cancel running jobs.
    Cancel,
    NewCampaign,
    RenameCampaign,
    DeleteCampaign,
    ExportCampaign,
    Confirm,
    CycleObjective,
    CycleNode,
    CycleBrand,
    MoreResults,
    FewerResults,
    MoreKpiWeight,
    LessKpiWeight,
    SaveEdit,
    RestorePrompt,
    Generate,
    GalleryPrev,
    GalleryNext,
    MoodBoard,
    StartIngest,
    /// Ctrl-Y: copy what the pane focuses (prompt, negative prompt, an asset id, the last
    /// export's folder) to the clipboard.
    Copy,
    /// An export finished: its folder and the summary to show.
    Exported {
        dir: String,
        summary: String,
    },
    /// A key for the focused text editor or form (unbound keys).
    EditorInput(crossterm::event::KeyEvent),
    /// Mouse wheel (when mouse capture is on).
    Scroll(i8),
    /// The terminal's size in cells.
    Resized(u16, u16),
    /// Results from the runtime.
    CampaignsLoaded(Vec<Campaign>),
    BrandsLoaded(Vec<BrandKit>),
    StatsLoaded(Box<LibraryStats>),
    /// Which index searches read, and what it has not received yet ("index: opensearch · 3
    /// unsynced").
    IndexStatus(String),
    AssetsLoaded(Vec<Asset>),
    CampaignOpened(Box<OpenedCampaign>),
    SearchDone {
        job: JobId,
        campaign: Box<Campaign>,
        hits: Vec<ReferenceHit>,
        /// The text searched (the brief, the extra query, or an English description of it).
        query: String,
        /// What widening would add (`engine::campaign::widen_offer_of`), if anything.
        widen_offer: Option<String>,
        /// How a query in another language was searched, in words
        /// (`engine::search::SearchedAs::describe`).
        read_as: Option<String>,
    },
    PromptStream {
        job: JobId,
        event: PromptEvent,
    },
    PromptDone {
        job: JobId,
        version: Box<PromptVersion>,
    },
    /// A prompt version saved outside a job (user edit, restore).
    PromptSaved(Box<PromptVersion>),
    Generated {
        job: JobId,
        images: Vec<GeneratedImage>,
        /// Images the model withheld (content filter), reported, not saved.
        withheld: Vec<String>,
    },
    /// A generation cancelled after the model had made (and been paid for) some images: they
    /// were saved, and join the gallery of their campaign.
    KeptAfterCancel {
        campaign_id: String,
        images: Vec<GeneratedImage>,
    },
    IngestProgress {
        job: JobId,
        event: IngestEvent,
    },
    IngestDone {
        job: JobId,
        report: IngestReport,
    },
    ImageReady {
        key: ImageKey,
        slot: ImageSlot,
    },
    Notice(String),
    JobFailed {
        job: JobId,
        error: String,
    },
}

impl Action {
    /// Whether the action comes from the user (keys, mouse), not from a job or the terminal.
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            Action::Resized(..)
                | Action::CampaignsLoaded(_)
                | Action::BrandsLoaded(_)
                | Action::StatsLoaded(_)
                | Action::IndexStatus(_)
                | Action::AssetsLoaded(_)
                | Action::CampaignOpened(_)
                | Action::SearchDone { .. }
                | Action::PromptStream { .. }
                | Action::PromptDone { .. }
                | Action::PromptSaved(_)
                | Action::Generated { .. }
                | Action::KeptAfterCancel { .. }
                | Action::IngestProgress { .. }
                | Action::IngestDone { .. }
                | Action::ImageReady { .. }
                | Action::Notice(_)
                | Action::Exported { .. }
                | Action::JobFailed { .. }
        )
    }
}

/// Everything the studio shows for a campaign, as loaded on open.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedCampaign {
    pub campaign: Campaign,
    pub hits: Vec<ReferenceHit>,
    /// The last run's query.
    pub query: String,
    /// What widening the last run would add, if anything.
    pub widen_offer: Option<String>,
    /// How the last run's query was searched, when it was not as written
    /// (`engine::search::SearchedAs::describe`).
    pub read_as: Option<String>,
    pub versions: Vec<PromptVersion>,
    pub gallery: Vec<GeneratedImage>,
    pub view: Option<SessionView>,
}

/// The generation parameters the Generate pane sends.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    pub count: u32,
    pub aspect: String,
    pub seed: Option<u32>,
    pub cfg_scale: f32,
    pub quality: crate::domain::Quality,
    pub task: TaskType,
    pub negative: Option<String>,
}

/// Side effects `update` asks for; the runtime performs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadCampaigns,
    LoadBrands,
    LoadStats,
    LoadAssets,
    OpenCampaign(String),
    RenameCampaign {
        campaign_id: String,
        name: String,
    },
    DeleteCampaign(String),
    ExportCampaign(String),
    /// Create (when `campaign_id` is None, or the brief changed) or reuse the campaign, then
    /// recommend.
    Search {
        job: JobId,
        campaign_id: Option<String>,
        name: String,
        brief: String,
        objective: String,
        node: String,
        brand: Option<BrandKit>,
        query: Option<String>,
        /// "More like this": search by this asset's image features instead of text.
        like: Option<String>,
        k: usize,
        kpi_weight: f32,
        /// Add hits from outside the campaign's objective and audience (text searches).
        widen: bool,
    },
    SaveSelection {
        campaign_id: String,
        selected: Vec<String>,
    },
    WritePrompt {
        job: JobId,
        campaign_id: String,
        instruction: Option<String>,
    },
    SavePromptEdit {
        campaign_id: String,
        prompt: String,
        negative: String,
    },
    RestorePrompt {
        campaign_id: String,
    },
    Generate {
        job: JobId,
        campaign_id: String,
        params: GenerateParams,
    },
    MoodBoard {
        campaign_id: String,
    },
    /// Files the folder's manifest does not cover get `objective` and `node`.
    Ingest {
        job: JobId,
        folder: String,
        objective: String,
        node: String,
    },
    /// Save the studio's view of a campaign (the persistence actor).
    SaveView {
        campaign_id: String,
        view: SessionView,
    },
    CancelJob(JobId),
    /// Put `text` on the terminal's clipboard (OSC 52); the terminal layer writes it.
    Copy(String),
    Suspend,
    Quit,
}
