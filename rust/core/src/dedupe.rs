//! Deduplication on event_id: the first occurrence wins (a resend is harmless).
//!
//! A batch of a million events offers a million ids, almost all new, in random hash order, so the cost is one
//! cache (and TLB) miss per id. The table is laid out for that: open addressing with linear probing over 8-byte
//! slots (32 bits of the id's hash + the id's index), so a probe touches one cache line and the id bytes are
//! only compared when the stored hash bits match (a real repeat, or a 1-in-2^32 accident).

use std::borrow::Cow;

use ahash::RandomState;

/// A slot of the table: the upper 32 bits of the id's hash and its index in `ids` (`EMPTY` when free).
#[derive(Clone, Copy)]
struct Slot {
    tag: u32,
    index: u32,
}

const EMPTY: u32 = u32::MAX;

/// Remembers the event ids seen so far in a batch.
#[derive(Debug)]
pub struct Deduper<'a> {
    slots: Vec<Slot>,
    ids: Vec<Cow<'a, str>>,
    state: RandomState,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.tag, self.index)
    }
}

impl Default for Deduper<'_> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// Slots for `n` ids at a load of at most 3/4.
fn slots_for(n: usize) -> usize {
    (n + n / 3 + 1).next_power_of_two().max(16)
}

impl<'a> Deduper<'a> {
    /// A table sized for `n` distinct ids (it grows past that).
    pub fn with_capacity(n: usize) -> Self {
        Deduper {
            slots: vec![Slot { tag: 0, index: EMPTY }; slots_for(n)],
            ids: Vec::with_capacity(n),
            state: RandomState::new(),
        }
    }

    /// True the first time `id` is offered, false for every later repeat.
    pub fn first_seen(&mut self, id: Cow<'a, str>) -> bool {
        let hash = self.hash(&id);
        self.first_seen_hashed(id, hash)
    }

    /// The hash of `id` for [`Deduper::first_seen_hashed`]; starts loading the slot it probes first into the cache,
    /// so that work done before offering the id hides the cache miss.
    pub fn hash(&self, id: &str) -> u64 {
        let hash = self.state.hash_one(id.as_bytes());
        prefetch(&self.slots[hash as usize & (self.slots.len() - 1)]);
        hash
    }

    /// [`Deduper::first_seen`] with the id's hash from [`Deduper::hash`] (of this deduper; the table may have
    /// grown since).
    pub fn first_seen_hashed(&mut self, id: Cow<'a, str>, hash: u64) -> bool {
        let tag = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.index == EMPTY {
                break;
            }
            if slot.tag == tag && self.ids[slot.index as usize].as_bytes() == id.as_bytes() {
                return false;
            }
            i = (i + 1) & mask;
        }
        // More than u32::MAX - 1 distinct ids in one batch (~100 GB of ids alone) cannot be indexed.
        let index = u32::try_from(self.ids.len()).ok().filter(|&n| n != EMPTY).expect("fewer than 2^32-1 ids per batch");
        self.slots[i] = Slot { tag, index };
        self.ids.push(id);
        if self.ids.len() * 4 >= self.slots.len() * 3 {
            self.grow();
        }
        true
    }

    /// Double the table, re-placing every id by its hash.
    fn grow(&mut self) {
        let n = self.slots.len() * 2;
        let mask = n - 1;
        let mut slots = vec![Slot { tag: 0, index: EMPTY }; n];
        for (index, id) in self.ids.iter().enumerate() {
            let hash = self.state.hash_one(id.as_bytes());
            let mut i = hash as usize & mask;
            while slots[i].index != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = Slot { tag: (hash >> 32) as u32, index: index as u32 };
        }
        self.slots = slots;
    }
}

/// A hint to the CPU to load `slot`'s cache line; no effect on the result.
#[inline(always)]
fn prefetch(slot: &Slot) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing observable; the pointer comes from a live reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((slot as *const Slot).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = slot;
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

    #[test]
    fn grows_past_its_capacity_and_still_finds_every_id() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("id-{i}")).collect();
        let mut d = Deduper::with_capacity(4);
        assert!(ids.iter().all(|id| d.first_seen(Cow::Borrowed(id))));
        assert!(ids.iter().all(|id| !d.first_seen(Cow::Owned(id.clone()))));
        assert!(d.first_seen(Cow::Borrowed("")));
        assert!(!d.first_seen(Cow::Borrowed("")));
    }

    #[test]
    fn hashed_offers_agree_across_growth() {
        let mut d = Deduper::with_capacity(2);
        let hashes: Vec<u64> = ["a", "b", "c"].iter().map(|id| d.hash(id)).collect();
        assert!(d.first_seen_hashed(Cow::Borrowed("a"), hashes[0]));
        assert!(d.first_seen_hashed(Cow::Borrowed("b"), hashes[1]));
        assert!(d.first_seen_hashed(Cow::Borrowed("c"), hashes[2]));
        assert!(!d.first_seen_hashed(Cow::Borrowed("a"), hashes[0]));
        assert!(!d.first_seen(Cow::Borrowed("c")));
    }
}
