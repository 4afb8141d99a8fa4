//! The metrics endpoint of the real binaries (`--metrics-listen`; README, "Metrics"): real
//! traffic through a broker and a server, then `GET /metrics` over HTTP, its values, and
//! `promtool check metrics` on both pages (skipped, with a notice, where promtool is not
//! installed; `.ci/run` installs it).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// The answer to one request: the head and the body.
fn http(addr: SocketAddr, request: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(TIMEOUT)).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).ok()?;
    let text = String::from_utf8(got).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// The page at `addr`, or `None` if nothing answers there (yet).
fn scrape(addr: SocketAddr) -> Option<String> {
    let (head, body) = http(addr, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"),
        "{head}"
    );
    Some(body)
}

/// The value of one series (`name` or `name{labels}`, written as the page writes it).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `addr` until every `(series, test)` holds; panics with the last page after
/// [`TIMEOUT`]. What the processes count happens a moment after what the clients see.
fn wait_for(addr: SocketAddr, checks: &[(&str, &dyn Fn(f64) -> bool)]) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = scrape(addr).unwrap_or_default();
        let failing: Vec<&str> = checks
            .iter()
            .filter(|(series, ok)| !value(&page, series).is_some_and(ok))
            .map(|(series, _)| *series)
            .collect();
        if failing.is_empty() {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "still not as expected: {failing:?} in\n{page}"
        );
        // A poll interval, not a synchronisation: the loop waits for the condition.
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is(n: f64) -> impl Fn(f64) -> bool {
    move |v| v == n
}

fn at_least(n: f64) -> impl Fn(f64) -> bool {
    move |v| v >= n
}

/// `promtool check metrics` on `page`: no error and no lint warning.
fn promtool_accepts(what: &str, page: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("NOTICE: promtool is not installed; {what}'s page not checked with it");
            return;
        }
        Err(e) => panic!("running promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(page.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool on the {what}'s page: {said}\n{page}"
    );
}

