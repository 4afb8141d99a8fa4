//! Open-file limits, and the kernel's file table sized once at startup.
//!
//! A server holding thousands of sockets wants the hard limit of `RLIMIT_NOFILE`, not the
//! soft default. And Linux grows a process's file table by doubling: each growth of a
//! multi-threaded process waits for an RCU grace period inside `accept()`, which showed
//! up as 10–20 ms login stalls at 2,048, 4,096, 8,192 and 16,384 connections. Growing the
//! table to the limit once, while the process is still single-threaded, costs a few
//! hundred KiB and removes those stalls.

use std::os::fd::AsRawFd;

/// Raises the soft open-file limit to the hard limit (best effort) and returns the soft
/// limit now in force (0 if it cannot be read).
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid resource and a pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        }
        lim.rlim_cur
    }
}

/// Largest file table reserved up front, whatever the limit (a table slot costs a pointer
/// and two bits, so this is at most about 1 MiB).
const MAX_RESERVED: u64 = 1 << 17;

/// Grows the file table to hold `fds` descriptors now (capped at the soft limit and at
/// 131,072), by duplicating a descriptor onto the highest slot and closing it. Call it
/// before starting threads. Returns the slot used, or `None` if nothing was done.
pub fn reserve_file_table(fds: u64) -> Option<i32> {
    let slot = i32::try_from(fds.min(MAX_RESERVED).checked_sub(1)?).ok()?;
    if slot < 64 {
        return None;
    }
    let probe = std::fs::File::open("/dev/null").ok()?;
    // SAFETY: dup2 onto a slot above every descriptor the process uses (the table is
    // empty up there until thousands of connections are open, which happens only after
    // this runs at startup), then close exactly that duplicate.
    unsafe {
        if libc::fcntl(slot, libc::F_GETFD) != -1 {
            return None; // already in use: leave it alone
        }
        if libc::dup2(probe.as_raw_fd(), slot) != slot {
            return None;
        }
        libc::close(slot);
    }
    Some(slot)
}

/// [`raise_nofile`], then [`reserve_file_table`] for the whole limit. Returns the limit.
pub fn prepare() -> u64 {
    let limit = raise_nofile();
    reserve_file_table(limit);
    limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_nofile();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }

    #[test]
    fn the_reserved_slot_is_closed_again() {
        let limit = raise_nofile().min(4096);
        if let Some(slot) = reserve_file_table(limit) {
            assert_eq!(u64::try_from(slot).unwrap(), limit - 1);
            // SAFETY: F_GETFD only queries the slot.
            assert_eq!(unsafe { libc::fcntl(slot, libc::F_GETFD) }, -1);
        }
        assert_eq!(reserve_file_table(10), None, "tiny tables are left alone");
    }
}
