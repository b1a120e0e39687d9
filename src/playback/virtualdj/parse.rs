//! VirtualDJ's files, read as pure functions: `now_playing.txt` (one line `Artist - Title`),
//! `History/tracklist.txt` (`VirtualDJ History yyyy/mm/dd`, dashes, `HH:MM : Artist - Title`)
//! and the dated `History/YYYY-MM-DD.m3u` (`#EXTVDJ:<artist>…</artist><title>…</title>…`).
//!
//! The last entry wins. A last line without its newline may be half-written in an append-only
//! log, so it is ignored there until VirtualDJ finishes it (the next write triggers a re-read).

use std::borrow::Cow;

use serde::Serialize;

/// One song VirtualDJ says it played.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct PlayedEntry {
    pub artist: String,
    pub title: String,
    /// `<remix>` of the m3u history ("Extended Mix"); "" when not given.
    pub remix: String,
    /// `<songlength>` of the m3u history, seconds.
    pub duration_s: Option<f32>,
    /// The `HH:MM` of a tracklist line.
    pub played_at: Option<String>,
}

/// Which of VirtualDJ's files the bytes look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayedFile {
    /// `now_playing.txt`: rewritten whole on every change.
    NowPlaying,
    /// `History/tracklist.txt`: appended.
    Tracklist,
    /// `History/YYYY-MM-DD.m3u`: appended.
    History,
}

/// What a file says: its kind and the song it names last (`None`: no song in it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Played {
    pub kind: PlayedFile,
    pub last: Option<PlayedEntry>,
}

/// Text from VirtualDJ's bytes: UTF-8 (BOM dropped), UTF-16 with a BOM, else Windows-1252
/// (what VirtualDJ on Windows writes for non-Unicode names). Never fails.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return decode(rest);
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return Cow::Owned(utf16(rest, true));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return Cow::Owned(utf16(rest, false));
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        // A write caught in the middle of a character: UTF-8 up to there.
        Err(e) if e.error_len().is_none() => {
            Cow::Borrowed(std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default())
        }
        Err(_) => Cow::Owned(bytes.iter().map(|&b| windows_1252(b)).collect()),
    }
}

/// Windows-1252 to Unicode (0x80..0x9F differ from Latin-1).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// The bytes of a file's tail read from `offset` > 0 start mid-line: drop that partial line.
pub fn drop_partial_first_line(tail: &[u8], from_start: bool) -> &[u8] {
    if from_start {
        return tail;
    }
    match tail.iter().position(|&b| b == b'\n') {
        Some(i) => &tail[i + 1..],
        None => &[],
    }
}

/// Which format `text` is in.
pub fn detect(text: &str) -> PlayedFile {
    for line in text.lines().map(str::trim) {
        if line.starts_with("#EXTM3U") || line.starts_with("#EXTVDJ:") {
            return PlayedFile::History;
        }
        if line.starts_with("VirtualDJ History") || tracklist_line(line).is_some() {
            return PlayedFile::Tracklist;
        }
    }
    PlayedFile::NowPlaying
}

/// Reads any of VirtualDJ's files (bytes as read, possibly only the tail).
pub fn parse_played(bytes: &[u8]) -> Played {
    let text = decode(bytes);
    let kind = detect(&text);
    let last = match kind {
        PlayedFile::NowPlaying => now_playing(&text),
        PlayedFile::Tracklist => {
            // From the end: the last finished entry is all that matters.
            complete_lines(&text)
                .rev()
                .find_map(tracklist_line)
                .map(|(at, e)| PlayedEntry {
                    played_at: Some(at.to_string()),
                    ..e
                })
        }
        PlayedFile::History => history(&text),
    };
    Played { kind, last }
}

/// The lines a writer has finished (the last one only if it ends in a newline).
fn complete_lines(text: &str) -> impl DoubleEndedIterator<Item = &str> {
    let done = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    done.lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\0'))
}

