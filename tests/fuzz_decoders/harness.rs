//! The fuzz harness: runs one target's decoder on mutated valid inputs, one at a
//! time, and checks every run for the three failures a decoder of untrusted bytes
//! must never show:
//!
//! - **a panic**: each input runs under `catch_unwind`;
//! - **an allocation larger than the input justifies**: a counting global
//!   allocator records the largest single request made by the decoding thread
//!   while it decodes (see [`alloc_bound`]);
//! - **an endless loop**: a watchdog thread aborts the process, naming the input,
//!   if one input has run for [`HANG_SECS`].
//!
//! Every failure names the target, the seed (`GOT_SEED` replays it), the input
//! index, and the input bytes (hex, and a file under the temp dir). Failures that
//! kill the process (an abort, a stack overflow, a request too large to even try)
//! are reported from a `SIGABRT` handler with async-signal-safe writes only.

use crate::common::mutate::{mutate, Donors, Rng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::CString;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// How long one input may run before the watchdog calls it a hang. This is a
/// hang detector, not a speed assertion: every input of every target decodes in
/// well under a millisecond to a few milliseconds; a minute means it never ends.
pub const HANG_SECS: u64 = 60;

/// Requests above this are never passed on to the system while a decode runs:
/// the process is stopped with a report instead (the system would fail them,
/// and an allocation failure aborts without saying which input caused it).
const HARD_CAP: usize = 1 << 30;

/// The bound on any single allocation while decoding `input_len` bytes (plus
/// `context_len` bytes of other files the decoder reads, for targets that open a
/// whole log or store):
///
/// `1 MiB + 64 × (input_len + context_len)`
///
/// Why these figures: serde's sequence visitors preallocate up to 1 MiB when a
/// count field claims more elements than the remaining bytes could hold (its
/// `size_hint::cautious` cap; postcard passes no hint beyond the remaining input),
/// and the log zeroes and checks segments through fixed buffers of up to 1 MiB
/// (`segment::write_zeros`, the 256 KiB zero check); and a decoded value takes at
/// most 32 bytes of memory per input byte (a postcard `Value::Null` is one byte
/// and 32 in memory), doubled for a `Vec`'s growth. A length or count field read
/// from the bytes and trusted before it is checked asks for up to 4 GiB (u32)
/// or more, far beyond this bound for inputs of a few KiB.
pub fn alloc_bound(input_len: usize, context_len: usize) -> usize {
    (1 << 20) + 64 * (input_len + context_len)
}

// ---------------------------------------------------------------------------
// The counting allocator.

/// A thin wrapper over the system allocator that records the largest single
/// request of a thread while that thread has counting switched on.
pub struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    /// The slot (see [`SLOTS`]) of the target this thread runs, + 1 (0: none).
    static MY_SLOT: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
    if !counting {
        return;
    }
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    if size > HARD_CAP {
        let slot = MY_SLOT.try_with(Cell::get).unwrap_or(0);
        raw_write(b"\nfuzz: the decoder asked for a single allocation of ");
        raw_write_u64(size as u64);
        raw_write(b" bytes\n");
        if slot > 0 {
            dump_slot(&SLOTS[slot - 1]);
        }
        // Not through the SIGABRT handler: it would report the input again.
        unsafe {
            libc::signal(libc::SIGABRT, libc::SIG_DFL);
            libc::abort();
        }
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` with this thread's allocations counted; returns its result and the
/// largest single request it made.
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|m| m.set(0));
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------
// What is in flight, for the watchdog and the abort reporter.

/// One running target: what it is decoding right now. Read by the watchdog and
/// by the `SIGABRT` handler, so only atomics and raw pointers to memory that
/// lives at least as long as the target runs.
struct Slot {
    used: AtomicBool,
    /// `"<target> (seed <seed>)"`, NUL-terminated, leaked.
    label: AtomicPtr<u8>,
    /// Where the in-flight input is written if the process dies, NUL-terminated.
    dump_path: AtomicPtr<u8>,
    index: AtomicU64,
    /// The corpus input the in-flight input was made from.
    base: AtomicU64,
    data: AtomicPtr<u8>,
    len: AtomicUsize,
    /// When the current input started (ms since [`epoch`]), 0 when idle.
    started: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: Slot = Slot {
    used: AtomicBool::new(false),
    label: AtomicPtr::new(std::ptr::null_mut()),
    dump_path: AtomicPtr::new(std::ptr::null_mut()),
    index: AtomicU64::new(0),
    base: AtomicU64::new(0),
    data: AtomicPtr::new(std::ptr::null_mut()),
    len: AtomicUsize::new(0),
    started: AtomicU64::new(0),
};

static SLOTS: [Slot; 32] = [EMPTY_SLOT; 32];

/// Where the corpus of this process is saved (NUL-terminated), for reports.
static CORPUS_DIR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

pub fn set_corpus_dir(dir: &std::path::Path) {
    CORPUS_DIR.store(
        leak_cstr(dir.to_string_lossy().into_owned()),
        Ordering::SeqCst,
    );
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

fn leak_cstr(s: String) -> *mut u8 {
    CString::new(s).expect("no NUL").into_raw() as *mut u8
}

fn raw_write(b: &[u8]) {
    let mut off = 0;
    while off < b.len() {
        let n = unsafe { libc::write(2, b[off..].as_ptr().cast(), b.len() - off) };
        if n <= 0 {
            return;
        }
        off += n as usize;
    }
}

fn raw_write_u64(mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    raw_write(&buf[i..]);
}

fn cstr_bytes<'a>(p: *const u8) -> &'a [u8] {
    if p.is_null() {
        return b"?";
    }
    unsafe { std::ffi::CStr::from_ptr(p.cast()).to_bytes() }
}

/// Prints what a slot is decoding and writes the input to its dump file, with
/// async-signal-safe calls only (it runs in the `SIGABRT` handler).
fn dump_slot(s: &Slot) {
    let data = s.data.load(Ordering::SeqCst);
    let len = s.len.load(Ordering::SeqCst);
    raw_write(b"fuzz: in flight: target ");
    raw_write(cstr_bytes(s.label.load(Ordering::SeqCst)));
    raw_write(b", input #");
    raw_write_u64(s.index.load(Ordering::SeqCst));
    raw_write(b" (made from corpus input ");
    raw_write_u64(s.base.load(Ordering::SeqCst));
    raw_write(b"), ");
    raw_write_u64(len as u64);
    raw_write(b" bytes");
    if data.is_null() {
        raw_write(b"\n");
        return;
    }
    let input = unsafe { std::slice::from_raw_parts(data as *const u8, len) };
    let path = s.dump_path.load(Ordering::SeqCst);
    if !path.is_null() {
        let fd = unsafe {
            libc::open(
                path as *const libc::c_char,
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                0o644,
            )
        };
        if fd >= 0 {
            let mut off = 0;
            while off < input.len() {
                let n = unsafe { libc::write(fd, input[off..].as_ptr().cast(), input.len() - off) };
                if n <= 0 {
                    break;
                }
                off += n as usize;
            }
            unsafe { libc::close(fd) };
            raw_write(b", written to ");
            raw_write(cstr_bytes(path));
            raw_write(
                b"\nfuzz: replay it: GOT_FUZZ_REPLAY=<that file> GOT_FUZZ_BASE=<the corpus input>",
            );
            let corpus = CORPUS_DIR.load(Ordering::SeqCst);
            if !corpus.is_null() {
                raw_write(b" GOT_FUZZ_CORPUS=");
                raw_write(cstr_bytes(corpus));
            }
        }
    }
    raw_write(b"\nfuzz: input (hex, first 4096 bytes): ");
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in input[..len.min(4096)].chunks(64) {
        let mut line = [0u8; 128];
        for (i, &b) in chunk.iter().enumerate() {
            line[2 * i] = HEX[(b >> 4) as usize];
            line[2 * i + 1] = HEX[(b & 15) as usize];
        }
        raw_write(&line[..chunk.len() * 2]);
    }
    raw_write(b"\n");
}

fn dump_all() {
    for s in &SLOTS {
        if s.used.load(Ordering::SeqCst) && s.started.load(Ordering::SeqCst) != 0 {
            dump_slot(s);
        }
    }
}

extern "C" fn on_abort(_sig: libc::c_int) {
    raw_write(
        b"\nfuzz: the process is aborting (a stack overflow, an allocation failure or a hang)\n",
    );
    dump_all();
}

/// Installs the `SIGABRT` reporter and starts the watchdog, once per process.
fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        epoch();
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_abort as *const () as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGABRT, &sa, std::ptr::null_mut());
        }
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(500));
                let now = now_ms();
                for s in &SLOTS {
                    let started = s.started.load(Ordering::SeqCst);
                    if s.used.load(Ordering::SeqCst)
                        && started != 0
                        && now.saturating_sub(started) > HANG_SECS * 1000
                    {
                        raw_write(b"\nfuzz: HANG: one input has run for more than ");
                        raw_write_u64(HANG_SECS);
                        raw_write(b" s (a decoder that never ends)\n");
                        dump_slot(s);
                        // Not through the SIGABRT handler: it would dump again.
                        unsafe {
                            libc::signal(libc::SIGABRT, libc::SIG_DFL);
                            libc::abort();
                        }
                    }
                }
            })
            .expect("spawn the watchdog");
    });
}

fn claim_slot(label: String, dump_path: &std::path::Path) -> usize {
    for (i, s) in SLOTS.iter().enumerate() {
        if s.used
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            s.label.store(leak_cstr(label), Ordering::SeqCst);
            s.dump_path.store(
                leak_cstr(dump_path.to_string_lossy().into_owned()),
                Ordering::SeqCst,
            );
            return i;
        }
    }
    panic!("more fuzz targets at once than slots");
}

// ---------------------------------------------------------------------------
// Running a target.

/// What a decode made of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decoded as a valid value.
    Accepted,
    /// Refused with an error.
    Rejected,
}

impl Verdict {
    pub fn of<T, E>(r: &Result<T, E>) -> Verdict {
        if r.is_ok() {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        }
    }
}

/// Recomputes an input's checksums after its mutation; called with the index
/// of the corpus input the mutation started from.
pub type Reseal<'a> = &'a dyn Fn(&mut Rng, usize, &mut Vec<u8>);

/// One fuzz target.
pub struct Target<'a> {
    pub name: &'static str,
    /// Inputs in quick mode (`GOT_LONG_TESTS=1`: [`LONG_INPUTS`];
    /// `GOT_FUZZ_INPUTS=n`: n).
    pub quick_inputs: u64,
    /// The valid inputs every mutated input starts from (also splice donors).
    pub corpus: Vec<Vec<u8>>,
    pub tokens: &'a [&'a [u8]],
    /// Recomputes the format's checksums (and lengths) after a mutation, for
    /// half the inputs: without it almost every mutation would stop at the first
    /// checksum, and the parsing behind it would never see damaged bytes.
    pub reseal: Option<Reseal<'a>>,
    /// Bytes of other files the decoder reads besides the input (see
    /// [`alloc_bound`]).
    pub context_len: usize,
}

/// Inputs per target with `GOT_LONG_TESTS=1`.
pub const LONG_INPUTS: u64 = 1_000_000;

/// What a run of a target found.
#[derive(Debug, Default)]
pub struct Counts {
    pub inputs: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub resealed: u64,
    pub largest_alloc: usize,
}

fn inputs_for(t: &Target) -> u64 {
    if let Ok(n) = std::env::var("GOT_FUZZ_INPUTS") {
        return n.trim().parse().expect("GOT_FUZZ_INPUTS must be a number");
    }
    if std::env::var_os("GOT_LONG_TESTS").is_some() {
        LONG_INPUTS
    } else {
        t.quick_inputs
    }
}

pub fn artifact_dir() -> PathBuf {
    let d = std::env::temp_dir().join("got-fuzz");
    std::fs::create_dir_all(&d).expect("create the fuzz artifact directory");
    d
}

/// The corpus input a saved failing input started from: `GOT_FUZZ_BASE`, else
/// from its name (`…-base<N>.bin`).
fn base_of(path: &str) -> usize {
    if let Ok(b) = std::env::var("GOT_FUZZ_BASE") {
        return b.trim().parse().expect("GOT_FUZZ_BASE must be a number");
    }
    path.rsplit_once("-base")
        .and_then(|(_, r)| r.strip_suffix(".bin"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

/// Runs `f` (which counts its decoding's allocations, see [`counted`]) on
/// `input` with the watchdog watching `slot`; `Err` says what went wrong.
fn checked(
    slot: &Slot,
    input: &[u8],
    context_len: usize,
    f: impl FnOnce() -> (Verdict, usize),
) -> Result<(Verdict, usize), String> {
    slot.data.store(input.as_ptr() as *mut u8, Ordering::SeqCst);
    slot.len.store(input.len(), Ordering::SeqCst);
    slot.started.store(now_ms(), Ordering::SeqCst);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f));
    COUNTING.with(|c| c.set(false));
    slot.started.store(0, Ordering::SeqCst);
    slot.data.store(std::ptr::null_mut(), Ordering::SeqCst);
    let bound = alloc_bound(input.len(), context_len);
    match outcome {
        Err(p) => Err(format!("panicked: {}", panic_message(p.as_ref()))),
        Ok((_, largest)) if largest > bound => Err(format!(
            "made a single allocation of {largest} bytes, beyond the bound of {bound} \
             for {} input bytes (+ {context_len} of context)",
            input.len(),
        )),
        Ok(r) => Ok(r),
    }
}

/// A regression test: runs `decode` once on `input` (an input a target once
/// failed on) under the same checks as every fuzzed input — no panic, no
/// allocation beyond [`alloc_bound`], no hang — and returns its verdict.
pub fn check_one(
    name: &str,
    input: &[u8],
    context_len: usize,
    decode: impl FnOnce(&[u8]) -> Verdict,
) -> Verdict {
    install();
    let file_name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dump = artifact_dir().join(format!("{file_name}-inflight.bin"));
    let slot_i = claim_slot(name.to_string(), &dump);
    let slot = &SLOTS[slot_i];
    MY_SLOT.with(|s| s.set(slot_i + 1));
    let outcome = checked(slot, input, context_len, || counted(|| decode(input)));
    MY_SLOT.with(|s| s.set(0));
    slot.used.store(false, Ordering::SeqCst);
    match outcome {
        Ok((verdict, _)) => verdict,
        Err(what) => panic!("{name}: the decoder {what}"),
    }
}

/// Runs `decode` on every input of `t` (see [`run_with`]) without a setup step.
pub fn run(t: &Target, decode: impl Fn(&[u8]) -> Verdict) -> Counts {
    run_with(t, |_, _| (), |input, ()| decode(input))
}

/// Makes one input from a valid one of the corpus (with the other valid
/// inputs and the tokens at hand); [`run_with`] uses [`mutate`], bytes only.
pub type Mutator<'a> = &'a dyn Fn(&mut Rng, &[u8], &Donors) -> Vec<u8>;

/// Runs target `t` with inputs made by [`mutate`]: see [`run_mutated_with`].
pub fn run_with<C>(
    t: &Target,
    prepare: impl Fn(usize, &[u8]) -> C,
    decode: impl Fn(&[u8], &C) -> Verdict,
) -> Counts {
    run_mutated_with(
        t,
        &|rng, input, donors| mutate(rng, input, donors),
        prepare,
        decode,
    )
}

/// Runs target `t` with inputs made by `mutator`: for each input, `prepare`
/// (not counted: e.g. writing the bytes into a `SimVfs`; it gets the index of
/// the corpus input the mutation started from), then `decode` under
/// `catch_unwind` with its allocations counted and the watchdog watching.
/// Panics with a full report on the first failure; asserts that both valid
/// and invalid inputs were seen.
///
/// `GOT_FUZZ_REPLAY=<file>` decodes only that file's bytes (an input a failure
/// wrote; the corpus input it started from is in its name) and reports what
/// happened.
pub fn run_mutated_with<C>(
    t: &Target,
    mutator: Mutator,
    prepare: impl Fn(usize, &[u8]) -> C,
    decode: impl Fn(&[u8], &C) -> Verdict,
) -> Counts {
    install();
    let seed = crate::common::seed::seed(t.name);
    let dir = artifact_dir();
    let dump = dir.join(format!("{}-seed{seed}-inflight.bin", t.name));
    let slot_i = claim_slot(format!("{} (seed {seed})", t.name), &dump);
    let slot = &SLOTS[slot_i];
    MY_SLOT.with(|s| s.set(slot_i + 1));
    assert!(
        !t.corpus.is_empty(),
        "{}: no valid inputs to start from",
        t.name
    );

    let replay = std::env::var("GOT_FUZZ_REPLAY").ok();
    let n = if replay.is_some() { 1 } else { inputs_for(t) };
    let donors = Donors {
        inputs: &t.corpus,
        tokens: t.tokens,
    };
    let mut counts = Counts::default();
    let start = Instant::now();
    for index in 0..n {
        let (input, base, resealed) = match &replay {
            Some(path) => (
                std::fs::read(path).expect("read GOT_FUZZ_REPLAY"),
                base_of(path),
                false,
            ),
            None => {
                let mut rng = Rng::for_input(seed, t.name, index);
                let base = rng.below(t.corpus.len());
                let mut input = mutator(&mut rng, &t.corpus[base], &donors);
                let reseal = t.reseal.filter(|_| rng.one_in(2));
                if let Some(f) = reseal {
                    f(&mut rng, base, &mut input);
                }
                (input, base, reseal.is_some())
            }
        };
        slot.index.store(index, Ordering::SeqCst);
        slot.base.store(base as u64, Ordering::SeqCst);
        let outcome = checked(slot, &input, t.context_len, || {
            let ctx = prepare(base, &input);
            counted(|| decode(&input, &ctx))
        });
        let failure = outcome.as_ref().err().cloned();
        if let Some(what) = failure {
            let file = dir.join(format!("{}-seed{seed}-input{index}-base{base}.bin", t.name));
            std::fs::write(&file, &input).expect("write the failing input");
            let corpus = dir.join(format!("{}-seed{seed}-corpus", t.name));
            crate::corpus::CORPUS.save(&corpus);
            let shown = if input.len() <= 1024 {
                hex(&input)
            } else {
                format!("{}… (see the file)", hex(&input[..1024]))
            };
            panic!(
                "fuzz target {} failed on input #{index} (seed {seed}{}): the decoder {what}\n\
                 input: {} bytes, written to {}\n\
                 replay this input: GOT_FUZZ_REPLAY={} cargo test --test fuzz_decoders {}\n\
                 replay the run: GOT_SEED={seed} GOT_FUZZ_CORPUS={} cargo test --test fuzz_decoders {}\n\
                 hex: {shown}",
                t.name,
                if resealed { ", checksums resealed" } else { "" },
                input.len(),
                file.display(),
                file.display(),
                t.name,
                corpus.display(),
                t.name,
            );
        }
        let (verdict, largest) = outcome.expect("checked above");
        counts.inputs += 1;
        counts.resealed += u64::from(resealed);
        counts.largest_alloc = counts.largest_alloc.max(largest);
        match verdict {
            Verdict::Accepted => counts.accepted += 1,
            Verdict::Rejected => counts.rejected += 1,
        }
    }
    MY_SLOT.with(|s| s.set(0));
    slot.used.store(false, Ordering::SeqCst);
    // Straight to stderr, not through the test harness's capture: the counts
    // of every run are shown, passing or not.
    let _ = writeln!(
        std::io::stderr(),
        "{} (seed {seed}): {} inputs in {:.1?} ({} with checksums resealed): {} accepted as \
         valid, {} rejected; largest single allocation while decoding {} bytes",
        t.name,
        counts.inputs,
        start.elapsed(),
        counts.resealed,
        counts.accepted,
        counts.rejected,
        counts.largest_alloc
    );
    if replay.is_none() {
        // A mutator that only produced garbage (or only valid inputs) would make
        // this target test nothing: both outcomes must have occurred.
        assert!(
            counts.accepted > 0,
            "{}: no mutated input was accepted: the mutations never reach past the first check",
            t.name
        );
        assert!(
            counts.rejected > 0,
            "{}: no mutated input was rejected: the mutations never damage anything",
            t.name
        );
    }
    counts
}
