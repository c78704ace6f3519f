//! Queries over entities: filter by kind, property equals / in, label contains and
//! text match; sort by id, a property, version or time; limit; and page on with
//! the last id of the previous page.
//!
//! Answered from one transaction's snapshot. With a kind, the indexes give the
//! candidates (the most selective indexed filter, else every entity of the kind)
//! and each candidate is checked against every filter, so an index can narrow the
//! work but never change the answer; without a kind, every entity is read.

use crate::index::index_value;
use crate::{Entity, Result, Transaction, Value};
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// One condition on an entity.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `props[name] == value`.
    Eq(String, Value),
    /// `props[name]` is one of the values.
    In(String, Vec<Value>),
    /// `props["labels"]` (a list) contains this string.
    Label(String),
    /// Every word of the text appears among the words of `title` and `description`
    /// (Unicode word split, case-folded).
    Text(String),
}

/// What results are ordered by; ties are broken by id.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Id,
    Prop(String),
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub kind: Option<String>,
    pub filters: Vec<Filter>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: Option<usize>,
    /// Start after the entity with this id (the last one of the previous page).
    pub after: Option<String>,
    /// Every entity of `kind` has an id starting with this (got's kinds do:
    /// `T-`, `H-`, …). An id-ordered page with no indexed filter then walks the
    /// entities under it instead of the kind index, which needs no index entries
    /// (a process that just opened the store has not derived its log tail's).
    pub id_prefix: Option<String>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            kind: None,
            filters: Vec::new(),
            sort: SortKey::Id,
            descending: false,
            limit: None,
            after: None,
            id_prefix: None,
        }
    }
}

/// Words of a text: split on anything not alphanumeric, lowercased (the same
/// split the full-text index uses).
pub use indexer::words;

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::String(_) => 3,
        Value::List(_) => 4,
        Value::Map(_) => 5,
    }
}

/// A total order on values: null < bools < numbers < strings < lists < maps;
/// numbers compare by value (NaN last), lists element by element.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let f = |v: &Value| match v {
                Value::Int(i) => *i as f64,
                Value::Float(f) => *f,
                _ => unreachable!(),
            };
            f(a).total_cmp(&f(b))
        }
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare_values(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Map(x), Value::Map(y)) => x.len().cmp(&y.len()),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Equality for filters: as `==`, except that an int and a float of the same value
/// are equal (JSON does not tell `2` from `2.0`).
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(_), Value::Float(_)) | (Value::Float(_), Value::Int(_)) => {
            compare_values(a, b) == Ordering::Equal
        }
        _ => a == b,
    }
}

impl Filter {
    pub fn matches(&self, e: &Entity) -> bool {
        let prop = |name: &str| e.props.get(name).unwrap_or(&Value::Null);
        match self {
            Filter::Eq(name, v) => values_equal(prop(name), v),
            Filter::In(name, vs) => vs.iter().any(|v| values_equal(prop(name), v)),
            Filter::Label(l) => match prop("labels") {
                Value::List(items) => items.iter().any(|i| i.as_str() == Some(l.as_str())),
                _ => false,
            },
            Filter::Text(t) => {
                let mut have = Vec::new();
                for field in ["title", "description"] {
                    if let Some(s) = prop(field).as_str() {
                        have.extend(words(s));
                    }
                }
                words(t).iter().all(|w| have.contains(w))
            }
        }
    }
}

impl Query {
    fn key_order(&self, a: &Entity, b: &Entity) -> Ordering {
        let o = match &self.sort {
            SortKey::Id => Ordering::Equal,
            SortKey::Prop(p) => compare_values(
                a.props.get(p).unwrap_or(&Value::Null),
                b.props.get(p).unwrap_or(&Value::Null),
            ),
            SortKey::Version => a.version.cmp(&b.version),
            SortKey::CreatedAt => a.created_at.cmp(&b.created_at),
            SortKey::UpdatedAt => a.updated_at.cmp(&b.updated_at),
        }
        .then_with(|| a.id.cmp(&b.id));
        if self.descending {
            o.reverse()
        } else {
            o
        }
    }

