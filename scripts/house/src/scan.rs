//! What one source file says about modules: the `mod` items it declares and the module paths
//! it names (in `use` trees and in code), each with its line.

use crate::lex::{tokens, Kind, Token};

/// A `mod name;` item: a module whose source is another file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModDecl {
    pub name: String,
    /// The values of its `path = "..."` attributes (plain or inside `cfg_attr`).
    pub path_attrs: Vec<String>,
}

/// A path as written, `crate::a::B` as `["crate", "a", "B"]`; a glob ends in `"*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPath {
    pub segments: Vec<String>,
    pub line: usize,
    /// How many inline modules (`mod x { .. }`) of this file enclose the path: its `super` and
    /// `self` stay inside the file that far.
    pub inline_depth: usize,
}

/// What [`scan`] found in one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileScan {
    pub mods: Vec<ModDecl>,
    pub paths: Vec<NamedPath>,
}

/// Scans one file. Items marked `#[cfg(test)]` (a `mod tests { .. }`, a `mod tests;`, a `use`)
/// are left out: a test may reach anywhere in its crate without shaping the crate.
pub fn scan(source: &str) -> FileScan {
    let mut scanner = Scanner {
        tokens: tokens(source),
        at: 0,
        depth: 0,
        inline_opened_at: Vec::new(),
        attrs: Vec::new(),
        found: FileScan::default(),
    };
    scanner.run();
    scanner.found
}

struct Scanner {
    tokens: Vec<Token>,
    at: usize,
    /// Brace depth.
    depth: usize,
    /// The brace depth inside each enclosing inline module.
    inline_opened_at: Vec<usize>,
    /// The outer attributes before the current item.
    attrs: Vec<Vec<Kind>>,
    found: FileScan,
}

impl Scanner {
    fn kind(&self, at: usize) -> Option<&Kind> {
        self.tokens.get(at).map(|t| &t.kind)
    }

    fn ident(&self, at: usize) -> Option<&str> {
        match self.kind(at) {
            Some(Kind::Ident(word)) => Some(word),
            _ => None,
        }
    }

    fn run(&mut self) {
        while let Some(kind) = self.kind(self.at).cloned() {
            match kind {
                Kind::Punct('#') => self.attribute(),
                Kind::Punct('{') => {
                    self.depth += 1;
                    self.attrs.clear();
                    self.at += 1;
                }
                Kind::Punct('}') => {
                    if self.inline_opened_at.last() == Some(&self.depth) {
                        self.inline_opened_at.pop();
                    }
                    self.depth = self.depth.saturating_sub(1);
                    self.attrs.clear();
                    self.at += 1;
                }
                Kind::Punct(';' | ',') => {
                    self.attrs.clear();
                    self.at += 1;
                }
                Kind::Ident(word) if word == "mod" => self.module_item(),
                Kind::Ident(word) if word == "use" => self.use_item(),
                Kind::Ident(_) if self.starts_path() => self.code_path(),
                _ => self.at += 1,
            }
        }
    }

    fn test_only(&self) -> bool {
        self.attrs.iter().any(|attr| {
            attr.first() == Some(&Kind::Ident("cfg".into()))
                && attr.contains(&Kind::Ident("test".into()))
                && !attr.contains(&Kind::Ident("not".into()))
        })
    }

    /// `#[..]` is kept for the item it precedes; `#![..]` is skipped.
    fn attribute(&mut self) {
        self.at += 1;
        let inner = self.kind(self.at) == Some(&Kind::Punct('!'));
        if inner {
            self.at += 1;
        }
        if self.kind(self.at) != Some(&Kind::Punct('[')) {
            return;
        }
        let end = self.matching(self.at, '[', ']');
        let body: Vec<Kind> = self.tokens[self.at + 1..end.saturating_sub(1).max(self.at + 1)]
            .iter()
            .map(|t| t.kind.clone())
            .collect();
        self.at = end;
        if !inner {
            self.attrs.push(body);
        }
    }

