//! FNV-1a, 64 bits: short stable names for files and sockets derived from
//! longer text. Not collision-resistant: whoever uses a name must still
//! check that what it found is what it wanted.

pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // The reference values of the FNV specification.
        assert_eq!(super::hash64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::hash64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
