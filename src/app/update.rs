//! The only place `State` changes. Synchronous, no I/O: side effects come back as `Effect`s.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::action::{GenerateParams, OpenedCampaign};
use crate::app::state::{
    ASPECTS, BriefField, ClipboardMode, GEN_FIELDS, IngestProgress, Preview, PromptField, Toast,
    ToastKind, line_editor, text_editor,
};
use crate::app::{Action, Effect, Pane, State};
use crate::domain::{PromptVersion, Quality, TaskType};
use crate::engine::ingest::{IngestEvent, Outcome};
use crate::services::PromptEvent;

/// Cells per reference tile in the grid (width, height); the grid fills the pane's width.
pub const TILE: (u16, u16) = (26, 9);
/// Width of the details column beside the grid.
pub const DETAIL_WIDTH: u16 = 40;

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

/// What Ctrl-Y copies in the focused pane, named for the message: (what, text).
fn copy_target(state: &State) -> Option<(&'static str, String)> {
    let text = |t: &ratatui_textarea::TextArea<'static>| t.lines().join("\n");
    match state.pane {
        Pane::Sessions => match &state.last_export {
            Some(dir) => Some(("the export folder", dir.clone())),
            None => state
                .campaigns
                .get(state.sessions_cursor)
                .map(|c| ("the campaign id", c.id.clone())),
        },
        Pane::Brief => Some(match state.brief_field {
            BriefField::Name => ("the name", text(&state.name)),
            BriefField::Brief => ("the brief", text(&state.brief)),
            BriefField::Query => ("the extra query", text(&state.query)),
        }),
        Pane::References => state.hits.get(state.refs_cursor).map(|h| {
            (
                "the asset id",
                h.external_id.clone().unwrap_or_else(|| h.asset_id.clone()),
            )
        }),
        Pane::Prompt => Some(match state.prompt_field {
            PromptField::Prompt => ("the prompt", text(&state.prompt_editor)),
            PromptField::Negative => ("the negative prompt", text(&state.negative_editor)),
            PromptField::Instruction => ("the instruction", text(&state.instruction)),
            PromptField::Versions => (
                "the prompt version",
                state
                    .versions
                    .get(state.versions_cursor)
                    .map(|v| v.prompt.clone())
                    .unwrap_or_default(),
            ),
        }),
        Pane::Generate => state
            .gallery
            .get(state.gallery_cursor)
            .map(|g| ("the image's path", g.path.clone())),
        Pane::Library => state.assets.get(state.assets_cursor).map(|a| {
            (
                "the asset id",
                a.external_id.clone().unwrap_or_else(|| a.id.clone()),
            )
        }),
    }
}

/// Ctrl-Y: the focused text to the clipboard, or a message saying why not.
fn copy(state: &mut State) -> Vec<Effect> {
    let target = copy_target(state).filter(|(_, t)| !t.trim().is_empty());
    match (state.clipboard.clone(), target) {
        (ClipboardMode::Off, _) => {
            info(
                state,
                "The clipboard is off (studio.clipboard = false in the config).",
            );
            Vec::new()
        }
        (_, None) => {
            info(state, "Nothing to copy here.");
            Vec::new()
        }
        (ClipboardMode::Unsupported(why), Some((what, _))) => {
            error(state, format!("Could not copy {what}: {why}"));
            Vec::new()
        }
        (ClipboardMode::On { via }, Some((what, text))) => {
            // OSC 52 has no answer: unless the terminal declared it takes it, say what to check.
            let caveat = if via.contains("accepts") {
                ""
            } else {
                "; the terminal did not say whether it takes it: if nothing arrives, allow OSC 52 in its settings"
            };
            info(
                state,
                format!(
                    "Copied {what} ({} characters) with {via}{caveat}.",
                    text.chars().count()
                ),
            );
            vec![Effect::Copy(text)]
        }
    }
}

/// Columns of the reference grid at the current terminal width (the same rule `ui` draws).
pub fn grid_cols(width: u16) -> usize {
    let inner = width.saturating_sub(2);
    let grid = if inner >= 2 * TILE.0 + DETAIL_WIDTH {
        inner - DETAIL_WIDTH
    } else {
        inner
    };
    (grid / TILE.0).max(1) as usize
}

fn open_campaign_id(state: &mut State) -> Option<String> {
    match &state.campaign {
        Some(c) => Some(c.id.clone()),
        None => {
            error(
                state,
                "No campaign yet: write a brief and press Ctrl-S in the Brief pane.",
            );
            None
        }
    }
}

