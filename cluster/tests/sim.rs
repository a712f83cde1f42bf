//! A deterministic, in-process simulation of the raft core as sessiond configures it
//! (raft-rs `RawNode` over our `NodeStorage`, pre-vote and check-quorum on, founding
//! members bootstrapped from the same snapshot at index 1), without sockets or threads.
//!
//! A seeded random schedule ticks nodes, proposes on random nodes, delivers messages in
//! random order, drops some, partitions the group, and crashes and restarts nodes from
//! their storage. After every step it checks:
//! - at most one leader per term;
//! - state machine safety: every node applies, at each index, the same entry as every
//!   other node did (so a committed entry is never lost or replaced);
//!
//! and at the end, once the network heals, that every node applied the same log and that
//! every proposal a leader committed is in it.

use std::collections::{BTreeMap, HashMap};

use protobuf::Message as PbMessage;
use raft::prelude::{Entry, EntryType, Message, Snapshot, SnapshotMetadata};
use raft::{RawNode, StateRole};
use sessiond_cluster::storage::NodeStorage;

/// xorshift64*: small, seedable, good enough for schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct SimNode {
    id: u64,
    storage: NodeStorage,
    raw: Option<RawNode<NodeStorage>>,
    /// What this node's state machine applied since its last start: index → data.
    applied: BTreeMap<u64, Vec<u8>>,
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn config(id: u64, applied: u64) -> raft::Config {
    raft::Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        applied,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        check_quorum: true,
        pre_vote: true,
        ..Default::default()
    }
}

impl SimNode {
    fn new(id: u64, voters: &[u64]) -> SimNode {
        let storage = NodeStorage::new();
        let mut meta = SnapshotMetadata {
            index: 1,
            term: 1,
            ..Default::default()
        };
        meta.mut_conf_state().voters = voters.to_vec();
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        storage
            .mem
            .wl()
            .apply_snapshot(snap.clone())
            .expect("bootstrap snapshot");
        storage.set_snapshot(snap, None);
        let mut n = SimNode {
            id,
            storage,
            raw: None,
            applied: BTreeMap::new(),
        };
        n.boot();
        n
    }

    /// Start (or restart) from storage: the state machine is rebuilt by re-applying
    /// the committed log, as a restarting sessiond node replays its WAL.
    fn boot(&mut self) {
        self.applied.clear();
        let raw =
            RawNode::new(&config(self.id, 1), self.storage.clone(), &logger()).expect("raw node");
        self.raw = Some(raw);
    }

    fn crash(&mut self) {
        self.raw = None;
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if e.get_entry_type() == EntryType::EntryNormal && !e.data.is_empty() {
                self.applied.insert(e.index, e.data.to_vec());
            } else {
                self.applied.insert(e.index, Vec::new());
            }
        }
    }

    /// The ready loop, in the order sessiond's node runs it; returns outgoing messages.
    fn ready(&mut self) -> Vec<Message> {
        let Some(raw) = self.raw.as_mut() else {
            return Vec::new();
        };
        if !raw.has_ready() {
            return Vec::new();
        }
        let mut rd = raw.ready();
        let mut out = rd.take_messages();
        assert!(
            rd.snapshot().is_empty(),
            "no compaction, so no snapshot transfer"
        );
        let committed = rd.take_committed_entries();
        if !rd.entries().is_empty() {
            self.storage.mem.wl().append(rd.entries()).expect("append");
        }
        if let Some(hs) = rd.hs() {
            self.storage.mem.wl().set_hardstate(hs.clone());
        }
        out.extend(rd.take_persisted_messages());
        let mut light = raw.advance(rd);
        if let Some(c) = light.commit_index() {
            self.storage.mem.wl().mut_hard_state().commit = c;
        }
        out.extend(light.take_messages());
        let more = light.take_committed_entries();
        raw.advance_apply();
        self.apply(committed);
        self.apply(more);
        out
    }
}

struct Sim {
    rng: Rng,
    nodes: Vec<SimNode>,
    net: Vec<Message>,
    /// Nodes on the minority side of a partition (messages across are dropped).
    cut: Vec<u64>,
    leaders: HashMap<u64, u64>,
    /// index → data, as first applied by any node.
    log: BTreeMap<u64, Vec<u8>>,
    proposed: u64,
}

