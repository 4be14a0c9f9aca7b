//! A validating JSON reader over the request bytes that builds only what its caller asks for.
//!
//! The AdmissionReview of a Deployment's pod is mostly what the webhook never reads (images, probes,
//! resources, managedFields, status...). serde_json walking those bytes without building anything cost 85,000
//! instructions for the 6.6 KB review of the benchmark, more than the quarter of the old decode that issue #16
//! allows for the whole decode. This reader checks the same grammar in fewer: strings are scanned eight bytes
//! at a time for the three bytes that end a run (`"`, `\`, a control character), and the caller reads the
//! members it wants through [`Reader::object`] and [`Reader::array`], skipping the rest with
//! [`Reader::skip`], which builds nothing and allocates nothing.
//!
//! What it accepts is RFC 8259 JSON as serde_json accepts it: no comments, no trailing commas, no leading
//! zeros, no control characters in strings, only the standard escapes; one value and white space around it.
//! Two differences, which no pod the apiserver sends can meet: nesting deeper than [`MAX_DEPTH`] is
//! refused (serde_json skips any depth, and builds a `Value` at most 127 deep), and numbers are only
//! checked for their syntax, never converted (serde_json refuses `1e400` where it builds a number). Strings
//! the caller reads are decoded and must be UTF-8, without lone surrogates; strings it skips are checked for
//! control characters and escapes, not for UTF-8, as serde_json's own skipping does (nothing of them is read
//! or echoed).

use std::borrow::Cow;

/// The deepest nesting of arrays and objects accepted (serde_json builds a `Value` at most one level less deep).
pub const MAX_DEPTH: u32 = 128;

/// Why the bytes are not JSON, or not of the shape the caller reads, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}")]
pub struct JsonError {
    /// What was expected or found.
    pub what: Cow<'static, str>,
    /// The offset in the input where it was noticed.
    pub at: usize,
}

/// A reader's result.
pub type Result<T> = std::result::Result<T, JsonError>;

/// The type of the next value, as its first byte tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{`.
    Object,
    /// `[`.
    Array,
    /// `"`.
    String,
    /// `-` or a digit.
    Number,
    /// `true` or `false`.
    Bool,
    /// `null`.
    Null,
}

/// A cursor over JSON bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    /// The input as text when it is all UTF-8 (checked once, with SIMD), so that a string read is a slice of it
    /// rather than checked again.
    text: Option<&'a str>,
    pos: usize,
    depth: u32,
}

const ONES: u64 = u64::from_le_bytes([1; 8]);
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// The offset of the first `"`, `\` or control character in eight bytes, tested as one 64-bit word.
///
/// A mask marks the high bit of each such byte. Only its lowest mark is exact (a borrow may mark bytes above a
/// match), which is the only one used. Two tests rather than three: flipping bit 1 maps `"` (0x22) to 0x20
/// and keeps the control characters below it, so one "less than 0x21" test finds both; the other finds `\`
/// as a zero after an exclusive or. Each test's lowest mark is exact, so the lowest of their union is too.
#[inline(always)]
fn first_stop_in_8(chunk: &[u8; 8]) -> Option<usize> {
    let word = u64::from_le_bytes(*chunk);
    let quote_or_control = word ^ (ONES * 0x02);
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let stops = (quote_or_control.wrapping_sub(ONES * 0x21) & !quote_or_control
        | backslash.wrapping_sub(ONES) & !backslash)
        & HIGH;
    (stops != 0).then(|| (stops.trailing_zeros() / 8) as usize)
}

