//! Inline images: which protocol the terminal speaks, and encoding images for it on a thread
//! of their own (decoding a photo and building sixel or kitty data takes milliseconds we do
//! not spend on the UI thread), with a cache keyed by image, cell size and protocol.
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use ratatui::layout::Size;
use ratatui_image::Resize;
use ratatui_image::picker::{Picker, ProtocolType};

use crate::app::Action;
use crate::app::state::{Encoded, ImageKey, ImageSlot};
use crate::services::local::imaging::{self, ImageLimits};

/// How the studio draws images, after detection and the user's choice.
pub struct ImageSetup {
    /// None: images off.
    pub picker: Option<Picker>,
    /// For the status line and `doctor`: "kitty (detected)", "halfblocks (forced)", "off".
    pub label: String,
    /// Whether the terminal said it takes clipboard writes (its XTGETTCAP answer for `Ms`);
    /// None when it was not asked or did not say.
    pub clipboard: Option<bool>,
}

pub fn protocol_name(p: ProtocolType) -> &'static str {
    match p {
        ProtocolType::Halfblocks => "halfblocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iterm2",
    }
}

/// What the terminal said about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub kitty: bool,
    pub sixel: bool,
    /// Pixels per cell (width, height).
    pub cell: Option<(u16, u16)>,
    /// Whether the terminal answered at all (the status report closes every query).
    pub answered: bool,
    /// The XTGETTCAP answer for `Ms` (the terminfo capability for setting the clipboard with
    /// OSC 52): Some(true) declared, Some(false) refused, None not answered.
    pub clipboard: Option<bool>,
}

/// Reads the answers to the probe: kitty graphics reply, XTGETTCAP for `Ms` (hex 4d73),
/// primary device attributes (4 = sixel), cell size in pixels (CSI 16 t), device status report.
pub fn parse_probe(buf: &[u8]) -> Probe {
    let text = String::from_utf8_lossy(buf);
    let tcap = text.to_ascii_lowercase();
    let mut p = Probe {
        kitty: text.contains("_Gi=31;OK"),
        answered: text.contains("\x1b[0n") || text.contains("\x1b[3n"),
        clipboard: if tcap.contains("\x1bp1+r4d73") {
            Some(true)
        } else if tcap.contains("\x1bp0+r") {
            Some(false)
        } else {
            None
        },
        ..Default::default()
    };
    if let Some(i) = text.find("\x1b[?")
        && let Some(end) = text[i..].find('c')
    {
        p.sixel = text[i + 3..i + end].split(';').any(|a| a == "4");
    }
    if let Some(i) = text.find("\x1b[6;")
        && let Some(end) = text[i..].find('t')
    {
        let mut it = text[i + 4..i + end]
            .split(';')
            .map(|v| v.parse::<u16>().ok());
        if let (Some(Some(h)), Some(Some(w))) = (it.next(), it.next())
            && w > 0
            && h > 0
        {
            p.cell = Some((w, h));
        }
    }
    p
}

/// Asks the terminal (stdin and stdout must be it, in raw mode) which graphics it speaks.
/// Written here rather than using ratatui-image's query: that one reads stdin on a thread
/// that outlives its timeout, and in a terminal that never answers (tmux without
/// passthrough, some SSH clients) that thread then swallows the user's first key. This one
/// polls with a deadline on the calling thread, so nothing is left reading.
#[cfg(unix)]
pub fn probe(timeout: std::time::Duration, in_tmux: bool) -> Probe {
    use std::io::Write;
    use std::time::Instant;
    let (start, esc, end) = if in_tmux {
        ("\x1bPtmux;", "\x1b\x1b", "\x1b\\")
    } else {
        ("", "\x1b", "")
    };
    // Kitty graphics query, XTGETTCAP "Ms" (clipboard writes), DA1, cell size, then the status
    // report every terminal answers, which closes the probe.
    // The Linux console reads ESC P as "set palette": it is not asked.
    let tcap = if std::env::var("TERM").is_ok_and(|t| t == "linux") {
        String::new()
    } else {
        format!("{esc}P+q4d73{esc}\\")
    };
    let query = format!(
        "{start}{esc}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA{esc}\\{tcap}{esc}[c{esc}[16t{esc}[5n{end}"
    );
    let mut out = std::io::stdout();
    if out
        .write_all(query.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return Probe::default();
    }
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut fds = libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the process's stdin; the timeout is bounded.
        let ready = unsafe { libc::poll(&mut fds, 1, left.as_millis().min(5000) as i32) };
        if ready <= 0 {
            break;
        }
        let mut chunk = [0u8; 512];
        // SAFETY: reads at most chunk.len() bytes into a buffer we own; poll said data is
        // there, so this does not block.
        let n = unsafe {
            libc::read(
                libc::STDIN_FILENO,
                chunk.as_mut_ptr().cast::<libc::c_void>(),
                chunk.len(),
            )
        };
        if n <= 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n as usize]);
        if parse_probe(&buf).answered {
            break;
        }
    }
    parse_probe(&buf)
}

