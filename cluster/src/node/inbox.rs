//! Where the server's proposals and reads wait for the raft thread, and when they wake it.
//!
//! They used to come as events on the node's channel, and each one that found the raft
//! thread asleep woke it: with unpipelined clients that was most of them (0.39 wake-ups
//! per write, 0.45 per read on a leader), though most had nothing to do on arrival. A
//! proposal that arrives while an entry is in flight waits to join the next entry
//! (`Node::hold_batch`), and a read that arrives while a read barrier is out waits for
//! the next barrier (`Node::flush_reads`); the raft thread will wake anyway when the entry
//! commits or the barrier returns.
//!
//! So the raft thread says, before it sleeps, how many queued proposals and how many
//! queued reads should wake it (`arm`): none, the first, or, while it waits for the
//! clients it last answered to come back, that many (`Node::regrouping`). Items always
//! go into the inbox; only the one that reaches the count sends a wake-up event. Until
//! then, items wait until it wakes for its own reasons; it never sleeps longer than
//! `cfg.max_hold` then, and a queue of proposals past `HOLD_BYTES` wakes it whatever it
//! asked.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Reply, HOLD_BYTES};

/// Items the inbox holds before it refuses more (as the event channel did when full).
const CAPACITY: usize = 1 << 16;

#[derive(Default)]
pub(crate) struct Queued {
    pub proposals: Vec<(Vec<u8>, Reply<Bytes>, Instant)>,
    pub reads: Vec<(Reply<()>, Instant)>,
    bytes: usize,
}

pub(crate) struct Inbox {
    q: Mutex<Queued>,
    /// How many queued proposals wake the thread (`NEVER`: none do).
    wake_proposals: AtomicUsize,
    /// How many queued reads wake the thread (`NEVER`: none do).
    wake_reads: AtomicUsize,
}

/// A count of proposals or reads that no queue reaches.
pub(crate) const NEVER: usize = usize::MAX;

/// What a push asks of the caller.
pub(crate) enum Pushed<T> {
    /// Queued, and the raft thread must be woken.
    Wake,
    /// Queued; the raft thread will come for it.
    Queued,
    /// The inbox is full: the item is handed back.
    Full(T),
}

impl Inbox {
    pub(crate) fn new() -> Inbox {
        Inbox {
            q: Mutex::new(Queued::default()),
            // Until the thread first says otherwise, everything wakes it.
            wake_proposals: AtomicUsize::new(1),
            wake_reads: AtomicUsize::new(1),
        }
    }

    pub(crate) fn propose(&self, data: Vec<u8>, tx: Reply<Bytes>) -> Pushed<Reply<Bytes>> {
        let (over, queued) = {
            let mut q = self.q.lock();
            if q.proposals.len() + q.reads.len() >= CAPACITY {
                return Pushed::Full(tx);
            }
            let before = q.bytes;
            q.bytes += data.len();
            q.proposals.push((data, tx, Instant::now()));
            (
                before < HOLD_BYTES && q.bytes >= HOLD_BYTES,
                q.proposals.len(),
            )
        };
        // After the push: a thread that arms and then looks finds the items, or this sees
        // its threshold (both sides are sequentially consistent). Whoever takes an armed
        // threshold away wakes the thread.
        let reached = queued >= self.wake_proposals.load(SeqCst)
            && self.wake_proposals.swap(NEVER, SeqCst) != NEVER;
        if reached || over {
            Pushed::Wake
        } else {
            Pushed::Queued
        }
    }

    pub(crate) fn read(&self, tx: Reply<()>) -> Pushed<Reply<()>> {
        let queued = {
            let mut q = self.q.lock();
            if q.proposals.len() + q.reads.len() >= CAPACITY {
                return Pushed::Full(tx);
            }
            q.reads.push((tx, Instant::now()));
            q.reads.len()
        };
        if queued >= self.wake_reads.load(SeqCst) && self.wake_reads.swap(NEVER, SeqCst) != NEVER {
            Pushed::Wake
        } else {
            Pushed::Queued
        }
    }

