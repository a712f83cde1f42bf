//! A cursor over little-endian, length-prefixed bytes: the encoding of replicated
//! records (`replicated`) and store snapshots (`store::snapshot`). Every read is checked;
//! `None` means the input ended early.

pub struct ByteReader<'a> {
    data: &'a [u8],
    /// Bytes consumed so far.
    pub at: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        ByteReader { data, at: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.data.len()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    pub fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Option<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Some(u64::from_le_bytes(a))
    }

    /// A `u32` length, then that many bytes.
    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_order_and_stops_at_the_end() {
        let mut data = 7u32.to_le_bytes().to_vec();
        data.extend_from_slice(&3u32.to_le_bytes());
        data.extend_from_slice(b"abc");
        data.extend_from_slice(&9u64.to_le_bytes());
        let mut r = ByteReader::new(&data);
        assert_eq!(r.u32(), Some(7));
        assert_eq!(r.bytes(), Some(&b"abc"[..]));
        assert_eq!(r.u64(), Some(9));
        assert!(r.is_done());
        assert_eq!(r.take(1), None);
        let mut short = ByteReader::new(&[5, 0, 0, 0, b'x']);
        assert_eq!(short.bytes(), None);
    }
}