/// `Artist - Title` (split at the first ` - `; no dash: all title).
pub fn artist_title(line: &str) -> Option<PlayedEntry> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    let (artist, title) = match line.split_once(" - ") {
        Some((a, t)) => (a.trim(), t.trim()),
        None => ("", line),
    };
    if title.is_empty() && artist.is_empty() {
        return None;
    }
    Some(PlayedEntry {
        artist: artist.to_string(),
        title: title.to_string(),
        ..PlayedEntry::default()
    })
}

fn now_playing(text: &str) -> Option<PlayedEntry> {
    text.lines()
        .map(|l| l.trim_matches(|c: char| c.is_whitespace() || c == '\0'))
        // A `#` or dashes line is the start of a log or playlist caught half-written.
        .find(|l| !l.is_empty())
        .filter(|l| !l.starts_with('#') && !l.bytes().all(|b| b == b'-'))
        .and_then(artist_title)
}

/// `HH:MM : Artist - Title` (also `HH:MM:SS : …`): the time and the entry.
fn tracklist_line(line: &str) -> Option<(&str, PlayedEntry)> {
    let (time, rest) = line.split_once(" : ")?;
    let time = time.trim();
    let parts: Vec<&str> = time.split(':').collect();
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let ok = matches!(parts.len(), 2 | 3)
        && digits(parts[0], 2)
        && parts[1..].iter().all(|p| p.len() == 2 && digits(p, 2));
    if !ok {
        return None;
    }
    Some((time, artist_title(rest)?))
}

