//! Deduplication on event_id: the first occurrence wins (a resend is harmless).

use std::borrow::Cow;
use std::collections::HashSet;

use ahash::RandomState;

/// Remembers the event ids seen so far in a batch.
#[derive(Debug, Default)]
pub struct Deduper<'a> {
    seen: HashSet<Cow<'a, str>, RandomState>,
}

impl<'a> Deduper<'a> {
    pub fn with_capacity(n: usize) -> Self {
        Deduper { seen: HashSet::with_capacity_and_hasher(n, RandomState::new()) }
    }

    /// True the first time `id` is offered, false for every later repeat.
    pub fn first_seen(&mut self, id: Cow<'a, str>) -> bool {
        // One hash lookup; a borrowed id is a pointer into the batch, an owned (escaped) one is kept as is.
        self.seen.insert(id)
    }
}

/// Indices of the events to keep: the first of each event_id; events without an id are all kept.
pub fn keep_indices<'a>(ids: impl IntoIterator<Item = Option<&'a str>>) -> Vec<usize> {
    let mut d = Deduper::default();
    ids.into_iter()
        .enumerate()
        .filter(|(_, id)| id.is_none_or(|id| d.first_seen(Cow::Borrowed(id))))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_wins() {
        assert_eq!(keep_indices([Some("a"), Some("b"), Some("a"), None, None, Some("b")]), vec![0, 1, 3, 4]);
    }
}
