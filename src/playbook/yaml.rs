//! Reads YAML into JSON values while remembering where every node came from.
//!
//! The JSON Schema check and the meaning checks work on plain `serde_json`
//! values, but every problem they find must be shown at the YAML node that
//! caused it. Parsing keeps a [`Positions`] table from JSON pointer to the
//! node's line and column, so any later layer can turn a path into a place.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{Budget, DuplicateKeyPolicy, Options, Spanned};

use crate::diag::{Diagnostic, Location};

/// Deepest nesting a document may use. Real playbooks stay below ten levels;
/// the bound also keeps the recursive conversion far from the stack limit.
const MAX_DEPTH: usize = 32;

/// Line and column (1-based) of a node in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl Pos {
    /// This position in `file`, as diagnostics carry it.
    pub fn at(self, file: &Arc<str>) -> Location {
        Location {
            file: file.clone(),
            line: self.line.max(1),
            col: self.col.max(1),
        }
    }
}

/// Where each node of a parsed document starts, by JSON pointer.
///
/// Values and mapping keys are kept apart so that an unknown key can be shown
/// at the key itself and a wrong value at the value.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Position of the value at `pointer`, or of its nearest ancestor that has one.
    pub fn value(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, col: 1 },
            }
        }
    }

    /// Position of the key that names the member at `pointer`, falling back to the value.
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.value(pointer))
    }
}

/// A problem found while reading YAML, with the place it was found when known.
#[derive(Debug)]
pub struct YamlError {
    /// Where the parser stopped.
    pub pos: Option<Pos>,
    /// What went wrong, lowercase, without position.
    pub message: String,
}

impl YamlError {
    /// The error as a diagnostic in `file` (at its start when the parser gave no place).
    pub fn into_diagnostic(self, file: &Arc<str>) -> Diagnostic {
        Diagnostic::error(Some(self.pos.unwrap_or_default().at(file)), self.message)
    }
}

/// Parses one YAML document into a JSON value and the positions of its nodes.
///
/// Budgets bound nesting, aliases and node counts so that hostile input (alias
/// bombs, 10 000-deep nesting) stops with an error instead of exhausting memory
/// or the stack. Duplicate keys are errors: the second would silently win.
pub fn parse(text: &str) -> Result<(Value, Positions), YamlError> {
    let mut budget = Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    // YAML 1.2: only `true`/`false` are booleans, so `no` (Norway) stays a string.
    options.strict_booleans = true;
    let root: Spanned<Node> =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| YamlError {
            pos: e.location().and_then(|l| {
                (l.line() > 0).then(|| Pos {
                    line: saturate(l.line()),
                    col: saturate(l.column()),
                })
            }),
            message: plain_message(&e),
        })?;
    let mut positions = Positions::default();
    let mut pointer = String::new();
    let value = into_json(root, &mut pointer, &mut positions);
    Ok((value, positions))
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The parser's message without the location suffix it appends.
fn plain_message(e: &serde_saphyr::Error) -> String {
    let rendered = e.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML").trim();
    let cut = first.find(" at line ").map_or(first, |i| &first[..i]);
    // The parser's advice about its own options means nothing to a reader.
    let cut = cut
        .strip_suffix(", set DuplicateKeyPolicy in Options if acceptable")
        .unwrap_or(cut);
    let cut = cut
        .strip_suffix(" rejected by the configured policy")
        .unwrap_or(cut);
    let mut message = cut.trim_end_matches('.').to_string();
    if let Some(c) = message.get(..1) {
        let lower = c.to_lowercase();
        message.replace_range(..1, &lower);
    }
    message
}

pub use crate::diag::escape_segment;

/// A YAML node as read, before conversion to JSON.
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

fn pos_of(node: &Spanned<Node>) -> Pos {
    Pos {
        line: saturate(node.referenced.line()),
        col: saturate(node.referenced.column()),
    }
}

/// Converts a node to JSON, recording its position and its children's under `pointer`.
fn into_json(node: Spanned<Node>, pointer: &mut String, positions: &mut Positions) -> Value {
    positions.values.insert(pointer.clone(), pos_of(&node));
    match node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::from(i),
        Node::UInt(u) => Value::from(u),
        Node::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let len = pointer.len();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                pointer.push('/');
                pointer.push_str(&i.to_string());
                out.push(into_json(item, pointer, positions));
                pointer.truncate(len);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let len = pointer.len();
            let mut out = Map::with_capacity(entries.len());
            for (key, value) in entries {
                let key_pos = pos_of(&key);
                let name = key.value.into_key();
                pointer.push('/');
                pointer.push_str(&escape_segment(&name));
                positions.keys.insert(pointer.clone(), key_pos);
                let v = into_json(value, pointer, positions);
                pointer.truncate(len);
                out.insert(name, v);
            }
            Value::Object(out)
        }
    }
}

impl Node {
    /// Mapping keys become strings: `12: x` is the key `"12"`.
    fn into_key(self) -> String {
        match self {
            Node::Null => "null".to_string(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::UInt(u) => u.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Str(s) => s,
            Node::Seq(_) | Node::Map(_) => "<complex key>".to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_value_and_key_positions() {
        let (value, pos) = parse("a: 1\nlist:\n  - x: hello\n    y: [1, 2]\n").unwrap();
        assert_eq!(value["list"][0]["x"], "hello");
        assert_eq!(pos.value("/list/0/x"), Pos { line: 3, col: 8 });
        assert_eq!(pos.key("/list/0/y"), Pos { line: 4, col: 5 });
        assert_eq!(pos.value("/list/0/y/1"), Pos { line: 4, col: 12 });
    }

    #[test]
    fn unknown_pointer_falls_back_to_ancestor() {
        let (_, pos) = parse("a:\n  b: 1\n").unwrap();
        assert_eq!(pos.value("/a/b/c"), Pos { line: 2, col: 6 });
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let deep_block: String = (0..10_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        assert!(parse(&deep_block).is_err());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..20 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&doc).is_err());
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let (_, pos) = parse("\"a/b\": 1\n").unwrap();
        assert_eq!(pos.value("/a~1b"), Pos { line: 1, col: 8 });
    }
}
