//! Fast attribute reading for quick-xml start tags: one pass over the raw bytes for the
//! plain `key="value"` lists ginkgo writes, quick-xml's checked iterator otherwise.

use quick_xml::events::BytesStart;
use std::borrow::Cow;

/// The values of the wanted attributes from one pass over the raw attribute bytes (the hot
/// path: a fast scanner for well-formed `key="value"` lists, quick-xml's checked iterator
/// for anything unusual). Entities are decoded only when a value holds `&`.
pub fn attrs<'a, const N: usize>(
    e: &'a BytesStart<'_>,
    keys: [&[u8]; N],
) -> [Option<Cow<'a, str>>; N] {
    let mut out: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    if scan_attrs(e.attributes_raw(), &keys, &mut out).is_none() {
        out = std::array::from_fn(|_| None);
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
        let eq = i + raw[i..].iter().position(|&b| b == b'=')?;
        let key = raw[i..eq].trim_ascii();
        if key.is_empty() || key.iter().any(u8::is_ascii_whitespace) {
            return None;
        }
        let mut j = eq + 1;
        while j < n && raw[j].is_ascii_whitespace() {
            j += 1;
        }
        let quote = *raw.get(j)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let end = j + 1 + memchr::memchr(quote, &raw[j + 1..])?;
        let value = &raw[j + 1..end];
        i = end + 1;
        if let Some(k) = keys.iter().position(|k| *k == key) {
            if out[k].is_none() {
                out[k] = Some(decode_value(value)?);
            }
        }
    }
}

fn decode_value(v: &[u8]) -> Option<Cow<'_, str>> {
    let s = match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    };
    let special = |b: &u8| matches!(b, b'&' | b'\n' | b'\t' | b'\r');
    let plain = if v.len() < 48 {
        !v.iter().any(special)
    } else {
        memchr::memchr3(b'&', b'\n', b'\t', v).is_none() && memchr::memchr(b'\r', v).is_none()
    };
    if plain {
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
    const KNOWN: &[&str] = &[
        "passed",
        "skipped",
        "pending",
        "failed",
        "timedout",
        "panicked",
        "interrupted",
        "aborted",
        "Failure",
        "Timeout",
        "Panic",
    ];
    match KNOWN.iter().find(|k| **k == v) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(v.into_owned()),
    }
}

/// A numeric attribute (`time="1.5"`), `None` when absent or not a number.
pub fn to_f64(v: Option<Cow<'_, str>>) -> Option<f64> {
    v.and_then(|v| v.trim().parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(xml: &str) -> BytesStart<'_> {
        BytesStart::from_content(xml, xml.find(' ').unwrap_or(xml.len()))
    }

    #[test]
    fn plain_decoded_and_fallback() {
        let e = start(r#"testcase name="a &amp; b&#xA;c" time = '1.5' status="passed""#);
        let [name, time, status, missing] = attrs(&e, [b"name", b"time", b"status", b"x"]);
        assert_eq!(name.as_deref(), Some("a & b\nc"));
        assert_eq!(to_f64(time), Some(1.5));
        assert!(matches!(status.map(word), Some(Cow::Borrowed("passed"))));
        assert!(missing.is_none());
        // not a plain list: quick-xml's iterator is used, the good attribute still read
        let e = start(r#"testcase name="z" odd=noquote"#);
        let [name] = attrs(&e, [b"name"]);
        assert_eq!(name.as_deref(), Some("z"));
        let e = start(r#"testcase odd name="z""#);
        let [name] = attrs(&e, [b"name"]);
        assert!(name.is_none() || name.as_deref() == Some("z"));
    }
}
