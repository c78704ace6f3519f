//! Property values. postcard is not self-describing, so properties have their own
//! enum instead of `serde_json::Value`.

use serde::{Deserialize, Deserializer, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;

/// A property value.
///
/// Lists and maps nest at most [`MAX_DEPTH`] deep (a top-level property value
/// is at depth 1): decoding refuses deeper values, and writes refuse them (see
/// [`check_depth`]). Decoding is recursive, and without the bound a record of a
/// few tens of KiB of nested lists (two bytes a level) overflowed the stack.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// How deep values nest: as deep as JSON input can make them (serde_json
/// refuses more than 128 levels), far below what overflows a 2 MiB thread
/// stack (about 7,000 levels in a debug build).
pub const MAX_DEPTH: usize = 128;

/// The derived decoding of [`Value`] (same variants, same order: the same
/// bytes), wrapped by `Value`'s own `Deserialize` to count the depth.
#[derive(Deserialize)]
#[serde(rename = "Value")]
enum ValueRepr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

thread_local! {
    /// Values being decoded on this thread, one inside the other.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> Option<DepthGuard> {
        DEPTH.with(|d| {
            (d.get() < MAX_DEPTH).then(|| {
                d.set(d.get() + 1);
                DepthGuard
            })
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let _depth = DepthGuard::enter().ok_or_else(|| {
            serde::de::Error::custom(format!("values nest deeper than {MAX_DEPTH} levels"))
        })?;
        Ok(match ValueRepr::deserialize(d)? {
            ValueRepr::Null => Value::Null,
            ValueRepr::Bool(b) => Value::Bool(b),
            ValueRepr::Int(i) => Value::Int(i),
            ValueRepr::Float(f) => Value::Float(f),
            ValueRepr::String(s) => Value::String(s),
            ValueRepr::List(l) => Value::List(l),
            ValueRepr::Map(m) => Value::Map(m),
        })
    }
}

/// Whether `v` nests more than `limit` levels deep (recursing at most
/// `limit + 1` levels, however deep it is).
fn deeper_than(v: &Value, limit: usize) -> bool {
    if limit == 0 {
        return true;
    }
    match v {
        Value::List(l) => l.iter().any(|v| deeper_than(v, limit - 1)),
        Value::Map(m) => m.values().any(|v| deeper_than(v, limit - 1)),
        _ => false,
    }
}

/// Refuses properties whose values nest deeper than [`MAX_DEPTH`]: they could
/// be written but never read back.
pub fn check_depth(props: &Props) -> crate::Result<()> {
    match props.iter().find(|(_, v)| deeper_than(v, MAX_DEPTH)) {
        Some((k, _)) => Err(crate::Error::Invalid(format!(
            "property {k:?} nests deeper than {MAX_DEPTH} levels"
        ))),
        None => Ok(()),
    }
}

/// An entity's properties, ordered by name.
pub type Props = BTreeMap<String, Value>;

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// Builds `Props` from pairs: `props([("title", "x".into())])`.
pub fn props<const N: usize>(pairs: [(&str, Value); N]) -> Props {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
