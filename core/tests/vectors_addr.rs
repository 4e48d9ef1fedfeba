//! Conformance vectors for channel addressing: generates `tests/conformance/vectors/addresses.json`
//! from the library, fails when the checked-in file is stale, and re-reads the file the way other
//! languages' test runners will, checking every case against the library.

mod common;

use std::net::Ipv6Addr;

use serde_json::{Map, Value, json};
use sixcast::{
    ErrorKind, Profile, Result, Scope,
    addr::{
        DEFAULT_PORT, FLAG_RELAYED, LIBRECAST_PORT, MAX_NAME_LEN, group_addr, is_relayed,
        name_digest, parse_profile, relayed_addr,
    },
};

const FILE: &str = "addresses.json";

/// A channel name as the vectors spell it.
enum TestName {
    /// Given in full, as `name_hex` and `name_utf8`.
    Bytes(&'static [u8]),
    /// Too long to spell out: `byte` repeated `count` times, as `name_repeat`.
    Repeat { byte: u8, count: usize },
}

impl TestName {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Self::Bytes(bytes) => bytes.to_vec(),
            Self::Repeat { byte, count } => vec![byte; count],
        }
    }

    /// The name fields of a case: `name_hex` and `name_utf8`, or `name_repeat`.
    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        match *self {
            Self::Bytes(bytes) => {
                fields.insert("name_hex".into(), hex::encode(bytes).into());
                let utf8 = std::str::from_utf8(bytes).ok();
                fields.insert("name_utf8".into(), utf8.into());
            }
            Self::Repeat { byte, count } => {
                let repeat = json!({ "byte_hex": hex::encode([byte]), "count": count });
                fields.insert("name_repeat".into(), repeat);
            }
        }
        fields
    }
}

const NAMES: [TestName; 7] = [
    TestName::Bytes(b""),
    TestName::Bytes(b"webservers"),
    TestName::Bytes(b"a"),
    TestName::Bytes("Grüße, 世界 🚀".as_bytes()),
    TestName::Bytes(b"\x00\xff\xfe\x80"),
    TestName::Repeat {
        byte: b'a',
        count: 300,
    },
    TestName::Repeat {
        byte: b'a',
        count: MAX_NAME_LEN,
    },
];

/// The `(profile, rp)` inputs of `parse_profile` that every name and scope is derived under.
const PROFILES: [(&str, Option<&str>); 5] = [
    ("sixcast", None),
    ("ssm", None),
    ("embedded-rp", Some("2001:db8:5c::5/64")),
    ("embedded-rp", Some("2001:db8:5c::a/48")),
    ("librecast", None),
];

/// Inputs that must fail: `(profile, rp, name, error kind, why)`.
fn invalid_inputs() -> Vec<(
    &'static str,
    Option<&'static str>,
    TestName,
    ErrorKind,
    &'static str,
)> {
    let too_long = || TestName::Repeat {
        byte: b'a',
        count: MAX_NAME_LEN + 1,
    };
    let webservers = || TestName::Bytes(b"webservers");
    let mut inputs: Vec<_> = PROFILES
        .iter()
        .map(|&(profile, rp)| {
            (
                profile,
                rp,
                too_long(),
                ErrorKind::InvalidName,
                "name longer than MAX_NAME_LEN",
            )
        })
        .collect();
    inputs.extend([
        (
            "embedded-rp",
            Some("2001:db8:5c::1:5/64"),
            webservers(),
            ErrorKind::InvalidAddress,
            "RP has bits set between its prefix and its RIID",
        ),
        (
            "embedded-rp",
            Some("2001:db8:5c::/64"),
            webservers(),
            ErrorKind::InvalidAddress,
            "RIID 0 (the subnet-router anycast address)",
        ),
        (
            "embedded-rp",
            Some("ff0e::5/64"),
            webservers(),
            ErrorKind::InvalidAddress,
            "multicast RP",
        ),
        (
            "embedded-rp",
            Some("not-an-address/64"),
            webservers(),
            ErrorKind::InvalidAddress,
            "RP is not an IPv6 address",
        ),
        (
            "embedded-rp",
            Some("2001:db8:5c::5/0"),
            webservers(),
            ErrorKind::InvalidConfig,
            "prefix length 0",
        ),
        (
            "embedded-rp",
            Some("2001:db8:5c::5/65"),
            webservers(),
            ErrorKind::InvalidConfig,
            "prefix length above 64",
        ),
        (
            "embedded-rp",
            Some("2001:db8:5c::5"),
            webservers(),
            ErrorKind::InvalidConfig,
            "RP without a prefix length",
        ),
        (
            "embedded-rp",
            None,
            webservers(),
            ErrorKind::InvalidConfig,
            "embedded-rp without an RP",
        ),
        (
            "ssm",
            Some("2001:db8:5c::5/64"),
            webservers(),
            ErrorKind::InvalidConfig,
            "RP given to a profile other than embedded-rp",
        ),
        (
            "bogus",
            None,
            webservers(),
            ErrorKind::InvalidConfig,
            "unknown profile",
        ),
    ]);
    inputs
}

