//! Flags and subcommands.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// got: a transactional graph store on disk, for agents and people.
///
/// Every write is one transaction: it is on stable storage when the command exits 0.
/// The store is `--store DIR`, else `$GOT_DIR`, else the nearest `.got` directory
/// found walking up from the working directory (like git); from a linked git
/// worktree, the one at the top of the main worktree.
#[derive(Parser, Debug)]
#[command(
    name = "got",
    version,
    after_help = "Examples:\n  got init\n  got entity put task --props '{\"title\": \"write the WAL\"}'\n  got edge add T-1 depends_on T-2\n  got --json entity list --kind task\n  got history T-1\n\nExit codes: 0 ok (a write is durable), 2 usage, 3 not found, 4 conflict, 5 invalid,\n6 locked, 7 corrupt, 8 outcome unknown (a sync failed), 1 other. See docs/cli.md."
)]
pub struct Cli {
    /// The store directory (the one holding LOCK, CURRENT and wal/).
    #[arg(long, global = true, value_name = "DIR", env = "GOT_DIR")]
    pub store: Option<PathBuf>,
    /// Print machine-readable JSON (errors as {"error": {"code", "message"}}).
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, recorded on every write (default: $GOT_AGENT, else the user name).
    #[arg(long, global = true, value_name = "NAME", env = "GOT_AGENT")]
    pub agent: Option<String>,
    /// Print only ids (one a line), for scripts.
    #[arg(long, short, global = true, conflicts_with = "json")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a store: at the top of the main worktree in a git work tree, else in
    /// ./.got (unless --store or GOT_DIR says where).
    Init,
    /// Serve the store over HTTP: a JSON API under /v1 (docs/server.md). A success
    /// status only after the write is durable. The first line of output names the
    /// address it listens on; SIGTERM stops it after the requests in flight.
    #[cfg(feature = "server")]
    #[command(
        after_help = "Examples:\n  got serve                                  # http://127.0.0.1:4747\n  got serve --listen 127.0.0.1:0             # a free port, printed first\n  GOT_TOKEN=s3cret got serve --listen 0.0.0.0:4747\n  curl -X POST localhost:4747/v1/tasks -d '{\"title\": \"write the docs\"}'"
    )]
    Serve {
        /// Address and port to listen on (port 0: a free one).
        #[arg(long, default_value = "127.0.0.1:4747", value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// A file holding the token every request must send as `Authorization:
        /// Bearer <token>` (else GOT_TOKEN); needed to listen beyond loopback.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Connections open at once; more wait in the kernel's backlog until one
        /// closes.
        #[arg(long, default_value_t = 1024, value_name = "N")]
        max_connections: usize,
        /// Close a connection whose request headers have not all arrived this
        /// long after it opened or after its last response (slow, stalled and
        /// idle clients), like 30s or 2m.
        #[arg(long, default_value = "30s", value_name = "DURATION")]
        header_timeout: String,
    },
    /// Serve got's tools over MCP on stdin and stdout (for agent clients: Claude
    /// Code, Codex, Cursor; `got setup` registers it). Speaks the initialize
    /// handshake (protocol 2025-06-18, 2025-11-25) and the 2026-07-28 discover
    /// flow; a tool returns only once its write is durable. Exits when stdin
    /// closes. The acting agent: a tool's `agent` argument, else --agent/GOT_AGENT.
    #[cfg(feature = "server")]
    #[command(
        after_help = "Example (what a client runs):\n  got mcp\nSee docs/server.md for the tools."
    )]
    Mcp,
    /// Wire an agent client up to got in this project: register `got mcp` where
    /// the client looks for MCP servers, run `got prime` at session start where
    /// it has a hook, and add the agent loop to AGENTS.md. Merges into the
    /// user's files (other servers, hooks and keys stay); an existing `got`
    /// entry that differs is replaced only with --force; nothing is written if
    /// any file refuses.
    ///
    /// claude: .mcp.json, .claude/settings.json (SessionStart hook), AGENTS.md.
    ///
    /// codex: .codex/config.toml ([mcp_servers.got]), .codex/hooks.json, AGENTS.md.
    ///
    /// cursor: .cursor/mcp.json, AGENTS.md (Cursor's session-start hook is not
    /// dependable; AGENTS.md tells the agent to run `got prime`).
    #[command(
        after_help = "Examples:\n  got setup claude --print     # show what would be written\n  got setup claude\n  got setup codex --force      # replace a different [mcp_servers.got]"
    )]
    Setup {
        /// The agent client to wire up.
        #[arg(value_enum)]
        client: Client,
        /// Print each file as it would be written, and write nothing.
        #[arg(long)]
        print: bool,
        /// Replace an existing `got` entry (or an edited AGENTS.md block) that differs.
        #[arg(long)]
        force: bool,
        /// The project's directory (default: the current one).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Turn the GoT system's JSON store in this project's .got into a got store,
    /// in place. The original files are kept byte for byte under .got/got-json;
    /// a crash leaves the original or the finished store, and running it again
    /// finishes and confirms.
    #[command(after_help = "Example:\n  cd my-project && got migrate && got ready")]
    Migrate {
        /// Also import entity files whose _checksum does not match their data
        /// (without it, any such file stops the migration before it starts).
        #[arg(long)]
        accept_bad_checksums: bool,
    },
    /// Create a store in a new temporary directory, write a small graph from several
    /// threads, read it back and print it.
    Demo {
        /// Writer threads.
        #[arg(long, default_value_t = 4)]
        threads: usize,
    },
    /// Entities: create, read, replace, delete.
    #[command(subcommand)]
    Entity(EntityCmd),
    /// Edges between entities.
    #[command(subcommand)]
    Edge(EdgeCmd),
    /// Every committed version of an entity, with who made it and when.
    History { id: String },
    /// Graph queries: neighbors, path, reach, cycles, topo.
    #[command(subcommand)]
    Query(QueryCmd),
    /// Flush the WAL tail into a run now (normally automatic).
    Checkpoint,
    /// Entities and edges by kind, history size, WAL and runs, cache, disk usage.
    Stats,
    /// Check every file's checksums, the WAL end to end, runs against the WAL, and
    /// that edges point at entities. Exits 0 only when healthy.
    Verify,
    /// Explain damage in the WAL; with --truncate-at-corruption, move the damaged
    /// frame and everything after it to quarantine/.
    Repair(RepairArgs),
    /// Tasks: create, list, claim, start, complete, block, depend.
    #[command(subcommand)]
    Task(TaskCmd),
    /// The ready queue: pending, unassigned tasks whose dependencies are all
    /// completed, by priority, then age.
    Ready {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Tasks that cannot proceed: blocked by hand (with reasons), and pending tasks
    /// waiting on open dependencies (with what they wait on).
    Blocked,
    /// Handing a task to another agent: initiate, accept, complete, reject.
    #[command(subcommand)]
    Handoff(HandoffCmd),
    /// Decisions: what was decided, why, the alternatives, what it affects.
    #[command(subcommand)]
    Decision(DecisionCmd),
    /// Sprints: groups of tasks with goals, claimed by an agent.
    #[command(subcommand)]
    Sprint(SprintCmd),
    /// Epics: groups of sprints and tasks, with progress.
    #[command(subcommand)]
    Epic(EpicCmd),
    /// What an agent should know at the start of a session, in a few lines:
    /// the store, its claimed tasks and their leases, handoffs waiting for it,
    /// the top of the ready queue, and the commands of the agent loop.
    #[command(
        after_help = "Example:\n  GOT_AGENT=agent-7 got prime        # at session start (a hook can run it)"
    )]
    Prime {
        /// How many ready tasks to show.
        #[arg(long, default_value_t = 5)]
        limit: usize,
    },
    /// One screen: counts by status, ready work, work in progress by agent,
    /// blocked with reasons, pending handoffs, recent decisions, sprint progress.
    /// Colour on a terminal, none when piped or NO_COLOR is set.
    Dashboard,
    /// Share the store with other clones through git: import the tracked file,
    /// export the store over it, commit got's files alone, pull (the merge driver
    /// joins the file), import the merge, push (docs/sync.md).
    ///
    /// Exit codes beyond the usual: 10 no git, 11 not in a git work tree, 12 no
    /// remote, 13 push refused after retries, 14 a merge conflict in another file
    /// (the store is unchanged), 15 HEAD detached.
    Sync(SyncArgs),
    /// The git merge driver for the tracked file (registered by `got init` and
    /// `got sync` as `got merge-driver %O %A %B %P`): writes the merge of OURS and
    /// THEIRS over OURS and exits 0; exits 1 naming the file and line when one
    /// cannot be read, and git then reports a conflict.
    MergeDriver {
        /// The common ancestor's version (%O); not needed by the merge, which is
        /// a join of the two sides.
        base: PathBuf,
        /// Our version (%A), replaced by the merge.
        ours: PathBuf,
        /// Their version (%B).
        theirs: PathBuf,
        /// The file's path in the repository (%P), for messages.
        path: Option<String>,
    },
    /// Git hooks that keep the store in step for users who only run `git pull`.
    #[command(subcommand)]
    Hooks(HooksCmd),
    /// Every entity and edge as JSON Lines, sorted by id: the same state gives the
    /// same bytes (merge-friendly in git).
    Export {
        /// Write here (atomically: a temporary file renamed into place) instead of
        /// to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import an export, a tracked file, a beads issues.jsonl (--from beads) or
    /// the GoT system's JSON store (--from got-json DIR). Everything is read and
    /// checked before the first write; importing twice changes nothing.
    #[command(
        after_help = "Examples:\n  got import tasks.jsonl\n  got import --from beads .beads/issues.jsonl\n  got import --from got-json ../old-project/.got\n\nThe mapping of each format onto got's: docs/cli.md, \"Importing from other tools\"."
    )]
    Import {
        /// The file (for got-json: the GoT store's directory, or the project
        /// holding it in .got).
        file: PathBuf,
        /// The file's format.
        #[arg(long, value_enum, default_value_t = ImportFormat::Got)]
        from: ImportFormat,
        /// Entities and edges per transaction (got's own export format).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Import GoT entity files whose _checksum does not match their data
        /// (they are reported either way).
        #[arg(long)]
        accept_bad_checksums: bool,
    },
    /// Backups: consistent copies of the store at one LSN, in backups/.
    #[command(subcommand)]
    Backup(BackupCmd),
    /// `verify`, then the work graph's own rules: dangling references, dependency
    /// cycles, impossible states, expired leases, orphan rate. Exit 7 if the bytes
    /// are damaged, 5 if a rule is broken, 0 otherwise (warnings included).
    Validate,
    /// Print a shell completion script: `got completions bash > /etc/bash_completion.d/got`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The dependency graph (all tasks, or around ID) as a picture source.
    #[command(after_help = "Example:\n  got graph --format dot | dot -Tsvg > tasks.svg")]
    Graph {
        id: Option<String>,
        /// How many depends_on edges away from ID (default: all).
        #[arg(long)]
        depth: Option<usize>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum ImportFormat {
    /// `got export` output.
    Got,
    /// A beads `issues.jsonl` (any version), or its `deletions.jsonl`.
    Beads,
    /// The GoT system's JSON store: a directory with `entities/*.json`.
    GotJson,
}

/// An agent client `got setup` knows.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Client {
    /// Claude Code.
    Claude,
    /// OpenAI's Codex CLI.
    Codex,
    /// Cursor.
    Cursor,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Commit and pull, but do not push.
    #[arg(long)]
    pub no_push: bool,
    /// The remote for a branch without an upstream (the first push sets it).
    #[arg(long, value_name = "NAME", default_value = "origin")]
    pub remote: String,
    /// Only import the work tree's tracked file into the store (what the hooks
    /// run after git moved it): no export, no commit, no network.
    #[arg(long, conflicts_with_all = ["no_push"])]
    pub import_only: bool,
    /// Keep tombstones (deleted entities, removed edges and labels) this many
    /// days before dropping them from the tracked file.
    #[arg(long, value_name = "DAYS", default_value_t = got::sync::cycle::DEFAULT_RETENTION_DAYS)]
    pub retention_days: u64,
}