    /// Everything queued, oldest first, in exchange for `spare` (emptied by the caller),
    /// so that both sides keep their vectors' room instead of growing new ones per turn.
    pub(crate) fn swap(&self, spare: &mut Queued) {
        debug_assert!(spare.proposals.is_empty() && spare.reads.is_empty());
        spare.bytes = 0;
        std::mem::swap(&mut *self.q.lock(), spare);
    }

    #[cfg(test)]
    fn take(&self) -> Queued {
        let mut q = Queued::default();
        self.swap(&mut q);
        q
    }

    /// The raft thread, before it sleeps: how many queued proposals, and how many
    /// queued reads, should wake it ([`NEVER`]: none). Returns whether what it asked for
    /// is already here (then it must not sleep).
    pub(crate) fn arm(&self, proposals: usize, reads: usize) -> bool {
        let (proposals, reads) = (proposals.max(1), reads.max(1));
        self.wake_proposals.store(proposals, SeqCst);
        self.wake_reads.store(reads, SeqCst);
        let q = self.q.lock();
        q.proposals.len() >= proposals || q.reads.len() >= reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply<T>() -> Reply<T> {
        tokio::sync::oneshot::channel().0
    }

    #[test]
    fn only_the_first_item_the_thread_asked_for_wakes_it() {
        let inbox = Inbox::new();
        assert!(matches!(inbox.propose(vec![1], reply()), Pushed::Wake));
        assert!(matches!(inbox.propose(vec![2], reply()), Pushed::Queued));
        assert!(matches!(inbox.read(reply()), Pushed::Wake));
        assert!(matches!(inbox.read(reply()), Pushed::Queued));
        // The thread takes them and will not be woken for proposals (one is in flight).
        let q = inbox.take();
        assert_eq!((q.proposals.len(), q.reads.len()), (2, 2));
        assert!(!inbox.arm(NEVER, 1));
        assert!(matches!(inbox.propose(vec![3], reply()), Pushed::Queued));
        assert!(matches!(inbox.read(reply()), Pushed::Wake));
        // Armed with an item of that kind already waiting: do not sleep.
        assert!(inbox.arm(1, 1));
    }

    #[test]
    fn a_threshold_wakes_the_thread_at_that_many_items_once() {
        let inbox = Inbox::new();
        assert!(!inbox.arm(3, NEVER));
        assert!(matches!(inbox.propose(vec![1], reply()), Pushed::Queued));
        assert!(matches!(inbox.propose(vec![2], reply()), Pushed::Queued));
        assert!(matches!(inbox.propose(vec![3], reply()), Pushed::Wake));
        assert!(matches!(inbox.propose(vec![4], reply()), Pushed::Queued));
        // Armed again with the queue already that long: do not sleep.
        assert!(inbox.arm(4, NEVER));
        assert!(!inbox.arm(5, NEVER));
        // Reads alike.
        assert!(!inbox.arm(NEVER, 2));
        assert!(matches!(inbox.read(reply()), Pushed::Queued));
        assert!(matches!(inbox.read(reply()), Pushed::Wake));
        assert!(matches!(inbox.read(reply()), Pushed::Queued));
    }

    #[test]
    fn a_big_queue_wakes_the_thread_whatever_it_asked() {
        let inbox = Inbox::new();
        inbox.arm(NEVER, NEVER);
        assert!(matches!(
            inbox.propose(vec![0; HOLD_BYTES - 1], reply()),
            Pushed::Queued
        ));
        assert!(matches!(inbox.propose(vec![0; 1], reply()), Pushed::Wake));
        assert!(matches!(inbox.propose(vec![0; 1], reply()), Pushed::Queued));
    }

    #[test]
    fn a_full_inbox_hands_the_item_back() {
        let inbox = Inbox::new();
        for _ in 0..CAPACITY {
            inbox.read(reply());
        }
        assert!(matches!(inbox.read(reply()), Pushed::Full(_)));
        assert!(matches!(inbox.propose(vec![], reply()), Pushed::Full(_)));
        inbox.take();
        assert!(!inbox.arm(1, 1));
        assert!(matches!(inbox.read(reply()), Pushed::Wake));
    }
}
