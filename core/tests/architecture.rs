//! The top-level modules of each crate (`sixcast` in `core/src`, `sixcast-proto` in
//! `core/proto/src`) import each other one way only: a module never reaches, through its
//! imports, back to itself. Read from the sources (test code left out), so that a new circle
//! fails here rather than in a reviewer's head.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// Top-level modules of the crate whose sources are in `src` (relative to `core/`), each with
/// the top-level modules of that crate its non-test code names.
fn imports(src: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let mut modules = BTreeMap::new();
    for entry in fs::read_dir(&src).expect("the sources are readable") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("");
        if ["lib", "bin"].contains(&name) {
            continue;
        }
        let mut names = BTreeSet::new();
        for file in rust_files(&path) {
            let code = fs::read_to_string(&file).expect("a source file is readable");
            names.extend(crate_paths(&without_tests(&code)));
        }
        modules.insert(name.to_owned(), names);
    }
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    for (name, names) in &mut modules {
        names.retain(|other| other != name && known.contains(other));
    }
    modules
}

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).expect("a module folder is readable") {
        let path = entry.expect("a directory entry").path();
        let test_file = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name == "tests.rs" || name.ends_with("_tests.rs"));
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") && !test_file {
            files.push(path);
        }
    }
    files
}

/// The code before its unit tests, without comments (doc links are not imports).
fn without_tests(code: &str) -> String {
    let code = code.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segment of every `crate::` path, including each branch of `crate::{a, b::c}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut segment_starts = true;
            for (index, character) in group.char_indices() {
                match character {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => segment_starts = true,
                    _ if depth == 1 && segment_starts && is_ident(character) => {
                        names.insert(ident_at(&group[index..]));
                        segment_starts = false;
                    }
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
            }
        } else {
            names.insert(ident_at(rest));
        }
    }
    names
}

fn is_ident(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_'
}

fn ident_at(text: &str) -> String {
    text.chars().take_while(|&c| is_ident(c)).collect()
}

/// A circle of imports, if any: a path from some module back to itself.
fn find_circle(modules: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        modules: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|seen| seen == name) {
            let mut circle = path[start..].to_vec();
            circle.push(name.to_owned());
            return Some(circle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name.to_owned());
        for next in modules.get(name).into_iter().flatten() {
            if let Some(circle) = visit(next, modules, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(name.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    modules
        .keys()
        .find_map(|name| visit(name, modules, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_each_other_one_way() {
    // The reading finds imports at all: the library's channel uses config and socket, the
    // protocol's crypto uses wire and error.
    for (src, module, uses) in [
        ("src", "channel", ["config", "socket"]),
        ("proto/src", "crypto", ["wire", "error"]),
    ] {
        let modules = imports(src);
        let names = &modules[module];
        assert!(
            uses.iter().all(|name| names.contains(*name)),
            "{module}: {names:?}"
        );
        if let Some(circle) = find_circle(&modules) {
            panic!("an import circle in {src}: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn a_circle_is_found() {
    let code = "use crate::{a::X, b};\nfn f() { crate::c::g(); } // crate::d\n";
    assert_eq!(
        crate_paths(&without_tests(code)),
        ["a", "b", "c"].map(String::from).into()
    );
    let modules: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(name, names)| {
        (
            name.to_owned(),
            names.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    assert_eq!(
        find_circle(&modules),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
}
