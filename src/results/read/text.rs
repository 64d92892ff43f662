//! Bounded text accumulation (captured output, failure text).

/// A bounded text accumulator: keeps the tail (outputs) or the head (failure text).
#[derive(Debug, Default)]
pub(crate) struct BoundedText {
    buf: String,
    cap: usize,
    keep_head: bool,
    dropped: usize,
}

impl BoundedText {
    /// Keeps at most `cap` bytes of the end of the text.
    pub(crate) fn tail(cap: usize) -> Self {
        BoundedText {
            cap,
            ..Default::default()
        }
    }

    /// Keeps at most `cap` bytes of the start of the text.
    pub(crate) fn head(cap: usize) -> Self {
        BoundedText {
            cap,
            keep_head: true,
            ..Default::default()
        }
    }

    /// Whether text must be decoded and pushed: it is kept, or (once a kept head is full)
    /// counted for the "bytes truncated" note. Only a zero cap needs nothing.
    pub(crate) fn wants(&self) -> bool {
        self.cap > 0
    }

    pub(crate) fn push(&mut self, s: &str) {
        if self.cap == 0 {
            self.dropped += s.len();
            return;
        }
        if self.keep_head {
            let room = self.cap.saturating_sub(self.buf.len());
            if s.len() <= room {
                self.buf.push_str(s);
            } else {
                let cut = s.floor_char_boundary(room);
                self.buf.push_str(&s[..cut]);
                self.dropped += s.len() - cut;
            }
            return;
        }
        self.buf.push_str(s);
        if self.buf.len() > self.cap.saturating_mul(2).max(8192) {
            self.trim_front();
        }
    }

    pub(crate) fn push_char(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.push(c.encode_utf8(&mut b));
    }

    fn trim_front(&mut self) {
        if self.buf.len() > self.cap {
            let cut = self.buf.ceil_char_boundary(self.buf.len() - self.cap);
            self.dropped += cut;
            self.buf.drain(..cut);
        }
    }

    /// The kept text, `None` when empty; notes how much was dropped.
    pub(crate) fn finish(mut self) -> Option<String> {
        if !self.keep_head {
            self.trim_front();
        }
        if self.buf.trim().is_empty() {
            return None;
        }
        if self.dropped > 0 {
            if self.keep_head {
                self.buf
                    .push_str(&format!("\n[… {} bytes truncated …]", self.dropped));
            } else {
                self.buf
                    .insert_str(0, &format!("[… {} bytes truncated …]\n", self.dropped));
            }
        }
        Some(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_text() {
        let mut t = BoundedText::tail(4);
        t.push("héllo world");
        assert_eq!(t.finish().unwrap(), "[… 8 bytes truncated …]\norld");
        let mut h = BoundedText::head(3);
        h.push("héllo");
        assert_eq!(h.finish().unwrap(), "h\u{e9}\n[… 3 bytes truncated …]");
        // Pieces pushed after the head is full are still counted.
        let mut h = BoundedText::head(2);
        for piece in ["ab", "\n", "cd", "e"] {
            assert!(h.wants());
            h.push(piece);
        }
        assert_eq!(h.finish().unwrap(), "ab\n[… 4 bytes truncated …]");
        let mut z = BoundedText::tail(0);
        z.push("x");
        assert_eq!(z.finish(), None);
    }
}
