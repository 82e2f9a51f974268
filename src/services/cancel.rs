//! A job's cancellation. The studio's runner makes one token per job and runs the job inside
//! `scoped`; every service the job calls on that thread sees it through `current`: the local
//! writers check it between tokens, the Bedrock client races each in-flight call (and each
//! event of a stream) against it and drops the call when it fires, the generators check it
//! between images. A thread-scoped token (like the cost meter's per-thread calls) reaches the
//! services without threading a parameter through every trait.
use std::cell::RefCell;

use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

#[derive(Clone, Debug, Default)]
pub struct CancelToken(CancellationToken);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.cancel();
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
    /// Resolves when the token is cancelled.
    pub async fn cancelled(&self) {
        self.0.cancelled().await
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Runs `f` with `token` as this thread's current job token (the previous one is restored
/// after, even if `f` panics).
pub fn scoped<T>(token: &CancelToken, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<CancelToken>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.borrow_mut().replace(token.clone())));
    f()
}

/// This thread's current job token, if a job is running on it.
pub fn current() -> Option<CancelToken> {
    CURRENT.with(|c| c.borrow().clone())
}

/// True when this thread's job has been cancelled.
pub fn is_cancelled() -> bool {
    current().is_some_and(|t| t.is_cancelled())
}

/// `Err(Error::Cancelled)` when this thread's job has been cancelled.
pub fn check() -> Result<()> {
    if is_cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_job_on_the_thread_is_never_cancelled() {
        assert!(check().is_ok());
    }

    #[test]
    fn a_cancelled_token_is_seen_inside_its_scope_only() {
        let t = CancelToken::new();
        t.cancel();
        assert!(scoped(&t, is_cancelled));
        assert!(!is_cancelled());
    }

    #[test]
    fn scopes_nest_and_restore() {
        let outer = CancelToken::new();
        let inner = CancelToken::new();
        inner.cancel();
        scoped(&outer, || {
            assert!(scoped(&inner, is_cancelled));
            assert!(!is_cancelled());
        });
    }
}