#[cfg(not(unix))]
pub fn probe(_timeout: std::time::Duration, _in_tmux: bool) -> Probe {
    Probe::default()
}

/// Picks the protocol: "none" turns images off; "auto" asks the terminal (kitty, then sixel),
/// then environment hints (iTerm2-style terminals), else unicode half blocks; anything else
/// is forced. With `query_terminal`, it must run on the terminal in raw mode, before anything
/// else reads input.
pub fn setup(choice: &str, query_terminal: bool) -> ImageSetup {
    let forced = match choice {
        "none" => {
            return ImageSetup {
                picker: None,
                label: "off".into(),
                clipboard: None,
            };
        }
        "kitty" => Some(ProtocolType::Kitty),
        "sixel" => Some(ProtocolType::Sixel),
        "iterm2" => Some(ProtocolType::Iterm2),
        "halfblocks" => Some(ProtocolType::Halfblocks),
        _ => None,
    };
    let in_tmux = std::env::var("TMUX").is_ok_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"));
    let probe = if query_terminal {
        probe(std::time::Duration::from_millis(1000), in_tmux)
    } else {
        Probe::default()
    };
    // Cell size: from the terminal's answer, else from the window size in pixels.
    let cell = probe.cell.or_else(|| {
        let ws = crossterm::terminal::window_size().ok()?;
        (ws.width > 0 && ws.columns > 0 && ws.rows > 0)
            .then(|| (ws.width / ws.columns, ws.height / ws.rows))
    });
    let mut picker = match cell {
        // The constructor from a known cell size also reads the environment hints.
        #[allow(deprecated)]
        Some((w, h)) if query_terminal => Picker::from_fontsize((w, h).into()),
        _ => Picker::halfblocks(),
    };
    let detected = if probe.kitty {
        ProtocolType::Kitty
    } else if probe.sixel {
        ProtocolType::Sixel
    } else {
        picker.protocol_type()
    };
    let label = match forced {
        Some(p) => {
            picker.set_protocol_type(p);
            format!("{} (forced)", protocol_name(p))
        }
        None => {
            picker.set_protocol_type(detected);
            let how = if !query_terminal {
                "not asked: not a terminal"
            } else if probe.answered || detected != ProtocolType::Halfblocks {
                "detected"
            } else {
                "terminal did not answer"
            };
            format!("{} ({how})", protocol_name(detected))
        }
    };
    ImageSetup {
        picker: Some(picker),
        label,
        clipboard: probe.clipboard,
    }
}

/// Decodes the file and encodes it scaled (up or down) to fit `cols` x `rows` cells, keeping
/// its aspect.
pub fn encode(
    picker: &Picker,
    key: &ImageKey,
    limits: ImageLimits,
) -> std::result::Result<ratatui_image::protocol::Protocol, String> {
    // Ingest's limits: a `reference`-mode original can have changed since it was ingested.
    let img = imaging::open_limited(std::path::Path::new(&key.path), limits)
        .map_err(|e| e.to_string())?;
    picker
        .new_protocol(
            img,
            Size::new(key.cols, key.rows),
            Resize::Scale(Some(image::imageops::FilterType::Triangle)),
        )
        .map_err(|e| format!("{}: {e}", key.path))
}

