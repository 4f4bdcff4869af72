//! # Switchboard engine
//!
//! The whole Switchboard real-time protocol — upgrade decisions, authentication,
//! subscriptions with filters, channels, rooms, direct messages, rate limits,
//! heartbeats, host calls for storage and the server API — as one deterministic,
//! sans-IO state machine. It never reads a clock, a socket or a random source: hosts
//! pass `now` (epoch milliseconds) and inputs in, and execute the [`Action`]s that come
//! out. Same inputs, same outputs, byte for byte, natively and in WebAssembly.
//!
//! ## The host loop
//!
//! ```
//! use engine::{Action, Config, ConnId, Engine, InFrame, Input, Millis, UpgradeRequest};
//!
//! let mut engine = Engine::new(Config::default()).unwrap();
//! let now = Millis(1_700_000_000_000);
//!
//! // An upgrade request arrives: the engine decides.
//! let request = UpgradeRequest { path: "/".into(), peer: "127.0.0.1".into(),
//!                                client_id: "c1".into(), ..Default::default() };
//! engine.handle(now, Input::Open { conn: ConnId(1), request }).unwrap();
//! // A frame arrives.
//! engine.handle(now, Input::Frame { conn: ConnId(1),
//!                                   frame: InFrame::Text(r#"{"type":"ping","requestId":1}"#) }).unwrap();
//! // Execute what it asks for.
//! while let Some(action) = engine.poll_action() {
//!     match action {
//!         Action::Accept { .. } => { /* finish the handshake */ }
//!         Action::Reject { status, body, .. } => { /* answer HTTP `status` with `body` */ let _ = (status, body); }
//!         Action::Send { frame, .. } => println!("{}", frame.as_text().unwrap()),
//!         Action::SendMany { conns, frame } => { /* same bytes to each */ let _ = (conns, frame); }
//!         Action::Ping { .. } | Action::Close { .. } => { /* socket control */ }
//!         Action::Call { .. } => { /* do the I/O, then feed Input::Completed */ }
//!         Action::CommandResult { .. } => { /* answer the admin request */ }
//!         Action::Respond { .. } => { /* answer the held HTTP request (long-polling) */ }
//!         Action::Cluster { .. } => { /* publish to the other nodes (cluster mode only) */ }
//!     }
//! }
//! // Sleep until the next deadline, then feed Input::Timeout.
//! let wake_at = engine.poll_timeout();
//! assert_eq!(wake_at, Some(Millis(1_700_000_030_000))); // first heartbeat ping
//! ```
//!
//! Rules for hosts: feed `Closed` after executing a `Close` (or when the socket dies);
//! answer every `Call` with `Completed` (late answers are dropped), including
//! [`HostRequest::Fetch`] (an HTTPS GET of a key source: the engine decides what and
//! when, the host only reports status, body and `Cache-Control`); report outbound
//! queue sizes with `Backpressure` so the slow-consumer policy can act; match each
//! `CommandResult` to its command by `tag` (the resource-write commands
//! [`Command::Insert`], [`Command::Update`] and [`Command::Delete`] are answered only
//! when their storage `Call` completes or times out); hand plain HTTP requests on the
//! paths [`Engine::serves_http`] names to the engine as `Input::Http` and write each
//! `Respond` to its request (it may come later: a held long-poll); in cluster mode
//! ([`Engine::enable_cluster`]) carry each `Cluster` message to the other nodes and
//! feed theirs as `Input::Cluster`, except the stream requests
//! ([`cluster::ClusterMessage::is_broker_request`]: `Append`, `Fetch`), which the host
//! runs on the shared broker (the `Sequenced` publication back to every node, this one
//! included; `ClusterEvent::Fetched`).

//!
//! The engine logs through the [`log`](https://docs.rs/log) facade (key-source fetches
//! and their failures); hosts route the records to their own logger.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod auth;
pub mod backpressure;
pub mod broker;
pub mod cluster;
pub mod command;
pub mod compile;
#[cfg(test)]
mod compile_count;
pub mod config;
pub mod connection;
pub mod deployment;
pub mod endpoint;
pub mod error;
pub mod filter;
pub mod guard;
pub mod handshake;
pub mod hostcall;
mod hub;
mod machine;
pub mod metrics;
pub mod namespace;
pub mod protocol;
pub mod rate;
pub mod routes;
mod sio_session;
pub mod store;
mod tenant;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod timers;
pub mod timestamp;
pub mod types;
pub mod validation;
pub mod vocabulary;

pub use command::{Command, CommandError};
pub use compile::CompiledConfig;
pub use config::{ChangeKind, CodecKind, Config};
pub use connection::ConnectionSnapshot;
pub use error::{close, ApiMisuse, ConfigError, ErrorCode};
pub use hostcall::{
    FetchRequest, FetchResponse, HostCapabilities, HostRequest, HostResult, StoreError,
    StoreErrorKind, StoreOutcome, StoreRequest,
};
pub use machine::{Action, Engine, Input, POLL_CONN_BASE};
pub use protocol::{Frame, InFrame, ServerMessage};
pub use types::{ConnId, Millis, OpId, UpgradeRequest, User};
