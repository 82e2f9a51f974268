//! Rendering: a pure function of `&State` (plus the keymap and theme). It survives any size;
//! below the minimum it says the terminal is too small. Images it would draw but does not have
//! yet are returned, so the runtime can have them encoded off the UI thread.
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Borders, Clear, Gauge, List, ListItem, ListState, Paragraph, Tabs, Wrap,
};
use ratatui_textarea::TextArea;

use crate::app::keymap::{Binding, hints};
use crate::app::state::{
    ASPECTS, BriefField, GEN_FIELDS, ImageKey, ImageSlot, PromptField, ToastKind,
};
use crate::app::update::{DETAIL_WIDTH, TILE, grid_cols};
use crate::app::{Pane, State};
use crate::domain::{Quality, TaskType};

pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Styles by meaning. Colours come from `[studio.theme]`; with NO_COLOR only bold, dim,
/// italic and reverse mark the roles.
#[derive(Debug, Clone)]
pub struct Theme {
    pub accent: Style,
    pub muted: Style,
    pub selection: Style,
    pub error: Style,
    pub success: Style,
    pub reasoning: Style,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            accent: Style::new().fg(Color::Cyan),
            muted: Style::new().fg(Color::DarkGray),
            selection: Style::new().add_modifier(Modifier::REVERSED),
            error: Style::new().fg(Color::Red),
            success: Style::new().fg(Color::Green),
            reasoning: Style::new().fg(Color::Yellow),
        }
    }
}

impl Theme {
    /// Without colours (NO_COLOR).
    pub fn plain() -> Self {
        Theme {
            accent: Style::new().add_modifier(Modifier::BOLD),
            muted: Style::new().add_modifier(Modifier::DIM),
            selection: Style::new().add_modifier(Modifier::REVERSED),
            error: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            success: Style::new(),
            reasoning: Style::new().add_modifier(Modifier::ITALIC),
        }
    }

    /// From `[studio.theme]` (validated by the config), or plain when `no_color`.
    pub fn from_config(roles: &std::collections::BTreeMap<String, String>, no_color: bool) -> Self {
        if no_color {
            return Theme::plain();
        }
        let mut t = Theme::default();
        for (role, colour) in roles {
            let Ok(c) = colour.parse::<Color>() else {
                continue;
            };
            let style = Style::new().fg(c);
            match role.as_str() {
                "accent" => t.accent = style,
                "muted" => t.muted = style,
                "selection" => t.selection = style.add_modifier(Modifier::REVERSED),
                "error" => t.error = style,
                "success" => t.success = style,
                "reasoning" => t.reasoning = style,
                _ => {}
            }
        }
        t
    }
}

/// What rendering needs besides the state.
pub struct Ui {
    pub keymap: Vec<Binding>,
    pub theme: Theme,
}

impl Ui {
    pub fn new(keymap: Vec<Binding>) -> Self {
        Ui {
            keymap,
            theme: Theme::default(),
        }
    }
}

struct Ctx<'a> {
    state: &'a State,
    theme: &'a Theme,
    /// Images drawn as placeholders because they are not encoded yet.
    missing: Vec<ImageKey>,
}