/// The m3u history: `#EXTVDJ:` tags (or `#EXTINF:len,Artist - Title`) then the file's path.
fn history(text: &str) -> Option<PlayedEntry> {
    let mut last = None;
    let mut pending: Option<PlayedEntry> = None;
    for line in complete_lines(text) {
        if let Some(tags) = line.strip_prefix("#EXTVDJ:") {
            if let Some(p) = pending.take().filter(|p| !p.title.is_empty()) {
                last = Some(p);
            }
            pending = Some(extvdj(tags));
        } else if let Some(info) = line.strip_prefix("#EXTINF:") {
            let (len, name) = info.split_once(',').unwrap_or((info, ""));
            let mut e = artist_title(name).unwrap_or_default();
            e.duration_s = len.trim().parse::<f32>().ok().filter(|d| *d > 0.0);
            let p = pending.get_or_insert_with(PlayedEntry::default);
            if p.title.is_empty() {
                p.artist = e.artist;
                p.title = e.title;
            }
            if p.duration_s.is_none() {
                p.duration_s = e.duration_s;
            }
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else {
            // The track's path ends the entry; its file name stands in for missing tags.
            let mut p = pending.take().unwrap_or_default();
            if p.title.is_empty() {
                let name = line.rsplit(['/', '\\']).next().unwrap_or(line);
                let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
                if let Some(e) = artist_title(stem) {
                    p.artist = e.artist;
                    p.title = e.title;
                }
            }
            if !p.title.is_empty() {
                last = Some(p);
            }
        }
    }
    pending.filter(|p| !p.title.is_empty()).or(last)
}

/// `<artist>A</artist><title>T</title><remix>R</remix><songlength>245.3</songlength>…`
fn extvdj(tags: &str) -> PlayedEntry {
    let mut e = PlayedEntry::default();
    let mut rest = tags;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let name = &after[..close];
        let body = &after[close + 1..];
        let end_tag = format!("</{name}>");
        let Some(end) = body.find(&end_tag) else {
            rest = body;
            continue;
        };
        let value = xml_unescape(body[..end].trim());
        match name {
            "artist" => e.artist = value,
            "title" => e.title = value,
            "remix" => e.remix = value,
            "songlength" => {
                e.duration_s = value
                    .parse::<f32>()
                    .ok()
                    .filter(|d| d.is_finite() && *d > 0.0)
            }
            _ => {}
        }
        rest = &body[end + end_tag.len()..];
    }
    e
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(artist: &str, title: &str) -> PlayedEntry {
        PlayedEntry {
            artist: artist.into(),
            title: title.into(),
            ..PlayedEntry::default()
        }
    }

    #[test]
    fn now_playing_is_one_line() {
        let p = parse_played(b"Daft Punk - One More Time\r\n");
        assert_eq!(p.kind, PlayedFile::NowPlaying);
        assert_eq!(p.last, Some(entry("Daft Punk", "One More Time")));
        // VirtualDJ writes it without a newline too.
        let p = parse_played(b"Daft Punk - One More Time");
        assert_eq!(p.last, Some(entry("Daft Punk", "One More Time")));
    }

    #[test]
    fn a_title_with_dashes_keeps_them() {
        let p = parse_played(b"Armin van Buuren - Blah Blah Blah - Extended Mix");
        assert_eq!(
            p.last,
            Some(entry("Armin van Buuren", "Blah Blah Blah - Extended Mix"))
        );
        assert_eq!(parse_played(b"Intro").last, Some(entry("", "Intro")));
    }

    #[test]
    fn an_empty_now_playing_means_nothing_plays() {
        assert_eq!(parse_played(b"").last, None);
        assert_eq!(parse_played(b"  \n\n").last, None);
    }

    const TRACKLIST: &str = "VirtualDJ History 2024/01/15\n------------------------------\n\n\
        21:03 : Daft Punk - One More Time\n21:07 : Justice - D.A.N.C.E.\n";

    #[test]
    fn the_tracklist_last_entry_wins() {
        let p = parse_played(TRACKLIST.as_bytes());
        assert_eq!(p.kind, PlayedFile::Tracklist);
        let last = p.last.unwrap();
        assert_eq!(
            (last.artist.as_str(), last.title.as_str()),
            ("Justice", "D.A.N.C.E.")
        );
        assert_eq!(last.played_at.as_deref(), Some("21:07"));
    }

    #[test]
    fn a_half_written_tracklist_line_is_not_read_yet() {
        let text = format!("{TRACKLIST}21:11 : Moder");
        let last = parse_played(text.as_bytes()).last.unwrap();
        assert_eq!(last.title, "D.A.N.C.E.");
        let text = format!("{TRACKLIST}21:11 : Moderat - A New Error\n");
        assert_eq!(
            parse_played(text.as_bytes()).last.unwrap().title,
            "A New Error"
        );
    }

    #[test]
    fn a_second_session_header_in_the_same_tracklist() {
        let text = format!("{TRACKLIST}\nVirtualDJ History 2024/01/16\n------\n00:10 : A - B\n");
        assert_eq!(
            parse_played(text.as_bytes()).last,
            Some(PlayedEntry {
                played_at: Some("00:10".into()),
                ..entry("A", "B")
            })
        );
    }

    const M3U: &str = "#EXTM3U\r\n\
        #EXTVDJ:<time>21:03</time><lastplaytime>1705350180</lastplaytime><artist>Daft Punk</artist><title>One More Time</title><songlength>320.4</songlength>\r\n\
        C:\\Music\\Daft Punk - One More Time.mp3\r\n\
        #EXTVDJ:<time>21:07</time><artist>Simon &amp; Garfunkel</artist><title>Mrs. Robinson</title><remix>Extended Mix</remix><songlength>244</songlength>\r\n\
        /Users/dj/Music/mrs.flac\r\n";

    #[test]
    fn the_m3u_history_reads_extvdj_tags() {
        let p = parse_played(M3U.as_bytes());
        assert_eq!(p.kind, PlayedFile::History);
        assert_eq!(
            p.last,
            Some(PlayedEntry {
                remix: "Extended Mix".into(),
                duration_s: Some(244.0),
                ..entry("Simon & Garfunkel", "Mrs. Robinson")
            })
        );
    }

    #[test]
    fn m3u_without_tags_uses_extinf_then_the_file_name() {
        let p = parse_played(b"#EXTM3U\n#EXTINF:200,Moderat - Bad Kingdom\n/m/x.mp3\n");
        assert_eq!(
            p.last.as_ref().map(|e| e.title.as_str()),
            Some("Bad Kingdom")
        );
        assert_eq!(p.last.unwrap().duration_s, Some(200.0));
        let p = parse_played(b"#EXTM3U\nC:\\Music\\Bicep - Glue.mp3\n");
        assert_eq!(p.last, Some(entry("Bicep", "Glue")));
    }

    #[test]
    fn an_m3u_entry_counts_once_its_tag_line_is_finished() {
        let first = M3U.split("/Users").next().unwrap();
        // The second #EXTVDJ line is complete, its path not yet written.
        assert_eq!(
            parse_played(first.as_bytes()).last.unwrap().title,
            "Mrs. Robinson"
        );
        let cut = &M3U[..M3U.find("Mrs.").unwrap()];
        assert_eq!(
            parse_played(cut.as_bytes()).last.unwrap().title,
            "One More Time"
        );
    }

    #[test]
    fn non_utf8_bytes_read_as_windows_1252() {
        let p = parse_played(b"Beyonc\xe9 - D\xe9j\xe0 Vu \x96 Live");
        assert_eq!(p.last, Some(entry("Beyoncé", "Déjà Vu – Live")));
    }

    #[test]
    fn a_character_cut_by_a_write_keeps_the_text_utf8() {
        let p = parse_played(
            "21:00 : Sigur Rós - Hoppípolla\n21:05 : Björk - J"
                .as_bytes()
                .split_at(44)
                .0,
        );
        assert_eq!(p.last.unwrap().artist, "Sigur Rós");
    }

    #[test]
    fn boms_are_understood() {
        assert_eq!(
            parse_played(b"\xEF\xBB\xBFA - B").last,
            Some(entry("A", "B"))
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain(
                "Sigur Rós - Hoppípolla"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(
            parse_played(&utf16).last,
            Some(entry("Sigur Rós", "Hoppípolla"))
        );
    }

    #[test]
    fn a_tail_drops_its_partial_first_line() {
        assert_eq!(
            drop_partial_first_line(b"ne More Time\n21:07 : A - B\n", false),
            b"21:07 : A - B\n"
        );
        assert_eq!(drop_partial_first_line(b"abc", true), b"abc");
        assert_eq!(drop_partial_first_line(b"abc", false), b"");
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9éü&.' ]{1,20}"
            .prop_map(|s| s.trim().to_string())
            .prop_filter("non-empty", |s| {
                !s.is_empty() && !s.contains(" - ") && !s.contains(" : ")
            })
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_played(&bytes);
        }

        #[test]
        fn tracklist_lines_in_any_order_the_last_wins(songs in proptest::collection::vec((name(), name()), 1..12)) {
            let mut text = String::from("VirtualDJ History 2024/05/01\n--------\n");
            for (i, (a, t)) in songs.iter().enumerate() {
                text.push_str(&format!("{:02}:{:02} : {a} - {t}\n", i / 60, i % 60));
            }
            let last = parse_played(text.as_bytes()).last.unwrap();
            let (a, t) = songs.last().unwrap();
            prop_assert_eq!((&last.artist, &last.title), (a, t));
        }

        /// Cut anywhere (a write caught half-way), the log names only a song it really holds.
        #[test]
        fn a_cut_log_never_names_a_song_it_does_not_hold(songs in proptest::collection::vec((name(), name()), 1..8), cut in 0usize..2000, m3u in any::<bool>()) {
            let mut text = String::new();
            if m3u {
                text.push_str("#EXTM3U\n");
                for (a, t) in &songs {
                    text.push_str(&format!("#EXTVDJ:<artist>{a}</artist><title>{t}</title>\n/music/x.mp3\n"));
                }
            } else {
                text.push_str("VirtualDJ History 2024/05/01\n------\n");
                for (a, t) in &songs {
                    text.push_str(&format!("12:00 : {a} - {t}\n"));
                }
            }
            // The header goes in with the file's first write.
            let header = text.find('\n').unwrap() + 1;
            let cut = cut.clamp(header, text.len());
            if let Some(last) = parse_played(&text.as_bytes()[..cut]).last {
                prop_assert!(songs.iter().any(|(a, t)| *a == last.artist && *t == last.title), "{last:?}");
            }
        }
    }
}
