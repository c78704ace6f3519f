//! Flags and subcommands: the top-level commands here, the graph's
//! subcommands in `args/graph.rs`, the work's in `args/work.rs`.

mod graph;
mod work;

pub use graph::*;
pub use work::*;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// The heading of the options every command takes: a command's help lists its
/// own options first, these after them.
const GLOBAL: &str = "Global options";

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
    #[arg(long, global = true, value_name = "DIR", env = "GOT_DIR", help_heading = GLOBAL)]
    pub store: Option<PathBuf>,
    /// Print machine-readable JSON (errors as {"error": {"code", "message"}}).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
    /// Who is acting, recorded on every write (default: $GOT_AGENT, else the user name).
    #[arg(long, global = true, value_name = "NAME", env = "GOT_AGENT", help_heading = GLOBAL)]
    pub agent: Option<String>,
    /// Print only ids (one a line), for scripts.
    #[arg(long, short, global = true, conflicts_with = "json", help_heading = GLOBAL)]
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
    History {
        /// The entity's id (a task, a handoff, anything).
        id: String,
    },
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
        /// At most this many tasks.
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
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The dependency graph (all tasks, or around ID) as a picture source.
    #[command(after_help = "Example:\n  got graph --format dot | dot -Tsvg > tasks.svg")]
    Graph {
        /// Show only what depends_on edges reach from this task, either way (default: every task).
        id: Option<String>,
        /// How many depends_on edges away from ID (default: all).
        #[arg(long)]
        depth: Option<usize>,
        /// dot (Graphviz), mermaid, or json (--json picks json too).
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
    Verify {
        /// The backup's name, as `got backup list` shows it.
        name: String,
    },
    /// Replace the store's contents with a backup, after backing up the current
    /// state. Refused while another process holds the store (stop agents first).
    Restore {
        /// The backup's name, as `got backup list` shows it.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every option and argument of every command, with its command's path.
    fn all_args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for a in cmd.get_arguments() {
            out.push((path.to_string(), a.clone()));
        }
        for sub in cmd.get_subcommands() {
            all_args(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_of_every_command_has_one_line_of_help() {
        let mut args = Vec::new();
        all_args(&Cli::command(), "got", &mut args);
        let missing: Vec<String> = args
            .iter()
            .filter(|(_, a)| {
                a.get_help().is_none() && a.get_id() != "help" && a.get_id() != "version"
            })
            .map(|(p, a)| format!("{p} {}", a.get_id()))
            .collect();
        assert!(missing.is_empty(), "options without help: {missing:#?}");
    }

    #[test]
    fn a_commands_own_options_come_before_the_global_ones() {
        let mut cmd = Cli::command();
        // Global options reach the subcommands when the command is built.
        cmd.build();
        let help = cmd
            .find_subcommand_mut("task")
            .and_then(|t| t.find_subcommand_mut("update"))
            .expect("got task update")
            .render_long_help()
            .to_string();
        let own = help.find("--title").expect("--title in the help");
        let global = help
            .find("Global options")
            .expect("a Global options heading");
        assert!(own < global, "{help}");
        assert!(help[global..].contains("--store"), "{help}");
    }
}