fn search_effect(state: &mut State) -> Vec<Effect> {
    search_effect_like(state, None)
}

/// `effects` with their search widened (or not).
fn widened(mut effects: Vec<Effect>, on: bool) -> Vec<Effect> {
    for e in &mut effects {
        if let Effect::Search { widen, .. } = e {
            *widen = on;
        }
    }
    effects
}

/// The same search again after k or the KPI weight changed: widened again when the hits on
/// screen were, so the references from outside the filter do not vanish unasked.
fn rerun_effect(state: &mut State) -> Vec<Effect> {
    let was_widened = state.hits.iter().any(|h| h.outside_filter);
    let effects = search_effect(state);
    widened(effects, was_widened)
}

/// Searches again with the same brief and query, adding references from other objectives and
/// audiences; only when the last search offered it.
fn widen_effect(state: &mut State) -> Vec<Effect> {
    if state.widen_offer.is_none() {
        let why = if state.hits.iter().any(|h| h.outside_filter) {
            "Already widened: references outside the campaign's objective and audience are shown after its own."
        } else if state.search_query.starts_with("images like ") {
            "Nothing to widen: widening is for text searches (Ctrl-S), not for 'more like this'."
        } else if state.hits.is_empty() {
            "Nothing to widen: search first (Ctrl-S)."
        } else {
            "Nothing to widen: the campaign's objective and audience already hold a strong match and enough references, or the library has nothing outside them."
        };
        info(state, why);
        return Vec::new();
    }
    // Widening widens the search on screen: a brief or filter edited since is a new search
    // (and a new campaign version), which Ctrl-S runs first.
    let edited = state.campaign.as_ref().is_none_or(|c| {
        c.brief != state.brief_text()
            || Some(&c.objective) != state.objectives.get(state.objective)
            || Some(&c.node) != state.nodes.get(state.node)
            || c.brand.as_ref() != state.brand_kit()
    });
    if edited {
        info(
            state,
            "The brief or its objective, audience or brand changed since this search: press Ctrl-S to search it first.",
        );
        return Vec::new();
    }
    let effects = widened(search_effect_like(state, None), true);
    if !effects.is_empty() {
        info(
            state,
            "Searching other objectives and audiences too (marked outside the campaign's filter)…",
        );
    }
    effects
}

/// "More like this" on the focused reference: a search by its image, in the campaign's filter.
fn more_like_this(state: &mut State) -> Vec<Effect> {
    let Some(hit) = state.hits.get(state.refs_cursor) else {
        error(state, "No reference to start from: search first (Ctrl-S).");
        return Vec::new();
    };
    let label = hit.external_id.clone().unwrap_or_else(|| hit.file.clone());
    let like = (hit.asset_id.clone(), label);
    search_effect_like(state, Some(like))
}

/// The search effect; with `like` (asset id, label), by that asset's image instead of text.
fn search_effect_like(state: &mut State, like: Option<(String, String)>) -> Vec<Effect> {
    let brief = state.brief_text();
    if brief.trim().is_empty() {
        error(state, "Write a brief first.");
        state.pane = Pane::Brief;
        return Vec::new();
    }
    let job = state.job();
    state.search_job = Some(job);
    let typed = state.name.lines().join(" ").trim().to_string();
    let name = if typed.is_empty() {
        brief
            .lines()
            .next()
            .unwrap_or("Untitled")
            .chars()
            .take(40)
            .collect()
    } else {
        typed
    };
    let query = state.query.lines().join(" ").trim().to_string();
    match &like {
        Some((_, label)) => info(state, format!("Searching for images like {label}…")),
        None => info(state, "Searching the library…"),
    }
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
        brand: state.brand_kit().cloned(),
        query: (!query.is_empty()).then_some(query),
        like: like.map(|(id, _)| id),
        k: state.k,
        kpi_weight: state.kpi_weight,
        widen: false,
    }]
}

/// Shows a prompt version in the editors.
fn show_version(state: &mut State, v: Option<PromptVersion>) {
    state.prompt_editor = text_editor(v.as_ref().map(|p| p.prompt.as_str()).unwrap_or(""));
    state.negative_editor =
        text_editor(v.as_ref().map(|p| p.negative_prompt.as_str()).unwrap_or(""));
    state.reasoning = v.as_ref().map(|p| p.reasoning.clone()).unwrap_or_default();
    state.answer = v.as_ref().map(|p| p.prompt.clone()).unwrap_or_default();
    state.prompt = v;
}

