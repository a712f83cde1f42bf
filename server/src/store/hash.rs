//! The hash value type (`HSET` and friends).
//!
//! Session hashes are small (Spring Session stores a handful of attributes), so a hash
//! starts as a flat vector searched linearly, like Redis's listpack encoding, and turns
//! into a hashbrown map once it grows past [`SMALL_MAX`] fields.
//!
//! Fields may have their own deadlines (Redis 7.4's `HEXPIRE`): a hash with any keeps a
//! [`FieldTtl`] beside its fields, with the deadlines in order and the id of one timer in
//! its shard's field wheel, set at the earliest (the shard arms it, see
//! `EntryMut::set_field_deadline`). A hash without field deadlines pays one null pointer.

use std::collections::BTreeSet;

use hashbrown::HashMap;

use crate::wheel::{TimerId, NO_TIMER};

/// Fields beyond which a hash switches from the flat vector to a map.
pub const SMALL_MAX: usize = 64;

/// A field or a value.
pub type Bytes = Box<[u8]>;

/// A hash value: field → value, binary-safe, with optional per-field deadlines.
#[derive(Debug, Clone, Default)]
pub struct HashValue {
    fields: Fields,
    ttl: Option<Box<FieldTtl>>,
}

/// Field deadlines (absolute Unix ms).
#[derive(Debug, Clone, Default)]
pub struct FieldTtl {
    by_field: HashMap<Box<[u8]>, u64>,
    order: BTreeSet<(u64, Box<[u8]>)>,
    /// The hash's timer in its shard's field wheel (`NO_TIMER` when not armed there).
    pub(super) timer: TimerId,
}

#[derive(Debug, Clone)]
enum Fields {
    /// Insertion-ordered pairs, searched linearly.
    Small(Vec<(Bytes, Bytes)>),
    /// A map for large hashes.
    Large(HashMap<Box<[u8]>, Box<[u8]>>),
}

impl Default for Fields {
    fn default() -> Self {
        Fields::Small(Vec::new())
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.fields.get(field)
    }

    /// Set a field (clearing any deadline it had, as `HSET` does); true when it is new.
    pub fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.clear_deadline(field);
        self.fields.set(field, value)
    }

    /// Set a field's value and keep its deadline (`HINCRBY`).
    pub fn set_keep_ttl(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.fields.set(field, value)
    }

    /// Remove a field; returns true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        self.clear_deadline(field);
        self.fields.remove(field)
    }

    /// Iterate over (field, value) pairs.
    pub fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        self.fields.iter()
    }

    /// A field's deadline, if it has one.
    pub fn deadline(&self, field: &[u8]) -> Option<u64> {
        self.ttl.as_ref()?.by_field.get(field).copied()
    }

    /// The earliest field deadline.
    pub fn min_deadline(&self) -> Option<u64> {
        self.ttl.as_ref()?.order.first().map(|(d, _)| *d)
    }

    /// Fields with a deadline.
    pub fn volatile_fields(&self) -> usize {
        self.ttl.as_ref().map_or(0, |t| t.by_field.len())
    }

    /// Every (field, deadline), in no particular order.
    pub fn deadlines(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.ttl
            .iter()
            .flat_map(|t| t.by_field.iter().map(|(f, d)| (&**f, *d)))
    }

    /// Set (`Some`) or clear a field's deadline; the field must exist. For a hash not
    /// yet in a shard (its shard starts the timer when it arrives); in a shard use
    /// `EntryMut::set_field_deadline`, which re-arms it.
    pub fn put_deadline(&mut self, field: &[u8], deadline: Option<u64>) {
        self.clear_deadline(field);
        if let Some(d) = deadline {
            let t = self.ttl.get_or_insert_with(|| {
                Box::new(FieldTtl {
                    timer: NO_TIMER,
                    ..FieldTtl::default()
                })
            });
            t.by_field.insert(field.into(), d);
            t.order.insert((d, field.into()));
        }
    }

    fn clear_deadline(&mut self, field: &[u8]) {
        let Some(t) = self.ttl.as_mut() else {
            return;
        };
        if let Some(d) = t.by_field.remove(field) {
            t.order.remove(&(d, Box::from(field)));
        }
    }

    /// Remove the fields due at `now` (deadline `<= now`), returning how many.
    pub(super) fn purge_due(&mut self, now: u64) -> usize {
        let mut n = 0;
        while let Some((d, f)) = self.ttl.as_ref().and_then(|t| t.order.first().cloned()) {
            if d > now {
                break;
            }
            self.remove(&f);
            n += 1;
        }
        n
    }

    /// Remove `field` if its deadline is exactly `deadline` (a replicated expiry).
    pub(super) fn remove_if_deadline(&mut self, field: &[u8], deadline: u64) -> bool {
        if self.deadline(field) != Some(deadline) {
            return false;
        }
        self.remove(field)
    }

    /// The field timer's id, and a place to set it.
    pub(super) fn timer_mut(&mut self) -> Option<&mut TimerId> {
        self.ttl.as_mut().map(|t| &mut t.timer)
    }

    pub(super) fn timer(&self) -> TimerId {
        self.ttl.as_ref().map_or(NO_TIMER, |t| t.timer)
    }

    /// Drop the deadline bookkeeping once no field has one.
    pub(super) fn tidy(&mut self) {
        if self.ttl.as_ref().is_some_and(|t| t.by_field.is_empty()) {
            self.ttl = None;
        }
    }
}

impl Fields {
    fn len(&self) -> usize {
        match self {
            Fields::Small(v) => v.len(),
            Fields::Large(m) => m.len(),
        }
    }

    fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Fields::Small(v) => v.iter().find(|(f, _)| &**f == field).map(|(_, v)| &**v),
            Fields::Large(m) => m.get(field).map(|v| &**v),
        }
    }

    /// Set a field; returns true when the field is new.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self {
            Fields::Small(v) => {
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
                *self = Fields::Large(map);
                true
            }
            Fields::Large(m) => m.insert(field.into(), value.into()).is_none(),
        }
    }

    /// Remove a field; returns true when it existed.
    fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Fields::Small(v) => match v.iter().position(|(f, _)| &**f == field) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            Fields::Large(m) => m.remove(field).is_some(),
        }
    }

    /// Iterate over (field, value) pairs.
    fn iter(&self) -> Box<dyn Iterator<Item = (&[u8], &[u8])> + '_> {
        match self {
            Fields::Small(v) => Box::new(v.iter().map(|(f, v)| (&**f, &**v))),
            Fields::Large(m) => Box::new(m.iter().map(|(f, v)| (&**f, &**v))),
        }
    }
}
