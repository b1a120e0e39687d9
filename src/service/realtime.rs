//! Real-time scheduling for a thread whose timing a person sees: `vj-status replay`'s sender.
//!
//! Why: a thread of the ordinary policy that sleeps until a bundle is due is woken on time,
//! but on a busy machine the scheduler may let the task that holds the core run on to the end
//! of its slice or the next tick first (4 ms at HZ=250; Linux 6.x's EEVDF does this by
//! design), and spinning longer before the due time does not help: the spin spends the slice
//! that would have won the wake-up (docs/BENCHMARKS.md, "Replay timing", has the figures).
//! The lowest real-time priority (`SCHED_FIFO` 1) is woken before any ordinary task and below
//! every sound server's threads. Allowed to root and to users with an `rtprio` limit
//! (`ulimit -r`, limits.conf); refused otherwise, and the caller goes on without it. Threads
//! started by a real-time thread inherit its policy (see [`ordinary`]).

use std::io;
use std::marker::PhantomData;

/// The calling thread's scheduling before [`lowest_fifo`], put back when this is dropped (the
/// thread may be a pool's, reused for other work after). Not `Send`: dropped on another thread
/// it would change the wrong thread's scheduling.
pub struct Realtime {
    policy: libc::c_int,
    param: libc::sched_param,
    _this_thread: PhantomData<*const ()>,
}

/// Makes the calling thread `SCHED_FIFO` at the lowest real-time priority until the returned
/// guard is dropped. The thread must block regularly (it keeps ordinary tasks off its core
/// while it runs; the kernel's real-time throttling leaves them 5 % even then).
pub fn lowest_fifo() -> io::Result<Realtime> {
    let mut policy: libc::c_int = 0;
    // SAFETY: a zeroed `sched_param` is a valid value of this plain C struct.
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: `pthread_self()` is the calling thread, alive during the call; both pointers are
    // to locals the call fills in.
    let err = unsafe { libc::pthread_getschedparam(libc::pthread_self(), &mut policy, &mut param) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: as above.
    let mut new: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: plain call with no pointer arguments.
    new.sched_priority = unsafe { libc::sched_get_priority_min(libc::SCHED_FIFO) };
    // SAFETY: `pthread_self()` is the calling thread; `new` is a local the call only reads.
    let err = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &new) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(Realtime {
        policy,
        param,
        _this_thread: PhantomData,
    })
}

/// Puts the calling thread back at the ordinary policy (always allowed): for a thread started
/// by a real-time one that must not inherit its priority, or one that must give it up.
pub fn ordinary() -> io::Result<()> {
    // SAFETY: a zeroed `sched_param` (priority 0, what SCHED_OTHER takes) is a valid value.
    let param: libc::sched_param = unsafe { std::mem::zeroed() };
    // SAFETY: `pthread_self()` is the calling thread; `param` is a local the call only reads.
    let err =
        unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_OTHER, &param) };
    match err {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        // SAFETY: dropped on the thread that made it (the guard is not `Send`), which is alive;
        // `param` is the guard's own.
        unsafe {
            libc::pthread_setschedparam(libc::pthread_self(), self.policy, &self.param);
        }
    }
}
