//! The data every engine stores: tasks as `examples/scale.rs` makes them (status,
//! priority, one label out of six, a title, about three `depends_on` edges to
//! earlier tasks), from one deterministic generator, so got, SQLite and redb hold
//! the same rows and answer the same queries with the same ids.

/// Task statuses, drawn uniformly.
pub const STATUSES: [&str; 4] = ["pending", "in_progress", "blocked", "completed"];
/// Priorities, drawn uniformly.
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "critical"];
/// Labels; each task has one of them. The queries ask for `x`.
pub const LABELS: [&str; 6] = ["wal", "cli", "bug", "docs", "perf", "x"];

/// One task row.
#[derive(Clone, Debug)]
pub struct Task {
    pub id: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub label: &'static str,
    pub title: String,
    /// Ids of the tasks it depends on (may repeat; engines store each once).
    pub deps: Vec<String>,
}

/// The rank the ready queue orders by: critical first.
pub fn priority_rank(p: &str) -> i64 {
    match p {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        "low" => 3,
        _ => 4,
    }
}

/// The id of scale task `i`.
pub fn task_id(i: usize) -> String {
    format!("T-{i:08}")
}

/// Generates the scale tasks in order: `next()` gives task 0, 1, 2, ...
pub struct TaskGen {
    x: u64,
    next: usize,
}

impl Default for TaskGen {
    fn default() -> Self {
        TaskGen::new()
    }
}

impl TaskGen {
    pub fn new() -> TaskGen {
        TaskGen {
            x: 88172645463325252,
            next: 0,
        }
    }

    fn rnd(&mut self, m: u64) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x % m
    }

    /// How many tasks were generated so far.
    pub fn count(&self) -> usize {
        self.next
    }

    /// The next `n` tasks.
    pub fn batch(&mut self, n: usize) -> Vec<Task> {
        (0..n).map(|_| self.task()).collect()
    }

    fn task(&mut self) -> Task {
        let i = self.next;
        self.next += 1;
        let status = STATUSES[self.rnd(4) as usize];
        let priority = PRIORITIES[self.rnd(4) as usize];
        let label = LABELS[self.rnd(6) as usize];
        let deps = if i == 0 {
            Vec::new()
        } else {
            (0..3)
                .map(|_| task_id(self.rnd(i as u64) as usize))
                .collect()
        };
        Task {
            id: task_id(i),
            status,
            priority,
            label,
            title: format!("task number {i}"),
            deps,
        }
    }
}

/// The small entity of the commit workloads: a task with label `x`, no edges.
pub fn small_task(id: String, status: &'static str) -> Task {
    Task {
        title: format!("commit {id}"),
        id,
        status,
        priority: "medium",
        label: "x",
        deps: Vec::new(),
    }
}

/// A small xorshift generator for read workloads (ids to read).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn below(&mut self, m: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % m as u64) as usize
    }
}
