//! Sockets handed over by the supervisor (systemd `LISTEN_FDS`/`LISTEN_FDNAMES`, launchd
//! `launch_activate_socket`), taken by name; with none, the worker binds the same addresses
//! itself so a developer can run the binary by hand.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The fd name of every worker's control socket (`FileDescriptorName=control`).
pub const CONTROL: &str = "control";
/// The fd name of a worker's OSC input (`FileDescriptorName=osc`).
pub const OSC: &str = "osc";
/// The fd name of a worker's HTTP listener (`FileDescriptorName=http`).
pub const HTTP: &str = "http";

/// The sockets this process was started with, by name.
pub struct Activated {
    names: Vec<String>,
    #[cfg(not(target_os = "macos"))]
    fds: listenfd::ListenFd,
    /// From an activated socket: the supervisor owns the path; do not unlink it on exit.
    pub from_supervisor: bool,
}

impl Activated {
    /// Reads (and clears) the activation environment. Call once, early.
    pub fn from_env() -> Self {
        #[cfg(not(target_os = "macos"))]
        {
            let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
                .map(|v| v.split(':').map(str::to_string).collect())
                .unwrap_or_default();
            let fds = listenfd::ListenFd::from_env();
            std::env::remove_var("LISTEN_FDNAMES");
            let from_supervisor = fds.len() > 0;
            Activated {
                names,
                fds,
                from_supervisor,
            }
        }
        #[cfg(target_os = "macos")]
        {
            Activated {
                names: Vec::new(),
                from_supervisor: false,
            }
        }
    }

    /// Index of the fd called `name`. Without `LISTEN_FDNAMES`, fd 0 is the control socket.
    #[cfg(not(target_os = "macos"))]
    fn index(&self, name: &str) -> Option<usize> {
        match self.names.iter().position(|n| n == name) {
            Some(i) => Some(i),
            None if self.names.is_empty() && name == CONTROL && self.fds.len() > 0 => Some(0),
            None => None,
        }
    }

    /// The activated stream listener called `name`, if there is one.
    pub fn unix_listener(&mut self, name: &str) -> io::Result<Option<UnixListener>> {
        #[cfg(not(target_os = "macos"))]
        {
            match self.index(name) {
                Some(i) => self.fds.take_unix_listener(i),
                None => Ok(None),
            }
        }
        #[cfg(target_os = "macos")]
        {
            Ok(launchd::take(name)?.map(|fd| {
                use std::os::fd::FromRawFd;
                self.from_supervisor = true;
                // SAFETY: launchd handed us this listening socket and nothing else owns it.
                unsafe { UnixListener::from_raw_fd(fd) }
            }))
        }
    }

    /// The activated TCP listener called `name`, if there is one.
    pub fn tcp_listener(&mut self, name: &str) -> io::Result<Option<TcpListener>> {
        #[cfg(not(target_os = "macos"))]
        {
            match self.index(name) {
                Some(i) => self.fds.take_tcp_listener(i),
                None => Ok(None),
            }
        }
        #[cfg(target_os = "macos")]
        {
            Ok(launchd::take(name)?.map(|fd| {
                use std::os::fd::FromRawFd;
                // SAFETY: launchd handed us this listening socket and nothing else owns it.
                unsafe { TcpListener::from_raw_fd(fd) }
            }))
        }
    }

    /// The activated datagram socket called `name`, if there is one.
    pub fn udp_socket(&mut self, name: &str) -> io::Result<Option<UdpSocket>> {
        #[cfg(not(target_os = "macos"))]
        {
            match self.index(name) {
                Some(i) => self.fds.take_udp_socket(i),
                None => Ok(None),
            }
        }
        #[cfg(target_os = "macos")]
        {
            Ok(launchd::take(name)?.map(|fd| {
                use std::os::fd::FromRawFd;
                // SAFETY: launchd handed us this socket and nothing else owns it.
                unsafe { UdpSocket::from_raw_fd(fd) }
            }))
        }
    }
}

/// Binds a control socket at `path` by hand: the directory is made 0700, the socket 0600.
/// A stale socket file (nobody answers on it) is replaced; a live one means another instance
/// runs, which is an error rather than a silent takeover.
pub fn bind_control(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        super::files::create_private_dir(dir)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use: the worker already runs", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(target_os = "macos")]
mod launchd {
    //! `launch_activate_socket(3)`: the sockets a launchd plist's `Sockets` dict names.
    use std::ffi::CString;
    use std::io;
    use std::os::raw::{c_char, c_int};

    extern "C" {
        fn launch_activate_socket(
            name: *const c_char,
            fds: *mut *mut c_int,
            cnt: *mut libc::size_t,
        ) -> c_int;
    }

    pub fn take(name: &str) -> io::Result<Option<c_int>> {
        let cname =
            CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut fds: *mut c_int = std::ptr::null_mut();
        let mut cnt: libc::size_t = 0;
        // SAFETY: valid C string and out-pointers; launchd allocates `fds` with malloc.
        let rc = unsafe { launch_activate_socket(cname.as_ptr(), &mut fds, &mut cnt) };
        if rc != 0 {
            // ESRCH: not launched by launchd; ENOENT: no socket of that name.
            return if rc == libc::ESRCH || rc == libc::ENOENT {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(rc))
            };
        }
        // SAFETY: launchd returned `cnt` fds in a malloc'd array we now own.
        let first = unsafe {
            let v = (cnt > 0).then(|| *fds);
            libc::free(fds.cast());
            v
        };
        Ok(first)
    }
}
