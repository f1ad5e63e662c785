//! ISO/IEC 9797-1 padding method 2: append `80`, then `00` up to a block boundary.

use alloc::vec::Vec;

/// Append method-2 padding to `buf` so that its length becomes a multiple of `block`
/// (always at least one byte is added).
pub fn pad_method2(buf: &mut Vec<u8>, block: usize) {
    buf.push(0x80);
    let rem = buf.len() % block;
    if rem != 0 {
        buf.resize(buf.len() + (block - rem), 0);
    }
}

/// The length of the message inside a method-2 padded buffer, or `None` when the padding is
/// malformed (no `80` marker, or a non-zero byte after it).
#[must_use]
pub fn unpadded_len_method2(buf: &[u8]) -> Option<usize> {
    let marker = buf.iter().rposition(|&b| b != 0)?;
    (buf.get(marker) == Some(&0x80)).then_some(marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_unpads() {
        for len in 0..40 {
            let mut v: Vec<u8> = (0..len).map(|i| u8::try_from(i).unwrap() | 1).collect();
            pad_method2(&mut v, 16);
            assert_eq!(v.len() % 16, 0);
            assert!(v.len() > len);
            // ISO/IEC 9797-1 method 2: 80 then zeros up to the next whole block.
            assert_eq!(v.len(), (len / 16 + 1) * 16);
            assert_eq!(v[len], 0x80);
            assert!(v[len + 1..].iter().all(|&b| b == 0));
            assert_eq!(unpadded_len_method2(&v), Some(len));
        }
        assert_eq!(unpadded_len_method2(&[0u8; 16]), None);
        assert_eq!(unpadded_len_method2(&[1, 2, 0x81, 0]), None);
        assert_eq!(unpadded_len_method2(&[]), None);
    }
}
