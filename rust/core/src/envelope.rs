//! The fast envelope reader: one pass over an event's JSON text that checks it is JSON, finds the envelope's
//! members as borrowed raw text, and (in the same pass) picks the members of `properties` the schema reads.
//!
//! Why: serde_json read every line twice (the envelope with `RawValue`s, then `properties` again to pick members
//! and to see whether it needs compacting); this reads it once, 8 bytes at a time inside strings.
//!
//! It is an accelerator, never a second judge: it accepts only text that serde_json accepts and reads it the same
//! way, and gives up (`None`) on anything else: not JSON, an escaped top-level key, a duplicate envelope key,
//! nesting deeper than [`MAX_DEPTH`], trailing bytes. The caller then takes the serde_json path, which makes the
//! reject message, so reject messages and reject behaviour are serde_json's. `validate::check_event_reference`
//! keeps that path callable alone; the bounded fuzz test and tests/core/test_envelope.py compare the two.

/// The envelope's members, as raw JSON text (None when absent or JSON null), in the order of [`KEYS`].
pub(crate) type Slots<'a> = [Option<&'a str>; 8];

/// The top-level keys the envelope reads, by slot.
pub(crate) const KEYS: [&[u8]; 8] =
    [b"event_id", b"event_type", b"timestamp", b"user_id", b"session_id", b"properties", b"schema_version", b"_job_id"];

/// Slot of `properties` in [`KEYS`].
pub(crate) const PROPERTIES: usize = 5;

/// Deeper nesting goes to serde_json (which has no limit when it skips a value): rare, and never wrong.
const MAX_DEPTH: usize = 64;

/// What the fast reader found.
pub(crate) struct Fast<'a> {
    pub slots: Slots<'a>,
    /// Whether `properties` (when an object) has JSON whitespace outside strings (then it needs compacting).
    pub properties_spaced: bool,
    /// Whether `picked` holds the members of `properties` named by the roots (false when `properties` is absent,
    /// not an object, or has a top-level key with an escape: the caller then picks them the general way).
    pub picked_ok: bool,
}

/// Read `text` (a JSON object, starting with `{`) in one pass; the members of `properties` named by `roots` go to
/// `picked` (the last of duplicate keys wins, as serde reads them). None: let serde_json read it.
pub(crate) fn read<'a>(text: &'a str, roots: &[String], picked: &mut Vec<Option<&'a str>>) -> Option<Fast<'a>> {
    let b = text.as_bytes();
    let mut slots: Slots<'a> = [None; 8];
    let mut seen = 0u8;
    let mut fast = Fast { slots: [None; 8], properties_spaced: false, picked_ok: false };
    let mut unused = false;
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut i = ws(b, 1, &mut unused);
    if b.get(i) == Some(&b'}') {
        return (ws(b, i + 1, &mut unused) == b.len()).then_some(fast);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = string(b, i)?;
        if escaped {
            return None;
        }
        let key = &b[i + 1..key_end - 1];
        i = ws(b, key_end, &mut unused);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(b, i + 1, &mut unused);
        let slot = KEYS.iter().position(|k| *k == key);
        let end = if slot == Some(PROPERTIES) && b.get(start) == Some(&b'{') {
            let (end, spaced, ok) = properties(b, text, start, roots, picked)?;
            fast.properties_spaced = spaced;
            fast.picked_ok = ok;
            end
        } else {
            value(b, start, &mut unused)?
        };
        if let Some(s) = slot {
            if seen & (1 << s) != 0 {
                return None;
            }
            seen |= 1 << s;
            let raw = &text[start..end];
            slots[s] = (raw != "null").then_some(raw);
        }
        i = ws(b, end, &mut unused);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1, &mut unused),
            Some(b'}') => break,
            _ => return None,
        }
    }
    if ws(b, i + 1, &mut unused) != b.len() {
        return None;
    }
    if slots[PROPERTIES].is_none_or(|p| !p.starts_with('{')) {
        fast.picked_ok = false;
        fast.properties_spaced = false;
    }
    fast.slots = slots;
    Some(fast)
}

/// The object at `b[i]` (`properties`): its end, whether it has whitespace outside strings, and whether the
/// members named by `roots` were picked into `picked` (false when a top-level key has an escape).
fn properties<'a>(
    b: &[u8],
    text: &'a str,
    mut i: usize,
    roots: &[String],
    picked: &mut Vec<Option<&'a str>>,
) -> Option<(usize, bool, bool)> {
    picked.clear();
    picked.resize(roots.len(), None);
    let mut spaced = false;
    let mut ok = true;
    i = ws(b, i + 1, &mut spaced);
    if b.get(i) == Some(&b'}') {
        return Some((i + 1, spaced, ok));
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (key_end, escaped) = string(b, i)?;
        let key = &b[i + 1..key_end - 1];
        i = ws(b, key_end, &mut spaced);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(b, i + 1, &mut spaced);
        let end = value(b, start, &mut spaced)?;
        if escaped {
            ok = false;
        } else if let Some(k) = roots.iter().position(|r| r.as_bytes() == key) {
            picked[k] = Some(&text[start..end]);
        }
        i = ws(b, end, &mut spaced);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1, &mut spaced),
            Some(b'}') => return Some((i + 1, spaced, ok)),
            _ => return None,
        }
    }
}

