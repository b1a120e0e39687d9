//! `vj-oscdebug`: the OSC debugger worker (bus name `osc_debugger`).

fn main() -> std::process::ExitCode {
    vj::worker::main::<vj::oscdebug::OscDebugger>(&vj::registry::WORKERS)
}
