//! Byte-class searches for the in-memory scanner, 16 bytes at a time.
//!
//! Why: the scanner spends most of its instructions finding the end of short runs (an
//! element name, an attribute key, an indent, a short attribute value). A byte loop costs
//! several instructions per byte, a memchr call costs its setup on every short value. On
//! x86_64, SSE2 (part of the baseline, so always present) compares 16 bytes in a handful
//! of instructions; elsewhere the same functions run as plain loops.
//!
//! [`ByteSet`] searches compare each 16 bytes with every member at once (at most nine:
//! the delimiters of XML names and keys), so the first hit is exact, with no per-byte
//! check that the next step would have to wait for.

/// Most members a [`ByteSet`] holds.
const MAX_MEMBERS: usize = 9;

/// A small set of bytes the scanner stops at.
pub struct ByteSet {
    /// The members, padded with copies of the first (harmless in an OR of compares).
    members: [u8; MAX_MEMBERS],
}

impl ByteSet {
    /// The set of `bytes` (one to nine of them; more panics, at compile time for a
    /// `const`).
    pub const fn new(bytes: &[u8]) -> ByteSet {
        assert!(
            !bytes.is_empty() && bytes.len() <= MAX_MEMBERS,
            "a ByteSet holds 1 to 9 bytes"
        );
        let mut members = [bytes[0]; MAX_MEMBERS];
        let mut i = 0;
        while i < bytes.len() {
            members[i] = bytes[i];
            i += 1;
        }
        ByteSet { members }
    }

    /// Whether `b` is in the set.
    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.members.contains(&b)
    }

    /// The first offset at or after `i` holding a member; `None` when there is none.
    #[inline]
    pub fn find(&self, buf: &[u8], mut i: usize) -> Option<usize> {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        while i + 16 <= buf.len() {
            let hits = sse2::any_of(buf, i, &self.members);
            if hits != 0 {
                return Some(i + hits.trailing_zeros() as usize);
            }
            i += 16;
        }
        let rest = buf.get(i..)?;
        rest.iter().position(|&b| self.contains(b)).map(|p| i + p)
    }
}

