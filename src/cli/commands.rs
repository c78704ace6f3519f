//! The dispatch: each command to the function of its module (each resolves the
//! store, calls the library, prints).

use super::args::{Cli, Command, ImportFormat};
use super::ctx::Ctx;
use super::CmdResult;

pub fn dispatch(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        store_flag: cli.store,
        json: cli.json,
        quiet: cli.quiet,
        agent: cli.agent,
    };
    match cli.command {
        Command::Init => super::store::init(&ctx),
        Command::Migrate {
            accept_bad_checksums,
        } => super::transfer::migrate(&ctx, accept_bad_checksums),
        #[cfg(feature = "server")]
        Command::Serve {
            listen,
            token_file,
            max_connections,
            header_timeout,
        } => super::serve::serve(&ctx, listen, token_file, max_connections, &header_timeout),
        #[cfg(feature = "server")]
        Command::Mcp => super::serve::mcp(&ctx),
        Command::Setup {
            client,
            print,
            force,
            dir,
        } => super::setup::setup(&ctx, client, dir, print, force),
        Command::Demo { threads } => super::demo::demo(&ctx, threads),
        Command::Entity(c) => super::entities::entity(&ctx, c),
        Command::Edge(c) => super::entities::edge(&ctx, c),
        Command::History { id } => super::entities::history(&ctx, &id),
        Command::Query(q) => super::entities::query(&ctx, q),
        Command::Checkpoint => super::store::checkpoint(&ctx),
        Command::Stats => super::store::stats(&ctx),
        Command::Verify => super::store::verify(&ctx),
        Command::Repair(a) => match a.from_backup {
            Some(name) => super::store::repair_from_backup(&ctx, &name),
            None => super::store::repair(&ctx, a.truncate_at_corruption),
        },
        Command::Task(c) => super::tasks::task(&ctx, c),
        Command::Ready { limit } => super::tasks::ready(&ctx, limit),
        Command::Blocked => super::tasks::blocked(&ctx),
        Command::Handoff(c) => super::work::handoff(&ctx, c),
        Command::Decision(c) => super::work::decision(&ctx, c),
        Command::Sprint(c) => super::work::sprint(&ctx, c),
        Command::Epic(c) => super::work::epic(&ctx, c),
        Command::Dashboard => super::board::dashboard(&ctx),
        Command::Prime { limit } => super::board::prime(&ctx, limit),
        Command::Validate => super::store::validate(&ctx),
        Command::Backup(c) => super::store::backup(&ctx, c),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = super::args::Cli::command();
            clap_complete::generate(shell, &mut cmd, "got", &mut std::io::stdout());
            Ok(())
        }
        Command::Sync(a) => super::sync::sync(&ctx, a),
        Command::MergeDriver {
            base,
            ours,
            theirs,
            path,
        } => super::sync::merge_driver(&base, &ours, &theirs, path.as_deref()),
        Command::Hooks(c) => super::sync::hooks(&ctx, c),
        Command::Export { out } => super::transfer::export(&ctx, out),
        Command::Import {
            file,
            from,
            batch,
            accept_bad_checksums,
        } => match from {
            ImportFormat::GotJson => {
                super::transfer::import_got_json(&ctx, &file, accept_bad_checksums)
            }
            _ => super::transfer::import(&ctx, &file, from, batch),
        },
        Command::Graph { id, depth, format } => {
            // --json picks the JSON format.
            let format = if ctx.json {
                super::args::GraphFormat::Json
            } else {
                format
            };
            super::board::graph(&ctx, id, depth, format)
        }
    }
}
