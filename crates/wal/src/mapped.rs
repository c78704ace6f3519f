//! Read-only memory maps of immutable files (runs) and of `DURABLE` (read at
//! every catch-up), and what a process does when a mapped page cannot be read.
//!
//! A read through a map that the kernel cannot satisfy (an I/O error on the
//! disk, or a file truncated under the map by something other than got) is not
//! an error code but `SIGBUS`, whose default action ends the process with
//! "Bus error". So maps are used only by a process that has called
//! [`enable_with_sigbus_handler`]: `got-server` (`got serve`, `got mcp`) and
//! the harness do. The `got` CLI does not: a process that runs one command
//! reads a few blocks, and mapping its runs cost it more than the `pread`s it
//! saved (docs/benchmarks.md). A program that embeds the library reads runs
//! with `pread` unless it opts in (a library does not install signal handlers
//! behind its user's back).
//!
//! The handler looks up the faulting address among the live maps. If it lies
//! in one, it writes one line naming the file to stderr and exits with status
//! 7 (damage, as `got verify` reports it): the process stops as if killed, so
//! nothing acknowledged is lost and nothing half-written is acknowledged (a
//! commit is acknowledged only after its sync). Any other `SIGBUS` goes to
//! the disposition from before (Rust's runtime's: the process dies of the
//! signal). docs/format.md, "Reading runs through a map", says why.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// Live maps the handler can name; while all are taken, runs opened are read
/// with `pread` (every map is one the handler knows).
const SLOTS: usize = 256;
/// Bytes of a file's path kept for the message (a longer one is cut).
const PATH_BYTES: usize = 240;

static ENABLED: AtomicBool = AtomicBool::new(false);
static USED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];
static START: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static LEN: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static PATH_LEN: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static PATH: [[AtomicU8; PATH_BYTES]; SLOTS] =
    [const { [const { AtomicU8::new(0) }; PATH_BYTES] }; SLOTS];

/// A read-only map of a whole file.
#[derive(Debug)]
pub struct Mapped {
    map: memmap2::Mmap,
    slot: usize,
}

