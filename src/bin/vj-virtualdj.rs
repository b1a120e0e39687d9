//! `vj-virtualdj`: the VirtualDJ monitor worker (bus name `virtualdj_monitor`).

fn main() -> std::process::ExitCode {
    vj::worker::main::<vj::playback::virtualdj::VirtualDjMonitor>(&vj::registry::WORKERS)
}
