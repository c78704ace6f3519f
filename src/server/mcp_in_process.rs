//! `got mcp` without a process, for tests and the fuzzer: the real rmcp
//! service over in-memory pipes, driven in the calling thread.

use super::mcp::Mcp;
use crate::Store;
use rmcp::ServiceExt;
use serde_json::json;

/// `got mcp` without a process: the real rmcp service, over in-memory pipes,
/// run in the calling thread. Bytes go in as a client writes them to stdin;
/// what comes back is every line the server wrote to stdout. So a test or the
/// fuzzer drives rmcp's line reading and parsing, the lifecycle (a session
/// starts before `initialize`, as a process does) and the handler, all as
/// `got mcp` runs them.
///
/// Waiting is event-driven: after each request among the bytes, the driver
/// reads until that request's response has come (one request in flight at a
/// time, as a plain client does); after the last line it sends a `ping` of its
/// own and reads until that is answered, so lines that get no reply
/// (notifications, lines rmcp ignores) are waited for too. Nothing sleeps on a
/// clock: [`InProcessMcp::ANSWER_WITHIN`] only bounds a server that never
/// answers.
pub struct InProcessMcp {
    rt: tokio::runtime::Runtime,
    handler: Mcp,
    session: Session,
    /// Ids of the driver's own requests (`ping` probes and [`InProcessMcp::request`]).
    next_id: u64,
}

/// One session: the client's ends of the server's stdin and stdout.
struct Session {
    to_server: tokio::io::DuplexStream,
    from_server: tokio::io::BufReader<tokio::io::DuplexStream>,
    /// The start of a line whose end has not been read yet (a read cut short
    /// by a write resumes it).
    partial: Vec<u8>,
    /// The server closed its stdout.
    ended: bool,
    served: tokio::task::JoinHandle<()>,
}

/// What the server wrote in answer to some bytes.
#[derive(Debug, Default)]
pub struct McpAnswer {
    /// What rmcp reads each line as, for the lines written to its stdin, in
    /// order (the driver's probe left out). When the session ended, the lines
    /// after its end were written but not read.
    pub sent: Vec<McpLine>,
    /// Every line the server wrote, in order, without its newline (the answer
    /// to the driver's probe left out).
    pub lines: Vec<Vec<u8>>,
    /// The server closed its stdout: the session is over (rmcp ends a session
    /// whose first message is not a request). Nothing more is read until
    /// [`InProcessMcp::restart`].
    pub ended: bool,
}

/// What rmcp's stdio transport reads one line as.
#[derive(Clone, Debug, PartialEq)]
pub enum McpLine {
    /// A request, answered with this id (as the server writes it back: `1.0`
    /// is answered as `1`).
    Request {
        id: serde_json::Value,
        method: String,
    },
    /// A notification, or a response or an error from the client: no answer.
    Message,
    /// Empty, not JSON (ignored), or JSON that is not a JSON-RPC message
    /// (answered "Invalid request", without an id).
    Unreadable,
}

impl McpLine {
    /// Reads `line` as rmcp's stdio transport does (a `\r\n` ending, a UTF-8
    /// byte order mark, the same parser).
    pub fn of(line: &[u8]) -> McpLine {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        match serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(line) {
            Ok(rmcp::model::JsonRpcMessage::Request(r)) => McpLine::Request {
                id: serde_json::to_value(&r.id).unwrap_or_default(),
                method: r.request.method().to_string(),
            },
            Ok(_) => McpLine::Message,
            Err(_) => McpLine::Unreadable,
        }
    }

