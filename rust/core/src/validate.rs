//! One event, one pass: read the envelope, check every rule, and (when nothing is broken) produce the
//! transformed record. Every violation of the event is reported, not only the first (Property 5).

use std::borrow::Cow;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::schema::{EnvelopeField, FieldRule, FieldType, PromotedType, Schema, Target};
use crate::transform::{date_and_hour, parse_rfc3339_micros};

/// One broken rule of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// 0-based index of the event in its batch (`line - 1` in process_batch).
    pub index: usize,
    /// Field path, e.g. `event_type` or `properties.amount` (empty for the whole event).
    pub field: String,
    /// `required`, `type`, `min`, `max`, `enum`, `pattern`, `max_length`, `event_type`, `json`, `timestamp`.
    pub rule: &'static str,
    pub message: String,
    /// The offending value (None when missing).
    pub value: Option<Value>,
}

/// A typed promoted value (a string borrowed from the input when it holds no escapes).
#[derive(Debug, Clone, PartialEq)]
pub enum Promoted<'a> {
    Null,
    Double(f64),
    Long(i64),
    Int(i32),
    Str(Cow<'a, str>),
    Bool(bool),
}

/// A valid event, transformed: what becomes one row of the records table.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub user_id: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    /// UTC microseconds since the epoch.
    pub event_ts: i64,
    /// Days since the epoch (UTC).
    pub event_date: i32,
    pub event_hour: i32,
    /// Compact JSON text of `properties`, numbers exactly as received.
    pub properties: Option<Cow<'a, str>>,
    pub schema_version: i32,
    pub promoted: Vec<Promoted<'a>>,
    /// The reserved top-level `_job_id`.
    pub job_id: Option<Cow<'a, str>>,
}

/// The envelope as serde_json reads it (the reference path): borrowed raw JSON pieces, `null` as absent.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    session_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    properties: Option<&'a RawValue>,
    #[serde(borrow, default)]
    schema_version: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "_job_id")]
    job_id: Option<&'a RawValue>,
}

/// The envelope's members as raw JSON text (None when absent or null), from either reader.
struct Envelope<'a> {
    event_id: Option<&'a str>,
    event_type: Option<&'a str>,
    timestamp: Option<&'a str>,
    user_id: Option<&'a str>,
    session_id: Option<&'a str>,
    properties: Option<&'a str>,
    schema_version: Option<&'a str>,
    job_id: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    fn from_serde(env: RawEnvelope<'a>) -> Self {
        let get = |raw: Option<&'a RawValue>| raw.map(RawValue::get);
        Envelope {
            event_id: get(env.event_id),
            event_type: get(env.event_type),
            timestamp: get(env.timestamp),
            user_id: get(env.user_id),
            session_id: get(env.session_id),
            properties: get(env.properties),
            schema_version: get(env.schema_version),
            job_id: get(env.job_id),
        }
    }

    /// From the fast reader's slots (in the order of `envelope::KEYS`).
    fn from_slots(s: crate::envelope::Slots<'a>) -> Self {
        let [event_id, event_type, timestamp, user_id, session_id, properties, schema_version, job_id] = s;
        Envelope { event_id, event_type, timestamp, user_id, session_id, properties, schema_version, job_id }
    }
}

fn raw_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or(Value::Null)
}

/// The string inside raw JSON text, borrowed when it holds no escapes; None when it is not a string.
fn text_str(text: &str) -> Option<Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    if !text.contains('\\') {
        return Some(Cow::Borrowed(&text[1..text.len() - 1]));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    }
}

struct Check<'v> {
    index: usize,
    out: &'v mut Vec<Violation>,
    broken: bool,
}

