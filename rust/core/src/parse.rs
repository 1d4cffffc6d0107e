//! Input formats: NDJSON, a JSON array, CSV. Two layers:
//! - row-level parsing into `serde_json::Value`s (`parse_json`, `parse_csv`, `parse`), strict: the first bad
//!   line is a [`Error::Parse`] naming line and column;
//! - record splitting for the fast path (`split_records`): every record keeps its 1-based line number and its raw
//!   text, and a record that does not parse becomes a reject later, never an error for the whole batch.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The input formats the core reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// NDJSON, or a JSON array when the first non-blank byte is `[`.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A header row, then one event per row; a `properties` column holds JSON text.
    Csv,
}

impl Format {
    /// `"json"`, `"ndjson"` or `"csv"`; anything else is [`Error::UnsupportedFormat`] (Property 48).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "json" => Ok(Format::Json),
            "ndjson" => Ok(Format::Ndjson),
            "csv" => Ok(Format::Csv),
            other => Err(Error::UnsupportedFormat(other.to_string())),
        }
    }
}

/// One record of a batch before validation: where it came from and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord<'a> {
    /// 1-based line (NDJSON, CSV data line) or element index (JSON array).
    pub line: usize,
    /// The raw text as received (a line without its line ending, a JSON array element, a CSV row).
    pub raw: &'a str,
    /// The event as JSON object text: `raw` itself for JSON, a JSON rendering of the row for CSV; `Err` holds
    /// the reason a record could not even be read (invalid UTF-8, bad CSV row).
    pub json: std::result::Result<Cow<'a, str>, String>,
}

/// Strip the byte-order mark and surrounding ASCII whitespace.
fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\t' || c == '\r' || c == '\n')
}

pub(crate) fn first_non_ws(data: &[u8]) -> Option<u8> {
    data.iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

pub(crate) fn strip_bom(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(data)
}

/// Line and column (1-based, in characters) of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn utf8(data: &[u8]) -> Result<&str> {
    std::str::from_utf8(data).map_err(|e| {
        let (line, column) = line_col(std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or(""), e.valid_up_to());
        Error::parse(line, column, "invalid UTF-8")
    })
}

/// Parse NDJSON or a JSON array into objects. The first bad line or element is a [`Error::Parse`].
pub fn parse_json(data: &[u8]) -> Result<Vec<Map<String, Value>>> {
    if first_non_ws(strip_bom(data)) == Some(b'[') {
        parse_array(data)
    } else {
        parse_ndjson(data)
    }
}

fn parse_array(data: &[u8]) -> Result<Vec<Map<String, Value>>> {
    let text = utf8(strip_bom(data))?;
    let items: Vec<Value> = serde_json::from_str(text)
        .map_err(|e| Error::parse(e.line(), e.column(), strip_position(&e.to_string())))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::Object(map) => Ok(map),
            other => Err(Error::parse(0, 0, format!("element {}: expected a JSON object, got {}", i + 1, kind_of(&other)))),
        })
        .collect()
}

/// Parse NDJSON only: one object per non-blank line.
pub fn parse_ndjson(data: &[u8]) -> Result<Vec<Map<String, Value>>> {
    let text = utf8(strip_bom(data))?;
    let mut out = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = trim_ws(line);
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => out.push(map),
            Ok(other) => {
                return Err(Error::parse(index + 1, 1, format!("expected a JSON object, got {}", kind_of(&other))))
            }
            Err(e) => return Err(Error::parse(index + 1, e.column(), strip_position(&e.to_string()))),
        }
    }
    Ok(out)
}

/// serde_json appends " at line L column C" to its messages; we carry those in fields instead.
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// The JSON kind of a value, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parse CSV with a header row. Empty cells are left out; `properties` is parsed as JSON, `schema_version` as an
/// integer when it is one; every other cell stays a string.
pub fn parse_csv(data: &[u8]) -> Result<Vec<Map<String, Value>>> {
    let data = strip_bom(data);
    let text = utf8(data)?;
    let (mut reader, headers) = csv_reader(text, false)?;
    let mut out = Vec::new();
    let mut lines = LineCounter::new(text);
    for row in reader.records() {
        let row = row.map_err(csv_error)?;
        let line = row.position().map_or(0, |p| {
            let at = p.byte() as usize;
            let skip = text.as_bytes().get(at..).map_or(0, |r| r.iter().take_while(|&&b| b == b'\r' || b == b'\n').count());
            lines.line_at(at + skip)
        });
        out.push(csv_row_to_object(&headers, row.iter()).map_err(|(column, message)| Error::parse(line, column, message))?);
    }
    Ok(out)
}