    /// The index just past the bracket that closes the one at `open_at`.
    fn matching(&self, open_at: usize, open: char, close: char) -> usize {
        let mut depth = 0usize;
        let mut at = open_at;
        while let Some(kind) = self.kind(at) {
            at += 1;
            if *kind == Kind::Punct(open) {
                depth += 1;
            } else if *kind == Kind::Punct(close) {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
        }
        at
    }

    fn module_item(&mut self) {
        let Some(name) = self.ident(self.at + 1).map(str::to_string) else {
            self.at += 1;
            return;
        };
        let test_only = self.test_only();
        match self.kind(self.at + 2) {
            Some(Kind::Punct(';')) => {
                if !test_only {
                    let path_attrs = self.path_attrs();
                    self.found.mods.push(ModDecl { name, path_attrs });
                }
                self.at += 3;
            }
            Some(Kind::Punct('{')) if test_only => {
                self.at = self.matching(self.at + 2, '{', '}');
            }
            Some(Kind::Punct('{')) => {
                self.depth += 1;
                self.inline_opened_at.push(self.depth);
                self.at += 3;
            }
            _ => self.at += 2,
        }
        self.attrs.clear();
    }

    fn path_attrs(&self) -> Vec<String> {
        let mut found = Vec::new();
        for attr in &self.attrs {
            for window in attr.windows(3) {
                if let [Kind::Ident(key), Kind::Punct('='), Kind::Str(value)] = window {
                    if key == "path" {
                        found.push(value.clone());
                    }
                }
            }
        }
        found
    }

    fn use_item(&mut self) {
        let test_only = self.test_only();
        let start = self.at + 1;
        let mut end = start;
        while let Some(kind) = self.kind(end) {
            if *kind == Kind::Punct(';') {
                break;
            }
            end += 1;
        }
        if !test_only {
            let mut trees = Vec::new();
            let mut at = start;
            use_tree(
                &self.tokens[start..end],
                &mut at,
                start,
                Vec::new(),
                &mut trees,
            );
            let inline_depth = self.inline_opened_at.len();
            for (segments, line) in trees {
                self.found.paths.push(NamedPath {
                    segments,
                    line,
                    inline_depth,
                });
            }
        }
        self.at = end + 1;
        self.attrs.clear();
    }

    /// An identifier followed by `::` that does not continue a path (nor is `$crate`).
    fn starts_path(&self) -> bool {
        let previous = self.at.checked_sub(1).and_then(|p| self.kind(p));
        self.kind(self.at + 1) == Some(&Kind::PathSep)
            && !matches!(previous, Some(Kind::PathSep | Kind::Punct('$')))
    }

    fn code_path(&mut self) {
        let mut segments = Vec::new();
        let mut line = 0;
        while let Some(word) = self.ident(self.at) {
            segments.push(word.to_string());
            line = self.tokens[self.at].line;
            self.at += 1;
            if self.kind(self.at) != Some(&Kind::PathSep) {
                break;
            }
            self.at += 1;
        }
        self.found.paths.push(NamedPath {
            segments,
            line,
            inline_depth: self.inline_opened_at.len(),
        });
    }
}

/// Expands one use tree (`a::b`, `a::*`, `a::{b, c::{d, e}}`, `a as b`) into its paths, each
/// with the line of its last segment. `at` indexes `tokens`; `base` is the index of its first.
fn use_tree(
    tokens: &[Token],
    at: &mut usize,
    base: usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let mut path = prefix;
    let mut line = tokens.first().map_or(0, |t| t.line);
    while let Some(token) = tokens.get(*at - base) {
        match &token.kind {
            Kind::Ident(word) if word == "as" => {
                *at += 2;
                break;
            }
            Kind::Ident(word) => {
                path.push(word.clone());
                line = token.line;
                *at += 1;
            }
            Kind::PathSep => *at += 1,
            Kind::Punct('*') => {
                path.push("*".into());
                line = token.line;
                *at += 1;
                break;
            }
            Kind::Punct('{') => {
                *at += 1;
                use_group(tokens, at, base, &path, out);
                return;
            }
            _ => break,
        }
    }
    if !path.is_empty() {
        out.push((path, line));
    }
}

/// The members of a `{ .. }` group, up to and past its closing brace.
fn use_group(
    tokens: &[Token],
    at: &mut usize,
    base: usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, usize)>,
) {
    while let Some(token) = tokens.get(*at - base) {
        match token.kind {
            Kind::Punct('}') => {
                *at += 1;
                return;
            }
            Kind::Punct(',') => *at += 1,
            _ => {
                let before = *at;
                use_tree(tokens, at, base, prefix.to_vec(), out);
                if *at == before {
                    *at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(source: &str) -> Vec<String> {
        scan(source)
            .paths
            .into_iter()
            .map(|p| p.segments.join("::"))
            .collect()
    }

    #[test]
    fn use_groups_nest_and_span_lines() {
        let found = paths("use crate::{a, b::c,\n  d::{self, e::*},\n f as g};\nuse std::x;");
        assert_eq!(
            found,
            [
                "crate::a",
                "crate::b::c",
                "crate::d::self",
                "crate::d::e::*",
                "crate::f",
                "std::x"
            ]
        );
        let lines: Vec<usize> = scan("use crate::{a,\nb};")
            .paths
            .iter()
            .map(|p| p.line)
            .collect();
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn paths_in_code_are_found_once_from_their_start() {
        let found = paths("fn f() { crate::a::b(); let x = super::c::D::new(); $crate::e; }");
        assert_eq!(found, ["crate::a::b", "super::c::D::new"]);
    }

    #[test]
    fn test_items_are_left_out() {
        let found = scan(
            "#[cfg(test)]\nmod tests { use crate::a; }\n#[cfg(test)] mod more;\n\
             #[cfg(not(test))] use crate::b;\nmod real;",
        );
        assert_eq!(
            found
                .paths
                .iter()
                .map(|p| p.segments.join("::"))
                .collect::<Vec<_>>(),
            ["crate::b"]
        );
        assert_eq!(found.mods.len(), 1);
    }

    #[test]
    fn inline_modules_count_their_depth_and_path_attributes_are_kept() {
        let found = scan(
            "mod outer { mod inner { use super::x; } use super::y; }\nuse super::z;\n\
             #[cfg_attr(not(feature = \"s\"), path = \"s_none.rs\")]\npub mod s;",
        );
        let depths: Vec<usize> = found.paths.iter().map(|p| p.inline_depth).collect();
        assert_eq!(depths, [2, 1, 0]);
        assert_eq!(
            found.mods,
            [ModDecl {
                name: "s".into(),
                path_attrs: vec!["s_none.rs".into()]
            }]
        );
    }
}