#[inline]
fn is_string_stop(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            text: simdutf8::basic::from_utf8(bytes).ok(),
            pos: 0,
            depth: 0,
        }
    }

    /// An error at the current position.
    pub fn error<T>(&self, what: impl Into<Cow<'static, str>>) -> Result<T> {
        Err(JsonError {
            what: what.into(),
            at: self.pos,
        })
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        self.pos = whitespace_end(self.bytes, self.pos);
    }

    /// The next byte after white space, not consumed.
    #[inline]
    fn peek(&mut self) -> Result<u8> {
        // Every byte of white space (`is_whitespace`) is at most 0x20, so one comparison passes the compact JSON the
        // apiserver sends; folding it into `is_whitespace` instead cost 3,000 instructions a decode.
        if let Some(&byte) = self.bytes.get(self.pos)
            && byte > b' '
        {
            return Ok(byte);
        }
        self.skip_whitespace();
        match self.bytes.get(self.pos) {
            Some(&byte) => Ok(byte),
            None => self.error("unexpected end of input"),
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<()> {
        if self.peek()? == byte {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    fn enter(&mut self) -> Result<()> {
        if self.depth == MAX_DEPTH {
            return self.error(TOO_DEEP);
        }
        self.depth += 1;
        Ok(())
    }

    /// The type of the next value, not consumed.
    pub fn kind(&mut self) -> Result<Kind> {
        match self.peek()? {
            b'{' => Ok(Kind::Object),
            b'[' => Ok(Kind::Array),
            b'"' => Ok(Kind::String),
            b'-' | b'0'..=b'9' => Ok(Kind::Number),
            b't' | b'f' => Ok(Kind::Bool),
            b'n' => Ok(Kind::Null),
            _ => self.error("expected a JSON value"),
        }
    }

    /// Reads an object, calling `member` with each member's name; `member` must read or skip its value.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<()>,
    ) -> Result<()> {
        self.entries(
            b'{',
            b'}',
            ["expected an object", "expected `,` or `}`"],
            |r, _| {
                if r.peek()? != b'"' {
                    return r.error("expected a member name");
                }
                r.pos += 1;
                let name = r.string_after_quote()?;
                r.expect(b':', "expected `:`")?;
                member(r, name)
            },
        )
    }

    /// Reads an array, calling `item` with each item's index; `item` must read or skip the item.
    pub fn array(&mut self, item: impl FnMut(&mut Self, usize) -> Result<()>) -> Result<()> {
        self.entries(
            b'[',
            b']',
            ["expected an array", "expected `,` or `]`"],
            item,
        )
    }

    /// The frame objects and arrays share: `open`, the entries (each read by `entry`, with its index)
    /// separated by commas, `close`. `expected` names what is missing at the start and after an entry.
    fn entries(
        &mut self,
        open: u8,
        close: u8,
        expected: [&'static str; 2],
        mut entry: impl FnMut(&mut Self, usize) -> Result<()>,
    ) -> Result<()> {
        self.expect(open, expected[0])?;
        self.enter()?;
        if self.peek()? != close {
            for index in 0.. {
                entry(self, index)?;
                match self.peek()? {
                    b',' => self.pos += 1,
                    byte if byte == close => break,
                    _ => return self.error(expected[1]),
                }
            }
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(())
    }

    /// Reads a string, unescaped; borrowed from the input when it has no escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        self.expect(b'"', "expected a string")?;
        self.string_after_quote()
    }

    /// Reads the rest of a string whose opening quote was consumed.
    #[inline(always)]
    fn string_after_quote(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos;
        let end = run_end(self.bytes, start);
        // Between two quotes, so on character boundaries: `get` never fails on UTF-8 text.
        if self.bytes.get(end) == Some(&b'"')
            && let Some(text) = self.text.and_then(|text| text.get(start..end))
        {
            self.pos = end + 1;
            return Ok(Cow::Borrowed(text));
        }
        self.string_with_escapes_or_not_utf8(start)
    }

    /// The rest of [`string`](Self::string): escapes to decode, or an input that is not all UTF-8.
    #[cold]
    fn string_with_escapes_or_not_utf8(&mut self, start: usize) -> Result<Cow<'a, str>> {
        self.pos = run_end(self.bytes, start);
        if self.bytes.get(self.pos) == Some(&b'"') {
            let end = self.pos;
            self.pos += 1;
            return match std::str::from_utf8(&self.bytes[start..end]) {
                Ok(text) => Ok(Cow::Borrowed(text)),
                Err(err) => Err(JsonError {
                    what: "invalid UTF-8 in a string".into(),
                    at: start + err.valid_up_to(),
                }),
            };
        }
        let mut out = self.bytes[start..self.pos].to_vec();
        loop {
            match self.bytes.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => self.unescape(&mut out)?,
                Some(_) => return self.error("control character in a string"),
                None => return self.error("unexpected end of input in a string"),
            }
            let run = self.pos;
            self.pos = run_end(self.bytes, self.pos);
            out.extend_from_slice(&self.bytes[run..self.pos]);
        }
        self.pos += 1;
        match String::from_utf8(out) {
            Ok(text) => Ok(Cow::Owned(text)),
            Err(_) => Err(JsonError {
                what: "invalid UTF-8 in a string".into(),
                at: start,
            }),
        }
    }

    /// Reads a string, or skips any other value: `None`.
    pub fn string_or_skip(&mut self) -> Result<Option<Cow<'a, str>>> {
        if self.kind()? == Kind::String {
            self.string().map(Some)
        } else {
            self.skip().map(|()| None)
        }
    }

    /// Reads a string or `null` (`None`); any other value is an error.
    pub fn optional_string(&mut self) -> Result<Option<Cow<'a, str>>> {
        match self.kind()? {
            Kind::String => self.string().map(Some),
            Kind::Null => self.skip().map(|()| None),
            _ => self.error("expected a string"),
        }
    }

    /// Reads `true`, `false` or `null` (`None`); any other value is an error.
    pub fn optional_bool(&mut self) -> Result<Option<bool>> {
        let value = match self.peek()? {
            b't' => Some(true),
            b'f' => Some(false),
            b'n' => None,
            _ => return self.error("expected a boolean"),
        };
        self.skip().map(|()| value)
    }

    /// Skips one value of any type, checking it; returns its bytes.
    pub fn skip_raw(&mut self) -> Result<&'a [u8]> {
        let start = self.offset();
        self.skip()?;
        Ok(self.since(start))
    }

    /// The offset of the next value, after white space.
    pub fn offset(&mut self) -> usize {
        self.skip_whitespace();
        self.pos
    }

    /// The input from `start` (an [`offset`](Self::offset)) to the current position.
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.bytes[start..self.pos]
    }

    /// Checks that only white space is left.
    pub fn end(&mut self) -> Result<()> {
        self.skip_whitespace();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            self.error("trailing characters after the JSON value")
        }
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u16> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            return self.error("unexpected end of input in a \\u escape");
        };
        let mut value = 0u16;
        for &digit in digits {
            let Some(nibble) = (digit as char).to_digit(16) else {
                return self.error("invalid \\u escape");
            };
            value = value << 4 | nibble as u16;
        }
        self.pos += 4;
        Ok(value)
    }

    /// Decodes the escape at the current `\` into `out`.
    fn unescape(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.pos += 1;
        let Some(&byte) = self.bytes.get(self.pos) else {
            return self.error("unexpected end of input in a string");
        };
        self.pos += 1;
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return self.error("lone leading surrogate in a \\u escape");
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return self.error("lone leading surrogate in a \\u escape");
                        }
                        0x10000 + ((u32::from(unit) - 0xD800) << 10 | (u32::from(low) - 0xDC00))
                    }
                    0xDC00..=0xDFFF => {
                        return self.error("lone trailing surrogate in a \\u escape");
                    }
                    unit => u32::from(unit),
                };
                let c = char::from_u32(code).expect("a scalar value outside the surrogates");
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            _ => {
                self.pos -= 1;
                return self.error("invalid escape in a string");
            }
        };
        out.push(simple);
        Ok(())
    }

    /// Skips one value of any type, checking its grammar; builds nothing.
    pub fn skip(&mut self) -> Result<()> {
        match skip_value(self.bytes, self.pos, MAX_DEPTH - self.depth) {
            Ok(end) => {
                self.pos = end;
                Ok(())
            }
            Err((at, what)) => Err(JsonError {
                what: what.into(),
                at,
            }),
        }
    }
}

