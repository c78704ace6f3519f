//! The indexes got keeps: the `indexer`'s entries, derived by the store as it
//! applies every commit (see `versioned_store::Deriver`).

use crate::{Entity, Value};
use indexer::{Doc, IndexValue};
use std::sync::Arc;

/// Bumped whenever what is indexed, or how, changes: stores whose runs hold
/// another version get their indexes rebuilt.
pub const INDEX_VERSION: u32 = 1;

/// Indexes by kind, by (kind, property, value) for the declared properties, and
/// by title/description words.
#[derive(Debug)]
pub struct IndexDeriver {
    declared: Vec<String>,
}

impl Default for IndexDeriver {
    fn default() -> Self {
        IndexDeriver {
            declared: indexer::DEFAULT_DECLARED
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

impl IndexDeriver {
    pub fn declared(&self) -> &[String] {
        &self.declared
    }
    pub fn is_declared(&self, prop: &str) -> bool {
        self.declared.iter().any(|d| d == prop)
    }
}

/// A property value as the indexer sees it.
pub fn index_value(v: &Value) -> IndexValue {
    match v {
        Value::Null => IndexValue::Null,
        Value::Bool(b) => IndexValue::Bool(*b),
        Value::Int(i) => IndexValue::Number(*i as f64),
        Value::Float(f) => IndexValue::Number(*f),
        Value::String(s) => IndexValue::Str(s.clone()),
        Value::List(items) => IndexValue::List(
            items
                .iter()
                .map(|i| match i {
                    Value::List(_) | Value::Map(_) => IndexValue::Other,
                    i => index_value(i),
                })
                .collect(),
        ),
        Value::Map(_) => IndexValue::Other,
    }
}

fn doc(e: &Entity) -> Doc<'_> {
    Doc {
        id: &e.id,
        kind: &e.kind,
        props: e
            .props
            .iter()
            .map(|(k, v)| (k.as_str(), index_value(v)))
            .collect(),
    }
}

impl versioned_store::Deriver for IndexDeriver {
    fn version(&self) -> u32 {
        INDEX_VERSION
    }
    fn entity_changed(
        &self,
        _id: &str,
        old: Option<&Entity>,
        new: Option<&Entity>,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let declared: Vec<&str> = self.declared.iter().map(String::as_str).collect();
        let (o, n) = (old.map(doc), new.map(doc));
        indexer::delta(o.as_ref(), n.as_ref(), &declared)
    }
}

/// The deriver `got` opens stores with.
pub fn default_deriver() -> Arc<IndexDeriver> {
    Arc::new(IndexDeriver::default())
}
