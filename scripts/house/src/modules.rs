//! The module graph of one crate: modules found from its root file through `mod` items, and an
//! edge from a module to each module a path in it names.
//!
//! A module is a file: `a.rs` (or `a/mod.rs`) and its child `a/b.rs` are two modules, and a path
//! through a module's re-export (`crate::X` for a `pub use` in `lib.rs`, `super::X` for one in
//! the parent) is an edge to the module that re-exports it. Inline modules belong to their file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::scan::{scan, FileScan, NamedPath};

/// A module's path from the crate root: empty for the root.
pub type ModulePath = Vec<String>;

/// One crate's modules and the edges between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Every module, with the files that make it (two when a `cfg_attr` path picks another).
    pub modules: BTreeMap<ModulePath, Vec<PathBuf>>,
    /// `(from, to)` with where each edge is written, `file:line`.
    pub edges: BTreeMap<(ModulePath, ModulePath), Vec<String>>,
}

/// The name of a module as a path would write it (`crate` for the root).
pub fn display(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Reads the crate whose root file is `root` and every file its `mod` items reach.
pub fn read_crate(root: &Path) -> std::io::Result<ModuleGraph> {
    let mut scans: BTreeMap<ModulePath, Vec<(PathBuf, FileScan)>> = BTreeMap::new();
    let mut pending = vec![(Vec::new(), root.to_path_buf(), true)];
    while let Some((module, file, owns_directory)) = pending.pop() {
        let found = scan(&std::fs::read_to_string(&file)?);
        let directory = children_directory(&file, owns_directory);
        for declared in &found.mods {
            let mut child = module.clone();
            child.push(declared.name.clone());
            for (child_file, child_owns) in module_files(&file, &directory, declared) {
                pending.push((child.clone(), child_file, child_owns));
            }
        }
        scans.entry(module).or_default().push((file, found));
    }
    Ok(graph_of(&scans))
}

/// Where the files of a file's child modules are: beside a `lib.rs`, `main.rs` or `mod.rs`,
/// in a folder named after any other file.
fn children_directory(file: &Path, owns_directory: bool) -> PathBuf {
    let parent = file.parent().unwrap_or(Path::new("")).to_path_buf();
    if owns_directory {
        parent
    } else {
        parent.join(file.file_stem().unwrap_or_default())
    }
}

/// The files a `mod` item may load, each with whether it owns its folder: the usual `name.rs`
/// or `name/mod.rs`, and any `path` attribute's file (beside the declaring file).
fn module_files(
    declaring: &Path,
    directory: &Path,
    declared: &crate::scan::ModDecl,
) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    let flat = directory.join(format!("{}.rs", declared.name));
    let nested = directory.join(&declared.name).join("mod.rs");
    if flat.is_file() {
        files.push((flat, false));
    } else if nested.is_file() {
        files.push((nested, true));
    }
    let beside = declaring.parent().unwrap_or(Path::new(""));
    for attr in &declared.path_attrs {
        let file = beside.join(attr);
        if file.is_file() && !files.iter().any(|(f, _)| *f == file) {
            files.push((file, true));
        }
    }
    files
}

fn graph_of(scans: &BTreeMap<ModulePath, Vec<(PathBuf, FileScan)>>) -> ModuleGraph {
    let mut graph = ModuleGraph::default();
    for (module, files) in scans {
        graph.modules.insert(
            module.clone(),
            files.iter().map(|(f, _)| f.clone()).collect(),
        );
    }
    for (module, files) in scans {
        for (file, found) in files {
            for named in &found.paths {
                let Some(target) = resolve(&graph.modules, module, named) else {
                    continue;
                };
                if target != *module {
                    graph
                        .edges
                        .entry((module.clone(), target))
                        .or_default()
                        .push(format!("{}:{}", file.display(), named.line));
                }
            }
        }
    }
    graph
}

/// The module a path in `module` names: the longest known module its segments lead to, or
/// `None` for a path outside the crate (std, a dependency, a local name) or inside the file.
pub fn resolve(
    modules: &BTreeMap<ModulePath, Vec<PathBuf>>,
    module: &[String],
    named: &NamedPath,
) -> Option<ModulePath> {
    let segments = &named.segments;
    let first = segments.first()?.as_str();
    let (base, rest): (ModulePath, &[String]) = match first {
        "crate" => (Vec::new(), segments.get(1..)?),
        "super" => {
            let supers = segments.iter().take_while(|s| *s == "super").count();
            let leaves_file = supers.checked_sub(named.inline_depth).filter(|n| *n > 0)?;
            let kept = module.len().checked_sub(leaves_file)?;
            (module.get(..kept)?.to_vec(), segments.get(supers..)?)
        }
        "self" if named.inline_depth == 0 => (module.to_vec(), segments.get(1..)?),
        name if named.inline_depth == 0 && is_child(modules, module, name) => {
            (module.to_vec(), segments.as_slice())
        }
        _ => return None,
    };
    let mut full = base.clone();
    full.extend(rest.iter().filter(|s| *s != "*" && *s != "self").cloned());
    (base.len()..=full.len())
        .rev()
        .map(|len| full[..len].to_vec())
        .find(|candidate| modules.contains_key(candidate))
}

