//! What the broker says, as the core's events (pure).
//!
//! The link's messages carry broker-specific details (server ids, origins); the core only
//! needs to know whether a message is one of its own. Everything else maps one to one
//! (docs/ARCHITECTURE.md, "The broker link").

use chat_common::link::{ServerId, ToServer};

use crate::core::event::{Event, Own};

/// The event a broker message means for server `me`, or `None` for link housekeeping
/// (`Hello` is handled by the handshake; `Pong` only proves the link is alive; `Rejected`
/// is logged by the link).
pub fn event(msg: ToServer, me: ServerId) -> Option<Event> {
    Some(match msg {
        ToServer::Registered { conn, name, id, ts } => Event::Registered { conn, name, id, ts },
        ToServer::Refused { conn, reason } => Event::Refused { conn, reason },
        ToServer::Joined { name, id, ts } => Event::Joined { name, id, ts },
        ToServer::Left { name, id, ts } => Event::Left { name, id, ts },
        ToServer::Public {
            id,
            ts,
            from,
            msg,
            origin,
            recipients,
        } => Event::Public {
            id,
            ts,
            from,
            msg,
            own: (origin.server == me).then_some(Own {
                conn: origin.conn,
                req: origin.req,
            }),
            recipients,
        },
        ToServer::Private {
            id,
            ts,
            from,
            to_conn,
            to,
            msg,
        } => Event::Private {
            id,
            ts,
            from,
            to_conn,
            to,
            msg,
        },
        ToServer::Routed { req, id } => Event::Routed { req, id },
        ToServer::Stable { upto } => Event::Stable { upto },
        ToServer::Undeliverable { req, reason, .. } => Event::Undeliverable { req, reason },
        ToServer::History {
            conn,
            epoch,
            events,
            more,
            gap,
        } => Event::History {
            conn,
            epoch,
            events,
            more,
            gap,
        },
        ToServer::HistoryOff { conn } => Event::HistoryOff { conn },
        ToServer::Session { conn, token } => Event::Session { conn, token },
        ToServer::Resumed { conn } => Event::Resumed { conn },
        ToServer::ResumeFailed { conn } => Event::ResumeFailed { conn },
        ToServer::Hello { .. } | ToServer::Pong | ToServer::Rejected { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_common::Sender;
    use chat_common::link::Origin;

    fn public(server: ServerId) -> ToServer {
        ToServer::Public {
            id: 5,
            ts: 6,
            from: Sender {
                name: "al".into(),
                ip: "ip".into(),
            },
            msg: "hi".into(),
            origin: Origin {
                server,
                conn: 7,
                req: 8,
            },
            recipients: 2,
        }
    }

    #[test]
    fn a_public_message_is_ours_only_when_it_comes_from_this_server() {
        match event(public(3), 3) {
            Some(Event::Public { own, .. }) => assert_eq!(own, Some(Own { conn: 7, req: 8 })),
            other => panic!("{other:?}"),
        }
        match event(public(4), 3) {
            Some(Event::Public { own, .. }) => assert_eq!(own, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn housekeeping_is_no_event() {
        assert_eq!(event(ToServer::Pong, 1), None);
        assert_eq!(
            event(
                ToServer::Hello {
                    server_id: 1,
                    users: vec![]
                },
                1
            ),
            None
        );
        assert_eq!(
            event(ToServer::Stable { upto: 4 }, 1),
            Some(Event::Stable { upto: 4 })
        );
    }
}
