//! The unix socket: created 0600 with no window in which another user could connect, replacing a stale
//! socket left by a crash but never a live signer or a file that is not a socket.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Why the socket could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocketError {
    /// Something other than a socket is at the path: not ours to delete.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Another process answers on the socket.
    #[error("{0}: another process is listening on it (is a signer already running?)")]
    InUse(PathBuf),
    /// Creating, binding or moving the socket failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Binds a listener at `path` with mode 0600.
///
/// The socket is bound in a fresh 0700 directory next to `path`, made 0600 there, then renamed into place:
/// `bind` honours the umask, and a chmod after binding at `path` itself would leave a moment in which the
/// socket is open to anyone. A leftover socket nobody answers on (a crashed signer) is replaced.
pub fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |what| {
        move |source| SocketError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.to_path_buf()));
        }
        Ok(_) => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(SocketError::InUse(path.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspecting the path")(e)),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let private = tempfile::Builder::new()
        .prefix(".irsa-signer-")
        .tempdir_in(parent)
        .map_err(io("creating a private directory next to the socket"))?;
    let staged = private.path().join("sock");
    let listener = UnixListener::bind(&staged).map_err(io("binding"))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
        .map_err(io("setting mode 0600"))?;
    // rename(2) replaces a stale socket atomically.
    std::fs::rename(&staged, path).map_err(io("moving the socket into place"))?;
    Ok(listener)
}
