//! A store's directory as files: copying it, snapshotting its bytes, listing its
//! quarantine, and its entities (`corruption`, `torn_tail`, `format_compat`).

use got::{Entity, Store};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The entities of a store as id → entity.
pub fn contents(s: &Store) -> BTreeMap<String, Entity> {
    s.list(None, None)
        .unwrap()
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect()
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            fs::copy(e.path(), dst).unwrap();
        }
    }
}

pub fn quarantine_files(store: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(store.join("quarantine"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file of a store except LOCK (whose diagnostic line any lock holder
/// rewrites), path → bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else if e.file_name() != "LOCK" {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}