impl Check<'_> {
    fn push(&mut self, field: &str, rule: &'static str, message: String, value: Option<Value>) {
        self.broken = true;
        self.out.push(Violation { index: self.index, field: field.to_string(), rule, message, value });
    }

    fn required_string<'a>(&mut self, name: &str, raw: Option<&'a str>) -> Option<Cow<'a, str>> {
        match raw {
            None => {
                self.push(name, "required", format!("{name} is required"), None);
                None
            }
            Some(r) => self.string(name, r),
        }
    }

    fn string<'a>(&mut self, name: &str, raw: &'a str) -> Option<Cow<'a, str>> {
        let s = text_str(raw);
        if s.is_none() {
            if raw.starts_with('"') {
                // A JSON string serde cannot decode: only a lone surrogate escape does that.
                self.push(name, "unicode", lone_surrogate_message(name, raw), Some(Value::String(raw.to_string())));
            } else {
                self.push(name, "type", format!("{name} must be a string, got {}", json_kind(raw)), Some(raw_value(raw)));
            }
        }
        s
    }

    fn optional_string<'a>(&mut self, name: &str, raw: Option<&'a str>) -> Option<Cow<'a, str>> {
        raw.and_then(|r| self.string(name, r))
    }
}

/// Check one event (JSON object text) against the envelope contract and `schema`; push every violation to `out`
/// (with `index`) and return the transformed event when there was none. The text is read in one pass by
/// `envelope::read`; what that reader does not take goes through serde_json, as in [`check_event_reference`].
pub fn check_event<'a>(text: &'a str, index: usize, schema: &Schema, out: &mut Vec<Violation>) -> Option<Event<'a>> {
    check_event_with(text, index, schema, out, true)
}

/// [`check_event`] reading every event with serde_json only (the reference the fast reader is tested against:
/// the two give the same event and the same violations for any text).
pub fn check_event_reference<'a>(text: &'a str, index: usize, schema: &Schema, out: &mut Vec<Violation>) -> Option<Event<'a>> {
    check_event_with(text, index, schema, out, false)
}