const COMMENT: [&str; 13] = [
    "sixcast addressing vectors: channel name -> IPv6 multicast group. Rules and byte diagrams: \
     docs/addressing.md.",
    "Generated by core/tests/vectors_addr.rs; do not edit by hand. Regenerate with \
     `SIXCAST_UPDATE_VECTORS=1 cargo test -p sixcast --test vectors_addr`.",
    "Names are bytes. A case gives its name either as `name_hex` (lowercase hex) plus `name_utf8` \
     (the same bytes as text, or null when they are not UTF-8), or as `name_repeat` \
     {byte_hex, count}: that one byte repeated count times.",
    "`profile` and `rp` are the inputs of parse_profile: rp is null except for embedded-rp, where \
     it is `address/prefix-length`. `scope` is link (nibble 2), site (5), org (8) or global (e).",
    "`address` is the original group and `relayed_address` the same group with its RELAYED bit \
     set (null for librecast, which has no relayed form and reports Unsupported). Addresses are \
     RFC 5952 text: compare them as parsed 16-byte addresses. `port` is the profile's default \
     UDP port.",
    "d = SHA3-256(name); gid(relayed) = 0x80000000 | (relayed ? 0x40000000 : 0) | \
     (big-endian u32 of d[0..4] & 0x1fffffff).",
    "sixcast: ff, 0x10|scope, flag byte (0x00, or 0x01 when relayed), d[0..13].",
    "ssm: ff, 0x30|scope, 10 zero bytes, gid as 4 big-endian bytes.",
    "embedded-rp: ff, 0x70|scope, RIID (low 4 bits of the RP), prefix length, the RP's first 8 \
     bytes masked to the prefix length, gid as 4 big-endian bytes.",
    "librecast: ff, 0x10|scope, BLAKE3-256(name)[0..14].",
    "`hash.digests` lists both digests of every name, to tell a hashing bug from a layout bug.",
    "`invalid` lists inputs for which parse_profile(profile, rp) or group_addr(name, profile, \
     scope) fails; `error` is the ErrorKind name and `why` says what is wrong.",
    "`constants` holds the public constants of the addressing module.",
];