#[test]
fn a_scrape_tells_what_the_traffic_did_and_promtool_accepts_both_pages() {
    let (_broker, b) = Proc::start(
        "broker",
        &["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
        2,
    );
    let (link, broker_metrics) = (b[0].to_string(), b[1]);
    let (server, s) = Proc::start(
        "server",
        &[
            "--broker",
            &link,
            "--listen",
            "127.0.0.1:0",
            "--text-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        3,
    );
    let (json, text, server_metrics) = (s[0], s[1], s[2]);

    let mut alice = JsonClient::login(json, "alice");
    let (mut bob, _) = LineClient::login(text, "bob");
    alice.send("/shout", "hello everyone");
    alice.recv_until("the confirmation", |v| {
        msg(v).starts_with("Message sent to 1 user")
    });
    bob.recv_containing("hello everyone");
    alice.send("bob", "psst");
    bob.recv_containing("psst");
    let (mut taken, refusal) = JsonClient::login_raw(json, b"alice");
    assert_eq!(refusal["code"], "name_taken", "{refusal}");
    taken.expect_closed();

    let page = wait_for(
        server_metrics,
        &[
            ("chat_logins_total", &is(2.0)),
            ("chat_login_refusals_total{code=\"name_taken\"}", &is(1.0)),
            ("chat_login_refusals_total{code=\"name_invalid\"}", &is(0.0)),
            ("chat_messages_in_total", &is(2.0)),
            ("chat_messages_out_total", &at_least(6.0)),
            ("chat_received_bytes_total", &at_least(30.0)),
            ("chat_sent_bytes_total", &at_least(100.0)),
            ("chat_connections_open{port=\"json\"}", &is(1.0)),
            ("chat_connections_open{port=\"line\"}", &is(1.0)),
            ("chat_connections_open{port=\"tls\"}", &is(0.0)),
            ("chat_connections_accepted_total{port=\"json\"}", &is(2.0)),
            ("chat_connections_accepted_total{port=\"line\"}", &is(1.0)),
            ("chat_users_online", &is(2.0)),
            ("chat_backend_up{backend=\"broker\"}", &is(1.0)),
            // Two logins, the refused one, the public and the private message.
            (
                "chat_backend_round_trip_seconds_count{backend=\"broker\"}",
                &is(5.0),
            ),
            (
                "chat_backend_round_trip_seconds_bucket{backend=\"broker\",le=\"+Inf\"}",
                &is(5.0),
            ),
            (
                "chat_backend_round_trip_seconds_sum{backend=\"broker\"}",
                &|v| v > 0.0,
            ),
            (
                "chat_client_disconnects_total{reason=\"send_queue_exceeded\"}",
                &is(0.0),
            ),
        ],
    );
    promtool_accepts("server", &page);

    let page = wait_for(
        broker_metrics,
        &[
            ("chat_broker_links_up", &is(1.0)),
            ("chat_broker_events_total{kind=\"chat\"}", &is(1.0)),
            ("chat_broker_events_total{kind=\"private\"}", &is(1.0)),
            ("chat_broker_events_total{kind=\"join\"}", &is(2.0)),
            ("chat_broker_events_total{kind=\"leave\"}", &is(0.0)),
            ("chat_broker_link_received_bytes_total", &at_least(100.0)),
            ("chat_broker_link_sent_bytes_total", &at_least(100.0)),
            ("chat_broker_link_drops_total{reason=\"closed\"}", &is(0.0)),
            ("chat_broker_history_events", &is(4.0)),
            ("chat_broker_history_file_bytes", &|v| v > 0.0),
            ("chat_broker_history_write_failures_total", &is(0.0)),
        ],
    );
    promtool_accepts("broker", &page);

    // Only /metrics is served.
    let (head, _) = http(server_metrics, "GET / HTTP/1.1\r\n\r\n").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    let (head, _) = http(broker_metrics, "DELETE /metrics HTTP/1.1\r\n\r\n").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    let (head, _) = http(server_metrics, "\u{1}\u{2} nonsense\n\n").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");

    // The broker counts the server's link ending, and its users leaving.
    drop(server);
    let page = wait_for(
        broker_metrics,
        &[
            ("chat_broker_links_up", &is(0.0)),
            ("chat_broker_events_total{kind=\"leave\"}", &is(2.0)),
        ],
    );
    let drops: f64 = ["closed", "read_error"]
        .iter()
        .filter_map(|r| {
            value(
                &page,
                &format!("chat_broker_link_drops_total{{reason=\"{r}\"}}"),
            )
        })
        .sum();
    assert_eq!(drops, 1.0, "a killed server's link ends once\n{page}");
}

#[test]
fn the_page_is_served_while_the_broker_is_out_of_reach_and_says_so() {
    let metrics = free_addr();
    let nowhere = free_addr().to_string();
    let at = metrics.to_string();
    let _server = Proc::start_with_closed_stdout(
        "server",
        &[
            "--broker",
            &nowhere,
            "--listen",
            "127.0.0.1:0",
            "--text-listen",
            "off",
            "--metrics-listen",
            &at,
        ],
    );
    let page = wait_for(
        metrics,
        &[
            ("chat_backend_up{backend=\"broker\"}", &is(0.0)),
            ("chat_logins_total", &is(0.0)),
        ],
    );
    promtool_accepts("unlinked server", &page);
}

#[test]
fn metrics_are_off_by_default() {
    let (_broker, link) = broker(&[]);
    let mut s = server(link, &[]);
    s.proc.signal(libc::SIGTERM);
    assert_eq!(s.proc.wait_exit(), Some(0));
    let rest: Vec<String> = std::iter::from_fn(|| s.proc.next_line()).collect();
    assert!(
        !rest.iter().any(|l| l.contains("metrics")),
        "no endpoint unless asked for: {rest:?}"
    );
}

#[test]
fn a_server_on_nats_reports_its_backend_and_its_round_trips() {
    if testkit::nats::skip() {
        return;
    }
    let cluster = testkit::nats::NatsCluster::start(1);
    let url = cluster.url(0);
    let (_server, s) = Proc::start(
        "server",
        &[
            "--nats",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--text-listen",
            "off",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        2,
    );
    let (json, metrics) = (s[0], s[1]);
    let mut alice = JsonClient::login(json, "alice");
    let mut bob = JsonClient::login(json, "bob");
    alice.recv_type("join");
    alice.send("/shout", "hello");
    alice.recv_until("the confirmation", |v| msg(v).starts_with("Message sent"));
    bob.recv_type("chat");
    let page = wait_for(
        metrics,
        &[
            ("chat_backend_up{backend=\"nats\"}", &is(1.0)),
            ("chat_logins_total", &is(2.0)),
            ("chat_users_online", &is(2.0)),
            // Two logins and the message, each answered through the stream.
            (
                "chat_backend_round_trip_seconds_count{backend=\"nats\"}",
                &at_least(3.0),
            ),
        ],
    );
    promtool_accepts("server on NATS", &page);
}