/// 1-based line numbers of increasing byte offsets, counted once.
struct LineCounter<'t> {
    text: &'t [u8],
    offset: usize,
    line: usize,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        LineCounter { text: text.as_bytes(), offset: 0, line: 1 }
    }

    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset > self.offset {
            self.line += self.text[self.offset..offset].iter().filter(|&&b| b == b'\n').count();
            self.offset = offset;
        }
        self.line
    }
}

fn csv_error(e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("expected {expected_len} fields, found {len}")
        }
        _ => e.to_string(),
    };
    Error::parse(line, 1, message)
}

/// One CSV row as a JSON object; the error names the 1-based column.
fn csv_row_to_object<'r>(
    headers: &[String],
    cells: impl Iterator<Item = &'r str>,
) -> std::result::Result<Map<String, Value>, (usize, String)> {
    let mut map = Map::new();
    for (i, (name, cell)) in headers.iter().zip(cells).enumerate() {
        if cell.is_empty() {
            continue;
        }
        let value = match name.as_str() {
            "properties" => serde_json::from_str::<Value>(cell)
                .map_err(|e| (i + 1, format!("column properties is not JSON: {}", strip_position(&e.to_string()))))?,
            "schema_version" => match cell.trim().parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(cell.to_string()),
            },
            _ => Value::String(cell.to_string()),
        };
        map.insert(name.clone(), value);
    }
    Ok(map)
}

/// Parse `data` in `format`.
pub fn parse(data: &[u8], format: Format) -> Result<Vec<Map<String, Value>>> {
    match format {
        Format::Json => parse_json(data),
        Format::Ndjson => parse_ndjson(data),
        Format::Csv => parse_csv(data),
    }
}

/// Split a batch into records for the fast path. Only a broken JSON array or a bad CSV header fails the batch.
pub fn split_records(data: &[u8], format: Format) -> Result<Vec<SourceRecord<'_>>> {
    let data = strip_bom(data);
    match format {
        Format::Csv => split_csv(data),
        Format::Json if first_non_ws(data) == Some(b'[') => split_array(data),
        Format::Json | Format::Ndjson => Ok(split_lines(data)),
    }
}

fn split_lines(data: &[u8]) -> Vec<SourceRecord<'_>> {
    iter_lines(data).collect()
}

/// The non-blank lines of NDJSON as records, lazily (the fast path never holds them all).
pub fn iter_lines(data: &[u8]) -> impl Iterator<Item = SourceRecord<'_>> {
    lines_from(strip_bom(data), 0)
}

/// The non-blank lines of `data` (no byte-order mark stripped: a piece of a larger input), numbered from
/// `first` (the 0-based index of its first line in the whole input).
pub(crate) fn lines_from(data: &[u8], first: usize) -> impl Iterator<Item = SourceRecord<'_>> {
    LineSplit { data, pos: 0 }.enumerate().filter_map(move |(index, line)| {
        let index = index + first;
        let line = trim_ascii_ws(line);
        if line.is_empty() {
            return None;
        }
        Some(match std::str::from_utf8(line) {
            Ok(s) => SourceRecord { line: index + 1, raw: s, json: Ok(Cow::Borrowed(s)) },
            Err(e) => SourceRecord {
                line: index + 1,
                raw: lossy_static(line),
                json: Err(format!("invalid UTF-8 at column {}", e.valid_up_to() + 1)),
            },
        })
    })
}

/// Lines of a byte slice split on `\n` with memchr (the line terminator itself excluded).
struct LineSplit<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineSplit<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos > self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.pos += i + 1;
                Some(&rest[..i])
            }
            None => {
                self.pos = self.data.len() + 1;
                Some(rest)
            }
        }
    }
}

