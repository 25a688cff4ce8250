//! Finding where a field sits in a scenario file, and which field a byte
//! offset falls in, so every error can name a line and a field.

use std::fmt;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One segment of a field path: a key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A field path such as `step[2].concurrency`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    /// The path of a top-level key.
    pub fn key(k: &str) -> FieldPath {
        FieldPath(vec![Seg::Key(k.to_owned())])
    }

    /// The path of `step[i]`.
    pub fn step(i: usize) -> FieldPath {
        FieldPath(vec![Seg::Key("step".to_owned()), Seg::Index(i)])
    }

    /// This path extended by a key.
    pub fn then(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_owned()));
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => write!(f, "{k}")?,
                Seg::Key(k) if is_bare_key(k) => write!(f, ".{k}")?,
                Seg::Key(k) => write!(f, ".{k:?}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

fn is_bare_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A line and column, both 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    /// Line number.
    pub line: u32,
    /// Column, in characters.
    pub column: u32,
}

/// Converts a byte offset of `src` into a line and column.
pub fn line_col(src: &str, offset: usize) -> LineCol {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    LineCol {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
    }
}

/// A parsed document kept for locating fields; `None` when the text is not
/// TOML at all (the syntax error is reported on its own).
pub struct Locator<'a> {
    src: &'a str,
    doc: Option<Spanned<DeTable<'a>>>,
}

impl<'a> Locator<'a> {
    /// Parses `src` for locating.
    pub fn new(src: &'a str) -> Locator<'a> {
        Locator {
            src,
            doc: DeTable::parse(src).ok(),
        }
    }

    /// The line and column of a field: its key when it has one, else the
    /// value (an array element); the document start when it is absent.
    pub fn find(&self, path: &FieldPath) -> LineCol {
        let offset = self
            .doc
            .as_ref()
            .and_then(|doc| span_of(doc.get_ref(), &path.0))
            .map_or(0, |r| r.start);
        line_col(self.src, offset)
    }

    /// Where the nearest existing ancestor of `path` is: for a missing field,
    /// the table that should have held it.
    pub fn find_nearest(&self, path: &FieldPath) -> LineCol {
        let mut p = path.0.clone();
        while !p.is_empty() {
            if let Some(r) = self.doc.as_ref().and_then(|doc| span_of(doc.get_ref(), &p)) {
                return line_col(self.src, r.start);
            }
            p.pop();
        }
        line_col(self.src, 0)
    }

    /// Where the text of a string field begins: after its opening quotes,
    /// and after the newline a multi-line string drops right after them.
    pub fn string_start(&self, path: &FieldPath) -> Option<LineCol> {
        let doc = self.doc.as_ref()?;
        let (first, rest) = path.0.split_first()?;
        let Seg::Key(first) = first else { return None };
        let (_, value) = doc.get_ref().get_key_value(first.as_str())?;
        let span = if rest.is_empty() {
            value.span()
        } else {
            span_in_value(value, rest)?
        };
        let text = self.src.get(span.start..)?;
        let mut offset = span.start;
        if text.starts_with("'''") || text.starts_with("\"\"\"") {
            offset += 3;
            let after = self.src.get(offset..).unwrap_or("");
            if after.starts_with("\r\n") {
                offset += 2;
            } else if after.starts_with('\n') {
                offset += 1;
            }
        } else {
            offset += 1;
        }
        Some(line_col(self.src, offset))
    }

    /// The deepest field whose key or value holds the byte `offset`.
    pub fn path_at(&self, offset: usize) -> FieldPath {
        let mut out = Vec::new();
        if let Some(doc) = &self.doc {
            descend_table(doc.get_ref(), offset, &mut out);
        }
        FieldPath(out)
    }
}

fn span_of(table: &DeTable<'_>, path: &[Seg]) -> Option<Range<usize>> {
    let (Seg::Key(first), rest) = path.split_first()? else {
        return None;
    };
    let (key, value) = table.get_key_value(first.as_str())?;
    if rest.is_empty() {
        return Some(key.span());
    }
    span_in_value(value, rest)
}

fn span_in_value(value: &Spanned<DeValue<'_>>, path: &[Seg]) -> Option<Range<usize>> {
    let Some((seg, rest)) = path.split_first() else {
        return Some(value.span());
    };
    match (seg, value.get_ref()) {
        (Seg::Key(_), DeValue::Table(t)) => span_of(t, path),
        (Seg::Index(i), DeValue::Array(a)) => {
            let item = a.get(*i)?;
            if rest.is_empty() {
                Some(item.span())
            } else {
                span_in_value(item, rest)
            }
        }
        _ => None,
    }
}

fn contains(r: &Range<usize>, offset: usize) -> bool {
    r.start <= offset && offset < r.end.max(r.start + 1)
}

/// The bytes a value covers, children included: an array of tables is
/// spanned by its first `[[header]]` only, its later tables lie elsewhere.
fn extent(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut r = value.span();
    let mut widen = |c: Range<usize>| {
        r.start = r.start.min(c.start);
        r.end = r.end.max(c.end);
    };
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                widen(k.span());
                widen(extent(v));
            }
        }
        DeValue::Array(a) => a.iter().for_each(|v| widen(extent(v))),
        _ => {}
    }
    r
}

