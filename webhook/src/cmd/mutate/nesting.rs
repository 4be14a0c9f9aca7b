//! How deeply a YAML or JSON document nests, estimated in one pass before any parser runs.
//!
//! libyaml (under `serde_yaml`) walks its stack of open flow collections and of block indentations for every
//! token, so a document nested 100,000 levels deep costs about 20 s of CPU, growing quadratically, before
//! `serde_yaml`'s own recursion limit (128) refuses it. `serde_json` stops at 128 levels on its own, but a
//! JSON document that does not start with `{` goes to the YAML parser. This scan costs one pass over the
//! bytes and refuses such documents first.
//!
//! The estimate errs upwards, never downwards: brackets count unless they are inside a quoted scalar or a
//! comment that starts where libyaml would start one, block levels count by indentation, and a second count
//! that ignores quoting altogether (every `[`/`{` opens, every `]`/`}` closes) must stay under the cap too,
//! so that a quote this scan misreads cannot hide brackets. Kubernetes objects nest a few tens of levels, far
//! from the cap.

/// The deepest nesting accepted: twice the parsers' own limit (128), so that the estimate's errors never
/// refuse a document the parsers would read, while the parsers' cost up to this depth stays negligible.
pub const MAX_DEPTH: usize = 256;

/// A document nests deeper than [`MAX_DEPTH`]; `line` (1-based) is where the estimate crossed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "nests deeper than {MAX_DEPTH} levels (line {line}); Kubernetes objects nest a few tens of levels, so \
     the document was refused before parsing"
)]
pub struct TooDeep {
    /// The line where the estimate went over the cap.
    pub line: usize,
}

/// Checks that `text` nests at most [`MAX_DEPTH`] levels, in time linear in its length.
pub fn check(text: &str) -> Result<(), TooDeep> {
    bracket_depth(text.as_bytes(), MAX_DEPTH)?;
    Scan::new(MAX_DEPTH).run(text.as_bytes())
}

/// The quote-blind count: `[`/`{` open, `]`/`}` close, whatever surrounds them.
fn bracket_depth(bytes: &[u8], max: usize) -> Result<(), TooDeep> {
    let (mut depth, mut line) = (0usize, 1);
    for &b in bytes {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Err(TooDeep { line });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    Ok(())
}

/// What a quote character would mean at the current position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A node may start here: a quote opens a quoted scalar.
    Node,
    /// Inside a plain scalar: quotes and (in block context) brackets are text.
    Plain,
    /// Just after a quoted scalar or a flow collection: a `:` here is a value indicator even without a
    /// following space (JSON's `"a":1`).
    AfterNode,
}

/// Where the scan is inside a multi-line construct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Inside `'...'` (`''` escapes a quote).
    Single,
    /// Inside `"..."` (`\` escapes the next character).
    Double,
    /// Inside a block scalar (`|` or `>`): lines indented deeper than the column are its text.
    BlockScalar(Option<usize>),
}

/// The quote-aware estimate: open flow collections plus open block levels.
struct Scan {
    max: usize,
    flow: usize,
    /// Columns of the open block collections, innermost last.
    block: Vec<usize>,
    expect: Expect,
    mode: Mode,
    /// Column where the current node started (a key, before its `: `).
    node_col: usize,
    line: usize,
}