fn generate_vectors() -> Value {
    let mut cases = Vec::new();
    for (profile_name, rp) in PROFILES {
        let profile = parse_profile(profile_name, rp).expect("vector profiles are valid");
        for scope in Scope::ALL {
            for name in &NAMES {
                let address = group_addr(&name.bytes(), &profile, scope).expect("valid name");
                let relayed = relayed_addr(address, &profile)
                    .ok()
                    .map(|relayed| relayed.to_string());
                let mut case = Map::new();
                case.insert("profile".into(), profile_name.into());
                case.insert("rp".into(), rp.into());
                case.insert("scope".into(), scope.name().into());
                case.extend(name.fields());
                case.insert("address".into(), address.to_string().into());
                case.insert("relayed_address".into(), relayed.into());
                case.insert("port".into(), profile.default_port().into());
                cases.push(Value::Object(case));
            }
        }
    }
    let invalid: Vec<Value> = invalid_inputs()
        .into_iter()
        .map(|(profile, rp, name, error, why)| {
            let mut case = Map::new();
            case.insert("profile".into(), profile.into());
            case.insert("rp".into(), rp.into());
            case.insert("scope".into(), Scope::Global.name().into());
            case.extend(name.fields());
            case.insert("error".into(), error.name().into());
            case.insert("why".into(), why.into());
            Value::Object(case)
        })
        .collect();
    let digests: Vec<Value> = NAMES
        .iter()
        .map(|name| {
            let bytes = name.bytes();
            let mut digest = name.fields();
            digest.insert("sha3_256".into(), hex::encode(name_digest(&bytes)).into());
            digest.insert(
                "blake3".into(),
                blake3::hash(&bytes).to_hex().as_str().into(),
            );
            Value::Object(digest)
        })
        .collect();
    json!({
        "_comment": COMMENT,
        "hash": {
            "sixcast": "SHA3-256 (FIPS 202)",
            "ssm": "SHA3-256 (FIPS 202)",
            "embedded-rp": "SHA3-256 (FIPS 202)",
            "librecast": "BLAKE3 (unkeyed hash mode, 32-byte output)",
            "digests": digests,
        },
        "constants": {
            "max_name_len": MAX_NAME_LEN,
            "default_port": DEFAULT_PORT,
            "librecast_port": LIBRECAST_PORT,
            "flag_relayed": FLAG_RELAYED,
        },
        "cases": cases,
        "invalid": invalid,
    })
}

/// Decodes the name of a case from `name_hex` or `name_repeat`, checking `name_utf8` on the way.
fn read_name(case: &Value) -> Result<Vec<u8>, String> {
    if let Some(repeat) = case.get("name_repeat") {
        let byte = repeat["byte_hex"]
            .as_str()
            .and_then(|text| hex::decode(text).ok());
        let count = repeat["count"]
            .as_u64()
            .and_then(|count| usize::try_from(count).ok());
        return match (byte.as_deref(), count) {
            (Some(&[byte]), Some(count)) => Ok(vec![byte; count]),
            _ => Err(format!("bad name_repeat {repeat}")),
        };
    }
    let bytes = case["name_hex"]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .ok_or("neither name_repeat nor a hex name_hex")?;
    let utf8 = std::str::from_utf8(&bytes).ok();
    if case["name_utf8"].as_str() != utf8 {
        return Err(format!(
            "name_utf8 {} disagrees with name_hex",
            case["name_utf8"]
        ));
    }
    Ok(bytes)
}

/// Derives a case's group from its inputs, as another language's runner would.
fn derive(case: &Value) -> Result<(Vec<u8>, Profile, Result<Ipv6Addr>), String> {
    let name = read_name(case)?;
    let profile_name = case["profile"].as_str().ok_or("no profile")?;
    let scope: Scope = case["scope"]
        .as_str()
        .ok_or("no scope")?
        .parse()
        .map_err(|e| format!("{e}"))?;
    let profile = match parse_profile(profile_name, case["rp"].as_str()) {
        Ok(profile) => profile,
        Err(err) => return Ok((name, Profile::default(), Err(err))),
    };
    let address = group_addr(&name, &profile, scope);
    Ok((name, profile, address))
}

