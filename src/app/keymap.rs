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
    pub desc: &'static str,
}

fn b(
    scope: Scope,
    code: KeyCode,
    mods: KeyModifiers,
    action: Action,
    desc: &'static str,
) -> Binding {
    Binding {
        scope,
        code,
        mods,
        action,
        desc,
    }
}

pub fn default_keymap() -> Vec<Binding> {
    use KeyCode::*;
    let (none, ctrl, shift) = (
        KeyModifiers::NONE,
        KeyModifiers::CONTROL,
        KeyModifiers::SHIFT,
    );
    let g = Scope::Global;
    let p = Scope::Pane;
    vec![
        b(g, Char('c'), ctrl, Action::Quit, "quit"),
        b(g, Tab, none, Action::NextPane, "next pane"),
        b(g, BackTab, shift, Action::PrevPane, "previous pane"),
        b(g, F(1), none, Action::ToggleHelp, "help"),
        b(g, Esc, none, Action::Cancel, "cancel job / close"),
        b(p(Pane::Sessions), Char('q'), none, Action::Quit, "quit"),
        b(
            p(Pane::Sessions),
            Char('?'),
            none,
            Action::ToggleHelp,
            "help",
        ),
        b(p(Pane::Sessions), Up, none, Action::Up, "up"),
        b(p(Pane::Sessions), Down, none, Action::Down, "down"),
        b(p(Pane::Sessions), Enter, none, Action::Open, "open"),
        b(
            p(Pane::Sessions),
            Char('n'),
            none,
            Action::NewCampaign,
            "new campaign",
        ),
        b(
            p(Pane::Sessions),
            Char('d'),
            none,
            Action::DeleteCampaign,
            "delete",
        ),
        b(
            p(Pane::Sessions),
            Char('y'),
            none,
            Action::Confirm,
            "confirm",
        ),
        b(
            p(Pane::Brief),
            Char('s'),
            ctrl,
            Action::Submit,
            "save brief and search",
        ),
        b(
            p(Pane::Brief),
            Char('o'),
            ctrl,
            Action::CycleObjective,
            "objective",
        ),
        b(
            p(Pane::Brief),
            Char('n'),
            ctrl,
            Action::CycleNode,
            "audience node",
        ),
        b(p(Pane::References), Up, none, Action::Up, "up"),
        b(p(Pane::References), Down, none, Action::Down, "down"),
        b(
            p(Pane::References),
            Char(' '),
            none,
            Action::Toggle,
            "use / drop",
        ),
        b(
            p(Pane::References),
            Char('+'),
            none,
            Action::MoreResults,
            "more results",
        ),
        b(
            p(Pane::References),
            Char('-'),
            none,
            Action::FewerResults,
            "fewer results",
        ),
        b(
            p(Pane::References),
            Char('s'),
            ctrl,
            Action::Submit,
            "search again",
        ),
        b(
            p(Pane::References),
            Char('?'),
            none,
            Action::ToggleHelp,
            "help",
        ),
        b(
            p(Pane::Prompt),
            Char('s'),
            ctrl,
            Action::Submit,
            "write prompt",
        ),
        b(
            p(Pane::Prompt),
            Char('r'),
            ctrl,
            Action::RestorePrompt,
            "restore AI version",
        ),
        b(p(Pane::Prompt), Char('?'), none, Action::ToggleHelp, "help"),
        b(
            p(Pane::Generate),
            Char('g'),
            none,
            Action::Generate,
            "generate",
        ),
        b(
            p(Pane::Generate),
            Char('m'),
            none,
            Action::MoodBoard,
            "mood board",
        ),
        b(
            p(Pane::Generate),
            Char('?'),
            none,
            Action::ToggleHelp,
            "help",
        ),
        b(
            p(Pane::Library),
            Char('?'),
            none,
            Action::ToggleHelp,
            "help",
        ),
    ]
}

/// The action for a key in a pane: pane bindings first, then global ones; in the brief pane
/// unbound keys go to the editor.
pub fn resolve(keymap: &[Binding], pane: Pane, key: KeyEvent) -> Option<Action> {
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
            .find(|k| k.scope == scope && k.code == key.code && k.mods == mods)
            .map(|k| k.action.clone())
    };
    find(Scope::Pane(pane))
        .or_else(|| find(Scope::Global))
        .or_else(|| (pane == Pane::Brief).then_some(Action::EditorInput(key)))
}

fn key_name(code: KeyCode, mods: KeyModifiers) -> String {
    let k = match code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    if mods.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{k}")
    } else {
        k
    }
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
                key(KeyCode::Char('q'), KeyModifiers::NONE)
            ),
            Some(Action::Quit)
        );
        // In the brief, 'q' is text.
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(resolve(&km, Pane::Brief, q), Some(Action::EditorInput(q)));
        assert_eq!(
            resolve(
                &km,
                Pane::Brief,
                key(KeyCode::Char('s'), KeyModifiers::CONTROL)
            ),
            Some(Action::Submit)
        );
        assert_eq!(
            resolve(&km, Pane::Prompt, key(KeyCode::Tab, KeyModifiers::NONE)),
            Some(Action::NextPane)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::References,
                key(KeyCode::Char('?'), KeyModifiers::SHIFT)
            ),
            Some(Action::ToggleHelp)
        );
        assert_eq!(
            resolve(
                &km,
                Pane::Library,
                key(KeyCode::Char('x'), KeyModifiers::NONE)
            ),
            None
        );
        let mut release = key(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(resolve(&km, Pane::Sessions, release), None);
    }

    #[test]
    fn hints_come_from_the_table() {
        let h = hints(&default_keymap(), Pane::References);
        assert_eq!(h[0], ("↑".to_string(), "up"));
        assert!(h.iter().any(|(k, d)| k == "Space" && *d == "use / drop"));
        assert!(h.iter().any(|(k, d)| k == "Ctrl-c" && *d == "quit"));
    }
}
