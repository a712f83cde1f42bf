//! [`Entry`]'s representation: 16 bytes in the table, one thin pointer to the heap.
//!
//! A string entry's key and value are one block: the key's length as a LEB128 varint
//! (one byte for a key under 128 bytes), the key, then the value. The block's length is
//! kept in the entry's 31-bit `meta`; a block that long or longer (only under a raised
//! `proto-max-bulk-len`) says [`BIG`] there and keeps its length in 8 bytes at its start.
//! Any other type is a boxed [`ObjBlock`] (its key and the [`Object`]), and the low bit
//! of the pointer says so. The top bit of `meta` is [`REF`], the clock sweep's mark.
//!
//! With a boxed slice for the bytes and a box for the object, an entry was 32 bytes; a
//! table bucket is now 20 bytes with its tag instead of 36, which at the tables' 64-80%
//! fill is about 22 bytes less per key. The key's length moved into the block costs one
//! byte there, which glibc's 16-byte chunk steps absorb most of the time.
//!
//! All unsafe code of the entry is in this file: the pointer is never null once an entry
//! is built (only a default, empty bucket's is), a string block is always initialised in
//! full before it is read, and the layout it is freed with is rebuilt from the same
//! length it was allocated with.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::fmt;
use std::ptr;

use super::Object;
use crate::wheel::TimerId;

/// "Used since the last clock sweep" (top bit of `meta`).
pub(super) const REF: u32 = 1 << 31;
/// The block-length bits of `meta`.
const LEN: u32 = !REF;
/// A block length that does not fit in `meta`: the length is in the block's first 8
/// bytes. Small in unit tests, so that they reach the long form.
#[cfg(not(test))]
const BIG: u32 = LEN;
#[cfg(test)]
const BIG: u32 = 300;
/// The low bit of the pointer of an object entry.
const OBJ: usize = 1;
/// Alignment of a string block: 2, so that its pointer's low bit is free for `OBJ`.
const ALIGN: usize = 2;

/// The heap part of an entry that is not a string.
struct ObjBlock {
    key: Box<[u8]>,
    obj: Object,
}

/// One key and its value. The default is an empty bucket's placeholder (no heap).
pub struct Entry {
    /// A string block, or an `ObjBlock` with [`OBJ`] added; null in an empty bucket.
    ptr: *mut u8,
    /// [`REF`], and the string block's length ([`BIG`] when it is in the block).
    meta: u32,
    /// The key's timer in the shard's wheel, or `NO_TIMER` when the key has no TTL.
    pub(super) timer: TimerId,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 16);

// What the two impls below stand on: the object an entry may own is itself `Send` and
// `Sync`, as it was when an entry held it in a `Box`.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Object>();
};

// SAFETY: an entry owns its block alone, as a `Box` would, and has no interior
// mutability: sending or sharing it is sending or sharing that owned data (bytes, or an
// `Object`, which is `Send` and `Sync`: asserted above).
#[allow(unsafe_code)]
unsafe impl Send for Entry {}
// SAFETY: as above; `&Entry` only reads.
#[allow(unsafe_code)]
unsafe impl Sync for Entry {}

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            ptr: ptr::null_mut(),
            meta: 0,
            timer: 0,
        }
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("type", &self.key_type().name())
            .field("timer", &self.timer)
            .finish()
    }
}

/// The LEB128 varint of `n`, in a buffer and its used length.
fn varint(mut n: usize) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut i = 0;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out[i] = b;
            return (out, i + 1);
        }
        out[i] = b | 0x80;
        i += 1;
    }
}

/// Decode the varint at the start of `b`: its value and its length. A block is only
/// ever written by [`Entry::from_parts`], so the varint is well formed.
fn read_varint(b: &[u8]) -> (usize, usize) {
    let mut n = 0usize;
    for (i, &byte) in b.iter().enumerate().take(10) {
        n |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (n, i + 1);
        }
    }
    (n, b.len())
}

