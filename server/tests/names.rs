//! Look-alike names against a broker and two servers (PROTOCOL.md §2.2, §4.1): a name that
//! clashes with one online is taken, a private message to any look-alike reaches the one
//! holder, shown under the name it typed, and look-alikes of reserved words are reserved.

mod support;

use support::*;
use testkit::inproc::{broker, server};

/// The refusal a login as `raw` gets: its first frame, then the connection closes.
fn refused(addr: std::net::SocketAddr, raw: &str) -> serde_json::Value {
    let (mut c, first) = JsonClient::login_raw(addr, raw.as_bytes());
    assert_eq!(first["type"], "error", "{raw:?}: {first}");
    c.expect_closed();
    first
}

#[test]
fn look_alike_names_are_one_name_across_servers() {
    let (_b, addr) = broker(&[]);
    let (s1, s2) = (server(addr, &[]), server(addr, &[]));
    let mut teacher = JsonClient::login(s1.json, "Teacher");

    // The same name in other case, or with a Cyrillic е, on the other server: taken, and the
    // refusal names the holder as they typed it.
    for raw in ["teacher", "TEACHER", "T\u{435}acher"] {
        let e = refused(s2.json, raw);
        assert_eq!(e["code"], "name_taken", "{raw:?}: {e}");
        assert_eq!(
            msg(&e),
            "Error: the name 'Teacher' is already in use",
            "{e}"
        );
        assert_eq!(e["to"], raw, "to is the name tried: {e}");
    }

    // Look-alikes of reserved words and blank names are invalid.
    for raw in [
        "\u{405}\u{415}RV\u{415}R",
        "\u{ff33}\u{ff25}\u{ff32}\u{ff36}\u{ff25}\u{ff32}",
    ] {
        let e = refused(s2.json, raw);
        assert_eq!(e["code"], "name_invalid", "{raw:?}: {e}");
        assert_eq!(
            msg(&e),
            format!("Error: invalid name: the name \"{raw}\" is reserved"),
            "{e}"
        );
    }
    let e = refused(s2.json, "\u{2800}");
    assert_eq!(e["code"], "name_invalid", "{e}");

    // A private message to `teacher` reaches `Teacher`, from the sender as they typed it.
    let mut pupil = JsonClient::login(s2.json, "P\u{e9}pin");
    teacher.recv_type("join");
    pupil.send("teacher", "is the test tomorrow?");
    let p = teacher.recv_type("private");
    assert_eq!(p["from"]["name"], "P\u{e9}pin", "{p}");
    assert_eq!(p["to"], "Teacher", "{p}");
    assert_eq!(msg(&p), "is the test tomorrow?");

    // The line port's `/msg` too, with a fullwidth look-alike.
    let (mut line, _welcome) = LineClient::login(s2.text, "lina");
    teacher.recv_type("join");
    line.send("/msg \u{ff34}EACHER hello");
    let p = teacher.recv_type("private");
    assert_eq!(p["from"]["name"], "lina", "{p}");
    assert_eq!(msg(&p), "hello");

    // Once the holder leaves, a look-alike may log in.
    drop(teacher);
    pupil.recv_type("leave");
    let _t = JsonClient::login(s2.json, "teacher");
}
