//! Shared conformance vectors: compare what the Rust code generates with the checked-in file, or
//! rewrite the file when `SIXCAST_UPDATE_VECTORS=1` is set.

use std::path::PathBuf;

/// The folder that holds the shared vector files.
pub(crate) fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/vectors")
}

/// The checked-in `tests/conformance/vectors/<file>`, parsed.
pub(crate) fn read(file: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(vectors_dir().join(file)).expect("the vectors file is readable");
    serde_json::from_str(&text).expect("the vectors file is JSON")
}

/// Fails when `tests/conformance/vectors/<file>` differs from `generated`, telling how to refresh.
pub(crate) fn check_or_update(file: &str, generated: &serde_json::Value) {
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
