//! `/shout` and `*`: a public message, ordered by the broker and fanned out by every server.

use chat_common::link::ToBroker;

use crate::session::Session;

/// Sends `msg` to the broker. The confirmation (for `/shout`) or the "not delivered" error
/// comes back asynchronously through the hub.
pub async fn apply(s: &Session, msg: String, confirm: bool) {
    match s.hub.start_request(s.conn, confirm, &msg) {
        Ok((req, link)) => {
            if link
                .send(&ToBroker::Public {
                    conn: s.conn,
                    req,
                    msg,
                })
                .await
                .is_err()
            {
                s.hub.fail_request(req);
            }
        }
        Err(why) => s.error(why),
    }
}
