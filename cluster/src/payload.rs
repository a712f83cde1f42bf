//! The data of a normal raft entry: one clock stamp and a batch of proposals.
//!
//! ```text
//! stamp u64 LE        the leader's clock (Unix ms) when it took the entry
//! then, repeated:
//!   origin u64 LE     node that proposed the record (0 for none)
//!   request u64 LE    that node's request id, so it can answer the waiting client
//!   len u32 LE        record length
//!   data [len]        the record, opaque to this crate (the server's command encoding)
//! ```
//!
//! Every proposal that reaches the raft thread between two ready rounds goes into one
//! entry (group commit). The stamp is the time every replica applies the entry at: TTLs
//! and expiry checks resolve against it, never against the replica's own clock, so all
//! replicas reach the same state. A follower's entries are restamped by the leader when
//! it receives them ([`restamp`]).

use thiserror::Error;

const STAMP: usize = 8;
const HEADER: usize = 8 + 8 + 4;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("entry shorter than its stamp")]
    NoStamp,
    #[error("record header truncated at byte {0}")]
    TruncatedHeader(usize),
    #[error("record at byte {at} claims {len} bytes, {left} remain")]
    TruncatedRecord { at: usize, len: usize, left: usize },
}

/// Builds one entry's data.
#[derive(Debug)]
pub struct PayloadBuilder {
    buf: Vec<u8>,
    records: usize,
}

impl PayloadBuilder {
    pub fn new(stamp: u64) -> Self {
        Self::with_capacity(stamp, 256)
    }

    /// A builder whose buffer starts at `capacity` bytes, so that a batch of about that
    /// size is written once instead of being copied at every doubling.
    pub fn with_capacity(stamp: u64, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(8));
        buf.extend_from_slice(&stamp.to_le_bytes());
        PayloadBuilder { buf, records: 0 }
    }

    pub fn push(&mut self, origin: u64, request: u64, data: &[u8]) {
        self.buf.extend_from_slice(&origin.to_le_bytes());
        self.buf.extend_from_slice(&request.to_le_bytes());
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
        self.records += 1;
    }

    pub fn len(&self) -> usize {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// The entry's data. Room left over from a generous start is given back (the entry
    /// lives in the log until it is compacted).
    pub fn finish(mut self) -> Vec<u8> {
        if self.buf.capacity() - self.buf.len() > self.buf.len() / 8 {
            self.buf.shrink_to_fit();
        }
        self.buf
    }
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub origin: u64,
    pub request: u64,
    pub data: &'a [u8],
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The stamp and the records of an entry. Records are checked as they are read.
pub fn decode(data: &[u8]) -> Result<(u64, Records<'_>), PayloadError> {
    if data.len() < STAMP {
        return Err(PayloadError::NoStamp);
    }
    Ok((u64_at(data, 0), Records { data, at: STAMP }))
}

/// Iterator over the records of an entry.
pub struct Records<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, PayloadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let left = self.data.len() - self.at;
        if left == 0 {
            return None;
        }
        let at = self.at;
        if left < HEADER {
            self.at = self.data.len();
            return Some(Err(PayloadError::TruncatedHeader(at)));
        }
        let origin = u64_at(self.data, at);
        let request = u64_at(self.data, at + 8);
        let mut l = [0u8; 4];
        l.copy_from_slice(&self.data[at + 16..at + 20]);
        let len = u32::from_le_bytes(l) as usize;
        if left - HEADER < len {
            self.at = self.data.len();
            return Some(Err(PayloadError::TruncatedRecord {
                at,
                len,
                left: left - HEADER,
            }));
        }
        let start = at + HEADER;
        self.at = start + len;
        Some(Ok(Record {
            origin,
            request,
            data: &self.data[start..start + len],
        }))
    }
}

/// Overwrite an entry's stamp (the leader does this to entries a follower proposed).
/// Data too short to hold a stamp (raft's empty entries) is returned unchanged.
pub fn restamp(data: &[u8], stamp: u64) -> Option<Vec<u8>> {
    if data.len() < STAMP {
        return None;
    }
    let mut v = data.to_vec();
    v[..STAMP].copy_from_slice(&stamp.to_le_bytes());
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let mut b = PayloadBuilder::new(42);
        b.push(1, 7, b"set a b");
        b.push(2, 9, b"");
        let data = b.finish();
        let (stamp, recs) = decode(&data).expect("decodes");
        assert_eq!(stamp, 42);
        let recs: Vec<_> = recs.collect::<Result<_, _>>().expect("records");
        assert_eq!(
            recs,
            vec![
                Record {
                    origin: 1,
                    request: 7,
                    data: b"set a b"
                },
                Record {
                    origin: 2,
                    request: 9,
                    data: b""
                },
            ]
        );
        let re = restamp(&data, 99).expect("long enough");
        assert_eq!(decode(&re).expect("decodes").0, 99);
        assert_eq!(&re[8..], &data[8..]);
    }

    proptest! {
        /// Arbitrary bytes never panic the decoder; every record stays inside the data.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((_, recs)) = decode(&data) {
                for r in recs.flatten() {
                    prop_assert!(r.data.len() <= data.len());
                }
            }
        }
    }
}