fn check_event_with<'a>(text: &'a str, index: usize, schema: &Schema, out: &mut Vec<Violation>, fast: bool) -> Option<Event<'a>> {
    let mut c = Check { index, out, broken: false };
    if !text.starts_with('{') {
        let value: Option<Value> = serde_json::from_str(text).ok();
        let message = match &value {
            Some(v) => format!("expected a JSON object, got {}", crate::parse::kind_of(v)),
            None => match serde_json::from_str::<Value>(text) {
                Err(e) => format!("not JSON: {} at column {}", crate::parse::strip_position(&e.to_string()), e.column()),
                Ok(_) => "not a JSON object".to_string(),
            },
        };
        c.push("", "json", message, value);
        return None;
    }
    let roots: &[String] = if schema.reads_properties { &schema.property_roots } else { &[] };
    let mut picked: Vec<Option<&'a str>> = Vec::new();
    // From the fast reader: whether `properties` has whitespace to compact, whether `picked` holds its members.
    let mut fast_properties = None;
    let read = if fast { crate::envelope::read(text, roots, &mut picked) } else { None };
    let env = match read {
        Some(f) => {
            fast_properties = Some((f.properties_spaced, f.picked_ok));
            Envelope::from_slots(f.slots)
        }
        None => match serde_json::from_str::<RawEnvelope<'a>>(text) {
            Ok(env) => Envelope::from_serde(env),
            Err(e) => {
                let message =
                    format!("not JSON: {} at column {}", crate::parse::strip_position(&e.to_string()), e.column());
                c.push("", "json", message, None);
                return None;
            }
        },
    };
    let event_id = c.required_string("event_id", env.event_id);
    let event_type = c.required_string("event_type", env.event_type);
    if let Some(t) = &event_type {
        if !schema.allows_event_type(t) {
            let allowed = schema.event_types.as_deref().unwrap_or_default().join(", ");
            c.push("event_type", "event_type", format!("event_type {t:?} is not one of: {allowed}"), Some(Value::String(t.to_string())));
        }
    }
    let mut event_ts = None;
    if let Some(ts) = c.required_string("timestamp", env.timestamp) {
        match parse_rfc3339_micros(&ts) {
            Ok(us) => event_ts = Some(us),
            Err(why) => c.push("timestamp", "timestamp", format!("timestamp {ts:?}: {why}"), Some(Value::String(ts.to_string()))),
        }
    }
    let user_id = c.optional_string("user_id", env.user_id);
    let session_id = c.optional_string("session_id", env.session_id);
    let job_id = c.optional_string("_job_id", env.job_id);
    let mut properties = None;
    if let Some(p) = env.properties {
        if p.starts_with('{') {
            properties = Some(p);
            if lone_surrogate(p).is_some() {
                c.push("properties", "unicode", lone_surrogate_message("properties", p), None);
            }
        } else {
            c.push("properties", "type", format!("properties must be an object, got {}", json_kind(p)), Some(raw_value(p)));
        }
    }
    let mut schema_version = 1i32;
    if let Some(v) = env.schema_version {
        match serde_json::from_str::<i64>(v).ok().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => schema_version = n,
            None => c.push(
                "schema_version",
                "type",
                format!("schema_version must be an integer, got {v}"),
                Some(raw_value(v)),
            ),
        }
    }

    // Schema rules and promotions; only the members of properties that some rule reads are picked, as borrowed
    // raw JSON (no Value is built for a number or string leaf unless a rule is broken).
    let mut compact_properties = None;
    let mut picked_ok = false;
    if let Some(p) = properties {
        let scanned = match fast_properties {
            Some((spaced, true)) => Some(spaced),
            _ => scan_object(p, roots, &mut picked),
        };
        match scanned {
            Some(spaced) => {
                picked_ok = schema.reads_properties;
                compact_properties = Some(if spaced { crate::parse::compact(p) } else { Cow::Borrowed(p) });
            }
            None => {
                picked_ok = schema.reads_properties && pick_members(p, roots, &mut picked);
                compact_properties = Some(crate::parse::compact(p));
            }
        }
    }
    let props = Picked { roots: &schema.property_roots, values: picked_ok.then_some(picked.as_slice()) };
    for rule in &schema.fields {
        if !rule.applies_to(event_type.as_deref()) {
            continue;
        }
        match &rule.target {
            Target::Envelope(field) => {
                let value = envelope_raw(&env, *field).map(raw_value);
                check_rule(&mut c, rule, value.as_ref());
            }
            Target::Property(segments) => {
                if let Some(raw) = props.leaf(segments) {
                    if number_rule_holds(rule, raw) {
                        continue;
                    }
                }
                let value = props.lookup(segments);
                check_rule(&mut c, rule, value.as_ref());
            }
        }
    }
    let mut promoted = Vec::with_capacity(schema.promote.len());
    for p in &schema.promote {
        if let Some(value) = props.leaf(&p.segments).and_then(|raw| promote_raw(raw, p.ty)) {
            promoted.push(value);
            continue;
        }
        let v = props.lookup(&p.segments);
        match promote(v.as_ref(), p.ty) {
            Some(value) => promoted.push(value),
            None => {
                let (rule, message) = promotion_failure(v.as_ref(), p.ty, &p.path, &p.column);
                c.push(&p.path, rule, message, v);
            }
        }
    }

    if c.broken {
        return None;
    }
    let event_ts = event_ts?;
    let (event_date, event_hour) = date_and_hour(event_ts);
    Some(Event {
        event_id: event_id?,
        event_type: event_type?,
        user_id,
        session_id,
        event_ts,
        event_date,
        event_hour,
        properties: compact_properties,
        schema_version,
        promoted,
        job_id,
    })
}

fn envelope_raw<'a>(env: &Envelope<'a>, field: EnvelopeField) -> Option<&'a str> {
    match field {
        EnvelopeField::EventId => env.event_id,
        EnvelopeField::EventType => env.event_type,
        EnvelopeField::Timestamp => env.timestamp,
        EnvelopeField::UserId => env.user_id,
        EnvelopeField::SessionId => env.session_id,
        EnvelopeField::Properties => env.properties,
        EnvelopeField::SchemaVersion => env.schema_version,
    }
}

/// The members of `properties` named by the schema's property roots, as borrowed raw JSON (None when absent).
struct Picked<'p, 'a> {
    roots: &'p [String],
    values: Option<&'p [Option<&'a str>]>,
}

