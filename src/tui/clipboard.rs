//! Copying to the clipboard of the terminal the user sits at, even over SSH: OSC 52 (the
//! sequence itself from crossterm), also wrapped for tmux's passthrough (or GNU screen's) when
//! the studio runs inside one. OSC 52 has no answer; whether the terminal takes it is asked
//! once at start with XTGETTCAP for `Ms` (`tui::images::probe`): a terminal that says no is
//! named as refusing, one that does not say is tried, and the message says it may ignore it.
use crossterm::Command;
use crossterm::clipboard::CopyToClipboard;

use crate::app::state::ClipboardMode;

/// How the sequence must be wrapped to reach the outer terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrap {
    None,
    /// tmux: the plain sequence (taken by tmux itself with `set-clipboard on`), then the same
    /// in `ESC P tmux; <each ESC doubled> ESC \` (passed to the outer terminal with
    /// `allow-passthrough on`); either setting is enough.
    Tmux,
    /// GNU screen: the sequence, ended by BEL, cut into pieces of 76 bytes each in its own
    /// `ESC P … ESC \` (screen truncates long strings).
    Screen,
}

/// The bytes that put `text` on the clipboard.
pub fn sequence(text: &str, wrap: Wrap) -> String {
    let mut osc = String::new();
    // Writing into a String cannot fail.
    let _ = CopyToClipboard::to_clipboard_from(text).write_ansi(&mut osc);
    match wrap {
        Wrap::None => osc,
        Wrap::Tmux => format!("{osc}\x1bPtmux;{}\x1b\\", osc.replace('\x1b', "\x1b\x1b")),
        Wrap::Screen => {
            // Inside a DCS the sequence must not end with ST (that would end the DCS): BEL.
            let bel = match osc.strip_suffix("\x1b\\") {
                Some(body) => format!("{body}\x07"),
                None => osc,
            };
            // The sequence is ASCII (ESC, digits, base64, BEL): byte chunks are char chunks.
            bel.as_bytes()
                .chunks(76)
                .map(|c| format!("\x1bP{}\x1b\\", String::from_utf8_lossy(c)))
                .collect()
        }
    }
}

/// What the studio can do, from `studio.clipboard`, the terminal's environment (`get` reads
/// a variable: TERM, TMUX, STY) and what the terminal declared (`declared`: its XTGETTCAP
/// answer for `Ms`, None when it did not answer).
pub fn mode(
    enabled: bool,
    get: impl Fn(&str) -> Option<String>,
    declared: Option<bool>,
) -> (ClipboardMode, Wrap) {
    if !enabled {
        return (ClipboardMode::Off, Wrap::None);
    }
    if declared == Some(false) {
        return (
            ClipboardMode::Unsupported(
                "the terminal says it does not take clipboard writes (OSC 52); allow them in its settings, or select the text with the mouse".into(),
            ),
            Wrap::None,
        );
    }
    let checked = if declared == Some(true) {
        " (the terminal accepts it)"
    } else {
        ""
    };
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
                via: format!("OSC 52 through tmux{checked}"),
            },
            Wrap::Tmux,
        );
    }
    if get("STY").is_some_and(|v| !v.is_empty()) {
        return (
            ClipboardMode::On {
                via: format!("OSC 52 through screen{checked}"),
            },
            Wrap::Screen,
        );
    }
    (
        ClipboardMode::On {
            via: format!("OSC 52{checked}"),
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
    fn inside_tmux_the_plain_sequence_is_followed_by_its_passthrough_wrapping() {
        assert_eq!(
            sequence("hi", Wrap::Tmux),
            "\x1b]52;c;aGk=\x1b\\\x1bPtmux;\x1b\x1b]52;c;aGk=\x1b\x1b\\\x1b\\"
        );
    }

    #[test]
    fn inside_screen_a_short_sequence_is_one_dcs_ended_by_bel() {
        assert_eq!(
            sequence("hi", Wrap::Screen),
            "\x1bP\x1b]52;c;aGk=\x07\x1b\\"
        );
    }

    #[test]
    fn inside_screen_a_long_sequence_is_cut_into_dcs_pieces_of_76_bytes() {
        let text = "x".repeat(300);
        let seq = sequence(&text, Wrap::Screen);
        let pieces: Vec<&str> = seq
            .split("\x1b\\")
            .filter(|p| !p.is_empty())
            .map(|p| p.strip_prefix("\x1bP").unwrap())
            .collect();
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= 76));
        assert_eq!(
            pieces.concat(),
            sequence(&text, Wrap::None).replace("\x1b\\", "\x07")
        );
    }

    #[test]
    fn a_terminal_that_declares_no_clipboard_is_named_as_refusing() {
        let (m, _) = mode(true, env(&[("TERM", "xterm")]), Some(false));
        assert!(matches!(m, ClipboardMode::Unsupported(why) if why.contains("does not take")));
    }

    #[test]
    fn a_terminal_that_declares_the_clipboard_is_said_to_accept_it() {
        let (m, _) = mode(true, env(&[("TERM", "xterm-kitty")]), Some(true));
        assert!(matches!(m, ClipboardMode::On { via } if via.contains("accepts")));
    }

    #[test]
    fn tmux_is_detected_from_its_variable() {
        let (m, w) = mode(
            true,
            env(&[("TERM", "tmux-256color"), ("TMUX", "/tmp/t,1,0")]),
            None,
        );
        assert_eq!(w, Wrap::Tmux);
        assert!(matches!(m, ClipboardMode::On { via } if via.contains("tmux")));
    }

    #[test]
    fn a_plain_terminal_gets_the_plain_sequence() {
        let (m, w) = mode(true, env(&[("TERM", "xterm-256color")]), None);
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
        let (m, _) = mode(true, env(&[("TERM", "linux")]), None);
        assert!(matches!(m, ClipboardMode::Unsupported(why) if why.contains("TERM=linux")));
    }

    #[test]
    fn the_setting_turns_it_off() {
        let (m, _) = mode(false, env(&[("TERM", "xterm")]), None);
        assert_eq!(m, ClipboardMode::Off);
    }
}
