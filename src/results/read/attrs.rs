//! Attribute reading for the JUnit reader's start tags: one pass over the raw bytes for the
//! plain `key="value"` lists ginkgo writes, quick-xml's checked iterator otherwise.

use quick_xml::events::BytesStart;
use std::borrow::Cow;

/// The values of the wanted attributes from one pass over the raw attribute bytes (the hot
/// path: a fast scanner for well-formed `key="value"` lists, quick-xml's checked iterator
/// for anything unusual). Entities are decoded only when a value holds `&`.
///
/// `raw`: the bytes between an element's name and the end of its tag.
pub(crate) fn attrs_raw<'a, const N: usize>(
    raw: &'a [u8],
    keys: [&[u8]; N],
) -> [Option<Cow<'a, str>>; N] {
    let mut out: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    if scan_attrs(raw, &keys, &mut out).is_none() {
        out = std::array::from_fn(|_| None);
        // quick-xml's iterator skips what it cannot read and keeps the rest.
        let e = BytesStart::from_content(String::from_utf8_lossy(raw), 0);
        for a in e.attributes().flatten() {
            if let Some(i) = keys.iter().position(|k| *k == a.key.as_ref()) {
                if out[i].is_none() {
                    out[i] = Some(Cow::Owned(
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| v.into_owned())
                            .unwrap_or_else(|_| String::from_utf8_lossy(&a.value).into_owned()),
                    ));
                }
            }
        }
    }
    out
}