impl<'a> Picked<'_, 'a> {
    /// The raw member for a one-segment path (a direct member of `properties`), JSON null included.
    fn leaf(&self, segments: &[String]) -> Option<&'a str> {
        let [first] = segments else { return None };
        let i = self.roots.iter().position(|r| r == first)?;
        *self.values?.get(i)?
    }

    /// The value at `segments` inside `properties`; JSON null reads as absent.
    fn lookup(&self, segments: &[String]) -> Option<Value> {
        let (first, rest) = segments.split_first()?;
        let i = self.roots.iter().position(|r| r == first)?;
        let root: Value = serde_json::from_str((*self.values?.get(i)?)?).unwrap_or(Value::Null);
        let mut v = &root;
        for s in rest {
            v = v.as_object()?.get(s)?;
        }
        (!v.is_null()).then(|| v.clone())
    }
}

/// Read the members `roots` of a JSON object text into `out` (borrowed, raw), skipping every other member without
/// building it; false when the text is not a readable object.
fn pick_members<'a>(text: &'a str, roots: &[String], out: &mut Vec<Option<&'a str>>) -> bool {
    out.clear();
    out.resize(roots.len(), None);
    let mut de = serde_json::Deserializer::from_str(text);
    PickSeed { roots, out }.deserialize(&mut de).is_ok()
}

struct PickSeed<'s, 'o, 'a> {
    roots: &'s [String],
    out: &'o mut Vec<Option<&'a str>>,
}

impl<'a> DeserializeSeed<'a> for PickSeed<'_, '_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'a> Visitor<'a> for PickSeed<'_, '_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(key) = map.next_key::<Key<'a>>()? {
            match self.roots.iter().position(|r| r.as_str() == key.0.as_ref()) {
                Some(i) => self.out[i] = Some(map.next_value::<&'a RawValue>()?.get()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One pass over the text of a JSON object that was already read as valid JSON: the members named by `roots` as
/// raw text into `out` (None when absent; the last of duplicate keys wins, as in [`pick_members`]), and whether
/// there is JSON whitespace outside strings (the text then needs [`crate::parse::compact`]). None when the text
/// is not shaped as expected (the caller then takes the general path).
fn scan_object<'a>(text: &'a str, roots: &[String], out: &mut Vec<Option<&'a str>>) -> Option<bool> {
    out.clear();
    out.resize(roots.len(), None);
    let b = text.as_bytes();
    let mut spaced = false;
    let mut i = skip_ws(b, 0, &mut spaced);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1, &mut spaced);
    if b.get(i) == Some(&b'}') {
        return (skip_ws(b, i + 1, &mut spaced) == b.len()).then_some(spaced);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, i)?;
        let key = &text[i..key_end];
        i = skip_ws(b, key_end, &mut spaced);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(b, i + 1, &mut spaced);
        let end = value_end(b, start, &mut spaced)?;
        if !roots.is_empty() {
            let name = text_str(key)?;
            if let Some(k) = roots.iter().position(|r| r.as_str() == name) {
                out[k] = Some(&text[start..end]);
            }
        }
        i = skip_ws(b, end, &mut spaced);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1, &mut spaced),
            Some(b'}') => return (skip_ws(b, i + 1, &mut spaced) == b.len()).then_some(spaced),
            _ => return None,
        }
    }
}

/// The index after JSON whitespace from `i`; sets `spaced` when there was any.
fn skip_ws(b: &[u8], mut i: usize, spaced: &mut bool) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        *spaced = true;
        i += 1;
    }
    i
}

/// The index after the string whose opening quote is at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[j] == b'"' {
            return Some(j + 1);
        }
        j += 2;
    }
}

/// The index after the JSON value starting at `i` (valid JSON assumed; None when the text ends early).
fn value_end(b: &[u8], i: usize, spaced: &mut bool) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => *spaced = true,
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'));
            Some(i + n.unwrap_or(b.len() - i))
        }
    }
}

