//! TLS on the JSON port: a client that trusts the server's certificate chats with plain-TCP
//! clients; one that does not trust it, or speaks plain text to the TLS port, gets nowhere
//! and hurts nobody.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use support::*;
use testkit::inproc::{broker, tls_server};

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client_config(ca: Option<&Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).expect("ca file") {
            roots.add(cert.expect("cert")).expect("add");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn connect(addr: SocketAddr, host: &str, ca: Option<&Path>) -> Tls {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let name = ServerName::try_from(host.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(client_config(ca), name).expect("client");
    rustls::StreamOwned::new(conn, tcp)
}

fn recv(r: &mut BufReader<Tls>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).expect("read over TLS");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[test]
fn a_tls_client_chats_with_plain_clients_and_untrusted_ones_get_nowhere() {
    let dir = std::env::temp_dir().join(format!("chat-tls-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cert = dir.join("server-cert.pem");
    let (_b, baddr) = broker(&[]);
    let (_s, json, tls) = tls_server(baddr, &cert);
    assert!(cert.exists(), "the self-signed certificate was written");

    let mut bob = JsonClient::login(json, "bob");

    // Alice over TLS, trusting the written certificate, by name and by address.
    for host in ["localhost", "127.0.0.1"] {
        let mut probe = connect(tls, host, Some(&cert));
        probe.write_all(b"probe\n").expect("handshake and write");
        let mut r = BufReader::new(probe);
        let w = recv(&mut r);
        assert_eq!(w["type"], "welcome", "{host}: {w}");
        bob.recv_type("join");
        drop(r);
        bob.recv_type("leave");
    }
    let mut alice = connect(tls, "localhost", Some(&cert));
    alice.write_all(b"alice").expect("write");
    let mut alice_r = BufReader::new(alice);
    let welcome = recv(&mut alice_r);
    assert!(msg(&welcome).contains("Welcome alice!"), "{welcome}");
    bob.recv_type("join");
    alice_r
        .get_mut()
        .write_all(br#"{"to":"*","msg":"hello from TLS"}"#)
        .expect("write");
    let m = bob.recv_type("chat");
    assert_eq!(
        (m["from"]["name"].as_str(), msg(&m)),
        (Some("alice"), "hello from TLS")
    );
    assert_eq!(
        m["from"]["ip"], "127.0.0.1",
        "stamped with the real peer address"
    );
    bob.send("alice", "hello back");
    let p = loop {
        let v = recv(&mut alice_r);
        if v["type"] == "private" {
            break v;
        }
    };
    assert_eq!(msg(&p), "hello back");

    // A client that does not trust the certificate fails the handshake.
    let mut wary = connect(tls, "localhost", None);
    let err = wary
        .write_all(b"mallory")
        .expect_err("untrusted certificate");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // Plain text to the TLS port: the handshake fails and the connection closes.
    let mut plain = TcpStream::connect(tls).expect("connect");
    plain.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    plain.write_all(b"mallory\n").expect("write");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut rest);
    assert!(
        !String::from_utf8_lossy(&rest).contains("Welcome"),
        "no plain-text login"
    );
    // Nobody else noticed: the chat goes on, and neither got a name.
    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["alice", "bob"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tls_port_without_a_certificate_is_refused_at_startup() {
    let out = std::process::Command::new(bin("server"))
        .args(["--tls-listen", "127.0.0.1:0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-self-signed"), "{err}");
}
