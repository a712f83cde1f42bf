//! `ACL LOG`: refused commands, keys, channels and failed `AUTH`s, newest first. Like
//! Redis, a repeat of an entry (same reason, context, object and user) within 60 s
//! counts on that entry instead of adding one, and at most 128 entries are kept.

use std::collections::VecDeque;

use parking_lot::Mutex;

pub const MAX_LEN: usize = 128;
const GROUP_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub count: u64,
    /// `auth`, `command`, `key` or `channel`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

#[derive(Default)]
pub struct AclLog {
    inner: Mutex<(VecDeque<Entry>, u64)>,
}

impl AclLog {
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
        now_ms: u64,
    ) {
        let mut g = self.inner.lock();
        let (entries, next_id) = &mut *g;
        if let Some(i) = entries.iter().position(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.updated_ms) < GROUP_MS
        }) {
            if let Some(mut e) = entries.remove(i) {
                e.count += 1;
                e.updated_ms = now_ms;
                e.client_info = client_info;
                entries.push_front(e);
            }
            return;
        }
        entries.push_front(Entry {
            count: 1,
            reason,
            context,
            object,
            username,
            client_info,
            entry_id: *next_id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        *next_id += 1;
        entries.truncate(MAX_LEN);
    }

    /// The newest `n` entries.
    pub fn newest(&self, n: usize) -> Vec<Entry> {
        self.inner.lock().0.iter().take(n).cloned().collect()
    }

    pub fn reset(&self) {
        self.inner.lock().0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_group_and_the_log_is_bounded() {
        let log = AclLog::default();
        let add = |obj: &str, t: u64| {
            log.add(
                "command",
                "toplevel",
                obj.into(),
                "u".into(),
                String::new(),
                t,
            )
        };
        add("get", 0);
        add("get", 1000);
        add("set", 2000);
        let e = log.newest(10);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].object.as_str(), e[0].count), ("set", 1));
        assert_eq!((e[1].object.as_str(), e[1].count), ("get", 2));
        add("get", 1000 + GROUP_MS);
        assert_eq!(log.newest(10).len(), 3);
        for i in 0..300 {
            add(&format!("c{i}"), 200_000);
        }
        assert_eq!(log.newest(1000).len(), MAX_LEN);
        log.reset();
        assert!(log.newest(10).is_empty());
    }
}
