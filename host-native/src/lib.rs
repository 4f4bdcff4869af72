//! # switchboard: the native Switchboard server
//!
//! The sans-IO [`engine`] on tokio: hyper serves plain HTTP and WebSocket upgrades on
//! one port, [`transport`] speaks WebSocket (frames encoded once per fan-out, one
//! vectored write per connection and actor turn), one actor task owns the engine, and a
//! store thread runs SQLite. The host decides nothing about the protocol: it moves
//! bytes, clocks and storage results in and executes the engine's actions.
//!
//! ```text
//!  socket ──► connection task ──► actor (Engine) ──► store thread (SQLite)
//!     ▲          (reader)            │    ▲                 │
//!     └──── outbound queue ◄─────────┘    └── Completed ────┘
//!          (written by the actor at the end of its turn)
//! ```
//!
//! Embedding: [`start`] a [`Deployment`], or use [`ServerBuilder`] to register an async
//! guard callback for resources with `hostGuards` ([`guard`]).
//!
//! Modules: [`config`] (TOML/JSON deployment), [`server`] (start + graceful shutdown),
//! [`http`] (routing, health, metrics), [`admin`] (admin API), [`console`] (web console), [`ws`] (upgrades and
//! connection tasks), [`actor`] (the engine loop), [`store`] (SQLite), [`streams`] (durable channel history), [`metrics`]
//! (Prometheus), [`tls`], [`shutdown`] (signals), [`cli`], [`banner`] (what `serve` prints at start), [`token`] (dev JWTs),
//! [`ids`] (randomness), [`outbound`] (per-connection queue), [`guard`] (host guard
//! callback), [`testctl`] (the test control channel, off unless
//! `SWITCHBOARD_TEST_CONTROL=1`), [`fetch`] (key-source HTTP GETs for JWKS / OpenID
//! discovery).
//!
//! Shared plain types sit in leaf modules named after what they own, so the module
//! graph has no cycles: [`mailbox`] (the actor's messages and handle), [`response`]
//! (HTTP response helpers of every endpoint), [`inbound`] (a client message),
//! [`codec`] (RFC 6455 framing), [`clock`] (wall and test clocks), [`test_session`]
//! (the test control channel's shared state), [`store::StoreKind`]. The router
//! ([`http`]) depends on the endpoints ([`admin`], [`console`], [`polling`], [`testctl`],
//! [`ws`]), the endpoints on [`state`] and the leaves, [`state`] only on leaves.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod actor;
pub mod admin;
pub mod banner;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod cluster_streams;
pub mod codec;
pub mod config;
pub mod console;
pub mod fetch;
pub mod guard;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod inbound;
pub mod mailbox;
pub mod metrics;
pub mod outbound;
pub mod polling;
pub mod response;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod streams;
pub mod test_session;
pub mod testctl;
pub mod tls;
pub mod token;
pub mod transport;
pub mod writers;
pub mod ws;

pub use config::Deployment;
pub use guard::{GuardAction, GuardCallback, GuardDecision, GuardRequest};
pub use server::{start, RunningServer, ServerBuilder};