/// Checks one valid case against the library.
fn check_case(case: &Value) -> Result<(), String> {
    let (_, profile, address) = derive(case)?;
    let address = address.map_err(|err| format!("the library refuses it: {err}"))?;
    let expected: Option<Ipv6Addr> = case["address"].as_str().and_then(|text| text.parse().ok());
    if expected != Some(address) {
        return Err(format!(
            "address {} but the library derives {address}",
            case["address"]
        ));
    }
    match (
        case["relayed_address"].as_str(),
        relayed_addr(address, &profile),
    ) {
        (None, Err(err)) if err.kind() == ErrorKind::Unsupported => {}
        (Some(text), Ok(relayed)) if text.parse() == Ok(relayed) => {
            if !is_relayed(relayed, &profile) || is_relayed(address, &profile) {
                return Err("is_relayed disagrees with the relayed address".into());
            }
        }
        (_, derived) => {
            let derived = derived.map_err(|err| err.kind());
            return Err(format!(
                "relayed_address {} but the library gives {derived:?}",
                case["relayed_address"]
            ));
        }
    }
    if case["port"].as_u64() != Some(u64::from(profile.default_port())) {
        return Err(format!(
            "port {} but the profile's port is {}",
            case["port"],
            profile.default_port()
        ));
    }
    Ok(())
}

/// Checks one invalid case: deriving it must fail with the named error kind.
fn check_invalid(case: &Value) -> Result<(), String> {
    let (_, _, address) = derive(case)?;
    let expected = case["error"]
        .as_str()
        .and_then(ErrorKind::from_name)
        .ok_or("bad error kind")?;
    match address {
        Err(err) if err.kind() == expected => Ok(()),
        Err(err) => Err(format!("expected {expected} but got {}: {err}", err.kind())),
        Ok(address) => Err(format!(
            "expected {expected} but the library derives {address}"
        )),
    }
}

/// Checks one digest entry against both hash functions.
fn check_digest(entry: &Value) -> Result<(), String> {
    let name = read_name(entry)?;
    let sha3 = hex::encode(name_digest(&name));
    let blake3 = blake3::hash(&name).to_hex();
    if entry["sha3_256"].as_str() != Some(&sha3) || entry["blake3"].as_str() != Some(&blake3) {
        return Err(format!(
            "digests differ from sha3_256 {sha3} and blake3 {blake3}"
        ));
    }
    Ok(())
}

/// Every problem found when checking a vectors document against the library.
fn verify_vectors(vectors: &Value) -> Vec<String> {
    common::vectors::check_sections(&[
        ("cases", &vectors["cases"], check_case),
        ("invalid", &vectors["invalid"], check_invalid),
        ("hash.digests", &vectors["hash"]["digests"], check_digest),
    ])
}

#[test]
fn addresses_json_is_fresh_and_every_case_holds() {
    common::vectors::check_file(FILE, &generate_vectors(), verify_vectors);
}

#[test]
fn a_hand_edited_vector_is_caught() {
    let mut vectors = generate_vectors();
    vectors["cases"][1]["address"] = "ff1e::1".into();
    vectors["cases"][2]["relayed_address"] = Value::Null;
    vectors["invalid"][0]["error"] = "InvalidConfig".into();
    let problems = verify_vectors(&vectors);
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        problems[0].starts_with("cases[1]: address"),
        "{problems:#?}"
    );
    assert!(
        problems[1].starts_with("cases[2]: relayed_address"),
        "{problems:#?}"
    );
    assert!(
        problems[2].starts_with("invalid[0]: expected InvalidConfig"),
        "{problems:#?}"
    );
}

#[test]
fn the_documented_examples_are_in_the_vectors() {
    let vectors = generate_vectors();
    let address_of = |profile: &str, name_hex: &str| {
        vectors["cases"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|case| {
                let matches = case["profile"] == profile
                    && case["scope"] == "global"
                    && case["name_hex"] == name_hex;
                matches.then(|| case["address"].as_str().unwrap_or_default().to_owned())
            })
    };
    let webservers = hex::encode("webservers");
    let expected = "ff1e:c0:1acf:916c:691a:a851:5b62:1339";
    assert_eq!(
        address_of("sixcast", &webservers).as_deref(),
        Some(expected)
    );
    let expected = "ff1e:81b4:7fc5:feea:3ac9:7831:f88c:46c";
    assert_eq!(
        address_of("librecast", &webservers).as_deref(),
        Some(expected)
    );
    let expected = "ff1e:af13:49b9:f5f9:a1a6:a040:4dea:36dc";
    assert_eq!(address_of("librecast", "").as_deref(), Some(expected));
}