#[allow(unsafe_code)]
impl Entry {
    /// A string entry whose value is the concatenation of `value`.
    pub(super) fn from_parts(key: &[u8], value: &[&[u8]]) -> Entry {
        let (kv, kv_len) = varint(key.len());
        let body = kv_len + key.len() + value.iter().map(|v| v.len()).sum::<usize>();
        let big = body >= BIG as usize;
        let total = body + if big { 8 } else { 0 };
        let Ok(layout) = Layout::from_size_align(total, ALIGN) else {
            panic!("entry of {total} bytes: capacity overflow");
        };
        // SAFETY: `total` is at least 1 (the varint), so the layout is not zero-sized.
        let p = unsafe { alloc(layout) };
        if p.is_null() {
            handle_alloc_error(layout);
        }
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            debug_assert!(at + bytes.len() <= total);
            // SAFETY: the parts add up to `total` (checked above by construction), so
            // every copy stays inside the fresh allocation, which no slice overlaps.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(at), bytes.len()) };
            at += bytes.len();
        };
        if big {
            put(&(total as u64).to_le_bytes());
        }
        put(&kv[..kv_len]);
        put(key);
        for v in value {
            put(v);
        }
        debug_assert_eq!(at, total);
        Entry {
            ptr: p,
            meta: REF | if big { BIG } else { total as u32 },
            timer: crate::wheel::NO_TIMER,
        }
    }

    pub(super) fn with_object(key: &[u8], obj: Object) -> Entry {
        let b = Box::new(ObjBlock {
            key: key.into(),
            obj,
        });
        Entry {
            // A box is aligned to 8, so the tag bit is free.
            ptr: Box::into_raw(b).cast::<u8>().wrapping_add(OBJ),
            meta: REF,
            timer: crate::wheel::NO_TIMER,
        }
    }

    #[inline]
    fn is_obj(&self) -> bool {
        self.ptr as usize & OBJ != 0
    }

    fn obj_block(&self) -> Option<&ObjBlock> {
        if !self.is_obj() {
            return None;
        }
        // SAFETY: a tagged pointer came from `Box::into_raw` in `with_object`, and the
        // box lives as long as the entry.
        Some(unsafe { &*self.ptr.wrapping_sub(OBJ).cast::<ObjBlock>() })
    }

    fn obj_block_mut(&mut self) -> Option<&mut ObjBlock> {
        if !self.is_obj() {
            return None;
        }
        // SAFETY: as in `obj_block`, and `&mut self` makes this the only reference.
        Some(unsafe { &mut *self.ptr.wrapping_sub(OBJ).cast::<ObjBlock>() })
    }

    /// A string block's length (0 for an object or an empty bucket, whose `meta` holds
    /// no length).
    #[inline]
    fn block_len(&self) -> usize {
        let l = self.meta & LEN;
        if l != BIG {
            return l as usize;
        }
        let mut b = [0u8; 8];
        // SAFETY: a long-form block starts with its 8-byte length, written at creation.
        unsafe { ptr::copy_nonoverlapping(self.ptr, b.as_mut_ptr(), 8) };
        u64::from_le_bytes(b) as usize
    }

    /// A string entry's whole block (empty for anything else).
    #[inline]
    fn block(&self) -> &[u8] {
        let len = self.block_len();
        if len == 0 {
            return &[];
        }
        // SAFETY: the block holds `len` initialised bytes for as long as the entry.
        unsafe { std::slice::from_raw_parts(self.ptr, len) }
    }

    fn block_mut(&mut self) -> &mut [u8] {
        let len = self.block_len();
        if len == 0 {
            return &mut [];
        }
        // SAFETY: as in `block`, and `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len) }
    }

    /// Where a string block's key starts and ends.
    #[inline]
    fn key_span(&self) -> (usize, usize) {
        let b = self.block();
        match b.first() {
            // The common case: not the long form, and a key under 128 bytes.
            Some(&k) if k < 0x80 && self.meta & LEN != BIG => (1, 1 + usize::from(k)),
            _ => {
                let skip = if self.meta & LEN == BIG { 8 } else { 0 };
                let (klen, n) = read_varint(&b[skip.min(b.len())..]);
                let start = skip + n;
                (start, start + klen)
            }
        }
    }

    #[inline]
    pub fn key(&self) -> &[u8] {
        match self.obj_block() {
            Some(o) => &o.key,
            None => {
                let (s, e) = self.key_span();
                &self.block()[s..e]
            }
        }
    }

    /// The string value, or `None` for another type.
    #[inline]
    pub fn as_str(&self) -> Option<&[u8]> {
        if self.is_obj() {
            return None;
        }
        let (_, e) = self.key_span();
        Some(&self.block()[e..])
    }

    pub fn object(&self) -> Option<&Object> {
        self.obj_block().map(|o| &o.obj)
    }

    pub(super) fn object_mut(&mut self) -> Option<&mut Object> {
        self.obj_block_mut().map(|o| &mut o.obj)
    }

    /// Bytes this entry holds on the heap (key, value, object).
    pub fn heap_size(&self) -> usize {
        match self.obj_block() {
            Some(o) => o.key.len() + o.obj.heap_size(),
            None => self.block_len(),
        }
    }

    /// The start and length of the entry's own allocation (to free in address order,
    /// and to prefetch it); `None` for an empty bucket.
    pub(super) fn allocation(&self) -> Option<(*const u8, usize)> {
        if self.ptr.is_null() {
            None
        } else if self.is_obj() {
            Some((
                self.ptr.wrapping_sub(OBJ).cast_const(),
                std::mem::size_of::<ObjBlock>(),
            ))
        } else {
            Some((self.ptr.cast_const(), self.block_len()))
        }
    }

    /// Where the entry's bytes are, to prefetch them (never dereferenced here).
    pub(super) fn heap_ptr(&self) -> *const u8 {
        self.ptr.cast_const()
    }

    /// Mark the key used (for `allkeys-lru`'s clock sweep).
    pub(super) fn mark_used(&mut self) {
        if self.meta & REF == 0 {
            self.meta |= REF;
        }
    }

    /// Whether the key was used since the last call; clears the mark.
    pub(super) fn take_used(&mut self) -> bool {
        let used = self.meta & REF != 0;
        self.meta &= !REF;
        used
    }

    /// Overwrite a string value in place when the new one has the same length (a
    /// session rewritten: no allocation). False, and nothing changed, otherwise.
    pub(super) fn overwrite_str(&mut self, value: &[u8]) -> bool {
        if self.is_obj() || self.ptr.is_null() {
            return false;
        }
        let (_, e) = self.key_span();
        let b = self.block_mut();
        if b.len() - e != value.len() {
            return false;
        }
        b[e..].copy_from_slice(value);
        true
    }

    /// Make the entry a string of `value` under its own key (the timer is kept).
    pub(super) fn set_value(&mut self, value: &[u8]) {
        let new = Entry::from_parts(self.key(), &[value]);
        self.replace_keeping_timer(new);
    }

    /// Append to a string value (the caller checks the type); the value's new length.
    pub(super) fn append_str(&mut self, tail: &[u8]) -> usize {
        let old = self.as_str().unwrap_or_default();
        let len = old.len() + tail.len();
        let new = Entry::from_parts(self.key(), &[old, tail]);
        self.replace_keeping_timer(new);
        len
    }

    fn replace_keeping_timer(&mut self, new: Entry) {
        let timer = self.timer;
        *self = new;
        self.timer = timer;
    }

    /// Give the entry another key (for `RENAME`), keeping its value and timer; marks it
    /// used.
    pub(super) fn rekey(&mut self, key: &[u8]) {
        if let Some(o) = self.obj_block_mut() {
            o.key = key.into();
            self.meta |= REF;
            return;
        }
        let new = Entry::from_parts(key, &[self.as_str().unwrap_or_default()]);
        self.replace_keeping_timer(new);
    }
}

