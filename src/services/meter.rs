//! The call ledger: every paid model call is recorded here by the service that made it, the
//! moment the answer arrives. The engine takes the calls its own thread made and stores them
//! with what they were for (a campaign, an asset), so concurrent jobs never claim each other's
//! calls and nothing is lost when a later step fails.
use std::sync::Mutex;
use std::thread::ThreadId;

use crate::domain::ModelCall;

#[derive(Debug, Default)]
pub struct Meter {
    calls: Mutex<Vec<(ThreadId, ModelCall)>>,
}

impl Meter {
    /// Records a call made on the current thread.
    pub fn record(&self, call: ModelCall) {
        tracing::info!(
            job = %call.job,
            model = %call.model,
            input_tokens = call.input_tokens,
            output_tokens = call.output_tokens,
            images = call.images,
            withheld = call.withheld,
            "model call"
        );
        let me = std::thread::current().id();
        match self.calls.lock() {
            Ok(mut g) => g.push((me, call)),
            Err(p) => p.into_inner().push((me, call)),
        }
    }

    /// The calls the current thread made since it last took them.
    pub fn take_this_thread(&self) -> Vec<ModelCall> {
        let me = std::thread::current().id();
        let mut g = match self.calls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (mine, rest): (Vec<_>, Vec<_>) = g.drain(..).partition(|(t, _)| *t == me);
        *g = rest;
        mine.into_iter().map(|(_, c)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_takes_only_its_own_calls() {
        let m = Meter::default();
        m.record(ModelCall {
            job: "prompt".into(),
            ..Default::default()
        });
        std::thread::scope(|s| {
            s.spawn(|| {
                m.record(ModelCall {
                    job: "describe".into(),
                    ..Default::default()
                });
            });
        });
        let mine = m.take_this_thread();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].job, "prompt");
        assert!(m.take_this_thread().is_empty());
    }
}