#[derive(Subcommand, Debug)]
pub enum HooksCmd {
    /// Add post-merge, post-checkout and post-rewrite hooks that import the
    /// tracked file (`got sync --import-only`). A hook already there is kept
    /// (renamed NAME.pre-got) and runs first; running this again changes nothing.
    Install,
}

#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Cut the log at the damaged frame (its bytes and all later ones are kept in
    /// quarantine/; the commits they held are lost from the store).
    #[arg(long, conflicts_with = "from_backup")]
    pub truncate_at_corruption: bool,
    /// Restore backup NAME (see `got backup list`), then replay the log's intact
    /// frames after it, up to the first missing or damaged one: for a store whose
    /// runs or CURRENT are damaged. The replaced state is kept (a backup, or
    /// quarantine/ when it no longer opens).
    #[arg(long, value_name = "NAME")]
    pub from_backup: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum EntityCmd {
    /// Create or replace an entity; prints its id and new version.
    Put {
        /// The entity's kind, e.g. `task`.
        kind: String,
        /// Use this id (default: a new random one).
        #[arg(long)]
        id: Option<String>,
        /// The properties, a JSON object: '{"title": "x", "priority": 2}'.
        #[arg(long, default_value = "{}")]
        props: String,
        /// Only if the entity is at this version (0: must not exist); else conflict.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Print one entity.
    Get { id: String },
    /// List entities: filter, sort, page.
    ///
    /// Repeating --where on one property matches any of its values; different
    /// properties must all match. Page on with --after set to the last id shown.
    List {
        /// Only entities of this kind (answered from the indexes; without it,
        /// every entity is read).
        #[arg(long)]
        kind: Option<String>,
        /// PROP=VALUE; VALUE is JSON when it parses (2, true, "x"), else a string.
        #[arg(long = "where", value_name = "PROP=VALUE")]
        wheres: Vec<String>,
        /// The `labels` list contains this (repeatable: all of them).
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Every word appears in `title` or `description` (case-insensitive).
        #[arg(long)]
        text: Option<String>,
        /// id (default), version, created, updated, or a property; prefix - to reverse.
        #[arg(long, default_value = "id", allow_hyphen_values = true)]
        sort: String,
        #[arg(long)]
        limit: Option<usize>,
        /// Start after the entity with this id (the last of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// Delete an entity and its edges.
    Delete { id: String },
}

/// Which edges a graph query follows.
#[derive(Args, Debug)]
pub struct Follow {
    /// Follow edges of this kind (repeatable; default: every kind).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    #[arg(long, value_enum, default_value_t = Dir::Out)]
    pub direction: Dir,
}

#[derive(Subcommand, Debug)]
pub enum QueryCmd {
    /// The entities one edge away.
    Neighbors {
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// A shortest path FROM ... TO (fewest edges).
    Path {
        from: String,
        to: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Everything reachable from an entity, breadth first, with its distance.
    Reach {
        from: String,
        /// Stop after this many steps.
        #[arg(long)]
        depth: Option<usize>,
        #[command(flatten)]
        follow: Follow,
    },
    /// Cycles: the strongly connected components that hold one (exit 0 either way).
    Cycles {
        /// Only entities of this kind.
        #[arg(long = "of", value_name = "ENTITY_KIND")]
        of: Option<String>,
        /// Follow edges of this kind (repeatable; default: every kind).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
    },
    /// Tasks ready to start: pending, unassigned, every depends_on target
    /// completed; by priority (critical first), then age, then id.
    Ready {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// A topological order, dependencies first (an edge a -> b puts b before a);
    /// exits 4 (conflict) naming a cycle if there is one.
    Topo {
        /// Only entities of this kind.
        #[arg(long = "of", value_name = "ENTITY_KIND")]
        of: Option<String>,
        /// Follow edges of this kind (repeatable; default: every kind).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Dir {
    Out,
    In,
    Both,
}

#[derive(Subcommand, Debug)]
pub enum EdgeCmd {
    /// Add edge FROM -KIND-> TO (both must exist).
    Add {
        /// The source entity's id.
        from: String,
        /// The edge kind, e.g. `depends_on`.
        kind: String,
        /// The target entity's id.
        to: String,
        /// Edge properties, a JSON object.
        #[arg(long, default_value = "{}")]
        props: String,
    },
    /// Remove edge FROM -KIND-> TO.
    Rm {
        from: String,
        kind: String,
        to: String,
    },
    /// The edges of an entity.
    List {
        id: String,
        /// Only edges of this kind, e.g. `depends_on`.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, value_enum, default_value_t = Dir::Both)]
        direction: Dir,
    },
}

/// Task fields shared by `create` and `update`.
#[derive(Args, Debug, Default)]
pub struct TaskFields {
    /// critical, high, medium (the default for new tasks) or low.
    #[arg(long)]
    pub priority: Option<String>,
    /// arch, feature, bugfix, test, docs, refactor, debt, devex, security or
    /// performance.
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Estimated hours of work.
    #[arg(long, value_name = "HOURS", allow_negative_numbers = true)]
    pub estimate: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Create a task; prints its id.
    #[command(
        after_help = "Example:\n  got task create \"Cut the torn tail\" --priority high --label wal --depends-on T-4k2m"
    )]
    Create {
        title: String,
        #[command(flatten)]
        fields: TaskFields,
        /// A label (repeatable).
        #[arg(long = "label", value_name = "LABEL")]
        labels: Vec<String>,
        /// A task this one waits for (repeatable).
        #[arg(long = "depends-on", value_name = "ID")]
        depends_on: Vec<String>,
        /// A task that waits for this one (repeatable): it gets a depends_on edge.
        #[arg(long, value_name = "ID")]
        blocks: Vec<String>,
        /// The parent task.
        #[arg(long, value_name = "ID")]
        parent: Option<String>,
        /// The sprint this task is part of.
        #[arg(long, value_name = "ID")]
        sprint: Option<String>,
        /// The epic this task is part of.
        #[arg(long, value_name = "ID")]
        epic: Option<String>,
    },
    /// List tasks (id order), from the indexes.
    List {
        /// pending, in_progress, blocked or completed (repeatable: any of them).
        #[arg(long)]
        status: Vec<String>,
        /// Repeatable: any of them.
        #[arg(long)]
        priority: Vec<String>,
        #[arg(long)]
        category: Option<String>,
        /// Repeatable: all of them.
        #[arg(long)]
        label: Vec<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// Only the ready queue (as `got ready`).
        #[arg(long, conflicts_with_all = ["status", "blocked"])]
        ready: bool,
        /// Only tasks that cannot proceed (as `got blocked`).
        #[arg(long)]
        blocked: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this id (the last one of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// One task with its dependencies, dependents, notes and history count.
    Show { id: String },
    /// Start work: in progress, assigned to you.
    Start { id: String },
    /// Complete a task.
    Complete {
        id: String,
        /// What went well, what did not.
        #[arg(long)]
        retrospective: Option<String>,
    },
    /// Block a task by hand.
    Block {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Unblock a task blocked by hand.
    Unblock { id: String },
    /// Change fields of a task.
    Update {
        id: String,
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        fields: TaskFields,
        /// Add a label (repeatable).
        #[arg(long = "add-label", value_name = "LABEL")]
        add_labels: Vec<String>,
        /// Remove a label (repeatable).
        #[arg(long = "remove-label", value_name = "LABEL")]
        remove_labels: Vec<String>,
        /// Refuse (exit 4) unless the task is at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<u64>,
    },
    /// Delete a task and its edges (refused while others depend on it).
    Delete {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Append a timestamped note.
    Note { id: String, text: String },
    /// Make ID depend on OTHER (refused, naming the cycle, if it would close one).
    Depends {
        id: String,
        #[arg(long, value_name = "OTHER")]
        on: String,
        /// Remove the dependency instead.
        #[arg(long)]
        remove: bool,
    },
    /// Claim a ready task, atomically: of racing agents exactly one wins; the
    /// others exit 4 naming the winner.
    Claim {
        id: String,
        /// How long the claim holds without renewal (90s, 30m, 2h; 0: forever).
        #[arg(long, default_value = "1h")]
        lease: String,
    },
    /// Give a claimed task back (pending, unassigned).
    Release {
        id: String,
        /// Release a task someone else holds.
        #[arg(long)]
        force: bool,
    },
    /// Release every claim whose lease has run out.
    Reclaim {
        /// Required: what to reclaim (expired leases).
        #[arg(long, required = true)]
        stale: bool,
    },
    /// The first task of the ready queue; with --claim, claim it (N agents asking
    /// at once get N different tasks). Exit 3 when nothing is ready.
    Next {
        #[arg(long)]
        claim: bool,
        #[arg(long, default_value = "1h")]
        lease: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum HandoffCmd {
    /// Hand TASK to another agent.
    #[command(
        after_help = "Example:\n  got handoff initiate T-4k2m --to agent-3 --instructions \"finish the tests\" --context '{\"branch\": \"wal-tail\"}'"
    )]
    Initiate {
        task: String,
        /// The agent taking it over.
        #[arg(long)]
        to: String,
        /// The agent handing it over (default: --agent).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        instructions: String,
        /// A JSON object: branch, files_modified, files_to_review, blockers, notes.
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
    },
    /// Accept a handoff made to you.
    Accept { id: String },
    /// Complete a handoff you accepted.
    Complete {
        id: String,
        /// A JSON object: success, summary, next_steps, commits.
        #[arg(long, value_name = "JSON")]
        result: Option<String>,
        /// A file or link produced (repeatable).
        #[arg(long = "artifact", value_name = "PATH")]
        artifacts: Vec<String>,
    },
    /// Reject a handoff made to you (before accepting it).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Handoffs, optionally by status and target agent.
    List {
        /// initiated, accepted, completed or rejected.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One handoff.
    Show { id: String },
}

#[derive(Subcommand, Debug)]
pub enum DecisionCmd {
    /// Record a decision.
    #[command(
        after_help = "Example:\n  got decision log \"Zero-fill segments\" --rationale \"fallocate extents journal on first write\" --alternative fallocate --affects T-4k2m"
    )]
    Log {
        title: String,
        #[arg(long)]
        rationale: String,
        /// An option considered and not taken (repeatable).
        #[arg(long = "alternative", value_name = "TEXT")]
        alternatives: Vec<String>,
        /// A task or other entity the decision bears on (repeatable).
        #[arg(long, value_name = "ID")]
        affects: Vec<String>,
    },
    /// Decisions, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One decision with what it affects.
    Show { id: String },
    /// The decisions that affect a task (or any entity), oldest first.
    Why { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SprintCmd {
    /// Create a sprint (numbered one past the highest unless --number).
    Create {
        title: String,
        #[arg(long)]
        number: Option<i64>,
        /// The epic it belongs to.
        #[arg(long, value_name = "ID")]
        epic: Option<String>,
        /// A goal (repeatable).
        #[arg(long = "goal", value_name = "TEXT")]
        goals: Vec<String>,
    },
    /// Sprints with their progress.
    List,
    /// One sprint: goals, tasks, progress.
    Show { id: String },
    /// available or blocked -> in_progress.
    Start { id: String },
    /// -> completed.
    Complete { id: String },
    /// Claim a sprint (exactly one of racing agents wins; the others exit 4).
    Claim { id: String },
    /// Give a claimed sprint back.
    Release {
        id: String,
        #[arg(long)]
        force: bool,
    },
    /// Put a task in a sprint.
    Add { sprint: String, task: String },
    /// Sprint goals.
    #[command(subcommand)]
    Goal(GoalCmd),
}

#[derive(Subcommand, Debug)]
pub enum GoalCmd {
    /// Add a goal.
    Add { sprint: String, description: String },
    /// The goals, numbered.
    List { sprint: String },
    /// Mark goal N (as `goal list` numbers it) done.
    Complete { sprint: String, n: usize },
}

#[derive(Subcommand, Debug)]
pub enum EpicCmd {
    /// Create an epic.
    Create {
        title: String,
        /// A phase (repeatable, in order).
        #[arg(long = "phase", value_name = "TEXT")]
        phases: Vec<String>,
    },
    /// Epics with their progress.
    List,
    /// One epic: sprints, tasks, progress.
    Show { id: String },
}

#[derive(Subcommand, Debug)]
pub enum BackupCmd {
    /// Take a backup: every file copied and verified, none linked; no lock held.
    Create {
        /// Then keep only the newest N backups.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// The backups, oldest first.
    List,
    /// Check a backup as `got verify` checks a store.
    Verify { name: String },
    /// Replace the store's contents with a backup, after backing up the current
    /// state. Refused while another process holds the store (stop agents first).
    Restore { name: String },
}
