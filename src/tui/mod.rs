//! The terminal runtime: terminal lifecycle (raw mode, alternate screen; restored on exit, on
//! panic and around Ctrl-Z), the event loop (drain input and results, update, draw once per
//! frame when something changed, inside a synchronized update), and four threads off the UI:
//! two engine workers (quick effects such as searches and loads in order on one, long jobs —
//! prompt writing, generation, ingest, mood boards — in order on the other, each with its own
//! library handle, so a search never waits behind a generation), the image encoder, and the
//! persistence actor (session views, coalesced, drained on quit).
pub mod clipboard;
pub mod images;
pub mod runner;

use std::collections::{HashMap, HashSet};
use std::io::{Stdout, Write};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, MouseEventKind};
use crossterm::execute;
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::app::keymap;
use crate::app::state::{ImageKey, SessionView};
use crate::app::{Action, Effect, State, update};
use crate::engine::Library;
use crate::services::ImageGenerator;
use crate::store::Store;
use crate::ui::{Theme, Ui};
use crate::{Error, Result};

pub use runner::Runner;

/// What the event loop waits for: terminal input or a result from a thread.
enum Incoming {
    Terminal(Event),
    Result(Action),
}

/// Restores the terminal when dropped (also on early return and unwinding).
struct TerminalGuard {
    mouse: bool,
}

fn restore(mouse: bool) {
    let _ = disable_raw_mode();
    if mouse {
        let _ = execute!(std::io::stdout(), DisableMouseCapture);
    }
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn enter(mouse: bool) -> Result<()> {
    enable_raw_mode().map_err(io)?;
    execute!(std::io::stdout(), EnterAlternateScreen).map_err(io)?;
    if mouse {
        execute!(std::io::stdout(), EnableMouseCapture).map_err(io)?;
    }
    Ok(())
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(self.mouse);
    }
}

fn io(e: std::io::Error) -> Error {
    Error::io("terminal", e)
}

/// The persistence actor: writes session views, the latest per campaign, in batches.
fn persistence(store: Store, views: Receiver<(String, SessionView)>) {
    while let Ok(first) = views.recv() {
        let mut latest: HashMap<String, SessionView> = HashMap::new();
        for (id, v) in std::iter::once(first).chain(views.try_iter()) {
            latest.insert(id, v);
        }
        for (id, v) in latest {
            if let Err(e) = runner::save_view(&store, &id, &v) {
                tracing::error!(error = %e, campaign = %id, "session view not saved");
            }
        }
    }
}

/// Stops the process the way the shell expects after Ctrl-Z, with the terminal restored
/// first and set up again when `fg` continues it.
#[cfg(unix)]
fn suspend(mouse: bool) -> Result<()> {
    restore(mouse);
    // SAFETY: raising a signal on our own process; SIGTSTP's default action stops it and
    // returns here when it is continued.
    unsafe {
        libc::raise(libc::SIGTSTP);
    }
    enter(mouse)
}

#[cfg(not(unix))]
fn suspend(_mouse: bool) -> Result<()> {
    Ok(())
}

/// The shortest time between two frames while results stream in (about 60 per second).
const FRAME: Duration = Duration::from_millis(16);