/// `None` when the attribute list is not a plain `key="value"` sequence.
fn scan_attrs<'a, const N: usize>(
    raw: &'a [u8],
    keys: &[&[u8]; N],
    out: &mut [Option<Cow<'a, str>>; N],
) -> Option<()> {
    let mut i = 0;
    let n = raw.len();
    loop {
        while i < n && raw[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n || raw[i] == b'/' {
            return Some(());
        }
        // One pass over the key: it ends at `=` or at whitespace, which must then be
        // followed by `=` (a key with a blank inside is not a plain list).
        let key_start = i;
        while i < n && raw[i] != b'=' && !raw[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &raw[key_start..i];
        while i < n && raw[i].is_ascii_whitespace() {
            i += 1;
        }
        if key.is_empty() || i >= n || raw[i] != b'=' {
            return None;
        }
        i += 1;
        while i < n && raw[i].is_ascii_whitespace() {
            i += 1;
        }
        let quote = *raw.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let start = i + 1;
        let end = start + memchr::memchr(quote, &raw[start..])?;
        i = end + 1;
        // Only wanted values are decoded; the rest are skipped unread.
        // First byte before the full compare: `name` and `time` have the same length.
        let wanted = |k: &&[u8]| short_eq(k, key);
        if let Some(k) = keys.iter().position(wanted) {
            if out[k].is_none() {
                out[k] = Some(decode_value(&raw[start..end])?);
            }
        }
    }
}

/// Whether every byte is printable ASCII other than `&`: such a value needs neither entity
/// decoding nor attribute-value normalisation. Checked 16 bytes at a
/// time without early exit so the compiler vectorises it (names are ~150 bytes; this is
/// the hot path of every testcase).
fn plain_ascii(v: &[u8]) -> bool {
    fn odd(b: u8) -> u8 {
        (b.wrapping_sub(0x20) >= 0x60) as u8 | (b == b'&') as u8
    }
    fn odd16(c: &[u8; 16]) -> bool {
        c.iter().fold(0u8, |acc, &b| acc | odd(b)) != 0
    }
    let Some(last) = v.last_chunk::<16>() else {
        return v.iter().all(|&b| odd(b) == 0);
    };
    let (chunks, _) = v.as_chunks::<16>();
    // The last 16 bytes (overlapping what the chunks saw) cover the remainder in one step.
    !chunks.iter().any(odd16) && !odd16(last)
}

/// A raw attribute value decoded (entities, normalised blanks); `None` when it cannot be
/// (the caller then reads the attribute list the careful way).
pub(crate) fn decode_value(v: &[u8]) -> Option<Cow<'_, str>> {
    let utf8 = std::str::from_utf8(v);
    // Plain values (most names, every classname) skip the scan for bytes to rewrite; they
    // are still checked as UTF-8 (cheap on ASCII, about 5% of a corpus parse).
    if let (true, Ok(s)) = (plain_ascii(v), utf8) {
        return Some(Cow::Borrowed(s));
    }
    let s = match utf8 {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    };
    let special = |b: &u8| matches!(b, b'&' | b'\n' | b'\t' | b'\r');
    if !v.iter().any(special) {
        return Some(s);
    }
    let spaced: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect();
    quick_xml::escape::unescape(&spaced)
        .ok()
        .map(|u| Cow::Owned(u.into_owned()))
}

/// Known words as static strings (no allocation per testcase).
pub fn word(v: Cow<'_, str>) -> Cow<'static, str> {
    // A `match` compiles to a switch on the length, not a walk over a list.
    let known: &'static str = match v.as_ref() {
        "passed" => "passed",
        "skipped" => "skipped",
        "pending" => "pending",
        "failed" => "failed",
        "timedout" => "timedout",
        "panicked" => "panicked",
        "interrupted" => "interrupted",
        "aborted" => "aborted",
        "Failure" => "Failure",
        "Timeout" => "Timeout",
        "Panic" => "Panic",
        _ => return Cow::Owned(v.into_owned()),
    };
    Cow::Borrowed(known)
}

/// A numeric attribute (`time="1.5"`), `None` when absent or not a number.
pub(crate) fn to_f64(v: Option<Cow<'_, str>>) -> Option<f64> {
    let v = v?;
    let s = v.trim();
    plain_decimal(s.as_bytes()).or_else(|| s.parse::<f64>().ok())
}

/// `digits[.digits]` with at most 15 digits in all, rounded exactly as `str::parse` does:
/// such a mantissa and a power of ten up to 10^15 are exact doubles, so one division is
/// correctly rounded (Clinger's fast path). Every testcase has a `time`; the general
/// parser's setup cost showed in profiles.
pub(crate) fn plain_decimal(b: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    if b.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut frac: Option<usize> = None;
    for &c in b {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                if let Some(f) = frac.as_mut() {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    if digits == 0 || digits > 15 {
        return None;
    }
    // Skipped specs say `time="0"`: no division (it showed in profiles) when none is needed.
    match frac.unwrap_or(0) {
        0 => Some(mantissa as f64),
        _ if mantissa == 0 => Some(0.0),
        f => Some(mantissa as f64 / POW10[f]),
    }
}

/// Equality of short byte strings (attribute keys, element names) without a call into
/// libc's `memcmp`, whose call overhead dominated at these lengths.
#[inline]
pub(crate) fn short_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The attributes of a tag's inner text, as the reader passes them.
    fn attrs<'a, const N: usize>(xml: &'a str, keys: [&[u8]; N]) -> [Option<Cow<'a, str>>; N] {
        let name_len = xml.find(' ').unwrap_or(xml.len());
        attrs_raw(&xml.as_bytes()[name_len..], keys)
    }

    #[test]
    fn plain_decoded_and_fallback() {
        let e = r#"testcase name="a &amp; b&#xA;c" time = '1.5' status="passed""#;
        let [name, time, status, missing] = attrs(e, [b"name", b"time", b"status", b"x"]);
        assert_eq!(name.as_deref(), Some("a & b\nc"));
        assert_eq!(to_f64(time), Some(1.5));
        assert!(matches!(status.map(word), Some(Cow::Borrowed("passed"))));
        assert!(missing.is_none());
        // not a plain list: quick-xml's iterator is used, the good attribute still read
        let e = r#"testcase name="z" odd=noquote"#;
        let [name] = attrs(e, [b"name"]);
        assert_eq!(name.as_deref(), Some("z"));
        let e = r#"testcase odd name="z""#;
        let [name] = attrs(e, [b"name"]);
        assert!(name.is_none() || name.as_deref() == Some("z"));
    }

    #[test]
    fn plain_decimals_round_as_the_parser_does() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 15 + 1) as usize;
            let mantissa = (x >> 8) % 10u64.pow(digits as u32);
            let s = format!("{mantissa:0digits$}");
            let dot = (i as usize) % (digits + 1);
            let s = format!("{}.{}", &s[..dot], &s[dot..]);
            for v in [
                s.as_str(),
                s.trim_end_matches('.'),
                "0",
                "0.000",
                "000",
                "42",
                "11.152117136",
                "2598.446485478",
            ] {
                assert_eq!(to_f64(Some(Cow::Borrowed(v))), v.parse::<f64>().ok(), "{v}");
            }
        }
        for odd in [
            "",
            ".",
            "1e3",
            "-1.5",
            " 2.5 ",
            "1.2.3",
            "1234567890123456",
            "0.1234567890123456",
            "nan",
            "+1",
        ] {
            assert_eq!(
                to_f64(Some(Cow::Borrowed(odd))).map(f64::to_bits),
                odd.trim().parse::<f64>().ok().map(f64::to_bits),
                "{odd}"
            );
        }
        assert!(
            short_eq(b"name", b"name") && !short_eq(b"name", b"time") && !short_eq(b"a", b"ab")
        );
    }

    #[test]
    fn plain_check_sees_every_byte() {
        for len in [0, 1, 15, 16, 17, 31, 32, 33, 150] {
            let plain = "a".repeat(len);
            assert!(plain_ascii(plain.as_bytes()), "{len}");
            for at in 0..len {
                for odd in [b'&', b'\n', b'\t', b'\r', 0x01, 0xc3, 0xff] {
                    let mut v = plain.clone().into_bytes();
                    v[at] = odd;
                    assert!(!plain_ascii(&v), "len {len}, byte {odd:#x} at {at}");
                }
            }
        }
        assert_eq!(
            decode_value("h\u{e9}llo &amp; x".as_bytes()).as_deref(),
            Some("h\u{e9}llo & x")
        );
        assert_eq!(decode_value(b"a\tb\nc").as_deref(), Some("a b c"));
        assert_eq!(decode_value(b"~ok~").as_deref(), Some("~ok~"));
    }
}
