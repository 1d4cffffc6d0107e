//! Pipeline schemas: compiled once from their source form (JSON), then applied to every event.
//!
//! Source form: `{"event_types": [...], "fields": [{"path", "type", "required", "min", "max", "enum", "pattern",
//! "max_length", "event_types"}], "promote": [{"path", "column", "type"}]}`. Every key is checked; a bad rule is
//! an [`Error::Schema`] naming it (e.g. `fields[2].pattern`).

use std::collections::HashSet;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A set of event type names, looked up once per event (and once per rule that names types). Hashed with aHash
/// under keys drawn at random per set (`ahash::RandomState`), not std's SipHash: several times cheaper on short
/// names, and still HashDoS-resistant, though only the names looked up (event types) come from senders here.
pub type NameSet = HashSet<String, ahash::RandomState>;

/// The envelope fields of the event contract (docs/architecture.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeField {
    EventId,
    EventType,
    Timestamp,
    UserId,
    SessionId,
    Properties,
    SchemaVersion,
}

impl EnvelopeField {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "event_id" => Self::EventId,
            "event_type" => Self::EventType,
            "timestamp" => Self::Timestamp,
            "user_id" => Self::UserId,
            "session_id" => Self::SessionId,
            "properties" => Self::Properties,
            "schema_version" => Self::SchemaVersion,
            _ => return None,
        })
    }
}

/// JSON types a field rule can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Number,
    Integer,
    Boolean,
    Object,
    Array,
}

impl FieldType {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "string" => Self::String,
            "number" => Self::Number,
            "integer" => Self::Integer,
            "boolean" => Self::Boolean,
            "object" => Self::Object,
            "array" => Self::Array,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Boolean => "boolean",
            Self::Object => "object",
            Self::Array => "array",
        }
    }

    /// Whether `v` has this type ("integer": a number without fraction or exponent that fits 64 bits).
    pub fn matches(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Number => v.is_number(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Boolean => v.is_boolean(),
            Self::Object => v.is_object(),
            Self::Array => v.is_array(),
        }
    }
}

/// Arrow/Iceberg types a property can be promoted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotedType {
    Double,
    Long,
    Int,
    String,
    Boolean,
}

impl PromotedType {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "double" => Self::Double,
            "long" => Self::Long,
            "int" => Self::Int,
            "string" => Self::String,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Double => "double",
            Self::Long => "long",
            Self::Int => "int",
            Self::String => "string",
            Self::Boolean => "boolean",
        }
    }
}

/// Where a rule looks: an envelope field, or a path inside `properties`.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Envelope(EnvelopeField),
    Property(Vec<String>),
}

/// One compiled field rule.
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub path: String,
    pub target: Target,
    pub ty: Option<FieldType>,
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Option<Vec<Value>>,
    pub pattern: Option<Regex>,
    pub max_length: Option<usize>,
    pub event_types: Option<NameSet>,
}

impl FieldRule {
    /// Whether the rule applies to an event of this type.
    pub fn applies_to(&self, event_type: Option<&str>) -> bool {
        match (&self.event_types, event_type) {
            (None, _) => true,
            (Some(types), Some(t)) => types.contains(t),
            (Some(_), None) => false,
        }
    }
}

/// One promoted column.
#[derive(Debug, Clone, PartialEq)]
pub struct Promotion {
    pub path: String,
    pub segments: Vec<String>,
    pub column: String,
    pub ty: PromotedType,
}

/// A compiled pipeline schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub event_types: Option<Vec<String>>,
    event_type_set: NameSet,
    pub fields: Vec<FieldRule>,
    pub promote: Vec<Promotion>,
    /// True when some rule or promotion reads inside `properties` (so the fast path must parse them).
    pub reads_properties: bool,
    /// The distinct first segments of the `properties.<path>`s the rules and promotions read: only these
    /// members of `properties` are materialised.
    pub property_roots: Vec<String>,
    source: Value,
}

/// Columns of the records table a promoted column may not shadow.
pub const RESERVED_COLUMNS: &[&str] = &[
    "event_id", "event_type", "user_id", "session_id", "event_ts", "event_date", "event_hour", "properties",
    "schema_version", "job_id", "source_line", "raw", "ingested_at", "shard_id", "sequence_number", "timestamp",
];

impl Schema {
    /// The envelope contract alone: any event type, no extra rules, no promotions.
    pub fn envelope() -> Self {
        Schema {
            event_types: None,
            event_type_set: NameSet::default(),
            fields: Vec::new(),
            promote: Vec::new(),
            reads_properties: false,
            property_roots: Vec::new(),
            source: Value::Object(Map::new()),
        }
    }

