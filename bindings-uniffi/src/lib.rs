//! UniFFI bindings of sixcast for Kotlin, Swift and Python.
//!
//! This crate only converts: text for addresses, profiles and scopes, plain records for
//! configuration, messages and counters, objects for keys, and one [`SixcastError`] case per core `ErrorKind`.
//! All behaviour lives in the core. The modules mirror the core's: [`addr`], [`channel`],
//! [`config`], [`crypto`], [`files`], [`wire`] and [`error`], and [`logging`], which hands the
//! library's log to a logger of the application's.
//!
//! The foreign sources are generated from the built library by the `uniffi-bindgen` binary of
//! this crate (feature `bindgen`); see `bindings-uniffi/README.md`.

pub mod addr;
pub mod channel;
pub mod config;
pub mod crypto;
pub mod error;
pub mod events;
pub mod files;
pub mod logging;
pub mod wire;

pub use addr::{group_address, group_address_bytes, relayed_address};
pub use channel::{Channel, Context, Message, ProbeReport, Reachability, RelayOffer, Stats};
pub use config::{Config, default_config, validate_config};
pub use crypto::{
    ChannelKey, OpenedDatagram, PublicKey, SigningKey, Token, drop_reasons, open_datagram,
    seal_datagram,
};
pub use error::{SixcastError, raise_error_kind};
pub use files::{FileOutcome, FileReceiver, FileStats, SentFile};
pub use logging::{LogLevel, Logger, clear_logger, set_logger};
pub use wire::{
    BatchRecord, ControlMessage, Datagram, Manifest, NackRange, Repair, control_mac,
    decode_control, decode_datagram, decode_manifest, decode_repair, pack_messages,
};

uniffi::setup_scaffolding!();