/// XML's blanks.
#[inline]
pub fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The first offset at or after `i` holding a byte that is not a blank (`buf.len()` when
/// there is none).
#[inline]
pub fn blank_end(buf: &[u8], mut i: usize) -> usize {
    // Between attributes there is usually one space: no vector for that.
    match buf.get(i) {
        Some(&b) if !is_blank(b) => return i,
        Some(_) if buf.get(i + 1).is_some_and(|&b| !is_blank(b)) => return i + 1,
        _ => {}
    }
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while i + 16 <= buf.len() {
        let other = sse2::not_blank(buf, i);
        if other != 0 {
            return i + other.trailing_zeros() as usize;
        }
        i += 16;
    }
    while let Some(&b) = buf.get(i) {
        if !is_blank(b) {
            break;
        }
        i += 1;
    }
    i
}

/// The first offset at or after `i` holding `needle`; `None` when there is none. The
/// first 16 bytes are looked at inline: most attribute values and end tags are shorter,
/// and for them memchr's setup cost more than the search.
#[inline]
pub fn find_byte(buf: &[u8], i: usize, needle: u8) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    if i + 16 <= buf.len() {
        let hit = sse2::equal(buf, i, needle);
        if hit != 0 {
            return Some(i + hit.trailing_zeros() as usize);
        }
        let from = i + 16;
        return memchr::memchr(needle, &buf[from..]).map(|p| from + p);
    }
    memchr::memchr(needle, buf.get(i..)?).map(|p| i + p)
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    /// The 16 bytes at `buf[i..i + 16]`.
    #[inline]
    fn load(buf: &[u8], i: usize) -> __m128i {
        let chunk: &[u8; 16] = buf[i..i + 16].try_into().expect("16 bytes");
        // SAFETY: `chunk` is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
    }

    /// Bit k set when byte `i + k` is one of `members`.
    #[inline]
    pub fn any_of(buf: &[u8], i: usize, members: &[u8; super::MAX_MEMBERS]) -> u32 {
        let v = load(buf, i);
        // SAFETY: SSE2 is enabled for this build (the module's cfg); plain register math.
        unsafe {
            let mut hits = _mm_cmpeq_epi8(v, _mm_set1_epi8(members[0] as i8));
            for &m in &members[1..] {
                hits = _mm_or_si128(hits, _mm_cmpeq_epi8(v, _mm_set1_epi8(m as i8)));
            }
            _mm_movemask_epi8(hits) as u32
        }
    }

    /// Bit k set when byte `i + k` is not a blank.
    #[inline]
    pub fn not_blank(buf: &[u8], i: usize) -> u32 {
        let v = load(buf, i);
        // SAFETY: SSE2 is enabled for this build (the module's cfg); plain register math.
        let blank = unsafe {
            let sp = _mm_cmpeq_epi8(v, _mm_set1_epi8(b' ' as i8));
            let nl = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8));
            let tab = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\t' as i8));
            let cr = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(sp, nl), _mm_or_si128(tab, cr)))
        };
        !(blank as u32) & 0xFFFF
    }

    /// Bit k set when byte `i + k` is `needle`.
    #[inline]
    pub fn equal(buf: &[u8], i: usize, needle: u8) -> u32 {
        let v = load(buf, i);
        // SAFETY: SSE2 is enabled for this build (the module's cfg); plain register math.
        unsafe { _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(needle as i8))) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: ByteSet = ByteSet::new(b" \t\n\r=>/\"'");

    /// A deterministic mix of letters, delimiters, blanks and non-ASCII bytes.
    fn samples() -> Vec<Vec<u8>> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b" \t\n\r=>/\"'<&-.:_aZ09\x01\x7f\x80\xc3\xa9\xff";
        (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = (x % 70) as usize;
                (0..len)
                    .map(|k| {
                        let r = (x >> (k % 57)) as usize;
                        if r.is_multiple_of(3) {
                            alphabet[r % alphabet.len()]
                        } else {
                            b'a' + (r % 26) as u8
                        }
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_search_matches_a_byte_loop() {
        for s in samples() {
            for from in 0..=s.len().min(20) {
                let naive_set = s[from..]
                    .iter()
                    .position(|&b| KEYS.contains(b))
                    .map(|p| from + p);
                assert_eq!(KEYS.find(&s, from), naive_set, "{s:?} from {from}");
                let naive_blank = s[from..]
                    .iter()
                    .position(|&b| !is_blank(b))
                    .map_or(s.len(), |p| from + p);
                assert_eq!(blank_end(&s, from), naive_blank, "{s:?} from {from}");
                for needle in [b'"', b'>', b'\''] {
                    let naive = s[from..]
                        .iter()
                        .position(|&b| b == needle)
                        .map(|p| from + p);
                    assert_eq!(find_byte(&s, from, needle), naive, "{s:?} from {from}");
                }
            }
        }
        assert_eq!(KEYS.find(b"abc", 5), None);
        assert_eq!(blank_end(b"  ", 5), 5);
        assert_eq!(find_byte(b"", 0, b'"'), None);
    }

    #[test]
    fn long_blank_runs_and_late_hits() {
        for len in 0..70 {
            for tail in ["<", "x", "\t<", ""] {
                for lead in ["", "\n", "\r\n", "\t"] {
                    let s = format!("{lead}{}{tail}", " ".repeat(len));
                    let naive = s.bytes().position(|b| !is_blank(b)).unwrap_or(s.len());
                    assert_eq!(blank_end(s.as_bytes(), 0), naive, "{s:?}");
                    let q = format!("{}\"", "a".repeat(len));
                    assert_eq!(find_byte(q.as_bytes(), 0, b'"'), Some(len));
                    assert_eq!(KEYS.find(q.as_bytes(), 0), Some(len));
                }
            }
        }
    }
}
