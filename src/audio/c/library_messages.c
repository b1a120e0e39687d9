/* What vj-audio needs of libasound beyond the `alsa` crate, in C because it is variadic or
 * macro-based there:
 * - ALSA's and JACK's own messages (printed to stderr by default, which under systemd is the
 *   journal: one "cannot find card '0'" per device scan) handed to vj-audio's logging; ALSA's
 *   handler is variadic, which Rust cannot define, so it is formatted here;
 * - the names of the PCMs ALSA's configuration defines (~/.asoundrc included), for telling a
 *   user who named a missing one what exists (snd_config_for_each is a macro). */
#include <alsa/asoundlib.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>

/* In Rust: src/audio/library_log.rs. */
void vj_library_message(const char *library, const char *message);

static void alsa_message(const char *file, int line, const char *function, int err,
                         const char *fmt, ...)
{
    char text[512];
    int n = snprintf(text, sizeof text, "%s:%i:(%s) ", file, line, function);
    if (n < 0 || n >= (int)sizeof text)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - n, fmt, ap);
    va_end(ap);
    (void)err;
    vj_library_message("ALSA", text);
}

static void jack_message(const char *message)
{
    vj_library_message("JACK", message);
}

/* Routes both; returns 1 when libjack is present (its messages are then routed too). JACK is
 * loaded by ALSA's jack PCM plugin at the first device scan: loading it here first, and setting
 * its (process-wide) message functions, covers that plugin's client. */
int vj_route_library_messages(void)
{
    snd_lib_error_set_handler(alsa_message);
    void *jack = dlopen("libjack.so.0", RTLD_LAZY | RTLD_GLOBAL);
    if (!jack)
        return 0;
    void (*set_error)(void (*)(const char *)) =
        (void (*)(void (*)(const char *)))dlsym(jack, "jack_set_error_function");
    void (*set_info)(void (*)(const char *)) =
        (void (*)(void (*)(const char *)))dlsym(jack, "jack_set_info_function");
    if (set_error)
        set_error(jack_message);
    if (set_info)
        set_info(jack_message);
    return 1;
}

/* In Rust: src/audio/library_log.rs. */
void vj_alsa_pcm_name(void *names, const char *name);

/* Calls vj_alsa_pcm_name(names, id) for every PCM the configuration defines that can be opened
 * by its name alone (templates that take arguments, like hw:CARD, are left out). */
int vj_alsa_pcm_names(void *names)
{
    snd_config_t *pcms;
    snd_config_iterator_t i, next;
    if (snd_config_update() < 0 || snd_config_search(snd_config, "pcm", &pcms) < 0)
        return -1;
    snd_config_for_each(i, next, pcms)
    {
        snd_config_t *pcm = snd_config_iterator_entry(i);
        snd_config_t *args;
        const char *id;
        if (snd_config_get_id(pcm, &id) < 0)
            continue;
        if (snd_config_get_type(pcm) == SND_CONFIG_TYPE_COMPOUND &&
            snd_config_search(pcm, "@args", &args) == 0)
            continue;
        vj_alsa_pcm_name(names, id);
    }
    return 0;
}
