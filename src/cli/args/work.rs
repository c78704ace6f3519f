//! The subcommands of the work: `got task`, `handoff`, `decision`, `sprint`,
//! `epic`.

use super::*;

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
    /// Details: what done means, links, context.
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
        /// What is to be done, in one line.
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
        /// Only tasks of this category.
        #[arg(long)]
        category: Option<String>,
        /// Repeatable: all of them.
        #[arg(long)]
        label: Vec<String>,
        /// Only tasks assigned to this agent.
        #[arg(long)]
        assignee: Option<String>,
        /// Only the ready queue (as `got ready`).
        #[arg(long, conflicts_with_all = ["status", "blocked"])]
        ready: bool,
        /// Only tasks that cannot proceed (as `got blocked`).
        #[arg(long)]
        blocked: bool,
        /// At most this many tasks (with --after, the next page).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this id (the last one of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// One task with its dependencies, dependents, notes and history count.
    Show {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
    },
    /// Start work: in progress, assigned to you.
    Start {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
    },
    /// Complete a task.
    Complete {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// What went well, what did not.
        #[arg(long)]
        retrospective: Option<String>,
    },
    /// Block a task by hand.
    Block {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// What the task waits for, in a few words.
        #[arg(long)]
        reason: String,
    },
    /// Unblock a task blocked by hand.
    Unblock {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
    },
    /// Change fields of a task.
    Update {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// A new title.
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
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// Delete even if other tasks depend on it (their edges go too).
        #[arg(long)]
        force: bool,
    },
    /// Append a timestamped note.
    Note {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// The note: what you found, tried or decided.
        text: String,
    },
    /// Make ID depend on OTHER (refused, naming the cycle, if it would close one).
    Depends {
        /// The task that waits.
        id: String,
        /// The task it waits on.
        #[arg(long, value_name = "OTHER")]
        on: String,
        /// Remove the dependency instead.
        #[arg(long)]
        remove: bool,
    },
    /// Claim a ready task, atomically: of racing agents exactly one wins; the
    /// others exit 4 naming the winner.
    Claim {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
        id: String,
        /// How long the claim holds without renewal (90s, 30m, 2h; 0: forever).
        #[arg(long, default_value = "1h")]
        lease: String,
    },
    /// Give a claimed task back (pending, unassigned).
    Release {
        /// The task's id, like T-1a2b3c4d5e (a unique prefix of 4+ characters after T- will do).
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
        /// Claim the task for you, atomically (N agents asking at once get N different tasks).
        #[arg(long)]
        claim: bool,
        /// With --claim: how long the claim holds without renewal (90s, 30m, 2h; 0: forever).
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
        /// The task handed on.
        task: String,
        /// The agent taking it over.
        #[arg(long)]
        to: String,
        /// The agent handing it over (default: --agent).
        #[arg(long)]
        from: Option<String>,
        /// What the other agent should do.
        #[arg(long)]
        instructions: String,
        /// A JSON object: branch, files_modified, files_to_review, blockers, notes.
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
    },
    /// Accept a handoff made to you.
    Accept {
        /// The handoff's id, like H-1a2b3c4d5e.
        id: String,
    },
    /// Complete a handoff you accepted.
    Complete {
        /// The handoff's id.
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
        /// The handoff's id.
        id: String,
        /// Why you cannot take it.
        #[arg(long)]
        reason: String,
    },
    /// Handoffs, optionally by status and target agent.
    List {
        /// initiated, accepted, completed or rejected.
        #[arg(long)]
        status: Option<String>,
        /// Only handoffs to this agent.
        #[arg(long)]
        to: Option<String>,
        /// At most this many handoffs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One handoff.
    Show {
        /// The handoff's id.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DecisionCmd {
    /// Record a decision.
    #[command(
        after_help = "Example:\n  got decision log \"Zero-fill segments\" --rationale \"fallocate extents journal on first write\" --alternative fallocate --affects T-4k2m"
    )]
    Log {
        /// The decision, in one line.
        title: String,
        /// Why it was decided so.
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
        /// At most this many decisions, newest first.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One decision with what it affects.
    Show {
        /// The decision's id, like D-1a2b3c4d5e.
        id: String,
    },
    /// The decisions that affect a task (or any entity), oldest first.
    Why {
        /// The task (or any entity) whose decisions to show.
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SprintCmd {
    /// Create a sprint (numbered one past the highest unless --number).
    Create {
        /// The sprint's name or goal, in one line.
        title: String,
        /// The sprint's number (default: one more than the highest).
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
    Show {
        /// The sprint's id.
        id: String,
    },
    /// available or blocked -> in_progress.
    Start {
        /// The sprint's id.
        id: String,
    },
    /// -> completed.
    Complete {
        /// The sprint's id.
        id: String,
    },
    /// Claim a sprint (exactly one of racing agents wins; the others exit 4).
    Claim {
        /// The sprint's id.
        id: String,
    },
    /// Give a claimed sprint back.
    Release {
        /// The sprint's id.
        id: String,
        /// Release a sprint someone else holds.
        #[arg(long)]
        force: bool,
    },
    /// Put a task in a sprint.
    Add {
        /// The sprint's id.
        sprint: String,
        /// The task that joins it.
        task: String,
    },
    /// Sprint goals.
    #[command(subcommand)]
    Goal(GoalCmd),
}

#[derive(Subcommand, Debug)]
pub enum GoalCmd {
    /// Add a goal.
    Add {
        /// The sprint's id.
        sprint: String,
        /// The goal, in one line.
        description: String,
    },
    /// The goals, numbered.
    List {
        /// The sprint's id.
        sprint: String,
    },
    /// Mark goal N (as `goal list` numbers it) done.
    Complete {
        /// The sprint's id.
        sprint: String,
        /// The goal's number, from 1, as `got sprint goal list` shows it.
        n: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum EpicCmd {
    /// Create an epic.
    Create {
        /// The epic's name, in one line.
        title: String,
        /// A phase (repeatable, in order).
        #[arg(long = "phase", value_name = "TEXT")]
        phases: Vec<String>,
    },
    /// Epics with their progress.
    List,
    /// One epic: sprints, tasks, progress.
    Show {
        /// The epic's id.
        id: String,
    },
}
