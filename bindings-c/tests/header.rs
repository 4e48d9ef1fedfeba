//! `include/sixcast.h` is what cbindgen makes of the crate today: a stale header fails here.
//! `SIXCAST_UPDATE_HEADER=1 cargo test -p sixcast-c --test header` writes it anew.

use std::path::Path;

#[test]
fn the_header_is_fresh() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen reads the crate")
        .write(&mut generated);
    let path = crate_dir.join("include/sixcast.h");
    if std::env::var_os("SIXCAST_UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `SIXCAST_UPDATE_HEADER=1 cargo test -p sixcast-c --test header`",
        path.display()
    );
}
