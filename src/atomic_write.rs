//! The one way e2e-gate writes a file a reader may look at while it runs (`junit.xml`,
//! `summary.json`, reports, state files): a uniquely named temporary file beside it, flushed to
//! disk, then renamed over it. A reader sees the old file or the whole new one, never half of
//! one; two writers never share a temporary file. The file gets the permissions any other file
//! of the user gets (0666 less the umask), not the temporary file's private 0600.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `contents` to `path` atomically, creating its directory when missing.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_atomically_with(path, |w| w.write_all(contents))
}

/// As [`write_atomically`], with the contents written by `write` (for contents too big to
/// hold in memory).
pub(crate) fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| format!(".{}.", n.to_string_lossy()))
        .unwrap_or_else(|| ".e2e-gate.".into());
    // The kernel applies the umask to the mode asked for at creation.
    let mut tmp = tempfile::Builder::new()
        .prefix(&name)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut w)?;
        w.flush()?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_with_the_user_s_permissions() {
        // Regression: junit.xml, summary.json and `report -o` files were left 0600 (the temp
        // file's mode), unlike every other artifact.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/summary.json");
        write_atomically(&p, b"one").unwrap();
        write_atomically_with(&p, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let entries: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(entries.len(), 1, "no temporary file left");
        // What a plain create gets under the same umask.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&plain));
        assert_ne!(mode(&p), 0o600, "readable by the group/others as usual");
    }
}