/// Draws the studio; returns the images it wanted but does not have yet.
pub fn render(f: &mut Frame, state: &State, ui: &Ui) -> Vec<ImageKey> {
    let mut cx = Ctx {
        state,
        theme: &ui.theme,
        missing: Vec::new(),
    };
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small ({}x{}); need {MIN_WIDTH}x{MIN_HEIGHT}.",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return Vec::new();
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
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(cx.theme.accent.add_modifier(Modifier::BOLD))
            .divider("│"),
        tabs,
    );
    let proto = format!("images: {} ", state.image_protocol);
    let pw = proto.chars().count() as u16;
    if tabs.width > pw + 70 {
        f.render_widget(
            Paragraph::new(proto).style(cx.theme.muted),
            Rect::new(tabs.right() - pw, tabs.y, pw, 1),
        );
    }
    let title = match &state.campaign {
        Some(c) => format!(" {} ", c.name),
        None => " campaign-studio ".to_string(),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(main);
    f.render_widget(block, main);
    match state.pane {
        Pane::Sessions => sessions(f, inner, &mut cx),
        Pane::Brief => brief(f, inner, &mut cx),
        Pane::References => references(f, inner, &mut cx),
        Pane::Prompt => prompt(f, inner, &mut cx),
        Pane::Generate => generate(f, inner, &mut cx),
        Pane::Library => library(f, inner, &mut cx),
    }
    if let Some(t) = &state.toast {
        let style = if t.kind == ToastKind::Error {
            cx.theme.error
        } else {
            cx.theme.success
        };
        f.render_widget(Paragraph::new(t.text.as_str()).style(style), toast);
    } else if state.busy() {
        f.render_widget(
            Paragraph::new("working… (Esc cancels)").style(cx.theme.muted),
            toast,
        );
    }
    let hint: Vec<Span> = hints(&ui.keymap, state.pane)
        .into_iter()
        .take(7)
        .flat_map(|(k, d)| {
            [
                Span::styled(format!(" {k} "), cx.theme.accent),
                Span::raw(format!("{d} ")),
            ]
        })
        .collect();
    f.render_widget(
        Paragraph::new(Line::from(hint)).style(cx.theme.muted),
        status,
    );
    if let Some(ix) = &state.index_status {
        let text = format!("{ix} ");
        let w = text.chars().count() as u16;
        if status.width > w + 60 {
            f.render_widget(
                Paragraph::new(text).style(cx.theme.muted),
                Rect::new(status.right() - w, status.y, w, 1),
            );
        }
    }
    if state.preview.is_some() {
        preview(f, main, &mut cx);
    }
    if state.show_help {
        help(f, area, state, ui);
    }
    cx.missing
}

/// Draws an image fitted into `area`, or a placeholder while it is being encoded.
fn image(f: &mut Frame, area: Rect, path: &str, cx: &mut Ctx) {
    if area.width == 0 || area.height == 0 || path.is_empty() {
        return;
    }
    if !cx.state.images_enabled {
        return;
    }
    let key = ImageKey {
        path: path.to_string(),
        cols: area.width,
        rows: area.height,
    };
    match cx.state.images.get(&key) {
        Some(ImageSlot::Ready(enc)) => {
            f.render_widget(ratatui_image::Image::new(&enc.0), area);
        }
        Some(ImageSlot::Failed(e)) => {
            f.render_widget(
                Paragraph::new(format!("no preview: {e}"))
                    .style(cx.theme.muted)
                    .wrap(Wrap { trim: true }),
                area,
            );
        }
        None => {
            f.render_widget(Paragraph::new("…").style(cx.theme.muted), area);
            cx.missing.push(key);
        }
    }
}

fn editor_block<'a>(title: &'a str, focused: bool, theme: &Theme) -> Block<'a> {
    let b = Block::default().borders(Borders::ALL).title(title);
    if focused {
        b.border_style(theme.accent)
    } else {
        b.border_style(theme.muted)
    }
}

/// An editor in a titled box; only the focused one shows its cursor.
fn draw_editor(
    f: &mut Frame,
    area: Rect,
    editor: &TextArea<'static>,
    title: &str,
    focused: bool,
    theme: &Theme,
) {
    let block = editor_block(title, focused, theme);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if focused {
        f.render_widget(editor, inner);
    } else {
        // Unfocused editors show their text without a cursor.
        f.render_widget(
            Paragraph::new(editor.lines().join("\n")).wrap(Wrap { trim: false }),
            inner,
        );
    }
}

fn sessions(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    if state.campaigns.is_empty() {
        f.render_widget(
            Paragraph::new("No campaigns yet. Press n to write a brief.").style(cx.theme.muted),
            area,
        );
        return;
    }
    let [list, edit] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(if state.renaming.is_some() { 3 } else { 0 }),
    ])
    .areas(area);
    let items: Vec<ListItem> = state
        .campaigns
        .iter()
        .map(|c| {
            ListItem::new(Line::from(vec![
                Span::raw(format!(
                    "{:<30} ",
                    c.name.chars().take(30).collect::<String>()
                )),
                Span::styled(format!("{:<11}", c.step.as_str()), cx.theme.accent),
                Span::styled(
                    format!("{}/{}  {}", c.objective, c.node, c.updated_at),
                    cx.theme.muted,
                ),
            ]))
        })
        .collect();
    let mut ls = ListState::default().with_selected(Some(state.sessions_cursor));
    f.render_stateful_widget(
        List::new(items).highlight_style(cx.theme.selection),
        list,
        &mut ls,
    );
    if let Some(editor) = &state.renaming {
        draw_editor(
            f,
            edit,
            editor,
            " Rename (Enter saves, Esc keeps) ",
            true,
            cx.theme,
        );
    }
}

