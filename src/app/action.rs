use crate::domain::{Campaign, PromptVersion, ReferenceHit};
use crate::services::PromptEvent;
use crate::store::LibraryStats;

/// Identifies one background job; a result whose id is not the pane's current job is stale.
pub type JobId = u64;

/// Everything that can happen to the studio: user intents (from the keymap) and results.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    NextPane,
    PrevPane,
    ToggleHelp,
    Up,
    Down,
    /// Enter on a list: open the focused item.
    Open,
    /// Space on references: toggle selection.
    Toggle,
    /// Ctrl-S: the focused pane's main action (save brief and search, write prompt, ...).
    Submit,
    /// Esc: cancel the running job or close an overlay.
    Cancel,
    NewCampaign,
    DeleteCampaign,
    Confirm,
    CycleObjective,
    CycleNode,
    MoreResults,
    FewerResults,
    RestorePrompt,
    Generate,
    MoodBoard,
    /// A key for the focused text editor.
    EditorInput(crossterm::event::KeyEvent),
    /// Results from the runtime.
    CampaignsLoaded(Vec<Campaign>),
    StatsLoaded(Box<LibraryStats>),
    CampaignOpened {
        campaign: Box<Campaign>,
        hits: Vec<ReferenceHit>,
        prompt: Option<Box<PromptVersion>>,
    },
    SearchDone {
        job: JobId,
        campaign: Box<Campaign>,
        hits: Vec<ReferenceHit>,
    },
    PromptStream {
        job: JobId,
        event: PromptEvent,
    },
    PromptDone {
        job: JobId,
        version: Box<PromptVersion>,
    },
    Notice(String),
    JobFailed {
        job: JobId,
        error: String,
    },
}

/// Side effects `update` asks for; the runtime performs them.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    LoadCampaigns,
    LoadStats,
    OpenCampaign(String),
    DeleteCampaign(String),
    /// Create (when `campaign_id` is None) or reuse the campaign, then recommend.
    Search {
        job: JobId,
        campaign_id: Option<String>,
        name: String,
        brief: String,
        objective: String,
        node: String,
        k: usize,
    },
    SaveSelection {
        campaign_id: String,
        selected: Vec<String>,
    },
    WritePrompt {
        job: JobId,
        campaign_id: String,
    },
    RestorePrompt {
        campaign_id: String,
    },
    MoodBoard {
        campaign_id: String,
    },
    CancelJob(JobId),
    Quit,
}
