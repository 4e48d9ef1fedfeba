//! Generates and checks `tests/conformance/vectors/errors.json`: every error kind with its
//! spelling in each language, and bad inputs with the kind they must raise everywhere.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use sixcast::{Config, Context, ErrorKind, NodeId, Scope, addr, wire};

/// `InvalidName` -> `INVALID_NAME`.
fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

fn kinds() -> Value {
    ErrorKind::ALL
        .iter()
        .map(|kind| {
            json!({
                "name": kind.name(),
                "python": format!("{}Error", kind.name()),
                "node": format!("ERR_SIXCAST_{}", upper_snake(kind.name())),
                "uniffi": kind.name(),
                "c": format!("SIXCAST_STATUS_{}", upper_snake(kind.name())),
                "go": format!("Err{}", kind.name()),
            })
        })
        .collect()
}

/// Applies one `set` entry of a config case; the keys are the binding-neutral field names.
fn apply(config: &mut Config, field: &str, value: &Value) {
    let number = || value.as_u64().expect("numeric field");
    let size = || usize::try_from(number()).expect("size fits usize");
    match field {
        "port" => config.port = Some(u16::try_from(number()).expect("port fits u16")),
        "hop_limit" => config.hop_limit = u8::try_from(number()).expect("hop limit fits u8"),
        "max_datagram_size" => config.max_datagram_size = size(),
        "max_message_size" => config.max_message_size = size(),
        "queue_capacity" => config.queue_capacity = size(),
        "reassembly_memory" => config.reassembly_memory = size(),
        "reassembly_timeout_ms" => config.reassembly_timeout = Duration::from_millis(number()),
        "linger_ms" => config.linger = Duration::from_millis(number()),
        "interfaces" => {
            config.interfaces = value
                .as_array()
                .expect("interface list")
                .iter()
                .map(|name| name.as_str().expect("interface name").to_owned())
                .collect();
        }
        other => panic!("no config field {other}"),
    }
}

/// Runs one case through the Rust API and returns the error kind it raised.
fn outcome(case: &Value) -> Option<ErrorKind> {
    let text = |key: &str| case[key].as_str().unwrap_or_default();
    let result = match text("op") {
        "group_address" => {
            let name = match case["name_repeat"].as_object() {
                Some(repeat) => vec![b'a'; repeat["count"].as_u64().unwrap() as usize],
                None => text("name_utf8").as_bytes().to_vec(),
            };
            addr::parse_profile(text("profile"), case["rp"].as_str()).and_then(|profile| {
                addr::group_addr(&name, &profile, text("scope").parse::<Scope>()?)
            })
        }
        .map(drop),
        "parse_profile" => addr::parse_profile(text("profile"), case["rp"].as_str()).map(drop),
        "parse_scope" => text("scope").parse::<Scope>().map(drop),
        "config" => {
            let mut config = Config::default();
            for (field, value) in case["set"].as_object().unwrap() {
                apply(&mut config, field, value);
            }
            config.validate()
        }
        "open_context" => {
            let mut config = Config::default();
            for (field, value) in case["set"].as_object().unwrap() {
                apply(&mut config, field, value);
            }
            // Every case here fails before a socket is bound.
            Context::new(config).map(drop)
        }
        "decode" => {
            let bytes = hex::decode(text("hex")).unwrap();
            wire::decode(&bytes).map(drop).map_err(sixcast::Error::from)
        }
        "pack" => {
            let messages: Vec<Vec<u8>> = case["messages_hex"]
                .as_array()
                .unwrap()
                .iter()
                .map(|message| hex::decode(message.as_str().unwrap()).unwrap())
                .collect();
            let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let max_datagram = case["max_datagram"].as_u64().unwrap() as usize;
            wire::pack(NodeId(1), 0, max_datagram, &messages).map(drop)
        }
        other => panic!("unknown op {other}"),
    };
    result.err().map(|err| err.kind())
}

