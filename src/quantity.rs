//! Kubernetes resource quantities ("250m", "1.5", "128Mi", "1G", "1e3") as integers:
//! CPU in millicores, everything else in base units. The one parser: the planner reads
//! nodes and pods with it, and the simulated cluster schedules with it.

/// A quantity that could not be parsed; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid resource quantity {text:?}")]
pub struct QuantityError {
    /// The text as found on the object.
    pub(crate) text: String,
}

const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ei", 1_152_921_504_606_846_976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

fn parse_f64(text: &str) -> Result<f64, QuantityError> {
    let err = || QuantityError {
        text: text.to_string(),
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(err());
    }
    for (suffix, mult) in SUFFIXES {
        if let Some(num) = t.strip_suffix(suffix) {
            // "1e3" ends in a digit, never in a suffix; "1E" is exa.
            let n: f64 = num.parse().map_err(|_| err())?;
            return Ok(n * mult);
        }
    }
    let n: f64 = t.parse().map_err(|_| err())?;
    if n.is_finite() {
        Ok(n)
    } else {
        Err(err())
    }
}

/// CPU quantity in millicores, rounded up (as the scheduler does).
pub(crate) fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    rounded_up(text, parse_f64(text)? * 1000.0)
}

/// Any other quantity (memory, pods, storage) in base units, rounded up.
pub(crate) fn base_units(text: &str) -> Result<u64, QuantityError> {
    rounded_up(text, parse_f64(text)?)
}

fn rounded_up(text: &str, v: f64) -> Result<u64, QuantityError> {
    if v < 0.0 {
        return Err(QuantityError {
            text: text.to_string(),
        });
    }
    Ok(v.ceil() as u64)
}

/// A quantity as the simulated cluster stores it (a JSON string or number), in millicores;
/// `None` when absent or unreadable.
pub(crate) fn json_cpu_millis(v: &serde_json::Value) -> Option<i64> {
    json_text(v)
        .and_then(|t| cpu_millis(&t).ok())
        .map(|m| m as i64)
}

/// As [`json_cpu_millis`], in base units (bytes, pods).
pub(crate) fn json_base_units(v: &serde_json::Value) -> Option<i64> {
    json_text(v)
        .and_then(|t| base_units(&t).ok())
        .map(|m| m as i64)
}

fn json_text(v: &serde_json::Value) -> Option<String> {
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
    fn cpu_forms() {
        for (text, want) in [
            ("250m", 250),
            ("1", 1000),
            ("1.5", 1500),
            ("0.1", 100),
            ("2k", 2_000_000),
        ] {
            assert_eq!(cpu_millis(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn memory_forms() {
        for (text, want) in [
            ("128Mi", 134_217_728),
            ("1Gi", 1_073_741_824),
            ("1G", 1_000_000_000),
            ("1e3", 1000),
            ("110", 110),
            ("1500m", 2),
        ] {
            assert_eq!(base_units(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn the_simulated_cluster_reads_json_strings_and_numbers_alike() {
        // "1k" CPU was None in the sim's old parser and 1,000,000m in the planner's.
        assert_eq!(json_cpu_millis(&serde_json::json!("1k")), Some(1_000_000));
        assert_eq!(json_cpu_millis(&serde_json::json!(2)), Some(2000));
        assert_eq!(
            json_base_units(&serde_json::json!("128Mi")),
            Some(134_217_728)
        );
        assert_eq!(json_base_units(&serde_json::Value::Null), None);
    }

    #[test]
    fn garbage_is_an_error_naming_the_text() {
        let e = base_units("lots").unwrap_err();
        assert!(e.to_string().contains("\"lots\""));
        assert!(cpu_millis("").is_err());
        assert!(cpu_millis("-1").is_err());
    }
}