#[allow(unsafe_code)]
impl Drop for Entry {
    fn drop(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        if self.is_obj() {
            // SAFETY: the pointer came from `Box::into_raw` and is dropped once, here.
            drop(unsafe { Box::from_raw(self.ptr.wrapping_sub(OBJ).cast::<ObjBlock>()) });
        } else {
            let len = self.block_len();
            // SAFETY: allocated in `from_parts` with this length and alignment (which
            // made a valid layout then), freed once, here.
            unsafe { dealloc(self.ptr, Layout::from_size_align_unchecked(len, ALIGN)) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{HashValue, KeyType};

    /// Bytes of the LEB128 varint of `n`.
    fn varint_len(n: usize) -> usize {
        let bits = usize::BITS - (n | 1).leading_zeros();
        bits.div_ceil(7) as usize
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for n in [
            0usize,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            1 << 40,
            usize::MAX,
        ] {
            let (b, len) = varint(n);
            assert_eq!(len, varint_len(n), "{n}");
            assert_eq!(read_varint(&b[..len]), (n, len), "{n}");
        }
    }

    #[test]
    fn strings_keep_key_and_value_in_both_forms() {
        for (klen, vlen) in [(0, 0), (0, 5), (13, 200), (127, 1), (128, 0), (200, 200)] {
            let key = vec![b'k'; klen];
            let value: Vec<u8> = (0..vlen).map(|i| i as u8).collect();
            let e = Entry::from_parts(&key, &[&value[..vlen / 2], &value[vlen / 2..]]);
            assert_eq!(e.key(), &key[..]);
            assert_eq!(e.as_str(), Some(&value[..]));
            assert_eq!(e.key_type(), KeyType::String);
            assert!(e.object().is_none());
            let long = varint_len(klen) + klen + vlen >= BIG as usize;
            assert_eq!(e.meta & LEN == BIG, long, "{klen}+{vlen}");
            assert_eq!(
                e.heap_size(),
                varint_len(klen) + klen + vlen + if long { 8 } else { 0 }
            );
        }
    }

    #[test]
    fn overwrite_only_at_the_same_length() {
        let mut e = Entry::from_parts(b"key", &[b"abc"]);
        assert!(e.overwrite_str(b"xyz"));
        assert_eq!(e.as_str(), Some(&b"xyz"[..]));
        assert!(!e.overwrite_str(b"toolong"));
        assert_eq!(e.as_str(), Some(&b"xyz"[..]));
        let mut big = Entry::from_parts(b"key", &[&[1u8; 400]]);
        assert!(big.overwrite_str(&[2u8; 400]));
        assert_eq!(big.as_str(), Some(&[2u8; 400][..]));
    }

    #[test]
    fn rekey_keeps_value_timer_and_object() {
        let mut e = Entry::from_parts(b"old", &[b"value"]);
        e.timer = 7;
        e.take_used();
        e.rekey(b"a much longer new key");
        assert_eq!(e.key(), b"a much longer new key");
        assert_eq!(e.as_str(), Some(&b"value"[..]));
        assert_eq!(e.timer, 7);
        assert!(e.take_used());
        assert!(!e.take_used());

        let mut o = Entry::with_object(b"h", Object::Hash(HashValue::default()));
        o.rekey(b"h2");
        assert_eq!(o.key(), b"h2");
        assert_eq!(o.key_type(), KeyType::Hash);
        assert!(o.as_str().is_none());
        assert!(o.object_mut().is_some());
    }

    #[test]
    fn set_value_swaps_between_types_and_keeps_the_timer() {
        let mut e = Entry::with_object(b"k", Object::Hash(HashValue::default()));
        e.timer = 3;
        e.set_value(b"v");
        assert_eq!(e.as_str(), Some(&b"v"[..]));
        assert_eq!(e.timer, 3);
        let d = Entry::default();
        assert_eq!(d.key(), b"");
        assert!(d.allocation().is_none());
    }
}
