//! Whether the connection goes on after a command.

/// What the read loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Leave and close the connection.
    Quit,
}
