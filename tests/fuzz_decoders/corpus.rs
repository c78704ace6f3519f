//! The valid inputs every fuzz target starts from, made by the code itself: a
//! small store on a `SimVfs` with transactions of every kind of value, edges,
//! deletions, group-committed batches, two checkpoints (so runs exist and the log
//! has been retired and rotated), a WAL tail of several segments, a backup, more
//! commits after it, an export, a beads file, and a `REPAIRING` file.
//!
//! Built once per test process. The store's ids and times differ from run to
//! run, so a failure saves the corpus it used (see [`Corpus::save`]) and
//! `GOT_FUZZ_CORPUS=<dir>` loads it back: with the same `GOT_SEED` the run then
//! sees exactly the same inputs.

use got::versioned_store::backup;
use got::wal::{SimVfs, Vfs};
use got::{Options, Props, Store, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

/// Where the store lives in the `SimVfs`.
pub const DIR: &str = "/fuzz/.got";
/// Segment size: small, so that the log has several segments.
pub const SEGMENT_BYTES: u64 = got::wal::segment::MIN_SEGMENT_BYTES;

pub struct Corpus {
    /// Every file of the store (backups included) by path, and every directory.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub dirs: Vec<PathBuf>,
    pub store_id: [u8; 16],
    /// The backup's directory.
    pub backup_dir: PathBuf,
    /// `got export` of the store.
    pub export: Vec<u8>,
    /// A beads `issues.jsonl`.
    pub beads: Vec<u8>,
    /// A `REPAIRING` file for the backup, and the backup's LSN.
    pub repairing: Vec<u8>,
    pub backup_lsn: u64,
}

pub fn opts() -> Options {
    Options {
        create_if_missing: true,
        segment_size_bytes: SEGMENT_BYTES,
        auto_checkpoint: false,
        actor: Some("fuzz".into()),
        lock_timeout: std::time::Duration::from_secs(5),
        ..Options::default()
    }
}

/// The corpus: built (and saved for as long as the process runs, see
/// [`keep_until_exit`]), or loaded from `GOT_FUZZ_CORPUS`.
pub static CORPUS: LazyLock<Corpus> = LazyLock::new(|| match std::env::var("GOT_FUZZ_CORPUS") {
    Ok(dir) => Corpus::load(Path::new(&dir)),
    Err(_) => {
        let c = Corpus::build();
        keep_until_exit(&c);
        c
    }
});

static SAVED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Saves the corpus under the temp dir and removes it when the process exits
/// normally: a process that dies (an abort, a hang, a stack overflow) leaves it
/// behind for `GOT_FUZZ_CORPUS`, and its report names it.
fn keep_until_exit(c: &Corpus) {
    let dir = crate::harness::artifact_dir().join(format!("corpus-{}", std::process::id()));
    c.save(&dir);
    crate::harness::set_corpus_dir(&dir);
    SAVED.set(dir).expect("saved once");
    extern "C" fn remove() {
        if let Some(d) = SAVED.get() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    unsafe { libc::atexit(remove) };
}

fn task(i: usize) -> Props {
    let mut p = Props::new();
    p.insert(
        "title".into(),
        format!("task number {i} of the fuzz corpus").into(),
    );
    p.insert(
        "status".into(),
        ["pending", "in_progress", "completed", "blocked"][i % 4].into(),
    );
    p.insert(
        "priority".into(),
        ["critical", "high", "medium", "low"][i % 4].into(),
    );
    p.insert("n".into(), Value::Int(i as i64 * 1_000_003 - 7));
    p.insert("ratio".into(), Value::Float(i as f64 / 3.0));
    p.insert("flag".into(), Value::Bool(i.is_multiple_of(2)));
    p.insert("none".into(), Value::Null);
    p.insert(
        "labels".into(),
        Value::List(vec!["wal".into(), format!("l{}", i % 3).into()]),
    );
    // Nested lists and maps: recursive decoders get something to recurse into.
    p.insert(
        "nested".into(),
        Value::List(vec![
            Value::List(vec![Value::Int(1), Value::List(vec![Value::Null])]),
            Value::Map(
                [("k".to_string(), Value::Map(Props::new()))]
                    .into_iter()
                    .collect(),
            ),
        ]),
    );
    if i.is_multiple_of(5) {
        p.insert("assignee".into(), "alice".into());
    }
    p
}

fn commit(s: &Store, i: usize) {
    s.transaction(|tx| {
        let id = format!("T-{:04}", i % 23);
        tx.put(&id, "task", task(i))?;
        if i.is_multiple_of(3) && i > 0 {
            let to = format!("T-{:04}", (i - 1) % 23);
            if to != id && tx.get(&to)?.is_some() {
                let mut p = Props::new();
                p.insert("why".into(), "fuzz".into());
                let _ = tx.add_edge(&id, "relates_to", &to, p);
            }
        }
        if i % 11 == 10 {
            tx.put(&format!("D-{i}"), "decision", task(i))?;
        }
        Ok(())
    })
    .expect("commit to the corpus store");
}

fn snapshot(
    vfs: &SimVfs,
    dir: &Path,
    files: &mut BTreeMap<PathBuf, Vec<u8>>,
    dirs: &mut Vec<PathBuf>,
) {
    dirs.push(dir.to_path_buf());
    for name in vfs.list_dir(dir).expect("list the corpus store") {
        let p = dir.join(name);
        match vfs.read_current(&p) {
            Some(bytes) => {
                files.insert(p, bytes);
            }
            None => snapshot(vfs, &p, files, dirs),
        }
    }
}

impl Corpus {
    fn build() -> Corpus {
        let vfs = SimVfs::new();
        let dir = Path::new(DIR);
        let s = Store::open_with_vfs(vfs.clone() as Arc<dyn Vfs>, dir, opts()).expect("create");
        for i in 0..24 {
            commit(&s, i);
        }
        s.transaction(|tx| {
            tx.delete("T-0003")?;
            let _ = tx.remove_edge("T-0006", "relates_to", "T-0005")?;
            Ok(())
        })
        .unwrap();
        s.checkpoint().expect("first checkpoint");
        // Concurrent committers on one handle: some batches hold several
        // transactions in one frame.
        std::thread::scope(|sc| {
            for t in 0..4 {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..4 {
                        commit(s, 100 + t * 10 + i);
                    }
                });
            }
        });
        s.checkpoint().expect("second checkpoint");
        for i in 200..230 {
            commit(&s, i);
        }
        let b = s.backup(None).expect("backup");
        for i in 300..306 {
            commit(&s, i);
        }
        let mut export = Vec::new();
        got::transfer::export(&s, &mut export).expect("export");
        drop(s);

        // What a repair from the backup would keep in REPAIRING: the frames after it.
        let store_id = got::versioned_store::manifest::read(vfs.as_ref(), dir)
            .expect("manifest")
            .store_id;
        let wal = got::wal::Wal::open(
            vfs.clone() as Arc<dyn Vfs>,
            dir,
            store_id,
            got::wal::WalOptions {
                segment_size_bytes: SEGMENT_BYTES,
                ..Default::default()
            },
            false,
        )
        .expect("open the log");
        let mut cur = wal.position(b.lsn).expect("position after the backup");
        let mut frames = Vec::new();
        wal.scan(&mut cur, None, &mut frames, usize::MAX)
            .expect("scan");
        assert!(!frames.is_empty(), "commits after the backup");
        drop(wal);
        let repairing = backup::encode_repairing(b.lsn, &frames, "the end of the log");

        let mut files = BTreeMap::new();
        let mut dirs = Vec::new();
        snapshot(&vfs, dir, &mut files, &mut dirs);
        let c = Corpus {
            files,
            dirs,
            store_id,
            backup_dir: b.path.clone(),
            export,
            beads: BEADS.as_bytes().to_vec(),
            repairing,
            backup_lsn: b.lsn,
        };
        assert!(c.files_under("runs").count() >= 1, "a run exists");
        assert!(c.segments().len() >= 2, "the log has several segments");
        c
    }

    /// The files under `<store>/<sub>` (not in backups).
    pub fn files_under<'a>(
        &'a self,
        sub: &'a str,
    ) -> impl Iterator<Item = (&'a PathBuf, &'a Vec<u8>)> {
        let d = Path::new(DIR).join(sub);
        self.files
            .iter()
            .filter(move |(p, _)| p.parent() == Some(d.as_path()))
    }

    /// The store's WAL segments, oldest first.
    pub fn segments(&self) -> Vec<(&PathBuf, &Vec<u8>)> {
        self.files_under("wal")
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
            .collect()
    }

    pub fn file(&self, p: impl AsRef<Path>) -> &Vec<u8> {
        &self.files[p.as_ref()]
    }

    /// A fresh `SimVfs` holding the files of the store that `keep` selects,
    /// with `replace` (a path and its new bytes) instead of that file's corpus
    /// bytes.
    pub fn vfs(
        &self,
        keep: impl Fn(&Path) -> bool,
        replace: Option<(&Path, &[u8])>,
    ) -> Arc<SimVfs> {
        let vfs = SimVfs::new();
        for d in &self.dirs {
            vfs.create_dir_all(d).unwrap();
        }
        for (p, bytes) in &self.files {
            if !keep(p) {
                continue;
            }
            let bytes = match replace {
                Some((rp, rb)) if rp == p.as_path() => rb,
                _ => bytes.as_slice(),
            };
            put_file(&vfs, p, bytes);
        }
        vfs
    }

    /// Writes the corpus to `dir` (for `GOT_FUZZ_CORPUS`).
    pub fn save(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
        let root = dir.join("store");
        for d in &self.dirs {
            std::fs::create_dir_all(root.join(d.strip_prefix("/").unwrap())).unwrap();
        }
        for (p, b) in &self.files {
            std::fs::write(root.join(p.strip_prefix("/").unwrap()), b).unwrap();
        }
        std::fs::write(dir.join("export.jsonl"), &self.export).unwrap();
        std::fs::write(dir.join("beads.jsonl"), &self.beads).unwrap();
        std::fs::write(dir.join("REPAIRING"), &self.repairing).unwrap();
        std::fs::write(
            dir.join("meta"),
            format!("{}\n{}\n", self.backup_dir.display(), self.backup_lsn),
        )
        .unwrap();
    }

    fn load(dir: &Path) -> Corpus {
        fn walk(
            root: &Path,
            d: &Path,
            files: &mut BTreeMap<PathBuf, Vec<u8>>,
            dirs: &mut Vec<PathBuf>,
        ) {
            dirs.push(Path::new("/").join(d.strip_prefix(root).unwrap()));
            let mut entries: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    walk(root, &p, files, dirs);
                } else {
                    let rel = Path::new("/").join(p.strip_prefix(root).unwrap());
                    files.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        let root = dir.join("store");
        let mut files = BTreeMap::new();
        let mut dirs = Vec::new();
        walk(
            &root,
            &root.join(DIR.trim_start_matches('/')),
            &mut files,
            &mut dirs,
        );
        let meta = std::fs::read_to_string(dir.join("meta")).unwrap();
        let mut lines = meta.lines();
        let backup_dir = PathBuf::from(lines.next().unwrap());
        let backup_lsn = lines.next().unwrap().parse().unwrap();
        let vfs = SimVfs::new();
        for d in &dirs {
            vfs.create_dir_all(d).unwrap();
        }
        put_file(
            &vfs,
            &Path::new(DIR).join("CURRENT"),
            &files[&Path::new(DIR).join("CURRENT")],
        );
        let store_id = got::versioned_store::manifest::read(vfs.as_ref(), Path::new(DIR))
            .unwrap()
            .store_id;
        eprintln!("fuzz corpus loaded from {}", dir.display());
        Corpus {
            files,
            dirs,
            store_id,
            backup_dir,
            export: std::fs::read(dir.join("export.jsonl")).unwrap(),
            beads: std::fs::read(dir.join("beads.jsonl")).unwrap(),
            repairing: std::fs::read(dir.join("REPAIRING")).unwrap(),
            backup_lsn,
        }
    }
}

