//! The hash value type (`HSET` and friends).
//!
//! Session hashes are small (Spring Session stores a handful of attributes), so a hash
//! starts as a flat vector searched linearly, like Redis's listpack encoding, and turns
//! into a hashbrown map once it grows past [`SMALL_MAX`] fields.

use hashbrown::HashMap;

/// Fields beyond which a hash switches from the flat vector to a map.
pub const SMALL_MAX: usize = 64;

/// A field or a value.
pub type Bytes = Box<[u8]>;

/// A hash value: field → value, binary-safe.
#[derive(Debug, Clone)]
pub enum HashValue {
    /// Insertion-ordered pairs, searched linearly.
    Small(Vec<(Bytes, Bytes)>),
    /// A map for large hashes.
    Large(HashMap<Box<[u8]>, Box<[u8]>>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue::Small(Vec::new())
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match self {
            HashValue::Small(v) => v.len(),
            HashValue::Large(m) => m.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            HashValue::Small(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            HashValue::Large(m) => m.get(field).map(|v| &**v),
        }
    }

    /// Set a field; returns true when the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self {
            HashValue::Small(v) => {
                if let Some(slot) = v.iter_mut().find(|(f, _)| &**f == field) {
                    slot.1 = value.into();
                    return false;
                }
                if v.len() < SMALL_MAX {
                    v.push((field.into(), value.into()));
                    return true;
                }
                let mut map: HashMap<Box<[u8]>, Box<[u8]>> = v.drain(..).collect();
                map.insert(field.into(), value.into());
                *self = HashValue::Large(map);
                true
            }
            HashValue::Large(m) => m.insert(field.into(), value.into()).is_none(),
        }
    }

    /// Remove a field; returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            HashValue::Small(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            HashValue::Large(m) => m.remove(field).is_some(),
        }
    }

    /// Iterate over (field, value) pairs.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            HashValue::Small(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            HashValue::Large(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }
}