fn brief(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    let [name, editor, query, pickers] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(area);
    let focus = state.brief_field;
    let name_title = if state.name.lines().join("").is_empty() && focus != BriefField::Name {
        " Name: (new campaign: named from the brief's first line) "
    } else {
        " Name "
    };
    draw_editor(
        f,
        name,
        &state.name,
        name_title,
        focus == BriefField::Name,
        cx.theme,
    );
    draw_editor(
        f,
        editor,
        &state.brief,
        " Brief (Enter: new line, Ctrl-S: save and search, Ctrl-F: next field) ",
        focus == BriefField::Brief,
        cx.theme,
    );
    draw_editor(
        f,
        query,
        &state.query,
        " Extra search query (optional; replaces the brief as the search text) ",
        focus == BriefField::Query,
        cx.theme,
    );
    let pick = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_else(|| "?".into());
    let brand = state
        .brand_kit()
        .map(|b| b.name.clone())
        .unwrap_or_else(|| "none".into());
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Objective "),
            Span::styled(pick(&state.objectives, state.objective), cx.theme.accent),
            Span::raw("  Audience "),
            Span::styled(pick(&state.nodes, state.node), cx.theme.accent),
            Span::raw("  Brand kit "),
            Span::styled(brand, cx.theme.accent),
            Span::styled("  (Ctrl-O / Ctrl-N / Ctrl-B to change)", cx.theme.muted),
        ])),
        pickers,
    );
}

