//! A small, checked XML tokenizer for JUnit documents held in memory.
//!
//! Why not quick-xml here: JUnit files are a few element kinds with short attribute
//! lists, and most of the bytes are either names in attributes or output the reader does
//! not keep. This scanner finds the next `<` with memchr, skips text nobody asked for
//! without looking at it, and hands back the raw attribute bytes (decoded later, only the
//! wanted ones). It checks what the reader relies on to call a file damaged: every tag
//! closed, end tags matching their start tags, no content after an unclosed construct.
//! Anything it cannot classify is an error with the byte position, never a guess.
//! The streaming path (files too big for memory) still uses quick-xml; a differential
//! test keeps both readers' results identical.

/// One token of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// `<name attrs…>` or, with `empty`, `<name attrs…/>`.
    Start {
        /// Element name as written (prefix included).
        name: &'a [u8],
        /// The raw bytes between the name and `>` / `/>`.
        attrs: &'a [u8],
        /// Self-closing.
        empty: bool,
    },
    /// `</name>`.
    End {
        /// Element name as written.
        name: &'a [u8],
    },
    /// Character data between tags, raw (entities not yet decoded). Only produced when
    /// the caller asked for text.
    Text(&'a [u8]),
    /// The content of a `<![CDATA[…]]>` section. Only produced when text was asked for.
    CData(&'a [u8]),
}

use super::attrs::short_eq;
use super::byte_class::{blank_end, find_byte, is_blank, ByteSet};

/// Why the document is not well-formed, with the byte offset where it was noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// Byte offset in the input.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed XML at byte {}: {}", self.at, self.what)
    }
}

/// Tokenizer state: position and the stack of open element names.
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    open: Vec<&'a [u8]>,
    /// The last start tag's attributes as (key, raw value) pairs, when its attribute list
    /// was a plain `key="value"` sequence (see [`Scanner::attr_pairs`]).
    pairs: Vec<(&'a [u8], &'a [u8])>,
    plain: bool,
    /// An element name with a `>` in it was opened (see [`Scanner::end_tag`]).
    odd_names: bool,
}

/// Bytes that end the usual element name. A quote or a `/` inside a name sends the tag to
/// the careful path: quick-xml (and so the streaming reader) takes any quote in a tag as
/// the start of a quoted value, and only a blank as the end of the name.
const NAME_END: ByteSet = ByteSet::new(b" \t\n\r>/\"'");
/// Bytes that end an attribute key.
const KEY_END: ByteSet = ByteSet::new(b" \t\n\r=>/\"'");

