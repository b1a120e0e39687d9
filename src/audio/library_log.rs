//! What vj-audio asks of libasound through the C shim (src/audio/c/library_messages.c):
//! ALSA's and JACK's own messages, routed through our logging — each distinct message once, at
//! debug level (the first of each library also at info, saying so) — instead of a copy on
//! stderr, the journal, at every device scan; and the PCM names ALSA's configuration defines.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Mutex, Once};

use crate::service::lock;

extern "C" {
    fn vj_route_library_messages() -> c_int;
    fn vj_alsa_pcm_names(names: *mut c_void) -> c_int;
}

/// Called by the C shim for each PCM name; `names` is the `Vec<String>` of [`pcm_names`].
#[no_mangle]
extern "C" fn vj_alsa_pcm_name(names: *mut c_void, name: *const c_char) {
    if names.is_null() || name.is_null() {
        return;
    }
    // SAFETY: `names` is the `&mut Vec<String>` pcm_names passed down, alive and not aliased
    // during the call; `name` is a NUL-terminated id owned by ALSA's config tree.
    let (names, name) = unsafe { (&mut *names.cast::<Vec<String>>(), CStr::from_ptr(name)) };
    names.push(name.to_string_lossy().into_owned());
}

/// The PCMs ALSA's configuration (system files and the user's ~/.asoundrc) defines that open
/// by name alone: `default`, `dsnoop_mic`, … (not templates such as `hw`).
pub fn pcm_names() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    // SAFETY: the callback only pushes to `names`, which outlives the call.
    unsafe {
        vj_alsa_pcm_names((&mut names as *mut Vec<String>).cast());
    }
    names.sort();
    names.dedup();
    names
}

/// What has been logged already: (library, message).
static SEEN: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);

/// Called by the C shim for every message.
#[no_mangle]
extern "C" fn vj_library_message(library: *const c_char, message: *const c_char) {
    if library.is_null() || message.is_null() {
        return;
    }
    // SAFETY: the shim passes NUL-terminated strings that live for the duration of this call
    // (a string literal and a stack buffer, or JACK's own message).
    let (library, message) = unsafe { (CStr::from_ptr(library), CStr::from_ptr(message)) };
    let library = library.to_string_lossy().into_owned();
    let message = message.to_string_lossy().trim_end().to_string();
    let mut seen = lock(&SEEN);
    let seen = seen.get_or_insert_with(HashSet::new);
    let first_of_library = !seen.iter().any(|(l, _)| *l == library);
    if !seen.insert((library.clone(), message.clone())) {
        return;
    }
    if first_of_library {
        tracing::info!(library = %library, "{library} said: {message} (its further messages are logged once each, at debug level)");
    } else {
        tracing::debug!(library = %library, "{library} said: {message}");
    }
}

/// Routes ALSA's and JACK's messages here, once per process.
pub fn route() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets library-wide message handlers to functions that live for the whole
        // process; called once, before any device is opened.
        unsafe {
            vj_route_library_messages();
        }
    });
}