/// Whether raw JSON text is a number (its first byte; the text was already read as valid JSON).
fn is_number_text(text: &str) -> bool {
    matches!(text.as_bytes().first(), Some(b'-' | b'0'..=b'9'))
}

/// A number as f64 exactly as `Value::as_f64` reads it (with arbitrary_precision: `str::parse`, finite only).
fn number_f64(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Fast path for a rule on a number member: true when it surely holds (type number or unset, within min/max, no
/// string or enum checks); false means "check it the general way".
fn number_rule_holds(rule: &FieldRule, text: &str) -> bool {
    if !is_number_text(text)
        || !matches!(rule.ty, None | Some(FieldType::Number))
        || rule.allowed.is_some()
        || rule.pattern.is_some()
        || rule.max_length.is_some()
    {
        return false;
    }
    let Some(x) = number_f64(text) else { return false };
    rule.min.is_none_or(|min| x >= min) && rule.max.is_none_or(|max| x <= max)
}

/// Promote a raw member without building a Value; None means "use the general path" (which reports errors).
fn promote_raw(text: &str, ty: PromotedType) -> Option<Promoted<'_>> {
    if text == "null" {
        return Some(Promoted::Null);
    }
    match ty {
        PromotedType::Double if is_number_text(text) => number_f64(text).map(Promoted::Double),
        PromotedType::String => text_str(text).map(Promoted::Str),
        _ => None,
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn promote(v: Option<&Value>, ty: PromotedType) -> Option<Promoted<'static>> {
    let Some(v) = v else { return Some(Promoted::Null) };
    match ty {
        PromotedType::Double => v.as_f64().filter(|_| v.is_number()).map(Promoted::Double),
        PromotedType::Long => v.as_i64().map(Promoted::Long),
        PromotedType::Int => v.as_i64().and_then(|n| i32::try_from(n).ok()).map(Promoted::Int),
        PromotedType::String => v.as_str().map(|s| Promoted::Str(Cow::Owned(s.to_string()))),
        PromotedType::Boolean => v.as_bool().map(Promoted::Bool),
    }
}

/// Why `v` cannot fill a promoted column of type `ty`: "range" for a number the type cannot hold (an integer past
/// the column's bits, a number past a double's finite range), "type" for anything else.
fn promotion_failure(v: Option<&Value>, ty: PromotedType, path: &str, column: &str) -> (&'static str, String) {
    let name = ty.name();
    if let Some(n) = v.filter(|v| v.is_number()) {
        let text = n.to_string();
        let integer = !text.contains(['.', 'e', 'E']);
        let range = match ty {
            PromotedType::Long if integer => Some("-9223372036854775808..9223372036854775807"),
            PromotedType::Int if integer => Some("-2147483648..2147483647"),
            PromotedType::Double => Some("finite doubles, |x| <= 1.7976931348623157e308"),
            _ => None,
        };
        if let Some(range) = range {
            return ("range", format!("{path} = {text} is out of range for {name} column {column} ({range})"));
        }
    }
    ("type", format!("{path} cannot be promoted to {name} column {column}"))
}

/// The byte offset of the first `\uXXXX` escape of JSON text that is a lone UTF-16 surrogate, if any: decoded,
/// it is no Unicode character, so no UTF-8 reader of the table (Parquet strings, DuckDB, Snowflake) can hold it.
/// The text is valid JSON (a backslash only starts an escape); one memchr pass, nothing when there is no `\`.
pub fn lone_surrogate(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let hex4 = |at: usize| -> Option<u32> { u32::from_str_radix(text.get(at..at + 4)?, 16).ok() };
    let mut i = 0;
    while let Some(k) = b.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let j = i + k;
        if b.get(j + 1) != Some(&b'u') {
            i = j + 2;
            continue;
        }
        let unit = hex4(j + 2)?;
        if (0xD800..0xDC00).contains(&unit) {
            let low = (b.get(j + 6) == Some(&b'\\') && b.get(j + 7) == Some(&b'u')).then(|| hex4(j + 8)).flatten();
            if low.is_some_and(|u| (0xDC00..0xE000).contains(&u)) {
                i = j + 12;
                continue;
            }
            return Some(j);
        }
        if (0xDC00..0xE000).contains(&unit) {
            return Some(j);
        }
        i = j + 6;
    }
    None
}

fn lone_surrogate_message(name: &str, text: &str) -> String {
    match lone_surrogate(text) {
        Some(at) => format!(
            "{name} holds {:?}, a lone UTF-16 surrogate escape (byte {at}): it decodes to no Unicode character, \
             so no reader of the table can hold it",
            &text[at..at + 6]
        ),
        None => format!("{name} is a string that cannot be decoded"),
    }
}

fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn check_rule(c: &mut Check<'_>, rule: &FieldRule, value: Option<&Value>) {
    let path = rule.path.as_str();
    let Some(v) = value.filter(|v| !v.is_null()) else {
        if rule.required {
            c.push(path, "required", format!("{path} is required"), None);
        }
        return;
    };
    if let Some(ty) = rule.ty {
        if !ty.matches(v) {
            let got = crate::parse::kind_of(v);
            c.push(path, "type", format!("{path} must be of type {}, got {got}", ty.name()), Some(v.clone()));
            return;
        }
    }
    if v.is_number() && v.as_f64().is_none() {
        // Past a double's range (serde reads it as infinite): beyond any min or max.
        let negative = v.to_string().starts_with('-');
        match (negative, rule.min, rule.max) {
            (true, Some(min), _) => c.push(path, "min", format!("{path} must be >= {min}, got {v}"), Some(v.clone())),
            (false, _, Some(max)) => c.push(path, "max", format!("{path} must be <= {max}, got {v}"), Some(v.clone())),
            _ => {}
        }
    }
    if let Some(x) = v.as_f64().filter(|_| v.is_number()) {
        if let Some(min) = rule.min {
            if x < min {
                c.push(path, "min", format!("{path} must be >= {min}, got {x}"), Some(v.clone()));
            }
        }
        if let Some(max) = rule.max {
            if x > max {
                c.push(path, "max", format!("{path} must be <= {max}, got {x}"), Some(v.clone()));
            }
        }
    }
    if let Some(allowed) = &rule.allowed {
        if !allowed.iter().any(|a| same_json(a, v)) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            c.push(path, "enum", format!("{path} must be one of {}, got {v}", list.join(", ")), Some(v.clone()));
        }
    }
    if let Some(s) = v.as_str() {
        if let Some(re) = &rule.pattern {
            if !re.is_match(s) {
                c.push(path, "pattern", format!("{path} {s:?} does not match pattern {:?}", re.as_str()), Some(v.clone()));
            }
        }
        if let Some(max_len) = rule.max_length {
            let n = s.chars().count();
            if n > max_len {
                c.push(path, "max_length", format!("{path} is {n} characters long, more than {max_len}"), Some(v.clone()));
            }
        }
    }
}

