//! The only place `State` changes. Synchronous, no I/O: side effects come back as `Effect`s.
use crate::app::state::{Toast, ToastKind};
use crate::app::{Action, Effect, Pane, State};
use crate::services::PromptEvent;

fn info(state: &mut State, text: impl Into<String>) {
    state.toast = Some(Toast {
        kind: ToastKind::Info,
        text: text.into(),
    });
}

fn error(state: &mut State, text: impl Into<String>) {
    state.toast = Some(Toast {
        kind: ToastKind::Error,
        text: text.into(),
    });
}

fn search_effect(state: &mut State) -> Vec<Effect> {
    let brief = state.brief_text();
    if brief.trim().is_empty() {
        error(state, "Write a brief first.");
        return Vec::new();
    }
    let job = state.job();
    state.search_job = Some(job);
    let name = if state.name.trim().is_empty() {
        brief
            .lines()
            .next()
            .unwrap_or("Untitled")
            .chars()
            .take(40)
            .collect()
    } else {
        state.name.clone()
    };
    info(state, "Searching the library…");
    vec![Effect::Search {
        job,
        campaign_id: state.campaign.as_ref().map(|c| c.id.clone()),
        name,
        brief,
        objective: state
            .objectives
            .get(state.objective)
            .cloned()
            .unwrap_or_default(),
        node: state.nodes.get(state.node).cloned().unwrap_or_default(),
        k: state.k,
    }]
}

pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Quit => {
            state.quitting = true;
            vec![Effect::Quit]
        }
        Action::NextPane => {
            state.pane = state.pane.next();
            pane_entered(state)
        }
        Action::PrevPane => {
            state.pane = state.pane.prev();
            pane_entered(state)
        }
        Action::ToggleHelp => {
            state.show_help = !state.show_help;
            Vec::new()
        }
        Action::Up | Action::Down => {
            let down = action == Action::Down;
            let (cursor, len) = match state.pane {
                Pane::Sessions => (&mut state.sessions_cursor, state.campaigns.len()),
                Pane::References => (&mut state.refs_cursor, state.hits.len()),
                _ => return Vec::new(),
            };
            if len > 0 {
                *cursor = if down {
                    (*cursor + 1).min(len - 1)
                } else {
                    cursor.saturating_sub(1)
                };
            }
            Vec::new()
        }
        Action::Open => match state.campaigns.get(state.sessions_cursor) {
            Some(c) => vec![Effect::OpenCampaign(c.id.clone())],
            None => Vec::new(),
        },
        Action::NewCampaign => {
            state.campaign = None;
            state.name.clear();
            state.brief = ratatui_textarea::TextArea::default();
            state.hits.clear();
            state.selected.clear();
            state.prompt = None;
            state.reasoning.clear();
            state.answer.clear();
            state.pane = Pane::Brief;
            Vec::new()
        }
        Action::DeleteCampaign => {
            if let Some(c) = state.campaigns.get(state.sessions_cursor) {
                state.confirm_delete = Some(c.id.clone());
                info(
                    state,
                    "Delete this campaign and everything it holds? y to confirm, Esc to keep it.",
                );
            }
            Vec::new()
        }
        Action::Confirm => match state.confirm_delete.take() {
            Some(id) => {
                if state.campaign.as_ref().is_some_and(|c| c.id == id) {
                    state.campaign = None;
                }
                vec![Effect::DeleteCampaign(id), Effect::LoadCampaigns]
            }
            None => Vec::new(),
        },
        Action::CycleObjective => {
            state.objective = (state.objective + 1) % state.objectives.len().max(1);
            Vec::new()
        }
        Action::CycleNode => {
            state.node = (state.node + 1) % state.nodes.len().max(1);
            Vec::new()
        }
        Action::MoreResults | Action::FewerResults => {
            state.k = if action == Action::MoreResults {
                (state.k + 2).min(40)
            } else {
                state.k.saturating_sub(2).max(2)
            };
            search_effect(state)
        }
        Action::EditorInput(key) => {
            state.brief.input(key);
            Vec::new()
        }
        Action::Toggle => {
            let Some(hit) = state.hits.get(state.refs_cursor) else {
                return Vec::new();
            };
            let id = hit.asset_id.clone();
            match state.selected.iter().position(|s| *s == id) {
                Some(i) => {
                    state.selected.remove(i);
                }
                None => state.selected.push(id),
            }
            match &state.campaign {
                Some(c) => vec![Effect::SaveSelection {
                    campaign_id: c.id.clone(),
                    selected: state.selected.clone(),
                }],
                None => Vec::new(),
            }
        }
        Action::Submit => match state.pane {
            Pane::Brief | Pane::References => search_effect(state),
            Pane::Prompt => match &state.campaign {
                Some(c) => {
                    let id = c.id.clone();
                    let job = state.job();
                    state.prompt_job = Some(job);
                    state.reasoning.clear();
                    state.answer.clear();
                    vec![Effect::WritePrompt {
                        job,
                        campaign_id: id,
                    }]
                }
                None => {
                    error(state, "Save the brief first (Ctrl-S in the Brief pane).");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        },
        Action::RestorePrompt => match &state.campaign {
            Some(c) => vec![Effect::RestorePrompt {
                campaign_id: c.id.clone(),
            }],
            None => Vec::new(),
        },
        Action::Generate => {
            error(
                state,
                "No image generator is configured: the embedded default has no text-to-image model. Press m for a mood board.",
            );
            Vec::new()
        }
        Action::MoodBoard => match &state.campaign {
            Some(c) => vec![Effect::MoodBoard {
                campaign_id: c.id.clone(),
            }],
            None => Vec::new(),
        },
        Action::Cancel => {
            if state.show_help {
                state.show_help = false;
                return Vec::new();
            }
            if state.confirm_delete.take().is_some() {
                info(state, "Kept.");
                return Vec::new();
            }
            let mut effects = Vec::new();
            for job in [state.search_job.take(), state.prompt_job.take()]
                .into_iter()
                .flatten()
            {
                effects.push(Effect::CancelJob(job));
            }
            if !effects.is_empty() {
                info(state, "Cancelled.");
            }
            effects
        }
        Action::CampaignsLoaded(list) => {
            state.campaigns = list;
            state.sessions_cursor = state
                .sessions_cursor
                .min(state.campaigns.len().saturating_sub(1));
            Vec::new()
        }
        Action::StatsLoaded(s) => {
            state.stats = Some(*s);
            Vec::new()
        }
        Action::CampaignOpened {
            campaign,
            hits,
            prompt,
        } => {
            state.name = campaign.name.clone();
            state.brief =
                ratatui_textarea::TextArea::from(campaign.brief.lines().map(str::to_string));
            state.objective = state
                .objectives
                .iter()
                .position(|o| *o == campaign.objective)
                .unwrap_or(0);
            state.node = state
                .nodes
                .iter()
                .position(|n| *n == campaign.node)
                .unwrap_or(0);
            state.selected = campaign.selected.clone();
            state.hits = hits;
            state.refs_cursor = 0;
            state.reasoning = prompt
                .as_ref()
                .map(|p| p.reasoning.clone())
                .unwrap_or_default();
            state.answer = prompt
                .as_ref()
                .map(|p| p.prompt.clone())
                .unwrap_or_default();
            state.prompt = prompt.map(|p| *p);
            state.campaign = Some(*campaign);
            state.pane = Pane::Brief;
            Vec::new()
        }
        Action::SearchDone {
            job,
            campaign,
            hits,
        } => {
            if state.search_job != Some(job) {
                return Vec::new(); // stale
            }
            state.search_job = None;
            info(state, format!("{} reference(s) found.", hits.len()));
            state.hits = hits;
            state.refs_cursor = 0;
            state.selected.retain(|s| {
                state.hits.iter().any(|h| h.asset_id == *s) || campaign.selected.contains(s)
            });
            state.campaign = Some(*campaign);
            state.pane = Pane::References;
            vec![Effect::LoadCampaigns]
        }
        Action::PromptStream { job, event } => {
            if state.prompt_job == Some(job) {
                match event {
                    PromptEvent::Reasoning(t) => state.reasoning.push_str(&t),
                    PromptEvent::Answer(t) => state.answer.push_str(&t),
                }
            }
            Vec::new()
        }
        Action::PromptDone { job, version } => {
            if state.prompt_job != Some(job) {
                return Vec::new();
            }
            state.prompt_job = None;
            state.answer = version.prompt.clone();
            state.reasoning = version.reasoning.clone();
            state.prompt = Some(*version);
            info(state, "Prompt written and saved.");
            vec![Effect::LoadCampaigns]
        }
        Action::Notice(text) => {
            info(state, text);
            Vec::new()
        }
        Action::JobFailed { job, error: e } => {
            if state.search_job == Some(job) {
                state.search_job = None;
            } else if state.prompt_job == Some(job) {
                state.prompt_job = None;
            } else if job != 0 {
                return Vec::new();
            }
            error(state, e);
            Vec::new()
        }
    }
}

fn pane_entered(state: &mut State) -> Vec<Effect> {
    match state.pane {
        Pane::Sessions => vec![Effect::LoadCampaigns],
        Pane::Library => vec![Effect::LoadStats],
        _ => Vec::new(),
    }
}
