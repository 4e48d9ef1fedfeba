//! # sixcast
//!
//! IPv6 multicast group messaging for ordinary applications. A *channel* is a name such as
//! `"webservers"`; sixcast hashes it into an IPv6 multicast group, joins the group on the host's
//! interfaces, and sends and receives *messages* on it. Small messages are packed many to a
//! datagram and large ones are fragmented, so one send reaches every receiver at the cost of one
//! datagram, however many receivers there are.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let context = sixcast::Context::new(sixcast::Config::default())?;
//! let channel = context.channel("webservers")?;
//! channel.join()?;
//! channel.send(b"restart nginx")?;
//! channel.flush()?;
//! match channel.recv_timeout(Duration::from_secs(1)) {
//!     Ok(message) => println!("{} from {}", String::from_utf8_lossy(&message.payload), message.source),
//!     Err(err) if err.kind() == sixcast::ErrorKind::Timeout => println!("nothing yet"),
//!     Err(err) => return Err(err),
//! }
//! # Ok::<(), sixcast::Error>(())
//! ```
//!
//! Async code awaits [`Channel::recv_async`] (or the [`Channel::messages`] stream) on any
//! runtime; the task waits in the channel's queue, not on a thread:
//!
//! ```no_run
//! # async fn listen() -> sixcast::Result<()> {
//! let context = sixcast::Context::new(sixcast::Config::default())?;
//! let channel = context.channel("webservers")?;
//! channel.join()?;
//! let message = channel.recv_async().await?;
//! println!("{} bytes from {}", message.payload.len(), message.source);
//! # Ok(())
//! # }
//! ```
//!
//! The modules follow the protocol's layers: [`addr`] maps names to groups, [`wire`] is the
//! datagram codec (no I/O), `socket` holds all operating-system socket code, and [`channel`]
//! ties them together behind [`Context`] and [`Channel`].

pub mod channel;
pub mod config;
pub mod discovery;
pub mod events;
pub mod files;
mod lead;
pub mod locate;
pub mod probe;
pub mod relay;
mod socket;
pub mod stratum0;
pub mod tunnel;

use sixcast_proto::ratelimit;
pub use sixcast_proto::{addr, crypto, error, gateway, reliable, wire};

pub use addr::{Profile, Scope};
pub use channel::{Channel, Context, Message, Reachability, Stats};
pub use config::Config;
pub use error::{Error, ErrorKind, Result};
pub use events::{CorePath, Event};
pub use gateway::Path;
pub use wire::{NodeId, SenderLoss};