/// Records of a batch, lazily for NDJSON (and JSON that is not an array), else split up front.
pub fn records<'a>(data: &'a [u8], format: Format) -> Result<Box<dyn Iterator<Item = SourceRecord<'a>> + 'a>> {
    let body = strip_bom(data);
    match format {
        Format::Ndjson => Ok(Box::new(iter_lines(body))),
        Format::Json if first_non_ws(body) != Some(b'[') => Ok(Box::new(iter_lines(body))),
        _ => Ok(Box::new(split_records(data, format)?.into_iter())),
    }
}

/// The valid UTF-8 prefix of a line that is not valid UTF-8 (so the reject still shows something).
fn lossy_static(line: &[u8]) -> &str {
    match std::str::from_utf8(line) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or(""),
    }
}

fn trim_ascii_ws(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n')).map_or(start, |i| i + 1);
    &s[start..end]
}

fn split_array(data: &[u8]) -> Result<Vec<SourceRecord<'_>>> {
    let text = utf8(data)?;
    let items: Vec<&RawValue> = serde_json::from_str(text)
        .map_err(|e| Error::parse(e.line(), e.column(), strip_position(&e.to_string())))?;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, raw)| SourceRecord { line: i + 1, raw: raw.get(), json: Ok(Cow::Borrowed(raw.get())) })
        .collect())
}

/// The elements of a JSON array, found by its structure alone: strings (with their escapes) and brackets are
/// followed, and the commas between elements and the brackets around them are checked, but the elements
/// themselves are not parsed. `None` when the structure is broken or the text is not UTF-8 (the caller then runs
/// [`split_records`], whose error says where). A caller must parse every element itself: an element that is not
/// JSON means the array is not JSON either (see `ingest::ingest_batch`). This is the JSON-array half of the
/// ingest path's cost otherwise: serde reads the whole array once for [`split_array`], and each element again.
pub fn split_array_structure(data: &[u8]) -> Option<Vec<SourceRecord<'_>>> {
    split_array_structure_upto(data, usize::MAX).map(|(records, _)| records)
}

/// [`split_array_structure`] keeping only the first `keep` elements; the rest are checked and counted, not
/// stored (a body of tiny elements over the event limit costs no memory per element). Returns the kept elements
/// and the count of all of them.
pub fn split_array_structure_upto(data: &[u8], keep: usize) -> Option<(Vec<SourceRecord<'_>>, usize)> {
    let data = strip_bom(data);
    let text = std::str::from_utf8(data).ok()?;
    let b = text.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut out = Vec::with_capacity((b.len() / 256).min(keep));
    let mut count = 0usize;
    i = skip_ws(i + 1);
    if b.get(i) == Some(&b']') {
        return (skip_ws(i + 1) == b.len()).then_some((out, 0));
    }
    loop {
        let start = i;
        let mut depth = 0usize;
        // Up to the end of the element: a string or a closing bracket that leaves depth 0, else the next
        // top-level ',' or ']' (numbers, literals).
        let end = loop {
            match *b.get(i)? {
                b'"' => {
                    i = string_end(b, i + 1)?;
                    if depth == 0 {
                        break i;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => break i,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break i + 1;
                    }
                }
                b',' if depth == 0 => break i,
                _ => {}
            }
            i += 1;
        };
        i = skip_ws(end);
        let raw = trim_ws(&text[start..end]);
        if raw.is_empty() {
            return None;
        }
        count += 1;
        if count <= keep {
            out.push(SourceRecord { line: count, raw, json: Ok(Cow::Borrowed(raw)) });
        }
        match b.get(i)? {
            b',' => i = skip_ws(i + 1),
            b']' => return (skip_ws(i + 1) == b.len()).then_some((out, count)),
            _ => return None,
        }
    }
}

/// Index just past the closing quote of the string whose content starts at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[at] == b'\\' {
            i = at + 2;
        } else {
            return Some(at + 1);
        }
    }
}

/// A CSV reader over `text` with its header row read and trimmed. `flexible` lets rows differ in width (the
/// batch path turns such a row into a reject instead of failing the whole input).
fn csv_reader(text: &str, flexible: bool) -> Result<(csv::Reader<&[u8]>, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(flexible).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(csv_error)?.iter().map(|h| h.trim().to_string()).collect();
    Ok((reader, headers))
}

