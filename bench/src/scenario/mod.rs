//! One module per benchmark scenario.

pub mod fanout;
pub mod history;
pub mod payload;
pub mod ramp;
pub mod rtt;
pub mod stress;
