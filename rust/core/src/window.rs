//! The consumer's per-shard window of recently kept event ids, so that a producer's re-send arriving in a later
//! batch is dropped (re-sends within one batch are [`crate::dedupe`]'s).
//!
//! A shard's window holds up to 100,000 ids by default and takes every id the shard keeps, so it is laid out to
//! cost no allocation per id: the ids' bytes back to back in one buffer (the evicted front compacted away once it
//! is half of the buffer), a queue of (start, length) per id in arrival order, and a hash table of positions in
//! that queue. The table's hash is aHash keyed per window (ids come from senders: HashDoS), as in the deduper.

use std::collections::VecDeque;

use ahash::RandomState;
use hashbrown::HashTable;

/// The event ids kept last on one shard. Ids leave in the order they came once more than `capacity` were added;
/// an id added twice is forgotten when its older copy leaves (a set of ids plus their arrival order).
#[derive(Default)]
pub struct DedupeWindow {
    capacity: usize,
    queue: Queue,
    /// The ids in the window, each by the position in `queue` of the copy that was added first.
    table: HashTable<usize>,
    state: RandomState,
}

/// The queued ids in arrival order, their bytes back to back.
#[derive(Default)]
struct Queue {
    /// The queued ids' bytes; `bytes[..dead]` belonged to ids that left.
    bytes: Vec<u8>,
    dead: usize,
    /// Where `bytes[0]` is among all the bytes ever queued (the starts below count from the first).
    offset: usize,
    /// (start, length) of each queued id, oldest first; `first` is the position of the front since the start.
    spans: VecDeque<(usize, u32)>,
    first: usize,
}

impl Queue {
    /// The bytes of the id at `position` (it must still be queued).
    fn at(&self, position: usize) -> &[u8] {
        let (start, len) = self.spans[position - self.first];
        let at = start - self.offset;
        &self.bytes[at..at + len as usize]
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    /// Queue `id`; returns its position.
    fn push(&mut self, id: &[u8], len: u32) -> usize {
        self.spans.push_back((self.offset + self.bytes.len(), len));
        self.bytes.extend_from_slice(id);
        self.first + self.spans.len() - 1
    }

    /// Drop the oldest id (the caller has read it); its bytes go once they are half of the buffer.
    fn pop(&mut self) {
        let (_, len) = self.spans.pop_front().expect("pop only a non-empty queue");
        self.first += 1;
        self.dead += len as usize;
        if self.dead > 4096 && self.dead * 2 > self.bytes.len() {
            self.bytes.drain(..self.dead);
            self.offset += self.dead;
            self.dead = 0;
        }
    }
}

impl std::fmt::Debug for DedupeWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DedupeWindow(capacity={}, len={})", self.capacity, self.len())
    }
}

impl DedupeWindow {
    pub fn new(capacity: usize) -> Self {
        DedupeWindow { capacity, ..Default::default() }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn contains(&self, event_id: &str) -> bool {
        let id = event_id.as_bytes();
        self.table.find(self.state.hash_one(id), |&p| self.queue.at(p) == id).is_some()
    }

    /// Remember `event_ids` (nothing when the capacity is 0), forgetting the oldest beyond the capacity.
    pub fn add_all<'a>(&mut self, event_ids: impl IntoIterator<Item = &'a str>) {
        if self.capacity == 0 {
            return;
        }
        let Self { queue, table, state, .. } = self;
        for id in event_ids {
            let id = id.as_bytes();
            let Ok(len) = u32::try_from(id.len()) else { continue }; // no event id is 4 GiB (the schema bounds them)
            let position = queue.push(id, len);
            let hash = state.hash_one(id);
            if table.find(hash, |&p| queue.at(p) == id).is_none() {
                table.insert_unique(hash, position, |&p| state.hash_one(queue.at(p)));
            }
        }
        while queue.len() > self.capacity {
            let id = queue.at(queue.first);
            if let Ok(entry) = table.find_entry(state.hash_one(id), |&p| queue.at(p) == id) {
                entry.remove();
            }
            queue.pop();
        }
    }

    pub fn clear(&mut self) {
        self.queue = Queue::default();
        self.table.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The window as a set plus an arrival queue, the way it was first written.
    struct Reference {
        capacity: usize,
        ids: HashSet<String>,
        order: VecDeque<String>,
    }

    impl Reference {
        fn add_all(&mut self, ids: &[&str]) {
            if self.capacity == 0 {
                return;
            }
            for id in ids {
                self.ids.insert(id.to_string());
                self.order.push_back(id.to_string());
            }
            while self.order.len() > self.capacity {
                let old = self.order.pop_front().unwrap();
                self.ids.remove(&old);
            }
        }
    }

    #[test]
    fn matches_a_set_with_an_arrival_queue() {
        // Few distinct ids (so copies repeat and leave while a newer copy is queued), batches of several sizes,
        // capacities from 0 up, long enough for the buffer to be compacted many times.
        let mut seed = 7u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for capacity in [0, 1, 2, 3, 10, 100] {
            let mut window = DedupeWindow::new(capacity);
            let mut reference = Reference { capacity, ids: HashSet::new(), order: VecDeque::new() };
            for _ in 0..3000 {
                let batch: Vec<String> = (0..next() % 9).map(|_| format!("id-{}-{}", next() % 150, "x".repeat((next() % 40) as usize))).collect();
                let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
                window.add_all(batch.iter().copied());
                reference.add_all(&batch);
                assert_eq!(window.len(), reference.ids.len(), "capacity {capacity}");
                for probe in (0..20).map(|_| format!("id-{}-{}", next() % 150, "x".repeat((next() % 40) as usize))) {
                    assert_eq!(window.contains(&probe), reference.ids.contains(&probe), "{probe}, capacity {capacity}");
                }
                for id in &reference.ids {
                    assert!(window.contains(id), "{id}, capacity {capacity}");
                }
            }
            window.clear();
            assert!(window.is_empty() && !window.contains("id-1-"));
        }
    }
}
