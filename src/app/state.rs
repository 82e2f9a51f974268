use ratatui_textarea::TextArea;

use crate::app::JobId;
use crate::domain::{Campaign, PromptVersion, ReferenceHit};
use crate::store::LibraryStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
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

/// The one owner of the studio's state. Only `update` changes it.
pub struct State {
    pub pane: Pane,
    pub objectives: Vec<String>,
    pub nodes: Vec<String>,
    pub campaigns: Vec<Campaign>,
    pub sessions_cursor: usize,
    pub confirm_delete: Option<String>,
    /// The open campaign (None while a new brief is being written).
    pub campaign: Option<Campaign>,
    pub name: String,
    pub brief: TextArea<'static>,
    pub objective: usize,
    pub node: usize,
    pub k: usize,
    pub hits: Vec<ReferenceHit>,
    pub refs_cursor: usize,
    pub selected: Vec<String>,
    pub reasoning: String,
    pub answer: String,
    pub prompt: Option<PromptVersion>,
    pub search_job: Option<JobId>,
    pub prompt_job: Option<JobId>,
    pub next_job: JobId,
    pub stats: Option<LibraryStats>,
    pub toast: Option<Toast>,
    pub show_help: bool,
    pub quitting: bool,
}

impl State {
    pub fn new(objectives: Vec<String>, nodes: Vec<String>, k: usize) -> Self {
        State {
            pane: Pane::Sessions,
            objectives,
            nodes,
            campaigns: Vec::new(),
            sessions_cursor: 0,
            confirm_delete: None,
            campaign: None,
            name: String::new(),
            brief: TextArea::default(),
            objective: 0,
            node: 0,
            k,
            hits: Vec::new(),
            refs_cursor: 0,
            selected: Vec::new(),
            reasoning: String::new(),
            answer: String::new(),
            prompt: None,
            search_job: None,
            prompt_job: None,
            next_job: 1,
            stats: None,
            toast: None,
            show_help: false,
            quitting: false,
        }
    }

    pub fn brief_text(&self) -> String {
        self.brief.lines().join("\n")
    }

    pub fn busy(&self) -> bool {
        self.search_job.is_some() || self.prompt_job.is_some()
    }

    pub(crate) fn job(&mut self) -> JobId {
        let j = self.next_job;
        self.next_job += 1;
        j
    }
}
