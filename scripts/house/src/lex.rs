//! A small Rust lexer: just enough to find paths, `use` trees, `mod` items and attributes.
//!
//! Comments (doc comments included) vanish, so a path named in prose is no edge; string
//! literals become one token each, so a path inside a string is none either, while the value of
//! `path = "..."` stays readable.

/// What the scanner needs to tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An identifier or keyword (raw identifiers lose their `r#`).
    Ident(String),
    /// A string literal's contents, escapes left as written.
    Str(String),
    /// `::`.
    PathSep,
    /// Any other single character that is not whitespace.
    Punct(char),
}

/// A token and the line (1-based) where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub line: usize,
}

/// Splits `source` into tokens, dropping comments, whitespace, numbers, chars and lifetimes.
pub fn tokens(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        line: 1,
        out: Vec::new(),
    };
    lexer.run();
    lexer.out
}

struct Lexer<'a> {
    chars: &'a [char],
    at: usize,
    line: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Moves past one character, counting lines.
    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, kind: Kind, line: usize) {
        self.out.push(Token { kind, line });
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                '/' if self.peek(1) == Some('/') => self.skip_line(),
                '/' if self.peek(1) == Some('*') => self.skip_block_comment(),
                '"' => {
                    let text = self.string();
                    self.push(Kind::Str(text), line);
                }
                'r' | 'b' if self.raw_or_byte_string_starts() => {
                    let text = self.prefixed_string();
                    self.push(Kind::Str(text), line);
                }
                '\'' => self.char_or_lifetime(),
                ':' if self.peek(1) == Some(':') => {
                    self.at += 2;
                    self.push(Kind::PathSep, line);
                }
                c if c == '_' || c.is_alphabetic() => {
                    let word = self.word();
                    self.push(Kind::Ident(word), line);
                }
                c if c.is_ascii_digit() => self.skip_number(),
                c if c.is_whitespace() => {
                    self.bump();
                }
                c => {
                    self.bump();
                    self.push(Kind::Punct(c), line);
                }
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == '\n' {
                return;
            }
            self.bump();
        }
    }

    /// Block comments nest in Rust.
    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.bump() {
            if c == '/' && self.peek(0) == Some('*') {
                self.bump();
                depth += 1;
            } else if c == '*' && self.peek(0) == Some('/') {
                self.bump();
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }

    /// A `"..."` literal; the cursor is on the opening quote.
    fn string(&mut self) -> String {
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.bump() {
            match c {
                '\\' => {
                    text.push(c);
                    if let Some(escaped) = self.bump() {
                        text.push(escaped);
                    }
                }
                '"' => break,
                c => text.push(c),
            }
        }
        text
    }

    /// `r"`, `r#"`, `b"`, `br"`, `br#"` (and `c"` is rare enough to ignore).
    fn raw_or_byte_string_starts(&self) -> bool {
        let previous_is_word = self.at > 0
            && self
                .chars
                .get(self.at - 1)
                .is_some_and(|c| c.is_alphanumeric() || *c == '_');
        if previous_is_word {
            return false;
        }
        let mut ahead = 1;
        if self.peek(0) == Some('b') && self.peek(1) == Some('r') {
            ahead = 2;
        }
        while self.peek(ahead) == Some('#') {
            ahead += 1;
        }
        self.peek(ahead) == Some('"') && (ahead == 1 || self.peek(ahead - 1) != Some('b'))
    }

    fn prefixed_string(&mut self) -> String {
        let raw = self.peek(0) == Some('r') || self.peek(1) == Some('r');
        while self.peek(0) != Some('"') && self.peek(0) != Some('#') {
            self.bump();
        }
        if !raw {
            return self.string();
        }
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            self.bump();
            hashes += 1;
        }
        self.bump();
        let mut text = String::new();
        while let Some(c) = self.bump() {
            if c == '"' && (0..hashes).all(|k| self.peek(k) == Some('#')) {
                self.at += hashes;
                break;
            }
            text.push(c);
        }
        text
    }

    /// `'a'` and `'\n'` are chars; `'a` is a lifetime or a label. Neither is a path.
    fn char_or_lifetime(&mut self) {
        self.bump();
        if self.peek(0) == Some('\\') {
            self.bump();
            self.bump();
            while let Some(c) = self.bump() {
                if c == '\'' {
                    return;
                }
            }
            return;
        }
        if self.peek(1) == Some('\'') {
            self.bump();
            self.bump();
            return;
        }
        self.word();
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek(0) {
            if c == '_' || c.is_alphanumeric() {
                word.push(c);
                self.bump();
            } else if c == '#' && word == "r" {
                word.clear();
                self.bump();
            } else {
                break;
            }
        }
        word
    }

    fn skip_number(&mut self) {
        while let Some(c) = self.peek(0) {
            if c.is_alphanumeric()
                || c == '_'
                || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.bump();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(source: &str) -> Vec<String> {
        tokens(source)
            .into_iter()
            .filter_map(|t| match t.kind {
                Kind::Ident(i) => Some(i),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn comments_strings_chars_and_lifetimes_hide_their_words() {
        let source = "a // crate::x\n/* crate::y /* nested */ crate::z */ b \"crate::w\" \
                      r#\"crate::v\"# 'c' '\\'' '\\\\' f<'life> br\"q\" c";
        assert_eq!(idents(source), ["a", "b", "f", "c"]);
    }

    #[test]
    fn lines_are_counted_through_comments_and_strings() {
        let found = tokens("/* one\ntwo */ x\n\"a\nb\" y");
        let lines: Vec<usize> = found.iter().map(|t| t.line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn path_separators_and_strings_are_tokens() {
        let found: Vec<Kind> = tokens("crate::a #[path = \"b.rs\"]")
            .into_iter()
            .map(|t| t.kind)
            .collect();
        assert_eq!(found[1], Kind::PathSep);
        assert!(found.contains(&Kind::Str("b.rs".into())));
    }
}
