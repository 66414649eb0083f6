//! Compiled code kept on local disk, so a restarted gateway (or a second
//! one on the same machine) loads a component in milliseconds instead of
//! compiling it again.
//!
//! One file per (component sha256, engine compatibility hash):
//! `<sha256>-<engine hash>.cwasm`, holding a magic line, the SHA-256 of the
//! artifact and the artifact (`Component::serialize`). Files are written
//! whole (a temporary file renamed into place) into a directory only this
//! user may read or write. Loading checks the magic and the digest before
//! the artifact is deserialized: a truncated or altered file is removed and
//! the component is compiled again.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The first bytes of every artifact file (format version 1).
const MAGIC: &[u8] = b"gateway-artifact 1\n";

/// A directory of compiled components.
pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    /// Opens (and creates, private to this user) `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Artifacts> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Artifacts {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, sha256: &str, engine_hash: u64) -> PathBuf {
        self.dir.join(format!("{sha256}-{engine_hash:016x}.cwasm"))
    }

    /// The kept artifact of component `sha256`, if there is a sound one.
    pub fn load(&self, engine: &Engine, sha256: &str, engine_hash: u64) -> Option<Component> {
        let path = self.path(sha256, engine_hash);
        let bytes = std::fs::read(&path).ok()?;
        let Some(artifact) = verified(&bytes) else {
            tracing::warn!(path = %path.display(), "a kept plugin artifact is damaged; removing it and compiling again");
            let _ = std::fs::remove_file(&path);
            return None;
        };
        match deserialize(engine, artifact) {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = format!("{e:#}"),
                    "a kept plugin artifact does not load; removing it and compiling again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Keeps `component`'s compiled code. A failure is logged: the next
    /// start compiles it again, nothing else is lost.
    pub fn keep(&self, sha256: &str, engine_hash: u64, component: &Component) {
        if let Err(e) = self.write(sha256, engine_hash, component) {
            tracing::warn!(dir = %self.dir.display(), sha256, error = format!("{e:#}"),
                "cannot keep a compiled plugin; it will be compiled again after a restart");
        }
    }

    fn write(&self, sha256: &str, engine_hash: u64, component: &Component) -> anyhow::Result<()> {
        let artifact = component
            .serialize()
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let path = self.path(sha256, engine_hash);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(MAGIC)?;
        file.write_all(&Sha256::digest(&artifact))?;
        file.write_all(&artifact)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        Ok(())
    }
}

/// The artifact in a file's `bytes`, when its magic and digest hold.
fn verified(bytes: &[u8]) -> Option<&[u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (digest, artifact) = rest.split_at_checked(32)?;
    (Sha256::digest(artifact).as_slice() == digest).then_some(artifact)
}

/// Loads an artifact this gateway wrote.
///
/// The one `unsafe` of the workspace: wasmtime cannot check that serialized
/// code is what it compiled, so deserializing bytes from anyone else could
/// run arbitrary machine code. It is sound here because the only caller
/// passes the artifact of a file in the gateway's private directory whose
/// digest, written with it, matches ([`verified`]); wasmtime itself refuses
/// an artifact of another engine configuration or version.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above: `artifact` is `Component::serialize` output of this
    // gateway, checked against the digest written beside it.
    unsafe { Component::deserialize(engine, artifact) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_file_with_its_digest_is_taken() {
        let artifact = b"machine code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(&artifact));
        file.extend_from_slice(&artifact);
        assert_eq!(verified(&file), Some(&artifact[..]));

        let mut altered = file.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&altered), None, "one bit changed");
        assert_eq!(verified(&file[..file.len() - 1]), None, "truncated");
        assert_eq!(verified(&file[..MAGIC.len() + 10]), None, "no whole digest");
        assert_eq!(verified(&file[1..]), None, "no magic");
    }
}