fn is_child(modules: &BTreeMap<ModulePath, Vec<PathBuf>>, module: &[String], name: &str) -> bool {
    let mut child = module.to_vec();
    child.push(name.to_string());
    modules.contains_key(&child)
}

/// Modules as `BTreeSet`s of their edges' ends, for the cycle search.
pub fn adjacency(graph: &ModuleGraph) -> BTreeMap<ModulePath, BTreeSet<ModulePath>> {
    let mut next: BTreeMap<ModulePath, BTreeSet<ModulePath>> = graph
        .modules
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (from, to) in graph.edges.keys() {
        next.entry(from.clone()).or_default().insert(to.clone());
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(names: &[&str]) -> BTreeMap<ModulePath, Vec<PathBuf>> {
        names
            .iter()
            .map(|n| {
                let path = if n.is_empty() {
                    Vec::new()
                } else {
                    n.split("::").map(str::to_string).collect()
                };
                (path, Vec::new())
            })
            .collect()
    }

    fn resolved(known: &[&str], module: &str, path: &str, inline_depth: usize) -> Option<String> {
        let named = NamedPath {
            segments: path.split("::").map(str::to_string).collect(),
            line: 1,
            inline_depth,
        };
        let module: Vec<String> = module
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        resolve(&modules(known), &module, &named).map(|m| display(&m))
    }

    #[test]
    fn paths_resolve_to_the_longest_known_module() {
        let known = ["", "a", "a::b", "c"];
        assert_eq!(
            resolved(&known, "c", "crate::a::b::Item::method", 0).as_deref(),
            Some("a::b")
        );
        assert_eq!(
            resolved(&known, "c", "crate::a::Item", 0).as_deref(),
            Some("a")
        );
        assert_eq!(
            resolved(&known, "c", "crate::Item", 0).as_deref(),
            Some("crate")
        );
        assert_eq!(
            resolved(&known, "a::b", "super::Item", 0).as_deref(),
            Some("a")
        );
        assert_eq!(
            resolved(&known, "a::b", "super::super::c::*", 0).as_deref(),
            Some("c")
        );
        assert_eq!(resolved(&known, "a", "b::Item", 0).as_deref(), Some("a::b"));
        assert_eq!(resolved(&known, "a", "self::b", 0).as_deref(), Some("a::b"));
    }

    #[test]
    fn paths_outside_the_crate_or_inside_the_file_resolve_to_nothing() {
        let known = ["", "a", "a::b"];
        assert_eq!(resolved(&known, "a", "std::collections::BTreeMap", 0), None);
        assert_eq!(
            resolved(&known, "a", "b::Item", 1),
            None,
            "an inline module's own b"
        );
        assert_eq!(
            resolved(&known, "a::b", "super::Item", 1),
            None,
            "the file's own item"
        );
        assert_eq!(
            resolved(&known, "a::b", "super::super::Item", 1).as_deref(),
            Some("a")
        );
        assert_eq!(resolved(&known, "", "super::Item", 0), None);
    }

    #[test]
    fn a_crate_is_read_from_its_root_through_its_mod_items() {
        let dir = std::env::temp_dir().join(format!("house-check-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("a")).unwrap();
        let files = [
            (
                "lib.rs",
                "mod a;\n#[cfg_attr(x, path = \"c_none.rs\")]\nmod c;\npub use a::A;",
            ),
            ("a.rs", "mod b;\npub struct A;"),
            ("a/b.rs", "use super::A;\nuse crate::c::C;"),
            ("c.rs", "pub struct C(crate::A);"),
            ("c_none.rs", "pub struct C;"),
        ];
        for (name, text) in files {
            std::fs::write(src.join(name), text).unwrap();
        }
        let graph = read_crate(&src.join("lib.rs")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let names: Vec<String> = graph.modules.keys().map(|m| display(m)).collect();
        assert_eq!(names, ["crate", "a", "a::b", "c"]);
        assert_eq!(graph.modules[&vec!["c".to_string()]].len(), 2);
        let edges: Vec<String> = graph
            .edges
            .keys()
            .map(|(f, t)| format!("{} -> {}", display(f), display(t)))
            .collect();
        assert_eq!(
            edges,
            ["crate -> a", "a::b -> a", "a::b -> c", "c -> crate"]
        );
    }
}
