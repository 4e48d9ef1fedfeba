//! # sixcast-proto
//!
//! The protocol of sixcast without I/O: no sockets, threads or async runtime. [`addr`] maps
//! channel names to IPv6 multicast groups, [`wire`] holds the codecs of data, control and
//! repair datagrams, [`crypto`] the keys, sealing and signatures, [`reliable`] the state
//! machines of reliable channels, [`gateway`] the election of a segment's gateways,
//! [`probe`] the probe of native reachability, [`relay_request`] a node's request for
//! relays and [`tunnel`] its tunnel to one, which take the time as an argument. Every failure is an
//! [`Error`] with a stable [`ErrorKind`].
//!
//! The `sixcast` crate drives all of this with its sockets and threads, and re-exports these
//! modules under the same paths.

pub mod addr;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod gateway;
pub mod probe;
#[doc(hidden)]
pub mod ratelimit;
pub mod reach;
pub mod relay;
pub mod relay_request;
pub mod reliable;
pub mod stratum0;
pub mod tunnel;
pub mod wire;

pub use addr::{Profile, Scope};
pub use error::{Error, ErrorKind, Result};
pub use wire::{NodeId, SenderLoss};
