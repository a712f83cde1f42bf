//! A private network for cluster tests: each node in its own network namespace, all on
//! one bridge, so that links between nodes can fail in the ways TCP does not report.
//!
//! - A hub namespace holds a bridge. Each node namespace has one veth into it, with the
//!   address `10.A.B.(i+1)/24`; the test's own namespace has one too, at `10.A.B.254`,
//!   so clients reach every node's client port directly.
//! - Faults are iptables rules inside the node namespaces, on INPUT only, so that a
//!   sender sees no local error, only silence: [`Net::cut`] (both ways), [`Net::cut_one_way`],
//!   [`Net::isolate`], [`Net::lossy`] (random loss with the `statistic` match), and
//!   [`Net::heal`]. [`Net::slow`] delays a node's traffic with `tc netem`, or, on a
//!   kernel without it (this one has no `CONFIG_NET_SCH_NETEM`), congests it with `tbf`.
//! - Everything is created under names unique to this process and removed on drop; a
//!   run that was killed leaves namespaces named `sdt<pid>...`, removed by the next
//!   run with that pid or by hand.
//!
//! It needs root, `ip` (iproute2) and `iptables`. Without them a test fails, with the
//! reason; it never skips.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Launch;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Net {
    tag: String,
    pub hosts: Vec<String>,
    pub client_host: String,
    ns: Vec<String>,
    hub: String,
    root_if: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {args:?} (the network tests need iproute2 and iptables, as root): {e}"
            )
        });
    assert!(
        out.status.success(),
        "{args:?} failed (the network tests need root, iproute2 and iptables): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// A bridge with `n` node namespaces on it and a link from this namespace.
    pub fn new(n: usize) -> Net {
        let pid = std::process::id();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("sdt{}x{k}", pid % 100_000);
        let (a, b) = (100 + pid % 100, (pid / 100 % 200 + k * 7) % 250 + 1);
        let prefix = format!("10.{a}.{b}");
        let hub = format!("{tag}h");
        let net = Net {
            hosts: (0..n).map(|i| format!("{prefix}.{}", i + 1)).collect(),
            client_host: format!("{prefix}.254"),
            ns: (0..n).map(|i| format!("{tag}n{i}")).collect(),
            root_if: format!("{tag}r"),
            hub,
            tag,
        };
        net.clean_stale();
        run(&["ip", "netns", "add", &net.hub]);
        run(&["ip", "-n", &net.hub, "link", "add", "br0", "type", "bridge"]);
        run(&["ip", "-n", &net.hub, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = net.ns[i].clone();
            run(&["ip", "netns", "add", &ns]);
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
            let (inner, outer) = (format!("{}v{i}", net.tag), format!("{}w{i}", net.tag));
            run(&[
                "ip", "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            run(&["ip", "link", "set", &inner, "netns", &ns]);
            run(&["ip", "link", "set", &outer, "netns", &net.hub]);
            run(&[
                "ip", "-n", &net.hub, "link", "set", &outer, "master", "br0", "up",
            ]);
            let cidr = format!("{}/24", net.hosts[i]);
            run(&["ip", "-n", &ns, "addr", "add", &cidr, "dev", &inner]);
            run(&["ip", "-n", &ns, "link", "set", &inner, "up"]);
        }
        let hub_side = format!("{}q", net.tag);
        run(&[
            "ip",
            "link",
            "add",
            &net.root_if,
            "type",
            "veth",
            "peer",
            "name",
            &hub_side,
        ]);
        run(&["ip", "link", "set", &hub_side, "netns", &net.hub]);
        run(&[
            "ip", "-n", &net.hub, "link", "set", &hub_side, "master", "br0", "up",
        ]);
        let cidr = format!("{}/24", net.client_host);
        run(&["ip", "addr", "add", &cidr, "dev", &net.root_if]);
        run(&["ip", "link", "set", &net.root_if, "up"]);
        net
    }

    /// Namespaces a killed run with the same tag left behind.
    fn clean_stale(&self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_if])
            .output();
        for ns in self.ns.iter().chain(std::iter::once(&self.hub)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }

    /// How to start node `i`: inside its namespace, serving at its address.
    pub fn launch(&self, i: usize) -> Launch {
        Launch {
            wrapper: vec![
                "ip".into(),
                "netns".into(),
                "exec".into(),
                self.ns[i].clone(),
            ],
            env: Vec::new(),
            host: Some(self.hosts[i].clone()),
            data_dir: None,
        }
    }

    fn iptables(&self, i: usize, rule: &[&str]) {
        let mut args = vec!["ip", "netns", "exec", &self.ns[i], "iptables", "-w"];
        args.extend_from_slice(rule);
        run(&args);
    }

    /// Node `to` stops hearing node `from` (what `to` sends still arrives).
    pub fn cut_one_way(&self, from: usize, to: usize) {
        let src = self.hosts[from].clone();
        self.iptables(to, &["-A", "INPUT", "-s", &src, "-j", "DROP"]);
    }

    /// Nodes `a` and `b` stop hearing each other; both still reach everyone else.
    pub fn cut(&self, a: usize, b: usize) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Node `i` is cut off from every other node (clients still reach it).
    pub fn isolate(&self, i: usize) {
        for j in 0..self.ns.len() {
            if j != i {
                self.cut(i, j);
            }
        }
    }

    /// Node `i` drops each packet from the other nodes with probability `p`.
    pub fn lossy(&self, i: usize, p: f64) {
        let prob = format!("{p:.3}");
        for j in 0..self.ns.len() {
            if j != i {
                let src = self.hosts[j].clone();
                self.iptables(
                    i,
                    &[
                        "-A",
                        "INPUT",
                        "-s",
                        &src,
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        &prob,
                        "-j",
                        "DROP",
                    ],
                );
            }
        }
    }

    /// Node `i`'s link gets slow: what it sends waits 40 ms (±20 ms, reordered) with
    /// `tc netem` where the kernel has it; where it does not (this one has no
    /// `CONFIG_NET_SCH_NETEM`), the link is congested instead, with `tbf`: 1 Mbit/s,
    /// packets queue for up to 200 ms and are dropped beyond. Returns which one.
    pub fn slow(&self, i: usize) -> &'static str {
        let dev = format!("{}v{i}", self.tag);
        let netem = Command::new("tc")
            .args(["-n", &self.ns[i], "qdisc", "add", "dev", &dev, "root"])
            .args(["netem", "delay", "40ms", "20ms"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run tc (the network tests need iproute2): {e}"));
        if netem.status.success() {
            return "netem delay 40ms 20ms";
        }
        run(&[
            "tc",
            "-n",
            &self.ns[i],
            "qdisc",
            "add",
            "dev",
            &dev,
            "root",
            "tbf",
            "rate",
            "1mbit",
            "burst",
            "4kb",
            "latency",
            "200ms",
        ]);
        "tbf 1mbit latency 200ms"
    }

    /// Every link whole again.
    pub fn heal(&self) {
        for i in 0..self.ns.len() {
            self.iptables(i, &["-F", "INPUT"]);
            let dev = format!("{}v{i}", self.tag);
            // No qdisc (nothing was slowed) is not an error here.
            let _ = Command::new("tc")
                .args(["-n", &self.ns[i], "qdisc", "del", "dev", &dev, "root"])
                .output();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.clean_stale();
    }
}