/// Runs the studio until the user quits.
pub fn run(lib: Library) -> Result<()> {
    let cfg = lib.config.clone();
    let keymap = keymap::keymap_with_overrides(&cfg.studio.keys).map_err(Error::Config)?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let ui = Ui {
        keymap,
        theme: Theme::from_config(&cfg.studio.theme, no_color),
    };
    let mut state = State::new(
        cfg.taxonomy.objectives.clone(),
        cfg.taxonomy.nodes.clone(),
        cfg.search.k,
    );
    state.kpi_weight = cfg.search.kpi_weight;

    // Long jobs (prompt writing, generation, ingest, mood boards) run on their own worker with
    // their own library handle, so a search never waits behind a generation.
    let long_lib = Library::open(lib.paths.clone(), lib.config.clone())?;
    let generator: Option<Box<dyn ImageGenerator>> = long_lib.image_generator()?;
    state.generator = generator.as_ref().map(|g| g.caps().clone());
    let mouse = cfg.studio.mouse;
    let views_store = Store::open(&lib.paths.database())?;

    let (effect_tx, effect_rx) = mpsc::channel::<Effect>();
    let (long_tx, long_rx) = mpsc::channel::<Effect>();
    let (incoming_tx, incoming_rx) = mpsc::channel::<Incoming>();
    let mut runner = Runner::new(lib, None);
    let mut long_runner = Runner::new(long_lib, generator);
    long_runner.cancellation = runner.cancellation.clone();
    let cancellation = runner.cancellation.clone();
    let results = incoming_tx.clone();
    let worker = std::thread::Builder::new()
        .name("studio-engine".into())
        .spawn(move || {
            for effect in effect_rx {
                runner.run(effect, &mut |a| {
                    let _ = results.send(Incoming::Result(a));
                });
            }
        })
        .map_err(io)?;
    let results = incoming_tx.clone();
    let long_worker = std::thread::Builder::new()
        .name("studio-long-jobs".into())
        .spawn(move || {
            for effect in long_rx {
                long_runner.run(effect, &mut |a| {
                    let _ = results.send(Incoming::Result(a));
                });
            }
        })
        .map_err(io)?;
    let (views_tx, views_rx) = mpsc::channel::<(String, SessionView)>();
    let persist = std::thread::Builder::new()
        .name("studio-persist".into())
        .spawn(move || persistence(views_store, views_rx))
        .map_err(io)?;

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore(mouse);
        default_hook(info);
    }));
    enter(mouse)?;
    let _guard = TerminalGuard { mouse };
    // Ask the terminal about graphics before the input thread starts reading stdin.
    let setup = images::setup(&cfg.studio.image_protocol, true);
    state.image_protocol = setup.label.clone();
    let (clipboard_mode, clipboard_wrap) = clipboard::mode(
        cfg.studio.clipboard,
        |k| std::env::var(k).ok(),
        setup.clipboard,
    );
    state.clipboard = clipboard_mode;
    state.images_enabled = setup.picker.is_some();
    let (image_tx, image_rx) = mpsc::channel::<Vec<ImageKey>>();
    if let Some(picker) = setup.picker {
        let limits = crate::services::local::imaging::ImageLimits::of(&cfg.library);
        let (atx, arx) = mpsc::channel::<Action>();
        let to_loop = incoming_tx.clone();
        std::thread::Builder::new()
            .name("studio-images".into())
            .spawn(move || images::encoder(picker, limits, image_rx, atx))
            .map_err(io)?;
        std::thread::Builder::new()
            .name("studio-images-fwd".into())
            .spawn(move || {
                for a in arx {
                    if to_loop.send(Incoming::Result(a)).is_err() {
                        break;
                    }
                }
            })
            .map_err(io)?;
    }
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)?;
    let size = terminal.size().map_err(io)?;
    update(&mut state, Action::Resized(size.width, size.height));

    let mut requested: HashSet<ImageKey> = HashSet::new();
    // Effects go to their thread; returns whether the user asked to suspend.
    let dispatch = move |effects: Vec<Effect>| -> bool {
        let mut suspend = false;
        for e in effects {
            match e {
                Effect::CancelJob(j) => cancellation.cancel(j),
                Effect::SaveView { campaign_id, view } => {
                    let _ = views_tx.send((campaign_id, view));
                }
                Effect::Suspend => suspend = true,
                Effect::Copy(text) => {
                    // Between frames: the sequence changes nothing on the screen.
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(clipboard::sequence(&text, clipboard_wrap).as_bytes());
                    let _ = out.flush();
                }
                e if Runner::is_long(&e) => {
                    let _ = long_tx.send(e);
                }
                e => {
                    let _ = effect_tx.send(e);
                }
            }
        }
        suspend
    };
    dispatch(vec![
        Effect::LoadCampaigns,
        Effect::LoadBrands,
        Effect::LoadStats,
    ]);
    // Terminal input arrives on its own thread, into the same queue as the results, so the
    // loop sleeps in `recv` until something happens: no polling, near-zero idle CPU.
    let input_tx = incoming_tx;
    std::thread::Builder::new()
        .name("studio-input".into())
        .spawn(move || {
            while let Ok(ev) = event::read() {
                if input_tx.send(Incoming::Terminal(ev)).is_err() {
                    break;
                }
            }
        })
        .map_err(io)?;
    let draw = |terminal: &mut Terminal<CrosstermBackend<Stdout>>,
                state: &State,
                requested: &mut HashSet<ImageKey>|
     -> Result<()> {
        let mut missing = Vec::new();
        // Synchronized update: the terminal shows the whole frame at once (no tearing over SSH).
        execute!(std::io::stdout(), BeginSynchronizedUpdate).map_err(io)?;
        terminal
            .draw(|f| missing = crate::ui::render(f, state, &ui))
            .map_err(io)?;
        execute!(std::io::stdout(), EndSynchronizedUpdate).map_err(io)?;
        let new: Vec<ImageKey> = missing
            .into_iter()
            .filter(|k| requested.insert(k.clone()))
            .collect();
        if !new.is_empty() {
            let _ = image_tx.send(new);
        }
        Ok(())
    };
    draw(&mut terminal, &state, &mut requested)?;
    let mut last_frame = Instant::now();
    while !state.quitting {
        let Ok(first) = incoming_rx.recv() else { break };
        let mut dirty = false;
        let mut suspend_requested = false;
        let mut pending = Some(first);
        let mut typed = false;
        // Handle what is queued; while results stream, gather until the next frame is due
        // (at most one frame per 16 ms). A key is drawn at once: typing never waits.
        loop {
            let batch: Vec<Incoming> = pending
                .take()
                .into_iter()
                .chain(incoming_rx.try_iter())
                .collect();
            for msg in batch {
                typed |= matches!(msg, Incoming::Terminal(Event::Key(_)));
                let Some(a) = to_action(msg, &state, &ui) else {
                    continue;
                };
                if let Action::ImageReady { key, .. } = &a {
                    requested.remove(key);
                }
                suspend_requested |= dispatch(update(&mut state, a));
                dirty = true;
            }
            let wait = FRAME.saturating_sub(last_frame.elapsed());
            if !dirty || typed || wait.is_zero() || state.quitting || suspend_requested {
                break;
            }
            match incoming_rx.recv_timeout(wait) {
                Ok(msg) => pending = Some(msg),
                Err(_) => break,
            }
        }
        if suspend_requested {
            suspend(mouse)?;
            // A fresh terminal object redraws everything; `Terminal::clear` would ask for the
            // cursor position, which the input thread's pending read would swallow.
            execute!(
                std::io::stdout(),
                crossterm::terminal::Clear(crossterm::terminal::ClearType::All)
            )
            .map_err(io)?;
            terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)?;
            dirty = true;
        }
        if dirty && !state.quitting {
            draw(&mut terminal, &state, &mut requested)?;
            last_frame = Instant::now();
        }
    }
    // Quit: let the worker finish what was asked, and the persistence actor drain its queue.
    drop(dispatch);
    let _ = worker.join();
    let _ = long_worker.join();
    let _ = persist.join();
    Ok(())
}

/// Terminal events to actions (through the keymap); results pass through.
fn to_action(msg: Incoming, state: &State, ui: &Ui) -> Option<Action> {
    match msg {
        Incoming::Terminal(Event::Key(k)) => {
            keymap::resolve(&ui.keymap, state.pane, state.text_input(), k)
        }
        Incoming::Terminal(Event::Resize(w, h)) => Some(Action::Resized(w, h)),
        Incoming::Terminal(Event::Mouse(m)) => match m.kind {
            MouseEventKind::ScrollUp => Some(Action::Scroll(-1)),
            MouseEventKind::ScrollDown => Some(Action::Scroll(1)),
            _ => None,
        },
        Incoming::Terminal(_) => None,
        Incoming::Result(a) => Some(a),
    }
}