fn split_csv(data: &[u8]) -> Result<Vec<SourceRecord<'_>>> {
    split_csv_upto(data, usize::MAX).map(|(rows, _)| rows)
}

/// The rows of a CSV body, the first `keep` of them as records (each converted to JSON), the rest only counted;
/// with the count of all rows.
pub fn split_csv_upto(data: &[u8], keep: usize) -> Result<(Vec<SourceRecord<'_>>, usize)> {
    let data = strip_bom(data);
    let text = utf8(data)?;
    let (mut reader, headers) = csv_reader(text, true)?;
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(text);
    let mut record = csv::StringRecord::new();
    let mut count = 0usize;
    loop {
        if count >= keep {
            // Past the rows kept: count the rest (a row the reader cannot read still counts as one).
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) | Err(_) => count += 1,
            }
            continue;
        }
        // The reader's position stops before a record's line terminator: the next record starts past it.
        let mut start = reader.position().byte() as usize;
        start += text.as_bytes().get(start..).map_or(0, |rest| rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count());
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                count += 1;
                let end = reader.position().byte() as usize;
                let line = lines.line_at(start);
                let raw = trim_ws(text.get(start..end).unwrap_or(""));
                let json = if record.len() != headers.len() {
                    Err(format!("expected {} fields, found {}", headers.len(), record.len()))
                } else {
                    csv_row_to_object(&headers, record.iter())
                        .map(|m| Cow::Owned(Value::Object(m).to_string()))
                        .map_err(|(column, message)| format!("column {column}: {message}"))
                };
                rows.push(SourceRecord { line, raw, json });
            }
            Err(e) => {
                count += 1;
                let end = reader.position().byte() as usize;
                let line = lines.line_at(start);
                let raw = trim_ws(text.get(start..end).unwrap_or(""));
                rows.push(SourceRecord { line, raw, json: Err(e.to_string()) });
            }
        }
    }
    Ok((rows, count))
}

/// Compact JSON text of a JSON object text (whitespace outside strings removed), dropping a top-level
/// `"_job_id"` member and putting `job_id` first when given. The input must be valid JSON object text.
pub fn compact_object(text: &str, job_id: Option<&str>) -> String {
    let member = job_id.map(job_id_member);
    let mut out = String::with_capacity(text.len() + 32);
    push_compact_object(&mut out, text, member.as_deref());
    out
}

/// `"_job_id":"<id>"` (the id JSON-escaped): the first member [`push_compact_object`] writes.
pub fn job_id_member(job_id: &str) -> String {
    format!("\"_job_id\":{}", Value::String(job_id.to_string()))
}

/// Append the compact text of the JSON object `text` to `out` (see [`compact_object`]), with `job_member`
/// (from [`job_id_member`]) first in place of any `"_job_id"` member of its own.
pub fn push_compact_object(out: &mut String, text: &str, job_member: Option<&str>) {
    let bytes = text.as_bytes();
    out.push('{');
    let mut first = true;
    if let Some(member) = job_member {
        out.push_str(member);
        first = false;
    }
    // Walk the top-level members.
    let mut i = bytes.iter().position(|&b| b == b'{').map_or(bytes.len(), |p| p + 1);
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n' | b',') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'}' {
            break;
        }
        let start = i;
        let end = member_end(bytes, i);
        let member = &text[start..end];
        if !(job_member.is_some() && member_key_is(member, "_job_id")) {
            if !first {
                out.push(',');
            }
            push_compact(out, member);
            first = false;
        }
        i = end;
    }
    out.push('}');
}

/// Whether the object member `member` (`"key":value`) has the key `name`, its escapes decoded
/// (`"\u005fjob_id"` is `_job_id` too).
fn member_key_is(member: &str, name: &str) -> bool {
    let Some(rest) = member.strip_prefix('"') else { return false };
    if rest.strip_prefix(name).is_some_and(|after| after.starts_with('"')) {
        return true;
    }
    // Another spelling of the same key needs an escape in it.
    let Some(end) = string_end(member.as_bytes(), 1) else { return false };
    let key = &member[..end];
    key.contains('\\') && serde_json::from_str::<String>(key).is_ok_and(|k| k == name)
}

