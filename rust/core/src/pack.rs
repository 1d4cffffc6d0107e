//! Packing events into Kinesis records: the events whose partition keys hash into the same shard are joined
//! as NDJSON lines into records of at most `max_bytes`, as the Kinesis Producer Library aggregates.
//!
//! Routing follows Kinesis: the MD5 digest of the partition key's UTF-8 bytes, read as a 128-bit big-endian
//! integer, falls into exactly one open shard's hash key range; `starts` are those ranges' starting keys in
//! ascending order. A packed record's partition key is its first event's key, which routes to the same shard.

use md5::{Digest, Md5};

/// The 128-bit hash key Kinesis derives from a partition key.
pub fn hash_key(key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(key.as_bytes()).into())
}

/// Index into `starts` (ascending starting hash keys of the open shards) of the shard that takes `key`.
pub fn shard_of(key: &str, starts: &[u128]) -> usize {
    if starts.len() <= 1 {
        return 0;
    }
    let hash = hash_key(key);
    starts.partition_point(|&start| start <= hash).saturating_sub(1)
}

/// One record to send: which events it holds (indexes into the input, in order), its shard and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    pub shard: usize,
    pub members: Vec<usize>,
    /// Data bytes (lines + newlines) plus the partition key's bytes: what Kinesis counts against 1 MiB.
    pub size: usize,
}

impl Pack {
    /// The record's data: the members' lines joined by "\n".
    pub fn data(&self, lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        for (n, &index) in self.members.iter().enumerate() {
            if n > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(lines[index]);
        }
        out
    }
}

/// Group `lines` by the shard of their `keys` (same length), in input order per shard, into packs of at most
/// `max_bytes` (data + the first member's key). A line too large on its own travels alone. Packs come out
/// shard by shard, in shard order.
pub fn pack(lines: &[&[u8]], keys: &[&str], starts: &[u128], max_bytes: usize) -> Vec<Pack> {
    assert_eq!(lines.len(), keys.len(), "one partition key per line");
    let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); starts.len().max(1)];
    for (index, key) in keys.iter().enumerate() {
        by_shard[shard_of(key, starts)].push(index);
    }
    let mut packs = Vec::new();
    for (shard, indexes) in by_shard.into_iter().enumerate() {
        let mut current: Option<Pack> = None;
        for index in indexes {
            let line = lines[index].len();
            match current.as_mut() {
                Some(open) if open.size + 1 + line <= max_bytes => {
                    open.members.push(index);
                    open.size += 1 + line;
                }
                _ => {
                    packs.extend(current.take());
                    current = Some(Pack { shard, members: vec![index], size: line + keys[index].len() });
                }
            }
        }
        packs.extend(current);
    }
    packs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn four_shards() -> Vec<u128> {
        vec![0, 1 << 126, 1 << 127, 3 << 126]
    }

    #[test]
    fn hash_key_is_md5_big_endian() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(hash_key(""), 0xd41d8cd98f00b204e9800998ecf8427e);
        assert_eq!(shard_of("", &four_shards()), 3);
        assert_eq!(shard_of("anything", &[0]), 0);
    }

    #[test]
    fn every_line_once_in_order_per_shard_within_the_size() {
        let owned: Vec<Vec<u8>> = (0..300).map(|n| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(n % 50)).into_bytes()).collect();
        let lines: Vec<&[u8]> = owned.iter().map(|l| l.as_slice()).collect();
        let key_strings: Vec<String> = (0..300).map(|n| format!("u_{n}")).collect();
        let keys: Vec<&str> = key_strings.iter().map(|k| k.as_str()).collect();
        let starts = four_shards();
        let packs = pack(&lines, &keys, &starts, 1000);
        let mut seen: Vec<usize> = packs.iter().flat_map(|p| p.members.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
        for p in &packs {
            assert!(p.size <= 1000);
            assert!(p.members.windows(2).all(|w| w[0] < w[1]));
            assert!(p.members.iter().all(|&i| shard_of(keys[i], &starts) == p.shard));
            assert_eq!(p.data(&lines).len() + keys[p.members[0]].len(), p.size);
        }
    }

    #[test]
    fn an_oversize_line_travels_alone() {
        let big = vec![b'x'; 50];
        let lines: Vec<&[u8]> = vec![b"a", &big, b"b"];
        let packs = pack(&lines, &["k", "k", "k"], &[0], 20);
        assert_eq!(packs.iter().map(|p| p.members.clone()).collect::<Vec<_>>(), vec![vec![0], vec![1], vec![2]]);
    }
}
