//! What a store tells the rest of the server: the hooks every shard of a store shares
//! (keys that expired or were created, for keyspace events; hash fields that expired;
//! every change, for client tracking) and the read horizon.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Told the key of every change to a key, for client-side caching (`crate::tracking`):
/// one hook shared by every database of a node, switched on only while some client
/// tracks keys, so that a write pays one atomic load otherwise.
#[derive(Default)]
pub struct TouchHook {
    on: std::sync::atomic::AtomicBool,
    f: OnceLock<OnTouch>,
}

/// `(key, by_client)`: `by_client` is false for expiry and eviction, which no client did.
pub type OnTouch = Box<dyn Fn(&[u8], bool) + Send + Sync>;

impl TouchHook {
    #[inline]
    pub fn touch(&self, key: &[u8], by_client: bool) {
        if self.on.load(Ordering::Relaxed) {
            if let Some(f) = self.f.get() {
                f(key, by_client);
            }
        }
    }

    /// Set the hook (once).
    pub fn set(&self, f: OnTouch) {
        let _ = self.f.set(f);
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn enable(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }
}

/// What the server does with the key of an expired key (keyspace notifications).
/// The same type serves for keys created (`Store::on_new`).
pub type OnExpired = Box<dyn Fn(&[u8]) + Send + Sync>;
pub(super) type ExpiredHook = Arc<OnceLock<OnExpired>>;
/// What every shard of a store shares: the read horizon and the hooks.
#[derive(Clone)]
pub(super) struct Hooks {
    pub(super) horizon: Arc<AtomicU64>,
    pub(super) on_expired: ExpiredHook,
    pub(super) on_new: ExpiredHook,
    pub(super) touch: Arc<TouchHook>,
    pub(super) on_hexpired: FieldsHook,
}

/// Told the key of a hash whose fields expired, and whether the key went with them.
pub type OnFieldsExpired = Box<dyn Fn(&[u8], bool) + Send + Sync>;
pub(super) type FieldsHook = Arc<OnceLock<OnFieldsExpired>>;