/// End (exclusive) of the object member starting at `i`: the next `,` or `}` at depth 0 outside strings.
fn member_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return i,
                b'}' | b']' => depth -= 1,
                b',' if depth == 0 => return i,
                _ => {}
            }
        }
        i += 1;
    }
    bytes.len()
}

/// Append `text` with JSON whitespace outside strings removed.
pub fn push_compact(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        out.push_str(text);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            out.push_str(&text[run_start..i]);
            run_start = i + 1;
        }
    }
    out.push_str(&text[run_start..]);
}

/// `text` without JSON whitespace outside strings; borrowed when already compact.
pub fn compact(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    push_compact(&mut out, text);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_with_crlf_blank_lines_and_whitespace() {
        let rows = parse_json(b"  {\"a\":1}\r\n\r\n\t{\"a\":2}  \r\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["a"], Value::from(2));
    }

    #[test]
    fn array_structure_splits_like_serde() {
        for text in [
            " [ {\"a\":1} , {\"b\":\"x,]}\\\"\"} ,[1,2],3,\"s\", {} ] ",
            "[]",
            "\u{feff}[{\"a\":[{}]}]",
            "[{\"k\":\"\\\\\"}]",
        ] {
            let fast = split_array_structure(text.as_bytes()).unwrap_or_else(|| panic!("{text}"));
            let strict = split_records(text.as_bytes(), Format::Json).unwrap();
            let raw = |r: &[SourceRecord<'_>]| r.iter().map(|r| (r.line, r.raw.to_string())).collect::<Vec<_>>();
            assert_eq!(raw(&fast), raw(&strict), "{text}");
        }
        for broken in ["[", "[{}", "[{} {}]", "[{},]", "[,]", "{}", "[{}] x", "[\"a]", "[{]}", "[}]"] {
            assert!(split_array_structure(broken.as_bytes()).is_none(), "{broken}");
        }
    }

    #[test]
    fn json_array_is_accepted() {
        let rows = parse_json(b" [{\"a\":1},{\"b\":\"x\"}] ").unwrap();
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn bad_line_names_line_and_column() {
        let err = parse_json(b"{\"a\":1}\n{\"a\":}\n").unwrap_err();
        match err {
            Error::Parse { line, column, .. } => {
                assert_eq!(line, 2);
                assert_eq!(column, 6);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_object_line_is_an_error() {
        assert!(matches!(parse_json(b"[1]\n"), Err(Error::Parse { .. })));
        assert!(matches!(parse_json(b"42\n"), Err(Error::Parse { line: 1, .. })));
    }

    #[test]
    fn unsupported_format() {
        assert_eq!(Format::from_name("xml"), Err(Error::UnsupportedFormat("xml".into())));
    }

    #[test]
    fn csv_rows_become_objects() {
        let rows = parse_csv(b"event_id,properties,schema_version\r\ne1,\"{\"\"a\"\":1}\",2\r\ne2,,\r\n").unwrap();
        assert_eq!(rows[0]["properties"]["a"], Value::from(1));
        assert_eq!(rows[0]["schema_version"], Value::from(2));
        assert!(!rows[1].contains_key("properties"));
    }

    #[test]
    fn split_keeps_line_numbers() {
        let recs = split_records(b"{\"a\":1}\n\n  \nnot json\r\n", Format::Ndjson).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].line, 4);
        assert_eq!(recs[1].raw, "not json");
    }

    #[test]
    fn split_csv_keeps_raw_rows() {
        let recs = split_records(b"event_id,user_id\ne1,u1\ne2\n", Format::Csv).unwrap();
        assert_eq!(recs[0].raw, "e1,u1");
        assert_eq!(recs[0].line, 2);
        assert!(recs[1].json.is_err());
    }

    #[test]
    fn compact_replaces_job_id() {
        let out = compact_object("{ \"a\" : [1, 2], \"_job_id\": \"old\", \"s\": \"x y\" }", Some("new"));
        assert_eq!(out, "{\"_job_id\":\"new\",\"a\":[1,2],\"s\":\"x y\"}");
        assert_eq!(compact_object("{}", None), "{}");
        assert_eq!(compact_object("{\"_job_id\":\"k\"}", None), "{\"_job_id\":\"k\"}");
    }
}