/// One tile of an image grid: image, then two lines of text.
fn tile(
    f: &mut Frame,
    area: Rect,
    path: &str,
    title: String,
    lines: [Line; 2],
    focused: bool,
    cx: &mut Ctx,
) {
    let style = if focused {
        cx.theme.accent.add_modifier(Modifier::BOLD)
    } else {
        cx.theme.muted
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [img, text] = Layout::vertical([Constraint::Min(1), Constraint::Length(2)]).areas(inner);
    image(f, img, path, cx);
    f.render_widget(Paragraph::new(lines.to_vec()), text);
}

/// Lays out `n` tiles in `area` (scrolled so `cursor` is visible); calls `draw` for each.
fn grid(
    f: &mut Frame,
    area: Rect,
    n: usize,
    cursor: usize,
    cx: &mut Ctx,
    draw: &mut dyn FnMut(&mut Frame, Rect, usize, &mut Ctx),
) {
    let cols = ((area.width / TILE.0).max(1)) as usize;
    let rows_visible = ((area.height / TILE.1).max(1)) as usize;
    let cursor_row = cursor / cols;
    let first_row = cursor_row.saturating_sub(rows_visible - 1);
    for i in first_row * cols..n.min((first_row + rows_visible) * cols) {
        let r = (i / cols - first_row) as u16;
        let c = (i % cols) as u16;
        let rect = Rect::new(
            area.x + c * TILE.0,
            area.y + r * TILE.1,
            TILE.0,
            TILE.1.min(area.height),
        )
        .intersection(area);
        if rect.height >= 4 {
            draw(f, rect, i, cx);
        }
    }
}

fn references(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    if state.hits.is_empty() {
        f.render_widget(
            Paragraph::new("No references yet: write a brief and press Ctrl-S.")
                .style(cx.theme.muted),
            area,
        );
        return;
    }
    let brief = state
        .campaign
        .as_ref()
        .map(|c| c.brief.trim())
        .unwrap_or("");
    let shows_query = !state.search_query.is_empty() && state.search_query.trim() != brief;
    let [head, query, read_as, offer, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(shows_query as u16),
        Constraint::Length(state.read_as.is_some() as u16),
        Constraint::Length(state.widen_offer.is_some() as u16),
        Constraint::Min(1),
    ])
    .areas(area);
    if let Some(o) = &state.widen_offer {
        f.render_widget(
            Paragraph::new(format!("[w] {o}")).style(cx.theme.error),
            offer,
        );
    }
    if shows_query {
        f.render_widget(
            Paragraph::new(format!("searched as: {}", state.search_query)).style(cx.theme.accent),
            query,
        );
    }
    if let Some(said) = &state.read_as {
        f.render_widget(Paragraph::new(said.as_str()).style(cx.theme.muted), read_as);
    }
    f.render_widget(
        Paragraph::new(format!(
            "{} selected of {} · k = {} · KPI weight {:.2} · objective {} · audience {}{}",
            state.selected.len(),
            state.hits.len(),
            state.k,
            state.kpi_weight,
            state
                .campaign
                .as_ref()
                .map(|c| c.objective.as_str())
                .unwrap_or("?"),
            state
                .campaign
                .as_ref()
                .map(|c| c.node.as_str())
                .unwrap_or("?"),
            match state.hits.iter().filter(|h| h.outside_filter).count() {
                0 => String::new(),
                n => format!(" · {n} ↗ outside the filter"),
            },
        ))
        .style(cx.theme.muted),
        head,
    );
    // The same column rule `update` uses for ↑/↓.
    let cols = grid_cols(state.size.0) as u16;
    let grid_w = (cols * TILE.0).min(body.width);
    let [grid_area, detail] =
        Layout::horizontal([Constraint::Length(grid_w), Constraint::Min(0)]).areas(body);
    grid(
        f,
        grid_area,
        state.hits.len(),
        state.refs_cursor,
        cx,
        &mut |f, rect, i, cx| {
            let h = &cx.state.hits[i];
            let mark = if cx.state.selected.contains(&h.asset_id) {
                "[x]"
            } else {
                "[ ]"
            };
            let label = h.external_id.clone().unwrap_or_else(|| h.file.clone());
            let w = rect.width.saturating_sub(8) as usize;
            tile(
                f,
                rect,
                &h.thumbnail_path,
                format!("{mark} {}", label.chars().take(w).collect::<String>()),
                [
                    match h.strength.and_then(|s| s.level) {
                        Some(l) => Line::styled(
                            format!("{} · sim {:.2}", l.as_str(), h.similarity),
                            strength_style(l, cx.theme),
                        ),
                        None => Line::styled(format!("sim {:.2}", h.similarity), cx.theme.muted),
                    },
                    if h.outside_filter {
                        Line::styled(format!("↗ {}/{}", h.objective, h.node), cx.theme.error)
                    } else {
                        Line::styled(
                            format!(
                                "KPI p{:.0} · score {:.2}",
                                h.kpi_percentile * 100.0,
                                h.score
                            ),
                            cx.theme.accent,
                        )
                    },
                ],
                i == cx.state.refs_cursor,
                cx,
            );
        },
    );
    if detail.width >= DETAIL_WIDTH / 2
        && let Some(h) = state.hits.get(state.refs_cursor)
    {
        let text = vec![
            Line::styled(
                h.external_id.clone().unwrap_or_else(|| h.file.clone()),
                cx.theme.accent,
            ),
            Line::raw(h.description.clone()),
        ];
        let mut text = text;
        if let Some(i) = &h.inferred {
            text.push(Line::styled(i.clone(), cx.theme.muted));
        }
        text.extend([
            Line::raw(""),
            Line::styled(h.match_line(), cx.theme.muted),
            Line::styled(
                format!("Elements: {}", h.elements.join(", ")),
                cx.theme.muted,
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
                cx.theme.muted,
            ),
        ]);
        f.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::LEFT)),
            detail,
        );
    }
}

fn strength_style(level: crate::domain::StrengthLevel, theme: &Theme) -> Style {
    match level {
        crate::domain::StrengthLevel::Strong => theme.success,
        crate::domain::StrengthLevel::Fair => theme.accent,
        crate::domain::StrengthLevel::Weak => theme.muted,
    }
}

