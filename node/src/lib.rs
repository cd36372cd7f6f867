//! The `tessera` node: a hub's or help desk's records on its embedded store, fully
//! offline. This library holds everything; `main.rs` only calls [`cli::run`].
//!
//! Map: [`config`] (data directory), [`identity`] (`init`, `admin`), [`node`]
//! (`Node::transact`: one signed, durable envelope per action), [`materialize`]
//! (documents and the record index derived from the log), [`cli`] (arguments),
//! [`commands`] (what each command does), [`bundle_io`] (export/import), [`ui`], [`web`] (the operator's page).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod bundle_io;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod help_it;
pub mod identity;
pub mod import_csv;
pub mod keys;
pub mod materialize;
pub mod msg;
pub mod net_cmd;
pub mod node;
pub mod operators;
pub mod passphrase;
pub use tessera_store::trust_file;
pub mod ui;
pub mod web;

pub use node::Node;
