//! The certificate files the server reads, written atomically and only when they change.

use std::path::{Path, PathBuf};

use irsa_serve::tls::TlsFiles;

use super::SelfSignedError;
use super::material::{CA_CRT, Material, TLS_CRT, TLS_KEY};

/// Writes the files the server reads. Each file is replaced by a rename, so the server (which re-reads on
/// change) never sees half a file; the key goes first, and a moment of new-key-old-cert only makes the
/// server keep the previous pair for one more connection.
pub(super) async fn write_files(
    dir: &Path,
    material: &Material,
) -> Result<TlsFiles, SelfSignedError> {
    let dir = dir.to_path_buf();
    let material = material.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| SelfSignedError::Write {
            path: dir.clone(),
            source,
        })?;
        let files = TlsFiles {
            cert: dir.join(TLS_CRT),
            key: dir.join(TLS_KEY),
        };
        write_atomically(&files.key, &material.tls_key, 0o600)?;
        write_atomically(&files.cert, &material.tls_crt, 0o644)?;
        write_atomically(&dir.join(CA_CRT), &material.ca_crt, 0o644)?;
        Ok(files)
    })
    .await
    .map_err(|join| SelfSignedError::Write {
        path: PathBuf::new(),
        source: std::io::Error::other(join),
    })?
}

fn write_atomically(path: &Path, contents: &str, mode: u32) -> Result<(), SelfSignedError> {
    use std::io::Write as _;
    let err = |source| SelfSignedError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Unchanged (the periodic check, mostly): leave the file alone, so the server does not reload for nothing.
    if std::fs::read(path).is_ok_and(|current| current == contents.as_bytes()) {
        return Ok(());
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.tmp"));
    // A leftover from an interrupted run would keep its old mode: start from a fresh file.
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::self_signed::test_support::*;
    use crate::self_signed::{new_material, renew_leaf};

    #[tokio::test]
    async fn files_are_written_with_a_private_key_mode() {
        let dir = tempfile::tempdir().unwrap();
        let material = new_material(&sans(), now()).unwrap();
        let files = write_files(&dir.path().join("tls"), &material)
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            material.tls_crt
        );
        assert_eq!(
            std::fs::read_to_string(&files.key).unwrap(),
            material.tls_key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "tls.key must not be readable by others");
        }
        // Rewriting replaces in place; the server's loader accepts the pair.
        write_files(&dir.path().join("tls"), &material)
            .await
            .unwrap();
        irsa_serve::tls::load(&files).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn unchanged_files_are_left_alone_and_changed_ones_replaced() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let material = new_material(&sans(), now()).unwrap();
        let files = write_files(dir.path(), &material).await.unwrap();
        let inode = |path: &Path| std::fs::metadata(path).unwrap().ino();
        let (cert, key) = (inode(&files.cert), inode(&files.key));

        // The periodic check with nothing renewed: same files, so the server has nothing to reload.
        write_files(dir.path(), &material).await.unwrap();
        assert_eq!((inode(&files.cert), inode(&files.key)), (cert, key));

        let renewed = renew_leaf(
            material.ca_crt.clone(),
            material.ca_key.clone(),
            &sans(),
            now(),
        )
        .unwrap();
        write_files(dir.path(), &renewed).await.unwrap();
        assert_ne!(inode(&files.cert), cert);
        assert_ne!(inode(&files.key), key);
        assert_eq!(
            std::fs::read_to_string(&files.cert).unwrap(),
            renewed.tls_crt
        );
        // The CA is the same after a leaf renewal: its file is not rewritten.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(CA_CRT)).unwrap(),
            material.ca_crt
        );
    }
}
