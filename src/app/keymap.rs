//! Keys to actions. Panes never match raw key codes; help and status hints are generated from
//! this table. Only key presses count (not repeats' releases).
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{Action, Pane};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Pane(Pane),
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub scope: Scope,
    pub code: KeyCode,
    pub mods: KeyModifiers,
    pub action: Action,
    /// Stable name for `[studio.keys]` overrides ("toggle", "quit").
    pub name: &'static str,
    pub desc: &'static str,
}

/// One row of the default table: (key, action, name, description).
type Row = (&'static str, Action, &'static str, &'static str);

fn rows(scope: Scope) -> Vec<Row> {
    use Action as A;
    match scope {
        Scope::Global => vec![
            ("ctrl-c", A::Quit, "quit", "quit"),
            ("ctrl-z", A::Suspend, "suspend", "suspend (fg resumes)"),
            ("tab", A::NextPane, "next_pane", "next pane"),
            ("shift-tab", A::PrevPane, "prev_pane", "previous pane"),
            ("f1", A::ToggleHelp, "help", "help"),
            ("esc", A::Cancel, "cancel", "close / cancel job"),
            (
                "ctrl-y",
                A::Copy,
                "copy",
                "copy to clipboard (prompt, id, path)",
            ),
        ],
        Scope::Pane(Pane::Sessions) => vec![
            ("up", A::Up, "up", "up"),
            ("down", A::Down, "down", "down"),
            ("enter", A::Open, "open", "open"),
            ("n", A::NewCampaign, "new", "new campaign"),
            ("r", A::RenameCampaign, "rename", "rename"),
            ("e", A::ExportCampaign, "export", "export"),
            ("d", A::DeleteCampaign, "delete", "delete"),
            ("y", A::Confirm, "confirm", "confirm"),
            ("q", A::Quit, "quit", "quit"),
            ("?", A::ToggleHelp, "help", "help"),
        ],
        Scope::Pane(Pane::Brief) => vec![
            ("ctrl-s", A::Submit, "search", "save brief and search"),
            ("ctrl-f", A::NextField, "next_field", "next field"),
            ("ctrl-o", A::CycleObjective, "objective", "objective"),
            ("ctrl-n", A::CycleNode, "node", "audience node"),
            ("ctrl-b", A::CycleBrand, "brand", "brand kit"),
        ],
        Scope::Pane(Pane::References) => vec![
            ("space", A::Toggle, "toggle", "use / drop"),
            ("enter", A::Open, "preview", "large preview"),
            ("m", A::MoreLikeThis, "like", "more like this image"),
            ("w", A::Widen, "widen", "widen the filter"),
            ("up", A::Up, "up", "up"),
            ("down", A::Down, "down", "down"),
            ("left", A::Left, "left", "left"),
            ("right", A::Right, "right", "right"),
            ("+", A::MoreResults, "more", "more results"),
            ("-", A::FewerResults, "fewer", "fewer results"),
            ("]", A::MoreKpiWeight, "kpi_up", "more KPI weight"),
            ("[", A::LessKpiWeight, "kpi_down", "less KPI weight"),
            ("ctrl-s", A::Submit, "search", "search again"),
            ("?", A::ToggleHelp, "help", "help"),
        ],
        Scope::Pane(Pane::Prompt) => vec![
            (
                "ctrl-s",
                A::Submit,
                "write",
                "write with AI (uses the instruction)",
            ),
            (
                "ctrl-e",
                A::SaveEdit,
                "save_edit",
                "save my edit as a version",
            ),
            ("ctrl-r", A::RestorePrompt, "restore", "restore AI version"),
            ("ctrl-f", A::NextField, "next_field", "next field"),
            ("up", A::Up, "up", "version up"),
            ("down", A::Down, "down", "version down"),
        ],
        Scope::Pane(Pane::Generate) => vec![
            ("g", A::Generate, "generate", "generate"),
            ("up", A::Up, "up", "field up"),
            ("down", A::Down, "down", "field down"),
            ("left", A::Left, "less", "value down"),
            ("right", A::Right, "more", "value up"),
            ("[", A::GalleryPrev, "prev_image", "previous image"),
            ("]", A::GalleryNext, "next_image", "next image"),
            ("enter", A::Open, "preview", "large preview"),
            ("m", A::MoodBoard, "moodboard", "mood board"),
            ("e", A::ExportCampaign, "export", "export"),
            ("?", A::ToggleHelp, "help", "help"),
        ],
        Scope::Pane(Pane::Library) => vec![
            ("i", A::StartIngest, "ingest", "ingest a folder"),
            (
                "ctrl-o",
                A::CycleObjective,
                "objective",
                "objective for files without one",
            ),
            (
                "ctrl-n",
                A::CycleNode,
                "node",
                "audience for files without one",
            ),
            ("up", A::Up, "up", "up"),
            ("down", A::Down, "down", "down"),
            ("enter", A::Open, "preview", "large preview"),
            ("?", A::ToggleHelp, "help", "help"),
        ],
    }
}

fn scopes() -> Vec<Scope> {
    std::iter::once(Scope::Global)
        .chain(Pane::ALL.iter().map(|p| Scope::Pane(*p)))
        .collect()
}

/// Parses "ctrl-s", "shift-tab", "f1", "enter", "space", "x".
pub fn parse_key(text: &str) -> Option<(KeyCode, KeyModifiers)> {
    let lower = text.trim().to_lowercase();
    let mut mods = KeyModifiers::NONE;
    let mut rest = lower.as_str();
    loop {
        if let Some(r) = rest.strip_prefix("ctrl-") {
            mods |= KeyModifiers::CONTROL;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("alt-") {
            mods |= KeyModifiers::ALT;
            rest = r;
        } else if let Some(r) = rest.strip_prefix("shift-") {
            mods |= KeyModifiers::SHIFT;
            rest = r;
        } else {
            break;
        }
    }
    let code = match rest {
        "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
        "tab" => KeyCode::Tab,
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "backspace" => KeyCode::Backspace,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        f if f.starts_with('f') && f.len() > 1 => KeyCode::F(f[1..].parse().ok()?),
        c if c.chars().count() == 1 => KeyCode::Char(text.trim().chars().last()?),
        _ => return None,
    };
    Some((code, mods))
}

pub fn default_keymap() -> Vec<Binding> {
    let mut out = Vec::new();
    for scope in scopes() {
        for (key, action, name, desc) in rows(scope) {
            let (code, mods) = parse_key(key).expect("default keys parse");
            out.push(Binding {
                scope,
                code,
                mods,
                action,
                name,
                desc,
            });
        }
    }
    out
}

/// The default table with `[studio.keys]` overrides ("<pane>.<name>" or "global.<name>" ->
/// key); an unknown action or key is an error naming the entry.
pub fn keymap_with_overrides(
    overrides: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<Vec<Binding>, String> {
    let mut km = default_keymap();
    for (target, key) in overrides {
        let (scope_name, name) = target.split_once('.').ok_or_else(|| {
            format!("studio.keys.\"{target}\": expected \"<pane>.<action>\" or \"global.<action>\"")
        })?;
        let scope = if scope_name == "global" {
            Scope::Global
        } else {
            Scope::Pane(
                Pane::ALL
                    .into_iter()
                    .find(|p| p.key_name() == scope_name)
                    .ok_or_else(|| {
                        format!("studio.keys.\"{target}\": unknown pane '{scope_name}'")
                    })?,
            )
        };
        let (code, mods) = parse_key(key)
            .ok_or_else(|| format!("studio.keys.\"{target}\": '{key}' is not a key"))?;
        let b = km
            .iter_mut()
            .find(|b| b.scope == scope && b.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = rows(scope).iter().map(|r| r.2).collect();
                format!(
                    "studio.keys.\"{target}\": unknown action '{name}' (actions: {})",
                    names.join(", ")
                )
            })?;
        b.code = code;
        b.mods = mods;
    }
    Ok(km)
}

/// Whether a binding still acts while a text editor has focus: control and function keys do,
/// printable characters, Enter and arrows are text editing.
fn acts_in_text(b: &Binding) -> bool {
    b.mods.contains(KeyModifiers::CONTROL)
        || b.mods.contains(KeyModifiers::ALT)
        || matches!(
            b.code,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Esc | KeyCode::F(_)
        )
}

/// The action for a key in a pane: pane bindings first, then global ones; keys nothing binds
/// go to the pane's editor or form. While `text_input`, only control and function keys act.
pub fn resolve(keymap: &[Binding], pane: Pane, text_input: bool, key: KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    // Shift is part of the character itself for printable keys ('?', '+').
    let mods = match key.code {
        KeyCode::Char(_) => key.modifiers - KeyModifiers::SHIFT,
        _ => key.modifiers,
    };
    let find = |scope: Scope| {
        keymap
            .iter()
            .filter(|k| !text_input || acts_in_text(k))
            .find(|k| k.scope == scope && k.code == key.code && k.mods == mods)
            .map(|k| k.action.clone())
    };
    find(Scope::Pane(pane))
        .or_else(|| find(Scope::Global))
        .or(Some(Action::EditorInput(key)))
}

fn key_name(code: KeyCode, mods: KeyModifiers) -> String {
    let k = match code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
            c.to_ascii_uppercase().to_string()
        }
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    let mut out = String::new();
    if mods.contains(KeyModifiers::CONTROL) {
        out.push_str("Ctrl-");
    }
    if mods.contains(KeyModifiers::ALT) {
        out.push_str("Alt-");
    }
    out + &k
}

/// (keys, description) for a pane, pane bindings first; generated, never hand-written.
pub fn hints(keymap: &[Binding], pane: Pane) -> Vec<(String, &'static str)> {
    keymap
        .iter()
        .filter(|k| k.scope == Scope::Pane(pane))
        .chain(keymap.iter().filter(|k| k.scope == Scope::Global))
        .map(|k| (key_name(k.code, k.mods), k.desc))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn pane_keys_then_global_then_editor() {
        let km = default_keymap();
        assert_eq!(
            resolve(
                &km,
                Pane::Sessions,
                false,
                key(KeyCode::Char('q'), KeyModifiers::NONE)
            ),
            Some(Action::Quit)
        );
        // In the brief, 'q' is text.
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(
            resolve(&km, Pane::Brief, true, q),
            Some(Action::EditorInput(q))
        );
        // Renaming in Sessions: 'q' is text too, Esc still closes.
        assert_eq!(
            resolve(&km, Pane::Sessions, true, q),
            Some(Action::EditorInput(q))
        );
        assert_eq!(
            resolve(
                &km,
                Pane::Sessions,
                true,
                key(KeyCode::Esc, KeyModifiers::NONE)
            ),
            Some(Action::Cancel)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::Brief,
                true,
                key(KeyCode::Char('s'), KeyModifiers::CONTROL)
            ),
            Some(Action::Submit)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::Prompt,
                true,
                key(KeyCode::Tab, KeyModifiers::NONE)
            ),
            Some(Action::NextPane)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::References,
                false,
                key(KeyCode::Char('?'), KeyModifiers::SHIFT)
            ),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::Library,
                false,
                key(KeyCode::Char('x'), KeyModifiers::NONE)
            ),
            Some(Action::EditorInput(key(
                KeyCode::Char('x'),
                KeyModifiers::NONE
            )))
        );
        let mut release = key(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(resolve(&km, Pane::Sessions, false, release), None);
    }

    #[test]
    fn overrides_rebind_and_bad_entries_are_named() {
        let mut o = std::collections::BTreeMap::new();
        o.insert("global.quit".to_string(), "ctrl-q".to_string());
        o.insert("references.toggle".to_string(), "x".to_string());
        let km = keymap_with_overrides(&o).unwrap();
        assert_eq!(
            resolve(
                &km,
                Pane::Generate,
                false,
                key(KeyCode::Char('q'), KeyModifiers::CONTROL)
            ),
            Some(Action::Quit)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::References,
                false,
                key(KeyCode::Char('x'), KeyModifiers::NONE)
            ),
            Some(Action::Toggle)
        );
        assert!(
            hints(&km, Pane::References)
                .iter()
                .any(|(k, d)| k == "x" && *d == "use / drop")
        );
        o.insert("references.fly".to_string(), "z".to_string());
        let e = keymap_with_overrides(&o).unwrap_err();
        assert!(e.contains("references.fly") && e.contains("toggle"), "{e}");
        let mut o = std::collections::BTreeMap::new();
        o.insert("brief.search".to_string(), "hyper-q".to_string());
        assert!(keymap_with_overrides(&o).unwrap_err().contains("hyper-q"));
    }

    #[test]
    fn hints_come_from_the_table() {
        let h = hints(&default_keymap(), Pane::References);
        assert_eq!(h[0], ("Space".to_string(), "use / drop"));
        assert!(h.iter().any(|(k, d)| k == "Space" && *d == "use / drop"));
        assert!(h.iter().any(|(k, d)| k == "Ctrl-C" && *d == "quit"));
    }
}
