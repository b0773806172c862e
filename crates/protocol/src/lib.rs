//! The wire contract shared by latchkey's identity part and its app part.
//!
//! Everything here is pure: formats, identifiers, signatures and their verification. Nothing in
//! this crate opens a socket, a file or a database, so both sides (and real Clerk standing in for
//! our identity part) agree on one definition of every byte that crosses between them.

pub mod clerk;
pub mod id;
pub mod jwt;
pub mod time;
pub mod webhook;