/// Where a skipped value is not JSON, and why.
type Fault = (usize, &'static str);

const TOO_DEEP: &str = "nested deeper than 128 levels";

/// JSON's white space: space, line feed, carriage return, tab (all at most 0x20).
#[inline(always)]
fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// The position of the first byte at or after `pos` that is not white space.
#[inline(always)]
fn whitespace_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&byte| is_whitespace(byte)) {
        pos += 1;
    }
    pos
}

/// After any white space at `pos`: the position after `byte` when it is there (`Ok`), else the position of
/// what is there instead (`Err`). The apiserver sends compact JSON, so the byte is looked for first and white
/// space only when it is not there.
#[inline(always)]
fn after_byte(bytes: &[u8], pos: usize, byte: u8) -> std::result::Result<usize, usize> {
    if bytes.get(pos) == Some(&byte) {
        return Ok(pos + 1);
    }
    let pos = whitespace_end(bytes, pos);
    if bytes.get(pos) == Some(&byte) {
        Ok(pos + 1)
    } else {
        Err(pos)
    }
}

/// The position of the next `"`, `\` or control character at or after `pos` (or the end of the input):
/// eight bytes at a time, then one.
#[inline(always)]
fn run_end(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(chunk) = bytes.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
        if let Some(offset) = first_stop_in_8(chunk) {
            return pos + offset;
        }
        pos += 8;
    }
    while bytes.get(pos).is_some_and(|&byte| !is_string_stop(byte)) {
        pos += 1;
    }
    pos
}