fn reset_campaign(state: &mut State) {
    state.campaign = None;
    state.name = line_editor("");
    state.brief = text_editor("");
    state.query = line_editor("");
    state.brief_field = BriefField::Brief;
    state.hits.clear();
    state.search_query.clear();
    state.widen_offer = None;
    state.read_as = None;
    state.refs_cursor = 0;
    state.selected.clear();
    state.versions.clear();
    state.versions_cursor = 0;
    show_version(state, None);
    state.instruction = line_editor("");
    state.gallery.clear();
    state.gallery_cursor = 0;
    state.saved_view = None;
}

/// Runs `update` and, when the open campaign's view changed, asks the persistence actor to
/// save it (every change autosaves; the actor coalesces bursts such as typing).
pub fn update(state: &mut State, action: Action) -> Vec<Effect> {
    if action.is_input() {
        // A toast stays until the user does something.
        state.toast = None;
    }
    let mut effects = apply(state, action);
    if let Some(c) = &state.campaign {
        let view = state.view();
        let changed = match &state.saved_view {
            Some((id, v)) => *id != c.id || *v != view,
            None => true,
        };
        if changed {
            state.saved_view = Some((c.id.clone(), view.clone()));
            effects.push(Effect::SaveView {
                campaign_id: c.id.clone(),
                view,
            });
        }
    }
    effects
}

fn move_cursor(cursor: &mut usize, len: usize, delta: isize) {
    if len == 0 {
        *cursor = 0;
        return;
    }
    let next = (*cursor as isize + delta).clamp(0, len as isize - 1);
    *cursor = next as usize;
}

fn navigate(state: &mut State, action: &Action) -> Vec<Effect> {
    let (dx, dy): (isize, isize) = match action {
        Action::Up => (0, -1),
        Action::Down => (0, 1),
        Action::Left => (-1, 0),
        Action::Right => (1, 0),
        _ => (0, 0),
    };
    match state.pane {
        Pane::Sessions => move_cursor(&mut state.sessions_cursor, state.campaigns.len(), dy),
        Pane::References => {
            let cols = grid_cols(state.size.0) as isize;
            move_cursor(&mut state.refs_cursor, state.hits.len(), dy * cols + dx);
        }
        Pane::Prompt => move_cursor(&mut state.versions_cursor, state.versions.len(), dy),
        Pane::Generate => {
            if dy != 0 {
                move_cursor(&mut state.gen_form.field, GEN_FIELDS.len(), dy);
            } else {
                change_gen_field(state, dx as i32);
            }
        }
        Pane::Library => move_cursor(&mut state.assets_cursor, state.assets.len(), dy),
        Pane::Brief => {}
    }
    Vec::new()
}

fn change_gen_field(state: &mut State, d: i32) {
    let max_count = state.generator.as_ref().map(|g| g.max_count).unwrap_or(5);
    let g = &mut state.gen_form;
    match g.field {
        0 => g.count = (g.count as i32 + d).clamp(1, max_count as i32) as u32,
        1 => g.aspect = (g.aspect as i32 + d).rem_euclid(ASPECTS.len() as i32) as usize,
        2 => {
            g.seed = match g.seed {
                None if d > 0 => Some(0),
                None => None,
                Some(0) if d < 0 => None,
                Some(s) => Some((s as i64 + d as i64).max(0) as u32),
            }
        }
        3 => g.cfg = ((g.cfg * 2.0).round() / 2.0 + 0.5 * d as f32).clamp(1.1, 10.0),
        4 => {
            g.quality = match g.quality {
                Quality::Standard => Quality::Premium,
                Quality::Premium => Quality::Standard,
            }
        }
        _ => {
            const TASKS: [TaskType; 3] =
                [TaskType::Text, TaskType::Variation, TaskType::ColorGuided];
            let i = TASKS.iter().position(|t| *t == g.task).unwrap_or(0) as i32;
            g.task = TASKS[(i + d).rem_euclid(3) as usize];
        }
    }
}

