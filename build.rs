//! Linux: the small C shim that hands ALSA's and JACK's messages to our logging
//! (src/audio/c/library_messages.c; ALSA's handler is variadic, which Rust cannot define).

fn main() {
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
