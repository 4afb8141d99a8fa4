//! The monitoring port of a node (`http: 127.0.0.1:PORT`), read with a plain HTTP/1.0 GET,
//! and what its answers say about JetStream, as nats-server 2.9.10 words them:
//!
//! - `/healthz`: `{"status":"ok"}`, or `{"status":"unavailable","error":"JetStream has not
//!   established contact with a meta leader"}` (also while a restarted node catches up);
//! - `/jsz`: `meta_cluster` (absent on a single server) with `leader` (a server name,
//!   absent until one is elected) and `cluster_size`, and, on the leader only, `replicas`:
//!   the other peers, each with `current` (caught up with the leader's log) and `offline`.
//!
//! A follower keeps naming a killed leader for seconds, until its election timeout; so
//! the leader's own `replicas` are what tell that the cluster can replicate now.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// How long one GET may take: a stopped node accepts (the kernel does) but never answers.
const GET_TIMEOUT: Duration = Duration::from_secs(2);

/// The body of `GET path` (any status: `/healthz` answers 503 with a JSON body while
/// JetStream is not ready), or why there is none.
pub(crate) fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, GET_TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(GET_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(GET_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    // HTTP/1.0: the server closes the connection after the body, so read to the end.
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let raw = String::from_utf8_lossy(&raw);
    let (_, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP body in {raw:?}"))?;
    Ok(body.to_string())
}

/// How many routes `/routez` counts (`num_routes`): the other nodes this one is linked to.
pub(crate) fn routes(addr: SocketAddr) -> Result<usize, String> {
    let v = json(&get(addr, "/routez")?)?;
    v["num_routes"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("/routez without num_routes: {v}"))
}

/// What one node's monitoring port said, once.
pub(crate) struct Probe {
    pub name: String,
    pub healthz: Result<String, String>,
    pub jsz: Result<String, String>,
}

impl Probe {
    /// Asks node `name` at `addr` for `/healthz` and `/jsz`.
    pub fn take(name: &str, addr: SocketAddr) -> Probe {
        Probe {
            name: name.to_string(),
            healthz: get(addr, "/healthz"),
            jsz: get(addr, "/jsz"),
        }
    }

    /// `/healthz` says `ok`.
    pub fn healthy(&self) -> Result<(), String> {
        let body = self
            .healthz
            .as_ref()
            .map_err(|e| self.says("/healthz", e))?;
        let v = json(body).map_err(|e| self.says("/healthz", &e))?;
        match v["status"].as_str() {
            Some("ok") => Ok(()),
            _ => Err(self.says("/healthz", body.trim())),
        }
    }

    /// `/jsz`'s `meta_cluster` (`Null` on a single server).
    fn meta(&self) -> Result<Value, String> {
        let body = self.jsz.as_ref().map_err(|e| self.says("/jsz", e))?;
        let v = json(body).map_err(|e| self.says("/jsz", &e))?;
        if v["config"].is_null() {
            return Err(self.says("/jsz", "JetStream is not enabled"));
        }
        Ok(v["meta_cluster"].clone())
    }

    /// Whether `/jsz` names this node as the meta leader.
    pub fn leads(&self) -> bool {
        self.meta()
            .is_ok_and(|m| m["leader"].as_str() == Some(self.name.as_str()))
    }

    fn says(&self, what: &str, text: &str) -> String {
        format!("{} {what}: {text}", self.name)
    }

    /// Both answers, for a failure message.
    pub fn report(&self) -> String {
        let show = |r: &Result<String, String>| match r {
            Ok(body) => body.trim().to_string(),
            Err(e) => format!("(no answer: {e})"),
        };
        format!(
            "{} /healthz: {}\n{} /jsz: {}",
            self.name,
            show(&self.healthz),
            self.name,
            show(&self.jsz)
        )
    }
}

fn json(body: &str) -> Result<Value, String> {
    serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): {body:?}"))
}

/// Whether the probes of *all* the nodes of a cluster of `probes.len()` show JetStream
/// ready to create streams replicated on every node: each healthy, all naming the same
/// meta leader, and that leader counting every other peer as current and online. `Err`
/// says what is missing.
pub(crate) fn ready(probes: &[Probe]) -> Result<(), String> {
    let n = probes.len();
    for p in probes {
        p.healthy()?;
    }
    if n == 1 {
        // A single server has no meta group; `/jsz` must still show JetStream enabled.
        return probes[0].meta().map(|_| ());
    }
    let mut leader = None;
    for p in probes {
        // Not `cluster_size`: after all nodes restarted at once, 2.9.10 has kept saying 2
        // on all three for 30 s while its leader counted both others current (seen in a
        // CI run). The leader's replicas, below, are what count.
        let meta = p.meta()?;
        let Some(l) = meta["leader"].as_str() else {
            return Err(p.says("/jsz", "no meta leader yet"));
        };
        match leader {
            None => leader = Some(l.to_string()),
            Some(ref first) if first != l => {
                return Err(format!("nodes disagree on the meta leader: {first}, {l}"));
            }
            Some(_) => {}
        }
    }
    let leader = leader.expect("n > 1 probes");
    let Some(lp) = probes.iter().find(|p| p.name == leader) else {
        return Err(format!("the meta leader {leader} is not one of ours"));
    };
    let replicas = lp.meta()?["replicas"].clone();
    let replicas = replicas.as_array().cloned().unwrap_or_default();
    let current = replicas
        .iter()
        .filter(|r| r["current"] == true && r["offline"] != true)
        .count();
    if current == n - 1 {
        Ok(())
    } else {
        let what = format!("{current} of {} other peers current: {replicas:?}", n - 1);
        Err(lp.says("/jsz (leader)", &what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"status":"ok"}"#;
    const NO_LEADER: &str = r#"{"status":"unavailable","error":"JetStream has not established contact with a meta leader"}"#;

    /// A `/jsz` as 2.9.10 writes it (trimmed), with this `meta_cluster`.
    fn jsz(meta: &str) -> String {
        format!(r#"{{"server_id":"N","config":{{"max_memory":268435456}},"meta_cluster":{meta}}}"#)
    }

    fn probe(name: &str, healthz: &str, jsz: String) -> Probe {
        Probe {
            name: name.into(),
            healthz: Ok(healthz.into()),
            jsz: Ok(jsz),
        }
    }

    fn follower(name: &str, leader: &str) -> Probe {
        let meta = format!(r#"{{"name":"c","leader":"{leader}","peer":"x","cluster_size":3}}"#);
        probe(name, OK, jsz(&meta))
    }

    fn leader(name: &str, others: [(&str, bool); 2]) -> Probe {
        let reps: Vec<String> = others
            .iter()
            .map(|(o, cur)| format!(r#"{{"name":"{o}","current":{cur},"active":1,"peer":"p"}}"#))
            .collect();
        let meta = format!(
            r#"{{"name":"c","leader":"{name}","peer":"x","replicas":[{}],"cluster_size":3}}"#,
            reps.join(",")
        );
        probe(name, OK, jsz(&meta))
    }

    #[test]
    fn a_cluster_whose_leader_counts_every_peer_current_is_ready() {
        let p = [
            follower("n0", "n2"),
            follower("n1", "n2"),
            leader("n2", [("n0", true), ("n1", true)]),
        ];
        assert_eq!(ready(&p), Ok(()));
    }

    #[test]
    fn a_cluster_size_that_lags_behind_its_peers_does_not_matter() {
        // What 2.9.10 showed after a restart of all three nodes, for 30 s.
        let two = |p: Probe| Probe {
            jsz: p
                .jsz
                .map(|j| j.replace(r#""cluster_size":3"#, r#""cluster_size":2"#)),
            ..p
        };
        let p = [
            two(follower("n0", "n1")),
            two(leader("n1", [("n0", true), ("n2", true)])),
            two(follower("n2", "n1")),
        ];
        assert!(p.iter().all(|p| {
            p.jsz
                .as_ref()
                .is_ok_and(|j| j.contains(r#""cluster_size":2"#))
        }));
        assert_eq!(ready(&p), Ok(()));
    }

    #[test]
    fn a_peer_not_current_a_missing_leader_or_disagreement_is_not_ready() {
        let lagging = [
            follower("n0", "n2"),
            follower("n1", "n2"),
            leader("n2", [("n0", true), ("n1", false)]),
        ];
        assert!(ready(&lagging).unwrap_err().contains("1 of 2"));
        // Followers still naming a killed leader, whose port does not answer.
        let mut stale = [
            follower("n0", "n2"),
            follower("n1", "n2"),
            follower("n2", "n2"),
        ];
        stale[2].jsz = Err("connection refused".into());
        stale[2].healthz = Err("connection refused".into());
        assert!(ready(&stale).unwrap_err().contains("n2 /healthz"));
        let split = [
            follower("n0", "n1"),
            leader("n1", [("n0", true), ("n2", true)]),
            follower("n2", "n0"),
        ];
        assert!(ready(&split).unwrap_err().contains("disagree"));
        let meta = r#"{"name":"c","peer":"x","cluster_size":3}"#;
        let unelected = [
            probe("n0", NO_LEADER, jsz(meta)),
            probe("n1", OK, jsz(meta)),
            probe("n2", OK, jsz(meta)),
        ];
        assert!(ready(&unelected).unwrap_err().contains("meta leader"));
    }

    #[test]
    fn a_single_server_needs_health_and_jetstream() {
        let single = |j: &str| [probe("n0", OK, j.to_string())];
        assert_eq!(ready(&single(r#"{"config":{"max_memory":1}}"#)), Ok(()));
        let disabled = ready(&single(r#"{"disabled":true}"#)).unwrap_err();
        assert!(disabled.contains("not enabled"), "{disabled}");
        assert!(ready(&[probe("n0", NO_LEADER, jsz("null"))]).is_err());
    }
}