fn editor_input(state: &mut State, key: KeyEvent) -> Vec<Effect> {
    let enter = key.code == KeyCode::Enter && key.modifiers == KeyModifiers::NONE;
    match state.pane {
        Pane::Brief => match state.brief_field {
            BriefField::Brief => {
                state.brief.input(key);
            }
            BriefField::Name if enter => state.brief_field = BriefField::Brief,
            BriefField::Query if enter => return search_effect(state),
            BriefField::Name => {
                state.name.input(key);
            }
            BriefField::Query => {
                state.query.input(key);
            }
        },
        Pane::Prompt => match state.prompt_field {
            PromptField::Prompt => {
                state.prompt_editor.input(key);
            }
            PromptField::Negative => {
                state.negative_editor.input(key);
            }
            PromptField::Instruction if enter => return write_prompt(state),
            PromptField::Instruction => {
                state.instruction.input(key);
            }
            PromptField::Versions => {
                if enter && let Some(v) = state.versions.get(state.versions_cursor).cloned() {
                    info(state, format!("Showing version {}.", v.id));
                    show_version(state, Some(v));
                }
            }
        },
        Pane::Sessions => {
            if let Some(editor) = state.renaming.as_mut() {
                if enter {
                    let name = editor.lines().join(" ").trim().to_string();
                    state.renaming = None;
                    let Some(c) = state.campaigns.get(state.sessions_cursor) else {
                        return Vec::new();
                    };
                    if name.is_empty() {
                        error(state, "A campaign needs a name; kept the old one.");
                        return Vec::new();
                    }
                    let id = c.id.clone();
                    if let Some(open) = state.campaign.as_mut().filter(|o| o.id == id) {
                        open.name = name.clone();
                        state.name = line_editor(&name);
                    }
                    return vec![
                        Effect::RenameCampaign {
                            campaign_id: id,
                            name,
                        },
                        Effect::LoadCampaigns,
                    ];
                }
                editor.input(key);
            }
        }
        Pane::Library => {
            if let Some(editor) = state.ingest_path.as_mut() {
                if enter {
                    let folder = editor.lines().join("").trim().to_string();
                    if folder.is_empty() {
                        error(state, "Type the folder to ingest, then Enter.");
                        return Vec::new();
                    }
                    state.ingest_path = None;
                    let job = state.job();
                    state.ingest_job = Some(job);
                    state.ingest = Some(IngestProgress::default());
                    info(state, format!("Ingesting {folder}…"));
                    return vec![Effect::Ingest {
                        job,
                        folder,
                        objective: state
                            .objectives
                            .get(state.objective)
                            .cloned()
                            .unwrap_or_default(),
                        node: state.nodes.get(state.node).cloned().unwrap_or_default(),
                    }];
                }
                editor.input(key);
            }
        }
        Pane::Generate => {
            if state.gen_form.field == 2 {
                match key.code {
                    KeyCode::Char(c) if c.is_ascii_digit() => {
                        let d = c as u32 - '0' as u32;
                        let seed = state.gen_form.seed.unwrap_or(0) as u64 * 10 + d as u64;
                        state.gen_form.seed = Some(seed.min(2_147_483_646) as u32);
                    }
                    KeyCode::Backspace => {
                        state.gen_form.seed = state.gen_form.seed.map(|s| s / 10).filter(|s| *s > 0)
                    }
                    _ => {}
                }
            }
        }
        Pane::References => {}
    }
    Vec::new()
}

fn write_prompt(state: &mut State) -> Vec<Effect> {
    let Some(id) = open_campaign_id(state) else {
        return Vec::new();
    };
    let instruction = state.instruction.lines().join(" ").trim().to_string();
    let job = state.job();
    state.prompt_job = Some(job);
    state.reasoning.clear();
    state.answer.clear();
    info(
        state,
        if instruction.is_empty() {
            "Writing the prompt…"
        } else {
            "Re-writing the prompt with your instruction…"
        },
    );
    vec![Effect::WritePrompt {
        job,
        campaign_id: id,
        instruction: (!instruction.is_empty()).then_some(instruction),
    }]
}

fn generate(state: &mut State) -> Vec<Effect> {
    if state.generator.is_none() {
        error(
            state,
            "No image generator is configured: the embedded default has no text-to-image model. Press m for a mood board.",
        );
        return Vec::new();
    }
    let Some(id) = open_campaign_id(state) else {
        return Vec::new();
    };
    if state.prompt.is_none() {
        error(state, "Write a prompt first (Prompt pane, Ctrl-S).");
        return Vec::new();
    }
    let job = state.job();
    state.gen_job = Some(job);
    let g = &state.gen_form;
    let negative = state.negative_editor.lines().join(" ").trim().to_string();
    let params = GenerateParams {
        count: g.count,
        aspect: ASPECTS[g.aspect % ASPECTS.len()].to_string(),
        seed: g.seed,
        cfg_scale: g.cfg,
        quality: g.quality,
        task: g.task,
        negative: (!negative.is_empty()).then_some(negative),
    };
    info(state, format!("Generating {} image(s)…", g.count));
    vec![Effect::Generate {
        job,
        campaign_id: id,
        params,
    }]
}

