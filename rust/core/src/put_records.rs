//! The Kinesis PutRecords request the ingest service sends (JSON protocol): its body, built straight into the
//! caller's buffer, and the body's SHA-256 in hex, which AWS Signature Version 4 signs as the payload hash.
//! AWS's wire format lives here, apart from the pure event path ([`crate::ingest`]).

use sha2::{Digest, Sha256};

/// Lowercase hex of the SHA-256 digest of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// The JSON body of a Kinesis PutRecords call (JSON protocol: Data in base64) and the SHA-256 of that body in
/// hex, which SigV4 signs.
pub fn put_records_body<'r>(stream_name: &str, records: &[(&'r [u8], &'r str)]) -> (Vec<u8>, String) {
    let body = PutRecordsBody::new(stream_name, records);
    let mut out = vec![0; body.len()];
    let digest = body.write(&mut out);
    (out, digest)
}

/// A PutRecords body whose exact length is known before it is written, so that a caller can write it straight
/// into its own buffer (the Python binding: into the bytes object it returns, with no copy of ~200 KB).
pub struct PutRecordsBody<'r> {
    records: &'r [(&'r [u8], &'r str)],
    /// The stream name and each partition key as JSON strings, one after the other.
    strings: Vec<u8>,
    string_ends: Vec<usize>,
    len: usize,
}

const BODY_START: &[u8] = b"{\"StreamName\":";
const RECORDS_START: &[u8] = b",\"Records\":[";
const DATA_START: &[u8] = b"{\"Data\":\"";
const KEY_START: &[u8] = b"\",\"PartitionKey\":";
const BODY_END: &[u8] = b"]}";

impl<'r> PutRecordsBody<'r> {
    pub fn new(stream_name: &str, records: &'r [(&'r [u8], &'r str)]) -> Self {
        let mut strings = Vec::with_capacity(2 + stream_name.len() + records.iter().map(|(_, k)| 2 + k.len()).sum::<usize>());
        let mut string_ends = Vec::with_capacity(records.len() + 1);
        for text in std::iter::once(stream_name).chain(records.iter().map(|&(_, key)| key)) {
            serde_json::to_writer(&mut strings, text).expect("writing to a Vec cannot fail");
            string_ends.push(strings.len());
        }
        let per_record = DATA_START.len() + KEY_START.len() + 1;
        let len = BODY_START.len() + RECORDS_START.len() + BODY_END.len() + strings.len()
            + records.len().saturating_sub(1)
            + records.iter().map(|(data, _)| per_record + base64_simd::STANDARD.encoded_length(data.len())).sum::<usize>();
        PutRecordsBody { records, strings, string_ends, len }
    }

    /// The body's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Write the body into `out` (exactly [`Self::len`] bytes); returns its SHA-256 in hex.
    pub fn write(&self, out: &mut [u8]) -> String {
        fn put(out: &mut [u8], at: &mut usize, bytes: &[u8]) {
            out[*at..*at + bytes.len()].copy_from_slice(bytes);
            *at += bytes.len();
        }
        assert_eq!(out.len(), self.len, "the buffer must hold exactly the body");
        let string = |index: usize| {
            let start = if index == 0 { 0 } else { self.string_ends[index - 1] };
            &self.strings[start..self.string_ends[index]]
        };
        let mut at = 0;
        put(out, &mut at, BODY_START);
        put(out, &mut at, string(0));
        put(out, &mut at, RECORDS_START);
        for (n, &(data, _)) in self.records.iter().enumerate() {
            if n > 0 {
                put(out, &mut at, b",");
            }
            put(out, &mut at, DATA_START);
            let encoded = base64_simd::STANDARD.encoded_length(data.len());
            let written = base64_simd::STANDARD.encode(data, base64_simd::Out::from_slice(&mut out[at..at + encoded]));
            debug_assert_eq!(written.len(), encoded);
            at += encoded;
            put(out, &mut at, KEY_START);
            put(out, &mut at, string(n + 1));
            put(out, &mut at, b"}");
        }
        put(out, &mut at, BODY_END);
        assert_eq!(at, self.len, "the body's length was computed wrong");
        sha256_hex(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn put_records_body_is_the_json_protocol_request() {
        let records: Vec<(&[u8], &str)> = vec![(b"hello", "k\"1"), (b"", "k2")];
        let (body, digest) = put_records_body("s", &records);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["StreamName"], "s");
        assert_eq!(parsed["Records"][0]["Data"], "aGVsbG8=");
        assert_eq!(parsed["Records"][0]["PartitionKey"], "k\"1");
        assert_eq!(parsed["Records"][1]["Data"], "");
        assert_eq!(digest, sha256_hex(&body));
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
