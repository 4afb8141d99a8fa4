//! A private message to one user, wherever they are connected.

use chat_common::link::ToBroker;
use chat_common::name::validate_name;

use crate::session::Session;

/// Routes `msg` to `to` through the broker, which knows every user. Names that cannot
/// belong to anybody (`Everyone`, `SERVER`, malformed ones) are refused here, without a
/// round trip; the seeds' load scripts send heartbeats to `Everyone` and expect just that.
pub async fn apply(s: &Session, to: String, msg: String) {
    if validate_name(&to).is_err() {
        let hint = if to.eq_ignore_ascii_case(chat_common::EVERYONE) {
            " (to talk to everyone, send to /shout or *)"
        } else {
            ""
        };
        return s.error(format!("user '{to}' is not online{hint}"));
    }
    match s.hub.start_request(s.conn, false, &msg) {
        Ok((req, link)) => {
            if link
                .send(&ToBroker::Private {
                    conn: s.conn,
                    req,
                    to,
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
