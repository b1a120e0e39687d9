//! A UDP listener that dates each datagram by the kernel's receive timestamp (`SO_TIMESTAMPNS`):
//! on loopback that is the moment the sender's `send` delivered it, however late the listening
//! thread itself gets to run on a busy machine. What a replay's timing is measured with
//! (tests/record_replay.rs, benches/record_replay.rs): the listener's own wake-ups, a
//! scheduler tick late under load, would otherwise be counted as the sender's error.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One datagram: when the kernel received it (`CLOCK_REALTIME`, from the epoch), when the
/// listening thread got it, and its bytes.
pub struct Datagram {
    pub at: Duration,
    pub woke: Instant,
    pub bytes: Vec<u8>,
}

pub struct StampedListener {
    pub addr: String,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Datagram>>>,
    thread: JoinHandle<()>,
}

impl StampedListener {
    pub fn bind() -> StampedListener {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&socket)
            .set_recv_buffer_size(8 << 20)
            .unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        stamp(&socket);
        let addr = socket.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::with_capacity(1 << 16)));
        let (flag, into) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !flag.load(Ordering::Relaxed) {
                if let Some(d) = receive(&socket, &mut buf) {
                    into.lock().unwrap().push(d);
                }
            }
        });
        StampedListener {
            addr,
            stop,
            got,
            thread,
        }
    }

    /// What was received since the last `take`.
    pub fn take(&self) -> Vec<Datagram> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }

    /// The rest of what was received; waits `settle` first for datagrams still on their way.
    pub fn finish(self, settle: Duration) -> Vec<Datagram> {
        std::thread::sleep(settle);
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

/// Has the kernel date every datagram `socket` receives (read them with [`receive`]).
pub fn stamp(socket: &UdpSocket) {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd we own, and a pointer to a c_int with its size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
}

/// A kernel timestamp (`CLOCK_REALTIME`) as an `Instant` of this process's monotonic clock.
pub fn instant(at: Duration) -> Instant {
    let (wall, now) = (
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap(),
        Instant::now(),
    );
    match wall.checked_sub(at) {
        Some(ago) => now - ago,
        None => now + (at - wall),
    }
}

/// One datagram of a [`stamp`]ed socket and its kernel timestamp, or `None` at the read
/// timeout.
pub fn receive(socket: &UdpSocket, buf: &mut [u8]) -> Option<Datagram> {
    // 8-byte aligned room for one `cmsghdr` and a `timespec`.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed `msghdr` is a valid value of this plain C struct.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all alive and exclusively ours
    // for the call, with their true lengths.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return None;
    }
    let woke = Instant::now();
    let control: Vec<u8> = control.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let control = &control[..(msg.msg_controllen as usize).min(control.len())];
    Some(Datagram {
        at: timestamp(control).expect("a receive timestamp (SO_TIMESTAMPNS)"),
        woke,
        bytes: buf[..n as usize].to_vec(),
    })
}

/// The `SCM_TIMESTAMPNS` in a control buffer (Linux, 64-bit: a `cmsghdr`, then a `timespec`
/// of two `i64`s at the next 8-byte boundary).
fn timestamp(mut control: &[u8]) -> Option<Duration> {
    let header = std::mem::size_of::<libc::cmsghdr>();
    let word = |b: &[u8], at: usize, len: usize| -> Option<u64> {
        let bytes = b.get(at..at + len)?;
        Some(match len {
            4 => u32::from_ne_bytes(bytes.try_into().ok()?) as u64,
            _ => u64::from_ne_bytes(bytes.try_into().ok()?),
        })
    };
    while control.len() >= header {
        let len = word(control, 0, std::mem::size_of::<usize>())? as usize;
        let level = word(control, std::mem::size_of::<usize>(), 4)? as i32;
        let kind = word(control, std::mem::size_of::<usize>() + 4, 4)? as i32;
        if level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS {
            let secs = word(control, header, 8)?;
            let nanos = word(control, header + 8, 8)?;
            return Some(Duration::new(secs, nanos as u32));
        }
        let next = len.div_ceil(8) * 8;
        if len < header || next > control.len() {
            return None;
        }
        control = &control[next..];
    }
    None
}
