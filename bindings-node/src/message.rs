//! Received messages as JavaScript objects.
//!
//! A message is a plain object of ten properties. Defining them from native code
//! (`napi_define_properties`) took about a quarter of a receiving process's CPU at 64 bytes
//! (`perf record` on the suite's Node receiver), because V8 takes its slow path for every
//! property. A small JavaScript function that returns an object literal gets V8's fast path, so
//! messages are built by calling it, once compiled per JavaScript thread.

use std::cell::RefCell;

use napi::{
    Env, JsValue, Result,
    bindgen_prelude::{Buffer, FnArgs, Function, FunctionRef, ToNapiValue, Unknown},
    sys,
};
use napi_derive::napi;

/// A received message with where it came from and how it arrived.
#[napi(object, object_from_js = false, object_to_js = false)]
pub struct Message {
    /// The application bytes.
    pub payload: Buffer,
    /// The address the datagram came from.
    pub source: String,
    /// The UDP port the datagram came from.
    pub source_port: u16,
    /// The group the datagram was sent to: the channel's group or its relayed form.
    pub group: String,
    /// Index of the interface the datagram arrived on.
    pub interface: u32,
    /// Name of that interface.
    pub interface_name: String,
    /// The sending context's node id, 16 hex digits.
    pub sender: String,
    /// The sender's sequence number of this message on this channel (exact below 2^53).
    pub seq: f64,
    /// Whether a relay or gateway re-sent this message.
    pub relayed: bool,
    /// How the message arrived: `native`, `relay` or `gateway` (re-sent by this segment's
    /// Stratum 1 gateway).
    #[napi(ts_type = "string")]
    pub path: &'static str,
}

/// The builder's parameters, in the order of its source.
type Fields = FnArgs<(
    Buffer,
    String,
    u16,
    String,
    u32,
    String,
    String,
    f64,
    bool,
    &'static str,
)>;

/// Builds a message object from its fields (kept in step with [`Message`]).
const BUILDER_SOURCE: &str = "(function (payload, source, sourcePort, group, iface, \
     interfaceName, sender, seq, relayed, path) { return { payload, source, sourcePort, group, \
     interface: iface, interfaceName, sender, seq, relayed, path } })";

thread_local! {
    /// The builder of this thread's JavaScript environment, with that environment. A worker
    /// thread has an environment of its own; the reference lives as long as the thread, and is
    /// deliberately never released (its environment may be gone when the thread ends).
    static BUILDER: RefCell<Option<(usize, &'static FunctionRef<Fields, Unknown<'static>>)>> =
        const { RefCell::new(None) };
}

/// This thread's message builder for `env`, compiled on first use.
fn builder(env: &Env) -> Result<Function<'_, Fields, Unknown<'static>>> {
    let key = env.raw() as usize;
    let cached = BUILDER.with_borrow(|builder| {
        builder.and_then(|(owner, builder)| (owner == key).then_some(builder))
    });
    let builder = match cached {
        Some(builder) => builder,
        None => {
            let compiled: Function<'_, Fields, Unknown<'static>> =
                env.run_script(BUILDER_SOURCE)?;
            let builder: &'static _ = Box::leak(Box::new(compiled.create_ref()?));
            BUILDER.with_borrow_mut(|slot| *slot = Some((key, builder)));
            builder
        }
    };
    builder.borrow_back(env)
}

impl ToNapiValue for Message {
    unsafe fn to_napi_value(env: sys::napi_env, message: Self) -> Result<sys::napi_value> {
        let env = Env::from_raw(env);
        let fields = (
            message.payload,
            message.source,
            message.source_port,
            message.group,
            message.interface,
            message.interface_name,
            message.sender,
            message.seq,
            message.relayed,
            message.path,
        );
        Ok(builder(&env)?.call(fields.into())?.raw())
    }
}

impl From<sixcast::Message> for Message {
    fn from(message: sixcast::Message) -> Self {
        Self {
            payload: message.payload.into(),
            source: message.source.ip().to_string(),
            source_port: message.source.port(),
            group: message.group.to_string(),
            interface: message.interface,
            interface_name: message.interface_name.to_string(),
            sender: message.sender.to_string(),
            seq: message.seq as f64,
            relayed: message.relayed,
            path: message.path.name(),
        }
    }
}