    fn answered_by(&self) -> Option<&serde_json::Value> {
        match self {
            McpLine::Request { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Bytes as text for a message, cut short.
fn clipped(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(1000) {
        Some((at, _)) => format!("{:?}… ({} bytes)", &s[..at], b.len()),
        None => format!("{s:?}"),
    }
}

/// The id of a response or error the server wrote (not of a request of its own).
fn response_id(line: &[u8]) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    if v.get("method").is_some() {
        return None;
    }
    v.get("id").cloned()
}

impl Session {
    /// Writes `lines` (each ending in a newline, with what rmcp reads it as)
    /// one by one; after a request, reads until its response has come before
    /// writing the next. Every line read goes to `out`, except the response
    /// to the `skip` id. Returns at the end, or when the server closes stdout.
    async fn exchange(
        &mut self,
        lines: Vec<(Vec<u8>, McpLine)>,
        skip: &serde_json::Value,
        out: &mut McpAnswer,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut queue = lines.into_iter();
        // The line being written, how much of it is written, and its kind.
        let mut writing: Option<(Vec<u8>, usize, McpLine)> = None;
        let mut awaited: Option<serde_json::Value> = None;
        // The server stopped reading (its session ended): keep reading what it
        // wrote until it closes stdout.
        let mut write_closed = false;
        loop {
            if self.ended {
                out.ended = true;
                return Ok(());
            }
            if writing.is_none() && awaited.is_none() && !write_closed {
                match queue.next() {
                    Some((line, id)) => writing = Some((line, 0, id)),
                    None => return Ok(()),
                }
            }
            let pending: &[u8] = match &writing {
                Some((line, at, _)) if !write_closed => &line[*at..],
                _ => &[],
            };
            tokio::select! {
                // Reading first: what the server wrote is taken before more
                // is written, so its stdout never fills up.
                biased;
                r = self.from_server.read_until(b'\n', &mut self.partial) => {
                    if r? == 0 {
                        if !self.partial.is_empty() {
                            out.lines.push(std::mem::take(&mut self.partial));
                        }
                        self.ended = true;
                        continue;
                    }
                    if self.partial.last() != Some(&b'\n') {
                        // The end of stdout without a newline: the next read
                        // returns 0.
                        continue;
                    }
                    let mut line = std::mem::take(&mut self.partial);
                    line.pop();
                    let id = response_id(&line);
                    if id.is_some() && id == awaited {
                        awaited = None;
                    }
                    if id.as_ref() != Some(skip) {
                        out.lines.push(line);
                    }
                }
                r = self.to_server.write(pending), if !pending.is_empty() => {
                    match r {
                        Ok(n) => {
                            let (line, at, _) = writing.as_mut().expect("a line is being written");
                            *at += n;
                            if *at == line.len() {
                                let (_, _, kind) = writing.take().expect("a line is being written");
                                awaited = kind.answered_by().cloned();
                                if awaited.as_ref() != Some(skip) {
                                    out.sent.push(kind);
                                }
                            }
                        }
                        // Nothing more reaches the server: its session
                        // ended, and only the end of its stdout is left.
                        Err(_) => {
                            write_closed = true;
                            writing = None;
                            awaited = None;
                        }
                    }
                }
            }
        }
    }
}

impl InProcessMcp {
    /// How long an answer may take before the driver calls it missing: only
    /// a server that never answers (a lost response, a hang) waits this long.
    pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

    /// A server on `store` for `agent`, its session not yet initialized.
    pub fn new(store: Store, agent: String) -> std::io::Result<InProcessMcp> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handler = Mcp::new(store, agent);
        let session = Self::start(&rt, &handler);
        Ok(InProcessMcp {
            rt,
            handler,
            session,
            next_id: 1,
        })
    }

    fn start(rt: &tokio::runtime::Runtime, handler: &Mcp) -> Session {
        const PIPE_BYTES: usize = 64 << 10;
        let (to_server, stdin) = tokio::io::duplex(PIPE_BYTES);
        let (stdout, from_server) = tokio::io::duplex(PIPE_BYTES);
        let handler = handler.clone();
        // As `run` serves stdio; a session that never began drops its pipes,
        // which closes stdout.
        let served = rt.spawn(async move {
            if let Ok(running) = handler.serve((stdin, stdout)).await {
                let _ = running.waiting().await;
            }
        });
        Session {
            to_server,
            from_server: tokio::io::BufReader::new(from_server),
            partial: Vec::new(),
            ended: false,
            served,
        }
    }

    /// Closes this session's stdin (the server finishes it as at the end of
    /// stdin) and starts a new one, not yet initialized, on the same store.
    pub fn restart(&mut self) {
        let new = Self::start(&self.rt, &self.handler);
        let old = std::mem::replace(&mut self.session, new);
        let Session {
            to_server, served, ..
        } = old;
        drop(to_server);
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(Self::ANSWER_WITHIN, served).await });
    }

    /// Whether the server closed this session's stdout.
    pub fn ended(&self) -> bool {
        self.session.ended
    }

    fn fresh_id(&mut self, what: &str) -> serde_json::Value {
        let id = format!("got-in-process-{what}-{}", self.next_id);
        self.next_id += 1;
        json!(id)
    }

    /// Writes `bytes` to the server's stdin, as a client would (a newline
    /// added if they do not end in one), and returns every line it wrote in
    /// answer: each request among the lines answered, then the driver's own
    /// `ping` answered. `Err` (`TimedOut`) if an answer did not come within
    /// [`Self::ANSWER_WITHIN`], naming what was sent and what came; the
    /// session is then of no more use ([`Self::restart`]).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<McpAnswer> {
        let mut lines: Vec<(Vec<u8>, McpLine)> = Vec::new();
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            let mut line = piece.to_vec();
            if line.last() != Some(&b'\n') {
                line.push(b'\n');
            }
            let kind = McpLine::of(&line);
            lines.push((line, kind));
        }
        let probe = self.fresh_id("probe");
        let ping = json!({"jsonrpc": "2.0", "id": probe, "method": "ping"});
        let mut ping = ping.to_string().into_bytes();
        ping.push(b'\n');
        let kind = McpLine::Request {
            id: probe.clone(),
            method: "ping".into(),
        };
        lines.push((ping, kind));
        let mut out = McpAnswer::default();
        let session = &mut self.session;
        let r = self.rt.block_on(async {
            tokio::time::timeout(
                Self::ANSWER_WITHIN,
                session.exchange(lines, &probe, &mut out),
            )
            .await
        });
        match r {
            Ok(Ok(())) => Ok(out),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer within {:?} to {}; the server wrote [{}]",
                    Self::ANSWER_WITHIN,
                    clipped(bytes),
                    out.lines
                        .iter()
                        .map(|l| clipped(l))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// Sends the request `method` with `params` (an id of the driver's) and
    /// returns its response. `Err` if the session ended or no response came.
    pub fn request(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        let id = self.fresh_id("request");
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let answer = self.send(msg.to_string().as_bytes())?;
        answer
            .lines
            .iter()
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .find(|v| v.get("method").is_none() && v.get("id") == Some(&id))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "no response to {method} (the session ended: {})",
                        answer.ended
                    ),
                )
            })
    }
}
