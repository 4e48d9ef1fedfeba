//! Shared conformance vectors: compare what the Rust code generates with the checked-in file, or
//! rewrite the file when `SIXCAST_UPDATE_VECTORS=1` is set.

use std::path::PathBuf;

/// The folder that holds the shared vector files.
pub(crate) fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/vectors")
}

/// The whole check of one vector file: it must equal what the library generates, and every
/// entry of the checked-in file must hold when `verify` checks it against the library.
pub(crate) fn check_file(
    file: &str,
    generated: &serde_json::Value,
    verify: fn(&serde_json::Value) -> Vec<String>,
) {
    check_or_update(file, generated);
    let problems = verify(&read(file));
    assert!(
        problems.is_empty(),
        "{file} disagrees with the library:\n{}",
        problems.join("\n")
    );
}

/// The checked-in `tests/conformance/vectors/<file>`, parsed.
pub(crate) fn read(file: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(vectors_dir().join(file)).expect("the vectors file is readable");
    serde_json::from_str(&text).expect("the vectors file is JSON")
}

/// Fails when `tests/conformance/vectors/<file>` differs from `generated`, telling how to refresh.
fn check_or_update(file: &str, generated: &serde_json::Value) {
    let path = vectors_dir().join(file);
    let mut text = serde_json::to_string_pretty(generated).expect("vectors serialize");
    text.push('\n');
    if std::env::var_os("SIXCAST_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).expect("write vectors");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is stale: regenerate the vectors with `SIXCAST_UPDATE_VECTORS=1 cargo test -p sixcast`",
        path.display(),
    );
}

/// Checks one vector entry: `Err` says what disagrees.
pub(crate) type CheckEntry = fn(&serde_json::Value) -> Result<(), String>;

/// Runs `check` over every entry of each named section (which must be a non-empty list) and
/// returns every problem found, each naming its section, index and the entry's `name` if any.
pub(crate) fn check_sections(sections: &[(&str, &serde_json::Value, CheckEntry)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (section, entries, check) in sections {
        match entries.as_array() {
            Some(entries) if !entries.is_empty() => {
                for (index, entry) in entries.iter().enumerate() {
                    if let Err(problem) = check(entry) {
                        let name = entry["name"]
                            .as_str()
                            .map(|name| format!(" {name:?}"))
                            .unwrap_or_default();
                        problems.push(format!("{section}[{index}]{name}: {problem}"));
                    }
                }
            }
            _ => problems.push(format!("{section} is missing or empty")),
        }
    }
    problems
}

/// The bytes of `case[field]`, a hex string.
pub(crate) fn hex_field(case: &serde_json::Value, field: &str) -> Result<Vec<u8>, String> {
    case[field]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .ok_or_else(|| format!("{field} is not a hex string"))
}

/// The bytes of each item of `case[field]`, a list of hex strings.
pub(crate) fn hex_list(case: &serde_json::Value, field: &str) -> Result<Vec<Vec<u8>>, String> {
    case[field]
        .as_array()
        .ok_or_else(|| format!("{field} is not a list"))?
        .iter()
        .map(|item| item.as_str().and_then(|text| hex::decode(text).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{field} holds a non-hex item"))
}