    /// Compile a schema from its JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let source: Value = serde_json::from_str(text)
            .map_err(|e| Error::schema("$", format!("not JSON: {}", crate::parse::strip_position(&e.to_string()))))?;
        Self::compile(source)
    }

    /// Compile a schema from its source value.
    pub fn compile(source: Value) -> Result<Self> {
        let Value::Object(top) = &source else {
            return Err(Error::schema("$", "a schema is a JSON object"));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "event_types" | "fields" | "promote") {
                return Err(Error::schema(key.as_str(), "unknown key (expected event_types, fields, promote)"));
            }
        }
        let event_types = match top.get("event_types") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string_list(v, "event_types")?),
        };
        let event_type_set = event_types.iter().flatten().cloned().collect();
        let mut fields = Vec::new();
        if let Some(v) = top.get("fields") {
            let Value::Array(items) = v else {
                return Err(Error::schema("fields", "must be a list of field rules"));
            };
            for (i, item) in items.iter().enumerate() {
                fields.push(compile_field(item, &format!("fields[{i}]"))?);
            }
        }
        let mut promote: Vec<Promotion> = Vec::new();
        if let Some(v) = top.get("promote") {
            let Value::Array(items) = v else {
                return Err(Error::schema("promote", "must be a list of promotions"));
            };
            for (i, item) in items.iter().enumerate() {
                let p = compile_promotion(item, &format!("promote[{i}]"))?;
                if promote.iter().any(|q| q.column == p.column) {
                    return Err(Error::schema(format!("promote[{i}].column"), format!("duplicate column {:?}", p.column)));
                }
                promote.push(p);
            }
        }
        let reads_properties =
            !promote.is_empty() || fields.iter().any(|f| matches!(f.target, Target::Property(_)));
        let mut property_roots: Vec<String> = Vec::new();
        let rule_paths = fields.iter().filter_map(|f| match &f.target {
            Target::Property(segments) => segments.first(),
            Target::Envelope(_) => None,
        });
        for root in rule_paths.chain(promote.iter().filter_map(|p| p.segments.first())) {
            if !property_roots.contains(root) {
                property_roots.push(root.clone());
            }
        }
        Ok(Schema { event_types, event_type_set, fields, promote, reads_properties, property_roots, source })
    }

    /// Whether `event_type` is allowed.
    pub fn allows_event_type(&self, event_type: &str) -> bool {
        self.event_types.is_none() || self.event_type_set.contains(event_type)
    }

    /// The source form, as JSON text.
    pub fn to_json(&self) -> String {
        self.source.to_string()
    }
}

fn string_list(v: &Value, rule: &str) -> Result<Vec<String>> {
    let Value::Array(items) = v else {
        return Err(Error::schema(rule, "must be a list of strings"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, s)| match s {
            Value::String(s) => Ok(s.clone()),
            _ => Err(Error::schema(format!("{rule}[{i}]"), "must be a string")),
        })
        .collect()
}

fn number(v: &Value, rule: &str) -> Result<f64> {
    v.as_f64().ok_or_else(|| Error::schema(rule, "must be a number"))
}

fn parse_target(path: &str, rule: &str) -> Result<Target> {
    if let Some(rest) = path.strip_prefix("properties.") {
        let segments: Vec<String> = rest.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(Error::schema(rule, format!("empty segment in path {path:?}")));
        }
        return Ok(Target::Property(segments));
    }
    EnvelopeField::from_name(path).map(Target::Envelope).ok_or_else(|| {
        Error::schema(
            rule,
            format!("unknown path {path:?} (expected an envelope field or properties.<path>)"),
        )
    })
}

fn compile_field(item: &Value, at: &str) -> Result<FieldRule> {
    let Value::Object(m) = item else {
        return Err(Error::schema(at, "a field rule is an object"));
    };
    for key in m.keys() {
        if !matches!(
            key.as_str(),
            "path" | "type" | "required" | "min" | "max" | "enum" | "pattern" | "max_length" | "event_types"
        ) {
            return Err(Error::schema(format!("{at}.{key}"), "unknown key"));
        }
    }
    let path = match m.get("path") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(Error::schema(format!("{at}.path"), "required string")),
    };
    let target = parse_target(&path, &format!("{at}.path"))?;
    let ty = match m.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(FieldType::from_name(t).ok_or_else(|| {
            Error::schema(format!("{at}.type"), format!("unknown type {t:?} (string, number, integer, boolean, object, array)"))
        })?),
        Some(_) => return Err(Error::schema(format!("{at}.type"), "must be a string")),
    };
    let required = match m.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Error::schema(format!("{at}.required"), "must be true or false")),
    };
    let opt_number = |key: &str| -> Result<Option<f64>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => number(v, &format!("{at}.{key}")).map(Some),
        }
    };
    let min = opt_number("min")?;
    let max = opt_number("max")?;
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(Error::schema(format!("{at}.min"), format!("min {lo} is greater than max {hi}")));
        }
    }
    let allowed = match m.get("enum") {
        None | Some(Value::Null) => None,
        Some(Value::Array(values)) if !values.is_empty() => Some(values.clone()),
        Some(_) => return Err(Error::schema(format!("{at}.enum"), "must be a non-empty list")),
    };
    let pattern = match m.get("pattern") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(
            Regex::new(p).map_err(|e| Error::schema(format!("{at}.pattern"), format!("invalid regular expression: {e}")))?,
        ),
        Some(_) => return Err(Error::schema(format!("{at}.pattern"), "must be a string")),
    };
    let max_length = match m.get("max_length") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| Error::schema(format!("{at}.max_length"), "must be a non-negative integer"))?
                as usize,
        ),
    };
    let event_types = match m.get("event_types") {
        None | Some(Value::Null) => None,
        Some(v) => Some(string_list(v, &format!("{at}.event_types"))?.into_iter().collect()),
    };
    Ok(FieldRule { path, target, ty, required, min, max, allowed, pattern, max_length, event_types })
}