fn cases() -> Vec<Value> {
    vec![
        json!({"op": "group_address", "name_repeat": {"byte_hex": "61", "count": addr::MAX_NAME_LEN + 1},
               "profile": "sixcast", "rp": null, "scope": "global"}),
        json!({"op": "group_address", "name_utf8": "x", "profile": "embedded-rp",
               "rp": "2001:db8:5c::/64", "scope": "global"}),
        json!({"op": "group_address", "name_utf8": "x", "profile": "embedded-rp",
               "rp": "2001:db8:5c::5/65", "scope": "global"}),
        json!({"op": "parse_profile", "profile": "nope", "rp": null}),
        json!({"op": "parse_profile", "profile": "embedded-rp", "rp": null}),
        json!({"op": "parse_profile", "profile": "embedded-rp", "rp": "not-an-address/64"}),
        json!({"op": "parse_scope", "scope": "galaxy"}),
        json!({"op": "config", "set": {"port": 0}}),
        json!({"op": "config", "set": {"hop_limit": 0}}),
        json!({"op": "config", "set": {"max_datagram_size": 10}}),
        json!({"op": "config", "set": {"max_datagram_size": 70_000}}),
        json!({"op": "config", "set": {"max_message_size": wire::MAX_MESSAGE_SIZE_LIMIT + 1}}),
        json!({"op": "config", "set": {"queue_capacity": 0}}),
        json!({"op": "config", "set": {"reassembly_timeout_ms": 0}}),
        json!({"op": "config", "set": {"reassembly_memory": 1024}}),
        json!({"op": "config", "set": {"interfaces": [""]}}),
        json!({"op": "config", "set": {"hop_limit": 1, "linger_ms": 0}}),
        json!({"op": "open_context", "set": {"interfaces": ["no-such-if0"]}}),
        json!({"op": "decode", "hex": ""}),
        json!({"op": "decode", "hex": "3663"}),
        json!({"op": "decode", "hex": "ffffffffffffffffffffffffffffffffffffffffffffffff"}),
        json!({"op": "pack", "max_datagram": 10, "messages_hex": ["00"]}),
        json!({"op": "pack", "max_datagram": 1232, "messages_hex": ["", "6869"]}),
    ]
}

fn generate() -> Value {
    let cases: Vec<Value> = cases()
        .into_iter()
        .map(|mut case| {
            case["error"] = outcome(&case).map_or(Value::Null, |kind| kind.name().into());
            case
        })
        .collect();
    json!({
        "_comment": [
            "sixcast error kinds and the bad inputs that raise them, for every language's tests.",
            "Generated by core/tests/vectors_errors.rs; regenerate with `SIXCAST_UPDATE_VECTORS=1 cargo test -p sixcast --test vectors_errors`.",
            "`kinds`: each stable ErrorKind `name` and how each binding spells it: the Python exception class under sixcast (a subclass of sixcast.Error), the Node `err.code`, the UniFFI error case (Kotlin SixcastException.<name>, Swift SixcastError.<name>), the C `SixcastStatus`, and the Go sentinel error for errors.Is.",
            "`cases`: `op` is what to call, the other fields its arguments; `error` is the kind it must raise, or null when it must succeed.",
            "Ops: group_address(name, profile, rp, scope) where the name is `name_utf8`, or `name_repeat.count` bytes of `name_repeat.byte_hex`; parse_profile(profile, rp); parse_scope(scope); config: a default configuration with the fields in `set` changed, then validated; open_context: opening a context with that configuration (these cases fail before any socket exists); decode(hex datagram); pack(max_datagram, messages_hex) with sender 1 and first sequence 0.",
            "Config field names are snake_case; `*_ms` fields are durations in milliseconds. Bindings spell fields their own way (camelCase in Node).",
        ],
        "kinds": kinds(),
        "cases": cases,
    })
}

#[test]
fn errors_json_is_fresh_and_every_case_holds() {
    common::vectors::check_file("errors.json", &generate(), |stored| {
        common::vectors::check_sections(&[("cases", &stored["cases"], check_case)])
    });
}

/// The case raises the kind it names (or succeeds when it names none).
fn check_case(case: &Value) -> Result<(), String> {
    let expected = case["error"].as_str().map(ErrorKind::from_name);
    let raised = outcome(case);
    match expected {
        Some(None) => Err(format!("unknown kind {}", case["error"])),
        Some(Some(kind)) if raised == Some(kind) => Ok(()),
        None if raised.is_none() => Ok(()),
        _ => Err(format!("expected {}, got {raised:?}", case["error"])),
    }
}

#[test]
fn every_kind_is_listed_with_distinct_spellings() {
    let generated = generate();
    let kinds = generated["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), ErrorKind::ALL.len());
    for language in ["python", "node", "uniffi", "c", "go"] {
        let mut spellings: Vec<_> = kinds.iter().map(|kind| kind[language].as_str()).collect();
        spellings.sort_unstable();
        spellings.dedup();
        assert_eq!(spellings.len(), kinds.len(), "{language}");
    }
    assert_eq!(kinds[0]["node"], "ERR_SIXCAST_INVALID_NAME");
    assert_eq!(kinds[0]["c"], "SIXCAST_STATUS_INVALID_NAME");
    assert_eq!(kinds[0]["go"], "ErrInvalidName");
    assert_eq!(upper_snake("UnknownInterface"), "UNKNOWN_INTERFACE");
}

#[test]
fn the_cases_cover_every_kind_raised_without_a_network() {
    let raised: Vec<_> = generate()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|case| case["error"].as_str().map(str::to_owned))
        .collect();
    for kind in [
        "InvalidName",
        "InvalidConfig",
        "InvalidAddress",
        "UnknownInterface",
        "Malformed",
    ] {
        assert!(
            raised.iter().any(|name| name == kind),
            "no case raises {kind}"
        );
    }
}
