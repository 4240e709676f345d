//! `house-check [DIR ...]`: fails when a module of a crate depends on itself through other
//! modules of the same crate.
//!
//! Every package under the given folders (the current one by default) is read from each crate
//! root (`src/lib.rs`, `src/main.rs`, `src/bin/*.rs`, `src/bin/*/main.rs`), its modules found
//! through `mod` items. An edge goes from a module to each module of its crate that a `use`
//! or a path in its code names (`crate::`, `super::`, `self::`, a child's name); `#[cfg(test)]`
//! items do not count. A cycle is printed with the lines that make each of its edges.
//!
//! It also fails when a crate root does not deny clippy's `too_many_lines` outside tests (the
//! threshold, 100 lines, is in the workspace's `clippy.toml`), so no new crate escapes the line
//! limit; the test harnesses in [`LINE_LIMIT_NOT_YET`] are the named exceptions. The exit status is 1 on either finding; 0 when there is none, 2 when a file
//! cannot be read.

mod cycles;
mod lex;
mod modules;
mod scan;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::modules::{adjacency, display, read_crate, ModuleGraph, ModulePath};

/// The test harnesses the line limit does not bind yet: test code, whose longest functions (a
/// run's setup, the sale's invariant pass, the nemesis's fault table) are split one by one. The
/// crates that ship and every tool and test kit are bound.
const LINE_LIMIT_NOT_YET: &[&str] = &[
    "ticketd-checker",
    "ticketd-workload",
    "ticketd-sim",
    "ticketd-chaos",
];

/// Folders never searched for packages: build output, VCS data, fuzzing corpora.
const SKIPPED_DIRECTORIES: &[&str] = &["target", "corpus", "artifacts", "node_modules"];

fn main() -> ExitCode {
    let mut folders: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if folders.is_empty() {
        folders.push(PathBuf::from("."));
    }
    match check(&folders) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(error) => {
            eprintln!("house-check: {error}");
            ExitCode::from(2)
        }
    }
}

/// Checks every crate under `folders`; the number of findings (cycles, roots without the line
/// limit).
fn check(folders: &[PathBuf]) -> std::io::Result<usize> {
    let mut manifests = BTreeSet::new();
    for folder in folders {
        find_manifests(folder, &mut manifests)?;
    }
    let mut found = 0;
    let mut unlimited = 0;
    for manifest in manifests {
        let Some(package) = package_name(&std::fs::read_to_string(&manifest)?) else {
            continue;
        };
        let folder = manifest.parent().unwrap_or(Path::new("."));
        for (target, root) in crate_roots(folder)? {
            let graph = read_crate(&root)?;
            found += report(&format!("{package} ({target})"), &graph);
            let bound = !LINE_LIMIT_NOT_YET.contains(&package.as_str());
            if bound && !denies_long_functions(&std::fs::read_to_string(&root)?) {
                println!(
                    "{package} ({target}): {} does not deny clippy::too_many_lines: add \
                     #![cfg_attr(not(test), deny(clippy::too_many_lines))]",
                    root.display()
                );
                unlimited += 1;
            }
        }
    }
    if found > 0 {
        println!("house-check: {found} import cycle(s); break each by moving what both sides need into a module of its own");
    }
    if unlimited > 0 {
        println!("house-check: {unlimited} crate root(s) without the line limit");
    }
    Ok(found + unlimited)
}

fn find_manifests(folder: &Path, found: &mut BTreeSet<PathBuf>) -> std::io::Result<()> {
    let manifest = folder.join("Cargo.toml");
    if manifest.is_file() {
        found.insert(manifest);
    }
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let skipped = name.starts_with('.') || SKIPPED_DIRECTORIES.contains(&name.as_str());
        if entry.file_type()?.is_dir() && !skipped {
            find_manifests(&entry.path(), found)?;
        }
    }
    Ok(())
}

/// The `name` of a manifest's `[package]` table (a workspace-only manifest has none).
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = line.strip_prefix("name").map(str::trim_start) {
            if in_package && value.starts_with('=') {
                return Some(
                    value
                        .trim_start_matches('=')
                        .trim()
                        .trim_matches('"')
                        .to_string(),
                );
            }
        }
    }
    None
}