fn apply(state: &mut State, action: Action) -> Vec<Effect> {
    match action {
        Action::Quit => {
            state.quitting = true;
            vec![Effect::Quit]
        }
        Action::Suspend => vec![Effect::Suspend],
        Action::Resized(w, h) => {
            state.size = (w, h);
            Vec::new()
        }
        Action::NextPane | Action::PrevPane => {
            state.preview = None;
            state.renaming = None;
            state.pane = if action == Action::NextPane {
                state.pane.next()
            } else {
                state.pane.prev()
            };
            pane_entered(state)
        }
        Action::NextField => {
            match state.pane {
                Pane::Brief => {
                    state.brief_field = match state.brief_field {
                        BriefField::Name => BriefField::Brief,
                        BriefField::Brief => BriefField::Query,
                        BriefField::Query => BriefField::Name,
                    }
                }
                Pane::Prompt => {
                    state.prompt_field = match state.prompt_field {
                        PromptField::Prompt => PromptField::Negative,
                        PromptField::Negative => PromptField::Instruction,
                        PromptField::Instruction => PromptField::Versions,
                        PromptField::Versions => PromptField::Prompt,
                    }
                }
                _ => {}
            }
            Vec::new()
        }
        Action::ToggleHelp => {
            state.show_help = !state.show_help;
            Vec::new()
        }
        Action::Up | Action::Down | Action::Left | Action::Right => navigate(state, &action),
        Action::Scroll(d) => {
            let a = if d < 0 { Action::Up } else { Action::Down };
            navigate(state, &a)
        }
        Action::Open => match state.pane {
            Pane::Sessions => match state.campaigns.get(state.sessions_cursor) {
                Some(c) => vec![Effect::OpenCampaign(c.id.clone())],
                None => Vec::new(),
            },
            Pane::References | Pane::Generate | Pane::Library if state.preview.is_some() => {
                state.preview = None;
                Vec::new()
            }
            Pane::References => {
                if let Some(h) = state.hits.get(state.refs_cursor) {
                    state.preview = Some(Preview {
                        path: h.stored_path.clone(),
                        title: h.external_id.clone().unwrap_or_else(|| h.file.clone()),
                        lines: vec![
                            h.description.clone(),
                            h.match_line(),
                            format!(
                                "similarity {:.2} · KPI {} (p{:.0}) · score {:.2}",
                                h.similarity,
                                h.kpi.map(|k| k.to_string()).unwrap_or_else(|| "?".into()),
                                h.kpi_percentile * 100.0,
                                h.score
                            ),
                        ],
                    });
                }
                Vec::new()
            }
            Pane::Generate => {
                if let Some(g) = state.gallery.get(state.gallery_cursor) {
                    state.preview = Some(Preview {
                        path: g.path.clone(),
                        title: format!("{} · seed {}", g.model, g.seed),
                        lines: vec![g.request.prompt.clone()],
                    });
                }
                Vec::new()
            }
            Pane::Library => {
                if let Some(a) = state.assets.get(state.assets_cursor) {
                    state.preview = Some(Preview {
                        path: a.stored_path.clone(),
                        title: a.external_id.clone().unwrap_or_else(|| a.file.clone()),
                        lines: vec![a.description.description.clone()],
                    });
                }
                Vec::new()
            }
            _ => Vec::new(),
        },
        Action::NewCampaign => {
            reset_campaign(state);
            state.pane = Pane::Brief;
            Vec::new()
        }
        Action::RenameCampaign => {
            if let Some(c) = state.campaigns.get(state.sessions_cursor) {
                state.renaming = Some(line_editor(&c.name));
                info(state, "Type the new name, Enter to save, Esc to keep it.");
            }
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
        Action::ExportCampaign => {
            let id = match state.pane {
                Pane::Sessions => state
                    .campaigns
                    .get(state.sessions_cursor)
                    .map(|c| c.id.clone()),
                _ => open_campaign_id(state),
            };
            match id {
                Some(id) => {
                    info(state, "Exporting…");
                    vec![Effect::ExportCampaign(id)]
                }
                None => Vec::new(),
            }
        }
        Action::Confirm => match state.confirm_delete.take() {
            Some(id) => {
                if state.campaign.as_ref().is_some_and(|c| c.id == id) {
                    reset_campaign(state);
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
        Action::CycleBrand => {
            state.brand = match state.brand {
                None if !state.brands.is_empty() => Some(0),
                Some(i) if i + 1 < state.brands.len() => Some(i + 1),
                _ => None,
            };
            if state.brands.is_empty() {
                error(
                    state,
                    "No brand kits: add TOML files to the brands/ folder of the config dir (see README).",
                );
            }
            Vec::new()
        }
        Action::MoreResults | Action::FewerResults => {
            state.k = if action == Action::MoreResults {
                (state.k + 2).min(40)
            } else {
                state.k.saturating_sub(2).max(2)
            };
            if state.campaign.is_some() {
                rerun_effect(state)
            } else {
                Vec::new()
            }
        }
        Action::MoreKpiWeight | Action::LessKpiWeight => {
            let d = if action == Action::MoreKpiWeight {
                0.05
            } else {
                -0.05
            };
            state.kpi_weight = ((state.kpi_weight + d) * 20.0).round().clamp(0.0, 20.0) / 20.0;
            if state.campaign.is_some() {
                rerun_effect(state)
            } else {
                Vec::new()
            }
        }
        Action::EditorInput(key) => editor_input(state, key),
        Action::MoreLikeThis => more_like_this(state),
        Action::Widen => widen_effect(state),
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
            match &mut state.campaign {
                Some(c) => {
                    c.selected = state.selected.clone();
                    vec![Effect::SaveSelection {
                        campaign_id: c.id.clone(),
                        selected: state.selected.clone(),
                    }]
                }
                None => Vec::new(),
            }
        }
        Action::Submit => match state.pane {
            Pane::Brief | Pane::References => search_effect(state),
            Pane::Prompt => write_prompt(state),
            Pane::Generate => generate(state),
            _ => Vec::new(),
        },
        Action::SaveEdit => {
            let Some(id) = open_campaign_id(state) else {
                return Vec::new();
            };
            let prompt = state.prompt_editor.lines().join("\n").trim().to_string();
            if prompt.is_empty() {
                error(state, "The prompt is empty; nothing saved.");
                return Vec::new();
            }
            vec![Effect::SavePromptEdit {
                campaign_id: id,
                prompt,
                negative: state.negative_editor.lines().join(" ").trim().to_string(),
            }]
        }
        Action::RestorePrompt => match open_campaign_id(state) {
            Some(id) => vec![Effect::RestorePrompt { campaign_id: id }],
            None => Vec::new(),
        },
        Action::Generate => generate(state),
        Action::GalleryPrev | Action::GalleryNext => {
            let d = if action == Action::GalleryNext { 1 } else { -1 };
            move_cursor(&mut state.gallery_cursor, state.gallery.len(), d);
            Vec::new()
        }
        Action::MoodBoard => match open_campaign_id(state) {
            Some(id) => vec![Effect::MoodBoard { campaign_id: id }],
            None => Vec::new(),
        },
        Action::StartIngest => {
            if state.ingest_job.is_some() {
                error(state, "An ingest is already running (Esc cancels it).");
            } else {
                state.ingest_path = Some(line_editor(""));
                info(
                    state,
                    "Folder to ingest (a manifest.jsonl or .csv inside is used), then Enter.",
                );
            }
            Vec::new()
        }
        Action::Cancel => {
            if state.show_help {
                state.show_help = false;
                return Vec::new();
            }
            if state.preview.take().is_some() {
                return Vec::new();
            }
            if state.renaming.take().is_some() || state.ingest_path.take().is_some() {
                info(state, "Kept.");
                return Vec::new();
            }
            if state.confirm_delete.take().is_some() {
                info(state, "Kept.");
                return Vec::new();
            }
            let mut effects = Vec::new();
            for job in [
                state.search_job.take(),
                state.prompt_job.take(),
                state.gen_job.take(),
                state.ingest_job.take(),
            ]
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
        Action::BrandsLoaded(list) => {
            state.brands = list;
            Vec::new()
        }
        Action::StatsLoaded(s) => {
            state.stats = Some(*s);
            Vec::new()
        }
        Action::IndexStatus(s) => {
            state.index_status = Some(s);
            Vec::new()
        }
        Action::AssetsLoaded(list) => {
            state.assets = list;
            state.assets_cursor = state
                .assets_cursor
                .min(state.assets.len().saturating_sub(1));
            Vec::new()
        }
        Action::CampaignOpened(opened) => {
            opened_campaign(state, *opened);
            Vec::new()
        }
        Action::SearchDone {
            job,
            campaign,
            hits,
            query,
            widen_offer,
            read_as,
        } => {
            if state.search_job != Some(job) {
                return Vec::new(); // stale
            }
            state.search_job = None;
            let outside = hits.iter().filter(|h| h.outside_filter).count();
            let said_read_as = read_as.clone();
            let read_as = read_as
                .map(|said| {
                    let mut c = said.chars();
                    let first = c.next().map(|f| f.to_uppercase().collect::<String>());
                    format!(" {}{}.", first.unwrap_or_default(), c.as_str())
                })
                .unwrap_or_default();
            match (&widen_offer, outside) {
                (Some(offer), _) => info(
                    state,
                    format!(
                        "{} reference(s) found; {offer}: press w.{read_as}",
                        hits.len()
                    ),
                ),
                (None, 0) => info(
                    state,
                    format!("{} reference(s) found.{read_as}", hits.len()),
                ),
                (None, n) => info(
                    state,
                    format!(
                        "{} reference(s) found, {n} of them outside the campaign's objective and audience.{read_as}",
                        hits.len()
                    ),
                ),
            }
            state.widen_offer = widen_offer;
            state.read_as = said_read_as;
            let new_campaign = state.campaign.as_ref().map(|c| &c.id) != Some(&campaign.id);
            state.hits = hits;
            state.search_query = query;
            state.refs_cursor = 0;
            if new_campaign {
                // A new campaign (or a new version after the brief changed) starts fresh.
                state.selected = campaign.selected.clone();
                state.versions.clear();
                show_version(state, None);
                state.gallery.clear();
            }
            state.name = line_editor(&campaign.name);
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
            state.instruction = line_editor("");
            info(
                state,
                format!("Prompt version {} written and saved.", version.id),
            );
            version_saved(state, *version);
            vec![Effect::LoadCampaigns]
        }
        Action::PromptSaved(version) => {
            info(state, format!("Saved as prompt version {}.", version.id));
            version_saved(state, *version);
            Vec::new()
        }
        Action::Generated {
            job,
            images,
            withheld,
        } => {
            if state.gen_job != Some(job) {
                return Vec::new();
            }
            state.gen_job = None;
            let close = images
                .iter()
                .filter(|i| i.novelty.as_ref().is_some_and(|n| n.too_close))
                .count();
            let mut text = format!("{} image(s) generated and saved.", images.len());
            if close > 0 {
                text.push_str(&format!(
                    " {close} flagged as too close to a library image."
                ));
            }
            if !withheld.is_empty() {
                text.push_str(&format!(
                    " {} withheld by the content filter (not saved).",
                    withheld.len()
                ));
            }
            info(state, text);
            state.gallery_cursor = state.gallery.len();
            state.gallery.extend(images);
            vec![Effect::LoadCampaigns]
        }
        Action::KeptAfterCancel {
            campaign_id,
            images,
        } => {
            if images.is_empty() {
                return Vec::new();
            }
            info(
                state,
                format!(
                    "Cancelled; {} image(s) the model had already made (and that were paid for) are kept in the gallery.",
                    images.len()
                ),
            );
            if state.campaign.as_ref().is_some_and(|c| c.id == campaign_id) {
                state.gallery.extend(images);
            }
            vec![Effect::LoadCampaigns]
        }
        Action::IngestProgress { job, event } => {
            if state.ingest_job != Some(job) {
                return Vec::new();
            }
            let p = state.ingest.get_or_insert_with(IngestProgress::default);
            match event {
                IngestEvent::Planned { total, to_process } => {
                    p.total = total;
                    p.to_process = to_process;
                }
                IngestEvent::Item { item, outcome } => {
                    p.done += 1;
                    match outcome {
                        Outcome::Ingested => p.ingested += 1,
                        Outcome::Updated => p.updated += 1,
                        Outcome::Unchanged => p.unchanged += 1,
                        Outcome::Failed(reason) => {
                            p.failed += 1;
                            p.last_error = Some(format!("{item}: {reason}"));
                        }
                    }
                    p.last = item;
                }
            }
            Vec::new()
        }
        Action::IngestDone { job, report } => {
            if state.ingest_job != Some(job) {
                return Vec::new();
            }
            state.ingest_job = None;
            info(
                state,
                format!(
                    "Ingest {}: {} new, {} updated, {} unchanged, {} failed.",
                    if report.cancelled {
                        "cancelled"
                    } else {
                        "done"
                    },
                    report.ingested,
                    report.updated,
                    report.unchanged,
                    report.failed.len()
                ) + &match report.inferred {
                    0 => String::new(),
                    1 => " 1 photo nobody described had its borrowed words brought up to date."
                        .into(),
                    n => format!(
                        " {n} photos nobody described had their borrowed words brought up to date."
                    ),
                },
            );
            vec![Effect::LoadStats, Effect::LoadAssets]
        }
        Action::ImageReady { key, slot } => {
            // Bounded: the encoder keeps its own cache, so dropping here only costs a re-send.
            if state.images.len() >= 512 {
                state.images.clear();
            }
            state.images.insert(key, slot);
            Vec::new()
        }
        Action::Notice(text) => {
            info(state, text);
            Vec::new()
        }
        Action::Exported { dir, summary } => {
            info(
                state,
                format!("{summary} (Ctrl-Y in Sessions copies the folder)"),
            );
            state.last_export = Some(dir);
            Vec::new()
        }
        Action::Copy => copy(state),
        Action::JobFailed { job, error: e } => {
            if state.search_job == Some(job) {
                state.search_job = None;
            } else if state.prompt_job == Some(job) {
                state.prompt_job = None;
            } else if state.gen_job == Some(job) {
                state.gen_job = None;
            } else if state.ingest_job == Some(job) {
                state.ingest_job = None;
            } else if job != 0 {
                return Vec::new();
            }
            error(state, e);
            Vec::new()
        }
    }
}

fn version_saved(state: &mut State, version: PromptVersion) {
    state.versions.push(version.clone());
    state.versions_cursor = state.versions.len() - 1;
    show_version(state, Some(version));
}

fn opened_campaign(state: &mut State, opened: OpenedCampaign) {
    reset_campaign(state);
    let OpenedCampaign {
        campaign,
        hits,
        query,
        widen_offer,
        read_as,
        versions,
        gallery,
        view,
    } = opened;
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
    state.brand = campaign
        .brand
        .as_ref()
        .and_then(|b| state.brands.iter().position(|k| k.name == b.name));
    state.selected = campaign.selected.clone();
    state.hits = hits;
    state.search_query = query;
    state.widen_offer = widen_offer;
    state.read_as = read_as;
    state.gallery = gallery;
    state.versions = versions;
    state.versions_cursor = state.versions.len().saturating_sub(1);
    let latest = state.versions.last().cloned();
    show_version(state, latest);
    state.name = line_editor(&campaign.name);
    state.brief = text_editor(&campaign.brief);
    state.pane = Pane::Brief;
    if let Some(v) = view {
        state.pane = v.pane;
        if !v.name_draft.is_empty() {
            state.name = line_editor(&v.name_draft);
        }
        if !v.brief_draft.is_empty() {
            state.brief = text_editor(&v.brief_draft);
        }
        state.brief_field = v.brief_field;
        state.query = line_editor(&v.query);
        if let Some(b) = &v.brand {
            state.brand = state.brands.iter().position(|k| k.name == *b);
        }
        if v.k > 0 {
            state.k = v.k;
        }
        state.kpi_weight = v.kpi_weight;
        state.refs_cursor = v.refs_cursor.min(state.hits.len().saturating_sub(1));
        state.prompt_field = v.prompt_field;
        if let Some(id) = v.prompt_version
            && let Some(p) = state.versions.iter().find(|p| p.id == id).cloned()
        {
            show_version(state, Some(p));
        }
        state.prompt_editor = text_editor(&v.prompt_draft);
        state.negative_editor = text_editor(&v.negative_draft);
        state.instruction = line_editor(&v.instruction);
        state.versions_cursor = v
            .versions_cursor
            .min(state.versions.len().saturating_sub(1));
        state.gen_form = v.gen_form;
        state.gallery_cursor = v.gallery_cursor.min(state.gallery.len().saturating_sub(1));
    }
    state.saved_view = Some((campaign.id.clone(), state.view()));
    state.campaign = Some(campaign);
}

fn pane_entered(state: &mut State) -> Vec<Effect> {
    match state.pane {
        Pane::Sessions => vec![Effect::LoadCampaigns],
        Pane::Library => vec![Effect::LoadStats, Effect::LoadAssets],
        _ => Vec::new(),
    }
}
