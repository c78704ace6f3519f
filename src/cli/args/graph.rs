//! The graph's own subcommands: `got entity`, `got edge`, `got query`.

use super::*;

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
    Get {
        /// The entity's id.
        id: String,
    },
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
        /// At most this many entities.
        #[arg(long)]
        limit: Option<usize>,
        /// Start after the entity with this id (the last of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
    },
    /// Delete an entity and its edges.
    Delete {
        /// The entity's id.
        id: String,
    },
}

/// Which edges a graph query follows.
#[derive(Args, Debug)]
pub struct Follow {
    /// Follow edges of this kind (repeatable; default: every kind).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,
    /// Follow edges out of each entity, into it, or both.
    #[arg(long, value_enum, default_value_t = Dir::Out)]
    pub direction: Dir,
}

#[derive(Subcommand, Debug)]
pub enum QueryCmd {
    /// The entities one edge away.
    Neighbors {
        /// The entity to start from.
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// A shortest path FROM ... TO (fewest edges).
    Path {
        /// The entity the path starts at.
        from: String,
        /// The entity the path ends at.
        to: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Everything reachable from an entity, breadth first, with its distance.
    Reach {
        /// The entity to start from.
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
        /// At most this many tasks.
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
        /// The entity the edge leaves.
        from: String,
        /// The edge's kind, e.g. depends_on.
        kind: String,
        /// The entity the edge reaches.
        to: String,
    },
    /// The edges of an entity.
    List {
        /// The entity whose edges to list.
        id: String,
        /// Only edges of this kind, e.g. `depends_on`.
        #[arg(long)]
        kind: Option<String>,
        /// Edges leaving the entity (out), reaching it (in), or both.
        #[arg(long, value_enum, default_value_t = Dir::Both)]
        direction: Dir,
    },
}
