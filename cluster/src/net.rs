//! The network as the raft node sees it: a trait, so that the node runs over the TCP
//! [`Transport`] in production and over the simulation's in-memory network in tests.
//! Whatever arrives is handed to the node as an `Event` on its channel (the transport's
//! tasks do that; the simulation delivers by hand).

use std::sync::Arc;

use raft::prelude::Message;

use crate::clocks::Clocks;
use crate::transport::{Applied, Transport};

/// What the raft thread needs of the network.
pub trait Network: Send + Sync {
    /// Queue a raft message for `m.to`. False when it was dropped (no link).
    fn send(&self, m: &Message) -> bool;
    /// Queue the invalidation fence's word for a peer. False when dropped.
    fn send_applied(&self, to: u64, applied: Applied) -> bool;
    /// Where peer `id` is (a new peer, or one that moved).
    fn set_peer(&self, id: u64, addr: &str);
    fn remove_peer(&self, id: u64);
    fn peer_addr(&self, id: u64) -> Option<String>;
    /// The peers' clocks as measured over this network.
    fn clocks(&self) -> Arc<Clocks>;
}

impl Network for Transport {
    fn send(&self, m: &Message) -> bool {
        Transport::send(self, m)
    }

    fn send_applied(&self, to: u64, applied: Applied) -> bool {
        Transport::send_applied(self, to, applied)
    }

    fn set_peer(&self, id: u64, addr: &str) {
        Transport::set_peer(self, id, addr);
    }

    fn remove_peer(&self, id: u64) {
        Transport::remove_peer(self, id);
    }

    fn peer_addr(&self, id: u64) -> Option<String> {
        Transport::peer_addr(self, id)
    }

    fn clocks(&self) -> Arc<Clocks> {
        self.clocks.clone()
    }
}
