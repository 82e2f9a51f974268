//! The terminal runtime: terminal lifecycle (raw mode, alternate screen, restored on exit and
//! on panic), the event loop (drain input and results, update, draw once when something
//! changed), and the engine worker that runs effects off the UI thread.
use std::io::Stdout;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crossterm::event::{self, Event};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::app::keymap::{self, Binding};
use crate::app::{Action, Effect, JobId, State, update};
use crate::engine::Library;
use crate::engine::campaign::{self, NewCampaign, RecommendOptions};
use crate::engine::{moodboard, prompt};
use crate::services::local::composer::Composer;
use crate::{Error, Result};

/// What the event loop waits for: terminal input or a worker's result.
enum Incoming {
    Terminal(Event),
    Result(Action),
}

/// The worker's side of the loop's queue.
struct ResultSender(Sender<Incoming>);

impl ResultSender {
    fn send(&self, a: Action) -> std::result::Result<(), mpsc::SendError<Incoming>> {
        self.0.send(Incoming::Result(a))
    }
}

/// Restores the terminal when dropped (also on early return and unwinding).
struct TerminalGuard;

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn io(e: std::io::Error) -> Error {
    Error::io("terminal", e)
}

/// Runs effects on the library, one at a time and in order (so store writes stay ordered), and
/// reports back as actions.
fn worker(
    mut lib: Library,
    effects: Receiver<Effect>,
    actions: ResultSender,
    cancelled: Arc<Mutex<Vec<JobId>>>,
) {
    let is_cancelled = |job: JobId| cancelled.lock().map(|c| c.contains(&job)).unwrap_or(false);
    for effect in effects {
        let send = |a: Action| {
            let _ = actions.send(a);
        };
        let job = match &effect {
            Effect::Search { job, .. } | Effect::WritePrompt { job, .. } => *job,
            _ => 0,
        };
        let result: Result<()> = (|| {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::CancelJob(_) => {}
                Effect::LoadCampaigns => send(Action::CampaignsLoaded(lib.store.campaigns()?)),
                Effect::LoadStats => send(Action::StatsLoaded(Box::new(lib.store.stats()?))),
                Effect::OpenCampaign(id) => {
                    let c = lib.store.resolve_campaign(&id)?;
                    let hits = lib
                        .store
                        .runs(&c.id)?
                        .pop()
                        .map(|r| r.hits)
                        .unwrap_or_default();
                    let prompt = prompt::current(&lib, &c)?;
                    send(Action::CampaignOpened {
                        campaign: Box::new(c),
                        hits,
                        prompt: prompt.map(Box::new),
                    });
                }
                Effect::DeleteCampaign(id) => {
                    for f in lib.store.delete_campaign(&id)? {
                        let _ = std::fs::remove_file(f);
                    }
                    send(Action::Notice("Campaign deleted.".into()));
                }
                Effect::Search {
                    job,
                    campaign_id,
                    name,
                    brief,
                    objective,
                    node,
                    k,
                } => {
                    let c = match campaign_id.and_then(|id| lib.store.campaign(&id).ok().flatten())
                    {
                        Some(c)
                            if c.brief == brief && c.objective == objective && c.node == node =>
                        {
                            c
                        }
                        // A changed brief is a new campaign version: the old one keeps its history.
                        _ => campaign::create(
                            &lib,
                            NewCampaign {
                                name,
                                brief,
                                objective,
                                node,
                                brand: None,
                            },
                        )?,
                    };
                    let embedder = lib.text_embedder()?;
                    let index = lib.load_index(embedder.id())?;
                    if is_cancelled(job) {
                        return Ok(());
                    }
                    let run = campaign::recommend(
                        &lib,
                        &c,
                        &index,
                        embedder.as_ref(),
                        &RecommendOptions {
                            k,
                            query: None,
                            kpi_weight: lib.config.search.kpi_weight,
                            rerank_factor: lib.config.search.rerank_factor,
                        },
                    )?;
                    let c = lib.store.campaign(&c.id)?.unwrap_or(c);
                    send(Action::SearchDone {
                        job,
                        campaign: Box::new(c),
                        hits: run.hits,
                    });
                }
                Effect::SaveSelection {
                    campaign_id,
                    selected,
                } => lib.store.set_selection(&campaign_id, &selected)?,
                Effect::WritePrompt { job, campaign_id } => {
                    let c = lib.store.resolve_campaign(&campaign_id)?;
                    let max = lib.config.prompt.max_chars;
                    let v = prompt::write_prompt(&lib, &c, &Composer, None, max, &mut |e| {
                        if !is_cancelled(job) {
                            send(Action::PromptStream { job, event: e });
                        }
                    })?;
                    send(Action::PromptDone {
                        job,
                        version: Box::new(v),
                    });
                }
                Effect::RestorePrompt { campaign_id } => {
                    let c = lib.store.resolve_campaign(&campaign_id)?;
                    let v = prompt::restore(&lib, &c)?;
                    send(Action::Notice(format!(
                        "Restored the AI prompt as version {}.",
                        v.id
                    )));
                    send(Action::CampaignOpened {
                        hits: lib
                            .store
                            .runs(&c.id)?
                            .pop()
                            .map(|r| r.hits)
                            .unwrap_or_default(),
                        prompt: Some(Box::new(v)),
                        campaign: Box::new(c),
                    });
                }
                Effect::MoodBoard { campaign_id } => {
                    let c = lib.store.resolve_campaign(&campaign_id)?;
                    let out = lib
                        .paths
                        .data_dir
                        .join("moodboards")
                        .join(format!("{}.png", c.id));
                    moodboard::render(&lib, &c, &out)?;
                    send(Action::Notice(format!(
                        "Mood board written to {} (not a generated image).",
                        out.display()
                    )));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "studio job failed");
            let _ = actions.send(Action::JobFailed {
                job,
                error: e.to_string(),
            });
        }
    }
}

/// Runs the studio until the user quits.
pub fn run(lib: Library) -> Result<()> {
    let cfg = lib.config.clone();
    let keymap: Vec<Binding> = keymap::default_keymap();
    let mut state = State::new(
        cfg.taxonomy.objectives.clone(),
        cfg.taxonomy.nodes.clone(),
        cfg.search.k,
    );
    let (effect_tx, effect_rx) = mpsc::channel::<Effect>();
    let (action_tx_for_input, action_rx) = mpsc::channel::<Incoming>();
    let action_tx = ResultSender(action_tx_for_input.clone());
    let cancelled = Arc::new(Mutex::new(Vec::new()));
    let worker_cancelled = cancelled.clone();
    let handle = std::thread::Builder::new()
        .name("studio-engine".into())
        .spawn(move || worker(lib, effect_rx, action_tx, worker_cancelled))
        .map_err(io)?;

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        default_hook(info);
    }));
    enable_raw_mode().map_err(io)?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), EnterAlternateScreen).map_err(io)?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(io)?;

    let dispatch = |effects: Vec<Effect>| {
        for e in effects {
            if let Effect::CancelJob(j) = e
                && let Ok(mut c) = cancelled.lock()
            {
                c.push(j);
            }
            let _ = effect_tx.send(e);
        }
    };
    dispatch(vec![Effect::LoadCampaigns]);
    // Terminal input arrives on its own thread, into the same queue as the worker's results,
    // so the loop sleeps in `recv` until something happens: no polling, near-zero idle CPU.
    let (input_tx, input_rx) = (action_tx_for_input, action_rx);
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
    terminal
        .draw(|f| crate::ui::render(f, &state, &keymap))
        .map_err(io)?;
    while !state.quitting {
        let Ok(first) = input_rx.recv() else { break };
        // Drain everything queued, then draw once.
        let mut dirty = false;
        for msg in std::iter::once(first).chain(input_rx.try_iter()) {
            match msg {
                Incoming::Terminal(Event::Key(k)) => {
                    if let Some(a) = keymap::resolve(&keymap, state.pane, k) {
                        state.toast = None;
                        dispatch(update(&mut state, a));
                        dirty = true;
                    }
                }
                Incoming::Terminal(Event::Resize(_, _)) => dirty = true,
                Incoming::Terminal(_) => {}
                Incoming::Result(a) => {
                    dispatch(update(&mut state, a));
                    dirty = true;
                }
            }
        }
        if dirty && !state.quitting {
            terminal
                .draw(|f| crate::ui::render(f, &state, &keymap))
                .map_err(io)?;
        }
    }
    drop(effect_tx);
    let _ = handle.join();
    Ok(())
}
