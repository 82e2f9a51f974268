//! The studio's whole loop minus the terminal, for tests: keys go through the keymap into
//! `update`, effects run on a real `Runner`, results come back into `update`. No clock, no
//! sleeps: each effect runs to completion.
use std::collections::VecDeque;

use campaign_studio::app::keymap::{Binding, default_keymap, resolve};
use campaign_studio::app::{Action, Effect, State, update};
use campaign_studio::config::Config;
use campaign_studio::tui::Runner;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub fn new_state() -> State {
    let c = Config::defaults();
    State::new(c.taxonomy.objectives, c.taxonomy.nodes, c.search.k)
}

pub struct Studio {
    pub state: State,
    pub runner: Runner,
    pub keymap: Vec<Binding>,
    /// Every effect run, in order (to check what reached the engine).
    pub log: Vec<Effect>,
}

impl Studio {
    pub fn new(runner: Runner) -> Self {
        let mut s = Studio {
            state: new_state(),
            runner,
            keymap: default_keymap(),
            log: Vec::new(),
        };
        s.state.generator = s.runner.generator.as_ref().map(|g| g.caps().clone());
        s.act(Action::Resized(120, 40));
        s.run(vec![Effect::LoadCampaigns, Effect::LoadBrands]);
        s
    }

    /// Runs effects (and the effects their results cause) to completion.
    pub fn run(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(e) = queue.pop_front() {
            self.log.push(e.clone());
            match e {
                Effect::CancelJob(j) => self.runner.cancellation.cancel(j),
                Effect::Quit | Effect::Suspend => {}
                e => {
                    let mut results = Vec::new();
                    self.runner.run(e, &mut |a| results.push(a));
                    for a in results {
                        queue.extend(update(&mut self.state, a));
                    }
                }
            }
        }
    }

    pub fn act(&mut self, a: Action) {
        let fx = update(&mut self.state, a);
        self.run(fx);
    }

    pub fn key(&mut self, code: KeyCode, mods: KeyModifiers) {
        let k = KeyEvent::new(code, mods);
        if let Some(a) = resolve(&self.keymap, self.state.pane, self.state.text_input(), k) {
            self.act(a);
        }
    }

    pub fn press(&mut self, c: char) {
        self.key(KeyCode::Char(c), KeyModifiers::NONE);
    }

    pub fn ctrl(&mut self, c: char) {
        self.key(KeyCode::Char(c), KeyModifiers::CONTROL);
    }

    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.press(c);
        }
    }

    pub fn toast(&self) -> String {
        self.state
            .toast
            .as_ref()
            .map(|t| t.text.clone())
            .unwrap_or_default()
    }
}
