//! The Node.js binding of [sixcast](https://github.com/sixcast/sixcast): IPv6 multicast group
//! messaging. A thin layer: it converts types and errors and adds Node idioms (promises, async
//! iteration, callbacks); all behaviour lives in the `sixcast` crate.
//!
//! The modules mirror the core's: [`addr`] (names to groups), [`wire`] (the datagram codec),
//! [`channel`] (`Context`, `Channel`), [`config`] (options), [`crypto`] (keys), [`error`] (error codes),
//! [`files`] (`FileReceiver`, and what `Channel.sendFile()` sends) and [`reachability`] (what
//! `Context.reachability()` reports).

pub mod addr;
pub mod channel;
pub mod config;
pub mod crypto;
pub mod error;
pub mod events;
pub mod files;
mod logging;
pub mod message;
pub mod reachability;
pub mod wire;
