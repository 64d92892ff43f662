//! The smoke suite's image, built locally from e2e-gate's own binary: `FROM scratch` plus the
//! binary and the shared libraries it loads (found with `ldd`). Nothing is pulled.
//!
//! The binary is dynamically linked against glibc, whose resolver (NSS is built into libc since
//! glibc 2.34) needs `/etc/nsswitch.conf`; with it, the kube client resolves cluster host names
//! such as a kind control plane on the `kind` network.

use std::path::{Path, PathBuf};

/// Where hosts keep their CA bundle (Debian/Ubuntu, Fedora/RHEL); the first found is copied.
const CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Default tag of the smoke image.
pub(crate) const DEFAULT_TAG: &str = "e2e-gate-smoke:local";

/// Shared libraries named by `ldd` output (absolute paths only; the vDSO has none).
pub(crate) fn parse_ldd(output: &str) -> Vec<PathBuf> {
    output
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Image label holding the fingerprint of the binary inside ([`fingerprint`]).
pub(crate) const BINARY_LABEL: &str = "io.e2e-gate.binary-fnv64";

/// A fingerprint of the binary's bytes (FNV-1a, 64 bits): the smoke image is rebuilt when the
/// binary that would go into it differs from the one it holds (it went stale after every
/// code change while only a missing image was rebuilt).
pub(crate) fn fingerprint(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{h:016x}")
}

/// The Dockerfile of the image; `fingerprint` labels the binary it holds.
pub(crate) fn dockerfile(fingerprint: &str) -> String {
    format!(
        "FROM scratch\nCOPY rootfs/ /\nLABEL {BINARY_LABEL}=\"{fingerprint}\"\nENTRYPOINT [\"/e2e-gate\", \"smoke\", \"run\"]\n"
    )
}

fn add_file(
    tar: &mut tar::Builder<Vec<u8>>,
    path_in_tar: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), String> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, path_in_tar, bytes)
        .map_err(context_error)
}

fn context_error(e: std::io::Error) -> String {
    format!("cannot add build context to the image: {e}")
}

/// The build context (a tar): Dockerfile, the binary, its libraries, `/etc/nsswitch.conf`. An
/// error names the file that could not be added.
pub(crate) fn build_context(binary: &Path, libraries: &[PathBuf]) -> Result<Vec<u8>, String> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| format!("cannot add {} to the image: {e}", p.display()))
    };
    let mut tar = tar::Builder::new(Vec::new());
    let bin = read(binary)?;
    add_file(
        &mut tar,
        "Dockerfile",
        dockerfile(&fingerprint(&bin)).as_bytes(),
        0o644,
    )?;
    add_file(&mut tar, "rootfs/e2e-gate", &bin, 0o755)?;
    for lib in libraries {
        // Follow symlinks: the image needs the file under the name the loader asks for.
        let inside = format!("rootfs{}", lib.display());
        add_file(&mut tar, &inside, &read(lib)?, 0o755)?;
    }
    add_file(
        &mut tar,
        "rootfs/etc/nsswitch.conf",
        b"hosts: files dns\n",
        0o644,
    )?;
    // The kube client's TLS stack loads the system roots even for plain-HTTP servers.
    if let Some(bundle) = CA_BUNDLES.iter().map(Path::new).find(|p| p.is_file()) {
        add_file(
            &mut tar,
            "rootfs/etc/ssl/certs/ca-certificates.crt",
            &read(bundle)?,
            0o644,
        )?;
    }
    add_file(&mut tar, "rootfs/tmp/.keep", b"", 0o644)?;
    tar.into_inner().map_err(context_error)
}

/// Runs `ldd` on the binary; an error says it could not list the binary's libraries.
pub(crate) fn libraries_of(binary: &Path) -> Result<Vec<PathBuf>, String> {
    let err = |message: String| {
        format!(
            "cannot list the shared libraries of {} with ldd: {message}",
            binary.display()
        )
    };
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_lines_give_absolute_library_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd5c5f2000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out),
            vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn context_holds_dockerfile_binary_libraries_and_nsswitch() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let lib = dir.path().join("libx.so");
        std::fs::write(&bin, b"ELF").unwrap();
        std::fs::write(&lib, b"LIB").unwrap();
        let bytes = build_context(&bin, std::slice::from_ref(&lib)).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"rootfs/e2e-gate".to_string()));
        assert!(names.contains(&format!("rootfs{}", lib.display())));
        assert!(names.contains(&"rootfs/etc/nsswitch.conf".to_string()));
    }

    #[test]
    fn the_image_is_labelled_with_the_binary_it_holds() {
        // Regression: the smoke image was rebuilt only when missing, so it went stale after a
        // code change; the label lets the gate see that the binary changed.
        assert_ne!(fingerprint(b"build 1"), fingerprint(b"build 2"));
        assert_eq!(fingerprint(b"same"), fingerprint(b"same"));
        let df = dockerfile(&fingerprint(b"ELF"));
        assert!(
            df.contains(&format!("LABEL {BINARY_LABEL}=\"{}\"", fingerprint(b"ELF"))),
            "{df}"
        );
    }
}