fn descend_table(table: &DeTable<'_>, offset: usize, out: &mut Vec<Seg>) {
    for (key, value) in table.iter() {
        if contains(&key.span(), offset) || contains(&extent(value), offset) {
            out.push(Seg::Key(key.get_ref().to_string()));
            descend_value(value, offset, out);
            return;
        }
    }
}

fn descend_value(value: &Spanned<DeValue<'_>>, offset: usize, out: &mut Vec<Seg>) {
    match value.get_ref() {
        DeValue::Table(t) => descend_table(t, offset, out),
        DeValue::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                if contains(&extent(item), offset) {
                    out.push(Seg::Index(i));
                    descend_value(item, offset, out);
                    return;
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"id = "x"
title = "t"

[[step]]
call = "a"
repeat = 3

[[step]]
raw = "{}"
concurrency = 0
headers = { "Mcp-Name" = "b" }
"#;

    #[test]
    fn finds_keys_and_steps() {
        let loc = Locator::new(SRC);
        assert_eq!(loc.find(&FieldPath::key("title")).line, 2);
        let conc = FieldPath::step(1).then("concurrency");
        assert_eq!(
            loc.find(&conc),
            LineCol {
                line: 10,
                column: 1
            }
        );
        assert_eq!(loc.find(&FieldPath::step(0).then("repeat")).line, 6);
        let hdr = FieldPath::step(1).then("headers").then("Mcp-Name");
        assert_eq!(
            loc.find(&hdr),
            LineCol {
                line: 11,
                column: 13
            }
        );
        assert_eq!(conc.to_string(), "step[1].concurrency");
        assert_eq!(hdr.to_string(), "step[1].headers.Mcp-Name");
        let odd = FieldPath::step(0).then("set").then("a.b");
        assert_eq!(odd.to_string(), "step[0].set.\"a.b\"");
    }

    #[test]
    fn missing_field_falls_back_to_its_table() {
        let loc = Locator::new(SRC);
        let missing = FieldPath::step(1).then("identity");
        // The `[[step]]` header of the second step.
        assert_eq!(loc.find_nearest(&missing).line, 8);
        assert_eq!(loc.find_nearest(&FieldPath::key("nope")).line, 1);
    }

    #[test]
    fn offset_maps_back_to_the_field() {
        let loc = Locator::new(SRC);
        let off = SRC.find("concurrency").unwrap() + 3;
        assert_eq!(loc.path_at(off).to_string(), "step[1].concurrency");
        let off = SRC.find("\"b\"").unwrap();
        assert_eq!(loc.path_at(off).to_string(), "step[1].headers.Mcp-Name");
    }

    #[test]
    fn columns_count_characters() {
        let src = "a = \"ü\"\nb = \"ß\" x";
        let off = src.rfind('x').unwrap();
        assert_eq!(line_col(src, off), LineCol { line: 2, column: 9 });
        assert_eq!(line_col(src, 10_000).line, 2);
    }
}
