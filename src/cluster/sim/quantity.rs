//! Kubernetes resource quantities (the subset pods and nodes use).

/// CPU in millicores ("100m", "2", "0.5").
pub fn cpu_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<f64>().ok().map(|v| v.ceil() as i64);
    }
    s.parse::<f64>().ok().map(|v| (v * 1000.0).ceil() as i64)
}

/// Memory/storage in bytes ("128Mi", "1Gi", "1G", "1000", "1e3").
pub fn bytes(s: &str) -> Option<i64> {
    let s = s.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("m", 1e-3),
    ];
    for (suf, mult) in SUFFIXES {
        if let Some(n) = s.strip_suffix(suf) {
            return n.parse::<f64>().ok().map(|v| (v * mult).ceil() as i64);
        }
    }
    s.parse::<f64>().ok().map(|v| v.ceil() as i64)
}

/// Reads a quantity that may be a JSON string or number.
pub fn json_str(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses() {
        assert_eq!(cpu_milli("100m"), Some(100));
        assert_eq!(cpu_milli("2"), Some(2000));
        assert_eq!(cpu_milli("0.5"), Some(500));
        assert_eq!(bytes("128Mi"), Some(134217728));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("x"), None);
    }
}
