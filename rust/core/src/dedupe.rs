//! Deduplication on event_id: the first occurrence wins (a resend is harmless).
//!
//! A batch of a million events offers a million ids, almost all new, in random hash order, so the cost is one
//! cache (and TLB) miss per id. The table is laid out for that: open addressing with linear probing over 8-byte
//! slots (32 bits of the id's hash + the id's index), so a probe touches one cache line and the id bytes are
//! only compared when the stored hash bits match (a real repeat, or a 1-in-2^32 accident).
//!
//! The table does not keep the ids themselves: the caller already stores every first-seen id (`process_batch` in
//! its event_id column), and lends that storage as an [`Ids`] when an id is offered: a second copy of every id
//! reference would be a large share of the memory `process_batch` needs beyond input + output.
//!
//! Event ids come from senders, so the hash must resist HashDoS (ids crafted to collide, turning each probe into a
//! scan of a long run): it is aHash keyed by random keys drawn per table (`ahash::RandomState` with
//! `runtime-rng`), not a fixed unkeyed hash, and cheaper per id than std's SipHash.

use ahash::RandomState;

/// Where the ids offered so far live, by index (0, 1, 2, ... in the order they were first seen).
pub trait Ids {
    fn id(&self, index: usize) -> &str;
}

impl<T: AsRef<str>> Ids for [T] {
    fn id(&self, index: usize) -> &str {
        self[index].as_ref()
    }
}

/// A slot of the table: the upper 32 bits of the id's hash and the id's index (`EMPTY` when free).
#[derive(Clone, Copy)]
struct Slot {
    tag: u32,
    index: u32,
}

const EMPTY: u32 = u32::MAX;

/// Remembers which event ids a batch has seen; the ids themselves are kept by the caller ([`Ids`]).
#[derive(Debug)]
pub struct Deduper {
    slots: Vec<Slot>,
    count: usize,
    state: RandomState,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.tag, self.index)
    }
}

impl Default for Deduper {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// Slots for `n` ids at a load of at most 3/4.
fn slots_for(n: usize) -> usize {
    (n + n / 3 + 1).next_power_of_two().max(16)
}

impl Deduper {
    /// A table sized for `n` distinct ids (it grows past that).
    pub fn with_capacity(n: usize) -> Self {
        Deduper { slots: vec![Slot { tag: 0, index: EMPTY }; slots_for(n)], count: 0, state: RandomState::new() }
    }

    /// True the first time `id` is offered, false for every later repeat. `ids` holds the ids offered before
    /// that were first seen (index 0 = the first); when this returns true the caller must store `id` as the
    /// next one before offering another.
    pub fn first_seen(&mut self, id: &str, ids: &(impl Ids + ?Sized)) -> bool {
        let hash = self.hash(id);
        self.first_seen_hashed(id, hash, ids)
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
    pub fn first_seen_hashed(&mut self, id: &str, hash: u64, ids: &(impl Ids + ?Sized)) -> bool {
        if self.count * 4 >= self.slots.len() * 3 {
            self.grow(ids);
        }
        let tag = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot.index == EMPTY {
                break;
            }
            if slot.tag == tag && ids.id(slot.index as usize).as_bytes() == id.as_bytes() {
                return false;
            }
            i = (i + 1) & mask;
        }
        // More than u32::MAX - 1 distinct ids in one batch (~100 GB of ids alone) cannot be indexed.
        let index = u32::try_from(self.count).ok().filter(|&n| n != EMPTY).expect("fewer than 2^32-1 ids per batch");
        self.slots[i] = Slot { tag, index };
        self.count += 1;
        true
    }

    /// Double the table, re-placing every id seen so far by its hash.
    fn grow(&mut self, ids: &(impl Ids + ?Sized)) {
        let n = self.slots.len() * 2;
        let mask = n - 1;
        let mut slots = vec![Slot { tag: 0, index: EMPTY }; n];
        for index in 0..self.count {
            let hash = self.state.hash_one(ids.id(index).as_bytes());
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
    let mut seen: Vec<&str> = Vec::new();
    let mut keep = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        match id {
            Some(id) if !d.first_seen(id, seen.as_slice()) => {}
            Some(id) => {
                seen.push(id);
                keep.push(i);
            }
            None => keep.push(i),
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[test]
    fn first_occurrence_wins() {
        assert_eq!(keep_indices([Some("a"), Some("b"), Some("a"), None, None, Some("b")]), vec![0, 1, 3, 4]);
    }

    #[test]
    fn grows_past_its_capacity_and_still_finds_every_id() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("id-{i}")).collect();
        let mut d = Deduper::with_capacity(4);
        let mut seen: Vec<Cow<'_, str>> = Vec::new();
        for id in &ids {
            assert!(d.first_seen(id, seen.as_slice()));
            seen.push(Cow::Borrowed(id));
        }
        assert!(ids.iter().all(|id| !d.first_seen(&id.clone(), seen.as_slice())));
        assert!(d.first_seen("", seen.as_slice()));
        seen.push(Cow::Borrowed(""));
        assert!(!d.first_seen("", seen.as_slice()));
    }

    #[test]
    fn hashed_offers_agree_across_growth() {
        let mut d = Deduper::with_capacity(2);
        let mut seen: Vec<&str> = Vec::new();
        let hashes: Vec<u64> = ["a", "b", "c"].iter().map(|id| d.hash(id)).collect();
        for (id, hash) in ["a", "b", "c"].into_iter().zip(&hashes) {
            assert!(d.first_seen_hashed(id, *hash, seen.as_slice()));
            seen.push(id);
        }
        assert!(!d.first_seen_hashed("a", hashes[0], seen.as_slice()));
        assert!(!d.first_seen("c", seen.as_slice()));
    }
}
