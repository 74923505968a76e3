//! sha256 digests as the OCI specs write them (`sha256:HEX`), and writers
//! that hash what passes through them.

use std::io::{self, Write};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// `sha256:HEX` of some bytes.
pub fn of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The hex part of a `sha256:HEX` digest, checked: only sha256, 64 lowercase
/// hex digits (a digest names files in the store, so nothing else may pass).
pub fn hex_of(digest: &str) -> Result<&str> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::invalid(format!("digest {digest:?}: only sha256 is supported")))?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(format!(
            "digest {digest:?}: not 64 lowercase hex digits"
        )));
    }
    Ok(hex)
}

/// The chain id of a layer: its diff id for the first, else
/// sha256(parent's chain id + " " + diff id) (image-spec, config.md).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_string(),
        Some(p) => of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// A running sha256 with the count of bytes hashed.
#[derive(Default, Clone)]
pub struct Hasher {
    sha: Sha256,
    pub len: u64,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.sha.finalize()))
    }
}

/// Hashes everything written through it to the inner writer.
pub struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes everything read through it.
pub struct HashingReader<R> {
    pub inner: R,
    pub hasher: Hasher,
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked_before_naming_files() {
        assert!(hex_of(&of(b"x")).is_ok());
        for bad in [
            "sha512:ab",
            "sha256:../../etc",
            "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
            "sha256:",
        ] {
            assert!(hex_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = of(b"a");
        let b = of(b"b");
        assert_eq!(chain_id(None, &a), a);
        assert_eq!(chain_id(Some(&a), &b), of(format!("{a} {b}").as_bytes()));
    }
}
