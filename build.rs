//! Linux: the small C shim that hands ALSA's and JACK's messages to our logging
//! (src/audio/c/library_messages.c; ALSA's handler is variadic, which Rust cannot define).
//!
//! And two cfgs for the tests that need what not every machine gives, so that the test runner
//! reports them as ignored (never as passed) where they cannot run: `vj_root` when building as
//! root (a peer of another uid, a worker dropped to nobody), `vj_system_install` when also
//! `CI=true` or `VJ_TEST_SYSTEM_INSTALL=1` (installing the .deb system-wide).

/// The effective uid this build runs as (Linux: /proc/self/status).
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vj_root)");
    println!("cargo::rustc-check-cfg=cfg(vj_system_install)");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=VJ_TEST_SYSTEM_INSTALL");
    println!("cargo:rerun-if-env-changed=USER");
    if euid() == Some(0) {
        println!("cargo:rustc-cfg=vj_root");
        let on = |v: &str| std::env::var(v).is_ok_and(|x| x == "true" || x == "1");
        if on("CI") || on("VJ_TEST_SYSTEM_INSTALL") {
            println!("cargo:rustc-cfg=vj_system_install");
        }
    }
    println!("cargo:rerun-if-changed=src/audio/c/library_messages.c");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        cc::Build::new()
            .file("src/audio/c/library_messages.c")
            .warnings(true)
            .compile("vj_library_messages");
        // snd_lib_error_set_handler: libasound, which cpal links too; dlopen: libc.
        println!("cargo:rustc-link-lib=asound");
    }
}
