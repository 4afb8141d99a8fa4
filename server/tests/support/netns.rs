//! A network namespace joined to the host by a veth pair, for tests of what crosses a
//! network: a peer that vanishes, a server partitioned away. Needs root and iproute2
//! (`ip netns`), which CI has; [`Netns::create`] says `None` elsewhere.

use std::process::{Command, Stdio};

/// A namespace with a veth pair: host side `10.NET.N.1`, namespace side `10.NET.N.2`;
/// both removed when dropped.
pub struct Netns {
    /// The namespace (`ip netns exec NAME ...`).
    pub name: String,
    /// The host's end of the cable.
    pub host_if: String,
    /// The namespace's end: `ip link set ... down` cuts the cable.
    pub ns_if: String,
    /// The host's address on the pair.
    pub host_ip: String,
    /// The namespace's address on the pair.
    pub ns_ip: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// Makes namespace `<tag><N>` with the veth pair `<tag>h<N>`/`<tag>n<N>` (interface
    /// names: a short tag) on `10.<net>.N.0/30`, N from the process id, so test binaries
    /// running side by side pick different ones. `None` where it cannot be made (not
    /// root, no `ip netns`), having printed why: the test then passes, asserting nothing.
    pub fn create(tag: &str, net: u8) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: creating a network namespace needs root");
            return None;
        }
        let n = std::process::id() % 200 + 20;
        let short: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(6)
            .collect();
        let ns = Netns {
            name: format!("{tag}{n}"),
            host_if: format!("{short}h{n}"),
            ns_if: format!("{short}n{n}"),
            host_ip: format!("10.{net}.{n}.1"),
            ns_ip: format!("10.{net}.{n}.2"),
        };
        let _ = ip(&["netns", "del", &ns.name]);
        let peer_ip = format!("{}/30", ns.ns_ip);
        let host_cidr = format!("{}/30", ns.host_ip);
        let ok = ip(&["netns", "add", &ns.name])
            && ip(&[
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &ns.ns_if,
            ])
            && ip(&["link", "set", &ns.ns_if, "netns", &ns.name])
            && ip(&["addr", "add", &host_cidr, "dev", &ns.host_if])
            && ip(&["link", "set", &ns.host_if, "up"])
            && ns.exec_ip(&["addr", "add", &peer_ip, "dev", &ns.ns_if])
            && ns.exec_ip(&["link", "set", &ns.ns_if, "up"]);
        if !ok {
            eprintln!("skipped: `ip netns` / veth not available here");
        }
        ok.then_some(ns)
    }

    /// Runs `ip ARGS` inside the namespace; whether it succeeded.
    pub fn exec_ip(&self, args: &[&str]) -> bool {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