/// The last `n` lines of `text` (whole lines plus the live tail).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn prompt(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    let [left, versions] =
        Layout::horizontal([Constraint::Min(30), Constraint::Length(30)]).areas(area);
    let streaming = state.prompt_job.is_some();
    let [scratch, answer, negative, instruction] = Layout::vertical([
        Constraint::Percentage(40),
        Constraint::Min(4),
        Constraint::Length(4),
        Constraint::Length(3),
    ])
    .areas(left);
    let rows = scratch.height.saturating_sub(1) as usize;
    let scratch_title = if streaming {
        " Scratchpad (streaming…) "
    } else {
        " Scratchpad "
    };
    f.render_widget(
        Paragraph::new(tail(&state.reasoning, rows))
            .style(cx.theme.reasoning)
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::BOTTOM)
                    .title(scratch_title),
            ),
        scratch,
    );
    let focus = state.prompt_field;
    if streaming {
        f.render_widget(
            Paragraph::new(state.answer.as_str())
                .wrap(Wrap { trim: true })
                .block(editor_block(" Prompt (streaming…) ", false, cx.theme)),
            answer,
        );
    } else if state.prompt.is_none() && state.prompt_editor.is_empty() {
        f.render_widget(
            Paragraph::new("Ctrl-S writes a prompt from the brief and the selected references.")
                .style(cx.theme.muted)
                .block(editor_block(
                    " Prompt ",
                    focus == PromptField::Prompt,
                    cx.theme,
                )),
            answer,
        );
    } else {
        let mut title = " Prompt ".to_string();
        if let Some(p) = &state.prompt {
            title = format!(" Prompt · version {} · {:?} · {} ", p.id, p.source, p.model);
            if p.prompt != state.prompt_editor.lines().join("\n") {
                title.push_str("· edited (Ctrl-E saves) ");
            }
        }
        draw_editor(
            f,
            answer,
            &state.prompt_editor,
            &title,
            focus == PromptField::Prompt,
            cx.theme,
        );
    }
    draw_editor(
        f,
        negative,
        &state.negative_editor,
        " Negative prompt ",
        focus == PromptField::Negative,
        cx.theme,
    );
    draw_editor(
        f,
        instruction,
        &state.instruction,
        " Re-run instruction (Enter or Ctrl-S re-writes with it) ",
        focus == PromptField::Instruction,
        cx.theme,
    );
    let items: Vec<ListItem> = state
        .versions
        .iter()
        .map(|v| {
            let mut l = format!("v{} {:?}", v.id, v.source);
            if let Some(i) = &v.instruction {
                l.push_str(&format!(" “{}”", i.chars().take(14).collect::<String>()));
            }
            if state.prompt.as_ref().is_some_and(|p| p.id == v.id) {
                l.push_str(" ◀");
            }
            ListItem::new(l)
        })
        .collect();
    let mut ls = ListState::default().with_selected(
        (focus == PromptField::Versions && !state.versions.is_empty())
            .then_some(state.versions_cursor),
    );
    let mut notes: Vec<Line> = Vec::new();
    if let Some(p) = &state.prompt {
        for flag in &p.flags {
            notes.push(Line::styled(format!("Note: {flag}"), cx.theme.error));
        }
    }
    let [vlist, vnotes] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(notes.len().min(6) as u16 * 2),
    ])
    .areas(versions);
    f.render_stateful_widget(
        List::new(items)
            .block(editor_block(
                " Versions (Enter shows) ",
                focus == PromptField::Versions,
                cx.theme,
            ))
            .highlight_style(cx.theme.selection),
        vlist,
        &mut ls,
    );
    f.render_widget(Paragraph::new(notes).wrap(Wrap { trim: true }), vnotes);
}