/// Whether a crate root's inner attributes deny `clippy::too_many_lines` (directly, or in a
/// `cfg_attr(not(test), deny(...))` list that may span lines): the text of its `#![...]`
/// attributes, comments aside, names the lint inside a `deny(`.
fn denies_long_functions(root: &str) -> bool {
    let mut attributes = String::new();
    let mut depth = 0usize;
    for line in root.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if depth == 0 && !code.starts_with("#![") {
            continue;
        }
        attributes.push_str(code);
        for c in code.chars() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    attributes.split("deny(").skip(1).any(|after| {
        let list = after.split(')').next().unwrap_or("");
        list.split(',')
            .any(|lint| lint.trim() == "clippy::too_many_lines")
    })
}

/// A package's crate roots by Cargo's conventions, each with its target's name.
fn crate_roots(folder: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let src = folder.join("src");
    let mut roots = Vec::new();
    for (target, file) in [("lib", "lib.rs"), ("bin", "main.rs")] {
        if src.join(file).is_file() {
            roots.push((target.to_string(), src.join(file)));
        }
    }
    let bins = src.join("bin");
    if bins.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&bins)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for path in entries {
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if path.extension().is_some_and(|e| e == "rs") {
                roots.push((format!("bin {name}"), path));
            } else if path.join("main.rs").is_file() {
                roots.push((format!("bin {name}"), path.join("main.rs")));
            }
        }
    }
    Ok(roots)
}

/// Prints a crate's cycles, each with the edges among its component's modules; their number.
fn report(name: &str, graph: &ModuleGraph) -> usize {
    let next = adjacency(graph);
    let found = cycles::tangles(&next);
    if found.is_empty() {
        println!("{name}: {} modules, no import cycle", graph.modules.len());
        return 0;
    }
    for tangle in &found {
        let shown: Vec<String> = tangle.witness.iter().map(|m| display(m)).collect();
        println!("{name}: import cycle: {}", shown.join(" -> "));
        for pair in tangle.witness.windows(2) {
            print_edge(graph, &pair[0], &pair[1]);
        }
        if tangle.members.len() + 1 > tangle.witness.len() {
            let members: Vec<String> = tangle.members.iter().map(|m| display(m)).collect();
            println!(
                "  and every edge among the modules that reach each other with it ({}):",
                members.join(", ")
            );
            for (from, to) in graph.edges.keys() {
                let inside = tangle.members.contains(from) && tangle.members.contains(to);
                let shown = tangle
                    .witness
                    .windows(2)
                    .any(|p| p[0] == *from && p[1] == *to);
                if inside && !shown {
                    print_edge(graph, from, to);
                }
            }
        }
    }
    found.len()
}

fn print_edge(graph: &ModuleGraph, from: &ModulePath, to: &ModulePath) {
    let at = graph
        .edges
        .get(&(from.clone(), to.clone()))
        .map(|places| {
            let mut places = places.clone();
            places.dedup();
            places.join(", ")
        })
        .unwrap_or_default();
    println!("    {} -> {}  at {at}", display(from), display(to));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_limit_is_found_in_one_or_many_lines_and_only_when_denied() {
        assert!(denies_long_functions(
            "//! doc\n#![cfg_attr(not(test), deny(clippy::too_many_lines))]\nmod a;\n"
        ));
        assert!(denies_long_functions(
            "#![cfg_attr(\n    not(test),\n    deny(\n        clippy::unwrap_used,\n        clippy::too_many_lines,\n    )\n)]\n"
        ));
        assert!(!denies_long_functions(
            "#![allow(clippy::too_many_lines)]\n"
        ));
        assert!(!denies_long_functions(
            "// #![deny(clippy::too_many_lines)]\nfn main() {}\n"
        ));
        assert!(!denies_long_functions(
            "fn f() {}\n#[deny(clippy::too_many_lines)]\nfn g() {}\n"
        ));
    }

    #[test]
    fn the_package_name_is_read_from_the_package_table() {
        let manifest = "[workspace]\nname = \"no\"\n[package]\nname = \"ticketd-store\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("ticketd-store"));
        assert_eq!(package_name("[workspace]\nmembers = []\n"), None);
    }
}
