//! Finds the line and column of a document path in the source text.
//!
//! Parsers give positions for syntax errors only, so semantic diagnostics and
//! rule locations come from here. The JSON locator walks the (already valid)
//! text token by token and is exact. The YAML locator follows block-style
//! indentation, which is how policies are written; inside a flow collection
//! (`[a, b]`, `{k: v}`) it stops and reports the line of the deepest step it
//! found, which is still the right line for a one-line collection.

use super::path::{DocPath, Seg};

/// A 1-based line and column.
pub(crate) type Pos = (u32, u32);

/// Where `path` starts in a JSON document: the key of an object member, the
/// first byte of an array element. Falls back to the deepest step found.
pub(crate) fn json(src: &str, path: &DocPath) -> Pos {
    let mut scan = Scanner {
        src: src.as_bytes(),
        pos: 0,
    };
    scan.ws();
    let mut best = scan.pos;
    for seg in &path.0 {
        let found = match seg {
            Seg::Key(key) => scan.find_member(key),
            Seg::Index(index) => scan.find_element(*index),
        };
        match found {
            Some(at) => best = at,
            None => break,
        }
    }
    line_col(src, best)
}

fn line_col(src: &str, byte: usize) -> Pos {
    let before = src.get(..byte).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (to_u32(line), to_u32(column))
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

struct Scanner<'a> {
    src: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Reads a string token and decodes it.
    fn string(&mut self) -> Option<String> {
        let start = self.pos;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos += 1,
                b'"' => {
                    let raw = std::str::from_utf8(self.src.get(start..self.pos)?).ok()?;
                    return serde_json::from_str(raw).ok();
                }
                _ => {}
            }
        }
        None
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.pos += 1;
                if self.eat(close) {
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.ws();
                        self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                    }
                    self.skip_value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(close).then_some(());
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.pos += 1;
                }
                Some(())
            }
        }
    }

    /// Leaves the scanner at the member's value and returns the key's offset.
    fn find_member(&mut self, wanted: &str) -> Option<usize> {
        if !self.eat(b'{') || self.eat(b'}') {
            return None;
        }
        loop {
            self.ws();
            let key_at = self.pos;
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            self.ws();
            if key == wanted {
                return Some(key_at);
            }
            self.skip_value()?;
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn find_element(&mut self, wanted: usize) -> Option<usize> {
        if !self.eat(b'[') || self.eat(b']') {
            return None;
        }
        for _ in 0..wanted {
            self.skip_value()?;
            if !self.eat(b',') {
                return None;
            }
        }
        self.ws();
        Some(self.pos)
    }
}

#[derive(Clone, Copy)]
struct Line<'a> {
    no: usize,
    indent: usize,
    text: &'a str,
}

/// Where `path` starts in a block-style YAML document: the key of a mapping
/// entry, the dash of a sequence item. Falls back to the deepest step found.
pub(crate) fn yaml(src: &str, path: &DocPath) -> Pos {
    let mut block: Vec<Line> = src
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let text = raw.trim_start_matches(' ');
            let blank =
                text.trim().is_empty() || text.starts_with('#') || raw == "---" || raw == "...";
            (!blank).then_some(Line {
                no: i + 1,
                indent: raw.len() - text.len(),
                text: text.trim_end(),
            })
        })
        .collect();
    let mut best = block.first().map_or((1, 1), |l| (l.no, l.indent + 1));
    for seg in &path.0 {
        let Some(base) = block.first().map(|l| l.indent) else {
            break;
        };
        let next = match seg {
            Seg::Key(key) => step_key(&block, base, key),
            Seg::Index(index) => step_index(&block, base, *index),
        };
        match next {
            Some((at, child)) => {
                best = (at.no, at.indent + 1);
                block = child;
            }
            None => break,
        }
    }
    (to_u32(best.0), to_u32(best.1))
}

fn is_dash(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn step_key<'a>(block: &[Line<'a>], base: usize, key: &str) -> Option<(Line<'a>, Vec<Line<'a>>)> {
    let at = block
        .iter()
        .position(|l| l.indent == base && split_key(l.text).is_some_and(|(k, _)| k == key))?;
    let line = block[at];
    let inline = split_key(line.text).map_or("", |(_, rest)| rest);
    if !inline.is_empty() && !inline.starts_with(['|', '>', '&', '!']) {
        return Some((line, Vec::new()));
    }
    let child = block[at + 1..]
        .iter()
        .take_while(|l| l.indent > base || (l.indent == base && is_dash(l.text)))
        .copied()
        .collect();
    Some((line, child))
}

fn step_index<'a>(
    block: &[Line<'a>],
    base: usize,
    index: usize,
) -> Option<(Line<'a>, Vec<Line<'a>>)> {
    let mut items = block
        .iter()
        .enumerate()
        .filter(|(_, l)| l.indent == base && is_dash(l.text));
    let (at, line) = items.nth(index)?;
    let mut child = Vec::new();
    let after_dash = &line.text[1..];
    let content = after_dash.trim_start_matches(' ');
    if !content.is_empty() {
        let shift = 1 + after_dash.len() - content.len();
        child.push(Line {
            no: line.no,
            indent: base + shift,
            text: content,
        });
    }
    child.extend(
        block[at + 1..]
            .iter()
            .take_while(|l| l.indent > base)
            .copied(),
    );
    Some((*line, child))
}