fn generate(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    let [form, gallery] =
        Layout::horizontal([Constraint::Length(34), Constraint::Min(10)]).areas(area);
    let g = &state.gen_form;
    let values = [
        g.count.to_string(),
        ASPECTS[g.aspect % ASPECTS.len()].to_string(),
        g.seed
            .map(|s| s.to_string())
            .unwrap_or_else(|| "random".into()),
        format!("{:.1}", g.cfg),
        match g.quality {
            Quality::Standard => "standard".into(),
            Quality::Premium => "premium".into(),
        },
        match g.task {
            TaskType::Text => "text to image".into(),
            TaskType::Variation => "variation of refs".into(),
            TaskType::ColorGuided => "colour-guided".into(),
        },
    ];
    let mut lines: Vec<Line> = Vec::new();
    match &state.generator {
        Some(caps) => {
            lines.push(Line::styled(
                format!("Model: {}", caps.model),
                cx.theme.accent,
            ));
            if let Some(n) = &caps.notice {
                lines.push(Line::styled(n.clone(), cx.theme.error));
            }
        }
        None => {
            lines.push(Line::styled(
                "No image generator is configured.",
                cx.theme.error,
            ));
            lines.push(Line::raw(
                "The embedded default has no text-to-image model (no registry package carries one): nothing is generated offline, and nothing is saved as generated unless a model made it.",
            ));
            lines.push(Line::raw("Press m for a mood board (references, colours, prompt; a PNG, not a generated image)."));
            lines.push(Line::styled(
                "A cloud generator is configured with generator.backend.",
                cx.theme.muted,
            ));
        }
    }
    lines.push(Line::raw(""));
    for (i, (name, value)) in GEN_FIELDS.iter().zip(values).enumerate() {
        let style = if i == g.field {
            cx.theme.selection
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{name:>10}  "), cx.theme.muted),
            Span::styled(format!("‹ {value} ›"), style),
        ]));
    }
    lines.push(Line::styled(
        "↑↓ field · ←→ value · digits type a seed · g generate",
        cx.theme.muted,
    ));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::RIGHT)
                .title(" Parameters "),
        ),
        form,
    );
    if state.gallery.is_empty() {
        f.render_widget(
            Paragraph::new(" No generated images yet.").style(cx.theme.muted),
            gallery,
        );
        return;
    }
    grid(
        f,
        gallery,
        state.gallery.len(),
        state.gallery_cursor,
        cx,
        &mut |f, rect, i, cx| {
            let img = &cx.state.gallery[i];
            let flag = match &img.novelty {
                Some(n) if n.too_close => {
                    Line::styled(format!("too close ({:.2})", n.similarity), cx.theme.error)
                }
                Some(n) => Line::styled(format!("novel ({:.2})", n.similarity), cx.theme.success),
                None => Line::styled("novelty unknown", cx.theme.muted),
            };
            tile(
                f,
                rect,
                &img.path,
                format!("seed {}", img.seed),
                [
                    flag,
                    Line::styled(format!("prompt v{}", img.prompt_version_id), cx.theme.muted),
                ],
                i == cx.state.gallery_cursor,
                cx,
            );
        },
    );
}

