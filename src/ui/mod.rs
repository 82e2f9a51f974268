//! Rendering: a pure function of `&State` (and the keymap, for generated hints). Survives any
//! size; below the minimum it says the terminal is too small.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Tabs, Wrap};

use crate::app::keymap::{Binding, hints};
use crate::app::state::ToastKind;
use crate::app::{Pane, State};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Colours by meaning; ANSI first so the terminal's theme applies.
pub mod theme {
    use super::*;
    pub fn accent() -> Style {
        Style::new().fg(Color::Cyan)
    }
    pub fn muted() -> Style {
        Style::new().fg(Color::DarkGray)
    }
    pub fn selection() -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn error() -> Style {
        Style::new().fg(Color::Red)
    }
    pub fn success() -> Style {
        Style::new().fg(Color::Green)
    }
    pub fn reasoning() -> Style {
        Style::new().fg(Color::Yellow)
    }
}

pub fn render(f: &mut Frame, state: &State, keymap: &[Binding]) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small ({}x{}); need {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [tabs, main, toast, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let titles: Vec<&str> = Pane::ALL.iter().map(|p| p.title()).collect();
    let selected = Pane::ALL.iter().position(|p| *p == state.pane).unwrap_or(0);
    let mut title = " campaign-studio ".to_string();
    if let Some(c) = &state.campaign {
        title = format!(" {} ", c.name);
    }
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(theme::accent().add_modifier(Modifier::BOLD))
            .divider("│"),
        tabs,
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(main);
    f.render_widget(block, main);
    match state.pane {
        Pane::Sessions => sessions(f, inner, state),
        Pane::Brief => brief(f, inner, state),
        Pane::References => references(f, inner, state),
        Pane::Prompt => prompt(f, inner, state),
        Pane::Generate => generate(f, inner, state),
        Pane::Library => library(f, inner, state),
    }
    if let Some(t) = &state.toast {
        let style = if t.kind == ToastKind::Error {
            theme::error()
        } else {
            theme::success()
        };
        f.render_widget(Paragraph::new(t.text.as_str()).style(style), toast);
    } else if state.busy() {
        f.render_widget(
            Paragraph::new("working… (Esc cancels)").style(theme::muted()),
            toast,
        );
    }
    let hint: Vec<Span> = hints(keymap, state.pane)
        .into_iter()
        .take(7)
        .flat_map(|(k, d)| {
            [
                Span::styled(format!(" {k} "), theme::accent()),
                Span::raw(format!("{d} ")),
            ]
        })
        .collect();
    f.render_widget(
        Paragraph::new(Line::from(hint)).style(theme::muted()),
        status,
    );
    if state.show_help {
        help(f, area, state, keymap);
    }
}

fn sessions(f: &mut Frame, area: Rect, state: &State) {
    if state.campaigns.is_empty() {
        f.render_widget(
            Paragraph::new("No campaigns yet. Press n to write a brief.").style(theme::muted()),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = state
        .campaigns
        .iter()
        .map(|c| {
            ListItem::new(Line::from(vec![
                Span::raw(format!(
                    "{:<30} ",
                    c.name.chars().take(30).collect::<String>()
                )),
                Span::styled(format!("{:<11}", c.step.as_str()), theme::accent()),
                Span::styled(
                    format!("{}/{}  {}", c.objective, c.node, c.updated_at),
                    theme::muted(),
                ),
            ]))
        })
        .collect();
    let mut ls = ListState::default().with_selected(Some(state.sessions_cursor));
    f.render_stateful_widget(
        List::new(items).highlight_style(theme::selection()),
        area,
        &mut ls,
    );
}

fn brief(f: &mut Frame, area: Rect, state: &State) {
    let [head, editor, pickers] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let name = if state.name.is_empty() {
        "(new campaign: named from the brief's first line)"
    } else {
        &state.name
    };
    f.render_widget(Paragraph::new(format!("Name: {name}")), head);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(" Brief (Enter: new line, Ctrl-S: save and search) ");
    block = block.border_style(theme::accent());
    let inner = block.inner(editor);
    f.render_widget(block, editor);
    f.render_widget(&state.brief, inner);
    let obj = state
        .objectives
        .get(state.objective)
        .map(String::as_str)
        .unwrap_or("?");
    let node = state
        .nodes
        .get(state.node)
        .map(String::as_str)
        .unwrap_or("?");
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Objective "),
            Span::styled(obj, theme::accent()),
            Span::raw("  Audience "),
            Span::styled(node, theme::accent()),
            Span::styled("  (Ctrl-O / Ctrl-N to change)", theme::muted()),
        ])),
        pickers,
    );
}

