//! `got mcp`: got as MCP tools over stdio, on the official SDK (`rmcp`,
//! pinned in Cargo.toml). The SDK speaks the lifecycle: the `initialize`
//! handshake (protocol 2025-06-18, 2025-11-25) and the handshake-free flow of
//! 2026-07-28 (`server/discover`, per-request `_meta`). This file is the
//! handler: the server's identity, `tools/list` from `mcp_tools`, and
//! `tools/call`, which runs the tool on the blocking pool and answers once its
//! transaction is durable.
//!
//! A failed operation is a tool result with `isError: true` and the CLI's
//! message; only protocol faults (an unknown tool, a malformed request) are
//! JSON-RPC errors. Nothing but protocol messages reaches stdout. The process
//! ends when stdin closes.

use super::api::on_pool;
use super::mcp_tools::{self, TOOLS};
use crate::Store;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::json;
use std::sync::Arc;

pub use super::mcp_in_process::{InProcessMcp, McpAnswer, McpLine};

/// What the server tells a client about itself (the `instructions` a client
/// may put before the model).
const INSTRUCTIONS: &str = "got tracks the work of agents: tasks with dependencies, claims with leases, notes, handoffs between agents, decisions. The loop: next_task with claim=true takes the first ready task for you; add_note records what you find; complete_task finishes it (block_task if stuck, handoff_initiate to pass it on). Every write is on disk before its result returns.";

/// The MCP server: one open store, the default agent.
#[derive(Clone)]
pub struct Mcp {
    store: Arc<Store>,
    agent: String,
}

impl Mcp {
    pub fn new(store: Store, agent: String) -> Mcp {
        Mcp {
            store: Arc::new(store),
            agent,
        }
    }

    /// The tools, as `tools/list` gives them.
    pub fn tools() -> Vec<Tool> {
        TOOLS
            .iter()
            .map(|t| {
                Tool::new(t.name, t.description, t.schema())
                    .with_title(t.title)
                    .with_annotations(
                        ToolAnnotations::with_title(t.title)
                            .read_only(t.read_only)
                            .destructive(false)
                            .open_world(false),
                    )
            })
            .collect()
    }

    /// Runs one tool call to its result: the JSON on success, `isError` with
    /// the message on a failure; `Err` only for a tool that does not exist.
    pub async fn call(&self, req: CallToolRequestParams) -> Result<CallToolResult, ErrorData> {
        let Some(tool) = mcp_tools::find(&req.name) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "no tool {:?} (tools: {})",
                    req.name,
                    TOOLS.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                ),
                None,
            ));
        };
        let args = req.arguments.unwrap_or_default();
        let agent = self.agent.clone();
        let r = on_pool(self.store.clone(), move |s| {
            mcp_tools::call(s, &agent, tool.name, args)
        })
        .await;
        Ok(match r {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => {
                let (code, message) = e.parts();
                let mut r = CallToolResult::error(vec![ContentBlock::text(message)]);
                r.structured_content = Some(json!({"error": {"code": code, "message": message}}));
                r
            }
        })
    }
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("got", env!("CARGO_PKG_VERSION")).with_title("got"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Mcp::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.call(request).await.map(Into::into)
    }
}

/// Serves `store` over stdin and stdout until stdin closes.
pub fn run(store: Store, agent: String) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let r = rt.block_on(async move {
        let server = Mcp::new(store, agent);
        match server.serve(rmcp::transport::stdio_pipes()).await {
            Ok(running) => running
                .waiting()
                .await
                .map(|_| ())
                .map_err(std::io::Error::other),
            // Stdin closed before the session began: nothing to serve.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => Ok(()),
            Err(e) => Err(std::io::Error::other(e)),
        }
    });
    // Returns once every tool call on the pool has returned (a write in
    // flight finishes and is durable).
    drop(rt);
    r
}