fn library(f: &mut Frame, area: Rect, cx: &mut Ctx) {
    let state = cx.state;
    let [stats, progress, body] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(if state.ingest.is_some() || state.ingest_path.is_some() {
            3
        } else {
            0
        }),
        Constraint::Min(1),
    ])
    .areas(area);
    match &state.stats {
        None => f.render_widget(
            Paragraph::new("Loading library stats…").style(cx.theme.muted),
            stats,
        ),
        Some(s) => {
            let fmt = |v: &[(String, u64)]| {
                v.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // Borrowing goes on the Assets line: the stats area is five rows.
            let borrowing = if s.borrowing > 0 {
                format!(", {} borrowing words from similar photos", s.borrowing)
            } else {
                String::new()
            };
            let text = vec![
                Line::raw(format!(
                    "Assets: {} ({} with a caption{borrowing}), {:.1} MB",
                    s.assets,
                    s.with_caption,
                    s.bytes as f64 / 1e6
                )),
                Line::raw(format!("Objectives: {}", fmt(&s.by_objective))),
                Line::raw(format!("Audience nodes: {}", fmt(&s.by_node))),
                Line::raw(format!("Vectors: {}", fmt(&s.embeddings))),
                Line::styled(
                    format!(
                        "Last ingest: {}   (i: ingest a folder)",
                        s.last_ingest.as_deref().unwrap_or("never")
                    ),
                    cx.theme.muted,
                ),
            ];
            f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), stats);
        }
    }
    if let Some(editor) = &state.ingest_path {
        let pick = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
        let title = format!(
            " Folder to ingest (Enter starts, Esc closes) · files without a manifest row: {} / {} (Ctrl-O / Ctrl-N) ",
            pick(&state.objectives, state.objective),
            pick(&state.nodes, state.node)
        );
        draw_editor(f, progress, editor, &title, true, cx.theme);
    } else if let Some(p) = &state.ingest {
        let ratio = if p.to_process == 0 {
            if state.ingest_job.is_some() { 0.0 } else { 1.0 }
        } else {
            (p.done as f64 / p.total.max(1) as f64).min(1.0)
        };
        let label = format!(
            "{}/{} · {} new · {} updated · {} unchanged · {} failed{}",
            p.done,
            p.total,
            p.ingested,
            p.updated,
            p.unchanged,
            p.failed,
            p.last_error
                .as_ref()
                .map(|e| format!(" · last error: {e}"))
                .unwrap_or_default()
        );
        f.render_widget(
            Gauge::default()
                .block(Block::default().borders(Borders::ALL).title(
                    if state.ingest_job.is_some() {
                        " Ingesting (Esc cancels; a re-run resumes) "
                    } else {
                        " Last ingest "
                    },
                ))
                .gauge_style(cx.theme.accent)
                .ratio(ratio)
                .label(label),
            progress,
        );
    }
    if state.assets.is_empty() {
        return;
    }
    let [list, thumb] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(TILE.0 + 4)]).areas(body);
    let items: Vec<ListItem> = state
        .assets
        .iter()
        .map(|a| {
            ListItem::new(Line::from(vec![
                Span::raw(format!(
                    "{:<22} ",
                    a.external_id
                        .clone()
                        .unwrap_or_else(|| a.file.clone())
                        .chars()
                        .take(22)
                        .collect::<String>()
                )),
                Span::styled(format!("{}/{} ", a.objective, a.node), cx.theme.muted),
                Span::raw(
                    a.description
                        .description
                        .chars()
                        .take(80)
                        .collect::<String>(),
                ),
            ]))
        })
        .collect();
    let mut ls = ListState::default().with_selected(Some(state.assets_cursor));
    f.render_stateful_widget(
        List::new(items)
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .title(" Assets (Enter: preview) "),
            )
            .highlight_style(cx.theme.selection),
        list,
        &mut ls,
    );
    if let Some(a) = state.assets.get(state.assets_cursor) {
        let r = Rect::new(
            thumb.x + 2,
            thumb.y + 1,
            TILE.0,
            TILE.1.min(thumb.height.saturating_sub(1)),
        );
        image(f, r.intersection(thumb), &a.thumbnail_path, cx);
    }
}

fn preview(f: &mut Frame, main: Rect, cx: &mut Ctx) {
    let Some(p) = &cx.state.preview else { return };
    let rect = Rect::new(
        main.x + 2,
        main.y + 1,
        main.width.saturating_sub(4),
        main.height.saturating_sub(2),
    );
    f.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(cx.theme.accent)
        .title(format!(" {} (Enter or Esc closes) ", p.title));
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let text_rows = (p.lines.len() as u16 * 2).min(inner.height / 3);
    let [img, text] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(text_rows)]).areas(inner);
    if cx.state.images_enabled {
        image(f, img, &p.path, cx);
    } else {
        f.render_widget(
            Paragraph::new(format!(
                "Inline images are off (studio.image_protocol = \"none\").\nFile: {}",
                p.path
            ))
            .style(cx.theme.muted),
            img,
        );
    }
    let lines: Vec<Line> = p.lines.iter().map(|l| Line::raw(l.clone())).collect();
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text);
}

fn help(f: &mut Frame, area: Rect, state: &State, ui: &Ui) {
    let w = area.width.min(64);
    let lines: Vec<Line> = hints(&ui.keymap, state.pane)
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>12}  "), ui.theme.accent),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_from_config_and_no_color() {
        let mut roles = std::collections::BTreeMap::new();
        roles.insert("accent".to_string(), "#0a7cff".to_string());
        let t = Theme::from_config(&roles, false);
        assert_eq!(t.accent.fg, Some(Color::Rgb(10, 124, 255)));
        assert_eq!(t.error.fg, Some(Color::Red));
        let plain = Theme::from_config(&roles, true);
        for s in [
            plain.accent,
            plain.muted,
            plain.selection,
            plain.error,
            plain.reasoning,
        ] {
            assert_eq!(s.fg, None, "NO_COLOR: no colours at all");
        }
        assert!(plain.selection.add_modifier.contains(Modifier::REVERSED));
    }
}