/// After a string's opening quote: the position after its closing one. Escapes are checked, not decoded.
#[inline(always)]
fn string_end(bytes: &[u8], mut pos: usize) -> std::result::Result<usize, Fault> {
    loop {
        pos = run_end(bytes, pos);
        match bytes.get(pos) {
            Some(b'"') => return Ok(pos + 1),
            Some(b'\\') => match bytes.get(pos + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                Some(b'u') => {
                    let hex = bytes.get(pos + 2..pos + 6);
                    if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                        return Err((pos, "invalid \\u escape"));
                    }
                    pos += 6;
                }
                _ => return Err((pos, "invalid escape in a string")),
            },
            Some(_) => return Err((pos, "control character in a string")),
            None => return Err((pos, "unexpected end of input in a string")),
        }
    }
}

#[inline(always)]
fn digits_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

/// The end of a number starting at `pos`: `-`, no leading zero, a fraction and an exponent with digits.
#[inline(always)]
fn number_end(bytes: &[u8], mut pos: usize) -> std::result::Result<usize, Fault> {
    const INVALID: &str = "invalid number";
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
    }
    pos = match bytes.get(pos) {
        Some(b'0') => pos + 1,
        Some(b'1'..=b'9') => digits_end(bytes, pos + 1),
        _ => return Err((pos, INVALID)),
    };
    if bytes.get(pos) == Some(&b'.') {
        let end = digits_end(bytes, pos + 1);
        if end == pos + 1 {
            return Err((end, INVALID));
        }
        pos = end;
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        let end = digits_end(bytes, pos);
        if end == pos {
            return Err((end, INVALID));
        }
        pos = end;
    }
    Ok(pos)
}

#[inline(always)]
fn literal_end(bytes: &[u8], pos: usize, word: &[u8]) -> std::result::Result<usize, Fault> {
    match bytes.get(pos..pos + word.len()) {
        Some(found) if found == word => Ok(pos + word.len()),
        _ => Err((pos, "expected a JSON value")),
    }
}

/// After a `{` or a `,` of an object: the position after the next member's name and its `:`.
#[inline(always)]
fn member_name_end(bytes: &[u8], pos: usize) -> std::result::Result<usize, Fault> {
    let pos = after_byte(bytes, pos, b'"').map_err(|at| (at, "expected a member name"))?;
    after_byte(bytes, string_end(bytes, pos)?, b':').map_err(|at| (at, "expected `:`"))
}

