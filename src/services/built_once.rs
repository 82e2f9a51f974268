//! Values built once per process and key (the label space of a text embedder, a language's
//! offset under one): the first caller for a key builds, others for that key wait, callers for
//! other keys do not. A value that could not be built stays absent for the process.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

type Slot<T> = Arc<OnceLock<Option<Arc<T>>>>;

pub struct BuiltOnce<T> {
    slots: OnceLock<Mutex<HashMap<String, Slot<T>>>>,
}

impl<T> BuiltOnce<T> {
    pub const fn new() -> Self {
        BuiltOnce {
            slots: OnceLock::new(),
        }
    }

    /// The value of `key`, built by `build` on the first call for it; `None` when that build
    /// returned `None` (not retried).
    pub fn get_or_build(&self, key: String, build: impl FnOnce() -> Option<T>) -> Option<Arc<T>> {
        let slot: Slot<T> = self
            .slots
            .get_or_init(Mutex::default)
            .lock()
            // The map holds only slots; one left by a panicking thread is still sound.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .clone();
        slot.get_or_init(|| build().map(Arc::new)).clone()
    }
}

impl<T> Default for BuiltOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_built_once() {
        let once = BuiltOnce::new();
        let mut calls = 0;
        for _ in 0..3 {
            let v = once.get_or_build("a".into(), || {
                calls += 1;
                Some(7)
            });
            assert_eq!(v.as_deref(), Some(&7));
        }
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_failed_build_is_not_retried() {
        let once: BuiltOnce<u8> = BuiltOnce::new();
        assert!(once.get_or_build("a".into(), || None).is_none());
        assert!(once.get_or_build("a".into(), || Some(1)).is_none());
    }

    #[test]
    fn keys_are_built_apart() {
        let once = BuiltOnce::new();
        assert_eq!(
            once.get_or_build("a".into(), || Some(1)).as_deref(),
            Some(&1)
        );
        assert_eq!(
            once.get_or_build("b".into(), || Some(2)).as_deref(),
            Some(&2)
        );
    }
}