/// Splits `key: rest` (plain, single- or double-quoted key).
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, rest) = if let Some(body) = text.strip_prefix('"') {
        let mut escaped = false;
        let end = body.char_indices().find(|&(_, c)| {
            let stop = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            stop
        })?;
        let key = serde_json::from_str::<String>(&text[..end.0 + 2]).ok()?;
        (key, &body[end.0 + 1..])
    } else if let Some(body) = text.strip_prefix('\'') {
        let end = body.find('\'')?;
        (body[..end].to_owned(), &body[end + 1..])
    } else {
        let end = text
            .find(": ")
            .or_else(|| text.ends_with(':').then(|| text.len() - 1))?;
        (text[..end].trim_end().to_owned(), &text[end..])
    };
    let rest = rest.trim_start().strip_prefix(':')?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim();
    let rest = if rest.starts_with('#') { "" } else { rest };
    Some((key, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn p(segs: &[&str]) -> DocPath {
        DocPath(
            segs.iter()
                .map(|s| {
                    s.parse::<usize>()
                        .map_or_else(|_| Seg::Key((*s).to_owned()), Seg::Index)
                })
                .collect(),
        )
    }

    const JSON: &str = r#"{"version":"1",
  "tools": {
    "a\"b": {"limits": [
      {"counter": "x", "window": "minute"},
      {"counter": "y",
       "window": "fortnight"}
    ]},
    "é": {}
  }
}"#;

    #[test]
    fn json_paths_land_on_keys_and_elements() {
        assert_eq!(json(JSON, &p(&["version"])), (1, 2));
        assert_eq!(json(JSON, &p(&["tools", "a\"b"])), (3, 5));
        assert_eq!(json(JSON, &p(&["tools", "a\"b", "limits", "1"])), (5, 7));
        assert_eq!(
            json(JSON, &p(&["tools", "a\"b", "limits", "1", "window"])),
            (6, 8)
        );
        assert_eq!(json(JSON, &p(&["tools", "é"])), (8, 5));
        // A missing step falls back to the deepest one found.
        assert_eq!(
            json(JSON, &p(&["tools", "a\"b", "limits", "7", "window"])),
            (3, 14)
        );
        assert_eq!(json(JSON, &p(&[])), (1, 1));
    }

    const YAML: &str = r#"version: "1"
# a comment
tools:
  create_charge:
    rules:
      - name: "max single charge"
        conditions:
          - path: "args.amount"
            op: "lte"
            value: [1, 2]

      - name: second
        rate_limit: 5/hour
  "*":
    rules:
    - name: "global"   # same-indent sequence
      rate_limit: 60/minute
"#;

    #[test]
    fn yaml_paths_follow_block_indentation() {
        assert_eq!(yaml(YAML, &p(&["version"])), (1, 1));
        assert_eq!(yaml(YAML, &p(&["tools", "create_charge"])), (4, 3));
        assert_eq!(
            yaml(YAML, &p(&["tools", "create_charge", "rules", "0"])),
            (6, 7)
        );
        assert_eq!(
            yaml(YAML, &p(&["tools", "create_charge", "rules", "0", "name"])),
            (6, 9)
        );
        assert_eq!(
            yaml(
                YAML,
                &p(&[
                    "tools",
                    "create_charge",
                    "rules",
                    "0",
                    "conditions",
                    "0",
                    "op"
                ])
            ),
            (9, 13)
        );
        assert_eq!(
            yaml(
                YAML,
                &p(&["tools", "create_charge", "rules", "1", "rate_limit"])
            ),
            (13, 9)
        );
        assert_eq!(
            yaml(YAML, &p(&["tools", "*", "rules", "0", "rate_limit"])),
            (17, 7)
        );
    }

    #[test]
    fn yaml_flow_collections_point_at_their_line() {
        let path = p(&[
            "tools",
            "create_charge",
            "rules",
            "0",
            "conditions",
            "0",
            "value",
            "1",
        ]);
        assert_eq!(yaml(YAML, &path), (10, 13));
        assert_eq!(yaml(YAML, &p(&["tools", "nope"])), (3, 1));
    }

    #[test]
    fn yaml_keys_are_split_carefully() {
        assert_eq!(split_key("a: b"), Some(("a".into(), "b")));
        assert_eq!(split_key("\"*\":"), Some(("*".into(), "")));
        assert_eq!(split_key("'x y': 1"), Some(("x y".into(), "1")));
        assert_eq!(split_key("url: http://x"), Some(("url".into(), "http://x")));
        assert_eq!(split_key("k: # note"), Some(("k".into(), "")));
        assert_eq!(split_key("just text"), None);
    }
}
