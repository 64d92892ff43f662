//! Pure: Kubernetes versions as `--target-version` and kubelets spell them (`v1.34.1`, `1.34`,
//! `v1.34.1-eks-1234`, `v1.34.1+k3s1`), and the checks a target must pass.

use std::cmp::Ordering;

/// `major.minor[.patch]`; a missing patch matches any patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    pub(crate) major: u32,
    pub(crate) minor: u32,
    /// Patch, when given.
    pub(crate) patch: Option<u32>,
}

/// Parses `v1.34.1`, `1.34`, `v1.34.1-eks-abc`, `v1.34.1+k3s1`; `None` for anything else.
pub(crate) fn parse(v: &str) -> Option<Version> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let num = |s: Option<&str>| {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let major = num(parts.next())?;
    let minor = num(parts.next())?;
    let patch = match parts.next() {
        None => None,
        Some(p) => Some(num(Some(p))?),
    };
    parts.next().is_none().then_some(Version {
        major,
        minor,
        patch,
    })
}

impl Version {
    /// Orders by major, minor, then patch where both have one (a missing patch compares equal).
    pub(crate) fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor)
            .cmp(&(other.major, other.minor))
            .then(match (self.patch, other.patch) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => Ordering::Equal,
            })
    }
}

/// Checks `--target-version` against the nodes' kubelets and the control plane. Errors say
/// which value is wrong and what would be valid.
pub(crate) fn check_target(
    target: &str,
    kubelets: &[(&str, &str)],
    control_plane: Option<&str>,
) -> Result<Version, String> {
    let t = parse(target).ok_or_else(|| {
        format!(
            "--target-version {target:?} is not a Kubernetes version: use MAJOR.MINOR[.PATCH], \
             e.g. v1.34.1 or 1.34"
        )
    })?;
    if let Some((node, v)) = kubelets
        .iter()
        .find(|(_, v)| parse(v).is_some_and(|k| k.compare(&t) == Ordering::Greater))
    {
        return Err(format!(
            "--target-version {target}: node {node} already runs {v}, newer than the target; \
             e2e-gate upgrades, it does not downgrade (use a target of at least {v})"
        ));
    }
    if let Some(cp) = control_plane.and_then(|c| parse(c).map(|p| (c, p))) {
        if (t.major, t.minor) > (cp.1.major, cp.1.minor) {
            return Err(format!(
                "--target-version {target}: the control plane runs {}; kubelets must not be \
                 newer than kube-apiserver (version skew policy): upgrade the control plane \
                 first, or use a target of at most v{}.{}",
                cp.0, cp.1.major, cp.1.minor
            ));
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_kubernetes_uses() {
        let v = |v: &str| parse(v).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(v("v1.34.1"), Some((1, 34, Some(1))));
        assert_eq!(v("1.34"), Some((1, 34, None)));
        assert_eq!(parse("v1.34.1-eks-a1b2"), parse("v1.34.1"));
        assert_eq!(parse("v1.34.1+k3s1"), parse("v1.34.1"));
        for bad in [
            "banana", "", "v", "1", "1.x", "1.34.1.2", "v1..2", "1.34.-1",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn targets_are_checked_against_nodes_and_control_plane() {
        // Regressions: "banana" planned 3 outdated nodes; an older target and a kubelet newer
        // than the API server were "upgraded" to.
        let nodes = [("a", "v1.33.5"), ("b", "v1.34.1")];
        let e = check_target("banana", &nodes, None).unwrap_err();
        assert!(
            e.contains("\"banana\"") && e.contains("v1.34.1 or 1.34"),
            "{e}"
        );
        let e = check_target("v1.34.0", &nodes, None).unwrap_err();
        assert!(
            e.contains("node b already runs v1.34.1") && e.contains("does not downgrade"),
            "{e}"
        );
        assert!(
            check_target("1.34", &nodes, None).is_ok(),
            "a prefix matches any patch"
        );
        let e = check_target("v1.99.0", &nodes, Some("v1.34.1")).unwrap_err();
        assert!(
            e.contains("control plane runs v1.34.1") && e.contains("at most v1.34"),
            "{e}"
        );
        assert!(check_target("v1.34.1", &nodes, Some("v1.34.1")).is_ok());
    }
}