fn references(f: &mut Frame, area: Rect, state: &State) {
    if state.hits.is_empty() {
        f.render_widget(
            Paragraph::new("No references yet: write a brief and press Ctrl-S.")
                .style(theme::muted()),
            area,
        );
        return;
    }
    let [list, detail] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let items: Vec<ListItem> = state
        .hits
        .iter()
        .map(|h| {
            let mark = if state.selected.contains(&h.asset_id) {
                "[x]"
            } else {
                "[ ]"
            };
            let label = h.external_id.clone().unwrap_or_else(|| h.file.clone());
            ListItem::new(Line::from(vec![
                Span::styled(format!("{mark} "), theme::accent()),
                Span::raw(format!(
                    "{:<20} ",
                    label.chars().take(20).collect::<String>()
                )),
                Span::styled(
                    format!(
                        "sim {:.2} kpi p{:.0} score {:.2}",
                        h.similarity,
                        h.kpi_percentile * 100.0,
                        h.score
                    ),
                    theme::muted(),
                ),
            ]))
        })
        .collect();
    let mut ls = ListState::default().with_selected(Some(state.refs_cursor));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::default().title(format!(
                " {} selected of {} (k = {}) ",
                state.selected.len(),
                state.hits.len(),
                state.k
            )))
            .highlight_style(theme::selection()),
        list,
        &mut ls,
    );
    if let Some(h) = state.hits.get(state.refs_cursor) {
        let text = vec![
            Line::styled(
                h.external_id.clone().unwrap_or_else(|| h.file.clone()),
                theme::accent(),
            ),
            Line::raw(h.description.clone()),
            Line::raw(""),
            Line::styled(
                format!("Elements: {}", h.elements.join(", ")),
                theme::muted(),
            ),
            Line::styled(
                format!(
                    "KPI {}  {}/{}",
                    h.kpi
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    h.objective,
                    h.node
                ),
                theme::muted(),
            ),
        ];
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::LEFT)),
            detail,
        );
    }
}

/// The last `n` lines of `text` (whole lines plus the live tail).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn prompt(f: &mut Frame, area: Rect, state: &State) {
    let [scratch, answer] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let rows = scratch.height.saturating_sub(2) as usize;
    f.render_widget(
        Paragraph::new(tail(&state.reasoning, rows))
            .style(theme::reasoning())
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::BOTTOM)
                    .title(" Scratchpad "),
            ),
        scratch,
    );
    let mut lines = vec![Line::raw(state.answer.clone())];
    if let Some(p) = &state.prompt {
        lines.push(Line::styled(
            format!("Negative: {}", p.negative_prompt),
            theme::muted(),
        ));
        lines.push(Line::styled(
            format!("Version {} · {:?} · {}", p.id, p.source, p.model),
            theme::muted(),
        ));
        for flag in &p.flags {
            lines.push(Line::styled(format!("Note: {flag}"), theme::error()));
        }
    } else if state.answer.is_empty() {
        lines = vec![Line::styled(
            "Ctrl-S writes a prompt from the brief and the selected references.",
            theme::muted(),
        )];
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::default().title(" Prompt ")),
        answer,
    );
}

fn generate(f: &mut Frame, area: Rect, _state: &State) {
    let text = vec![
        Line::styled("No image generator is configured.", theme::error()),
        Line::raw(
            "The embedded default has no text-to-image model: no registry package carries one, so nothing",
        ),
        Line::raw(
            "is generated offline and nothing is ever saved as generated unless a model made it.",
        ),
        Line::raw(""),
        Line::raw(
            "Press m for a mood board: the selected references, their colours and the prompt, as a PNG.",
        ),
        Line::styled(
            "A cloud generator (Bedrock) can be configured with generator.backend.",
            theme::muted(),
        ),
    ];
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn library(f: &mut Frame, area: Rect, state: &State) {
    let Some(s) = &state.stats else {
        f.render_widget(
            Paragraph::new("Loading library stats…").style(theme::muted()),
            area,
        );
        return;
    };
    let fmt = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = vec![
        Line::raw(format!(
            "Assets: {} ({} with a caption), {:.1} MB",
            s.assets,
            s.with_caption,
            s.bytes as f64 / 1e6
        )),
        Line::raw(format!("Objectives: {}", fmt(&s.by_objective))),
        Line::raw(format!("Audience nodes: {}", fmt(&s.by_node))),
        Line::raw(format!("Vectors: {}", fmt(&s.embeddings))),
        Line::styled(
            format!(
                "Last ingest: {}",
                s.last_ingest.as_deref().unwrap_or("never")
            ),
            theme::muted(),
        ),
    ];
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn help(f: &mut Frame, area: Rect, state: &State, keymap: &[Binding]) {
    let w = area.width.min(60);
    let lines: Vec<Line> = hints(keymap, state.pane)
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>12}  "), theme::accent()),
                Span::raw(d),
            ])
        })
        .collect();
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" Keys: {} ", state.pane.title())),
        ),
        rect,
    );
}