/// Writes a whole file into a `SimVfs` (synced: nothing pending).
pub fn put_file(vfs: &SimVfs, p: &Path, bytes: &[u8]) {
    use got::wal::OpenMode;
    let f = vfs.open(p, OpenMode::CreateReadWrite).unwrap();
    f.set_len(0).unwrap();
    f.write_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
}

/// A beads `issues.jsonl` (the format `got import --from beads` reads).
const BEADS: &str = concat!(
    r#"{"id":"bd-1","title":"Fix the tail","description":"torn","status":"open","priority":0,"issue_type":"bug","labels":["wal"],"assignee":"","created_at":"2025-10-01T12:00:00Z","updated_at":"2025-10-02T12:00:00.5Z"}"#,
    "\n",
    r#"{"id":"bd-2","title":"Test it","status":"closed","priority":3,"issue_type":"task","closed_at":"2025-10-03T00:00:00Z","created_at":"2025-10-01T13:00:00Z","dependencies":[{"issue_id":"bd-2","depends_on_id":"bd-1","type":"blocks"}]}"#,
    "\n",
    r#"{"id":"bd-3","title":"Epic","status":"in_progress","priority":2,"issue_type":"epic","assignee":"bob","created_at":"2025-10-01T13:00:00+02:00","dependencies":[{"issue_id":"bd-3","depends_on_id":"bd-1","type":"parent-child"},{"depends_on_id":"bd-2","type":"related"}]}"#,
    "\n",
);