/// The index after JSON whitespace from `i`; sets `spaced` when there was any.
#[inline(always)]
fn ws(b: &[u8], mut i: usize, spaced: &mut bool) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        *spaced = true;
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` that is `"`, `\` or a control character (< 0x20). Exact for the lowest such
/// byte (the borrow of the classic zero-byte test only ever marks bytes above a true one).
#[inline(always)]
fn special_bytes(w: u64) -> u64 {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    (zero(quote) | zero(backslash) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGHS
}

/// The string whose opening quote is at `i`: the index after its closing quote, and whether it has an escape.
/// None when it is not a JSON string as serde_json reads one (a control character, a bad escape, no end).
#[inline]
fn string(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        while let Some(chunk) = b.get(j..j + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let m = special_bytes(w);
            if m != 0 {
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        // Byte by byte near the end of the text (and at the special byte found above).
        loop {
            match *b.get(j)? {
                b'"' => return Some((j + 1, escaped)),
                b'\\' => {
                    escaped = true;
                    j = escape(b, j)?;
                    break;
                }
                c if c < 0x20 => return None,
                _ => j += 1,
            }
        }
    }
}

/// The index after the escape whose backslash is at `i` (serde_json's: `\uXXXX` any four hex digits, lone
/// surrogates included, since it does not decode the values it skips).
#[inline]
fn escape(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(i + 2),
        b'u' => b.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit).then_some(i + 6),
        _ => None,
    }
}

/// The index after the JSON number at `i` (serde_json's grammar: no leading zeros, digits after `.` and `e`).
#[inline]
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let after = digits(i + 1);
        if after == i + 1 {
            return None;
        }
        i = after;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let after = digits(i);
        if after == i {
            return None;
        }
        i = after;
    }
    Some(i)
}

/// The index after the JSON value at `b[i]` (whitespace before it already skipped); `spaced` is set when a
/// container has whitespace outside strings.
#[inline]
fn value(b: &[u8], i: usize, spaced: &mut bool) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string(b, i).map(|(end, _)| end),
        b'{' | b'[' => container(b, i, spaced),
        b't' => b[i..].starts_with(b"true").then_some(i + 4),
        b'f' => b[i..].starts_with(b"false").then_some(i + 5),
        b'n' => b[i..].starts_with(b"null").then_some(i + 4),
        _ => number(b, i),
    }
}

/// The index after the object or array at `b[i]`, every value in it checked; iterative, at most [`MAX_DEPTH`]
/// deep.
fn container(b: &[u8], mut i: usize, spaced: &mut bool) -> Option<usize> {
    let mut stack = [0u8; MAX_DEPTH];
    let mut depth = 0usize;
    let mut want_value = true;
    loop {
        if want_value {
            match *b.get(i)? {
                open @ (b'{' | b'[') => {
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    stack[depth] = open;
                    depth += 1;
                    i = ws(b, i + 1, spaced);
                    let close = if open == b'{' { b'}' } else { b']' };
                    if b.get(i) == Some(&close) {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            return Some(i);
                        }
                        want_value = false;
                    } else if open == b'{' {
                        i = member_value(b, i, spaced)?;
                    }
                }
                _ => {
                    i = value(b, i, spaced)?;
                    want_value = false;
                }
            }
        } else {
            i = ws(b, i, spaced);
            let top = stack[depth - 1];
            match (*b.get(i)?, top) {
                (b',', _) => {
                    i = ws(b, i + 1, spaced);
                    if top == b'{' {
                        i = member_value(b, i, spaced)?;
                    }
                    want_value = true;
                }
                (b'}', b'{') | (b']', b'[') => {
                    depth -= 1;
                    i += 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => return None,
            }
        }
    }
}

/// At a member's key (`b[i]` = `"`): the index of its value, past the key, the colon and whitespace.
#[inline]
fn member_value(b: &[u8], i: usize, spaced: &mut bool) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (end, _) = string(b, i)?;
    let colon = ws(b, end, spaced);
    if b.get(colon) != Some(&b':') {
        return None;
    }
    Some(ws(b, colon + 1, spaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(text: &str) -> Option<Slots<'_>> {
        read(text, &[], &mut Vec::new()).map(|f| f.slots)
    }

    #[test]
    fn reads_the_envelope() {
        let s = slots(r#"{"event_id":"e","x":[1,{"a":"}"}],"properties":{"a" : 1},"user_id":null} "#).unwrap();
        assert_eq!(s[0], Some("\"e\""));
        assert_eq!(s[PROPERTIES], Some("{\"a\" : 1}"));
        assert_eq!(s[3], None);
    }

    #[test]
    fn gives_up_where_serde_would_refuse_or_read_otherwise() {
        for text in [
            "{", "{}x", r#"{"a":01}"#, r#"{"a":1.}"#, r#"{"a":-}"#, r#"{"a":1e}"#, r#"{"a":tru}"#, r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#, r#"{"a":"\x"}"#, "{\"a\":\"\u{1}\"}", r#"{"a":"\u12g4"}"#, r#"{"event_id":1,"event_id":2}"#,
            r#"{"event_id":null,"event_id":2}"#, r#"{"\u0065vent_id":1}"#, r#"{"a" 1}"#, r#"{"a":1 "b":2}"#, r#"{"a":[}"#,
        ] {
            assert!(slots(text).is_none(), "{text}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(slots(&deep).is_none());
        let ok = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(slots(&ok).is_some());
    }

    #[test]
    fn strings_of_every_length_around_the_word_size() {
        for n in 0..40 {
            for special in ["", "\\\"", "\\u00e9", "\\ud800", "é"] {
                let s = format!("{}{special}{}", "x".repeat(n), "y".repeat(n % 9));
                let text = format!("{{\"event_id\":\"{s}\"}}");
                assert_eq!(slots(&text).unwrap()[0], Some(format!("\"{s}\"").as_str()), "{text}");
                let broken = format!("{{\"event_id\":\"{s}\u{1f}\"}}");
                assert!(slots(&broken).is_none(), "{broken}");
            }
        }
    }
}