/// The first non-blank offset at or after `i`; `None` at the end of the input.
fn skip_blanks(buf: &[u8], i: usize) -> Option<usize> {
    let end = blank_end(buf, i);
    (end < buf.len()).then_some(end)
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `buf` (a UTF-8 BOM is skipped).
    pub fn new(buf: &'a [u8]) -> Self {
        let pos = if buf.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        Scanner {
            buf,
            pos,
            open: Vec::with_capacity(8),
            pairs: Vec::with_capacity(8),
            plain: false,
            odd_names: false,
        }
    }

    /// The attributes of the last [`Token::Start`] as (key, raw value) pairs, read while
    /// finding the end of the tag; `None` when the list was not a plain `key="value"`
    /// sequence (the caller then reads the raw bytes the careful way).
    pub fn attr_pairs(&self) -> Option<&[(&'a [u8], &'a [u8])]> {
        self.plain.then_some(self.pairs.as_slice())
    }

    /// Elements currently open.
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// Byte offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn err(&self, at: usize, what: impl Into<String>) -> ScanError {
        ScanError {
            at,
            what: what.into(),
        }
    }

    /// The next token; `Ok(None)` at the end of the input. Text and CDATA are returned
    /// only when `want_text` is set and an element is open (otherwise they are skipped
    /// unread).
    pub fn next(&mut self, want_text: bool) -> Result<Option<Token<'a>>, ScanError> {
        loop {
            let buf = self.buf;
            if self.pos >= buf.len() {
                return Ok(None);
            }
            if buf[self.pos] != b'<' {
                let start = self.pos;
                // Between elements there is mostly a short indent: walking it beats
                // setting up a vector search.
                let mut end = blank_end(buf, start);
                if end < buf.len() && buf[end] != b'<' {
                    end = memchr::memchr(b'<', &buf[end..]).map_or(buf.len(), |i| end + i);
                    self.check_references(start, end)?;
                }
                self.pos = end;
                if want_text && !self.open.is_empty() {
                    return Ok(Some(Token::Text(&buf[start..end])));
                }
                continue;
            }
            let lt = self.pos;
            let rest = &buf[lt + 1..];
            match rest.first() {
                None => return Err(self.err(lt, "unexpected end of file in a tag")),
                Some(b'/') => return self.end_tag(lt).map(Some),
                Some(b'?') => {
                    // `<?>` has no target: not a processing instruction (quick-xml
                    // rejects it too, even when a `?>` follows later).
                    if rest.get(1) == Some(&b'>') {
                        return Err(self.err(lt, "processing instruction without a target"));
                    }
                    self.pos = self.skip_past(lt + 2, b"?>", "processing instruction")?;
                }
                Some(b'!') => {
                    if rest.starts_with(b"!--") {
                        self.pos = self.skip_past(lt + 4, b"-->", "comment")?;
                    } else if rest.starts_with(b"![CDATA[") {
                        let body = lt + 9;
                        let end = self.skip_past(body, b"]]>", "CDATA section")?;
                        self.pos = end;
                        if want_text && !self.open.is_empty() {
                            return Ok(Some(Token::CData(&buf[body..end - 3])));
                        }
                    } else if rest.starts_with(b"!DOCTYPE") {
                        self.pos = self.skip_doctype(lt)?;
                    } else {
                        return Err(self.err(lt, "unknown markup declaration"));
                    }
                }
                Some(_) => return self.start_tag(lt).map(Some),
            }
        }
    }

    /// Every `&` in the text `buf[start..end]` must be closed by a `;` before the next `&`
    /// (the rule quick-xml applies too, so both readers call the same files damaged).
    fn check_references(&self, start: usize, end: usize) -> Result<(), ScanError> {
        let mut at = start;
        while let Some(amp) = memchr::memchr(b'&', &self.buf[at..end]) {
            let name = at + amp + 1;
            match memchr::memchr2(b'&', b';', &self.buf[name..end]) {
                Some(k) if self.buf[name + k] == b';' => at = name + k + 1,
                _ => {
                    return Err(
                        self.err(at + amp, "entity or character reference not closed by ';'")
                    )
                }
            }
        }
        Ok(())
    }

    /// Offset just past the first `close` at or after `from`.
    fn skip_past(&self, from: usize, close: &[u8], what: &str) -> Result<usize, ScanError> {
        let hay = self.buf.get(from..).unwrap_or_default();
        memchr::memmem::find(hay, close)
            .map(|i| from + i + close.len())
            .ok_or_else(|| self.err(from, format!("unexpected end of file in a {what}")))
    }

    /// `<!DOCTYPE …>` with an optional `[internal subset]` (quoted strings honoured).
    fn skip_doctype(&self, lt: usize) -> Result<usize, ScanError> {
        let mut i = lt + 9;
        let mut bracket = 0usize;
        while let Some(&b) = self.buf.get(i) {
            match b {
                b'"' | b'\'' => {
                    let close = memchr::memchr(b, &self.buf[i + 1..])
                        .ok_or_else(|| self.err(i, "unexpected end of file in DOCTYPE"))?;
                    i += close + 1;
                }
                b'[' => bracket += 1,
                b']' => bracket = bracket.saturating_sub(1),
                b'>' if bracket == 0 => return Ok(i + 1),
                _ => {}
            }
            i += 1;
        }
        Err(self.err(lt, "unexpected end of file in DOCTYPE"))
    }

    fn name_end(&self, from: usize) -> usize {
        NAME_END.find(self.buf, from).unwrap_or(self.buf.len())
    }

    fn start_tag(&mut self, lt: usize) -> Result<Token<'a>, ScanError> {
        let buf = self.buf;
        let name_start = lt + 1;
        let stop = self.name_end(name_start);
        // The usual shape: the name ends at a blank, at `>` or at `/>`. Anything else (a
        // quote or a stray `/` in the name) takes the careful path, which reads the tag
        // exactly as quick-xml does: the end first, then the name up to the first blank.
        let usual = match buf.get(stop) {
            Some(b' ' | b'\t' | b'\n' | b'\r' | b'>') => true,
            Some(b'/') => buf.get(stop + 1) == Some(&b'>'),
            _ => false,
        };
        let (name_end, gt) = if usual {
            let gt = match self.plain_attrs(stop) {
                Some(gt) => gt,
                None => self.tag_end(lt, stop)?,
            };
            (stop, gt)
        } else {
            self.plain = false;
            let gt = self.tag_end(lt, name_start)?;
            let content_end = if buf[gt - 1] == b'/' && gt > name_start {
                gt - 1
            } else {
                gt
            };
            let content = &buf[name_start..content_end];
            let len = content
                .iter()
                .position(|&b| is_blank(b))
                .unwrap_or(content.len());
            // Such a name may hold a `>` (inside quotes): the end tag's quick path,
            // which trusts the first `>` after the name, must not see it.
            self.odd_names |= content[..len].contains(&b'>');
            (name_start + len, gt)
        };
        // An empty name is not checked here: quick-xml accepts it too, and such an element
        // can only be closed by an equally odd end tag, so the damage surfaces there.
        let name = &buf[name_start..name_end];
        let empty = gt > name_start && buf[gt - 1] == b'/';
        let attrs_end = if empty { gt - 1 } else { gt };
        let attrs = buf.get(name_end..attrs_end).unwrap_or_default();
        if !empty {
            self.open.push(name);
        }
        self.pos = gt + 1;
        Ok(Token::Start { name, attrs, empty })
    }

    /// Reads a plain `key="value"` list (the shape JUnit writers produce) into
    /// `self.pairs` and returns the offset of the closing `>`; `None` for anything else.
    fn plain_attrs(&mut self, from: usize) -> Option<usize> {
        let buf = self.buf;
        self.pairs.clear();
        self.plain = false;
        let mut i = skip_blanks(buf, from)?;
        loop {
            match buf[i] {
                b'>' => break,
                b'/' if buf.get(i + 1) == Some(&b'>') => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            let key_start = i;
            i = KEY_END.find(buf, i)?;
            let key = &buf[key_start..i];
            i = skip_blanks(buf, i)?;
            if key.is_empty() || buf[i] != b'=' {
                return None;
            }
            i = skip_blanks(buf, i + 1)?;
            let quote = buf[i];
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let start = i + 1;
            let end = find_byte(buf, start, quote)?;
            self.pairs.push((key, &buf[start..end]));
            // Attributes must be separated by blanks.
            let after = *buf.get(end + 1)?;
            if is_blank(after) {
                i = skip_blanks(buf, end + 1)?;
            } else if after == b'>' || after == b'/' {
                i = end + 1;
            } else {
                return None;
            }
        }
        self.plain = true;
        Some(i)
    }

    /// The offset of the `>` ending a tag: the first one outside a quoted value.
    fn tag_end(&self, lt: usize, name_end: usize) -> Result<usize, ScanError> {
        let buf = self.buf;
        let mut i = name_end;
        loop {
            let Some(off) = memchr::memchr3(b'>', b'"', b'\'', &buf[i..]) else {
                return Err(self.err(lt, "unexpected end of file in a tag"));
            };
            let at = i + off;
            if buf[at] == b'>' {
                return Ok(at);
            }
            let Some(close) = memchr::memchr(buf[at], &buf[at + 1..]) else {
                return Err(self.err(at, "unexpected end of file in an attribute value"));
            };
            i = at + 1 + close + 1;
        }
    }

    fn end_tag(&mut self, lt: usize) -> Result<Token<'a>, ScanError> {
        let buf = self.buf;
        // The usual end tag: `</` + the open element's name + `>`.
        if let Some(&open) = self.open.last().filter(|_| !self.odd_names) {
            let name_end = lt + 2 + open.len();
            if buf.get(name_end) == Some(&b'>') && short_eq(&buf[lt + 2..name_end], open) {
                self.open.pop();
                self.pos = name_end + 1;
                return Ok(Token::End { name: open });
            }
        }
        let Some(gt) = find_byte(buf, lt, b'>') else {
            return Err(self.err(lt, "unexpected end of file in an end tag"));
        };
        let raw = &buf[lt + 2..gt];
        let name_len = raw.iter().position(|&b| is_blank(b)).unwrap_or(raw.len());
        let (name, tail) = raw.split_at(name_len);
        if !tail.iter().all(|&b| is_blank(b)) {
            return Err(self.err(lt, "junk in an end tag"));
        }
        match self.open.pop() {
            Some(open) if short_eq(open, name) => {}
            Some(open) => {
                return Err(self.err(
                    lt,
                    format!(
                        "expected </{}>, found </{}>",
                        String::from_utf8_lossy(open),
                        String::from_utf8_lossy(name)
                    ),
                ))
            }
            None => {
                return Err(self.err(
                    lt,
                    format!(
                        "</{}> closes nothing that is open",
                        String::from_utf8_lossy(name)
                    ),
                ))
            }
        }
        self.pos = gt + 1;
        Ok(Token::End { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(xml: &str, want_text: bool) -> Result<Vec<String>, ScanError> {
        let mut sc = Scanner::new(xml.as_bytes());
        let mut out = Vec::new();
        while let Some(t) = sc.next(want_text)? {
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            out.push(match t {
                Token::Start { name, attrs, empty } => {
                    let pairs = match sc.attr_pairs() {
                        Some(p) => p
                            .iter()
                            .map(|(k, v)| format!("{}={}", s(k), s(v)))
                            .collect::<Vec<_>>()
                            .join(","),
                        None => format!("raw:{}", s(attrs).trim()),
                    };
                    format!("<{}{}[{pairs}]>", s(name), if empty { "/" } else { "" })
                }
                Token::End { name } => format!("</{}>", s(name)),
                Token::Text(t) => format!("T({})", s(t)),
                Token::CData(t) => format!("C({})", s(t)),
            });
        }
        assert_eq!(sc.depth(), 0, "{xml}");
        Ok(out)
    }

    #[test]
    fn tokens_of_every_construct() {
        let xml =
            "\u{feff}<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"]>\">]>\n<!-- c > -->\
            <a:suite x='1' y = \"a>b\"><case n=\"v\"/>text &amp; more<![CDATA[<raw>]]>\
            <odd k=noquote/><e></e></a:suite>\n";
        assert_eq!(
            tokens(xml, true).unwrap(),
            [
                "<a:suite[x=1,y=a>b]>",
                "<case/[n=v]>",
                "T(text &amp; more)",
                "C(<raw>)",
                "<odd/[raw:k=noquote]>",
                "<e[]>",
                "</e>",
                "</a:suite>",
            ]
        );
        // Without text wanted, text and CDATA are skipped unread.
        assert_eq!(tokens(xml, false).unwrap().len(), 6);
    }

    #[test]
    fn damage_is_an_error_with_a_position() {
        for (xml, at, what) in [
            ("<a><b></a>", 6, "expected </b>, found </a>"),
            ("<a></a></b>", 7, "</b> closes nothing"),
            ("<a><b x=\"1", 8, "end of file in an attribute value"),
            ("<a><b", 3, "end of file in a tag"),
            ("<a><!-- x", 7, "end of file in a comment"),
            ("<a><![CDATA[x", 12, "end of file in a CDATA"),
            ("<a></a", 3, "end of file in an end tag"),
            ("<a>< b></a>", 7, "expected </>, found </a>"),
            ("<a>x<", 4, "end of file in a tag"),
            ("<a>x &amp y</a>", 5, "reference not closed"),
            ("<?>x?><a></a>", 0, "without a target"),
            ("<a>x &amp &lt;</a>", 5, "reference not closed"),
            // A quoted `>` in a name: the end tag ends at its first `>`, as in quick-xml.
            (
                "<a\"x>y\"></a\"x>y\">",
                8,
                "expected </a\"x>y\">, found </a\"x>",
            ),
        ] {
            let e = tokens(xml, true).expect_err(xml);
            assert_eq!(e.at, at, "{xml}: {e}");
            assert!(e.to_string().contains(what), "{xml}: {e}");
            assert!(e.to_string().starts_with("malformed XML at byte "), "{e}");
        }
        // Unclosed elements are not a scanner error: the reader sees the depth.
        let mut sc = Scanner::new(b"<a><b>");
        while sc.next(false).unwrap().is_some() {}
        assert_eq!(sc.depth(), 2);
    }
}