impl Mapped {
    /// The bytes of a file that does not change while mapped (a run).
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The length of the map (the file's length when it was mapped).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Copies `buf.len()` bytes from `offset` of a file that others overwrite
    /// in place while it is mapped (`DURABLE`), byte by byte with volatile
    /// reads: no reference to the changing bytes is made, and a read torn by
    /// a concurrent write is caught by the caller's checksum, as with `pread`.
    /// `false` if the range lies past the map.
    pub fn copy_changing(&self, offset: usize, buf: &mut [u8]) -> bool {
        if offset
            .checked_add(buf.len())
            .is_none_or(|end| end > self.map.len())
        {
            return false;
        }
        let base = self.map.as_ptr();
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + i` lies inside the live map (checked above).
            *b = unsafe { std::ptr::read_volatile(base.add(offset + i)) };
        }
        true
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        let i = self.slot;
        START[i].store(0, Ordering::Release);
        LEN[i].store(0, Ordering::Release);
        USED[i].store(false, Ordering::Release);
    }
}

/// Whether this process reads immutable files through maps.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Installs the `SIGBUS` handler described above and from then on maps runs
/// opened on the real file system. Call it once, early (before threads that
/// install their own handlers); calling it again does nothing.
#[cfg(target_os = "linux")]
pub fn enable_with_sigbus_handler() -> io::Result<()> {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        // SAFETY: `sa` is zeroed and then filled as sigaction(2) asks; the
        // handler only reads atomics and calls async-signal-safe functions.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut old) != 0 {
                result = Err(io::Error::last_os_error());
                return;
            }
            let _ = PREVIOUS.set(Previous(old));
            if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) != 0 {
                result = Err(io::Error::last_os_error());
                return;
            }
        }
        ENABLED.store(true, Ordering::Release);
    });
    result
}

/// Elsewhere there is no handler, and runs are read with `pread`.
#[cfg(not(target_os = "linux"))]
pub fn enable_with_sigbus_handler() -> io::Result<()> {
    Ok(())
}

/// Maps `file` (named `path` in the handler's message) if maps are enabled;
/// `None` when they are not, when every slot is taken, or when the map fails
/// (the caller reads with `pread`).
pub(crate) fn map(file: &std::fs::File, path: &Path) -> Option<Mapped> {
    if !enabled() {
        return None;
    }
    let i = (0..SLOTS).find(|&i| {
        USED[i]
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    // SAFETY: got never truncates a mapped file. Runs are immutable once
    // published, so `bytes` may hand out references to them; `DURABLE`, which
    // other processes overwrite in place, is read only through
    // `copy_changing` (volatile reads, no references). A truncation by another
    // program raises SIGBUS, which the handler turns into an exit naming the
    // file; no reference into the map outlives the `Mapped`.
    let map = match unsafe { memmap2::Mmap::map(file) } {
        Ok(m) => m,
        Err(_) => {
            USED[i].store(false, Ordering::Release);
            return None;
        }
    };
    let p = path.as_os_str().as_encoded_bytes();
    let n = p.len().min(PATH_BYTES);
    for (j, b) in p[..n].iter().enumerate() {
        PATH[i][j].store(*b, Ordering::Relaxed);
    }
    PATH_LEN[i].store(n, Ordering::Relaxed);
    LEN[i].store(map.len(), Ordering::Release);
    START[i].store(map.as_ptr() as usize, Ordering::Release);
    Some(Mapped { map, slot: i })
}

/// The disposition `SIGBUS` had before ours (Rust's runtime installs one), put
/// back for a fault that is not in a map of ours.
#[cfg(target_os = "linux")]
struct Previous(libc::sigaction);

// SAFETY: a plain C struct, written once before the handler can run and only
// read after.
#[cfg(target_os = "linux")]
unsafe impl Sync for Previous {}
#[cfg(target_os = "linux")]
unsafe impl Send for Previous {}

#[cfg(target_os = "linux")]
static PREVIOUS: std::sync::OnceLock<Previous> = std::sync::OnceLock::new();

#[cfg(target_os = "linux")]
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let hit = (0..SLOTS).find(|&i| {
        let start = START[i].load(Ordering::Acquire);
        start != 0 && addr >= start && addr < start + LEN[i].load(Ordering::Acquire)
    });
    let write = |b: &[u8]| {
        // SAFETY: write(2) is async-signal-safe; `b` is valid for its length.
        unsafe { libc::write(2, b.as_ptr().cast(), b.len()) };
    };
    match hit {
        Some(i) => {
            let mut name = [0u8; PATH_BYTES];
            let n = PATH_LEN[i].load(Ordering::Relaxed).min(PATH_BYTES);
            for (j, b) in name[..n].iter_mut().enumerate() {
                *b = PATH[i][j].load(Ordering::Relaxed);
            }
            write(b"got: cannot read ");
            write(&name[..n]);
        }
        None => {
            // Not a page of ours: the disposition from before ours takes it
            // (the fault repeats when the handler returns), else the default.
            // SAFETY: sigaction and signal are async-signal-safe; `PREVIOUS`
            // was set before this handler was installed.
            unsafe {
                match PREVIOUS.get() {
                    Some(p) => {
                        libc::sigaction(libc::SIGBUS, &p.0, std::ptr::null_mut());
                    }
                    None => {
                        libc::signal(libc::SIGBUS, libc::SIG_DFL);
                    }
                }
            }
            return;
        }
    }
    write(
        b": a page of it could not be read (an I/O error on the disk, or the file was \
          truncated by another program); the process stopped before acknowledging \
          anything more; run `got verify`\n",
    );
    // SAFETY: _exit is async-signal-safe and skips destructors on purpose.
    unsafe { libc::_exit(7) };
}