fn is_blank(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

fn is_flow_indicator(b: Option<&u8>) -> bool {
    matches!(b, Some(b',' | b'[' | b']' | b'{' | b'}'))
}

impl Scan {
    fn new(max: usize) -> Self {
        Self {
            max,
            flow: 0,
            block: Vec::new(),
            expect: Expect::Node,
            mode: Mode::Normal,
            node_col: 0,
            line: 0,
        }
    }

    fn depth_check(&self) -> Result<(), TooDeep> {
        if self.flow + self.block.len() > self.max {
            Err(TooDeep { line: self.line })
        } else {
            Ok(())
        }
    }

    /// Opens a block level at `col` unless one is already open there or deeper.
    fn open_block(&mut self, col: usize) -> Result<(), TooDeep> {
        if self.block.last().is_none_or(|&top| top < col) {
            self.block.push(col);
        }
        self.depth_check()
    }

    fn run(mut self, text: &[u8]) -> Result<(), TooDeep> {
        for line in text.split(|&b| b == b'\n') {
            self.line += 1;
            self.scan_line(line)?;
        }
        Ok(())
    }

    fn scan_line(&mut self, line: &[u8]) -> Result<(), TooDeep> {
        let indent = line
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t'))
            .unwrap_or(line.len());
        let blank = indent == line.len() || line[indent] == b'\r';
        match self.mode {
            Mode::Single | Mode::Double => return self.scan_tokens(line, 0),
            Mode::BlockScalar(parent) => {
                if blank || parent.is_some_and(|p| indent > p) {
                    return Ok(());
                }
                self.mode = Mode::Normal;
                self.expect = Expect::Node;
            }
            Mode::Normal => {}
        }
        if blank || line[indent] == b'#' {
            return Ok(());
        }
        if self.flow == 0 {
            // A plain scalar continues on a line indented deeper than its collection; otherwise this line
            // starts a new node at its indentation, closing the deeper levels.
            let continues =
                self.expect == Expect::Plain && self.block.last().is_none_or(|&top| indent > top);
            if !continues {
                while self.block.last().is_some_and(|&top| top > indent) {
                    self.block.pop();
                }
                self.open_block(indent)?;
                self.expect = Expect::Node;
                self.node_col = indent;
            }
        }
        self.scan_tokens(line, indent)
    }

    fn scan_tokens(&mut self, line: &[u8], start: usize) -> Result<(), TooDeep> {
        let mut i = start;
        while i < line.len() {
            let b = line[i];
            match self.mode {
                Mode::Single => {
                    if b == b'\'' {
                        if line.get(i + 1) == Some(&b'\'') {
                            i += 1;
                        } else {
                            self.mode = Mode::Normal;
                            self.expect = Expect::AfterNode;
                        }
                    }
                    i += 1;
                    continue;
                }
                Mode::Double => {
                    match b {
                        b'\\' => i += 1,
                        b'"' => {
                            self.mode = Mode::Normal;
                            self.expect = Expect::AfterNode;
                        }
                        _ => {}
                    }
                    i += 1;
                    continue;
                }
                Mode::BlockScalar(_) => return Ok(()),
                Mode::Normal => {}
            }
            let next = line.get(i + 1);
            let after_blank = i == 0 || matches!(line[i - 1], b' ' | b'\t');
            match b {
                b' ' | b'\t' | b'\r' => {}
                b'#' if after_blank => {
                    // A comment ends a plain scalar: the next line cannot continue it.
                    if self.expect == Expect::Plain {
                        self.expect = Expect::AfterNode;
                    }
                    return Ok(());
                }
                b'[' | b'{' if self.flow > 0 || self.expect != Expect::Plain => {
                    self.flow += 1;
                    self.expect = Expect::Node;
                    self.depth_check()?;
                }
                b']' | b'}' if self.flow > 0 => {
                    self.flow -= 1;
                    self.expect = Expect::AfterNode;
                }
                b',' if self.flow > 0 => self.expect = Expect::Node,
                b'\'' | b'"' if self.expect == Expect::Node => {
                    self.node_col = i;
                    self.mode = if b == b'"' {
                        Mode::Double
                    } else {
                        Mode::Single
                    };
                }
                b':' if is_blank(next)
                    || self.expect == Expect::AfterNode
                    || (self.flow > 0 && is_flow_indicator(next)) =>
                {
                    if self.flow == 0 {
                        // `- key: value` opens a mapping at the key's column, inside the sequence.
                        self.open_block(self.node_col)?;
                    }
                    self.expect = Expect::Node;
                }
                b'-' | b'?' if self.expect == Expect::Node && is_blank(next) => {
                    if self.flow == 0 {
                        // `- - x`: each indicator opens a level at its column.
                        self.open_block(i)?;
                    }
                }
                b'!' | b'&' | b'*' if self.expect == Expect::Node => {
                    // A tag, an anchor or an alias: a word; after a tag or anchor a node may still start.
                    while i + 1 < line.len()
                        && !is_blank(line.get(i + 1))
                        && !(self.flow > 0 && is_flow_indicator(line.get(i + 1)))
                    {
                        i += 1;
                    }
                    if b == b'*' {
                        self.expect = Expect::AfterNode;
                    }
                }
                b'|' | b'>' if self.flow == 0 && self.expect == Expect::Node => {
                    self.mode = Mode::BlockScalar(self.block.last().copied());
                    return Ok(());
                }
                _ => {
                    if self.expect != Expect::Plain {
                        self.node_col = i;
                    }
                    self.expect = Expect::Plain;
                }
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str) -> bool {
        check(text).is_ok()
    }

    #[test]
    fn kubernetes_objects_pass() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut seen = 0;
        for case in std::fs::read_dir(fixtures).unwrap() {
            for file in std::fs::read_dir(case.unwrap().path()).unwrap() {
                let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
                // Far below the cap, not just under it.
                assert_eq!(
                    (
                        Scan::new(16).run(text.as_bytes()),
                        bracket_depth(text.as_bytes(), 16)
                    ),
                    (Ok(()), Ok(()))
                );
                seen += 1;
            }
        }
        assert!(seen > 100, "{seen} fixture files");
        let review = include_str!("../../../benches/fixtures/review-6kb.json");
        assert_eq!(Scan::new(16).run(review.as_bytes()), Ok(()));
    }

    #[test]
    fn deep_documents_are_refused_in_every_shape() {
        let n = 100_000;
        for (shape, text) in [
            (
                "flow sequence",
                format!("{}{}", "[".repeat(n), "]".repeat(n)),
            ),
            (
                "flow mapping",
                format!("{}1{}", "{a: ".repeat(n), "}".repeat(n)),
            ),
            ("JSON", format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n))),
            ("compact sequence", format!("{}x\n", "- ".repeat(n))),
            (
                "indentation",
                (0..300).map(|i| format!("{}k:\n", " ".repeat(i))).collect(),
            ),
        ] {
            assert!(check(&text).is_err(), "{shape}");
        }
        // The line a flow collection starts on counts as a block level too: one level of over-estimate.
        let under = MAX_DEPTH - 1;
        let just_under = format!("{}{}", "[".repeat(under), "]".repeat(under));
        assert!(depth_ok(&just_under));
        let just_over = format!("[{just_under}]");
        assert_eq!(check(&just_over), Err(TooDeep { line: 1 }));
    }

    #[test]
    fn brackets_in_strings_comments_and_block_scalars_do_not_count() {
        let many = "[".repeat(MAX_DEPTH + 1);
        for text in [
            format!("a: \"{many}\"\n"),
            format!("a: '{many}'\n"),
            format!("a: 1 # {many}\n"),
            format!("a: |\n  {many}\n  x\nb: 1\n"),
            format!("a: x {many}\n"),
        ] {
            assert_eq!(
                Scan::new(MAX_DEPTH).run(text.as_bytes()),
                Ok(()),
                "{text:.40}"
            );
        }
    }

    #[test]
    fn closing_brackets_in_strings_cannot_hide_depth() {
        let level = "[\"]]]]\", ";
        let text = level.repeat(MAX_DEPTH + 1);
        assert!(Scan::new(MAX_DEPTH).run(text.as_bytes()).is_err());
        // A quote inside a plain scalar is text, so it cannot swallow what follows.
        let text = format!("[a 'b, {}", "[".repeat(MAX_DEPTH + 1));
        assert!(Scan::new(MAX_DEPTH).run(text.as_bytes()).is_err());
        // What the quote-aware scan would miss, the quote-blind count still sees.
        let text = format!("k: x\n  '{}\n", "[".repeat(MAX_DEPTH + 1));
        assert!(check(&text).is_err());
    }

    #[test]
    fn block_levels_close_with_indentation() {
        let siblings: String = (0..1000).map(|i| format!("k{i}:\n  v: [1, 2]\n")).collect();
        assert!(depth_ok(&siblings));
        let deep: String = (0..MAX_DEPTH + 1)
            .map(|i| format!("{}- k:\n", "  ".repeat(i)))
            .collect();
        assert!(check(&deep).is_err());
    }
}