/// The end of the value at `pos`, nested at most `max_levels` deep. Iterative, with locals only: `open` holds
/// a bit per open container (set for an object), so that hostile nesting costs no stack.
fn skip_value(bytes: &[u8], mut pos: usize, max_levels: u32) -> std::result::Result<usize, Fault> {
    let mut open: u128 = 0;
    let mut levels = 0u32;
    loop {
        // A value. White space is the rare case in the apiserver's compact JSON, so it is an arm of its own.
        match bytes.get(pos) {
            Some(b'"') => pos = string_end(bytes, pos + 1)?,
            Some(&byte) if is_whitespace(byte) => {
                pos = whitespace_end(bytes, pos);
                continue;
            }
            Some(&byte @ (b'{' | b'[')) => {
                if levels == max_levels {
                    return Err((pos, TOO_DEEP));
                }
                let is_object = byte == b'{';
                let close = if is_object { b'}' } else { b']' };
                if let Ok(end) = after_byte(bytes, pos + 1, close) {
                    pos = end;
                } else {
                    pos += 1;
                    open = open << 1 | u128::from(is_object);
                    levels += 1;
                    if is_object {
                        pos = member_name_end(bytes, pos)?;
                    }
                    continue;
                }
            }
            Some(b'-' | b'0'..=b'9') => pos = number_end(bytes, pos)?,
            Some(b't') => pos = literal_end(bytes, pos, b"true")?,
            Some(b'f') => pos = literal_end(bytes, pos, b"false")?,
            Some(b'n') => pos = literal_end(bytes, pos, b"null")?,
            Some(_) => return Err((pos, "expected a JSON value")),
            None => return Err((pos, "unexpected end of input")),
        }
        // What follows a value: a separator, or the end of its containers.
        loop {
            if levels == 0 {
                return Ok(pos);
            }
            let in_object = open & 1 == 1;
            match (bytes.get(pos), in_object) {
                (Some(&byte), _) if is_whitespace(byte) => pos = whitespace_end(bytes, pos),
                (Some(b','), true) => {
                    pos = member_name_end(bytes, pos + 1)?;
                    break;
                }
                (Some(b','), false) => {
                    pos += 1;
                    break;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    pos += 1;
                    open >>= 1;
                    levels -= 1;
                }
                (_, true) => return Err((pos, "expected `,` or `}`")),
                (_, false) => return Err((pos, "expected `,` or `]`")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Skips a whole document.
    fn skip(json: &str) -> Result<()> {
        let mut reader = Reader::new(json.as_bytes());
        reader.skip()?;
        reader.end()
    }

    #[test]
    fn skips_what_serde_json_accepts() {
        for json in [
            "0",
            "-0",
            "-12.5e+3",
            "1E-7",
            "0.0",
            "true",
            "false",
            "null",
            r#""""#,
            r#""a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00 é""#,
            "[]",
            "{}",
            " [ 1 , { \"a\" : [ ] , \"b\" : { } } , \"x\" ] ",
            r#"{"a": {"b": [{"c": null}, [true, false]]}, "d": "\u0000"}"#,
            "\"a long string that spans several words of eight bytes, é and all\"",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_ok(),
                "{json}"
            );
            assert_eq!(skip(json), Ok(()), "{json}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for json in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "-",
            "+1",
            "tru",
            "nul",
            "True",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{1: 2}",
            "[1 2]",
            "[1}",
            "{\"a\": 1]",
            "\"unterminated",
            "\"a\tb\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "[] []",
            "{} x",
            "/* comment */ 1",
            "'single'",
            "NaN",
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json}"
            );
            assert!(skip(json).is_err(), "{json}");
        }
    }

    #[test]
    fn every_stop_byte_is_found_at_every_offset() {
        // The word-at-a-time scan must find the first stop wherever it falls in a word, after any bytes.
        for len in 0..20 {
            for stop in ["\"", "\\n\"", "\u{1}\""] {
                for filler in ['a', 'é', '\u{7f}', ' '] {
                    let body: String = std::iter::repeat_n(filler, len).collect();
                    let json = format!("\"{body}{stop}");
                    let expected = serde_json::from_str::<String>(&json);
                    let mut reader = Reader::new(json.as_bytes());
                    let read = reader.string();
                    match expected {
                        Ok(text) => assert_eq!(read.as_deref(), Ok(text.as_str()), "{json:?}"),
                        Err(_) => assert!(read.is_err(), "{json:?}"),
                    }
                    let skipped = serde_json::from_str::<serde::de::IgnoredAny>(&json);
                    assert_eq!(skip(&json).is_ok(), skipped.is_ok(), "{json:?}");
                }
            }
        }
    }

    #[test]
    fn the_word_test_finds_the_first_stop_byte() {
        let first = |chunk: &[u8; 8]| chunk.iter().position(|&byte| is_string_stop(byte));
        // Every byte value at every offset, after bytes that are no stop and before bytes that may be.
        for offset in 0..8 {
            for byte in 0..=255u8 {
                for (before, after) in [(b'a', b'"'), (0xff, 0x00), (b'#', b'\\'), (b' ', 0x80)] {
                    let mut chunk = [after; 8];
                    chunk[..offset].fill(before);
                    chunk[offset] = byte;
                    assert_eq!(first_stop_in_8(&chunk), first(&chunk), "{chunk:02x?}");
                }
            }
        }
        // And words of bytes drawn at random (a fixed xorshift), biased towards the bytes near the stops.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let near = [
                0x00, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xff,
            ];
            let chunk = state.to_le_bytes().map(|byte| {
                if byte & 1 == 0 {
                    near[usize::from(byte >> 1) % near.len()]
                } else {
                    byte
                }
            });
            assert_eq!(first_stop_in_8(&chunk), first(&chunk), "{chunk:02x?}");
        }
    }

    #[test]
    fn strings_are_borrowed_unless_escaped() {
        let mut reader = Reader::new(br#""plain""#);
        assert!(matches!(reader.string(), Ok(Cow::Borrowed("plain"))));
        let mut reader = Reader::new(br#""a\u002db\"""#);
        assert_eq!(reader.string(), Ok(Cow::Owned("a-b\"".to_owned())));
    }

    #[test]
    fn read_strings_refuse_lone_surrogates_and_invalid_utf8() {
        for json in [
            &br#""\uD800""#[..],
            br#""\uD800\u0041""#,
            br#""\uDC00""#,
            b"\"\xff\"",
            b"\"\\n\xff\"",
        ] {
            let mut reader = Reader::new(json);
            assert!(
                reader.string().is_err(),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
        // Skipped, they are checked as serde_json checks what it skips: escapes and control characters only.
        assert!(Reader::new(br#""\uD800""#).skip().is_ok());
        assert!(Reader::new(b"\"\xff\"").skip().is_ok());
    }

    #[test]
    fn nesting_is_limited_without_recursion() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(skip(&deep(MAX_DEPTH as usize)), Ok(()));
        // The depth to which serde_json builds a `Value`, as the documentation says.
        let builds = |n: usize| serde_json::from_str::<serde_json::Value>(&deep(n)).is_ok();
        let most = (1..200).take_while(|&n| builds(n)).last();
        assert_eq!(
            most,
            Some(MAX_DEPTH as usize - 1),
            "serde_json builds {most:?} levels"
        );
        let err = skip(&deep(MAX_DEPTH as usize + 1)).unwrap_err();
        assert_eq!(err.what, format!("nested deeper than {MAX_DEPTH} levels"));
        // The limit counts from the document's top, through what was read as well as what was skipped.
        let mut reader = Reader::new(b"[[[1]]]");
        reader.depth = MAX_DEPTH - 2;
        assert!(reader.skip().is_err());
        let mut reader = Reader::new(b"[[[1]]]");
        reader.depth = MAX_DEPTH - 3;
        assert!(reader.skip().is_ok());
        // A hostile body: no stack overflow, a clear error.
        assert!(skip(&"[{\"a\":".repeat(100_000)).is_err());
        let mixed = format!("{}1{}", "{\"a\":[".repeat(64), "]}".repeat(64));
        assert_eq!(skip(&mixed), Ok(()));
    }

    #[test]
    fn objects_and_arrays_call_back_per_member() {
        let mut reader = Reader::new(br#" {"a": [1, "x", null], "b\n": {"c": true}, "d": false} "#);
        let mut seen = Vec::new();
        reader
            .object(|r, name| {
                match name.as_ref() {
                    "a" => r.array(|r, index| {
                        seen.push(format!("a[{index}]={:?}", r.string_or_skip()?));
                        Ok(())
                    })?,
                    "d" => seen.push(format!("d={:?}", r.optional_bool()?)),
                    other => {
                        seen.push(format!("skip {other:?}"));
                        r.skip()?;
                    }
                }
                Ok(())
            })
            .unwrap();
        reader.end().unwrap();
        assert_eq!(
            seen,
            [
                "a[0]=None",
                "a[1]=Some(\"x\")",
                "a[2]=None",
                "skip \"b\\n\"",
                "d=Some(false)"
            ]
        );
        let mut reader = Reader::new(b"{\"uid\": 42}");
        let err = reader
            .object(|r, _| r.optional_string().map(drop))
            .unwrap_err();
        assert_eq!(err.to_string(), "expected a string at byte 8");
    }
}