    /// Ids that may match, from the indexes: those of the most selective
    /// indexed filter (or all of the kind), plus what the transaction itself wrote
    /// (indexes reflect committed data only). `None` without a kind: scan.
    fn candidates(&self, tx: &mut Transaction<'_>) -> Result<Option<BTreeSet<String>>> {
        let Some(kind) = self.kind.as_deref() else {
            return Ok(None);
        };
        let declared_list = declared_props(tx);
        let declared = |p: &str| declared_list.iter().any(|d| d == p);
        let ids = |tx: &mut Transaction<'_>, prefix: Vec<u8>| -> Result<BTreeSet<String>> {
            Ok(tx
                .derived(&prefix)?
                .iter()
                .filter_map(|k| indexer::id_of(k).map(str::to_string))
                .collect())
        };
        let mut best: Option<BTreeSet<String>> = None;
        for f in &self.filters {
            let found = match f {
                Filter::Eq(p, v) if declared(p) && indexed_value(v) => {
                    match indexer::prop_prefix(kind, p, &index_value(v)) {
                        Some(prefix) => Some(ids(tx, prefix)?),
                        None => None,
                    }
                }
                Filter::In(p, vs) if declared(p) && vs.iter().all(indexed_value) => {
                    let mut all = BTreeSet::new();
                    let mut ok = true;
                    for v in vs {
                        match indexer::prop_prefix(kind, p, &index_value(v)) {
                            Some(prefix) => all.extend(ids(tx, prefix)?),
                            None => ok = false,
                        }
                    }
                    ok.then_some(all)
                }
                Filter::Label(l) => {
                    let v = indexer::IndexValue::Str(l.clone());
                    Some(ids(
                        tx,
                        indexer::prop_prefix(kind, "labels", &v).expect("a string"),
                    )?)
                }
                Filter::Text(t) => {
                    let mut acc: Option<BTreeSet<String>> = None;
                    for w in words(t) {
                        let s = ids(tx, indexer::word_prefix(kind, &w))?;
                        acc = Some(match acc {
                            None => s,
                            Some(a) => a.intersection(&s).cloned().collect(),
                        });
                    }
                    acc
                }
                _ => None,
            };
            if let Some(s) = found {
                if best.as_ref().is_none_or(|b| s.len() < b.len()) {
                    best = Some(s);
                }
            }
        }
        let mut set = match best {
            Some(s) => s,
            None => ids(tx, indexer::kind_prefix(kind))?,
        };
        set.extend(tx.written_ids());
        Ok(Some(set))
    }

    /// Index prefixes that answer the filters, as a conjunction of unions: an id
    /// matches every filter the indexes can answer when, for each inner list, it is
    /// under one of its prefixes. An equality or label is one prefix, an `In` one
    /// prefix per value, a text filter one list per word. Empty: only the kind.
    fn index_conjuncts(&self, kind: &str, declared: &dyn Fn(&str) -> bool) -> Vec<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for f in &self.filters {
            match f {
                Filter::Eq(p, v) if declared(p) && indexed_value(v) => {
                    if let Some(prefix) = indexer::prop_prefix(kind, p, &index_value(v)) {
                        out.push(vec![prefix]);
                    }
                }
                Filter::In(p, vs) if declared(p) && vs.iter().all(indexed_value) => {
                    let prefixes: Option<Vec<Vec<u8>>> = vs
                        .iter()
                        .map(|v| indexer::prop_prefix(kind, p, &index_value(v)))
                        .collect();
                    if let Some(prefixes) = prefixes {
                        out.push(prefixes);
                    }
                }
                Filter::Label(l) => {
                    let v = indexer::IndexValue::Str(l.clone());
                    out.push(vec![
                        indexer::prop_prefix(kind, "labels", &v).expect("a string")
                    ]);
                }
                Filter::Text(t) => {
                    for w in words(t) {
                        out.push(vec![indexer::word_prefix(kind, &w)]);
                    }
                }
                _ => {}
            }
        }
        if out.is_empty() {
            out.push(vec![indexer::kind_prefix(kind)]);
        }
        out
    }

    /// Id order with a limit and nothing written by the transaction: every index
    /// that answers a filter is walked in id order (its keys end with the id) and
    /// the walks are intersected, so only ids that pass every indexed filter are
    /// read, and the walk stops at the limit.
    fn run_in_index_order(
        &self,
        tx: &mut Transaction<'_>,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<Entity>> {
        let declared = declared_props(tx);
        let is_declared = |p: &str| declared.iter().any(|d| d == p);
        let conjuncts = self.index_conjuncts(kind, &is_declared);
        let mut out = Vec::with_capacity(limit.min(1024));
        let floor = self.after.clone().unwrap_or_default();
        if let (Some(prefix), true) = (
            &self.id_prefix,
            conjuncts == [vec![indexer::kind_prefix(kind)]],
        ) {
            // Only the kind: walk the entities themselves.
            for id in tx.entity_ids_after(prefix, &floor) {
                if out.len() >= limit {
                    break;
                }
                if let Some(e) = tx.get(&id?)? {
                    if e.kind == kind && self.filters.iter().all(|f| f.matches(&e)) {
                        out.push(e);
                    }
                }
            }
            return Ok(out);
        }
        let mut streams: Vec<IdStream> = conjuncts
            .into_iter()
            .map(|prefixes| IdStream::new(tx, prefixes))
            .collect();
        while out.len() < limit {
            let Some(id) = intersect_next(&mut streams, &floor)? else {
                break;
            };
            if let Some(e) = tx.get(&id)? {
                if e.kind == kind && self.filters.iter().all(|f| f.matches(&e)) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Runs the query in `tx`: candidates from the indexes when a kind is given
    /// (every filter is still checked on each candidate), else a scan.
    pub fn run(&self, tx: &mut Transaction<'_>) -> Result<Vec<Entity>> {
        if let (Some(kind), Some(limit), SortKey::Id, false) = (
            self.kind.as_deref(),
            self.limit,
            &self.sort,
            self.descending,
        ) {
            if tx.written_ids().is_empty() {
                return self.run_in_index_order(tx, kind, limit);
            }
        }
        let mut found: Vec<Entity> = match self.candidates(tx)? {
            Some(ids) => {
                let mut v = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(e) = tx.get(&id)? {
                        v.push(e);
                    }
                }
                v
            }
            None => tx.list(None, None)?,
        };
        found.retain(|e| {
            self.kind.as_deref().is_none_or(|k| k == e.kind)
                && self.filters.iter().all(|f| f.matches(e))
        });
        found.sort_by(|a, b| self.key_order(a, b));
        if let Some(after) = &self.after {
            // The page boundary is the entity as it is now; if it no longer exists,
            // fall back to its id alone in id order.
            let start = match tx.get(after)? {
                Some(pivot) => {
                    found.partition_point(|e| self.key_order(e, &pivot) != Ordering::Greater)
                }
                None => found.partition_point(|e| e.id.as_str() <= after.as_str()),
            };
            found.drain(..start);
        }
        if let Some(l) = self.limit {
            found.truncate(l);
        }
        Ok(found)
    }
}

/// Whether the index can answer "equals `v`": not for null, which a missing
/// property also equals but which the index has no entry for.
fn indexed_value(v: &Value) -> bool {
    !matches!(v, Value::Null)
}

/// The properties the store's indexes cover: those of its [`IndexDeriver`], or
/// none when it is opened with another deriver (queries then read every entity of
/// the kind, and stay right).
fn declared_props(tx: &Transaction<'_>) -> Vec<String> {
    crate::index::deriver_of(tx.store())
        .map(|d| d.declared().to_vec())
        .unwrap_or_default()
}

type KeyIter = Box<dyn Iterator<Item = Result<Vec<u8>>>>;

/// The ids under any of some index prefixes, ascending, each once: a merge of one
/// lazy walk per prefix.
struct IdStream {
    /// Each walk with the length of its prefix: the id is what follows it.
    walks: Vec<(std::iter::Peekable<KeyIter>, usize)>,
    head: Option<String>,
    started: bool,
}

impl IdStream {
    fn new(tx: &Transaction<'_>, prefixes: Vec<Vec<u8>>) -> IdStream {
        IdStream {
            walks: prefixes
                .into_iter()
                .map(|p| {
                    (
                        (Box::new(tx.derived_iter(&p)) as KeyIter).peekable(),
                        p.len(),
                    )
                })
                .collect(),
            head: None,
            started: false,
        }
    }

    /// The current id (after `advance` was called at least once).
    fn advance(&mut self) -> Result<()> {
        self.started = true;
        let mut min: Option<String> = None;
        for (w, prefix_len) in self.walks.iter_mut() {
            loop {
                match w.peek() {
                    None => break,
                    Some(Err(_)) => {
                        return Err(w.next().expect("peeked").expect_err("an error"));
                    }
                    Some(Ok(k)) => {
                        // Keys under a prefix end with the id (see `indexer`).
                        let Some(id) = k
                            .get(*prefix_len..)
                            .and_then(|b| std::str::from_utf8(b).ok())
                        else {
                            w.next();
                            continue;
                        };
                        if self.head.as_deref().is_some_and(|h| id <= h) {
                            w.next();
                            continue;
                        }
                        if min.as_deref().is_none_or(|m| id < m) {
                            min = Some(id.to_string());
                        }
                        break;
                    }
                }
            }
        }
        self.head = min;
        Ok(())
    }

    /// Moves to the first id at or above `target` (strictly above when `strict`).
    fn seek(&mut self, target: &str, strict: bool) -> Result<()> {
        if !self.started {
            self.advance()?;
        }
        while let Some(h) = self.head.as_deref() {
            if h > target || (!strict && h == target) {
                break;
            }
            self.advance()?;
        }
        Ok(())
    }
}

/// The next id above `floor` (and above the last one returned) present in every
/// stream: each stream is moved up to the largest head until all agree.
fn intersect_next(streams: &mut [IdStream], floor: &str) -> Result<Option<String>> {
    let first = &mut streams[0];
    let prev = first.head.clone();
    match prev {
        Some(p) if first.started => first.seek(&p, true)?,
        _ => first.seek(floor, true)?,
    }
    let Some(mut target) = streams[0].head.clone() else {
        return Ok(None);
    };
    'again: loop {
        for s in streams.iter_mut() {
            s.seek(&target, false)?;
            match s.head.as_deref() {
                None => return Ok(None),
                Some(h) if h != target => {
                    target = h.to_string();
                    continue 'again;
                }
                _ => {}
            }
        }
        return Ok(Some(target));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_unicode_and_fold_case() {
        assert_eq!(
            words("Fix the WAL's torn-tail, ÉTÉ 2026!"),
            ["fix", "the", "wal", "s", "torn", "tail", "été", "2026"]
        );
    }

    #[test]
    fn values_order_totally_and_numbers_compare_by_value() {
        use Value::*;
        let mut v = vec![
            String("b".into()),
            Int(3),
            Null,
            Float(2.5),
            Bool(true),
            String("a".into()),
        ];
        v.sort_by(compare_values);
        assert_eq!(
            v,
            vec![
                Null,
                Bool(true),
                Float(2.5),
                Int(3),
                String("a".into()),
                String("b".into())
            ]
        );
        assert!(values_equal(&Int(2), &Float(2.0)));
        assert!(!values_equal(&Int(2), &String("2".into())));
    }
}
