//! PEM text for a backend's TLS settings (a CA to trust, a client certificate or its key),
//! given in memory or as a file that is read when the store is built.
//!
//! The backend crates keep one of these per setting; it never shows the bytes it holds, since
//! they may be a private key.

use std::fmt;
use std::path::PathBuf;

/// PEM text given in memory, or the path of a file read by the backend's `build_store()`.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// The PEM text itself.
    Bytes(Vec<u8>),
    /// A file holding the PEM text, read when the store is built.
    File(PathBuf),
}

impl Pem {
    /// What `Debug` and error messages show: a file's path, or only the length of PEM given in
    /// memory.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Pem::Bytes(bytes) => format!("<{} PEM bytes>", bytes.len()),
            Pem::File(path) => path.display().to_string(),
        }
    }

    /// The PEM text: the bytes given, or the file's contents.
    ///
    /// # Errors
    /// A message naming the file that cannot be read, and why.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::Bytes(bytes) => Ok(bytes.clone()),
            Pem::File(path) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
            }
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_never_shown() {
        let pem = Pem::Bytes(b"-----BEGIN PRIVATE KEY-----secret".to_vec());
        assert_eq!(format!("{pem:?}"), "<33 PEM bytes>");
        assert_eq!(pem.read().unwrap(), b"-----BEGIN PRIVATE KEY-----secret");
    }

    #[test]
    fn a_missing_file_is_named() {
        let pem = Pem::File(PathBuf::from("/nonexistent/ca.pem"));
        assert_eq!(pem.describe(), "/nonexistent/ca.pem");
        let err = pem.read().unwrap_err();
        assert!(
            err.starts_with("cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
    }
}