/// Every violation of every event (events as JSON object texts).
pub fn validate_all<'a>(events: impl IntoIterator<Item = &'a str>, schema: &Schema) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, text) in events.into_iter().enumerate() {
        check_event(text, i, schema, &mut out);
    }
    out
}

/// Parse the envelope of one event and nothing else (the parse share of the benchmark's time split).
pub fn parse_envelope_only(text: &str) -> bool {
    text.starts_with('{')
        && (crate::envelope::read(text, &[], &mut Vec::new()).is_some()
            || serde_json::from_str::<RawEnvelope<'_>>(text).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, schema: &Schema) -> (Option<Event<'static>>, Vec<Violation>) {
        let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
        let mut out = Vec::new();
        let e = check_event(leaked, 0, schema, &mut out);
        (e, out)
    }

    fn rules(v: &[Violation]) -> Vec<(&str, &str)> {
        v.iter().map(|x| (x.field.as_str(), x.rule)).collect()
    }

    #[test]
    fn a_valid_event_is_transformed() {
        let (e, v) = check(
            r#"{"event_id":"e1","event_type":"click","timestamp":"2026-01-01T00:30:00+01:00","properties":{"n": 12345678901234567890123}}"#,
            &Schema::envelope(),
        );
        assert!(v.is_empty(), "{v:?}");
        let e = e.unwrap();
        assert_eq!(e.event_hour, 23);
        assert_eq!(e.properties.as_deref(), Some(r#"{"n":12345678901234567890123}"#));
        assert_eq!(e.schema_version, 1);
    }

    #[test]
    fn every_violation_is_reported() {
        let (e, v) = check(r#"{"event_id":7,"timestamp":"2026-02-30T00:00:00Z","user_id":[],"properties":"x"}"#, &Schema::envelope());
        assert!(e.is_none());
        assert_eq!(
            rules(&v),
            vec![("event_id", "type"), ("event_type", "required"), ("timestamp", "timestamp"), ("user_id", "type"), ("properties", "type")]
        );
    }

    #[test]
    fn schema_rules_and_promotions() {
        let schema = Schema::from_json(
            r#"{"event_types":["purchase","page_view"],
                "fields":[{"path":"properties.amount","type":"number","required":true,"min":0,"max":1e6,"event_types":["purchase"]},
                          {"path":"properties.currency","type":"string","enum":["EUR","USD"]},
                          {"path":"user_id","pattern":"^u_[0-9]+$","max_length":5}],
                "promote":[{"path":"properties.amount","column":"amount","type":"double"},
                           {"path":"properties.currency","column":"currency","type":"string"}]}"#,
        )
        .unwrap();
        let base = r#""event_id":"e","timestamp":"2026-01-01T00:00:00Z""#;
        let (e, v) = check(&format!(r#"{{{base},"event_type":"purchase","properties":{{"amount":5,"currency":"EUR"}}}}"#), &schema);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(e.unwrap().promoted, vec![Promoted::Double(5.0), Promoted::Str("EUR".into())]);
        let (_, v) = check(
            &format!(r#"{{{base},"event_type":"purchase","user_id":"x_123456","properties":{{"amount":-1,"currency":"GBP"}}}}"#),
            &schema,
        );
        assert_eq!(
            rules(&v),
            vec![("properties.amount", "min"), ("properties.currency", "enum"), ("user_id", "pattern"), ("user_id", "max_length")]
        );
        let (e, v) = check(&format!(r#"{{{base},"event_type":"page_view"}}"#), &schema);
        assert!(v.is_empty());
        assert_eq!(e.unwrap().promoted, vec![Promoted::Null, Promoted::Null]);
        let (_, v) = check(&format!(r#"{{{base},"event_type":"logout"}}"#), &schema);
        assert_eq!(rules(&v), vec![("event_type", "event_type")]);
    }

    #[test]
    fn not_objects_and_not_json() {
        assert_eq!(rules(&check("[1,2]", &Schema::envelope()).1), vec![("", "json")]);
        assert_eq!(rules(&check("{\"a\":", &Schema::envelope()).1), vec![("", "json")]);
        assert_eq!(rules(&check("hello", &Schema::envelope()).1), vec![("", "json")]);
    }

    #[test]
    fn one_pass_member_scan_agrees_with_serde() {
        let roots: Vec<String> = ["amount", "cur\"rency", "nested", "é"].iter().map(|r| r.to_string()).collect();
        let texts = [
            r#"{}"#,
            r#"{ }"#,
            r#"{"amount":1.5e3,"x":[1,{"amount":2}],"nested":{"a":[1,2,"}]"]},"amount":-0}"#,
            r#"{"cur\"rency":"E\"U}R","\u00e9":true,"s":"a b"}"#,
            r#"{ "amount" : 12 , "nested" : { "k" : [ 1 , 2 ] } , "é" : null }"#,
            "{\"t\":\"tab\\tin\",\n\"amount\":\r\n7}",
        ];
        for text in texts {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            let spaced = scan_object(text, &roots, &mut fast).unwrap();
            assert!(pick_members(text, &roots, &mut slow), "{text}");
            assert_eq!(fast, slow, "{text}");
            let compacted = if spaced { crate::parse::compact(text) } else { Cow::Borrowed(text) };
            assert_eq!(compacted, crate::parse::compact(text), "{text}");
        }
        assert_eq!(scan_object(r#"{"a":1} x"#, &roots, &mut Vec::new()), None);
    }

    #[test]
    fn lone_surrogates_are_refused_paired_ones_kept() {
        assert_eq!(lone_surrogate(r#"{"a":"\ud83d\ude00","b":"\\ud800"}"#), None);
        assert_eq!(lone_surrogate(r#"{"a":"\ud800"}"#), Some(6));
        assert_eq!(lone_surrogate(r#"{"a":"x\udc00y"}"#), Some(7));
        assert_eq!(lone_surrogate(r#"{"a":"\ud800\u0041"}"#), Some(6));
        let base = r#""event_type":"t","timestamp":"2026-01-01T00:00:00Z""#;
        let (_, v) = check(&format!(r#"{{"event_id":"\ud800",{base}}}"#), &Schema::envelope());
        assert_eq!(rules(&v), vec![("event_id", "unicode")]);
        assert!(v[0].message.contains("lone UTF-16 surrogate"), "{}", v[0].message);
        let (_, v) = check(&format!(r#"{{"event_id":"e",{base},"properties":{{"k":["\udfff"]}}}}"#), &Schema::envelope());
        assert_eq!(rules(&v), vec![("properties", "unicode")]);
    }

    #[test]
    fn numbers_the_promoted_column_cannot_hold_are_range_rejects() {
        let schema = Schema::from_json(
            r#"{"fields":[{"path":"properties.x","type":"number","min":0,"max":10}],
                "promote":[{"path":"properties.l","column":"l","type":"long"},
                           {"path":"properties.i","column":"i","type":"int"},
                           {"path":"properties.d","column":"d","type":"double"}]}"#,
        )
        .unwrap();
        let base = r#""event_id":"e","event_type":"t","timestamp":"2026-01-01T00:00:00Z""#;
        let (e, v) = check(&format!(r#"{{{base},"properties":{{"l":9223372036854775807,"i":-2147483648,"d":1e308}}}}"#), &schema);
        assert!(v.is_empty(), "{v:?}");
        assert_eq!(e.unwrap().promoted, vec![Promoted::Long(i64::MAX), Promoted::Int(i32::MIN), Promoted::Double(1e308)]);
        let (_, v) = check(
            &format!(r#"{{{base},"properties":{{"x":1e400,"l":9223372036854775808,"i":2147483648,"d":-1e309}}}}"#),
            &schema,
        );
        assert_eq!(rules(&v), vec![("properties.x", "max"), ("properties.l", "range"), ("properties.i", "range"), ("properties.d", "range")]);
        assert!(v[1].message.contains("out of range for long column l"), "{}", v[1].message);
        let (_, v) = check(&format!(r#"{{{base},"properties":{{"l":1.5}}}}"#), &schema);
        assert_eq!(rules(&v), vec![("properties.l", "type")]);
    }

    #[test]
    fn timestamps_outside_the_tables_range_are_refused() {
        let (_, v) = check(r#"{"event_id":"e","event_type":"t","timestamp":"0001-01-01T00:00:00+01:00"}"#, &Schema::envelope());
        assert_eq!(rules(&v), vec![("timestamp", "timestamp")]);
        assert!(v[0].message.contains("0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"), "{}", v[0].message);
    }

    #[test]
    fn escapes_and_surrogates() {
        let (e, v) = check(
            r#"{"event_id":"\u00e9\ud83d\ude00","event_type":"cl\"ick","timestamp":"2026-01-01T00:00:00Z","user_id":"日本"}"#,
            &Schema::envelope(),
        );
        assert!(v.is_empty());
        let e = e.unwrap();
        assert_eq!(e.event_id, "é😀");
        assert_eq!(e.event_type, "cl\"ick");
        assert_eq!(e.user_id.as_deref(), Some("日本"));
    }
}
