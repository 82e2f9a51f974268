//! Copying to the clipboard of the terminal the user sits at, even over SSH: OSC 52 (the
//! sequence itself from crossterm), wrapped for tmux's passthrough (or GNU screen's) when the
//! studio runs inside one. There is no answer to wait for: a terminal that does not allow
//! OSC 52 ignores it, which the studio's message says.
use crossterm::Command;
use crossterm::clipboard::CopyToClipboard;

use crate::app::state::ClipboardMode;

/// How the sequence must be wrapped to reach the outer terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    None,
    /// tmux: `ESC P tmux; <sequence with each ESC doubled> ESC \` (needs `allow-passthrough on`
    /// in tmux 3.3 and later, or `set-clipboard on`).
    Tmux,
    /// GNU screen: `ESC P <sequence> ESC \`.
    Screen,
}

/// The bytes that put `text` on the clipboard.
pub fn sequence(text: &str, wrap: Wrap) -> String {
    let mut osc = String::new();
    // Writing into a String cannot fail.
    let _ = CopyToClipboard::to_clipboard_from(text).write_ansi(&mut osc);
    match wrap {
        Wrap::None => osc,
        Wrap::Tmux => format!("\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b")),
        Wrap::Screen => format!("\x1bP{osc}\x1b\\"),
    }
}

/// What the studio can do, from `studio.clipboard` and the terminal's environment
/// (`get` reads a variable: TERM, TMUX, STY).
pub fn mode(enabled: bool, get: impl Fn(&str) -> Option<String>) -> (ClipboardMode, Wrap) {
    if !enabled {
        return (ClipboardMode::Off, Wrap::None);
    }
    let term = get("TERM").unwrap_or_default();
    if term.is_empty() || term == "dumb" || term == "linux" {
        let shown = if term.is_empty() { "unset" } else { &term };
        return (
            ClipboardMode::Unsupported(format!(
                "this terminal (TERM={shown}) has no clipboard sequence; select the text with the mouse instead"
            )),
            Wrap::None,
        );
    }
    if get("TMUX").is_some_and(|v| !v.is_empty()) {
        return (
            ClipboardMode::On {
                via: "OSC 52 through tmux".into(),
            },
            Wrap::Tmux,
        );
    }
    if get("STY").is_some_and(|v| !v.is_empty()) {
        return (
            ClipboardMode::On {
                via: "OSC 52 through screen".into(),
            },
            Wrap::Screen,
        );
    }
    (
        ClipboardMode::On {
            via: "OSC 52".into(),
        },
        Wrap::None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_plain_sequence_is_osc_52_with_base64_text() {
        // "héllo" in UTF-8, base64: aMOpbGxv
        assert_eq!(sequence("héllo", Wrap::None), "\x1b]52;c;aMOpbGxv\x1b\\");
    }

    #[test]
    fn inside_tmux_the_sequence_is_wrapped_for_passthrough_with_escapes_doubled() {
        assert_eq!(
            sequence("hi", Wrap::Tmux),
            "\x1bPtmux;\x1b\x1b]52;c;aGk=\x1b\x1b\\\x1b\\"
        );
    }

    #[test]
    fn inside_screen_the_sequence_is_wrapped_in_a_dcs() {
        assert_eq!(
            sequence("hi", Wrap::Screen),
            "\x1bP\x1b]52;c;aGk=\x1b\\\x1b\\"
        );
    }

    #[test]
    fn tmux_is_detected_from_its_variable() {
        let (m, w) = mode(
            true,
            env(&[("TERM", "tmux-256color"), ("TMUX", "/tmp/t,1,0")]),
        );
        assert_eq!(w, Wrap::Tmux);
        assert!(matches!(m, ClipboardMode::On { via } if via.contains("tmux")));
    }

    #[test]
    fn a_plain_terminal_gets_the_plain_sequence() {
        let (m, w) = mode(true, env(&[("TERM", "xterm-256color")]));
        assert_eq!(w, Wrap::None);
        assert_eq!(
            m,
            ClipboardMode::On {
                via: "OSC 52".into()
            }
        );
    }

    #[test]
    fn the_linux_console_is_said_to_have_no_clipboard() {
        let (m, _) = mode(true, env(&[("TERM", "linux")]));
        assert!(matches!(m, ClipboardMode::Unsupported(why) if why.contains("TERM=linux")));
    }

    #[test]
    fn the_setting_turns_it_off() {
        let (m, _) = mode(false, env(&[("TERM", "xterm")]));
        assert_eq!(m, ClipboardMode::Off);
    }
}
