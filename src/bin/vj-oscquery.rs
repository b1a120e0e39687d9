//! `vj-oscquery`: the OSCQuery server and control-over-OSC input (bus name `oscquery_server`).

fn main() -> std::process::ExitCode {
    vj::worker::main::<vj::oscquery::OscQueryServer>(&vj::registry::WORKERS)
}