fn compile_promotion(item: &Value, at: &str) -> Result<Promotion> {
    let Value::Object(m) = item else {
        return Err(Error::schema(at, "a promotion is an object"));
    };
    for key in m.keys() {
        if !matches!(key.as_str(), "path" | "column" | "type") {
            return Err(Error::schema(format!("{at}.{key}"), "unknown key"));
        }
    }
    let path = match m.get("path") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(Error::schema(format!("{at}.path"), "required string")),
    };
    let Target::Property(segments) = parse_target(&path, &format!("{at}.path"))? else {
        return Err(Error::schema(format!("{at}.path"), "only properties.<path> can be promoted"));
    };
    let column = match m.get("column") {
        Some(Value::String(c)) if is_identifier(c) => c.clone(),
        Some(Value::String(c)) => {
            return Err(Error::schema(format!("{at}.column"), format!("{c:?} is not a column name ([a-z_][a-z0-9_]*)")))
        }
        None => segments.last().cloned().unwrap_or_default(),
        Some(_) => return Err(Error::schema(format!("{at}.column"), "must be a string")),
    };
    if RESERVED_COLUMNS.contains(&column.as_str()) {
        return Err(Error::schema(format!("{at}.column"), format!("{column:?} is a built-in column")));
    }
    let ty = match m.get("type") {
        Some(Value::String(t)) => PromotedType::from_name(t).ok_or_else(|| {
            Error::schema(format!("{at}.type"), format!("unknown type {t:?} (double, long, int, string, boolean)"))
        })?,
        _ => return Err(Error::schema(format!("{at}.type"), "required string")),
    };
    Ok(Promotion { path, segments, column, ty })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_of(text: &str) -> String {
        match Schema::from_json(text) {
            Err(Error::Schema { rule, .. }) => rule,
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn compiles_the_documented_form() {
        let s = Schema::from_json(
            r#"{"event_types":["page_view","purchase"],
                "fields":[{"path":"properties.amount","type":"number","required":true,"min":0,"max":1e6,
                           "event_types":["purchase"]},
                          {"path":"properties.currency","type":"string","enum":["EUR","USD"]},
                          {"path":"user_id","type":"string","pattern":"^u_[0-9]+$","max_length":64}],
                "promote":[{"path":"properties.amount","column":"amount","type":"double"}]}"#,
        )
        .unwrap();
        assert!(s.allows_event_type("purchase"));
        assert!(!s.allows_event_type("logout"));
        assert_eq!(s.fields.len(), 3);
        assert!(s.reads_properties);
        assert_eq!(s.promote[0].column, "amount");
    }

    #[test]
    fn bad_rules_are_named() {
        assert_eq!(rule_of(r#"{"fields":[{"path":"user_id"},{"path":"x","type":"string"}]}"#), "fields[1].path");
        assert_eq!(rule_of(r#"{"fields":[{"path":"user_id","pattern":"("}]}"#), "fields[0].pattern");
        assert_eq!(rule_of(r#"{"fields":[{"path":"user_id","type":"text"}]}"#), "fields[0].type");
        assert_eq!(rule_of(r#"{"fields":[{"path":"properties.a","min":3,"max":1}]}"#), "fields[0].min");
        assert_eq!(rule_of(r#"{"promote":[{"path":"properties.a","type":"decimal"}]}"#), "promote[0].type");
        assert_eq!(rule_of(r#"{"promote":[{"path":"properties.a","column":"event_id","type":"int"}]}"#), "promote[0].column");
        assert_eq!(rule_of(r#"{"event_types":"x"}"#), "event_types");
        assert_eq!(rule_of(r#"{"bogus":1}"#), "bogus");
        assert_eq!(rule_of("[]"), "$");
    }
}