impl Sim {
    fn new(seed: u64, n: u64) -> Sim {
        let voters: Vec<u64> = (1..=n).collect();
        Sim {
            rng: Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1),
            nodes: voters.iter().map(|&id| SimNode::new(id, &voters)).collect(),
            net: Vec::new(),
            cut: Vec::new(),
            leaders: HashMap::new(),
            log: BTreeMap::new(),
            proposed: 0,
        }
    }

    fn node(&mut self, id: u64) -> &mut SimNode {
        &mut self.nodes[(id - 1) as usize]
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        self.cut.contains(&a) == self.cut.contains(&b)
    }

    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            let msgs = self.nodes[i].ready();
            self.net.extend(msgs);
        }
    }

    fn check(&mut self) {
        for n in &self.nodes {
            let Some(raw) = n.raw.as_ref() else { continue };
            if raw.raft.state == StateRole::Leader {
                let term = raw.raft.term;
                let prev = self.leaders.insert(term, n.id);
                assert!(
                    prev.is_none_or(|p| p == n.id),
                    "two leaders in term {term}: {prev:?} and {}",
                    n.id
                );
            }
            for (idx, data) in &n.applied {
                match self.log.get(idx) {
                    Some(d) => assert_eq!(
                        d, data,
                        "node {} applied a different entry at index {idx}",
                        n.id
                    ),
                    None => {
                        self.log.insert(*idx, data.clone());
                    }
                }
            }
        }
    }

    fn step(&mut self, faults: bool) {
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        match self.rng.below(100) {
            // Tick everyone (time passes).
            0..=9 => {
                for n in &mut self.nodes {
                    if let Some(r) = n.raw.as_mut() {
                        r.tick();
                    }
                }
            }
            // A client proposes on a random node (followers forward to the leader).
            10..=29 => {
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                self.proposed += 1;
                let data = format!("p{}", self.proposed).into_bytes();
                if let Some(r) = self.node(id).raw.as_mut() {
                    let _ = r.propose(Vec::new(), data);
                }
            }
            // Deliver (or drop) a few random messages: the network reorders freely.
            30..=94 => {
                for _ in 0..=self.rng.below(6) {
                    if self.net.is_empty() {
                        break;
                    }
                    let i = self.rng.below(self.net.len() as u64) as usize;
                    let m = self.net.swap_remove(i);
                    let drop = faults && self.rng.chance(10);
                    if !drop && self.connected(m.from, m.to) {
                        // Through the wire format, as the transport does.
                        let bytes = m.write_to_bytes().expect("encode");
                        let m = Message::parse_from_bytes(&bytes).expect("decode");
                        if let Some(r) = self.node(m.to).raw.as_mut() {
                            let _ = r.step(m);
                        }
                    }
                    self.collect();
                }
            }
            // Faults: partition, heal, crash, restart.
            _ if faults => match self.rng.below(4) {
                0 => {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    self.cut = vec![id];
                }
                1 => self.cut.clear(),
                2 => {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    self.node(id).crash();
                }
                _ => {
                    for n in &mut self.nodes {
                        if n.raw.is_none() {
                            n.boot();
                        }
                    }
                }
            },
            _ => {}
        }
        self.collect();
        self.check();
    }

    /// Heal everything and run without faults until every node applied the same log.
    fn settle(&mut self) {
        self.cut.clear();
        for n in &mut self.nodes {
            if n.raw.is_none() {
                n.boot();
            }
        }
        for _ in 0..3_000 {
            for n in &mut self.nodes {
                if let Some(r) = n.raw.as_mut() {
                    r.tick();
                }
            }
            self.collect();
            // Deliver everything, in random order, until the network is quiet.
            let mut budget = 100_000;
            while !self.net.is_empty() && budget > 0 {
                budget -= 1;
                let i = self.rng.below(self.net.len() as u64) as usize;
                let m = self.net.swap_remove(i);
                if let Some(r) = self.node(m.to).raw.as_mut() {
                    let _ = r.step(m);
                }
                self.collect();
            }
            self.check();
            let Some(leader) = self
                .nodes
                .iter()
                .filter_map(|n| n.raw.as_ref())
                .find(|r| r.raft.state == StateRole::Leader)
            else {
                continue;
            };
            let last = leader.raft.raft_log.last_index();
            let done = self.nodes.iter().all(|n| {
                n.raw
                    .as_ref()
                    .is_some_and(|r| r.raft.raft_log.committed == last)
                    && n.applied.keys().next_back().copied().unwrap_or(1) == last
            });
            if done {
                return;
            }
        }
        panic!("the group did not settle");
    }
}

fn run(seed: u64, n: u64, steps: usize) {
    let mut sim = Sim::new(seed, n);
    for _ in 0..steps {
        sim.step(true);
    }
    sim.settle();
    // State machines equal: every node re-applied (after restarts) exactly the log.
    let reference: Vec<(u64, Vec<u8>)> = sim.nodes[0]
        .applied
        .iter()
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    for node in &sim.nodes[1..] {
        let mine: Vec<(u64, Vec<u8>)> = node.applied.iter().map(|(k, v)| (*k, v.clone())).collect();
        // A node restarted late has re-applied everything from index 2 on.
        assert_eq!(mine, reference, "seed {seed}: node {} differs", node.id);
    }
    // Nothing any node ever applied went missing from the final log.
    for (idx, data) in &sim.log {
        assert_eq!(
            sim.nodes[0].applied.get(idx),
            Some(data),
            "seed {seed}: entry {idx} was lost"
        );
    }
    assert!(
        sim.log.values().filter(|d| !d.is_empty()).count() > 0,
        "seed {seed}: some proposals committed"
    );
}

#[test]
fn three_nodes_under_drops_reordering_partitions_and_crashes() {
    for seed in 1..=12 {
        run(seed, 3, 3_000);
    }
}

#[test]
fn five_nodes_under_drops_reordering_partitions_and_crashes() {
    for seed in 100..=105 {
        run(seed, 5, 3_000);
    }
}