/// Most recently used encodings, bounded.
pub struct Cache {
    max: usize,
    map: HashMap<ImageKey, ImageSlot>,
    order: VecDeque<ImageKey>,
}

impl Cache {
    pub fn new(max: usize) -> Self {
        Cache {
            max,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
    pub fn get(&mut self, key: &ImageKey) -> Option<ImageSlot> {
        let hit = self.map.get(key).cloned();
        if hit.is_some() {
            self.order.retain(|k| k != key);
            self.order.push_back(key.clone());
        }
        hit
    }
    pub fn put(&mut self, key: ImageKey, slot: ImageSlot) {
        if self.map.insert(key.clone(), slot).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The encoder thread: takes batches of wanted images, answers each with `ImageReady`.
/// The picker's protocol and font size are fixed for the thread's life, so the cache key
/// (image, cells) plus the thread's protocol is the full key.
pub fn encoder(
    picker: Picker,
    limits: ImageLimits,
    requests: Receiver<Vec<ImageKey>>,
    results: Sender<Action>,
) {
    let mut cache = Cache::new(256);
    for batch in requests {
        for key in batch {
            let slot = match cache.get(&key) {
                Some(s) => s,
                None => {
                    let slot = match encode(&picker, &key, limits) {
                        Ok(p) => ImageSlot::Ready(Encoded(Arc::new(p))),
                        Err(e) => {
                            tracing::warn!(error = %e, "image not shown");
                            ImageSlot::Failed(e.rsplit(": ").next().unwrap_or("").to_string())
                        }
                    };
                    cache.put(key.clone(), slot.clone());
                    slot
                }
            };
            if results.send(Action::ImageReady { key, slot }).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_are_read() {
        let kitty = b"\x1b_Gi=31;OK\x1b\\\x1b[?62;22c\x1b[6;20;10t\x1b[0n";
        assert_eq!(
            parse_probe(kitty),
            Probe {
                kitty: true,
                sixel: false,
                cell: Some((10, 20)),
                answered: true,
                clipboard: None,
            }
        );
        let xterm_sixel = b"\x1b[?63;1;2;4;6;9;15;22c\x1b[0n";
        let p = parse_probe(xterm_sixel);
        assert!(p.sixel && !p.kitty && p.answered && p.cell.is_none());
        assert_eq!(parse_probe(b""), Probe::default());
        // A half answer (no status report yet) is not "answered".
        assert!(!parse_probe(b"\x1b[?1;2c").answered);
    }

    #[test]
    fn a_terminal_that_declares_ms_takes_clipboard_writes() {
        let p = parse_probe(b"\x1bP1+r4D73=\\E]52;%p1%s;%p2%s\\007\x1b\\\x1b[?62;22c\x1b[0n");
        assert_eq!(p.clipboard, Some(true));
    }

    #[test]
    fn a_terminal_that_answers_xtgettcap_without_ms_refuses_them() {
        let p = parse_probe(b"\x1bP0+r4d73\x1b\\\x1b[?62;22c\x1b[0n");
        assert_eq!(p.clipboard, Some(false));
    }

    #[test]
    fn a_terminal_without_xtgettcap_leaves_it_unknown() {
        assert_eq!(parse_probe(b"\x1b[?62;22c\x1b[0n").clipboard, None);
    }

    #[test]
    fn cache_keeps_the_most_recent() {
        let mut c = Cache::new(2);
        let k = |p: &str| ImageKey {
            path: p.into(),
            cols: 1,
            rows: 1,
        };
        c.put(k("a"), ImageSlot::Failed("x".into()));
        c.put(k("b"), ImageSlot::Failed("x".into()));
        assert!(c.get(&k("a")).is_some());
        c.put(k("c"), ImageSlot::Failed("x".into()));
        assert!(c.get(&k("b")).is_none(), "least recently used goes first");
        assert!(c.get(&k("a")).is_some() && c.get(&k("c")).is_some());
        assert_eq!(c.len(), 2);
    }
}
