//! A key's entry: the key and a string value in one buffer, or a boxed [`Object`] for
//! the other types, and [`EntryMut`], a live entry with what changing it needs.

use super::{HashValue, SetValue, ZSetValue};
use crate::wheel::{TimerWheel, NO_TIMER};

/// The type of a key, as `TYPE` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    String,
    Hash,
    Set,
    ZSet,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Hash => "hash",
            KeyType::Set => "set",
            KeyType::ZSet => "zset",
        }
    }
}

/// A value that is not a string: one boxed object behind the entry, so an entry stays
/// 16 bytes whatever the type.
#[derive(Debug, Clone)]
pub enum Object {
    Hash(HashValue),
    Set(SetValue),
    ZSet(ZSetValue),
}

impl Object {
    pub fn key_type(&self) -> KeyType {
        match self {
            Object::Hash(_) => KeyType::Hash,
            Object::Set(_) => KeyType::Set,
            Object::ZSet(_) => KeyType::ZSet,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Object::Hash(h) => h.len(),
            Object::Set(s) => s.len(),
            Object::ZSet(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes behind the object, roughly (memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Object::Hash(h) => h.iter().map(|(f, v)| f.len() + v.len() + 32).sum(),
            Object::Set(s) => s.heap_size(),
            Object::ZSet(z) => z.heap_size(),
        }
    }

    /// A fingerprint of the content, independent of the representation.
    pub(super) fn digest(&self, d: u64) -> u64 {
        let mut sum = 0u64;
        let tag: &[u8] = match self {
            Object::Hash(h) => {
                for (f, v) in h.iter() {
                    let fd = fnv1a(fnv1a(FNV_OFFSET, f), &(f.len() as u64).to_le_bytes());
                    sum = sum.wrapping_add(fnv1a(fd, v));
                }
                // Field deadlines are content too (WATCH sees HEXPIRE).
                for (f, d) in h.deadlines() {
                    let fd = fnv1a(fnv1a(FNV_OFFSET, b"t"), f);
                    sum = sum.wrapping_add(fnv1a(fd, &d.to_le_bytes()));
                }
                b"h"
            }
            Object::Set(s) => {
                for m in s.iter() {
                    sum = sum.wrapping_add(fnv1a(FNV_OFFSET, m));
                }
                b"S"
            }
            Object::ZSet(z) => {
                for (score, m) in z.iter() {
                    let md = fnv1a(fnv1a(FNV_OFFSET, m), &(m.len() as u64).to_le_bytes());
                    sum = sum.wrapping_add(fnv1a(md, &score.to_bits().to_le_bytes()));
                }
                b"z"
            }
        };
        fnv1a(fnv1a(d, tag), &sum.to_le_bytes())
    }
}

pub use super::thin::Entry;

impl Entry {
    pub(super) fn string(key: &[u8], value: &[u8]) -> Entry {
        Entry::from_parts(key, &[value])
    }

    pub fn key_type(&self) -> KeyType {
        self.object().map_or(KeyType::String, |o| o.key_type())
    }

    /// A hash with at least one field deadline (or a field timer still set).
    pub(super) fn has_field_deadlines(&self) -> bool {
        matches!(self.object(), Some(Object::Hash(h)) if h.min_deadline().is_some())
    }

    pub fn as_hash(&self) -> Option<&HashValue> {
        match self.object() {
            Some(Object::Hash(h)) => Some(h),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&SetValue> {
        match self.object() {
            Some(Object::Set(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_zset(&self) -> Option<&ZSetValue> {
        match self.object() {
            Some(Object::ZSet(z)) => Some(z),
            _ => None,
        }
    }
}

/// A live entry together with what is needed to change its TTL.
pub struct EntryMut<'a> {
    pub(super) entry: &'a mut Entry,
    pub(super) wheel: &'a mut TimerWheel,
    pub(super) fwheel: &'a mut TimerWheel,
    pub(super) hash: u64,
    /// The slot's write version, bumped by every change (for `WATCH`).
    pub(super) version: &'a mut u64,
    pub(super) touch: &'a super::TouchHook,
}

impl<'a> EntryMut<'a> {
    /// The key is about to change: its slot's version moves on (`WATCH`) and trackers
    /// are told (client-side caching).
    fn changed(&mut self) {
        *self.version += 1;
        self.touch.touch(self.entry.key(), true);
    }

    pub fn key_type(&self) -> KeyType {
        self.entry.key_type()
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        self.entry.as_str()
    }

    pub fn as_hash(&self) -> Option<&HashValue> {
        self.entry.as_hash()
    }

    pub fn as_set(&self) -> Option<&SetValue> {
        self.entry.as_set()
    }

    pub fn as_zset(&self) -> Option<&ZSetValue> {
        self.entry.as_zset()
    }

    pub fn object(&self) -> Option<&Object> {
        self.entry.object()
    }

    /// The object, to change (bumps the slot's version, for `WATCH`).
    pub fn object_mut(&mut self) -> Option<&mut Object> {
        self.changed();
        self.entry.object_mut()
    }

    pub fn hash_mut(&mut self) -> Option<&mut HashValue> {
        match self.object_mut() {
            Some(Object::Hash(h)) => Some(h),
            _ => None,
        }
    }

    pub fn set_mut(&mut self) -> Option<&mut SetValue> {
        match self.object_mut() {
            Some(Object::Set(s)) => Some(s),
            _ => None,
        }
    }

    pub fn zset_mut(&mut self) -> Option<&mut ZSetValue> {
        match self.object_mut() {
            Some(Object::ZSet(z)) => Some(z),
            _ => None,
        }
    }

    /// Set (`Some`) or clear a hash field's deadline. False when the key is not a hash
    /// or has no such field.
    pub fn set_field_deadline(&mut self, field: &[u8], deadline: Option<u64>) -> bool {
        if self.as_hash().is_none_or(|h| h.get(field).is_none()) {
            return false;
        }
        self.changed();
        let hash = self.hash;
        if let Some(Object::Hash(h)) = self.entry.object_mut() {
            h.put_deadline(field, deadline);
            super::fields::rearm(self.fwheel, h, hash, false);
        }
        true
    }

    /// Absolute expiry in Unix ms, if the key has a TTL.
    pub fn deadline(&self) -> Option<u64> {
        if self.entry.timer == NO_TIMER {
            None
        } else {
            self.wheel.deadline(self.entry.timer)
        }
    }

    /// Set (`Some`) or clear (`None`) the absolute expiry.
    pub fn set_deadline(&mut self, deadline: Option<u64>) {
        self.changed();
        let t = self.entry.timer;
        self.entry.timer = match (t == NO_TIMER, deadline) {
            (true, None) => NO_TIMER,
            (true, Some(d)) => self.wheel.insert(d, self.hash),
            (false, None) => {
                self.wheel.cancel(t);
                NO_TIMER
            }
            (false, Some(d)) => self.wheel.reschedule(t, d),
        };
    }

    /// Replace the value with a string, keeping the key and its TTL.
    pub fn set_str(&mut self, value: &[u8]) {
        self.changed();
        self.entry.set_value(value);
    }

    /// Append to a string value, returning the new length. The caller checks the type.
    pub fn append(&mut self, tail: &[u8]) -> usize {
        self.changed();
        self.entry.append_str(tail)
    }
}

pub(super) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, a fixed function (unlike the tables' seeded hasher), continuing from `h`.
pub(super) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
